"""The table baselines (`core.baselines.tabular`, `mean`): LightGBM on the encoded inputs learns what
always answering the majority class or the training mean cannot, reads categorical codes as categories,
gives the same answer twice for one seed, and returns probabilities for every class of the task."""

from __future__ import annotations

from pathlib import Path

import lightgbm
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from core import data, evaluation
from core.baselines import Context, majority, mean, tabular
from core.config import TrainConfig
from tests.conftest import ROOT


def _inputs(numeric: np.ndarray, codes: np.ndarray | None = None) -> dict[str, np.ndarray]:
    codes = np.zeros((len(numeric), 0), dtype=np.int64) if codes is None else codes
    return {"numeric": numeric.astype(np.float32), "categorical": codes.astype(np.int64)}


def _split(n: int, val_share: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(0).permutation(n)
    cut = int(n * (1 - val_share))
    return order[:cut], order[cut:]


def test_lightgbm_beats_the_majority_class_on_breast_cancer() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    train, val = _split(len(y))
    probs = tabular.fit_predict(_inputs(x[train]), y[train], _inputs(x[val]), "classification", 2)
    assert probs.shape == (len(val), 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    ours = evaluation.summary(y[val], probs.argmax(axis=1), 2)["accuracy"]
    always = evaluation.summary(y[val], np.full(len(val), majority.largest_class(y[train])), 2)["accuracy"]
    # majority: about 0.62 (the benign share); gradient boosting: about 0.95
    assert always < 0.7
    assert ours > always + 0.25
    assert evaluation.binary_scores(y[val], probs)["roc_auc"] > 0.95


def test_lightgbm_beats_the_training_mean_on_diabetes() -> None:
    x, y = load_diabetes(return_X_y=True)
    train, val = _split(len(y))
    preds = tabular.fit_predict(_inputs(x[train]), y[train], _inputs(x[val]), "regression", 0)
    assert preds.shape == (len(val),)
    ours = evaluation.regression_summary(y[val], preds)
    always = evaluation.regression_summary(y[val], np.full(len(val), mean.training_mean(y[train])))
    # the mean scores R² about 0 and an RMSE of about the targets' spread (77); boosting about 0.35 and 60
    assert abs(always["r2"]) < 0.05
    assert ours["r2"] > always["r2"] + 0.25
    assert ours["rmse"] < always["rmse"] - 8


def test_the_same_seed_gives_the_same_model() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    train, val = _split(len(y))
    first = tabular.fit(_inputs(x[train]), y[train], _inputs(x[val]), "classification", 2, seed=3)
    second = tabular.fit(_inputs(x[train]), y[train], _inputs(x[val]), "classification", 2, seed=3)
    np.testing.assert_array_equal(first.outputs, second.outputs)
    assert first.importance == second.importance and first.rounds == second.rounds


def _planted(n: int = 600, levels: int = 12, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Three numeric noise columns and one categorical column of `levels` codes; the class is decided by
    the code alone (three classes, each a scattered third of the codes, so no single threshold on the
    code's number separates them)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, levels, size=(n, 1))
    decide = rng.permutation(np.arange(levels) % 3)
    return _inputs(rng.normal(size=(n, 3)), codes), decide[codes[:, 0]]


def test_a_target_decided_by_one_categorical_column_is_learned_from_it(monkeypatch: pytest.MonkeyPatch) -> None:
    boosters: list[lightgbm.Booster] = []
    train_booster = lightgbm.train
    monkeypatch.setattr(lightgbm, "train", lambda *a, **k: boosters.append(train_booster(*a, **k)) or boosters[-1])
    inputs, y = _planted()
    train, val = _split(len(y))
    fitted = tabular.fit({k: v[train] for k, v in inputs.items()}, y[train],
                         {k: v[val] for k, v in inputs.items()}, "classification", 3)
    assert (fitted.outputs.argmax(axis=1) == y[val]).mean() > 0.97
    # importance: the three numeric features, then the categorical column, which carries the gain
    assert len(fitted.importance) == 4
    assert int(np.argmax(fitted.importance)) == 3
    assert fitted.importance[3] > 10 * sum(fitted.importance[:3])
    # the codes are split on as categories (a set of codes per branch), not as numbers
    tree = boosters[-1].dump_model()["tree_info"][0]["tree_structure"]
    assert tree["split_feature"] == 3 and tree["decision_type"] == "=="


def test_levels_with_few_training_rows_each_still_count() -> None:
    # 60 levels over 450 training rows (about 7 each), each level shifting the target by its own amount:
    # LightGBM's default leaves levels under 10 training rows out of its splits, and scores R² about 0.2 here
    rng = np.random.default_rng(0)
    codes = rng.integers(2, 62, size=(600, 1))
    numeric = rng.normal(size=(600, 2))
    y = rng.normal(size=62)[codes[:, 0]] + 0.5 * numeric[:, 0] + 0.1 * rng.normal(size=600)
    inputs = _inputs(numeric, codes)
    train, val = _split(600)
    preds = tabular.fit_predict({k: v[train] for k, v in inputs.items()}, y[train],
                                {k: v[val] for k, v in inputs.items()}, "regression", 0)
    assert evaluation.regression_summary(y[val], preds)["r2"] > 0.9


def test_a_class_absent_from_training_gets_probability_zero() -> None:
    inputs, y = _planted(n=300)
    y = np.where(y == 2, 3, y)  # classes 0, 1 and 3 of a four-class task: class 2 has no row
    fitted = tabular.fit(inputs, y, inputs, "classification", 4)
    assert fitted.outputs.shape == (300, 4)
    assert np.all(fitted.outputs[:, 2] == 0)
    np.testing.assert_allclose(fitted.outputs.sum(axis=1), 1.0)
    assert (fitted.outputs.argmax(axis=1) == y).mean() > 0.97


def test_one_training_class_or_no_column_gives_the_training_shares_or_mean() -> None:
    inputs, _ = _planted(n=50)
    one_class = tabular.fit_predict(inputs, np.ones(50, dtype=int), inputs, "classification", 2)
    np.testing.assert_array_equal(one_class, np.tile([0.0, 1.0], (50, 1)))
    empty = _inputs(np.zeros((4, 0)))
    np.testing.assert_array_equal(tabular.fit_predict(empty, np.array([1.0, 2.0, 3.0, 6.0]), empty,
                                                      "regression", 0), [3.0, 3.0, 3.0, 3.0])


def test_a_tiny_table_still_fits_without_a_held_out_slice() -> None:
    inputs, y = _planted(n=80, levels=6)
    fitted = tabular.fit(inputs, y, inputs, "classification", 3)
    assert fitted.rounds == tabular.FIXED_ROUNDS
    assert (fitted.outputs.argmax(axis=1) == y).mean() > 0.95


def test_importance_by_source_column_adds_a_columns_parts_into_shares() -> None:
    # a date's two parts (3 + 1) and a category (4) share a gain of 8; the price never split
    shares = tabular.by_column([3.0, 1.0, 0.0, 4.0], ["signup", "signup", "price", "plan"])
    assert shares == {"signup": 0.5, "plan": 0.5, "price": 0.0}
    assert tabular.by_column([0.0], ["price"]) == {"price": 0.0}
    with pytest.raises(ValueError):
        tabular.by_column([1.0], ["price", "plan"])


def test_on_a_run_lightgbm_reads_the_rows_through_the_runs_encoder(tmp_path: Path) -> None:
    # the Palmer penguins as a run sees them: ingested, split, encoded with the encoder fitted on training rows
    modality = data.modality("tables")
    info = modality.ingest(ROOT / "sample_data" / "penguins.csv", tmp_path / "ds", options={"target": "species"})
    split = data.split_for(modality, tmp_path / "ds", info, TrainConfig(dataset_id="-", modality="tables"))
    targets = modality.targets(tmp_path / "ds", info)
    inputs = modality.fit_inputs(tmp_path / "ds", info, TrainConfig(dataset_id="-", modality="tables"), split)
    context = Context(modality, tmp_path / "ds", info, split, targets, {"classes": info["classes"]}, 0, inputs)
    probs = tabular.predict(context)
    assert probs.shape == (len(split.val), 3)
    # bill length and depth tell the three species apart: about 98% against 44% for the largest class
    assert (probs.argmax(axis=1) == targets[split.val]).mean() > 0.9
    always = mean.predict(Context(modality, tmp_path / "ds", info, split, targets.astype(float), {}, 0, inputs))
    np.testing.assert_allclose(always, np.full(len(split.val), targets[split.train].mean()))
    with pytest.raises(ValueError):
        tabular.predict(Context(modality, tmp_path / "ds", info, split, targets, {}, 0, None))


def test_the_mean_baseline_and_an_unknown_task() -> None:
    assert mean.training_mean([1.0, 2.0, 6.0]) == 3.0
    with pytest.raises(ValueError):
        mean.training_mean([])
    inputs, y = _planted(n=20)
    with pytest.raises(ValueError):
        tabular.fit(inputs, y, inputs, "forecast", 3)
