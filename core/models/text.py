"""The text family: Hugging Face encoders (BERT, DistilBERT, RoBERTa, DeBERTa, sentence-transformers...)
with a classification head, and a short curated list that the UI offers first.

The model is `TextClassifier`: the pretrained encoder (`AutoModel`), mean pooling over the real
tokens, and one linear layer. One head for every architecture, rather than each
`AutoModelForSequenceClassification`'s own, because (1) those heads differ in what they read (BERT's
a pooled [CLS], RoBERTa's the whole sequence, DistilBERT's adds a layer), so features computed once
per text for head-only training would need a special case per architecture, and (2) sentence
encoders such as all-MiniLM-L6-v2 were trained to be read by mean pooling: a head on [CLS] would
discard what makes them good frozen feature extractors.

Where a backbone comes from, in order: a folder the user names (as `from_pretrained` does), the copy
of all-MiniLM-L6-v2 shipped as a pip package, the local Hugging Face cache, then the hub when it can
be reached. Nothing runs the model repository's own code (`trust_remote_code=False`).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import try_to_load_from_cache
from huggingface_hub.utils import HFValidationError, validate_repo_id
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PretrainedConfig, PreTrainedTokenizerBase

from core import models
from core.config import TrainConfig
from core.errors import GlassboxError
from core.models import FAMILIES, BackboneInfo, shipped, weights

__all__ = ["DEFAULT_BACKBONE", "TextClassifier", "TransformersFamily"]

_log = logging.getLogger(__name__)

DEFAULT_BACKBONE = shipped.DEFAULT_TEXT_BACKBONE
# name -> (millions of parameters without a pooler, max tokens, why someone would pick it); the sizes
# are shown when the model is not on this machine, so nothing has to be downloaded to list them
_CURATED: dict[str, tuple[float, int, str]] = {
    DEFAULT_BACKBONE: (22.6, 512, "small and fast sentence encoder; ships with Glassbox and works offline"),
    "distilbert-base-uncased": (66.4, 512, "distilled BERT: about twice as fast as BERT base, nearly as accurate"),
    "bert-base-uncased": (108.9, 512, "the classic English encoder"),
    "roberta-base": (124.1, 512, "BERT trained longer on more text; strong on reviews and informal text"),
    "microsoft/deberta-v3-small": (141.3, 512, "accurate for its depth; large vocabulary"),
}
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")
# tokenizers that declare no limit report a huge model_max_length; fall back to the position embeddings
_NO_LIMIT = 1_000_000
_DROPOUT = 0.1
# share of the encoder's layers that "partial" fine-tuning trains, from the top
_PARTIAL_SHARE = 1 / 3
_WAY_OUT = (f"use {DEFAULT_BACKBONE}, which ships with Glassbox, or copy the model's folder (from "
            "save_pretrained or a hub download) to this machine and give its path")


class TextClassifier(nn.Module):
    """Encoder, mean pooling over real tokens, dropout, linear head: `forward(input_ids,
    attention_mask)` returns logits. It carries the tokenizer that must go with it (`tokenizer`, not a
    module, so not in the state dict) and the longest input its position embeddings allow
    (`max_length`)."""

    def __init__(self, encoder: nn.Module, tokenizer: PreTrainedTokenizerBase, num_classes: int,
                 max_length: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(_DROPOUT)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_classes)
        self.tokenizer = tokenizer
        self.max_length = max_length

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.embed(input_ids, attention_mask)))

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The pooled text vector the head reads: the mean of the last hidden states of real tokens."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def get_classifier(self) -> nn.Module:
        """Named like timm's, so `weights` can tell the head from the backbone in a user's weights file."""
        return self.classifier

    def get_input_embeddings(self) -> nn.Module:
        """The token embedding layer, where explanations attribute (integrated gradients)."""
        return self.encoder.get_input_embeddings()


class TransformersFamily:
    """Text classifiers on Hugging Face encoders; any model id or local folder is accepted."""

    modality = "text"

    def catalog(self) -> list[BackboneInfo]:
        """The curated models, the default first; those whose weights are nowhere are still listed
        (with weights "none"), so the user sees what internet access would add."""
        return [self._info(name, _locate(name)) for name in _CURATED]

    def describe(self, name: str) -> BackboneInfo:
        location = _locate(name)
        if location.kind == "none":
            raise GlassboxError(_not_found(name))
        return self._info(name, location)

    def create(self, config: TrainConfig, num_classes: int, cache_dir: Path,
               inputs: dict[str, Any] | None = None) -> nn.Module:
        """`config.weights`: "auto" loads the pretrained encoder; "none" builds it from its config with
        random weights (still needing the config and tokenizer, from the same sources); a file path
        loads a state dict, such as a previous Glassbox run's model.safetensors, over a random start.
        `cache_dir` is unused: downloads go to the Hugging Face cache, where other tools find them too."""
        location = _locate(config.backbone)
        if location.kind == "none":
            raise GlassboxError(_not_found(config.backbone))
        where = location.where
        tokenizer = _load(AutoTokenizer.from_pretrained, where, config.backbone, "tokenizer")
        if tokenizer.pad_token_id is None:  # decoder-style models have none; any id works under the mask
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        hf_config = _load(AutoConfig.from_pretrained, where, config.backbone, "configuration")
        if config.weights == "auto":
            encoder = _load(AutoModel.from_pretrained, where, config.backbone, "weights", config=hf_config)
        else:
            encoder = AutoModel.from_config(hf_config, trust_remote_code=False)
        _drop_pooler(encoder)
        model = TextClassifier(encoder, tokenizer, num_classes, _max_length(tokenizer, hf_config))
        if config.weights == "auto":
            shown = shipped.TEXT_PACKAGES[config.backbone][0] if location.kind == "pip package" else where
            source = weights.WeightSource(location.kind, location.path, f"{location.kind} {shown}")
        elif config.weights == "none":
            source = weights.WeightSource("none", None, "none (random init, trained from scratch)")
        else:
            path = Path(config.weights).expanduser()
            if not path.is_file():
                raise GlassboxError(f"weights file {path} not found")
            source = weights.WeightSource("file", path, weights.load_user_weights(model, path))
        weights.attach_source(model, source)
        _log.info("weights for %s: %s", config.backbone, source.description)
        return model

    def param_groups(self, model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
        """Optimizer groups for `config.mode` (see `core.models.param_groups`), freezing everything
        else; "partial" trains the top third of the encoder's layers besides the head."""
        return models.param_groups(model, config, model.classifier, lambda: _partial_trainable(model))

    def embed(self, model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return model.embed(**inputs)

    def head(self, model: nn.Module) -> nn.Module:
        """Dropout and the linear layer, the very modules of `model`, so training this trains the model."""
        return nn.Sequential(model.dropout, model.classifier)

    def _info(self, name: str, location: _Location) -> BackboneInfo:
        params, max_length, note = _CURATED.get(name, (None, None, ""))
        if location.path is not None:
            params, max_length = _measure(str(location.path))
        return BackboneInfo(name=name, modality=self.modality, params_m=params, input_size=max_length,
                            weights=location.kind, note=note)


FAMILIES.register("text")(TransformersFamily())


# ---- where a backbone comes from -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Location:
    """Where a backbone's files are: `kind` as in `BackboneInfo.weights` ("folder", "pip package",
    "local cache", "hub" or "none"); `path` for the first three, `hub_id` for "hub"."""

    kind: str
    path: Path | None = None
    hub_id: str = ""

    @property
    def where(self) -> str:
        """What `from_pretrained` is given, and what a run log shows: a folder, or the hub id."""
        return str(self.path) if self.path is not None else self.hub_id


def _locate(name: str) -> _Location:
    """Without loading or downloading anything, so the catalog can show it cheaply."""
    folder = Path(name).expanduser()
    if (folder / "config.json").is_file():
        return _Location("folder", folder.resolve())
    pip_folder = shipped.text_folder(name)
    if pip_folder is not None:
        return _Location("pip package", pip_folder)
    if not _is_repo_id(name):
        return _Location("none")
    cached = _cached_folder(name)
    if cached is not None:
        return _Location("local cache", cached)
    if weights.hub_reachable():
        return _Location("hub", hub_id=name)
    return _Location("none")


def _is_repo_id(name: str) -> bool:
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _cached_folder(repo_id: str) -> Path | None:
    """The snapshot folder of a previous download, when it holds a config and weights."""
    config = try_to_load_from_cache(repo_id, "config.json", cache_dir=weights.hf_cache_dir())
    # besides a path or None, the hub client may return a sentinel meaning "known not to exist"
    if not isinstance(config, str):
        return None
    folder = Path(config).parent
    return folder if any((folder / f).is_file() for f in _WEIGHT_FILES) else None


def _not_found(name: str) -> str:
    if not _is_repo_id(name) and not Path(name).expanduser().exists():
        return f"{name!r} is neither a Hugging Face model id (like 'org/model') nor a folder on this machine"
    if Path(name).expanduser().is_dir():
        return f"folder {name} holds no config.json: is it a Hugging Face model folder?"
    return (f"model {name!r} is not on this machine (not in the Hugging Face cache at "
            f"{weights.hf_cache_dir()}) and the hub is unreachable: {_WAY_OUT}")


def _load(loader: Any, where: str, name: str, what: str, **kwargs: Any) -> Any:
    try:
        return loader(where, trust_remote_code=False, cache_dir=weights.hf_cache_dir(), **kwargs)
    except Exception as exc:
        # downloads, cache reads and parsers fail with many library-specific types (HTTP, OS, JSON,
        # safetensors, "requires remote code" ValueErrors); the person can act on all of them the same way
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GlassboxError(f"could not load the {what} of {name} from {where} ({reason})") from exc


def _drop_pooler(encoder: nn.Module) -> None:
    """BERT-style encoders carry a [CLS] pooler that mean pooling never calls: without it no parameter
    sits in the optimizer without a gradient and the saved weights are smaller."""
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None


def _max_length(tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig) -> int:
    if 0 < tokenizer.model_max_length < _NO_LIMIT:
        return int(tokenizer.model_max_length)
    return int(getattr(config, "max_position_embeddings", 0) or 512)


@functools.cache
def _measure(folder: str) -> tuple[float | None, int | None]:
    """(millions of parameters, max tokens) of a local model: the encoder is built on the meta device
    (no memory, no weights), the limit read from the tokenizer's config without loading it."""
    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
        with torch.device("meta"):
            encoder = AutoModel.from_config(config, trust_remote_code=False)
    except Exception:  # an architecture this transformers cannot build: its size is then unknown
        return None, None
    _drop_pooler(encoder)
    params = round(sum(p.numel() for p in encoder.parameters()) / 1e6, 1)
    limit = 0
    tokenizer_config = Path(folder) / "tokenizer_config.json"
    if tokenizer_config.is_file():
        limit = json.loads(tokenizer_config.read_text(encoding="utf-8")).get("model_max_length") or 0
    if not 0 < limit < _NO_LIMIT:
        limit = getattr(config, "max_position_embeddings", 0) or 0
    return params, int(limit) or None


def _partial_trainable(model: TextClassifier) -> set[str]:
    """The parameters of the top third of the encoder's layers, which hold the most task-specific
    features; named as in `model`, which is how `core.models.param_groups` tells them apart."""
    layers = _encoder_layers(model.encoder)
    top = layers[len(layers) - math.ceil(len(layers) * _PARTIAL_SHARE):]
    ids = {id(p) for layer in top for p in layer.parameters()}
    return {name for name, param in model.named_parameters() if id(param) in ids}


def _encoder_layers(encoder: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks: the longest ModuleList (encoder.layer in BERT, transformer.layer
    in DistilBERT, layers in newer models)."""
    stacks = [m for m in encoder.modules() if isinstance(m, nn.ModuleList)]
    if not stacks:
        raise GlassboxError(
            f"partial fine-tuning is not supported for {type(encoder).__name__}: use head or full"
        )
    return max(stacks, key=len)
