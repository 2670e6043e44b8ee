"""Images as tensors for a model: timm's preprocessing for the model, augmentation presets, and every
image of a dataset decoded once per input size into a memory-mapped cache kept beside the dataset.

On an accelerator the training images are augmented there (`BatchAugment`): loader workers only read the
decode cache and the batch travels as uint8, so Pillow never stands between the disk and a GPU.

Kept apart from `images` (ingest and validation) so that validating an upload never imports torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import timm.data
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from core.config import TrainConfig
from core.data.base import PhaseProgress, Split
from core.data.pictures import DecodedImages, decode_side

Transform = Callable[[Image.Image], torch.Tensor]

# DataLoader worker processes per loader: the transforms of one batch run while the model trains on the
# previous one; one core is left to the training process itself.
_LOADER_WORKERS = min(8, (os.cpu_count() or 1) - 1)
# Devices whose training batches are augmented on the device (`BatchAugment`) rather than image by image
# in Pillow. Not the CPU: there both cost the same cores, and the per-image timm transforms were faster
# (one thread, digits: 887 against 307 images/s at 128 px "light", 137 against 74 at 224 px "medium").
# Not MPS yet: its grid_sample modes were never tried on a Mac.
_BATCH_AUGMENTED = frozenset({"cuda"})
# torchvision's RandomResizedCrop: tries at drawing a crop that fits before falling back to the whole image
_CROP_TRIES = 10
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
    repeated every epoch. The training one turns into uint8 canvases augmented on the device when the
    training loop's loader asks for an accelerator (`for_device`)."""
    decoded = DecodedImages.open(Path(dataset_dir), items, config.image_size, progress)

    def subset(indices: list[int], transform: Transform, augment: BatchAugment | None = None) -> _ImageDataset:
        return _ImageDataset(decoded, indices, [labels[i] for i in indices], transform, augment)

    train = subset(split.train, _train_transform(model, config), BatchAugment.of_preset(model, config))
    return train, subset(split.val, eval_transform(model, config))


def eval_transform(model: nn.Module, config: TrainConfig) -> Transform:
    """The model's own normalisation and interpolation at the configured size. crop_pct 1.0: no
    ImageNet-style border trim, which would cut off objects in small user images; non-square images
    are still resized on their short side and centre-cropped. Validation, prediction and
    explanations share it so they all see the same pixels."""
    return timm.data.create_transform(**_data_config(model, config), is_training=False)


