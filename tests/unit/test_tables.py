"""The tables modality end to end through the command line: `datasets add FILE --target COL`, `train --data
FILE --target COL` and `predict RUN FILE` on the real-world cases in ../shared/cases/tables (each README row is
an expectation here), and learning tests for classification and regression."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import cli
from core.store import Store
from core.workspace import Workspace

CASES = Path(__file__).resolve().parents[2].parent / "shared" / "cases" / "tables"
needs_cases = pytest.mark.skipif(not CASES.is_dir(), reason="../shared/cases is not beside this checkout")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict | list | None, str]:
    """(exit code, the JSON of the last stdout line or None, stderr) of one CLI call."""
    code = cli.main([*argv, "--json"])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, json.loads(lines[-1]) if code == 0 and lines else None, err


def _roles(value: dict) -> dict[str, str]:
    return {c["name"]: c["role"] for c in value["columns"]}


@needs_cases
def test_money_and_percent_text_is_a_regression_on_numbers(ws: Workspace, store: Store,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, value, err = _run(capsys, "datasets", "add", str(CASES / "currency-percent" / "listings.csv"),
                            "--target", "monthly_revenue")
    assert code == 0, err
    assert value["task"] == "regression" and value["target"] == "monthly_revenue" and value["classes"] == []
    roles = _roles(value)
    assert roles["listing_id"] == "identifier"
    assert roles["monthly_revenue"] == "target"
    money = [c for c in value["columns"] if c.get("conversion", {}).get("kind") == "currency"]
    percent = [c for c in value["columns"] if c.get("conversion", {}).get("kind") == "percent"]
    assert [c["name"] for c in money if c["role"] == "target"] == ["monthly_revenue"]
    assert percent and all(roles[c["name"]] == "numeric" for c in money + percent if c["role"] != "target")


@needs_cases
def test_a_class_of_one_row_is_refused_by_name(ws: Workspace, store: Store,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.read_csv(CASES / "single-row-class" / "tickets.csv", dtype=str)
    counts = frame["priority"].value_counts()
    lonely = counts[counts == 1].index[0]
    code, _, err = _run(capsys, "datasets", "add", str(CASES / "single-row-class" / "tickets.csv"),
                        "--target", "priority")
    assert code == 1
    [line] = err.strip().splitlines()
    assert line.startswith("error:") and repr(lonely) in line and "Traceback" not in err


@needs_cases
def test_na_strings_in_a_float_target_are_left_out_by_line(ws: Workspace, store: Store,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    source = CASES / "target-na-strings" / "harvest.csv"
    raw = pd.read_csv(source, dtype=str, keep_default_na=False)
    spelled = raw["yield_t_ha"].str.strip().str.lower()
    unusable = [i + 2 for i, v in enumerate(spelled) if v in ("", "n/a", "-", "#n/a", "?")]
    code, value, err = _run(capsys, "datasets", "add", str(source), "--target", "yield_t_ha")
    assert code == 0, err
    assert value["task"] == "regression"
    assert value["num_items"] == len(raw) - len(unusable)
    assert value["dropped"] == [f"line {n}" for n in unusable]


@needs_cases
def test_leaking_columns_are_named_before_training(ws: Workspace, store: Store,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, value, err = _run(capsys, "datasets", "add", str(CASES / "target-leak-column" / "churn.csv"),
                            "--target", "churned")
    assert code == 0, err
    leaks = [p for p in value["problems"] if p.get("kind") == "leak"]
    named = {name for p in leaks for name in p["columns"]}
    assert {"cancel_date", "refund_eur"} <= named
    assert "cancel_date" in err and "refund_eur" in err


@needs_cases
def test_zip_codes_keep_their_zeros_and_an_unseen_zip_is_predicted(ws: Workspace, store: Store,
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    folder = CASES / "zip-leading-zeros"
    code, value, err = _run(capsys, "train", "--data", str(folder / "customers.csv"), "--target", "churn",
                            "--preset", "quick", "--epochs", "5")
    assert code == 0, err
    run_id = value["run_id"]
    out = tmp_path / "predicted.csv"
    code, predicted, err = _run(capsys, "predict", run_id, str(folder / "new_customers.csv"), "--out", str(out))
    assert code == 0, err
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    new = pd.read_csv(folder / "new_customers.csv", dtype=str, keep_default_na=False)
    assert table["zip"].tolist() == new["zip"].tolist()  # "02139" stays "02139"
    assert table["store_code"].tolist() == new["store_code"].tolist()
    assert (table["error"] == "").all() and table["predicted"].isin(["no", "yes"]).all()
    assert predicted["count"] == len(new)


def _planted(n: int, seed: int = 0) -> pd.DataFrame:
    """A table whose class is decided by `plan` and `usage` (noise columns beside them)."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "pro", "team"], n)
    usage = rng.normal(50, 15, n).round(1)
    score = (plan == "pro") * 1.0 + (usage > 55) * 1.0
    return pd.DataFrame({"customer": [f"c{i:05d}" for i in range(n)], "plan": plan, "usage": usage,
                         "noise": rng.normal(0, 1, n).round(3),
                         "renewed": np.where(score >= 1, "yes", "no")})


