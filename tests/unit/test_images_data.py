"""The images modality: layouts, refusals, warnings, the sample data, and what training receives."""

from __future__ import annotations

import csv
import io
import runpy
import unicodedata
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from torch import nn

from core import data
from core.config import TrainConfig
from core.data import BadFilesError, Split, image_pipeline, pictures, stratified_split
from core.data.image_pipeline import eval_transform
from core.data.pictures import load_image
from core.errors import GlassboxError

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "sample_data" / "digits.zip"
IMAGES = data.modality("images")


def png(seed: int, size: tuple[int, int] = (20, 20), mode: str = "RGB", fmt: str = "PNG") -> bytes:
    """A distinct image per seed, so only deliberate copies count as duplicates."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in entries.items():
            archive.writestr(name, payload)
    return path


def class_entries(counts: dict[str, int], prefix: str = "pets/") -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    seed = 0
    for cls, n in counts.items():
        for i in range(n):
            seed += 1
            entries[f"{prefix}{cls}/{i}.png"] = png(seed)
    return entries


def messages(info: dict) -> str:
    return " | ".join(p["message"] for p in info["problems"])


@pytest.fixture(scope="module")
def tiny_model() -> nn.Module:
    return timm.create_model("resnet18", pretrained=False, num_classes=3)


# ---- layouts ------------------------------------------------------------------------------------------


def test_registered_and_accepts_zips_and_folders(tmp_path: Path) -> None:
    assert IMAGES.name == "images" and IMAGES.title == "Images"
    (tmp_path / "a.zip").write_bytes(b"")
    (tmp_path / "a.csv").write_text("x")
    assert IMAGES.accepts(tmp_path / "a.zip")
    assert IMAGES.accepts(tmp_path)
    assert not IMAGES.accepts(tmp_path / "a.csv")


def test_folder_layout_zip_under_a_top_folder(tmp_path: Path) -> None:
    upload = make_zip(tmp_path / "pets.zip", class_entries({"cat": 12, "dog": 11}))
    dest = tmp_path / "ds"
    info = IMAGES.ingest(upload, dest)

    assert info["layout"] == "folders"
    assert info["classes"] == ["cat", "dog"]
    assert info["counts"] == {"cat": 12, "dog": 11}
    assert info["num_items"] == 23
    assert info["problems"] == [] and info["dropped"] == []
    assert info["modes"] == {"RGB": 23}
    assert info["size"]["width"] == {"min": 20, "median": 20, "max": 20}
    assert info["size"]["total_pixels"] == 23 * 400
    assert not (dest / "_unpacked").exists()
    assert len(info["samples"]["cat"]) == 8 and all((dest / rel).is_file() for rel in info["samples"]["cat"])

    with open(dest / "items.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["relpath"] for r in rows] == sorted(r["relpath"] for r in rows)
    assert rows[0] == {"relpath": "images/cat/0.png", "label": "cat"}
    assert all((dest / r["relpath"]).is_file() for r in rows)
    assert IMAGES.labels(dest, info) == [0] * 12 + [1] * 11


def test_folder_source_is_copied_not_moved(tmp_path: Path) -> None:
    src = tmp_path / "upload"
    for name, payload in class_entries({"a": 3, "b": 3}, prefix="").items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(payload)
    (src / ".DS_Store").write_bytes(b"junk")
    info = IMAGES.ingest(src, tmp_path / "ds")
    assert info["counts"] == {"a": 3, "b": 3}
    assert len(list(src.rglob("*.png"))) == 6  # the user's folder is untouched


def test_labels_csv_layout_with_latin1_accented_label(tmp_path: Path) -> None:
    entries = {f"data/img/{i}.png": png(i) for i in range(6)}
    rows = ["filename;label"] + [f"img/{i}.png;{'café' if i < 3 else 'thé'}" for i in range(6)]
    entries["data/labels.csv"] = "\r\n".join(rows).encode("latin-1")
    entries["data/notes.txt"] = b"not listed, so ignored"
    info = IMAGES.ingest(make_zip(tmp_path / "u.zip", entries), tmp_path / "ds")
    assert info["layout"] == "labels.csv"
    assert info["classes"] == ["café", "thé"]
    assert info["counts"] == {"café": 3, "thé": 3}
    assert "1 file(s) not listed in labels.csv were ignored" in messages(info)
    assert IMAGES.labels(tmp_path / "ds", info) == [0, 0, 0, 1, 1, 1]


def test_labels_csv_in_utf16_with_bom(tmp_path: Path) -> None:
    entries = {f"{i}.png": png(i) for i in range(4)}
    text = "filename,label\n" + "".join(f"{i}.png,{'ß' if i % 2 else 'ü'}\n" for i in range(4))
    entries["labels.csv"] = text.encode("utf-16")
    info = IMAGES.ingest(make_zip(tmp_path / "u.zip", entries), tmp_path / "ds")
    assert info["counts"] == {"ß": 2, "ü": 2}


def test_names_match_across_unicode_forms_and_case(tmp_path: Path) -> None:
    """macOS zips decomposed names; Windows users type file names in any case."""
    decomposed = unicodedata.normalize("NFD", "café")
    folders = {f"{decomposed}/{i}.png": png(i) for i in range(2)} | {
        f"tea/{i}.png": png(10 + i) for i in range(2)
    }
    info = IMAGES.ingest(make_zip(tmp_path / "a.zip", folders), tmp_path / "a")
    assert info["classes"] == ["café", "tea"]  # composed, as a label typed in a CSV would be

    listed = {f"{decomposed}/{i}.png": png(i) for i in range(2)} | {
        f"IMG_{i}.png": png(10 + i) for i in range(2)
    }
    rows = "filename,label\ncafé/0.png,x\ncafé/1.png,x\nimg_0.PNG,y\nimg_1.png,y\n"
    info = IMAGES.ingest(make_zip(tmp_path / "b.zip", listed | {"labels.csv": rows.encode()}), tmp_path / "b")
    assert info["counts"] == {"x": 2, "y": 2}
    assert not any("ignored" in p["message"] for p in info["problems"])


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("filename,label\n0.png,a\n,a\n2.png,b\n3.png,b\n", "no filename on line(s) 3"),
        ("file,class\n0.png,a\n", "needs a header row with columns filename,label"),
        ("filename,label\n0.png,a\n1.png,a\n9.png,b\n", "not in the upload: 9.png (line 4)"),
        ("filename,label\n0.png,a\n../0.png,a\n", "stay inside the upload"),
        ("filename,label\n0.png,a\n0.png,b\n", "listed twice with different labels"),
    ],
)
def test_labels_csv_problems_are_refused(tmp_path: Path, csv_text: str, message: str) -> None:
    entries = {f"{i}.png": png(i) for i in range(4)}
    entries["labels.csv"] = csv_text.encode()
    with pytest.raises(GlassboxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        IMAGES.ingest(make_zip(tmp_path / "u.zip", entries), tmp_path / "ds")


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "cp1252"])
def test_labels_csv_is_read_like_any_csv(tmp_path: Path, codec: str) -> None:
    """The shared reader: UTF-16 without a BOM, a Windows code page, Excel's sep= line, ';' delimiter."""
    entries = {f"{i}.png": png(i) for i in range(4)}
    entries["labels.csv"] = "sep=;\nfilename;label\n0.png;café\n1.png;café\n2.png;thé\n3.png;thé\n".encode(codec)
    info = IMAGES.ingest(make_zip(tmp_path / "u.zip", entries), tmp_path / "ds")
    assert info["counts"] == {"café": 2, "thé": 2}


