"""The Ray backend: each run is a Ray job (Ray's Jobs API) whose entrypoint is the same worker the local
backend starts, `python -m core.worker RUN_ID`, with `GLASSBOX_REPORT=jsonl`.

The job may run on another host, where the studio's SQLite store cannot be written, so the worker prints its
reports as lines in the job's log and this backend reads them back into the store (`sync`, called by
`runs.reconcile` whenever runs are listed or awaited), from the run's `report_offset` on: each part of the log
is applied once, even with several studio processes reading. The job's submission id is kept as the run's
`job_id`, so a restarted studio finds its jobs again by id. A job that ends without reporting how its run ended,
or stops reporting for `heartbeat_timeout_s`, leaves its run `interrupted` (resumable), never running forever.

Files: the datasets' and runs' folders are in the workspace's storage (`GLASSBOX_STORAGE`), which the cluster
must reach at the same path; the project's code is taken from this checkout through PYTHONPATH (nothing is
uploaded) and run by this interpreter, so the cluster's hosts need both at the same paths, as on one machine or
a shared filesystem. The Ray library is imported only when a Ray run is submitted or looked at.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from core import storage
from core.errors import GlassboxError
from core.jobs import BACKENDS, ray_address
from core.store import ACTIVE, RunRecord, Store
from core.training.reporting import apply_report, read_reports, without_reports
from core.workspace import Workspace

_PROJECT_ROOT = Path(__file__).resolve().parents[2]
# the worker reports a heartbeat every 5 s: twelve missed in a row is a job that has stopped reporting
HEARTBEAT_TIMEOUT_S = 60.0
ENTRYPOINT_CPUS = 1.0
# settings of the studio's environment the worker needs too (a job's environment is the Ray node's, not ours)
_PASSED_ENV = ("HF_HUB_OFFLINE", "HF_HOME", "TORCH_HOME", "OMP_NUM_THREADS", "GLASSBOX_DEBUG")
_CLIENTS: dict[str, Any] = {}  # one Jobs API client per address: creating one costs a round trip
_REGISTRATION_S = 15.0  # how long a cluster reporting no CPU yet is given to register its nodes' resources


@BACKENDS.register("ray")
class RayBackend:
    """Runs as Ray jobs on the cluster at `address` (the dashboard's http address; default GLASSBOX_RAY_ADDRESS);
    a running job silent for `heartbeat_timeout_s` (default `HEARTBEAT_TIMEOUT_S`) is stopped. `max_concurrent`
    is accepted for the backend interface and ignored: the cluster's resources decide how many jobs run at once."""

    name = "ray"

    def __init__(self, ws: Workspace, store: Store, *, address: str | None = None,
                 heartbeat_timeout_s: float | None = None, max_concurrent: int | None = None) -> None:
        self.ws = ws
        self.store = store
        self.address = address or ray_address()
        self.heartbeat_timeout_s = heartbeat_timeout_s or HEARTBEAT_TIMEOUT_S

    # submitting -----------------------------------------------------------------------------------
    def submit(self, run: RunRecord) -> None:
        """Submit a queued run as a Ray job. GlassboxError (and the run marked failed, with the reason) when
        the cluster cannot be reached or lacks what the run's device needs (a GPU run on a cluster without
        GPUs would wait forever)."""
        try:
            self._submit(run)
        except GlassboxError as exc:
            if self.store.transition(run.id, ["queued", "starting"], status="failed", error=str(exc),
                                     finished_at=time.time()):
                self.store.add_event(run.id, f"not submitted to Ray: {exc}", "error")
            raise

    def dispatch(self) -> None:
        """Submit every queued Ray run (the cluster keeps its own queue); a run that cannot be submitted is
        marked failed with the reason."""
        for run in reversed(self.store.list_runs(["queued"])):
            if run.backend == self.name:
                with contextlib.suppress(GlassboxError):
                    self.submit(run)

    def _submit(self, run: RunRecord) -> None:
        gpus = self._gpus_for(run)
        client = self._client()
        storage.write_dataset(self.ws.run_dir(run.id), self.store.get_dataset(run.dataset_id))
        job_id = _next_job_id(run)
        if not self.store.transition(run.id, ["queued"], status="starting", job_id=job_id, report_offset=0,
                                     heartbeat_at=time.time(), pid=None, host=None):
            return  # another studio process submitted it first
        env = {
            **{key: os.environ[key] for key in _PASSED_ENV if key in os.environ},
            "GLASSBOX_HOME": str(self.ws.home),
            "GLASSBOX_STORAGE": str(self.ws.files_root),
            "GLASSBOX_REPORT": "jsonl",
            "PYTHONPATH": str(_PROJECT_ROOT),
            "PYTHONUNBUFFERED": "1",
        }
        try:
            client.submit_job(
                entrypoint=f"{shlex.quote(sys.executable)} -m core.worker {shlex.quote(run.id)}",
                submission_id=job_id,
                runtime_env={"env_vars": env},
                metadata={"glassbox_run": run.id},
                entrypoint_num_cpus=ENTRYPOINT_CPUS,
                entrypoint_num_gpus=gpus,
            )
        except Exception as exc:  # the SDK raises RuntimeError or a requests error: the user gets one line
            raise GlassboxError(f"the Ray cluster at {self.address} refused the job: {_one_line(exc)}") from None
        self.store.add_event(run.id, f"submitted to Ray at {self.address} as job {job_id}"
                                     + (f" ({gpus:g} GPU)" if gpus else ""))

    def _gpus_for(self, run: RunRecord) -> float:
        """GPUs the job asks for: 1 for device cuda (refused when no node has one), 1 for auto when some node
        has one, else 0; refused too when no node has a CPU for the entrypoint."""
        most = self.largest_node()
        deadline = time.monotonic() + _REGISTRATION_S
        # a node that has just joined is listed before its resources are: give it a moment before refusing
        while most.get("CPU", 0.0) < ENTRYPOINT_CPUS and time.monotonic() < deadline:
            time.sleep(1.0)
            most = self.largest_node()
        if most.get("CPU", 0.0) < ENTRYPOINT_CPUS:
            raise GlassboxError(f"the Ray cluster at {self.address} has no node with a CPU for jobs (its nodes "
                                "offer none to Ray)")
        device = run.config.get("device", "auto")
        has_gpu = most.get("GPU", 0.0) >= 1
        if device == "cuda" and not has_gpu:
            raise GlassboxError(f"the Ray cluster at {self.address} has no GPU: choose the device cpu or auto, "
                                "or a cluster with a GPU")
        return 1.0 if device in ("cuda", "auto") and has_gpu else 0.0

    def largest_node(self) -> dict[str, float]:
        """The most of each resource (CPU, GPU, memory in bytes) one alive node of the cluster has in all,
        through Ray's state API: a job runs on one node, so that is the most it can be given."""
        try:
            from ray.util.state import list_nodes

            nodes = list_nodes(address=self.address, filters=[("state", "=", "ALIVE")], timeout=10)
        except ImportError:
            raise _no_ray() from None
        except Exception as exc:
            raise GlassboxError(f"cannot reach the Ray cluster at {self.address}: {_one_line(exc)}") from None
        most: dict[str, float] = {}
        for node in nodes:
            for name, amount in (node.resources_total or {}).items():
                most[name] = max(most.get(name, 0.0), float(amount))
        return most

    # watching -------------------------------------------------------------------------------------
    def status(self, run: RunRecord) -> str:
        """"pending" (queued, or waiting for the cluster's resources), "running", or "gone" (the job ended or
        stopped reporting; `sync` has read what it reported). A cluster that cannot be reached counts as
        running: its jobs may well be, and the next look decides."""
        if run.status == "queued":
            return "pending"
        if not run.job_id:
            return "gone"
        try:
            return self.sync(run)
        except GlassboxError:
            return "running"

    def sync(self, run: RunRecord) -> str:
        """Read the job's new report lines into the store, stop the job when its run's cancel was requested
        or it stopped reporting, and say what became of it (as `status`). GlassboxError when the cluster
        cannot be reached."""
        client = self._client()
        try:
            state = str(client.get_job_status(run.job_id).value)
        except Exception as exc:
            if not _unknown_job(exc):
                raise GlassboxError(f"cannot reach the Ray cluster at {self.address}: {_one_line(exc)}") from None
            self.store.add_event(run.id, f"the Ray cluster no longer knows job {run.job_id}", "warning")
            return "gone"
        terminal = state in ("SUCCEEDED", "FAILED", "STOPPED")
        log = self._read_reports(run)
        run = self.store.get_run(run.id)
        if not run.is_active:
            return "gone" if terminal else "running"
        if terminal:
            if run.cancel_requested_at is not None:
                if self.store.transition(run.id, ACTIVE, status="cancelled", finished_at=time.time()):
                    self.store.add_event(run.id, "cancelled: the job was stopped")
                return "gone"
            tail = next(reversed([line for line in without_reports(log) if line.strip()]), "")
            self.store.add_event(run.id, f"the Ray job ended ({state}) without saying how the run ended"
                                         + (f"; its log ends: {tail}" if tail else ""), "warning")
            return "gone"
        if run.cancel_requested_at is not None:
            self.cancel(run)  # SIGTERM: the worker reports `interrupted`, which a requested cancel reads as such
            return "running"
        silent = time.time() - (run.heartbeat_at or 0.0)
        if run.status == "running" and silent > self.heartbeat_timeout_s:
            self.cancel(run)
            self.store.add_event(run.id, f"no report from the Ray job for {silent:.0f} s: stopped it", "warning")
            return "gone"
        return "pending" if state == "PENDING" else "running"

    def _read_reports(self, run: RunRecord) -> str:
        """Apply the report lines past `report_offset` and advance it; returns the whole log read. The offset
        moves first (compare-and-set), so two readers never apply the same lines twice."""
        try:
            log = self._client().get_job_logs(run.job_id)
        except Exception as exc:
            raise GlassboxError(f"cannot read the logs of Ray job {run.job_id}: {_one_line(exc)}") from None
        start = run.report_offset
        reports, consumed = read_reports(log[start:])
        if not consumed or not self.store.advance_report_offset(run.id, start, start + consumed):
            return log
        for report in reports:
            payload = report.payload
            if report.kind == "status" and payload.get("status") == "interrupted":
                current = self.store.get_run(run.id)
                if current.cancel_requested_at is not None:  # the SIGTERM was our stop_job for a cancel
                    payload = {**payload, "status": "cancelled", "error": None}
            apply_report(self.store, run.id, report.kind, payload)
        return log

    def cancel(self, run: RunRecord) -> None:
        """Stop the run's job (Ray sends SIGTERM, then SIGKILL after a grace period)."""
        if run.job_id:
            with contextlib.suppress(Exception):
                self._client().stop_job(run.job_id)

    def logs(self, run: RunRecord, tail: int = 200) -> str:
        """The last `tail` lines the worker printed, without the report lines; "" when there is no job (yet)."""
        if not run.job_id:
            return ""
        try:
            log = self._client().get_job_logs(run.job_id)
        except Exception as exc:
            return f"(the logs of Ray job {run.job_id} cannot be read: {_one_line(exc)})"
        return "\n".join(list(without_reports(log))[-tail:])

    def _client(self) -> Any:
        if not self.address:
            raise GlassboxError("the Ray backend needs GLASSBOX_RAY_ADDRESS (the Ray dashboard, "
                                "e.g. http://127.0.0.1:8265)")
        if self.address not in _CLIENTS:
            try:
                from ray.job_submission import JobSubmissionClient
            except ImportError:
                raise _no_ray() from None
            try:
                _CLIENTS[self.address] = JobSubmissionClient(self.address)
            except Exception as exc:
                raise GlassboxError(f"cannot reach the Ray cluster at {self.address}: {_one_line(exc)}") from None
        return _CLIENTS[self.address]


def _next_job_id(run: RunRecord) -> str:
    """The run's id for its first job; "<run id>-2", "-3", ... for a resumed run (Ray refuses a used id)."""
    if not run.job_id:
        return run.id
    attempt = run.job_id.removeprefix(run.id).lstrip("-")
    return f"{run.id}-{int(attempt) + 1 if attempt.isdigit() else 2}"


def _unknown_job(exc: Exception) -> bool:
    text = str(exc).lower()
    return "does not exist" in text or "not found" in text or "404" in text


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


def _no_ray() -> GlassboxError:
    return GlassboxError('the Ray backend needs Ray: pip install "ray[default]==2.60.0"')
