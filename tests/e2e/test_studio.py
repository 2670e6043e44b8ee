"""The studio in a real browser: a user's whole journey (upload, train, watch, evaluate, explain), a first visit
that is a deep link, and a hostile upload.

The tests of this module share one server (`studio`): the journey's dataset and trained run are reused by
the later tests, so the model is trained once. `test_first_visit_is_a_deep_link` gets a server of its own.
Labels are the pages' own (pages/*.py); waits follow Streamlit's e2e suite: the app's script state.
"""

from __future__ import annotations

import io
import re
import sqlite3
import time
import zipfile
from contextlib import closing
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.conftest import NO_BROWSER, ROOT, StudioServer

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(NO_BROWSER is not None, reason=NO_BROWSER or "")]

if NO_BROWSER is None:
    from playwright.sync_api import Locator, Page, expect

SAMPLE_ZIP = ROOT / "sample_data" / "digits.zip"
APP = "[data-testid='stApp']"
IDLE = f"{APP}[data-test-script-state='notRunning']"
CONNECTED = f"{APP}[data-test-connection-state='CONNECTED']"
UPLOAD_INPUT = "[data-testid='stFileUploaderDropzoneInput']"
PLOTLY = "[data-testid='stPlotlyChart'] .js-plotly-plot"
SLOW = 120_000  # ms: a rerun on two busy cores
TRAINING = 360_000  # ms: worker start (torch, timm imports), features computed once, then the head's epochs

# what the journey leaves for the tests after it (same module, same server)
journey: dict[str, str] = {}


# ---- helpers ------------------------------------------------------------------------------------------------

def settle(page: Page, timeout: float = SLOW) -> None:
    """Wait until the app is connected and its script has finished running, as Streamlit's own e2e suite
    does; the short pause lets a rerun that an interaction just triggered begin first."""
    page.wait_for_timeout(300)
    page.wait_for_selector(CONNECTED, timeout=timeout)
    page.wait_for_selector(IDLE, timeout=timeout)


def open_url(page: Page, url: str) -> None:
    page.goto(url, timeout=SLOW)
    settle(page)


def go_to(page: Page, name: str) -> None:
    """Click a page in the shared sidebar menu (ui.shell's links, or Streamlit's own menu) and wait for it."""
    page.locator("[data-testid='stSidebar']").get_by_role("link", name=name, exact=True).click()
    page.wait_for_url(re.compile(rf"/{name}$"), timeout=SLOW)
    settle(page)
    expect(page).to_have_title(f"{name} · Glassbox", timeout=SLOW)


def metric(page: Page, label: str) -> Locator:
    """The value of the st.metric labelled `label`."""
    box = page.locator("[data-testid='stMetric']").filter(
        has=page.locator("[data-testid='stMetricLabel']").get_by_text(label, exact=True))
    return box.locator("[data-testid='stMetricValue']")


def no_exception(page: Page) -> None:
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


def completed_run_ids(server: StudioServer) -> list[str]:
    with closing(sqlite3.connect(server.home / "glassbox.db", timeout=10)) as db:
        return [row[0] for row in db.execute("SELECT id FROM runs WHERE status = 'completed' ORDER BY created_at")]


def dataset_count(page: Page) -> int:
    heading = page.get_by_role("heading", name=re.compile(r"^Datasets \(\d+\)"))
    expect(heading).to_be_visible()
    found = re.search(r"\((\d+)\)", heading.inner_text())
    assert found, heading.inner_text()
    return int(found.group(1))


def png_bytes(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (16, 16), value).save(buffer, format="PNG")
    return buffer.getvalue()


# ---- the tests ----------------------------------------------------------------------------------------------

