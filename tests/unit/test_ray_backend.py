"""The Ray backend against a throwaway Ray head on loopback, started and stopped here in its own process group
(never `ray stop`, which would end every Ray process of the user): a run's reports reach the store while it
trains, a cancel stops its job, a restarted studio finds its job again by id, a job whose report stream breaks
leaves its run interrupted, and a GPU run on a cluster without a GPU is refused before it is submitted."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from core import datasets, runs
from core.config import TrainConfig
from core.errors import GlassboxError
from core.jobs import ray as ray_jobs
from core.store import RunRecord, Store
from core.training.reporting import REPORT_PREFIX
from core.workspace import Workspace
from tests.conftest import ROOT

pytest.importorskip("ray.job_submission", reason="the Ray backend needs ray[default]")
from ray.job_submission import JobSubmissionClient  # noqa: E402

pytestmark = pytest.mark.slow
T = TypeVar("T")


@dataclass
class Cluster:
    address: str
    client: Any
    ws: Workspace
    dataset_id: str


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _until(predicate: Callable[[], T], timeout: float, what: str, poll: float = 0.25) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    gcs, dashboard, client_server, agent = _free_ports(4)
    temp = tempfile.mkdtemp(prefix="gbray", dir="/tmp")  # Ray's socket paths must stay short
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
    head = subprocess.Popen(
        [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", f"--port={gcs}",
         f"--dashboard-port={dashboard}", f"--ray-client-server-port={client_server}",
         f"--dashboard-agent-listen-port={agent}", "--dashboard-host=127.0.0.1", "--node-ip-address=127.0.0.1",
         "--num-cpus=2", "--num-gpus=0", f"--temp-dir={temp}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    address = f"http://127.0.0.1:{dashboard}"
    home = tmp_path_factory.mktemp("ray-studio")
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in {"RAY_AUTH_MODE": "disabled", "GLASSBOX_BACKEND": "ray", "GLASSBOX_RAY_ADDRESS": address,
                               "GLASSBOX_HOME": str(home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}.items():
                patch.setenv(key, value)
            client = _until(lambda: _client(address), 90, "the Ray Jobs API answers", poll=0.5)
            ws = Workspace.from_env()
            store = Store(ws.db_path)
            dataset = datasets.add(ws, store, ROOT / "sample_data" / "penguins.csv", options={"target": "species"})
            yield Cluster(address, client, ws, dataset.id)
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=10)
        ray_jobs._CLIENTS.clear()
        shutil.rmtree(temp, ignore_errors=True)


def _client(address: str) -> Any:
    try:
        client = JobSubmissionClient(address)
        client.list_jobs()
        return client
    except Exception:
        return None


def _config(cluster: Cluster, **changes: Any) -> TrainConfig:
    base = TrainConfig(dataset_id=cluster.dataset_id, modality="tables", backbone="mlp", mode="full", weights="none",
                       epochs=2, batch_size=64, lr=2e-3, device="cpu", warmup_fraction=0.0, label_smoothing=0.0)
    return base.updated(**changes)


def _job_ended(cluster: Cluster, job_id: str) -> bool:
    return cluster.client.get_job_status(job_id).is_terminal()


def _reconciled(cluster: Cluster, store: Store, run_id: str) -> RunRecord:
    runs.reconcile(cluster.ws, store)
    return store.get_run(run_id)


def test_a_run_trains_as_a_ray_job_shows_progress_survives_a_studio_restart_and_cancels(cluster: Cluster) -> None:
    studio = Store(cluster.ws.db_path)
    run = runs.create(cluster.ws, studio, _config(cluster, epochs=1000))
    assert (run.backend, run.status, run.job_id, run.pid) == ("ray", "starting", run.id, None)
    live = _until(lambda: (r := _reconciled(cluster, studio, run.id)).status == "running" and r.epoch >= 1 and r,
                  120, "the first epoch's reports reach the store")
    assert (live.host, live.device, live.total_epochs) == (socket.gethostname(), "cpu, fp32", 1000)
    assert {"val_accuracy", "best_epoch"} <= set(live.metrics)
    assert [e["message"] for e in studio.events(run.id)][0] == f"submitted to Ray at {cluster.address} as job {run.id}"

    # the studio restarts: a new process finds the job by the run's job id and reads on from report_offset
    ray_jobs._CLIENTS.clear()
    restarted = Store(cluster.ws.db_path)
    later = _until(lambda: (r := _reconciled(cluster, restarted, run.id)).epoch > live.epoch and r, 60,
                   "reports keep coming after the restart")
    assert later.status == "running" and later.report_offset > live.report_offset
    steps = [m["step"] for m in restarted.metrics(run.id, ["train_loss"])]
    assert steps == list(range(1, len(steps) + 1))  # each step once: no report read twice
    val_epochs = [m["epoch"] for m in restarted.metrics(run.id, ["val_loss"])]
    assert val_epochs == list(range(1, len(val_epochs) + 1))

    runs.cancel(cluster.ws, restarted, run.id)
    ended = _until(lambda: (r := _reconciled(cluster, restarted, run.id)).is_terminal and r, 30, "the run ends")
    assert ended.status == "cancelled" and ended.error is None and 1 <= ended.epoch < 1000, restarted.events(run.id)
    assert {"val_accuracy", "best_epoch"} <= set(ended.metrics)  # the best epoch's figures stay
    _until(lambda: _job_ended(cluster, run.id), 30, "the job ends")
    assert cluster.client.get_job_status(run.id).value == "STOPPED"
    shown = ray_jobs.RayBackend(cluster.ws, restarted).logs(ended)
    assert REPORT_PREFIX not in shown and "worker " in shown


def _fake_job(cluster: Cluster, store: Store, run_id: str, then: str) -> None:
    """A run whose job claims it, as the worker does, then runs `then` (Python) instead of training: what a
    broken report stream looks like."""
    store.add_run(RunRecord(id=run_id, dataset_id=cluster.dataset_id, modality="tables", backbone="mlp",
                            status="starting", config={}, backend="ray", created_at=time.time(), job_id=run_id,
                            heartbeat_at=time.time()))
    claim = REPORT_PREFIX + json.dumps({"kind": "status", "payload": {"status": "running", "host": "h",
                                                                      "ts": time.time()}})
    script = f"import time; print({claim!r}); {then}"
    cluster.client.submit_job(entrypoint=f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}",
                              submission_id=run_id, runtime_env={"env_vars": {"PYTHONUNBUFFERED": "1"}})


def test_a_job_whose_report_stream_breaks_ends_interrupted(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(cluster.ws.db_path)
    # one job exits without a final status line; another stays up but stops reporting
    _fake_job(cluster, store, "run-fake-exited", "print('segfault, say')")
    _fake_job(cluster, store, "run-fake-silent", "time.sleep(120)")
    _until(lambda: _job_ended(cluster, "run-fake-exited"), 60, "the exiting job ends")
    exited = _reconciled(cluster, store, "run-fake-exited")
    assert exited.status == "interrupted" and exited.error == runs._GONE
    said = [e["message"] for e in store.events("run-fake-exited")]
    assert "the Ray job ended (SUCCEEDED) without saying how the run ended; its log ends: segfault, say" in said
    # the silent job has claimed its run: it is running, while its claim is younger than HEARTBEAT_TIMEOUT_S
    _until(lambda: _reconciled(cluster, store, "run-fake-silent").status == "running", 30, "the silent job claims")

    monkeypatch.setattr(ray_jobs, "HEARTBEAT_TIMEOUT_S", 3.0)
    silent = _until(lambda: (r := _reconciled(cluster, store, "run-fake-silent")).status == "interrupted" and r,
                    30, "the silent job's run is settled")
    assert any(e["message"].startswith("no report from the Ray job for ") for e in store.events(silent.id))
    _until(lambda: _job_ended(cluster, "run-fake-silent"), 30, "the silent job is stopped")


def test_a_gpu_run_on_a_cluster_without_gpus_is_refused_before_it_is_submitted(cluster: Cluster) -> None:
    store = Store(cluster.ws.db_path)
    with pytest.raises(GlassboxError) as refused:
        runs.create(cluster.ws, store, _config(cluster, device="cuda"))
    assert str(refused.value) == (f"the Ray cluster at {cluster.address} has no GPU: choose the device cpu or auto, "
                                  "or a cluster with a GPU")
    (run,) = [r for r in store.list_runs() if r.config.get("device") == "cuda"]
    assert (run.status, run.error, run.job_id) == ("failed", str(refused.value), None)
    assert run.id not in {job.submission_id for job in cluster.client.list_jobs()}
