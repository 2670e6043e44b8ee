"""Prediction tables: one row per input in order, every class's probability, and bounds."""

from __future__ import annotations

import numpy as np
import pytest

from core import prediction
from core.errors import GlassboxError


class _Counting:
    """Stands in for a loaded text model: "yes" in a text makes it class 1."""

    classes = ["no", "yes"]

    def probabilities(self, texts: list[str]) -> np.ndarray:
        return np.array([[0.2, 0.8] if "yes" in t else [0.9, 0.1] for t in texts])

    def cut_off(self, texts: list[str]) -> list[bool]:
        """A max length of three words."""
        return [len(t.split()) > 3 for t in texts]


def test_text_rows_keep_their_order_and_flag_empty_texts() -> None:
    table = prediction.texts(_Counting(), ["yes please", "  ", "nope", "yes it is long"])
    assert table["text"].tolist() == ["yes please", "  ", "nope", "yes it is long"]
    assert table["predicted"].tolist() == ["yes", "no", "no", "yes"]
    assert table["confidence"].tolist() == [0.8, 0.9, 0.9, 0.8]
    assert table["p(yes)"].tolist() == [0.8, 0.1, 0.1, 0.8]
    assert table["cut_off"].tolist() == [False, False, False, True]
    assert table["error"].tolist() == ["", "empty text", "", ""]
    flagged = prediction.texts(_Counting(), ["yes", "no"], problems=["", "line 3: 3 fields, the header has 2"])
    assert flagged["error"].tolist() == ["", "line 3: 3 fields, the header has 2"]


def test_no_texts_is_an_empty_table_and_too_many_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    empty = prediction.texts(_Counting(), [])
    assert empty.empty and list(empty.columns) == ["text", "predicted", "confidence", "p(no)", "p(yes)", "cut_off",
                                                  "error"]
    monkeypatch.setattr(prediction, "MAX_INPUTS", 2)
    with pytest.raises(GlassboxError, match="3 inputs: predict at most 2"):
        prediction.texts(_Counting(), ["a", "b", "c"])