def test_labels_csv_missing_labels_are_files_without_a_class(tmp_path: Path) -> None:
    entries = {f"{i}.png": png(i) for i in range(8)}
    rows = ["0.png,a", "1.png,a", "2.png,b", "3.png,b", "4.png,", "5.png,nan", "6.png,N/A", "7.png,None"]
    entries["labels.csv"] = ("filename,label\n" + "\n".join(rows) + "\n").encode()
    upload = make_zip(tmp_path / "u.zip", entries)
    with pytest.raises(BadFilesError) as caught:
        IMAGES.ingest(upload, tmp_path / "refused")
    assert caught.value.bad == [(f"{i}.png", f"no label on line {i + 2} of labels.csv") for i in range(4, 8)]
    info = IMAGES.ingest(upload, tmp_path / "ds", drop_bad=True)
    assert info["counts"] == {"a": 2, "b": 2} and info["dropped"] == ["4.png", "5.png", "6.png", "7.png"]


# ---- refusals -----------------------------------------------------------------------------------------


def test_corrupt_image_then_drop_bad(tmp_path: Path) -> None:
    entries = class_entries({"cat": 10, "dog": 10})
    entries["pets/cat/broken.png"] = png(99)[:60]  # truncated mid-stream
    entries["pets/dog/readme.txt"] = b"hello"
    upload = make_zip(tmp_path / "u.zip", entries)

    with pytest.raises(BadFilesError) as refused:
        IMAGES.ingest(upload, tmp_path / "first")
    bad = dict(refused.value.bad)
    assert sorted(bad) == ["pets/cat/broken.png", "pets/dog/readme.txt"]
    assert bad == {"pets/cat/broken.png": "truncated PNG",
                   "pets/dog/readme.txt": "not an image (JPEG, PNG, WebP, AVIF, TIFF, BMP or GIF expected)"}

    info = IMAGES.ingest(upload, tmp_path / "second", drop_bad=True)
    assert info["dropped"] == ["pets/cat/broken.png", "pets/dog/readme.txt"]
    assert info["counts"] == {"cat": 10, "dog": 10}
    assert "2 unusable file(s) left out" in messages(info)
    assert not any(p.name == "broken.png" for p in (tmp_path / "second").rglob("*"))


