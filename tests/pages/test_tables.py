"""Every page with a table: a classification table (whether a customer churned, decided mostly by the plan) and a
regression table (a flat's price, decided by its size and district), each ingested and trained for real through
core once per session, then copied into each test's workspace. Each test asserts what the data decides: the rows
and columns counted, the figures in the run's predictions, the column the explanation ranks first."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import datasets, tasks
from core.artifacts import RunFiles
from core.jobs.local import LocalBackend
from core.store import Store
from core.workspace import Workspace
from tests.pages.conftest import (
    Planned,
    charts_by_title,
    copy_template,
    dataset_named,
    metrics_shown,
    open_page,
    predictions_of,
    run_on,
    train_template,
)
from ui import formatting
from ui.table_data import new_choices

PLANS = ("basic", "pro", "team")
DISTRICTS = ("centre", "north", "south")
EPOCHS = 25


def churn_csv(rows: int = 160, seed: int = 0) -> str:
    """Customers: an id (dropped as an identifier), a plan, a monthly fee with a few 'n/a', months of tenure, and
    whether they churned: "yes" for the basic plan, "no" otherwise, except one row in eight, flipped (so the plan
    is no perfect leak)."""
    rng = np.random.default_rng(seed)
    lines = ["customer_id,plan,monthly_fee,tenure_months,churned"]
    for i in range(rows):
        plan = PLANS[i % 3]
        churned = (plan == "basic") != (rng.random() < 0.125)
        fee = "n/a" if i % 40 == 7 else f"{rng.uniform(5, 50):.2f}"
        lines.append(f"C{i:04d},{plan},{fee},{int(rng.integers(1, 60))},{'yes' if churned else 'no'}")
    return "\n".join(lines) + "\n"


def flats_csv(rows: int = 200, seed: int = 1) -> str:
    """Flats: their size in m², rooms and district, and a price of 3,000 per m² plus 60,000 in the centre, with
    noise."""
    rng = np.random.default_rng(seed)
    lines = ["size_m2,rooms,district,price"]
    for i in range(rows):
        size = float(rng.uniform(30, 150))
        district = DISTRICTS[i % 3]
        price = 3000 * size + (60000 if district == "centre" else 0) + rng.normal(0, 8000)
        lines.append(f"{size:.1f},{int(rng.integers(1, 6))},{district},{price:.0f}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace holding both tables and a completed quick run on each, trained by the worker in this process
    (no worker process is started): the template each test copies."""
    home = tmp_path_factory.mktemp("tables-home")
    folder = tmp_path_factory.mktemp("tables-files")
    (folder / "churn.csv").write_text(churn_csv())
    (folder / "flats.csv").write_text(flats_csv())
    quick = {"epochs": EPOCHS, "early_stopping_patience": 0}
    return train_template(home, [Planned(folder / "churn.csv", "churn", {"target": "churned"}, settings=quick),
                                 Planned(folder / "flats.csv", "flats", {"target": "price"}, settings=quick)])


@pytest.fixture
def tables(ws: Workspace, trained: Path) -> Iterator[Store]:
    """This test's workspace, a copy of the trained template (tests may add datasets and start runs)."""
    yield copy_template(trained, ws)


@pytest.fixture
def no_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LocalBackend, "dispatch", lambda self: None)


# ---- Data ------------------------------------------------------------------------------------------------------


def test_data_shows_a_table_with_its_columns_roles_and_classes(ws: Workspace, tables: Store) -> None:
    at = open_page("pages/1_Data.py")
    churn = dataset_named(tables, "churn")
    at.selectbox(key="data_selected").set_value(churn.id).run()
    assert not at.exception, at.exception
    metrics = metrics_shown(at)
    assert (metrics["Rows"], metrics["Target"], metrics["Task"]) == ("160", "churned", "Classification")
    assert metrics["Columns used"] == "3 of 4"  # the customer id is left out as an identifier
    columns = at.dataframe(key=f"table_columns-{churn.id}").value.set_index("column")
    assert columns.loc["customer_id", "role"] == "identifier" and not columns.loc["customer_id", "use"]
    assert columns.loc["plan", "role"] == "categorical" and columns.loc["monthly_fee", "role"] == "numeric"
    assert columns.loc["monthly_fee", "missing"] == 4  # rows 7, 47, 87 and 127 say "n/a"
    counts = charts_by_title(at)["Items per class"]["data"][0]
    churned = pd.read_csv(io.StringIO(churn_csv()))["churned"].value_counts()
    assert dict(zip(counts["x"], counts["y"], strict=True)) == {"no": churned["no"], "yes": churned["yes"]}


