"""Several runs side by side: their settings and validation figures, which settings differ between them, each
run's headline curve and the best run of each task.

The Runs page and `python -m core runs compare` both read `compare`; neither judges runs itself. A run is
judged by its task's headline figure (`Task.metrics_shown[0]`: accuracy, R², MAE) on validation, in the
direction the figure says (`Metric.higher_is_better`); runs of different tasks are judged apart, since an
accuracy and an MAE do not compare.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any

from core import tasks
from core.config import TrainConfig
from core.errors import GlassboxError
from core.store import RunRecord
from core.tasks import Metric

__all__ = ["Comparison", "compare"]

# how a run's logged figures arrive: `Store.metrics(run_id)` rows, {"epoch", "step", "name", "value", ...}
MetricRows = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Comparison:
    """What `compare` finds, in the order the runs were given.

    `settings`: run id -> its config, one level of nesting flattened (`extra.foo`), with the settings a run
    made before they existed filled in from `TrainConfig`'s defaults (what `train --config` would read);
    `scores`: run id -> its figures, `val_<key>` (and `test_<key>` when the run measured a test split) for every
    metric its task shows, None where it has none; `differing`: the setting keys whose values are not all equal,
    sorted; `headlines`: task name -> the metric its runs are judged by; `best`: task name -> the best run's id
    (tasks whose runs have no score yet are left out); `curves`: run id -> its headline validation figure per
    epoch, [(epoch, value), ...].
    """

    runs: tuple[RunRecord, ...]
    settings: dict[str, dict[str, Any]]
    scores: dict[str, dict[str, float | None]]
    differing: tuple[str, ...]
    headlines: dict[str, Metric]
    best: dict[str, str]
    curves: dict[str, list[tuple[int, float]]]

    def task_of(self, run_id: str) -> str:
        """The task name a run is judged within."""
        return tasks.of_run(self.settings[run_id]).name

    def is_best(self, run_id: str) -> bool:
        """Whether the run is the best of its task's runs here."""
        return self.best.get(self.task_of(run_id)) == run_id

    def headline(self, run_id: str) -> float | None:
        """The run's headline validation figure, the one it is judged by."""
        return self.scores[run_id].get(f"val_{self.headlines[self.task_of(run_id)].key}")

    def rows(self, all_settings: bool = False) -> list[dict[str, Any]]:
        """One row a run: `run`, `status`, `task`, `best` (True for the best of its task), its figures
        (`scores`), `best_epoch`, then the settings that differ (every setting with `all_settings`)."""
        keys = sorted({k for s in self.settings.values() for k in s}) if all_settings else list(self.differing)
        return [
            {"run": run.id, "status": run.status, "task": self.task_of(run.id), "best": self.is_best(run.id),
             **self.scores[run.id], "best_epoch": run.metrics.get("best_epoch"),
             **{k: self.settings[run.id].get(k) for k in keys}}
            for run in self.runs
        ]

    def to_json(self) -> dict[str, Any]:
        """What `python -m core runs compare --json` prints: `runs` (each with its id, status, task, figures and
        settings), `differing`, `best` (the best run's id when the runs share one task, else None) and
        `best_by_task`."""
        return {
            "runs": [{"run_id": run.id, "status": run.status, "task": self.task_of(run.id),
                      "dataset_id": run.dataset_id, "backbone": run.backbone, "metrics": self.scores[run.id],
                      "best_epoch": run.metrics.get("best_epoch"), "config": self.settings[run.id]}
                     for run in self.runs],
            "differing": list(self.differing),
            "best": next(iter(self.best.values())) if len(self.headlines) == 1 and self.best else None,
            "best_by_task": dict(self.best),
        }


def compare(runs: Sequence[RunRecord], metrics_by_run: Mapping[str, MetricRows]) -> Comparison:
    """Compare `runs` (at least one; a run given twice counts once).

    `metrics_by_run`: run id -> its logged figures as `Store.metrics(run_id)` returns them (a run left out has
    none); they give the curves, and a run's figures when its record holds none (runs recorded before the worker
    kept the best epoch's: their latest epoch's). The best run of a task has the highest headline validation
    figure, or the lowest when lower is better (MAE); of equal ones, the first given; there is none for a task
    whose runs are on different datasets, whose validation items differ. Raises GlassboxError when no run is
    given.
    """
    unique = tuple({run.id: run for run in runs}.values())
    if not unique:
        raise GlassboxError("pick at least one run to compare")
    settings = {run.id: _settings(run.config) for run in unique}
    differing = tuple(sorted(
        key for key in {k for s in settings.values() for k in s}
        if len({_comparable(s.get(key)) for s in settings.values()}) > 1
    ))
    headlines: dict[str, Metric] = {}
    scores: dict[str, dict[str, float | None]] = {}
    curves: dict[str, list[tuple[int, float]]] = {}
    for run in unique:
        task = tasks.of_run(run.config)
        headline = headlines.setdefault(task.name, task.metrics_shown[0])
        logged = metrics_by_run.get(run.id, ())
        scores[run.id] = _scores(run, task.metrics_shown, logged)
        curves[run.id] = [(int(r["epoch"]), float(r["value"])) for r in logged
                          if r["name"] == f"val_{headline.key}" and r["value"] is not None]
    best: dict[str, str] = {}
    for name, headline in headlines.items():
        judged = [(scores[run.id][f"val_{headline.key}"], run.id) for run in unique
                  if tasks.of_run(run.config).name == name and scores[run.id][f"val_{headline.key}"] is not None]
        if len({run.dataset_id for run in unique if run.id in {r for _, r in judged}}) > 1:
            continue  # scores on different datasets' validation items do not rank models

        if judged:
            sign = 1.0 if headline.higher_is_better else -1.0
            # max keeps the first of equal scores: the earlier given run wins a tie
            best[name] = max(judged, key=lambda scored: sign * scored[0])[1]
    return Comparison(unique, settings, scores, differing, headlines, best, curves)


def _settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """A run's config with `TrainConfig`'s defaults beneath it and dict values flattened one level
    (`extra.foo`), so that a setting only one run names still lines up with the others'."""
    defaults = {f.name: f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
                for f in fields(TrainConfig) if f.default is not MISSING or f.default_factory is not MISSING}
    flat: dict[str, Any] = {}
    for key, value in {**defaults, **config}.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{sub}": inner for sub, inner in value.items()})
        else:
            flat[key] = value
    return flat


def _comparable(value: Any) -> str:
    """A setting's value as a key that is equal exactly when the values are (lists and dicts by content; 1 and
    1.0 alike, as a config read back from JSON may hold either)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = float(value)
    return json.dumps(value, sort_keys=True, default=str)


def _scores(run: RunRecord, shown: Sequence[Metric], logged: MetricRows) -> dict[str, float | None]:
    """`val_<key>` for every metric shown, and `test_<key>` when the run measured a test split."""
    parts = ("val", "test") if any(k.startswith("test_") for k in run.metrics) else ("val",)
    found: dict[str, float | None] = {}
    for part in parts:
        for metric in shown:
            name = f"{part}_{metric.key}"
            value = run.metrics.get(name)
            if value is None and part == "val":
                values = [r["value"] for r in logged if r["name"] == name and r["value"] is not None]
                value = values[-1] if values else None
            found[name] = None if value is None else float(value)
    return found
