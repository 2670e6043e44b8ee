"""A finished run's predictions on new inputs: texts typed or read from a CSV, image files, as one table.

The model is the one the explainers load (`core.explain.load_subject`): it reads inputs exactly as the
run's validation did, so a prediction here is what Evaluate's figures describe. An input that cannot
be read (a corrupt image) gets its reason in the `error` column rather than stopping the batch, since
one bad file in a hundred should not cost the other ninety-nine.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import GlassboxError

__all__ = ["MAX_INPUTS", "image_files", "images", "texts"]

MAX_INPUTS = 100_000
"""Inputs per batch: a bound on time and memory that no hand-made batch reaches."""

_CHUNK = 64  # images decoded and classified together


def texts(subject: Any, inputs: Sequence[str], problems: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per text: the text, the predicted class, its probability, every class's probability and
    `cut_off` (True when the text is longer than the model's max length, so only its start was read).
    Every text is predicted (the model has an answer even for an empty one), but `error` says which to
    distrust: an empty text, or the reading problem `problems` gives for it (a ragged CSV row)."""
    values = [str(text) for text in inputs]
    _check_count(len(values))
    probs = subject.probabilities(values) if values else np.zeros((0, len(subject.classes)))
    problems = list(problems) if problems is not None else [""] * len(values)
    errors = [problem or ("empty text" if not text.strip() else "") for text, problem in zip(values, problems,
                                                                                              strict=True)]
    table = _table("text", values, probs, subject.classes, errors)
    table.insert(len(table.columns) - 1, "cut_off", subject.cut_off(values))
    return table


def images(subject: Any, paths: Sequence[Path], names: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per file (named by `names`, default the file names): files that are no usable image keep
    their row, with no prediction and the reason in `error` ("truncated JPEG"). Images are decoded as
    the run's validation decoded them (reduced to the model's input size), a chunk at a time, so a folder
    of thousands of photos never sits in memory as tensors all at once."""
    import torch

    from core.data.pictures import UnreadableImage, load_image

    _check_count(len(paths))
    names = list(names) if names is not None else [Path(p).name for p in paths]
    probs = np.full((len(paths), len(subject.classes)), np.nan)
    errors = [""] * len(paths)
    for start in range(0, len(paths), _CHUNK):
        read: list[int] = []
        tensors: list[torch.Tensor] = []
        for index in range(start, min(start + _CHUNK, len(paths))):
            try:
                tensors.append(subject.tensor(load_image(Path(paths[index]), subject.image_size)))
                read.append(index)
            except UnreadableImage as exc:
                errors[index] = exc.reason
        if tensors:
            probs[read] = subject.probabilities(torch.cat(tensors))
    return _table("image", names, probs, subject.classes, errors)


@contextmanager
def image_files(sources: Sequence[Path], staging: Path) -> Iterator[tuple[list[Path], list[str]]]:
    """(files to predict on, their row names) for images given as files, folders or zips, read as upload
    reads them: a folder's or a zip's every file at any depth but OS litter (`pictures.list_files`,
    `archive.extract_zip`), whatever its extension, named by its path inside the folder or zip
    (`day1/IMG_0001.JPG` and `day2/IMG_0001.JPG` differ); a file given alone is named as given. A
    zip is unpacked with the upload guards into a folder under `staging`, removed on exit.

    Raises GlassboxError for a missing source, an unsafe or damaged zip, or no files at all."""
    from core.data.archive import extract_zip
    from core.data.pictures import list_files

    paths: list[Path] = []
    names: list[str] = []
    with ExitStack() as stack:
        for source in map(Path, sources):
            if source.is_dir():
                inside = list_files(source)
                paths += [source / rel for rel in inside]
                names += inside
            elif source.is_file() and source.suffix.lower() == ".zip":
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=staging, prefix="predict-")))
                files = extract_zip(source, folder).files
                paths += files
                names += [file.relative_to(folder.resolve()).as_posix() for file in files]
            elif source.is_file():
                paths.append(source)
                names.append(str(source))
            else:
                raise GlassboxError(f"{source}: no such file or folder")
        if not paths:
            raise GlassboxError(f"no files to predict on in {', '.join(str(s) for s in sources)}")
        yield paths, names


def _table(kind: str, inputs: list[str], probs: np.ndarray, classes: Sequence[str], errors: list[str]) -> pd.DataFrame:
    read = ~np.isnan(probs).any(axis=1) if len(probs) else np.zeros(0, dtype=bool)
    best = np.where(read, np.nan_to_num(probs, nan=-1.0).argmax(axis=1), -1) if len(probs) else np.zeros(0, int)
    table = pd.DataFrame({
        kind: pd.Series(inputs, dtype="str"),
        "predicted": pd.Series([classes[i] if i >= 0 else None for i in best], dtype="str"),
        "confidence": [float(probs[row, i]) if i >= 0 else np.nan for row, i in enumerate(best)],
    })
    for index, name in enumerate(classes):
        table[f"p({name})"] = probs[:, index] if len(probs) else []
    table["error"] = pd.Series(errors, dtype="str")
    return table


def _check_count(count: int) -> None:
    if count > MAX_INPUTS:
        raise GlassboxError(f"{count} inputs: predict at most {MAX_INPUTS:,} at a time")
