"""The images family: any timm backbone, with a short curated list that the UI offers first.

Transfer learning for images lives here (the groups and learning rates every family shares are in
`core.models.param_groups`): which stages "partial" fine-tuning trains, and how a frozen backbone is
kept truly frozen (BatchNorm statistics included), so that its features can be computed once per image
and only the head trained on them.
"""

from __future__ import annotations

import difflib
import functools
import math
from pathlib import Path
from typing import Any

import timm
import torch
from timm.models import get_pretrained_cfg, group_parameters
from torch import nn

from core import models
from core.config import TrainConfig
from core.errors import GlassboxError
from core.models import FAMILIES, BackboneInfo, weights

# name -> why someone would pick it; efficientnet_lite1 is offered only when its weights ship via pip
_CURATED: dict[str, str] = {
    "efficientnet_lite0": "small and fast, a good first choice; its ImageNet weights ship with Glassbox",
    "efficientnet_lite1": "a little larger and more accurate than Lite0; weights ship with Glassbox",
    "resnet18": "classic small CNN, a dependable baseline",
    "resnet50": "classic mid-size CNN, more accurate and slower than resnet18",
    "mobilenetv3_large_100": "designed for phones, quick on a CPU",
    "convnext_tiny": "modern CNN, strong accuracy, slower to train",
    "vit_small_patch16_224": "vision transformer; prefers larger datasets",
}
_PIP_ONLY = {"efficientnet_lite1"}
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
# share of the backbone's coarse stages (stem, blocks...) that "partial" fine-tuning trains, from the top
_PARTIAL_SHARE = 1 / 3


class TimmFamily:
    """Image classifiers from timm, pretrained per `core.models.weights`."""

    modality = "images"

    def catalog(self) -> list[BackboneInfo]:
        return [
            _info(name, note)
            for name, note in _CURATED.items()
            if name not in _PIP_ONLY or weights.locate(name).kind == "pip package"
        ]

    def describe(self, name: str) -> BackboneInfo:
        _check_known(name)
        return _info(name, _CURATED.get(name, ""))

    def create(self, config: TrainConfig, num_classes: int, cache_dir: Path,
               inputs: dict[str, Any] | None = None) -> nn.Module:
        _check_known(config.backbone)
        source = weights.resolve(config.backbone, config.weights)
        return weights.build(
            config.backbone,
            source,
            num_classes,
            cache_dir,
            **_size_kwargs(config.backbone, config.image_size),
        )

    def param_groups(self, model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
        """Optimizer groups for `config.mode` (see `core.models.param_groups`), freezing everything else.

        Frozen BatchNorm layers also stop updating their running statistics, even after
        `model.train()`: otherwise a "frozen" backbone would still drift with every batch, and features
        computed once per image would no longer match what the model computes. Calling this again
        (another mode) first undoes the previous freezing."""
        _unfreeze_norm_stats(model)
        classifier = model.get_classifier()
        groups = models.param_groups(model, config, classifier, lambda: _partial_trainable(model, classifier))
        _freeze_norm_stats(model)
        return groups

    def embed(self, model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        return model.forward_head(model.forward_features(inputs), pre_logits=True)

    def head(self, model: nn.Module) -> nn.Module:
        return model.get_classifier()


def _check_known(name: str) -> None:
    """Accept any timm architecture, with or without a pretrained tag ("resnet18.a1_in1k"), and
    suggest the nearest names for a typo."""
    arch, _, tag = name.partition(".")
    if timm.is_model(arch):
        tagged = timm.list_pretrained(f"{arch}.*")
        if not tag or name in tagged:
            return
        candidates = tagged
    else:
        candidates = timm.list_models()
    close = difflib.get_close_matches(name.lower(), candidates, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; any timm model name works"
    raise GlassboxError(f"unknown image backbone {name!r}{hint}")


def _info(name: str, note: str) -> BackboneInfo:
    cfg = get_pretrained_cfg(name)
    input_size = cfg.input_size[-1] if cfg is not None and cfg.input_size else None
    return BackboneInfo(
        name=name,
        modality=TimmFamily.modality,
        params_m=_params_m(name),
        input_size=input_size,
        weights=weights.locate(name).kind,
        note=note,
    )


@functools.cache
def _params_m(name: str) -> float | None:
    """Parameter count from a model built on the meta device: no memory, no weights, a few ms."""
    try:
        with torch.device("meta"):
            model = timm.create_model(name)
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        # a few exotic architectures cannot be built without real tensors; their size is then unknown
        return None
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 1)


def _size_kwargs(name: str, image_size: int) -> dict[str, Any]:
    """Transformers are built for one input size; resize their position embeddings to the run's size.
    Convolutional models take any size as-is."""
    cfg = get_pretrained_cfg(name)
    if cfg is None or not cfg.fixed_input_size or cfg.input_size[-1] == image_size:
        return {}
    return {"img_size": image_size}


def _partial_trainable(model: nn.Module, classifier: nn.Module) -> set[str]:
    """The head's coarse group (the classifier and whatever sits right before it, such as a final norm)
    plus the last third of the backbone's coarse groups: the most task-specific features."""
    head_ids = {id(p) for p in classifier.parameters()}
    try:
        groups = group_parameters(model, model.group_matcher(coarse=True))
    except (AttributeError, NotImplementedError):
        raise GlassboxError(
            f"partial fine-tuning is not supported for {type(model).__name__}: use head or full"
        ) from None
    params = dict(model.named_parameters())
    head_groups = [names for names in groups.values() if any(id(params[n]) in head_ids for n in names)]
    body = [names for names in groups.values() if names not in head_groups]
    tail = body[len(body) - math.ceil(len(body) * _PARTIAL_SHARE) :]
    return {name for names in head_groups + tail for name in names}


def _stay_in_eval(module: nn.Module, _inputs: tuple[Any, ...]) -> None:
    # runs before every forward, so a later model.train() cannot turn statistics updates back on;
    # a module-level function (not a closure) keeps the model picklable and deep-copyable
    module.training = False


def _freeze_norm_stats(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, _BATCH_NORMS) and not any(p.requires_grad for p in module.parameters()):
            module.register_forward_pre_hook(_stay_in_eval)


def _unfreeze_norm_stats(model: nn.Module) -> None:
    """Undo `_freeze_norm_stats`, so that a mode training these layers again also updates their statistics."""
    for module in model.modules():
        hooks = module._forward_pre_hooks
        for key in [key for key, hook in hooks.items() if hook is _stay_in_eval]:
            del hooks[key]


FAMILIES.register("images")(TimmFamily())