def test_one_class_is_refused(tmp_path: Path) -> None:
    upload = make_zip(tmp_path / "u.zip", class_entries({"cat": 5}))
    with pytest.raises(GlassboxError, match="only one class 'cat' found: need at least two"):
        IMAGES.ingest(upload, tmp_path / "ds")


def test_empty_zip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GlassboxError, match="empty"):
        IMAGES.ingest(make_zip(tmp_path / "u.zip", {}), tmp_path / "ds")
    junk_only = make_zip(tmp_path / "j.zip", {"__MACOSX/._x": b"x", ".DS_Store": b"x"})
    with pytest.raises(GlassboxError, match="empty"):
        IMAGES.ingest(junk_only, tmp_path / "ds2")


def test_no_usable_image_at_all_is_refused(tmp_path: Path) -> None:
    upload = make_zip(tmp_path / "u.zip", {"a/x.txt": b"x", "b/y.txt": b"y"})
    with pytest.raises(GlassboxError, match="no usable images"):
        IMAGES.ingest(upload, tmp_path / "ds")


def test_class_with_one_image_is_refused(tmp_path: Path) -> None:
    upload = make_zip(tmp_path / "u.zip", class_entries({"cat": 5, "dog": 1}))
    with pytest.raises(GlassboxError, match="'dog' have only 1 image"):
        IMAGES.ingest(upload, tmp_path / "ds")


def test_structural_refusal_comes_before_bad_files(tmp_path: Path) -> None:
    entries = class_entries({"cat": 5})
    entries["pets/cat/broken.png"] = b"garbage"
    with pytest.raises(GlassboxError, match="only one class") as refused:
        IMAGES.ingest(make_zip(tmp_path / "u.zip", entries), tmp_path / "ds")
    assert not isinstance(refused.value, BadFilesError)


