"""How an image upload is laid out: wrapper folders with loose files, splits the user made
(train/valid/test folders above the class folders), names written by Windows zip tools; and a run
that trains on the user's split and reports its test part apart."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from core import data, datasets
from core.artifacts import RunFiles
from core.config import TrainConfig
from core.data import Split, split_for, stratified_split
from core.errors import GlassboxError
from core.store import Store
from core.training.loop import TrainJob, train
from core.workspace import Workspace
from tests.conftest import ROOT
from tests.unit.test_archive import legacy_zip
from tests.unit.test_images_data import make_zip

CASES = ROOT.parent / "shared" / "cases"
IMAGES = data.modality("images")
CONFIG = TrainConfig(dataset_id="-", val_fraction=0.25, seed=0)


def png(seed: int, colour: tuple[int, int, int] = (128, 128, 128)) -> bytes:
    """A distinct 32 px image per seed around a colour (so a class can be learnt from it)."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(colour, 30, size=(32, 32, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def split_entries(
    parts: dict[str, int], classes: tuple[str, ...] = ("cat", "dog"), prefix: str = ""
) -> dict[str, bytes]:
    """`{prefix}{part}/{class}/{i}.png`, `parts[part]` images per class; the same file names recur in
    every part, as in real exports."""
    colours = [(220, 40, 40), (40, 40, 220), (40, 200, 40)]
    entries: dict[str, bytes] = {}
    for p, (part, n) in enumerate(parts.items()):
        for c, cls in enumerate(classes):
            for i in range(n):
                entries[f"{prefix}{part}/{cls}/{i}.png"] = png(1000 * p + 100 * c + i, colours[c])
    return entries


def messages(info: dict[str, Any]) -> list[str]:
    return [p["message"] for p in info["problems"]]


def parts_of(dest: Path, info: dict[str, Any], split: Split) -> dict[str, list[str]]:
    items = IMAGES.items(dest, info)
    return {part: [items[i] for i in getattr(split, part)] for part in ("train", "val", "test")}


def case(name: str) -> Path:
    path = CASES / name
    if not path.exists():
        pytest.skip(f"{path} is not here")
    return path


# ---- the cases people sent ------------------------------------------------------------------------------


@pytest.mark.parametrize(("upload", "loose"), [("with_readme.zip", "README.txt"), ("with_cover.jpg.zip", "cover.jpg")])
def test_wrapper_folder_with_a_loose_file_is_unwrapped(tmp_path: Path, upload: str, loose: str) -> None:
    info = IMAGES.ingest(case(upload), tmp_path / "ds")
    assert info["classes"] == ["cat", "dog"]
    assert info["counts"] == {"cat": 3, "dog": 3}
    assert info["dropped"] == []
    assert "split" not in info and not (tmp_path / "ds" / "split.csv").exists()
    assert messages(info)[0] == f"1 file(s) outside the class folders were left out: holiday_photos/{loose}"


def test_kaggle_split_keeps_the_users_split(tmp_path: Path) -> None:
    dest = tmp_path / "ds"
    info = IMAGES.ingest(case("kaggle_split.zip"), dest)
    assert info["classes"] == ["cat", "dog"]
    assert info["counts"] == {"cat": 8, "dog": 8}
    assert info["split"] == {"source": "folders", "folders": {"test": "test", "train": "train", "valid": "val"},
                             "counts": {"train": 8, "val": 4, "test": 4}}
    split = split_for(IMAGES, dest, info, CONFIG)
    assert split.source == "folders"
    parts = parts_of(dest, info, split)
    assert parts["val"] == ["images/cat/valid/cat0.png", "images/cat/valid/cat1.png",
                            "images/dog/valid/dog0.png", "images/dog/valid/dog1.png"]
    assert parts["test"] == ["images/cat/test/cat0.png", "images/cat/test/cat1.png",
                             "images/dog/test/dog0.png", "images/dog/test/dog1.png"]
    assert parts["train"] == [f"images/{c}/train/{c}{i}.png" for c in ("cat", "dog") for i in range(4)]


# ---- the same kinds, built here ------------------------------------------------------------------------


def test_train_val_without_test_and_no_wrapper(tmp_path: Path) -> None:
    dest = tmp_path / "ds"
    info = IMAGES.ingest(make_zip(tmp_path / "u.zip", split_entries({"train": 5, "val": 2})), dest)
    assert info["classes"] == ["cat", "dog"]
    assert info["split"]["counts"] == {"train": 10, "val": 4, "test": 0}
    split = split_for(IMAGES, dest, info, CONFIG)
    assert (len(split.train), len(split.val), split.test) == (10, 4, [])
    assert all("/val/" in item for item in parts_of(dest, info, split)["val"])


