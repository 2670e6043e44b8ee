"""Reading pictures: large photos decoded reduced and silently, bombs and foreign formats refused with a
short reason, and the decode cache that training reads (built once, rebuilt when the data or size changes)."""

from __future__ import annotations

import io
import json
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from core import datasets
from core.cli import main
from core.data import BadFilesError, modality, pictures
from core.data.pictures import (
    PREDECODED_SIZE,
    SUFFIXES,
    DecodedImages,
    UnreadableImage,
    check_all,
    decode_side,
    list_files,
    load_image,
)
from core.store import Store
from core.training import presets
from core.workspace import Workspace

CASES = Path(__file__).resolve().parents[3] / "shared" / "cases"
IMAGES = modality("images")


def photo(path: Path, size: tuple[int, int] = (4000, 3000), orientation: int | None = None) -> Path:
    """A textured JPEG (smooth gradients and noise, as photos are) of `size`."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size[1], 0:size[0]]
    base = np.stack([x * 255 // size[0], y * 255 // size[1], (x + y) * 255 // sum(size)], axis=-1)
    pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, quality=85, exif=exif)
    return path


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` pixels without holding them: what a pixel bomb looks like
    before it is decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(
        b"IEND", b"")


def reason(path: Path) -> str:
    with pytest.raises(UnreadableImage) as refused:
        load_image(path)
    assert str(refused.value) == f"{path.name}: {refused.value.reason}"
    return refused.value.reason


# ---- decoding -----------------------------------------------------------------------------------------


def test_a_photo_is_decoded_reduced_to_just_above_the_model_input(tmp_path: Path) -> None:
    path = photo(tmp_path / "IMG_0001.jpg")
    assert decode_side(128) == 147 and decode_side(224) == 256
    assert load_image(path, 128).size == (196, 147)
    assert load_image(path).size == (4000, 3000)
    assert load_image(tmp_path / "IMG_0001.jpg", 4000).size == (4000, 3000)  # never enlarged


def test_exif_rotation_is_applied_to_reduced_photos_and_to_the_size_upload_reports(tmp_path: Path) -> None:
    path = photo(tmp_path / "portrait.jpg", size=(400, 300), orientation=6)
    assert load_image(path, 64).size == (74, 99)
    assert (check_all([path])[0].width, check_all([path])[0].height) == (300, 400)


def test_the_108_megapixel_photo_is_used_without_a_library_warning(
        ws: Workspace, capfd: pytest.CaptureFixture[str]) -> None:
    if not (CASES / "big_photo.zip").is_file():
        pytest.skip("the shared cases are not here")
    with warnings.catch_warnings(record=True) as caught:
        code = main(["datasets", "add", str(CASES / "big_photo.zip"), "--json"])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert caught == [] and "DecompressionBomb" not in err
    assert all(line.startswith("warning: ") for line in err.splitlines()), err  # the dataset's own warnings
    info = json.loads(out.strip().splitlines()[-1])
    assert info["counts"] == {"cat": 4, "dog": 3} and info["dropped"] == []
    assert info["size"]["width"]["max"] == 12000 and info["size"]["height"]["max"] == 9000
    dataset_dir = ws.dataset_dir(info["dataset_id"])
    with warnings.catch_warnings(record=True) as caught:
        big = load_image(dataset_dir / "images" / "cat" / "IMG_108MP.png", 128)
    assert big.size == (196, 147) and caught == []


def test_pixel_bombs_are_refused_on_their_header(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(png_header(20_000, 20_000))  # past Pillow's own refusal too
    (tmp_path / "huge.png").write_bytes(png_header(13_000, 12_000))  # ours alone
    with warnings.catch_warnings(record=True) as caught:
        assert reason(tmp_path / "bomb.png") == "too large (400 MP, limit 150 MP)"
        assert reason(tmp_path / "huge.png") == "too large (156 MP, limit 150 MP)"
    assert [str(w.message) for w in caught] == []


def test_damaged_and_foreign_files_get_a_short_reason(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buffer, format="JPEG")
    (tmp_path / "cut.jpg").write_bytes(buffer.getvalue()[:400])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "IMG_4000.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    (tmp_path / "scan.pdf").write_bytes(b"%PDF-1.7\n" + bytes(64))
    (tmp_path / "notes.txt").write_text("not a picture")
    assert reason(tmp_path / "cut.jpg") == "truncated JPEG"
    assert reason(tmp_path / "empty.jpg") == "empty file"
    assert reason(tmp_path / "IMG_4000.HEIC") == "HEIC is not supported; convert to JPEG"
    assert reason(tmp_path / "scan.pdf") == "PDF is not supported; convert to JPEG"
    assert reason(tmp_path / "notes.txt") == "not an image (JPEG, PNG, WebP, AVIF, TIFF, BMP or GIF expected)"


def test_the_cut_case_is_refused_with_a_reason_per_file(tmp_path: Path) -> None:
    if not (CASES / "cut.zip").is_file():
        pytest.skip("the shared cases are not here")
    with pytest.raises(BadFilesError) as refused:
        IMAGES.ingest(CASES / "cut.zip", tmp_path / "ds")
    assert refused.value.bad == [("cat/IMG_cut.jpg", "truncated JPEG"), ("dog/IMG_empty.jpg", "empty file")]


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF decoder")
def test_avif_and_every_jpeg_extension_are_read(tmp_path: Path) -> None:
    Image.new("RGB", (40, 30), (200, 40, 40)).save(tmp_path / "phone.avif")
    image = load_image(tmp_path / "phone.avif")
    assert image.size == (40, 30) and image.mode == "RGB"
    assert {".avif", ".jfif", ".jpe", ".jpeg", ".jpg", ".png", ".webp"} <= set(SUFFIXES)
    assert ".eps" not in SUFFIXES  # Ghostscript would decode it, not Pillow


def test_a_folder_lists_its_files_without_os_litter(tmp_path: Path) -> None:
    for name in ("a.jpg", "day1/IMG_0001.JPG", "day2/IMG_0001.JPG", "scan", ".DS_Store", "._a.jpg",
                 "__MACOSX/._a.jpg", "Thumbs.db", "day1/desktop.ini"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert list_files(tmp_path) == ["a.jpg", "scan", "day1/IMG_0001.JPG", "day2/IMG_0001.JPG"]


# ---- the decode cache ---------------------------------------------------------------------------------


@pytest.fixture
def photo_folder(tmp_path: Path) -> tuple[Path, list[str]]:
    folder = tmp_path / "ds"
    (folder / "images").mkdir(parents=True)
    items = []
    for i, size in enumerate([(400, 300), (300, 500), (20, 20)]):
        photo(folder / "images" / f"{i}.jpg", size=size)
        items.append(f"images/{i}.jpg")
    return folder, items


def counting_decodes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    decoded: list[Path] = []

    def load(path: Path, image_size: int | None = None) -> Image.Image:
        decoded.append(path)
        return load_image(path, image_size)

    monkeypatch.setattr(pictures, "load_image", load)
    return decoded


def test_the_decode_cache_is_built_once_and_reused(
        photo_folder: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    folder, items = photo_folder
    decoded = counting_decodes(monkeypatch)
    first = DecodedImages.open(folder, items, 64)
    assert len(decoded) == 3
    second = DecodedImages.open(folder, items, 64)
    assert len(decoded) == 3  # read back, not decoded again
    for i, item in enumerate(items):
        expected = np.asarray(load_image(folder / item, 64))
        assert np.array_equal(np.asarray(first[i]), expected) and np.array_equal(np.asarray(second[i]), expected)
    assert [first[i].size for i in range(3)] == [(99, 74), (74, 123), (20, 20)]


def test_upload_validation_leaves_the_cache_training_reads_at_the_preset_size(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    upload = tmp_path / "photos"
    for name, size in (("cat/a.jpg", (400, 300)), ("cat/b.jpg", (300, 400)), ("dog/c.jpg", (64, 48)),
                       ("dog/d.jpg", (500, 300))):
        (upload / name).parent.mkdir(parents=True, exist_ok=True)
        photo(upload / name, size=size)
    dataset = datasets.add(ws, Store(ws.db_path), upload)  # validated in staging, then moved into place
    folder = ws.dataset_dir(dataset.id)
    items = IMAGES.items(folder, dataset.info)
    decoded = counting_decodes(monkeypatch)
    cache = DecodedImages.open(folder, items, PREDECODED_SIZE)
    assert decoded == []  # upload's decoding is reused
    for i, item in enumerate(items):
        assert np.array_equal(np.asarray(cache[i]), np.asarray(load_image(folder / item, PREDECODED_SIZE)))
    DecodedImages.open(folder, items, 224)
    assert len(decoded) == 4
    # the size upload decodes for is the one most runs train at: the default preset's
    assert presets.preset("images", presets.DEFAULT).values["image_size"] == PREDECODED_SIZE


def test_the_decode_cache_is_rebuilt_when_the_size_or_the_files_change(
        photo_folder: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    folder, items = photo_folder
    decoded = counting_decodes(monkeypatch)
    DecodedImages.open(folder, items, 64)
    assert DecodedImages.open(folder, items, 32)[0].size == (49, 37)
    assert len(decoded) == 6
    photo(folder / items[0], size=(600, 300))
    assert DecodedImages.open(folder, items, 64)[0].size == (148, 74)
    assert len(decoded) == 9
    # one cache per decoded side: the stale one at 74 px is gone
    assert sorted(p.name.split("-")[0] for p in (folder / "decoded").iterdir()) == ["37px", "37px", "74px", "74px"]