def test_data_shows_a_regression_target_as_a_histogram(ws: Workspace, tables: Store) -> None:
    at = open_page("pages/1_Data.py")
    flats = dataset_named(tables, "flats")
    at.selectbox(key="data_selected").set_value(flats.id).run()
    assert metrics_shown(at)["Task"] == "Regression" and metrics_shown(at)["Columns used"] == "3 of 3"
    histogram = charts_by_title(at)["Values of price"]
    prices = pd.read_csv(io.StringIO(flats_csv()))["price"]
    assert sorted(histogram["data"][0]["x"]) == sorted(prices.astype(float).tolist())
    marks = sorted(shape["x0"] for shape in histogram["layout"]["shapes"])
    assert marks == pytest.approx(sorted([prices.mean(), prices.median()]))


def test_a_leak_is_dropped_in_one_click(ws: Workspace, store: Store, tmp_path: Path) -> None:
    """A cancellation date filled only for customers who left gives the target away: the page names it, and one
    click adds the table again without it."""
    frame = pd.read_csv(io.StringIO(churn_csv()))
    days = [f"2024-03-{1 + i % 28:02d}" for i in range(len(frame))]
    frame["cancelled_on"] = np.where(frame["churned"] == "yes", days, "")
    path = tmp_path / "churn-leak.csv"
    frame.to_csv(path, index=False)
    first = datasets.add(ws, store, path, options={"target": "churned"})
    at = open_page("pages/1_Data.py")
    assert any("likely leak" in w.value and "cancelled_on" in w.value for w in at.warning)
    at.button(key=next(b.key for b in at.button if b.label.startswith("Drop cancelled_on"))).click().run()
    assert not at.exception, at.exception
    [second] = [d for d in store.list_datasets() if d.id != first.id]
    assert at.selectbox(key="data_selected").value == second.id
    leak = next(c for c in second.info["columns"] if c["name"] == "cancelled_on")
    assert leak["dropped"] and second.info["source"]["options"]["drop_columns"] == ["cancelled_on"]
    assert not [b for b in at.button if b.label.startswith("Drop cancelled_on")]  # dropped already
    assert first.id in {d.id for d in store.list_datasets()}  # runs trained on the first keep their data


def test_another_target_is_applied_by_adding_the_table_again(ws: Workspace, tables: Store) -> None:
    at = open_page("pages/1_Data.py")
    flats = dataset_named(tables, "flats")
    at.selectbox(key="data_selected").set_value(flats.id).run()
    at.selectbox(key=f"table_target-{flats.id}").set_value("district").run()
    at.button(key=f"table_readd-{flats.id}").click().run()
    assert not at.exception, at.exception
    added = next(d for d in tables.list_datasets() if d.id not in (flats.id, dataset_named(tables, "churn").id))
    assert (added.info["target"], added.info["task"], added.info["classes"]) == ("district", "classification",
                                                                               list(DISTRICTS))
    assert metrics_shown(at)["Target"] == "district"


def test_the_choices_on_the_page_become_ingest_options(tables: Store) -> None:
    churn = dataset_named(tables, "churn")
    edited = pd.DataFrame({"column": ["customer_id", "plan", "monthly_fee", "tenure_months"],
                           "role": ["identifier", "categorical", "numeric", "categorical"],
                           "use": [False, True, False, True]})
    assert new_choices(churn, "churned", "classification", edited) == {
        "target": "churned", "roles": {"tenure_months": "categorical"}, "drop_columns": ["monthly_fee"]}
    # a new target: its task is inferred again, and it is neither given a role nor dropped
    assert new_choices(churn, "plan", "classification", edited) == {
        "target": "plan", "roles": {"tenure_months": "categorical"}, "drop_columns": ["monthly_fee"]}
    unchanged = pd.DataFrame({"column": ["customer_id", "plan", "monthly_fee", "tenure_months"],
                              "role": ["identifier", "categorical", "numeric", "numeric"],
                              "use": [False, True, True, True]})
    assert new_choices(churn, "churned", "classification", unchanged) == {"target": "churned"}