def test_first_visit_is_a_deep_link(fresh_studio: StudioServer, page: Page) -> None:
    """A bookmark opened first on a freshly started server gets the same config and shared sidebar as `/`."""
    open_url(page, f"{fresh_studio.url}/Train")
    expect(page).to_have_title("Train · Glassbox")
    sidebar = page.locator("[data-testid='stSidebar']")
    expect(sidebar.get_by_text("Glassbox", exact=True)).to_be_visible()
    expect(sidebar.get_by_text("Workspace", exact=False)).to_be_visible()
    expect(sidebar.get_by_text(str(fresh_studio.home), exact=False)).to_be_visible()
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible()
    # the fresh workspace has no data: the page says so instead of failing
    expect(page.get_by_text("There is no dataset to train on yet", exact=False)).to_be_visible()
    no_exception(page)
    # and the other steps are reachable from there, home included
    for name in ("Home", "Data", "Train", "Runs", "Evaluate"):
        expect(sidebar.get_by_role("link", name=name, exact=True)).to_be_visible()
    sidebar.get_by_role("link", name="Home", exact=True).click()
    page.wait_for_url(re.compile(r"/$"), timeout=SLOW)
    settle(page)
    expect(page).to_have_title("Home · Glassbox")
    expect(page.get_by_role("heading", name="Steps")).to_be_visible()
    no_exception(page)


@pytest.mark.slow
def test_upload_train_watch_evaluate(studio: StudioServer, page: Page) -> None:
    """The main journey on a fresh workspace: upload the digits zip, train with the Quick (CPU) preset,
    watch it live until it completes, then read its accuracy and confusion matrix."""
    started = time.monotonic()
    open_url(page, f"{studio.url}/")
    expect(page).to_have_title("Home · Glassbox")
    expect(metric(page, "Datasets")).to_have_text("0")

    # ---- Data: upload the zip through the file input (not the sample button)
    go_to(page, "Data")
    expect(page.get_by_role("heading", name="Datasets (0)")).to_be_visible()
    page.set_input_files(UPLOAD_INPUT, str(SAMPLE_ZIP))
    settle(page)
    success = page.locator("[data-testid='stAlertContentSuccess']")
    expect(success).to_contain_text("Added digits: 400 items in 10 classes.", timeout=SLOW)
    expect(page.get_by_role("heading", name="Datasets (1)")).to_be_visible()
    expect(page.get_by_role("heading", name="Preview: digits")).to_be_visible()
    expect(metric(page, "Classes")).to_have_text("10")
    expect(metric(page, "Items")).to_have_text("400")
    expect(metric(page, "Files left out")).to_have_text("0")
    expect(page.locator(PLOTLY).first).to_be_visible()  # the class counts
    no_exception(page)

    # ---- Train: the default backbone with the Quick (CPU) preset
    go_to(page, "Train")
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value("digits · 400 items, 10 classes")
    expect(page.get_by_role("combobox", name="Backbone")).to_have_value("efficientnet_lite0")
    expect(page.get_by_text("pretrained weights: ships with Glassbox (pip package)", exact=False)).to_be_visible()
    quick = page.get_by_role("radio", name="Quick (CPU)", exact=True)
    quick.click()
    settle(page)
    expect(quick).to_have_attribute("aria-checked", "true")
    expect(page.get_by_text("Frozen pretrained backbone, features computed once", exact=False)).to_be_visible()
    expect(page.get_by_text(re.compile(r"efficientnet_lite0 on digits · Quick \(CPU\) · train only the new head"))
           ).to_be_visible()
    start = page.get_by_role("button", name="Start training")
    expect(start).to_be_enabled()
    start.click()

    # ---- Runs: the app moves on at once and shows the run live
    page.wait_for_url(re.compile(r"/Runs$"), timeout=SLOW)
    expect(page).to_have_title("Runs · Glassbox", timeout=SLOW)
    expect(page.locator("[data-testid='stProgress']").first).to_be_visible(timeout=SLOW)
    badge = page.locator("span.stMarkdownBadge")
    expect(badge).to_have_count(1, timeout=SLOW)
    first_status = badge.inner_text()
    expect(page.locator(PLOTLY).first).to_be_visible(timeout=TRAINING)  # the live curves
    expect(badge).to_contain_text("completed", timeout=TRAINING)
    settle(page)
    expect(page.get_by_text(re.compile(r"^step (\d+)/\1 · epoch (\d+)/\2$"))).to_be_visible()
    expect(metric(page, "Val accuracy")).to_have_text(re.compile(r"^\d+\.\d%$"))
    expect(page.locator(PLOTLY).first).to_be_visible()
    expect(page.locator("[data-testid='stAlertContentError']")).to_have_count(0)
    no_exception(page)
    run_ids = completed_run_ids(studio)
    assert len(run_ids) == 1, run_ids
    journey["run_id"] = run_ids[0]
    expect(page.locator("code").get_by_text(run_ids[0], exact=True)).to_be_visible()  # the live view's run

    # ---- Evaluate: accuracy above chance and the confusion matrix
    page.get_by_role("link", name="Evaluate this run").click()
    page.wait_for_url(re.compile(r"/Evaluate$"), timeout=SLOW)
    settle(page)
    expect(page).to_have_title("Evaluate · Glassbox")
    accuracy = metric(page, "Validation accuracy")
    expect(accuracy).to_have_text(re.compile(r"^\d+(\.\d)?%$"), timeout=SLOW)
    value = float(accuracy.inner_text().rstrip("%"))
    assert value > 10.0, f"validation accuracy {value}% is not above chance (10%) for 10 classes"
    expect(page.get_by_role("heading", name="Confusion matrix")).to_be_visible()
    matrix = page.locator(f".st-key-cm-{run_ids[0]} {PLOTLY}")
    expect(matrix).to_be_visible()
    expect(matrix.locator(".heatmaplayer, .scatterlayer").first).to_be_attached()
    expect(metric(page, "Validation images")).to_have_text(re.compile(r"^\d+$"))
    no_exception(page)
    print(f"journey: first status {first_status!r}, accuracy {value}%, {time.monotonic() - started:.0f} s")


