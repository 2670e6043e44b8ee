"""The Data page's view of a table dataset: its target, task and rows, what is wrong or suspicious (a likely leak
dropped in one click), the classes or the target's spread, and every column with the role Glassbox gave it and
why, editable: the user changes roles, leaves columns out, picks another target or task, and adds the table again
with those choices (`readd`, which ingests the dataset's stored upload once more: nothing is edited in place, so
runs trained on the first version keep their data).

Registered for tables in `ui.views`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from core import tasks
from core.data import modality
from core.data.columns import DROPPED_ROLES, ROLES
from core.data.tables import read_rows
from core.store import DatasetRecord
from ui import charts, formatting
from ui.errors import user_errors
from ui.shell import Studio

FEATURE_ROLES = [role for role in ROLES if role != "target"]
# problems that name columns a user may simply leave out (`core.data.table_checks` kinds)
DROPPABLE = ("leak", "cardinality")
PREVIEW_ROWS = 20
_LEVELS_SHOWN = 4

Readd = Callable[[dict[str, Any]], None]


def show(studio: Studio, dataset: DatasetRecord, readd: Readd) -> None:
    """The view of one table dataset; `readd(options)` adds its upload again with other ingest options
    (`core.data.tables.OPTIONS`: target, task, roles, drop_columns, sheet)."""
    info = dataset.info
    _figures(dataset)
    _problems(dataset, readd)
    chart_col, notes_col = st.columns([3, 2], gap="large")
    with chart_col:
        _target_chart(studio, dataset)
    with notes_col:
        for note in info.get("notes", []):
            st.caption(note)
        st.caption(f"Added {formatting.timestamp(dataset.created_at)} · id `{dataset.id}`")
    _columns(dataset, readd)
    with st.expander(f"The first {PREVIEW_ROWS} rows as read"), user_errors("Cannot read the rows: "):
        st.dataframe(read_rows(studio.ws.dataset_dir(dataset.id)).head(PREVIEW_ROWS), hide_index=True,
                     placeholder=formatting.MISSING)


def choices(dataset: DatasetRecord) -> dict[str, Any]:
    """The ingest options this dataset was added with (what a new choice adds to)."""
    return dict(dataset.info.get("source", {}).get("options", {}))


def _figures(dataset: DatasetRecord) -> None:
    info = dataset.info
    described: list[dict[str, Any]] = info["columns"]
    features = [c for c in described if c["role"] != "target"]
    kept = [c for c in features if not c["dropped"]]
    task = tasks.task(info.get("task", modality(dataset.modality).tasks[0]))
    figures = st.columns(5)
    figures[0].metric(modality(dataset.modality).noun.capitalize(), info.get("num_items", 0))
    figures[1].metric("Target", info["target"])
    figures[2].metric("Task", task.title)
    figures[3].metric("Columns used", f"{len(kept)} of {len(features)}",
                      help="Feature columns the model reads; the others are left out (see the table below).")
    figures[4].metric("Rows left out", len(info.get("dropped", [])), help="Rows without a usable target value.")


def _problems(dataset: DatasetRecord, readd: Readd) -> None:
    """Every problem found at ingest; those naming columns to leave out (a likely leak) offer to drop them."""
    base = choices(dataset)
    kept = {c["name"] for c in dataset.info["columns"] if not c["dropped"] and c["role"] != "target"}
    for index, problem in enumerate(dataset.info.get("problems", [])):
        show = st.error if problem.get("level") == "error" else st.warning
        show(problem.get("message", ""), icon=":material/warning:")
        names = [name for name in problem.get("columns", []) if name in kept]
        if problem.get("kind") in DROPPABLE and names:
            dropped = sorted({*base.get("drop_columns", []), *names})
            if st.button(f"Drop {', '.join(names)} and add the table again", key=f"drop_problem-{dataset.id}-{index}",
                         icon=":material/remove_selection:"):
                readd({**base, "drop_columns": dropped})


def _target_chart(studio: Studio, dataset: DatasetRecord) -> None:
    """Rows per class, or the spread of the target's values."""
    info = dataset.info
    if info.get("counts"):
        st.plotly_chart(charts.class_counts(info["counts"]), key="class_counts")
        return
    values = None
    with user_errors("Cannot read the target's values: "):
        values = modality(dataset.modality).targets(studio.ws.dataset_dir(dataset.id), info)
    if values is not None:
        st.plotly_chart(charts.target_histogram(values.tolist(), info["target"], info.get("target_summary", {})),
                        key="target_histogram")


