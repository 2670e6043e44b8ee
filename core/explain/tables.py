"""Captum methods for table models, results per source column, and a check of their faithfulness.

A table model reads encoded features (`core.data.table_encoding`): a date becomes five numbers, a number may
bring a missing-indicator, a category an embedding vector. People read the table's columns, so every method's
result is given per SOURCE column (`TableModel.columns`), signed: positive is evidence for the explained output
(a class's logit, or the predicted value), negative against it. "No evidence" is the encoder's baseline: training
medians, indicators off, each category at its most frequent level.

- Integrated Gradients (`ig`, Sundararajan et al. 2017) with Captum's LayerIntegratedGradients over the numeric
  features (the model's `numeric_input`) and every categorical embedding at once, from the baseline row's
  values to this row's: an index cannot be interpolated, its embedding vector can. A column's share is the sum
  over its features and embedding dimensions; the shares add up to the output's change from the baseline.
- Feature ablation (`ablation`): each source column in turn set to its baseline (all of its features and its
  embedding index together, through one feature-mask id per column; Captum 0.9's ids are global across the input
  tensors), and the output's drop recorded.
- Shapley value sampling (`shapley`, Strumbelj and Kononenko 2010; Captum's ShapleyValueSampling) over the same
  groups: each column's average contribution over seeded random orders of adding columns to the baseline row.

Outputs are read through the run's task (`core.tasks`: `Task.answers` with the run's task state): for
regression every attribution is in the target's units (the model's standardised output times the training
target's standard deviation, as the task reads it back). `faithfulness` compares the output change when the
top-k columns are set to their baseline with the mean change for k random columns (seeded draws);
`global_importance` is the mean absolute attribution over many rows (the validation set).
"""

from __future__ import annotations

import copy
import math
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from captum.attr import FeatureAblation, LayerIntegratedGradients, ShapleyValueSampling
from torch import nn

from core import tasks
from core.artifacts import RunFiles, load_model, target_state
from core.data.table_encoding import TableEncoder
from core.errors import GlassboxError
from core.explain import ExplainOptions, Progress, class_answer, explain, method_registry

__all__ = ["METHODS", "TableMethod", "TableModel", "explain_row", "faithfulness", "global_importance"]

_SEED = 0
_RANDOM_DRAWS = 20
_TOP_SHARE = 0.1  # k for the faithfulness check: a tenth of the columns, at least one
_SHAPLEY_SAMPLES = 64  # random orders; each costs one forward pass per column
_PERTURBATIONS_PER_EVAL = 128  # rows of a table model are tiny: many perturbed copies fit in one pass
_IG_ROWS_PER_PASS = 4096
_GLOBAL_ROWS = 500  # rows global importance reads at most (a seeded sample of the validation set)
_PERTURBED_ROWS = 100_000  # perturbed copies global ablation or Shapley sampling may run through the model
_MIN_GLOBAL_ROWS = 20
_GLOBAL_BATCH = 64
_PARTS = ("numeric", "categorical")

Inputs = dict[str, torch.Tensor]


