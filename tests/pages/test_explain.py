"""The Explain page on a completed run with real (untrained) weights: the gallery and its filters, the
explain button with maps and faithfulness figures, and the randomisation check."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from core.artifacts import RunFiles
from core.config import TrainConfig
from core.models import create_model
from core.store import DatasetRecord, RunRecord, Store
from core.workspace import Workspace
from tests.pages.conftest import CLASSES, fabricate_run, open_page, write_predictions

PAGE = "pages/5_Explain.py"
# dataset items are sorted by path: circle 0-5, cross 6-11, square 12-17; three of each are "validation"
ITEMS = [0, 1, 2, 6, 7, 8, 12, 13, 14]
LABELS = [0, 0, 0, 1, 1, 1, 2, 2, 2]
PREDS = [0, 0, 1, 1, 1, 1, 2, 0, 2]  # positions 2 and 7 are mistakes, at 0.82 and 0.81


@pytest.fixture
def explainable(ws: Workspace, store: Store, dataset: DatasetRecord) -> RunRecord:
    """A completed run as the worker leaves it, with a tiny model's weights (64 px: a 2x2 last feature map)."""
    run = fabricate_run(store, dataset, "completed", metrics={"val_accuracy": 7 / 9, "best_epoch": 1})
    write_predictions(ws, run, ITEMS, LABELS, PREDS)
    files = RunFiles(ws.run_dir(run.id))
    config = TrainConfig(dataset_id=dataset.id, backbone="test_efficientnet", weights="none", image_size=64)
    files.config.write_text(config.to_json())
    torch.manual_seed(0)
    save_file(create_model(config, len(CLASSES), ws.cache_dir).state_dict(), str(files.weights))
    return run


def _buttons(at, label: str) -> list:  # type: ignore[no-untyped-def]
    return [b for b in at.button if b.label == label]


def test_no_completed_run(store: Store) -> None:
    at = open_page(PAGE)
    assert any("No finished run to explain yet" in i.value for i in at.info)


def test_gallery_filters_and_picks_an_image(store: Store, explainable: RunRecord) -> None:
    at = open_page(PAGE)
    assert at.selectbox(key="explain_run").value == explainable.id
    assert len(_buttons(at, "Use")) == len(ITEMS)
    assert len(at.get("image")) >= len(ITEMS)  # the gallery, plus the picture as the model sees it
    item = at.selectbox(key=f"explain_item-{explainable.id}")
    assert item.options[0].startswith("images/circle/")

    at.selectbox(key="explain_filter").set_value("Most confident mistakes").run()
    item = at.selectbox(key=f"explain_item-{explainable.id}")
    assert [o.split(" · ")[1] for o in item.options] == ["circle → cross (0.82)", "square → circle (0.81)"]
    _buttons(at, "Use")[1].click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key=f"explain_item-{explainable.id}").value == 7

    at.selectbox(key="explain_filter").set_value("Correct").run()
    at.selectbox(key="explain_class").set_value("square").run()
    assert len(at.selectbox(key=f"explain_item-{explainable.id}").options) == 2
    # the class to explain defaults to the predicted one
    target = next(s for s in at.selectbox if s.label == "Class to explain")
    assert target.value == 2 and "predicted" in target.format_func(target.value)


def test_explain_shows_maps_and_faithfulness(store: Store, explainable: RunRecord) -> None:
    at = open_page(PAGE)
    at.multiselect(key=f"explain_methods-{explainable.id}").set_value(["gradcam", "saliency"]).run()
    assert any("Press **Explain**" in c.value for c in at.caption)
    at.button(key="explain_go").click().run()
    assert not at.exception, at.exception

    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    overlays = [c for c in charts if {t["type"] for t in c["data"]} == {"image", "heatmap"}]
    assert len(overlays) == 2
    heat = next(t for t in overlays[0]["data"] if t["type"] == "heatmap")
    assert heat["z"]["shape"] == "64, 64" and heat["opacity"] == pytest.approx(0.6)
    labels = [m.label for m in at.metric]
    for label in ("Deletion AUC", "Insertion AUC", "Infidelity", "Sensitivity"):
        assert labels.count(label) == 2, label
    verdicts = [e.value for e in [*at.success, *at.warning]]
    assert sum(v.startswith("Removing the top 10% of this map") for v in verdicts) == 2
    assert any("Grad-CAM on bn2 (2x2" in c.value for c in at.caption)

    # moving the opacity slider redraws without recomputing
    at.slider(key="explain_opacity").set_value(0.3).run()
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    heat = next(t for c in charts for t in c["data"] if t["type"] == "heatmap" and "opacity" in t)
    assert heat["opacity"] == pytest.approx(0.3)

    at.button(key="explain_sanity_go").click().run()
    assert not at.exception, at.exception
    checks = [e.value for e in [*at.success, *at.warning] if "randomised" in e.value]
    assert len(checks) == 2 and all("rank correlation" in c for c in checks)


def test_methods_that_do_not_apply_are_explained_not_offered(store: Store, explainable: RunRecord) -> None:
    at = open_page(PAGE)
    options = at.multiselect(key=f"explain_methods-{explainable.id}").options
    assert "Guided Grad-CAM" not in options and "Grad-CAM" in options
    assert any("Guided Grad-CAM is not available for this model" in c.value and "SiLU" in c.value
               for c in at.caption)


def test_evaluate_explains_the_most_confident_mistakes(store: Store, explainable: RunRecord) -> None:
    at = open_page("pages/4_Evaluate.py")
    shown = len(at.get("image"))
    at.button(key=f"eval_explain-{explainable.id}").click().run()
    assert not at.exception, at.exception
    assert any(c.value.startswith("Grad-CAM maps.") for c in at.caption)
    maps = [img for image in at.get("image")[shown:] for img in image.proto.imgs]
    assert [m.caption for m in maps] == ["circle → cross (0.82)", "square → circle (0.81)"]
