"""A shared studio with logins on, in a real browser: a deep link opened first on a freshly started server shows
the login form and nothing else, a wrong password is refused, and one user sees none of another's data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core import datasets
from core.accounts import hash_password
from core.store import Store
from core.workspace import Workspace
from tests.e2e.conftest import NO_BROWSER, ROOT, StudioServer, _running_studio
from tests.e2e.test_studio import no_exception, open_url, settle

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(NO_BROWSER is not None, reason=NO_BROWSER or "")]

if NO_BROWSER is None:
    from playwright.sync_api import Browser, Page, expect

ALICES = "alices-penguins"


@pytest.fixture
def shared_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudioServer]:
    """A fresh server whose secrets list alice and bob, with a dataset of alice's already stored."""
    root = tmp_path_factory.mktemp("shared-studio")
    secrets = root / "secrets.toml"
    secrets.write_text("[glassbox.users.alice]\npassword = \"" + hash_password("alice-pass") + "\"\n"
                       "[glassbox.users.bob]\npassword = \"" + hash_password("bob-pass") + "\"\n")
    home = root / "glassbox-home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GLASSBOX_HOME", str(home))
        ws = Workspace.from_env()
        datasets.add(ws, Store(ws.db_path).scoped("alice"), ROOT / "sample_data" / "penguins.csv", name=ALICES,
                     options={"target": "species"})
    with _running_studio(root, ["--secrets.files", str(secrets)]) as server:
        yield server


def log_in(page: Page, name: str, password: str) -> None:
    page.get_by_role("textbox", name="User name").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    settle(page)


def test_a_deep_link_asks_for_a_login_and_users_see_only_their_own(shared_studio: StudioServer,
                                                                   browser: Browser, tmp_path: Path) -> None:
    first = browser.new_context().new_page()
    open_url(first, f"{shared_studio.url}/Data")
    expect(first.get_by_role("button", name="Log in")).to_be_visible()
    expect(first.get_by_text(ALICES)).to_have_count(0)
    expect(first.get_by_text("Workspace", exact=False)).to_have_count(0)
    log_in(first, "alice", "bob-pass")
    expect(first.get_by_text("Wrong user name or password.")).to_be_visible()

    log_in(first, "bob", "bob-pass")
    expect(first.get_by_text("Logged in as", exact=False)).to_be_visible()
    expect(first.get_by_role("heading", name="Data", exact=True)).to_be_visible()
    expect(first.get_by_text(ALICES)).to_have_count(0)
    no_exception(first)

    second = browser.new_context().new_page()  # another browser: its own session, its own login
    open_url(second, f"{shared_studio.url}/Data")
    log_in(second, "alice", "alice-pass")
    expect(second.get_by_text(ALICES).first).to_be_visible()
    no_exception(second)
