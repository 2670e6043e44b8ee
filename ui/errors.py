"""Showing the library's user-facing errors the one way the studio shows them.

`GlassboxError` messages are written for the person using Glassbox, so pages show them with
`st.error` and carry on; anything else is a bug and is left to Streamlit's own exception display.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from core.errors import GlassboxError


@contextmanager
def user_errors(prefix: str = "") -> Iterator[None]:
    """Run a library call; a `GlassboxError` becomes an `st.error` (never a traceback).

    The block is abandoned at the error, so code after the failing call inside the `with` does not
    run; code after the `with` does, which is what lets a page render the rest of itself.
    """
    try:
        yield
    except GlassboxError as exc:
        st.error(f"{prefix}{exc}", icon=":material/error:")
