"""The training loop shared by every modality: device and precision, optimizer and schedule,
per-epoch validation, checkpoints, early stopping and resume.

It knows nothing of the store or the UI: it reports through a `Reporter` and stops cooperatively
when the reporter says so, between two steps.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from core import baselines, data, device, models, tasks
from core.artifacts import RunFiles, save_preprocessing
from core.config import TrainConfig
from core.data import Split
from core.models import weights
from core.training import checkpointing
from core.training.checkpointing import Progress
from core.training.reporting import Reporter
from core.training_stats import save_training_stats

_SPLIT_SOURCES = {"stratified": "drawn at random, class by class", "folders": "the dataset's own folders",
                  "rolling origin": "the series' last windows, in time order"}
_ENCODING = "encoding features"  # the phase a frozen backbone's features are computed in


class StopRequested(Exception):
    """Raised between two steps when the user cancelled the run."""


@dataclass
class TrainJob:
    config: TrainConfig
    files: RunFiles
    dataset_dir: Path
    dataset_info: dict[str, Any]
    cache_dir: Path


def train(job: TrainJob, reporter: Reporter) -> dict[str, Any]:
    """Train (or continue training) a run; returns its final metrics."""
    cfg = job.config
    _seed_everything(cfg.seed)
    choice = device.select(cfg.device, cfg.precision)
    modality = data.modality(cfg.modality)
    family = models.family(cfg.modality)
    task = tasks.of_run(cfg)

    split = data.split_for(modality, job.dataset_dir, job.dataset_info, cfg)
    reporter.log(f"split: {len(split.train)} training, {len(split.val)} validation"
                 + (f", {len(split.test)} test" if split.test else "") + f" items ({_SPLIT_SOURCES[split.source]})")
    targets = np.asarray(modality.targets(job.dataset_dir, job.dataset_info))
    inputs = modality.fit_inputs(job.dataset_dir, job.dataset_info, cfg, split)
    state = task.state(job.dataset_info, targets[split.train], inputs)
    model = family.create(cfg, task.outputs(state), job.cache_dir, inputs)
    source = weights.source_of(model)
    reporter.log(f"weights: {source.description if source else 'random initialisation'}")
    found = baselines.compute(modality, task, baselines.Context(
        modality, job.dataset_dir, job.dataset_info, split, targets, state, cfg.seed, inputs))
    reporter.log(baselines.describe(found, task))
    train_ds, val_ds = modality.datasets(job.dataset_dir, job.dataset_info, cfg, split, model, reporter.phase)
    test_ds: Dataset | None = None
    if split.test:  # the test items as a validation set: evaluation inputs, never augmented
        test_ds = modality.datasets(job.dataset_dir, job.dataset_info, cfg, Split([], split.test), model,
                                    reporter.phase)[1]
    groups = family.param_groups(model, cfg)
    channels_last = modality.channels_last and cfg.channels_last
    model.to(choice.device, memory_format=torch.channels_last if channels_last else torch.preserve_format)

    # A frozen backbone gives the same features every epoch when its inputs do not change (the modality
    # knows: images only without augmentation, text always): compute them once and train only the head
    # on them (seconds instead of minutes on a CPU).
    trainable: nn.Module = model
    if cfg.mode == "head" and modality.fixed_inputs(cfg):
        reporter.log("frozen backbone on unchanging inputs: computing features once")
        parts = [train_ds, val_ds] if test_ds is None else [train_ds, val_ds, test_ds]
        embedded = _embedded(family, model, parts, cfg, choice, channels_last, reporter)
        train_ds, val_ds = embedded[0], embedded[1]
        test_ds = embedded[2] if test_ds is not None else None
        trainable = family.head(model)
        channels_last = False

    loader_generator = torch.Generator().manual_seed(cfg.seed)
    train_loader = _loader(train_ds, cfg.batch_size, loader_generator, choice.device.type)
    val_loader = _loader(val_ds, cfg.batch_size * 2, None, choice.device.type)
    optimizer = _optimizer(groups, cfg)
    steps_per_epoch = len(train_loader)
    scheduler = _warmup_cosine(optimizer, cfg.epochs * steps_per_epoch, cfg.warmup_fraction)
    scaler = torch.amp.GradScaler(choice.device.type) if choice.needs_grad_scaler else None
    loss_fn = task.loss(cfg, state, targets[split.train], choice.device)
    scoring = _Scoring(task, state, loss_fn, choice, channels_last)

    progress = Progress()
    if job.files.checkpoint.exists():
        progress = checkpointing.restore(
            checkpointing.load(job.files.checkpoint), model=model, optimizer=optimizer,
            scheduler=scheduler, scaler=scaler, loader_generator=loader_generator,
        )
        reporter.log(f"resumed from the checkpoint of epoch {progress.epoch}")
    reporter.started(total_epochs=cfg.epochs, steps_per_epoch=steps_per_epoch, start_epoch=progress.epoch,
                     device=choice.describe())
    job.files.write_json(job.files.target, state)
    if "classes" in state:
        job.files.write_json(job.files.labels, state["classes"])
    if inputs is not None:
        job.files.write_json(job.files.inputs, inputs)
    save_preprocessing(job.files, model)
    save_training_stats(job.files, cfg.modality, job.dataset_dir, job.dataset_info)

    for epoch in range(progress.epoch + 1, cfg.epochs + 1):
        if _early_stop(progress, cfg):
            waited = progress.epochs_without_improvement
            reporter.log(f"stopped early after epoch {progress.epoch} of {cfg.epochs}: no improvement for {waited} "
                         f"epoch{'s' if waited != 1 else ''}; best epoch {progress.best_epoch} kept")
            break
        started = time.monotonic()
        trainable.train()
        for inputs_batch, batch_targets in train_loader:
            if reporter.should_stop():
                raise StopRequested
            inputs_batch = _to(inputs_batch, choice.device, channels_last)
            batch_targets = batch_targets.to(choice.device, non_blocking=choice.device.type == "cuda")
            with choice.autocast():
                logits = _forward(trainable, inputs_batch)
                loss = loss_fn(logits, task.model_targets(batch_targets, state))
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            scheduler.step()
            progress.global_step += 1
            reporter.step(epoch=epoch, step=progress.global_step, loss=loss.item(),
                          accuracy=task.step_score(logits.detach(), batch_targets), samples=len(batch_targets))
        val_targets, answers, metrics, val_logits = scoring.scored(trainable, val_loader, "val")
        metrics["epoch_s"] = time.monotonic() - started
        progress.epoch = epoch
        progress.history.append({"epoch": epoch, **metrics})
        if progress.best_epoch == 0 or task.score(metrics) > task.score(_best_history(progress)):
            progress.best_metric, progress.best_epoch = task.score(metrics)[0], epoch
            progress.epochs_without_improvement = 0
            checkpointing.save_weights(job.files.weights, model)
            job.files.write_json(job.files.predictions,
                                 tasks.predictions(task, split.val, val_targets, answers, val_logits))
        else:
            progress.epochs_without_improvement += 1
        checkpointing.save(job.files.checkpoint, model=model, optimizer=optimizer, scheduler=scheduler,
                           scaler=scaler, progress=progress, rng=checkpointing.capture_rng(loader_generator))
        reporter.epoch_end(epoch=epoch, step=progress.global_step, metrics=metrics, best=_best(progress))
        reporter.log(f"epoch {epoch}/{cfg.epochs}: {tasks.summary_line(task, metrics)}, {metrics['epoch_s']:.1f} s")

    best_val = job.files.read_json(job.files.predictions)
    best_logits = np.asarray(best_val["logits"], dtype=np.float64) if "logits" in best_val else None
    calibration = task.calibration(targets[split.val], tasks.answers_of(best_val), state, best_logits)
    if calibration:  # answers and prediction read it with the rest of the task's state
        state = {**state, **calibration}
        scoring.state = state
        job.files.write_json(job.files.target, state)
    if best_logits is not None:  # the best epoch's probabilities as shown from now on: calibrated
        best_val = tasks.predictions(task, split.val, targets[split.val],
                                     task.answers(torch.from_numpy(best_logits), state), best_logits)
        job.files.write_json(job.files.predictions, best_val)
    best_answers = tasks.answers_of(best_val)
    found = baselines.with_blend(task, found, targets[split.val], best_answers, state)
    final = {
        **_best(progress),
        "epochs_completed": progress.epoch,
        "split": split.source,
        **found.metrics,
        **calibration,
    }
    if best_logits is not None:
        final.update({f"val_{k}": v for k, v in task.calibration_metrics(targets[split.val], best_logits,
                                                                           state).items()})
    suspicious = modality.suspicious(final, task.name)
    if suspicious is not None:
        final["suspicious"] = suspicious
        reporter.log(f"suspicious: {suspicious}", "warning")
    if test_ds is not None:
        # The test items judge the model chosen on validation, once, after training: they never choose it.
        model.load_state_dict(load_file(str(job.files.weights)))
        test_targets, answers, test_metrics, test_logits = scoring.scored(
            trainable, _loader(test_ds, cfg.batch_size * 2, None, choice.device.type), "test")
        job.files.write_json(job.files.test_predictions,
                             tasks.predictions(task, split.test, test_targets, answers, test_logits))
        final.update(test_metrics)
        final.update({f"test_{k}": v for k, v in task.calibration_metrics(test_targets, test_logits, state).items()})
        final["test_items"] = len(split.test)
        reporter.log(f"test ({len(split.test)} items, best epoch's model): {tasks.summary_line(task, final, 'test')}")
    return final


@dataclass
class _Scoring:
    """Scores a model on a loader the way its task says: the loss on the targets as the model learns them,
    the metrics on answers in the target's own terms (`Task.answers`)."""

    task: tasks.Task
    state: dict[str, Any]
    loss_fn: Any
    choice: device.DeviceChoice
    channels_last: bool

    @torch.no_grad()
    def scored(self, model: nn.Module, loader: DataLoader, part: str) -> tuple[np.ndarray, np.ndarray,
                                                                               dict[str, float], np.ndarray]:
        """(targets, answers, metrics keyed `{part}_{name}` with `{part}_loss`, the raw outputs: logits
        [n, outputs] or an ensemble's member mean as the model returns it in eval mode)."""
        model.eval()
        targets, answers, losses, outputs = [], [], [], []
        for inputs, batch_targets in loader:
            with self.choice.autocast():
                logits = _forward(model, _to(inputs, self.choice.device, self.channels_last)).float()
            model_targets = self.task.model_targets(batch_targets.to(self.choice.device), self.state)
            losses.append(self.loss_fn(logits, model_targets).item() * len(batch_targets))
            answers.append(self.task.answers(logits, self.state))
            outputs.append(logits.cpu().numpy())
            targets.append(batch_targets.numpy())
        all_targets = np.concatenate(targets)
        all_answers = np.concatenate(answers)
        metrics = self.task.metrics(all_targets, all_answers, self.state)
        metrics["loss"] = float(sum(losses) / len(all_targets))
        return all_targets, all_answers, {f"{part}_{k}": v for k, v in metrics.items()}, np.concatenate(outputs)


