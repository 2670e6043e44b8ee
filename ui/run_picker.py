"""The finished run that the Evaluate, Explain and Predict pages work on, and what they read of it.

The pages share one choice (`st.session_state["run_id"]`): a run picked on Evaluate is the one Explain
and Predict open on. The run's report and its dataset's items are cached by the files' modification
times, so a resumed run's new results replace the old ones without a restart.

Evaluate hands an item to Explain with `open_in_explain` (the run, the item and the items of the filter it
came from), which Explain's views read through `requested` and `validation_positions`. Items marked to
leave out of the next run (`marks`, `mark_control`) are kept per dataset for the session.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import streamlit as st

from core import data, tasks
from core.artifacts import RunFiles
from core.evaluation import SHOWN, positions, run_report
from core.store import RunRecord
from ui import formatting, views
from ui.shell import Studio

ALL_CLASSES = "All classes"
EXPLAIN_PAGE = "pages/5_Explain.py"
MARKS = {"keep": "Keep", "mislabelled": "Mislabelled", "exclude": "Exclude"}  # what can be said of an item
_REQUEST = "explain_request"
_MARKED = "item_marks"


@dataclass(frozen=True)
class Picked:
    run: RunRecord
    files: RunFiles


def pick_completed(studio: Studio, key: str, purpose: str) -> Picked:
    """A select box of the completed runs, best-known first choice being the run last looked at; when
    there is none, a pointer to the pages that make one and the page stops here."""
    completed = studio.store.list_runs(["completed"])
    if not completed:
        st.info(f"No finished run to {purpose} yet: train one, or wait for the current one to complete.",
                icon=":material/info:")
        st.page_link("pages/3_Runs.py", label="Go to Runs", icon=":material/monitoring:")
        st.page_link("pages/2_Train.py", label="Go to Train", icon=":material/model_training:")
        st.stop()
    state = st.session_state
    names = {d.id: d.name for d in studio.store.list_datasets()}
    by_id = {r.id: r for r in completed}
    if state.get(key) not in by_id:
        state[key] = state["run_id"] if state.get("run_id") in by_id else completed[0].id
    run_id = st.selectbox(
        "Completed run", list(by_id), key=key,
        format_func=lambda i: f"{i} · {by_id[i].modality} · {by_id[i].backbone} on "
                              f"{names.get(by_id[i].dataset_id, by_id[i].dataset_id)}"
                              f" · {headline(by_id[i])}",
    )
    state["run_id"] = run_id
    return Picked(by_id[run_id], RunFiles(studio.ws.run_dir(run_id)))


def headline(run: RunRecord) -> str:
    """A run's headline figure in words, its task's first (`Task.metrics_shown`): "accuracy 91.2%", "R² 0.812"."""
    shown = tasks.of_run(run.config).metrics_shown[0]
    return f"{shown.title} {formatting.metric(shown, run.metrics.get(f'val_{shown.key}'))}"


def show_view(studio: Studio, key: str, purpose: str, step: str) -> None:
    """Pick a completed run and hand it to its modality's view for `step` ("explain" or "predict", a field of
    `ui.views.ModalityViews`; its task's own where the modality registers one), or say that its modality has
    none yet."""
    show_step(studio, pick_completed(studio, key, purpose), step)


def show_step(studio: Studio, picked: Picked, step: str) -> None:
    """Hand a picked run to its modality's view for `step` (`show_view`), or say that its modality has none."""
    known = picked.run.modality in views.MODALITY_VIEWS
    path = getattr(views.of(picked.run.modality, tasks.of_run(picked.run.config).name), step) if known else ""
    if not path:
        st.info(f"This step is not available for {picked.run.modality} models yet.", icon=":material/info:")
    else:
        views.view(path)(studio, picked)


def report(files: RunFiles) -> dict[str, Any]:
    """The run's validation report (`core.evaluation.run_report`) from its best epoch's predictions."""
    return _report(str(files.root), _mtime(files.predictions))


def items(studio: Studio, run: RunRecord) -> list[str]:
    """Each dataset item's reference (an image's path under the dataset folder, or a text), in the order
    the report's item indices use."""
    record = studio.store.get_dataset(run.dataset_id)
    dataset_dir = studio.ws.dataset_dir(run.dataset_id)
    return _items(str(dataset_dir), record.modality, json.dumps(record.info, sort_keys=True),
                  _mtime(dataset_dir / "items.csv"))


