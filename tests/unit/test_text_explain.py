"""Text explanations on the pip-shipped MiniLM with an untrained head (the methods' arithmetic does not
need a trained model; the planted-word test in test_text_models does): sub-word pieces merged into words,
words beyond the max length, both methods' defining properties, the HTML and the deletion check."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import TrainConfig
from core.explain import ExplainOptions, explain, methods
from core.explain.text import TextModel, Word, deletion_check, explain_text, to_html, top_words, words
from core.models import family
from core.models.text import DEFAULT_BACKBONE


@pytest.fixture(scope="module")
def subject() -> TextModel:
    torch.manual_seed(0)
    config = TrainConfig(dataset_id="test", modality="text", backbone=DEFAULT_BACKBONE)
    model = family("text").create(config, 2, Path("unused"))
    return TextModel(model, ["bad", "good"], max_length=16)


def test_pieces_are_merged_into_the_words_of_the_text(subject: TextModel) -> None:
    text = "Glassboxification   works, mostly!"
    inputs = subject.encode(text)
    word_ids = inputs["word_ids"][0].tolist()
    assert word_ids[0] == -1 and word_ids[-1] == -1  # [CLS] and [SEP]
    assert word_ids.count(0) > 1  # the made-up word is several pieces
    attribution = np.arange(len(word_ids), dtype=np.float64)
    scored = words(text, inputs, attribution)
    assert [w.text for w in scored] == ["Glassboxification", "works,", "mostly!"]
    assert [text[w.start : w.end] for w in scored] == [w.text for w in scored]
    expected = [sum(attribution[i] for i, w in enumerate(word_ids) if w == k) for k in range(3)]
    assert [w.score for w in scored] == expected


def _tokens(subject: TextModel, ids: torch.Tensor) -> list[str]:
    return subject.tokenizer.convert_ids_to_tokens(ids[0].tolist())


def _cut_off(html: str) -> list[str]:
    return re.findall(r'<span style="color:#9ca3af" title="cut off: beyond the max length">([^<]*)</span>', html)


def test_words_beyond_the_max_length_get_no_score(subject: TextModel) -> None:
    # three pieces a word: 14 pieces fit between [CLS] and [SEP], so the cut falls inside "glassbox4"
    text = " ".join(f"glassbox{i}" for i in range(30))
    inputs = subject.encode(text)
    assert _tokens(subject, inputs["input_ids"])[-3:] == ["glass", "##box", "[SEP]"]
    assert int(inputs["read_chars"][0]) == text.index("glassbox4") + len("glassbox")
    scored = words(text, inputs, np.ones(16))
    assert [w.score for w in scored] == [3.0, 3.0, 3.0, 3.0, 2.0] + [None] * 25  # the part of "glassbox4" read
    assert _cut_off(to_html(text, scored)) == [f"glassbox{i}" for i in range(5, 30)]


def test_words_the_tokenizer_drops_are_read_as_nothing_not_cut_off(subject: TextModel) -> None:
    # a zero-width space reaches the model as no token at all, so it has no effect: 0.0, not "cut off";
    # here the seven words fill the max length exactly, so nothing is cut
    text = " ".join(f"word{i}" for i in range(7)) + " \u200b"
    inputs = subject.encode(text)
    assert inputs["input_ids"].shape[1] == 16 and int(inputs["read_chars"][0]) == len(text)
    scored = words(text, inputs, np.ones(16))
    assert [w.score for w in scored] == [2.0] * 7 + [0.0]
    assert _cut_off(to_html(text, scored)) == []
    longer = text + " late"
    assert [w.score for w in words(longer, subject.encode(longer), np.ones(16))] == [2.0] * 7 + [0.0, None]


def test_emoji_words_are_read_as_unknown_tokens_and_scored(subject: TextModel) -> None:
    """The tokenizer reads each emoji word as its [UNK] token: that token is the word's, scored by both methods
    and padded in the baseline like any word, while [CLS] and [SEP] stay fixed and unscored."""
    text = "the kettle is 😡 terrible 👎"
    inputs = subject.encode(text)
    assert _tokens(subject, inputs["input_ids"]) == ["[CLS]", "the", "kettle", "is", "[UNK]", "terrible", "[UNK]",
                                                     "[SEP]"]
    assert inputs["word_ids"][0].tolist() == [-1, 0, 1, 2, 3, 4, 5, -1]
    assert _tokens(subject, subject.baseline(inputs)) == ["[CLS]"] + ["[PAD]"] * 6 + ["[SEP]"]
    ig = explain(subject, inputs, 1, "ig", ExplainOptions(ig_steps=16)).attribution
    assert ig[0] == 0.0 and ig[-1] == 0.0 and np.all(ig[1:-1] != 0.0)  # the markers' embeddings never move

    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    occluded = ids.clone()
    occluded[0, 4] = subject.tokenizer.pad_token_id  # the [UNK] of "😡"
    with torch.no_grad():
        drop = subject.logits(ids, mask)[0, 1] - subject.logits(occluded, mask)[0, 1]
    scored = words(text, inputs, explain(subject, inputs, 1, "occlusion").attribution)
    assert scored[3].text == "😡" and scored[3].score == pytest.approx(float(drop), abs=1e-4)

    for method in ("ig", "occlusion"):
        value = explain_text(subject, text, method, target="good", options=ExplainOptions(ig_steps=16))
        assert [word for word, _ in value["tokens"]] == ["the", "kettle", "is", "😡", "terrible", "👎"]
        assert [score is None for _, score in value["tokens"]] == [False] * 6
        assert _cut_off(value["html"]) == []


def test_a_text_of_emoji_alone_is_explained(subject: TextModel) -> None:
    """One word, one [UNK]: both methods give it the whole score change from the padding baseline, and the
    deletion check deletes it (leaving an empty text) as its top word and as its random word alike."""
    text = "😀😀😀"
    inputs = subject.encode(text)
    assert _tokens(subject, inputs["input_ids"]) == ["[CLS]", "[UNK]", "[SEP]"]
    assert inputs["word_ids"][0].tolist() == [-1, 0, -1]
    with torch.no_grad():
        change = float(subject.logits(inputs["input_ids"], inputs["attention_mask"])[0, 1]
                       - subject.logits(subject.baseline(inputs), inputs["attention_mask"])[0, 1])
    probability, empty = subject.probabilities([text, ""])[:, 1]
    for method in ("ig", "occlusion"):
        value = explain_text(subject, text, method, target="good", options=ExplainOptions(ig_steps=64))
        [(word, score)] = value["tokens"]
        assert word == text and score == pytest.approx(change, abs=0.02 * max(1.0, abs(change)))
        assert value["faithfulness"]["k"] == 1
        assert value["faithfulness"]["topk_drop"] == pytest.approx(probability - empty, abs=1e-4)
        assert value["faithfulness"]["random_drop"] == value["faithfulness"]["topk_drop"]
        assert _cut_off(value["html"]) == []


def test_methods_are_registered_and_integrated_gradients_is_complete(subject: TextModel) -> None:
    assert methods("text").names() == ["ig", "occlusion"]
    text = "the staff were friendly and the room was clean"
    inputs = subject.encode(text)
    result = explain(subject, inputs, 1, "ig", ExplainOptions(ig_steps=64))
    with torch.no_grad():
        full = subject.logits(inputs["input_ids"], inputs["attention_mask"])[0, 1]
        empty = subject.logits(subject.baseline(inputs), inputs["attention_mask"])[0, 1]
    # completeness: the words' scores add up to the score's change from the padding baseline
    assert sum(w.score for w in words(text, inputs, result.attribution)) == pytest.approx(
        float(full - empty), abs=0.02 * max(1.0, abs(float(full - empty))))
    assert subject.tokenizer.convert_ids_to_tokens(subject.baseline(inputs)[0].tolist())[1] == "[PAD]"


def test_occlusion_is_the_score_drop_of_padding_one_word(subject: TextModel) -> None:
    text = "unbelievably rude staff"
    inputs = subject.encode(text)
    scored = words(text, inputs, explain(subject, inputs, 0, "occlusion").attribution)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    occluded = torch.where(inputs["word_ids"] == 0, subject.tokenizer.pad_token_id, ids)
    with torch.no_grad():
        drop = subject.logits(ids, mask)[0, 0] - subject.logits(occluded, mask)[0, 0]
    assert scored[0].score == pytest.approx(float(drop), abs=1e-4)


def test_html_escapes_the_text_and_colours_by_sign() -> None:
    text = "<b>great</b> & awful"
    scored = [Word("<b>great</b>", 0, 12, 0.5), Word("&", 13, 14, 0.0), Word("awful", 15, 20, -1.0)]
    html = to_html(text, scored)
    assert "<b>" not in html and "&lt;b&gt;great&lt;/b&gt;" in html and "&amp;" in html
    assert "rgba(22,163,74,0.50)" in html and "rgba(220,38,38,1.00)" in html
    assert top_words(scored) == {"for": [("<b>great</b>", 0.5)], "against": [("awful", -1.0)]}


class _CountsGood:
    """A stand-in model: P(good) is the share of words that are "good"."""

    def probabilities(self, texts: list[str]) -> np.ndarray:
        share = np.array([t.split().count("good") / max(1, len(t.split())) for t in texts])
        return np.stack([1 - share, share], axis=1)


def test_deletion_check_compares_top_words_with_random_ones() -> None:
    text = "good plain plain plain plain plain plain plain plain good"
    scored = [Word(w, 0, 0, 1.0 if w == "good" else 0.0) for w in text.split()]
    check = deletion_check(_CountsGood(), text, scored, target=1)  # type: ignore[arg-type]
    assert check.k == 1 and check.probability == pytest.approx(0.2)
    assert check.topk_drop == pytest.approx(0.2 - 1 / 9)
    assert 0 <= check.random_drop < check.topk_drop and check.beats_random
    assert deletion_check(_CountsGood(), text, scored, 1, k=2).topk_drop == pytest.approx(0.2)  # type: ignore[arg-type]


def test_explain_text_returns_what_the_cli_prints(subject: TextModel) -> None:
    value = explain_text(subject, "cold food and a rude waiter", "occlusion", target="bad")
    assert value["target"] == "bad" and set(value["probabilities"]) == {"bad", "good"}
    assert [word for word, _ in value["tokens"]] == ["cold", "food", "and", "a", "rude", "waiter"]
    assert set(value["faithfulness"]) == {"k", "probability", "topk_drop", "random_drop", "beats_random"}
    assert value["html"].startswith("<div") and value["notes"]


def test_a_cut_text_says_so_and_predictions_flag_it(subject: TextModel) -> None:
    long = " ".join(f"glassbox{i}" for i in range(30))
    value = explain_text(subject, long, "occlusion")
    assert value["notes"][-1] == ("the text is longer than the model's max length (16 tokens): its last 25 word(s) "
                                  "were not read and have no score")
    assert not any("max length" in note for note in explain_text(subject, "short and sweet", "occlusion")["notes"])
    # 14 word pieces fit: "glassbox0 ... glassbox3" is 12, "glassbox4" makes 15
    assert subject.cut_off(["glassbox0 glassbox1 glassbox2 glassbox3", long, ""]) == [False, True, False]
