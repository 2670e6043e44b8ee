"""Baselines (`core.baselines`), balanced accuracy, class weights and the verdict a user reads: a run is
shown beside what always answering the largest class and a classical method score on its own split."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

from core import baselines, cli, data, datasets, tasks
from core.config import TrainConfig
from core.data import Split
from core.errors import GlassboxError
from core.store import RunRecord, Store
from core.training.class_weights import class_weights
from core.workspace import Workspace
from tests.conftest import ROOT, colour_images
from ui.baselines import verdict


def _stub(labels: list[int], texts: list[str] | None = None, methods: tuple[str, ...] = ()) -> SimpleNamespace:
    """A modality as `compute` sees it: labels and items in a fixed order, and its classical methods."""
    return SimpleNamespace(baselines=methods, labels=lambda d, i: labels, items=lambda d, i: texts or [],
                           targets=lambda d, i: np.asarray(labels))


def _compute(modality: Any, dataset_dir: Path, info: dict[str, Any], split: Split) -> dict[str, Any]:
    """What a classification run computes for its baselines: their metrics."""
    targets = np.asarray(modality.targets(dataset_dir, info))
    context = baselines.Context(modality, dataset_dir, info, split, targets, {"classes": info["classes"]})
    return baselines.compute(modality, tasks.task("classification"), context).metrics


def test_majority_on_7_pos_and_3_neg_scores_0_7_and_balanced_0_5() -> None:
    # items 0-9 train (6 pos, 4 neg), 10-19 validation (7 pos, 3 neg); classes sorted: neg=0, pos=1
    labels = [1] * 6 + [0] * 4 + [1] * 7 + [0] * 3
    split = Split(train=list(range(10)), val=list(range(10, 20)))
    found = _compute(_stub(labels), Path("."), {"classes": ["neg", "pos"]}, split)
    majority = found["baselines"]["majority"]
    assert majority["class"] == "pos"
    assert majority["accuracy"] == 0.7
    assert majority["balanced_accuracy"] == 0.5
    assert majority["macro_f1"] == pytest.approx(7 / 17)  # pos: F1 = 2 * 0.7 / 1.7, neg: 0
    # one answer for every item ranks nothing: ROC-AUC 0.5, PR-AUC the positive share
    assert (majority["roc_auc"], majority["pr_auc"]) == (0.5, 0.7)
    assert list(found["baselines"]) == ["majority"]
    assert found["baseline_metrics"] == {"baseline": "majority", **majority}


def test_the_majority_class_is_the_training_splits_and_the_first_on_a_tie() -> None:
    # training: 3 of class 0, 3 of class 2 (a tie: the lower index); validation is mostly class 1
    labels = [0, 0, 0, 2, 2, 2, 1, 1, 1, 0]
    split = Split(train=list(range(6)), val=[6, 7, 8, 9])
    majority = _compute(_stub(labels), Path("."), {"classes": ["a", "b", "c"]}, split)["baselines"]["majority"]
    assert (majority["class"], majority["accuracy"], majority["balanced_accuracy"]) == ("a", 0.25, 0.5)


def test_tfidf_logreg_finds_the_word_that_decides_the_class(ws: Workspace, store: Store, tmp_path: Path) -> None:
    rows = [f"review {i} of the product was {'lovely' if i % 2 else 'awful'} overall,{('bad', 'good')[i % 2]}"
            for i in range(20)]
    path = tmp_path / "reviews.csv"
    path.write_text("review,verdict\n" + "\n".join(rows) + "\n", encoding="utf-8")
    record = datasets.add(ws, store, path)
    modality = data.modality("text")
    split = data.split_for(modality, ws.dataset_dir(record.id), record.info, TrainConfig(dataset_id=record.id))
    assert len(split.val) == 4  # two of each class

    found = _compute(modality, ws.dataset_dir(record.id), record.info, split)
    assert list(found["baselines"]) == ["majority", "tfidf_logreg"]
    perfect = {"accuracy": 1.0, "balanced_accuracy": 1.0, "macro_f1": 1.0, "roc_auc": 1.0, "pr_auc": 1.0}
    assert found["baselines"]["tfidf_logreg"] == perfect
    assert found["baselines"]["majority"] == {"accuracy": 0.5, "balanced_accuracy": 0.5, "macro_f1": 1 / 3,
                                              "roc_auc": 0.5, "pr_auc": 0.5, "class": "bad"}
    assert found["baseline_metrics"] == {"baseline": "tfidf_logreg", **perfect}
    described = baselines.describe(baselines.Found(found), tasks.task("classification"))
    assert described == ("baselines on the validation split: always 'bad' 50.0%, "
                         "TF-IDF + logistic regression 100.0% accuracy")


def test_tfidf_logreg_on_the_sample_reviews_scores_what_the_quick_preset_scores(ws: Workspace, store: Store) -> None:
    """77.4% against a 71.2% majority on the default split: the figures the Quick text preset reached."""
    record = datasets.add(ws, store, ROOT / "sample_data" / "drugreviews.csv")
    modality = data.modality("text")
    split = data.split_for(modality, ws.dataset_dir(record.id), record.info, TrainConfig(dataset_id=record.id))
    found = _compute(modality, ws.dataset_dir(record.id), record.info, split)["baselines"]
    assert len(split.val) == 177
    assert found["majority"]["accuracy"] == 126 / 177 and found["majority"]["class"] == "positive"
    assert found["tfidf_logreg"]["accuracy"] == 137 / 177


def test_a_classical_method_that_cannot_fit_is_left_out() -> None:
    # every word appears once: TF-IDF with min_df=2 keeps none, and scikit-learn refuses to fit
    texts = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    labels = [0, 1, 0, 1, 0, 1]
    split = Split(train=[0, 1, 2, 3], val=[4, 5])
    found = _compute(_stub(labels, texts, ("tfidf_logreg",)), Path("."), {"classes": ["x", "y"]}, split)
    assert list(found["baselines"]) == ["majority"]


def test_balanced_class_weights_are_sklearns() -> None:
    labels = [0] * 6 + [1] * 2 + [2]
    weight = class_weights("balanced", labels, 3)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    assert weight.tolist() == pytest.approx(expected.tolist())
    assert weight.tolist() == pytest.approx([0.5, 1.5, 3.0])  # 9 items / (3 classes x 6, 2, 1)
    assert weight.dtype == torch.float32
    assert class_weights("none", labels, 3) is None
    # a class without training items (a split the user made) is weighed 1; the others as sklearn says
    assert class_weights("balanced", [0, 0, 0, 2], 3).tolist() == pytest.approx([2 / 3, 1.0, 2.0])


def test_class_weights_are_validated_and_reach_the_config(ws: Workspace, store: Store, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(GlassboxError, match="^class weights must be one of none, balanced$"):
        TrainConfig(dataset_id="d", class_weights="inverse").validate()
    with pytest.raises(SystemExit) as exited:
        cli.main(["train", "--data", "x", "--class-weights", "inverse"])
    assert exited.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: argument --class-weights: invalid choice: 'inverse'")

    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + "\n".join(f"text {i},{'ab'[i % 2]}" for i in range(10)) + "\n")
    record = datasets.add(ws, store, path)
    args = cli._build_parser().parse_args(["train", "--data", record.id, "--class-weights", "balanced"])
    assert cli._train_config(args, ws, store).class_weights == "balanced"


def test_the_summary_puts_baselines_beside_the_metrics() -> None:
    found = {"baselines": {"majority": {"accuracy": 0.7, "class": "pos"}},
             "baseline_metrics": {"baseline": "majority", "accuracy": 0.7, "class": "pos"}}
    run = RunRecord(id="r", dataset_id="d", modality="text", backbone="b", status="completed", config={},
                    backend="local", created_at=0.0, metrics={"val_accuracy": 0.8, **found})
    summary = run.summary()
    assert summary["metrics"] == {"val_accuracy": 0.8}
    assert (summary["baselines"], summary["baseline_metrics"]) == (found["baselines"], found["baseline_metrics"])
    assert RunRecord(id="r", dataset_id="d", modality="text", backbone="b", status="queued", config={},
                     backend="local", created_at=0.0).summary()["baselines"] == {}


def _report(recalls: dict[str, float], supports: dict[str, int]) -> dict:
    return {"per_class": [{"class": c, "recall": recalls[c], "support": supports[c]} for c in recalls]}


def test_the_verdict_on_a_model_barely_better_than_always_positive() -> None:
    """The case seen: 77.4% against a 71.2% majority, negative recall 0.29, TF-IDF as good."""
    metrics = {"val_accuracy": 0.774, "val_balanced_accuracy": 0.62}
    found = {"majority": {"accuracy": 0.712, "class": "positive"}, "tfidf_logreg": {"accuracy": 0.774}}
    report = _report({"negative": 0.29, "positive": 0.97}, {"negative": 51, "positive": 126})
    assert verdict(metrics, found, report) == [
        ("warning", "77.4% accuracy is barely better than always answering 'positive' (71.2%). It finds only 29% "
                    "of the 'negative' items (recall 0.29)."),
        ("info", "TF-IDF + logistic regression scores 77.4% on the same split: about as much as this model."),
        ("info", "Classes are imbalanced: 'positive' is 71.2% of the validation items, so accuracy flatters a model "
                 "that favours it; balanced accuracy (62.0%) counts every class the same. Train again with class "
                 "weights *balanced* (Advanced settings on Train, or `--class-weights balanced`) so that every "
                 "class counts as much in training."),
    ]
    # trained with class weights already: the imbalance is still said, the remedy is not offered again
    assert verdict(metrics, found, report, "balanced")[2][1].endswith("counts every class the same.")


def test_the_verdict_on_a_model_well_above_its_baselines() -> None:
    metrics = {"val_accuracy": 0.9, "val_balanced_accuracy": 0.9}
    found = {"majority": {"accuracy": 0.5, "class": "bad"}, "tfidf_logreg": {"accuracy": 0.8}}
    report = _report({"bad": 0.9, "good": 0.9}, {"bad": 10, "good": 10})
    assert verdict(metrics, found, report) == [
        ("success", "90.0% accuracy is well above always answering 'bad' (50.0%)."),
        ("success", "TF-IDF + logistic regression scores 80.0% on the same split: this model does 10.0 points "
                    "better."),
    ]
    assert verdict({"val_accuracy": 0.5}, {"majority": found["majority"]}, None) == [
        ("warning", "50.0% accuracy is no better than always answering 'bad' (50.0%).")]


def _imbalanced_colours(path: Path) -> Path:
    """24 red, 24 green and 8 blue images: 19, 19 and 6 train, 5, 5 and 2 validate on the default split."""
    kept = {"red": 24, "green": 24, "blue": 8}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for cls, filename, png in colour_images():
            if int(filename.split("_")[1].split(".")[0]) < kept[cls]:
                archive.writestr(f"colours/{cls}/{filename}", png)
    path.write_bytes(buffer.getvalue())
    return path


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GLASSBOX_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)


@pytest.mark.slow
def test_a_trained_run_reports_its_baselines_in_the_train_json(ws: Workspace, tmp_path: Path) -> None:
    """Through the CLI and a real worker: one epoch with balanced class weights on imbalanced colours."""
    done = _cli("train", "--data", str(_imbalanced_colours(tmp_path / "colours.zip")), "--backbone",
                "test_efficientnet", "--weights", "none", "--epochs", "1", "--image-size", "32", "--mode", "full",
                "--device", "cpu", "--class-weights", "balanced", "--json", home=ws.home)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # classes blue, green, red; training has 19 green and 19 red (a tie: green, listed first), validation
    # 2 blue, 5 green, 5 red
    majority = {"accuracy": 5 / 12, "balanced_accuracy": 1 / 3, "macro_f1": pytest.approx((2 * 5 / 17) / 3),
                "class": "green"}
    assert result["baselines"] == {"majority": majority}
    assert result["baseline_metrics"] == {"baseline": "majority", **majority}
    assert set(result["metrics"]) >= {"val_accuracy", "val_balanced_accuracy", "val_macro_f1"}
    assert "baselines" not in result["metrics"]
    config = TrainConfig.load(ws.run_dir(result["run_id"]) / "config.json")
    assert config.class_weights == "balanced"
