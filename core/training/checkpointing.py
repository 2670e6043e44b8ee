"""Per-epoch checkpoints: everything needed to continue a run exactly where it stopped.

Files are written to a temporary name and renamed, so a crash mid-write leaves the previous
checkpoint intact. Loading uses `weights_only=True`: a checkpoint is data, never code.
"""

from __future__ import annotations

import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file


@dataclass
class Progress:
    epoch: int = 0  # epochs completed
    global_step: int = 0
    best_metric: float = float("-inf")
    best_epoch: int = 0
    epochs_without_improvement: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def capture_rng(loader_generator: torch.Generator) -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "loader": loader_generator.get_state(),
        "python": _plain(random.getstate()),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], loader_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    loader_generator.set_state(state["loader"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
         scaler: torch.amp.GradScaler | None, progress: Progress, rng: dict[str, Any]) -> None:
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "progress": asdict(progress),
        "rng": rng,
    }
    _atomic(path, lambda tmp: _torch_save(payload, tmp))


def load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def restore(payload: dict[str, Any], *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: Any, scaler: torch.amp.GradScaler | None, loader_generator: torch.Generator) -> Progress:
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    if scaler is not None and payload["scaler"] is not None:
        scaler.load_state_dict(payload["scaler"])
    restore_rng(payload["rng"], loader_generator)
    return Progress(**payload["progress"])


def save_weights(path: Path, model: torch.nn.Module) -> None:
    """The deliverable model: plain tensors in safetensors, loadable without unpickling anything."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    _atomic(path, lambda tmp: save_file(tensors, str(tmp)))


def _atomic(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a half-written file would only hold the space a retry needs
        raise
    os.replace(tmp, path)


def _torch_save(payload: dict[str, Any], path: Path) -> None:
    """torch.save through a Python file, so a full disk keeps its OSError (ENOSPC) as the cause of
    torch's "unexpected pos" RuntimeError instead of vanishing inside the C++ writer."""
    with open(path, "wb") as handle:
        torch.save(payload, handle)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
