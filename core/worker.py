"""The one entry point a job backend runs: `python -m core.worker RUN_ID`.

The worker claims the run, trains it, and reports the verdict itself, all through one `RunReporter`: with
`GLASSBOX_REPORT=store` (the default, a local job) it writes the store; with `GLASSBOX_REPORT=jsonl` (a Ray job,
possibly on another host) it prints report lines that the backend reads back, and reads its config and its
dataset's record from the run's folder in storage instead of the store. A heartbeat thread keeps the run's
liveness fresh and turns a cancel request in the store into a flag the loop checks each step. SIGTERM (a
shutdown, a cluster pre-empting or stopping the job) ends the run as `interrupted`: resumable.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import threading
import traceback

from core import jobs, runs, storage, tasks
from core.artifacts import RunFiles
from core.config import TrainConfig
from core.errors import GlassboxError
from core.store import DatasetRecord, Store
from core.training.loop import StopRequested, TrainJob, train
from core.training.reporting import JsonLinesReporter, RunReporter, StoreReporter
from core.workspace import Workspace

HEARTBEAT_S = 2.0
REPORT_MODES = ("store", "jsonl")


class _Terminated(BaseException):
    """SIGTERM: stop now, but leave the run resumable."""


# set by the SIGTERM handler: raised inside a library's native code (torch.save, safetensors), _Terminated may
# come out wrapped in another exception, which is then still a termination, not a bug of the run
_TERMINATING = threading.Event()


def main(run_id: str) -> int:
    ws = Workspace.from_env()
    mode = os.environ.get("GLASSBOX_REPORT", "store")
    if mode not in REPORT_MODES:
        print(f"GLASSBOX_REPORT={mode!r}: expected one of {', '.join(REPORT_MODES)}", file=sys.stderr)
        return 2
    cancel = threading.Event()
    store = Store(ws.db_path) if mode == "store" else None
    reporter: RunReporter = StoreReporter(store, run_id, cancel) if store else JsonLinesReporter(run_id, cancel)
    if store is not None:
        run = store.get_run(run_id)
        if not reporter.claimed(pid=os.getpid(), host=socket.gethostname()):
            print(f"run {run_id} is {run.status}; nothing to do", file=sys.stderr)
            return 1
    else:
        reporter.claimed(pid=os.getpid(), host=socket.gethostname())
    stop_heartbeat = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(reporter, stop_heartbeat), daemon=True)
    beat.start()
    signal.signal(signal.SIGTERM, _raise_terminated)
    reporter.start_clock()
    files = RunFiles(ws.run_dir(run_id))
    try:
        dataset = store.get_dataset(store.get_run(run_id).dataset_id) if store else storage.read_dataset(files.root)
        job = TrainJob(config=TrainConfig.load(files.config), files=files, dataset_dir=ws.dataset_dir(dataset.id),
                       dataset_info=dataset.info, cache_dir=ws.cache_dir)
        reporter.log(f"worker {os.getpid()} started on {socket.gethostname()}")
        metrics = train(job, reporter)
        reporter.finished("completed", metrics=metrics)
        reporter.log(f"completed: {tasks.summary_line(tasks.of_run(job.config), metrics)}")
    except StopRequested:
        reporter.finished("cancelled")
        reporter.log("cancelled")
    except _Terminated:
        reporter.finished("interrupted", error="the worker was terminated; resume to continue")
        reporter.log("terminated: marked interrupted", "warning")
    except GlassboxError as exc:
        reporter.finished("failed", error=str(exc))
        reporter.log(f"failed: {exc}", "error")
    except Exception as exc:
        traceback.print_exc()
        if _TERMINATING.is_set():
            reporter.finished("interrupted", error="the worker was terminated; resume to continue")
            reporter.log(f"terminated ({type(exc).__name__} on the way out): marked interrupted", "warning")
        elif _disk_full(exc):  # not the run's fault: it resumes from its last good checkpoint once space is freed
            reason = runs.disk_full_reason(ws, _space_still_needed(ws, store, run_id, files))
            reporter.finished("interrupted", error=reason)
            reporter.log(reason, "error")
        else:  # a bug: the traceback stays in the run's log, the user gets one line
            reporter.finished("failed", error=f"internal error: {type(exc).__name__}: {exc}")
            reporter.log(f"internal error: {type(exc).__name__}: {exc}", "error")
    finally:
        stop_heartbeat.set()
        beat.join(timeout=5)
    if store is not None:  # a remote worker has no store to dispatch from; its cluster keeps its own queue
        jobs.backend(store.get_run(run_id).backend, ws, store).dispatch()
    return 0


def _space_still_needed(ws: Workspace, store: Store | None, run_id: str, files: RunFiles) -> int:
    if store is not None:
        return runs.space_still_needed(ws, store, store.get_run(run_id))
    dataset: DatasetRecord = storage.read_dataset(files.root)
    held = sum(path.stat().st_size for path in files.root.rglob("*") if path.is_file())
    return max(0, runs.space_needed(TrainConfig.load(files.config), dataset) - held)


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


def _heartbeat(reporter: RunReporter, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S / 2):
        try:
            reporter.heartbeat()
        except Exception as exc:  # a locked or briefly unavailable store must not kill training
            print(f"heartbeat: {exc}", file=sys.stderr)


def _raise_terminated(signum: int, frame: object) -> None:
    _TERMINATING.set()
    raise _Terminated


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m core.worker RUN_ID", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
