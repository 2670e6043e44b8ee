"""Job backends: where a run's worker executes. The local backend starts one process per run on this
machine; a cluster backend (Ray) starts the same entry point, `python -m core.worker RUN_ID`, there.

A backend only moves processes around: the store stays the one source of truth for a run's status,
written by the worker itself (local) or, from the worker's report lines, by the backend (Ray).

Which backend new runs use is one setting, read here only: `GLASSBOX_BACKEND` (local or ray, default local),
with `GLASSBOX_RAY_ADDRESS` (the Ray dashboard's address, http://host:8265) for Ray.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from core.errors import GlassboxError
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


@dataclass(frozen=True)
class BackendSettings:
    """The job backend new runs go to. `name`: a `BACKENDS` name; `ray_address`: the Ray dashboard's
    http address (for the Jobs API), required when `name` is "ray"."""

    name: str = "local"
    ray_address: str | None = None

    @classmethod
    def from_env(cls) -> BackendSettings:
        """From GLASSBOX_BACKEND and GLASSBOX_RAY_ADDRESS; GlassboxError for an unknown backend or Ray
        without an address."""
        _register_all()
        name = os.environ.get("GLASSBOX_BACKEND", "local").strip() or "local"
        BACKENDS.get(name)  # an unknown name fails here, naming the known ones
        address = ray_address()
        if name == "ray" and not address:
            raise GlassboxError("GLASSBOX_BACKEND=ray needs GLASSBOX_RAY_ADDRESS (the Ray dashboard, "
                                "e.g. http://127.0.0.1:8265)")
        return cls(name, address)

    def describe(self) -> str:
        """One line for the sidebar: "local" or "ray (http://host:8265)"."""
        return f"{self.name} ({self.ray_address})" if self.ray_address and self.name == "ray" else self.name


def ray_address() -> str | None:
    """GLASSBOX_RAY_ADDRESS without a trailing slash; None when unset."""
    return os.environ.get("GLASSBOX_RAY_ADDRESS", "").strip().rstrip("/") or None


def configured() -> str:
    """The name of the backend new runs go to (`BackendSettings.from_env().name`)."""
    return BackendSettings.from_env().name


def _register_all() -> None:
    from core.jobs import local, ray  # noqa: F401  (each registers itself; ray imports Ray only when used)


def backend(name: str, ws: Workspace, store: Store, **options: object) -> JobBackend:
    """The backend `name` for this workspace; `options` go to its constructor (e.g. `max_concurrent`)."""
    _register_all()
    return BACKENDS.get(name)(ws, store, **options)
