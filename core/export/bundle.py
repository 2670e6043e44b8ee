"""`export_run`: a finished run as one zip that stands alone (layout: ../shared issue 12 contract).

The bundle holds `model.onnx` (checked against PyTorch on the run's validation items), `model.safetensors` and
`model.pt2` (left out of a quantised bundle, whose `model.onnx` is the compressed one), the run's `config.json`,
`target.json`, `labels.json`, `inputs.json` and `training_stats.json` when it has them, `preprocessing.json` (and
a text run's `tokenizer/`, `core.export.preprocessing`), `bundle.json` (what is inside and the checks),
`MODEL_CARD.md` (`core.export.card`), `predict.py` (a verbatim copy of `core.export.standalone`) and
`requirements.txt` (exact pins of what predict.py needs, as installed here).

The zip is written beside its destination under a temporary name and renamed into place only when complete,
so an export that fails leaves no file, and a half-written one is never taken for a bundle.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import GlassboxError
from core.export import FORMATS, QUANTISATIONS, ExportJob

if TYPE_CHECKING:
    from core.store import Store
    from core.workspace import Workspace

__all__ = ["BUNDLE_FORMAT", "export_run", "write_quantised"]

BUNDLE_FORMAT = 1
_RUN_FILES = ("config", "target", "labels", "inputs", "training_stats")  # RunFiles attributes copied as they are
_PLAIN_FORMATS = ("onnx", "torch_export", "safetensors")  # in this order: torch_export saves what onnx traced
_CALIBRATION_ITEMS = 64  # training items a static int8 quantisation calibrates its ranges on
_STANDALONE = Path(__file__).with_name("standalone.py")


def export_run(ws: Workspace, store: Store, run_id: str, out: Path, quantize: str | None = None) -> dict[str, Any]:
    """Export completed run `run_id` to the bundle zip `out` (its folder is created), quantised when `quantize` is
    "int8" or "fp16". Returns the CLI's JSON: {"bundle": path, "run_id", "quantize", "files": {name: bytes},
    "onnx_max_abs_diff", "top1_agreement" (classifiers), and with `quantize`: "quantize_method", the task's
    shown metrics on validation before and after (`val_accuracy_before`, `val_accuracy_after`, ... or
    `val_mae_before`...; `test_` ones too when the run has a test split), "latency_ms_before", "latency_ms_after"
    (median per item, batch 1, one CPU thread), "size_before", "size_after" (bytes of the ONNX model)}.

    Raises GlassboxError when the run is not completed, its dataset is gone, the quantisation is unknown, or an
    export check fails (ONNX outputs not finite, top-1 agreement below `core.export.onnx.MIN_AGREEMENT`)."""
    import torch

    from core import data, tasks
    from core.artifacts import RunFiles, load_model, target_state
    from core.export.feeds import read_feeds

    if quantize is not None and quantize not in QUANTISATIONS:
        raise GlassboxError(f"unknown quantisation {quantize!r} (known: {', '.join(QUANTISATIONS)})")
    run = store.get_run(run_id)
    if run.status != "completed":
        raise GlassboxError(f"run {run.id} is {run.status}: only a completed run can be exported")
    files = RunFiles(ws.run_dir(run.id))
    out = Path(out)
    with torch.no_grad():
        model, config, _ = load_model(files, ws.cache_dir)
    task = tasks.of_run(config)
    dataset = store.get_dataset(config.dataset_id) if _has_dataset(store, config.dataset_id) else None
    if dataset is None:
        raise GlassboxError(f"the run's dataset {config.dataset_id} was deleted: its validation items are needed to "
                            "check the export")
    dataset_dir = ws.dataset_dir(dataset.id)
    split = data.split_for(data.modality(config.modality), dataset_dir, dataset.info, config)
    feeds = read_feeds(ws, store, config, model, "val")
    test_feeds = read_feeds(ws, store, config, model, "test") if quantize and split.test else None

    with tempfile.TemporaryDirectory(prefix="glassbox-export-") as tmp:
        folder, work = Path(tmp) / "bundle", Path(tmp) / "work"
        folder.mkdir()
        work.mkdir()
        job = ExportJob(folder=folder, work=work, files=files, config=config, model=model, task=task,
                        state=target_state(files), feeds=feeds,
                        train_feeds=lambda n: read_feeds(ws, store, config, model, "train", n),
                        test_feeds=test_feeds, quantize=quantize)
        for name in (("onnx", quantize) if quantize else _PLAIN_FORMATS):
            FORMATS.get(name).write(job)
        _copy_run_files(files, folder)
        from core.export import preprocessing

        preprocessing.write(folder, files, model, config)
        shutil.copyfile(_STANDALONE, folder / "predict.py")
        (folder / "requirements.txt").write_text(_requirements(folder))
        about = _about(job, run.id)
        (folder / "bundle.json").write_text(json.dumps(about, indent=1))
        (folder / "MODEL_CARD.md").write_text(_card(job, run, dataset, split), encoding="utf-8")
        listed = _zip(folder, out)
    return {"bundle": str(out), "run_id": run.id, "quantize": quantize, "files": listed,
            **{k: v for k, v in job.checks.items() if k not in ("onnx_shapes", "onnx_inputs", "opset")}}


def write_quantised(job: ExportJob) -> None:
    """The "int8" and "fp16" formats (`core.export.quantize`): the fp32 ONNX model the "onnx" format left in the
    work folder, compressed into the bundle's `model.onnx`, measured on validation (and test) before and after."""
    from core.export import quantize

    kind = job.quantize or ""
    fp32: Path = job.shared["onnx_fp32"]
    target = job.folder / "model.onnx"
    calibration = job.train_feeds(_CALIBRATION_ITEMS).batches if kind == "int8" else None
    job.checks["quantize_method"] = quantize.quantize(fp32, target, kind, calibration)
    parts = [("val", job.feeds)] + ([("test", job.test_feeds)] if job.test_feeds is not None else [])
    for part, feeds in parts:
        before = quantize.measure(fp32, feeds, job.task, job.state)
        after = quantize.measure(target, feeds, job.task, job.state)
        for metric in job.task.metrics_shown:
            if metric.key in before["metrics"]:
                job.checks[f"{part}_{metric.key}_before"] = before["metrics"][metric.key]
                job.checks[f"{part}_{metric.key}_after"] = after["metrics"][metric.key]
        if part == "val":
            job.checks.update(latency_ms_before=before["latency_ms"], latency_ms_after=after["latency_ms"],
                              size_before=before["size"], size_after=after["size"])


