"""How the training loop tells the world what it is doing, without knowing who listens.

`StoreReporter` writes to the SQLite store in batches (at most about once a second), so
reporting costs the hot loop nothing measurable.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from core.store import Store


class Reporter(Protocol):
    def log(self, message: str, level: str = "info") -> None: ...

    def started(self, *, total_epochs: int, steps_per_epoch: int, start_epoch: int, device: str) -> None: ...

    def step(self, *, epoch: int, step: int, loss: float, accuracy: float, samples: int) -> None: ...

    def epoch_end(self, *, epoch: int, step: int, metrics: dict[str, float]) -> None: ...

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
        self._progress: dict[str, float | int] = {}

    def log(self, message: str, level: str = "info") -> None:
        self.store.add_event(self.run_id, message, level)

    def started(self, *, total_epochs: int, steps_per_epoch: int, start_epoch: int, device: str) -> None:
        self._steps_per_epoch = steps_per_epoch
        self._total_steps = total_epochs * steps_per_epoch
        self._t0 = time.monotonic()
        self.store.update_run(
            self.run_id, total_epochs=total_epochs, total_steps=self._total_steps, device=device,
            epoch=start_epoch, step=start_epoch * steps_per_epoch,
        )

    def step(self, *, epoch: int, step: int, loss: float, accuracy: float, samples: int) -> None:
        if self._first_step is None:
            self._first_step = step - 1
        self._samples += samples
        self._rows += [(epoch, step, "train_loss", loss), (epoch, step, "train_accuracy", accuracy)]
        elapsed = time.monotonic() - self._t0
        done = step - self._first_step
        self._progress = {
            "step": step,
            "samples_per_s": self._samples / elapsed if elapsed > 0 else 0.0,
            "eta_s": elapsed / done * (self._total_steps - step) if done else 0.0,
        }
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self._flush()

    def epoch_end(self, *, epoch: int, step: int, metrics: dict[str, float]) -> None:
        self._rows += [(epoch, step, name, value) for name, value in metrics.items()]
        self._progress["epoch"] = epoch
        self._flush()

    def should_stop(self) -> bool:
        return self.cancel.is_set()

    def _flush(self) -> None:
        self.store.add_metrics(self.run_id, self._rows)
        if self._progress:
            self.store.update_run(self.run_id, **self._progress)
        self._rows = []
        self._last_flush = time.monotonic()
