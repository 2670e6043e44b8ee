"""The tables family: feed-forward networks over a table's encoded columns (`core.data.table_encoding`).

The model is `TabularMLP`: each categorical column gets its own embedding (size by fast.ai's rule,
min(600, round(1.6 * n ** 0.56)) for n indices), the embeddings and the numeric features are concatenated,
and blocks Linear -> LayerNorm -> ReLU -> Dropout lead to a linear head. LayerNorm rather than BatchNorm: it
behaves the same with one row (a prediction, an explanation) as with a batch, keeps no running statistics
that could drift between training and evaluation, and normalises an ensemble's [B, k, width] as it is.

Two backbones (`catalog`):
- "mlp": the plain MLP, two blocks of 256.
- "mlp_ensemble": TabM-mini (Gorishniy et al., "TabM: Advancing Tabular Deep Learning with Parameter-Efficient
  Ensembling", 2024): k = 8 members share every hidden layer's weights; member i reads the input multiplied by
  its own adapter r_i (initialised with random signs, as TabM-mini does) and has its own linear head. In
  training mode `forward` returns every member's logits [B, k, outputs], and each member is trained with its
  own loss on the same batch: the loss is the mean of the members' losses, which the run's task computes
  (`core.tasks`: `Task.loss` takes [B, k, outputs] as well as [B, outputs]). In eval mode it returns the mean of
  the members' logits [B, outputs] (TabM averages probabilities; the mean of logits keeps "the model returns
  logits" true for every family, and is the same thing for regression).

No pretrained weights exist for tables: everything trains from scratch (`config.weights` "none", or "auto",
which means none here), and the width, depth and dropout come from the backbone's name, so a run is rebuilt
from its config and its saved encoder alone (`model.inputs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core import models
from core.config import TrainConfig
from core.data.table_encoding import TableEncoder
from core.errors import GlassboxError
from core.models import FAMILIES, BackboneInfo, weights

__all__ = ["BACKBONES", "DEFAULT_BACKBONE", "MemberHeads", "TabularFamily", "TabularMLP", "TabularSpec",
           "embedding_size"]

DEFAULT_BACKBONE = "mlp"


@dataclass(frozen=True)
class TabularSpec:
    """What a tables backbone name stands for."""

    width: int
    depth: int
    dropout: float
    members: int  # 1: a plain MLP; more: a TabM-mini ensemble of that many members
    note: str


BACKBONES: dict[str, TabularSpec] = {
    "mlp": TabularSpec(256, 2, 0.1, 1, "plain MLP with category embeddings, two layers of 256; seconds on a CPU"),
    "mlp_ensemble": TabularSpec(256, 2, 0.1, 8, "8 MLPs trained as one (TabM-mini): usually closer to gradient "
                                               "boosting, a few times slower"),
}
_MAX_EMBEDDING = 600


def embedding_size(cardinality: int) -> int:
    """fast.ai's rule of thumb (`emb_sz_rule`) for an embedding over `cardinality` indices."""
    return min(_MAX_EMBEDDING, round(1.6 * cardinality**0.56))


class MemberHeads(nn.Module):
    """k linear heads, one per ensemble member: [B, k, width] -> [B, k, outputs] in training mode, the mean
    over members [B, outputs] in eval mode (so `head(model)(embed(...))` equals the model's output)."""

    def __init__(self, members: int, width: int, outputs: int) -> None:
        super().__init__()
        bound = width**-0.5  # nn.Linear's default initialisation, per member
        self.weight = nn.Parameter(torch.empty(members, width, outputs).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, outputs).uniform_(-bound, bound))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = torch.einsum("bkw,kwo->bko", features, self.weight) + self.bias
        return logits if self.training else logits.mean(1)


