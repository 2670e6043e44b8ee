"""The Train page: no data, a run started with the chosen settings, and the from-scratch guard."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from core import datasets
from core.models import weights
from core.store import DatasetRecord, Store
from core.training.presets import preset
from core.workspace import Workspace
from tests.pages.conftest import open_page, png

PAGE = "pages/2_Train.py"


def test_without_a_dataset_it_points_to_data(store: Store) -> None:
    at = open_page(PAGE)
    assert any("no dataset" in i.value.lower() for i in at.info)
    assert not any(b.key == "start" for b in at.button)


def test_start_creates_a_run_with_the_chosen_settings(store: Store, dataset: DatasetRecord, no_workers) -> None:
    at = open_page(PAGE)
    assert at.selectbox[0].value == dataset.id
    assert at.selectbox(key="backbone_pick-images").value == "efficientnet_lite0"

    at.button_group(key="preset").set_value("balanced").run()
    # the advanced panel follows the preset...
    assert at.number_input(key="adv-epochs-balanced").value == preset("images", "balanced").values["epochs"]
    assert at.radio(key="mode-balanced").value == "partial"
    # ...and the user changes what they mean to
    at.number_input(key="adv-epochs-balanced").set_value(2)
    at.number_input(key="adv-seed-balanced").set_value(7)
    at.radio(key="mode-balanced").set_value("head")
    at.selectbox(key="adv-augmentation-balanced").set_value("none")
    at.run()
    assert not at.exception, at.exception

    at.button(key="start").click().run()
    assert not at.exception, at.exception
    [run] = store.list_runs()
    assert run.status == "queued"
    assert run.dataset_id == dataset.id and run.backbone == "efficientnet_lite0"
    config = run.config
    assert (config["preset"], config["epochs"], config["seed"], config["mode"]) == ("balanced", 2, 7, "head")
    assert config["augmentation"] == "none" and config["weights"] == "auto"
    assert config["image_size"] == preset("images", "balanced").values["image_size"]
    # the page moved on to the live view of the new run
    assert at.title[0].value == "Runs"
    assert at.session_state["run_id"] == run.id


def test_backbone_without_weights_needs_from_scratch(
    store: Store, dataset: DatasetRecord, no_workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as on a machine with no hub and nothing cached, whatever this one has
    monkeypatch.setattr(weights, "locate", lambda arch: weights.WeightSource("none", None, "none available"))
    at = open_page(PAGE)
    at.text_input(key="backbone_typed-images").set_value("resnet18").run()
    assert any("No pretrained weights" in w.value for w in at.warning)
    assert at.button(key="start").disabled

    at.checkbox(key="scratch-resnet18").check().run()
    assert not at.button(key="start").disabled
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    [run] = store.list_runs()
    assert run.backbone == "resnet18" and run.config["weights"] == "none"


def test_unknown_backbone_shows_the_library_message(store: Store, dataset: DatasetRecord) -> None:
    at = open_page(PAGE)
    at.text_input(key="backbone_typed-images").set_value("resnt18").run()
    assert not at.exception
    assert any("unknown image backbone" in e.value and "resnet18" in e.value for e in at.error)
    assert at.button(key="start").disabled


def test_uploaded_weights_file_is_kept_and_used(
    ws: Workspace, store: Store, dataset: DatasetRecord, no_workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weights, "locate", lambda arch: weights.WeightSource("none", None, "none available"))
    at = open_page(PAGE)
    at.text_input(key="backbone_typed-images").set_value("resnet18").run()
    upload = ("my resnet.pth", b"not checked yet", "application/octet-stream")
    at.file_uploader(key="weights_file-resnet18").set_value(upload).run()
    assert not at.button(key="start").disabled, "a weights file is enough to proceed"
    at.button(key="start").click().run()
    [run] = store.list_runs()
    saved = run.config["weights"]
    assert saved.startswith(str(ws.cache_dir / "user-weights"))
    assert saved.endswith("my resnet.pth")
    assert Path(saved).read_bytes() == b"not checked yet"


def test_a_text_dataset_offers_text_backbones_and_max_tokens(store: Store, text_dataset: DatasetRecord,
                                                             no_workers) -> None:
    at = open_page(PAGE)
    assert at.selectbox[0].value == text_dataset.id
    assert at.selectbox(key="backbone_pick-text").value == "sentence-transformers/all-MiniLM-L6-v2"
    catalog = at.dataframe[0].value
    assert "max tokens" in catalog.columns and "input size (px)" not in catalog.columns
    assert catalog.loc[catalog["name"] == "sentence-transformers/all-MiniLM-L6-v2", "max tokens"].item() == "512"
    assert at.text_input(key="backbone_typed-text").label == "...or any Hugging Face model id or local folder"

    at.button_group(key="preset").set_value("quick").run()
    assert any("features are computed once" in c.value for c in at.caption), "text never augments"
    at.number_input(key="adv-max_length-quick").set_value(64).run()
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    [run] = store.list_runs()
    assert (run.modality, run.backbone) == ("text", "sentence-transformers/all-MiniLM-L6-v2")
    assert (run.config["max_length"], run.config["mode"], run.config["preset"]) == (64, "head", "quick")


def test_class_weights_are_offered_and_imbalance_is_flagged(store: Store, ws: Workspace, tmp_path: Path,
                                                            no_workers) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for kind, n in (("circle", 9), ("cross", 3), ("square", 4)):
            for i in range(n):
                archive.writestr(f"shapes/{kind}/{i:02d}.png", png(kind, i))
    path = tmp_path / "skewed.zip"
    path.write_bytes(buffer.getvalue())
    datasets.add(ws, store, path)

    at = open_page(PAGE)
    assert [i.value for i in at.info if "imbalanced" in i.value] == [
        "Classes are imbalanced: 'circle' has 9 images, 'cross' only 3. Accuracy will flatter a model that favours "
        "'circle' (the run shows what always answering it scores); class weights *balanced* under *Advanced "
        "settings* make every class count as much in training."]
    at.button_group(key="preset").set_value("quick").run()
    assert at.selectbox(key="adv-class_weights-quick").value == "none"
    at.selectbox(key="adv-class_weights-quick").set_value("balanced").run()
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    [run] = store.list_runs()
    assert run.config["class_weights"] == "balanced"


def test_a_balanced_dataset_is_not_flagged_and_the_preset_input_size_is_shown(
    store: Store, dataset: DatasetRecord
) -> None:
    at = open_page(PAGE)
    assert not [i for i in at.info if "imbalanced" in i.value]
    at.button_group(key="preset").set_value("quick").run()
    assert "Input size with this preset: **128 px** (the backbone's own: 224 px); change it under *Advanced " \
           "settings*." in [c.value for c in at.caption]
    at.button_group(key="preset").set_value("best").run()
    assert any(c.value.startswith("Input size with this preset: **224 px**") for c in at.caption)


def test_text_presets_show_their_max_tokens(store: Store, text_dataset: DatasetRecord) -> None:
    at = open_page(PAGE)
    at.button_group(key="preset").set_value("best").run()
    assert any(c.value.startswith("Input size with this preset: **256 tokens** (the backbone's own: 512 tokens)")
               for c in at.caption)


def test_without_pretrained_weights_it_says_a_small_set_will_do_poorly(
    store: Store, dataset: DatasetRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weights, "locate", lambda arch: weights.WeightSource("none", None, "none available"))
    at = open_page(PAGE)
    at.text_input(key="backbone_typed-images").set_value("resnet18").run()
    [warning] = [w.value for w in at.warning if "No pretrained weights" in w.value]
    assert "Trained from scratch on 18 images it will do poorly" in warning