def test_the_table_samples_load_with_their_targets(store: Store) -> None:
    at = open_page("pages/1_Data.py")
    at.button(key="load_sample_penguins").click().run()
    assert not at.exception, at.exception
    penguins = pd.read_csv(Path(__file__).resolve().parents[2] / "sample_data" / "penguins.csv")
    [record] = store.list_datasets()
    assert (record.modality, record.info["target"]) == ("tables", "species")
    assert record.info["counts"] == penguins["species"].value_counts().to_dict()
    assert f"Added **sample-penguins**: {len(penguins)} items in 3 classes." in [s.value for s in at.success]
    at.button(key="load_sample_gapminder").click().run()
    assert not at.exception, at.exception
    gapminder = next(d for d in store.list_datasets() if d.name == "sample-gapminder")
    assert (gapminder.info["target"], gapminder.info["task"]) == ("lifeExp", "regression")


# ---- Train -----------------------------------------------------------------------------------------------------


def test_train_offers_the_table_models_and_presets_without_image_settings(ws: Workspace, tables: Store,
                                                                        no_dispatch: None) -> None:
    flats = dataset_named(tables, "flats")
    at = open_page("pages/2_Train.py")
    at.selectbox[0].set_value(flats.id).run()
    assert not at.exception, at.exception
    pick = at.selectbox(key="backbone_pick-tables-quick")
    assert pick.options == ["mlp", "mlp_ensemble"] and pick.value == "mlp"
    assert not [t for t in at.text_input if t.key.startswith("backbone_typed")]
    assert not [r for r in at.radio if r.key.startswith("mode-")]
    assert not any("Input size" in c.value for c in at.caption)
    assert not any("No pretrained weights" in w.value for w in at.warning)
    at.button_group(key="preset").set_value("balanced").run()
    assert at.selectbox(key="backbone_pick-tables-balanced").value == "mlp_ensemble"
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    run = next(r for r in tables.list_runs() if r.status == "queued")
    assert (run.config["task"], run.config["backbone"], run.config["weights"], run.config["mode"]) == (
        "regression", "mlp_ensemble", "none", "full")


# ---- Runs ------------------------------------------------------------------------------------------------------


def test_runs_shows_a_regression_by_r2_beside_its_baselines(ws: Workspace, tables: Store) -> None:
    run = run_on(tables, "flats")
    regression = tasks.task("regression")
    at = open_page("pages/3_Runs.py")
    at.selectbox(key="runs_selected").set_value(run.id).run()
    assert not at.exception, at.exception
    r2 = regression.metrics_shown[0]
    assert metrics_shown(at)["Val R²"] == formatting.metric(r2, run.metrics["val_r2"])
    listed = at.dataframe[0].value.set_index("id")
    assert listed.loc[run.id, "val R²"] == formatting.metric(r2, run.metrics["val_r2"])
    assert listed.loc[run_on(tables, "churn").id, "val accuracy"] == formatting.percent(
        run_on(tables, "churn").metrics["val_accuracy"])
    [table] = [d.value for d in at.dataframe if "R²" in d.value.columns]
    rows = table.set_index("")
    baselines = run.metrics["baselines"]
    assert rows.loc["always the training mean", "R²"] == formatting.metric(r2, baselines["mean"]["r2"])
    assert rows.loc["gradient boosting (LightGBM)", "MAE"] == formatting.amount(baselines["lightgbm"]["mae"])
    assert rows.loc["This model", "RMSE"] == formatting.amount(run.metrics["val_rmse"])
    said = [m.value for m in [*at.success, *at.warning, *at.info]]
    assert any(s.startswith("Gradient boosting (LightGBM) scores R²") for s in said)
    curves = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert curves["layout"]["annotations"][1]["text"] == "R²"
    val = [t for t in curves["data"] if t["name"] == "validation (per epoch)" and t.get("xaxis") == "x2"]
    assert len(val[0]["y"]) == run.metrics["epochs_completed"]


def test_runs_compare_overlays_each_task_by_its_own_figure(ws: Workspace, tables: Store) -> None:
    """Compare picks a dataset first: a regression table's runs are overlaid by R², a classifier's by accuracy."""
    churn, flats = run_on(tables, "churn"), run_on(tables, "flats")
    at = open_page("pages/3_Runs.py")
    at.selectbox(key="compare_dataset").set_value(flats.dataset_id).run()
    assert not at.exception, at.exception
    assert at.multiselect(key="compare").value == [flats.id]
    charts = charts_by_title(at)
    assert "Validation R² per epoch" in charts and "Validation accuracy per epoch" not in charts
    [r2_series] = charts["Validation R² per epoch"]["data"]
    logged = [row["value"] for row in tables.metrics(flats.id, ["val_r2"])]
    assert r2_series["y"] == pytest.approx(logged)
    at.selectbox(key="compare_dataset").set_value(churn.dataset_id).run()
    charts = charts_by_title(at)
    assert "Validation accuracy per epoch" in charts and "Validation R² per epoch" not in charts


