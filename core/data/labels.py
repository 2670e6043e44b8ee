"""Class labels as people write them: what counts as no label, and names that are probably one class.

Shared by every modality that reads labels (a CSV column, a labels.csv, folder names), so that "N/A" is
missing and "Positive"/"positive " are flagged the same way wherever they come from.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable

from core.data.base import MAX_LISTED

__all__ = ["MERGE_OPTION", "is_missing", "similar", "similar_hint"]

MERGE_OPTION = "merge_similar_labels"
"""The ingest option (bool) that merges similar labels into one class; every modality accepts it."""

# What pandas, spreadsheets and databases write for "no value" (compared case-insensitively,
# after stripping): a row with one of these has no label, it is not a class named "nan".
_MISSING = frozenset({"", "nan", "null", "none", "n/a", "#n/a"})


def is_missing(label: str) -> bool:
    """Whether a label cell means "no label": empty, or `nan`, `NaN`, `null`, `None`, `N/A`, `#N/A`."""
    return label.strip().casefold() in _MISSING


def _key(label: str) -> str:
    """What similar labels share: the same text up to case, surrounding spaces and Unicode normalisation
    (NFKC, which also folds composed/decomposed accents and full-width letters)."""
    return unicodedata.normalize("NFKC", label).strip().casefold()


def similar(labels: list[str], merge: bool) -> tuple[dict[str, str], str | None]:
    """({label: the class it becomes}, the warning that names similar labels) for the labels of a dataset's
    items (one entry per item). With `merge`, similar labels map to their group's most frequent spelling
    and the warning says into which; without, every label maps to itself and the warning says how to
    merge. The warning is None when no labels are similar."""
    counts = Counter(labels)
    groups = _similar_groups(counts)
    into = _merged(labels) if merge and groups else {label: label for label in counts}
    return into, (_similar_warning(groups, counts, into if merge else None) if groups else None)


def _similar_groups(labels: Iterable[str]) -> list[list[str]]:
    """Groups of two or more distinct labels that differ only by case, surrounding spaces or Unicode
    normalisation, each sorted, the groups in order of their first label."""
    by_key: dict[str, set[str]] = {}
    for label in labels:
        by_key.setdefault(_key(label), set()).add(label)
    return sorted((sorted(group) for group in by_key.values() if len(group) > 1), key=lambda g: g[0])


def _merged(labels: list[str]) -> dict[str, str]:
    """{label: the class it merges into} for every label of `labels` (one entry per occurrence, the
    most frequent spelling of its group wins; ties go to the one seen first), with the winner's
    surrounding spaces stripped and its Unicode composed (NFC). Labels without a similar one map to
    themselves."""
    counts = Counter(labels)
    winners: dict[str, str] = {}
    for label in counts:  # insertion order: first seen first
        key = _key(label)
        if key not in winners or counts[label] > counts[winners[key]]:
            winners[key] = label
    return {label: unicodedata.normalize("NFC", winners[_key(label)].strip()) for label in counts}


def _similar_warning(groups: list[list[str]], counts: dict[str, int], into: dict[str, str] | None) -> str:
    """The message that names similar labels: as merged into the class `into` maps them to (`_merged`),
    or, when `into` is None, with how to merge them."""
    def named(group: list[str]) -> str:
        listed = " and ".join(f"{label!r} ({counts.get(label, 0)})" for label in group)
        return f"{listed} into {into[group[0]]!r}" if into is not None else listed

    shown = "; ".join(named(group) for group in groups[:MAX_LISTED])
    more = f" and {len(groups) - MAX_LISTED} more group(s)" if len(groups) > MAX_LISTED else ""
    if into is not None:
        return f"labels that differ only by case, spaces or accents were merged: {shown}{more}"
    return (f"labels that differ only by case, spaces or accents are separate classes: {shown}{more}; "
            "merge them with 'Merge similar labels' (CLI: --merge-similar-labels) if they mean the same class")


def similar_hint(few: list[str], classes: Iterable[str]) -> str:
    """A hint for a refusal about the classes `few` (too small to train on) when some of them are only
    spellings of another class, which merging would fix; "" otherwise."""
    groups = [g for g in _similar_groups(classes) if any(label in few for label in g)]
    if not groups:
        return ""
    shown = "; ".join(" and ".join(repr(label) for label in g) for g in groups[:MAX_LISTED])
    return (f" ({shown} differ only by case, spaces or accents: merge similar labels "
            "(CLI: --merge-similar-labels) if they are one class)")
