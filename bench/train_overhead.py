"""Glassbox's training overhead against the plain timm/PyTorch loop, whole processes timed.

    python bench/train_overhead.py [--epochs 3 --image-size 128 --batch-size 32 --repeats 1]

Both sides train efficientnet_lite0 (the pip-shipped ImageNet weights) on sample_data/digits.zip
(400 images, 10 classes) with the same preprocessing, split sizes, optimizer, schedule and epochs,
validating every epoch. The Glassbox time is `python -m core train ... --json` from start to exit:
validating and storing the upload, the worker process, per-epoch checkpoints, live metrics.
Glassbox trains channels_last by default, so the plain loop runs twice, without and with it:
the ratio to the second is Glassbox's own overhead.
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
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT / "sample_data" / "digits.zip"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="glassbox-bench-"))
    env = {**os.environ, "GLASSBOX_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1"}
    with zipfile.ZipFile(args.data) as archive:
        archive.extractall(work / "plain")
    folder = next(p for p in (work / "plain").iterdir() if p.is_dir())
    # Untimed set-up for both sides: the pip-shipped weights converted to timm's names once.
    sys.path.insert(0, str(ROOT))
    os.environ.update(env)
    from core.config import TrainConfig
    from core.models import create_model, weights
    from core.workspace import Workspace

    ws = Workspace.from_env()
    model = create_model(TrainConfig(dataset_id="-", backbone="efficientnet_lite0"), 10, ws.cache_dir)
    weights_file = str(weights.source_of(model).path)

    common = ["--epochs", str(args.epochs), "--image-size", str(args.image_size), "--batch-size",
              str(args.batch_size), "--lr", str(args.lr)]
    plain = [sys.executable, "bench/plain_loop.py", str(folder), "--weights-file", weights_file,
             "--out", str(work / "plain.pt"), *common]
    studio = [sys.executable, "-m", "core", "train", "--data", args.data, "--backbone", "efficientnet_lite0",
              "--mode", "full", "--device", "cpu", "--json", *common]
    times: dict[str, list[float]] = {"plain": [], "plain_channels_last": [], "glassbox": []}
    accuracy: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, command in (("plain", plain), ("plain_channels_last", [*plain, "--channels-last"]),
                              ("glassbox", studio)):
            elapsed, out = _timed(command, env)
            times[name].append(elapsed)
            if name == "glassbox":
                accuracy[name] = json.loads(out.strip().splitlines()[-1])["metrics"]["val_accuracy"]
            else:
                accuracy[name] = float(out.strip().splitlines()[-1].split()[-1])
            print(f"{name:20} {elapsed:7.1f} s   val accuracy {accuracy[name]:.3f}", flush=True)
    best = {name: min(values) for name, values in times.items()}
    print(f"\nefficientnet_lite0, {args.epochs} epochs, {args.image_size} px, batch {args.batch_size}, "
          f"torch threads {os.cpu_count()}, best of {args.repeats}")
    for name, value in best.items():
        print(f"  {name:20} {value:7.1f} s  (median {statistics.median(times[name]):.1f} s)")
    print(f"  ratio glassbox / plain loop:               {best['glassbox'] / best['plain']:.3f}")
    print(f"  ratio glassbox / plain loop channels_last: {best['glassbox'] / best['plain_channels_last']:.3f}")


if __name__ == "__main__":
    main()