def test_upload_with_path_traversal_is_refused(studio: StudioServer, page: Page, tmp_path: Path) -> None:
    """A zip whose entry climbs out of the target folder is refused with a message; nothing is added."""
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        for name, value in (("dark", 20), ("light", 230)):
            for i in range(4):
                archive.writestr(f"shapes/{name}/{i}.png", png_bytes(value + i))
        archive.writestr("../evil.txt", b"gotcha")

    open_url(page, f"{studio.url}/Data")
    expect(page).to_have_title("Data · Glassbox")
    before = dataset_count(page)
    page.set_input_files(UPLOAD_INPUT, str(evil))
    settle(page)
    error = page.locator("[data-testid='stAlertContentError']")
    expect(error).to_contain_text("evil.zip was not added", timeout=SLOW)
    expect(error).to_contain_text("evil.txt")
    expect(page.locator("[data-testid='stAlertContentSuccess']")).to_have_count(0)
    assert dataset_count(page) == before
    no_exception(page)
    for place in (studio.home.parent, studio.home, studio.home / "datasets", studio.home / "staging"):
        assert not (place / "evil.txt").exists(), f"evil.txt was written to {place}"
    assert not any(studio.home.rglob("evil.txt")), "evil.txt was extracted into the workspace"


def test_explain_the_trained_run(studio: StudioServer, page: Page) -> None:
    """Explain the journey's run on a validation image: a map and a faithfulness verdict."""
    run_id = journey.get("run_id")
    if run_id is None:
        pytest.skip("needs the run trained by test_upload_train_watch_evaluate")
    open_url(page, f"{studio.url}/Explain")
    expect(page).to_have_title("Explain · Glassbox")
    expect(page.get_by_role("combobox", name="Completed run")).to_have_value(re.compile(rf"^{run_id} · "),
                                                                             timeout=SLOW)
    expect(page.get_by_role("heading", name="Input")).to_be_visible(timeout=SLOW)
    expect(page.get_by_text("Press Explain to compute the maps", exact=False)).to_be_visible(timeout=SLOW)
    expect(page.locator(".st-key-explain_topk " + PLOTLY)).to_be_visible()
    no_exception(page)

    page.get_by_role("button", name="Explain", exact=True).click()
    settle(page, timeout=TRAINING)
    expect(page.get_by_role("heading", name="Maps")).to_be_visible(timeout=TRAINING)
    expect(page.get_by_role("heading", name="Grad-CAM")).to_be_visible()
    expect(page.locator(".st-key-explain_overlay-gradcam " + PLOTLY)).to_be_visible()
    expect(page.locator(".st-key-explain_map-gradcam " + PLOTLY)).to_be_visible()
    verdict = page.locator("[data-testid='stAlertContentSuccess'], [data-testid='stAlertContentWarning']").filter(
        has_text="Removing the top")
    expect(verdict).to_have_count(1)
    expect(verdict).to_contain_text(re.compile(r"from \d\.\d\d to \d\.\d\d; a random map: to \d\.\d\d"))
    expect(metric(page, "Deletion AUC")).to_have_text(re.compile(r"^\d\.\d{3}$"))
    expect(page.locator("[data-testid='stAlertContentError']")).to_have_count(0)
    no_exception(page)


