"""Job backends: where a run's worker executes. The local backend starts one process per run on this
machine; a cluster backend (Ray) starts the same entry point, `python -m core.worker RUN_ID`, there.

A backend only moves processes around: the store stays the one source of truth for a run's status,
written by the worker itself.
"""

from __future__ import annotations

from typing import Protocol

from core.registry import Registry
from core.store import RunRecord, Store
from core.workspace import Workspace


class JobBackend(Protocol):
    name: str

    def submit(self, run: RunRecord) -> None:
        """Queue a run that the store already holds as `queued`; start it when there is room."""

    def status(self, run: RunRecord) -> str:
        """The backend's own view of the run's process: "pending", "running" or "gone"."""

    def cancel(self, run: RunRecord) -> None:
        """Force-stop the run's process (the fallback after a cooperative cancel timed out)."""

    def logs(self, run: RunRecord, tail: int = 200) -> str:
        """The last lines the worker printed (stdout and stderr)."""

    def dispatch(self) -> None:
        """Start queued runs while there is capacity; safe to call from any process, at any time."""


BACKENDS: Registry[type] = Registry("job backend")


def backend(name: str, ws: Workspace, store: Store) -> JobBackend:
    from core.jobs import local  # noqa: F401  (registers itself)

    return BACKENDS.get(name)(ws, store)
