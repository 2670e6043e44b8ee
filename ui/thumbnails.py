"""Small previews of dataset images, made on the server.

Sending a 12-megapixel photo to the browser to show it 96 px wide wastes the connection, and an 8 px
digit shown at 96 px gets blurred by the browser; so pages show these instead: large images are
shrunk, tiny ones enlarged with nearest-neighbour so their pixels stay crisp. Cached per file and
modification time, so a rerun does not decode anything again.
"""

from __future__ import annotations

import io
from pathlib import Path

import streamlit as st
from PIL import Image, ImageOps

SIZE = 96


@st.cache_data(max_entries=4000, show_spinner=False)
def _thumbnail(path: str, size: int, mtime: float) -> bytes | None:
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
    except Exception:  # a file changed or vanished since ingest: show nothing, not a traceback
        return None
    if max(im.size) < size:
        factor = max(1, size // max(im.size))
        im = im.resize((im.width * factor, im.height * factor), Image.Resampling.NEAREST)
    else:
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    im.save(buffer, format="PNG")
    return buffer.getvalue()


def thumbnail(path: Path, size: int = SIZE) -> bytes | None:
    """PNG bytes of a preview at most `size` px on its longer side; None if the file cannot be read."""
    path = Path(path)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    return _thumbnail(str(path), size, mtime)


def grid(paths: list[Path], captions: list[str] | None = None, size: int = SIZE, per_row: int = 8,
         button: str | None = None, key: str = "thumbnail") -> int | None:
    """Previews in rows of `per_row` columns, each with its caption; unreadable files are skipped. With
    `button`, each preview gets a button of that label (keyed `{key}-{index}`): returns the index in
    `paths` of the one pressed in this run, else None."""
    captions = captions or [""] * len(paths)
    shown = [(i, data, cap) for i, (data, cap) in enumerate((thumbnail(p, size), c)
                                                            for p, c in zip(paths, captions, strict=True))
             if data is not None]
    pressed = None
    for start in range(0, len(shown), per_row):
        columns = st.columns(per_row)
        for column, (index, data, caption) in zip(columns, shown[start:start + per_row], strict=False):
            column.image(data, caption=caption or None, width=size)
            if button is not None and column.button(button, key=f"{key}-{index}", icon=":material/lightbulb:"):
                pressed = index
    return pressed
