"""Hyperparameter search: one Optuna study whose trials are ordinary runs.

A search is described by a `SearchSpec` (the dataset, the base settings, which settings vary over which
ranges, how many trials, a time budget and how many trials run at once), saved as
`<workspace>/searches/<id>/search.json`. Its study lives in Optuna's journal file beside it
(`JournalStorage(JournalFileBackend(...))`, which several processes and threads may append to at once; SQLite
under parallel writers fails with "database is locked"). Each trial creates a run the way `python -m core train`
does (`core.runs.create`), tagged `config["search"] = {"id", "trial"}`, waits on it through the store, reports
the task's headline validation figure after every epoch (`trial.report`) and cancels the run when the pruner
says so (`trial.should_prune`, Optuna's MedianPruner by default). Method: Akiba et al., "Optuna: A
Next-generation Hyperparameter Optimization Framework", KDD 2019; TPE sampling (Bergstra et al., NeurIPS 2011).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from core import data, datasets, jobs, runs, tasks
from core.config import AUGMENTATIONS, CLASS_WEIGHTS, MODES, OPTIMIZERS, TrainConfig
from core.errors import GlassboxError
from core.store import Store
from core.tasks import Metric
from core.workspace import Workspace

if TYPE_CHECKING:  # optuna and plotly load only when a search runs or is shown
    import optuna
    from plotly.graph_objects import Figure

_PROJECT_ROOT = Path(__file__).resolve().parents[1]

# settings every modality's runs read, which a search may vary; a modality adds its own (`Modality.settings`)
COMMON_SETTINGS = ("lr", "batch_size", "epochs", "weight_decay", "label_smoothing", "mode", "backbone",
                   "backbone_lr_scale", "warmup_fraction", "optimizer", "early_stopping_patience", "class_weights")
# the values a setting that is a choice may take (backbone: the modality's catalog, checked by name)
CHOICES: dict[str, tuple[Any, ...]] = {"mode": MODES, "optimizer": OPTIMIZERS, "augmentation": AUGMENTATIONS,
                                       "class_weights": CLASS_WEIGHTS, "channels_last": (True, False)}
_TYPES: dict[str, type] = {f.name: type(f.default) for f in fields(TrainConfig) if isinstance(f.default, (int, float,
                                                                                                            str))}
MAX_TRIALS = 1000
MAX_PARALLEL = 32
# Optuna's trial states as the results table words them
_STATES = {"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


# ---- the search space -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One setting a search varies: a range `low`..`high` (both ends included; `log` samples its logarithm
    uniformly, for rates) or a list of `choices`. Numbers take the TrainConfig field's type (an int field draws
    whole numbers)."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def kind(self) -> str:
        """"choice", "int" or "float"."""
        if self.choices:
            return "choice"
        return "int" if _TYPES.get(self.name) is int else "float"

    @classmethod
    def parse(cls, text: str) -> Param:
        """`NAME=LOW:HIGH`, `NAME=LOW:HIGH:log` or `NAME=a,b,c` (the CLI's --param). GlassboxError, one line,
        for anything else; the values themselves are checked by `SearchSpec.validate`."""
        name, sep, value = text.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not value.strip():
            raise GlassboxError(f"--param takes NAME=LOW:HIGH[:log] or NAME=a,b,c, not {text!r}")
        kind = _TYPES.get(name)
        if ":" in value:
            ends = [part.strip() for part in value.split(":")]
            log = len(ends) == 3 and ends[2].lower() == "log"
            if len(ends) not in (2, 3) or (len(ends) == 3 and not log):
                raise GlassboxError(f"--param {name}: a range is LOW:HIGH or LOW:HIGH:log, not {value!r}")
            try:
                low, high = float(ends[0]), float(ends[1])
            except ValueError:
                raise GlassboxError(f"--param {name}: {ends[0]!r} to {ends[1]!r} is not a range of numbers") from None
            return cls(name, low, high, log=log)
        choices = tuple(_typed(name, part.strip(), kind) for part in value.split(",") if part.strip())
        return cls(name, choices=choices)

    def check(self, base: TrainConfig) -> None:
        """GlassboxError (one line) unless every value the search may draw is one the base run accepts."""
        if self.choices:
            if len(set(self.choices)) != len(self.choices):
                raise GlassboxError(f"{self.name}: a choice is given twice")
            allowed = CHOICES.get(self.name)
            for value in self.choices:
                if allowed is not None and value not in allowed:
                    raise GlassboxError(f"{self.name}: {value!r} is not one of {', '.join(map(str, allowed))}")
                _accepted(base, self.name, value)
            if self.name == "backbone":
                from core import models

                for value in self.choices:
                    models.family(base.modality).describe(value)  # GlassboxError for an unknown backbone
            return
        if self.name in CHOICES or _TYPES.get(self.name) is str:
            raise GlassboxError(f"{self.name} is a choice: give its values as {self.name}=a,b,c")
        if self.low is None or self.high is None or not self.low < self.high:
            raise GlassboxError(f"{self.name}: the low end ({self.low:g}) must be below the high end ({self.high:g})"
                                if self.low is not None and self.high is not None
                                else f"{self.name}: give a range LOW:HIGH or choices a,b,c")
        if self.log and self.low <= 0:
            raise GlassboxError(f"{self.name}: a log range must start above 0, not at {self.low:g}")
        if self.kind == "int" and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise GlassboxError(f"{self.name} takes whole numbers, not {self.low:g} to {self.high:g}")
        for end in (self.low, self.high):
            _accepted(base, self.name, int(end) if self.kind == "int" else float(end))

    def suggest(self, trial: optuna.Trial) -> Any:
        """This setting's value for `trial`, drawn by the study's sampler."""
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low or 0), int(self.high or 0), log=self.log)
        return trial.suggest_float(self.name, float(self.low or 0), float(self.high or 0), log=self.log)

    def describe(self) -> str:
        """In words, for tables and logs: "lr 1e-04 to 0.1 (log)", "mode: head, full"."""
        if self.choices:
            return f"{self.name}: {', '.join(map(str, self.choices))}"
        return f"{self.name} {self.low:g} to {self.high:g}" + (" (log)" if self.log else "")


def _typed(name: str, value: str, kind: type | None) -> Any:
    """A choice as the TrainConfig field holds it: "32" -> 32 for batch_size, "true" -> True for a flag."""
    if kind is bool:
        if value.lower() not in ("true", "false"):
            raise GlassboxError(f"--param {name}: {value!r} is not true or false")
        return value.lower() == "true"
    if kind in (int, float):
        try:
            number = float(value)
        except ValueError:
            raise GlassboxError(f"--param {name}: {value!r} is not a number") from None
        if kind is int and not number.is_integer():
            raise GlassboxError(f"--param {name}: {value!r} is not a whole number")
        return int(number) if kind is int else number
    return value


def _accepted(base: TrainConfig, name: str, value: Any) -> None:
    """TrainConfig's own checks on `value`, the message naming the setting searched."""
    try:
        base.updated(**{name: value})
    except GlassboxError as exc:
        raise GlassboxError(f"{name} = {value!r} cannot be tried: {exc}") from None
    except TypeError:
        raise GlassboxError(f"{name} is not a setting") from None


def searchable(modality: str) -> tuple[str, ...]:
    """The settings a search over `modality`'s runs may vary: the common ones, then the modality's own."""
    return COMMON_SETTINGS + tuple(data.modality(modality).settings)


def default_params(base: TrainConfig) -> list[Param]:
    """The space searched when none is given: the learning rate a decade either side of the base run's (log)
    and the weight decay from 1e-5 to 0.1 (log), the two settings that matter most for fine-tuning."""
    return [Param("lr", max(base.lr / 10, 1e-7), min(base.lr * 10, 1.0), log=True),
            Param("weight_decay", 1e-5, 0.1, log=True)]


def suggested(name: str, base: TrainConfig, catalog: Sequence[str] = ()) -> Param:
    """Where a search of the setting `name` starts (what the Train page's Search offers first): `default_params`'
    ranges, every choice of a choice setting (the first two of `catalog` for a backbone, the base run's first),
    else a range around the base run's value (half to twice a count; 0 to 0.2 for a fraction)."""
    known = {p.name: p for p in default_params(base)}
    value = getattr(base, name)
    if name in known:
        return known[name]
    if name == "backbone":
        return Param(name, choices=tuple(dict.fromkeys([value, *catalog]))[:2])
    if name in CHOICES:
        return Param(name, choices=CHOICES[name])
    if name == "backbone_lr_scale":
        return Param(name, 0.01, 1.0, log=True)
    if _TYPES.get(name) is int:
        low = {"image_size": 32, "max_length": 8}.get(name, 0 if name == "early_stopping_patience" else 1)
        return Param(name, max(low, value // 2), max(low + 1, value * 2))
    return Param(name, 0.0, 0.2)


# ---- the spec ---------------------------------------------------------------------------------------------
@dataclass
class SearchSpec:
    """A search, as saved in `searches/<id>/search.json`: the dataset (its modality and task), the base run's
    settings (a TrainConfig's fields), the settings varied (`params`), the number of trials, the time budget in
    seconds (no new trial starts after it; None: no limit), how many trials run at once and the job backend."""

    id: str
    dataset_id: str
    modality: str
    task: str
    base: dict[str, Any]
    params: list[Param]
    trials: int = 8
    timeout_s: float | None = None
    parallel: int = 1
    backend: str = "local"
    created_at: float = field(default_factory=time.time)
    # whose runs the trials are (`core.store.Store.scoped`): the person who started it in a shared studio
    owner: str = "local"

    @classmethod
    def new(cls, store: Store, base: TrainConfig, params: Sequence[Param], *, trials: int = 8,
            timeout_s: float | None = None, parallel: int = 1, backend: str | None = None) -> SearchSpec:
        """A validated spec with a fresh id, the modality and task read from the base run's dataset; the backend
        defaults to the studio's (`core.jobs.configured`). GlassboxError (one line) for a bad one."""
        dataset = datasets.resolve(store, base.dataset_id)
        spec = cls(id=time.strftime("search-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6], dataset_id=dataset.id,
                   modality=dataset.modality, task=dataset.info.get("task", data.modality(dataset.modality).tasks[0]),
                   base=base.updated(dataset_id=dataset.id).to_dict(), params=list(params), trials=trials,
                   timeout_s=timeout_s, parallel=parallel,
                   backend=backend or jobs.configured(), owner=store.owner)
        return spec.validate(store)

    def validate(self, store: Store) -> SearchSpec:
        """Returns self; GlassboxError (one line) when the dataset is gone or does not match the base run,
        a count is out of bounds, or a setting's range or choices hold a value the run would refuse."""
        dataset = datasets.resolve(store, self.dataset_id)
        base = self.base_config()
        if dataset.modality != self.modality or base.modality != self.modality:
            raise GlassboxError(f"dataset {dataset.name} holds {dataset.modality}, not {base.modality}")
        if base.task != self.task:
            raise GlassboxError(f"dataset {dataset.name}'s task is {self.task}, not {base.task}")
        if not 1 <= self.trials <= MAX_TRIALS:
            raise GlassboxError(f"the number of trials must be between 1 and {MAX_TRIALS}")
        if not 1 <= self.parallel <= MAX_PARALLEL:
            raise GlassboxError(f"parallel trials must be between 1 and {MAX_PARALLEL}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise GlassboxError("the time budget must be a positive number of seconds")
        if not self.params:
            raise GlassboxError("give at least one setting to search (e.g. --param lr=1e-4:1e-1:log)")
        names = [p.name for p in self.params]
        allowed = searchable(self.modality)
        for param in self.params:
            if param.name not in allowed:
                raise GlassboxError(f"cannot search {param.name!r} for {self.modality} runs (searchable: "
                                    f"{', '.join(allowed)})")
            if names.count(param.name) > 1:
                raise GlassboxError(f"{param.name} is searched twice: give it once")
            param.check(base)
        return self

    def base_config(self) -> TrainConfig:
        """The base run's settings, which every trial starts from."""
        return TrainConfig.from_dict({**self.base, "search": None})

    @property
    def metric(self) -> Metric:
        """The figure trials are judged by: the task's headline (accuracy, R², MAE), on validation."""
        return tasks.task(self.task).metrics_shown[0]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "params": [asdict(p) for p in self.params]}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> SearchSpec:
        try:
            params = [Param(**{**p, "choices": tuple(p.get("choices", ()))}) for p in value["params"]]
            return cls(**{**value, "params": params})
        except (KeyError, TypeError) as exc:
            raise GlassboxError(f"not a search spec ({exc})") from None


def search_dir(ws: Workspace, search_id: str) -> Path:
    """`<workspace>/searches/<id>`: the spec, the study's journal, the search's own state and log."""
    return ws.home / "searches" / search_id


def save(ws: Workspace, spec: SearchSpec) -> Path:
    """Write the spec's search.json (its folder made if needed); returns its path."""
    path = search_dir(ws, spec.id) / "search.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec.to_dict(), indent=2))
    return path


def load(ws: Workspace, search: str | Path) -> SearchSpec:
    """A saved spec, by id or by the path of its search.json. GlassboxError when there is none."""
    path = Path(search)
    if not path.suffix:
        path = search_dir(ws, str(search)) / "search.json"
    try:
        return SearchSpec.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        raise GlassboxError(f"no search {search} (no readable {path})") from None


def list_searches(ws: Workspace, dataset_id: str | None = None) -> list[SearchSpec]:
    """Every saved search, newest first; only those on `dataset_id` when given."""
    found = []
    for path in (ws.home / "searches").glob("*/search.json"):
        try:
            spec = SearchSpec.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, GlassboxError):
            continue  # a spec being written, or not one of ours
        if dataset_id is None or spec.dataset_id == dataset_id:
            found.append(spec)
    return sorted(found, key=lambda s: -s.created_at)


# ---- running a search -------------------------------------------------------------------------------------
class _TrialFailed(GlassboxError):
    """A trial's run ended without completing: the trial fails, the search goes on."""


@dataclass(frozen=True)
class TrialRow:
    """One trial in the results: its run, the settings it drew, its value (the headline validation figure of
    the run's best epoch; a pruned trial's last reported one), Optuna's verdict in words, the run's status and
    why a failed trial failed."""

    trial: int
    run: str | None
    params: dict[str, Any]
    value: float | None
    state: str
    run_status: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class SearchResult:
    """A search's trials so far, its best completed one (None before any completes), the search process's
    status ("running", "finished", "failed" or "stopped": its process died) and any error it ended with."""

    spec: SearchSpec
    status: str
    trials: list[TrialRow]
    best: TrialRow | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The CLI's JSON: {"search", "status", "metric", "best": {"trial", "run", "value", "params"}, "trials"}."""
        metric = self.spec.metric
        return {"search": self.spec.id, "status": self.status, "error": self.error,
                "metric": {"key": f"val_{metric.key}", "title": metric.title,
                           "higher_is_better": metric.higher_is_better},
                "best": None if self.best is None else {"trial": self.best.trial, "run": self.best.run,
                                                        "value": self.best.value, "params": self.best.params},
                "trials": [asdict(row) for row in self.trials]}


def run(ws: Workspace, store: Store, spec: SearchSpec, *, pruner: optuna.pruners.BasePruner | None = None,
        poll_s: float = 0.5, on_trial: Callable[[TrialRow], None] | None = None) -> SearchResult:
    """Run the search in this process until `spec.trials` trials have ended or `spec.timeout_s` has passed
    (trials running then finish; none starts after), `spec.parallel` at once (Optuna's threads, each waiting on
    its own run), and return the results. `pruner` defaults to `default_pruner(spec)`; `on_trial` is called as
    each trial ends. The spec is saved first (a search run twice continues its study). GlassboxError when the
    spec is invalid."""
    import optuna

    store = store.scoped(spec.owner) if spec.owner != store.owner else store  # the trials are the owner's runs
    spec.validate(store)
    save(ws, spec)
    _write_state(ws, spec.id, status="running", pid=os.getpid(), pid_started=_started(os.getpid()),
                 started_at=time.time(), finished_at=None, error=None)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # each trial's end is reported by `on_trial`
    study = optuna.create_study(
        study_name=spec.id, storage=storage(ws, spec.id), load_if_exists=True,
        direction="maximize" if spec.metric.higher_is_better else "minimize",
        pruner=pruner or default_pruner(spec), sampler=optuna.samplers.TPESampler(seed=spec.base_config().seed))
    objective = _Objective(ws, store, spec, poll_s)
    done = sum(t.state.is_finished() for t in study.trials)
    callbacks = [lambda study, frozen: on_trial(_row(frozen, store))] if on_trial else []
    try:
        study.optimize(objective, n_trials=max(0, spec.trials - done), timeout=spec.timeout_s, n_jobs=spec.parallel,
                       catch=(GlassboxError,), callbacks=callbacks)
    except BaseException as exc:  # an interrupt (`stop`) or a bug: the search's runs must not train on unwatched
        objective.cancel_open_runs()
        stopped = isinstance(exc, KeyboardInterrupt)
        _write_state(ws, spec.id, status="stopped" if stopped else "failed", finished_at=time.time(),
                     error="stopped by the user" if stopped else f"internal error: {type(exc).__name__}: {exc}")
        raise
    _write_state(ws, spec.id, status="finished", finished_at=time.time())
    return results(ws, store, spec.id)


def default_pruner(spec: SearchSpec) -> optuna.pruners.BasePruner:
    """Optuna's MedianPruner: a trial stops when its figure after an epoch is worse than the median of earlier
    trials' at that epoch, once two trials have ended (fewer give no median worth trusting) and from the second
    epoch (the first mostly measures the warm-up)."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)


class _Objective:
    """Optuna's objective: one run per trial, watched through the store until it ends or is pruned."""

    def __init__(self, ws: Workspace, store: Store, spec: SearchSpec, poll_s: float) -> None:
        self.ws, self.store, self.spec, self.poll_s = ws, store, spec, poll_s
        self.base = spec.base_config()
        self.metric_name = f"val_{spec.metric.key}"
        self.backend = _trial_backend(ws, store, spec)
        self._open: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        values = {param.name: param.suggest(trial) for param in self.spec.params}
        try:
            config = self.base.updated(**values, search={"id": self.spec.id, "trial": trial.number})
            record = runs.create(self.ws, self.store, config, backend=self.spec.backend)
        except GlassboxError as exc:  # e.g. a full disk: this trial fails, the study decides whether to go on
            trial.set_user_attr("error", str(exc))
            raise
        trial.set_user_attr("run_id", record.id)
        with self._lock:
            self._open.add(record.id)
        try:
            reported = 0
            while True:
                run = self.store.get_run(record.id)
                ended = run.is_terminal or run.status == "interrupted"
                for row in self.store.metrics(record.id, [self.metric_name]):
                    if row["epoch"] > reported:
                        reported = row["epoch"]
                        trial.report(row["value"], reported)
                        if not ended and trial.should_prune():
                            runs.cancel(self.ws, self.store, record.id, wait_s=runs.CANCEL_GRACE_S + 5)
                            raise optuna.TrialPruned(f"pruned after epoch {reported}")
                if ended:
                    break
                if run.status == "queued":
                    self.backend.dispatch()  # this search's capacity, not the default one the worker used
                else:
                    runs.reconcile(self.ws, self.store)
                time.sleep(self.poll_s)
        finally:
            with self._lock:
                self._open.discard(record.id)
        value = run.metrics.get(self.metric_name)
        if run.status != "completed" or not isinstance(value, (int, float)):
            trial.set_user_attr("error", run.error or f"the run ended {run.status}")
            raise _TrialFailed(f"trial {trial.number}: run {run.id} {run.status}" + (f": {run.error}" if run.error
                                                                                     else ""))
        return float(value)

    def cancel_open_runs(self) -> None:
        """Ask every run still being watched to stop (the search itself is ending)."""
        with self._lock:
            open_runs = list(self._open)
        for run_id in open_runs:
            with contextlib.suppress(GlassboxError):  # it ended meanwhile
                runs.cancel(self.ws, self.store, run_id)


def _trial_backend(ws: Workspace, store: Store, spec: SearchSpec) -> jobs.JobBackend:
    """The search's job backend; one that counts its own capacity (local) gets room for `spec.parallel` runs
    in the dispatches the search makes; a cluster backend schedules by the cluster's resources instead."""
    chosen = jobs.backend(spec.backend, ws, store)
    if "max_concurrent" in inspect.signature(type(chosen)).parameters:
        return jobs.backend(spec.backend, ws, store, max_concurrent=spec.parallel)
    return chosen


def storage(ws: Workspace, search_id: str) -> optuna.storages.BaseStorage:
    """The search's Optuna storage: a journal file, `searches/<id>/journal.log`, which parallel trials (threads
    or processes) append to under a file lock."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = search_dir(ws, search_id) / "journal.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


# ---- results ----------------------------------------------------------------------------------------------
def study(ws: Workspace, search_id: str) -> optuna.Study | None:
    """The search's Optuna study, read from its journal; None before its first trial is recorded."""
    import optuna

    if not (search_dir(ws, search_id) / "journal.log").exists():
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=search_id, storage=storage(ws, search_id))
    except KeyError:  # the journal exists but the study is not written yet
        return None


def results(ws: Workspace, store: Store, search_id: str) -> SearchResult:
    """The search's trials (in trial order) with their runs' statuses, its best completed trial and the search
    process's status. GlassboxError when there is no such search."""
    spec = load(ws, search_id)
    found = study(ws, search_id)
    trials = sorted(found.trials, key=lambda t: t.number) if found is not None else []
    rows = [_row(t, store) for t in trials]
    completed = [row for row in rows if row.state == "completed" and row.value is not None]
    pick = max if spec.metric.higher_is_better else min
    best = pick(completed, key=lambda row: row.value or 0.0) if completed else None
    state = _read_state(ws, search_id)
    return SearchResult(spec=spec, status=_status(state), trials=rows, best=best, error=state.get("error"))


def figures(ws: Workspace, search_id: str) -> dict[str, Figure]:
    """Optuna's plots of the search's completed trials, by title: the parallel coordinates of the settings
    against the value (from one completed trial) and the settings' importances (Optuna's default evaluator,
    from two completed trials whose settings differ); {} before."""
    from optuna import visualization

    found = study(ws, search_id)
    if found is None:
        return {}
    completed = [t for t in found.trials if t.state.name == "COMPLETE"]
    value = load(ws, search_id).metric.title
    shown: dict[str, Figure] = {}
    if completed:
        shown["Settings against the result"] = visualization.plot_parallel_coordinate(found, target_name=value)
    varied = {name for t in completed for name in t.params if len({str(u.params.get(name)) for u in completed}) > 1}
    if len(completed) >= 2 and varied:  # importances of settings that never changed are undefined
        shown["Which settings mattered"] = visualization.plot_param_importances(found, target_name=value)
    for title, figure in shown.items():
        figure.update_layout(title=title)
    return shown


def _row(trial: optuna.trial.FrozenTrial, store: Store) -> TrialRow:
    run_id = trial.user_attrs.get("run_id")
    run_status = None
    if run_id:
        try:
            run_status = store.get_run(run_id).status
        except GlassboxError:
            run_status = "deleted"
    value = trial.value if trial.values else (trial.intermediate_values[max(trial.intermediate_values)]
                                              if trial.intermediate_values else None)
    return TrialRow(trial=trial.number, run=run_id, params=dict(trial.params), value=value,
                    state=_STATES.get(trial.state.name, trial.state.name.lower()), run_status=run_status,
                    error=trial.user_attrs.get("error"))


# ---- the search's own process -----------------------------------------------------------------------------
def start(ws: Workspace, spec: SearchSpec) -> int:
    """Save the spec and run it in a detached process (`python -m core search --spec FILE`, in its own session
    like the local backend's workers), so closing the studio loses nothing; returns its pid. Its output goes to
    `searches/<id>/search.log`."""
    path = save(ws, spec)
    env = {**os.environ, "GLASSBOX_HOME": str(ws.home), "PYTHONUNBUFFERED": "1"}
    with open(path.parent / "search.log", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "core", "search", "--spec", str(path), "--json"],
                                   cwd=_PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    _write_state(ws, spec.id, status="running", pid=process.pid, pid_started=_started(process.pid),
                 started_at=time.time())
    return process.pid


def stop(ws: Workspace, store: Store, search_id: str) -> None:
    """Stop a running search: its process (SIGINT, which cancels the runs it watches) and any of its runs
    still queued or training."""
    state = _read_state(ws, search_id)
    if state.get("status") == "running" and _alive(state):
        os.killpg(int(state["pid"]), signal.SIGINT)
    for record in store.list_runs(["queued", "starting", "running", "interrupted"]):
        if (record.config.get("search") or {}).get("id") == search_id:
            with contextlib.suppress(GlassboxError):  # it ended meanwhile
                runs.cancel(ws, store, record.id)
    _write_state(ws, search_id, status="stopped", finished_at=time.time(), error="stopped by the user")


def _write_state(ws: Workspace, search_id: str, **values: Any) -> None:
    path = search_dir(ws, search_id) / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {**_read_state(ws, search_id), **values}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state))
    temporary.replace(path)  # readers never see half a file


def _started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _read_state(ws: Workspace, search_id: str) -> dict[str, Any]:
    try:
        return json.loads((search_dir(ws, search_id) / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def _status(state: dict[str, Any]) -> str:
    """The state file's status, except that a "running" search whose process is gone is "stopped"."""
    status = state.get("status", "stopped")
    if status == "running" and not _alive(state):
        return "stopped"
    return status


def _alive(state: dict[str, Any]) -> bool:
    """Whether the process the state names still runs: its pid, started when the state says (a pid reused by
    another process after a reboot starts at another time), and not a zombie."""
    pid, started = state.get("pid"), state.get("pid_started")
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError):  # a search this process started and that has ended: reap it
        os.waitpid(int(pid), os.WNOHANG)
    try:
        process = psutil.Process(int(pid))
        return process.status() != psutil.STATUS_ZOMBIE and (started is None or
                                                             abs(process.create_time() - started) < 1e-3)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
