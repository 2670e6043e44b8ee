"""Explanations of series models (core/explain/series.py): a class decided by a bump at known steps of one channel
gets its largest attributions there from both methods, and the faithfulness check prefers those steps to random
ones; padded steps get exactly 0 and their values change nothing; a forecast's map adds up to the change in its
mean forecast; a finished run is read back for explaining. Models train with their task's loss (`core.tasks`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from core import tasks
from core.artifacts import RunFiles
from core.config import TrainConfig
from core.errors import GlassboxError
from core.explain import ExplainOptions, load_subject, methods
from core.explain.series import SeriesModel, explain_series, faithfulness
from core.models import family
from core.training.checkpointing import save_weights

STEPS = 48
BUMP = list(range(20, 28))  # where class "bump" differs: channel 0, steps 20 to 27
METHODS = ["ig", "ablation"]
STATE = {"classes": ["flat", "bump"]}
INPUTS = {"channels": ["signal", "noise"], "length": STEPS}


def _config(backbone: str, task: str = "classification") -> TrainConfig:
    return TrainConfig(dataset_id="t", modality="series", task=task, backbone=backbone, weights="none")


def _bumps(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two channels of noise; class 1 adds a bump of height 2 on channel 0 at steps 20 to 27."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    values = 0.5 * rng.normal(size=(n, STEPS, 2)).astype(np.float32)
    values[labels == 1, BUMP[0] : BUMP[-1] + 1, 0] += 2.0
    return values, labels


def _trained(model: nn.Module, task_name: str, state: dict[str, Any], values: np.ndarray, targets: np.ndarray,
             epochs: int) -> nn.Module:
    """A plain loop with the task's loss on its model targets (the real loop is core/training's)."""
    task = tasks.task(task_name)
    loss = task.loss(TrainConfig(dataset_id="t", label_smoothing=0.0), state, targets, torch.device("cpu"))
    target = task.model_targets(torch.from_numpy(np.array(targets)), state)
    given = torch.from_numpy(values)
    mask = torch.ones(given.shape[:2], dtype=torch.bool)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(given), generator=generator)
        for start in range(0, len(order), 32):
            rows = order[start : start + 32]
            optimizer.zero_grad()
            loss(model(given[rows], mask[rows]), target[rows]).backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def planted() -> tuple[SeriesModel, np.ndarray, np.ndarray]:
    values, labels = _bumps(240, 0)
    torch.manual_seed(0)
    model = family("series").create(_config("cnn"), 2, Path("unused"), INPUTS)
    model = _trained(model, "classification", STATE, values, labels, epochs=5)
    val_values, val_labels = _bumps(60, 1)
    subject = SeriesModel.from_model(model, "classification", STATE)
    with torch.no_grad():
        accuracy = float((model(torch.from_numpy(val_values)).argmax(1).numpy() == val_labels).mean())
    assert accuracy > 0.95  # the model has learnt the bump: its explanations can be checked against it
    return subject, val_values, val_labels


def test_the_methods_are_registered() -> None:
    assert methods("series").names() == METHODS


@pytest.mark.parametrize("method", METHODS)
def test_the_bump_steps_get_the_largest_attribution(planted: Any, method: str) -> None:
    subject, values, labels = planted
    for i in np.flatnonzero(labels == 1)[:3]:
        result = explain_series(subject, {"values": values[i]}, method)
        assert result["predicted"] == "bump" and result["target"] == "bump" and result["probability"] > 0.9
        assert result["channels"] == ["signal", "noise"] and result["steps"] == result["length"] == STEPS
        signal, noise = (np.array(channel) for channel in result["attributions"])  # one list per channel
        assert int(np.argmax(signal)) in BUMP
        assert len(set(np.argsort(-signal)[:8].tolist()) & set(BUMP)) >= 6
        assert signal[BUMP].sum() > 3 * np.abs(np.delete(signal, BUMP)).sum() / 5  # per step, far above the rest
        assert np.abs(signal).sum() > 3 * np.abs(noise).sum()
        check = result["faithfulness"]
        assert check["k"] == 5 and set(check["top_steps"]) <= set(BUMP) and check["beats_random"]
        assert check["topk_change"] > 5 * check["random_change"]


def test_integrated_gradients_add_up_to_the_change_from_a_flat_series(planted: Any) -> None:
    subject, values, labels = planted
    i = int(np.flatnonzero(labels == 1)[0])
    result = explain_series(subject, {"values": values[i]}, "ig", target="flat",
                            options=ExplainOptions(ig_steps=64))
    assert result["target"] == "flat" and result["predicted"] == "bump"
    with torch.no_grad():
        logits = subject.model(torch.from_numpy(np.stack([values[i], np.zeros_like(values[i])])))
    change = float(logits[0, 0] - logits[1, 0])
    assert float(np.sum(result["attributions"])) == pytest.approx(change, rel=0.02, abs=1e-3)
    assert "within" in result["notes"][0]


@pytest.mark.parametrize("method", METHODS)
def test_padded_steps_get_nothing_and_change_nothing(planted: Any, method: str) -> None:
    subject, values, labels = planted
    i = int(np.flatnonzero(labels == 1)[0])
    real = 36  # the series ends at step 36, after the bump
    alone = explain_series(subject, {"values": values[i, :real]}, method)
    padded = np.concatenate([values[i, :real], np.full((12, 2), 1e3, dtype=np.float32)])
    mask = np.arange(STEPS) < real
    result = explain_series(subject, {"values": padded, "mask": mask}, method)
    assert result["steps"] == STEPS and result["length"] == real
    for channel, unpadded in zip(result["attributions"], alone["attributions"], strict=True):
        assert channel[real:] == [0.0] * 12
        assert channel[:real] == pytest.approx(unpadded, abs=1e-4)
    assert result["probabilities"] == alone["probabilities"]
    assert set(result["faithfulness"]["top_steps"]) < set(range(real))
    # other padding, NaN included, gives the same explanation
    padded[real:] = np.nan
    again = explain_series(subject, {"values": padded, "mask": mask}, method)
    assert again["attributions"] == result["attributions"] and again["probabilities"] == result["probabilities"]


def test_faithfulness_with_a_wrong_map_favours_random_steps(planted: Any) -> None:
    subject, values, labels = planted
    i = int(np.flatnonzero(labels == 1)[0])
    wrong = np.zeros((STEPS, 2))
    wrong[40:45, 1] = 5.0  # noise steps after the bump
    check = faithfulness(subject, {"values": values[i]}, wrong)
    assert check["top_steps"] == [40, 41, 42, 43, 44] and check["larger"] == "random" and not check["beats_random"]
    assert faithfulness(subject, {"values": values[i]}, wrong) == check  # seeded
    assert faithfulness(subject, {"values": values[i]}, wrong.T.tolist()) == check  # per channel, as returned


def test_one_channel_gives_one_list_over_steps() -> None:
    torch.manual_seed(0)
    model = family("series").create(_config("gru"), 3, Path("unused"), {"channels": 1, "length": 30})
    subject = SeriesModel.from_model(model, "classification", {"classes": ["a", "b", "c"]})
    series = np.sin(np.arange(30) / 3.0)
    for method in METHODS:
        result = explain_series(subject, {"values": series}, method, target=2)
        assert result["channels"] == ["channel 1"] and result["target"] == "c"
        assert len(result["attributions"]) == 30 and all(isinstance(v, float) for v in result["attributions"])
    ablation = explain_series(subject, {"values": series}, "ablation")
    assert "30 window(s) of 1 step(s)" in ablation["notes"][0]  # max(1, 30 // 20) = 1 step a window
    custom = explain_series(subject, {"values": series}, "ablation", options=ExplainOptions(occlusion_window=10))
    assert len(set(custom["attributions"][:10])) == 1 and "3 window(s) of 10 step(s)" in custom["notes"][0]


def test_a_forecast_explains_the_mean_of_its_horizon() -> None:
    context, horizon = 24, 6
    inputs = {"channels": ["calls", "temp"], "context": context, "horizon": horizon, "future_covariates": 1,
              "mean": 100.0, "std": 20.0}
    state = {"target": "calls", "mean": 100.0, "std": 20.0, "horizon": horizon, "season": 12, "mase_scale": 1.0}
    torch.manual_seed(0)
    model = family("series").create(_config("gru", "forecast"), horizon, Path("unused"), inputs).eval()
    subject = SeriesModel.from_model(model, "forecast", state)
    assert subject.classes == ["calls"] and subject.channel_names == ["calls", "temp"]
    rng = np.random.default_rng(0)
    values, future = rng.normal(size=(context, 2)), rng.normal(size=(horizon, 1))
    with pytest.raises(GlassboxError, match="needs the 1 covariate"):
        explain_series(subject, {"values": values}, "ig")
    result = explain_series(subject, {"values": values, "future": future}, "ig", options=ExplainOptions(ig_steps=64))
    assert len(result["predicted"]) == horizon and result["forecast"] == result["predicted"]
    assert result["explained"] == "the mean of the 6 forecasts" and result["target"] == "calls"
    assert len(result["attributions"]) == 2 and len(result["attributions"][0]) == context
    # in the series' units: the shares add up to the mean forecast's change from a flat context
    flat = subject.inputs(np.zeros((context, 2)), None, future)
    change = float(np.mean(result["predicted"])) - float(subject.outputs(flat)[0].mean())
    assert float(np.sum(result["attributions"])) == pytest.approx(change, rel=0.02, abs=1e-3)
    assert result["faithfulness"]["measure"] == "the mean forecast"
    ablation = explain_series(subject, {"values": values, "future": future}, "ablation")
    assert len(ablation["attributions"][1]) == context


def test_a_finished_run_is_read_with_its_task_state_and_inputs(planted: Any, tmp_path: Path) -> None:
    subject, values, _ = planted
    files = RunFiles(tmp_path)
    files.config.write_text(_config("cnn").to_json())
    files.write_json(files.target, STATE)
    files.write_json(files.inputs, INPUTS)
    save_weights(files.weights, subject.model)
    loaded = load_subject(files, tmp_path / "cache")
    assert isinstance(loaded, SeriesModel)
    assert loaded.task.name == "classification" and loaded.state == STATE and loaded.classes == ["flat", "bump"]
    assert loaded.channel_names == ["signal", "noise"] and loaded.fitted == INPUTS
    first, second = (explain_series(s, {"values": values[0]}, "ablation") for s in (loaded, subject))
    assert first["attributions"] == second["attributions"]


def test_inputs_that_do_not_fit_are_refused(planted: Any) -> None:
    subject, values, _ = planted
    with pytest.raises(GlassboxError, match="2 channel"):
        explain_series(subject, {"values": values[0, :, :1]}, "ig")
    with pytest.raises(GlassboxError, match="one series"):
        explain_series(subject, {"values": values[:2]}, "ig")
    broken = values[0].copy()
    broken[5, 0] = np.nan
    with pytest.raises(GlassboxError, match="missing values on real steps"):
        explain_series(subject, {"values": broken}, "ig")
    with pytest.raises(GlassboxError, match="the mask covers"):
        explain_series(subject, {"values": values[0], "mask": np.ones(10, bool)}, "ig")
    with pytest.raises(GlassboxError, match="unknown class 'spike'"):
        explain_series(subject, {"values": values[0]}, "ig", target="spike")
    with pytest.raises(GlassboxError, match="unknown series explanation method"):
        explain_series(subject, {"values": values[0]}, "gradcam")
