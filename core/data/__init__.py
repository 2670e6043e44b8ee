"""Modalities: each turns an upload into a validated dataset and feeds it to a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.data.base import BadFilesError, Modality, Split, split_for, stratified_split
from core.errors import GlassboxError
from core.registry import Registry

MODALITIES: Registry[Modality] = Registry("modality")

__all__ = ["MODALITIES", "BadFilesError", "Modality", "Split", "detect", "modality", "names", "split_for",
           "stratified_split"]


def modality(name: str) -> Modality:
    _load_modalities()
    return MODALITIES.get(name)


def detect(source: Path, options: dict[str, Any] | None = None) -> Modality:
    """The first modality, in registration order, that understands the ingest `options` given (a target
    column, a time column: `Modality.options`) and accepts the upload; when none accepts it, the first that
    understands the options (a table with a free-text column, given a target, is still a table)."""
    _load_modalities()
    fitting = [MODALITIES.get(name) for name in names()
               if set(options or {}) <= set(MODALITIES.get(name).options)]
    for candidate in fitting:
        if candidate.accepts(source):
            return candidate
    if options and fitting:
        return fitting[0]
    raise GlassboxError(f"{source.name}: not a dataset Glassbox can read (a zip or folder of images, a CSV of "
                        "texts, or a table: CSV, Excel or Parquet)")


def names() -> list[str]:
    """Every registered modality's name, in detection order."""
    _load_modalities()
    # the order _DETECTION_ORDER states, not the order the modules happened to be imported in (a test or a page
    # that imports core.data.text first must not make every CSV a text dataset); others after, as registered
    rank = {name: i for i, name in enumerate(_DETECTION_ORDER)}
    return sorted(MODALITIES.names(), key=lambda name: rank.get(name, len(rank)))


# a CSV is a table unless one of its columns holds free text; series last: a CSV is read as series only when asked
# for (its options, --modality series)
_DETECTION_ORDER = ("images", "tables", "text", "series")


def _load_modalities() -> None:
    # imported for their registration side effect; the order they are tried in is `_DETECTION_ORDER`'s
    from core.data import images, series, tables, text  # noqa: F401
