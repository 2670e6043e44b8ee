"""How the training loop and the worker tell the world what they are doing, without knowing who listens.

Every reporter turns the calls below into a few kinds of report: `event` (a log line), `metrics` (rows of
(epoch, step, name, value)), `progress` (the run's counters, ETA, best metrics), `phase` (counted work before
steps), `heartbeat` and `status` (the run's lifecycle: claimed, finished). `apply_report` writes one report
into the store; it is the only code that does.

- `StoreReporter` (local jobs) applies each report at once: the worker writes SQLite as it always has.
- `JsonLinesReporter` (remote jobs, which cannot reach the studio's SQLite) prints each report as one line,
  `GLASSBOX-REPORT {json}`, on stdout; the job backend reads the job's log back (`read_reports`) and applies
  the same reports in the studio's process.

Steps are batched (at most about one write or line a second), so reporting costs the hot loop nothing measurable.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from core.store import Store

REPORT_PREFIX = "GLASSBOX-REPORT "
KINDS = ("event", "metrics", "progress", "phase", "heartbeat", "status")
# run columns a `progress` report may set: a report comes from a job's log, so it names no other column
PROGRESS_FIELDS = frozenset(
    {"epoch", "total_epochs", "step", "total_steps", "samples_per_s", "eta_s", "device", "metrics", "phase"}
)
FINAL_STATUSES = ("completed", "failed", "cancelled", "interrupted")


class Reporter(Protocol):
    """What the training loop calls."""

    def log(self, message: str, level: str = "info") -> None: ...

    def phase(self, what: str, done: int, total: int) -> None:
        """Work before training steps can be counted (tokenising texts, computing a frozen backbone's
        features): `done` of `total` items of `what` ("encoding features"), called as items finish."""

    def started(self, *, total_epochs: int, steps_per_epoch: int, start_epoch: int, device: str) -> None: ...

    def step(self, *, epoch: int, step: int, loss: float, accuracy: float | None, samples: int) -> None: ...

    def epoch_end(self, *, epoch: int, step: int, metrics: dict[str, float], best: dict[str, float]) -> None:
        """`metrics` of the epoch just validated; `best`: the best epoch's so far, with `best_epoch`."""

    def should_stop(self) -> bool: ...


class RunReporter(Reporter, Protocol):
    """What the worker calls besides: the run's lifecycle."""

    def claimed(self, *, pid: int, host: str) -> bool:
        """The worker takes the run (queued/starting -> running); False when it is no longer its to take."""

    def start_clock(self) -> None:
        """Training work starts now: batching intervals and rates count from here."""

    def heartbeat(self) -> None:
        """The worker is alive; also where a cancel requested in the store becomes `should_stop()`."""

    def finished(self, status: str, *, error: str | None = None, metrics: dict[str, Any] | None = None) -> None:
        """The verdict (one of `FINAL_STATUSES`), with the final metrics of a completed run."""


def apply_report(store: Store, run_id: str, kind: str, payload: dict[str, Any]) -> bool:
    """Write one report into the store; returns False only for a lifecycle change the run's status no
    longer allows (the compare-and-set of `Store.transition` refused it). ValueError for an unknown kind."""
    if kind == "event":
        store.add_event(run_id, str(payload["message"]), str(payload.get("level", "info")), ts=payload.get("ts"))
    elif kind == "metrics":
        rows = [(int(e), int(s), str(n), float(v)) for e, s, n, v in payload["rows"]]
        store.add_metrics(run_id, rows, ts=payload.get("ts"))
    elif kind in ("progress", "phase"):
        store.update_run(run_id, **{k: v for k, v in payload.items() if k in PROGRESS_FIELDS})
    elif kind == "heartbeat":
        store.update_run(run_id, heartbeat_at=float(payload["ts"]))
    elif kind == "status":
        return _apply_status(store, run_id, payload)
    else:
        raise ValueError(f"unknown report kind {kind!r}")
    return True


