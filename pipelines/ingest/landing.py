"""Where the nightly audit finds its deliveries: the MCOs' claims and the state's reference files.

The two come from different hands, so from different locations. CLAIMS_AUDIT_LANDING, the
MCO drop zone, gives only `claims/**`; CLAIMS_AUDIT_REFERENCE, a location the state
controls, gives the reference files (`members.csv`, `consents.csv`, ...) at its top level.
An MCO could otherwise deliver the consents and treatment plans that clear its own findings:
a `reference` folder in a drop zone is refused by name and never read.

Each setting is a local path or a URI: `file://` for a local folder, `s3://` for a bucket,
`sftp://` for an SFTP server (any other fsspec protocol works the same way). A local folder
is read in place. A remote location is mirrored into a staging folder first, copying only
what ingest reads, so hashing, readers and quarantine all work on ordinary files and nothing
is ever written to the location. `assemble_audit_input` then links both into the folder
layout ingest reads (`claims/` beside `reference/`).

A mirror is kept between runs: a file is downloaded again only when the location reports a
different size or version for it, and a file gone from the location is removed from the
mirror, so that the mirror always shows exactly what was left there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from urllib.request import url2pathname

from pipelines.ingest.load import InputError

log = logging.getLogger(__name__)

# The packages that give fsspec each protocol; none is a dependency of claims-audit, so a
# deployment that uses a remote drop zone installs the one it needs into its image.
BACKEND_PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "sftp": "paramiko",
    "ssh": "paramiko",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "abfs": "adlfs",
    "az": "adlfs",
}

# Remembers what each mirrored file was when fetched; hidden, so ingest never reads it.
MIRROR_STATE = ".mirror.json"

# What a mirror copies, as (folder under the location's root, depth; None: any depth).
# From a drop zone claims/<payer>/... and responses/<payer>/... at any depth (ingest decides
# what a misplaced file means); from the reference location its top-level files, as ingest
# reads reference/.
CLAIMS_LAYOUT: tuple[tuple[str, int | None], ...] = (("claims", None), ("responses", None))
REFERENCE_LAYOUT: tuple[tuple[str, int | None], ...] = (("", 1),)

# The folder of reference files in the layout ingest reads; in a drop zone it is refused.
REFERENCE_FOLDER = "reference"
REFERENCE_REFUSED = (
    "reference files come only from the state's reference location (CLAIMS_AUDIT_REFERENCE), "
    "never from an MCO drop zone; nothing in it was read"
)

LANDING_OPTIONS = "CLAIMS_AUDIT_LANDING_OPTIONS"
REFERENCE_OPTIONS = "CLAIMS_AUDIT_REFERENCE_OPTIONS"


class LandingError(InputError):
    """The landing setting cannot be used: a bad URI, or a protocol whose package is missing."""


@dataclass
class MirrorReport:
    fetched: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RefusedEntry:
    """Something in a drop zone that is never read, named with why."""

    path: str
    reason: str


@dataclass(frozen=True)
class StagedLanding:
    """A drop zone made local: the folder holding its `claims/`, and what was refused in it."""

    folder: Path
    refused: list[RefusedEntry]


def redacted(landing: str) -> str:
    """The landing setting fit for a log line: any password in the URI is dropped."""
    parsed = urlsplit(landing)
    if parsed.password is None:
        return landing
    host = parsed.netloc.rpartition("@")[2]
    user = f"{parsed.username}@" if parsed.username else ""
    return urlunsplit(parsed._replace(netloc=f"{user}{host}"))


def local_folder(landing: str) -> Path | None:
    """The local folder a landing setting names, or None when it names a remote drop zone."""
    if "://" not in landing:
        return Path(landing)
    parsed = urlsplit(landing)
    if parsed.scheme.lower() != "file":
        return None
    if parsed.netloc not in ("", "localhost"):
        raise LandingError(
            f"landing {redacted(landing)} names another host; a file:// URI must be local "
            "(file:///path)"
        )
    return Path(url2pathname(parsed.path))


def landing_options_from_env(
    environ: Mapping[str, str] | None = None, *, setting: str = LANDING_OPTIONS
) -> dict[str, Any]:
    """Options for a location's filesystem, from `setting` (JSON): the drop zone's
    (CLAIMS_AUDIT_LANDING_OPTIONS) or the reference location's (CLAIMS_AUDIT_REFERENCE_OPTIONS).

    For example `{"key_filename": "/run/secrets/mco_sftp_key"}` for SFTP, or
    `{"endpoint_url": "https://minio.internal:9000"}` for an S3-compatible store. Empty by
    default: each backend then finds credentials its usual way (AWS environment and profiles,
    SSH keys and agent).
    """
    env = os.environ if environ is None else environ
    raw = env.get(setting, "").strip()
    if not raw:
        return {}
    try:
        options = json.loads(raw)
    except json.JSONDecodeError as error:
        # the value may hold a secret: name the setting and the position, never the text
        raise LandingError(f"{setting} is not valid JSON (column {error.colno})") from None
    if not isinstance(options, dict):
        raise LandingError(f"{setting} must be a JSON object")
    return options


def stage_landing(
    landing: str, staging_root: Path, *, storage_options: Mapping[str, Any] | None = None
) -> StagedLanding:
    """The MCO drop zone `landing` as a local folder holding its `claims/` (the folder itself,
    or its mirror), with the entries refused in it."""
    folder, names = _stage("landing", landing, staging_root, storage_options, CLAIMS_LAYOUT)
    return StagedLanding(folder, _refused(names))


def stage_reference(
    reference: str, staging_root: Path, *, storage_options: Mapping[str, Any] | None = None
) -> Path:
    """The state's reference location as a local folder: the folder itself, or its mirror."""
    where = "reference location"
    return _stage(where, reference, staging_root, storage_options, REFERENCE_LAYOUT)[0]


