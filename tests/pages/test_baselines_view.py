"""A finished run beside its baselines on the Evaluate and Runs pages (`ui.baselines`): the table, and the
plain verdict with the weakest class's recall and the remedy for imbalanced classes."""

from __future__ import annotations

import pytest

from core.store import DatasetRecord, RunRecord, Store
from core.workspace import Workspace
from tests.pages.conftest import fabricate_run, open_page, write_predictions

# validation: 6 circles (items 0-5), 3 crosses (6-8) and 3 squares (12-14); every cross is taken for a
# circle and 2 squares too: 7 of 12 right, against 6 of 12 for always answering 'circle'
ITEMS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14]
LABELS = [0] * 6 + [1] * 3 + [2] * 3
PREDS = [0] * 6 + [0] * 3 + [2, 0, 0]
MAJORITY = {"accuracy": 0.5, "balanced_accuracy": 1 / 3, "macro_f1": 2 / 9, "class": "circle"}
BARELY = ("58.3% accuracy is barely better than always answering 'circle' (50.0%). It finds only 0% of the 'cross' "
          "items (recall 0.00).")


@pytest.fixture
def weak(ws: Workspace, store: Store, dataset: DatasetRecord) -> RunRecord:
    run = fabricate_run(store, dataset, "completed", metrics={
        "val_accuracy": 7 / 12, "val_balanced_accuracy": 4 / 9, "val_macro_f1": 0.4, "best_epoch": 2,
        "baselines": {"majority": MAJORITY}, "baseline_metrics": {"baseline": "majority", **MAJORITY}})
    write_predictions(ws, run, ITEMS, LABELS, PREDS)
    return run


def _table(at) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    [frame] = [d.value for d in at.dataframe if "balanced accuracy" in d.value.columns]
    return frame.to_dict("records")


def test_evaluate_shows_the_run_beside_always_the_largest_class(weak: RunRecord) -> None:
    at = open_page("pages/4_Evaluate.py")
    assert _table(at) == [
        {"": "This model", "accuracy": "58.3%", "balanced accuracy": "44.4%", "macro F1": "40.0%"},
        {"": "always 'circle'", "accuracy": "50.0%", "balanced accuracy": "33.3%", "macro F1": "22.2%"},
    ]
    assert BARELY in [w.value for w in at.warning]
    [imbalance] = [i.value for i in at.info if i.value.startswith("Classes are imbalanced")]
    assert "'circle' is 50.0% of the validation items" in imbalance and "`--class-weights balanced`" in imbalance


def test_runs_shows_the_same_verdict(weak: RunRecord) -> None:
    at = open_page("pages/3_Runs.py")
    assert not at.exception, at.exception
    assert BARELY in [w.value for w in at.warning]
    assert _table(at)[1]["accuracy"] == "50.0%"


def test_a_run_from_before_baselines_shows_none(ws: Workspace, store: Store, dataset: DatasetRecord) -> None:
    run = fabricate_run(store, dataset, "completed", metrics={"val_accuracy": 7 / 12, "best_epoch": 2})
    write_predictions(ws, run, ITEMS, LABELS, PREDS)
    at = open_page("pages/4_Evaluate.py")
    assert not at.exception, at.exception
    assert not [d for d in at.dataframe if "balanced accuracy" in d.value.columns]
    assert not [w for w in at.warning if "always answering" in w.value]