def _apply_status(store: Store, run_id: str, payload: dict[str, Any]) -> bool:
    status, ts = payload["status"], float(payload["ts"])
    if status == "running":
        claim = {"host": payload.get("host"), "started_at": ts, "heartbeat_at": ts}
        if payload.get("pid") is not None:  # a local worker's pid, which the local backend watches
            claim["pid"] = int(payload["pid"])
        return store.transition(run_id, ["starting", "queued"], status="running", **claim)
    if status not in FINAL_STATUSES:
        raise ValueError(f"unknown run status {status!r}")
    values: dict[str, Any] = {"finished_at": ts}
    if payload.get("error") is not None:
        values["error"] = str(payload["error"])
    if payload.get("metrics") is not None:
        values["metrics"] = payload["metrics"]
    return store.transition(run_id, ["running"], status=status, **values)


@dataclass(frozen=True)
class Report:
    kind: str
    payload: dict[str, Any]


def read_reports(text: str) -> tuple[list[Report], int]:
    """The reports in a log `text` and how many characters of it were read: up to the end of the last
    complete line, so a line still being written is read next time from the returned offset. Lines that
    are not reports (the worker's own prints, Ray's) and report lines that do not parse are skipped."""
    end = text.rfind("\n") + 1
    reports = []
    for line in text[:end].splitlines():
        start = line.find(REPORT_PREFIX)  # another writer may have put text before it on the same line
        if start < 0:
            continue
        try:
            record = json.loads(line[start + len(REPORT_PREFIX):])
            kind, payload = record["kind"], record["payload"]
        except (ValueError, KeyError, TypeError):
            continue
        if kind in KINDS and isinstance(payload, dict):
            reports.append(Report(kind, payload))
    return reports, end


def without_reports(text: str) -> Iterator[str]:
    """The lines of a job's log a person reads: all but the report lines."""
    return (line for line in text.splitlines() if REPORT_PREFIX not in line)


class _BatchingReporter:
    """The loop's calls turned into reports, batched; subclasses say where a report goes (`_emit`)."""

    def __init__(self, run_id: str, cancel: threading.Event, flush_every_s: float = 1.0) -> None:
        self.run_id = run_id
        self.cancel = cancel
        self.flush_every_s = flush_every_s
        self._rows: list[tuple[int, int, str, float]] = []
        self._last_flush = time.monotonic()
        self._steps_per_epoch = 0
        self._total_steps = 0
        self._first_step: int | None = None
        self._t0 = time.monotonic()
        self._samples = 0
        self._progress: dict[str, Any] = {}
        self._phase_what = ""
        self._phase_t0 = 0.0

    def _emit(self, kind: str, payload: dict[str, Any]) -> bool:
        raise NotImplementedError

    def start_clock(self) -> None:
        """Count the batching interval from now: the worker calls it once its heartbeat thread runs, so that
        the first flushes fall between two heartbeats rather than together with them."""
        self._last_flush = self._t0 = time.monotonic()

    def log(self, message: str, level: str = "info") -> None:
        """An event, echoed to stdout: the worker's log then tells the run's story too."""
        self._emit("event", {"message": message, "level": level, "ts": time.time()})
        print(f"[{time.strftime('%H:%M:%S')}] {level}: {message}", flush=True)

    def phase(self, what: str, done: int, total: int) -> None:
        """Reported as the run's `phase` ({what, done, total, eta_s}), at most about once a second and
        always when it starts or finishes; the ETA assumes the rest goes at the pace so far."""
        now = time.monotonic()
        starting = what != self._phase_what or done == 0
        if starting:
            self._phase_what, self._phase_t0 = what, now
        elapsed = now - self._phase_t0
        eta = elapsed / done * (total - done) if done and elapsed > 0 else None
        self._progress["phase"] = {"what": what, "done": done, "total": total, "eta_s": eta}
        if starting or done >= total or now - self._last_flush >= self.flush_every_s:
            self._flush()
        if done >= total:
            print(f"[{time.strftime('%H:%M:%S')}] info: {what}: {total} in {elapsed:.1f} s", flush=True)

    def started(self, *, total_epochs: int, steps_per_epoch: int, start_epoch: int, device: str) -> None:
        self._steps_per_epoch = steps_per_epoch
        self._total_steps = total_epochs * steps_per_epoch
        self._t0 = time.monotonic()
        self._progress.pop("phase", None)
        self._emit("progress", {
            "total_epochs": total_epochs, "total_steps": self._total_steps, "device": device,
            "epoch": start_epoch, "step": start_epoch * steps_per_epoch, "phase": None,
        })

    def step(self, *, epoch: int, step: int, loss: float, accuracy: float | None, samples: int) -> None:
        if self._first_step is None:
            self._first_step = step - 1
        self._samples += samples
        self._rows.append((epoch, step, "train_loss", loss))
        if accuracy is not None:  # regression has no per-step accuracy
            self._rows.append((epoch, step, "train_accuracy", accuracy))
        elapsed = time.monotonic() - self._t0
        done = step - self._first_step
        self._progress = {
            "step": step,
            "samples_per_s": self._samples / elapsed if elapsed > 0 else 0.0,
            "eta_s": elapsed / done * (self._total_steps - step) if done else 0.0,
        }
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self._flush()

    def epoch_end(self, *, epoch: int, step: int, metrics: dict[str, float], best: dict[str, float]) -> None:
        """The best epoch's metrics become the run's `metrics` at once, so a run that is cancelled,
        fails or is interrupted later still shows them (completion writes the final ones)."""
        self._rows += [(epoch, step, name, value) for name, value in metrics.items()]
        self._progress["epoch"] = epoch
        self._progress["metrics"] = best
        self._flush()

    def should_stop(self) -> bool:
        return self.cancel.is_set()

    def claimed(self, *, pid: int, host: str) -> bool:
        return self._emit("status", {"status": "running", "pid": pid, "host": host, "ts": time.time()})

    def heartbeat(self) -> None:
        self._emit("heartbeat", {"ts": time.time()})

    def finished(self, status: str, *, error: str | None = None, metrics: dict[str, Any] | None = None) -> None:
        self._emit("status", {"status": status, "error": error, "metrics": metrics, "ts": time.time()})

    def _flush(self) -> None:
        if self._rows:
            self._emit("metrics", {"rows": self._rows, "ts": time.time()})
        progress = dict(self._progress)
        if "phase" in progress:
            self._emit("phase", {"phase": progress.pop("phase")})
        if progress:
            self._emit("progress", progress)
        self._rows = []
        self._last_flush = time.monotonic()


