"""The Explain page's view of a table model: pick a validation row (filtered by outcome and class, or the worst
predicted first) or type one, choose the class and the method, and see each column's share of the prediction as
signed bars, with how far the explanation can be trusted (the output's change when its top columns are set to
their typical values, against random columns); and, over the validation rows, which columns the model relies on
beside what gradient boosting (LightGBM) relies on.

The work is in `core.explain.tables` (Captum per source column) and `core.data.tables` (rows read as the run's
training rows were). `row_form` and `show_result` are shared with the Predict page, so a row looks and is
explained the same wherever it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import data
from core.artifacts import RunFiles, target_state
from core.config import TrainConfig
from core.data.columns import typed
from core.data.table_encoding import TableEncoder
from core.data.tables import read_rows, rows_to_predict
from core.errors import GlassboxError
from core.explain import ExplainOptions, methods
from core.explain.tables import TableModel, explain_row, global_importance
from core.store import RunRecord
from ui import explain_views, formatting, run_picker
from ui.errors import user_errors
from ui.shell import Studio

TOP_K = 5
PREVIEW_CHARS = 90
GLOBAL_METHOD = "ablation"  # one forward pass per column and row: the cheapest method over many rows
_VALIDATION, _TYPED = "Validation row", "Type a row"
LEGEND = ("Green bars are evidence **for** the explained output, red bars evidence **against** it, each measured "
          "from a typical row (training medians, most frequent levels).")


def show(studio: Studio, picked: run_picker.Picked) -> None:
    """The view for one completed table run (the page has picked it)."""
    state = st.session_state
    files, run_id = picked.files, picked.run.id
    subject: TableModel | None = explain_views.model_or_message(files, studio.ws.cache_dir)
    if subject is None:
        return
    described: list[dict[str, Any]] | None = None
    with user_errors("Cannot read this run's columns: "):
        described, target_column = run_columns(files)
    if described is None:
        return

    st.subheader("Input")
    if run_picker.requested(run_id):  # Evaluate opened a row of this run
        state["explain_table_source"] = _VALIDATION
    source = st.radio("Input", (_VALIDATION, _TYPED), horizontal=True, key="explain_table_source",
                      label_visibility="collapsed")
    row: pd.DataFrame | None
    if source == _VALIDATION:
        row = _validation_row(studio, picked, described)
    else:
        row = row_form(described, subject.encoder, f"explain_row-{run_id}")
    if row is None:
        return
    encoded = _encode(subject, described, target_column, row)
    if encoded is None:
        return
    target = _target(subject, encoded, run_id, classifying=bool(target_state(files).get("classes")))

    registry = methods(picked.run.modality)
    st.subheader("Method")
    method = st.radio("Method", list(registry), key=f"explain_table_method-{run_id}", horizontal=True,
                      format_func=lambda n: registry.get(n).title)
    st.caption(f"**{registry.get(method).title}**: {registry.get(method).description}")
    with st.expander("Method settings"):
        steps = st.slider("Integrated Gradients steps", 8, 256, 32, step=8, key="explain_table_steps",
                          help="More steps make the columns' shares add up more exactly to the output's change.")
    options = ExplainOptions(ig_steps=steps)

    signature = (run_id, row.to_json(), target, method, options)
    if st.button("Explain", type="primary", key="explain_table_go", icon=":material/lightbulb:"):
        with user_errors(f"{registry.get(method).title}: "), st.spinner("Explaining..."):
            state["explain_table_result"] = {"signature": signature, "result": explain_row(
                subject, encoded["numeric"], encoded["categorical"], method, target, options)}
    stored = state.get("explain_table_result")
    if stored and stored["signature"] == signature:
        st.subheader("Explanation")
        show_result(stored["result"], key=f"explain_table-{method}")
    else:
        st.caption("Press **Explain** to see which columns this prediction rests on.")
    _global(studio, picked, subject, described)


def run_columns(files: RunFiles) -> tuple[list[dict[str, Any]], str]:
    """The column descriptions a table run was trained with and its target's name (`Modality.fit_inputs`, kept as
    the run's inputs.json), which new rows are read by."""
    inputs = files.read_json(files.inputs) if files.inputs.exists() else {}
    if "columns" not in inputs:
        raise GlassboxError("this run did not keep the columns it was trained on")
    return inputs["columns"], str(inputs.get("target_column") or inputs.get("target") or "")


