"""The `claims-audit` command as a user runs it: exit codes, summary, no member IDs printed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import ALLOCATOR_SETTINGS
from tests.world import World, write_rows

COMMAND = Path(sys.executable).with_name("claims-audit")
ADULT = "10000000002"


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *map(str, args)], capture_output=True, text=True, timeout=300
    )


def _input(tmp_path: Path) -> Path:
    world = World()
    world.member(ADULT, dob="1990-01-01")
    world.ref["consents"].pop()
    world.line("AETNA", "A1", ADULT)
    world.line("UHC", "U1", "19999999999")
    return world.write(tmp_path / "input")


def test_help_explains_the_commands() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    for word in ("run", "demo", "policies", "reprocessing"):
        assert word in result.stdout
    run_help = _cli("run", "--help")
    assert "--as-of" in run_help.stdout and "--strict" in run_help.stdout


def _run_args(root: Path) -> tuple[str | Path, ...]:
    return ("run", "--input", root / "input", "--db", root / "a.duckdb", "--out", root / "out")


@pytest.fixture(scope="module")
def first_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The first night, run once for the module: two MCOs' claim files and one file the
    contract rejects. Tests that run again work on a copy of the folder it leaves."""
    root = tmp_path_factory.mktemp("first_run")
    input_dir = _input(root)
    write_rows(input_dir / "claims" / "AETNA" / "broken.csv", ["claim_id", "member_id"], [])
    return root, _cli(*_run_args(root), "--as-of", "2025-06-30")


@pytest.fixture
def after_first_run(
    first_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A copy of the first night's folder in tmp_path, and the first run's result."""
    root, first = first_run
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    return tmp_path, first


def test_run_prints_a_summary_without_member_ids_and_reruns_as_a_no_op(
    after_first_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    root, first = after_first_run
    assert first.returncode == 0, first.stderr
    assert "2 claim files" in first.stdout
    assert "AETNA" in first.stdout and "PPS009" in first.stdout
    second = _cli(*_run_args(root), "--as-of", "2025-07-01")
    assert second.returncode == 0, second.stderr
    assert "nothing new to audit" in second.stdout
    for output in (first, second):
        assert ADULT not in output.stdout + output.stderr
        assert "19999999999" not in output.stdout + output.stderr
        assert "1990-01-01" not in output.stdout + output.stderr


def test_rejected_file_exits_0_but_2_with_strict(
    after_first_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    root, relaxed = after_first_run
    assert relaxed.returncode == 0
    assert "REJECTED claims/AETNA/broken.csv" in relaxed.stdout
    strict = _cli(*_run_args(root), "--strict")
    assert strict.returncode == 2
    assert "claims/AETNA/broken.csv" in strict.stderr


def test_missing_reference_file_is_a_usage_error(tmp_path: Path) -> None:
    input_dir = _input(tmp_path)
    (input_dir / "reference" / "providers.csv").unlink()
    result = _cli(
        "run", "--input", input_dir, "--db", tmp_path / "a.duckdb", "--out", tmp_path / "o"
    )
    assert result.returncode == 2
    assert "reference/providers.csv" in result.stderr
    assert not (tmp_path / "o").exists()


def test_bad_as_of_is_a_usage_error(tmp_path: Path) -> None:
    result = _cli(
        "run", "--input", tmp_path, "--db", tmp_path / "a", "--out", tmp_path, "--as-of", "June"
    )
    assert result.returncode == 2
    assert "YYYY-MM-DD" in result.stderr


@pytest.mark.parametrize("users_own", [None, "narenas:2"])
def test_polars_keeps_freed_pages_3_s_unless_the_user_set_its_allocator(
    users_own: str | None,
) -> None:
    """pipelines/__init__.py sets polars' allocator before polars is imported; a setting of
    the user's own is left as it is (docs/decisions.md, "DuckDB's memory is capped")."""
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    if users_own is not None:
        env["_RJEM_MALLOC_CONF"] = users_own
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, pipelines, polars; print(os.environ['_RJEM_MALLOC_CONF'])",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    # polars puts its own defaults first: the last value of a setting is the one used
    assert shown.endswith(users_own or ALLOCATOR_SETTINGS)
    assert (ALLOCATOR_SETTINGS in shown) == (users_own is None)
