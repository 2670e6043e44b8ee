"""ONNX export of a run's model with the current exporter, checked against PyTorch on the run's real items.

The model is traced once with `torch.export.export` (batch dimension, and a text's tokens or a series' steps,
declared dynamic with `torch.export.Dim`, on an example batch of at least two real validation items, so no
dimension is specialised to 1), and that ExportedProgram is translated by `torch.onnx.export(..., dynamo=True)`
at opset 18; its symbolic dimensions are renamed ("batch", "tokens", "steps") and checked to be symbolic in the
written graph. The same program is what `core.export.program` saves as `model.pt2`.

What a modality feeds its model differs, so each modality has one `OnnxAdapter` (`ADAPTERS`, keyed by modality):
how a loader batch becomes the graph's named inputs (`feed`: images `pixels`; text `input_ids`,
`attention_mask`; tables `numeric`, `categorical`, each left out when it has no columns; series `values`, `mask`
and `future` when the forecast reads covariates), how the model is called on those inputs, and the module that is
traced (`traceable`). The graph has one output, `logits`: exactly what `model(...)` returns in eval mode.

Series models need a traceable form, proven equal in the tests:
- LSTM/GRU read packed sequences (`pack_padded_sequence`), which `torch.export` cannot trace (the batch sizes of
  a packed sequence are data). `UnpackedRecurrent` runs the same weights, one layer and direction at a time, over
  the padded steps: the forward direction's state is read at each series' last real step, and the backward
  direction reads each series' real steps reversed in place (padding stays after them), which is what packing
  computes.
- The PatchTST encoder cuts the steps into patches of P, which traces only when the steps are a multiple of P
  (at least two patches): it is traced so, and a small ONNX prologue pads `values` and `mask` (with False) up to
  that, so the graph takes any number of steps. Padding never changes a series model's output in eval mode.

The check (`parity`) runs onnxruntime on every validation item and compares with PyTorch: the largest absolute
difference of the raw outputs and, for classifiers, the share of items whose top class agrees. An export whose
outputs are not finite, or whose top-1 agreement is below `MIN_AGREEMENT`, is refused.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.export import Dim

from core.errors import GlassboxError
from core.models.sequence import PatchEncoder, RecurrentEncoder
from core.registry import Registry

if TYPE_CHECKING:
    import onnx

    from core.export import ExportJob
    from core.export.feeds import Feeds

__all__ = ["ADAPTERS", "MIN_AGREEMENT", "OPSET", "OUTPUT", "OnnxAdapter", "UnpackedRecurrent", "adapter",
           "example", "export", "graph_inputs", "parity", "write"]

OPSET = 18
OUTPUT = "logits"
MIN_AGREEMENT = 0.99
"""The least top-1 agreement between ONNX and PyTorch on validation items an export is accepted with."""
BATCH = "batch"


@dataclass(frozen=True)
class OnnxAdapter:
    """How one modality's model meets ONNX.

    `feed(model, inputs)`: a loader batch's inputs (a tensor or a dict of tensors) -> {graph input name: numpy
    array}, in the graph's input order, leaving out inputs the graph does not take. `call(model, feed)`: the
    model's raw output for such a feed, called as training called it (the reference the graph is checked
    against). `traceable(model)`: the module to trace, whose forward takes the feed's arrays positionally.
    `axes(model)`: per input name, {axis: torch.export.Dim} for its dynamic axes. `finish(model, proto)`: changes
    to the written graph (a prologue), or None."""

    feed: Callable[[nn.Module, Any], dict[str, np.ndarray]]
    call: Callable[[nn.Module, dict[str, np.ndarray]], torch.Tensor]
    traceable: Callable[[nn.Module], nn.Module]
    axes: Callable[[nn.Module], dict[str, dict[int, Any]]]
    finish: Callable[[nn.Module, onnx.ModelProto], onnx.ModelProto] | None = None


ADAPTERS: Registry[OnnxAdapter] = Registry("ONNX adapter")


def adapter(modality: str) -> OnnxAdapter:
    """The registered adapter of a modality; GlassboxError naming the known ones otherwise."""
    return ADAPTERS.get(modality)


def _tensors(feed: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in feed.items()}


def _batch() -> Any:
    return Dim(BATCH, min=1)


# ---- images ----------------------------------------------------------------------------------------------


def _image_feed(model: nn.Module, inputs: Any) -> dict[str, np.ndarray]:
    return {"pixels": inputs.float().contiguous().numpy()}


ADAPTERS.register("images")(OnnxAdapter(
    feed=_image_feed,
    call=lambda model, feed: model(_tensors(feed)["pixels"]),
    traceable=lambda model: model,
    axes=lambda model: {"pixels": {0: _batch()}},
))


# ---- text ------------------------------------------------------------------------------------------------


def _text_feed(model: nn.Module, inputs: Any) -> dict[str, np.ndarray]:
    return {"input_ids": inputs["input_ids"].long().numpy(), "attention_mask": inputs["attention_mask"].long().numpy()}


def _text_axes(model: nn.Module) -> dict[str, dict[int, Any]]:
    # the longest input the position embeddings take (a tokenizer may declare a larger limit than its model)
    longest = min(int(getattr(model, "max_length", 512)),
                  int(getattr(model.encoder.config, "max_position_embeddings", None) or 512))
    batch, tokens = _batch(), Dim("tokens", min=2, max=max(2, longest))
    return {"input_ids": {0: batch, 1: tokens}, "attention_mask": {0: batch, 1: tokens}}


ADAPTERS.register("text")(OnnxAdapter(
    feed=_text_feed,
    call=lambda model, feed: model(**_tensors(feed)),
    traceable=lambda model: model,
    axes=_text_axes,
))


# ---- tables ----------------------------------------------------------------------------------------------


def _table_inputs(model: nn.Module) -> list[str]:
    """The inputs a table model's graph takes: a part without columns is made inside the graph instead."""
    present = []
    if model.n_numeric:
        present.append("numeric")
    if len(model.embeddings):
        present.append("categorical")
    return present


