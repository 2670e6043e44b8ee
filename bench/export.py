"""What compression buys and costs: size, CPU latency per item and validation metric of a run's model as PyTorch,
fp32 ONNX, int8 ONNX and fp16 ONNX, one run per modality (and a forecast).

    python bench/export.py                      # train one quick run per sample below first
    python bench/export.py --samples tables forecast
    GLASSBOX_HOME=~/glassbox python bench/export.py --runs RUN_ID [RUN_ID ...]   # runs you already have

Each fresh run is `python -m core train --data sample_data/... --preset quick --json` in a throwaway workspace.
The model is exported as the bundle exports it (`core.export.onnx.export`, traced on validation items), int8 and fp16
come from `core.export.quantize.quantize` (int8 static calibrated on 128 training items when the graph has
convolutions, dynamic MatMul/Gemm otherwise), and every ONNX row is `core.export.quantize.measure` on the run's
validation items. The PyTorch row runs the same items through the eager model (`torch.set_num_threads(1)`, like
onnxruntime's single intra-op thread); its size is the run's `model.safetensors`. Latency is the median over up to
32 items at batch 1 after 3 warm-up calls, on a machine others may share: figures, not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLES: dict[str, list[str]] = {
    "images": ["--data", "sample_data/digits.zip"],
    "text": ["--data", "sample_data/drugreviews.csv"],
    "tables": ["--data", "sample_data/penguins.csv", "--target", "species"],
    "series": ["--data", "sample_data/japanese_vowels.csv", "--modality", "series", "--target", "label",
               "--series-id", "series_id", "--time", "time", "--channel", "channel", "--value", "value"],
    "forecast": ["--data", "sample_data/electricity_demand.csv", "--modality", "series", "--task", "forecast",
                 "--time", "timestamp", "--target", "demand_mw", "--horizon", "48"],
}
CALIBRATION_ITEMS = 128
LATENCY_ITEMS = 32


@dataclass
class Row:
    form: str
    size: int | None
    latency_ms: float | None
    metric: float | None
    note: str = ""


def train(sample: str) -> str:
    """A quick run on one of `SAMPLES` through the command line; its run id."""
    command = [sys.executable, "-m", "core", "train", *SAMPLES[sample], "--preset", "quick", "--device", "cpu",
               "--json"]
    done = subprocess.run(command, cwd=ROOT, env=os.environ, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"training {sample} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["run_id"]


def compare(run_id: str, work: Path) -> tuple[str, list[Row]]:
    """(a heading naming the run, its rows: PyTorch, ONNX fp32, int8, fp16)."""
    import torch

    from core import tasks
    from core.artifacts import RunFiles, load_model, target_state
    from core.errors import GlassboxError
    from core.export.feeds import read_feeds
    from core.export.onnx import export
    from core.export.quantize import quantize
    from core.store import Store
    from core.workspace import Workspace

    torch.set_num_threads(1)
    ws = Workspace.from_env()
    store = Store(ws.db_path)
    files = RunFiles(ws.run_dir(run_id))
    model, config, _ = load_model(files, ws.cache_dir)
    task, state = tasks.of_run(config), target_state(files)
    key = task.metrics_shown[0].key
    feeds = read_feeds(ws, store, config, model, "val")
    heading = (f"{run_id}: {config.modality}, {task.name}, backbone {config.backbone}, {len(feeds)} validation items, "
               f"headline val {task.metrics_shown[0].title}")

    rows = [eager(model, config.modality, feeds, task, state, key, files.weights.stat().st_size)]
    fp32 = work / run_id / "fp32.onnx"
    try:
        export(model, config.modality, feeds, fp32)
    except GlassboxError as error:
        return heading, [*rows, Row("ONNX fp32", None, None, None, f"failed: {error}")]
    rows.append(_measured("ONNX fp32", fp32, feeds, task, state, key, "torch.onnx dynamo, opset 18"))
    calibration = read_feeds(ws, store, config, model, "train", limit=CALIBRATION_ITEMS).batches
    for kind in ("int8", "fp16"):
        out = work / run_id / f"{kind}.onnx"
        try:
            started = time.perf_counter()
            method = quantize(fp32, out, kind, calibration)
            method += f"; {time.perf_counter() - started:.1f} s"
        except GlassboxError as error:
            rows.append(Row(f"ONNX {kind}", None, None, None, f"not applied: {error}"))
            continue
        rows.append(_measured(f"ONNX {kind}", out, feeds, task, state, key, method))
    return heading, rows


def eager(model: Any, modality: str, feeds: Any, task: Any, state: dict[str, Any], key: str, size: int) -> Row:
    """The eager PyTorch model on the same feeds (the ONNX adapter's `call`, as the export checks use it)."""
    import numpy as np
    import torch

    from core.export.onnx import adapter

    call = adapter(modality).call
    with torch.no_grad():
        logits = torch.cat([call(model, batch).float() for batch in feeds.batches])
        metric = task.metrics(np.asarray(feeds.targets), task.answers(logits, state), state)[key]
        singles = [{k: v[i:i + 1] for k, v in batch.items()} for batch in feeds.batches
                   for i in range(len(next(iter(batch.values()))))]
        chosen = [singles[i] for i in np.linspace(0, len(singles) - 1, min(LATENCY_ITEMS, len(singles))).astype(int)]
        for feed in chosen[:3]:
            call(model, feed)
        timings = []
        for feed in chosen:
            started = time.perf_counter()
            call(model, feed)
            timings.append((time.perf_counter() - started) * 1000)
    return Row("PyTorch eager", size, statistics.median(timings), metric, "model.safetensors")


def _measured(form: str, path: Path, feeds: Any, task: Any, state: dict[str, Any], key: str, note: str) -> Row:
    from core.export.quantize import measure

    found = measure(path, feeds, task, state, latency_items=LATENCY_ITEMS)
    return Row(form, found["size"], found["latency_ms"], found["metrics"][key], note)


def show(heading: str, rows: list[Row]) -> None:
    print(f"\n{heading}")
    print(f"  {'form':14} {'size MB':>8} {'ms/item':>8} {'val metric':>10}  notes")
    for row in rows:
        size = "-" if row.size is None else f"{row.size / 1e6:.2f}"
        latency = "-" if row.latency_ms is None else f"{row.latency_ms:.2f}"
        metric = "-" if row.metric is None else f"{row.metric:.4f}"
        print(f"  {row.form:14} {size:>8} {latency:>8} {metric:>10}  {row.note}".rstrip(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", help="run ids in $GLASSBOX_HOME to compare (default: train fresh ones)")
    parser.add_argument("--samples", nargs="+", choices=list(SAMPLES), default=list(SAMPLES),
                        help="sample data sets to train a quick run on (one per modality, and a forecast)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    work = Path(tempfile.mkdtemp(prefix="glassbox-bench-export-"))
    if not args.runs:
        os.environ["GLASSBOX_HOME"] = str(work / "home")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"{os.cpu_count()} CPUs, one thread per model, workspace {os.environ.get('GLASSBOX_HOME', '(default)')}")
    for run_id in args.runs or args.samples:
        show(*compare(run_id if args.runs else train(run_id), work))


if __name__ == "__main__":
    main()
