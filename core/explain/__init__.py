"""Explanations: which parts of an input a trained model's decision rests on, and how far to trust that.

Methods live in one registry per modality (`EXPLAINERS["images"]` holds saliency, Integrated Gradients,
Grad-CAM...), so text, tables and time series plug in later as one module each, and the pages and the
CLI list what the registry holds. Within a modality a method says for which model families it applies
(`Explainer.unavailable`): Grad-CAM runs on a CNN's last feature map or a vision transformer's token
grid, and refuses, with the reason and the alternatives, where neither exists, rather than draw a
silently wrong map.

Every method explains the target class's score (its logit) and returns one map over the input's
positions (H x W for an image), so faithfulness measures (`core.explain.faithfulness`) and rendering
(`core.explain.rendering`) treat all methods alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from core.errors import GlassboxError
from core.registry import Registry

if TYPE_CHECKING:  # torch stays out of light imports (the CLI's parser, listing methods)
    from pathlib import Path

    import torch

    from core.artifacts import RunFiles

__all__ = [
    "BASELINES", "EXPLAINERS", "SUBJECTS", "ExplainOptions", "Explainable", "Explainer", "Explanation", "Progress",
    "class_answer", "explain", "load_subject", "method_registry", "methods", "resolve_target",
]

Progress = Callable[[float], None]
"""Called with the fraction done (0..1) by methods whose cost grows with their settings (occlusion)."""

BASELINES = ("black", "blurred", "noise")
"""Integrated Gradients' reference inputs: what "no evidence" looks like for this image."""


@dataclass(frozen=True)
class ExplainOptions:
    """Settings of every method in one place, so a page, the CLI and the faithfulness checks (which
    re-run a method on perturbed inputs) pass the same object around. Pixel sizes are in the model's
    input resolution; `None` means "a default that scales with the image size"."""

    ig_steps: int = 32
    ig_baseline: str = "black"
    smoothgrad: bool = False
    smoothgrad_samples: int = 8
    smoothgrad_stdev: float = 0.15  # noise standard deviation, as a fraction of the input's value range
    occlusion_window: int | None = None
    occlusion_stride: int | None = None
    # inputs per forward/backward pass inside a method: bounds memory on large images and long IG runs
    internal_batch_size: int = 16

    def validate(self) -> ExplainOptions:
        checks = [
            (2 <= self.ig_steps <= 1024, "Integrated Gradients steps must be between 2 and 1024"),
            (self.ig_baseline in BASELINES, f"baseline must be one of {', '.join(BASELINES)}"),
            (1 <= self.smoothgrad_samples <= 256, "SmoothGrad samples must be between 1 and 256"),
            (0 < self.smoothgrad_stdev <= 1, "SmoothGrad noise must be in (0, 1]"),
            (self.occlusion_window is None or self.occlusion_window >= 1, "occlusion window must be at least 1"),
            (self.occlusion_stride is None or self.occlusion_stride >= 1, "occlusion stride must be at least 1"),
            (1 <= self.internal_batch_size <= 1024, "internal batch size must be between 1 and 1024"),
        ]
        for ok, message in checks:
            if not ok:
                raise GlassboxError(message)
        return self


@dataclass(frozen=True)
class Explanation:
    """One map for one input and one target class.

    `attribution` is H x W float32 at the model input's resolution: positive values are evidence for
    the target, negative values (Integrated Gradients, occlusion) evidence against it. `notes` say
    what was actually computed (layer, grid, convergence), in words a user can check.
    """

    method: str
    target: int
    attribution: np.ndarray
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)


class Explainable(Protocol):
    """A trained model prepared for explaining (a copy in eval mode, for one modality)."""

    modality: str
    classes: list[str]
    lock: threading.RLock  # Captum registers hooks on the model: one explanation at a time per model


class Explainer(Protocol):
    name: str  # registry key, also the CLI's --method value
    title: str  # shown in the UI
    description: str  # one line: what the map shows

    def unavailable(self, subject: Any) -> str | None:
        """Why this method cannot explain `subject` (its model family), or None when it can."""

    def attribute(
        self, subject: Any, inputs: torch.Tensor, target: int, options: ExplainOptions, progress: Progress | None
    ) -> tuple[torch.Tensor, list[str]]:
        """Maps (batch x positions) for `inputs` (a batch) and notes on how they were made."""


EXPLAINERS: Registry[Registry[Explainer]] = Registry("explanation modality")
SUBJECTS: Registry[Callable[[RunFiles, Path], Explainable]] = Registry("explainable modality")
"""How each modality loads a finished run's model for explaining (`ImageModel.from_run`...)."""


