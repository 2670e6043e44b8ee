"""Comparing runs (`core.comparison`): the best run is the one its task's headline figure picks, in that
figure's direction and per task; the differing settings are exactly those that differ; and `python -m core runs
compare` prints the same."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core import cli
from core.comparison import compare
from core.errors import GlassboxError
from core.store import RunRecord, Store

_made = iter(range(10**6))


def _run(metrics: dict[str, Any] | None = None, task: str = "classification", status: str = "completed",
         **config: Any) -> RunRecord:
    """A run record as the worker leaves it: its config (with `config`'s changes) and best-epoch figures."""
    run_id = f"run-{next(_made)}"
    return RunRecord(
        id=run_id, dataset_id="ds-1", modality="tables", backbone="mlp", status=status,
        config={"dataset_id": "ds-1", "modality": "tables", "task": task, "backbone": "mlp", "epochs": 3,
                "lr": 0.001, **config},
        backend="local", created_at=0.0, metrics=metrics or {},
    )


def _rows(*points: tuple[int, str, float]) -> list[dict[str, Any]]:
    """Logged figures as `Store.metrics` returns them: (epoch, name, value)."""
    return [{"epoch": e, "step": e * 4, "name": n, "value": v, "ts": 0.0} for e, n, v in points]


def test_the_best_classifier_has_the_highest_accuracy_whatever_its_loss() -> None:
    runs = [_run({"val_accuracy": 0.7, "val_loss": 0.2}), _run({"val_accuracy": 0.9, "val_loss": 0.9}),
            _run({"val_accuracy": 0.8, "val_loss": 0.1})]
    found = compare(runs, {})
    assert found.best == {"classification": runs[1].id}
    assert [found.is_best(r.id) for r in runs] == [False, True, False]
    assert found.to_json()["best"] == runs[1].id


def test_lower_is_better_picks_the_smallest_error() -> None:
    # forecasts are judged by MAE: the largest (4.0) would win if the direction were ignored
    runs = [_run({"val_mae": 4.0}, task="forecast"), _run({"val_mae": 1.5}, task="forecast"),
            _run({"val_mae": 2.0}, task="forecast")]
    found = compare(runs, {})
    assert found.headlines["forecast"].key == "mae"
    assert found.best == {"forecast": runs[1].id}


def test_runs_of_different_tasks_are_judged_apart() -> None:
    runs = [_run({"val_accuracy": 0.6}), _run({"val_r2": 0.3}, task="regression"),
            _run({"val_accuracy": 0.9}), _run({"val_r2": 0.8}, task="regression")]
    found = compare(runs, {})
    assert found.best == {"classification": runs[2].id, "regression": runs[3].id}
    # no single best across an accuracy and an R²
    assert found.to_json()["best"] is None
    assert found.to_json()["best_by_task"] == {"classification": runs[2].id, "regression": runs[3].id}


def test_a_tie_goes_to_the_first_run_given_and_unscored_runs_are_never_best() -> None:
    runs = [_run(status="failed"), _run({"val_accuracy": 0.8}), _run({"val_accuracy": 0.8})]
    assert compare(runs, {}).best == {"classification": runs[1].id}
    assert compare([runs[0]], {}).best == {}


def test_a_run_without_a_recorded_score_is_judged_by_its_latest_logged_epoch() -> None:
    old, new = _run(), _run({"val_accuracy": 0.7})
    logged = {old.id: _rows((1, "val_accuracy", 0.5), (1, "val_loss", 0.9), (2, "val_accuracy", 0.75))}
    found = compare([old, new], logged)
    assert found.scores[old.id]["val_accuracy"] == 0.75
    assert found.best == {"classification": old.id}
    assert found.curves == {old.id: [(1, 0.5), (2, 0.75)], new.id: []}


def test_differing_settings_are_exactly_those_that_differ() -> None:
    first = _run(lr=0.001, extra={"dropout": 0.1, "width": 64})
    second = _run(lr=0.01, extra={"dropout": 0.1, "width": 64})
    third = _run(lr=0.001, epochs=3.0, extra={"dropout": 0.1, "width": 32})
    del third.config["task"]  # a run made before tasks existed: a classification, like the others
    found = compare([first, second, third], {})
    assert found.differing == ("extra.width", "lr")
    assert [row["lr"] for row in found.rows()] == [0.001, 0.01, 0.001]
    assert set(found.rows()[0]) == {"run", "status", "task", "best", "val_accuracy", "val_macro_f1", "val_loss",
                                    "best_epoch", "extra.width", "lr"}
    assert found.rows(all_settings=True)[0]["extra.dropout"] == 0.1


def test_identical_runs_differ_in_nothing_and_a_run_given_twice_counts_once() -> None:
    run = _run({"val_accuracy": 0.5})
    found = compare([run, _run(), run], {})
    assert found.differing == ()
    assert len(found.runs) == 2


def test_a_setting_only_one_run_names_differs() -> None:
    assert compare([_run(augmentation="strong"), _run()], {}).differing == ("augmentation",)
    assert compare([_run(augmentation="light"), _run()], {}).differing == ()  # light is the default


def test_nothing_to_compare_is_a_plain_error() -> None:
    with pytest.raises(GlassboxError, match="pick at least one run"):
        compare([], {})


def test_the_command_line_prints_runs_differing_settings_and_the_best(store: Store,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    slow, good = _run({"val_mae": 3.0}, task="regression", lr=0.01), _run({"val_mae": 1.0}, task="regression")
    slow.metrics["val_r2"], good.metrics["val_r2"] = 0.9, 0.2  # R², the headline, decides: not the MAE
    for run in (slow, good):
        store.add_run(run)
        store.update_run(run.id, metrics=run.metrics)
    store.add_metrics(slow.id, [(1, 4, "val_r2", 0.5), (2, 8, "val_r2", 0.9)])

    assert cli.main(["runs", "compare", good.id, slow.id, "--json"]) == 0
    value = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert value["best"] == slow.id
    assert value["differing"] == ["lr"]
    assert [r["run_id"] for r in value["runs"]] == [good.id, slow.id]
    assert value["runs"][1]["metrics"]["val_r2"] == 0.9

    assert cli.main(["runs", "compare", good.id, "run-missing"]) == 1
    assert capsys.readouterr().err == "error: no run 'run-missing'\n"


def test_runs_on_different_datasets_get_no_best() -> None:
    from dataclasses import replace

    mine, other = _run({"val_accuracy": 0.7}), _run({"val_accuracy": 0.99})
    other = replace(other, dataset_id="ds-2", config={**other.config, "dataset_id": "ds-2"})
    found = compare([mine, other], {})
    assert found.best == {} and not found.is_best(other.id)
    assert found.to_json()["best"] is None
    assert "dataset_id" in found.differing
