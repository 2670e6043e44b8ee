"""The series family (core/models/sequence.py): its catalog, models built from the modality's fitted inputs, padded
steps that never reach the output, future covariates that do, optimizer groups, presets, and learning: each
backbone tells sine from square waves of varying lengths, and forecasts a seasonal series far better than its
mean, trained with the tasks' losses (`core.tasks`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional

from core import tasks
from core.config import TrainConfig
from core.errors import GlassboxError
from core.models import create_model, family
from core.models.sequence import BACKBONES, MaskedBatchNorm, SequenceModel, SeriesFamily, SeriesShape, patch_size
from core.training import presets

FAMILY_NAMES = ["lstm", "gru", "cnn", "transformer"]
CPU = torch.device("cpu")


def _config(backbone: str = "gru", **changes: Any) -> TrainConfig:
    return TrainConfig(dataset_id="test", modality="series", **{"backbone": backbone, "weights": "none", **changes})


def _classifier(backbone: str, channels: Any = 2, length: int = 40, outputs: int = 3) -> SequenceModel:
    torch.manual_seed(0)
    return create_model(_config(backbone), outputs, Path("unused"), {"channels": channels, "length": length})


def _forecaster(backbone: str, context: int = 36, horizon: int = 12, future: int = 0) -> SequenceModel:
    torch.manual_seed(0)
    inputs = {"channels": ["y"] + [f"x{i}" for i in range(future)], "context": context, "horizon": horizon,
              "future_covariates": future, "mean": 0.0, "std": 1.0}
    return create_model(_config(backbone), horizon, Path("unused"), inputs)


def _waves(n: int, steps: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class 0 a noisy sine, class 1 a noisy square wave of the same frequency and phase (both random), each series
    between 3/4 of `steps` and `steps` long, padded with garbage that must not matter."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    t = np.arange(steps)
    sine = np.sin(2 * np.pi * rng.uniform(1.5, 3, (n, 1)) * t / steps + rng.uniform(0, 2 * np.pi, (n, 1)))
    values = np.where(labels[:, None] == 1, np.sign(sine), sine) + 0.2 * rng.normal(size=(n, steps))
    mask = t < rng.integers(3 * steps // 4, steps + 1, n)[:, None]
    values = np.where(mask, values, 50.0)
    return torch.tensor(values[..., None], dtype=torch.float32), torch.from_numpy(mask), torch.from_numpy(labels)


def _train(model: nn.Module, batches: list[tuple[torch.Tensor, ...]], loss: Any, epochs: int, lr: float = 3e-3,
           seed: int = 0) -> nn.Module:
    """A plain loop (the real one is core/training's): `batches` of (values, mask, future or None, targets)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    model.train()
    for _ in range(epochs):
        for i in torch.randperm(len(batches), generator=generator).tolist():
            values, mask, future, target = batches[i]
            optimizer.zero_grad()
            loss(model(values, mask, future), target).backward()
            optimizer.step()
    return model.eval()


def _batches(*tensors: torch.Tensor | None, size: int = 32, seed: int = 0) -> list[tuple[Any, ...]]:
    n = len(next(t for t in tensors if t is not None))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [tuple(None if t is None else t[order[i : i + size]] for t in tensors) for i in range(0, n, size)]


def test_the_family_is_registered_with_its_catalog() -> None:
    series = family("series")
    assert isinstance(series, SeriesFamily)
    assert [b.name for b in series.catalog()] == FAMILY_NAMES == list(BACKBONES)
    assert {(b.modality, b.weights) for b in series.catalog()} == {("series", "none")}
    with pytest.raises(GlassboxError, match="unknown series model 'resnet18'"):
        series.describe("resnet18")


@pytest.mark.parametrize("backbone", FAMILY_NAMES)
def test_a_model_is_built_from_the_inputs_and_rebuilt_from_them(backbone: str) -> None:
    inputs = {"channels": 2, "length": 40}
    model = create_model(_config(backbone, weights="auto"), 3, Path("unused"), inputs)
    assert isinstance(model, SequenceModel) and model.inputs == inputs and model.channels == 2
    values, mask = torch.randn(5, 40, 2), torch.ones(5, 40, dtype=torch.bool)
    assert model(values, mask).shape == (5, 3)
    assert model(values[:1, :17], mask[:1, :17]).shape == (1, 3)  # one shorter series
    assert model(torch.randn(2, 100, 2), torch.ones(2, 100, dtype=torch.bool)).shape == (2, 3)  # a longer one
    model.train()
    assert model(values[:2], mask[:2]).shape == (2, 3)
    again = create_model(_config(backbone), 3, Path("unused"), inputs)  # what reloading a run does
    again.load_state_dict(model.state_dict())
    # channel names count as channels; config.extra stands in when no inputs were fitted
    assert create_model(_config(backbone), 2, Path("unused"), {"channels": ["a", "b", "c"]}).channels == 3
    assert create_model(_config(backbone, extra={"channels": 4}), 2, Path("unused")).channels == 4


def test_recurrent_models_read_both_ways_only_for_classification() -> None:
    assert _classifier("lstm").encoder.rnn.bidirectional
    assert _classifier("gru").encoder.rnn.bidirectional
    assert not _forecaster("lstm").encoder.rnn.bidirectional
    assert not _forecaster("gru").encoder.rnn.bidirectional
    assert isinstance(_classifier("lstm").encoder.rnn, nn.LSTM) and isinstance(_classifier("gru").encoder.rnn, nn.GRU)


def test_the_shape_comes_from_the_inputs() -> None:
    classify = SeriesShape.of({"channels": 3, "length": 79}, _config())
    assert (classify.channels, classify.length, classify.horizon, classify.future, classify.forecasts) == (
        3, 79, None, 0, False)
    forecast = SeriesShape.of({"channels": ["calls", "temp"], "context": 336, "horizon": 96, "future_covariates": 1},
                              _config())
    assert (forecast.channels, forecast.length, forecast.horizon, forecast.future, forecast.forecasts) == (
        2, 336, 96, 1, True)
    assert [patch_size(n) for n in (24, 47, 48, 255, 256, 1000)] == [4, 4, 8, 8, 16, 16]
    transformer = _classifier("transformer", length=79)
    assert transformer.encoder.patch == 8 and transformer.encoder.positions.shape == (1, 10, 64)


def test_refusals() -> None:
    series = family("series")
    with pytest.raises(GlassboxError, match="train from scratch"):
        series.create(_config(weights="/tmp/model.safetensors"), 2, Path("unused"), {"channels": 1})
    with pytest.raises(GlassboxError, match="how many channels"):
        series.create(_config(), 2, Path("unused"))
    with pytest.raises(GlassboxError, match="unknown series model"):
        series.create(_config("resnet"), 2, Path("unused"), {"channels": 1})
    with pytest.raises(GlassboxError, match="whole numbers"):
        series.create(_config(), 2, Path("unused"), {"channels": 1, "length": "long"})
    with pytest.raises(GlassboxError, match="at least one channel"):
        series.create(_config(), 2, Path("unused"), {"channels": 0})
    with pytest.raises(GlassboxError, match="reads series of 2 channel"):
        _classifier("cnn")(torch.randn(1, 40, 3), torch.ones(1, 40, dtype=torch.bool))
    with pytest.raises(GlassboxError, match="needs the 1 covariate"):
        _forecaster("gru", future=1)(torch.randn(1, 36, 2), torch.ones(1, 36, dtype=torch.bool))


@pytest.mark.parametrize("backbone", FAMILY_NAMES)
def test_padded_steps_never_reach_the_output(backbone: str) -> None:
    model = _classifier(backbone, channels=2, length=40).eval()
    values = torch.randn(3, 40, 2)
    mask = torch.ones(3, 40, dtype=torch.bool)
    mask[1, 23:] = False  # the second series has 23 real steps
    mask[2, 31:] = False
    out = model(values, mask)
    # whatever the padding holds, NaN included, and however much of it there is
    garbage = values.clone()
    garbage[1, 23:] = 1e4
    garbage[2, 31:] = float("nan")
    assert torch.equal(model(garbage, mask), out)
    assert torch.allclose(model(values[1:2, :23], mask[1:2, :23]), out[1:2], atol=1e-5)
    longer = torch.cat([values[1:2, :23], torch.randn(1, 60, 2)], dim=1)
    assert torch.allclose(model(longer, (torch.arange(83) < 23)[None]), out[1:2], atol=1e-5)
    # no gradient reaches a padded step; real steps do get one
    given = values.clone().requires_grad_(True)
    model(given, mask)[:, 0].sum().backward()
    assert given.grad is not None and given.grad[1, 23:].abs().sum() == 0 and given.grad[2, 31:].abs().sum() == 0
    assert given.grad[1, :23].abs().sum() > 0
    # no mask means every step is real
    assert torch.equal(model(values[:1]), model(values[:1], mask[:1]))


def test_the_batch_statistics_of_the_convolutional_network_ignore_padding() -> None:
    norm = MaskedBatchNorm(2)
    x = torch.tensor([[[1.0, 10.0], [3.0, 30.0], [99.0, -99.0]]])  # [1, 3, 2]; the last step is padding
    keep = torch.tensor([[[1.0], [1.0], [0.0]]])
    out = norm(x, keep)
    assert torch.allclose(out[0, :2], torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), atol=1e-3)
    # running statistics move 10% towards the real steps' mean (2, 20) and unbiased variance (2, 200)
    assert torch.allclose(norm.running_mean, torch.tensor([0.2, 2.0]))
    assert torch.allclose(norm.running_var, torch.tensor([0.9 + 0.2, 0.9 + 20.0]))
    model = _classifier("cnn").train()
    values, mask = torch.randn(4, 40, 2), torch.arange(40).expand(4, 40) < torch.tensor([[40], [30], [20], [35]])
    first = model(values, mask)
    second = model(torch.where(mask.unsqueeze(-1), values, torch.tensor(7.0)), mask)
    assert torch.allclose(first, second)


