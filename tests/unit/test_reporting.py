"""The one reporting interface: a remote worker's report lines, read back into a store, leave the same run,
metrics and events as the local worker writing the store directly; the reader takes only complete lines, skips
what is not a report and lets a report set no column but progress ones."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

from core.store import RunRecord, Store
from core.training.reporting import (
    REPORT_PREFIX,
    JsonLinesReporter,
    RunReporter,
    StoreReporter,
    apply_report,
    read_reports,
    without_reports,
)

_COMPARED = ("status", "host", "device", "epoch", "total_epochs", "step", "total_steps", "metrics", "error", "phase")


def _store(path: Path) -> Store:
    store = Store(path)
    store.add_run(RunRecord(id="r", dataset_id="ds", modality="tables", backbone="mlp", status="starting",
                            config={}, backend="ray", created_at=0.0))
    return store


def _a_whole_run(reporter: RunReporter) -> None:
    """What a worker tells its reporter over a run of 2 epochs of 3 steps, in order."""
    assert reporter.claimed(pid=4242, host="node-1")
    reporter.phase("encoding features", 0, 10)
    reporter.phase("encoding features", 10, 10)
    reporter.log("worker started")
    reporter.started(total_epochs=2, steps_per_epoch=3, start_epoch=0, device="cpu")
    for epoch in (1, 2):
        for step in range(3 * epoch - 2, 3 * epoch + 1):
            reporter.step(epoch=epoch, step=step, loss=1.0 / step, accuracy=0.5, samples=8)
        reporter.heartbeat()
        reporter.epoch_end(epoch=epoch, step=3 * epoch, metrics={"val_loss": 0.9 / epoch},
                           best={"val_loss": 0.9 / epoch, "best_epoch": epoch})
    reporter.finished("completed", metrics={"val_loss": 0.45, "best_epoch": 2})
    reporter.log("completed", "warning")


def test_report_lines_read_back_leave_the_store_the_local_reporter_writes(tmp_path: Path) -> None:
    local = _store(tmp_path / "local.db")
    _a_whole_run(StoreReporter(local, "r", threading.Event(), flush_every_s=0.0))

    out = io.StringIO()
    _a_whole_run(JsonLinesReporter("r", threading.Event(), flush_every_s=0.0, stream=out, heartbeat_every_s=0.0))
    remote = _store(tmp_path / "remote.db")
    text = "ray: job started\n" + out.getvalue() + "[12:00:00] info: an ordinary print\n"
    reports, consumed = read_reports(text)
    assert consumed == len(text)
    for report in reports:
        assert apply_report(remote, "r", report.kind, report.payload)

    mine, theirs = local.get_run("r"), remote.get_run("r")
    assert {k: getattr(theirs, k) for k in _COMPARED} == {k: getattr(mine, k) for k in _COMPARED}
    assert theirs.status == "completed" and theirs.metrics == {"val_loss": 0.45, "best_epoch": 2}
    assert theirs.pid is None and mine.pid == 4242  # a remote pid means nothing to the studio's host
    assert theirs.heartbeat_at is not None and theirs.started_at is not None and theirs.finished_at is not None
    strip = [("epoch", "step", "name", "value")]
    assert [tuple(m[k] for k in strip[0]) for m in remote.metrics("r")] == \
        [tuple(m[k] for k in strip[0]) for m in local.metrics("r")]
    assert len(remote.metrics("r", ["train_loss"])) == 6
    assert [(e["level"], e["message"]) for e in remote.events("r")] == \
        [("info", "worker started"), ("warning", "completed")]
    assert {r.kind for r in reports} == {"status", "phase", "event", "progress", "metrics", "heartbeat"}


def test_a_line_still_being_written_is_read_next_time() -> None:
    line = REPORT_PREFIX + json.dumps({"kind": "heartbeat", "payload": {"ts": 5.0}})
    text = f"{line}\n{line[:20]}"
    reports, consumed = read_reports(text)
    assert [r.payload for r in reports] == [{"ts": 5.0}] and consumed == len(line) + 1
    rest, more = read_reports(text[consumed:] + line[20:] + "\n")
    assert [r.payload for r in rest] == [{"ts": 5.0}] and more == len(line) + 1


def test_what_is_not_a_report_is_skipped_and_a_report_sets_only_progress_columns(store: Store) -> None:
    good = REPORT_PREFIX + json.dumps({"kind": "progress", "payload": {"step": 7, "status": "completed"}})
    text = "\n".join([
        "Traceback (most recent call last):",
        REPORT_PREFIX + "{not json",
        REPORT_PREFIX + json.dumps({"kind": "shell", "payload": {}}),
        "[12:00:01] info: half a line " + good,  # another thread's print ran into it
        "",
    ])
    reports, _ = read_reports(text)
    assert [(r.kind, r.payload) for r in reports] == [("progress", {"step": 7, "status": "completed"})]
    store.add_run(RunRecord(id="r", dataset_id="ds", modality="tables", backbone="mlp", status="running",
                            config={}, backend="ray", created_at=0.0))
    apply_report(store, "r", reports[0].kind, reports[0].payload)
    assert (store.get_run("r").step, store.get_run("r").status) == (7, "running")
    assert list(without_reports(text)) == ["Traceback (most recent call last):"]


def test_a_finished_report_does_not_overwrite_a_verdict_already_given(store: Store) -> None:
    store.add_run(RunRecord(id="r", dataset_id="ds", modality="tables", backbone="mlp", status="cancelled",
                            config={}, backend="ray", created_at=0.0))
    assert not apply_report(store, "r", "status", {"status": "completed", "ts": time.time()})
    assert store.get_run("r").status == "cancelled"
