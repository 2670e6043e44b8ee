"""The one entry point a job backend runs: `python -m core.worker RUN_ID`.

The worker claims the run, trains it, and writes the verdict itself; a heartbeat thread keeps the
run's liveness fresh and turns a cancel request in the store into a flag the loop checks each step.
SIGTERM (a shutdown, a cluster pre-empting the job) ends the run as `interrupted`: resumable.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import threading
import time
import traceback

from core import jobs, runs, tasks
from core.artifacts import RunFiles
from core.config import TrainConfig
from core.errors import GlassboxError
from core.store import Store
from core.training.loop import StopRequested, TrainJob, train
from core.training.reporting import StoreReporter
from core.workspace import Workspace

HEARTBEAT_S = 2.0


class _Terminated(BaseException):
    """SIGTERM: stop now, but leave the run resumable."""


def main(run_id: str) -> int:
    ws = Workspace.from_env()
    store = Store(ws.db_path)
    run = store.get_run(run_id)
    if not store.transition(run_id, ["starting", "queued"], status="running", pid=os.getpid(),
                            host=socket.gethostname(), started_at=time.time(), heartbeat_at=time.time()):
        print(f"run {run_id} is {run.status}; nothing to do", file=sys.stderr)
        return 1
    cancel = threading.Event()
    stop_heartbeat = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(store, run_id, cancel, stop_heartbeat), daemon=True)
    beat.start()
    signal.signal(signal.SIGTERM, _raise_terminated)
    reporter = StoreReporter(store, run_id, cancel)
    try:
        files = RunFiles(ws.run_dir(run_id))
        dataset = store.get_dataset(run.dataset_id)
        job = TrainJob(config=TrainConfig.load(files.config), files=files, dataset_dir=ws.dataset_dir(dataset.id),
                       dataset_info=dataset.info, cache_dir=ws.cache_dir)
        reporter.log(f"worker {os.getpid()} started on {socket.gethostname()}")
        metrics = train(job, reporter)
        _finish(store, run_id, "completed", metrics=metrics)
        reporter.log(f"completed: {tasks.summary_line(tasks.of_run(job.config), metrics)}")
    except StopRequested:
        _finish(store, run_id, "cancelled")
        reporter.log("cancelled")
    except _Terminated:
        _finish(store, run_id, "interrupted", error="the worker was terminated; resume to continue")
        reporter.log("terminated: marked interrupted", "warning")
    except GlassboxError as exc:
        _finish(store, run_id, "failed", error=str(exc))
        reporter.log(f"failed: {exc}", "error")
    except Exception as exc:
        traceback.print_exc()
        if _disk_full(exc):  # not the run's fault: it resumes from its last good checkpoint once space is freed
            reason = runs.disk_full_reason(ws, runs.space_still_needed(ws, store, run))
            _finish(store, run_id, "interrupted", error=reason)
            reporter.log(reason, "error")
        else:  # a bug: the traceback stays in the run's log, the user gets one line
            _finish(store, run_id, "failed", error=f"internal error: {type(exc).__name__}: {exc}")
            reporter.log(f"internal error: {type(exc).__name__}: {exc}", "error")
    finally:
        stop_heartbeat.set()
        beat.join(timeout=5)
    jobs.backend(run.backend, ws, store).dispatch()
    return 0


def _disk_full(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from or during, is a full disk: an OSError ENOSPC,
    or a library's wrapping of one (safetensors' "os error 28", SQLite's "database or disk is full")."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        if any(sign in str(seen) for sign in ("os error 28", "No space left on device", "database or disk is full")):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _finish(store: Store, run_id: str, status: str, **values: object) -> None:
    store.transition(run_id, ["running"], status=status, finished_at=time.time(), **values)


def _heartbeat(store: Store, run_id: str, cancel: threading.Event, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S / 2):
        try:
            store.update_run(run_id, heartbeat_at=time.time())
            if store.get_run(run_id).cancel_requested_at:
                cancel.set()
        except Exception as exc:  # a locked or briefly unavailable store must not kill training
            print(f"heartbeat: {exc}", file=sys.stderr)


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m core.worker RUN_ID", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
