"""What every modality provides, and the pieces they share (the split, the bad-files refusal).

A modality turns an upload into a validated dataset folder (`ingest`) and that folder into torch
datasets for a model (`datasets`). Images, text, tables and series are each one module registering
one `Modality`.

A dataset folder holds `items.csv` (one row per item: its reference and label, `write_items`) and,
when the upload came split by its author (train/valid/test folders), `split.csv` (each item's part,
`write_split`) with `info["split"]` saying so. `split_for` gives a run its split either way.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from core.config import TrainConfig
from core.errors import GlassboxError

UPLOAD = "upload"
"""A dataset whose choices can be changed later (a table's target, a series' horizon) keeps its upload as
`upload.<suffix>` in its folder, to be added again with other choices."""
MAX_LISTED = 5
"""Names listed in one message; the rest are counted."""
# (what, done, total): how far a long preparation has gone, e.g. ("tokenising texts", 3000, 12000)
PhaseProgress = Callable[[str, int, int], None]

if TYPE_CHECKING:  # torch stays out of light commands (listing, validating) until a model is needed
    from torch import nn
    from torch.utils.data import Dataset


class BadFilesError(GlassboxError):
    """Some files (or rows: `noun`) cannot be used; `bad` holds (name, reason) pairs. The user decides:
    ingest again with drop_bad, or fix them. The message names each with its reason, e.g.
    "2 files cannot be used: cat/a.jpg (truncated JPEG), dog/b.jpg (empty file)"."""

    noun = "file"

    def __init__(self, bad: list[tuple[str, str]]) -> None:
        self.bad = bad
        plural = "" if len(bad) == 1 else "s"
        super().__init__(f"{len(bad)} {self.noun}{plural} cannot be used: {with_reasons(bad)}")


def listed(values: Sequence[Any]) -> str:
    """"a, b, c, d, e and 3 more": at most `MAX_LISTED` values in a message, the rest counted."""
    shown = ", ".join(str(v) for v in values[:MAX_LISTED])
    return shown + (f" and {len(values) - MAX_LISTED} more" if len(values) > MAX_LISTED else "")


def with_reasons(bad: list[tuple[str, str]]) -> str:
    """"a.jpg (truncated JPEG), b.jpg (empty file) and 3 more": what a refusal lists of (name, reason) pairs."""
    return listed([f"{name} ({reason})" for name, reason in bad])


def write_items(dest: Path, item_column: str, rows: Iterable[tuple[str, str]]) -> None:
    """The dataset's item list, `items.csv` (item, label), UTF-8: its row order is the item order
    that splits and predictions index into."""
    with open(dest / "items.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([item_column, "label"])
        writer.writerows(rows)


def read_items(dataset_dir: Path, item_column: str) -> list[tuple[str, str]]:
    try:
        with open(dataset_dir / "items.csv", encoding="utf-8", newline="") as fh:
            return [(row[item_column], row["label"]) for row in csv.DictReader(fh)]
    except (OSError, KeyError, csv.Error) as exc:
        raise GlassboxError(f"dataset {dataset_dir.name}: items.csv is missing or damaged ({exc})") from None


def item_labels(dataset_dir: Path, info: dict[str, Any], item_column: str) -> list[int]:
    """Integer label per item of `items.csv`, for `Modality.labels`: every modality stores its items
    the same way (`write_items`) and differs only in the item column's name, so they share this.

    A label outside `info["classes"]` means items.csv and the dataset's info no longer agree (a file
    edited by hand): refused, since guessing a class would train on wrong labels."""
    index = {name: i for i, name in enumerate(info["classes"])}
    try:
        return [index[label] for _, label in read_items(Path(dataset_dir), item_column)]
    except KeyError as exc:
        raise GlassboxError(f"dataset {Path(dataset_dir).name}: items.csv has an unknown class {exc}") from None


def warning(message: str) -> dict[str, str]:
    return {"level": "warning", "message": message}


def balance_warnings(counts: dict[str, int], unit: str, few: int, imbalance: float) -> list[dict[str, str]]:
    """Class-count warnings every modality gives: classes too small to trust, and a skew that makes
    accuracy flatter the model."""
    problems = []
    small_classes = sorted(c for c, n in counts.items() if n < few)
    if small_classes:
        shown = ", ".join(repr(c) for c in small_classes[:5]) + (" ..." if len(small_classes) > 5 else "")
        problems.append(warning(f"class(es) {shown} have fewer than {few} {unit}: results on them will be unreliable"))
    most, least = max(counts.values()), min(counts.values())
    if most / least > imbalance:
        big = max(counts, key=lambda c: counts[c])
        small = min(counts, key=lambda c: counts[c])
        problems.append(warning(f"classes are imbalanced: {big!r} has {most} {unit}, {small!r} only {least}; "
                                "accuracy alone will look better than the model is"))
    return problems


SPLIT_PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """Item indices (into items.csv's order) per part. `test` is only filled by a split the user made;
    `source` says where the split came from: "stratified" (made by `stratified_split`), "folders" (the
    user's), or "rolling origin" (a series to forecast: its last windows validate)."""

    train: list[int]
    val: list[int]
    test: list[int] = field(default_factory=list)
    source: str = "stratified"


def stratified_split(labels: Sequence[int], val_fraction: float, seed: int) -> Split:
    """Same labels, fraction and seed give the same split on any machine (no global RNG involved)."""
    labels_arr = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    for cls in np.unique(labels_arr):
        idx = np.flatnonzero(labels_arr == cls)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * val_fraction))
        n_val = min(max(n_val, 1), len(idx) - 1) if len(idx) > 1 else 0
        val.extend(int(i) for i in idx[:n_val])
        train.extend(int(i) for i in idx[n_val:])
    return Split(train=sorted(train), val=sorted(val))


