"""Paths under --out that are named after a value: each is checked where it is made."""

from __future__ import annotations

from pathlib import Path

from pipelines.ingest.datasets import PAYER_CODE_FORM, is_payer_code


class UnsafeOutputPath(ValueError):
    """A value would name a path outside --out, or a path that no payer code makes."""


def mco_folder(out_dir: Path, payer: str) -> Path:
    """`out_dir/mco/<payer>`, for a payer code only, and only while it lies inside out_dir.

    Payer codes are validated when they are loaded; this is the last check before a folder is
    made, also for a database written before codes were validated. The value is not echoed:
    it is not known to be harmless.
    """
    if not is_payer_code(payer):
        raise UnsafeOutputPath(f"an MCO folder is named by a payer code ({PAYER_CODE_FORM})")
    folder = out_dir / "mco" / payer
    if not folder.resolve().is_relative_to(out_dir.resolve()):
        raise UnsafeOutputPath(f"the MCO folder {payer} would lie outside {out_dir}")
    return folder