def check_apart(landing: str, reference: str) -> None:
    """Refuse a reference location that lies in the drop zone (or holds it): the MCO could
    then write the state's reference files."""
    drop_zone, state = _comparable(landing), _comparable(reference)
    if state.startswith(drop_zone) or drop_zone.startswith(state):
        raise LandingError(
            f"reference location {redacted(reference)} lies within the landing "
            f"{redacted(landing)} or holds it: reference files must come from a location "
            "the state controls, apart from every MCO drop zone"
        )


def _comparable(location: str) -> str:
    """A location as a prefix-comparable string ending in `/`: local folders resolved."""
    folder = local_folder(location)
    if folder is not None:
        return f"file://{folder.resolve().as_posix().rstrip('/')}/"
    parsed = urlsplit(location)
    host = parsed.netloc.rpartition("@")[2].lower()
    path = parsed.path.strip("/")
    return (
        f"{parsed.scheme.lower()}://{host}/{path}/"
        if path
        else f"{parsed.scheme.lower()}://{host}/"
    )


def _stage(
    role: str,
    location: str,
    staging_root: Path,
    storage_options: Mapping[str, Any] | None,
    layout: tuple[tuple[str, int | None], ...],
) -> tuple[Path, list[str]]:
    """`location` as a local folder (itself, or a mirror of what `layout` names), with the
    names at its top level."""
    folder = local_folder(location)
    if folder is not None:
        if not folder.is_dir():
            raise LandingError(f"{role} {redacted(location)} does not exist or is not a folder")
        return folder, [entry.name for entry in folder.iterdir()]
    fs, root = _filesystem(location, dict(storage_options or {}))
    if not fs.isdir(root):
        raise LandingError(f"{role} {redacted(location)} does not exist or is not a folder")
    names = [posixpath.basename(entry.rstrip("/")) for entry in fs.ls(root, detail=False)]
    target = staging_root / _mirror_name(location)
    report = mirror(fs, root, target, layout)
    log.info(
        "mirrored %s: %d file(s) fetched, %d unchanged, %d removed",
        redacted(location),
        len(report.fetched),
        report.unchanged,
        len(report.removed),
    )
    return target, names


def assemble_audit_input(landing_folder: Path, reference_folder: Path, target: Path) -> Path:
    """The folder layout ingest reads, from the two locations: `claims/` and the MCOs'
    `responses/` of the drop zone beside the state's reference files as `reference/`.

    Links, not copies: the claims of a year are gigabytes, and the links name each file as
    ingest records it (`claims/<payer>/<file>`, `reference/<file>`), whichever location it
    came from. Nothing else of the drop zone is linked.
    """
    target.mkdir(parents=True, exist_ok=True)
    for name, source in (
        ("claims", landing_folder / "claims"),
        ("responses", landing_folder / "responses"),
        (REFERENCE_FOLDER, reference_folder),
    ):
        link = target / name
        link.unlink(missing_ok=True)  # a retried task links again
        if source.is_dir():
            link.symlink_to(source.absolute(), target_is_directory=True)
    return target


def _refused(names: Iterable[str]) -> list[RefusedEntry]:
    """A drop zone's top-level entries refused by name: any spelling of `reference`."""
    return [
        RefusedEntry(f"{name}/", REFERENCE_REFUSED)
        for name in sorted(names)
        if name.casefold() == REFERENCE_FOLDER
    ]


