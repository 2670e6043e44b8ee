"""The Explain page's views of a series model: which time steps of which channels a prediction rests on, drawn as a
heatmap under the series, with how far the explanation can be trusted (the output's change when its top steps are
flattened, against random steps).

- Series to classify (`classes`): pick a validation series (by outcome and class, or the one Evaluate opened), the
  class and the method.
- A series to forecast (`forecast`): pick a validation window (the last by default, or the one Evaluate opened) or
  the end of the training data, which is where a new forecast starts; the explained output is the mean of the H
  forecasts, so the map says which past steps pushed the coming horizon up or down.

The work is `core.explain.series` (Captum on the model's inputs as training read them). `show_result` and `context`
are shared with the Predict page, so an explanation looks the same wherever it is; `mistakes` is Evaluate's
explanation of mistaken series.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import streamlit as st

from core import data
from core.config import TrainConfig
from core.data.base import Split
from core.data.series import forecast_inputs, normalise
from core.explain import ExplainOptions, methods
from core.explain.series import SeriesModel, explain_series
from core.store import RunRecord
from ui import explain_views, formatting, run_picker, series_charts, series_data
from ui.errors import user_errors
from ui.shell import Studio

TOP_K = 5
_VALIDATION, _END = "A validation window", "The end of the training data"
LEGEND = ("Red steps are evidence **for** the explained output, blue steps evidence **against** it, measured from a "
          "flat series (each channel at its mean); white steps weigh nothing either way.")


# ---- series to classify ----------------------------------------------------------------------------------------


def classes(studio: Studio, picked: run_picker.Picked) -> None:
    """The view for one completed run that classifies series (the page has picked it)."""
    run_id = picked.run.id
    subject: SeriesModel | None = explain_views.model_or_message(picked.files, studio.ws.cache_dir)
    if subject is None:
        return
    report = refs = stored = None
    with user_errors("Cannot read this run's validation series: "):
        report = run_picker.report(picked.files)
        refs = run_picker.items(studio, picked.run)
        stored = series_data.arrays(studio, picked.run.dataset_id)
    if report is None or refs is None or stored is None:
        return
    st.subheader("Series")
    key = f"explain_series_item-{run_id}"
    positions = run_picker.validation_positions(report, "series", "explain_series_filter", "explain_series_class",
                                                run_id, key)
    if not positions:
        return
    if st.session_state.get(key) not in positions:
        st.session_state[key] = positions[0]
    position = st.selectbox(f"Validation series ({len(positions)})", positions, key=key,
                            format_func=lambda p: f"{run_picker.outcome(report, p)} · {refs[int(report['items'][p])]}")
    item = int(report["items"][position])
    length = int(stored["lengths"][item])
    inputs = series_inputs(subject, stored["values"], stored["mask"], item)
    target = class_target(subject, inputs, f"explain_series_target-{run_id}")
    method, options = method_choice(picked.run.modality, run_id)
    signature = (run_id, item, target, method, options)
    _explain_on_click(subject, inputs, method, target, options, signature)
    stored_result = st.session_state.get("explain_series_result")
    if stored_result and stored_result["signature"] == signature:
        st.subheader("Explanation")
        show_result(stored_result["result"], list(range(length)), stored["values"][item][:length],
                    key=f"explain_series-{method}")
    else:
        st.caption("Press **Explain** to see which steps this prediction rests on.")


def series_inputs(subject: SeriesModel, values: np.ndarray, mask: np.ndarray, index: int) -> dict[str, np.ndarray]:
    """Series `index` of `values` [N, T, C] (padded, `mask` [N, T]) as the model reads it: standardised with the
    run's training statistics (`core.data.series.normalise`), {"values": [T, C], "mask": [T]}."""
    return {"values": normalise(values[[index]], mask[[index]], subject.fitted)[0], "mask": mask[index]}


