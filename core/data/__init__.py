"""Modalities: each turns an upload into a validated dataset and feeds it to a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.data.base import BadFilesError, Modality, Split, split_for, stratified_split
from core.errors import GlassboxError
from core.registry import Registry

MODALITIES: Registry[Modality] = Registry("modality")

__all__ = ["MODALITIES", "BadFilesError", "Modality", "Split", "by_options", "detect", "modality", "names", "split_for",
           "stratified_split"]


def modality(name: str) -> Modality:
    _load_modalities()
    return MODALITIES.get(name)


def detect(source: Path) -> Modality:
    """The first modality that accepts an upload, in registration order."""
    _load_modalities()
    for name in MODALITIES:
        candidate = MODALITIES.get(name)
        if candidate.accepts(source):
            return candidate
    raise GlassboxError(f"{source.name}: not a dataset Glassbox can read (a zip or folder of images, a CSV of "
                        "texts, or a table: CSV, Excel or Parquet)")


def names() -> list[str]:
    """Every registered modality's name, in detection order."""
    _load_modalities()
    return MODALITIES.names()


def by_options(options: dict[str, Any]) -> Modality | None:
    """The one modality whose ingest options (`Modality.options`) include every option given (a target
    column names a table), or None when none or several do: then the upload itself decides (`detect`)."""
    _load_modalities()
    fits = [MODALITIES.get(name) for name in MODALITIES
            if set(options) <= set(MODALITIES.get(name).options)]
    return fits[0] if len(fits) == 1 else None


def _load_modalities() -> None:
    # registration order is detection order: a CSV is a table unless one of its columns holds free text
    from core.data import images, tables, text  # noqa: F401
