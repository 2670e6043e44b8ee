"""Captum methods for text classifiers, word-level results, and a deletion check of their faithfulness.

Models read sub-word tokens ("unbelievable" -> "un", "##believ", "##able") but people read words, so
every method's token map is summed into the whitespace-separated words of the original text (`words`);
words cut off by the max length get no score rather than a misleading zero. Every token that stands for
text is a word's token, the tokenizer's unknown token included (an emoji word is read as [UNK]); only the
markers the tokenizer adds itself ([CLS], [SEP]..., its `special_tokens_mask`) stay out of the scores.

- Integrated Gradients (`ig`) runs on the token-embedding layer (LayerIntegratedGradients), from a
  reference text of padding tokens of the same length in which the tokenizer's added markers are kept,
  with the attention mask passed through, so the path only changes what the words contribute.
- Occlusion (`occlusion`) replaces one word's tokens at a time by that same padding (Captum's
  FeatureAblation, one feature group per word) and records how much the class score drops.
- `deletion_check` deletes the k words with the most evidence for the class from the text and compares
  the probability drop with deleting k random words (averaged over seeded draws): a faithful map's words
  matter more than random ones.
"""

from __future__ import annotations

import bisect
import copy
import html
import math
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from captum.attr import FeatureAblation, LayerIntegratedGradients
from torch import nn

from core import tasks
from core.artifacts import RunFiles, load_model, target_state
from core.errors import GlassboxError
from core.explain import ExplainOptions, Explanation, Progress, explain, method_registry, resolve_target

__all__ = ["METHODS", "TextMethod", "TextModel", "Word", "deletion_check", "explain_text", "scored_words", "to_html",
           "top_words", "words"]

_SEED = 0
_RANDOM_DRAWS = 20
_TOP_SHARE = 0.1  # k for the deletion check: a tenth of the words, at least one
_FOR = (22, 163, 74)  # green: evidence for the class
_AGAINST = (220, 38, 38)  # red: evidence against it


@dataclass(frozen=True)
class Word:
    """A whitespace-separated word of the text, where it is, and its share of the class score
    (None when the max length cut it off, so the model never read it)."""

    text: str
    start: int
    end: int
    score: float | None


