"""The PyTorch side of a bundle: the run's best weights (`model.safetensors`) and the `torch.export` program
(`model.pt2`, `torch.export.save` of the ExportedProgram that `core.export.onnx` traced and checked).

TorchScript is not offered: it is deprecated upstream in favour of `torch.export`
(https://pytorch.org/docs/stable/jit.html). A `model.pt2` loads with `torch.export.load(path).module()` and takes
the same named inputs as `model.onnx`, positionally, as torch tensors (see the model card).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import GlassboxError

if TYPE_CHECKING:
    import torch

    from core.export import ExportJob

__all__ = ["load", "write", "write_weights"]

PROGRAM = "model.pt2"
WEIGHTS = "model.safetensors"


def write(job: ExportJob) -> None:
    """The "torch_export" format: `model.pt2` in the bundle, from `job.shared["program"]` ("onnx" runs first)."""
    import torch

    program = job.shared.get("program")
    if program is None:
        raise GlassboxError("the torch.export program is written after the ONNX export, which did not run")
    torch.export.save(program, str(job.folder / PROGRAM))


def write_weights(job: ExportJob) -> None:
    """The "safetensors" format: the run's best-epoch weights, as training saved them."""
    if not job.files.weights.exists():
        raise GlassboxError("this run has no trained weights yet")
    shutil.copyfile(job.files.weights, job.folder / WEIGHTS)


def load(path: Path) -> torch.nn.Module:
    """The module of a saved `model.pt2` (`torch.export.load(path).module()`), callable on the graph's inputs."""
    import torch

    return torch.export.load(str(path)).module()
