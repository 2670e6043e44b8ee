"""The sequence networks against the classical baselines on the sample series: validation metric and seconds each.

    python bench/series.py [--samples vowels demand] [--backbones lstm gru cnn transformer] [--preset P]
                           [--epochs N] [--device cpu]
    python bench/series.py --backbones              (the baselines only)
    python bench/series.py --data FILE --options "--target label --series-id id --time t --value v"

Per sample, the baselines are fitted in this process on exactly what a run sees (the series modality's ingest,
`split_for` with the default validation fraction and seed: rolling origins for a forecast, a stratified split of
whole series for classification; the task's state and the modality's fitted inputs), each timed from the dataset
folder to its validation answers and scored by the task's own metrics:
- classification (japanese_vowels.csv, 9 speakers): summary features + extra trees (`series_features`) and
  always the largest class; metric validation accuracy, then macro F1;
- forecasting (electricity_demand.csv, day-ahead, H = 48): naive, seasonal naive and exponential smoothing; metric
  validation MAE (in the series' unit), then MASE; the note gives the held-out coverage of a 90% split-conformal
  interval built from the baseline's own validation residuals (`evaluation.held_out_coverage`). The demand sample
  also gets the two seasonal baselines with its weekly season (336 half-hours) beside the daily one the modality
  infers (48), since demand on a Monday is more like last Monday's than like Sunday's.
Each network is `python -m core train --data FILE --modality series ... --backbone B --json` in a throwaway
workspace, timed whole: the upload validated and stored, the worker process, per-epoch checkpoints and the run's
own baselines included, so its seconds are an upper bound on the network's training time.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BACKBONES = ("lstm", "gru", "cnn", "transformer")
# the train command's series options and the ingest option each gives
FLAGS = {"--target": "target", "--task": "task", "--time": "time", "--series-id": "series_id",
         "--channel": "channel", "--value": "value", "--horizon": "horizon", "--context": "context",
         "--season": "season", "--sheet": "sheet"}


@dataclass(frozen=True)
class Sample:
    file: str
    arguments: tuple[str, ...]
    other_seasons: tuple[int, ...] = ()


SAMPLES = {
    "vowels": Sample("japanese_vowels.csv", ("--target", "label", "--series-id", "series_id", "--time", "time",
                                             "--channel", "channel", "--value", "value")),
    "demand": Sample("electricity_demand.csv", ("--task", "forecast", "--time", "timestamp", "--target",
                                                "demand_mw", "--horizon", "48"), other_seasons=(336,)),
}
# the figures shown: (headline, second) metric keys per task
SHOWN = {"classification": ("accuracy", "macro_f1"), "forecast": ("mae", "mase")}
LEVEL = 0.9
TIMEOUT_S = 3600


@dataclass
class Row:
    model: str
    metric: float | None
    second: float | None
    seconds: float
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def options_of(arguments: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The ingest options that train's series flags give: ("--series-id", "id") -> {"series_id": "id"}."""
    found: dict[str, str] = {}
    for flag, value in zip(arguments[::2], arguments[1::2], strict=False):
        if flag not in FLAGS:
            raise SystemExit(f"unknown series option {flag}; known: {', '.join(FLAGS)}")
        found[FLAGS[flag]] = value
    return found


def baselines(path: Path, arguments: tuple[str, ...], other_seasons: tuple[int, ...], work: Path
              ) -> tuple[str, list[Row]]:
    """(the task, a row per baseline) on the split, state and inputs a run uses."""
    import numpy as np

    from core import data, evaluation, tasks
    from core.baselines import Context, ets, majority, naive, seasonal_naive, series_features
    from core.config import TrainConfig

    modality = data.modality("series")
    dataset_dir = work / f"dataset-{path.stem}"
    info = modality.ingest(path, dataset_dir, options=options_of(arguments))
    task = tasks.task(info["task"])
    config = TrainConfig(dataset_id="-", modality="series", task=info["task"])
    split = data.split_for(modality, dataset_dir, info, config)
    targets = np.asarray(modality.targets(dataset_dir, info))
    inputs = modality.fit_inputs(dataset_dir, info, config, split)
    state = task.state(info, targets[split.train], inputs)
    context = Context(modality, dataset_dir, info, split, targets, state, config.seed, inputs)
    forecast = info["task"] == "forecast"
    methods = [(m.TITLE, m, context) for m in ((naive, seasonal_naive, ets) if forecast else
                                               (series_features, majority))]
    for season in other_seasons if forecast else ():
        other = Context(modality, dataset_dir, info, split, targets, {**state, "season": season}, config.seed,
                        inputs)
        methods += [(f"{m.TITLE} (season {season})", m, other) for m in (seasonal_naive, ets)]
    headline, second = SHOWN[info["task"]]
    truth = targets[split.val]
    rows = []
    for title, method, given in methods:
        started = time.perf_counter()
        try:
            answers = method.predict(given)
        except ValueError as exc:
            rows.append(Row(title, None, None, time.perf_counter() - started, f"does not apply: {exc}"))
            continue
        elapsed = time.perf_counter() - started
        metrics = task.metrics(truth, answers, state)
        note = ""
        if forecast:
            coverage = evaluation.held_out_coverage(truth, answers, LEVEL)
            note = (f"{LEVEL:.0%} interval covers {coverage:.0%} held out" if coverage is not None else
                    f"too few origins to check a {LEVEL:.0%} interval held out")
        rows.append(Row(title, metrics.get(headline), metrics.get(second), elapsed, note))
    where = (f"{len(split.train)} training, {len(split.val)} validation "
             + ("origins" if forecast else "series"))
    season = f", season {info.get('season')}, horizon {info.get('horizon')}" if forecast else ""
    print(f"  {where}{season}", flush=True)
    return info["task"], rows


