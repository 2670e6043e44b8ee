"""Runs: every run at a glance, one run live (progress, curves, events, worker log), cancel and resume,
and a comparison of several runs.

The page reads the store, which the worker writes; the live view is a fragment that reruns itself
every 2 s only while the run can still change, and hands control back to a full rerun when it ends.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd
import streamlit as st

from core import comparison, jobs, runs, tasks
from core.store import RunRecord
from core.tasks import Metric
from core.training import presets
from ui import baselines, charts, formatting
from ui.errors import user_errors
from ui.shell import setup
from ui.status import CANCELLABLE, RESUMABLE, badge, is_live

studio = setup("Runs")
state = st.session_state
REFRESH_S = 2.0

st.title("Runs")


def _reconciled_runs() -> list[RunRecord]:
    """Every run, newest first, after marking those whose worker died (a crash, a reboot) as
    interrupted, so none shows as running forever."""
    with user_errors():
        runs.reconcile(studio.ws, studio.store)
    return studio.store.list_runs()


all_runs = _reconciled_runs()
if not all_runs:
    st.info("No runs yet: start one on the Train page.", icon=":material/info:")
    st.page_link("pages/2_Train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

dataset_names = {d.id: d.name for d in studio.store.list_datasets()}
by_id = {r.id: r for r in all_runs}


def _headline(run: RunRecord) -> Metric:
    """The figure a run is judged by: its task's first (accuracy, R²)."""
    return tasks.of_run(run.config).metrics_shown[0]


def _val_score(run: RunRecord) -> float | None:
    """The best epoch's headline figure, which the worker records after every epoch whatever ends the run; for
    a run recorded before it did, its latest epoch's."""
    name = f"val_{_headline(run).key}"
    if run.metrics.get(name) is not None:
        return float(run.metrics[name])
    if run.epoch > 0:
        rows = studio.store.metrics(run.id, [name])
        return float(rows[-1]["value"]) if rows else None
    return None


def _scores(run: RunRecord, headlines: list[Metric]) -> dict[str, str]:
    """A column per headline figure of the runs listed ("val accuracy", "val R²"), filled for this run's own."""
    own = _headline(run)
    return {f"val {m.title}": formatting.metric(m, _val_score(run)) if m == own else formatting.MISSING
            for m in headlines}


def _runs_table(refreshing: bool) -> None:
    """The list of runs; refreshed with the live view while any run can still change."""
    current = _reconciled_runs() if refreshing else all_runs
    if refreshing and not any(is_live(r.status) for r in current):
        st.rerun()  # nothing left to watch: a full rerun drops the timer
    headlines = list(dict.fromkeys(_headline(r) for r in current))
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": r.id,
                    "status": r.status,
                    "dataset": dataset_names.get(r.dataset_id, r.dataset_id),
                    "backbone": r.backbone,
                    "epoch": f"{r.epoch}/{r.total_epochs}",
                    **_scores(r, headlines),
                    "created": formatting.timestamp(r.created_at),
                }
                for r in current
            ]
        ),
        hide_index=True,
    )


any_live = any(is_live(r.status) for r in all_runs)
st.fragment(run_every=REFRESH_S if any_live else None)(_runs_table)(any_live)

if state.get("runs_selected") not in by_id:
    state["runs_selected"] = state["run_id"] if state.get("run_id") in by_id else all_runs[0].id
selected = st.selectbox(
    "Run", list(by_id), key="runs_selected",
    # no status in the label: the live views refresh, this label would not
    format_func=lambda i: f"{i} · {by_id[i].backbone} on {dataset_names.get(by_id[i].dataset_id, by_id[i].dataset_id)}",
)
state["run_id"] = selected


# ---- the live view ------------------------------------------------------------------------------------
def _progress(run: RunRecord) -> None:
    """Steps and epochs once training runs; before that, what the worker is doing with its count and
    ETA ("encoding features 310/888"), or its latest event while it loads the model."""
    fraction = min(1.0, run.step / run.total_steps) if run.total_steps else 0.0
    text = f"step {run.step}/{run.total_steps} · epoch {run.epoch}/{run.total_epochs}"
    if run.status == "completed":
        fraction = 1.0
    elif run.is_active and run.phase:
        done, total = run.phase["done"], run.phase["total"]
        fraction = min(1.0, done / total) if total else 0.0
        eta = run.phase.get("eta_s")
        text = f"{run.phase['what']} {done}/{total}" + (f" · about {formatting.duration(eta)} left" if eta else "")
    elif not run.total_steps:
        latest = studio.store.events(run.id, limit=1) if run.is_active else []
        text = f"preparing: {latest[0]['message']}" if latest else "not started"
    st.progress(fraction, text=text)
    cols = st.columns(4)
    cols[0].metric("Epoch", f"{run.epoch}/{run.total_epochs}")
    cols[1].metric("Samples/s", formatting.rate(run.samples_per_s))
    cols[2].metric("Time left", formatting.duration(run.eta_s) if run.status == "running" else "—")
    ended = run.finished_at or (time.time() if run.started_at else None)
    cols[3].metric("Elapsed", formatting.duration(ended - run.started_at if ended and run.started_at else None))


