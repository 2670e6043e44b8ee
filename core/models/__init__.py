"""Models: one backbone family per modality, behind one entry point (`create_model`).

A family lists its curated backbones (with whether weights are available on this machine), builds
a model with a classification head for a run's config, and decides which parameters train in each
transfer-learning mode. Families register themselves by modality in `FAMILIES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from torch import nn

from core.config import TrainConfig
from core.registry import Registry


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    modality: str
    params_m: float | None  # millions of parameters, None when unknown without building it
    input_size: int | None  # native image size, or max tokens for text
    weights: str  # where pretrained weights would come from now: "pip package", "local cache", "hub", "none"
    note: str = ""


class BackboneFamily(Protocol):
    modality: str

    def catalog(self) -> list[BackboneInfo]:
        """The short curated list the UI offers first."""

    def describe(self, name: str) -> BackboneInfo:
        """Any backbone name a user types; GlassboxError when the family does not know it."""

    def create(self, config: TrainConfig, num_classes: int, cache_dir: Path) -> nn.Module:
        """A model with a fresh `num_classes` head, pretrained per `config.weights`
        ("auto": best local source then the hub; "none": from scratch; else a weights file path).
        GlassboxError, naming the way out (train from scratch, upload weights), when none is found."""

    def param_groups(self, model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
        """Freeze per `config.mode` and return optimizer groups (head at lr, backbone at
        lr * backbone_lr_scale)."""

    def embed(self, model: nn.Module, inputs: Any) -> Any:
        """Pre-logits features; with `head(model)` this lets a frozen backbone be run once per item."""

    def head(self, model: nn.Module) -> nn.Module:
        """The classification head, which maps `embed` output to logits."""


FAMILIES: Registry[BackboneFamily] = Registry("backbone family")


def family(modality: str) -> BackboneFamily:
    _load_families()
    return FAMILIES.get(modality)


def create_model(config: TrainConfig, num_classes: int, cache_dir: Path) -> nn.Module:
    return family(config.modality).create(config, num_classes, cache_dir)


def _load_families() -> None:
    # imported for their registration side effect; kept lazy so listing runs is not slowed by timm
    from core.models import text, vision  # noqa: F401
