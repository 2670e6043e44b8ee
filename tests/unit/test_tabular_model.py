"""The tables family (core/models/tabular.py): its catalog, models built from a fitted encoder, the TabM-mini
ensemble's shapes and its loss (the task's, `core.tasks`), optimizer groups, and learning a classification and a
regression target with the tasks' losses, read back through the tasks' answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional

from core import tasks
from core.config import TrainConfig
from core.data.table_encoding import TableEncoder
from core.errors import GlassboxError
from core.models import create_model, family
from core.models.tabular import TabularFamily, TabularMLP, embedding_size

CPU = torch.device("cpu")


def _config(**changes: Any) -> TrainConfig:
    return TrainConfig(dataset_id="test", modality="tables", **{"backbone": "mlp", "weights": "none", **changes})


def _loss(task: str, state: dict[str, Any], targets: np.ndarray) -> Any:
    """The loss the training loop would use for `task` (no label smoothing: a plain cross-entropy)."""
    return tasks.task(task).loss(TrainConfig(dataset_id="t", label_smoothing=0.0), state, targets, CPU)


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "x0": rng.normal(size=n), "x1": rng.exponential(size=n), "c0": rng.choice(list("abcd"), n).astype(object),
        "c1": rng.choice([f"level{i}" for i in range(30)], n).astype(object),
    })


COLUMNS = [{"name": "x0", "role": "numeric"}, {"name": "x1", "role": "numeric"}, {"name": "c0", "role": "categorical"},
           {"name": "c1", "role": "categorical"}, {"name": "y", "role": "target"}]


def _tensors(encoder: TableEncoder, frame: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
    encoded = encoder.transform(frame)
    return torch.from_numpy(encoded["numeric"]), torch.from_numpy(encoded["categorical"])


def _train(model: nn.Module, numeric: torch.Tensor, categorical: torch.Tensor, target: torch.Tensor,
           loss: Any, epochs: int, seed: int = 0) -> None:
    """A plain loop, enough to check that the model can learn (the real loop is core/training's)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(target), generator=generator)
        for start in range(0, len(order), 64):
            rows = order[start : start + 64]
            optimizer.zero_grad()
            loss(model(numeric[rows], categorical[rows]), target[rows]).backward()
            optimizer.step()
    model.eval()


@pytest.fixture(scope="module")
def encoder() -> TableEncoder:
    return TableEncoder.fit(_table(200, 0), COLUMNS)


def test_the_family_is_registered_with_its_catalog() -> None:
    tables = family("tables")
    assert isinstance(tables, TabularFamily)
    assert [b.name for b in tables.catalog()] == ["mlp", "mlp_ensemble"]
    assert {(b.modality, b.weights) for b in tables.catalog()} == {("tables", "none")}
    with pytest.raises(GlassboxError, match="unknown table model 'resnet18'"):
        tables.describe("resnet18")


def test_a_model_is_built_from_the_encoder_and_keeps_it(encoder: TableEncoder) -> None:
    inputs = json.loads(json.dumps(encoder.to_dict())) | {"outputs": 3}
    model = create_model(_config(weights="auto"), 3, Path("unused"), inputs)
    assert isinstance(model, TabularMLP) and model.inputs == inputs
    assert TableEncoder.from_dict(model.inputs) == encoder
    # fast.ai's rule: 4 levels + unknown + missing = 6 indices -> 4 dims; 32 indices -> 11 dims
    assert encoder.cardinalities == [6, 32]
    assert [e.embedding_dim for e in model.embeddings] == [embedding_size(6), embedding_size(32)] == [4, 11]
    assert embedding_size(10**6) == 600
    numeric, categorical = _tensors(encoder, _table(5, 1))
    assert model(numeric, categorical).shape == (5, 3)
    assert model(numeric[:1], categorical[:1]).shape == (1, 3)  # one row, in eval and training mode alike
    model.train()
    assert model(numeric[:1], categorical[:1]).shape == (1, 3)
    # the same inputs rebuild the same architecture: what reloading a run does
    again = create_model(_config(), 3, Path("unused"), inputs)
    again.load_state_dict(model.state_dict())


def test_refusals(encoder: TableEncoder) -> None:
    tables = family("tables")
    with pytest.raises(GlassboxError, match="train from scratch"):
        tables.create(_config(weights="/tmp/model.safetensors"), 2, Path("unused"), encoder.to_dict())
    with pytest.raises(GlassboxError, match="needs the table's fitted encoding"):
        tables.create(_config(), 2, Path("unused"))
    with pytest.raises(GlassboxError, match="unknown table model"):
        tables.create(_config(backbone="transformer"), 2, Path("unused"), encoder.to_dict())


def test_the_ensemble_returns_every_member_in_training_and_their_mean_in_eval(encoder: TableEncoder) -> None:
    torch.manual_seed(0)
    tables = family("tables")
    model = tables.create(_config(backbone="mlp_ensemble"), 2, Path("unused"), encoder.to_dict())
    numeric, categorical = _tensors(encoder, _table(6, 2))
    model.train()
    assert model(numeric, categorical).shape == (6, 8, 2)
    model.eval()
    features = tables.embed(model, {"numeric": numeric, "categorical": categorical})
    assert features.shape == (6, 8, 256)
    model.head.train()
    members = tables.head(model)(features)
    model.head.eval()
    assert members.shape == (6, 8, 2)
    assert torch.allclose(model(numeric, categorical), members.mean(1), atol=1e-6)
    assert torch.allclose(tables.head(model)(features), model(numeric, categorical))
    # members differ (their adapters and heads), and each is scored against the same target
    assert not torch.allclose(members[:, 0], members[:, 1])
    target = torch.tensor([0, 1, 1, 0, 1, 0])
    loss = _loss("classification", {"classes": ["no", "yes"]}, target.numpy())
    expected = torch.stack([functional.cross_entropy(members[:, k], target) for k in range(8)]).mean()
    assert torch.allclose(loss(members, target), expected)
    plain = torch.randn(6, 2)
    assert torch.allclose(loss(plain, target), functional.cross_entropy(plain, target))


def test_everything_trains_at_the_learning_rate_whatever_the_mode(encoder: TableEncoder) -> None:
    tables = family("tables")
    model = tables.create(_config(backbone="mlp_ensemble"), 2, Path("unused"), encoder.to_dict())
    config = _config(backbone="mlp_ensemble", mode="head", weights="auto", lr=0.01)
    groups = tables.param_groups(model, config)
    assert all(p.requires_grad for p in model.parameters())
    assert {g["lr"] for g in groups} == {0.01}
    in_groups = [p for g in groups for p in g["params"]]
    assert len(in_groups) == len(list(model.parameters()))
    undecayed = {id(p) for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert id(model.adapters) in undecayed and id(model.blocks[0].weight) not in undecayed
    assert [id(p) for p in tables.head(model).parameters()] == [id(p) for g in groups if g["name"].startswith("head")
                                                                for p in g["params"]]


@pytest.mark.parametrize("backbone", ["mlp", "mlp_ensemble"])
def test_it_learns_a_classification_no_chance_model_reaches(backbone: str) -> None:
    frame = _table(1000, 3)
    # an interaction: the sign of x0 decides, flipped for two of the four levels of c0
    target = torch.tensor(((frame["x0"] > 0) ^ frame["c0"].isin(["a", "b"])).astype(int).to_numpy())
    encoder = TableEncoder.fit(frame[:800], COLUMNS)
    classification = tasks.task("classification")
    state = classification.state({"classes": ["no", "yes"]}, target[:800].numpy())
    torch.manual_seed(0)
    model = family("tables").create(_config(backbone=backbone), classification.outputs(state), Path("unused"),
                                    encoder.to_dict())
    numeric, categorical = _tensors(encoder, frame)
    _train(model, numeric[:800], categorical[:800], classification.model_targets(target[:800], state),
           _loss("classification", state, target[:800].numpy()), epochs=12)
    with torch.no_grad():
        probabilities = classification.answers(model(numeric[800:], categorical[800:]), state)
    assert probabilities.shape == (200, 2) and np.allclose(probabilities.sum(1), 1.0, atol=1e-5)
    accuracy = (probabilities.argmax(1) == target[800:].numpy()).mean()
    assert accuracy > 0.85  # the majority class is about half of the rows


def test_it_learns_a_standardised_regression_target() -> None:
    frame = _table(1000, 4)
    effect = frame["c0"].map({"a": -30.0, "b": 0.0, "c": 10.0, "d": 25.0}).to_numpy()
    values = 200.0 + 40.0 * np.tanh(frame["x0"].to_numpy()) + effect + np.random.default_rng(5).normal(0, 3, 1000)
    encoder = TableEncoder.fit(frame[:800], COLUMNS)
    regression = tasks.task("regression")
    state = regression.state({"target": "y"}, values[:800])
    assert state["mean"] == pytest.approx(values[:800].mean())
    torch.manual_seed(0)
    model = family("tables").create(_config(), regression.outputs(state), Path("unused"), encoder.to_dict())
    numeric, categorical = _tensors(encoder, frame)
    scaled = regression.model_targets(torch.from_numpy(values[:800]), state)
    assert abs(float(scaled.mean())) < 1e-4 and float(scaled.std()) == pytest.approx(1.0, abs=0.01)
    _train(model, numeric[:800], categorical[:800], scaled, _loss("regression", state, values[:800]), epochs=12)
    with torch.no_grad():
        predicted = regression.answers(model(numeric[800:], categorical[800:]), state)  # in the target's units
    truth = values[800:]
    r2 = 1 - ((truth - predicted) ** 2).sum() / ((truth - truth.mean()) ** 2).sum()
    assert r2 > 0.9  # the mean predicts R2 = 0; the noise alone leaves about 0.99
