"""Landing locations: local folders and file:// in place, remote drop zones mirrored.

A drop zone gives claims only; the reference files come from the state's own location
(tests/test_trust_operations.py covers a drop zone that holds a `reference` folder).
Remote drop zones are exercised with fsspec's in-memory filesystem (`memory://`), which takes
the same code path as s3:// and sftp:// without a network. Also here: which payer folders
have new deliveries, as the DAG asks before mapping ingest over them.
"""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec
import paramiko
import pytest
from fsspec.registry import _registry as fsspec_classes

from pipelines.audit.packs import discover, unit_minutes_by_code
from pipelines.db import connect, transaction
from pipelines.ingest.landing import (
    CLAIMS_LAYOUT,
    REFERENCE_LAYOUT,
    LandingError,
    landing_options_from_env,
    local_folder,
    mirror,
    redacted,
    stage_landing,
    stage_reference,
)
from pipelines.ingest.load import InputError, ingest, payers_with_new_deliveries
from tests.world import World

MEMORY = fsspec.filesystem("memory")


def _world() -> World:
    world = World()
    world.member("10000000001")
    world.line("AETNA", "A1", "10000000001")
    world.line("UHC", "U1", "10000000001")
    return world


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@pytest.fixture
def drop_zone(tmp_path: Path) -> Iterator[tuple[str, str, dict[str, bytes]]]:
    """An MCO drop zone in memory holding a world's claims, plus files ingest never reads."""
    local = _world().write(tmp_path / "world")
    files = {name: content for name, content in _tree(local).items() if name.startswith("claims/")}
    root = f"/drop-{uuid.uuid4().hex}"
    for relative, content in files.items():
        MEMORY.pipe(f"{root}/{relative}", content)
    MEMORY.pipe(f"{root}/claims/AETNA/.uploading.csv", b"half a file")
    MEMORY.pipe(f"{root}/notes/readme.txt", b"not a delivery")
    yield f"memory://{root}", root, files
    MEMORY.rm(root, recursive=True)


# --- Local folders -------------------------------------------------------------------------


def test_local_paths_and_file_uris_are_audited_in_place(tmp_path: Path) -> None:
    assert local_folder(str(tmp_path)) == tmp_path
    assert local_folder(f"file://{tmp_path}") == tmp_path
    assert local_folder(f"file://localhost{tmp_path}") == tmp_path
    assert local_folder("file:///srv/claims%20audit/landing") == Path("/srv/claims audit/landing")
    assert stage_landing(f"file://{tmp_path}", tmp_path / "staging").folder == tmp_path
    assert stage_reference(str(tmp_path), tmp_path / "staging") == tmp_path
    assert not (tmp_path / "staging").exists(), "nothing is copied for a local folder"


def test_file_uri_of_another_host_is_refused() -> None:
    with pytest.raises(LandingError, match="another host"):
        local_folder("file://fileserver/landing")


def test_remote_uris_are_not_local() -> None:
    for uri in ("s3://mco-drop/aetna", "sftp://audit@sftp.example.org/drop", "memory://x"):
        assert local_folder(uri) is None


def test_passwords_never_reach_messages() -> None:
    assert redacted("sftp://audit:hunter2@sftp.example.org/drop") == (
        "sftp://audit@sftp.example.org/drop"
    )
    assert redacted("/opt/claims-audit/landing") == "/opt/claims-audit/landing"
    with pytest.raises(LandingError) as raised:
        stage_landing("nosuchproto://audit:hunter2@host/drop", Path("/nonexistent"))
    assert "hunter2" not in str(raised.value)


# --- Remote drop zones -----------------------------------------------------------------------


def test_remote_drop_zone_is_mirrored_with_what_ingest_reads(
    drop_zone: tuple[str, str, dict[str, bytes]], tmp_path: Path
) -> None:
    uri, _, files = drop_zone
    staged = stage_landing(uri, tmp_path / "staging")
    assert staged.folder.is_relative_to(tmp_path / "staging")
    # exactly the claim deliveries: no half-uploaded hidden file, no notes
    assert _tree(staged.folder) == files
    assert staged.refused == []