def _loader(dataset: Dataset, batch_size: int, shuffle_with: torch.Generator | None,
            device_type: str = "cpu") -> DataLoader:
    """A dataset may bring its own `collate` (dynamic padding) and `batch_sampler(batch_size,
    generator)` (length buckets, so short texts are not padded to the longest), and `for_device(device_type)`,
    the dataset to read for that device (images: canvases augmented on an accelerator); images ask for
    `loader_workers` processes to read them while an accelerator computes (kept for every epoch). Not for
    the CPU, whose cores the model's own threads already fill: one worker made 4 epochs on 2 cores take
    6.6 s instead of 4.5 s. On CUDA batches are pinned, so `_to`'s copies need not wait for the host."""
    for_device = getattr(dataset, "for_device", None)
    if for_device is not None:
        dataset = for_device(device_type)
    collate = getattr(dataset, "collate", None)
    make_sampler = getattr(dataset, "batch_sampler", None)
    workers = getattr(dataset, "loader_workers", 0) if device_type != "cpu" else 0
    parallel = {"num_workers": workers, "persistent_workers": workers > 0, "pin_memory": device_type == "cuda"}
    if make_sampler is not None:
        return DataLoader(dataset, batch_sampler=make_sampler(batch_size, shuffle_with), collate_fn=collate,
                          **parallel)
    shuffle = shuffle_with is not None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=shuffle_with, collate_fn=collate,
                      drop_last=shuffle and len(dataset) > batch_size, **parallel)