def test_unsafe_zip_is_refused_by_ingest(tmp_path: Path) -> None:
    entries = class_entries({"cat": 2, "dog": 2})
    entries["../evil.png"] = png(1)
    box = tmp_path / "box"
    with pytest.raises(GlassboxError, match="outside"):
        IMAGES.ingest(make_zip(tmp_path / "u.zip", entries), box / "ds")
    assert not (box / "evil.png").exists() and not (tmp_path / "evil.png").exists()


# ---- warnings -----------------------------------------------------------------------------------------


def test_duplicates_are_warned_louder_across_labels(tmp_path: Path) -> None:
    entries = class_entries({"cat": 12, "dog": 12})
    entries["pets/cat/copy.png"] = entries["pets/cat/0.png"]
    info = IMAGES.ingest(make_zip(tmp_path / "u.zip", entries), tmp_path / "ds")
    assert "1 image(s) are exact duplicates of another (e.g. pets/cat/0.png = pets/cat/copy.png)" in messages(info)
    assert "different labels" not in messages(info)

    entries["pets/dog/copy.png"] = entries["pets/cat/0.png"]
    info = IMAGES.ingest(make_zip(tmp_path / "v.zip", entries), tmp_path / "ds2")
    assert "2 image(s) are exact duplicates" in messages(info)
    assert "1 group(s) of identical images carry different labels" in messages(info)


def test_few_imbalanced_tiny_and_mixed_images_are_warned(tmp_path: Path) -> None:
    entries = class_entries({"cat": 12, "dog": 2})
    entries["pets/cat/tiny.png"] = png(500, size=(8, 40))
    entries["pets/cat/grey.png"] = png(501, mode="L")
    info = IMAGES.ingest(make_zip(tmp_path / "u.zip", entries), tmp_path / "ds")
    text = messages(info)
    assert all(p["level"] == "warning" for p in info["problems"])
    assert "'dog' have fewer than 10 images" in text and "'cat'" not in text.split("fewer")[0]
    assert "imbalanced: 'cat' has 14 images, 'dog' only 2" in text
    assert "1 image(s) are smaller than 16 px" in text
    assert "mixed colour modes (L: 1, RGB: 15)" in text
    assert info["size"]["width"]["min"] == 8 and info["size"]["height"]["max"] == 40


# ---- sample data and split ----------------------------------------------------------------------------


def test_sample_digits_zip(tmp_path: Path) -> None:
    info = IMAGES.ingest(DIGITS, tmp_path / "digits")
    assert info["classes"] == [str(d) for d in range(10)]
    assert info["counts"] == {str(d): 40 for d in range(10)}
    assert info["num_items"] == 400
    assert info["problems"] == []
    assert info["size"]["width"] == {"min": 32, "median": 32, "max": 32}


def test_sample_digits_zip_is_reproducible(tmp_path: Path) -> None:
    builder = runpy.run_path(str(ROOT / "sample_data" / "build_digits.py"))  # a script, not a package
    assert builder["build"](tmp_path / "again.zip").read_bytes() == DIGITS.read_bytes()


def test_stratified_split_is_reproducible_and_stratified(tmp_path: Path) -> None:
    info = IMAGES.ingest(
        make_zip(tmp_path / "u.zip", class_entries({"a": 10, "b": 20, "c": 5})), tmp_path / "ds"
    )
    labels = IMAGES.labels(tmp_path / "ds", info)
    first = stratified_split(labels, 0.2, seed=7)
    assert first == stratified_split(labels, 0.2, seed=7)
    assert first != stratified_split(labels, 0.2, seed=8)
    assert sorted(first.train + first.val) == list(range(35))
    assert Counter(labels[i] for i in first.val) == {0: 2, 1: 4, 2: 1}


# ---- what training and prediction receive -------------------------------------------------------------