class BatchAugment:
    """Random resized crop, horizontal flip and colour jitter (brightness, contrast, saturation), drawn per
    image and applied to a whole batch of uint8 images on whatever device holds it, then the model's
    normalisation: the augmentations of timm's training transform (`timm.data.create_transform(...,
    is_training=True)` with a preset of `_AUGMENTATIONS`) as one batched resampling (`F.affine_grid` and
    `F.grid_sample`, as spatial transformer networks resample, Jaderberg et al. 2015; kornia's batched
    augmentations work alike) instead of per-image Pillow work in loader processes.

    Crops are drawn as torchvision's `RandomResizedCrop` draws them (Szegedy et al. 2015, "Going deeper
    with convolutions"): an area fraction uniform in `scale` and a log-uniform aspect ratio in `ratio` of
    the image's own pixels, up to `_CROP_TRIES` tries, then the whole image clamped to `ratio`. Drawn in
    the original height and width, so a canvas squashed to a square crops as the image itself would.
    Colour jitter applies brightness, contrast and saturation in that order (torchvision shuffles the order
    per call); timm's `color_jitter=j` is a factor uniform in [1 - j, 1 + j] for each. Random numbers come
    from `generator` (a CPU generator; torch's global one when None) so a seed gives the same batch on
    every device.
    """

    def __init__(self, size: int, scale: tuple[float, float], ratio: tuple[float, float], hflip: float,
                 color_jitter: float | None, mean: Sequence[float], std: Sequence[float],
                 interpolation: str = "bilinear") -> None:
        self.size = size
        self.scale = scale
        self.ratio = ratio
        self.hflip = hflip
        self.color_jitter = color_jitter
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.interpolation = interpolation

    @classmethod
    def of_preset(cls, model: nn.Module, config: TrainConfig) -> BatchAugment | None:
        """The run's augmentation preset done on batches, with the model's normalisation and interpolation;
        None for "none" (the evaluation transform) and for presets whose RandAugment and random erasing
        only timm's per-image transforms do ("strong")."""
        preset = _AUGMENTATIONS.get(config.augmentation)
        if preset is None or set(preset) - {"scale", "hflip", "color_jitter"}:
            return None
        data_config = _data_config(model, config)
        interpolation = "bicubic" if data_config["interpolation"] == "bicubic" else "bilinear"
        return cls(config.image_size, preset["scale"], (3 / 4, 4 / 3), preset["hflip"], preset["color_jitter"],
                   data_config["mean"], data_config["std"], interpolation)

    def __call__(self, pixels: torch.Tensor, shapes: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """pixels: (N, 3, H, W) uint8, on any device; shapes: (N, 2) the (height, width) in pixels each image
        had before it was squashed to the canvas. Returns (N, 3, size, size) float32, normalised, on
        `pixels`' device."""
        n = len(pixels)
        theta = self._crops(shapes.to(torch.float64), generator).to(pixels.device, torch.float32)
        grid = F.affine_grid(theta, [n, 3, self.size, self.size], align_corners=False)
        images = pixels.float().div_(255)
        images = F.grid_sample(images, grid, mode=self.interpolation, padding_mode="border", align_corners=False)
        images = images.clamp_(0, 1)  # bicubic overshoots, as Pillow's clips
        if self.color_jitter:
            low, high = 1 - self.color_jitter, 1 + self.color_jitter
            brightness, contrast, saturation = (
                (torch.rand(n, generator=generator) * (high - low) + low).to(pixels.device).view(n, 1, 1, 1)
                for _ in range(3)
            )
            images = (images * brightness).clamp_(0, 1)
            mean_grey = _grey(images).mean(dim=(2, 3), keepdim=True)
            images = _blend(images, mean_grey, contrast)
            images = _blend(images, _grey(images), saturation)
        return (images - self.mean.to(images.device)) / self.std.to(images.device)

    def _crops(self, shapes: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(N, 2, 3) affine matrices mapping each output's coordinates in [-1, 1] to its crop (flipped or
        not) in the input's, from the (N, 2) original heights and widths."""
        n = len(shapes)
        height, width = shapes[:, :1], shapes[:, 1:]
        log_low, log_high = math.log(self.ratio[0]), math.log(self.ratio[1])
        area = height * width * _uniform((n, _CROP_TRIES), *self.scale, generator)
        aspect = torch.exp(_uniform((n, _CROP_TRIES), log_low, log_high, generator))
        crop_w, crop_h = torch.round(torch.sqrt(area * aspect)), torch.round(torch.sqrt(area / aspect))
        fits = (crop_w > 0) & (crop_w <= width) & (crop_h > 0) & (crop_h <= height)
        first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)
        crop_w, crop_h = crop_w.gather(1, first), crop_h.gather(1, first)
        # none fits: the whole image, cut to the nearest allowed aspect ratio (torchvision's fallback)
        whole_w = torch.where(width / height > self.ratio[1], torch.round(height * self.ratio[1]), width)
        whole_h = torch.where(width / height < self.ratio[0], torch.round(width / self.ratio[0]), height)
        fitted = fits.any(dim=1, keepdim=True)
        crop_w, crop_h = torch.where(fitted, crop_w, whole_w), torch.where(fitted, crop_h, whole_h)
        top = torch.where(fitted, torch.floor(_uniform((n, 1), 0, 1, generator) * (height - crop_h + 1)),
                          torch.floor((height - crop_h) / 2))
        left = torch.where(fitted, torch.floor(_uniform((n, 1), 0, 1, generator) * (width - crop_w + 1)),
                           torch.floor((width - crop_w) / 2))
        flip = torch.where(_uniform((n, 1), 0, 1, generator) < self.hflip, -1.0, 1.0).to(torch.float64)
        theta = torch.zeros(n, 2, 3, dtype=torch.float64)
        theta[:, 0, 0] = (flip * crop_w / width)[:, 0]
        theta[:, 0, 2] = ((2 * left + crop_w) / width - 1)[:, 0]
        theta[:, 1, 1] = (crop_h / height)[:, 0]
        theta[:, 1, 2] = ((2 * top + crop_h) / height - 1)[:, 0]
        return theta


