"""The local backend: one worker process per run, in its own session (process group), so it outlives
the studio or CLI that started it and can be killed as a group.

Capacity is a count of active runs checked and claimed in one write transaction, so two processes
dispatching at once never start more workers than allowed. Workers dispatch again when they end,
which keeps the queue moving with no scheduler process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from core.artifacts import RunFiles
from core.jobs import BACKENDS
from core.store import ACTIVE, RunRecord, Store
from core.workspace import Workspace

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


@BACKENDS.register("local")
class LocalBackend:
    name = "local"

    def __init__(self, ws: Workspace, store: Store, max_concurrent: int | None = None) -> None:
        self.ws = ws
        self.store = store
        # one run per device by default: two runs sharing a CPU or GPU each go slower than one after the other;
        # a search with parallel trials raises it for the dispatches it makes (`core.search`)
        self.max_concurrent = max_concurrent or int(os.environ.get("GLASSBOX_MAX_CONCURRENT", "1"))

    def submit(self, run: RunRecord) -> None:
        self.dispatch()

    def dispatch(self) -> None:
        with self.store.transaction(immediate=True) as db:
            marks = ",".join("?" * len(ACTIVE))
            active = db.execute(
                f"SELECT COUNT(*) FROM runs WHERE backend = ? AND status IN ({marks})", (self.name, *ACTIVE)
            ).fetchone()[0]
            room = max(0, self.max_concurrent - active)
            chosen = [
                row["id"]
                for row in db.execute(
                    "SELECT id FROM runs WHERE backend = ? AND status = 'queued' ORDER BY created_at LIMIT ?",
                    (self.name, room),
                ).fetchall()
            ]
            for run_id in chosen:
                db.execute("UPDATE runs SET status = 'starting', heartbeat_at = ? WHERE id = ?",
                           (time.time(), run_id))
        for run_id in chosen:
            self._spawn(run_id)

    def _spawn(self, run_id: str) -> None:
        files = RunFiles(self.ws.run_dir(run_id))
        files.root.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GLASSBOX_HOME": str(self.ws.home), "PYTHONUNBUFFERED": "1"}
        try:
            with open(files.log, "ab") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "core.worker", run_id],
                    cwd=_PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            self.store.transition(run_id, ["starting"], status="failed", error=f"cannot start worker: {exc}",
                                  finished_at=time.time())
            return
        self.store.update_run(run_id, pid=process.pid, host=socket.gethostname())

    def status(self, run: RunRecord) -> str:
        if run.status == "queued":
            return "pending"
        return "running" if run.pid and _worker_alive(run.pid, run.id) else "gone"

    def cancel(self, run: RunRecord) -> None:
        if run.pid and _worker_alive(run.pid, run.id):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGKILL)
            _reap(run.pid)

    def logs(self, run: RunRecord, tail: int = 200) -> str:
        path = RunFiles(self.ws.run_dir(run.id)).log
        if not path.exists():
            return ""
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - 256 * 1024))
            lines = handle.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-tail:])


def _reap(pid: int) -> None:
    """Collect a finished child so it does not linger as a zombie that looks alive."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _worker_alive(pid: int, run_id: str) -> bool:
    _reap(pid)
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        # the pid may have been reused by an unrelated process after a reboot
        return run_id in process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
