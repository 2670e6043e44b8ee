"""Captum methods for series models: which time steps of which channels a prediction rests on, and a check of it.

A series model (`core.models.sequence`) reads z-scored values [T, C], a mask of the real steps and, for a
forecast, covariates over the horizon. Every method gives one signed map [T, C] per series: positive is evidence
for the explained output, negative against it; padded steps (mask False) always get exactly 0. "No evidence" is
the all-zero series, which after normalisation is every channel at its mean (a classified series' own mean, a
forecast context's training mean).

What is explained:
- classification: the target class's logit (default the predicted class), as for the other modalities;
- forecasting: the MEAN of the H forecast values, in the series' units (the model's standardised mean output
  times the training standard deviation, as the forecast task reads outputs back): one number per forecast,
  so one map says which past steps pushed the coming horizon up or down. Explaining each horizon step would give
  H maps that mostly agree; the mean is what "which past steps drove the forecast" asks. The future
  covariates are held as given and get no attribution.

Methods (`METHODS`):
- Integrated Gradients (`ig`, Sundararajan et al., "Axiomatic attribution for deep networks", ICML 2017;
  Captum's IntegratedGradients) on the values, from the zero series: each step's and channel's share of the
  output's change; the shares sum to that change (the notes give the gap).
- Feature ablation over windows (`ablation`, Captum's FeatureAblation): the real steps are cut into windows of
  w = max(1, real steps // 20) consecutive steps (or `ExplainOptions.occlusion_window`), and each window of
  each channel is set to 0 in turn; every step of a window shows the window's output drop (Captum's grouped
  features), so windows compare with each other, not with single steps of Integrated Gradients.

`faithfulness` deletes the k steps with the largest attribution (all channels of a step set to 0; default k a
tenth of the real steps) and compares the output's change with the mean change for k random real steps
(seeded draws): a faithful map's steps change it more.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from captum.attr import FeatureAblation, IntegratedGradients
from torch import nn

from core import tasks
from core.artifacts import RunFiles, load_model, target_state
from core.errors import GlassboxError
from core.explain import ExplainOptions, Progress, class_answer, explain, method_registry

__all__ = ["METHODS", "SeriesMethod", "SeriesModel", "explain_series", "faithfulness"]

_SEED = 0
_RANDOM_DRAWS = 20
_TOP_SHARE = 0.1  # k for the faithfulness check: a tenth of the real steps, at least one
_WINDOWS = 20  # ablation cuts the real steps into about this many windows
_IG_SERIES_PER_PASS = 256

Inputs = dict[str, torch.Tensor]


class SeriesModel:
    """A trained series model prepared for Captum: a private copy in eval mode with parameter gradients off, the
    run's task and task state (`core.tasks`), the class names (a forecast: one name, the target's) and the
    channel names (`inputs["channels"]` when it lists them). `lock` serialises explanations, since Captum works
    on the shared model. Raises GlassboxError for an unknown task."""

    modality = "series"

    def __init__(self, model: nn.Module, task_name: str, state: dict[str, Any],
                 inputs: dict[str, Any] | None = None) -> None:
        self.model = copy.deepcopy(model).eval()
        for param in self.model.parameters():
            param.requires_grad_(False)
        self.task = tasks.task(task_name)
        self.state = dict(state)
        self.fitted = dict(inputs if inputs is not None else getattr(model, "inputs", None) or {})
        # a forecast's state holds its horizon (`core.tasks.forecast`); its answers are values, not classes
        self.forecasts = "horizon" in self.state
        self.horizon = int(self.state["horizon"]) if self.forecasts else None
        self.value_scale = float(self.state.get("std", 1.0)) if self.forecasts else 1.0
        self.classes = ([str(self.state.get("target") or "forecast")] if self.forecasts
                        else [str(c) for c in self.state.get("classes", [])])
        self.channels = int(getattr(self.model, "channels", 1))
        names = self.fitted.get("channels")
        listed = isinstance(names, (list, tuple)) and len(names) == self.channels
        self.channel_names = ([str(n) for n in names] if listed
                              else [f"channel {i + 1}" for i in range(self.channels)])
        shape = getattr(self.model, "shape", None)
        self.future_width = int(getattr(shape, "future", 0) or 0) if self.forecasts else 0
        self.lock = threading.RLock()

    @classmethod
    def from_model(cls, model: nn.Module, task_name: str, state: dict[str, Any],
                   inputs: dict[str, Any] | None = None) -> SeriesModel:
        """A model trained in this process (the tests, a run that just ended) with its task's state."""
        return cls(model, task_name, state, inputs)

    @classmethod
    def from_run(cls, files: RunFiles, cache_dir: Path) -> SeriesModel:
        """A finished run's best model, rebuilt from its config and fitted inputs (`model.inputs`), with the run's
        task (its config) and task state (`target_state`). Raises GlassboxError for a run of another modality."""
        model, config, _ = load_model(files, cache_dir)
        if config.modality != "series":
            raise GlassboxError(f"this run's model reads {config.modality}, not series")
        return cls(model, tasks.of_run(config).name, target_state(files), getattr(model, "inputs", None))

    # ---- inputs and outputs -----------------------------------------------------------------------------------

    def inputs(self, values: Any, mask: Any = None, future: Any = None) -> Inputs:
        """Prepared series (as the series modality's datasets yield them: z-scored) as the model's tensors:
        `values` [T] (one channel), [T, C] or [n, T, C]; `mask` [T] or [n, T] (default: every step real);
        `future` [H, K] or [n, H, K] (a forecast's covariates over the horizon; needed when the model reads
        them). Padded steps' values are set to 0. Raises GlassboxError for the wrong number of channels, a
        missing value on a real step, a mask that does not fit or missing future covariates."""
        data = np.asarray(values, dtype=np.float32)
        if data.ndim == 1:
            data = data[:, None]
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3 or data.shape[2] != self.channels:
            raise GlassboxError(f"the model reads series of {self.channels} channel(s): got values shaped "
                                f"{tuple(np.shape(values))}")
        real = np.ones(data.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        real = real[None] if real.ndim == 1 else real
        if real.shape != data.shape[:2]:
            raise GlassboxError(f"the mask covers {real.shape} steps, the values {data.shape[:2]}")
        if not np.isfinite(data[real]).all():
            raise GlassboxError("the series has missing values on real steps: fill them or mark them as padding")
        data = np.where(real[..., None], data, np.float32(0.0))
        given: Inputs = {"values": torch.from_numpy(np.ascontiguousarray(data)), "mask": torch.from_numpy(real)}
        if self.future_width:
            if future is None:
                raise GlassboxError(f"this forecast needs the {self.future_width} covariate(s) over the next "
                                    f"{self.horizon} steps")
            ahead = np.asarray(future, dtype=np.float32)
            ahead = ahead[None] if ahead.ndim == 2 else ahead
            if ahead.shape != (len(data), self.horizon, self.future_width) or not np.isfinite(ahead).all():
                raise GlassboxError(f"the future covariates must be {self.horizon} steps of {self.future_width} "
                                    "known value(s) each")
            given["future"] = torch.from_numpy(np.ascontiguousarray(ahead))
        return given

    def logits(self, inputs: Inputs) -> torch.Tensor:
        return self.model(inputs["values"], inputs["mask"], inputs.get("future"))

    def forward_values(self, values: torch.Tensor, mask: torch.Tensor,
                       future: torch.Tensor | None = None) -> torch.Tensor:
        """What the methods explain, [n, outputs]: the class logits, or for a forecast [n, 1] the mean of the H
        standardised outputs (Captum then explains output 0)."""
        logits = self.model(values, mask, future)
        return logits.mean(1, keepdim=True) if self.forecasts else logits

    def outputs(self, inputs: Inputs) -> np.ndarray:
        """The task's answers (`Task.answers`), float64: class probabilities [n, classes], or the forecasts in
        the series' units [n, H]."""
        with torch.no_grad():
            logits = self.logits(inputs)
        return np.asarray(self.task.answers(logits, self.state), dtype=np.float64)

    def explained(self, inputs: Inputs, target: int) -> np.ndarray:
        """The output faithfulness measures [n]: the target's probability, or the mean forecast (series' units)."""
        out = self.outputs(inputs)
        return out.mean(1) if self.forecasts else out[:, target]

    def with_baseline(self, inputs: Inputs, steps: list[int]) -> Inputs:
        """A copy of `inputs` in which the time steps `steps` hold the baseline (0) on every channel."""
        changed = dict(inputs)
        changed["values"] = inputs["values"].clone()
        changed["values"][:, steps, :] = 0.0
        return changed

    def extra_args(self, inputs: Inputs) -> tuple[torch.Tensor, ...]:
        """Captum's `additional_forward_args`: the mask, and the future covariates when the model reads them."""
        return (inputs["mask"], inputs["future"]) if "future" in inputs else (inputs["mask"],)


@dataclass(frozen=True)
class SeriesMethod:
    """One registered explanation method: `run` computes attributions [n, T, C] for the model's output."""

    name: str
    title: str
    description: str
    run: Callable[[SeriesModel, Inputs, Any, ExplainOptions], tuple[torch.Tensor, list[str]]]

    def unavailable(self, subject: SeriesModel) -> str | None:
        return None  # every series model reads its values directly: both methods apply to every family

    def attribute(self, subject: SeriesModel, inputs: Inputs, target: Any, options: ExplainOptions,
                  progress: Progress | None) -> tuple[torch.Tensor, list[str]]:
        # cuDNN's recurrent kernels refuse a backward pass in eval mode; the plain kernels do not
        with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
            attributions, notes = self.run(subject, inputs, target, options)
        if progress is not None:
            progress(1.0)
        real = inputs["mask"].unsqueeze(-1).to(attributions.dtype)
        return attributions.detach().float() * real * subject.value_scale, notes


METHODS, _register = method_registry("series", SeriesModel.from_run, SeriesMethod)


def _explained_words(subject: SeriesModel) -> str:
    return f"the mean of the {subject.horizon} forecasts" if subject.forecasts else "the class's logit"


@_register("ig", "Integrated Gradients",
           "Each step's and channel's share of the output's change from a flat series (every channel at its mean).")
def _integrated_gradients(subject: SeriesModel, inputs: Inputs, target: Any,
                          options: ExplainOptions) -> tuple[torch.Tensor, list[str]]:
    values = inputs["values"]
    baseline = torch.zeros_like(values)
    target = 0 if subject.forecasts else target
    rows = len(values)
    batch = max(options.internal_batch_size, rows, min(rows * options.ig_steps, _IG_SERIES_PER_PASS))
    attributions, delta = IntegratedGradients(subject.forward_values).attribute(
        values, baselines=baseline, target=target, additional_forward_args=subject.extra_args(inputs),
        n_steps=options.ig_steps, internal_batch_size=batch, return_convergence_delta=True)
    with torch.no_grad():
        args = subject.extra_args(inputs)
        change = subject.forward_values(values, *args) - subject.forward_values(baseline, *args)
        change = (change[:, target] if isinstance(target, int)
                  else change.gather(1, torch.as_tensor(target).view(-1, 1)))
    gap = float(delta.abs().max()) / max(float(change.abs().max()), 1e-6)
    return attributions, [
        f"Integrated Gradients of {_explained_words(subject)} from a flat series (every channel at its mean) in "
        f"{options.ig_steps} steps; the steps' shares sum to the output's change within {gap:.1%}"
        + (" (use more steps)." if gap > 0.05 else ".")]


@_register("ablation", "Window ablation",
           "How much the output drops when a window of steps of one channel is flattened to the channel's mean.")
def _ablation(subject: SeriesModel, inputs: Inputs, target: Any,
              options: ExplainOptions) -> tuple[torch.Tensor, list[str]]:
    values, mask = inputs["values"], inputs["mask"]
    real_steps = int(mask.sum(1).max())
    window = options.occlusion_window or max(1, real_steps // _WINDOWS)
    groups = _window_groups(mask, window, subject.channels)
    attributions = FeatureAblation(subject.forward_values).attribute(
        values, baselines=0.0, target=0 if subject.forecasts else target,
        additional_forward_args=subject.extra_args(inputs), feature_mask=groups,
        perturbations_per_eval=options.internal_batch_size)
    windows = math.ceil(real_steps / window)
    return attributions, [
        f"Each of {windows} window(s) of {window} step(s) of each channel set to the channel's mean in turn; every "
        f"step of a window shows the drop in {_explained_words(subject)} its window causes."]


def _window_groups(mask: torch.Tensor, window: int, channels: int) -> torch.Tensor:
    """Captum feature-mask ids [n, T, C]: the real steps of each series numbered in order, cut into windows of
    `window`, one id per window and channel; every padded step shares one last id (their change is 0)."""
    position = mask.long().cumsum(1) - 1  # the rank of each real step among the series' real steps
    windows = int(position.max().clamp(min=0)) // window + 1
    ids = (position // window).clamp(min=0).unsqueeze(-1) * channels + torch.arange(channels)
    return torch.where(mask.unsqueeze(-1), ids, torch.full_like(ids, windows * channels))


# ---- one series ---------------------------------------------------------------------------------------------


def explain_series(subject: SeriesModel, inputs: Mapping[str, Any], method: str = "ig",
                   target: str | int | None = None, options: ExplainOptions | None = None,
                   k: int | None = None) -> dict[str, Any]:
    """The prediction for one prepared series (`inputs`: {"values": [T] or [T, C], "mask": [T] (optional),
    "future": [H, K] for a forecast with covariates}, as the series modality's datasets yield them) and
    `method`'s attributions, as plain values: what `python -m core explain RUN --series FILE` prints and the
    pages draw as a heatmap under the series.

    `target`: the class explained (name or index; default the predicted one); ignored for a forecast, whose
    explained output is the mean of its H values. Returns {"method", "target", "predicted" (class name, or the H
    forecasts in the series' units), "probability"/"target_probability"/"probabilities" (classification),
    "forecast" and "explained" (forecasting), "channels" (names), "steps" (T), "length" (real steps),
    "attributions" (a list over the T steps for one channel, else one such list per channel; padded steps 0),
    "faithfulness" (see `faithfulness`), "notes", "seconds"}. Raises GlassboxError for an unknown method or
    class, or inputs that do not fit the model."""
    given = subject.inputs(inputs["values"], inputs.get("mask"), inputs.get("future"))
    if len(given["values"]) != 1:
        raise GlassboxError("give one series to explain")
    outputs = subject.outputs(given)[0]
    if subject.forecasts:
        target_index = 0
        forecast = [round(float(v), 6) for v in outputs]
        shown: dict[str, Any] = {"predicted": forecast, "forecast": forecast,
                                 "explained": f"the mean of the {subject.horizon} forecasts"}
    else:
        target_index, shown = class_answer(subject.classes, outputs, target)
    result = explain(subject, given, target_index, method, options)
    attribution = np.asarray(result.attribution, dtype=np.float64)  # [T, C]
    per_channel = [[round(float(v), 6) for v in attribution[:, c]] for c in range(subject.channels)]
    return {
        "method": method,
        "target": subject.classes[target_index],
        **shown,
        "channels": subject.channel_names,
        "steps": int(attribution.shape[0]),
        "length": int(given["mask"].sum()),
        "attributions": per_channel[0] if subject.channels == 1 else per_channel,
        "faithfulness": faithfulness(subject, given, attribution, k, target=target_index),
        "notes": list(result.notes),
        "seconds": round(result.seconds, 4),
    }


def faithfulness(subject: SeriesModel, inputs: Mapping[str, Any], attributions: Any, k: int | None = None,
                 target: int | None = None, draws: int = _RANDOM_DRAWS, seed: int = _SEED) -> dict[str, Any]:
    """Set the `k` real steps with the largest attribution (absolute, summed over channels; default k a tenth of
    the real steps, at least one) to the baseline 0 on every channel, in one prepared series (`inputs`: as
    `SeriesModel.inputs` gives, or its arguments), and measure how much the output changes (absolute: the
    target class's probability, default the predicted class's, or the mean forecast in the series' units); do
    the same for k random real steps (`draws` seeded draws, averaged). A faithful map's steps change the output
    more than random ones.

    `attributions`: [T] (one channel) or [T, C], or per channel [C][T] as `explain_series` returns them.
    Returns {"k", "measure", "output", "top_steps", "topk_change", "random_change", "larger": "top-k", "random"
    or "equal", "beats_random"}. Raises GlassboxError when the series has no real step or the map does not fit."""
    prepared = isinstance(inputs.get("values"), torch.Tensor) and inputs["values"].ndim == 3 and "mask" in inputs
    given = dict(inputs) if prepared else subject.inputs(inputs["values"], inputs.get("mask"), inputs.get("future"))
    steps = given["values"].shape[1]
    scores = _step_scores(np.asarray(attributions, dtype=np.float64), steps, subject.channels)
    real = np.flatnonzero(given["mask"][0].numpy())
    if len(real) == 0:
        raise GlassboxError("the series has no real step to delete")
    k = min(k or max(1, math.ceil(_TOP_SHARE * len(real))), len(real))
    if target is None:
        target = 0 if subject.forecasts else int(np.argmax(subject.outputs(given)[0]))
    top = real[np.argsort(-scores[real], kind="stable")[:k]].tolist()
    rng = np.random.default_rng(seed)
    variants = [top] + [rng.choice(real, size=k, replace=False).tolist() for _ in range(draws)]
    changed = [subject.with_baseline(given, steps_) for steps_ in variants]
    batch = {part: torch.cat([given[part]] + [c[part] for c in changed]) for part in given}
    values = subject.explained(batch, target)
    changes = np.abs(values[1:] - values[0])
    topk, random = float(changes[0]), float(changes[1:].mean())
    larger = "equal" if math.isclose(topk, random, rel_tol=1e-6, abs_tol=1e-9) else (
        "top-k" if topk > random else "random")
    measure = ("the mean forecast" if subject.forecasts else f"the probability of {subject.classes[target]!r}")
    return {"k": k, "measure": measure, "output": round(float(values[0]), 6), "top_steps": top,
            "topk_change": round(topk, 6), "random_change": round(random, 6), "larger": larger,
            "beats_random": larger == "top-k"}


def _step_scores(attributions: np.ndarray, steps: int, channels: int) -> np.ndarray:
    """|attribution| summed over channels per step [T], from [T], [T, C] or per channel [C, T]."""
    if attributions.ndim == 1 and channels == 1:
        attributions = attributions[:, None]
    elif attributions.ndim == 2 and attributions.shape == (channels, steps) and channels != steps:
        attributions = attributions.T
    if attributions.shape != (steps, channels):
        raise GlassboxError(f"the attributions {attributions.shape} do not fit a series of {steps} steps and "
                            f"{channels} channel(s)")
    return np.abs(attributions).sum(1)
