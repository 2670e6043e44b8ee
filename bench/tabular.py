"""The table network's presets against the baselines on the sample tables: validation metric and seconds each.

    python bench/tabular.py [--tables penguins gapminder email] [--presets quick balanced best] [--device cpu]
    python bench/tabular.py --data FILE --target COLUMN

Per table, the baselines are fitted in this process on exactly what a run sees (the table modality's ingest,
`split_for` with the default validation fraction and seed, the encoder fitted on the training rows):
LightGBM (`core.baselines.tabular`) and the trivial one (always the largest class, or the training mean),
each timed from the encoded rows to its validation answers. Each MLP preset is
`python -m core train --data FILE --target COLUMN --modality tables --preset P --json` in a throwaway
workspace, timed whole: the upload validated and stored, the worker process, per-epoch checkpoints and the
run's own baselines included, so its seconds are an upper bound on the network's training time.
The metric is validation accuracy for classification, R² for regression.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = {"penguins": ("penguins.csv", "species"), "gapminder": ("gapminder.csv", "lifeExp"),
           "email": ("email.csv", "spam")}
PRESETS = ("quick", "balanced", "best")


@dataclass
class Row:
    model: str
    metric: float | None
    seconds: float
    note: str = ""


def baselines(path: Path, target: str, work: Path) -> tuple[str, list[Row]]:
    """(the task, the rows of LightGBM and the trivial baseline) on the split and encoding a run uses."""
    from core import data, tasks
    from core.baselines import Context, majority, mean, tabular
    from core.config import TrainConfig

    modality = data.modality("tables")
    dataset_dir = work / f"dataset-{path.stem}"
    info = modality.ingest(path, dataset_dir, options={"target": target})
    task = tasks.task(info["task"])
    config = TrainConfig(dataset_id="-", modality="tables", task=info["task"])
    split = data.split_for(modality, dataset_dir, info, config)
    targets = modality.targets(dataset_dir, info)
    state = task.state(info, targets[split.train])
    inputs = modality.fit_inputs(dataset_dir, info, config, split)
    context = Context(modality, dataset_dir, info, split, targets, state, config.seed, inputs)
    key = "accuracy" if task.name == "classification" else "r2"
    trivial = ("always the largest class", majority) if task.name == "classification" else (
        "always the training mean", mean)
    rows = []
    for name, method in ((tabular.TITLE, tabular), trivial):
        started = time.perf_counter()
        answers = method.predict(context)
        elapsed = time.perf_counter() - started
        rows.append(Row(name, task.metrics(targets[split.val], answers, state)[key], elapsed))
    return info["task"], rows


def network(path: Path, target: str, preset: str, device: str, work: Path) -> Row:
    """One MLP preset through the command line, in a workspace of its own."""
    home = work / f"home-{path.stem}-{preset}"
    env = {**os.environ, "GLASSBOX_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "core", "train", "--data", str(path), "--target", target, "--modality",
               "tables", "--backbone", "mlp", "--preset", preset, "--device", device, "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1][:80]
        return Row(f"MLP {preset}", None, elapsed, f"failed: {reason}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    metrics = result.get("metrics", {})
    value = metrics.get("val_accuracy", metrics.get("val_r2"))
    lightgbm = (result.get("baselines") or metrics.get("baselines") or {}).get("lightgbm", {})
    seen = lightgbm.get("accuracy", lightgbm.get("r2"))
    note = f"run's own LightGBM: {seen:.3f}" if isinstance(seen, float) else ""
    return Row(f"MLP {preset}", value, elapsed, note)


def show(table: str, task: str, rows: list[Row]) -> None:
    metric = "val accuracy" if task == "classification" else "val R²"
    print(f"\n{table} ({task})")
    print(f"  {'model':34} {metric:>12} {'seconds':>9}")
    for row in rows:
        value = "-" if row.metric is None else f"{row.metric:.3f}"
        print(f"  {row.model:34} {value:>12} {row.seconds:9.1f}  {row.note}".rstrip(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", nargs="+", choices=list(SAMPLES), default=list(SAMPLES))
    parser.add_argument("--data", help="another table to run instead of the samples (with --target)")
    parser.add_argument("--target", help="the column to predict in --data")
    parser.add_argument("--presets", nargs="*", choices=PRESETS, default=list(PRESETS),
                        help="the MLP presets to train (none: the baselines only)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.data and not args.target:
        parser.error("--data needs --target")
    chosen = [(Path(args.data).stem, Path(args.data).resolve(), args.target)] if args.data else [
        (name, ROOT / "sample_data" / SAMPLES[name][0], SAMPLES[name][1]) for name in args.tables]
    sys.path.insert(0, str(ROOT))
    work = Path(tempfile.mkdtemp(prefix="glassbox-bench-tables-"))
    print(f"{os.cpu_count()} CPUs, device {args.device}, workspace {work}")
    for table, path, target in chosen:
        task, fitted = baselines(path, target, work)
        trained = [network(path, target, preset, args.device, work) for preset in args.presets]
        show(f"{table} -> {target}", task, trained + fitted)


if __name__ == "__main__":
    main()