def open_in_explain(run_id: str, position: int, positions: Sequence[int] | None = None) -> NoReturn:
    """Switch to the Explain page on one validation item of run `run_id` (`position` in its report),
    offering `positions` beside it (the filter or cell it was picked from; None: every validation item)."""
    state = st.session_state
    state["run_id"] = state["explain_run"] = run_id
    state[_REQUEST] = {"run": run_id, "position": int(position),
                       "positions": None if positions is None else [int(p) for p in positions]}
    st.switch_page(EXPLAIN_PAGE)


def requested(run_id: str) -> bool:
    """Whether another page asked Explain to open a validation item of this run (`open_in_explain`)."""
    request = st.session_state.get(_REQUEST)
    return bool(request) and request["run"] == run_id


def take_request(run_id: str) -> dict[str, Any] | None:
    """The item another page asked Explain to open for this run (`open_in_explain`): {"position", "positions"},
    handed over once; None when there is none."""
    return st.session_state.pop(_REQUEST) if requested(run_id) else None


def validation_positions(report: dict[str, Any], noun: str, shown_key: str, class_key: str, run_id: str,
                         item_key: str) -> list[int]:
    """Two select boxes (which outcomes, which true class) and the report positions they keep; an
    empty list, with a note saying so, when none matches. An item handed over by `open_in_explain` is
    selected (`item_key`), and the items of its filter are offered instead until "Show all" is pressed."""
    state = st.session_state
    focus_key = f"explain_focus-{run_id}"
    request = take_request(run_id)
    if request is not None:
        state[item_key] = request["position"]
        state[shown_key], state[class_key] = "All", ALL_CLASSES
        if request["positions"] is None:
            state.pop(focus_key, None)
        else:
            state[focus_key] = request["positions"]
    focus = state.get(focus_key)
    if focus:
        note, clear = st.columns([4, 1], vertical_alignment="center")
        note.info(f"{len(focus)} validation {noun}(s) as filtered on Evaluate.", icon=":material/filter_alt:")
        clear.button("Show all", key=f"{focus_key}-clear", on_click=lambda: state.pop(focus_key, None))
        return focus
    left, right = st.columns(2)
    shown = left.selectbox("Show", SHOWN, key=shown_key)
    label = right.selectbox("True class", [ALL_CLASSES, *report["classes"]], key=class_key)
    kept = positions(report, shown, None if label == ALL_CLASSES else label)
    if not kept:
        st.info(f"No validation {noun} matches this filter.", icon=":material/filter_alt_off:")
    return kept


def marks(dataset_id: str) -> dict[int, str]:
    """The items of a dataset marked to leave out of the next run, for this session: item index (in
    items.csv's order) -> "mislabelled" or "exclude"."""
    return st.session_state.setdefault(_MARKED, {}).setdefault(dataset_id, {})


def mark_control(dataset_id: str, item: int, noun: str) -> None:
    """Buttons to keep one dataset item, or mark it mislabelled or to exclude from the next run."""
    state = st.session_state
    marked = marks(dataset_id)
    key = f"mark-{dataset_id}-{item}"

    def _store() -> None:
        if state[key] == "keep":
            marked.pop(item, None)
        else:
            marked[item] = state[key]

    st.radio(f"This {noun} in the next run", list(MARKS), index=list(MARKS).index(marked.get(item, "keep")),
             format_func=MARKS.get, horizontal=True, key=key, on_change=_store,
             help=f"Mislabelled or excluded {noun}s are left out of a new run, started in one click on Evaluate.")
    if marked:
        st.caption(f"{len(marked)} {noun}(s) of this dataset marked; Evaluate starts a new run without them.")


def outcome(report: dict[str, Any], position: int) -> str:
    """"true → predicted (p)" for a mistake, "predicted (p) ✓" for a correct one."""
    classes, probs = report["classes"], np.asarray(report["probs"][position], dtype=float)
    label, predicted = int(report["labels"][position]), int(probs.argmax())
    guess = f"{classes[predicted]} ({probs[predicted]:.2f})"
    return f"{classes[label]} → {guess}" if label != predicted else f"{guess} ✓"


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


@st.cache_data(max_entries=32, show_spinner=False)
def _report(run_dir: str, mtime: float) -> dict[str, Any]:
    return run_report(RunFiles(Path(run_dir)))


@st.cache_data(max_entries=16, show_spinner=False)
def _items(dataset_dir: str, modality: str, info: str, mtime: float) -> list[str]:
    return list(data.modality(modality).items(Path(dataset_dir), json.loads(info)))
