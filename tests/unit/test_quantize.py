"""int8 and fp16 compression of exported ONNX models (`core.export.quantize`), on small models trained here on
scikit-learn's digits (real 8x8 handwritten digits): an MLP and a tiny transformer over token ids (dynamic int8 of
MatMul/Gemm/Gather), a small conv net (static QDQ int8 calibrated on training items), float16 with float32 inputs
and outputs. Tolerances: int8 keeps the float model's top class on at least 97-99% of 397 held-out digits, fp16 on
99% with logits within 0.05."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from core.errors import GlassboxError
from core.export.feeds import Feeds
from core.export.quantize import measure, quantize
from core.tasks import task


@dataclass
class Digits:
    x_train: np.ndarray  # [n, 64] float32 in [0, 1]
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@pytest.fixture(scope="module")
def digits() -> Digits:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1400], order[1400:]
    return Digits(x[train], y[train], x[test], y[test])


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))

    def forward(self, numeric: torch.Tensor) -> torch.Tensor:
        return self.net(numeric)


class TinyTransformer(nn.Module):
    """Each digit as 8 tokens, one per row (its 8 pixels inked or not: 256 words), through an embedding table and
    a 2-layer transformer encoder, as a text model reads token ids."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(256, width)
        self.position = nn.Parameter(torch.zeros(1, 8, width))
        layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(width, 10)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:  # [B, 8] int64
        return self.head(self.encoder(self.embed(input_ids) + self.position).mean(1))


def _row_tokens(x: np.ndarray) -> np.ndarray:
    """[n, 64] pixels in [0, 1] -> [n, 8] int64 token ids: each row's inked pixels as the bits of a byte."""
    return ((x.reshape(-1, 8, 8) >= 0.5) * (2 ** np.arange(8))).sum(-1).astype(np.int64)


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1),
                                      nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(64, 10)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:  # [B, 1, 8, 8]
        return self.head(self.features(pixels))


def _train(model: nn.Module, x: np.ndarray, y: np.ndarray, steps: int) -> nn.Module:
    torch.manual_seed(0)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y).long()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        chosen = torch.randint(0, len(inputs), (128,))
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(inputs[chosen]), targets[chosen]).backward()
        optimiser.step()
    return model.eval()


def _export(model: nn.Module, example: np.ndarray, name: str, path: Path) -> Path:
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(model.eval(), (torch.from_numpy(example[:4]),), input_names=[name],
                                output_names=["logits"],
                                dynamo=True, dynamic_shapes=({0: batch},), opset_version=18, verbose=False)
    program.save(str(path))
    return path


def _run(path: Path, name: str, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {name: x})[0]


def _weight_bytes(path: Path) -> int:
    return sum(onnx.numpy_helper.to_array(t).nbytes for t in onnx.load(str(path)).graph.initializer)


