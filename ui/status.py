"""How a run's status looks and what it allows, the same on every page.

The statuses themselves are the store's (core.store); this module only decides their colour and
which of them still change on their own, i.e. need a live, self-refreshing view.
"""

from __future__ import annotations

import streamlit as st

from core.store import ACTIVE

# statuses that change without the user doing anything: a worker is about to pick the run up or has it
LIVE = ("queued", *ACTIVE)
RESUMABLE = ("interrupted", "failed", "cancelled")
CANCELLABLE = LIVE

_COLOURS = {
    "queued": "gray",
    "starting": "blue",
    "running": "blue",
    "interrupted": "orange",
    "completed": "green",
    "failed": "red",
    "cancelled": "gray",
}
_ICONS = {
    "queued": ":material/schedule:",
    "starting": ":material/hourglass_top:",
    "running": ":material/play_circle:",
    "interrupted": ":material/pause_circle:",
    "completed": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/cancel:",
}


def is_live(status: str) -> bool:
    return status in LIVE


def badge(status: str) -> None:
    """The run's status as a coloured badge."""
    st.badge(status, color=_COLOURS.get(status, "gray"), icon=_ICONS.get(status))  # type: ignore[arg-type]
