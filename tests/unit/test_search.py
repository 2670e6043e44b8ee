"""Hyperparameter search (`core.search`, `python -m core search`): a few tiny trials as ordinary runs, two at a
time, one of them pruned and its run cancelled; the best trial is the one with the best value; bad specs are
refused with one line."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import optuna
import pytest

from core import cli, search
from core.config import TrainConfig
from core.errors import GlassboxError
from core.store import Store
from core.workspace import Workspace
from tests.conftest import ROOT

PENGUINS = ROOT / "sample_data" / "penguins.csv"
PRUNED_TRIAL = 2


class _PruneOneTrial(optuna.pruners.BasePruner):
    """Prunes trial `number` at its first report and no other: a pruner whose verdict the test knows."""

    def __init__(self, number: int) -> None:
        self.number = number

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number == self.number


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, Store, dict[str, Any]]]:
    """One search through the CLI, run once for the module: 3 trials on the penguins, 2 at a time, the learning
    rate on a log range; trial 2 is pruned. Trials run 60 short epochs (a fraction of a second each) so that the
    pruned one is still training when it is cancelled."""
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("search") / "home"
        patch.setenv("GLASSBOX_HOME", str(home))
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(search, "default_pruner", lambda spec: _PruneOneTrial(PRUNED_TRIAL))
        ws = Workspace.from_env()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["search", "--data", str(PENGUINS), "--target", "species", "--preset", "quick",
                             "--epochs", "60", "--batch-size", "16", "--early-stopping-patience", "0",
                             "--trials", "3", "--parallel", "2", "--param", "lr=1e-3:1e-1:log", "--json"])
        lines = out.getvalue().strip().splitlines()
        yield ws, Store(ws.db_path), {"code": code, "json": json.loads(lines[-1]) if lines else None}


@pytest.mark.slow
def test_a_search_runs_its_trials_as_runs_and_keeps_the_best(searched: tuple[Workspace, Store, dict[str, Any]],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    ws, store, outcome = searched
    assert outcome["code"] == 0
    found = search.list_searches(ws)
    assert len(found) == 1
    spec = found[0]
    result = search.results(ws, store, spec.id)
    assert result.status == "finished"
    assert [row.trial for row in result.trials] == [0, 1, 2]
    assert [row.state for row in result.trials] == ["completed", "completed", "pruned"]

    # every trial is an ordinary run in the store, tagged with the search and its trial number
    for row in result.trials:
        run = store.get_run(row.run)
        assert run.config["search"] == {"id": spec.id, "trial": row.trial}
        assert run.config["lr"] == pytest.approx(row.params["lr"])
        assert 1e-3 <= row.params["lr"] <= 1e-1
    completed = [row for row in result.trials if row.state == "completed"]
    for row in completed:
        run = store.get_run(row.run)
        assert run.status == "completed"
        assert row.value == pytest.approx(run.metrics["val_accuracy"])  # the best epoch's headline figure

    # the best is the completed trial with the highest validation accuracy (the first on a tie, as Optuna)
    best = max(completed, key=lambda row: row.value or 0.0)
    assert result.best is not None and result.best.trial == best.trial and result.best.run == best.run

    # the study lives in Optuna's journal file beside the spec; its best trial agrees
    folder = search.search_dir(ws, spec.id)
    assert (folder / "journal.log").is_file() and (folder / "search.json").is_file()
    study = search.study(ws, spec.id)
    assert study is not None and study.best_trial.value == pytest.approx(result.best.value)
    assert set(search.figures(ws, spec.id)) == {"Settings against the result", "Which settings mattered"}


@pytest.mark.slow
def test_the_pruned_trial_s_run_ends_cancelled(searched: tuple[Workspace, Store, dict[str, Any]]) -> None:
    ws, store, _ = searched
    spec = search.list_searches(ws)[0]
    pruned = search.results(ws, store, spec.id).trials[PRUNED_TRIAL]
    assert pruned.state == "pruned"
    run = store.get_run(pruned.run)
    assert run.status == "cancelled"
    assert run.epoch < 60  # stopped early, not trained to the end
    reported = store.metrics(run.id, ["val_accuracy"])
    assert reported and pruned.value == pytest.approx(reported[0]["value"])  # pruned at its first report


@pytest.mark.slow
def test_the_cli_json_names_the_search_and_its_best(searched: tuple[Workspace, Store, dict[str, Any]]) -> None:
    ws, store, outcome = searched
    spec = search.list_searches(ws)[0]
    value = outcome["json"]
    assert value == json.loads(json.dumps(search.results(ws, store, spec.id).to_dict()))
    assert value["search"] == spec.id
    assert value["metric"] == {"key": "val_accuracy", "title": "accuracy", "higher_is_better": True}
    assert value["best"]["run"] == value["trials"][value["best"]["trial"]]["run"]
    assert set(value["best"]["params"]) == {"lr"}
    assert [trial["state"] for trial in value["trials"]] == ["completed", "completed", "pruned"]


# ---- bad specs --------------------------------------------------------------------------------------------
@pytest.fixture
def penguins(ws: Workspace, store: Store) -> TrainConfig:
    from core import datasets

    record = datasets.add(ws, store, PENGUINS, options={"target": "species"})
    return TrainConfig(dataset_id=record.id, modality="tables", backbone="mlp", weights="none", epochs=2)


@pytest.mark.parametrize(("params", "message"), [
    (["lr=0.1:0.001"], "low end (0.1) must be below the high end (0.001)"),
    (["lr=0:0.1:log"], "a log range must start above 0"),
    (["lr=1e-3:20"], "learning rate must be positive and below 10"),
    (["epochs=1.5:4"], "epochs takes whole numbers"),
    (["mode=head,sideways"], "mode: 'sideways' is not one of head, partial, full"),
    (["mode=0:1"], "mode is a choice"),
    (["backbone=mlp,no_such_net"], "no_such_net"),
    (["image_size=64,128"], "cannot search 'image_size' for tables runs"),
    (["volume=1:2"], "cannot search 'volume'"),
    (["lr=1e-3:1e-2", "lr=1e-4:1e-3"], "lr is searched twice"),
])
def test_bad_ranges_are_refused_in_one_line(store: Store, penguins: TrainConfig, params: list[str],
                                            message: str) -> None:
    with pytest.raises(GlassboxError, match="^[^\n]*$") as caught:
        search.SearchSpec.new(store, penguins, [search.Param.parse(p) for p in params])
    assert message in str(caught.value)


@pytest.mark.parametrize(("counts", "message"), [
    ({"trials": 0}, "number of trials must be between 1"),
    ({"parallel": 0}, "parallel trials must be between 1"),
    ({"timeout_s": -5.0}, "time budget must be a positive number"),
])
def test_bad_counts_are_refused(store: Store, penguins: TrainConfig, counts: dict[str, Any], message: str) -> None:
    with pytest.raises(GlassboxError, match=message):
        search.SearchSpec.new(store, penguins, search.default_params(penguins), **counts)


def test_a_param_that_is_not_a_range_or_choices_is_refused() -> None:
    for text in ("lr", "lr=", "lr=1:2:3", "batch_size=16,thirty"):
        with pytest.raises(GlassboxError):
            search.Param.parse(text)
    assert search.Param.parse("batch_size=16,32") == search.Param("batch_size", choices=(16, 32))
    assert search.Param.parse("lr=1e-4:1e-2:log") == search.Param("lr", 1e-4, 1e-2, log=True)


def test_a_spec_round_trips_through_its_file(ws: Workspace, store: Store, penguins: TrainConfig) -> None:
    spec = search.SearchSpec.new(store, penguins, [search.Param("batch_size", choices=(16, 32)),
                                                   search.Param("lr", 1e-4, 1e-2, log=True)], trials=4, parallel=2)
    assert (spec.modality, spec.task) == ("tables", "classification")  # from the dataset
    path = search.save(ws, spec)
    assert path == ws.home / "searches" / spec.id / "search.json"
    assert search.load(ws, spec.id) == spec
    assert search.load(ws, path).base_config() == penguins.updated(dataset_id=spec.dataset_id)


def test_the_cli_refuses_a_bad_range_with_one_line(ws: Workspace, store: Store,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["search", "--data", str(PENGUINS), "--target", "species", "--trials", "2",
                     "--param", "lr=0.5:0.01", "--json"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err[-1] == "error: lr: the low end (0.5) must be below the high end (0.01)"
    assert store.list_runs() == []
    code = cli.main(["search", "--data", str(PENGUINS), "--param", "lr:0.1"])
    assert code != 0
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: --param takes NAME=LOW:HIGH")