def _early_stop(progress: Progress, cfg: TrainConfig) -> bool:
    return 0 < cfg.early_stopping_patience <= progress.epochs_without_improvement


def _best(progress: Progress) -> dict[str, Any]:
    """The best epoch's validation metrics and its number (`best_epoch`): what a run shows whatever
    ends it, completion, a cancel or a failure."""
    best = _best_history(progress)
    return {**{k: v for k, v in best.items() if k.startswith("val_")}, "best_epoch": progress.best_epoch}


def _best_history(progress: Progress) -> dict[str, float]:
    return next(h for h in progress.history if h["epoch"] == progress.best_epoch)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _optimizer(groups: list[dict[str, Any]], cfg: TrainConfig) -> torch.optim.Optimizer:
    for group in groups:
        group.setdefault("weight_decay", cfg.weight_decay)
        group["initial_lr"] = group["lr"]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float) -> Any:
    warmup = int(total_steps * warmup_fraction)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _to(inputs: Any, target: torch.device, channels_last: bool) -> Any:
    """A batch on `target`: without waiting for the host on CUDA only, whose loaders pin their batches
    (elsewhere a non-blocking copy from pageable memory gains nothing); a batch that knows how to become
    the model's input there (`to_device`: images augmented on the device) does so."""
    asynchronous = target.type == "cuda"
    if isinstance(inputs, dict):
        return {k: v.to(target, non_blocking=asynchronous) for k, v in inputs.items()}
    to_device = getattr(inputs, "to_device", None)
    inputs = to_device(target) if to_device is not None else inputs.to(target, non_blocking=asynchronous)
    return inputs.contiguous(memory_format=torch.channels_last) if channels_last else inputs


