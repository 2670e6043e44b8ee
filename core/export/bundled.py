"""Predictions of an exported bundle inside the studio's process (`python -m core predict --bundle FILE.zip INPUT`):
the bundle's own `predict.py` logic (`core.export.standalone`, one implementation), on a zip that needs no run,
dataset or workspace of its own."""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
            return _predicted(bundle, inputs, text_column)
        with tempfile.TemporaryDirectory(prefix="bundle-") as folder:
            _unpack(bundle, Path(folder))
            return _predicted(Path(folder), inputs, text_column)
    except standalone.BundleError as exc:
        raise GlassboxError(str(exc)) from None


def _predicted(folder: Path, inputs: Sequence[Path], text_column: str | None) -> pd.DataFrame:
    """`predict.py`'s table, plus, for a bundle that kept its run's training statistics, the studio's
    `unlike_training` hints (`core.training_stats`: a colour photo for greyscale training images, a text in another
    script), which `predict.py` leaves out to stay free of the studio's code."""
    header, rows = standalone.predict(folder, [str(p) for p in inputs], text_column)
    table = pd.DataFrame(rows, columns=header)
    stats_file = folder / "training_stats.json"
    kind = str(header[0]) if header else ""
    if not stats_file.is_file() or kind not in ("image", "text") or "error" not in table:
        return table
    import json

    from core.training_stats import unlike_training

    stats = json.loads(stats_file.read_text())
    if kind == "text":
        hints = [unlike_training(stats, str(text)) or "" for text in table["text"]]
    else:
        size = int(json.loads((folder / "config.json").read_text()).get("image_size", 224))
        hints = [_image_hint(stats, str(name), inputs, size) if not error else ""
                 for name, error in zip(table["image"], table["error"], strict=True)]
    table.insert(table.columns.get_loc("error"), "unlike_training", pd.Series(hints, dtype="str"))
    return table


def _image_hint(stats: dict[str, Any], name: str, inputs: Sequence[Path], image_size: int) -> str:
    """The unlike-training hint of the image a row names: a file given as such, or one inside a folder given; ""
    for images read from inside a zip, which are not kept after prediction."""
    from core.data.pictures import UnreadableImage, load_image
    from core.prediction import full_size
    from core.training_stats import ImageInput, unlike_training

    candidates = [Path(name)] + [Path(source) / name for source in inputs if Path(source).is_dir()]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        return ""
    try:
        return unlike_training(stats, ImageInput(load_image(path, image_size), full_size(path))) or ""
    except UnreadableImage:
        return ""


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