@pytest.fixture
def mixed_dataset(tmp_path: Path) -> tuple[Path, dict]:
    """Non-square, greyscale, RGBA, palette and JPEG images in one dataset."""
    entries = {
        "a/wide.png": png(1, size=(50, 20)),
        "a/grey.png": png(2, mode="L"),
        "a/alpha.png": png(3, mode="RGBA"),
        "b/palette.png": png(4, mode="P"),
        "b/photo.jpg": png(5, size=(30, 45), fmt="JPEG"),
        "b/bw.png": png(6, mode="1"),
        "c/x.png": png(7),
        "c/y.png": png(8),
    }
    dest = tmp_path / "ds"
    return dest, IMAGES.ingest(make_zip(tmp_path / "u.zip", entries), dest)


@pytest.mark.parametrize("augmentation", ["none", "light", "medium", "strong"])
def test_datasets_yield_tensors_of_the_configured_size(
    mixed_dataset: tuple[Path, dict], tiny_model: nn.Module, augmentation: str
) -> None:
    dest, info = mixed_dataset
    config = TrainConfig(dataset_id="x", image_size=40, augmentation=augmentation)
    split = Split(train=[0, 1, 2, 3, 4], val=[5, 6, 7])
    train, val = IMAGES.datasets(dest, info, config, split, tiny_model)
    assert (len(train), len(val)) == (5, 3)
    labels = IMAGES.labels(dest, info)
    for dataset, indices in ((train, split.train), (val, split.val)):
        for position, index in enumerate(indices):
            x, y = dataset[position]
            assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
            assert tuple(x.shape) == (3, 40, 40)
            assert y == labels[index]


def test_the_decode_cache_matches_decoding_each_file(mixed_dataset: tuple[Path, dict], tiny_model: nn.Module) -> None:
    dest, info = mixed_dataset
    config = TrainConfig(dataset_id="x", image_size=16, augmentation="none")  # reduced: 19 px short sides
    split = Split(train=[0, 1, 2, 3], val=[4, 5, 6, 7])
    _, cached = IMAGES.datasets(dest, info, config, split, tiny_model)
    transform = image_pipeline.eval_transform(tiny_model, config)
    paths = [dest / item for item in IMAGES.items(dest, info)]
    for position, index in enumerate(split.val):
        assert torch.equal(cached[position][0], transform(load_image(paths[index], config.image_size)))


def test_eval_transform_uses_the_model_normalisation(tiny_model: nn.Module) -> None:
    config = TrainConfig(dataset_id="x", image_size=64)
    white = Image.new("RGB", (100, 50), (255, 255, 255))
    x = eval_transform(tiny_model, config)(white)
    assert tuple(x.shape) == (3, 64, 64)
    mean, std = tiny_model.pretrained_cfg["mean"], tiny_model.pretrained_cfg["std"]
    expected = torch.tensor([(1 - m) / s for m, s in zip(mean, std, strict=True)])
    assert torch.allclose(x[:, 32, 32], expected, atol=1e-4)


def test_load_image_converts_to_rgb_and_flattens_alpha_on_white(tmp_path: Path) -> None:
    clear = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    clear.save(tmp_path / "clear.png")
    Image.new("L", (4, 4), 7).save(tmp_path / "grey.png")
    assert load_image(tmp_path / "clear.png").getpixel((0, 0)) == (255, 255, 255)
    grey = load_image(tmp_path / "grey.png")
    assert grey.mode == "RGB" and grey.getpixel((0, 0)) == (7, 7, 7)


def test_load_image_applies_exif_rotation(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    Image.new("RGB", (40, 20)).save(tmp_path / "phone.jpg", exif=exif)
    assert load_image(tmp_path / "phone.jpg").size == (20, 40)


def test_load_image_refuses_garbage_and_oversized_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    with pytest.raises(GlassboxError, match="x.png"):
        load_image(tmp_path / "x.png")
    Image.new("RGB", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(pictures, "_MAX_PIXELS", 5_000)
    with pytest.raises(GlassboxError, match="too large"):
        load_image(tmp_path / "big.png")
