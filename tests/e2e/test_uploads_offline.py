"""The studio in a real browser, as a newcomer meets it: uploads in a row all land (after a success and after a
refusal), an identical upload is named as a duplicate of the stored dataset and opens it, and no page asks any
host but the studio's own server for anything (fonts, icons, scripts).

The tests of this module share one server (`studio`); each test starts from what the earlier ones left.
"""

from __future__ import annotations

import io
import re
import zipfile
from urllib.parse import urlsplit

import pytest
from PIL import Image

from tests.e2e.conftest import NO_BROWSER, StudioServer
from tests.e2e.test_studio import UPLOAD_INPUT, dataset_count, go_to, no_exception, open_url, settle

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(NO_BROWSER is not None, reason=NO_BROWSER or "")]

if NO_BROWSER is None:
    from playwright.sync_api import Page, Request, expect

SUCCESS = "[data-testid='stAlertContentSuccess']"
ERROR = "[data-testid='stAlertContentError']"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# what a browser loads without asking any host
NO_NETWORK_SCHEMES = {"data", "blob", "about"}
PAGES = ("Data", "Train", "Runs", "Evaluate", "Explain", "Predict")  # after Home, which is opened first


def shapes_zip(shade: int, extra: dict[str, bytes] | None = None) -> bytes:
    """A zip of two classes, `dark` and `light`, 3 plain 16 px PNGs each; `shade` makes its bytes its own."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, value in (("dark", shade), ("light", 255 - shade)):
            for i in range(3):
                image = io.BytesIO()
                Image.new("L", (16, 16), value + i).save(image, format="PNG")
                archive.writestr(f"shapes/{name}/{i}.png", image.getvalue())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload(page: Page, name: str, data: bytes) -> None:
    page.set_input_files(UPLOAD_INPUT, files=[{"name": name, "mimeType": "application/zip", "buffer": data}])
    settle(page)


def test_uploads_in_a_row_all_land_and_a_copy_is_named(studio: StudioServer, page: Page) -> None:
    """One upload after another on the same page: each is added, the one after a refusal too; the same
    bytes again are not stored twice but named as the dataset they duplicate, which one click opens."""
    open_url(page, f"{studio.url}/Data")
    assert dataset_count(page) == 0

    first = shapes_zip(10)
    upload(page, "first.zip", first)
    expect(page.locator(SUCCESS)).to_contain_text("Added first: 6 items in 2 classes.")
    upload(page, "second.zip", shapes_zip(20))
    expect(page.locator(SUCCESS)).to_contain_text("Added second: 6 items in 2 classes.")
    assert dataset_count(page) == 2

    upload(page, "evil.zip", shapes_zip(30, extra={"../evil.txt": b"gotcha"}))
    expect(page.locator(ERROR)).to_contain_text("evil.zip was not added")
    upload(page, "third.zip", shapes_zip(40))
    expect(page.locator(SUCCESS)).to_contain_text("Added third: 6 items in 2 classes.")
    assert dataset_count(page) == 3

    upload(page, "first-again.zip", first)
    notice = page.locator("[data-testid='stAlertContentInfo']")
    expect(notice).to_contain_text("first-again.zip is identical to the dataset first")
    assert dataset_count(page) == 3
    page.get_by_role("button", name="Open first").click()
    settle(page)
    expect(page.get_by_role("heading", name="Preview: first")).to_be_visible()
    no_exception(page)


def test_no_page_fetches_from_outside_the_server(studio: StudioServer, page: Page) -> None:
    """Every request each page makes (documents, scripts, fonts, the favicon, media) goes to the studio's own
    server: nothing to fonts.gstatic.com or any other host, so the studio works offline and tells no one."""
    outside: list[str] = []

    def record(request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in NO_NETWORK_SCHEMES and parts.hostname not in LOCAL_HOSTS:
            outside.append(f"{page.url} -> {request.url}")

    page.on("request", record)
    favicons = []
    open_url(page, f"{studio.url}/")
    for name in PAGES:
        favicons.append(page.eval_on_selector("link[rel='shortcut icon']", "link => link.href"))
        go_to(page, name)
        no_exception(page)
    favicons.append(page.eval_on_selector("link[rel='shortcut icon']", "link => link.href"))
    assert [re.sub(r"/media/[0-9a-f]+\.png$", "/media/icon.png", url) for url in favicons] \
        == [f"{studio.url}/media/icon.png"] * (len(PAGES) + 1), "the favicon is the studio's own image"
    assert outside == []