def class_target(subject: SeriesModel, inputs: dict[str, np.ndarray], key: str) -> int:
    """The class to explain (the predicted one by default), with the top classes' probabilities beside it."""
    probabilities = subject.outputs(subject.inputs(inputs["values"], inputs["mask"]))[0]
    predicted = int(np.argmax(probabilities))
    names = subject.classes
    target_col, chart_col = st.columns([1, 2], gap="large")
    target = target_col.selectbox(
        "Class to explain", list(range(len(names))), index=predicted, key=key,
        format_func=lambda i: f"{names[i]} ({formatting.probability(probabilities[i])})"
        + (" · predicted" if i == predicted else ""))
    chart_col.plotly_chart(explain_views.top_k(probabilities, names, TOP_K, highlight=target), key=f"{key}-topk")
    return int(target)


# ---- a series to forecast --------------------------------------------------------------------------------------


def forecast(studio: Studio, picked: run_picker.Picked) -> None:
    """The view for one completed forecasting run (the page has picked it)."""
    state = st.session_state
    run, run_id = picked.run, picked.run.id
    subject: SeriesModel | None = explain_views.model_or_message(picked.files, studio.ws.cache_dir)
    if subject is None:
        return
    report = refs = stored = info = None
    with user_errors("Cannot read this run's series: "):
        report = run_picker.report(picked.files)
        refs = run_picker.items(studio, run)
        stored = series_data.arrays(studio, run.dataset_id)
        info = studio.store.get_dataset(run.dataset_id).info
    if report is None or refs is None or stored is None or info is None:
        return
    st.subheader("Forecast")
    source_key = f"explain_forecast_source-{run_id}"
    if run_picker.requested(run_id):  # Evaluate opened a window of this run
        state[source_key] = _VALIDATION
    source = st.radio("Forecast", (_VALIDATION, _END), horizontal=True, key=source_key, label_visibility="collapsed",
                      help="A validation window shows the forecast beside what happened; the end of the training data "
                           "is where a new forecast starts.")
    chosen = _chosen_forecast(studio, picked, subject, report, refs, info, source)
    if chosen is None:
        return
    inputs, truth, origin, ahead_times = chosen
    steps = series_data.times(stored["time"][origin - int(info["context"]): origin])
    method, options = method_choice(run.modality, run_id)
    signature = (run_id, source, origin, method, options)
    _explain_on_click(subject, inputs, method, None, options, signature)
    stored_result = state.get("explain_series_result")
    if stored_result and stored_result["signature"] == signature:
        st.subheader("Explanation")
        show_result(stored_result["result"], steps, context(inputs, subject), key=f"explain_forecast-{method}",
                    ahead=ahead(stored_result["result"], subject, ahead_times, truth))
    else:
        st.caption("Press **Explain** to see which past steps drove this forecast.")


def _chosen_forecast(studio: Studio, picked: run_picker.Picked, subject: SeriesModel, report: dict[str, Any],
                     refs: list[str], info: dict[str, Any], source: str,
                     ) -> tuple[dict[str, np.ndarray], np.ndarray | None, int, list[str]] | None:
    """The forecast to explain: a validation window's (picked here) or the one made at the end of the training
    data, as (model inputs, the true next values or None, the origin's step, the forecast's times); None after
    saying why its inputs cannot be prepared."""
    stored = series_data.arrays(studio, picked.run.dataset_id)
    with user_errors("Cannot prepare this forecast's inputs: "):
        if source == _VALIDATION:
            item = int(report["items"][_window(report, refs, picked.run.id)])
            inputs, truth = window_inputs(studio, picked, subject, item)
            origin = item + int(info["context"])
            return inputs, truth, origin, series_data.times(stored["time"][origin: origin + int(info["horizon"])])
        inputs, times, notes = forecast_inputs(studio.ws.dataset_dir(picked.run.dataset_id), info, subject.fitted)
        for note in notes:
            st.caption(note)
        return inputs, None, len(stored["time"]), times
    return None


