"""Smaller ONNX models: int8 quantisation and float16 weights, and what each costs in accuracy and time.

int8 follows onnxruntime's own guidance (https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html):
graphs made of matrix products (MLPs, transformers, recurrent nets) take dynamic quantisation of their MatMul/Gemm
weights, activations quantised on the fly, and of their embedding tables (Gather: a text encoder's vocabulary is half
its weights); a graph with convolutions takes static QDQ quantisation with activation ranges calibrated on training
items, because a dynamically quantised Conv becomes ConvInteger, which onnxruntime's CPU provider does not run.
Weights are quantised per output channel: measured on the sample drug reviews (MiniLM), per-tensor scales kept the
float model's top class on 90% of validation texts, per-channel ones on 98%. Static activations are unsigned (U8S8),
the format onnxruntime's x86 kernels are fastest with: on the sample digits (EfficientNet-Lite0) signed activations
ran about as slowly as float32, unsigned ones several times faster. Both start from onnxruntime's
`quant_pre_process` (symbolic shape inference and graph optimisation), which its docs recommend before quantising.

float16 halves every float weight with onnxruntime's converter (`onnxruntime.transformers.float16`), inputs and
outputs kept float32 so callers feed the same arrays; an operator the CPU provider has no float16 kernel for stays
float32.

`torch.ao.quantization.quantize_dynamic` is deprecated upstream and not used.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import GlassboxError

if TYPE_CHECKING:
    import onnx

    from core.export.feeds import Feeds
    from core.tasks import Task

__all__ = ["KINDS", "DYNAMIC_OPS", "quantize", "measure", "onnx_size"]

KINDS = ("int8", "fp16")
DYNAMIC_OPS = ["MatMul", "Gemm", "Gather"]  # the weights dynamic int8 quantises (issue 12, OFFLINE.md; embeddings)
_STATIC_TRIGGER = "Conv"  # a graph holding this takes static QDQ quantisation
_FP16_RETRIES = 12  # operators left in float32 one by one until the CPU provider loads the model


def quantize(onnx_in: Path, onnx_out: Path, kind: str, calibration: list[dict[str, np.ndarray]] | None = None) -> str:
    """Write a compressed copy of the ONNX model `onnx_in` to `onnx_out` (one file, no external data) and return the
    method in words, e.g. "dynamic int8 MatMul/Gemm/Gather, per-channel weights" or "static int8 QDQ, per-channel
    weights (calibrated on 64 training items)".

    kind "int8": static QDQ (per-channel int8 weights, uint8 activations with MinMax ranges) when the graph has Conv
    nodes, calibrated on `calibration` (ONNX input name -> batch-major array, drawn from the training data; required
    then); otherwise dynamic quantisation of MatMul/Gemm/Gather weights (`calibration` unused). kind "fp16": float16
    weights and arithmetic, float32 inputs and outputs. Raises GlassboxError when the kind is unknown, the graph has
    nothing the kind compresses, or a convolutional graph comes without calibration data.
    """
    if kind not in KINDS:
        raise GlassboxError(f"unknown quantisation {kind!r} (known: {', '.join(KINDS)})")
    import onnx

    model = onnx.load(str(onnx_in))
    ops = _op_types(model.graph)
    onnx_out = Path(onnx_out)
    onnx_out.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fp16":
        return _to_float16(model, onnx_out)
    if _STATIC_TRIGGER in ops:
        return _static_int8(onnx_in, onnx_out, calibration)
    if not _has_dynamic_weights(model, ops):
        raise GlassboxError("int8 does not apply to this model: it has no matrix products, embeddings or "
                            "convolutions to quantise")
    return _dynamic_int8(onnx_in, onnx_out)


def measure(onnx_path: Path, feeds: Feeds, task: Task, state: dict[str, Any], latency_items: int = 32,
            warmup: int = 3) -> dict[str, Any]:
    """The ONNX model's task metrics on `feeds`, its CPU latency and its size: {"metrics": task.metrics keys (no
    `val_` prefix), "latency_ms": median milliseconds per item at batch 1 on one CPU thread, over up to
    `latency_items` items spread across the feeds after `warmup` runs, "size": bytes on disk (external data
    included)}.

    Answers come from `task.answers(logits, state)` on the model's first output, exactly as the studio reads a
    PyTorch model's output. Raises GlassboxError when `feeds` holds no items.
    """
    import torch

    batches = [b for b in feeds.batches if _rows(b)]
    if not batches:
        raise GlassboxError("no items to measure the model on")
    session = _cpu_session(onnx_path)
    names = {i.name for i in session.get_inputs()}
    outputs = [session.run(None, _only(batch, names))[0] for batch in batches]
    logits = torch.from_numpy(np.concatenate(outputs).astype(np.float32))
    answers = task.answers(logits, state)
    metrics = task.metrics(np.asarray(feeds.targets), answers, state)

    singles = list(_single_items(batches, names))
    chosen = [singles[i] for i in np.linspace(0, len(singles) - 1, min(latency_items, len(singles))).astype(int)]
    for feed in chosen[:warmup]:
        session.run(None, feed)
    timings = []
    for feed in chosen:
        start = time.perf_counter()
        session.run(None, feed)
        timings.append((time.perf_counter() - start) * 1000)
    return {"metrics": metrics, "latency_ms": statistics.median(timings), "size": onnx_size(onnx_path)}


def onnx_size(onnx_path: Path) -> int:
    """Bytes the model takes on disk: the .onnx file plus the external data files it names, if any."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    onnx_path = Path(onnx_path)
    size = onnx_path.stat().st_size
    model = onnx.load(str(onnx_path), load_external_data=False)
    locations = {next(e.value for e in t.external_data if e.key == "location")
                 for t in model.graph.initializer if uses_external_data(t)}
    return size + sum((onnx_path.parent / name).stat().st_size for name in locations)


