"""Modalities: each turns an upload into a validated dataset and feeds it to a model."""

from __future__ import annotations

from pathlib import Path

from core.data.base import BadFilesError, Modality, Split, split_for, stratified_split
from core.errors import GlassboxError
from core.registry import Registry

MODALITIES: Registry[Modality] = Registry("modality")

__all__ = ["MODALITIES", "BadFilesError", "Modality", "Split", "modality", "detect", "split_for", "stratified_split"]


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
    raise GlassboxError(f"{source.name}: not a dataset Glassbox can read (a zip or folder of images, or a CSV)")


def _load_modalities() -> None:
    from core.data import images, text  # noqa: F401
