"""Predicting a folder reads it as upload does: every real file gets a row (a prediction or a reason), named
by its path inside the folder, whatever its extension; OS litter gets none (/work/shared/cases/predict_images)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import features

from core import datasets, runs
from core.cli import main
from core.config import TrainConfig
from core.store import Store
from core.workspace import Workspace

CASE = Path(__file__).resolve().parents[3] / "shared" / "cases" / "predict_images"

pytestmark = pytest.mark.skipif(not CASE.is_dir(), reason="the shared cases are not here")


@pytest.fixture
def trained(ws: Workspace, store: Store) -> str:
    """A run trained on the case's train.zip by a worker process (tiny model, 32 px, CPU, a few seconds)."""
    dataset = datasets.add(ws, store, CASE / "train.zip")
    config = TrainConfig(dataset_id=dataset.id, backbone="test_efficientnet", weights="none", image_size=32,
                         epochs=1, batch_size=8, mode="full", augmentation="none", device="cpu")
    run = runs.wait(ws, store, runs.create(ws, store, config).id)
    assert run.status == "completed", run.error
    return run.id


def test_every_real_file_of_the_folder_gets_a_row_named_by_its_path(
        trained: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "predictions.csv"
    code = main(["predict", trained, str(CASE / "new_photos"), "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    with open(out, encoding="utf-8", newline="") as fh:
        rows = {row["image"]: row for row in csv.DictReader(fh)}
    assert sorted(rows) == [
        "IMG_2001.JPG", "camera.jpe", "cmyk.jpg", "cut.jpg", "day1/IMG_0001.JPG", "day2/IMG_0001.JPG",
        "gray.png", "gray16.png", "palette.png", "phone.avif", "rgb.png", "rgba.png", "saved_from_web.jfif",
        "scan_no_extension",
    ]
    unreadable = {"cut.jpg": "truncated JPEG"}
    if not features.check("avif"):
        unreadable["phone.avif"] = "AVIF is not supported; convert to JPEG"
    assert {name: row["error"] for name, row in rows.items() if row["error"]} == unreadable
    assert {name for name, row in rows.items() if row["predicted"] in ("cat", "dog")} == set(rows) - set(unreadable)
    value = json.loads(captured.out.strip().splitlines()[-1])
    assert (value["count"], value["errors"]) == (14, len(unreadable))


def test_a_zip_of_the_folder_gives_the_same_rows(trained: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import zipfile

    archive = tmp_path / "new_photos.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(p for p in (CASE / "new_photos").rglob("*") if p.is_file()):
            zipped.write(path, path.relative_to(CASE).as_posix())  # litter included, as a Mac zips it
    folder, zipped_out = tmp_path / "folder.csv", tmp_path / "zip.csv"
    assert main(["predict", trained, str(CASE / "new_photos"), "--out", str(folder)]) == 0
    assert main(["predict", trained, str(archive), "--out", str(zipped_out)]) == 0
    capsys.readouterr()
    with open(folder, encoding="utf-8", newline="") as a, open(zipped_out, encoding="utf-8", newline="") as b:
        by_folder = [(row["image"], row["predicted"], row["error"]) for row in csv.DictReader(a)]
        by_zip = [(row["image"], row["predicted"], row["error"]) for row in csv.DictReader(b)]
    assert sorted(by_zip) == sorted((f"new_photos/{name}", predicted, error) for name, predicted, error in by_folder)
