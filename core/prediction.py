"""A finished run's predictions on new inputs: texts typed or read from a CSV, image files, as one table.

The model is the one the explainers load (`core.explain.load_subject`): it reads inputs exactly as the
run's validation did, so a prediction here is what Evaluate's figures describe. An input that cannot
be read (a corrupt image) gets its reason in the `error` column rather than stopping the batch, since
one bad file in a hundred should not cost the other ninety-nine; one that looks unlike the run's training
data (`core.training_stats`) says how in `unlike_training`.
"""

from __future__ import annotations

import io
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import GlassboxError
from core.training_stats import ImageInput, unlike_training

__all__ = ["MAX_INPUTS", "TableSubject", "forecast", "full_size", "image_files", "images", "maps_zip", "rows", "series",
           "texts"]

MAX_INPUTS = 100_000
"""Inputs per batch: a bound on time and memory that no hand-made batch reaches."""

_CHUNK = 64  # images decoded and classified together


def texts(subject: Any, inputs: Sequence[str], problems: Sequence[str] | None = None,
          others: Mapping[str, Sequence[str]] | None = None, stats: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per text: the text, the predicted class, its probability, every class's probability,
    `cut_off` (True when the text is longer than the model's max length, so only its start was read) and
    `unlike_training` (how the text looks unlike the training texts `stats` describe, "" when it does not).
    Every text is predicted (the model has an answer even for an empty one), but `error` says which to
    distrust: an empty text, or the reading problem `problems` gives for it (a ragged CSV row).

    `others` are the input file's other columns (`TextsToPredict.others`: ids, dates...), kept first, in
    file order and row by row, so an analyst can join the predictions back; one whose name a prediction
    column has gets `input_` in front (`input_predicted`) rather than being overwritten."""
    values = [str(text) for text in inputs]
    _check_count(len(values))
    probs = subject.probabilities(values) if values else np.zeros((0, len(subject.classes)))
    problems = list(problems) if problems is not None else [""] * len(values)
    errors = [problem or ("empty text" if not text.strip() else "") for text, problem in zip(values, problems,
                                                                                              strict=True)]
    table = _table("text", values, probs, subject.classes, errors, [unlike_training(stats, v) for v in values])
    table.insert(table.columns.get_loc("unlike_training"), "cut_off", subject.cut_off(values))
    return _beside(others or {}, table)


class TableSubject:
    """A finished table run, ready to answer new rows: its model (eval mode, CPU), fitted encoder, column
    descriptions, task and task state, all read from the run's folder, so that new rows are converted and
    encoded exactly as its training rows were."""

    def __init__(self, files: Any, cache_dir: Path) -> None:
        from core import tasks
        from core.artifacts import load_model, target_state
        from core.data.table_encoding import TableEncoder

        self.model, config, self.classes = load_model(files, cache_dir)
        self.state = target_state(files)
        self.task = tasks.of_run(config)
        self.encoder = TableEncoder.from_dict(self.model.inputs)
        self.columns: list[dict[str, Any]] = self.model.inputs["columns"]
        self.target: str = self.model.inputs["target_column"]

    def answers(self, typed: pd.DataFrame) -> np.ndarray:
        """Probabilities [n, classes] or values [n] for typed rows (`columns.typed`)."""
        import torch

        encoded = self.encoder.transform(typed)
        with torch.no_grad():
            logits = self.model(torch.from_numpy(encoded["numeric"]), torch.from_numpy(encoded["categorical"]))
        return self.task.answers(logits, self.state)


def rows(subject: TableSubject, read: Any) -> pd.DataFrame:
    """One row per input row (`tables.RowsToPredict`): its file line (`row`), the input's own columns as
    read (text, so zip codes keep their leading zeros), then `predicted` (a class or a value), for
    classification `confidence` and every class's probability, and `error`: why a row could not be used
    (a value that is not a number in a numeric column), in which case it has no prediction; the others are
    still predicted. Missing values and categories unseen in training are predicted (imputed, or the
    "unknown" level), never an error."""
    _check_count(len(read.typed))
    usable = np.asarray([not problem for problem in read.problems], dtype=bool)
    classifying = bool(subject.classes)
    answers = subject.answers(read.typed[usable].reset_index(drop=True)) if usable.any() else None
    width = len(subject.classes) if classifying else 0
    full = np.full((len(usable), width) if classifying else len(usable), np.nan)
    if answers is not None:
        full[usable] = answers
    inputs = {str(name): read.frame[name].fillna("").astype(str).tolist() for name in read.frame.columns}
    if classifying:
        table = _table("row", [str(line) for line in read.lines], full, subject.classes, list(read.problems),
                       [None] * len(usable)).drop(columns="unlike_training")
    else:
        table = pd.DataFrame({"row": pd.Series([str(line) for line in read.lines], dtype="str"),
                              "predicted": full, "error": pd.Series(list(read.problems), dtype="str")})
    return pd.concat([table[["row"]], _beside(inputs, table.drop(columns="row"))], axis=1)


def series(subject: Any, found: Any) -> pd.DataFrame:
    """One row per series to classify (`series_frames.SeriesSet`, read as the training series were): its id,
    its number of real steps (`steps`; padding and series longer than the training ones are fine), the
    predicted class, its probability and every class's probability. Channels are standardised with the
    training series' statistics, as in training."""
    from core.data.series import normalise

    _check_count(len(found.ids))
    expected = list(subject.fitted.get("channels", []))
    if expected and list(found.channels) != expected:
        missing = [c for c in expected if c not in found.channels]
        extra = [c for c in found.channels if c not in expected]
        raise GlassboxError(f"the model reads the channels {', '.join(map(str, expected))}: "
                            + "; ".join(part for part in (
                                f"missing {', '.join(map(str, missing))}" if missing else "",
                                f"not in training {', '.join(map(str, extra))}" if extra else "",
                                "" if missing or extra else "in another order") if part))
    answers = subject.outputs(subject.inputs(normalise(found.values, found.mask, subject.fitted), found.mask))
    table = _table("series", list(found.ids), answers, subject.classes, [""] * len(found.ids),
                   [None] * len(found.ids)).drop(columns="unlike_training")
    table.insert(1, "steps", np.asarray(found.lengths, dtype=int))
    return table


def forecast(subject: Any, inputs: Mapping[str, np.ndarray], times: Sequence[str]) -> pd.DataFrame:
    """The next H values of a series from its prepared last window (`series.forecast_inputs`): one row per
    step with its `time`, the `forecast` in the series' units and, when the run measured one, the prediction
    interval (`lower`, `upper`: forecast -/+ the split-conformal half-width of that step, `core.tasks.forecast`)."""
    given = subject.inputs(inputs["values"], inputs.get("mask"), inputs.get("future"))
    values = subject.outputs(given)[0]
    table = pd.DataFrame({"time": pd.Series(list(times), dtype="str"), "forecast": values})
    halfwidth = subject.state.get("interval_halfwidth")
    if halfwidth is not None:
        table["lower"] = values - np.asarray(halfwidth, dtype=float)
        table["upper"] = values + np.asarray(halfwidth, dtype=float)
    return table


def images(subject: Any, paths: Sequence[Path], names: Sequence[str] | None = None,
           stats: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per file (named by `names`, default the file names): files that are no usable image keep
    their row, with no prediction and the reason in `error` ("truncated JPEG"); `unlike_training` says how
    an image looks unlike the training images `stats` describe ("" when it does not). Images are decoded
    as the run's validation decoded them (reduced to the model's input size), a chunk at a time, so a
    folder of thousands of photos never sits in memory as tensors all at once."""
    import torch

    from core.data.pictures import UnreadableImage, load_image

    _check_count(len(paths))
    names = list(names) if names is not None else [Path(p).name for p in paths]
    probs = np.full((len(paths), len(subject.classes)), np.nan)
    errors = [""] * len(paths)
    unlike: list[str | None] = [None] * len(paths)
    for start in range(0, len(paths), _CHUNK):
        read: list[int] = []
        tensors: list[torch.Tensor] = []
        for index in range(start, min(start + _CHUNK, len(paths))):
            try:
                picture = load_image(Path(paths[index]), subject.image_size)
            except UnreadableImage as exc:
                errors[index] = exc.reason
                continue
            tensors.append(subject.tensor(picture))
            read.append(index)
            if stats is not None:
                unlike[index] = unlike_training(stats, ImageInput(picture, full_size(Path(paths[index]))))
        if tensors:
            probs[read] = subject.probabilities(torch.cat(tensors))
    return _table("image", names, probs, subject.classes, errors, unlike)


def maps_zip(table: pd.DataFrame, maps: Mapping[int, bytes]) -> bytes:
    """A zip of an image batch's predictions: `predictions.csv` (every row of `table`, as `images` made it)
    and, for each row index in `maps` (its PNG: a Grad-CAM overlay), `maps/<the row's image>.png`, so the
    map of the row `day1/IMG_0001.JPG` is `maps/day1/IMG_0001.JPG.png`. Names stay inside the zip (no
    leading `/`, no `..`) and distinct: a name two rows share gets ` (row N)`, N counting from 1."""
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("predictions.csv", table.to_csv(index=False))
        for row, png in sorted(maps.items()):
            parts = [p for p in str(table["image"].iloc[row]).replace("\\", "/").split("/") if p not in ("", ".", "..")]
            name = "maps/" + "/".join(parts or ["image"])
            if name in used:
                name += f" (row {row + 1})"
            used.add(name)
            archive.writestr(f"{name}.png", png)
    return buffer.getvalue()


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


def _table(kind: str, inputs: list[str], probs: np.ndarray, classes: Sequence[str], errors: list[str],
           unlike: list[str | None]) -> pd.DataFrame:
    read = ~np.isnan(probs).any(axis=1) if len(probs) else np.zeros(0, dtype=bool)
    best = np.where(read, np.nan_to_num(probs, nan=-1.0).argmax(axis=1), -1) if len(probs) else np.zeros(0, int)
    table = pd.DataFrame({
        kind: pd.Series(inputs, dtype="str"),
        "predicted": pd.Series([classes[i] if i >= 0 else None for i in best], dtype="str"),
        "confidence": [float(probs[row, i]) if i >= 0 else np.nan for row, i in enumerate(best)],
    })
    for index, name in enumerate(classes):
        table[f"p({name})"] = probs[:, index] if len(probs) else []
    table["unlike_training"] = pd.Series([hint or "" for hint in unlike], dtype="str")
    table["error"] = pd.Series(errors, dtype="str")
    return table


def _beside(inputs: Mapping[str, Sequence[str]], table: pd.DataFrame) -> pd.DataFrame:
    """`inputs` (columns of the input file) then `table`; an input column named as a column of `table`
    gets `input_` in front as often as needed to be unique."""
    taken = set(table.columns) | set(inputs)
    kept: dict[str, Sequence[str]] = {}
    for name, cells in inputs.items():
        new = name
        while new in table.columns or (new != name and new in taken):
            new = f"input_{new}"
        taken.add(new)
        kept[new] = cells
    return pd.concat([pd.DataFrame(kept, index=table.index, dtype="str"), table], axis=1)


def full_size(path: Path) -> tuple[int, int] | None:
    """An image file's width and height in px as stored, from its header (no pixels decoded; EXIF rotation
    aside, which an area comparison does not need); None when it cannot be opened now."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # the file was just decoded under upload's pixel limit: Pillow's own bomb warning is no news
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.size
    except (OSError, Image.DecompressionBombError):
        return None


def _check_count(count: int) -> None:
    if count > MAX_INPUTS:
        raise GlassboxError(f"{count} inputs: predict at most {MAX_INPUTS:,} at a time")