class StoreReporter(_BatchingReporter):
    """Reports written straight into the SQLite store (a worker on the studio's host)."""

    def __init__(self, store: Store, run_id: str, cancel: threading.Event, flush_every_s: float = 1.0) -> None:
        super().__init__(run_id, cancel, flush_every_s)
        self.store = store

    def _emit(self, kind: str, payload: dict[str, Any]) -> bool:
        return apply_report(self.store, self.run_id, kind, payload)

    def heartbeat(self) -> None:
        """Refresh the run's liveness and turn a cancel requested in the store into `should_stop()`."""
        super().heartbeat()
        if self.store.get_run(self.run_id).cancel_requested_at:
            self.cancel.set()


class JsonLinesReporter(_BatchingReporter):
    """Reports printed as `GLASSBOX-REPORT {"kind": ..., "payload": ...}` lines on `stream` (stdout), for a
    worker that cannot reach the store: the job backend reads them back from the job's log. The worker does
    not learn of a cancel this way; the backend stops the job instead (SIGTERM). Heartbeats are printed at
    most every `heartbeat_every_s` seconds, to keep a long job's log small."""

    def __init__(self, run_id: str, cancel: threading.Event, flush_every_s: float = 1.0,
                 stream: TextIO | None = None, heartbeat_every_s: float = 5.0) -> None:
        super().__init__(run_id, cancel, flush_every_s)
        self.stream = stream
        self.heartbeat_every_s = heartbeat_every_s
        self._lock = threading.Lock()  # the heartbeat thread and the loop print: one whole line at a time
        self._last_beat = float("-inf")

    def _emit(self, kind: str, payload: dict[str, Any]) -> bool:
        line = REPORT_PREFIX + json.dumps({"kind": kind, "payload": payload}, separators=(",", ":")) + "\n"
        stream = self.stream or sys.stdout
        with self._lock:
            stream.write(line)
            stream.flush()
        return True

    def claimed(self, *, pid: int, host: str) -> bool:
        """Reported with the host only: a pid on the cluster's host means nothing to the studio's (the
        backend follows the job by its id). Always True: the studio decides when it reads the line."""
        self._emit("status", {"status": "running", "host": host, "ts": time.time()})
        return True

    def heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat >= self.heartbeat_every_s:
            self._last_beat = now
            super().heartbeat()