def test_capitalised_train_validation_under_a_wrapper_folder_upload(tmp_path: Path) -> None:
    upload = tmp_path / "upload"
    for name, payload in split_entries({"Train": 4, "Validation": 2}, prefix="pets/").items():
        (upload / name).parent.mkdir(parents=True, exist_ok=True)
        (upload / name).write_bytes(payload)
    info = IMAGES.ingest(upload, tmp_path / "ds")
    assert info["classes"] == ["cat", "dog"]
    assert info["split"] == {"source": "folders", "folders": {"Train": "train", "Validation": "val"},
                             "counts": {"train": 8, "val": 4, "test": 0}}


def test_training_testing_gets_validation_set_aside_from_training(tmp_path: Path) -> None:
    dest = tmp_path / "ds"
    info = IMAGES.ingest(make_zip(tmp_path / "u.zip", split_entries({"training": 8, "testing": 3})), dest)
    assert info["split"]["counts"] == {"train": 16, "val": 0, "test": 6}
    assert ("no validation folder: validation images are set aside from the training folder at random, "
            "class by class, when a run starts") in messages(info)
    split = split_for(IMAGES, dest, info, CONFIG)
    # a quarter of each class's 8 training images, the same way every time
    assert (len(split.train), len(split.val), len(split.test)) == (12, 4, 6)
    assert split == split_for(IMAGES, dest, info, CONFIG)
    parts = parts_of(dest, info, split)
    assert all("/training/" in item for item in parts["train"] + parts["val"])
    assert sorted(item.split("/")[1] for item in parts["val"]) == ["cat", "cat", "dog", "dog"]
    assert all("/testing/" in item for item in parts["test"])


def test_unlabelled_test_folder_is_reported_not_made_a_class(tmp_path: Path) -> None:
    entries = split_entries({"train": 4, "valid": 2})
    entries["test/unknown_1.png"] = png(7)
    entries["test/unknown_2.png"] = png(8)
    info = IMAGES.ingest(make_zip(tmp_path / "u.zip", entries), tmp_path / "ds")
    assert info["classes"] == ["cat", "dog"]
    assert info["split"]["counts"] == {"train": 8, "val": 4, "test": 0}
    assert messages(info)[0] == (
        "2 file(s) outside the class folders were left out: test/unknown_1.png, test/unknown_2.png"
    )


def test_classes_named_like_split_parts_stay_classes(tmp_path: Path) -> None:
    """Without class folders inside, "train" and "test" are what the user classifies."""
    entries = {f"{cls}/{i}.png": png(10 * c + i) for c, cls in enumerate(("train", "test")) for i in range(3)}
    info = IMAGES.ingest(make_zip(tmp_path / "u.zip", entries), tmp_path / "ds")
    assert info["classes"] == ["test", "train"]
    assert "split" not in info


def test_a_class_missing_from_a_part_is_warned(tmp_path: Path) -> None:
    entries = split_entries({"train": 3}, classes=("cat", "dog", "fox"))
    entries.update(split_entries({"valid": 2}, classes=("cat", "dog")))
    info = IMAGES.ingest(make_zip(tmp_path / "u.zip", entries), tmp_path / "ds")
    assert info["split"]["counts"] == {"train": 9, "val": 4, "test": 0}
    assert "class(es) 'fox' have no image in the validation folder" in messages(info)


def test_no_usable_training_image_is_refused(tmp_path: Path) -> None:
    entries = split_entries({"valid": 2})
    entries["train/readme.txt"] = b"photos come later"
    entries["train/cat/broken.png"] = b"not a png"
    refusal = r"^the training folder \(train\) holds no usable image in a class folder$"
    with pytest.raises(GlassboxError, match=refusal):
        IMAGES.ingest(make_zip(tmp_path / "u.zip", entries), tmp_path / "ds", drop_bad=True)


def test_loose_files_without_a_wrapper_are_reported(tmp_path: Path) -> None:
    entries = {f"{cls}/{i}.png": png(10 * c + i) for c, cls in enumerate(("cat", "dog")) for i in range(3)}
    entries["notes.txt"] = b"taken in 2024"
    info = IMAGES.ingest(make_zip(tmp_path / "u.zip", entries), tmp_path / "ds")
    assert info["classes"] == ["cat", "dog"]
    assert messages(info)[0] == "1 file(s) outside the class folders were left out: notes.txt"


def test_files_with_no_class_folder_at_all_are_unusable(tmp_path: Path) -> None:
    upload = make_zip(tmp_path / "u.zip", {"a.png": png(1), "b.png": png(2)})
    refusal = r"no usable images; 2 unusable file\(s\): a.png \(not inside a class folder\), b.png"
    with pytest.raises(GlassboxError, match=refusal):
        IMAGES.ingest(upload, tmp_path / "ds")


