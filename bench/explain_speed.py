"""Seconds per explanation method for a 224 px EfficientNet-Lite0 on the CPU (the Explain page's targets on
2 cores: saliency and Grad-CAM under 0.5 s, Integrated Gradients with 32 steps under 5 s, occlusion
bounded by its window and stride).

The model is built through the project's own path (`core.models.create_model`, pip-shipped weights, no
network) with its ImageNet head, so the cat is recognised and the maps are about a real decision.

    python bench/explain_speed.py [--repeats 5] [--threads 2] [--faithfulness] [--methods gradcam ig ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import TrainConfig  # noqa: E402
from core.data.image_pipeline import eval_transform  # noqa: E402
from core.explain import ExplainOptions, explain, faithfulness, methods  # noqa: E402
from core.explain.images import ImageModel, occlusion_geometry  # noqa: E402
from core.models import create_model  # noqa: E402

IMAGENET_CLASSES = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method, after one warm-up")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--faithfulness", action="store_true", help="also time the faithfulness figures per map")
    parser.add_argument("--methods", nargs="+", help="only these methods (default: every registered one)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    config = TrainConfig(dataset_id="bench", weights="auto", backbone="efficientnet_lite0", image_size=args.size)
    with tempfile.TemporaryDirectory() as cache:
        model = create_model(config, IMAGENET_CLASSES, Path(cache))
    subject = ImageModel(model, [str(i) for i in range(IMAGENET_CLASSES)], eval_transform(model, config), args.size)
    inputs = subject.tensor(Image.fromarray(data.chelsea()))
    probs = subject.probabilities(inputs)[0]
    target = int(probs.argmax())
    print(f"efficientnet_lite0 @ {args.size} px, {torch.get_num_threads()} CPU thread(s), torch {torch.__version__}; "
          f"chelsea -> ImageNet class {target} (p = {probs[target]:.2f})")

    options = ExplainOptions()
    geometry = occlusion_geometry(args.size, options)
    registry = methods("images")
    # best of several runs as well as the median: on a shared machine the best is the figure least
    # disturbed by other processes competing for the same cores
    print(f"{'method':16} {'first s':>8} {'best s':>8} {'median s':>9}  notes")
    for name in args.methods or registry.names():
        reason = registry.get(name).unavailable(subject)
        if reason is not None:
            print(f"{name:16} {'—':>8} {'—':>8} {'—':>9}  not available: {reason}")
            continue
        progress = _progress(name) if name == "occlusion" else None
        first = explain(subject, inputs, target, name, options, progress)
        times = [explain(subject, inputs, target, name, options).seconds for _ in range(args.repeats)]
        extra = f"{geometry.positions} positions, {geometry.forward_passes} passes" if name == "occlusion" else ""
        if name == "ig":
            extra = f"{options.ig_steps} steps, internal batch {options.internal_batch_size}"
        print(f"{name:16} {first.seconds:8.3f} {min(times):8.3f} {statistics.median(times):9.3f}  {extra}")
        if args.faithfulness:
            started = time.perf_counter()
            figures = faithfulness.measure(subject, inputs, first, options)
            print(f"{'':16} faithfulness {time.perf_counter() - started:.2f} s: deletion {figures.deletion.auc:.3f} "
                  f"(random {figures.random_deletion.auc:.3f}), insertion {figures.insertion.auc:.3f} "
                  f"(random {figures.random_insertion.auc:.3f})")


def _progress(label: str) -> Callable[[float], None]:
    """Occlusion's progress indicator, on stderr."""

    def show(fraction: float) -> None:
        print(f"\r{label}: {fraction:4.0%}", end="\n" if fraction >= 1 else "", file=sys.stderr, flush=True)

    return show


if __name__ == "__main__":
    main()
