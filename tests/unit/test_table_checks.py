"""Checks on a table before it is stored, and on a score after training (core/data/table_checks.py), on the
real-world tables of ../shared/cases/tables and on tables made here."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.data import columns, table_checks
from core.data.reading import read_table

CASES = Path(__file__).resolve().parents[2].parent / "shared" / "cases"
TABLES = CASES / "tables"
needs_cases = pytest.mark.skipif(not TABLES.is_dir(), reason="../shared/cases is not beside this checkout")


def _read(path: Path) -> tuple[pd.DataFrame, list[int]]:
    table = read_table(path)
    frame = pd.DataFrame([[c.strip() for c in cells] for _, cells in table.rows], columns=table.columns, dtype=object)
    return frame.where(frame != "", None), [line for line, _ in table.rows]


def _check(frame: pd.DataFrame, target: str, lines: list[int] | None = None,
           task: str | None = None) -> list[dict[str, Any]]:
    described = columns.infer_columns(frame, target)
    column = next(c for c in described if c["role"] == "target")
    task = task or columns.infer_task(frame[target], column)[0]
    values, _ = columns.target_values(frame[target], task, column)
    return table_checks.check(frame, described, values, task, lines=lines)


def _kinds(problems: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(p["level"], p["kind"]) for p in problems]


# ---- the shared cases ---------------------------------------------------------------------------------


@needs_cases
def test_a_class_of_one_row_is_refused_naming_the_class_and_the_minimum() -> None:
    frame, lines = _read(TABLES / "single-row-class" / "tickets.csv")
    problems = _check(frame, "priority", lines)
    error = problems[0]
    assert error == {
        "level": "error", "kind": "few_rows", "columns": ["priority"], "classes": ["urgent"], "rows": [37],
        "message": "class 'urgent' has only 1 row (line 39): each class needs at least 2 rows (one to train on, "
                   "one to check on); drop those rows or add more"}
    assert [p for p in problems if p["level"] == "error"] == [error]


@needs_cases
def test_columns_filled_only_for_churners_are_named_as_leaks() -> None:
    frame, lines = _read(TABLES / "target-leak-column" / "churn.csv")
    problems = _check(frame, "churned", lines)
    leaks = [p for p in problems if p["kind"] == "leak"]
    assert [p["columns"] for p in leaks] == [["cancel_date"], ["refund_eur"]]
    assert leaks[0]["message"] == (
        "likely leak: whether cancel_date is filled alone predicts churned for 100% of rows, against 70% by always "
        "answering 'no': drop it unless its value is known before the outcome it predicts")
    assert leaks[1]["message"].startswith("likely leak: refund_eur alone predicts churned for 100% of rows")
    assert all(p["level"] == "warning" for p in problems)
    # without the leaks the table is clean
    honest = frame.drop(columns=["cancel_date", "refund_eur"])
    assert [p["kind"] for p in _check(honest, "churned")] == ["dropped"]


@needs_cases
def test_rows_without_a_target_are_counted_by_line() -> None:
    frame, lines = _read(TABLES / "target-na-strings" / "harvest.csv")
    problems = _check(frame, "yield_t_ha", lines)
    assert problems[0] == {
        "level": "warning", "kind": "missing_target", "columns": ["yield_t_ha"], "rows": [7, 15, 23, 31, 44, 52],
        "message": "6 row(s) have no value in the target yield_t_ha (lines 9, 17, 25, 33, 46 and 1 more): they are "
                   "left out"}
    assert _kinds(problems) == [("warning", "missing_target"), ("warning", "dropped")]


@needs_cases
def test_1100_columns_give_one_summary_line_not_one_per_column() -> None:
    frame, _ = _read(TABLES / "wide-1100-cols" / "counts_wide.csv")
    start = time.perf_counter()
    problems = _check(frame, "class")
    assert time.perf_counter() - start < 3.0
    assert [p["message"] for p in problems] == [
        "40 of 1,101 columns are always '0': dropped (g1001, g1002, g1003, g1004, g1005 and 35 more)",
        "1 of 1,101 columns is an identifier: dropped (sample)"]
    assert problems[0]["columns"] == [f"g{i}" for i in range(1001, 1041)]


@needs_cases
def test_constant_columns_are_one_line_with_each_reason() -> None:
    frame, _ = _read(TABLES / "constant-empty-cols" / "sensors.csv")
    problems = _check(frame, "fault")
    assert _kinds(problems) == [("warning", "few_rows"), ("warning", "imbalance"), ("warning", "dropped"),
                                ("warning", "dropped")]
    assert [p["message"] for p in problems[2:]] == [
        "4 of 7 columns are constant: dropped (notes: always empty, site: always 'plant-A', firmware: always "
        "'v2.1', calib_offset: '0.5' or empty)", "1 of 7 columns is an identifier: dropped (reading_id)"]
    assert problems[0]["message"] == ("class(es) with fewer than 10 rows: 'yes' (7); results on them will be "
                                      "unreliable")


@needs_cases
@pytest.mark.parametrize(("folder", "name", "target"), [
    ("currency-percent", "listings.csv", "monthly_revenue"), ("mixed-booleans", "members.csv", "renewed"),
    ("zip-leading-zeros", "customers.csv", "churn"), ("duplicate-headers", "exam.csv", "passed")])
def test_clean_tables_only_say_what_was_dropped(folder: str, name: str, target: str) -> None:
    frame, lines = _read(TABLES / folder / name)
    assert {p["kind"] for p in _check(frame, target, lines)} == {"dropped"}


# ---- tables made here ---------------------------------------------------------------------------------


def _table(**cols: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(cols, dtype=object)


def _mixed(n: int = 40) -> dict[str, list[str]]:
    rng = np.random.default_rng(0)
    return {"age": [str(a) for a in rng.integers(18, 80, n)], "plan": [["a", "b", "c"][i % 3] for i in range(n)]}


def test_one_class_and_a_constant_regression_target_are_refused() -> None:
    problems = _check(_table(**_mixed(), y=["ok"] * 40), "y", task="classification")
    assert problems[0] == {"level": "error", "kind": "one_class", "columns": ["y"], "classes": ["ok"],
                           "message": "the target y has one class only ('ok'): there is nothing to tell apart"}
    problems = _check(_table(**_mixed(), y=["2.5"] * 40), "y", task="regression")
    assert problems[0]["message"] == "the target y is always 2.5: there is nothing to predict"
    problems = _check(_table(**_mixed(), y=["n/a"] * 40), "y", task="classification")
    assert problems == [{"level": "error", "kind": "missing_target", "columns": ["y"],
                         "message": "the target y has no value in any row"}]


def test_a_copy_of_the_target_and_a_presence_leak_on_a_dropped_column() -> None:
    y = ["yes", "no", "no", "no"] * 10
    frame = _table(**_mixed(), status=[v.upper() if i else v for i, v in enumerate(y)], copy=list(y),
                   closed=["x" if v == "yes" else None for v in y], y=y)
    described = columns.infer_columns(frame, "y")
    assert {c["name"]: c["role"] for c in described}["closed"] == "constant"
    values, _ = columns.target_values(frame["y"], "classification", described[-1])
    leaks = [p for p in table_checks.check(frame, described, values, "classification") if p["kind"] == "leak"]
    assert [p["message"] for p in leaks] == [
        "likely leak: status alone predicts y for 100% of rows, against 75% by always answering 'no': drop it "
        "unless its value is known before the outcome it predicts",
        "likely leak: copy equals the target y in 100% of rows: drop it unless its value is known before the "
        "outcome it predicts",
        "likely leak: whether closed is filled alone predicts y for 100% of rows, against 75% by always answering "
        "'no' (it is dropped already)"]


def test_regression_leaks_by_correlation_and_honest_columns_are_not_named() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(100, 20, 60)
    frame = _table(noise=[f"{v:.2f}" for v in rng.normal(size=60)],
                   scaled=[f"{v * 1.1 + rng.normal(0, 3):.2f}" for v in y],
                   region=[["n", "s"][i % 2] for i in range(60)], y=[f"{v:.3f}" for v in y])
    leaks = [p for p in _check(frame, "y") if p["kind"] == "leak"]
    assert [p["columns"] for p in leaks] == [["scaled"]]
    r = np.corrcoef(frame["scaled"].astype(float), frame["y"].astype(float))[0, 1]
    assert 0.98 < r < 0.99
    assert leaks[0]["message"] == (f"likely leak: scaled correlates with y at r = {r:.3f}: drop it unless its value "
                                   "is known before the outcome it predicts")


def test_a_rare_class_does_not_make_every_column_a_leak() -> None:
    # 99% of the rows are "no": a column right on 98% of them is worse than always answering "no"
    y = ["yes"] + ["no"] * 99
    weak = ["1" if i < 2 else "0" for i in range(100)]
    frame = _table(weak=weak, other=[str(i % 7) for i in range(100)], y=y)
    assert [p for p in _check(frame, "y") if p["kind"] == "leak"] == []


def test_high_cardinality_categoricals_and_exact_duplicate_rows() -> None:
    n = 30
    frame = _table(city=[f"city {i % 20}" for i in range(n)], tier=["a", "b", "c"] * 10,
                   y=["p", "q"] * 15)
    frame.loc[29] = frame.loc[3].tolist()
    frame.loc[27] = frame.loc[3].tolist()
    problems = _check(frame, "y", lines=list(range(2, n + 2)))
    by_kind = {p["kind"]: p for p in problems}
    assert by_kind["cardinality"]["message"] == (
        "categorical column(s) with very many levels: city (20 levels in 30 rows); most levels are seen too rarely "
        "to learn from: drop them or mark them as identifiers")
    assert by_kind["cardinality"]["columns"] == ["city"]
    assert by_kind["duplicates"]["rows"] == [27, 29]
    assert by_kind["duplicates"]["message"].startswith("2 row(s) copy an earlier row in every column (lines 29, 31)")


def test_few_rows_and_imbalance_are_warned() -> None:
    y = ["a"] * 12 + ["b"] * 2
    problems = _check(_table(x=[str(i * 5 % 14) for i in range(14)], y=y), "y")
    assert _kinds(problems) == [("warning", "few_rows"), ("warning", "imbalance"), ("warning", "few_rows")]
    assert problems[2]["message"] == ("only 14 rows have a target: too few to train a model and check it on rows "
                                      "it has not seen")


def test_a_near_perfect_score_is_flagged_after_training() -> None:
    advice = ("check for a column that leaks the answer (one known only once the outcome is), unless the task is "
              "simply easy (compare with the baselines)")
    assert table_checks.suspicious_score({"val_accuracy": 1.0}, "classification") == \
        f"accuracy 100% on validation: {advice}"
    assert table_checks.suspicious_score({"accuracy": 0.93, "roc_auc": 0.9995}, "classification") == \
        f"ROC-AUC 1.000 on validation: {advice}"
    assert table_checks.suspicious_score({"val_accuracy": 0.97}, "classification") is None
    assert table_checks.suspicious_score({"val_r2": 0.998}, "regression") == f"R² 0.998 on validation: {advice}"
    assert table_checks.suspicious_score({"val_r2": 0.8}, "regression") is None
    assert table_checks.suspicious_score({"val_r2": None}, "regression") is None
