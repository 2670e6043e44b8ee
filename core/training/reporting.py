"""How the training loop tells the world what it is doing, without knowing who listens.

`StoreReporter` writes to the SQLite store in batches (at most about once a second), so
reporting costs the hot loop nothing measurable.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from core.store import Store


class Reporter(Protocol):
    def log(self, message: str, level: str = "info") -> None: ...

    def phase(self, what: str, done: int, total: int) -> None:
        """Work before training steps can be counted (tokenising texts, computing a frozen backbone's
        features): `done` of `total` items of `what` ("encoding features"), called as items finish."""

    def started(self, *, total_epochs: int, steps_per_epoch: int, start_epoch: int, device: str) -> None: ...

    def step(self, *, epoch: int, step: int, loss: float, accuracy: float | None, samples: int) -> None: ...

    def epoch_end(self, *, epoch: int, step: int, metrics: dict[str, float], best: dict[str, float]) -> None:
        """`metrics` of the epoch just validated; `best`: the best epoch's so far, with `best_epoch`."""

    def should_stop(self) -> bool: ...


class StoreReporter:
    def __init__(self, store: Store, run_id: str, cancel: threading.Event, flush_every_s: float = 1.0) -> None:
        self.store = store
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

    def log(self, message: str, level: str = "info") -> None:
        """An event in the store, echoed to stdout: the worker's log then tells the run's story too."""
        self.store.add_event(self.run_id, message, level)
        print(f"[{time.strftime('%H:%M:%S')}] {level}: {message}", flush=True)

    def phase(self, what: str, done: int, total: int) -> None:
        """Stored as the run's `phase` ({what, done, total, eta_s}), at most about once a second and
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
        self.store.update_run(
            self.run_id, total_epochs=total_epochs, total_steps=self._total_steps, device=device,
            epoch=start_epoch, step=start_epoch * steps_per_epoch, phase=None,
        )

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

    def _flush(self) -> None:
        self.store.add_metrics(self.run_id, self._rows)
        if self._progress:
            self.store.update_run(self.run_id, **self._progress)
        self._rows = []
        self._last_flush = time.monotonic()