def test_embed_and_head_give_the_output_and_everything_trains() -> None:
    for model in (_classifier("transformer").eval(), _forecaster("gru", future=2).eval()):
        values = torch.randn(2, model.shape.length, model.channels)
        mask = torch.ones(2, model.shape.length, dtype=torch.bool)
        future = torch.randn(2, 12, 2) if model.shape.forecasts else None
        inputs = {"values": values, "mask": mask} | ({"future": future} if future is not None else {})
        series = family("series")
        assert torch.allclose(series.head(model)(series.embed(model, inputs)), model(values, mask, future))
        groups = series.param_groups(model, _config(mode="head", weights="none"))
        assert {g["name"] for g in groups} == {"head", "head_no_decay", "backbone", "backbone_no_decay"}
        assert all(p.requires_grad for p in model.parameters())
        assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    positions = _classifier("transformer").encoder.positions
    groups = family("series").param_groups(_classifier("transformer"), _config("transformer"))
    assert all(positions.shape != p.shape or g["weight_decay"] == 0 for g in groups for p in g["params"])


def test_the_future_covariates_and_the_context_reach_a_forecast() -> None:
    model = _forecaster("cnn", future=1).eval()
    values, mask = torch.randn(2, 36, 2), torch.ones(2, 36, dtype=torch.bool)
    future = torch.randn(2, 12, 1)
    out = model(values, mask, future)
    assert out.shape == (2, 12)
    assert not torch.allclose(model(values, mask, future + 1.0), out)
    # the head reads the target channel's last 36 steps: a shorter history is padded in front with zeros
    short = model(values[:, -20:], mask[:, -20:], future)
    assert short.shape == (2, 12) and torch.isfinite(short).all()


