"""What every page does first: page config, the shared sidebar, and the workspace and store handles.

Pages use Streamlit's `pages/` convention, so any page can be the first one opened (a bookmark);
each page calls `setup` first, so a deep link gets the same config and sidebar as the home page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from core import __version__, datasets, device, runs
from core.store import Store
from core.workspace import Workspace


@dataclass(frozen=True)
class Studio:
    ws: Workspace
    store: Store


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
    studio = _studio()
    with st.sidebar:
        st.markdown("### Glassbox")
        for script, label in _menu():
            st.page_link(script, label=label)
        st.divider()
        st.caption(f"Device: **{_device_label()}**")
        st.caption(f"Workspace: `{studio.ws.home}`")
        st.caption(f"Version {__version__}")
    return studio


def _menu() -> list[tuple[str, str]]:
    """Home plus every file in pages/ ("3_Runs.py" -> "Runs"): a new page appears without editing this.
    Streamlit's own menu is hidden (.streamlit/config.toml) because it would call the home page "app"."""
    root = Path(__file__).resolve().parents[1]
    pages = sorted((root / "pages").glob("[0-9]*_*.py"), key=lambda p: int(p.name.split("_", 1)[0]))
    return [("app.py", "Home")] + [(f"pages/{p.name}", p.stem.split("_", 1)[1].replace("_", " ")) for p in pages]


@st.cache_data(show_spinner=False)
def _device_label() -> str:
    return device.select("auto").describe()