def summary(column: dict[str, Any]) -> str:
    """What a column holds, in a few words: "32.1 to 59.6", "2007-01-01 to 2009-12-31", "Biscoe, Dream, ...
    (3 levels)", with how its text was read when it was not plain ("currency $: 3 to 90")."""
    if "levels" in column:
        levels = [str(v) for v in column["levels"]]
        more = column.get("n_levels", len(levels)) - _LEVELS_SHOWN
        text = ", ".join(levels[:_LEVELS_SHOWN]) + (f" and {more} more" if more > 0 else "")
    elif "min" in column:
        low, high = column["min"], column.get("max")
        shown = [f"{v:g}" if isinstance(v, float) else str(v) for v in (low, high)]
        text = f"{shown[0]} to {shown[1]}"
    else:
        text = ""
    kind = column.get("conversion", {}).get("kind")
    if kind and kind not in ("number", "boolean", "datetime"):
        sign = column["conversion"].get("symbol", "")
        text = f"{kind}{' ' + sign if sign else ''}: {text}"
    return text


def _columns(dataset: DatasetRecord, readd: Readd) -> None:
    """Every feature column with its role and why, editable, and the target and task; a button adds the table
    again with the choices made here."""
    info = dataset.info
    spec = modality(dataset.modality)
    described: list[dict[str, Any]] = info["columns"]
    names = [c["name"] for c in described]
    st.subheader("Columns")
    st.caption("Each column's role is inferred from its values; change a role, or untick *use* to leave a column "
               f"out. Free text, identifiers and constant columns are left out whatever *use* says "
               f"({', '.join(DROPPED_ROLES)}): give one another role to use it. Then add the table again: the "
               "dataset as it is stays for the runs trained on it.")
    target_col, task_col = st.columns(2)
    target = target_col.selectbox("Target (the column to predict)", names, index=names.index(info["target"]),
                                  key=f"table_target-{dataset.id}")
    task_names = list(spec.tasks)
    stored_task = info.get("task", task_names[0])
    task = task_col.selectbox("Task", task_names, index=task_names.index(stored_task),
                              format_func=lambda n: tasks.task(n).title, key=f"table_task-{dataset.id}",
                              disabled=target != info["target"],
                              help="Classes to tell apart, or a number to predict. Inferred from the target; a "
                                   "new target gets its task inferred again.")
    features = [c for c in described if c["role"] != "target"]
    frame = pd.DataFrame({
        "use": [not c["dropped"] for c in features],
        "column": [c["name"] for c in features],
        "role": [c["role"] for c in features],
        "why": [c.get("reason", "") for c in features],
        "missing": [int(c.get("missing", 0)) for c in features],
        "distinct": [int(c.get("distinct", 0)) for c in features],
        "summary": [summary(c) for c in features],
    })
    edited = st.data_editor(
        frame, hide_index=True, key=f"table_columns-{dataset.id}", disabled=["column", "why", "missing", "distinct",
                                                                             "summary"],
        column_config={
            "use": st.column_config.CheckboxColumn("use", help="Whether the model reads this column."),
            "column": st.column_config.TextColumn("column"),
            "role": st.column_config.SelectboxColumn("role", options=FEATURE_ROLES, required=True,
                                                     help="How the column's values are read."),
            "why": st.column_config.TextColumn("why this role", width="large"),
            "summary": st.column_config.TextColumn("values", width="medium"),
        },
    )
    options = new_choices(dataset, target, task, edited)
    changed = options != choices(dataset)
    if st.button("Add the table again with these choices", key=f"table_readd-{dataset.id}", type="primary",
                 icon=":material/published_with_changes:", disabled=not changed,
                 help=None if changed else "Change the target, the task or a column first."):
        readd(options)


def new_choices(dataset: DatasetRecord, target: str, task: str, edited: pd.DataFrame) -> dict[str, Any]:
    """The ingest options that the choices on the page make (`core.data.tables.OPTIONS`), starting from those the
    dataset was added with: the target, the task when the user changed it for the same target, each role the
    user changed and the columns left out (neither of which may be the target)."""
    info = dataset.info
    options = choices(dataset)
    stored = {c["name"]: c for c in info["columns"]}
    options["target"] = target
    if target != info["target"]:
        options.pop("task", None)  # inferred again for the new target
    elif task != info.get("task"):
        options["task"] = task
    roles = {name: role for name, role in dict(options.get("roles", {})).items() if name != target}
    drop = {name for name in options.get("drop_columns", []) if name != target}
    for row in edited.itertuples(index=False):
        name = str(row.column)
        if name == target:
            continue
        if row.role != stored[name]["role"]:
            roles[name] = str(row.role)
        if not row.use and row.role not in DROPPED_ROLES:
            drop.add(name)
        elif row.use:
            drop.discard(name)
    options["roles"], options["drop_columns"] = roles, sorted(drop)
    if target == info["target"] and "target" not in choices(dataset):
        options.pop("target")  # the target it was given by default: the same choice, said the same way
    return {key: value for key, value in options.items() if value not in (None, "", [], {})}

