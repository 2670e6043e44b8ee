"""Captum methods for image classifiers, and the prepared model they all work on (`ImageModel`).

Which model families a method applies to is decided by looking at the model once (`ImageModel.layout`):
a forward pass with hooks records every module's output shape, in execution order. Grad-CAM then runs
on the last channels-first feature map of a CNN, or, for a timm vision transformer, on the patch
tokens entering its last block reshaped to the patch grid; on anything else (windowed or NHWC
transformers, MLP-mixers) it refuses and names the methods that still apply, rather than averaging
gradients over the wrong axis and drawing a plausible-looking but meaningless map.
"""

from __future__ import annotations

import copy
import math
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from captum.attr import (
    GuidedGradCam,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from PIL import Image
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from torchvision.transforms import Normalize
from torchvision.transforms import functional as tvf

from core import tasks
from core.artifacts import RunFiles, load_model, target_state
from core.data.image_pipeline import Transform, eval_transform
from core.errors import GlassboxError
from core.explain import EXPLAINERS, SUBJECTS, ExplainOptions, Progress
from core.registry import Registry

__all__ = ["METHODS", "ImageMethod", "ImageModel", "OcclusionGeometry", "occlusion_geometry"]

_ACTIVATION_MODULES = ("torch.nn.modules.activation", "timm.layers.activations")
# modules in torch.nn.modules.activation that are not element-wise nonlinearities
_NOT_ACTIVATIONS = ("MultiheadAttention", "Softmax", "Softmin", "LogSoftmax", "Softmax2d")
_SEED = 0


@dataclass(frozen=True)
class _Layout:
    """What one probing forward pass learned about a model (see the module docstring)."""

    cam_layer: nn.Module | None
    cam_name: str
    cam_shape: tuple[int, ...]  # (1, channels, h, w) of the Grad-CAM layer's output
    cam_reason: str | None  # why Grad-CAM does not apply, None when it does
    prefix_tokens: int | None  # tokens dropped before reshaping to the grid; None for a CNN
    layers: tuple[str, ...]  # modules holding parameters, in the order the forward pass runs them
    other_activations: tuple[str, ...]  # activation types other than nn.ReLU


class _TokenGridTap(nn.Module):
    """A vision transformer's last block, with its input patch tokens passed through an identity layer
    (`grid`) shaped (batch, channels, h, w).

    Captum's LayerGradCam averages gradients over the dimensions after the channels, which on a token
    sequence (batch, tokens, channels) would be the wrong axis; on `grid` it sees a CNN-like map. The
    block's input is used, not its output: with class-token pooling the patch tokens leaving the last
    block never reach the head, so their gradients are zero. Outputs are unchanged.
    """

    def __init__(self, block: nn.Module, prefix_tokens: int, grid_size: tuple[int, int]) -> None:
        super().__init__()
        self.block = block
        self.grid = nn.Identity()
        self.prefix_tokens = prefix_tokens
        self.grid_size = grid_size
        self.tokens_seen: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.grid_size
        self.tokens_seen = x.shape[1] if x.ndim == 3 else None
        if x.ndim != 3 or x.shape[1] != self.prefix_tokens + h * w:
            return self.block(x)  # the probe reports the mismatch; Grad-CAM is then refused
        prefix, patches = x[:, : self.prefix_tokens], x[:, self.prefix_tokens :]
        grid = self.grid(patches.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w))
        return self.block(torch.cat([prefix, grid.flatten(2).transpose(1, 2)], dim=1))


