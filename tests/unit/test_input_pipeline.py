"""The input pipeline that keeps an accelerator fed: training images augmented as batches on the device,
loaders that pin and copy without waiting on CUDA only, texts tokenised once, mixed precision by device.
No GPU is needed: loaders are built for a "cuda" device string and inspected, never iterated."""

from __future__ import annotations

import math
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import timm
import torch
from torch import nn
from torch.utils.data._utils.pin_memory import pin_memory

from core import device
from core.config import TrainConfig
from core.data import Split, image_pipeline
from core.data.image_pipeline import BatchAugment, DeviceBatch, eval_transform
from core.data.images import ImagesModality
from core.data.pictures import load_image
from core.data.text import TextModality
from core.training import loop
from tests.conftest import colour_images

IMAGES = ImagesModality()


@pytest.fixture(scope="module")
def tiny_model() -> nn.Module:
    return timm.create_model("test_efficientnet", pretrained=False, num_classes=3)


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """72 colour images (24 per class, 32 px) ingested as a dataset, plus one wide and one tall image."""
    folder = tmp_path_factory.mktemp("colours")
    archive = folder / "colours.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for cls, filename, data in colour_images():
            zipped.writestr(f"colours/{cls}/{filename}", data)
    return folder / "ds", IMAGES.ingest(archive, folder / "ds")


def _datasets(colours: tuple[Path, dict[str, Any]], model: nn.Module, **changes: Any) -> tuple[Any, Any]:
    dest, info = colours
    config = TrainConfig(dataset_id="x", image_size=32, **{"augmentation": "light", **changes})
    split = Split(train=list(range(0, 72, 2)), val=list(range(1, 72, 2)))
    return IMAGES.datasets(dest, info, config, split, model)


