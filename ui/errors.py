"""Showing the library's user-facing errors the one way the studio shows them.

`GlassboxError` messages are written for the person using Glassbox, so pages show them with
`st.error` and carry on; anything else is a bug and is left to Streamlit's own exception display.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from core.errors import GlassboxError
from ui.uploads import safe_name


@contextmanager
def user_errors(prefix: str = "", *, about: str | None = None) -> Iterator[None]:
    """Run a library call; a `GlassboxError` becomes an `st.error` (never a traceback): `prefix` then the
    message, which names the file `about` (when given) only if `prefix` does not (`naming_once`).

    The block is abandoned at the error, so code after the failing call inside the `with` does not
    run; code after the `with` does, which is what lets a page render the rest of itself.
    """
    try:
        yield
    except GlassboxError as exc:
        message = str(exc) if about is None else naming_once(str(exc), about)
        st.error(f"{prefix}{message}", icon=":material/error:")


def naming_once(message: str, filename: str) -> str:
    """`message` about the file `filename`, for a page that names the file already ("x.csv was not added:
    ..."). The library starts a message about a whole file with its name ("x.csv is empty", "x.zip: not a
    zip file"; the name of an upload as staged, `ui.uploads.safe_name`): that name becomes "it" or goes,
    so the file is named once ("x.csv was not added: it is empty")."""
    for name in dict.fromkeys((filename, safe_name(filename))):
        if message.startswith(f"{name}: "):
            return message[len(name) + 2:]
        if message.startswith(f"{name} "):
            return "it" + message[len(name):]
    return message