def _encode(subject: TableModel, described: list[dict[str, Any]], target: str,
            row: pd.DataFrame) -> dict[str, np.ndarray] | None:
    """One row of text cells read as the run's training rows were, then encoded; None after saying why the row
    cannot be used (a word in a numeric column)."""
    read = None
    with user_errors("Cannot read this row: "):
        read = rows_to_predict(row, described, target)
    if read is None:
        return None
    if read.problems[0]:
        st.error(f"This row cannot be used: {read.problems[0]}", icon=":material/error:")
        return None
    return subject.encoder.transform(read.typed)


def _target(subject: TableModel, encoded: dict[str, np.ndarray], run_id: str, classifying: bool) -> int | None:
    """The class to explain (the predicted one by default), with the top classes' probabilities beside it; None
    when the run predicts a value, which is what is explained."""
    outputs = subject.outputs(subject.inputs(encoded["numeric"], encoded["categorical"]))[0]
    if not classifying:
        st.metric("Predicted value", formatting.amount(float(outputs)))
        return None
    classes = subject.classes
    predicted = int(np.argmax(outputs))
    target_col, chart_col = st.columns([1, 2], gap="large")
    target = target_col.selectbox(
        "Class to explain", list(range(len(classes))), index=predicted, key=f"explain_table_target-{run_id}",
        format_func=lambda i: f"{classes[i]} ({formatting.probability(outputs[i])})"
        + (" · predicted" if i == predicted else ""),
    )
    chart_col.plotly_chart(explain_views.top_k(outputs, classes, TOP_K, highlight=target), key="explain_table_topk")
    return int(target)


def show_result(result: dict[str, Any], key: str) -> None:
    """One explanation (`explain_row`'s values): what was explained, each column's signed share as bars, and the
    faithfulness check."""
    if "probability" in result:
        explained = (f"the probability of **{result['target']}** "
                     f"({formatting.probability(result.get('target_probability', result['probability']))})")
    else:
        explained = f"the predicted value (**{formatting.amount(result['value'])}**)"
    st.caption(f"Explaining {explained} · {result['seconds']:.2f} s")
    bars, check = st.columns([3, 2], gap="large")
    bars.plotly_chart(explain_views.column_bars(result["attributions"], result["target"]), key=f"{key}-columns")
    bars.caption(LEGEND)
    for note in result["notes"]:
        bars.caption(note)
    with check:
        _faithfulness(result["faithfulness"])


def _faithfulness(figures: dict[str, Any]) -> None:
    """The output's change when the explanation's top k columns take their typical value, against k random ones."""
    explain_views.deletion_check(figures, "column", "columns", ", ".join(figures["top_columns"]),
                                 "Setting {parts} to a typical value")


# ---- a row: from the validation set, or typed in -------------------------------------------------------------


def _validation_row(studio: Studio, picked: run_picker.Picked, described: list[dict[str, Any]]) -> pd.DataFrame | None:
    """A validation row picked through the filters, as text cells; its true target and the prediction beside it."""
    report: dict[str, Any] | None = None
    refs: list[str] | None = None
    rows: pd.DataFrame | None = None
    with user_errors("Cannot read this run's validation rows: "):
        report = run_picker.report(picked.files)
        refs = run_picker.items(studio, picked.run)
        rows = read_rows(studio.ws.dataset_dir(picked.run.dataset_id))
    if report is None or refs is None or rows is None:
        return None
    key = f"explain_table_item-{picked.run.id}"
    classifying = bool(target_state(picked.files).get("classes"))
    if classifying:
        positions = run_picker.validation_positions(report, "row", "explain_table_filter", "explain_table_class",
                                                    picked.run.id, key)
    else:
        positions = _worst_first(report, picked.run.id, key)

    def outcome(i: int) -> str:
        """"yes → no (0.81)" for a class, "true 41.2, predicted 47.9" for a value."""
        if classifying:
            return run_picker.outcome(report, i)
        return (f"true {formatting.amount(float(report['labels'][i]))}, predicted "
                f"{formatting.amount(float(report['predictions'][i]))}")

    if not positions:
        return None

    def _caption(i: int) -> str:
        item = refs[int(report["items"][i])]
        preview = item if len(item) <= PREVIEW_CHARS else item[: PREVIEW_CHARS - 1] + "…"
        return f"{outcome(i)} · {preview}"

    if st.session_state.get(key) not in positions:
        st.session_state[key] = positions[0]
    position = st.selectbox(f"Validation row ({len(positions)})", positions, key=key, format_func=_caption)
    item = int(report["items"][position])
    row = rows.iloc[[item]].reset_index(drop=True)
    shown = [c["name"] for c in described if c["name"] in row.columns]
    st.dataframe(row[shown], hide_index=True, placeholder=formatting.MISSING)
    return row


