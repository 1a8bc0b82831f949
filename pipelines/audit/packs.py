"""Policy packs: each policy the audit enforces is one folder, found rather than imported.

A packs location holds `policies/<policy_id>/` (policy.toml: identity, codes in scope,
parameters; facts.py: the evidence its rules read; scenarios.py and README.md) and
`expectations/<policy_id>.json` (its Great Expectations suite, one expectation per rule).
The project's own location is always searched; CLAIMS_AUDIT_POLICIES (which the command
line's `--policies DIR` extends) adds more, separated like PATH, and a pack there replaces
the project's pack of the same ID (a state's own copy of a policy). The engine knows no
policy: it audits whatever packs it finds, and a policy is added by adding its folder and
suite (docs/adding-a-policy.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from pipelines.claims.scope import GROUP_MODIFIER, GROUP_SESSION, RELATED_LINES, PackScope
from pipelines.config import project_path

# the pack whose rules every other pack may ask for over its own lines
GENERAL_PACK = "general_claims_integrity"
POLICY_ID = re.compile(r"[a-z0-9_]{1,64}")
# the pack files whose content decides findings (README.md and scenarios.py do not)
DECIDING_FILES = ("policy.toml", "facts.py")
LOCATIONS_SETTING = "CLAIMS_AUDIT_POLICIES"


class PackError(Exception):
    """A pack folder that cannot be used: the message names the folder and what is wrong."""


@dataclass(frozen=True)
class Pack:
    id: str
    title: str
    bulletin: str | None  # the KMAP bulletin number (mco_implementation.csv's `policy`)
    bulletin_date: dt.date | None
    source: str
    codes: tuple[str, ...]  # the codes that put a claim line in scope
    unit_minutes: int | None  # minutes in one billed unit, for X12 lines billed in minutes
    general_rules: bool  # the general pack's rules also run over this pack's lines
    related_lines: tuple[str, ...]
    # whether a line's facts read reference rows through the lines tied to it (True unless
    # the pack says otherwise): then a changed row also re-audits the lines tied to those it
    # reaches
    related_lines_read_reference: bool
    parameters: Mapping[str, Any]
    folder: Path
    suite_file: Path

    def scope(self, general: Pack | None) -> PackScope:
        """Its codes, what ties its lines together and the reference files it reads, the
        general pack's included."""
        packs = [p for p in (self, general) if p is not None]
        related = {r for p in packs for r in p.related_lines}
        references = {t for p in packs for t in p.facts().REFERENCES}
        sessions = [p for p in packs if GROUP_SESSION in p.related_lines]
        return PackScope(
            self.id,
            self.codes,
            frozenset(related),
            any(p.related_lines_read_reference for p in packs),
            self.bulletin,
            frozenset(references),
            group_modifier=str(sessions[0].parameters[GROUP_MODIFIER]) if sessions else None,
        )

    def facts(self) -> ModuleType:
        """The pack's facts.py: what its rules read."""
        module = self.module("facts")
        for name in ("REFERENCES", "build_facts"):
            if not hasattr(module, name):
                raise PackError(f"{self.folder / 'facts.py'} defines no {name}")
        return module

    def module(self, name: str) -> ModuleType:
        """One of the pack's Python files, loaded from its folder (a pack is never a Python
        package, so two packs' facts.py never clash)."""
        return _load_module(self.folder / f"{name}.py", f"claims_audit_policy_{self.id}_{name}")

    def content_sha256(self) -> str:
        """The hash of what the pack decides findings with: its policy, facts and suite."""
        digest = hashlib.sha256()
        for path in (*(self.folder / name for name in DECIDING_FILES), self.suite_file):
            digest.update(f"{path.name} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
        return digest.hexdigest()


def pack_locations() -> list[Path]:
    """The project's own location first, then those CLAIMS_AUDIT_POLICIES names."""
    setting = os.environ.get(LOCATIONS_SETTING, "")
    return [project_path(), *(Path(p) for p in setting.split(os.pathsep) if p)]


def add_pack_locations(locations: Sequence[Path]) -> None:
    """Look for packs in `locations` too, for the rest of this process (and its children)."""
    named = [p for p in os.environ.get(LOCATIONS_SETTING, "").split(os.pathsep) if p]
    os.environ[LOCATIONS_SETTING] = os.pathsep.join([*named, *(str(p) for p in locations)])


def discover() -> dict[str, Pack]:
    """Every pack of every location, by policy ID (the general pack included); a later
    location's pack replaces an earlier one's of the same ID."""
    packs: dict[str, Pack] = {}
    for location in pack_locations():
        for folder in sorted((location / "policies").glob("*/policy.toml")):
            pack = load_pack(folder.parent, location)
            packs[pack.id] = pack
    if GENERAL_PACK not in packs:
        raise PackError(f"the general pack policies/{GENERAL_PACK} is missing")
    return packs


def policy_packs(packs: Mapping[str, Pack], wanted: Sequence[str] = ()) -> list[Pack]:
    """The packs to audit: those with codes of their own, all of them or the `wanted` IDs."""
    auditable = {pack_id: p for pack_id, p in packs.items() if p.codes}
    unknown = sorted(set(wanted) - set(auditable))
    if unknown:
        raise PackError(
            f"no policy pack {', '.join(unknown)}; the packs are: {', '.join(sorted(auditable))}"
        )
    return [auditable[pack_id] for pack_id in sorted(wanted or auditable)]


def load_pack(folder: Path, location: Path) -> Pack:
    try:
        values = tomllib.loads((folder / "policy.toml").read_text(encoding="utf-8"))
        pack, parameters = values["pack"], values.get("parameters", {})
        pack_id = str(pack["id"])
        if pack_id != folder.name or not POLICY_ID.fullmatch(pack_id):
            raise PackError(f"the pack id must be its folder's name, [a-z0-9_]: {pack_id!r}")
        related = tuple(str(r) for r in pack.get("related_lines", ()))
        if not set(related) <= set(RELATED_LINES):
            raise PackError(f"related_lines take {', '.join(sorted(RELATED_LINES))}")
        if GROUP_SESSION in related and not _is_text(parameters.get(GROUP_MODIFIER)):
            raise PackError(f"{GROUP_SESSION} needs the parameter {GROUP_MODIFIER}: its modifier")
        read_reference = pack.get("related_lines_read_reference", True)
        if not isinstance(read_reference, bool):
            raise PackError("related_lines_read_reference takes true or false")
        return Pack(
            id=pack_id,
            title=str(pack["title"]),
            bulletin=str(pack["bulletin"]) if "bulletin" in pack else None,
            bulletin_date=pack.get("bulletin_date"),
            source=str(pack["source"]),
            codes=tuple(str(c).strip().upper() for c in pack["codes"]),
            unit_minutes=_unit_minutes(pack.get("unit_minutes")),
            general_rules=bool(pack.get("general_rules", False)),
            related_lines=related,
            related_lines_read_reference=read_reference,
            parameters=parameters,
            folder=folder,
            suite_file=_suite_file(location, pack_id),
        )
    except (KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as error:
        raise PackError(f"{folder / 'policy.toml'}: {type(error).__name__}: {error}") from error


def _suite_file(location: Path, pack_id: str) -> Path:
    suite = location / "expectations" / f"{pack_id}.json"
    if not suite.is_file():
        raise PackError(f"policy {pack_id} has no suite {suite}")
    return suite


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _unit_minutes(value: object) -> int | None:
    # a zero or fractional unit length would divide minutes into nonsense units
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError("unit_minutes must be a whole number of at least 1")
    return value


@cache
def _load_module(path: Path, module_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PackError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unit_minutes_by_code(packs: Mapping[str, Pack]) -> dict[str, int]:
    """The unit length of each code a pack gives one for (X12 lines billed in minutes)."""
    return {
        code: pack.unit_minutes
        for pack in packs.values()
        if pack.unit_minutes is not None
        for code in pack.codes
    }