def _ops(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


@dataclass
class Exported:
    path: Path
    name: str  # the graph's input
    x_train: np.ndarray
    x_test: np.ndarray
    accuracy: float  # fp32 ONNX on the held-out digits


def _exported(tmp: Path, build: Callable[[], nn.Module], name: str, x_train: np.ndarray, x_test: np.ndarray,
              y_train: np.ndarray, y_test: np.ndarray, steps: int) -> Exported:
    torch.manual_seed(0)  # the same initial weights whichever test builds the fixture first
    model = _train(build(), x_train, y_train, steps)
    path = _export(model, x_train, name, tmp / f"{name}.onnx")
    accuracy = float((_run(path, name, x_test).argmax(1) == y_test).mean())
    return Exported(path, name, x_train, x_test, accuracy)


@pytest.fixture(scope="module")
def mlp(digits: Digits, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    return _exported(tmp_path_factory.mktemp("mlp"), MLP, "numeric", digits.x_train, digits.x_test,
                     digits.y_train, digits.y_test, steps=300)


@pytest.fixture(scope="module")
def transformer(digits: Digits, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    return _exported(tmp_path_factory.mktemp("transformer"), TinyTransformer, "input_ids",
                     _row_tokens(digits.x_train), _row_tokens(digits.x_test), digits.y_train, digits.y_test, steps=200)


@pytest.fixture(scope="module")
def cnn(digits: Digits, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    return _exported(tmp_path_factory.mktemp("cnn"), ConvNet, "pixels", digits.x_train.reshape(-1, 1, 8, 8),
                     digits.x_test.reshape(-1, 1, 8, 8), digits.y_train, digits.y_test, steps=200)


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(1) == b.argmax(1)).mean())


def test_mlp_int8_is_dynamic_quarter_size_and_agrees(mlp: Exported, tmp_path: Path) -> None:
    assert mlp.accuracy > 0.95  # a real model: the comparison below means something
    out = tmp_path / "int8.onnx"
    method = quantize(mlp.path, out, "int8", None)
    assert method == "dynamic int8 MatMul/Gemm/Gather, per-channel weights"
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= _ops(out) and "QuantizeLinear" not in _ops(out)
    # 0.4 M weights: int8 takes a quarter of float32's bytes, plus per-tensor scales and the graph
    assert out.stat().st_size / mlp.path.stat().st_size < 0.3  # 0.26 seen
    assert _agreement(_run(out, "numeric", mlp.x_test), _run(mlp.path, "numeric", mlp.x_test)) >= 0.99


def test_transformer_int8_is_dynamic_and_agrees(transformer: Exported, tmp_path: Path) -> None:
    assert transformer.accuracy > 0.7  # binarised rows lose detail; chance is 0.1
    out = tmp_path / "int8.onnx"
    assert quantize(transformer.path, out, "int8", None) == "dynamic int8 MatMul/Gemm/Gather, per-channel weights"
    assert "MatMulInteger" in _ops(out)
    # its weights (270 kB, 64 wide) are only 61% of the file; they shrink 4x, the graph's fixed part does not
    assert _weight_bytes(out) / _weight_bytes(transformer.path) < 0.3
    # the embedding table (256 x 64) is int8 too: no float weight larger than the position table (8 x 64) is left
    assert max(onnx.numpy_helper.to_array(t).nbytes for t in onnx.load(str(out)).graph.initializer
               if t.data_type == onnx.TensorProto.FLOAT) == 8 * 64 * 4
    assert out.stat().st_size / transformer.path.stat().st_size < 0.55
    held_out = transformer.x_test
    assert _agreement(_run(out, "input_ids", held_out), _run(transformer.path, "input_ids", held_out)) >= 0.97


def test_conv_graph_takes_static_qdq_calibrated_on_training_items(cnn: Exported, tmp_path: Path) -> None:
    assert cnn.accuracy > 0.9
    calibration = [{"pixels": cnn.x_train[i:i + 32]} for i in range(0, 128, 32)]
    out = tmp_path / "int8.onnx"
    method = quantize(cnn.path, out, "int8", calibration)
    assert method == "static int8 QDQ, per-channel weights (calibrated on 128 training items)"
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= _ops(out)
    assert "ConvInteger" not in _ops(out)  # what dynamic int8 would make, and onnxruntime's CPU cannot run
    assert out.stat().st_size / cnn.path.stat().st_size < 0.4  # 0.31 seen
    assert _agreement(_run(out, "pixels", cnn.x_test), _run(cnn.path, "pixels", cnn.x_test)) >= 0.97


def test_conv_graph_without_calibration_is_refused(cnn: Exported, tmp_path: Path) -> None:
    with pytest.raises(GlassboxError, match="needs calibration items"):
        quantize(cnn.path, tmp_path / "int8.onnx", "int8", None)
    assert not (tmp_path / "int8.onnx").exists()


def test_fp16_halves_the_size_and_keeps_float32_io(mlp: Exported, cnn: Exported, tmp_path: Path) -> None:
    for exported in (mlp, cnn):
        out = tmp_path / f"{exported.name}_fp16.onnx"
        method = quantize(exported.path, out, "fp16", None)
        assert method == "float16 weights and arithmetic, float32 inputs and outputs"
        assert 0.45 < out.stat().st_size / exported.path.stat().st_size < 0.55
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        assert [i.type for i in session.get_inputs()] == ["tensor(float)"]
        assert [o.type for o in session.get_outputs()] == ["tensor(float)"]
        half = session.run(None, {exported.name: exported.x_test})[0]
        full = _run(exported.path, exported.name, exported.x_test)
        assert np.abs(half - full).max() < 0.05 and _agreement(half, full) >= 0.99


def test_kinds_that_do_not_apply_are_refused(tmp_path: Path) -> None:
    class Affine(nn.Module):  # no matrix product, no convolution: nothing int8 would shrink
        def forward(self, numeric: torch.Tensor) -> torch.Tensor:
            return numeric * 2.0 + 1.0

    path = _export(Affine(), np.ones((4, 3), dtype=np.float32), "numeric", tmp_path / "affine.onnx")
    with pytest.raises(GlassboxError, match="int8 does not apply"):
        quantize(path, tmp_path / "int8.onnx", "int8", None)
    with pytest.raises(GlassboxError, match="unknown quantisation 'int4'"):
        quantize(path, tmp_path / "int4.onnx", "int4", None)

    helper = onnx.helper
    weightless = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["numeric"], ["logits"])], "weightless",
        [helper.make_tensor_value_info("numeric", onnx.TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", 3])]),
        opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(weightless, str(tmp_path / "weightless.onnx"))
    with pytest.raises(GlassboxError, match="fp16 does not apply to this model: it has no float32 weights"):
        quantize(tmp_path / "weightless.onnx", tmp_path / "fp16.onnx", "fp16", None)


def test_measure_scores_the_onnx_model_with_the_task(mlp: Exported, digits: Digits) -> None:
    feeds = Feeds([{"numeric": mlp.x_test[i:i + 100]} for i in range(0, len(mlp.x_test), 100)], digits.y_test,
                  list(range(len(digits.y_test))))
    state = {"classes": [str(c) for c in range(10)], "temperature": 1.0}
    found = measure(mlp.path, feeds, task("classification"), state)
    assert found["metrics"]["accuracy"] == pytest.approx(mlp.accuracy)
    assert found["size"] == mlp.path.stat().st_size
    assert 0 < found["latency_ms"] < 50


def test_measure_reads_regression_outputs_in_target_units(tmp_path: Path) -> None:
    class Half(nn.Module):  # standardised output = mean of the inputs; target = 10 * output + 3
        def forward(self, numeric: torch.Tensor) -> torch.Tensor:
            return numeric.mean(1, keepdim=True)

    x = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    path = _export(Half(), x, "numeric", tmp_path / "half.onnx")
    targets = 10 * x.mean(1) + 3 + 0.5  # every answer off by exactly 0.5
    found = measure(path, Feeds([{"numeric": x[:7]}, {"numeric": x[7:]}], targets, list(range(20))),
                    task("regression"), {"target": "y", "mean": 3.0, "std": 10.0})
    assert found["metrics"]["mae"] == pytest.approx(0.5, abs=1e-5)
