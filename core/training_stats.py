"""What a run's training inputs looked like, saved with the run, so that Predict can say when an input looks
unlike them: an out-of-distribution hint a user can act on, not a verdict (the model still answers).

A modality names its profile (`Modality.training_profile`): a few plain statistics, chosen for the mistakes
people make, and one rule per statistic:

- "pixels", for images (from the dataset info, `info["modes"]` and `info["size"]`): the share of colour images, from the
  files' colour modes; and the range of widths and heights in px. An input is flagged when it is in colour
  (more than `_COLOUR_PIXELS` of its pixels have channels `_CHANNEL_SPREAD` or more apart, so a grey photo
  saved as RGB is not colour) while at most `_GREY_TRAINING` of the training images were; or when its area
  is more than `_SIZE_FACTOR`² times the largest training area (widest x tallest) or less than the
  smallest over `_SIZE_FACTOR`².
- "scripts", for texts: the share of each Unicode script among the training texts' letters, a letter's script being the
  first word of its Unicode name (`LATIN SMALL LETTER A` -> Latin, `CYRILLIC ...`, `CJK UNIFIED ...`,
  `HIRAGANA ...`): simple, and right for the scripts people mix up. An input is flagged when over half of
  its letters are in scripts that make less than `_RARE_SCRIPT` of the training letters.

A run's statistics are written by the training loop (`save_training_stats`) and read back with
`training_stats`; runs trained before they existed have none, and get no hints.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from core import data
from core.artifacts import RunFiles
from core.registry import Registry

if TYPE_CHECKING:
    from PIL import Image

    from core.data.base import Modality

__all__ = ["ImageInput", "save_training_stats", "training_stats", "unlike_training"]

_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_GREY_TRAINING = 0.05  # at most this share of colour training images still counts as a greyscale set
_CHANNEL_SPREAD = 32  # of 255: channels this far apart are a colour, not JPEG noise on grey
_COLOUR_PIXELS = 0.05
_SIZE_FACTOR = 4
_RARE_SCRIPT = 0.01


class ImageInput(NamedTuple):
    """An image to predict on: its pixels as the model reads them (RGB, maybe reduced) and the file's full
    size (width, height) in px, None when unknown."""

    pixels: Image.Image
    size: tuple[int, int] | None


class _Profile(Protocol):
    def describe(self, modality: Modality, dataset_dir: Path, info: dict[str, Any]) -> dict[str, Any]:
        """The statistics of a dataset (JSON-serialisable)."""

    def unlike(self, stats: dict[str, Any], item: Any) -> str | None:
        """How `item` looks unlike the data `stats` describe, in a few words; None when it does not."""


# profiles by name; a modality names the one its inputs are described by (`Modality.training_profile`)
_PROFILES: Registry[_Profile] = Registry("training statistics profile")


def save_training_stats(files: RunFiles, modality: str, dataset_dir: Path, info: dict[str, Any]) -> None:
    """Write the statistics of the dataset a run on `modality` (its registered name) trains on
    (`files.training_stats`); nothing for a modality without a profile."""
    kind = data.modality(modality)
    if kind.training_profile is not None:
        stats = _PROFILES.get(kind.training_profile).describe(kind, Path(dataset_dir), info)
        files.write_json(files.training_stats, {"modality": modality, **stats})


def training_stats(files: RunFiles) -> dict[str, Any] | None:
    """A run's saved training statistics, or None for a run trained before they were saved."""
    return files.read_json(files.training_stats) if files.training_stats.exists() else None


def unlike_training(stats: dict[str, Any] | None, item: Any) -> str | None:
    """How one input (a text; an `ImageInput`) looks unlike the run's training data ("a colour image; the
    training images are greyscale"), or None when nothing stands out or there are no statistics."""
    profile = data.modality(stats["modality"]).training_profile if stats is not None else None
    return None if profile is None else _PROFILES.get(profile).unlike(stats, item)


class _Pixels:
    def describe(self, modality: Modality, dataset_dir: Path, info: dict[str, Any]) -> dict[str, Any]:
        modes: dict[str, int] = info["modes"]
        colour = sum(n for mode, n in modes.items() if mode not in _GREY_MODES)
        size = info["size"]
        return {"colour_share": round(colour / max(1, sum(modes.values())), 4),
                "width": {k: size["width"][k] for k in ("min", "max")},
                "height": {k: size["height"][k] for k in ("min", "max")}}

    def unlike(self, stats: dict[str, Any], item: ImageInput) -> str | None:
        hints = []
        if stats["colour_share"] <= _GREY_TRAINING and _in_colour(item.pixels):
            hints.append("a colour image; the training images are greyscale")
        if item.size is not None:
            width, height = stats["width"], stats["height"]
            area = item.size[0] * item.size[1]
            shown = f"{item.size[0]} × {item.size[1]} px"
            if area > _SIZE_FACTOR**2 * width["max"] * height["max"]:
                hints.append(f"much larger ({shown}) than the training images ({_sizes(width, height)})")
            elif area * _SIZE_FACTOR**2 < width["min"] * height["min"]:
                hints.append(f"much smaller ({shown}) than the training images ({_sizes(width, height)})")
        return "; ".join(hints) or None


class _Scripts:
    def describe(self, modality: Modality, dataset_dir: Path, info: dict[str, Any]) -> dict[str, Any]:
        return {"scripts": _script_shares(modality.items(dataset_dir, info))}

    def unlike(self, stats: dict[str, Any], item: str) -> str | None:
        trained: dict[str, float] = stats["scripts"]
        here = _script_shares([item])
        foreign = {script: share for script, share in here.items() if trained.get(script, 0.0) < _RARE_SCRIPT}
        if sum(foreign.values()) <= 0.5:
            return None
        written = f"written in {_listed(sorted(foreign, key=foreign.__getitem__, reverse=True))}"
        usual = [script for script, share in trained.items() if share >= _RARE_SCRIPT]
        return f"{written}; the training texts are in {_listed(usual)}" if usual else written


_PROFILES.register("pixels")(_Pixels())
_PROFILES.register("scripts")(_Scripts())


def _in_colour(pixels: Image.Image) -> bool:
    rgb = np.asarray(pixels.convert("RGB"), dtype=np.int16)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    return float((spread >= _CHANNEL_SPREAD).mean()) > _COLOUR_PIXELS


def _sizes(width: dict[str, int], height: dict[str, int]) -> str:
    if width["min"] == width["max"] and height["min"] == height["max"]:
        return f"{width['min']} × {height['min']} px"
    return f"widths {width['min']}–{width['max']} px, heights {height['min']}–{height['max']} px"


def _script_shares(texts: list[str]) -> dict[str, float]:
    """Each script's share of the letters in `texts`, largest first, rounded to 4 places; {} without letters."""
    counts: Counter[str] = Counter()
    for char, n in Counter("".join(texts)).items():
        script = _script(char)
        if script is not None:
            counts[script] += n
    total = sum(counts.values())
    return {script: round(n / total, 4) for script, n in counts.most_common()}


@lru_cache(maxsize=4096)
def _script(char: str) -> str | None:
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else None


def _listed(scripts: list[str]) -> str:
    """"Latin script", "Cyrillic and Latin scripts": script names as written (CJK stays in capitals)."""
    names = [s if len(s) <= 3 else s.title() for s in scripts]
    if len(names) == 1:
        return f"{names[0]} script"
    return ", ".join(names[:-1]) + f" and {names[-1]} scripts"
