"""Predictions of an exported bundle inside the studio's process (`python -m core predict --bundle FILE.zip INPUT`):
the bundle's own `predict.py` logic (`core.export.standalone`, one implementation), on a zip that needs no run,
dataset or workspace of its own."""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from core.errors import GlassboxError
from core.export import standalone

__all__ = ["predict_bundle"]

_MAX_UNPACKED = 4 * 1024**3  # a bundle holds a model and a few JSON files: more than this is no bundle


def predict_bundle(bundle: Path, inputs: Sequence[Path], text_column: str | None = None) -> pd.DataFrame:
    """The bundle's predictions on `inputs`, in the columns its `predict.py` writes (see
    `core.export.standalone`): one row per image file, text, table row or series, or per forecast step.
    `bundle` is the exported zip or its unpacked folder.

    Raises GlassboxError (one line) for a missing or damaged bundle and for input `predict.py` refuses."""
    bundle = Path(bundle)
    if not bundle.exists():
        raise GlassboxError(f"{bundle}: no such bundle")
    try:
        if bundle.is_dir():
            header, rows = standalone.predict(bundle, [str(p) for p in inputs], text_column)
        else:
            with tempfile.TemporaryDirectory(prefix="bundle-") as folder:
                _unpack(bundle, Path(folder))
                header, rows = standalone.predict(Path(folder), [str(p) for p in inputs], text_column)
    except standalone.BundleError as exc:
        raise GlassboxError(str(exc)) from None
    return pd.DataFrame(rows, columns=header)


def _unpack(bundle: Path, folder: Path) -> None:
    try:
        with zipfile.ZipFile(bundle) as archive:
            entries = archive.infolist()
            if sum(e.file_size for e in entries) > _MAX_UNPACKED:
                raise GlassboxError(f"{bundle.name}: too large to be a bundle")
            for entry in entries:
                parts = entry.filename.replace("\\", "/").split("/")
                if entry.filename.startswith(("/", "\\")) or ".." in parts:
                    raise GlassboxError(f"{bundle.name}: unsafe path {entry.filename!r} inside the bundle")
            archive.extractall(folder)
    except zipfile.BadZipFile:
        raise GlassboxError(f"{bundle.name}: not a bundle (not a readable zip)") from None
    if not (folder / "bundle.json").is_file():
        raise GlassboxError(f"{bundle.name}: not a Glassbox bundle (no bundle.json)")
