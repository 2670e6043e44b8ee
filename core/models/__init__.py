"""Models: one backbone family per modality, behind one entry point (`create_model`).

A family lists its curated backbones (with whether weights are available on this machine), builds
a model with a classification head for a run's config, and decides which parameters train in each
transfer-learning mode. Families register themselves by modality in `FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.config import TrainConfig
from core.registry import Registry

if TYPE_CHECKING:  # torch stays out of light imports (validation reads `shipped`, the CLI lists backbones)
    from torch import nn


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

    def create(self, config: TrainConfig, num_classes: int, cache_dir: Path,
               inputs: dict[str, Any] | None = None) -> nn.Module:
        """A model with a fresh head of `num_classes` outputs (1 for regression), pretrained per
        `config.weights` ("auto": best local source then the hub; "none": from scratch; else a weights file
        path). `inputs` is the run's fitted input preprocessing (`Modality.fit_inputs`), which sizes a
        table's input layer; families whose input is fixed ignore it.
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


def create_model(config: TrainConfig, num_classes: int, cache_dir: Path,
                 inputs: dict[str, Any] | None = None) -> nn.Module:
    return family(config.modality).create(config, num_classes, cache_dir, inputs)


def param_groups(
    model: nn.Module, config: TrainConfig, head: nn.Module, partial: Callable[[], Iterable[str]]
) -> list[dict[str, Any]]:
    """Freeze per `config.mode` and return the optimizer groups, the part every family shares.

    Families differ only in what "partial" fine-tuning trains (`partial`: the names of the parameters
    it adds to `head`'s, asked for only in that mode), so the rest lives here once: "head" trains
    `head`, "full" everything. Every parameter is made trainable first, so that calling this again
    (another mode) undoes the previous freezing, even when `partial` then refuses the model.

    The backbone trains at lr * backbone_lr_scale, since pretrained features need small steps; from
    scratch there are none to protect, so it trains at lr. Biases, norm weights and whatever the model
    lists in `no_weight_decay()` (timm's position embeddings...) get no weight decay, which would only
    pull them towards zero. Groups are named "head", "backbone" and their "_no_decay" twins, the
    names the run log and the tests read."""
    named = list(model.named_parameters())
    for _, param in named:
        param.requires_grad_(True)
    head_ids = {id(p) for p in head.parameters()}
    if config.mode == "full":
        trainable = {name for name, _ in named}
    else:
        trainable = {name for name, p in named if id(p) in head_ids}
        if config.mode == "partial":
            trainable |= set(partial())
    for name, param in named:
        param.requires_grad_(name in trainable)

    no_decay = set(getattr(model, "no_weight_decay", set)())
    scale = 1.0 if config.weights == "none" else config.backbone_lr_scale
    rates = {"head": config.lr, "backbone": config.lr * scale}
    split: dict[str, list[tuple[str, nn.Parameter]]] = {"head": [], "backbone": []}
    for name, param in named:
        if name in trainable:
            split["head" if id(param) in head_ids else "backbone"].append((name, param))
    groups: list[dict[str, Any]] = []
    for part, members in split.items():
        decayed = [p for n, p in members if not _skips_decay(n, p, no_decay)]
        undecayed = [p for n, p in members if _skips_decay(n, p, no_decay)]
        if decayed:
            groups.append({"name": part, "params": decayed, "lr": rates[part], "weight_decay": config.weight_decay})
        if undecayed:
            groups.append({"name": f"{part}_no_decay", "params": undecayed, "lr": rates[part], "weight_decay": 0.0})
    return groups


def _skips_decay(name: str, param: nn.Parameter, no_decay: set[str]) -> bool:
    return param.ndim <= 1 or name.endswith(".bias") or name in no_decay


def _load_families() -> None:
    # imported for their registration side effect; kept lazy so listing runs is not slowed by timm
    from core.models import sequence, tabular, text, vision  # noqa: F401
