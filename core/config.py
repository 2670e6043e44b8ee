"""Typed configuration. A run is fully described by its `TrainConfig`, saved as the run's
config.json: `python -m core train --config runs/<id>/config.json` reproduces it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from core import tasks
from core.errors import GlassboxError

MODES = ("head", "partial", "full")
OPTIMIZERS = ("adamw", "sgd")
AUGMENTATIONS = ("none", "light", "medium", "strong")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# how much each class's items count in the loss: "balanced" weighs a class by n / (k * its count), as
# scikit-learn's compute_class_weight does, so a small class counts as much as a large one
CLASS_WEIGHTS = ("none", "balanced")


@dataclass
class TrainConfig:
    dataset_id: str
    backbone: str = "efficientnet_lite0"
    modality: str = "images"
    # what the run predicts (`core.tasks`): "classification" or "regression"
    task: str = "classification"
    preset: str = "custom"
    # transfer learning: head = frozen backbone, partial = last stages, full = everything
    mode: str = "full"
    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-3
    # full/partial fine-tuning trains the pretrained backbone at lr * backbone_lr_scale
    backbone_lr_scale: float = 0.1
    weight_decay: float = 0.01
    optimizer: str = "adamw"
    warmup_fraction: float = 0.1
    label_smoothing: float = 0.1
    early_stopping_patience: int = 0
    class_weights: str = "none"
    seed: int = 0
    val_fraction: float = 0.2
    device: str = "auto"
    precision: str = "auto"
    # "auto" = best local source (pip-shipped, cache, hub); "none" = from scratch; else a file path
    weights: str = "auto"
    # images
    image_size: int = 224
    augmentation: str = "light"
    channels_last: bool = True
    # text
    max_length: int = 128
    extra: dict[str, Any] = field(default_factory=dict)
    # a hyperparameter search's trial (`core.search`): {"id": SEARCH_ID, "trial": N}; None for a run of its own
    search: dict[str, Any] | None = None

    def validate(self) -> TrainConfig:
        checks = [
            (self.task in tasks.names(), f"task must be one of {', '.join(tasks.names())}"),
            (self.mode in MODES, f"mode must be one of {', '.join(MODES)}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.augmentation in AUGMENTATIONS, f"augmentation must be one of {', '.join(AUGMENTATIONS)}"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.class_weights in CLASS_WEIGHTS, f"class weights must be one of {', '.join(CLASS_WEIGHTS)}"),
            (1 <= self.epochs <= 1000, "epochs must be between 1 and 1000"),
            (1 <= self.batch_size <= 4096, "batch size must be between 1 and 4096"),
            (0 < self.lr < 10, "learning rate must be positive and below 10"),
            (0 < self.val_fraction < 0.9, "validation fraction must be between 0 and 0.9"),
            (32 <= self.image_size <= 1024, "image size must be between 32 and 1024"),
            (8 <= self.max_length <= 4096, "max length must be between 8 and 4096"),
            (0 <= self.label_smoothing < 1, "label smoothing must be in [0, 1)"),
            (0 <= self.warmup_fraction < 1, "warm-up fraction must be in [0, 1)"),
            (self.early_stopping_patience >= 0, "early-stopping patience cannot be negative"),
        ]
        for ok, message in checks:
            if not ok:
                raise GlassboxError(message)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise GlassboxError(f"unknown config keys: {', '.join(unknown)}")
        if "dataset_id" not in data:
            raise GlassboxError("config has no dataset_id")
        return cls(**data).validate()

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise GlassboxError(f"cannot read config {path}: {exc}") from None
        if not isinstance(data, dict):
            raise GlassboxError(f"config {path} is not a JSON object")
        return cls.from_dict(data)

    def updated(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes).validate()