def _final(run: RunRecord) -> None:
    """The best epoch's figures of the run's task (`Task.metrics_shown`), whatever ended the run (the worker
    records them after every epoch)."""
    shown = tasks.of_run(run.config).metrics_shown
    cols = st.columns(len(shown) + 1)
    for col, metric in zip(cols, shown, strict=False):
        col.metric(f"Val {metric.title}", formatting.metric(metric, run.metrics.get(f"val_{metric.key}")))
    cols[-1].metric("Best epoch", run.metrics["best_epoch"])
    if run.status != "completed":
        st.caption(f"Metrics of epoch {run.metrics['best_epoch']}, the best of the {run.epoch} epoch(s) this "
                   f"{run.status} run finished; its weights are the ones kept.")


def _actions(run: RunRecord) -> None:
    """Cancel and resume; each ends with a full rerun so the fragment's refresh matches the new status
    (but not after an error, which the rerun would wipe before anyone read it)."""
    done = False
    if run.status in CANCELLABLE and st.button("Cancel run", key="cancel_run", icon=":material/stop_circle:"):
        with user_errors("Could not cancel: "):
            # returns at once: the worker stops between two steps, or is killed after a grace period
            runs.cancel(studio.ws, studio.store, run.id)
            done = True
    if run.status in RESUMABLE and st.button("Resume run", key="resume_run", icon=":material/play_arrow:",
                                             help="Continues from the last finished epoch's checkpoint."):
        with user_errors("Could not resume: "):
            runs.resume(studio.ws, studio.store, run.id)
            done = True
    if done:
        st.rerun()


def _live_view(run_id: str, refreshing: bool) -> None:
    run = studio.store.get_run(run_id)
    if refreshing and not is_live(run.status):
        st.rerun()  # the run just ended: a full rerun re-creates this fragment without the timer
    head, buttons = st.columns([4, 1], vertical_alignment="center")
    with head:
        badge(run.status)
        st.markdown(f"**{run.backbone}** on **{dataset_names.get(run.dataset_id, run.dataset_id)}** · "
                    f"device {run.device or '—'} · `{run.id}`")
    with buttons:
        _actions(run)

    if run.status == "queued":
        ahead = [r for r in studio.store.list_runs(["queued", "starting", "running"]) if r.created_at < run.created_at]
        st.info(f"Queued: waiting for a free worker ({len(ahead)} run(s) ahead).", icon=":material/schedule:")
    elif run.status == "failed":
        st.error(run.error or "The run failed.", icon=":material/error:")
    elif run.status == "interrupted":
        st.warning(run.error or "The run was interrupted; resume it to continue.", icon=":material/pause_circle:")

    _progress(run)
    if "best_epoch" in run.metrics:
        _final(run)
    if run.status == "completed":
        baselines.show(studio, run)
        st.page_link("pages/4_Evaluate.py", label="Evaluate this run", icon=":material/analytics:")

    rows = studio.store.metrics(run.id)
    if rows:
        headline = _headline(run)
        st.plotly_chart(charts.training_curves(rows, headline.key, headline.title, headline.percent),
                        key=f"curves-{run.id}")
    elif is_live(run.status):
        st.caption("Curves appear after the first training steps.")

    events = studio.store.events(run.id, limit=8)
    if events:
        st.markdown("**Last events**")
        st.dataframe(
            pd.DataFrame(
                [{"time": time.strftime("%H:%M:%S", time.localtime(e["ts"])), "level": e["level"],
                  "message": e["message"]} for e in events]
            ),
            hide_index=True,
        )
    with st.expander("Worker log"):
        log = ""
        with user_errors():
            log = jobs.backend(run.backend, studio.ws, studio.store).logs(run, tail=200)
        st.code(log or ("(nothing yet)" if is_live(run.status) else "(the worker wrote no log)"), language=None)


run = by_id[selected]
refreshing = is_live(run.status)
with st.container(border=True):
    # decorated per render so the timer exists only while the run can change
    st.fragment(run_every=REFRESH_S if refreshing else None)(_live_view)(selected, refreshing)


# ---- compare ------------------------------------------------------------------------------------------
st.subheader("Compare runs")
COMPARE_PRESELECT = 5  # finished runs of the dataset picked at first: enough to see a trend, few enough to read
EVALUATE_PAGE = "pages/4_Evaluate.py"
STAR = "★"
# a differing setting's cells: a soft amber that reads on the light and the dark theme alike
DIFFERS_STYLE = "background-color: rgba(255, 190, 0, 0.28)"