@pytest.mark.parametrize("backbone", FAMILY_NAMES)
def test_each_family_tells_sine_from_square_waves(backbone: str) -> None:
    values, mask, labels = _waves(256, 32, 0)
    val_values, val_mask, val_labels = _waves(200, 32, 1)
    model = _classifier(backbone, channels=1, length=32, outputs=2)
    state = {"classes": ["sine", "square"]}
    loss = tasks.task("classification").loss(_config(label_smoothing=0.0), state, labels.numpy(), CPU)
    _train(model, _batches(values, mask, None, labels), loss, epochs=10)
    with torch.no_grad():
        probabilities = tasks.task("classification").answers(model(val_values, val_mask), state)
    accuracy = float((probabilities.argmax(1) == val_labels.numpy()).mean())
    assert accuracy >= 0.85, f"{backbone}: {accuracy:.2f}"


@pytest.mark.parametrize("backbone", FAMILY_NAMES)
def test_each_family_forecasts_a_seasonal_series_better_than_its_mean(backbone: str) -> None:
    rng = np.random.default_rng(0)
    steps, context, horizon = 600, 36, 12
    t = np.arange(steps)
    series = 10 + 3 * np.sin(2 * np.pi * t / 12) + 1.5 * np.cos(2 * np.pi * t / 6) + 0.5 * rng.normal(size=steps)
    mean, std = float(series[:450].mean()), float(series[:450].std())  # the training part only
    state = {"target": "y", "mean": mean, "std": std, "horizon": horizon, "season": 12, "mase_scale": 1.0}
    origins = np.arange(context, steps - horizon + 1)
    contexts = torch.tensor(np.stack([(series[o - context : o] - mean) / std for o in origins])[..., None],
                            dtype=torch.float32)
    futures = torch.tensor(np.stack([series[o : o + horizon] for o in origins]), dtype=torch.float32)
    train, val = origins + horizon <= 450, origins >= 460
    task = tasks.task("forecast")
    model = _forecaster(backbone, context=context, horizon=horizon)
    mask = torch.ones(len(origins), context, dtype=torch.bool)
    loss = task.loss(_config(), state, futures[train].numpy(), CPU)
    targets = task.model_targets(futures[train], state)
    _train(model, _batches(contexts[train], mask[train], None, targets), loss, epochs=4)
    with torch.no_grad():
        answers = task.answers(model(contexts[val], mask[val]), state)
    assert answers.shape == (int(val.sum()), horizon)
    mae = float(np.abs(answers - futures[val].numpy()).mean())
    mean_mae = float(np.abs(mean - futures[val].numpy()).mean())
    assert mae < 0.35 * mean_mae, f"{backbone}: MAE {mae:.2f} against {mean_mae:.2f} for the mean"


