"""Images as tensors for a model: timm's preprocessing for the model, augmentation presets, and every
image of a dataset decoded once per input size into a memory-mapped cache kept beside the dataset.

Kept apart from `images` (ingest and validation) so that validating an upload never imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import timm.data
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from core.config import TrainConfig
from core.data.base import PhaseProgress, Split
from core.data.pictures import DecodedImages

Transform = Callable[[Image.Image], torch.Tensor]

# DataLoader worker processes per loader: the transforms of one batch run while the model trains on the
# previous one; one core is left to the training process itself.
_LOADER_WORKERS = min(8, (os.cpu_count() or 1) - 1)
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
    dataset_dir: Path, items: list[str], labels: list[int], config: TrainConfig, split: Split, model: nn.Module,
    progress: PhaseProgress | None = None,
) -> tuple[Dataset, Dataset]:
    """Train and validation datasets of the dataset's images (`items`: paths under `dataset_dir`, in item
    order) read from its decode cache at the run's input size (`DecodedImages`, built on first use, its
    count told to `progress`): decoding full-size photos, not the transforms, dominated an epoch, and was
    repeated every epoch."""
    decoded = DecodedImages.open(Path(dataset_dir), items, config.image_size, progress)

    def subset(indices: list[int], transform: Transform) -> _ImageDataset:
        return _ImageDataset(decoded, indices, [labels[i] for i in indices], transform)

    return subset(split.train, _train_transform(model, config)), subset(split.val, eval_transform(model, config))


def eval_transform(model: nn.Module, config: TrainConfig) -> Transform:
    """The model's own normalisation and interpolation at the configured size. crop_pct 1.0: no
    ImageNet-style border trim, which would cut off objects in small user images; non-square images
    are still resized on their short side and centre-cropped. Validation, prediction and
    explanations share it so they all see the same pixels."""
    return timm.data.create_transform(**_data_config(model, config), is_training=False)


class _ImageDataset(Dataset):
    loader_workers = _LOADER_WORKERS  # read by the training loop's DataLoader

    def __init__(self, decoded: DecodedImages, indices: list[int], labels: list[int], transform: Transform) -> None:
        self._decoded = decoded
        self._indices = indices
        self._labels = labels
        self._transform = transform

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self._transform(self._decoded[self._indices[index]]), self._labels[index]


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