def write_split(dest: Path, item_column: str, rows: Iterable[tuple[str, str]]) -> None:
    """Keep the split an upload came with as `split.csv` (item, split): the rows of items.csv in its
    order, each with its part ("train", "val" or "test"). The modality also records it in the
    dataset's info as `info["split"]` ({"source": "folders", "counts": {part: n}, ...})."""
    with open(dest / "split.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([item_column, "split"])
        writer.writerows(rows)


def split_for(modality: Modality, dataset_dir: Path, info: dict[str, Any], config: TrainConfig) -> Split:
    """The split a run trains on: the modality's own when it has one (`Modality.split`: a series to forecast is
    split in time, never at random), else the one the dataset keeps (`write_split`) when it has one, else
    `stratified_split` of all items with the config's validation fraction and seed. A kept split
    without validation items gets them set aside from its training items the same stratified way.

    Raises GlassboxError when split.csv is missing or no longer matches items.csv."""
    dataset_dir = Path(dataset_dir)
    own = modality.split(dataset_dir, info, config)
    if own is not None:
        return own
    labels = modality.labels(dataset_dir, info)
    if "split" not in info:
        return stratified_split(labels, config.val_fraction, config.seed)
    parts = _read_split(dataset_dir, modality.items(dataset_dir, info))
    by_part = {part: [i for i, p in enumerate(parts) if p == part] for part in SPLIT_PARTS}
    train, val = by_part["train"], by_part["val"]
    if not val:
        carved = stratified_split([labels[i] for i in train], config.val_fraction, config.seed)
        train, val = [train[i] for i in carved.train], [train[i] for i in carved.val]
    return Split(train=train, val=val, test=by_part["test"], source=info["split"]["source"])


def _read_split(dataset_dir: Path, items: list[str]) -> list[str]:
    damaged = f"dataset {dataset_dir.name}: split.csv is missing or does not match items.csv"
    try:
        with open(dataset_dir / "split.csv", encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))[1:]
    except (OSError, csv.Error) as exc:
        raise GlassboxError(f"{damaged} ({exc})") from None
    if [row[0] for row in rows if row] != items or any(len(row) != 2 or row[1] not in SPLIT_PARTS for row in rows):
        raise GlassboxError(damaged)
    return [row[1] for row in rows]


class LabelledItems:
    """What modalities whose items each carry one class label share (images, texts): the target is the
    label, and nothing is fitted on the training split before a model reads the items."""

    tasks: tuple[str, ...] = ("classification",)
    channels_last = False

    def targets(self, dataset_dir: Path, info: dict[str, Any]) -> np.ndarray:
        return np.asarray(self.labels(dataset_dir, info), dtype=np.int64)  # type: ignore[attr-defined]

    def fit_inputs(self, dataset_dir: Path, info: dict[str, Any], config: TrainConfig,
                   split: Split) -> dict[str, Any] | None:
        return None

    def suspicious(self, metrics: dict[str, Any], task: str) -> str | None:
        return None

    def split(self, dataset_dir: Path, info: dict[str, Any], config: TrainConfig) -> Split | None:
        return None


