"""Is the input pipeline the bottleneck? Images per second the training loader delivers alone against the
training step's images per second for the same model, on this machine's best device.

    python bench/input_pipeline.py [--data sample_data/digits.zip --preset balanced --device auto
                                    --batch-size 32 --epochs 3 --steps 3]

Everything is built the way a run builds it (`core.training.loop`): the dataset's decode cache, the
training loop's `_loader` (loader workers, pinned memory on CUDA) and `_to` (the copy to the device, where an
accelerator also augments the batch), the preset's model (EfficientNet-Lite0 with the pip-shipped ImageNet
weights) with its frozen parts, optimizer and mixed precision. Rows:

- loader alone: iterating the DataLoader, nothing else;
- loader + copy: also each batch's copy to the device (and, on an accelerator, its augmentation there);
- training step: forward, loss, backward and optimizer step on one batch already on the device;
- training loop: loader, copy and step together, as the training loop runs them;
- plain loader: a plain PyTorch DataLoader over torchvision's ImageFolder with timm's per-image PIL
  transform and no decode cache (what `bench/plain_loop.py` trains on), with as many workers as ours;
- on the CPU also the other augmentation path (per-image timm transforms, or batches augmented as on a GPU),
  since only the faster one is used there.

The verdict compares "loader + copy" with "training step": the loader is the bottleneck when it delivers
fewer images per second than the step consumes. Each row is its best pass (an epoch, a step, or `--steps`
batches of the loop) after an untimed one (worker start-up), as a shared machine only slows passes down.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT / "sample_data" / "digits.zip"))
    parser.add_argument("--preset", default="balanced", help="an image preset (quick, balanced, best)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help="loader epochs timed (the best counts), after a warm-up")
    parser.add_argument("--steps", type=int, default=3, help="training steps timed (the best counts), after warm-up")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="glassbox-input-bench-"))
    os.environ.update(GLASSBOX_HOME=str(work / "home"), HF_HUB_OFFLINE="1")
    from core import data, device, models, tasks
    from core.config import TrainConfig
    from core.training import loop, presets
    from core.workspace import Workspace

    config = presets.apply(TrainConfig(dataset_id="bench", device=args.device), args.preset)
    config = config.updated(batch_size=args.batch_size)
    choice = device.select(config.device, config.precision)
    modality = data.modality("images")
    dataset_dir = work / "dataset"
    info = modality.ingest(Path(args.data), dataset_dir)
    split = data.split_for(modality, dataset_dir, info, config)
    task = tasks.of_run(config)
    targets = np.asarray(modality.targets(dataset_dir, info))
    state = task.state(info, targets[split.train], None)
    model = models.family("images").create(config, task.outputs(state), Workspace.from_env().cache_dir)
    train_ds, _ = modality.datasets(dataset_dir, info, config, split, model)
    channels_last = modality.channels_last and config.channels_last
    groups = models.family("images").param_groups(model, config)
    model.to(choice.device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    target = choice.device
    kind = target.type

    def loader_of(dataset: Any) -> torch.utils.data.DataLoader:
        return loop._loader(dataset, config.batch_size, torch.Generator().manual_seed(0), kind)

    def copied(batches: Iterable[Any]) -> Iterable[Any]:
        for inputs, labels in batches:
            yield loop._to(inputs, target, channels_last), labels.to(target, non_blocking=kind == "cuda")

    rows: list[tuple[str, float]] = []
    ours = loader_of(train_ds)
    rows.append(("loader alone", _rate(lambda: ours, args.epochs, target)))
    rows.append(("loader + copy" + (" + augment" if ours.dataset is not train_ds else ""),
                 _rate(lambda: copied(ours), args.epochs, target)))
    loss_fn = task.loss(config, state, targets[split.train], target)
    step = _step(model, groups, config, choice,
                 lambda logits, labels: loss_fn(logits, task.model_targets(labels, state)))
    inputs, labels = next(iter(copied(ours)))
    for _ in range(2):
        step(inputs, labels)
    timings = []
    for _ in range(args.steps):
        _sync(target)
        started = time.perf_counter()
        step(inputs, labels)
        _sync(target)
        timings.append(time.perf_counter() - started)
    step_rate = len(labels) / min(timings)
    rows.append(("training step", step_rate))

    def training() -> Iterable[Any]:
        for batch_inputs, batch_labels in copied(ours):
            step(batch_inputs, batch_labels)
            yield batch_inputs, batch_labels

    rows.append(("training loop (loader, copy, step)", _rate(training, 2, target, args.steps)))
    if kind == "cpu":  # the other augmentation path, to show the kept one is the faster here
        other = train_ds.for_device("cuda")  # type: ignore[attr-defined]
        if other is not train_ds:
            other_loader = loop._loader(other, config.batch_size, torch.Generator().manual_seed(0), kind)
            rows.append(("  batched augment on the CPU (GPU path)", _rate(lambda: copied(other_loader),
                                                                         args.epochs, target)))
    plain = _plain_loader(Path(args.data), work, model, config, ours.num_workers)
    rows.append(("plain DataLoader (PIL, no cache)", _rate(lambda: plain, args.epochs, target)))

    print(f"\n{config.backbone}, preset {args.preset} ({config.mode}, augmentation {config.augmentation}, "
          f"{config.image_size} px), batch {config.batch_size}, {len(train_ds)} training images, "
          f"device {choice.describe()}, loader workers {ours.num_workers}, pinned {ours.pin_memory}, "
          f"torch threads {torch.get_num_threads()}, CPUs {os.cpu_count()}")
    print(f"{'':40} {'images/s':>10}")
    for name, rate in rows:
        print(f"{name:40} {rate:10.0f}")
    delivered = rows[1][1]
    verdict = "is not" if delivered > step_rate else "is"
    print(f"the loader {verdict} the bottleneck: it delivers {delivered / step_rate:.1f}x what the training "
          "step consumes")


def _rate(batches: Callable[[], Iterable[Any]], epochs: int, target: torch.device, limit: int | None = None) -> float:
    """Images per second of the fastest of `epochs` passes of `batches()` (their first `limit` batches, if
    given), after one untimed pass (worker start-up): the best pass, since a shared machine only ever
    slows a pass down."""
    for _ in itertools.islice(batches(), 1 if limit else None):
        pass
    best = 0.0
    for _ in range(epochs):
        _sync(target)
        started, images = time.perf_counter(), 0
        for _, labels in itertools.islice(batches(), limit):
            images += len(labels)
        _sync(target)
        best = max(best, images / (time.perf_counter() - started))
    return best


Step = Callable[[torch.Tensor, torch.Tensor], None]


def _step(model: torch.nn.Module, groups: list[dict[str, Any]], config: Any, choice: Any,
          loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Step:
    """The training loop's step: autocast forward, the task's loss, backward (scaled for fp16), optimizer."""
    from core.training import loop

    optimizer = loop._optimizer(groups, config)
    scaler = torch.amp.GradScaler(choice.device.type) if choice.needs_grad_scaler else None
    model.train()

    def step(inputs: torch.Tensor, labels: torch.Tensor) -> None:
        with choice.autocast():
            loss = loss_fn(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        loss.item()  # the loop reads the loss every step, which waits for the device

    return step


def _plain_loader(archive: Path, work: Path, model: torch.nn.Module, config: Any,
                  workers: int) -> torch.utils.data.DataLoader:
    """torchvision's ImageFolder decoding every file every epoch, timm's per-image training transform of the
    run's augmentation preset."""
    from torchvision.datasets import ImageFolder

    from core.data import image_pipeline

    with zipfile.ZipFile(archive) as opened:
        opened.extractall(work / "plain")
    folder = next(p for p in (work / "plain").iterdir() if p.is_dir())
    transform = image_pipeline._train_transform(model, config)
    dataset = ImageFolder(str(folder), transform=lambda image: transform(image.convert("RGB")))
    subset = torch.utils.data.Subset(dataset, list(range(int(len(dataset) * (1 - config.val_fraction)))))
    return torch.utils.data.DataLoader(subset, batch_size=config.batch_size, shuffle=True, drop_last=True,
                                       num_workers=workers, persistent_workers=workers > 0)


def _sync(target: torch.device) -> None:
    if target.type == "cuda":
        torch.cuda.synchronize(target)


if __name__ == "__main__":
    main()