class TextModel:
    """A trained text classifier prepared for Captum: a private copy in eval mode with parameter
    gradients off (only embedding gradients are needed), its tokenizer and the run's max length.
    `lock` serialises explanations, since Captum registers hooks on the shared model while it works."""

    modality = "text"

    def __init__(self, model: nn.Module, classes: list[str], max_length: int,
                 state: dict[str, Any] | None = None) -> None:
        self.model = copy.deepcopy(model).eval()
        # the run's task state (`target.json`): `Task.answers` reads its fitted temperature, so the probabilities
        # shown here are the calibrated ones every other view shows
        self.state = state if state is not None else {"classes": list(classes)}
        for param in self.model.parameters():
            param.requires_grad_(False)
        self.tokenizer = self.model.tokenizer
        self.classes = list(classes)
        self.max_length = min(max_length, int(self.model.max_length))
        self.lock = threading.RLock()

    @classmethod
    def from_run(cls, files: RunFiles, cache_dir: Path) -> TextModel:
        """A finished run's best model, reading texts exactly as its validation did."""
        model, config, classes = load_model(files, cache_dir)
        if config.modality != "text":
            raise GlassboxError(f"this run's model classifies {config.modality}, not text")
        return cls(model, classes, config.max_length, target_state(files))

    def encode(self, text: str) -> dict[str, torch.Tensor]:
        """A batch of one, cut at the max length as training did: `input_ids` and `attention_mask` (1 x
        tokens) for the model; for the methods, `word_ids` (1 x tokens), the index in `_spans(text)` of the
        word each token stands for (-1 for the markers the tokenizer adds itself, by its special tokens
        mask), and `read_chars` (1), how many characters of the text lie before the max length's cut.

        A token is placed in the word its character offsets start in, or in the next word when they start
        in the whitespace before it, so an [UNK] for a word of emoji belongs to that word. Where the text
        is cut is the first token the tokenizer pushed past the max length (its overflowing tokens)."""
        encoded = self.tokenizer([text], truncation=True, max_length=self.max_length, return_offsets_mapping=True,
                                 return_special_tokens_mask=True, return_overflowing_tokens=True)
        ends = [end for _, end in _spans(text)]
        last = max(len(ends) - 1, 0)
        word_ids = [-1 if special else min(bisect.bisect_right(ends, start), last)
                    for special, (start, _) in zip(encoded["special_tokens_mask"][0], encoded["offset_mapping"][0],
                                                   strict=True)]
        read_chars = len(text)
        if len(encoded["input_ids"]) > 1:  # the second row starts with the first token cut off
            read_chars = next(start for special, (start, _) in zip(encoded["special_tokens_mask"][1],
                                                                   encoded["offset_mapping"][1], strict=True)
                              if not special)
        ids = torch.tensor(encoded["input_ids"][:1], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                "word_ids": torch.tensor([word_ids], dtype=torch.long),
                "read_chars": torch.tensor([read_chars], dtype=torch.long)}

    def baseline(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Padding tokens where the words were (their [UNK] tokens included), the tokenizer's added markers
        kept: "the same text, without words"."""
        return torch.where(inputs["word_ids"] >= 0, self.tokenizer.pad_token_id, inputs["input_ids"])

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask)

    def cut_off(self, texts: list[str]) -> list[bool]:
        """Whether each text is longer than the max length in tokens, so the model reads only its start.
        Told by the tokenizer's overflow (fast tokenizers map overflowing pieces to their text, slow ones
        return them per text), so no text is tokenised in full and no length warning is printed."""
        if not texts:
            return []
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length, return_overflowing_tokens=True)
        if "overflow_to_sample_mapping" in encoded:
            pieces = Counter(encoded["overflow_to_sample_mapping"])
            return [pieces[i] > 1 for i in range(len(texts))]
        return [bool(rest) for rest in encoded["overflowing_tokens"]]

    def probabilities(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Calibrated probabilities (`Task.answers`: softmax(logits / T)), n x classes, in the order of `texts`.
        Texts are batched by length so that a batch pads to a similar length rather than to one long outlier (as
        training's buckets do)."""
        if not texts:
            return np.zeros((0, len(self.classes)))
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        logits = torch.empty(len(texts), len(self.classes))
        with self.lock, torch.no_grad():
            for start in range(0, len(order), batch_size):
                picked = order[start : start + batch_size]
                batch = self.tokenizer([texts[i] for i in picked], truncation=True, padding=True,
                                       max_length=self.max_length, return_tensors="pt")
                logits[picked] = self.logits(batch["input_ids"], batch["attention_mask"]).float()
        return np.asarray(tasks.task("classification").answers(logits, self.state), dtype=np.float64)


@dataclass(frozen=True)
class TextMethod:
    """One registered explanation method: `run` computes token maps (batch x tokens)."""

    name: str
    title: str
    description: str
    run: Callable[[TextModel, dict[str, torch.Tensor], int, ExplainOptions, Progress | None],
                  tuple[torch.Tensor, list[str]]]

    def unavailable(self, subject: TextModel) -> str | None:
        return None  # both methods need only the embedding layer, which every text model has

    def attribute(self, subject: TextModel, inputs: dict[str, torch.Tensor], target: int, options: ExplainOptions,
                  progress: Progress | None) -> tuple[torch.Tensor, list[str]]:
        with torch.enable_grad():
            return self.run(subject, inputs, target, options, progress)


METHODS, _register = method_registry("text", TextModel.from_run, TextMethod)


@_register("ig", "Integrated Gradients",
           "Each word's share of the score's change from a text of padding tokens to this one.")