def _table_feed(model: nn.Module, inputs: Any) -> dict[str, np.ndarray]:
    arrays = {"numeric": inputs["numeric"].float().numpy(), "categorical": inputs["categorical"].long().numpy()}
    return {name: arrays[name] for name in _table_inputs(model)}


def _table_call(model: nn.Module, feed: dict[str, np.ndarray]) -> torch.Tensor:
    given = _tensors(feed)
    rows = len(next(iter(given.values())))
    return model(given.get("numeric", torch.zeros(rows, 0)),
                 given.get("categorical", torch.zeros(rows, 0, dtype=torch.long)))


class _TableForward(nn.Module):
    """A table model called with only the inputs that have columns; the empty one is made here."""

    def __init__(self, model: nn.Module, present: list[str]) -> None:
        super().__init__()
        self.model = model
        self.present = present

    def forward(self, first: torch.Tensor, second: torch.Tensor | None = None) -> torch.Tensor:
        given = dict(zip(self.present, (first, second), strict=False))
        rows = first.shape[0]
        numeric = given.get("numeric", torch.zeros(rows, 0, device=first.device))
        categorical = given.get("categorical", torch.zeros(rows, 0, dtype=torch.long, device=first.device))
        return self.model(numeric, categorical)


ADAPTERS.register("tables")(OnnxAdapter(
    feed=_table_feed,
    call=_table_call,
    traceable=lambda model: _TableForward(model, _table_inputs(model)),
    axes=lambda model: {name: {0: _batch()} for name in _table_inputs(model)},
))


# ---- series ----------------------------------------------------------------------------------------------


