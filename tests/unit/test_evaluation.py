"""The validation table behind the Evaluate page: one row per validation item in the report's order, and
filters that combine."""

from __future__ import annotations

import numpy as np
import pytest

from core.evaluation import confident_mistakes, filter_table, positions, report, validation_table

CLASSES = ["ham", "spam", "promo"]
REFS = ["free money now", "lunch at noon?", "50% off shoes", "Free lunch", "meeting notes", "WIN a prize"]


@pytest.fixture
def run_report() -> dict:
    labels = [1, 0, 2, 0, 0, 1]
    probs = np.array([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5],
                      [0.2, 0.6, 0.2], [0.9, 0.05, 0.05], [0.5, 0.4, 0.1]])
    # validation holds dataset items 5, 0, 2, 3, 4, 1 in this order
    return {**report(labels, probs, CLASSES), "items": [5, 0, 2, 3, 4, 1], "labels": labels, "probs": probs}


def test_rows_follow_the_report(run_report: dict) -> None:
    table = validation_table(run_report, REFS)
    assert table["item"].tolist() == ["WIN a prize", "free money now", "50% off shoes", "Free lunch",
                                      "meeting notes", "lunch at noon?"]
    assert table["label"].tolist() == ["spam", "ham", "promo", "ham", "ham", "spam"]
    assert table["predicted"].tolist() == ["spam", "ham", "promo", "spam", "ham", "ham"]
    assert table["confidence"].tolist() == [0.8, 0.7, 0.5, 0.6, 0.9, 0.5]
    assert table["p_label"].tolist() == [0.8, 0.7, 0.5, 0.2, 0.9, 0.4]
    assert table["correct"].tolist() == [True, True, True, False, True, False]
    # the two views agree on which rows are mistakes
    assert sorted(confident_mistakes(run_report)) == table.index[~table["correct"]].tolist()


def test_filters_combine(run_report: dict) -> None:
    table = validation_table(run_report, REFS)
    assert filter_table(table, "Wrong")["item"].tolist() == ["Free lunch", "lunch at noon?"]
    assert len(filter_table(table, "Correct")) == 4
    assert filter_table(table, label="ham", predicted="spam")["item"].tolist() == ["Free lunch"]
    assert filter_table(table, contains="  FREE ")["item"].tolist() == ["free money now", "Free lunch"]
    assert filter_table(table, "Correct", contains="free")["item"].tolist() == ["free money now"]
    assert filter_table(table, contains="50%")["item"].tolist() == ["50% off shoes"]  # not a pattern
    assert filter_table(table, label="promo", predicted="ham").empty
    with pytest.raises(ValueError):
        filter_table(table, "Unsure")


def test_an_empty_validation_set_gives_an_empty_table() -> None:
    empty = {"classes": CLASSES, "items": [], "labels": [], "probs": np.zeros((0, 3))}
    table = validation_table(empty, REFS)
    assert table.empty and list(table.columns) == ["item", "label", "predicted", "confidence", "p_label", "correct"]
    assert filter_table(table, "Wrong", contains="x").empty


def test_positions_to_explain(run_report: dict) -> None:
    assert positions(run_report) == [0, 1, 2, 3, 4, 5]
    assert positions(run_report, "Wrong") == [3, 5]
    assert positions(run_report, "Most confident mistakes") == [3, 5]  # p 0.6 before p 0.5
    assert positions(run_report, "Correct", "ham") == [1, 4]
    assert positions(run_report, "Wrong", "promo") == []
    with pytest.raises(ValueError):
        positions(run_report, "Unsure")