class Modality(Protocol):
    name: str  # registry key, e.g. "images"
    title: str  # shown in the UI
    # the classical baselines a run on this modality is also scored against, beside always answering the
    # largest class (`core.baselines`): e.g. ("tfidf_logreg",) for text; () when there is none
    baselines: tuple[str, ...]
    # how Predict tells an input unlike the training data (`core.training_stats`): "pixels" (colour and
    # size), "scripts" (the writing systems of texts), or None for no hints
    training_profile: str | None
    # what pages and the CLI say and show for this modality, so none of them branches on its name
    noun: str  # its items for people, plural: "images"
    item_noun: str  # one of them: "image"
    search_hint: str  # what a search over its items matches, e.g. "part of a file name"
    explanation_noun: str  # what an explanation of one item is, plural: "maps"
    # how pages show its items: "thumbnails" (a grid of the image files) or "snippets" (the texts themselves)
    shows_items_as: str
    # whether an item is a file the CLI reads from a path (an image), not a string given with --text or in a CSV
    items_are_files: bool
    # the TrainConfig field that sets the input size a run uses ("image_size"), its unit ("px") and the
    # header of the backbone catalog's input-size column ("input size (px)")
    input_size_setting: str
    input_size_unit: str
    input_size_label: str
    # the TrainConfig fields that only runs on this modality read, input size included, in the order
    # the Train page offers them: e.g. ("max_length",)
    settings: tuple[str, ...]
    # the tasks its datasets may have (`core.tasks`); a dataset's own is `info["task"]` (else the first)
    tasks: tuple[str, ...]
    # whether its inputs are images, which convolutions read faster in channels-last memory layout
    channels_last: bool
    # the ingest `options` it understands, e.g. ("target", "task", ...) for tables
    options: tuple[str, ...]

    def accepts(self, source: Path) -> bool:
        """Whether an upload (file or folder) looks like this modality's input."""

    def ingest(
        self, source: Path, dest: Path, *, drop_bad: bool = False, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Validate `source` and write the usable dataset into the empty folder `dest`.

        Returns the dataset's info (JSON-able): at least `classes` (sorted names), `counts`
        ({class: n}), `num_items`, `problems` ([{"level": "error"|"warning", "message": str}]) and
        `dropped` (names left out). Raises GlassboxError when the upload is refused, BadFilesError
        when unusable files were found and `drop_bad` is False. Never writes outside `dest`.
        """

    def items(self, dataset_dir: Path, info: dict[str, Any]) -> list[str]:
        """A reference per item for people (an image's path under the dataset folder, a text), in
        the dataset's fixed item order: what prediction indices point into."""

    def labels(self, dataset_dir: Path, info: dict[str, Any]) -> list[int]:
        """Integer label per item, in the dataset's fixed item order (what the split is made on)."""

    def targets(self, dataset_dir: Path, info: dict[str, Any]) -> np.ndarray:
        """Every item's target in the dataset's item order: its class index (as `labels`) or its value."""

    def fit_inputs(self, dataset_dir: Path, info: dict[str, Any], config: TrainConfig,
                   split: Split) -> dict[str, Any] | None:
        """Input preprocessing fitted on `split.train` only (a table's imputation, scaling and category
        levels), JSON-able: kept with the run, given to the model family and applied identically at
        prediction. None when the modality fits none (images and texts are read the same for every run)."""

    def split(self, dataset_dir: Path, info: dict[str, Any], config: TrainConfig) -> Split | None:
        """The modality's own split of a dataset, or None for the usual one (`split_for`): a series to forecast
        is split by time (validation on the last windows, training windows ending before them)."""

    def suspicious(self, metrics: dict[str, Any], task: str) -> str | None:
        """A warning when a finished run's validation metrics are too good to be true for this kind of data
        (a near-perfect score on a table usually means a column leaks the answer); None otherwise."""

    def fixed_inputs(self, config: TrainConfig) -> bool:
        """Whether training under `config` shows the model the same input for an item every epoch.

        Then a frozen backbone's features can be computed once and only the head trained on them
        (seconds instead of minutes on a CPU). Only the modality knows: random augmentation, say,
        changes an item's input each time it is read."""

    def datasets(
        self, dataset_dir: Path, info: dict[str, Any], config: TrainConfig, split: Split, model: nn.Module,
        progress: PhaseProgress | None = None,
    ) -> tuple[Dataset, Dataset]:
        """Train and validation datasets yielding (input, label) ready for `model`; `split.test` is
        not read: the loop asks for a test set as the validation part of `Split(train=[], val=test)`.
        Long preparation (tokenising every text, decoding images at a new size) is told to `progress`
        as (what, done, total) items, so a run never sits silent before its first step."""