# ---- Evaluate --------------------------------------------------------------------------------------------------


def test_evaluate_a_table_classifier(ws: Workspace, tables: Store) -> None:
    run = run_on(tables, "churn")
    found = predictions_of(ws, run)
    at = open_page("pages/4_Evaluate.py")
    at.selectbox(key="eval_run").set_value(run.id).run()
    assert not at.exception, at.exception
    probs, labels = np.asarray(found["probs"]), np.asarray(found["labels"])
    metrics = metrics_shown(at)
    assert metrics["Validation accuracy"] == formatting.percent(float(np.mean(probs.argmax(1) == labels)))
    assert metrics["Validation rows"] == str(len(labels))
    assert metrics["ROC-AUC"] == f"{run.metrics['val_roc_auc']:.3f}"
    table = at.dataframe(key=f"eval_table-{run.id}").value
    assert len(table) == len(labels) and table["item"].iloc[0].startswith("line ")
    assert "plan=" in table["item"].iloc[0] and "customer_id=" not in table["item"].iloc[0]
    at.button(key=f"eval_explain-{run.id}").click().run()
    assert not at.exception, at.exception
    wrong = int(np.sum(probs.argmax(1) != labels))
    explained = [h for h in at.get("html") if "for: " in h.proto.body and "against: " in h.proto.body]
    assert len(explained) == min(wrong, 12)


def test_a_table_is_uploaded_with_the_target_named(ws: Workspace, store: Store) -> None:
    at = open_page("pages/1_Data.py")
    at.text_input(key="table_target_column").set_value("plan").run()
    at.file_uploader(key="upload").set_value(("churn.csv", churn_csv().encode("utf-8"), "text/csv")).run()
    assert not at.exception, at.exception
    [record] = store.list_datasets()
    assert (record.modality, record.info["target"], record.info["classes"]) == ("tables", "plan", list(PLANS))


def test_evaluate_a_regression_plots_and_lists_the_worst_rows_first(ws: Workspace, tables: Store) -> None:
    run = run_on(tables, "flats")
    found = predictions_of(ws, run)
    truth, predicted = np.asarray(found["labels"]), np.asarray(found["predictions"])
    at = open_page("pages/4_Evaluate.py")
    at.selectbox(key="eval_run").set_value(run.id).run()
    assert not at.exception, at.exception
    metrics = metrics_shown(at)
    assert metrics["Validation R²"] == f"{run.metrics['val_r2']:.3f}"
    assert metrics["Validation MAE"] == formatting.amount(float(np.mean(np.abs(predicted - truth))))
    charts = charts_by_title(at)
    scatter = charts["Predicted against true price"]["data"][1]
    assert scatter["x"] == pytest.approx(truth.tolist()) and scatter["y"] == pytest.approx(predicted.tolist())
    residuals = charts["Residuals (predicted minus true)"]["data"][0]
    assert residuals["y"] == pytest.approx((predicted - truth).tolist())
    table = at.dataframe(key=f"eval_table-{run.id}").value
    worst = int(np.argmax(np.abs(predicted - truth)))
    assert table["true"].iloc[0] == pytest.approx(truth[worst])
    assert table["miss"].is_monotonic_decreasing and len(table) == len(truth)
    [baselines] = [d.value for d in at.dataframe if "R²" in d.value.columns]
    assert "gradient boosting (LightGBM)" in baselines[""].tolist()


# ---- Explain ---------------------------------------------------------------------------------------------------


def test_explain_a_validation_row_ranks_the_plan_first(ws: Workspace, tables: Store) -> None:
    run = run_on(tables, "churn")
    at = open_page("pages/5_Explain.py")
    at.selectbox(key="explain_run").set_value(run.id).run()
    assert not at.exception, at.exception
    item = at.selectbox(key=f"explain_table_item-{run.id}")
    assert item.options[0].startswith(("no", "yes")) and "line " in item.options[0]
    for method in ("ig", "ablation", "shapley"):
        at.radio(key=f"explain_table_method-{run.id}").set_value(method).run()
        at.button(key="explain_table_go").click().run()
        assert not at.exception, at.exception
        charts = charts_by_title(at)
        bars = next(c for title, c in charts.items() if title.startswith("Columns for and against"))["data"][0]
        assert set(bars["y"]) == {"plan", "monthly_fee", "tenure_months"}
        strongest = bars["y"][int(np.argmax(np.abs(bars["x"])))]
        assert strongest == "plan", (method, bars)
        assert any("Setting the top 1 column (plan)" in m.value for m in [*at.success, *at.warning])
    at.button(key=f"explain_table_global-{run.id}-go").click().run()
    assert not at.exception, at.exception
    shares = charts_by_title(at)["Share of each column in each model's decisions"]["data"]
    assert [t["name"] for t in shares] == ["this model", "gradient boosting (LightGBM)"]
    assert shares[0]["y"][-1] == "plan"  # strongest at the top: plotly draws the last bar highest