def _window(report: dict[str, Any], refs: list[str], run_id: str) -> int:
    """A validation window's position in the report: the last by default, or the one Evaluate opened."""
    key = f"explain_forecast_window-{run_id}"
    positions = list(range(len(report["items"])))
    request = run_picker.take_request(run_id)
    if request is not None:
        st.session_state[key] = request["position"]
        positions = [int(p) for p in request["positions"]] if request["positions"] is not None else positions
    if st.session_state.get(key) not in positions:
        st.session_state[key] = positions[-1]
    errors = [formatting.amount(float(value)) for value in report["window_mae"]]
    return int(st.selectbox(f"Validation window ({len(positions)})", positions, key=key,
                            format_func=lambda p: f"{refs[int(report['items'][p])]} · MAE {errors[p]}"))


def window_inputs(studio: Studio, picked: run_picker.Picked, subject: SeriesModel,
                  item: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One forecast origin's model inputs, read as the run's validation read them (the modality's own datasets,
    scaled with the run's fitted statistics), and its true next values in the series' units."""
    run = picked.run
    record = studio.store.get_dataset(run.dataset_id)
    spec = data.modality(run.modality)
    config = TrainConfig.load(picked.files.config)
    _, val = spec.datasets(studio.ws.dataset_dir(run.dataset_id), record.info, config, Split(train=[], val=[item]),
                           subject.model)
    inputs, truth = val[0]
    return {name: value.numpy() for name, value in inputs.items()}, truth.numpy().astype(float)


def context(inputs: dict[str, np.ndarray], subject: SeriesModel) -> np.ndarray:
    """A forecast's context back in the series' units [L, 1 + K]: the target, then the covariates (the model reads
    them standardised with the run's training statistics)."""
    fitted = subject.fitted
    scaled = np.asarray(inputs["values"], dtype=float)
    means = np.r_[float(fitted["mean"]), np.asarray(fitted.get("covariates", {}).get("mean", []), dtype=float)]
    spreads = np.r_[float(fitted["std"]), np.asarray(fitted.get("covariates", {}).get("std", []), dtype=float)]
    return scaled * spreads[: scaled.shape[1]] + means[: scaled.shape[1]]


def ahead(result: dict[str, Any], subject: SeriesModel, times: list[str],
          truth: np.ndarray | None = None) -> dict[str, Any]:
    """The forecast an explanation explains, with its interval (the run's half-widths) and the true values when
    known: what the top panel of `show_result` continues with."""
    values = np.asarray(result["forecast"], dtype=float)
    widths = subject.state.get("interval_halfwidth")
    band = np.asarray(widths, dtype=float) if widths is not None else None
    return {"x": times, "forecast": values.tolist(), "truth": None if truth is None else np.asarray(truth).tolist(),
            "lower": None if band is None else (values - band).tolist(),
            "upper": None if band is None else (values + band).tolist()}


# ---- shared ----------------------------------------------------------------------------------------------------


def method_choice(modality: str, run_id: str) -> tuple[str, ExplainOptions]:
    """The method (`core.explain.methods`) and its settings."""
    registry = methods(modality)
    st.subheader("Method")
    method = st.radio("Method", list(registry), key=f"explain_series_method-{run_id}", horizontal=True,
                      format_func=lambda n: registry.get(n).title)
    st.caption(f"**{registry.get(method).title}**: {registry.get(method).description}")
    with st.expander("Method settings"):
        left, right = st.columns(2)
        steps = left.slider("Integrated Gradients steps", 8, 256, 32, step=8, key="explain_series_steps",
                            help="More steps make the steps' shares add up more exactly to the output's change.")
        window = right.number_input("Ablation window (steps)", min_value=0, value=0, step=1,
                                    key="explain_series_window",
                                    help="Steps flattened together by window ablation; 0 cuts the series into about "
                                         "20 windows.")
    return method, ExplainOptions(ig_steps=steps, occlusion_window=int(window) or None)


def _explain_on_click(subject: SeriesModel, inputs: dict[str, np.ndarray], method: str, target: int | None,
                      options: ExplainOptions, signature: tuple[Any, ...]) -> None:
    title = methods(subject.modality).get(method).title
    if st.button("Explain", type="primary", key="explain_series_go", icon=":material/lightbulb:"):
        with user_errors(f"{title}: "), st.spinner("Explaining..."):
            st.session_state["explain_series_result"] = {
                "signature": signature, "result": explain_series(subject, inputs, method, target, options)}


def attributions(result: dict[str, Any]) -> np.ndarray:
    """An explanation's attributions as [C, T] (`explain_series` gives a list over steps for one channel)."""
    values = np.asarray(result["attributions"], dtype=float)
    return values[None] if values.ndim == 1 else values


def show_result(result: dict[str, Any], x: list[Any], values: np.ndarray, key: str,
                ahead: dict[str, Any] | None = None) -> None:
    """One explanation (`explain_series`' values) over the series it explains (`values` [T, C] in the series' units
    over `x`, real steps only): what was explained, the heatmap under the series, notes and the faithfulness
    check. `ahead` draws a forecast after the series."""
    length = len(x)
    maps = attributions(result)[:, :length]
    if "probability" in result:
        explained = (f"the probability of **{result['target']}** "
                     f"({formatting.probability(result.get('target_probability', result['probability']))})")
    else:
        explained = f"{result['explained']} (**{formatting.amount(float(np.mean(result['forecast'])))}**)"
    st.caption(f"Explaining {explained} · {result['seconds']:.2f} s")
    chart, check = st.columns([3, 2], gap="large")
    chart.plotly_chart(series_charts.attribution_heatmap(x, values, maps, result["channels"],
                                                         "Steps for and against the output", ahead=ahead),
                       key=f"{key}-heatmap")
    chart.caption(LEGEND)
    for note in result["notes"]:
        chart.caption(note)
    with check:
        _faithfulness(result["faithfulness"], x)


def _faithfulness(figures: dict[str, Any], x: list[Any]) -> None:
    """The output's change when the explanation's top k steps are flattened, against k random steps."""
    top = ", ".join(str(x[s]) for s in figures["top_steps"][:TOP_K] if s < len(x))
    more = "..." if figures["k"] > TOP_K else ""
    explain_views.deletion_check(figures, "step", "steps", top + more, "Flattening {parts}")


# ---- Evaluate's mistakes ---------------------------------------------------------------------------------------


def mistakes(studio: Studio, run: RunRecord, subject: SeriesModel, items: list[int], refs: list[str],
             predicted: list[int]) -> tuple[str, list[str | None]]:
    """Evaluate's explanation of mistaken series (`ui.views`): for each dataset series `items[i]`, the steps with
    the most evidence for the class it was taken for and against it, as HTML, and the method's title."""
    stored = series_data.arrays(studio, run.dataset_id)
    shown: list[str | None] = []
    for item, target in zip(items, predicted, strict=True):
        inputs = series_inputs(subject, stored["values"], stored["mask"], item)
        result = explain_series(subject, inputs, "ig", target)
        shown.append(steps_html(attributions(result), result["channels"]))
    return methods(run.modality).get("ig").title, shown


def steps_html(maps: np.ndarray, channels: list[str], k: int = 3) -> str:
    """The `k` (channel, step) cells of `maps` [C, T] with the most evidence for the explained class and the `k`
    with the most against it, as one line of coloured HTML: "for: x step 9 +0.41, ... · against: y step 3 -0.12"."""
    cells = [(float(maps[c, t]), c, t) for c in range(maps.shape[0]) for t in range(maps.shape[1])]
    ranked = sorted(cells, reverse=True)
    named = len(channels) > 1

    def listed(picked: list[tuple[float, int, int]], colour: str) -> str:
        return ", ".join(f'<span style="color:{colour}">{html.escape(channels[c]) + " " if named else ""}step {t} '
                         f"{value:+.3g}</span>" for value, c, t in picked) or "none"

    supporting = [cell for cell in ranked if cell[0] > 0][:k]
    opposing = [cell for cell in reversed(ranked) if cell[0] < 0][:k]
    return f"for: {listed(supporting, '#16a34a')} · against: {listed(opposing, '#dc2626')}"