def _identity(size: int, hflip: float = 0.0) -> BatchAugment:
    """Crops of the whole image, no colour change, mean 0 and std 1: the canvas resampled to `size`."""
    return BatchAugment(size, (1.0, 1.0), (1.0, 1.0), hflip, None, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


# ---- augmentation on the device ----------------------------------------------------------------------


def test_whole_image_crops_reproduce_the_canvas_and_a_flip_mirrors_it() -> None:
    pixels = torch.randint(0, 256, (2, 3, 6, 6), dtype=torch.uint8)
    shapes = torch.tensor([[6.0, 6.0], [6.0, 6.0]], dtype=torch.float64)
    assert torch.allclose(_identity(6)(pixels, shapes) * 255, pixels.float(), atol=1e-3)
    assert torch.allclose(_identity(6, hflip=1.0)(pixels, shapes) * 255, pixels.float().flip(-1), atol=1e-3)


def test_a_crop_is_a_window_of_the_image_in_its_own_pixels() -> None:
    # columns numbered 0..7 on a 4 x 8 image; half its area at aspect 1 is a 4 x 4 window of 4 columns
    columns = (torch.arange(8, dtype=torch.uint8) * 10).expand(1, 3, 4, 8).contiguous()
    augment = BatchAugment(4, (0.5, 0.5), (1.0, 1.0), 0.0, None, (0.0,) * 3, (1.0,) * 3)
    for seed in range(5):
        out = augment(columns, torch.tensor([[4.0, 8.0]], dtype=torch.float64),
                      torch.Generator().manual_seed(seed))[0, 0] * 255
        first = round(out[0, 0].item()) // 10
        assert 0 <= first <= 4
        assert torch.allclose(out, torch.tensor([10.0 * (first + c) for c in range(4)]).expand(4, 4), atol=1e-3)


def test_crops_follow_the_preset_area_and_aspect_ranges() -> None:
    augment = BatchAugment(8, (0.25, 1.0), (3 / 4, 4 / 3), 0.5, None, (0.0,) * 3, (1.0,) * 3)
    theta = augment._crops(torch.tensor([[300.0, 400.0]], dtype=torch.float64).expand(2000, 2),
                           torch.Generator().manual_seed(0))
    width, height = theta[:, 0, 0].abs() * 400, theta[:, 1, 1] * 300  # crop sizes in the image's pixels
    area = width * height / (300 * 400)
    assert area.min() >= 0.25 - 0.01 and area.max() <= 1.0
    assert (width / height).min() >= 3 / 4 - 0.02 and (width / height).max() <= 4 / 3 + 0.02
    # inside the image: centre +- half size stays within [-1, 1]
    assert ((theta[:, 0, 2].abs() + theta[:, 0, 0].abs()) <= 1 + 1e-9).all()
    assert ((theta[:, 1, 2].abs() + theta[:, 1, 1].abs()) <= 1 + 1e-9).all()
    flipped = (theta[:, 0, 0] < 0).double().mean().item()
    assert abs(flipped - 0.5) < 0.05


def test_preset_augmentation_keeps_shapes_and_dtypes_and_is_seeded(
    colours: tuple[Path, dict[str, Any]], tiny_model: nn.Module
) -> None:
    train, _ = _datasets(colours, tiny_model, augmentation="medium")
    canvases = train.for_device("cuda")
    batch, labels = canvases.collate([canvases[i] for i in range(5)])
    assert isinstance(batch, DeviceBatch) and len(batch) == 5
    side = math.ceil(32 / 0.875)
    assert batch.pixels.dtype == torch.uint8 and tuple(batch.pixels.shape) == (5, 3, side, side)
    assert labels.tolist() == [train[i][1] for i in range(5)]

    def augmented(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return batch.to_device(torch.device("cpu"))

    first = augmented(0)
    assert first.dtype == torch.float32 and tuple(first.shape) == (5, 3, 32, 32)
    assert torch.equal(first, augmented(0))
    assert not torch.equal(first, augmented(1))
    mine, theirs = (batch.augment(batch.pixels, batch.shapes, torch.Generator().manual_seed(3)) for _ in range(2))
    assert torch.equal(mine, theirs)


def test_presets_timm_alone_can_do_stay_per_image(colours: tuple[Path, dict[str, Any]], tiny_model: nn.Module) -> None:
    for augmentation in ("none", "strong"):
        train, _ = _datasets(colours, tiny_model, augmentation=augmentation)
        assert train.for_device("cuda") is train


def test_validation_is_never_augmented_and_unchanged(
    colours: tuple[Path, dict[str, Any]], tiny_model: nn.Module
) -> None:
    dest, info = colours
    _, val = _datasets(colours, tiny_model)
    loader = loop._loader(val, 8, None, "cuda")
    assert loader.dataset is val  # the evaluation transform, image by image, whatever the device
    transform = eval_transform(tiny_model, TrainConfig(dataset_id="x", image_size=32))
    paths = [dest / item for item in IMAGES.items(dest, info)]
    for position, index in enumerate(range(1, 72, 2)[:6]):
        assert torch.equal(val[position][0], transform(load_image(paths[index], 32)))


def test_batches_augmented_on_the_device_train_a_model(
    colours: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's own `_loader` and `_to` with the batched path forced onto the CPU: colour classes learnt."""
    monkeypatch.setattr(image_pipeline, "_BATCH_AUGMENTED", frozenset({"cpu"}))
    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=3)
    train, val = _datasets(colours, model)
    loader = loop._loader(train, 12, torch.Generator().manual_seed(0), "cpu")
    assert loader.dataset is not train
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    target = torch.device("cpu")
    for _ in range(8):  # the per-image path needs 4 epochs here, this one 7
        model.train()
        for inputs, labels in loader:
            inputs = loop._to(inputs, target, True)
            assert inputs.shape == (len(labels), 3, 32, 32) and inputs.is_contiguous(memory_format=torch.channels_last)
            loss = nn.functional.cross_entropy(model(inputs), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(loop._to(x, target, True)).argmax(1) for x, _ in loop._loader(val, 36, None)])
    truth = torch.tensor([val[i][1] for i in range(len(val))])
    assert (predicted == truth).float().mean().item() >= 0.9  # three colour classes: chance is 1/3


# ---- loaders and copies ---------------------------------------------------------------------------------


def test_only_cuda_loaders_pin_and_images_get_persistent_workers(
    colours: tuple[Path, dict[str, Any]], tiny_model: nn.Module
) -> None:
    train, val = _datasets(colours, tiny_model)
    cuda = loop._loader(train, 8, torch.Generator(), "cuda")
    assert cuda.pin_memory and cuda.num_workers == image_pipeline._LOADER_WORKERS > 0 and cuda.persistent_workers
    assert cuda.dataset is not train and cuda.collate_fn == cuda.dataset.collate  # uint8 canvases
    cpu = loop._loader(train, 8, torch.Generator(), "cpu")
    assert not cpu.pin_memory and cpu.num_workers == 0 and cpu.dataset is train
    assert not loop._loader(val, 8, None, "mps").pin_memory


def test_the_pinned_loader_pins_a_device_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    pinned: list[torch.Tensor] = []

    def fake_pin(tensor: torch.Tensor, *args: Any) -> torch.Tensor:
        pinned.append(tensor)
        return tensor.clone()

    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    batch = DeviceBatch(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.ones(2, 2), _identity(4))
    out, labels = pin_memory((batch, torch.tensor([0, 1])))
    assert isinstance(out, DeviceBatch) and out.augment is batch.augment
    assert any(t is batch.pixels for t in pinned) and out.pixels is not batch.pixels


class _Recorder:
    """Stands in for a tensor: records how it was copied."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def to(self, target: torch.device, non_blocking: bool = False) -> _Recorder:
        self.calls.append((target.type, non_blocking))
        return self


@pytest.mark.parametrize(("name", "asynchronous"), [("cuda", True), ("cpu", False), ("mps", False)])
def test_copies_wait_for_the_host_except_on_cuda(name: str, asynchronous: bool) -> None:
    target = torch.device(name)
    single, ids, mask = _Recorder(), _Recorder(), _Recorder()
    loop._to(single, target, False)
    loop._to({"input_ids": ids, "attention_mask": mask}, target, False)
    assert single.calls == ids.calls == mask.calls == [(name, asynchronous)]


class _Pixels(_Recorder):
    """Records its copy, then hands the augmentation a real CPU tensor."""

    def to(self, target: torch.device, non_blocking: bool = False) -> torch.Tensor:  # type: ignore[override]
        super().to(target, non_blocking)
        return torch.zeros(1, 3, 4, 4, dtype=torch.uint8)


def test_a_device_batch_is_copied_without_waiting_on_cuda_only() -> None:
    pixels = _Pixels()
    batch = DeviceBatch(pixels, torch.full((1, 2), 4.0), _identity(4))  # type: ignore[arg-type]
    assert batch.to_device(torch.device("cuda")).shape == (1, 3, 4, 4)
    batch.to_device(torch.device("cpu"))
    assert pixels.calls == [("cuda", True), ("cpu", False)]


# ---- texts -------------------------------------------------------------------------------------------------


class _CountingTokenizer:
    """A whitespace tokenizer that counts the texts it is given."""

    padding_side = "right"
    pad_token_id = 0

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.calls = 0

    def __call__(self, texts: Sequence[str], truncation: bool, max_length: int) -> dict[str, list[list[int]]]:
        self.calls += 1
        self.texts.extend(texts)
        return {"input_ids": [[1 + len(word) for word in text.split()][:max_length] for text in texts]}


def test_texts_are_tokenised_once_and_padded_per_batch(tmp_path: Path) -> None:
    rows = [f"{'good fine great' if i % 2 else 'bad awful'} {'word ' * i},{'pos' if i % 2 else 'neg'}"
            for i in range(20)]
    (tmp_path / "texts.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    modality = TextModality()
    info = modality.ingest(tmp_path / "texts.csv", tmp_path / "ds")
    tokenizer = _CountingTokenizer()
    model = SimpleNamespace(tokenizer=tokenizer, max_length=512)
    config = TrainConfig(dataset_id="x", modality="text", backbone="any", max_length=64)
    train, val = modality.datasets(tmp_path / "ds", info, config, Split(list(range(0, 20, 2)), list(range(1, 20, 2))),
                                   model)
    loader = loop._loader(train, 4, torch.Generator().manual_seed(0), "cuda")
    assert loader.num_workers == 0 and loader.pin_memory  # tokenised already: nothing left for workers
    loader = loop._loader(train, 4, torch.Generator().manual_seed(0), "cpu")  # iterable without CUDA
    widths = []
    for _ in range(2):
        for inputs, _labels in loader:
            widths.append(inputs["input_ids"].shape[1])
            assert widths[-1] == int(inputs["attention_mask"].sum(1).max())  # padded to the batch's longest
    for _batch in loop._loader(val, 4, None, "cpu"):
        pass
    assert tokenizer.calls == 1 and sorted(tokenizer.texts) == sorted(modality.items(tmp_path / "ds", info))
    assert len(set(widths)) > 1


# ---- mixed precision ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("native_bf16", "dtype"), [(True, torch.bfloat16), (False, torch.float16)])
def test_auto_precision_on_cuda_is_bf16_where_native_else_fp16_with_a_scaler(
    monkeypatch: pytest.MonkeyPatch, native_bf16: bool, dtype: torch.dtype
) -> None:
    asked: list[dict[str, Any]] = []

    def is_bf16_supported(**kwargs: Any) -> bool:
        asked.append(kwargs)
        return native_bf16

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    choice = device.DeviceChoice(torch.device("cuda"), device._amp_dtype(torch.device("cuda"), "auto"))
    assert choice.amp_dtype is dtype and choice.needs_grad_scaler is (dtype is torch.float16)
    assert asked == [{"including_emulation": False}]  # emulated bf16 is slower than fp32


def test_auto_precision_is_off_on_the_cpu_unless_asked() -> None:
    assert TrainConfig(dataset_id="x").precision == "auto"
    assert device.select("cpu").amp_dtype is None and device.select("cpu").describe() == "cpu, fp32"
    assert device.select("cpu", "bf16").amp_dtype is torch.bfloat16
    assert device._amp_dtype(torch.device("mps"), "auto") is None
    assert device._amp_dtype(torch.device("cuda"), "fp32") is None