@dataclass(frozen=True)
class DeviceBatch:
    """A batch of training images as uint8 square canvases (N, 3, S, S) with their original (height, width)
    (N, 2), which becomes the model's input on the device it is sent to (`to_device`: copied as uint8, a
    quarter of float32's bytes, then augmented there). The DataLoader pins it through `pin_memory`."""

    pixels: torch.Tensor
    shapes: torch.Tensor
    augment: BatchAugment

    def __len__(self) -> int:
        return len(self.pixels)

    def pin_memory(self) -> DeviceBatch:
        return replace(self, pixels=self.pixels.pin_memory())

    def to_device(self, device: torch.device) -> torch.Tensor:
        """The augmented, normalised (N, 3, size, size) float32 batch on `device`; the copy does not wait
        for the host on CUDA (the loader pinned the pixels)."""
        return self.augment(self.pixels.to(device, non_blocking=device.type == "cuda"), self.shapes)


class _ImageDataset(Dataset):
    loader_workers = _LOADER_WORKERS  # read by the training loop's DataLoader

    def __init__(self, decoded: DecodedImages, indices: list[int], labels: list[int], transform: Transform,
                 augment: BatchAugment | None = None) -> None:
        self._decoded = decoded
        self._indices = indices
        self._labels = labels
        self._transform = transform
        self._augment = augment

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self._transform(self._decoded[self._indices[index]]), self._labels[index]

    def for_device(self, device_type: str) -> Dataset:
        """What the training loop's loader reads for a device of `device_type` ("cuda", "cpu", ...): on an
        accelerator, training images as canvases augmented there (`_Canvases`); else this dataset."""
        if self._augment is None or device_type not in _BATCH_AUGMENTED:
            return self
        return _Canvases(self._decoded, self._indices, self._labels, self._augment)


class _Canvases(Dataset):
    """Training images as `DeviceBatch`es: each image read from the decode cache as uint8, squashed to a
    square of the decoded side (`decode_side(size)`, a little over the input, so crops are rarely enlarged)
    when it is not one already, its original shape kept for the crop's aspect ratio."""

    loader_workers = _LOADER_WORKERS

    def __init__(self, decoded: DecodedImages, indices: list[int], labels: list[int], augment: BatchAugment) -> None:
        self._decoded = decoded
        self._indices = indices
        self._labels = labels
        self._augment = augment
        self._side = decode_side(augment.size)

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, tuple[int, int], int]:
        image = self._decoded[self._indices[index]]
        shape = (image.height, image.width)
        if image.size != (self._side, self._side):
            image = image.resize((self._side, self._side), Image.Resampling.BILINEAR)
        return torch.from_numpy(np.array(image)).permute(2, 0, 1), shape, self._labels[index]

    def collate(self, batch: Sequence[tuple[torch.Tensor, tuple[int, int], int]]) -> tuple[DeviceBatch, torch.Tensor]:
        pixels = torch.stack([pixels for pixels, _, _ in batch])
        shapes = torch.tensor([shape for _, shape, _ in batch], dtype=torch.float64)
        labels = torch.tensor([label for _, _, label in batch], dtype=torch.long)
        return DeviceBatch(pixels, shapes, self._augment), labels


def _uniform(shape: tuple[int, int], low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(shape, generator=generator, dtype=torch.float64) * (high - low) + low


def _grey(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) luma of (N, 3, H, W) RGB in [0, 1], with the ITU-R 601 weights torchvision uses."""
    return (0.299 * images[:, 0:1] + 0.587 * images[:, 1:2] + 0.114 * images[:, 2:3])


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision's `_blend`: factor * images + (1 - factor) * other, kept in [0, 1]."""
    return (factor * images + (1 - factor) * other).clamp_(0, 1)


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
