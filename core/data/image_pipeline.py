"""Images as tensors for a model: timm's preprocessing for the model, augmentation presets, and
decoded images kept in memory when they fit.

Kept apart from `images` (ingest and validation) so that validating an upload never imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import timm.data
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from core.config import TrainConfig
from core.data.base import Split
from core.data.images import load_image

Transform = Callable[[Image.Image], torch.Tensor]

_MEMORY_BUDGET = 1 << 30  # decoded RGB bytes under which a dataset is kept in memory
_WORKERS = min(4, os.cpu_count() or 1)
_AUGMENTATIONS: dict[str, dict[str, Any]] = {
    "light": {"scale": (0.8, 1.0), "hflip": 0.5, "color_jitter": None},
    "medium": {"scale": (0.5, 1.0), "hflip": 0.5, "color_jitter": 0.2},
    "strong": {
        "scale": (0.25, 1.0),
        "hflip": 0.5,
        "color_jitter": None,
        "auto_augment": "rand-m9-mstd0.5",
        "re_prob": 0.25,
    },
}



def datasets(
    paths: list[Path], labels: list[int], info: dict[str, Any], config: TrainConfig, split: Split, model: nn.Module
) -> tuple[Dataset, Dataset]:
    """Decoded images are shared by both datasets when they fit in memory: decoding (not the
    transforms) dominates a small dataset's epoch, and it would be repeated every epoch."""
    used = sorted(set(split.train) | set(split.val))
    cache: dict[int, Image.Image] | None = None
    if int(info["size"]["total_pixels"]) * 3 <= _MEMORY_BUDGET:
        with ThreadPoolExecutor(_WORKERS) as pool:
            cache = dict(zip(used, pool.map(load_image, [paths[i] for i in used]), strict=True))

    def subset(indices: list[int], transform: Transform) -> _ImageDataset:
        images = [cache[i] for i in indices] if cache is not None else None
        return _ImageDataset([paths[i] for i in indices], [labels[i] for i in indices], transform, images)

    train = subset(split.train, _train_transform(model, config))
    return train, subset(split.val, eval_transform(model, config))


def eval_transform(model: nn.Module, config: TrainConfig) -> Transform:
    """The model's own normalisation and interpolation at the configured size. crop_pct 1.0: no
    ImageNet-style border trim, which would cut off objects in small user images; non-square images
    are still resized on their short side and centre-cropped. Validation, prediction and
    explanations share it so they all see the same pixels."""
    return timm.data.create_transform(**_data_config(model, config), is_training=False)


class _ImageDataset(Dataset):
    def __init__(
        self, paths: list[Path], labels: list[int], transform: Transform, images: list[Image.Image] | None
    ) -> None:
        self._paths = paths
        self._labels = labels
        self._transform = transform
        self._images = images

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self._images[index] if self._images is not None else load_image(self._paths[index])
        return self._transform(image), self._labels[index]


def _data_config(model: nn.Module, config: TrainConfig) -> dict[str, Any]:
    data_config = timm.data.resolve_data_config(model=model)
    data_config["input_size"] = (3, config.image_size, config.image_size)
    data_config["crop_pct"] = 1.0
    return data_config


def _train_transform(model: nn.Module, config: TrainConfig) -> Transform:
    preset = _AUGMENTATIONS.get(config.augmentation)
    if preset is None:  # "none"
        return eval_transform(model, config)
    return timm.data.create_transform(**_data_config(model, config), is_training=True, **preset)