def _worst_first(report: dict[str, Any], run_id: str, key: str) -> list[int]:
    """Positions of the validation rows of a regression (`core.evaluation.regression_report`), the worst predicted
    first; a row handed over by Evaluate (`open_in_explain`) is selected among the rows of its filter."""
    request = run_picker.take_request(run_id)
    if request is not None:
        st.session_state[key] = request["position"]
        if request["positions"] is not None:
            return [int(p) for p in request["positions"]]
    return [int(i) for i in report["worst"]]


def row_form(described: list[dict[str, Any]], encoder: TableEncoder, key: str) -> pd.DataFrame:
    """A field per column the model reads, in the table's order, starting at the training rows' typical value
    (`TableEncoder.defaults`: the median, the most frequent level); a category's field offers the training levels
    and takes any other text (read as an unknown level). Returns the row as one row of text cells, as a file
    would give it (an empty field is a missing value)."""
    defaults = encoder.defaults()
    kept = [c for c in described if not c.get("dropped") and c.get("role") != "target"]
    cells: dict[str, str | None] = {}
    columns = st.columns(3)
    for index, column in enumerate(kept):
        name, role = column["name"], column.get("role", "categorical")
        field = columns[index % 3]
        default = defaults.get(name)
        widget_key = f"{key}-{name}"
        conversion = column.get("conversion", {})
        if role == "boolean" and conversion.get("true") and conversion.get("false"):
            choices = [str(conversion["true"][0]), str(conversion["false"][0])]
            cells[name] = field.selectbox(name, choices, index=0 if default is None or default else 1, key=widget_key)
        elif role in ("numeric", "datetime"):
            cells[name] = field.text_input(name, value=_as_text(default, conversion), key=widget_key,
                                           help=_range(column)) or None
        else:
            levels = encoder.levels(name) if name in encoder.category_columns else list(column.get("levels", []))
            start = levels.index(default) if default in levels else 0
            cells[name] = field.selectbox(name, levels, index=start if levels else None, key=widget_key,
                                          accept_new_options=True,
                                          help="A training level, or any other text (read as an unknown level).")
    return pd.DataFrame([cells], dtype=object)