def method_registry(modality: str, load: Callable[[RunFiles, Path], Explainable],
                    method: Callable[[str, str, str, Callable[..., Any]], Explainer],
                    ) -> tuple[Registry[Any], Callable[[str, str, str], Callable[[Any], Any]]]:
    """A modality's explanation methods in one call: its registry (registered in `EXPLAINERS`), its subject
    loader registered in `SUBJECTS`, and the decorator that registers a method function under a name, title and
    description, wrapped by `method(name, title, description, function)` (the modality's Explainer class).

    Used as `METHODS, _register = method_registry("text", TextModel.from_run, TextMethod)`, then
    `@_register("ig", "Integrated Gradients", "...")` above each method."""
    registry: Registry[Any] = Registry(f"{modality} explanation method")
    EXPLAINERS.register(modality)(registry)
    SUBJECTS.register(modality)(load)

    def register(name: str, title: str, description: str) -> Callable[[Any], Any]:
        def add(run: Any) -> Any:
            registry.register(name)(method(name, title, description, run))
            return run

        return add

    return registry, register


def methods(modality: str) -> Registry[Explainer]:
    """The methods for a modality, in the order the UI offers them."""
    _load_modalities()
    if modality not in EXPLAINERS:
        raise GlassboxError(f"explanations for {modality} models are not available yet")
    return EXPLAINERS.get(modality)


def load_subject(files: RunFiles, cache_dir: Path) -> Explainable:
    """A finished run's model, prepared for explaining by its modality's loader: pages and the CLI need
    not know which modalities exist."""
    from core.config import TrainConfig

    modality = TrainConfig.load(files.config).modality
    _load_modalities()
    if modality not in SUBJECTS:
        raise GlassboxError(f"explanations for {modality} models are not available yet")
    return SUBJECTS.get(modality)(files, cache_dir)


def explain(
    subject: Explainable,
    inputs: torch.Tensor,
    target: int,
    method: str,
    options: ExplainOptions | None = None,
    progress: Progress | None = None,
) -> Explanation:
    """Explain `subject`'s score for class `target` on one input (a batch of one).

    A method that does not apply to this model family raises a GlassboxError naming the methods that do.
    """
    explainer = methods(subject.modality).get(method)
    options = (options or ExplainOptions()).validate()
    if not 0 <= target < len(subject.classes):
        raise GlassboxError(f"target class {target} is out of range (the model has {len(subject.classes)})")
    reason = explainer.unavailable(subject)
    if reason is not None:
        raise GlassboxError(f"{explainer.title} cannot explain this model: {reason}. "
                            f"Use {_alternatives(subject, method)} instead")
    with subject.lock:
        started = time.perf_counter()
        maps, notes = explainer.attribute(subject, inputs, target, options, progress)
        seconds = time.perf_counter() - started
    attribution = maps[0].detach().float().cpu().numpy()
    return Explanation(method=method, target=target, attribution=attribution, seconds=seconds, notes=tuple(notes))


def resolve_target(classes: Sequence[str], value: str | int | None, default: int) -> int:
    """A class given by name (as the user sees it) or by index; `default` (the prediction) when None."""
    if value is None:
        return default
    text = str(value)
    if text in classes:
        return list(classes).index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(classes):
        return int(text)
    shown = ", ".join(classes[:10]) + (" ..." if len(classes) > 10 else "")
    raise GlassboxError(f"unknown class {text!r} (classes: {shown})")


def class_answer(classes: Sequence[str], probs: Sequence[float],
                 target: str | int | None) -> tuple[int, dict[str, Any]]:
    """(the class to explain, what a classifier's explanation reports of its answer): the predicted class, its
    probability, the target's probability and every class's, rounded to 4 digits. `target` by name or index,
    the predicted class when None (`resolve_target`)."""
    predicted = int(np.argmax(probs))
    index = resolve_target(classes, target, predicted)
    return index, {"predicted": classes[predicted], "probability": round(float(probs[predicted]), 4),
                   "target_probability": round(float(probs[index]), 4),
                   "probabilities": {c: round(float(p), 4) for c, p in zip(classes, probs, strict=True)}}


def _alternatives(subject: Explainable, refused: str) -> str:
    usable = [m for m in methods(subject.modality) if m != refused
              and methods(subject.modality).get(m).unavailable(subject) is None]
    titles = [methods(subject.modality).get(m).title for m in usable]
    return " or ".join(titles) if titles else "another model"


def _load_modalities() -> None:
    # imported for their registration side effect; kept lazy so importing this package stays light
    from core.explain import images, series, tables, text  # noqa: F401