def test_windows_code_page_class_names(tmp_path: Path) -> None:
    """A zip Windows wrote in China: gbk names without the UTF-8 flag (see test_archive for the kinds)."""
    entries = {f"宠物照片/{cls}/图片{i}.png": png(10 * c + i)
               for c, cls in enumerate(("猫咪", "小狗")) for i in range(3)}
    info = IMAGES.ingest(legacy_zip(tmp_path / "u.zip", entries, "gbk"), tmp_path / "ds")
    assert info["classes"] == ["小狗", "猫咪"]
    assert info["counts"] == {"小狗": 3, "猫咪": 3}


def test_uncertain_code_page_is_a_dataset_problem(tmp_path: Path) -> None:
    """Two kana per name are as valid in Korean cp949: the reading is kept, and the user warned."""
    entries = {f"{cls}/{i}.png": png(10 * c + i) for c, cls in enumerate(("ねこ", "いぬ")) for i in range(3)}
    info = IMAGES.ingest(legacy_zip(tmp_path / "u.zip", entries, "cp932"), tmp_path / "ds")
    assert info["classes"] == ["いぬ", "ねこ"]
    assert messages(info)[0] == (
        "u.zip: file names are not marked as UTF-8 and their code page is uncertain: read as cp932 "
        "('ねこ/0.png'; also plausible: cp949 '궺궞/0.png'); check the class names, or zip with a tool that "
        "writes UTF-8 names (7-Zip, or zip on macOS or Linux)"
    )


# ---- the split a run gets ------------------------------------------------------------------------------


def test_without_a_kept_split_runs_get_the_stratified_one(tmp_path: Path) -> None:
    entries = {f"{cls}/{i}.png": png(10 * c + i) for c, cls in enumerate(("cat", "dog")) for i in range(4)}
    dest = tmp_path / "ds"
    info = IMAGES.ingest(make_zip(tmp_path / "u.zip", entries), dest)
    split = split_for(IMAGES, dest, info, CONFIG)
    assert split == stratified_split([0] * 4 + [1] * 4, 0.25, 0)
    assert split.source == "stratified" and split.test == []


def test_a_split_that_no_longer_matches_the_items_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "ds"
    info = IMAGES.ingest(make_zip(tmp_path / "u.zip", split_entries({"train": 2, "val": 2})), dest)
    rows = (dest / "split.csv").read_text().splitlines()
    (dest / "split.csv").write_text("\n".join(rows[:-1]) + "\n")
    with pytest.raises(GlassboxError, match="split.csv is missing or does not match items.csv"):
        split_for(IMAGES, dest, info, CONFIG)


class _Quiet:
    """A reporter that keeps the log lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str, level: str = "info") -> None:
        self.lines.append(message)

    def phase(self, *_: Any) -> None: ...

    def started(self, **_: Any) -> None: ...

    def step(self, **_: Any) -> None: ...

    def epoch_end(self, **_: Any) -> None: ...

    def should_stop(self) -> bool:
        return False


def test_a_run_trains_on_the_folder_split_and_reports_the_test_part_apart(
    ws: Workspace, store: Store, tmp_path: Path
) -> None:
    upload = make_zip(tmp_path / "u.zip", split_entries({"train": 6, "valid": 3, "test": 2}, prefix="data/"))
    record = datasets.add(ws, store, upload)
    config = TrainConfig(dataset_id=record.id, backbone="test_efficientnet", weights="none", image_size=32,
                         epochs=2, batch_size=8, lr=1e-2, mode="head", augmentation="none", device="cpu",
                         warmup_fraction=0.0, label_smoothing=0.0)
    files = RunFiles(tmp_path / "run")
    files.root.mkdir()
    reporter = _Quiet()
    metrics = train(TrainJob(config, files, ws.dataset_dir(record.id), record.info, ws.cache_dir), reporter)

    items = IMAGES.items(ws.dataset_dir(record.id), record.info)
    validation = files.read_json(files.predictions)
    assert sorted(items[i] for i in validation["items"]) == [
        f"images/{c}/valid/{i}.png" for c in ("cat", "dog") for i in range(3)
    ]
    test = files.read_json(files.test_predictions)
    assert sorted(items[i] for i in test["items"]) == [
        f"images/{c}/test/{i}.png" for c in ("cat", "dog") for i in range(2)
    ]
    assert test["labels"] == [0, 0, 1, 1]
    assert metrics["split"] == "folders"
    assert metrics["test_items"] == 4
    preds = np.asarray(test["probs"]).argmax(1)
    assert metrics["test_accuracy"] == float(np.mean(preds == np.asarray(test["labels"])))
    assert {"test_macro_f1", "test_loss", "val_accuracy"} <= set(metrics)
    assert "split: 12 training, 6 validation, 4 test items (the dataset's own folders)" in reporter.lines