class TableModel:
    """A trained table model prepared for Captum: a private copy in eval mode with parameter gradients off, its
    encoder, the run's task and task state (`core.tasks`: what turns logits into answers), and the class names
    (for a task whose answers are values, one name: the target's, or "prediction"). `lock` serialises
    explanations, since Captum registers hooks on the shared model while it works.

    `columns` and `target_column` are what a run keeps beside the encoder in `model.inputs` (core.data.tables'
    `fit_inputs`), for reading new rows (`column_descriptions`, `target_column`). Raises GlassboxError for an
    unknown task."""

    modality = "tables"

    def __init__(self, model: nn.Module, encoder: TableEncoder, task_name: str, state: dict[str, Any],
                 columns: list[dict[str, Any]] | None = None, target_column: str | None = None) -> None:
        self.model = copy.deepcopy(model).eval()
        for param in self.model.parameters():
            param.requires_grad_(False)
        self.encoder = encoder
        self.task = tasks.task(task_name)
        self.state = dict(state)
        self.column_descriptions: list[dict[str, Any]] = list(columns or [])
        self.target_column = target_column
        # what the task's answers are, asked of the task itself rather than of its name: values [n] or
        # probabilities [n, classes]; for values, how far one unit of the model's output moves the answer (the
        # target's standard deviation for regression, whose answers are affine in the output)
        probe = self.task.answers(torch.tensor([[0.0], [1.0]]).expand(2, self.task.outputs(self.state)), self.state)
        self.predicts_values = np.ndim(probe) == 1
        self.value_scale = float(probe[1] - probe[0]) if self.predicts_values else 1.0
        self.classes = ([str(self.state.get("target") or target_column or "prediction")] if self.predicts_values
                        else [str(c) for c in self.state.get("classes", [])])
        self.columns = encoder.columns
        index = {name: i for i, name in enumerate(self.columns)}
        # the feature-mask ids: one per source column, shared by all of its numeric features and its embedding
        self.masks = {
            "numeric": torch.tensor([[index[c] for c in encoder.feature_columns]], dtype=torch.long),
            "categorical": torch.tensor([[index[c] for c in encoder.category_columns]], dtype=torch.long),
        }
        # Captum is given only the non-empty inputs (a table without categories has no categorical tensor)
        self.parts = [p for p in _PARTS if self.masks[p].shape[1] > 0]
        baseline = encoder.baseline()
        self.baseline = {"numeric": torch.from_numpy(baseline["numeric"]),
                         "categorical": torch.from_numpy(baseline["categorical"])}
        self.lock = threading.RLock()

    @classmethod
    def from_model(cls, model: nn.Module, encoder: TableEncoder, task_name: str, state: dict[str, Any],
                   columns: list[dict[str, Any]] | None = None, target_column: str | None = None) -> TableModel:
        """A model trained in this process (the tests, a run that just ended), with its fitted encoder and its
        task's state (`Task.state`)."""
        return cls(model, encoder, task_name, state, columns, target_column)

    @classmethod
    def from_run(cls, files: RunFiles, cache_dir: Path) -> TableModel:
        """A finished run's best model, with the encoder it was built with, the column descriptions and the
        target's name (`model.inputs`), the run's task (its config) and task state (`target_state`)."""
        model, config, _ = load_model(files, cache_dir)
        if config.modality != "tables":
            raise GlassboxError(f"this run's model reads {config.modality}, not tables")
        kept = getattr(model, "inputs", None) or {}
        encoder = TableEncoder.from_dict(kept)
        return cls(model, encoder, tasks.of_run(config).name, target_state(files), kept.get("columns", []),
                   kept.get("target_column"))

    # ---- inputs and outputs -----------------------------------------------------------------------------------

    def encode(self, typed: Any) -> Inputs:
        """Rows of a typed frame (or one row as a mapping) as the model's tensors."""
        encoded = self.encoder.transform(typed)
        return self.inputs(encoded["numeric"], encoded["categorical"])

    def inputs(self, numeric: Any, categorical: Any) -> Inputs:
        """Encoded rows (arrays or tensors, [n, width] or one row [width]) as float/long tensors [n, width]."""
        num, cat = np.asarray(numeric, dtype=np.float32), np.asarray(categorical, dtype=np.int64)
        num, cat = (num.reshape(1, -1) if num.ndim == 1 else num), (cat.reshape(1, -1) if cat.ndim == 1 else cat)
        widths = (self.masks["numeric"].shape[1], self.masks["categorical"].shape[1])
        if (num.shape[1], cat.shape[1]) != widths or len(num) != len(cat):
            raise GlassboxError(f"the encoded rows do not fit this model: {num.shape[1]} numeric and {cat.shape[1]} "
                                f"categorical features for {widths[0]} and {widths[1]}")
        return {"numeric": torch.from_numpy(num), "categorical": torch.from_numpy(cat)}

    def logits(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        return self.model(numeric, categorical)

    def forward_parts(self, *parts: torch.Tensor) -> torch.Tensor:
        """`logits` from the non-empty inputs only (`self.parts`, in that order), as Captum passes them."""
        given = dict(zip(self.parts, parts, strict=True))
        rows = len(parts[0])
        numeric = given.get("numeric", torch.zeros(rows, 0))
        categorical = given.get("categorical", torch.zeros(rows, 0, dtype=torch.long))
        return self.logits(numeric, categorical)

    def outputs(self, inputs: Inputs) -> np.ndarray:
        """The task's answers (`Task.answers`), float64: class probabilities [n, classes], or predicted values in
        the target's units [n] (regression)."""
        with torch.no_grad():
            logits = self.logits(inputs["numeric"], inputs["categorical"])
        return np.asarray(self.task.answers(logits, self.state), dtype=np.float64)

    def explained(self, inputs: Inputs, target: int) -> np.ndarray:
        """The output faithfulness measures [n]: the target's probability, or the predicted value."""
        out = self.outputs(inputs)
        return out if self.predicts_values else out[:, target]

    def with_baseline(self, inputs: Inputs, columns: list[int]) -> Inputs:
        """A copy of `inputs` in which the source columns `columns` (indices into `self.columns`) hold the
        baseline: every numeric feature and the embedding index of those columns."""
        changed = {part: inputs[part].clone() for part in _PARTS}
        for part in _PARTS:
            chosen = torch.isin(self.masks[part][0], torch.tensor(columns, dtype=torch.long))
            changed[part][:, chosen] = self.baseline[part][0, chosen]
        return changed

    def attribution_scale(self) -> float:
        """Attributions of the model's output -> the output the user reads (the target's units for regression;
        class logits as they are)."""
        return self.value_scale

    def _captum(self, inputs: Inputs) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...],
                                                tuple[torch.Tensor, ...]]:
        """(inputs, baselines, feature masks) of the non-empty parts, baselines expanded to the batch."""
        given = tuple(inputs[p] for p in self.parts)
        baselines = tuple(self.baseline[p].expand_as(inputs[p]).contiguous() for p in self.parts)
        masks = tuple(self.masks[p] for p in self.parts)
        return given, baselines, masks

    def per_column(self, attributions: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Captum's grouped result (every element of a group holds the group's value) -> [n, columns]."""
        rows = len(attributions[0])
        result = torch.zeros(rows, len(self.columns))
        for part, values in zip(self.parts, attributions, strict=True):
            mask = self.masks[part][0]
            for position in range(len(mask)):
                result[:, mask[position]] = values[:, position].float()
        return result


@dataclass(frozen=True)
class TableMethod:
    """One registered explanation method: `run` computes attributions per source column (rows x columns)."""

    name: str
    title: str
    description: str
    run: Callable[[TableModel, Inputs, Any, ExplainOptions, Progress | None], tuple[torch.Tensor, list[str]]]

    def unavailable(self, subject: TableModel) -> str | None:
        return None  # every table model has the numeric input and the embeddings the methods need

    def attribute(self, subject: TableModel, inputs: Inputs, target: Any, options: ExplainOptions,
                  progress: Progress | None) -> tuple[torch.Tensor, list[str]]:
        with torch.enable_grad():
            attributions, notes = self.run(subject, inputs, target, options, progress)
        if progress is not None:
            progress(1.0)
        return attributions * subject.attribution_scale(), notes


METHODS, _register = method_registry("tables", TableModel.from_run, TableMethod)


@_register("ig", "Integrated Gradients",
           "Each column's share of the output's change from a typical row (training medians, most frequent "
           "levels) to this one.")
def _integrated_gradients(subject: TableModel, inputs: Inputs, target: Any, options: ExplainOptions,
                          progress: Progress | None) -> tuple[torch.Tensor, list[str]]:
    model = subject.model
    layers: list[nn.Module] = ([model.numeric_input] if "numeric" in subject.parts else []) + list(model.embeddings)
    given, baselines, _ = subject._captum(inputs)
    with warnings.catch_warnings():
        # the layers are side by side (none feeds another), which is what Captum's warning asks to make sure of
        warnings.filterwarnings("ignore", message="Multiple layers provided")
        method = LayerIntegratedGradients(subject.forward_parts, layers if len(layers) > 1 else layers[0])
    attributions, delta = method.attribute(given, baselines=baselines, target=target, n_steps=options.ig_steps,
                                           internal_batch_size=_ig_batch(len(given[0]), options),
                                           return_convergence_delta=True)
    if isinstance(attributions, torch.Tensor):
        attributions = [attributions]
    result = torch.zeros(len(given[0]), len(subject.columns))
    layer_outputs = list(attributions)
    if "numeric" in subject.parts:
        numeric = layer_outputs.pop(0).float()
        result.index_add_(1, subject.masks["numeric"][0], numeric)
    for column, values in zip(subject.masks["categorical"][0].tolist(), layer_outputs, strict=True):
        result[:, column] += values.float().sum(-1)
    with torch.no_grad():
        change = subject.forward_parts(*given) - subject.forward_parts(*baselines)
        change = change[:, target] if isinstance(target, int) else change.gather(1, torch.as_tensor(target).view(-1, 1))
    gap = float(delta.abs().max()) / max(float(change.abs().max()), 1e-6)
    return result, [f"Integrated Gradients on the numeric features and the category embeddings from a typical row "
                    f"in {options.ig_steps} steps; the columns' shares sum to the output's change within {gap:.1%}"
                    + (" (use more steps)." if gap > 0.05 else ".")]


@_register("ablation", "Feature ablation",
           "How much the output drops when one column is set to its typical value (median, most frequent level).")
def _ablation(subject: TableModel, inputs: Inputs, target: Any, options: ExplainOptions,
              progress: Progress | None) -> tuple[torch.Tensor, list[str]]:
    given, baselines, masks = subject._captum(inputs)
    attributions = FeatureAblation(subject.forward_parts).attribute(
        given, baselines=baselines, target=target, feature_mask=masks,
        perturbations_per_eval=_PERTURBATIONS_PER_EVAL)
    return subject.per_column(_as_tuple(attributions)), [
        f"Each of the {len(subject.columns)} columns set to its typical value in turn (all its encoded features "
        "together)."]


@_register("shapley", "Shapley value sampling",
           "Each column's average contribution over random orders of adding columns to a typical row.")
def _shapley(subject: TableModel, inputs: Inputs, target: Any, options: ExplainOptions,
             progress: Progress | None) -> tuple[torch.Tensor, list[str]]:
    given, baselines, masks = subject._captum(inputs)
    with torch.random.fork_rng():  # the orders are drawn from torch's generator: same row, same result
        torch.manual_seed(_SEED)
        attributions = ShapleyValueSampling(subject.forward_parts).attribute(
            given, baselines=baselines, target=target, feature_mask=masks, n_samples=_SHAPLEY_SAMPLES,
            perturbations_per_eval=_PERTURBATIONS_PER_EVAL)
    return subject.per_column(_as_tuple(attributions)), [
        f"Shapley values estimated from {_SHAPLEY_SAMPLES} random orders of the {len(subject.columns)} columns "
        "(seeded); they sum to the output's change from the typical row."]


def _ig_batch(rows: int, options: ExplainOptions) -> int:
    """Interpolated rows per pass: a table's rows are tiny, so all of a batch's steps at once where they fit
    (Captum's per-pass overhead dominates otherwise), and never fewer than the rows (Captum's minimum)."""
    return max(options.internal_batch_size, rows, min(rows * options.ig_steps, _IG_ROWS_PER_PASS))


def _as_tuple(values: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return (values,) if isinstance(values, torch.Tensor) else tuple(values)


# ---- one row, many rows -------------------------------------------------------------------------------------


def explain_row(subject: TableModel, numeric: Any, categorical: Any, method: str = "ig",
                target: str | int | None = None, options: ExplainOptions | None = None,
                k: int | None = None) -> dict[str, Any]:
    """The prediction for one encoded row (`numeric` [n_numeric] or [1, n_numeric], `categorical` likewise, as
    `TableEncoder.transform` gives them) and `method`'s attributions per source column, as plain values: what
    `python -m core explain RUN --row ...` prints and the Explain and Predict pages chart.

    `target`: the class explained (name or index; default the predicted one); ignored for regression. Returns
    {"method", "target", "predicted", "probability"/"value", "attributions": {column: signed float, strongest
    first}, "faithfulness" (see `faithfulness`), "notes", "seconds"}. Raises GlassboxError for an unknown
    method or class."""
    inputs = subject.inputs(numeric, categorical)
    if len(inputs["numeric"]) != 1:
        raise GlassboxError("give one row to explain")
    outputs = subject.outputs(inputs)[0]
    if subject.predicts_values:
        target_index = 0
        shown: dict[str, Any] = {"predicted": round(float(outputs), 6), "value": round(float(outputs), 6)}
    else:
        target_index, shown = class_answer(subject.classes, outputs, target)
    result = explain(subject, inputs, target_index, method, options)
    attributions = _ordered(dict(zip(subject.columns, (float(v) for v in result.attribution), strict=True)))
    return {
        "method": method,
        "target": subject.classes[target_index],
        **shown,
        "attributions": attributions,
        "faithfulness": faithfulness(subject, inputs, attributions, k, target=target_index),
        "notes": list(result.notes),
        "seconds": round(result.seconds, 4),
    }


def global_importance(subject: TableModel, encoded: Mapping[str, Any], method: str = "ablation",
                      options: ExplainOptions | None = None, max_rows: int = _GLOBAL_ROWS,
                      seed: int = _SEED) -> dict[str, float]:
    """Mean absolute attribution per source column over the rows of `encoded` (`TableEncoder.transform`'s output
    for the validation set), each row explained for its predicted class (or its value), strongest first. At most
    `max_rows` rows are read, a seeded sample of them when there are more; fewer on a wide table, where ablation
    costs a forward pass per column and row (and Shapley sampling that times its orders): as many rows as
    `_PERTURBED_ROWS` perturbed copies allow, never fewer than `_MIN_GLOBAL_ROWS`."""
    inputs = subject.inputs(encoded["numeric"], encoded["categorical"])
    rows = len(inputs["numeric"])
    if rows == 0:
        raise GlassboxError("there are no rows to measure importance on")
    per_row = {"ablation": len(subject.columns), "shapley": len(subject.columns) * _SHAPLEY_SAMPLES}.get(method, 1)
    max_rows = min(max_rows, max(_MIN_GLOBAL_ROWS, _PERTURBED_ROWS // per_row))
    if rows > max_rows:
        chosen = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False)))
        inputs = {part: values[chosen] for part, values in inputs.items()}
    explainer = METHODS.get(method)
    options = (options or ExplainOptions()).validate()
    totals = torch.zeros(len(subject.columns))
    with subject.lock:
        for start in range(0, len(inputs["numeric"]), _GLOBAL_BATCH):
            batch = {part: values[start : start + _GLOBAL_BATCH] for part, values in inputs.items()}
            if subject.predicts_values:
                target: Any = 0
            else:
                target = torch.from_numpy(subject.outputs(batch).argmax(1))
            attributions, _ = explainer.attribute(subject, batch, target, options, None)
            totals += attributions.abs().sum(0)
    means = totals / len(inputs["numeric"])
    return _ordered(dict(zip(subject.columns, (float(v) for v in means), strict=True)), by_size=False)


def faithfulness(subject: TableModel, row: Mapping[str, Any], attributions: Mapping[str, float],
                 k: int | None = None, target: int | None = None, draws: int = _RANDOM_DRAWS,
                 seed: int = _SEED) -> dict[str, Any]:
    """Set the `k` columns with the largest absolute attribution (default: a tenth of the columns, at least one)
    to their baseline in `row` (one encoded row, arrays or tensors) and measure how much the output changes
    (absolute: the target's probability, default the predicted class, or the predicted value in the target's
    units); do the same for k random columns (`draws` seeded draws, averaged). A faithful explanation's columns
    change the output more than random ones.

    Returns {"k", "measure" (what the output is), "output", "top_columns", "topk_change", "random_change",
    "larger": "top-k", "random" or "equal", "beats_random"}."""
    inputs = subject.inputs(row["numeric"], row["categorical"])
    known = [c for c in subject.columns if c in attributions]
    if not known:
        raise GlassboxError("the attributions name none of the model's columns")
    k = min(k or max(1, math.ceil(_TOP_SHARE * len(subject.columns))), len(subject.columns))
    if target is None:
        target = 0 if subject.predicts_values else int(np.argmax(subject.outputs(inputs)[0]))
    top = sorted(known, key=lambda c: -abs(attributions[c]))[:k]
    index = {c: i for i, c in enumerate(subject.columns)}
    rng = np.random.default_rng(seed)
    variants = [[index[c] for c in top]] + [rng.choice(len(subject.columns), size=k, replace=False).tolist()
                                            for _ in range(draws)]
    changed = [subject.with_baseline(inputs, columns) for columns in variants]
    batch = {part: torch.cat([inputs[part]] + [c[part] for c in changed]) for part in _PARTS}
    values = subject.explained(batch, target)
    changes = np.abs(values[1:] - values[0])
    topk, random = float(changes[0]), float(changes[1:].mean())
    larger = "equal" if math.isclose(topk, random, rel_tol=1e-6, abs_tol=1e-9) else (
        "top-k" if topk > random else "random")
    measure = ("the predicted value" if subject.predicts_values
               else f"the probability of {subject.classes[target]!r}")
    return {"k": k, "measure": measure, "output": round(float(values[0]), 6), "top_columns": top,
            "topk_change": round(topk, 6), "random_change": round(random, 6), "larger": larger,
            "beats_random": larger == "top-k"}


def _ordered(values: dict[str, float], by_size: bool = True) -> dict[str, float]:
    """Strongest first (by absolute value when `by_size`, the values being signed)."""
    return dict(sorted(values.items(), key=lambda item: -abs(item[1]) if by_size else -item[1]))