class UnpackedRecurrent(nn.Module):
    """A `RecurrentEncoder` without packed sequences: the same weights (copied into one single-layer,
    one-direction LSTM/GRU per layer and direction) over the padded steps; same output [B, features].

    Forward directions are read at each series' last real step; a backward direction reads each series' real
    steps reversed in place (`_reversed`), so it starts at the last real step as packing makes it. Inter-layer
    dropout is off in eval mode, the only mode this is for."""

    def __init__(self, encoder: RecurrentEncoder) -> None:
        super().__init__()
        rnn = encoder.rnn
        kind = type(rnn)
        self.directions = encoder.directions
        self.features = encoder.features
        self.hidden = rnn.hidden_size
        cells = []
        for layer in range(rnn.num_layers):
            for direction in range(self.directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                cell = kind(rnn.input_size if layer == 0 else self.hidden * self.directions, self.hidden,
                            batch_first=True)
                cell.load_state_dict({f"{name}_l0": getattr(rnn, f"{name}{suffix}").detach().clone()
                                      for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
                cells.append(cell)
        self.cells = nn.ModuleList(cells)
        self.layers = rnn.num_layers

    def forward(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # real steps first, in their order, as the encoder sorts them; unique keys make a stable sort needless
        # (ONNX has no stable sort)
        steps = torch.arange(values.shape[1], device=values.device).unsqueeze(0)
        order = torch.argsort((~mask).long() * values.shape[1] + steps, dim=1)
        x = values.gather(1, order.unsqueeze(-1).expand_as(values))
        lengths = mask.sum(1).clamp(min=1)
        # position t of a series reads its step length-1-t (an involution on the real steps, padding kept)
        reverse = torch.where(steps < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - steps, steps)
        last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, self.hidden)
        finals: list[torch.Tensor] = []
        for layer in range(self.layers):
            outputs, finals = [], []
            for direction in range(self.directions):
                cell = self.cells[layer * self.directions + direction]
                seen = _reversed(x, reverse) if direction else x
                out, _ = cell(seen)
                finals.append(out.gather(1, last).squeeze(1))  # after the last real step read
                outputs.append(_reversed(out, reverse) if direction else out)
            x = torch.cat(outputs, dim=2)
        return torch.cat(finals, dim=1)


def _reversed(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


def _series_inputs(model: nn.Module) -> list[str]:
    return ["values", "mask"] + (["future"] if model.shape.future else [])


def _steps_multiple(model: nn.Module) -> int:
    """Steps the traced graph needs a multiple of (a PatchTST encoder's patch; 1 for the others)."""
    return model.encoder.patch if isinstance(model.encoder, PatchEncoder) else 1


def _series_feed(model: nn.Module, inputs: Any) -> dict[str, np.ndarray]:
    values, mask = inputs["values"].float(), inputs["mask"].bool()
    multiple = _steps_multiple(model)
    if multiple > 1 and not model.shape.forecasts:  # the traced graph's own shape; the prologue does this too
        steps = values.shape[1]
        padded = max(2 * multiple, -(-steps // multiple) * multiple)
        values = nn.functional.pad(values, (0, 0, 0, padded - steps))
        mask = nn.functional.pad(mask, (0, padded - steps), value=False)
    feed = {"values": values.numpy(), "mask": mask.numpy()}
    if model.shape.future:
        feed["future"] = inputs["future"].float().numpy()
    return feed


def _series_call(model: nn.Module, feed: dict[str, np.ndarray]) -> torch.Tensor:
    given = _tensors(feed)
    return model(given["values"], given["mask"], given.get("future"))


class _SeriesForward(nn.Module):
    def __init__(self, model: nn.Module, with_future: bool) -> None:
        super().__init__()
        self.model = model
        self.with_future = with_future

    def forward(self, values: torch.Tensor, mask: torch.Tensor, future: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(values, mask, future if self.with_future else None)


def _series_traceable(model: nn.Module) -> nn.Module:
    if isinstance(model.encoder, RecurrentEncoder):
        model = copy.copy(model)  # shares every module but the encoder, which is replaced in the copy only
        model._modules = dict(model._modules)
        model.encoder = UnpackedRecurrent(model.encoder).eval()
    return _SeriesForward(model, bool(model.shape.future))


def _series_axes(model: nn.Module) -> dict[str, dict[int, Any]]:
    batch = _batch()
    axes: dict[str, dict[int, Any]] = {name: {0: batch} for name in _series_inputs(model)}
    if not model.shape.forecasts:  # a forecast reads exactly its context; a series to classify any length
        multiple = _steps_multiple(model)
        steps = multiple * Dim("patches", min=2) if multiple > 1 else Dim("steps", min=2)
        axes["values"][1] = axes["mask"][1] = steps
    return axes


def _series_finish(model: nn.Module, proto: onnx.ModelProto) -> onnx.ModelProto:
    multiple = _steps_multiple(model)
    if multiple > 1 and not model.shape.forecasts:
        return _pad_steps_prologue(proto, multiple)
    return proto


ADAPTERS.register("series")(OnnxAdapter(
    feed=_series_feed,
    call=_series_call,
    traceable=_series_traceable,
    axes=_series_axes,
    finish=_series_finish,
))


def _pad_steps_prologue(proto: onnx.ModelProto, multiple: int) -> onnx.ModelProto:
    """`proto` taking `values` [B, T, C] and `mask` [B, T] of any T: new first nodes pad both after the last
    step (values with 0, mask with False) to max(2 * multiple, T rounded up to a multiple), the shape the graph
    was traced with."""
    from onnx import TensorProto, helper

    graph = proto.graph
    inner = {"values": "values_padded", "mask": "mask_padded"}
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in inner:
                node.input[i] = inner[name]
    originals = {i.name: i for i in graph.input if i.name in inner}

    def const(name: str, values: list[int]) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64,
                                                                                [len(values)], values))

    prologue = [
        const("pad_one", [1]), const("pad_two", [2]), const("pad_multiple", [multiple]),
        const("pad_least", [2 * multiple]), const("pad_zeros", [0, 0, 0, 0]), const("pad_zero", [0]),
        helper.make_node("Shape", ["values"], ["pad_steps"], start=1, end=2),
        helper.make_node("Add", ["pad_steps", "pad_multiple"], ["pad_ceil0"]),
        helper.make_node("Sub", ["pad_ceil0", "pad_one"], ["pad_ceil1"]),
        helper.make_node("Div", ["pad_ceil1", "pad_multiple"], ["pad_count"]),
        helper.make_node("Mul", ["pad_count", "pad_multiple"], ["pad_rounded"]),
        helper.make_node("Max", ["pad_rounded", "pad_least"], ["pad_target"]),
        helper.make_node("Sub", ["pad_target", "pad_steps"], ["pad_extra"]),
        # pads are [begin of each axis..., end of each axis...]: only the steps axis' end grows
        helper.make_node("Concat", ["pad_zeros", "pad_extra", "pad_zero"], ["pad_values_pads"], axis=0),
        helper.make_node("Pad", ["values", "pad_values_pads"], ["values_padded"], mode="constant"),
        helper.make_node("Concat", ["pad_zero", "pad_zero", "pad_zero", "pad_extra"], ["pad_mask_pads"], axis=0),
        helper.make_node("Cast", ["mask"], ["pad_mask_int"], to=TensorProto.UINT8),
        helper.make_node("Pad", ["pad_mask_int", "pad_mask_pads"], ["pad_mask_wide"], mode="constant"),
        helper.make_node("Cast", ["pad_mask_wide"], ["mask_padded"], to=TensorProto.BOOL),
    ]
    for i, node in enumerate(prologue):
        graph.node.insert(i, node)
    for name, info in originals.items():
        dims = info.type.tensor_type.shape.dim
        dims[1].Clear()
        dims[1].dim_param = "steps"
        del name
    return proto


# ---- export and checks -----------------------------------------------------------------------------------


def example(feeds: Feeds, least: int = 2) -> dict[str, np.ndarray]:
    """At least `least` real items in one feed (the first batch, topped up from the next ones, or an item
    repeated when validation holds fewer), so that the batch dimension is traced as a dimension, not as 1."""
    batches = [b for b in feeds.batches if len(next(iter(b.values())))]
    if not batches:
        raise GlassboxError("the run has no validation items to trace the export with")
    chosen = batches[0]
    rows = len(next(iter(chosen.values())))
    if rows >= least:
        return chosen
    repeat = -(-least // rows)
    return {name: np.concatenate([array] * repeat) for name, array in chosen.items()}


@dataclass
class Traced:
    """The ExportedProgram of the adapter's traceable module, and its graph input names in order."""

    program: torch.export.ExportedProgram
    inputs: list[str]
    axes: dict[str, dict[int, str]]


def export(model: nn.Module, modality: str, feeds: Feeds, path: Path) -> Traced:
    """Trace `model` (eval mode, CPU) with the modality's adapter on real items from `feeds`, translate it to ONNX
    at opset `OPSET` and write `path`; the graph's dynamic dimensions are checked to be symbolic.

    Raises GlassboxError when tracing or translation fails (with the exporter's first line) or a dynamic
    dimension came out fixed."""
    import onnx

    how = adapter(modality)
    sample = example(feeds)
    names = list(sample)
    args = tuple(_tensors(sample)[name] for name in names)
    module = how.traceable(model).eval()
    axes = how.axes(model)
    dynamic = tuple(axes.get(name, {}) for name in names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' FutureWarnings and notes say nothing to the user
        try:
            program = torch.export.export(module, args, dynamic_shapes=dynamic, strict=False)
            onnx_program = torch.onnx.export(program, args, dynamo=True, opset_version=OPSET, input_names=names,
                                             output_names=[OUTPUT], verbose=False)
        except Exception as exc:  # the exporters raise many kinds; the user needs the one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise GlassboxError(f"the model could not be exported to ONNX: {first}") from None
    named = _axis_names(program, names, axes)
    onnx_program.rename_axes({symbol: name for symbol, name in named.items()})
    proto = onnx_program.model_proto
    if how.finish is not None:
        proto = how.finish(model, proto)
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    wanted = {name: {axis: (dim.__name__ if hasattr(dim, "__name__") else str(dim)) for axis, dim in by.items()}
              for name, by in axes.items()}
    _check_symbolic(path, wanted)
    return Traced(program, names, wanted)


def _axis_names(program: torch.export.ExportedProgram, names: list[str],
                axes: dict[str, dict[int, Any]]) -> dict[str, str]:
    """Exporter symbol ("s77") -> our name ("batch") for each dynamic axis, read off the program's inputs."""
    user_inputs = [spec.arg.name for spec in program.graph_signature.input_specs
                   if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT]
    placeholders = {node.name: node for node in program.graph.nodes if node.op == "placeholder"}
    found: dict[str, str] = {}
    for name, arg in zip(names, user_inputs, strict=True):
        shape = placeholders[arg].meta["val"].shape
        for axis, dim in axes.get(name, {}).items():
            symbol = str(shape[axis])
            if symbol.isidentifier():  # a plain symbol, not a derived "4*s12" (kept as the exporter wrote it)
                found[symbol] = dim.__name__
    return found


def graph_inputs(path: Path) -> dict[str, list[int | str]]:
    """Each graph input's shape as written: fixed sizes as ints, symbolic ones by name."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}


def _check_symbolic(path: Path, axes: dict[str, dict[int, str]]) -> None:
    shapes = graph_inputs(path)
    for name, by in axes.items():
        for axis in by:
            if not isinstance(shapes[name][axis], str):
                raise GlassboxError(f"the exported graph fixed {name}'s axis {axis} to {shapes[name][axis]}: "
                                    "it would only take that size")


def session(path: Path) -> Any:
    """An onnxruntime CPU session on `path`."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def parity(path: Path, model: nn.Module, modality: str, feeds: Feeds, classifier: bool) -> dict[str, Any]:
    """onnxruntime against PyTorch on every item of `feeds`: {"onnx_max_abs_diff": the largest absolute
    difference of the raw outputs, "onnx_items": items compared, and for a classifier "top1_agreement": the
    share of items whose top class agrees}.

    Raises GlassboxError when the ONNX outputs are not finite, their shape differs from PyTorch's, or a
    classifier's top-1 agreement is below `MIN_AGREEMENT`."""
    how = adapter(modality)
    runner = session(path)
    wanted = [i.name for i in runner.get_inputs()]
    largest, agree, total = 0.0, 0, 0
    for batch in feeds.batches:
        if not len(next(iter(batch.values()))):
            continue
        ours = np.asarray(runner.run([OUTPUT], {name: batch[name] for name in wanted})[0])
        with torch.no_grad():
            theirs = how.call(model, batch).float().numpy()
        if ours.shape != theirs.shape:
            raise GlassboxError(f"the ONNX model answers {ours.shape}, PyTorch {theirs.shape}: the export is wrong")
        if not np.isfinite(ours).all():
            raise GlassboxError("the ONNX model gives outputs that are not finite numbers: the export is refused")
        largest = max(largest, float(np.abs(ours.astype(np.float64) - theirs).max()))
        if classifier:
            agree += int((ours.argmax(-1) == theirs.argmax(-1)).sum())
        total += len(ours)
    found: dict[str, Any] = {"onnx_max_abs_diff": largest, "onnx_items": total}
    if classifier:
        found["top1_agreement"] = agree / total if total else None
        if total and agree / total < MIN_AGREEMENT:
            raise GlassboxError(f"the ONNX model picks the same class as PyTorch on only {agree / total:.1%} of "
                                f"{total} validation items (at least {MIN_AGREEMENT:.0%} needed): the export is "
                                "refused")
    return found


def write(job: ExportJob) -> None:
    """The "onnx" format: `model.onnx` in the bundle (or, for a quantised bundle, the fp32 model in the work
    folder, which the quantisation reads), its checks in `job.checks`, and the ExportedProgram in
    `job.shared["program"]` for `core.export.program`."""
    target = (job.work if job.quantize else job.folder) / "model.onnx"
    traced = export(job.model, job.config.modality, job.feeds, target)
    job.shared["program"] = traced.program
    job.shared["onnx_fp32"] = target
    job.checks.update(parity(target, job.model, job.config.modality, job.feeds, job.task.answers_key == "probs"))
    job.checks["onnx_inputs"] = traced.inputs
    job.checks["onnx_shapes"] = graph_inputs(target)
    job.checks["opset"] = OPSET