def test_text_journey_upload_train_predict(studio: StudioServer, page: Page, tmp_path: Path) -> None:
    """A CSV of texts through the whole studio: upload, train the offline MiniLM with the Quick preset,
    read the validation texts on Evaluate, then type a new text on Predict and see its label and
    coloured words."""
    started = time.monotonic()
    reviews = tmp_path / "reviews.csv"
    filler = ["the", "parcel", "came", "on", "monday", "and", "box", "was", "green", "we", "opened", "it"]
    rows = [f"{' '.join(filler[i % 5:i % 5 + 6])} {'excellent' if i % 2 else 'terrible'} {i},"
            f"{'good' if i % 2 else 'bad'}" for i in range(60)]
    reviews.write_text("review,verdict\n" + "\n".join(rows) + "\n", encoding="utf-8")

    open_url(page, f"{studio.url}/Data")
    page.set_input_files(UPLOAD_INPUT, str(reviews))
    settle(page)
    expect(page.locator("[data-testid='stAlertContentSuccess']")).to_contain_text(
        "Added reviews: 60 items in 2 classes.", timeout=SLOW)
    no_exception(page)

    go_to(page, "Train")
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value(re.compile(r"^reviews · 60 items"))
    expect(page.get_by_role("combobox", name="Backbone")).to_have_value("sentence-transformers/all-MiniLM-L6-v2")
    quick = page.get_by_role("radio", name="Quick (CPU)", exact=True)
    quick.click()
    settle(page)
    expect(quick).to_have_attribute("aria-checked", "true")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/Runs$"), timeout=SLOW)
    badge = page.locator("span.stMarkdownBadge")
    expect(badge).to_contain_text("completed", timeout=TRAINING)
    settle(page)
    no_exception(page)

    page.get_by_role("link", name="Evaluate this run").click()
    page.wait_for_url(re.compile(r"/Evaluate$"), timeout=SLOW)
    settle(page)
    expect(metric(page, "Validation texts")).to_have_text("12")
    expect(page.get_by_role("heading", name="All validation texts")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^\d+ of 12 validation texts"))).to_be_visible()
    no_exception(page)

    go_to(page, "Predict")
    page.get_by_role("textbox", name="Text").fill("we opened the green box and it was excellent")
    page.get_by_role("button", name="Predict").click()
    settle(page, timeout=TRAINING)
    expect(metric(page, "Prediction")).to_have_text("good", timeout=SLOW)
    coloured = page.locator("[data-testid='stHtml'] span[title]")
    expect(coloured).to_have_count(9)
    expect(page.locator(".st-key-predict-words " + PLOTLY)).to_be_visible()
    expect(page.locator("[data-testid='stAlertContentError']")).to_have_count(0)
    no_exception(page)
    print(f"text journey: {time.monotonic() - started:.0f} s")


@pytest.mark.slow
def test_table_sample_train_evaluate_explain(studio: StudioServer, page: Page) -> None:
    """A table's journey: load the Gapminder sample (a regression), train the Quick preset beside LightGBM, read
    R² and the predicted-against-true plot on Evaluate, and explain one validation row by its columns."""
    open_url(page, f"{studio.url}/")
    go_to(page, "Data")
    page.get_by_role("button", name="Load sample: life expectancy (table, regression)").click()
    settle(page)
    expect(page.get_by_role("heading", name="Preview: sample-gapminder")).to_be_visible(timeout=SLOW)
    expect(page.get_by_role("heading", name="Columns")).to_be_visible()
    no_exception(page)

    go_to(page, "Train")
    dataset = page.get_by_role("combobox", name="Dataset")
    if "sample-gapminder" not in (dataset.input_value() or ""):
        dataset.click()
        page.get_by_role("option", name=re.compile("sample-gapminder")).click()
        settle(page)
    quick = page.get_by_role("radio", name="Quick (CPU)", exact=True)
    quick.click()
    settle(page)
    expect(page.get_by_role("combobox", name="Backbone")).to_have_value("mlp")
    page.get_by_role("button", name="Start training").click()

    page.wait_for_url(re.compile(r"/Runs$"), timeout=SLOW)
    badge = page.locator("span.stMarkdownBadge")
    expect(badge.first).to_contain_text("completed", timeout=TRAINING)
    settle(page)
    no_exception(page)

    page.get_by_role("link", name="Evaluate this run").click()
    page.wait_for_url(re.compile(r"/Evaluate$"), timeout=SLOW)
    settle(page)
    r2 = metric(page, "Validation R²")
    expect(r2).to_have_text(re.compile(r"^0\.\d+$"), timeout=SLOW)
    assert float(r2.inner_text()) > 0.8, f"R² {r2.inner_text()} on life expectancy is far below LightGBM's 0.97"
    # the verdict beside LightGBM on the same split, in words
    expect(page.get_by_text(re.compile(r"Gradient boosting \(LightGBM\) scores R² 0\.\d+ on the same split"))
           ).to_be_visible()
    expect(page.get_by_role("heading", name="Predicted against true")).to_be_visible()
    no_exception(page)

    go_to(page, "Explain")
    page.get_by_role("button", name="Explain", exact=True).click()
    settle(page)
    expect(page.get_by_role("heading", name="Explanation")).to_be_visible(timeout=SLOW)
    expect(page.locator(PLOTLY).first).to_be_visible()
    no_exception(page)


@pytest.mark.slow
def test_series_sample_train_evaluate_explain(studio: StudioServer, page: Page) -> None:
    """A series journey: load the spoken-vowels sample (640 multivariate series of 7 to 29 steps, long form),
    train the Quick preset beside the classical baseline, read the accuracy, and explain one series over time."""
    open_url(page, f"{studio.url}/")
    go_to(page, "Data")
    page.get_by_role("button", name="Load sample: spoken vowels (time series)").click()
    settle(page)
    expect(page.get_by_role("heading", name="Preview: sample-japanese-vowels")).to_be_visible(timeout=SLOW)
    expect(page.get_by_text("padded to", exact=False).first).to_be_visible()
    no_exception(page)

    go_to(page, "Train")
    dataset = page.get_by_role("combobox", name="Dataset")
    if "sample-japanese-vowels" not in (dataset.input_value() or ""):
        dataset.click()
        page.get_by_role("option", name=re.compile("sample-japanese-vowels")).click()
        settle(page)
    page.get_by_role("radio", name="Quick (CPU)", exact=True).click()
    settle(page)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/Runs$"), timeout=SLOW)
    expect(page.locator("span.stMarkdownBadge").first).to_contain_text("completed", timeout=TRAINING)
    settle(page)
    no_exception(page)

    page.get_by_role("link", name="Evaluate this run").click()
    page.wait_for_url(re.compile(r"/Evaluate$"), timeout=SLOW)
    settle(page)
    accuracy = metric(page, "Validation accuracy")
    expect(accuracy).to_have_text(re.compile(r"^\d+(\.\d)?%$"), timeout=SLOW)
    assert float(accuracy.inner_text().rstrip("%")) > 50, "nine speakers: chance is about 19%"
    no_exception(page)

    go_to(page, "Explain")
    page.get_by_role("button", name="Explain", exact=True).click()
    settle(page)
    expect(page.get_by_role("heading", name="Explanation")).to_be_visible(timeout=SLOW)
    expect(page.locator(PLOTLY).first).to_be_visible()
    no_exception(page)