def _integrated_gradients(subject: TextModel, inputs: dict[str, torch.Tensor], target: int,
                          options: ExplainOptions, progress: Progress | None) -> tuple[torch.Tensor, list[str]]:
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    baseline = subject.baseline(inputs)
    layer = LayerIntegratedGradients(subject.logits, subject.model.get_input_embeddings())
    attr, delta = layer.attribute(ids, baselines=baseline, target=target, additional_forward_args=(mask,),
                                  n_steps=options.ig_steps, internal_batch_size=options.internal_batch_size,
                                  return_convergence_delta=True)
    if progress is not None:
        progress(1.0)
    with torch.no_grad():
        change = subject.logits(ids, mask)[:, target] - subject.logits(baseline, mask)[:, target]
    gap = float(delta.abs().max()) / max(float(change.abs().max()), 1e-6)
    notes = [f"Integrated Gradients on the token embeddings from padding tokens in {options.ig_steps} steps; "
             f"the words' scores sum to the score change within {gap:.1%}"
             + (" (use more steps)." if gap > 0.05 else ".")]
    return attr.sum(-1), notes


@_register("occlusion", "Occlusion", "How much the class score drops when a word is replaced by padding.")
def _occlusion(subject: TextModel, inputs: dict[str, torch.Tensor], target: int, options: ExplainOptions,
               progress: Progress | None) -> tuple[torch.Tensor, list[str]]:
    ids, mask, word_ids = inputs["input_ids"], inputs["attention_mask"], inputs["word_ids"]
    # the tokenizer's added markers form one more group; their baseline is themselves, so occluding it
    # changes nothing
    groups = torch.where(word_ids >= 0, word_ids, int(word_ids.max()) + 1)
    attr = FeatureAblation(subject.logits).attribute(
        ids, baselines=subject.baseline(inputs), target=target, additional_forward_args=(mask,),
        feature_mask=groups, perturbations_per_eval=options.internal_batch_size,
    )
    if progress is not None:
        progress(1.0)
    # every token of a word carries the word's drop; spread it so that summing a word's tokens gives it
    pieces = torch.bincount(groups[0]).to(attr.dtype)
    count = len(set(word_ids[0].tolist()) - {-1})
    return attr.float() / pieces[groups], [f"Each of the {count} words read replaced by padding in turn."]


# ---- words ------------------------------------------------------------------------------------------


def words(text: str, inputs: dict[str, torch.Tensor], attribution: np.ndarray) -> list[Word]:
    """The token map (`Explanation.attribution`, one value per token of `inputs`) summed into the text's
    words. A word that starts past the max length's cut gets None; one before it that the tokenizer keeps
    nothing of (a zero-width space) gets 0.0, since the model's input is the same without it."""
    scores: dict[int, float] = {}
    for word_id, value in zip(inputs["word_ids"][0].tolist(), np.asarray(attribution, dtype=np.float64), strict=True):
        if word_id >= 0:
            scores[word_id] = scores.get(word_id, 0.0) + float(value)
    read_chars = int(inputs["read_chars"][0])
    return [Word(text[start:end], start, end, scores.get(i, 0.0) if start < read_chars else None)
            for i, (start, end) in enumerate(_spans(text))]


def top_words(scored: list[Word], n: int = 10) -> dict[str, list[tuple[str, float]]]:
    """The words with the most evidence for the class and against it, strongest first (the bar chart)."""
    read = [w for w in scored if w.score is not None]
    return {
        "for": [(w.text, w.score) for w in sorted(read, key=lambda w: -w.score) if w.score > 0][:n],
        "against": [(w.text, w.score) for w in sorted(read, key=lambda w: w.score) if w.score < 0][:n],
    }


def to_html(text: str, scored: list[Word]) -> str:
    """The text with each word's background green (for the class) or red (against), its opacity growing
    with the score's size relative to the strongest word; the exact score shows on hover. Everything
    from the text is escaped, so the result is safe to render."""
    strongest = max((abs(w.score) for w in scored if w.score is not None), default=0.0)
    parts: list[str] = []
    position = 0
    for word in scored:
        parts.append(html.escape(text[position : word.start]))
        token = html.escape(word.text)
        if word.score is None:
            parts.append(f'<span style="color:#9ca3af" title="cut off: beyond the max length">{token}</span>')
        else:
            alpha = abs(word.score) / strongest if strongest > 0 else 0.0
            red, green, blue = _FOR if word.score >= 0 else _AGAINST
            parts.append(f'<span style="background:rgba({red},{green},{blue},{alpha:.2f});border-radius:3px;'
                         f'padding:0 1px" title="{word.score:+.4f}">{token}</span>')
        position = word.end
    parts.append(html.escape(text[position:]))
    return f'<div style="line-height:1.9;white-space:pre-wrap">{"".join(parts)}</div>'


