"""Bundles (`core.export`): one tiny run per modality, trained once through the CLI (the session's `tiny_runs`,
tests/unit/conftest.py), exported to a zip whose ONNX model agrees with PyTorch on the run's validation items at any
batch size, whose torch.export program gives the same outputs, and whose model card states the run's own figures;
the traceable forms of the series encoders equal the originals; a failing export leaves no file."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from core.artifacts import RunFiles, load_model
from core.errors import GlassboxError
from core.export import FORMATS, QUANTISATIONS, export_run
from core.export.feeds import validation_feeds
from core.export.onnx import UnpackedRecurrent, adapter, graph_inputs, parity, session
from core.models.sequence import PatchEncoder, RecurrentEncoder, SequenceModel, SeriesShape
from core.store import Store
from core.workspace import Workspace
from tests.unit.conftest import CASES, TinyRuns

_SHARED = ("model.onnx", "config.json", "target.json", "preprocessing.json", "bundle.json", "MODEL_CARD.md",
           "predict.py", "requirements.txt")


@pytest.fixture
def home(tiny_runs: TinyRuns) -> Workspace:
    """The session's workspace (tests/unit/conftest.py): its runs are trained once and exported once."""
    return tiny_runs.ws


@pytest.fixture
def trained(tiny_runs: TinyRuns) -> Any:
    return tiny_runs.run


@pytest.fixture
def exported(tiny_runs: TinyRuns) -> Any:
    return tiny_runs.bundle


def _model_outputs(home: Workspace, run_id: str, modality: str, feed: dict[str, np.ndarray]) -> np.ndarray:
    model, _, _ = load_model(RunFiles(home.run_dir(run_id)), home.cache_dir)
    with torch.no_grad():
        return adapter(modality).call(model, feed).numpy()


def _resized(feed: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    """`rows` items of `feed` (repeating them if it holds fewer)."""
    have = len(next(iter(feed.values())))
    index = np.arange(rows) % have
    return {name: array[index] for name, array in feed.items()}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_a_bundle_holds_a_checked_onnx_model_a_program_and_a_card_of_the_run(
        case: str, home: Workspace, trained: Any, exported: Any, tmp_path: Path) -> None:
    run = trained(case)
    modality = run["modality"]
    result, out = exported(case)
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path)
    assert set(_SHARED) | {"model.safetensors", "model.pt2"} <= names
    assert result["files"] == {name: (tmp_path / name).stat().st_size for name in names}
    assert not list(out.parent.glob(".*partial"))
    assert ("labels.json" in names) == (run["task"] == "classification")
    assert ("inputs.json" in names) == (modality in ("tables", "series"))
    standalone = Path(__file__).parents[2] / "core" / "export" / "standalone.py"
    assert (tmp_path / "predict.py").read_text() == standalone.read_text()
    about = json.loads((tmp_path / "bundle.json").read_text())
    expected_inputs = {"images": ["pixels"], "text": ["input_ids", "attention_mask"],
                       "tables": ["numeric", "categorical"], "series": ["values", "mask"]}[modality]
    if case == "forecast":
        expected_inputs = ["values", "mask", "future"]
    assert about["inputs"] == expected_inputs and about["output"] == "logits" and about["quantize"] is None
    assert (about["run_id"], about["modality"], about["task"]) == (run["run_id"], modality, run["task"])

    # ONNX against PyTorch on every validation item
    assert result["onnx_max_abs_diff"] < 1e-4 and about["checks"]["onnx_max_abs_diff"] == result["onnx_max_abs_diff"]
    if run["task"] == "classification":
        assert result["top1_agreement"] == 1.0
    shapes = graph_inputs(tmp_path / "model.onnx")
    assert list(shapes) == expected_inputs
    assert all(shape[0] == "batch" for shape in shapes.values())
    if modality == "text":
        assert shapes["input_ids"][1] == shapes["attention_mask"][1] == "tokens"
    if case == "series":
        assert shapes["values"][1] == shapes["mask"][1] == "steps"

    # other batch sizes (and for series and text, other lengths) than the traced one give PyTorch's outputs
    feeds = validation_feeds(home, Store(home.db_path), run["run_id"])
    assert len(feeds) == sum(len(next(iter(b.values()))) for b in feeds.batches)
    runner = session(tmp_path / "model.onnx")
    for rows in (1, 3):
        feed = _resized(feeds.batches[0], rows)
        if case == "series":  # a shorter series than any in training, padded with one step of nothing
            feed = {"values": feed["values"][:, :11], "mask": feed["mask"][:, :11].copy()}
            feed["mask"][:, -1] = False
        if modality == "text":  # cut to 9 tokens: the graph takes any length
            feed = {name: array[:, :9] for name, array in feed.items()}
        ours = runner.run(["logits"], feed)[0]
        assert ours.shape[0] == rows
        np.testing.assert_allclose(ours, _model_outputs(home, run["run_id"], modality, feed), atol=1e-4)

    # the torch.export program loads and gives the model's outputs
    program = torch.export.load(str(tmp_path / "model.pt2")).module()
    feed = feeds.batches[0]
    with torch.no_grad():
        loaded = program(*(torch.from_numpy(feed[name]) for name in expected_inputs)).numpy()
    np.testing.assert_allclose(loaded, _model_outputs(home, run["run_id"], modality, feed), atol=1e-5)

    # the card names the run's own figures
    card = (tmp_path / "MODEL_CARD.md").read_text()
    metrics = run["metrics"]
    if run["task"] == "classification":
        assert f"| accuracy | {metrics['val_accuracy']:.1%}" in card
    else:
        assert f"| MAE | {metrics['val_mae']:.4g}" in card
    assert "pip install -r requirements.txt" in card and "python predict.py INPUT..." in card
    assert f"largest absolute difference {result['onnx_max_abs_diff']:.4g}" in card
    assert "TorchScript is not offered" in card
    requirements = (tmp_path / "requirements.txt").read_text().splitlines()
    assert "onnxruntime==1.32.0" in requirements
    assert any(line.startswith("tokenizers==") for line in requirements) == (modality == "text")