def _forward(model: nn.Module, inputs: Any) -> torch.Tensor:
    return model(**inputs) if isinstance(inputs, dict) else model(inputs)


@torch.no_grad()
def _embedded(family: models.BackboneFamily, model: nn.Module, parts: list[Dataset], cfg: TrainConfig,
              choice: device.DeviceChoice, channels_last: bool, reporter: Reporter) -> list[TensorDataset]:
    """Each of `parts` as (features, label) pairs, computed once by the frozen backbone; progress is
    reported as one count over all parts ("encoding features 310/888"), since on a CPU this can be most
    of a run. Stops between two batches when the run is cancelled."""
    model.eval()
    total = sum(len(part) for part in parts)
    done = 0
    reporter.phase(_ENCODING, done, total)
    embedded = []
    for part in parts:
        features, labels = [], []
        for inputs, targets in _loader(part, cfg.batch_size * 2, None, choice.device.type):
            if reporter.should_stop():
                raise StopRequested
            with choice.autocast():
                features.append(family.embed(model, _to(inputs, choice.device, channels_last)).float().cpu())
            labels.append(targets)
            done += len(targets)
            reporter.phase(_ENCODING, done, total)
        embedded.append(TensorDataset(torch.cat(features), torch.cat(labels)))
    return embedded
