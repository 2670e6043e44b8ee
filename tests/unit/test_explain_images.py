"""Tests that would catch a wrong map.

A small CNN learns synthetic images whose class is decided by a bright patch in the top-left corner:
Grad-CAM and Integrated Gradients must put their mass there, IG's deletion area must beat a random map's,
and randomising the top layers must change the maps. Vision transformers get Grad-CAM on their token
grid (checked against a hand computation) or a clear refusal. The CLI is checked on a real run.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torchvision import transforms

from core import datasets, prediction, runs
from core.artifacts import RunFiles
from core.cli import main
from core.config import TrainConfig
from core.data.pictures import load_image
from core.errors import GlassboxError
from core.explain import ExplainOptions, explain, faithfulness, load_subject, methods
from core.explain.images import ImageModel, occlusion_geometry
from core.store import Store
from core.workspace import Workspace
from tests.conftest import colour_images

SIZE, PATCH = 32, 8
MEAN, STD = 0.5, 0.25
CLASSES = ["plain", "corner"]
TRANSFORM = transforms.Compose([transforms.ToTensor(), transforms.Normalize([MEAN] * 3, [STD] * 3)])


def _corner_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dim noise; every other image (class "corner") has a white PATCH x PATCH square in the top-left."""
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.rand(n, 3, SIZE, SIZE, generator=generator) * 0.5
    labels = torch.arange(n) % 2
    pixels[labels == 1, :, :PATCH, :PATCH] = 1.0
    return (pixels - MEAN) / STD, labels