@pytest.mark.slow
def test_onnx_logits_on_validation_feeds_are_the_runs_own_predictions(home: Workspace, trained: Any,
                                                                      exported: Any, tmp_path: Path) -> None:
    run = trained("tables")
    _, out = exported("tables")
    with zipfile.ZipFile(out) as archive:
        archive.extract("model.onnx", tmp_path)
    files = RunFiles(home.run_dir(run["run_id"]))
    saved = json.loads(files.predictions.read_text())
    feeds = validation_feeds(home, Store(home.db_path), run["run_id"])
    assert feeds.items == saved["items"] and feeds.targets.tolist() == saved["labels"]
    runner = session(tmp_path / "model.onnx")
    logits = np.concatenate([runner.run(["logits"], batch)[0] for batch in feeds.batches])
    temperature = json.loads(files.target.read_text()).get("temperature", 1.0)
    scaled = logits / temperature
    probs = np.exp(scaled - scaled.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, saved["probs"], atol=2e-5)


@pytest.mark.slow
def test_an_export_that_disagrees_or_fails_is_refused_and_leaves_no_file(
        home: Workspace, trained: Any, exported: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = trained("tables")
    _, out = exported("tables")
    with zipfile.ZipFile(out) as archive:
        archive.extract("model.onnx", tmp_path)
    feeds = validation_feeds(home, Store(home.db_path), run["run_id"])
    model, _, _ = load_model(RunFiles(home.run_dir(run["run_id"])), home.cache_dir)
    with torch.no_grad():
        model.head.weight.mul_(-1)  # the PyTorch model now prefers the other class: ONNX no longer agrees
        model.head.bias.mul_(-1)
    with pytest.raises(GlassboxError, match="same class as PyTorch on only"):
        parity(tmp_path / "model.onnx", model, "tables", feeds, classifier=True)
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(tmp_path / "model.onnx"))
    [bias] = [t for t in proto.graph.initializer if t.name.endswith("head.bias")]
    bias.CopyFrom(numpy_helper.from_array(np.full_like(numpy_helper.to_array(bias), np.nan), bias.name))
    onnx.save(proto, str(tmp_path / "nan.onnx"))
    with pytest.raises(GlassboxError, match="not finite"):
        parity(tmp_path / "nan.onnx", model, "tables", feeds, classifier=True)

    from core.export import preprocessing

    def broken(*args: Any) -> None:
        raise GlassboxError("no preprocessing")

    monkeypatch.setattr(preprocessing, "write", broken)
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "bundle.zip"
    with pytest.raises(GlassboxError, match="no preprocessing"):
        export_run(home, Store(home.db_path), run["run_id"], target)
    assert list((tmp_path / "out").iterdir()) == []


