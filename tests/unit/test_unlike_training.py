"""Out-of-distribution hints: statistics of the training data saved with a run, and the hint Predict gives
an input that looks unlike them (a colour image against greyscale digits, a much larger photo, a text in
another script)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core import datasets, prediction
from core.artifacts import RunFiles
from core.data.pictures import load_image
from core.store import Store
from core.training_stats import ImageInput, save_training_stats, training_stats, unlike_training
from core.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "sample_data" / "digits.zip"  # 400 greyscale (mode L) images of 32 x 32 px


def _saved(ws: Workspace, store: Store, source: Path, tmp_path: Path) -> dict:
    dataset = datasets.add(ws, store, source)
    files = RunFiles(tmp_path / "run")
    files.root.mkdir()
    save_training_stats(files, dataset.modality, ws.dataset_dir(dataset.id), dataset.info)
    stats = training_stats(files)
    assert stats is not None
    return stats


def _image(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path


class _Blank:
    """Stands in for a loaded image model: every image is class 0 at 0.6."""

    classes = ["zero", "one"]
    image_size = 32

    def tensor(self, picture: Image.Image) -> torch.Tensor:
        return torch.zeros(1, 3, 4, 4)

    def probabilities(self, batch: torch.Tensor) -> np.ndarray:
        return np.tile([0.6, 0.4], (len(batch), 1))


def test_greyscale_digits_flag_a_colour_image_and_a_much_larger_one(ws: Workspace, store: Store,
                                                                   tmp_path: Path) -> None:
    stats = _saved(ws, store, DIGITS, tmp_path)
    assert stats == {"modality": "images", "colour_share": 0.0, "width": {"min": 32, "max": 32},
                     "height": {"min": 32, "max": 32}}
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, size=(32, 32), dtype=np.uint8)
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 220
    paths = [_image(tmp_path / "grey.png", grey),
             _image(tmp_path / "grey_as_rgb.jpg", np.stack([grey] * 3, axis=2)),  # grey pixels in an RGB JPEG
             _image(tmp_path / "red.png", red),
             _image(tmp_path / "big.png", np.full((600, 500), 128, np.uint8))]
    table = prediction.images(_Blank(), paths, stats=stats)
    assert table["unlike_training"].tolist() == [
        "", "", "a colour image; the training images are greyscale",
        "much larger (500 × 600 px) than the training images (32 × 32 px)",
    ]
    assert unlike_training(stats, ImageInput(load_image(paths[2], 32), (4, 4))) == (
        "a colour image; the training images are greyscale; much smaller (4 × 4 px) than the training images "
        "(32 × 32 px)")
    # a run trained before statistics were saved gets no hints
    assert prediction.images(_Blank(), paths[2:3])["unlike_training"].tolist() == [""]


def test_latin_training_texts_flag_a_cyrillic_text_only(ws: Workspace, store: Store, tmp_path: Path) -> None:
    source = tmp_path / "reviews.csv"
    rows = [f"review {i} was {'lovely' if i % 2 else 'awful'} — café crème,{'good' if i % 2 else 'bad'}"
            for i in range(20)]
    source.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    stats = _saved(ws, store, source, tmp_path)
    assert stats == {"modality": "text", "scripts": {"LATIN": 1.0}}
    assert unlike_training(stats, "Чайник ужасный, не покупайте") == (
        "written in Cyrillic script; the training texts are in Latin script")
    assert unlike_training(stats, "商品はひどい") == "written in Hiragana and CJK scripts; the training texts are in " \
                                                     "Latin script"
    assert unlike_training(stats, "the kettle is terrible") is None
    assert unlike_training(stats, "the kettle from Москва is terrible") is None  # one word of four
    assert unlike_training(stats, "😀😀😀 42") is None  # no letters: nothing to compare
    assert unlike_training(None, "Чайник") is None


def test_the_training_loop_writes_the_statistics_beside_the_weights(ws: Workspace, store: Store) -> None:
    from core import runs
    from core.config import TrainConfig

    dataset = datasets.add(ws, store, DIGITS)
    config = TrainConfig(dataset_id=dataset.id, backbone="test_efficientnet", weights="none", image_size=32,
                         epochs=1, batch_size=32, mode="full", augmentation="none", device="cpu")
    run = runs.wait(ws, store, runs.create(ws, store, config).id)
    assert run.status == "completed", run.error
    stats = training_stats(RunFiles(ws.run_dir(run.id)))
    assert stats is not None and (stats["modality"], stats["colour_share"]) == ("images", 0.0)
