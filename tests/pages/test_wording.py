"""What the studio says reads naturally: a file is named once in a message, a missing value in a table is a
dash (never "None"), a change of a probability is said with its direction, and probabilities have one format."""

from __future__ import annotations

import json

import pytest

from core.store import RunRecord, Store
from tests.pages.conftest import open_page, png
from ui import formatting
from ui.errors import naming_once


@pytest.mark.parametrize(("message", "filename", "said"), [
    ("reviews.csv is empty", "reviews.csv", "it is empty"),
    ("pets.zip: not a zip file, or the zip is damaged (bad magic)", "pets.zip",
     "not a zip file, or the zip is damaged (bad magic)"),
    # the library names an upload as it was staged: harmful characters replaced
    ("my_file.csv has no column 'text' (columns: a, b)", "my:file.csv", "it has no column 'text' (columns: a, b)"),
    ("2 files cannot be used: a/b.png (empty file)", "pets.zip", "2 files cannot be used: a/b.png (empty file)"),
    ("reviews.csv.bak is empty", "reviews.csv", "reviews.csv.bak is empty"),
])
def test_a_message_names_the_file_once(message: str, filename: str, said: str) -> None:
    assert naming_once(message, filename) == said


def test_changes_and_probabilities_read_naturally() -> None:
    assert formatting.change(-0.12, "p(good)") == "lowers p(good) by 0.12"
    assert formatting.change(0.0204) == "raises it by 0.02"
    assert formatting.change(-0.004) == "leaves it unchanged"
    assert [formatting.probability(p) for p in (1.0, 1e-13, 0.6234, None)] == ["1.00", "0.00", "0.62", "—"]


def test_a_bad_upload_names_its_file_once(store: Store) -> None:
    at = open_page("pages/1_Data.py")
    at.file_uploader[0].set_value(("Café pets.zip", b"PK\x03\x04 cut short", "application/zip")).run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [
        "Café pets.zip was not added: not a zip file, or the zip is damaged (File is not a zip file)"]


def test_the_prediction_table_has_no_none_and_one_probability_format(store: Store, explainable: RunRecord) -> None:
    """An unreadable image keeps its row with dashes where it has no prediction; every probability on the
    view (the table's columns, the map captions) has two decimals."""
    at = open_page("pages/6_Predict.py")
    at.file_uploader(key="predict_images").set_value([
        ("circle.png", png("circle", 99), "image/png"),
        ("fake.png", b"not an image at all", "image/png"),
    ]).run()
    assert not at.exception, at.exception
    view = at.dataframe[-1]
    assert view.proto.placeholder == "—"
    configured = json.loads(view.proto.columns)
    columns = {name: config["type_config"]["format"] for name, config in configured.items()
               if "type_config" in config and name != "_index"}
    assert columns == {"confidence": "%.2f", "p(circle)": "%.2f", "p(cross)": "%.2f", "p(square)": "%.2f"}
    # what to distrust is named in words, beside the prediction
    assert {name: configured[name]["label"] for name in ("error", "unlike_training")} == {
        "error": "problem", "unlike_training": "unlike the training data"}
    assert list(view.proto.column_order) == ["image", "predicted", "confidence", "error", "unlike_training",
                                             "p(circle)", "p(cross)", "p(square)"]
    assert [w.value for w in at.warning if "could not be read" in w.value] == [
        "1 of 2 image(s) could not be read: fake.png: not an image (JPEG, PNG, WebP, AVIF, TIFF, BMP or GIF "
        "expected)"]
    [caption] = [img.caption for image in at.get("image") for img in image.proto.imgs]
    table = view.value
    assert caption == f"circle.png: {table['predicted'][0]} ({table['confidence'][0]:.2f})"