def test_explain_a_typed_row_of_a_regression(ws: Workspace, tables: Store) -> None:
    run = run_on(tables, "flats")
    at = open_page("pages/5_Explain.py")
    at.selectbox(key="explain_run").set_value(run.id).run()
    at.radio(key="explain_table_source").set_value("Type a row").run()
    assert not at.exception, at.exception
    size = at.text_input(key=f"explain_row-{run.id}-size_m2")
    assert float(size.value) == pytest.approx(pd.read_csv(io.StringIO(flats_csv()))["size_m2"].median(), rel=0.1)
    size.set_value("140").run()
    at.button(key="explain_table_go").click().run()
    assert not at.exception, at.exception
    bars = next(c for title, c in charts_by_title(at).items() if title.startswith("Columns for and against"))["data"][0]
    assert bars["y"][int(np.argmax(np.abs(bars["x"])))] == "size_m2"


# ---- Predict ---------------------------------------------------------------------------------------------------


def test_predict_one_typed_row_as_the_library_does(ws: Workspace, tables: Store) -> None:
    from core import prediction
    from core.data.tables import rows_to_predict

    run = run_on(tables, "churn")
    at = open_page("pages/6_Predict.py")
    at.selectbox(key="predict_run").set_value(run.id).run()
    assert not at.exception, at.exception
    plan = at.selectbox(key=f"predict_row-{run.id}-plan")
    assert set(plan.options) == set(PLANS)
    plan.set_value("basic").run()
    at.text_input(key=f"predict_row-{run.id}-tenure_months").set_value("12").run()
    at.button(key="predict_row_go").click().run()
    assert not at.exception, at.exception
    fee = at.text_input(key=f"predict_row-{run.id}-monthly_fee").value
    subject = prediction.TableSubject(RunFiles(ws.run_dir(run.id)), ws.cache_dir)
    row = pd.DataFrame([{"plan": "basic", "monthly_fee": fee, "tenure_months": "12"}], dtype=object)
    expected = prediction.rows(subject, rows_to_predict(row, subject.columns, subject.target))
    metrics = metrics_shown(at)
    assert metrics["Prediction"] == expected["predicted"].iloc[0]
    assert metrics["Probability"] == formatting.probability(float(expected["confidence"].iloc[0]))
    assert any(title.startswith("Columns for and against") for title in charts_by_title(at))


def test_predict_a_file_of_rows_keeps_the_good_ones_and_says_why_not_the_others(ws: Workspace,
                                                                               tables: Store) -> None:
    run = run_on(tables, "flats")
    at = open_page("pages/6_Predict.py")
    at.selectbox(key="predict_run").set_value(run.id).run()
    rows = "id,size_m2,rooms,district\n7,80,3,centre\n8,large,2,north\n9,45,,harbour\n"
    at.file_uploader(key="predict_rows").set_value(("new.csv", rows.encode("utf-8"), "text/csv")).run()
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    assert table["id"].tolist() == ["7", "8", "9"]
    assert table["error"].tolist()[0] == "" and "size_m2" in table["error"].iloc[1] and table["error"].iloc[2] == ""
    assert table["predicted"].isna().tolist() == [False, True, False]  # a missing room and a new district: predicted
    assert any("1 of 3 row(s) could not be used" in w.value for w in at.warning)
    assert at.get("download_button")


def test_each_page_opens_on_a_table_run_without_error(ws: Workspace, tables: Store) -> None:
    for page in ("pages/1_Data.py", "pages/2_Train.py", "pages/3_Runs.py", "pages/4_Evaluate.py",
                 "pages/5_Explain.py", "pages/6_Predict.py"):
        at = open_page(page)
        assert not at.exception, (page, at.exception)


def test_pages_name_no_modality_or_task_outside_the_view_registry() -> None:
    root = Path(__file__).resolve().parents[2]
    named = []
    for path in [*sorted((root / "pages").glob("*.py")), *sorted((root / "ui").glob("*.py"))]:
        if path.name == "views.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if any(f'"{name}"' in line for name in ("images", "text", "tables", "classification", "regression")):
                named.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert named == []