def mirror(
    fs: Any, root: str, target: Path, layout: tuple[tuple[str, int | None], ...]
) -> MirrorReport:
    """Make `target` hold exactly the remote files under `root` that `layout` names."""
    wanted = _remote_files(fs, root, layout)
    state_file = target / MIRROR_STATE
    known: dict[str, str] = {}
    if state_file.is_file():
        known = json.loads(state_file.read_text(encoding="utf-8"))
    report = MirrorReport()
    state: dict[str, str] = {}
    for relative, (remote, stamp) in sorted(wanted.items()):
        local = target / relative
        if stamp is not None and known.get(relative) == stamp and local.is_file():
            report.unchanged += 1
        else:
            _fetch(fs, remote, local)
            report.fetched.append(relative)
        if stamp is not None:
            state[relative] = stamp
    # everything else goes, whatever an earlier layout mirrored (the state file excepted)
    for local in sorted(target.rglob("*")) if target.is_dir() else []:
        relative = local.relative_to(target).as_posix()
        if local.is_file() and relative != MIRROR_STATE and relative not in wanted:
            local.unlink()
            report.removed.append(relative)
    _write_state(state_file, state)
    return report


def _filesystem(landing: str, storage_options: dict[str, Any]) -> tuple[Any, str]:
    import fsspec.core

    protocol = urlsplit(landing).scheme.lower()
    try:
        if protocol in ("sftp", "ssh") and "host_key_policy" not in storage_options:
            known_hosts = storage_options.pop("known_hosts", "~/.ssh/known_hosts")
            storage_options["host_key_policy"] = _known_hosts_only(Path(known_hosts).expanduser())
        return fsspec.core.url_to_fs(landing, **storage_options)
    except ImportError:
        package = BACKEND_PACKAGES.get(protocol, f"the fsspec backend for {protocol}://")
        raise LandingError(
            f"landing {redacted(landing)} needs the {package} package, which is not installed: "
            f"add it to the environment that runs the audit (pip install {package}); "
            "see docs/deploy.md"
        ) from None
    except ValueError:
        raise LandingError(
            f"landing {redacted(landing)} uses {protocol}://, which fsspec does not know"
        ) from None


def _known_hosts_only(known_hosts: Path) -> Any:
    """Accept an SFTP server only with a host key listed in `known_hosts`.

    fsspec's SFTP backend trusts any key a server presents (paramiko's AutoAddPolicy) and
    reads no known_hosts file, so an impostor could feed the audit forged deliveries.
    Options may still choose another `host_key_policy` deliberately.
    """
    import paramiko

    class KnownHostsOnly(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            listed = paramiko.HostKeys(str(known_hosts)) if known_hosts.is_file() else None
            if listed is None or not listed.check(hostname, key):
                raise LandingError(
                    f"the SSH host key of {hostname} is not in {known_hosts}: confirm the "
                    "key with the MCO, then add it (ssh-keyscan) or name another file with "
                    'the "known_hosts" landing option'
                )

    return KnownHostsOnly()


def _remote_files(
    fs: Any, root: str, layout: tuple[tuple[str, int | None], ...]
) -> dict[str, tuple[str, str | None]]:
    """Relative path -> (remote path, version stamp) for every file `layout` names."""
    files: dict[str, tuple[str, str | None]] = {}
    for sub, depth in layout:
        base = posixpath.join(root, sub) if sub else root
        if not fs.isdir(base):
            continue
        for remote, info in fs.find(base, maxdepth=depth, detail=True).items():
            if info.get("type") != "file":
                continue
            relative = posixpath.relpath(remote, root)
            if any(part.startswith(".") for part in relative.split("/")):
                continue
            files[relative] = (remote, _stamp(info))
    return files


def _stamp(info: Mapping[str, Any]) -> str | None:
    """What tells a changed file from the same file: size plus the backend's version marker.

    Only fields that change when the content changes: SFTP listings also carry the access
    time, which a read would change. Without any marker the file is fetched every time.
    """
    for key in ("ETag", "etag", "md5Hash", "content_md5", "mtime", "LastModified", "created"):
        if info.get(key) is not None:
            return f"{info.get('size')}:{key}={info[key]}"
    return None


def _fetch(fs: Any, remote: str, local: Path) -> None:
    local.parent.mkdir(parents=True, exist_ok=True)
    # downloaded beside its final name, then renamed: a half-copied file is never read
    partial = local.with_name(f".{local.name}.part")
    try:
        fs.get_file(remote, str(partial))
        partial.replace(local)
    finally:
        partial.unlink(missing_ok=True)


def _write_state(state_file: Path, state: dict[str, str]) -> None:
    state_file.parent.mkdir(parents=True, exist_ok=True)
    partial = state_file.with_name(f"{state_file.name}.part")
    partial.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    partial.replace(state_file)


def _mirror_name(landing: str) -> str:
    """One staging folder per drop zone, so switching the setting never mixes two of them."""
    protocol = urlsplit(landing).scheme.lower()
    digest = hashlib.sha256(redacted(landing).rstrip("/").encode()).hexdigest()[:12]
    return f"{protocol}-{digest}"