def test_remote_reference_location_is_mirrored_at_its_top_level(tmp_path: Path) -> None:
    references = _tree(_world().write(tmp_path / "world") / "reference")
    root = f"/state-{uuid.uuid4().hex}"
    try:
        for name, content in references.items():
            MEMORY.pipe(f"{root}/{name}", content)
        MEMORY.pipe(f"{root}/archive/members.csv", b"last year")
        staged = stage_reference(f"memory://{root}", tmp_path / "staging")
        assert _tree(staged) == references, "top-level files only, as ingest reads them"
    finally:
        MEMORY.rm(root, recursive=True)


def test_mirror_fetches_only_changes_and_drops_what_disappeared(
    drop_zone: tuple[str, str, dict[str, bytes]], tmp_path: Path
) -> None:
    _, root, files = drop_zone
    target = tmp_path / "mirror"
    (target / "reference").mkdir(parents=True)
    (target / "reference" / "members.csv").write_text("what an earlier layout mirrored")
    first = mirror(MEMORY, root, target, CLAIMS_LAYOUT)
    assert sorted(first.fetched) == sorted(files)
    assert first.removed == ["reference/members.csv"], "only what the layout names stays"

    again = mirror(MEMORY, root, target, CLAIMS_LAYOUT)
    assert again.fetched == [] and again.removed == []
    assert again.unchanged == len(files)

    MEMORY.pipe(f"{root}/claims/UHC/claims.csv", b"a corrected delivery")
    MEMORY.pipe(f"{root}/claims/UHC/second.csv", b"a second delivery")
    MEMORY.rm(f"{root}/claims/AETNA/claims.csv")
    changed = mirror(MEMORY, root, target, CLAIMS_LAYOUT)
    assert sorted(changed.fetched) == ["claims/UHC/claims.csv", "claims/UHC/second.csv"]
    assert changed.removed == ["claims/AETNA/claims.csv"]
    assert (target / "claims/UHC/claims.csv").read_bytes() == b"a corrected delivery"
    assert not (target / "claims/AETNA/claims.csv").exists()


def test_mirror_without_version_markers_fetches_every_time(tmp_path: Path) -> None:
    class Unversioned:
        """A backend whose listings carry sizes only."""

        fetched = 0

        def isdir(self, path: str) -> bool:
            return path == "/zone"

        def find(self, path: str, **_: Any) -> dict[str, dict[str, Any]]:
            if path != "/zone":
                return {}
            return {"/zone/members.csv": {"type": "file", "size": 3}}

        def get_file(self, remote: str, local: str) -> None:
            self.fetched += 1
            Path(local).write_bytes(b"abc")

    fs = Unversioned()
    mirror(fs, "/zone", tmp_path, REFERENCE_LAYOUT)
    mirror(fs, "/zone", tmp_path, REFERENCE_LAYOUT)
    assert fs.fetched == 2, "same size is no proof of same content"


def test_missing_drop_zone_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        stage_landing(f"memory:///absent-{uuid.uuid4().hex}", tmp_path)