def network(path: Path, arguments: tuple[str, ...], backbone: str, preset: str | None, epochs: int | None,
            device: str, task: str, work: Path) -> Row:
    """One backbone through the command line, in a workspace of its own."""
    home = work / f"home-{path.stem}-{backbone}"
    env = {**os.environ, "GLASSBOX_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "core", "train", "--data", str(path), "--modality", "series", *arguments,
               "--backbone", backbone, "--device", device, "--json"]
    command += ["--preset", preset] if preset else []
    command += ["--epochs", str(epochs)] if epochs else []
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return Row(backbone, None, None, time.perf_counter() - started, f"stopped after {TIMEOUT_S} s")
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no message"])[-1][:100]
        return Row(backbone, None, None, elapsed, f"failed: {reason}")
    try:
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return Row(backbone, None, None, elapsed, "failed: no JSON line")
    metrics = result.get("metrics", result)
    headline, second = SHOWN[task]
    notes = []
    coverage = metrics.get("val_interval_coverage", metrics.get("interval_coverage"))
    if isinstance(coverage, float):
        notes.append(f"interval covers {coverage:.0%}")
    if result.get("epoch") is not None:
        notes.append(f"{result['epoch']} epochs, best {metrics.get('best_epoch', '?')}")
    return Row(backbone, metrics.get(f"val_{headline}"), metrics.get(f"val_{second}"), elapsed, ", ".join(notes),
               {"result": result})


def show(name: str, task: str, rows: list[Row]) -> None:
    headline, second = SHOWN[task]
    label = {"accuracy": "val accuracy", "macro_f1": "val macro F1", "mae": "val MAE", "mase": "val MASE"}
    print(f"\n{name} ({task})")
    print(f"  {'model':44} {label[headline]:>13} {label[second]:>13} {'seconds':>9}")
    for row in rows:
        figures = ["-" if value is None else f"{value:.3f}" for value in (row.metric, row.second)]
        print(f"  {row.model:44} {figures[0]:>13} {figures[1]:>13} {row.seconds:9.1f}  {row.note}".rstrip(),
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", nargs="+", choices=list(SAMPLES), default=list(SAMPLES))
    parser.add_argument("--data", help="another series file to run instead of the samples (with --options)")
    parser.add_argument("--options", default="", help='its series options as train takes them, e.g. '
                        '"--target label --series-id id --time t --value v"')
    parser.add_argument("--backbones", nargs="*", choices=BACKBONES, default=list(BACKBONES),
                        help="the networks to train (none: the baselines only)")
    parser.add_argument("--preset", help="a series preset for every network (default: the CLI's)")
    parser.add_argument("--epochs", type=int, help="epochs for every network (default: the preset's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    chosen = [(Path(args.data).stem, Path(args.data).resolve(), tuple(shlex.split(args.options)), ())] \
        if args.data else [(name, ROOT / "sample_data" / SAMPLES[name].file, SAMPLES[name].arguments,
                            SAMPLES[name].other_seasons) for name in args.samples]
    sys.path.insert(0, str(ROOT))
    work = Path(tempfile.mkdtemp(prefix="glassbox-bench-series-"))
    print(f"{os.cpu_count()} CPUs, device {args.device}, workspace {work}")
    for name, path, arguments, other_seasons in chosen:
        print(f"\n{name}: {path.name} {' '.join(arguments)}", flush=True)
        task, fitted = baselines(path, arguments, other_seasons, work)
        trained = [network(path, arguments, backbone, args.preset, args.epochs, args.device, task, work)
                   for backbone in args.backbones]
        show(name, task, trained + fitted)


if __name__ == "__main__":
    main()