def _has_dataset(store: Store, dataset_id: str) -> bool:
    try:
        store.get_dataset(dataset_id)
    except GlassboxError:
        return False
    return True


def _copy_run_files(files: Any, folder: Path) -> None:
    for attribute in _RUN_FILES:
        path: Path = getattr(files, attribute)
        if path.exists():
            shutil.copyfile(path, folder / path.name)


def _requirements(folder: Path) -> str:
    """Exact pins of what predict.py imports, as installed here; tokenizers only for a bundle with a tokenizer."""
    from core.export.preprocessing import TOKENIZER_FOLDER

    needed = ["onnxruntime", "numpy", "Pillow"] + (["tokenizers"] if (folder / TOKENIZER_FOLDER).exists() else [])
    return "".join(f"{name}=={metadata.version(name)}\n" for name in needed)


def _about(job: ExportJob, run_id: str) -> dict[str, Any]:
    import core
    from core.export.onnx import OUTPUT

    return {"format": BUNDLE_FORMAT, "glassbox": core.__version__, "run_id": run_id,
            "modality": job.config.modality, "task": job.config.task,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "inputs": job.checks["onnx_inputs"],
            "output": OUTPUT, "quantize": job.quantize, "checks": job.checks}


def _card(job: ExportJob, run: Any, dataset: Any, split: Any) -> str:
    from core.export.card import CardFacts, model_card
    from core.training_stats import training_stats

    counts = {"train": len(split.train), "val": len(split.val), "test": len(split.test)}
    return model_card(CardFacts(
        run_id=run.id, task=job.task, config=job.config, metrics=run.metrics, state=job.state,
        dataset_name=dataset.name, dataset_info=dataset.info, split_counts=counts, split_source=split.source,
        training_stats=training_stats(job.files), checks=job.checks, quantize=job.quantize,
        files=sorted(p.name for p in job.folder.iterdir()),
        inputs=job.files.read_json(job.files.inputs) if job.files.inputs.exists() else None))


def _zip(folder: Path, out: Path) -> dict[str, int]:
    """Zip `folder`'s files (paths relative to it) into `out` atomically; returns {name: bytes} of each file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    listed: dict[str, int] = {}
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                name = path.relative_to(folder).as_posix()
                archive.write(path, name)
                listed[name] = path.stat().st_size
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return listed