class _SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def corner() -> tuple[ImageModel, torch.Tensor]:
    """The trained model, prepared for explaining, and three validation images of class "corner"."""
    torch.manual_seed(0)
    net = _SmallCNN()
    inputs, labels = _corner_images(192, seed=0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(8):
        for start in range(0, len(inputs), 32):
            optimizer.zero_grad()
            F.cross_entropy(net(inputs[start:start + 32]), labels[start:start + 32]).backward()
            optimizer.step()
    val_inputs, val_labels = _corner_images(32, seed=1)
    with torch.no_grad():
        accuracy = (net(val_inputs).argmax(1) == val_labels).float().mean().item()
    assert accuracy == 1.0, "the model must have learned the corner rule for the maps to mean anything"
    return ImageModel(net, CLASSES, TRANSFORM, SIZE), val_inputs[val_labels == 1][:3]


def _corner_share(attribution: np.ndarray) -> float:
    """Share of the map's positive mass in the top-left quadrant (a quarter of the image)."""
    positive = np.clip(attribution, 0, None)
    return float(positive[: SIZE // 2, : SIZE // 2].sum() / positive.sum())


@pytest.mark.parametrize("method, least", [("gradcam", 0.8), ("ig", 0.7)])
def test_maps_put_their_mass_on_the_corner_patch(corner: tuple[ImageModel, torch.Tensor], method: str,
                                                 least: float) -> None:
    subject, images = corner
    for image in images:
        result = explain(subject, image[None], CLASSES.index("corner"), method)
        assert result.attribution.shape == (SIZE, SIZE)
        assert _corner_share(result.attribution) > least, (method, _corner_share(result.attribution))


def test_ig_deletion_area_is_below_a_random_maps(corner: tuple[ImageModel, torch.Tensor]) -> None:
    subject, images = corner
    target = CLASSES.index("corner")
    for image in images:
        result = explain(subject, image[None], target, "ig")
        figures = faithfulness.measure(subject, image[None], result)
        assert figures.deletion.auc < 0.5 * figures.random_deletion.auc
        assert figures.insertion.auc > figures.random_insertion.auc
        assert figures.beats_random
        assert figures.infidelity <= figures.random_infidelity
        assert figures.verdict.startswith("Removing the top 10% of this map drops the probability of corner from")
        summary = figures.summary()
        assert {"deletion_auc", "insertion_auc", "random_deletion_auc"} <= set(summary)


def test_randomising_the_top_layers_changes_the_maps(corner: tuple[ImageModel, torch.Tensor]) -> None:
    subject, images = corner
    image = images[:1]
    before = {method: explain(subject, image, CLASSES.index("corner"), method) for method in ("gradcam", "ig")}
    for method, result in before.items():
        check = faithfulness.randomisation_test(subject, image, result, layers=3)
        assert check.layers == ("features.3", "features.6", "fc")
        assert check.changed, (method, check.correlation)
        assert "changes" in check.verdict
    for method, result in before.items():  # the trained model itself is left as it was
        assert np.allclose(explain(subject, image, result.target, method).attribution, result.attribution)


def test_sensitivity_is_measured_on_request(corner: tuple[ImageModel, torch.Tensor]) -> None:
    subject, images = corner
    result = explain(subject, images[:1], 1, "gradcam")
    assert faithfulness.measure(subject, images[:1], result).sensitivity is None
    measured = faithfulness.measure(subject, images[:1], result, sensitivity_samples=2).sensitivity
    # the definition (Yeh et al. 2019, Captum's sensitivity_max), recomputed: the largest change of the map
    # under uniform noise of radius 2% of the value range, relative to the map's norm, with the same draws
    torch.manual_seed(faithfulness._SEED)
    radius = 0.02 * subject.value_range
    noisy = images[:1].expand(2, -1, -1, -1) + torch.empty(2, *images.shape[1:]).uniform_(-radius, radius)
    method = methods("images").get("gradcam")
    original = method.attribute(subject, images[:1], 1, ExplainOptions(), None)[0].flatten(1)
    changed = method.attribute(subject, noisy, 1, ExplainOptions(), None)[0].flatten(1)
    expected = float(((changed - original).norm(dim=1) / original.norm()).max().detach())
    assert measured == pytest.approx(expected, rel=1e-4)


def test_occlusion_reports_progress_and_its_cost(corner: tuple[ImageModel, torch.Tensor]) -> None:
    subject, images = corner
    options = ExplainOptions(occlusion_window=8, occlusion_stride=4)
    geometry = occlusion_geometry(SIZE, options)
    assert (geometry.positions, geometry.uncovered) == (49, 0)
    seen: list[float] = []
    result = explain(subject, images[:1], 1, "occlusion", options, progress=seen.append)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    assert _corner_share(result.attribution) > 0.8
    assert "49 positions" in result.notes[0]


def test_guided_gradcam_only_where_every_activation_is_relu(corner: tuple[ImageModel, torch.Tensor]) -> None:
    subject, images = corner
    assert methods("images").get("guided_gradcam").unavailable(subject) is None
    assert _corner_share(explain(subject, images[:1], 1, "guided_gradcam").attribution) > 0.8

    silu = ImageModel(timm.create_model("test_efficientnet", num_classes=2), CLASSES, TRANSFORM, 64)
    reason = methods("images").get("guided_gradcam").unavailable(silu)
    assert reason is not None and "ReLU" in reason and "SiLU" in reason
    with pytest.raises(GlassboxError, match="Guided Grad-CAM cannot explain this model.*Use Grad-CAM or"):
        explain(silu, torch.zeros(1, 3, 64, 64), 0, "guided_gradcam")


def test_the_explained_copy_leaves_the_model_alone() -> None:
    model = _SmallCNN().eval()
    subject = ImageModel(model, CLASSES, TRANSFORM, SIZE)
    assert subject.model is not model
    assert all(m.inplace is False for m in subject.model.modules() if isinstance(m, nn.ReLU))
    assert all(m.inplace is True for m in model.modules() if isinstance(m, nn.ReLU))
    assert all(p.requires_grad for p in model.parameters())


# ---- vision transformers ------------------------------------------------------------------------------


def test_vit_gradcam_runs_on_the_patch_token_grid() -> None:
    torch.manual_seed(0)
    vit = timm.create_model("test_vit", img_size=64, num_classes=3).eval()
    subject = ImageModel(vit, ["a", "b", "c"], TRANSFORM, 64)
    inputs = torch.randn(1, 3, 64, 64)
    with torch.no_grad():  # the tap that reshapes tokens into a grid changes no output
        assert torch.allclose(subject.model(inputs), vit(inputs), atol=1e-5)
    assert subject.layout.cam_shape == (1, vit.embed_dim, 4, 4)
    assert subject.layout.prefix_tokens == 1

    expected = {target: _hand_cam(vit, inputs, target) for target in range(3)}
    target = next(t for t, cam in expected.items() if cam.max() > 0)
    result = explain(subject, inputs, target, "gradcam")
    assert result.attribution.shape == (64, 64)
    assert "4x4 patch-token grid entering blocks" in result.notes[0] and "1 prefix token" in result.notes[0]
    np.testing.assert_allclose(result.attribution, expected[target], rtol=1e-3, atol=1e-6)


def _hand_cam(vit: nn.Module, inputs: torch.Tensor, target: int) -> np.ndarray:
    """Grad-CAM on the patch tokens entering the last block, computed by hand: channel weights are the
    gradients averaged over patches, the map their weighted sum, ReLU'd, on the 4x4 grid, upsampled."""
    model = copy.deepcopy(vit)
    captured: dict[str, torch.Tensor] = {}

    def keep(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        args[0].retain_grad()
        captured["tokens"] = args[0]

    model.blocks[-1].register_forward_pre_hook(keep)
    model(inputs.clone().requires_grad_(True))[0, target].backward()
    tokens, grads = captured["tokens"][0, 1:], captured["tokens"].grad[0, 1:]
    cam = F.relu((tokens * grads.mean(dim=0)).sum(dim=1)).reshape(1, 1, 4, 4)
    return F.interpolate(cam, size=(64, 64), mode="bilinear").detach()[0, 0].numpy()


@pytest.mark.parametrize("name", ["test_vit_relpos", "test_mambaout"])
def test_gradcam_refuses_models_without_a_usable_grid(name: str) -> None:
    model = timm.create_model(name, num_classes=2, **({"img_size": 64} if "vit" in name else {}))
    subject = ImageModel(model, CLASSES, TRANSFORM, 64)
    assert methods("images").get("gradcam").unavailable(subject) is not None
    with pytest.raises(GlassboxError, match="Grad-CAM cannot explain this model: .*Use .*Integrated Gradients"):
        explain(subject, torch.zeros(1, 3, 64, 64), 0, "gradcam")
    # the methods that do apply still give a map
    assert explain(subject, torch.zeros(1, 3, 64, 64), 0, "saliency").attribution.shape == (64, 64)


# ---- the command line ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str]]:
    """A workspace holding one real run, trained by a worker process on the colour images (tiny model,
    32 px, CPU); shared by the CLI tests, which only read it."""
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("cli")
        patch.setenv("GLASSBOX_HOME", str(root / "home"))
        patch.setenv("HF_HUB_OFFLINE", "1")
        ws = Workspace.from_env()
        store = Store(ws.db_path)
        archive = root / "colours.zip"
        with zipfile.ZipFile(archive, "w") as zipped:
            for cls, filename, data in colour_images(n_per_class=12):
                zipped.writestr(f"colours/{cls}/{filename}", data)
        dataset = datasets.add(ws, store, archive)
        config = TrainConfig(dataset_id=dataset.id, backbone="test_efficientnet", weights="none", image_size=32,
                             epochs=2, batch_size=16, lr=1e-2, mode="full", augmentation="none", device="cpu",
                             warmup_fraction=0.0, label_smoothing=0.0)
        run = runs.wait(ws, store, runs.create(ws, store, config).id)
        assert run.status == "completed", run.error
        yield ws, run.id


def test_cli_explain_writes_an_overlay_and_one_json_line(cli_home: tuple[Workspace, str], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    ws, colour_run = cli_home
    _, _, red = next(colour_images(n_per_class=1))
    image = tmp_path / "red.png"
    image.write_bytes(red)
    out = tmp_path / "out" / "red-saliency.png"
    code = main(["explain", colour_run, "--input", str(image), "--method", "saliency", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    value = json.loads(captured.out.strip().splitlines()[-1])
    assert value["method"] == "saliency" and value["target"] == value["predicted"]
    # what the run's model says of this image, computed again here without the CLI
    subject = load_subject(RunFiles(ws.run_dir(colour_run)), ws.cache_dir)
    inputs = subject.tensor(load_image(image, subject.image_size))
    probs = subject.probabilities(inputs)[0]
    target = int(probs.argmax())
    assert value["predicted"] == subject.classes[target] == "red"
    assert value["probability"] == round(float(probs[target]), 4)
    assert value["seconds"] > 0
    figures = faithfulness.measure(subject, inputs, explain(subject, inputs, target, "saliency"))
    assert value["faithfulness"] == figures.summary()
    # the curves run from the whole image to a black one (deletion) and from a blurred one to the whole image
    black, blurred = subject.probabilities(torch.cat([subject.black(inputs), subject.blurred(inputs)]))[:, target]
    assert (figures.deletion.at(0.0), figures.deletion.at(1.0)) == pytest.approx((probs[target], black), abs=1e-6)
    assert (figures.insertion.at(0.0), figures.insertion.at(1.0)) == pytest.approx((blurred, probs[target]),
                                                                                   abs=1e-6)
    with Image.open(out) as written:
        assert written.format == "PNG" and min(written.size) >= 256

    code = main(["explain", colour_run, "--input", str(image), "--target", "blue", "--method", "ig", "--steps", "8",
                 "--json"])
    value = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and value["target"] == "blue" and value["method"] == "ig"
    assert Path(value["out"]).is_file() and Path(value["out"]).is_relative_to(ws.run_dir(colour_run))


def test_cli_explain_errors_are_one_line(cli_home: tuple[Workspace, str], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _, colour_run = cli_home
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture at all")
    good = tmp_path / "good.png"
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(buffer, format="PNG")
    good.write_bytes(buffer.getvalue())
    cases = [
        (["--input", str(bad)], "bad.png: not an image"),
        (["--input", str(tmp_path / "missing.png")], "missing.png: no such file"),
        (["--input", str(good), "--target", "purple"], "unknown class 'purple'"),
        (["--input", str(good), "--method", "magic"], "unknown image explanation method 'magic'"),
        # at 32 px this small EfficientNet's last feature map is 1x1: Grad-CAM says so instead of guessing
        (["--input", str(good), "--method", "gradcam"], "Grad-CAM cannot explain this model"),
    ]
    for extra, expected in cases:
        code = main(["explain", colour_run, *extra, "--json"])
        err = capsys.readouterr().err
        assert code != 0
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1 and expected in err, err
        assert "Traceback" not in err


def test_cli_predict_classifies_a_folder_and_keeps_unreadable_files(
        cli_home: tuple[Workspace, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    ws, colour_run = cli_home
    monkeypatch.setattr(prediction, "_CHUNK", 2)  # the broken file lands in a second chunk of its own
    folder = tmp_path / "new" / "nested"
    folder.mkdir(parents=True)
    for name, colour in (("a_red.png", (210, 30, 30)), ("b_blue.png", (30, 50, 210))):
        Image.new("RGB", (32, 32), colour).save(folder / name)
    (folder / "c_broken.png").write_bytes(b"not a picture")
    (folder / "notes.txt").write_text("not an image either: a row with its reason, as at upload")
    (folder / ".DS_Store").write_bytes(b"litter")
    out = tmp_path / "predictions.csv"
    code = main(["predict", colour_run, str(tmp_path / "new"), "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    value = json.loads(captured.out.strip().splitlines()[-1])
    assert value["count"] == 4 and value["errors"] == 2
    rows = value["predictions"]
    assert [row["image"] for row in rows] == ["nested/a_red.png", "nested/b_blue.png", "nested/c_broken.png",
                                              "nested/notes.txt"]
    assert [row["predicted"] for row in rows] == ["red", "blue", None, None]
    assert rows[2]["error"] == rows[3]["error"] == "not an image (JPEG, PNG, WebP, AVIF, TIFF, BMP or GIF expected)"
    assert out.read_text().count("\n") == 5  # header and four rows

    for extra, expected in (([str(tmp_path / "missing")], "missing: no such file or folder"),
                            (["--text", "hello"], "give image files or folders, not --text"),
                            ([], "give one or more image files, folders or zips")):
        assert main(["predict", colour_run, *extra]) != 0
        err = capsys.readouterr().err
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1 and expected in err, err


@pytest.mark.parametrize("signed", [False, True])
def test_no_evidence_is_drawn_neutral(signed: bool) -> None:
    from core.explain import rendering

    attribution = np.zeros((8, 8))
    attribution[:2, :2] = 1.0
    if signed:
        attribution[-2:, -2:] = -1.0
    picture = np.full((8, 8, 3), 90, dtype=np.uint8)
    assert rendering.is_signed(attribution) is signed
    painted = rendering.overlay(picture, attribution, opacity=1.0)
    assert (painted[4, 4] == picture[4, 4]).all(), "where the map is zero the picture shows through unchanged"
    assert painted[0, 0].tolist() == ([178, 24, 43] if signed else [252, 255, 164])
    if signed:
        assert painted[-1, -1].tolist() == [33, 102, 172]
    # the figures' colour scale: zero sits at position 0.5 (diverging, -1..1) or 0 (sequential), fully clear
    scale = dict((position, colour) for position, colour in rendering.colour_scale(signed))
    assert scale[0.5 if signed else 0.0].endswith(",0.0)")


def _figures(deletion: float, random_deletion: float, insertion: float = 0.5) -> faithfulness.Faithfulness:
    flat = (0.0, 1.0)

    def curve(area: float) -> faithfulness.Curve:
        return faithfulness.Curve(flat, (area, area))

    return faithfulness.Faithfulness(curve(deletion), curve(insertion), curve(random_deletion), curve(0.5),
                                     infidelity=0.0, random_infidelity=0.0, sensitivity=None, verdict="")


def test_methods_rank_by_their_deletion_gap_to_a_random_map() -> None:
    figures = {"saliency": _figures(0.5, 0.6), "gradcam": _figures(0.2, 0.6), "ig": _figures(0.55, 0.5)}
    ranked = faithfulness.rank(figures)
    assert [r.method for r in ranked] == ["gradcam", "saliency", "ig"]
    assert [round(r.deletion_gap, 3) for r in ranked] == [0.4, 0.1, -0.05]
    assert [r.beats_random for r in ranked] == [True, False, False]
    titles = {"gradcam": "Grad-CAM", "saliency": "Saliency", "ig": "Integrated Gradients"}
    assert faithfulness.ranking_verdict(ranked, titles) == (
        "Grad-CAM is the most faithful on this input: removing its top regions lowers the probability faster than "
        "a random map's (deletion area 0.400 lower); 1 of the 3 methods beat a random map.")
    assert faithfulness.ranking_verdict(ranked[1:], titles).startswith("No method's map is clearly better")
