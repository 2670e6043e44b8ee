"""The Train page's Search option: a finished search's trials in a table with the best marked, Optuna's plots,
and the best run one click from Evaluate; the form starts nothing while a range is wrong."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest

from core import search
from core.config import TrainConfig
from core.store import DatasetRecord, RunRecord, Store
from core.workspace import Workspace
from tests.pages.conftest import charts_by_title, fabricate_run, open_page
from ui.search_views import BEST_MARK

PAGE = "pages/2_Train.py"
VALUES = (0.6, 0.9, None)  # trial 1 is the best; trial 2 was pruned
LRS = (1e-3, 1e-2, 5e-2)


def _finished_search(ws: Workspace, store: Store, dataset: DatasetRecord) -> tuple[search.SearchSpec,
                                                                                  list[RunRecord]]:
    """A search of 3 trials as its process leaves it: the spec, the journal's trials (each naming its run), the
    runs in the store and the state file saying it finished."""
    base = TrainConfig(dataset_id=dataset.id, weights="none")
    spec = search.SearchSpec.new(store, base, [search.Param("lr", 1e-4, 1e-1, log=True)], trials=3, parallel=2)
    search.save(ws, spec)
    study = optuna.create_study(study_name=spec.id, storage=search.storage(ws, spec.id), direction="maximize")
    space = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    made = []
    for value, lr in zip(VALUES, LRS, strict=True):
        run = fabricate_run(store, dataset, "completed" if value is not None else "cancelled",
                            metrics={"val_accuracy": value} if value is not None else {})
        made.append(run)
        state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.PRUNED
        study.add_trial(optuna.trial.create_trial(
            params={"lr": lr}, distributions=space, value=value, state=state, user_attrs={"run_id": run.id},
            intermediate_values={1: value if value is not None else 0.2}))
    folder = search.search_dir(ws, spec.id)
    (folder / "state.json").write_text(json.dumps({"status": "finished", "pid": None}))
    return spec, made


@pytest.fixture
def finished(ws: Workspace, store: Store, dataset: DatasetRecord) -> tuple[search.SearchSpec, list[RunRecord]]:
    return _finished_search(ws, store, dataset)


def _table(at: object) -> pd.DataFrame:
    return next(frame.value for frame in at.dataframe if "trial" in frame.value.columns)  # type: ignore[attr-defined]


def test_a_finished_search_shows_its_trials_with_the_best_marked(
        finished: tuple[search.SearchSpec, list[RunRecord]]) -> None:
    spec, made = finished
    at = open_page(PAGE)
    at.toggle(key="search_mode").set_value(True).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="search_pick").value == spec.id

    table = _table(at)
    assert table["trial"].tolist() == [0, 1, 2]
    assert table["run"].tolist() == [run.id for run in made]
    assert table["state"].tolist() == ["completed", "completed", "pruned"]
    assert table["val accuracy"].tolist()[:2] == ["60.0%", "90.0%"]
    assert table[""].tolist() == ["", BEST_MARK, ""]  # the best is marked, once
    assert any(f"Best: trial 1 (run {made[1].id})" in s.value for s in at.success)
    assert any("Finished" in m.value and "3 of 3 trial(s) ended" in m.value and "1 pruned" in m.value
               for m in at.markdown)
    assert set(charts_by_title(at)) >= {"Settings against the result", "Which settings mattered"}


def test_open_best_on_evaluate_opens_the_best_run(finished: tuple[search.SearchSpec, list[RunRecord]]) -> None:
    spec, made = finished
    at = open_page(PAGE)
    at.toggle(key="search_mode").set_value(True).run()
    at.button(key=f"open-best-{spec.id}").click().run()
    assert not at.exception, at.exception
    assert at.session_state["run_id"] == made[1].id
    assert at.selectbox[0].value == made[1].id  # Evaluate's run picker opened on it


def test_a_wrong_range_is_said_and_starts_nothing(ws: Workspace, store: Store, dataset: DatasetRecord,
                                                  no_workers: None) -> None:
    at = open_page(PAGE)
    at.toggle(key="search_mode").set_value(True).run()
    at.number_input(key="search-images-lr-low").set_value(0.5)
    at.number_input(key="search-images-lr-high").set_value(0.01)
    at.button(key="start-search").click().run()
    assert any("low end" in e.value and "below the high end" in e.value for e in at.error)
    assert store.list_runs() == []
    assert search.list_searches(ws) == []
