"""The series family: recurrent, convolutional and transformer networks over padded, masked sequences.

Every model reads `values` float [B, T, C] (C channels, z-scored by the series modality), `mask` bool [B, T]
(True on real steps; a shorter series is padded after its end) and, for a forecast with known future
covariates, `future` float [B, H, K], and returns [B, outputs]: class logits, or the H standardised next values
(direct multi-step forecasting). Padded steps never reach the output: on entry a padded step's values are
replaced by 0, whatever they hold (NaN included), and each backbone then ignores those steps as below (in eval
mode the output of a series is the same whatever padding it comes with). `mask` may be left out: all steps real.

Backbones (`BACKBONES`), all trained from scratch (no pretrained series model is shipped):
- "lstm", "gru": two recurrent layers over packed sequences (`pack_padded_sequence`: the state stops at each
  series' last real step), bidirectional for classification (64 units a direction) and forward-only for
  forecasting (128 units, since the future must not be read from the past's end backwards); the features are
  the last layer's final state of each direction.
- "cnn": the fully convolutional network of Wang, Yan and Oates, "Time series classification from scratch with
  deep neural networks: a strong baseline" (IJCNN 2017): three blocks conv(8) 128 -> conv(5) 256 -> conv(3) 128,
  each batch-normalised and rectified, then global average pooling over the real steps. The batch statistics
  count real steps only (`MaskedBatchNorm`), and padded steps are set back to 0 before every convolution, which
  is what zero padding at the series' end would do. (LayerNorm over each step's channels, which needs no batch,
  was tried and dropped: on a univariate series it normalises away the local amplitude, and it took 6 epochs
  instead of 2 to learn sine against square waves.)
- "transformer": a PatchTST-style encoder (Nie et al., "A time series is worth 64 words: long-term forecasting
  with transformers", ICLR 2023): the series is cut into patches of P steps (P 4, 8 or 16 by the training
  length; the last patch padded), each patch (all channels) is embedded linearly, learned positions are added,
  three pre-norm encoder layers of width 64 attend over the patches with padded patches excluded by
  `src_key_padding_mask`, and the features are the mean over the real patches beside the last real patch.
  A series longer than training's reads its extra patches at the last learned position.

Forecasting models (`inputs` holds a "horizon") also read, beside the backbone's features, the flattened future
covariates [H * K] and the target channel's last L context steps (L = `inputs["context"]`): the head is one
linear layer over all of them, so it contains a linear autoregression on the context, which alone is a strong
forecaster (Zeng et al., "Are transformers effective for time series forecasting?", AAAI 2023); the network
learns what that misses.

The number of channels, the training length and the horizon come from `inputs` (the modality's fitted inputs:
{"channels": names or a count, "length": T} for classification; for a forecast "channels", "context",
"horizon", "future_covariates") or, without them, from `config.extra`; `model.inputs` keeps them, so a run is
rebuilt from its config and inputs alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional
from torch.nn.utils.rnn import pack_padded_sequence

from core import models
from core.config import TrainConfig
from core.errors import GlassboxError
from core.models import FAMILIES, BackboneInfo, weights

__all__ = ["BACKBONES", "DEFAULT_BACKBONE", "ConvEncoder", "MaskedBatchNorm", "PatchEncoder", "RecurrentEncoder",
           "SeriesFamily", "SeriesShape", "SequenceModel", "SequenceSpec", "patch_size"]

DEFAULT_BACKBONE = "gru"


@dataclass(frozen=True)
class SequenceSpec:
    """What a series backbone name stands for."""

    kind: str  # "lstm", "gru", "cnn" or "transformer": which encoder
    note: str


BACKBONES: dict[str, SequenceSpec] = {
    "lstm": SequenceSpec("lstm", "two LSTM layers over the real steps (bidirectional for classification)"),
    "gru": SequenceSpec("gru", "two GRU layers over the real steps: like the LSTM, a little faster; seconds on a CPU"),
    "cnn": SequenceSpec("cnn", "fully convolutional network (Wang et al. 2017): three conv blocks and average pooling; "
                               "fast and strong on classification"),
    "transformer": SequenceSpec("transformer", "small transformer over patches of steps (PatchTST, Nie et al. 2023); "
                                               "best with long series and a GPU"),
}

_RNN_LAYERS = 2
_RNN_DROPOUT = 0.1
_CONV_BLOCKS = ((128, 8), (256, 5), (128, 3))  # (channels out, kernel) of FCN's three blocks
_PATCH_WIDTH = 64
_PATCH_HEADS = 4
_PATCH_LAYERS = 3
_PATCH_DROPOUT = 0.1
_DEFAULT_LENGTH = 128  # positions a transformer gets when nobody said how long the series are


def patch_size(length: int) -> int:
    """Steps per transformer patch for series of `length` steps: 4 below 48, 8 below 256, else 16, so a series
    is between about 6 and 64 patches (PatchTST uses 16 on its long benchmark series)."""
    return 4 if length < 48 else 8 if length < 256 else 16


@dataclass(frozen=True)
class SeriesShape:
    """What a series model needs to know of its inputs before the first batch."""

    channels: int
    length: int  # the training length (classification) or context L (forecast): sizes transformer positions
    horizon: int | None  # H for a forecast, None for classification
    future: int  # K: covariates known over the horizon (0 when none)

    @property
    def forecasts(self) -> bool:
        return self.horizon is not None

    @classmethod
    def of(cls, inputs: dict[str, Any] | None, config: TrainConfig) -> SeriesShape:
        """From the modality's fitted `inputs`, else `config.extra` (same keys). Raises GlassboxError when
        neither says how many channels the series have, or a count is not a positive whole number."""
        given = {**(config.extra or {}), **(inputs or {})}
        channels = given.get("channels")
        count = len(channels) if isinstance(channels, (list, tuple)) else channels
        if count is None:
            raise GlassboxError("a series model needs to know how many channels the series have")
        horizon = given.get("horizon")
        length = given.get("context") if horizon is not None else given.get("length")
        try:
            shape = cls(int(count), int(length or _DEFAULT_LENGTH), None if horizon is None else int(horizon),
                        int(given.get("future_covariates") or 0))
        except (TypeError, ValueError):
            raise GlassboxError("the series' channels, length and horizon must be whole numbers") from None
        if shape.channels < 1 or shape.length < 1 or shape.future < 0 or (shape.horizon is not None
                                                                          and shape.horizon < 1):
            raise GlassboxError("a series model needs at least one channel, one step and a horizon of one or more")
        return shape


class RecurrentEncoder(nn.Module):
    """LSTM or GRU over packed sequences: [B, T, C] values and [B, T] mask -> [B, features], the last layer's
    final state of each direction (forward: at the last real step; backward: at the first)."""

    def __init__(self, cell: str, channels: int, hidden: int, bidirectional: bool) -> None:
        super().__init__()
        kind = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = kind(channels, hidden, num_layers=_RNN_LAYERS, batch_first=True, bidirectional=bidirectional,
                        dropout=_RNN_DROPOUT)
        if cell == "lstm":
            # forget gates start open (bias 1): gradients then reach early steps from the first update
            # (Jozefowicz et al., "An empirical exploration of recurrent network architectures", ICML 2015)
            for name, param in self.rnn.named_parameters():
                if name.startswith("bias_hh"):
                    with torch.no_grad():
                        param[hidden : 2 * hidden].fill_(1.0)
        self.directions = 2 if bidirectional else 1
        self.features = hidden * self.directions

    def forward(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # real steps first, in their order (a mask with holes or padding in front reads as the real steps only)
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
        values = values.gather(1, order.unsqueeze(-1).expand_as(values))
        lengths = mask.sum(1).clamp(min=1).cpu()  # an empty series reads one zero step rather than failing
        packed = pack_padded_sequence(values, lengths, batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        final = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c); [layers * directions, B, hidden]
        return final[-self.directions:].transpose(0, 1).reshape(len(values), self.features)


class MaskedBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the channels of [B, T, C] features whose statistics count the real steps only (`keep`
    [B, T, 1] is 1 on them): padding neither shifts a batch's mean nor the running statistics that evaluation
    uses, so in eval mode a series' output depends on nothing but its own real steps."""

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if keep is None:
            keep = torch.ones_like(x[..., :1])
        if self.training:
            count = keep.sum().clamp(min=1.0)
            mean = (x * keep).sum((0, 1)) / count
            var = (((x - mean) * keep) ** 2).sum((0, 1)) / count
            with torch.no_grad():
                momentum = self.momentum if self.momentum is not None else 0.1
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_((var * count / (count - 1).clamp(min=1.0)).detach(), momentum)
                self.num_batches_tracked.add_(1)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class ConvEncoder(nn.Module):
    """FCN (Wang et al. 2017): three blocks conv -> BatchNorm over real steps -> ReLU, masked global average
    pooling: [B, T, C], [B, T] -> [B, 128]."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        convs, norms = [], []
        width = channels
        for out, kernel in _CONV_BLOCKS:
            convs.append(nn.Conv1d(width, out, kernel))
            norms.append(MaskedBatchNorm(out))
            width = out
        self.convs, self.norms = nn.ModuleList(convs), nn.ModuleList(norms)
        self.features = width

    def forward(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.unsqueeze(-1).to(values.dtype)  # [B, T, 1]
        x = values
        for conv, norm in zip(self.convs, self.norms, strict=True):
            # padded steps back to 0 before each convolution: as if the series ended there (zero padding)
            kernel = conv.kernel_size[0]  # "same" padding by hand: torch warns about it for even kernels
            padded = functional.pad((x * keep).transpose(1, 2), ((kernel - 1) // 2, kernel // 2))
            x = conv(padded).transpose(1, 2)
            x = functional.relu(norm(x, keep))
        return (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)


class PatchEncoder(nn.Module):
    """PatchTST-style encoder: [B, T, C], [B, T] -> [B, 2 * width] (mean of the real patches, last real patch)."""

    def __init__(self, channels: int, length: int) -> None:
        super().__init__()
        self.patch = patch_size(length)
        self.embedding = nn.Linear(self.patch * channels, _PATCH_WIDTH)
        self.positions = nn.Parameter(torch.zeros(1, math.ceil(length / self.patch), _PATCH_WIDTH))
        nn.init.trunc_normal_(self.positions, std=0.02)
        layer = nn.TransformerEncoderLayer(_PATCH_WIDTH, _PATCH_HEADS, 2 * _PATCH_WIDTH, _PATCH_DROPOUT,
                                           batch_first=True, norm_first=True)
        # nested tensors would drop padded patches' outputs in eval mode only: one code path for both modes
        self.encoder = nn.TransformerEncoder(layer, _PATCH_LAYERS, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(_PATCH_WIDTH)
        self.features = 2 * _PATCH_WIDTH

    def no_weight_decay(self) -> set[str]:
        return {"positions"}

    def forward(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, steps, channels = values.shape
        extra = (-steps) % self.patch
        values = functional.pad(values, (0, 0, 0, extra))
        mask = functional.pad(mask, (0, extra), value=False)
        count = (steps + extra) // self.patch
        patches = values.reshape(batch, count, self.patch * channels)
        real = mask.reshape(batch, count, self.patch).any(2)
        real[:, 0] |= ~real.any(1)  # an empty series keeps one (zero) patch: attention over none is undefined
        tokens = self.norm(self.encoder(self.embedding(patches) + self._positions(count),
                                        src_key_padding_mask=~real))
        weight = real.unsqueeze(-1).to(tokens.dtype)
        mean = (tokens * weight).sum(1) / weight.sum(1)
        last = (real * torch.arange(count, device=real.device)).argmax(1)
        return torch.cat([mean, tokens[torch.arange(batch, device=tokens.device), last]], dim=1)

    def _positions(self, count: int) -> torch.Tensor:
        """The first `count` learned positions; patches past the training length share the last one (rescaling
        the table instead would move every patch's position with the amount of padding in the batch)."""
        index = torch.arange(count, device=self.positions.device).clamp(max=self.positions.shape[1] - 1)
        return self.positions[:, index]


class SequenceModel(nn.Module):
    """`forward(values [B, T, C], mask [B, T] bool = None, future [B, H, K] = None)` -> [B, outputs].

    `embed` gives the head's input (the encoder's features, then for a forecast the flattened future covariates
    and the target channel's last `context` steps), `head` is one linear layer, so `head(embed(...))` is the
    output. `inputs` keeps what the model was built from (`SeriesShape.of`). Raises GlassboxError when the
    channels differ from training's or a forecast model that reads future covariates gets none."""

    def __init__(self, encoder: nn.Module, shape: SeriesShape, outputs: int, inputs: dict[str, Any] | None) -> None:
        super().__init__()
        self.encoder = encoder
        self.shape = shape
        self.channels = shape.channels
        self.horizon = shape.horizon
        features = encoder.features
        if shape.forecasts:
            features += (shape.horizon or 0) * shape.future + shape.length
        self.head = nn.Linear(features, outputs)
        self.inputs = inputs

    def forward(self, values: torch.Tensor, mask: torch.Tensor | None = None,
                future: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.embed(values, mask, future))

    def embed(self, values: torch.Tensor, mask: torch.Tensor | None = None,
              future: torch.Tensor | None = None) -> torch.Tensor:
        """Pre-logits features [B, features]."""
        values = values.float()
        if values.ndim != 3 or values.shape[2] != self.channels:
            raise GlassboxError(f"the model reads series of {self.channels} channel(s), not {tuple(values.shape[1:])}")
        mask = (torch.ones(values.shape[:2], dtype=torch.bool, device=values.device) if mask is None
                else mask.to(device=values.device, dtype=torch.bool))
        # whatever a padded step holds (even NaN) reads as 0, and no gradient reaches it
        values = torch.where(mask.unsqueeze(-1), values, torch.zeros((), dtype=values.dtype, device=values.device))
        features = self.encoder(values, mask)
        if not self.shape.forecasts:
            return features
        parts = [features, self._context(values)]
        if self.shape.future:
            if future is None or future.shape[1:] != (self.horizon, self.shape.future):
                raise GlassboxError(f"this forecast needs the {self.shape.future} covariate(s) over the next "
                                    f"{self.horizon} steps")
            parts.append(future.float().reshape(values.shape[0], -1))  # not len(): torch.export keeps B symbolic
        return torch.cat(parts, dim=1)

    def _context(self, values: torch.Tensor) -> torch.Tensor:
        """The target channel's last `length` steps [B, L] (zeros in front of a shorter history)."""
        target = values[:, -self.shape.length:, 0]
        return functional.pad(target, (self.shape.length - target.shape[1], 0))

    def no_weight_decay(self) -> set[str]:
        return {f"encoder.{name}" for name in getattr(self.encoder, "no_weight_decay", set)()}

    def get_classifier(self) -> nn.Module:
        """Named like timm's: the final layer, which maps `embed` output to logits."""
        return self.head


class SeriesFamily:
    """Sequence networks for time series, trained from scratch (`BACKBONES`)."""

    modality = "series"

    def catalog(self) -> list[BackboneInfo]:
        return [self.describe(name) for name in BACKBONES]

    def describe(self, name: str) -> BackboneInfo:
        spec = BACKBONES.get(name)
        if spec is None:
            raise GlassboxError(f"unknown series model {name!r} (known: {', '.join(BACKBONES)})")
        return BackboneInfo(name=name, modality=self.modality, params_m=None, input_size=None, weights="none",
                            note=spec.note)

    def create(self, config: TrainConfig, num_outputs: int, cache_dir: Path,
               inputs: dict[str, Any] | None = None) -> nn.Module:
        """A fresh `SequenceModel` with `num_outputs` outputs (classes, or the horizon H) for the series `inputs`
        describes (`SeriesShape.of`); `cache_dir` is unused. Raises GlassboxError for an unknown backbone, a
        weights file (no pretrained series model exists) or unknown channels."""
        self.describe(config.backbone)  # an unknown name is refused, naming the known ones
        spec = BACKBONES[config.backbone]
        if config.weights not in ("none", "auto"):
            raise GlassboxError("series models train from scratch: no weights file can be loaded for them")
        shape = SeriesShape.of(inputs, config)
        encoder: nn.Module
        if spec.kind in ("lstm", "gru"):
            # forecasting reads the past forwards only; classification sees the whole series from both ends
            encoder = RecurrentEncoder(spec.kind, shape.channels, 128 if shape.forecasts else 64,
                                       bidirectional=not shape.forecasts)
        elif spec.kind == "cnn":
            encoder = ConvEncoder(shape.channels)
        else:
            encoder = PatchEncoder(shape.channels, shape.length)
        model = SequenceModel(encoder, shape, num_outputs, inputs)
        weights.attach_source(model, weights.WeightSource("none", None, "none (series models train from scratch)"))
        return model

    def param_groups(self, model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
        """Every parameter trains at `config.lr`, whatever `config.mode` says: there is no pretrained part to
        freeze or to spare (see `core.models.param_groups` for the groups and weight decay)."""
        return models.param_groups(model, config.updated(mode="full", weights="none"), model.head, lambda: [])

    def embed(self, model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return model.embed(inputs["values"], inputs.get("mask"), inputs.get("future"))

    def head(self, model: nn.Module) -> nn.Module:
        return model.head


FAMILIES.register("series")(SeriesFamily())
