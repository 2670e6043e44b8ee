"""Export a finished run as one stand-alone bundle (a zip): its weights, ONNX model, torch.export program, the
fitted preprocessing, a model card and a torch-free `predict.py`.

The export formats are a registry (`FORMATS`): each names the bundle files it writes and a `write(job)` that
writes them into the bundle folder and returns what it checked (`ExportJob.checks`). "onnx" runs first, since
"torch_export" saves the program it traced and the quantisations ("int8", "fp16", `core.export.quantize`)
compress the ONNX model it wrote. A new format is one module with a `write(job)` and one entry here.

`export_run` (`core.export.bundle`) is the public entry point; this module stays light (no torch at import),
because `predict --bundle` imports `core.export.standalone` through it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from core.artifacts import RunFiles
    from core.config import TrainConfig
    from core.export.feeds import Feeds
    from core.store import Store
    from core.tasks import Task
    from core.workspace import Workspace

__all__ = ["FORMATS", "QUANTISATIONS", "ExportFormat", "ExportJob", "export_run"]


@dataclass
class ExportJob:
    """Everything a format's `write` reads, and where it leaves what it made: the bundle `folder` (flat), the
    run's files, config, model (eval mode, CPU, as `core.artifacts.load_model` rebuilt it), task and task state,
    the validation feeds (`core.export.feeds.Feeds`, real items read as validation read them), a `work` folder
    outside the bundle for intermediate files, `checks` (figures for bundle.json and the CLI's JSON), `notes`
    (lines for the model card) and `shared` (objects one format hands the next: the ExportedProgram, the fp32
    ONNX path). `train_feeds` gives training items (read like validation's) on demand, for calibration."""

    folder: Path
    work: Path
    files: RunFiles
    config: TrainConfig
    model: nn.Module
    task: Task
    state: dict[str, Any]
    feeds: Feeds
    train_feeds: Callable[[int], Feeds]
    test_feeds: Feeds | None = None
    quantize: str | None = None
    checks: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportFormat:
    """One export format: its registry `name`, a `title` for people, the bundle `files` it writes, whether it
    is a quantisation of the ONNX model (then the fp32 files it replaces are left out of the bundle), and where
    its writer lives: `function(job: ExportJob) -> None` in `module`, imported when used, so torch and onnx load
    only then."""

    name: str
    title: str
    files: tuple[str, ...]
    quantisation: bool
    module: str
    function: str = "write"

    def write(self, job: ExportJob) -> None:
        writer: Callable[[ExportJob], None] = getattr(importlib.import_module(self.module), self.function)
        writer(job)


FORMATS: Registry[ExportFormat] = Registry("export format")
FORMATS.register("onnx")(ExportFormat("onnx", "ONNX (opset 18, torch.onnx dynamo exporter)", ("model.onnx",), False,
                                      "core.export.onnx"))
FORMATS.register("torch_export")(ExportFormat("torch_export", "torch.export program", ("model.pt2",), False,
                                              "core.export.program"))
FORMATS.register("safetensors")(ExportFormat("safetensors", "PyTorch weights (safetensors)", ("model.safetensors",),
                                             False, "core.export.program", "write_weights"))
FORMATS.register("int8")(ExportFormat("int8", "int8 ONNX (onnxruntime quantisation)", ("model.onnx",), True,
                                      "core.export.bundle", "write_quantised"))
FORMATS.register("fp16")(ExportFormat("fp16", "float16 ONNX", ("model.onnx",), True, "core.export.bundle",
                                      "write_quantised"))

QUANTISATIONS = tuple(name for name in FORMATS if FORMATS.get(name).quantisation)
"""The `--quantize` choices: "int8", "fp16"."""


def export_run(ws: Workspace, store: Store, run_id: str, out: Path, quantize: str | None = None) -> dict[str, Any]:
    """See `core.export.bundle.export_run` (imported here on use: it loads torch)."""
    from core.export.bundle import export_run as run_export

    return run_export(ws, store, run_id, out, quantize)
