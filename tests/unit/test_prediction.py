"""Prediction tables: one row per input in order, every class's probability, and bounds."""

from __future__ import annotations

from pathlib import Path

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
                                                  "unlike_training", "error"]
    monkeypatch.setattr(prediction, "MAX_INPUTS", 2)
    with pytest.raises(GlassboxError, match="3 inputs: predict at most 2"):
        prediction.texts(_Counting(), ["a", "b", "c"])


def test_a_csv_keeps_its_other_columns_in_order_and_clashing_names_get_a_prefix(tmp_path: Path) -> None:
    from core.data.text import read_texts

    source = tmp_path / "new.csv"
    source.write_text("id,review,predicted,input_predicted\nA-7,yes indeed,x,y\nB-2,nope,,\nC-9,yes,,\n",
                      encoding="utf-8")
    read = read_texts(source, "review")
    assert read.others == {"id": ["A-7", "B-2", "C-9"], "predicted": ["x", "", ""],
                           "input_predicted": ["y", "", ""]}
    table = prediction.texts(_Counting(), read.texts, read.problems, read.others)
    assert list(table.columns) == ["id", "input_input_predicted", "input_predicted", "text", "predicted",
                                   "confidence", "p(no)", "p(yes)", "cut_off", "unlike_training", "error"]
    assert table["id"].tolist() == ["A-7", "B-2", "C-9"]
    assert table["input_input_predicted"].tolist() == ["x", "", ""]
    assert table["input_predicted"].tolist() == ["y", "", ""]
    assert table["predicted"].tolist() == ["yes", "no", "yes"]


def test_a_text_in_another_script_is_flagged_in_its_row() -> None:
    stats = {"modality": "text", "scripts": {"LATIN": 1.0}}
    table = prediction.texts(_Counting(), ["yes it works", "Чайник ужасный"], stats=stats)
    assert table["unlike_training"].tolist() == ["", "written in Cyrillic script; the training texts are in "
                                                     "Latin script"]


def test_the_maps_zip_holds_the_predictions_and_one_png_per_mapped_row() -> None:
    import io
    import zipfile

    import pandas as pd

    table = pd.DataFrame({"image": ["day1/IMG_1.JPG", "broken.png", "day2/IMG_1.JPG", "day1/IMG_1.JPG",
                                    "/tmp/../up.png"],
                          "predicted": ["cat", None, "dog", "cat", "dog"]})
    pngs = {0: b"png0", 2: b"png2", 3: b"png3", 4: b"png4"}
    with zipfile.ZipFile(io.BytesIO(prediction.maps_zip(table, pngs))) as archive:
        assert archive.namelist() == ["predictions.csv", "maps/day1/IMG_1.JPG.png", "maps/day2/IMG_1.JPG.png",
                                      "maps/day1/IMG_1.JPG (row 4).png", "maps/tmp/up.png.png"]
        assert archive.read("maps/day2/IMG_1.JPG.png") == b"png2"
        assert archive.read("predictions.csv").decode().splitlines()[2] == "broken.png,"