def test_a_forecast_with_covariates_learns_from_them() -> None:
    """The series is the covariate's value at the same step plus noise: only the future covariates tell it."""
    rng = np.random.default_rng(1)
    n, context, horizon = 400, 16, 4
    covariate = rng.normal(size=(n, context + horizon)).astype(np.float32)
    target = covariate + 0.1 * rng.normal(size=covariate.shape).astype(np.float32)
    values = torch.from_numpy(np.stack([target[:, :context], covariate[:, :context]], axis=-1))
    future = torch.from_numpy(covariate[:, context:, None])
    ahead = torch.from_numpy(target[:, context:])
    model = _forecaster("cnn", context=context, horizon=horizon, future=1)
    mask = torch.ones(n, context, dtype=torch.bool)
    _train(model, _batches(values[:300], mask[:300], future[:300], ahead[:300]), functional.mse_loss, epochs=10,
           lr=1e-2)
    with torch.no_grad():
        error = float((model(values[300:], mask[300:], future[300:]) - ahead[300:]).abs().mean())
    assert error < 0.3  # without the covariates the best guess is 0, whose error is about 0.8


def test_presets_name_series_backbones() -> None:
    chosen = presets.presets("series")
    assert [p.name for p in chosen] == ["quick", "balanced", "best"]
    assert [p.values["backbone"] for p in chosen] == ["cnn", "gru", "transformer"]
    for preset in chosen:
        config = presets.apply(_config(), preset.name).validate()
        assert config.backbone in BACKBONES and config.weights == "none" and config.mode == "full"
