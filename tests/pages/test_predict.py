"""The Predict page: one typed text with its explanation, a CSV of texts as a table, and uploaded
images with their maps, on runs with real (untrained) weights."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from core.store import DatasetRecord, RunRecord, Store
from core.workspace import Workspace
from tests.pages.conftest import CLASSES, TEXT_CLASSES, fabricate_text_run, open_page, png

PAGE = "pages/6_Predict.py"


def test_no_completed_run(store: Store) -> None:
    at = open_page(PAGE)
    assert any("No finished run to predict with yet" in i.value for i in at.info)


def test_a_typed_text_gets_its_label_probabilities_and_coloured_words(
        ws: Workspace, store: Store, text_dataset: DatasetRecord, minilm_weights: Path) -> None:
    fabricate_text_run(ws, store, text_dataset, minilm_weights, preds=[0, 1])
    at = open_page(PAGE)
    at.button(key="predict_go").click().run()
    assert any("Type or paste a text to predict on first" in w.value for w in at.warning)
    at.text_area(key="predict_text").set_value("The product was lovely and it arrived early").run()
    at.button(key="predict_go").click().run()
    assert not at.exception, at.exception

    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Prediction"] in TEXT_CLASSES
    assert len(metrics["Probability"]) == 4 and float(metrics["Probability"]) >= 0.5  # "0.62": as on the chart
    [html] = [h.proto.body for h in at.get("html")]
    assert html.count('title="') == 8, "every word coloured and scored"
    # the untrained head hardly moves: said in words, not as "lowers p(good) by 0.000"
    assert any(e.value.startswith("Deleting the top 1 word leaves p(good) unchanged, deleting 1 random word leaves "
                                  "it unchanged on average") for e in [*at.success, *at.warning])

    # editing the text hides the old answer until Predict is pressed again
    at.text_area(key="predict_text").set_value("Something else entirely").run()
    assert not at.get("html") and "Prediction" not in {m.label for m in at.metric}


def test_a_csv_of_texts_is_predicted_row_by_row(ws: Workspace, store: Store, text_dataset: DatasetRecord,
                                                minilm_weights: Path) -> None:
    fabricate_text_run(ws, store, text_dataset, minilm_weights, preds=[0, 1])
    at = open_page(PAGE)
    long = "lovely " * 400
    rows = f"id\tcomment\tstars\n1\tlovely, would buy again\t5\n2\tawful smell\t1\n3\t\t3\n4\t{long}\t5\n"
    at.file_uploader(key="predict_csv").set_value(("new.tsv", rows.encode("utf-16"), "text/tab-separated-values"))
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    assert table["text"].tolist() == ["lovely, would buy again", "awful smell", "", long.strip()]
    assert set(table["predicted"]) <= set(TEXT_CLASSES)
    probs = table[[f"p({c})" for c in TEXT_CLASSES]].sum(axis=1)
    assert probs.round(6).tolist() == [1.0, 1.0, 1.0, 1.0]
    assert table["error"].tolist() == ["", "", "empty text", ""]
    assert table["cut_off"].tolist() == [False, False, False, True]
    assert any("1 text(s) are longer than the model's max length" in i.value for i in at.info)
    assert any("4 text(s) from column **comment**" in c.value for c in at.caption)
    assert any("1 row(s) to distrust (see the error column): empty text" in w.value for w in at.warning)
    assert at.get("download_button")

    at.text_input(key="predict_csv_column").set_value("review").run()
    assert any("Cannot predict on new.tsv" in e.value and "no column 'review'" in e.value for e in at.error)


def test_uploaded_images_are_classified_and_mapped(store: Store, explainable: RunRecord) -> None:
    at = open_page(PAGE)
    assert at.selectbox(key="predict_run").value == explainable.id
    big = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(big, format="JPEG")
    at.file_uploader(key="predict_images").set_value([
        ("circle.png", png("circle", 99), "image/png"),
        ("broken.png", b"\x89PNG not really", "image/png"),
        ("white.jpg", big.getvalue(), "image/jpeg"),
    ]).run()
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    assert table["image"].tolist() == ["circle.png", "broken.png", "white.jpg"]
    assert table["predicted"].isna().tolist() == [False, True, False]
    assert set(table["predicted"].dropna()) <= set(CLASSES)
    assert table["error"][0] == "" and table["error"][1] != ""
    assert any("1 of 3 image(s) could not be read" in w.value and "broken.png" in w.value for w in at.warning)
    maps = [img.caption for image in at.get("image") for img in image.proto.imgs]
    assert len(maps) == 2 and maps[0].startswith("circle.png: ")


def test_a_zip_of_folders_is_predicted_file_by_file(store: Store, explainable: RunRecord) -> None:
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("batch/day1/IMG_1.png", png("circle", 98))
        zipped.writestr("batch/day2/IMG_1.png", png("circle", 97))
        zipped.writestr("batch/day2/photo.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")
        zipped.writestr("batch/._IMG_1.png", b"resource fork")
        zipped.writestr("__MACOSX/batch/._IMG_1.png", b"resource fork")
    at = open_page(PAGE)
    at.file_uploader(key="predict_images").set_value([("batch.zip", archive.getvalue(), "application/zip")]).run()
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    assert sorted(table["image"]) == ["batch.zip/batch/day1/IMG_1.png", "batch.zip/batch/day2/IMG_1.png",
                                      "batch.zip/batch/day2/photo.heic"]
    errors = dict(zip(table["image"], table["error"], strict=True))
    assert errors["batch.zip/batch/day2/photo.heic"] == "HEIC is not supported; convert to JPEG"
    assert errors["batch.zip/batch/day1/IMG_1.png"] == ""


def test_a_predicted_csv_keeps_its_columns_flags_another_script_and_charts_counts_per_class(
        ws: Workspace, store: Store, text_dataset: DatasetRecord, minilm_weights: Path) -> None:
    from core.artifacts import RunFiles
    from core.training_stats import save_training_stats

    run = fabricate_text_run(ws, store, text_dataset, minilm_weights, preds=[0, 1])
    save_training_stats(RunFiles(ws.run_dir(run.id)), "text", ws.dataset_dir(text_dataset.id), text_dataset.info)
    at = open_page(PAGE)
    rows = "id,comment,predicted\n17,lovely, would buy again,x\n4,Чайник ужасный,y\n9,awful smell,z\n"
    rows = rows.replace("lovely, would", '"lovely, would').replace("again,x", 'again",x')
    at.file_uploader(key="predict_csv").set_value(("new.csv", rows.encode("utf-8"), "text/csv")).run()
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    assert list(table.columns[:3]) == ["id", "input_predicted", "text"]
    assert table["id"].tolist() == ["17", "4", "9"] and table["input_predicted"].tolist() == ["x", "y", "z"]
    assert table["unlike_training"].tolist() == ["", "written in Cyrillic script; the training texts are in Latin "
                                                     "script", ""]
    assert any("1 of 3 text(s) look unlike the training data" in w.value and "Чайник ужасный: written in Cyrillic"
               in w.value for w in at.warning)
    [chart] = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "predict_counts" in c.proto.id]
    [bars] = chart["data"]
    counts = table["predicted"].value_counts()
    assert bars["orientation"] == "h" and sorted(bars["y"]) == sorted(TEXT_CLASSES)
    assert bars["x"] == [int(counts.get(name, 0)) for name in bars["y"]] and bars["x"] == sorted(bars["x"])
    assert chart["layout"]["xaxis"]["title"]["text"] == "texts predicted as the class"
    assert chart["layout"]["yaxis"]["title"]["text"] == "predicted class"


def test_an_image_batch_downloads_as_a_zip_of_maps_and_colour_is_flagged_against_grey_shapes(
        ws: Workspace, store: Store, dataset: DatasetRecord, explainable: RunRecord,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    from core import prediction
    from core.artifacts import RunFiles
    from core.training_stats import save_training_stats
    from ui import predict_views

    save_training_stats(RunFiles(ws.run_dir(explainable.id)), "images", ws.dataset_dir(dataset.id), dataset.info)
    made: list[bytes] = []
    real = prediction.maps_zip
    monkeypatch.setattr(prediction, "maps_zip", lambda table, maps: made.append(real(table, maps)) or made[-1])
    monkeypatch.setattr(predict_views, "MAPS", 1)  # the second map is made on request
    red = io.BytesIO()
    Image.new("RGB", (16, 16), (220, 20, 20)).save(red, format="PNG")
    at = open_page(PAGE)
    at.file_uploader(key="predict_images").set_value([
        ("circle.png", png("circle", 99), "image/png"),
        ("broken.png", b"\x89PNG not really", "image/png"),
        ("red.png", red.getvalue(), "image/png"),
    ]).run()
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    assert table["unlike_training"].tolist() == ["", "", "a colour image; the training images are greyscale"]
    assert any("1 of 3 image(s) look unlike the training data" in w.value for w in at.warning)
    assert not made and not [b for b in at.get("download_button") if "zip" in b.proto.label]
    at.button(key="predict_all_maps").click().run()
    assert not at.exception, at.exception
    assert [b.proto.label for b in at.get("download_button") if "zip" in b.proto.label] == [
        "Download the predictions with a Grad-CAM map per image (zip)"]
    with zipfile.ZipFile(io.BytesIO(made[-1])) as archive:
        assert archive.namelist() == ["predictions.csv", "maps/circle.png.png", "maps/red.png.png"]
        assert Image.open(io.BytesIO(archive.read("maps/red.png.png"))).format == "PNG"


def test_a_run_exports_to_a_bundle_with_its_checks_and_a_download(ws: Workspace, store: Store,
                                                                  explainable: RunRecord) -> None:
    """Predict's export: *Build the bundle* writes the run's zip where the CLI would, then the page shows the ONNX
    checks the export measured and offers the zip itself for download."""
    import zipfile

    at = open_page(PAGE)
    assert at.radio(key=f"export_kind-{explainable.id}").value == "Full precision (fp32)"
    at.button(key=f"export-{explainable.id}-None").click().run()
    assert not at.exception, at.exception
    bundle = ws.run_dir(explainable.id) / "export" / f"{explainable.id}.zip"
    checks = json.loads(bundle.with_suffix(".json").read_text())
    with zipfile.ZipFile(bundle) as archive:
        assert {"model.onnx", "model.pt2", "model.safetensors", "predict.py", "MODEL_CARD.md"} <= set(
            archive.namelist())
    shown = dict(zip(*at.dataframe[-1].value.T.values, strict=True))
    assert shown["largest difference, ONNX against PyTorch (raw outputs)"] == f"{checks['onnx_max_abs_diff']:.2g}"
    assert shown["same top class, ONNX against PyTorch"] == f"{checks['top1_agreement']:.1%}" == "100.0%"
    assert shown["bundle size"] == f"{sum(checks['files'].values()) / 1e6:.1f} MB"
    download = at.get("download_button")[0]
    assert download.proto.label == "Download the bundle"
