"""Logins (ui.shell's gate, core.accounts): with users in the secrets, every page asks for a login before it
shows anything, and each person sees only their own datasets and runs; an admin sees all."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.accounts import hash_password
from core.store import DatasetRecord, Store
from tests.pages.conftest import fabricate_run

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["app.py", *sorted(f"pages/{p.name}" for p in (ROOT / "pages").glob("[0-9]*_*.py"))]
_HASHES = {name: hash_password(f"{name}-pass") for name in ("alice", "bob", "root")}


def _secrets() -> dict[str, object]:
    return {"glassbox": {"admins": ["root"], "users": {n: {"password": h} for n, h in _HASHES.items()}}}


def _open(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / page), default_timeout=60)
    for key, value in _secrets().items():
        at.secrets[key] = value
    return at.run()


def _log_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input[0].input(name)
    at.text_input[1].input(password)
    at.button[0].click()
    return at.run()


def _runs_page_as(name: str) -> AppTest:
    """The Runs page of a browser session that logged in as `name` on the home page."""
    at = _log_in(_open("app.py"), name, f"{name}-pass")
    assert not at.exception, at.exception
    return at.switch_page("pages/3_Runs.py").run()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_asks_for_a_login_first_even_as_a_deep_link(page: str, store: Store,
                                                                  dataset: DatasetRecord) -> None:
    fabricate_run(store, dataset)
    at = _open(page)
    assert not at.exception, at.exception
    assert [b.label for b in at.button] == ["Log in"]
    assert [t.label for t in at.text_input] == ["User name", "Password"]
    shown = " ".join(str(e.value) for e in (*at.markdown, *at.caption, *at.title))
    assert dataset.name not in shown and "Workspace" not in shown  # nothing of the studio before the login
    assert len(at.sidebar) == 0 or not at.sidebar.caption


def test_a_wrong_password_is_refused(store: Store) -> None:
    at = _log_in(_open("app.py"), "alice", "bob-pass")
    assert [e.value for e in at.error] == ["Wrong user name or password."]
    assert [b.label for b in at.button] == ["Log in"]


def test_one_users_runs_are_invisible_to_another_and_an_admin_sees_all(store: Store,
                                                                       dataset: DatasetRecord) -> None:
    mine = fabricate_run(store.scoped("alice"), replace(dataset, id="ds-alice", name="alices-data"))
    store.scoped("alice").add_dataset(replace(dataset, id="ds-alice", name="alices-data"))
    alice = _runs_page_as("alice")
    assert not alice.exception, alice.exception
    assert "Logged in as **alice**" in [c.value for c in alice.sidebar.caption]
    assert mine.id in " ".join(str(s.options) for s in alice.selectbox)
    bob = _runs_page_as("bob")
    assert not bob.exception, bob.exception
    assert mine.id not in " ".join(str(s.options) for s in bob.selectbox)
    root = _runs_page_as("root")
    assert mine.id in " ".join(str(s.options) for s in root.selectbox)
    assert any("admin" in c.value for c in root.sidebar.caption)