# ---- faithfulness -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deletion:
    k: int
    probability: float  # of the target class on the whole text
    topk_drop: float  # after deleting the k words with the most evidence for the class
    random_drop: float  # after deleting k random words, averaged over seeded draws

    @property
    def beats_random(self) -> bool:
        return self.topk_drop > self.random_drop

    def summary(self) -> dict[str, Any]:
        return {"k": self.k, "probability": round(self.probability, 4), "topk_drop": round(self.topk_drop, 4),
                "random_drop": round(self.random_drop, 4), "beats_random": self.beats_random}


def deletion_check(subject: TextModel, text: str, scored: list[Word], target: int, k: int | None = None,
                   draws: int = _RANDOM_DRAWS, seed: int = _SEED) -> Deletion:
    """Delete the `k` words (default: a tenth, at least one) with the most evidence for `target` from the
    text, and k random words (`draws` seeded times), and compare the drops in the target's probability.
    Deleting means the text without those words, tokenised again: what a reader would call deleting."""
    readable = [i for i, w in enumerate(scored) if w.score is not None]
    if not readable:
        raise GlassboxError("the text has no words to delete")
    k = min(k or max(1, math.ceil(_TOP_SHARE * len(readable))), len(readable))
    top = sorted(readable, key=lambda i: -scored[i].score)[:k]
    rng = np.random.default_rng(seed)
    random_sets = [rng.choice(readable, size=k, replace=False).tolist() for _ in range(draws)]
    variants = [text] + [_without(scored, set(chosen)) for chosen in [top, *random_sets]]
    probs = subject.probabilities(variants)[:, target]
    return Deletion(k=k, probability=float(probs[0]), topk_drop=float(probs[0] - probs[1]),
                    random_drop=float(probs[0] - probs[2:].mean()))


def scored_words(subject: TextModel, text: str, target: int, method: str = "ig",
                 options: ExplainOptions | None = None) -> tuple[list[Word], Explanation]:
    """One method's word scores for class `target` on `text`, and the explanation they come from."""
    inputs = subject.encode(text)
    result = explain(subject, inputs, target, method, options)
    return words(text, inputs, result.attribution), result


def explain_text(subject: TextModel, text: str, method: str = "ig", target: str | int | None = None,
                 options: ExplainOptions | None = None, k: int | None = None) -> dict[str, Any]:
    """Prediction, word scores, their HTML colouring and the deletion check for one text, as plain
    values: what `python -m core explain RUN --text ...` prints and the Explain and Predict pages show."""
    if not text.strip():
        raise GlassboxError("give a text to explain")
    probs = subject.probabilities([text])[0]
    predicted = int(probs.argmax())
    target_index = resolve_target(subject.classes, target, predicted)
    scored, result = scored_words(subject, text, target_index, method, options)
    deletion = deletion_check(subject, text, scored, target_index, k)
    order = np.argsort(-probs)
    return {
        "predicted": subject.classes[predicted],
        "probability": round(float(probs[predicted]), 4),
        "target": subject.classes[target_index],
        "target_probability": round(float(probs[target_index]), 4),
        "probabilities": {subject.classes[i]: round(float(probs[i]), 4) for i in order},
        "method": method,
        "tokens": [[w.text, None if w.score is None else round(w.score, 6)] for w in scored],
        "top_words": top_words(scored),
        "faithfulness": deletion.summary(),
        "html": to_html(text, scored),
        "notes": list(result.notes) + _cut_note(scored, subject.max_length),
        "seconds": round(result.seconds, 4),
    }


def _cut_note(scored: list[Word], max_length: int) -> list[str]:
    """The note that says the text was cut, when words lie past the max length (they carry no score)."""
    unread = sum(1 for w in scored if w.score is None)
    if not unread:
        return []
    return [f"the text is longer than the model's max length ({max_length} tokens): its last {unread} word(s) "
            "were not read and have no score"]


def _spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def _without(scored: list[Word], deleted: set[int]) -> str:
    return " ".join(w.text for i, w in enumerate(scored) if i not in deleted)