@pytest.mark.parametrize(
    ("uri", "package"),
    [("s3://mco-drop/landing", "s3fs"), ("sftp://audit@sftp.example.org/drop", "paramiko")],
)
def test_missing_backend_names_the_package_to_install(
    uri: str, package: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an environment without the package, whether or not this one has it (paramiko is a
    # test dependency): its import fails, and fsspec has no class of the protocol cached
    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.delitem(fsspec_classes, urlsplit(uri).scheme, raising=False)
    with pytest.raises(LandingError, match=f"needs the {package} package"):
        stage_landing(uri, tmp_path)


def test_landing_options_come_from_json() -> None:
    assert landing_options_from_env({}) == {}
    assert landing_options_from_env({"CLAIMS_AUDIT_LANDING_OPTIONS": " "}) == {}
    options = {"CLAIMS_AUDIT_LANDING_OPTIONS": '{"key_filename": "/run/secrets/sftp_key"}'}
    assert landing_options_from_env(options) == {"key_filename": "/run/secrets/sftp_key"}
    with pytest.raises(LandingError, match="JSON object"):
        landing_options_from_env({"CLAIMS_AUDIT_LANDING_OPTIONS": '["a"]'})
    # the reference location has options of its own: an MCO's key never reaches it
    both = options | {"CLAIMS_AUDIT_REFERENCE_OPTIONS": '{"anon": true}'}
    assert landing_options_from_env(both, setting="CLAIMS_AUDIT_REFERENCE_OPTIONS") == {
        "anon": True
    }
    with pytest.raises(LandingError) as raised:
        landing_options_from_env({"CLAIMS_AUDIT_LANDING_OPTIONS": "{password: s3cret"})
    assert "s3cret" not in str(raised.value)


# --- Payer folders with new deliveries ---------------------------------------------------------


def test_payers_with_new_deliveries_follow_the_manifest(tmp_path: Path) -> None:
    landing = _world().write(tmp_path / "landing")
    (landing / "claims" / "stray.csv").write_text("claim files belong in a payer folder\n")
    db_file = tmp_path / "audit.duckdb"

    def load(payers: set[str] | None) -> dict[str, list[str | None]]:
        con = connect(db_file)
        try:
            with transaction(con):
                report = ingest(
                    con,
                    landing,
                    loaded_on=dt.date(2025, 6, 30),
                    run_id=1,
                    unit_minutes=unit_minutes_by_code(discover()),
                    payers=payers,
                )
                pending = payers_with_new_deliveries(con, landing)
        finally:
            con.close()
        return {
            "loaded": sorted(str(f.payer) for f in report.with_status("loaded") if f.payer),
            "rejected": sorted(f.source_file for f in report.with_status("rejected")),
            "pending": list(pending),
        }

    # references and the stray file only: the stray file is rejected, never "pending"
    assert load(set()) == {
        "loaded": [],
        "rejected": ["claims/stray.csv"],
        "pending": ["AETNA", "UHC"],
    }
    assert load({"AETNA"}) == {"loaded": ["AETNA"], "rejected": [], "pending": ["UHC"]}
    assert load({"UHC"}) == {"loaded": ["UHC"], "rejected": [], "pending": []}
    assert load(None) == {"loaded": [], "rejected": [], "pending": []}

    # the same content under another name is no new delivery; new content is
    (landing / "claims" / "UHC" / "again.csv").write_bytes(
        (landing / "claims" / "UHC" / "claims.csv").read_bytes()
    )
    assert load(set())["pending"] == []
    late = _world()
    late.line("AETNA", "A2", "10000000001")
    late.write(tmp_path / "late")
    (landing / "claims" / "AETNA" / "late.csv").write_bytes(
        (tmp_path / "late" / "claims" / "AETNA" / "claims.csv").read_bytes()
    )
    assert load(set())["pending"] == ["AETNA"]


def test_sftp_accepts_only_listed_host_keys(tmp_path: Path) -> None:
    from pipelines.ingest.landing import _known_hosts_only

    server, impostor = paramiko.RSAKey.generate(2048), paramiko.RSAKey.generate(2048)
    listed = paramiko.HostKeys()
    listed.add("[sftp.example.org]:2222", server.get_name(), server)
    listed.save(str(tmp_path / "known_hosts"))
    policy = _known_hosts_only(tmp_path / "known_hosts")
    policy.missing_host_key(None, "[sftp.example.org]:2222", server)
    with pytest.raises(LandingError, match="not in"):
        policy.missing_host_key(None, "[sftp.example.org]:2222", impostor)
    with pytest.raises(LandingError, match="not in"):
        _known_hosts_only(tmp_path / "absent").missing_host_key(None, "sftp.example.org", server)
