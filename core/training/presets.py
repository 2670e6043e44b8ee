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


# Measured on sample_data/digits (400 images, 10 classes, 2 CPU cores): a linear head on frozen
# EfficientNet-Lite0 features needs a few hundred steps at lr 1e-2 (0.85 val accuracy); with only
# ~30 steps, fine-tuning the last stages beat both full fine-tuning and a head-only run with
# augmentation, and a backbone lr above 1e-3 made full fine-tuning worse.
_PRESETS: dict[str, list[Preset]] = {
    "images": [
        Preset(
            "quick",
            "Quick (CPU)",
            "Frozen pretrained backbone, features computed once, linear head: a minute on a laptop CPU.",
            dict(mode="head", augmentation="none", image_size=128, epochs=40, batch_size=32, lr=1e-2,
                 weight_decay=1e-4, label_smoothing=0.0, warmup_fraction=0.0, early_stopping_patience=0),
        ),
        Preset(
            "balanced",
            "Balanced",
            "Fine-tunes the last stages with light augmentation at 128 px.",
            dict(mode="partial", augmentation="light", image_size=128, epochs=8, batch_size=32, lr=1e-2,
                 backbone_lr_scale=0.1, weight_decay=0.01, label_smoothing=0.1, warmup_fraction=0.1,
                 early_stopping_patience=3),
        ),
        Preset(
            "best",
            "Best accuracy",
            "Full fine-tuning at 224 px with medium augmentation; best on a GPU.",
            dict(mode="full", augmentation="medium", image_size=224, epochs=15, batch_size=32, lr=3e-3,
                 backbone_lr_scale=0.1, weight_decay=0.05, label_smoothing=0.1, warmup_fraction=0.1,
                 early_stopping_patience=4),
        ),
    ],
    # Measured on sample_data/drugreviews.csv (888 reviews, 2 classes, 2 CPU cores) with MiniLM-L6: a head
    # on frozen mean-pooled features reaches 0.76-0.78 val accuracy (TF-IDF + logistic regression: 0.77);
    # full fine-tuning at encoder lr 1e-4, batch 16, reaches 0.80 after 3 epochs (epoch 1 still predicts
    # the majority class). Texts have no augmentation: "none" lets head-only runs compute features once.
    "text": [
        Preset(
            "quick",
            "Quick (CPU)",
            "Frozen pretrained encoder, features computed once, linear head: a minute or two on a laptop CPU.",
            dict(mode="head", augmentation="none", max_length=128, epochs=20, batch_size=32, lr=5e-3,
                 weight_decay=1e-4, label_smoothing=0.0, warmup_fraction=0.0, early_stopping_patience=0),
        ),
        Preset(
            "balanced",
            "Balanced",
            "Fine-tunes the whole encoder for 3 epochs on texts cut at 128 tokens: minutes for a small model.",
            dict(mode="full", augmentation="none", max_length=128, epochs=3, batch_size=16, lr=1e-3,
                 backbone_lr_scale=0.1, weight_decay=0.01, label_smoothing=0.0, warmup_fraction=0.1,
                 early_stopping_patience=2),
        ),
        Preset(
            "best",
            "Best accuracy",
            "Longer full fine-tuning on texts cut at 256 tokens, stopping when validation stalls; best on a GPU.",
            dict(mode="full", augmentation="none", max_length=256, epochs=8, batch_size=16, lr=1e-3,
                 backbone_lr_scale=0.05, weight_decay=0.01, label_smoothing=0.0, warmup_fraction=0.1,
                 early_stopping_patience=2),
        ),
    ],
    # Tables: an MLP on the encoded columns (`core.models.tabular`), trained from scratch; every run is also
    # scored against LightGBM on the same split. Measured with bench/tabular.py on the sample tables.
    "tables": [
        Preset(
            "quick",
            "Quick (CPU)",
            "A plain MLP (2 x 256), 30 epochs: seconds on a laptop CPU for a few thousand rows.",
            dict(backbone="mlp", mode="full", weights="none", epochs=30, batch_size=128, lr=2e-3, weight_decay=1e-4,
                 label_smoothing=0.0, warmup_fraction=0.05, early_stopping_patience=8),
        ),
        Preset(
            "balanced",
            "Balanced",
            "A TabM-style ensemble of 8 MLPs trained in one batch (Gorishniy et al., 2024), 60 epochs.",
            dict(backbone="mlp_ensemble", mode="full", weights="none", epochs=60, batch_size=128, lr=2e-3,
                 weight_decay=1e-4, label_smoothing=0.0, warmup_fraction=0.05, early_stopping_patience=12),
        ),
        Preset(
            "best",
            "Best accuracy",
            "The ensemble trained longer with smaller steps, stopping when validation stalls.",
            dict(backbone="mlp_ensemble", mode="full", weights="none", epochs=150, batch_size=64, lr=1e-3,
                 weight_decay=3e-4, label_smoothing=0.0, warmup_fraction=0.05, early_stopping_patience=20),
        ),
    ],
    # Series: sequence networks trained from scratch (`core.models.sequence`), scored against the classical
    # baselines on the same split. On synthetic sets (tests/unit/test_sequence_models.py) the FCN learns in 2-3
    # epochs at lr 3e-3 and the GRU in 5-7; to be re-measured with bench/series.py on the sample series.
    "series": [
        Preset(
            "quick",
            "Quick (CPU)",
            "A fully convolutional network (Wang et al., 2017), 15 epochs: seconds to a minute on a laptop CPU.",
            dict(backbone="cnn", mode="full", weights="none", epochs=15, batch_size=64, lr=3e-3, weight_decay=1e-4,
                 label_smoothing=0.0, warmup_fraction=0.05, early_stopping_patience=5),
        ),
        Preset(
            "balanced",
            "Balanced",
            "A two-layer GRU over the real steps (bidirectional for classification), 30 epochs.",
            dict(backbone="gru", mode="full", weights="none", epochs=30, batch_size=64, lr=3e-3, weight_decay=1e-4,
                 label_smoothing=0.0, warmup_fraction=0.05, early_stopping_patience=8),
        ),
        Preset(
            "best",
            "Best accuracy",
            "A small transformer over patches of steps (PatchTST, Nie et al., 2023), trained longer with smaller "
            "steps, stopping when validation stalls; best on a GPU.",
            dict(backbone="transformer", mode="full", weights="none", epochs=80, batch_size=64, lr=1e-3,
                 weight_decay=0.01, label_smoothing=0.0, warmup_fraction=0.1, early_stopping_patience=15),
        ),
    ],
}

# what a run gets when nobody chose a preset (the CLI without --preset)
DEFAULT = "balanced"


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