class ImageModel:
    """A trained image classifier prepared for Captum: a private copy in eval mode, with in-place
    activations turned off (Captum's hooks need each layer's output intact) and parameter gradients
    off (only input and layer gradients are needed, which makes every backward pass cheaper).

    One instance is meant to be kept between explanations (the page caches it); `lock` serialises
    explanations, since Captum registers hooks on the shared model while it works.
    """

    modality = "images"

    def __init__(self, model: nn.Module, classes: list[str], transform: Transform, image_size: int,
                 state: dict[str, Any] | None = None) -> None:
        self.model = _explainable_copy(model)
        self.classes = list(classes)
        # the run's task state (`target.json`): `Task.answers` reads its fitted temperature, so the probabilities
        # shown here are the calibrated ones every other view shows
        self.state = state if state is not None else {"classes": self.classes}
        self.transform = transform
        self.image_size = image_size
        self.lock = threading.RLock()
        self._mean, self._std = _normalisation(transform)
        self._layout: _Layout | None = None

    @classmethod
    def from_run(cls, files: RunFiles, cache_dir: Path) -> ImageModel:
        """A finished run's best model with the exact preprocessing its validation used (`load_model`
        restores the normalisation of the weights the run started from)."""
        model, config, classes = load_model(files, cache_dir)
        if config.modality != "images":
            raise GlassboxError(f"this run's model classifies {config.modality}, not images")
        return cls(model, classes, eval_transform(model, config), config.image_size, target_state(files))

    # ---- inputs ----------------------------------------------------------------------------------
    def tensor(self, image: Image.Image) -> torch.Tensor:
        """A batch of one, preprocessed exactly as validation images were."""
        return self.transform(image).unsqueeze(0)

    def picture(self, inputs: torch.Tensor) -> np.ndarray:
        """The first input as the model sees it (resized, cropped), as H x W x 3 uint8 for overlays, so a
        map and the picture under it line up pixel for pixel."""
        pixels = (inputs[:1].detach() * self._std + self._mean).clamp(0, 1)
        return (pixels[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)

    def black(self, inputs: torch.Tensor) -> torch.Tensor:
        """Black pixels, in the model's normalised units."""
        return ((torch.zeros_like(inputs) - self._mean) / self._std).detach()

    def blurred(self, inputs: torch.Tensor) -> torch.Tensor:
        """The input with its shapes blurred away but its colours kept: a reference input that stays
        close to the data, unlike black."""
        sigma = max(1.0, min(inputs.shape[-2:]) / 16)
        kernel = min(2 * math.ceil(3 * sigma) + 1, 2 * (min(inputs.shape[-2:]) // 2) - 1)
        return tvf.gaussian_blur(inputs.detach(), [kernel, kernel], [sigma, sigma])

    def noise(self, inputs: torch.Tensor) -> torch.Tensor:
        """Uniform random pixels (seeded, so the same input gets the same baseline), normalised."""
        generator = torch.Generator().manual_seed(_SEED)
        pixels = torch.rand(inputs.shape, generator=generator, dtype=inputs.dtype)
        return (pixels - self._mean) / self._std

    @property
    def value_range(self) -> float:
        """How wide [0, 1] pixels are in normalised units: scales noise to the input."""
        return float((1 / self._std).mean())

    # ---- outputs ---------------------------------------------------------------------------------
    def probabilities(self, inputs: torch.Tensor, batch_size: int = 32) -> np.ndarray:
        """Calibrated probabilities (`Task.answers`: softmax(logits / T)), n x classes, computed in batches to bound
        memory."""
        with self.lock, torch.no_grad():
            logits = torch.cat([self.model(part).float() for part in inputs.split(batch_size)])
        return np.asarray(tasks.task("classification").answers(logits, self.state), dtype=np.float64)

    # ---- structure -------------------------------------------------------------------------------
    @property
    def layout(self) -> _Layout:
        with self.lock:
            if self._layout is None:
                self._layout = _probe(self.model, self.image_size)
            return self._layout

    def randomised(self, layers: int, seed: int = _SEED) -> tuple[ImageModel, list[str]]:
        """A copy whose top `layers` parameterised layers (the last ones the forward pass runs: the head
        first) are re-initialised: the model-parameter randomisation test of Adebayo et al. (2018).
        Returns the copy and the names of the layers it randomised."""
        names = list(self.layout.layers[-layers:]) if layers > 0 else []
        clone = copy.copy(self)
        clone.model = copy.deepcopy(self.model)
        clone.lock = threading.RLock()
        clone._layout = None
        modules = dict(clone.model.named_modules())
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(seed)
            for name in names:
                _reinitialise(modules[name])
        return clone, names


@dataclass(frozen=True)
class ImageMethod:
    """One registered explanation method: `run` computes maps, `check` says when it cannot apply."""

    name: str
    title: str
    description: str
    run: Callable[[ImageModel, torch.Tensor, int, ExplainOptions, Progress | None], tuple[torch.Tensor, list[str]]]
    check: Callable[[ImageModel], str | None]

    def unavailable(self, subject: ImageModel) -> str | None:
        return self.check(subject)

    def attribute(
        self, subject: ImageModel, inputs: torch.Tensor, target: int, options: ExplainOptions,
        progress: Progress | None,
    ) -> tuple[torch.Tensor, list[str]]:
        with torch.enable_grad():
            return self.run(subject, inputs.detach(), target, options, progress)


METHODS: Registry[ImageMethod] = Registry("image explanation method")
EXPLAINERS.register("images")(METHODS)  # type: ignore[arg-type]  # ImageMethod implements Explainer
SUBJECTS.register("images")(ImageModel.from_run)


def _always(_: ImageModel) -> str | None:
    return None


def _cam_reason(subject: ImageModel) -> str | None:
    return subject.layout.cam_reason


def _guided_reason(subject: ImageModel) -> str | None:
    layout = subject.layout
    if layout.cam_reason is not None:
        return layout.cam_reason
    if layout.prefix_tokens is not None:
        return "guided backpropagation is defined for convolutional networks, not transformers"
    if layout.other_activations:
        # Captum's guided backpropagation only overrides nn.ReLU: other activations would pass plain
        # gradients and give a map that is neither guided nor plain
        uses = ", ".join(layout.other_activations)
        return f"it needs a model whose activations are all ReLU, and this one uses {uses}"
    return None


def _register(name: str, title: str, description: str,
              check: Callable[[ImageModel], str | None] = _always) -> Callable[[Any], Any]:
    def add(run: Any) -> Any:
        METHODS.register(name)(ImageMethod(name, title, description, run, check))
        return run

    return add


# ---- methods ----------------------------------------------------------------------------------------


@_register("gradcam", "Grad-CAM",
           "Regions of the last feature map that raise the class score (coarse, class-specific).", _cam_reason)
def _grad_cam(subject: ImageModel, inputs: torch.Tensor, target: int, options: ExplainOptions,
              progress: Progress | None) -> tuple[torch.Tensor, list[str]]:
    layout = subject.layout
    cam = LayerGradCam(subject.model, layout.cam_layer).attribute(inputs, target=target, relu_attributions=True)
    maps = LayerAttribution.interpolate(cam, tuple(inputs.shape[-2:]), interpolate_mode="bilinear")[:, 0]
    _, channels, h, w = layout.cam_shape
    where = (f"the {h}x{w} patch-token grid entering {layout.cam_name} ({layout.prefix_tokens} prefix token(s) "
             f"dropped)" if layout.prefix_tokens is not None else f"{layout.cam_name} ({h}x{w}, {channels} channels)")
    notes = [f"Grad-CAM on {where}, ReLU applied, upsampled to {inputs.shape[-2]}x{inputs.shape[-1]}."]
    if float(cam.detach().max()) <= 0:
        notes.append("The map is empty: no region of this layer raises the score of this class.")
    return maps, notes


@_register("saliency", "Saliency", "How strongly each pixel's small change moves the class score.")
def _saliency(subject: ImageModel, inputs: torch.Tensor, target: int, options: ExplainOptions,
              progress: Progress | None) -> tuple[torch.Tensor, list[str]]:
    grads = Saliency(subject.model).attribute(inputs.requires_grad_(), target=target, abs=True)
    return grads.amax(dim=1), ["Absolute gradient of the class score, largest over the colour channels."]


@_register("ig", "Integrated Gradients",
           "Each pixel's share of the score's change from a reference image to this one.")
def _integrated_gradients(subject: ImageModel, inputs: torch.Tensor, target: int, options: ExplainOptions,
                          progress: Progress | None) -> tuple[torch.Tensor, list[str]]:
    baseline = {"black": subject.black, "blurred": subject.blurred, "noise": subject.noise}[options.ig_baseline](inputs)
    batches = math.ceil(options.ig_steps * inputs.shape[0] / options.internal_batch_size)
    forward = _Counted(subject.model, batches * (options.smoothgrad_samples if options.smoothgrad else 1), progress)
    ig = IntegratedGradients(forward)
    kwargs = dict(baselines=baseline, target=target, n_steps=options.ig_steps,
                  internal_batch_size=options.internal_batch_size)
    if options.smoothgrad:
        with _seeded():
            attr = NoiseTunnel(ig).attribute(
                inputs, nt_type="smoothgrad", nt_samples=options.smoothgrad_samples, nt_samples_batch_size=1,
                stdevs=options.smoothgrad_stdev * subject.value_range, **kwargs,
            )
        notes = [f"Integrated Gradients from a {options.ig_baseline} image in {options.ig_steps} steps, averaged "
                 f"over {options.smoothgrad_samples} noisy copies (SmoothGrad, noise {options.smoothgrad_stdev:.0%})."]
    else:
        attr, delta = ig.attribute(inputs, return_convergence_delta=True, **kwargs)
        with torch.no_grad():
            change = subject.model(inputs)[:, target] - subject.model(baseline)[:, target]
        gap = float(delta.abs().max()) / max(float(change.abs().max()), 1e-6)
        notes = [f"Integrated Gradients from a {options.ig_baseline} image in {options.ig_steps} steps; the map "
                 f"sums to the score change within {gap:.1%}" + (" (use more steps)." if gap > 0.05 else ".")]
    return attr.sum(dim=1), notes


@_register("occlusion", "Occlusion",
           "How much the class score drops when a square of the image is greyed out.")
def _occlusion(subject: ImageModel, inputs: torch.Tensor, target: int, options: ExplainOptions,
               progress: Progress | None) -> tuple[torch.Tensor, list[str]]:
    geometry = occlusion_geometry(tuple(inputs.shape[-2:]), options)
    forward = _Counted(subject.model, geometry.forward_passes * inputs.shape[0], progress)
    channels = inputs.shape[1]
    attr = Occlusion(forward).attribute(
        inputs, sliding_window_shapes=(channels, geometry.window, geometry.window),
        strides=(channels, geometry.stride, geometry.stride), baselines=0.0, target=target,
        perturbations_per_eval=options.internal_batch_size,
    )
    notes = [f"A {geometry.window} px square every {geometry.stride} px replaced by the mean colour: "
             f"{geometry.positions} positions in {geometry.forward_passes} forward passes."]
    if geometry.uncovered:
        notes.append(f"The last {geometry.uncovered} px at the right and bottom are covered by no square (map 0 "
                     "there): pick a stride that divides the image size minus the window.")
    return attr.mean(dim=1), notes


@_register("guided_gradcam", "Guided Grad-CAM",
           "Grad-CAM's regions sharpened to pixel detail by guided backpropagation.", _guided_reason)
def _guided_grad_cam(subject: ImageModel, inputs: torch.Tensor, target: int, options: ExplainOptions,
                     progress: Progress | None) -> tuple[torch.Tensor, list[str]]:
    layout = subject.layout
    with warnings.catch_warnings():
        # Captum announces, every time, that it hooks the ReLUs (and removes the hooks afterwards)
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        attr = GuidedGradCam(subject.model, layout.cam_layer).attribute(inputs.requires_grad_(), target=target,
                                                                        interpolate_mode="bilinear")
    return attr.abs().amax(dim=1), [f"Guided backpropagation times Grad-CAM on {layout.cam_name}, absolute, "
                                    "largest over the colour channels."]


# ---- occlusion geometry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OcclusionGeometry:
    """Occlusion's cost is set by its window and stride: shown to the user before they start it."""

    window: int
    stride: int
    positions: int
    forward_passes: int
    uncovered: int  # pixels at the right/bottom edge no window reaches


def occlusion_geometry(size: tuple[int, int] | int, options: ExplainOptions) -> OcclusionGeometry:
    """Defaults scale with the image: an eighth of its side, half-overlapping, so 15 x 15 positions when the
    side is a multiple of 16."""
    height, width = (size, size) if isinstance(size, int) else size
    side = min(height, width)
    window = min(options.occlusion_window or max(1, side // 8), side)
    stride = options.occlusion_stride or max(1, window // 2)
    rows, cols = (height - window) // stride + 1, (width - window) // stride + 1
    positions = rows * cols
    uncovered = max((height - window) % stride, (width - window) % stride)
    # one unperturbed pass, then the positions in batches of internal_batch_size
    passes = 1 + math.ceil(positions / options.internal_batch_size)
    return OcclusionGeometry(window, stride, positions, passes, uncovered)


# ---- helpers ----------------------------------------------------------------------------------------


class _Counted(nn.Module):
    """The model, reporting the share of its expected forward passes done: progress for the methods whose
    cost is many passes (occlusion, Integrated Gradients). A module, so Captum treats it as the model."""

    def __init__(self, model: nn.Module, expected: int, progress: Progress | None) -> None:
        super().__init__()
        self.model = model
        self.expected = max(1, expected)
        self.progress = progress
        self.calls = 0

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.model(inputs)
        self.calls += 1
        if self.progress is not None:
            self.progress(min(1.0, self.calls / self.expected))
        return out


@contextmanager
def _seeded() -> Iterator[None]:
    """The same input gives the same noisy map, without touching the caller's random state."""
    with torch.random.fork_rng():
        torch.manual_seed(_SEED)
        yield


def _explainable_copy(model: nn.Module) -> nn.Module:
    # channels_last: about 1.4x faster Integrated Gradients for EfficientNet-Lite0 on 2 CPU cores
    clone = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)
    for module in clone.modules():
        if isinstance(getattr(module, "inplace", None), bool):
            module.inplace = False
    for param in clone.parameters():
        param.requires_grad_(False)
    return clone


def _normalisation(transform: Transform) -> tuple[torch.Tensor, torch.Tensor]:
    for step in getattr(transform, "transforms", [transform]):
        if isinstance(step, Normalize):
            mean = torch.as_tensor(step.mean, dtype=torch.float32).view(1, -1, 1, 1)
            std = torch.as_tensor(step.std, dtype=torch.float32).view(1, -1, 1, 1)
            return mean, std
    raise ValueError("the model's preprocessing has no Normalize step")


def _probe(model: nn.Module, image_size: int) -> _Layout:
    """One forward pass with a hook on every module, recording output shapes in execution order."""
    if (isinstance(model, VisionTransformer) and isinstance(model.blocks, nn.Sequential) and len(model.blocks)
            and not isinstance(model.blocks[-1], _TokenGridTap)):
        grid = tuple(int(v) for v in model.patch_embed.grid_size)
        model.blocks[-1] = _TokenGridTap(model.blocks[-1], model.num_prefix_tokens, grid)
    records: list[tuple[str, nn.Module, tuple[int, ...] | None]] = []

    def record(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
            records.append((name, module, tuple(output.shape) if isinstance(output, torch.Tensor) else None))

        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in model.named_modules()]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, image_size, image_size))
    finally:
        for handle in handles:
            handle.remove()

    seen: dict[str, None] = {}
    for name, module, _ in records:
        if name and any(True for _ in module.parameters(recurse=False)):
            seen.setdefault(name, None)
    others = sorted({type(m).__name__ for m in model.modules() if _is_activation(m) and not isinstance(m, nn.ReLU)})
    cam = _tokens_cam(model, records) if isinstance(model, VisionTransformer) else _conv_cam(model, records)
    return _Layout(*cam, layers=tuple(seen), other_activations=tuple(others))


def _tokens_cam(
    model: VisionTransformer, records: list[tuple[str, nn.Module, tuple[int, ...] | None]]
) -> tuple[nn.Module | None, str, tuple[int, ...], str | None, int | None]:
    tap = model.blocks[-1] if isinstance(model.blocks, nn.Sequential) and len(model.blocks) else None
    if not isinstance(tap, _TokenGridTap):
        return None, "", (), "this vision transformer has no sequence of blocks to take a token grid from", None
    name = next((n for n, m, _ in records if m is tap.block), "the last block")
    h, w = tap.grid_size
    shape = next((s for _, m, s in records if m is tap.grid and s is not None), None)
    if shape is None:
        return None, name, (), (f"its {tap.tokens_seen} tokens do not form a {h}x{w} patch grid plus "
                                f"{tap.prefix_tokens} prefix token(s)"), None
    return tap.grid, name.removesuffix(".block"), shape, None, tap.prefix_tokens


def _conv_cam(
    model: nn.Module, records: list[tuple[str, nn.Module, tuple[int, ...] | None]]
) -> tuple[nn.Module | None, str, tuple[int, ...], str | None, int | None]:
    """The last module whose output is a spatial map (4-D, more than one position on each side)."""
    spatial = [i for i, (_, _, s) in enumerate(records) if s is not None and len(s) == 4 and s[2] > 1 and s[3] > 1]
    if not spatial:
        return None, "", (), "it has no spatial feature map (every layer's output is 1x1 or flat)", None
    index = spatial[-1]
    name, module, shape = records[index]
    assert shape is not None
    if any(s is not None and len(s) == 3 and s[1] > 1 for _, _, s in records[index + 1:]):
        return None, name, shape, ("its last feature map is followed by token mixing (a transformer), so that "
                                   "map's gradients do not show where the decision was made"), None
    features = getattr(model, "num_features", None)
    if isinstance(features, int) and shape[1] != features:
        return None, name, shape, (f"its last feature map ({name}, shape {'x'.join(map(str, shape[1:]))}) is not "
                                   f"laid out channels-first with its {features} features"), None
    return module, name or type(model).__name__, shape, None, None


def _is_activation(module: nn.Module) -> bool:
    kind = type(module)
    return kind.__module__.startswith(_ACTIVATION_MODULES) and kind.__name__ not in _NOT_ACTIVATIONS


def _reinitialise(module: nn.Module) -> None:
    """The layer's own initialisation where it has one; small Gaussian weights otherwise (timm's
    layer-scale and token parameters)."""
    reset = getattr(module, "reset_parameters", None)
    if callable(reset):
        reset()
        return
    for param in module.parameters(recurse=False):
        nn.init.normal_(param, std=0.02)
