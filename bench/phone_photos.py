"""Training on phone photos against the same photos pre-shrunk, whole processes timed.

    python bench/phone_photos.py [--photos 120 --epochs 2 --image-size 128]

Makes `--photos` textured 12 MP JPEGs (4000 x 3000, two classes: warm horizontal stripes, cool vertical
ones, under noise, ~3 MB each as a phone writes them) and the same pictures shrunk to 160 x 120, then
times `python -m core train --data FOLDER --epochs 2 --image-size 128 --device cpu --json` on each, from
start to exit: validating and storing the upload (ingest) included, each in a fresh workspace, so the big
photos' decode cache is built inside the timed run. Glassbox decodes each photo once, reduced to just
above the input size (libjpeg's draft scaling), so the goal is a ratio of at most 1.3.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZE = (4000, 3000)
SMALL = (160, 120)


def _textures(seed: int) -> dict[str, np.ndarray]:
    """One 12 MP picture per class; each photo is a shifted copy with its own brightness, so no two
    files are identical (identical ones would be reported as duplicates)."""
    rng = np.random.default_rng(seed)
    width, height = SIZE
    noise = rng.normal(0, 10, (height // 4, width // 4, 3))  # grain at 4 px, enlarged below
    grain = np.repeat(np.repeat(noise, 4, axis=0), 4, axis=1)
    y, x = np.mgrid[0:height, 0:width]
    stripes = {"warm": np.sin(y / 40.0), "cool": np.sin(x / 40.0)}
    tint = {"warm": np.array([190, 120, 70]), "cool": np.array([70, 120, 190])}
    return {name: np.clip(tint[name] + 50 * wave[..., None] + grain, 0, 255).astype(np.uint8)
            for name, wave in stripes.items()}


def _make(folders: dict[str, Path], photos: int, seed: int) -> None:
    textures = _textures(seed)
    rng = np.random.default_rng(seed + 1)
    jobs = [(name, i, int(rng.integers(0, SIZE[0])), int(rng.integers(-20, 20)))
            for i in range(photos // 2) for name in textures]

    def write(job: tuple[str, int, int, int]) -> None:
        name, index, shift, brightness = job
        pixels = np.clip(np.roll(textures[name], shift, axis=1).astype(np.int16) + brightness, 0, 255)
        image = Image.fromarray(pixels.astype(np.uint8))
        for kind, size in (("big", SIZE), ("small", SMALL)):
            target = folders[kind] / name / f"IMG_{index:04d}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            (image if size == SIZE else image.resize(size, Image.Resampling.LANCZOS)).save(target, quality=90)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # Pillow's encoder releases the GIL
        list(pool.map(write, jobs))


def _decode_times(photo: Path, image_size: int) -> tuple[float, float]:
    """Seconds to decode one photo in full and reduced for `image_size`, on one core (best of 5)."""
    sys.path.insert(0, str(ROOT))
    from core.data.pictures import load_image

    def best(size: int | None) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            load_image(photo, size)
            times.append(time.perf_counter() - started)
        return min(times)

    return best(None), best(image_size)


def _train(folder: Path, home: Path, args: argparse.Namespace) -> tuple[float, float]:
    env = {**os.environ, "GLASSBOX_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "core", "train", "--data", str(folder), "--epochs", str(args.epochs),
               "--image-size", str(args.image_size), "--device", "cpu", "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    return elapsed, json.loads(done.stdout.strip().splitlines()[-1])["metrics"]["val_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=120)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="glassbox-bench-") as temporary:
        work = Path(temporary)
        folders = {"big": work / "big", "small": work / "small"}
        started = time.perf_counter()
        _make(folders, args.photos, args.seed)
        megabytes = sum(p.stat().st_size for p in folders["big"].rglob("*.jpg")) / 1e6
        print(f"made {args.photos} photos of {SIZE[0]}x{SIZE[1]} ({megabytes:.0f} MB) and {SMALL[0]}x{SMALL[1]} "
              f"copies in {time.perf_counter() - started:.0f} s (not timed)", flush=True)
        full, reduced = _decode_times(next(folders["big"].rglob("*.jpg")), args.image_size)
        print(f"one photo decodes in {full:.3f} s in full, {reduced:.3f} s reduced for {args.image_size} px",
              flush=True)
        times: dict[str, float] = {}
        for kind in ("small", "big"):
            times[kind], accuracy = _train(folders[kind], work / f"home-{kind}", args)
            print(f"{kind:6} {times[kind]:6.1f} s   val accuracy {accuracy:.3f}", flush=True)
    print(f"\ncore train, ingest included, {args.epochs} epochs, {args.image_size} px, default preset, CPU "
          f"({os.cpu_count()} cores), {args.photos} photos")
    print(f"  12 MP photos:        {times['big']:6.1f} s")
    print(f"  shrunk to {SMALL[0]}x{SMALL[1]}:  {times['small']:6.1f} s")
    print(f"  ratio big / small:   {times['big'] / times['small']:.2f}  (goal: at most 1.3)")


if __name__ == "__main__":
    main()
