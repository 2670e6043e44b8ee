"""Getting bytes from a browser upload onto the workspace's disk, where the library reads files.

`core` takes paths, not file objects, so an upload is written to a uniquely named temporary file in
the workspace's staging folder (same disk as the datasets, never outside the workspace) and removed
again whatever the library did with it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# letters and digits of any script, spaces, dots and dashes are harmless in one path component; keeping
# them keeps the name the library says in its messages ("Café reviews.csv is empty") the user's own
_UNSAFE = re.compile(r"[^\w .-]+")


def safe_name(filename: str, fallback: str = "upload") -> str:
    """A browser-supplied name reduced to one harmless path component (no folders, no dots or spaces
    first, no spaces last)."""
    name = _UNSAFE.sub("_", Path(filename.replace("\\", "/")).name).lstrip("._ ").rstrip()
    return name or fallback


@contextmanager
def staged_file(staging_dir: Path, filename: str, data: bytes) -> Iterator[Path]:
    """`data` as a temporary file named like the upload (its stem names the dataset by default).

    The file sits in its own fresh folder so two uploads of the same name cannot collide, and both
    are deleted on exit, whether the block succeeded, raised, or was interrupted by a rerun.
    """
    folder = Path(staging_dir) / f"upload-{uuid.uuid4().hex[:10]}"
    folder.mkdir(parents=True)
    path = folder / safe_name(filename)
    try:
        path.write_bytes(data)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def keep_file(folder: Path, filename: str, data: bytes) -> Path:
    """Save an upload for good (a user's weights file), named by content so re-uploading the same
    file reuses it and two different files of the same name never overwrite each other."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()[:12]
    path = folder / f"{digest}-{safe_name(filename, 'weights')}"
    if not path.exists():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path
