"""What every page does first: page config, the login gate, the shared sidebar, and the workspace and store
handles.

Pages use Streamlit's `pages/` convention, so any page can be the first one opened (a bookmark);
each page calls `setup` first, so a deep link gets the same config, the same gate and the same sidebar as
the home page: with logins on, nothing of a page runs before its visitor has logged in, and the store a page
gets sees only that person's datasets and runs (an admin's sees all).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from core import __version__, datasets, device, jobs, runs
from core.accounts import LOCAL, Account, Logins
from core.errors import GlassboxError
from core.store import Store
from core.workspace import Workspace


@dataclass(frozen=True)
class Studio:
    """The handles a page works with: the workspace, the store as the visitor may see it (`Store.scoped`) and
    who they are (`LOCAL` when logins are off)."""

    ws: Workspace
    store: Store
    account: Account = LOCAL


@st.cache_resource(show_spinner=False)
def _studio() -> Studio:
    ws = Workspace.from_env()
    store = Store(ws.db_path)
    # once per server start: runs whose worker died while the studio was down become resumable
    runs.reconcile(ws, store)
    datasets.clean_staging(ws)
    return Studio(ws, store)


# the favicon is a file the server itself serves: a `:material/...:` page icon would make the browser fetch
# it from fonts.gstatic.com, and the studio asks no host but its own for anything
FAVICON = Path(__file__).resolve().parent / "favicon.png"


def setup(title: str) -> Studio:
    """Page config (title "<title> · Glassbox", the local favicon, wide layout) and the shared sidebar;
    returns the workspace and store handles."""
    st.set_page_config(page_title=f"{title} · Glassbox", page_icon=str(FAVICON), layout="wide")
    account = _gate()
    shared = _studio()
    studio = Studio(shared.ws, shared.store.scoped(account.name, sees_all=account.admin), account)
    with st.sidebar:
        st.markdown("### Glassbox")
        for script, label in _menu():
            st.page_link(script, label=label)
        st.divider()
        st.caption(f"Device: **{_device_label()}**")
        st.caption(f"Jobs run on: **{_backend_label()}**")
        st.caption(f"Workspace: `{studio.ws.home}`")
        st.caption(f"Version {__version__}")
        if account is not LOCAL:
            _signed_in(account)
    return studio


_ACCOUNT = "glassbox_account"  # session state: who logged in with a password in this browser session


def logins() -> Logins:
    """The studio's login settings from its secrets (`core.accounts.Logins`); off without a secrets file."""
    try:
        secrets = st.secrets.to_dict()
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        secrets = {}
    return Logins.from_secrets(secrets)


def _gate() -> Account:
    """Who is using this page; with logins on, a login form (or the identity provider's button) and nothing else
    until they have logged in. A misconfigured login setting stops every page with the reason, never opens them."""
    try:
        found = logins()
    except GlassboxError as exc:
        st.error(f"Logins are misconfigured: {exc}", icon=":material/lock:")
        st.stop()
    if found.mode == "off":
        return LOCAL
    if found.mode == "oidc":
        if st.user.is_logged_in and st.user.get("email"):
            return found.account(str(st.user.get("email")))
        st.title("Glassbox")
        st.info("Log in to use this studio.", icon=":material/lock:")
        st.button("Log in", on_click=st.login, type="primary")
        st.stop()
    account = st.session_state.get(_ACCOUNT)
    if isinstance(account, Account):
        return account
    st.title("Glassbox")
    with st.form("login"):
        name = st.text_input("User name")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        checked = found.check(name.strip(), password)
        if checked is None:
            st.error("Wrong user name or password.", icon=":material/lock:")
        else:
            st.session_state[_ACCOUNT] = checked
            st.rerun()
    st.stop()


def _signed_in(account: Account) -> None:
    """The sidebar's line saying who is logged in, and the way out."""
    st.caption(f"Logged in as **{account.name}**" + (" (admin: sees everyone's data)" if account.admin else ""))
    if st.button("Log out", key="logout"):
        if logins().mode == "oidc":
            st.logout()
        st.session_state.pop(_ACCOUNT, None)
        st.rerun()


def _menu() -> list[tuple[str, str]]:
    """Home plus every file in pages/ ("3_Runs.py" -> "Runs"): a new page appears without editing this.
    Streamlit's own menu is hidden (.streamlit/config.toml) because it would call the home page "app"."""
    root = Path(__file__).resolve().parents[1]
    pages = sorted((root / "pages").glob("[0-9]*_*.py"), key=lambda p: int(p.name.split("_", 1)[0]))
    return [("app.py", "Home")] + [(f"pages/{p.name}", p.stem.split("_", 1)[1].replace("_", " ")) for p in pages]


def _backend_label() -> str:
    """The job backend new runs go to (GLASSBOX_BACKEND), or what is wrong with the setting."""
    try:
        return jobs.BackendSettings.from_env().describe()
    except GlassboxError as exc:
        return f"not set up: {exc}"


@st.cache_data(show_spinner=False)
def _device_label() -> str:
    return device.select("auto").describe()
