"""Explanations of table models (core/explain/tables.py): a column planted to decide the target gets the largest
attribution from every method, per source column (a date's five features and a category's embedding count as one
column each), the faithfulness check prefers it to random columns, and the wide shared case's planted columns rank
first. Models train with their task's loss and are read through its answers (`core.tasks`), as runs are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from core import tasks
from core.artifacts import RunFiles
from core.config import TrainConfig
from core.data.table_encoding import TableEncoder
from core.errors import GlassboxError
from core.explain import load_subject, methods
from core.explain.tables import TableModel, explain_row, faithfulness, global_importance
from core.models import family
from core.training.checkpointing import save_weights

CASES = Path(__file__).resolve().parents[2].parent / "shared" / "cases"
needs_cases = pytest.mark.skipif(not (CASES / "tables").is_dir(), reason="../shared/cases is not beside this checkout")
METHODS = ["ig", "ablation", "shapley"]
EFFECTS = {"north": -200.0, "south": 150.0, "east": 0.0, "west": 60.0}
ROLES = {"x0": "numeric", "x1": "numeric", "flag": "boolean", "c0": "categorical", "when": "datetime"}


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    flag = rng.integers(0, 2, n).astype(np.float64)
    flag[::9] = np.nan
    return pd.DataFrame({
        "x0": rng.normal(size=n), "x1": rng.normal(size=n), "flag": flag,
        "c0": rng.choice(["north", "south", "east", "west"], n).astype(object),
        "when": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
    })


def _model(encoder: TableEncoder, task_name: str, state: dict[str, Any], backbone: str, frame: pd.DataFrame,
           targets: np.ndarray, epochs: int) -> nn.Module:
    """A model trained by a plain loop on `frame` with the task's loss on its model targets (class indices, or
    standardised values): enough to learn a planted column (the real loop is core/training's)."""
    task = tasks.task(task_name)
    loss = task.loss(TrainConfig(dataset_id="t", label_smoothing=0.0), state, targets, torch.device("cpu"))
    target = task.model_targets(torch.from_numpy(np.array(targets)), state)  # a copy: pandas arrays are read-only
    torch.manual_seed(0)
    config = TrainConfig(dataset_id="test", modality="tables", backbone=backbone, weights="none")
    model = family("tables").create(config, task.outputs(state), Path("unused"), encoder.to_dict())
    encoded = encoder.transform(frame)
    numeric, categorical = torch.from_numpy(encoded["numeric"]), torch.from_numpy(encoded["categorical"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(target), generator=generator)
        for start in range(0, len(order), 64):
            rows = order[start : start + 64]
            optimizer.zero_grad()
            loss(model(numeric[rows], categorical[rows]), target[rows]).backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def planted_number() -> tuple[TableModel, dict[str, np.ndarray], pd.DataFrame]:
    """Classification decided by x0's sign alone; the other columns are noise."""
    frame = _table(700, 0)
    target = (frame["x0"] > 0).astype(int).to_numpy()
    encoder = TableEncoder.fit(frame[:500], [{"name": n, "role": r} for n, r in ROLES.items()])
    state = {"classes": ["low", "high"]}
    model = _model(encoder, "classification", state, "mlp", frame[:500], target[:500], epochs=10)
    subject = TableModel.from_model(model, encoder, "classification", state)
    return subject, encoder.transform(frame[500:]), frame[500:].reset_index(drop=True)


@pytest.fixture(scope="module")
def planted_category() -> tuple[TableModel, dict[str, np.ndarray], pd.DataFrame]:
    """Regression (in hundreds) decided by c0's level alone, learnt by the TabM-mini ensemble."""
    frame = _table(700, 1)
    values = 500.0 + frame["c0"].map(EFFECTS).to_numpy()
    values = values + np.random.default_rng(2).normal(0, 5, len(values))
    encoder = TableEncoder.fit(frame[:500], [{"name": n, "role": r} for n, r in ROLES.items()])
    state = tasks.task("regression").state({"target": "price"}, values[:500])
    model = _model(encoder, "regression", state, "mlp_ensemble", frame[:500], values[:500], epochs=10)
    subject = TableModel.from_model(model, encoder, "regression", state, target_column="price")
    return subject, encoder.transform(frame[500:]), frame[500:].reset_index(drop=True)


def _row(encoded: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    return {"numeric": encoded["numeric"][i], "categorical": encoded["categorical"][i]}


def test_the_methods_are_registered() -> None:
    assert methods("tables").names() == METHODS


@pytest.mark.parametrize("method", METHODS)
def test_a_planted_number_gets_the_largest_attribution(planted_number: Any, method: str) -> None:
    subject, encoded, frame = planted_number
    clear = frame.index[frame["x0"].abs() > 1.0][:3]
    for i in clear:
        result = explain_row(subject, **_row(encoded, i), method=method)
        assert list(result["attributions"])[0] == "x0"
        assert set(result["attributions"]) == set(ROLES)  # per source column: no "when.month", no "flag.missing"
        assert result["predicted"] == ("high" if frame["x0"][i] > 0 else "low")
        # the evidence points towards the predicted class
        assert result["attributions"]["x0"] > 0
        assert result["faithfulness"]["larger"] == "top-k" and result["faithfulness"]["top_columns"] == ["x0"]
        assert result["faithfulness"]["topk_change"] > result["faithfulness"]["random_change"]
        assert result["notes"]


def test_integrated_gradients_add_up_to_the_change_from_the_typical_row(planted_number: Any) -> None:
    subject, encoded, _ = planted_number
    result = explain_row(subject, **_row(encoded, 0), method="ig", target="high")
    assert result["target"] == "high"
    inputs = subject.inputs(**_row(encoded, 0))
    with torch.no_grad():
        change = (subject.logits(inputs["numeric"], inputs["categorical"])
                  - subject.logits(subject.baseline["numeric"], subject.baseline["categorical"]))[0, 1]
    assert sum(result["attributions"].values()) == pytest.approx(float(change), rel=0.05, abs=1e-3)
    with pytest.raises(GlassboxError, match="unknown class 'medium'"):
        explain_row(subject, **_row(encoded, 0), target="medium")


def test_ablation_sets_all_of_a_columns_features_to_the_baseline_at_once(planted_number: Any) -> None:
    subject, encoded, _ = planted_number
    result = explain_row(subject, **_row(encoded, 3), method="ablation", target=1)
    inputs = subject.inputs(**_row(encoded, 3))
    for column in ("when", "flag"):  # five date parts plus an indicator; a 0/1 value plus an indicator
        without = subject.with_baseline(inputs, [subject.columns.index(column)])
        with torch.no_grad():
            drop = (subject.logits(inputs["numeric"], inputs["categorical"])
                    - subject.logits(without["numeric"], without["categorical"]))[0, 1]
        assert result["attributions"][column] == pytest.approx(float(drop), abs=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_a_planted_category_gets_the_largest_attribution_in_the_targets_units(planted_category: Any,
                                                                              method: str) -> None:
    subject, encoded, frame = planted_category
    typical = subject.encoder.levels("c0")[int(subject.baseline["categorical"][0, 0]) - 2]
    # rows whose level moves the target by 90 or more from the typical row's (the most frequent level)
    far = frame.index[(frame["c0"].map(EFFECTS) - EFFECTS[typical]).abs() >= 90][:3]
    assert len(far) == 3
    for i in far:
        result = explain_row(subject, **_row(encoded, i), method=method)
        assert list(result["attributions"])[0] == "c0"
        assert result["faithfulness"]["beats_random"]
        assert result["faithfulness"]["measure"] == "the predicted value"
        # the level's effect, against the typical level's, in the target's units
        expected = EFFECTS[frame["c0"][i]] - EFFECTS[typical]
        assert result["attributions"]["c0"] == pytest.approx(expected, abs=25.0)


@pytest.mark.parametrize("method", ["ablation", "ig"])
def test_global_importance_ranks_the_planted_column_first(planted_number: Any, planted_category: Any,
                                                          method: str) -> None:
    for (subject, encoded, _), planted in ((planted_number, "x0"), (planted_category, "c0")):
        importance = global_importance(subject, encoded, method=method)
        assert list(importance)[0] == planted
        assert set(importance) == set(ROLES) and min(importance.values()) >= 0


def test_outputs_are_the_tasks_answers(planted_number: Any, planted_category: Any) -> None:
    for subject, encoded, _ in (planted_number, planted_category):
        inputs = subject.inputs(encoded["numeric"][:5], encoded["categorical"][:5])
        with torch.no_grad():
            logits = subject.logits(inputs["numeric"], inputs["categorical"])
        np.testing.assert_allclose(subject.outputs(inputs), subject.task.answers(logits, subject.state), rtol=1e-6)
    classifier, encoded, _ = planted_number
    assert classifier.classes == ["low", "high"] and not classifier.predicts_values
    result = explain_row(classifier, **_row(encoded, 0), method="ablation")
    probabilities = classifier.outputs(classifier.inputs(**_row(encoded, 0)))[0]
    assert result["probabilities"] == {"low": round(float(probabilities[0]), 4),
                                       "high": round(float(probabilities[1]), 4)}
    regressor, encoded, frame = planted_category
    assert regressor.classes == ["price"] and regressor.predicts_values
    assert regressor.attribution_scale() == pytest.approx(regressor.state["std"], rel=1e-6)
    result = explain_row(regressor, **_row(encoded, 0), method="ablation")
    assert result["target"] == "price"
    # in the target's units: the planted level's price (about 300 to 650), not a standardised score
    assert result["value"] == pytest.approx(500.0 + EFFECTS[frame["c0"][0]], abs=25.0)


def test_a_finished_run_is_read_with_its_task_state_and_columns(planted_category: Any, tmp_path: Path) -> None:
    subject, encoded, _ = planted_category
    files = RunFiles(tmp_path)
    config = TrainConfig(dataset_id="t", modality="tables", task="regression", backbone="mlp_ensemble",
                         weights="none")
    files.config.write_text(config.to_json())
    files.write_json(files.target, subject.state)
    described = [{"name": n, "role": r, "dropped": False} for n, r in ROLES.items()]
    files.write_json(files.inputs, {**subject.encoder.to_dict(), "columns": described, "target_column": "price"})
    save_weights(files.weights, subject.model)
    loaded = load_subject(files, tmp_path / "cache")
    assert isinstance(loaded, TableModel)
    assert loaded.task.name == "regression" and loaded.state == subject.state and loaded.classes == ["price"]
    assert loaded.column_descriptions == described and loaded.target_column == "price"
    assert loaded.encoder == subject.encoder
    row = _row(encoded, 4)
    assert explain_row(loaded, **row, method="ablation")["attributions"] == pytest.approx(
        explain_row(subject, **row, method="ablation")["attributions"])


def test_faithfulness_with_a_wrong_explanation_favours_random_columns(planted_number: Any) -> None:
    subject, encoded, frame = planted_number
    i = int(frame.index[frame["x0"].abs() > 1.5][0])
    wrong = {"x0": 0.0, "x1": 5.0, "flag": 0.0, "c0": 0.0, "when": 0.0}
    check = faithfulness(subject, _row(encoded, i), wrong, k=1)
    assert check["top_columns"] == ["x1"] and check["larger"] == "random" and not check["beats_random"]
    assert faithfulness(subject, _row(encoded, i), wrong, k=1) == check  # seeded


def test_a_table_of_categories_only_is_explained() -> None:
    frame = pd.DataFrame({"colour": ["red", "blue", "red", "green", "blue", "red"] * 5})
    encoder = TableEncoder.fit(frame, [{"name": "colour", "role": "categorical"}])
    model = family("tables").create(TrainConfig(dataset_id="t", modality="tables", backbone="mlp", weights="none"),
                                    3, Path("unused"), encoder.to_dict())
    subject = TableModel.from_model(model, encoder, "classification", {"classes": ["a", "b", "c"]})
    encoded = encoder.transform(frame)
    for method in METHODS:
        assert list(explain_row(subject, **_row(encoded, 1), method=method)["attributions"]) == ["colour"]
    assert list(global_importance(subject, encoded)) == ["colour"]


@needs_cases
def test_the_wide_tables_planted_columns_rank_first() -> None:
    raw = pd.read_csv(CASES / "tables" / "wide-1100-cols" / "counts_wide.csv")
    typed = raw.drop(columns=["sample", "class"]).astype("float64")
    encoder = TableEncoder.fit(typed, [{"name": c, "role": "numeric"} for c in typed.columns])
    state = {"classes": sorted(raw["class"].unique())}
    target = raw["class"].map({c: i for i, c in enumerate(state["classes"])}).to_numpy()
    model = _model(encoder, "classification", state, "mlp", typed, target, epochs=10)
    subject = TableModel.from_model(model, encoder, "classification", state)
    encoded = encoder.transform(typed)
    # Integrated Gradients: about 64 passes over the rows, where ablation would take one per column (1,100)
    importance = global_importance(subject, encoded, method="ig")
    assert set(list(importance)[:2]) == {"g0007", "g0420"}