def test_the_mlp_learns_a_classification_and_stands_beside_lightgbm(ws: Workspace, store: Store, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "members.csv"
    _planted(600).to_csv(path, index=False)
    code, value, err = _run(capsys, "train", "--data", str(path), "--target", "renewed", "--preset", "quick")
    assert code == 0, err
    metrics = {**value["metrics"], **value}
    assert value["task"] == "classification"
    assert metrics["val_accuracy"] >= 0.9  # the majority class is about 0.6
    assert {"val_roc_auc", "val_pr_auc", "val_macro_f1", "val_balanced_accuracy"} <= set(value["metrics"])
    assert {"lightgbm", "majority"} <= set(value["baselines"])
    assert value["baselines"]["lightgbm"]["accuracy"] >= 0.9
    assert value["baselines"]["majority"]["accuracy"] < 0.75

    row = json.dumps({"customer": "c99999", "plan": "pro", "usage": 40.0, "noise": 0.1})
    code, explained, err = _run(capsys, "explain", value["run_id"], "--row", row)
    assert code == 0, err
    assert explained["predicted"] == "yes"
    attributions = explained["attributions"]
    assert set(attributions) == {"plan", "usage", "noise"}  # by source column; the identifier is dropped
    assert max(attributions, key=lambda k: abs(attributions[k])) == "plan"


def test_the_mlp_learns_a_regression_target(ws: Workspace, store: Store, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    n = 500
    region = rng.choice(["north", "south", "east"], n)
    size = rng.uniform(30, 150, n).round(1)
    price = 2000 * size + np.select([region == "north", region == "south"], [50000, -30000], 0) \
        + rng.normal(0, 5000, n)
    path = tmp_path / "flats.csv"
    pd.DataFrame({"region": region, "size_m2": size, "price": price.round(0)}).to_csv(path, index=False)
    code, value, err = _run(capsys, "train", "--data", str(path), "--target", "price", "--preset", "quick")
    assert code == 0, err
    assert value["task"] == "regression"
    assert value["metrics"]["val_r2"] >= 0.9
    assert {"val_mae", "val_rmse"} <= set(value["metrics"])
    assert value["baselines"]["mean"]["r2"] < 0.05
    assert value["baselines"]["lightgbm"]["r2"] >= 0.9

    run_id = value["run_id"]
    code, explained, err = _run(capsys, "explain", run_id, "--row", json.dumps({"region": "north", "size_m2": 100}))
    assert code == 0, err
    assert explained["value"] == pytest.approx(2000 * 100 + 50000, rel=0.1)
    assert set(explained["attributions"]) == {"region", "size_m2"}
    code, explained, err = _run(capsys, "explain", run_id, "--row", json.dumps({"size_m2": 100}))
    assert code == 0, err
    assert "not given, so treated as missing (imputed): region" in explained["notes"]

    new = tmp_path / "new_flats.csv"
    new.write_text("region,size_m2\nsouth,80\nwest,80\nnorth,eighty\n,120\n")
    code, predicted, err = _run(capsys, "predict", run_id, str(new))
    assert code == 0, err
    rows = predicted["predictions"]
    assert [r["row"] for r in rows] == ["2", "3", "4", "5"]
    assert rows[0]["predicted"] == pytest.approx(2000 * 80 - 30000, rel=0.15)
    assert rows[1]["error"] == "" and rows[1]["predicted"] is not None  # an unseen region is "unknown"
    assert rows[2]["predicted"] is None and "eighty" in rows[2]["error"]  # the others are still predicted
    assert rows[3]["error"] == "" and rows[3]["predicted"] is not None  # a missing region is its own level


def test_a_table_without_some_rows_keeps_its_rows_and_targets_aligned(ws: Workspace, store: Store,
                                                                      tmp_path: Path) -> None:
    from core import data, datasets
    from core.data.tables import read_rows

    path = tmp_path / "flats.csv"
    path.write_text("region,size_m2,price\n" + "".join(f"{'ns'[i % 2]},{50 + i},{1000 * (50 + i)}\n"
                                                     for i in range(12)))
    record = datasets.add(ws, store, path, modality="tables", options={"target": "price"})
    assert record.info["task"] == "regression"
    child = datasets.derive(ws, store, record.id, {0: "outlier", 5: "typo"})
    assert child.info["num_items"] == 10 and child.info["classes"] == []
    rows = read_rows(ws.dataset_dir(child.id))
    targets = data.modality("tables").targets(ws.dataset_dir(child.id), child.info)
    assert rows["size_m2"].tolist()[:5] == ["51", "52", "53", "54", "56"]
    assert targets.tolist() == [1000.0 * int(v) for v in rows["size_m2"]]


def test_the_penguins_na_cells_are_missing_values_not_unreadable_ones(ws: Workspace, store: Store,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import ROOT

    code, value, err = _run(capsys, "datasets", "add", str(ROOT / "sample_data" / "penguins.csv"), "--target",
                            "species")
    assert code == 0, err
    described = {c["name"]: c for c in value["columns"]}
    raw = pd.read_csv(ROOT / "sample_data" / "penguins.csv", dtype=str, keep_default_na=False)
    assert described["bill_length_mm"]["missing"] == int((raw["bill_length_mm"] == "NA").sum()) == 2
    assert described["sex"]["levels"] == ["male", "female"]  # R's NA is no level
    assert "could not be read" not in err


def test_choices_of_a_stored_dataset_are_not_silently_ignored(ws: Workspace, store: Store, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "members.csv"
    _planted(60).to_csv(path, index=False)
    code, value, err = _run(capsys, "datasets", "add", str(path), "--target", "renewed")
    assert code == 0, err
    code, _, err = _run(capsys, "train", "--data", value["dataset_id"], "--target", "plan")
    assert code == 1
    [line] = err.strip().splitlines()
    assert line.startswith("error: --target apply when a file is added")
    assert f"dataset {value['dataset_id']} is already stored" in line
    code, _, err = _run(capsys, "datasets", "add", str(path), "--target", "Plan ")
    assert code == 1 and "did you mean 'plan'?" in err


def test_series_in_long_form_read_as_a_table_are_named_as_such(ws: Workspace, store: Store,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    gait = CASES.parent / "series" / "long-unequal-lengths" / "gait_long.csv"
    if not gait.is_file():
        pytest.skip("../shared/cases is not beside this checkout")
    code, value, err = _run(capsys, "datasets", "add", str(gait), "--target", "label")
    assert code == 0, err
    [hint] = [p for p in value["problems"] if p.get("kind") == "series"]
    assert hint["columns"] == ["series_id", "time"] and "24 series" in hint["message"]
    assert "--modality series" in err
