"""Presets a newcomer can trust: named bundles of hyperparameters, per modality.

Each one was chosen to converge on small data sets on the hardware its name says; the Advanced
panel starts from a preset's values, so a user only changes what they mean to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.config import TrainConfig
from core.errors import GlassboxError


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    description: str
    values: dict[str, Any]


_PRESETS: dict[str, list[Preset]] = {
    "images": [
        Preset(
            "quick",
            "Quick (CPU)",
            "Frozen pretrained backbone, features computed once, linear head: a minute on a laptop CPU.",
            dict(mode="head", augmentation="none", image_size=128, epochs=15, batch_size=64, lr=3e-3,
                 weight_decay=1e-4, label_smoothing=0.0, warmup_fraction=0.0, early_stopping_patience=0),
        ),
        Preset(
            "balanced",
            "Balanced",
            "Fine-tunes the last stages with light augmentation at 160 px.",
            dict(mode="partial", augmentation="light", image_size=160, epochs=6, batch_size=32, lr=2e-3,
                 backbone_lr_scale=0.2, weight_decay=0.01, label_smoothing=0.1, warmup_fraction=0.1,
                 early_stopping_patience=3),
        ),
        Preset(
            "best",
            "Best accuracy",
            "Full fine-tuning at 224 px with medium augmentation; best on a GPU.",
            dict(mode="full", augmentation="medium", image_size=224, epochs=15, batch_size=32, lr=1e-3,
                 backbone_lr_scale=0.1, weight_decay=0.05, label_smoothing=0.1, warmup_fraction=0.1,
                 early_stopping_patience=4),
        ),
    ],
}


def presets(modality: str) -> list[Preset]:
    return list(_PRESETS.get(modality, []))


def preset(modality: str, name: str) -> Preset:
    for candidate in presets(modality):
        if candidate.name == name:
            return candidate
    known = ", ".join(p.name for p in presets(modality)) or "none"
    raise GlassboxError(f"unknown preset {name!r} for {modality} (known: {known})")


def apply(config: TrainConfig, name: str) -> TrainConfig:
    return config.updated(preset=name, **preset(config.modality, name).values)