def test_the_unpacked_rnn_gives_the_packed_ones_outputs() -> None:
    """`pack_padded_sequence` cannot be traced; its replacement must compute the same features, in both
    directions, for series with padding at the end and holes in the middle, empty ones included."""
    torch.manual_seed(0)
    values = torch.randn(5, 13, 3)
    mask = torch.ones(5, 13, dtype=torch.bool)
    mask[1, 9:] = False
    mask[2, :4] = False  # padding in front
    mask[3, [2, 5, 6]] = False  # holes
    mask[4] = False  # nothing real
    for cell in ("lstm", "gru"):
        for bidirectional in (True, False):
            encoder = RecurrentEncoder(cell, 3, 6, bidirectional).eval()
            with torch.no_grad():
                expected = encoder(torch.where(mask.unsqueeze(-1), values, 0.0), mask)
                got = UnpackedRecurrent(encoder).eval()(torch.where(mask.unsqueeze(-1), values, 0.0), mask)
            torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def test_a_series_transformer_reads_padding_as_nothing() -> None:
    """The prologue pads steps with mask False; the model must not see it."""
    torch.manual_seed(0)
    model = SequenceModel(PatchEncoder(2, 20), SeriesShape(2, 20, None, 0), 3, None).eval()
    values, mask = torch.randn(2, 13, 2), torch.ones(2, 13, dtype=torch.bool)
    feed = adapter("series").feed(model, {"values": values, "mask": mask})
    assert feed["values"].shape[1] == 16 and not feed["mask"][:, 13:].any()
    with torch.no_grad():
        torch.testing.assert_close(adapter("series").call(model, feed), model(values, mask))


def test_formats_are_a_registry_with_the_quantisations() -> None:
    assert list(FORMATS) == ["onnx", "torch_export", "safetensors", "int8", "fp16"]
    assert QUANTISATIONS == ("int8", "fp16")
    assert FORMATS.get("torch_export").files == ("model.pt2",)


@pytest.mark.slow
def test_a_quantised_bundle_holds_only_the_compressed_model_and_its_trade(home: Workspace, trained: Any,
                                                                        tmp_path: Path) -> None:
    run = trained("tables")
    out = tmp_path / "int8.zip"
    result = export_run(home, Store(home.db_path), run["run_id"], out, quantize="int8")
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        card = archive.read("MODEL_CARD.md").decode()
        about = json.loads(archive.read("bundle.json"))
    assert "model.onnx" in names and not names & {"model.pt2", "model.safetensors"}
    assert about["quantize"] == "int8" and result["quantize_method"].startswith("dynamic int8")
    assert result["size_after"] < result["size_before"] and result["files"]["model.onnx"] == result["size_after"]
    assert result["val_accuracy_before"] == pytest.approx(run["metrics"]["val_accuracy"], abs=1e-6)
    assert abs(result["val_accuracy_after"] - result["val_accuracy_before"]) <= 0.05
    assert result["latency_ms_before"] > 0 and result["latency_ms_after"] > 0
    assert f"val accuracy: {result['val_accuracy_before']:.4g} before, {result['val_accuracy_after']:.4g} after" in card
    assert card.index("## This bundle's model: quantised") < card.index("## Metrics")  # what ships comes first
    assert "without `model.safetensors` and `model.pt2`" in card
    with pytest.raises(GlassboxError, match="unknown quantisation"):
        export_run(home, Store(home.db_path), run["run_id"], out, quantize="int4")