def _as_text(value: Any, conversion: dict[str, Any]) -> str:
    """A typical value as a user would type it: a number plainly ('44.45'), a date in the column's own format."""
    if value is None:
        return ""
    if conversion.get("kind") == "datetime" and "%" in str(conversion.get("format", "")):
        try:
            return pd.Timestamp(str(value)).strftime(conversion["format"])
        except ValueError:
            return str(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range(column: dict[str, Any]) -> str | None:
    if "min" in column and "max" in column:
        low, high = (f"{v:g}" if isinstance(v, float) else str(v) for v in (column["min"], column["max"]))
        return f"From {low} to {high} in the training table. Leave empty for a missing value."
    return None


# ---- over the validation rows ----------------------------------------------------------------------------------


def _global(studio: Studio, picked: run_picker.Picked, subject: TableModel, described: list[dict[str, Any]]) -> None:
    """Mean absolute attribution per column over the validation rows beside LightGBM's importance (its split
    gain per column), both as shares of their total, on request."""
    state = st.session_state
    run = picked.run
    st.subheader("Which columns the model relies on")
    title = methods(run.modality).get(GLOBAL_METHOD).title
    st.caption(f"Over the validation rows: each column's mean absolute attribution ({title}), beside gradient "
               "boosting's (LightGBM) total split gain per column on the same split; both as shares of their total. "
               "Columns one model leans on and the other ignores are worth a look.")
    key = f"explain_table_global-{run.id}"
    if st.button("Measure over the validation rows", key=f"{key}-go", icon=":material/bar_chart:"):
        with user_errors("Cannot measure the columns' importance: "), st.spinner("Explaining the validation rows..."):
            encoded = _validation_encoded(studio, picked, subject, described)
            model = global_importance(subject, encoded, GLOBAL_METHOD)
            found = {"this model": _shares(model)}
            try:
                found["gradient boosting (LightGBM)"] = baseline_importance(studio, run)
            except (GlassboxError, ValueError) as exc:
                st.info(f"LightGBM's importance is not available: {exc}", icon=":material/info:")
            state[key] = found
    if key in state:
        st.plotly_chart(explain_views.importance_bars(state[key]), key=f"{key}-chart")


def _validation_encoded(studio: Studio, picked: run_picker.Picked, subject: TableModel,
                        described: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    found = picked.files.read_json(picked.files.predictions)
    rows = read_rows(studio.ws.dataset_dir(picked.run.dataset_id))
    frame, _ = typed(rows.iloc[[int(i) for i in found["items"]]].reset_index(drop=True), described)
    return subject.encoder.transform(frame)


def _shares(values: dict[str, float]) -> dict[str, float]:
    total = sum(abs(v) for v in values.values())
    return {name: (abs(v) / total if total > 0 else 0.0) for name, v in values.items()}


def baseline_importance(studio: Studio, run: RunRecord) -> dict[str, float]:
    """LightGBM's split gain per source column as shares of its total (`core.baselines.tabular.by_column`), fitted
    again as the run fitted it (same split, encoder and seed), since a run keeps only its metrics."""
    files = RunFiles(studio.ws.run_dir(run.id))
    record = studio.store.get_dataset(run.dataset_id)
    return _baseline_importance(str(files.root), str(studio.ws.dataset_dir(run.dataset_id)),
                                json.dumps(record.info, sort_keys=True), files.inputs.stat().st_mtime)


@st.cache_data(max_entries=8, show_spinner=False)
def _baseline_importance(run_dir: str, dataset_dir: str, info_json: str, mtime: float) -> dict[str, float]:
    from core.baselines import Context
    from core.baselines.tabular import by_column, fit_on

    files, folder, info = RunFiles(Path(run_dir)), Path(dataset_dir), json.loads(info_json)
    config = TrainConfig.load(files.config)
    modality = data.modality(config.modality)
    inputs = files.read_json(files.inputs)
    context = Context(modality=modality, dataset_dir=folder, info=info,
                      split=data.split_for(modality, folder, info, config), targets=modality.targets(folder, info),
                      state=target_state(files), seed=config.seed, inputs=inputs)
    encoder = TableEncoder.from_dict(inputs)
    return by_column(fit_on(context).importance, encoder.feature_columns + encoder.category_columns)


# ---- Evaluate's mistakes ---------------------------------------------------------------------------------------


def mistakes(studio: Studio, run: RunRecord, subject: TableModel, items: list[int], refs: list[str],
             predicted: list[int]) -> tuple[str, list[str | None]]:
    """Evaluate's explanation of mistaken rows (`ui.views`): for each dataset row `items[i]`, the columns with the
    most evidence for the class it was taken for and against it, as HTML, and the method's title."""
    described, _ = run_columns(RunFiles(studio.ws.run_dir(run.id)))
    rows = read_rows(studio.ws.dataset_dir(run.dataset_id))
    frame, _ = typed(rows.iloc[items].reset_index(drop=True), described)
    encoded = subject.encoder.transform(frame)
    shown: list[str | None] = []
    for position, target_class in enumerate(predicted):
        result = explain_row(subject, encoded["numeric"][position], encoded["categorical"][position], "ig",
                             target_class)
        shown.append(explain_views.columns_html(result["attributions"]))
    return methods(run.modality).get("ig").title, shown