def _static_int8(onnx_in: Path, onnx_out: Path, calibration: list[dict[str, np.ndarray]] | None) -> str:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if not calibration or not sum(_rows(b) for b in calibration):
        raise GlassboxError("int8 for a convolutional model needs calibration items from the training data")
    count = sum(_rows(b) for b in calibration)

    class Reader(CalibrationDataReader):
        def __init__(self, batches: list[dict[str, np.ndarray]]) -> None:
            self._batches = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared = _pre_process(onnx_in, Path(tmp))
        names = {i.name for i in _graph_inputs(prepared)}
        quantize_static(str(prepared), str(onnx_out), Reader([_only(b, names) for b in calibration]),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
    return f"static int8 QDQ, per-channel weights (calibrated on {count} training items)"


def _dynamic_int8(onnx_in: Path, onnx_out: Path) -> str:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        prepared = _pre_process(onnx_in, Path(tmp))
        quantize_dynamic(str(prepared), str(onnx_out), op_types_to_quantize=DYNAMIC_OPS, per_channel=True,
                         weight_type=QuantType.QInt8)
    return "dynamic int8 " + "/".join(DYNAMIC_OPS) + ", per-channel weights"


def _to_float16(model: onnx.ModelProto, onnx_out: Path) -> str:
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    if not any(t.data_type == onnx.TensorProto.FLOAT for t in model.graph.initializer):
        raise GlassboxError("fp16 does not apply to this model: it has no float32 weights")
    blocked: list[str] = []
    for _ in range(_FP16_RETRIES):
        half = convert_float_to_float16(onnx.ModelProto.FromString(model.SerializeToString()), keep_io_types=True,
                                        op_block_list=DEFAULT_OP_BLOCK_LIST + blocked)
        missing = _missing_kernel(half)
        if missing is None:
            onnx.save(half, str(onnx_out))
            kept = f", {', '.join(sorted(blocked))} kept in float32" if blocked else ""
            return f"float16 weights and arithmetic, float32 inputs and outputs{kept}"
        blocked.append(missing)
    raise GlassboxError("fp16 does not apply to this model: onnxruntime's CPU provider lacks float16 kernels for it")


def _missing_kernel(model: onnx.ModelProto) -> str | None:
    """The operator type the CPU provider has no kernel for in `model` (onnxruntime names it when building a
    session), or None when the model loads."""
    import onnxruntime as ort
    from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as OrtNotImplemented

    try:
        ort.InferenceSession(model.SerializeToString(), _options(), providers=["CPUExecutionProvider"])
    except OrtNotImplemented as error:
        found = re.search(r"implementation for (\w+)\(", str(error))
        if found is None:
            raise GlassboxError(f"fp16 does not apply to this model: {str(error).splitlines()[0]}") from None
        return found.group(1)
    return None


def _pre_process(onnx_in: Path, folder: Path) -> Path:
    """onnxruntime's pre-quantisation pass (symbolic shape inference, graph optimisation) into `folder`; the model
    as it is when the pass cannot handle it (it is an aid to quantisation, not a requirement)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = folder / "prepared.onnx"
    try:
        # without onnxruntime's symbolic shape inference: when it cannot finish it saves its partial model, with
        # external data under random names, into the current directory before raising (onnxruntime 1.32's
        # tools/symbolic_shape_infer.py), and ONNX's own shape inference, which still runs, suffices here
        quant_pre_process(str(onnx_in), str(prepared), skip_symbolic_shape=True)
    except Exception:  # noqa: BLE001  (symbolic shape inference rejects some exported graphs; quantise unprepared)
        return Path(onnx_in)
    return prepared


def _graph_inputs(onnx_path: Path) -> list[Any]:
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    initializers = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def _has_dynamic_weights(model: onnx.ModelProto, ops: set[str]) -> bool:
    """Whether dynamic int8 would shrink anything: a matrix product, or a Gather reading a float weight table
    (an embedding; Gathers on shapes are everywhere and hold nothing)."""
    import onnx

    tables = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    return bool(ops & {"MatMul", "Gemm"}) or any(n.op_type == "Gather" and n.input[0] in tables
                                                  for n in model.graph.node)


def _op_types(graph: onnx.GraphProto) -> set[str]:
    """Operator types in `graph` and its subgraphs (If/Loop/Scan bodies)."""
    found: set[str] = set()
    for node in graph.node:
        found.add(node.op_type)
        for attribute in node.attribute:
            subgraphs = [attribute.g] if attribute.HasField("g") else []
            for sub in [*subgraphs, *attribute.graphs]:
                found |= _op_types(sub)
    return found


def _cpu_session(onnx_path: Path) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(str(onnx_path), _options(), providers=["CPUExecutionProvider"])


def _options() -> Any:
    """One thread, sequential: latency per item as a small CPU deployment sees it, comparable across models."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return options


def _rows(batch: dict[str, np.ndarray]) -> int:
    return len(next(iter(batch.values()))) if batch else 0


def _only(batch: dict[str, np.ndarray], names: set[str]) -> dict[str, np.ndarray]:
    return {k: v for k, v in batch.items() if k in names}


def _single_items(batches: list[dict[str, np.ndarray]], names: set[str]) -> Iterator[dict[str, np.ndarray]]:
    for batch in batches:
        batch = _only(batch, names)
        for i in range(_rows(batch)):
            yield {k: v[i:i + 1] for k, v in batch.items()}
