"""The Explain page on a completed run with real (untrained) weights: the gallery and its filters, the
explain button with maps and faithfulness figures, and the randomisation check."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.store import DatasetRecord, RunRecord, Store
from core.workspace import Workspace
from tests.pages.conftest import EXPLAIN_ITEMS as ITEMS
from tests.pages.conftest import fabricate_text_run, open_page

PAGE = "pages/5_Explain.py"


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


def test_a_text_is_explained_word_by_word(ws: Workspace, store: Store, text_dataset: DatasetRecord,
                                          minilm_weights: Path) -> None:
    run = fabricate_text_run(ws, store, text_dataset, minilm_weights, preds=[0, 1, 1, 1, 0, 0])
    at = open_page(PAGE)
    assert at.selectbox(key="explain_run").value == run.id
    at.selectbox(key="explain_text_filter").set_value("Wrong").run()
    item = at.selectbox(key=f"explain_text_item-{run.id}")
    assert [o.split(" · ")[0] for o in item.options] == ["bad → good (0.82)", "good → bad (0.82)"]
    assert any("review 2 of the product was awful overall" in t.value for t in at.text)

    at.radio(key="explain_text_source").set_value("Type a text").run()
    at.text_area(key="explain_text_input").set_value("what a <b>lovely</b> & kind product").run()
    at.multiselect(key=f"explain_text_methods-{run.id}").set_value(["ig", "occlusion"]).run()
    at.button(key="explain_text_go").click().run()
    assert not at.exception, at.exception

    html = [h.proto.body for h in at.get("html")]
    assert len(html) == 2  # one coloured text per method
    assert all("&lt;b&gt;lovely&lt;/b&gt;" in h and "<b>" not in h for h in html), "the text is escaped"
    assert all(len(re.findall(r'title="[+-][0-9.]+"', h)) == 6 for h in html), "six words, each scored"
    bars = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    words = [c for c in bars if c["layout"]["title"]["text"].startswith("Words for and against")]
    assert len(words) == 2 and all(len(c["data"][0]["y"]) >= 1 for c in words)
    labels = [m.label for m in at.metric]
    assert labels.count("Change, top 1 word") == 2 and labels.count("Change, 1 random word") == 2
    assert len([e for e in [*at.success, *at.warning] if "Deleting the top 1 word lowers" in e.value]) == 2


def test_an_image_opened_from_evaluate_is_selected_among_its_cell(store: Store, explainable: RunRecord) -> None:
    at = open_page("pages/4_Evaluate.py")
    at.selectbox(key=f"eval_true-{explainable.id}").set_value("circle")
    at.selectbox(key=f"eval_pred-{explainable.id}").set_value("circle").run()  # positions 1 (0.81) and 0 (0.80)
    at.button(key=f"eval_open-{explainable.id}-1").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="explain_run").value == explainable.id
    item = at.selectbox(key=f"explain_item-{explainable.id}")
    assert item.value == 0 and item.options == ["images/circle/01.png · circle (0.81) ✓",
                                                "images/circle/00.png · circle (0.80) ✓"]
    assert any("2 validation image(s) as filtered on Evaluate" in i.value for i in at.info)
    at.switch_page(PAGE)  # st.switch_page showed Explain for one run; AppTest's next runs stay on it only so
    at.button(key=f"explain_focus-{explainable.id}-clear").click().run()
    assert len(at.selectbox(key=f"explain_item-{explainable.id}").options) == len(ITEMS)
    assert at.selectbox(key=f"explain_item-{explainable.id}").value == 0

    # marking the image puts it on Evaluate's list of items to leave out
    at.radio(key=f"mark-{explainable.dataset_id}-0").set_value("mislabelled").run()
    assert at.session_state["item_marks"] == {explainable.dataset_id: {0: "mislabelled"}}


@pytest.mark.slow
def test_methods_are_ranked_by_faithfulness_with_their_timings(store: Store, explainable: RunRecord) -> None:
    at = open_page(PAGE)
    at.multiselect(key=f"explain_methods-{explainable.id}").set_value(["gradcam", "saliency", "ig"]).run()
    at.button(key="explain_go").click().run()
    assert not at.exception, at.exception
    ranking = at.dataframe[-1].value
    assert sorted(ranking["method"]) == ["Grad-CAM", "Integrated Gradients", "Saliency"]
    assert ranking["deletion_gap"].tolist() == sorted(ranking["deletion_gap"], reverse=True)
    verdicts = [e.value for e in [*at.success, *at.warning]]
    assert any(v.startswith(f"{ranking['method'][0]} is the most faithful") or v.startswith("No method's map")
               for v in verdicts)
    timings = [c.value for c in at.caption if c.value.startswith("Measured in deletion and insertion")]
    assert len(timings) == 3 and all(re.search(r"infidelity \d+\.\d\d s, sensitivity \d+\.\d\d s$", t) for t in timings)

    at.button(key="explain_sanity_go").click().run()
    assert len([c for c in at.caption if re.search(r"^Randomised: .* · \d+\.\d\d s$", c.value)]) == 3


def test_deletion_and_insertion_charts_do_not_overlap() -> None:
    from core.explain.faithfulness import Curve, Faithfulness
    from ui.explain_views import curves

    curve = Curve((0.0, 1.0), (0.9, 0.1))
    fig = curves(Faithfulness(curve, curve, curve, curve, 0.0, 0.0, None, "")).to_plotly_json()["layout"]
    deletion, insertion = fig["yaxis"]["domain"], fig["yaxis2"]["domain"]
    assert insertion[1] + 0.2 < deletion[0], "stacked, with room for the x-axis title and the next chart's title"
    assert fig["xaxis"]["domain"] == fig["xaxis2"]["domain"] == [0.0, 1.0]
    assert fig["legend"]["y"] > 1 and fig["legend"]["yanchor"] == "bottom", "the legend sits above both charts"