class TabularMLP(nn.Module):
    """`forward(numeric [B, n_numeric] float, categorical [B, n_categorical] long)` -> logits [B, outputs]
    (training mode of an ensemble: [B, members, outputs]).

    `embeddings` (one `nn.Embedding` per categorical column, in the encoder's order) and `numeric_input` (an
    identity the numeric features pass through) are where explanations attribute: LayerIntegratedGradients
    hooks them. `inputs` holds the fitted encoder's `to_dict()`, so datasets and prediction can rebuild it."""

    def __init__(self, n_numeric: int, cardinalities: Sequence[int], outputs: int, spec: TabularSpec,
                 inputs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.n_numeric = n_numeric
        self.members = spec.members
        self.numeric_input = nn.Identity()
        self.embeddings = nn.ModuleList(nn.Embedding(n, embedding_size(n)) for n in cardinalities)
        width_in = n_numeric + sum(e.embedding_dim for e in self.embeddings)
        if width_in == 0:
            raise GlassboxError("the table has no column left to learn from")
        if spec.members > 1:
            # TabM-mini's only per-member parameters before the heads: a multiplicative adapter on the input
            signs = torch.randint(0, 2, (spec.members, width_in)).float() * 2 - 1
            self.adapters: nn.Parameter | None = nn.Parameter(signs)
        else:
            self.adapters = None
        blocks: list[nn.Module] = []
        for i in range(spec.depth):
            blocks += [nn.Linear(width_in if i == 0 else spec.width, spec.width), nn.LayerNorm(spec.width), nn.ReLU(),
                       nn.Dropout(spec.dropout)]
        self.blocks = nn.Sequential(*blocks)
        width_out = spec.width if spec.depth else width_in
        self.head: nn.Module = (MemberHeads(spec.members, width_out, outputs) if spec.members > 1
                                else nn.Linear(width_out, outputs))
        self.inputs = inputs

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(numeric, categorical))

    def embed(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        """Pre-logits features: [B, width], or [B, members, width] for an ensemble."""
        parts = [self.numeric_input(numeric.float())]
        parts += [embedding(categorical[:, j]) for j, embedding in enumerate(self.embeddings)]
        x = torch.cat(parts, dim=1)
        if self.adapters is not None:
            x = x.unsqueeze(1) * self.adapters  # [B, k, width_in]
        return self.blocks(x)

    def no_weight_decay(self) -> set[str]:
        """The ensemble's adapters scale the input: decay would pull them to zero, not towards a simpler model."""
        return {"adapters"} if self.adapters is not None else set()

    def get_classifier(self) -> nn.Module:
        """Named like timm's: the final layer, which maps `embed` output to logits."""
        return self.head


class TabularFamily:
    """Feed-forward networks for tables, trained from scratch (`BACKBONES`)."""

    modality = "tables"

    def catalog(self) -> list[BackboneInfo]:
        return [self.describe(name) for name in BACKBONES]

    def describe(self, name: str) -> BackboneInfo:
        spec = BACKBONES.get(name)
        if spec is None:
            raise GlassboxError(f"unknown table model {name!r} (known: {', '.join(BACKBONES)})")
        return BackboneInfo(name=name, modality=self.modality, params_m=None, input_size=None, weights="none",
                            note=spec.note)

    def create(self, config: TrainConfig, num_outputs: int, cache_dir: Path,
               inputs: dict[str, Any] | None = None) -> nn.Module:
        """A fresh `TabularMLP` with a `num_outputs` head for the columns `inputs` (the fitted encoder's
        `to_dict()`, possibly with an "outputs" key) describes; `cache_dir` is unused. Raises GlassboxError for
        an unknown backbone, a weights file (no pretrained table model exists) or missing `inputs`."""
        self.describe(config.backbone)  # an unknown name is refused, naming the known ones
        spec = BACKBONES[config.backbone]
        if config.weights not in ("none", "auto"):
            raise GlassboxError("table models train from scratch: no weights file can be loaded for them")
        if inputs is None:
            raise GlassboxError("a table model needs the table's fitted encoding to be built")
        encoder = TableEncoder.from_dict(inputs)
        model = TabularMLP(len(encoder.numeric), encoder.cardinalities, num_outputs, spec, inputs=inputs)
        weights.attach_source(model, weights.WeightSource("none", None, "none (table models train from scratch)"))
        return model

    def param_groups(self, model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
        """Every parameter trains at `config.lr`, whatever `config.mode` says: there is no pretrained part to
        freeze or to spare (see `core.models.param_groups` for the groups and weight decay)."""
        return models.param_groups(model, config.updated(mode="full", weights="none"), model.head, lambda: [])

    def embed(self, model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return model.embed(inputs["numeric"], inputs["categorical"])

    def head(self, model: nn.Module) -> nn.Module:
        return model.head


FAMILIES.register("tables")(TabularFamily())