def _config_value(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


def _run_name(run: RunRecord) -> str:
    """A run as a person tells runs apart: its dataset, backbone, preset and when it was made."""
    preset = run.config.get("preset", "custom")
    titles = {p.name: p.title for p in presets.presets(run.modality)}
    return (f"{dataset_names.get(run.dataset_id, run.dataset_id)} · {run.backbone} · "
            f"{titles.get(preset, preset)} · {formatting.timestamp(run.created_at)}")


_names = {i: _run_name(r) for i, r in by_id.items()}
# runs alike in all four (made the same minute) are told apart by their id: the picker needs distinct labels
run_labels = {i: n if list(_names.values()).count(n) == 1 else f"{n} · {i}" for i, n in _names.items()}


def _pick_runs() -> list[str]:
    """A dataset (that of the run looked at above, at first), then runs of it: on a new dataset its newest
    completed runs are picked, up to `COMPARE_PRESELECT`."""
    with_runs = list(dict.fromkeys(r.dataset_id for r in all_runs))  # newest run's dataset first
    if state.get("compare_dataset") not in with_runs:
        state["compare_dataset"] = by_id[selected].dataset_id
    dataset_id = st.selectbox("Dataset", with_runs, key="compare_dataset",
                              format_func=lambda i: dataset_names.get(i, i))
    of_dataset = [i for i, r in by_id.items() if r.dataset_id == dataset_id]
    if state.get("compare_for") != dataset_id:
        state["compare_for"] = dataset_id
        state["compare"] = [i for i in of_dataset if by_id[i].status == "completed"][:COMPARE_PRESELECT]
    else:  # a run deleted since stays out of the picker's value
        state["compare"] = [i for i in state.get("compare", []) if i in of_dataset]
    return st.multiselect("Runs to compare", of_dataset, key="compare", format_func=run_labels.__getitem__)


def _curves(found: comparison.Comparison) -> None:
    """One chart per task's headline figure (runs that predict classes and runs that predict values are judged
    apart), the best run's line thicker and its name starred."""
    for task_name, headline in found.headlines.items():
        best = found.best.get(task_name)
        series = {(f"{STAR} {run_labels[r.id]}" if r.id == best else run_labels[r.id]): found.curves[r.id]
                  for r in found.runs if found.task_of(r.id) == task_name}
        figure = charts.metric_overlay(series, headline.title, headline.percent)
        if best:
            figure.update_traces(selector=dict(name=f"{STAR} {run_labels[best]}"), line_width=5, marker_size=9)
        st.plotly_chart(figure, key=f"compare_chart-{headline.key}")


def _table(found: comparison.Comparison, all_settings: bool) -> pd.DataFrame:
    """The runs' figures as people read them, validation then test, then their settings (those that differ, or
    all): one row a run, the best of its task starred."""
    metrics = list(dict.fromkeys(m for name in found.headlines for m in tasks.task(name).metrics_shown))
    shown = {f"{part} {m.title}": (m, f"{part}_{m.key}") for part in ("val", "test") for m in metrics}
    rows = []
    for row in found.rows(all_settings):
        rows.append({
            "best": STAR if row.pop("best") else "",
            "run": row.pop("run"), "status": row.pop("status"),
            **{name: formatting.metric(metric, row.pop(key)) for name, (metric, key) in shown.items() if key in row},
            "best epoch": str(row.pop("best_epoch") or formatting.MISSING),
            **{k: dataset_names.get(v, v) if k == "dataset_id" else _config_value(v)
               for k, v in row.items() if k != "task"},
        })
    columns = list(dict.fromkeys(c for row in rows for c in row))
    ordered = ["best", "run", "status", *(c for c in shown if c in columns), "best epoch"]
    return pd.DataFrame(rows, columns=[*ordered, *(c for c in columns if c not in ordered)])


def _open_best(found: comparison.Comparison) -> None:
    """One click from the best run (of each task) to its evaluation; Evaluate opens completed runs only."""
    for task_name, run_id in found.best.items():
        headline = found.headlines[task_name]
        label = f"Evaluate the best run: {run_labels[run_id]}"
        if by_id[run_id].status != "completed":
            st.caption(f"{STAR} {run_labels[run_id]} has the best val {headline.title}, but it is "
                       f"{by_id[run_id].status}: only completed runs open on Evaluate.")
        elif st.button(label, key=f"open_best-{task_name}", icon=":material/analytics:",
                       help=f"The run with the best validation {headline.title} of those picked"):
            state["run_id"] = state["eval_run"] = run_id
            st.switch_page(EVALUATE_PAGE)


chosen = _pick_runs()
if chosen:
    found = comparison.compare([by_id[i] for i in chosen], {i: studio.store.metrics(i) for i in chosen})
    _curves(found)
    everything = st.toggle("Show every setting", key="compare_all_settings",
                           help="Off: only the settings that differ between these runs.")
    table = _table(found, everything)
    differs = [k for k in found.differing if k in table.columns]
    st.dataframe(table.style.map(lambda _: DIFFERS_STYLE, subset=differs), hide_index=True,
                 placeholder=formatting.MISSING)
    judged = ", ".join(f"val {h.title}" for h in found.headlines.values())
    if len(chosen) > 1 and not found.differing:
        st.caption(f"{STAR} the best by {judged}. These runs share every setting.")
    else:
        st.caption(f"{STAR} the best by {judged}." + (" Highlighted: the settings that differ." if differs else ""))
    _open_best(found)
else:
    st.caption("Pick two or more runs to overlay their validation scores and see which settings differ.")
