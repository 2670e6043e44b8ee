"""The Train page's Search option: which settings to vary over which ranges, how many trials, the time budget
and how many trials train at once; then the results of the dataset's searches (a table of trials with the best
marked, Optuna's plots and the best run one click from Evaluate).

The page only builds a `core.search.SearchSpec` and starts it in a detached process (`core.search.start`), so
closing the tab loses nothing; the results are read back from the search's journal and the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core import search
from core.config import TrainConfig
from ui import formatting
from ui.errors import user_errors
from ui.shell import Studio

REFRESH_S = 2.0
EVALUATE_PAGE = "pages/4_Evaluate.py"
BEST_MARK = "★ best"
_STATUS_WORDS = {"running": "Running", "finished": "Finished", "stopped": "Stopped", "failed": "Failed"}


def show(studio: Studio, dataset_id: str, base: TrainConfig | None, catalog: Sequence[str]) -> None:
    """The search form, starting from the settings chosen above it (`base`: None while they are invalid, which
    disables starting), then the results of this dataset's searches. `catalog`: the backbones a search may
    choose among."""
    _form(studio, base, catalog)
    st.divider()
    _results(studio, dataset_id)


def _form(studio: Studio, base: TrainConfig | None, catalog: Sequence[str]) -> None:
    st.caption("Several runs with different settings, each an ordinary run you can open on Runs; a run that "
               "falls behind the others' median after an epoch is stopped early (pruned). The settings above are "
               "where every trial starts.")
    if base is None:
        st.info("Choose valid settings above first: every trial starts from them.", icon=":material/info:")
        return
    state = st.session_state
    options = list(search.searchable(base.modality))
    chosen = st.multiselect("Settings to search", options, default=[p.name for p in search.default_params(base)],
                            key=f"search-settings-{base.modality}")
    params = [_param_input(name, base, catalog) for name in chosen]
    a, b, c = st.columns(3)
    trials = a.number_input("Trials", 1, search.MAX_TRIALS, 8, key="search-trials")
    minutes = b.number_input("Time budget (minutes, 0 = none)", 0, 24 * 60, 0, key="search-minutes",
                             help="No new trial starts after it; trials already training finish.")
    parallel = c.number_input("Trials at once", 1, search.MAX_PARALLEL, 1, key="search-parallel",
                              help="Runs training side by side; each goes slower on a shared CPU or GPU.")
    if st.button("Start search", type="primary", icon=":material/travel_explore:", key="start-search",
                 disabled=not params):
        with user_errors("Could not start the search: "):
            spec = search.SearchSpec.new(studio.store, base, params, trials=int(trials),
                                         timeout_s=float(minutes) * 60 or None, parallel=int(parallel))
            search.start(studio.ws, spec)
            state["search_id"] = spec.id
            st.rerun()


def _param_input(name: str, base: TrainConfig, catalog: Sequence[str]) -> search.Param:
    """One setting's range (low, high, log scale) or choices, starting from `search.suggested`."""
    start = search.suggested(name, base, catalog)
    key = f"search-{base.modality}-{name}"
    if start.choices:
        offered = list(dict.fromkeys([*start.choices, *(catalog if name == "backbone" else ()),
                                      *search.CHOICES.get(name, ())]))
        picked = st.multiselect(f"{name}: values to try", offered, default=list(start.choices), key=key)
        return search.Param(name, choices=tuple(picked))
    whole = start.kind == "int"
    low_col, high_col, log_col = st.columns([2, 2, 1], vertical_alignment="bottom")
    number: dict[str, Any] = {"step": 1} if whole else {"format": "%.2e" if start.log else "%.3f"}
    cast = int if whole else float
    low = low_col.number_input(f"{name}: from", value=cast(start.low), key=f"{key}-low", **number)
    high = high_col.number_input(f"{name}: to", value=cast(start.high), key=f"{key}-high", **number)
    log = log_col.checkbox("log scale", start.log, key=f"{key}-log",
                           help="Tries as many values per decade: for rates, which matter by their order.")
    return search.Param(name, low, high, log=log)


def _results(studio: Studio, dataset_id: str) -> None:
    found = search.list_searches(studio.ws, dataset_id)
    if not found:
        st.caption("No search on this dataset yet.")
        return
    state = st.session_state
    by_id = {spec.id: spec for spec in found}
    if state.get("search_pick") not in by_id:
        state["search_pick"] = state["search_id"] if state.get("search_id") in by_id else found[0].id
    search_id = st.selectbox("Search", list(by_id), key="search_pick",
                             format_func=lambda i: f"{i} · {by_id[i].trials} trial(s) · "
                                                   + "; ".join(p.describe() for p in by_id[i].params))
    running = search.results(studio.ws, studio.store, search_id).status == "running"
    st.fragment(run_every=REFRESH_S if running else None)(_search_view)(studio, search_id, running)


def _search_view(studio: Studio, search_id: str, refreshing: bool) -> None:
    result = search.results(studio.ws, studio.store, search_id)
    if refreshing and result.status != "running":
        st.rerun()  # the search just ended: a full rerun re-creates this fragment without the timer
    metric = result.spec.metric
    ended = sum(row.state in ("completed", "pruned", "failed") for row in result.trials)
    said = f"**{_STATUS_WORDS.get(result.status, result.status)}** · {ended} of {result.spec.trials} trial(s) ended"
    pruned = sum(row.state == "pruned" for row in result.trials)
    st.markdown(said + (f" · {pruned} pruned" if pruned else "")
                + f" · judged by validation {metric.title} ({'higher' if metric.higher_is_better else 'lower'} is "
                  "better)")
    if result.error and result.status != "finished":
        st.warning(result.error, icon=":material/warning:")
    if result.status == "running" and st.button("Stop search", icon=":material/stop:", key=f"stop-{search_id}"):
        search.stop(studio.ws, studio.store, search_id)
        st.rerun()
    if not result.trials:
        st.caption("The first trial is starting.")
        return
    st.dataframe(_table(result), hide_index=True, key=f"search-table-{search_id}")
    best = result.best
    if best is not None and best.run:
        settings = ", ".join(f"{k} {_value(v)}" for k, v in best.params.items())
        st.success(f"Best: trial {best.trial} (run {best.run}), validation {metric.title} "
                   f"{formatting.metric(metric, best.value)}, with {settings}.", icon=":material/star:")
        if st.button("Open best on Evaluate", icon=":material/analytics:", key=f"open-best-{search_id}"):
            st.session_state["run_id"] = best.run  # the run the Evaluate, Explain and Predict pages open on
            st.switch_page(EVALUATE_PAGE)
    for title, figure in search.figures(studio.ws, search_id).items():
        st.plotly_chart(figure, key=f"search-figure-{search_id}-{title}")


def _table(result: search.SearchResult) -> pd.DataFrame:
    """One row per trial: the best marked, its run, what Optuna made of it, the value and each setting drawn."""
    metric = result.spec.metric
    best = result.best.trial if result.best is not None else None
    names = [p.name for p in result.spec.params]
    return pd.DataFrame([
        {"": BEST_MARK if row.trial == best else "", "trial": row.trial, "run": row.run or "—", "state": row.state,
         f"val {metric.title}": formatting.metric(metric, row.value),
         **{name: _value(row.params.get(name)) for name in names}, "run status": row.run_status or "—",
         "why": row.error or ""}
        for row in result.trials
    ])


def _value(value: Any) -> str:
    """A drawn setting as people read it: rates in scientific notation, other numbers as they are."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2e}" if value and abs(value) < 1e-2 else f"{value:.4g}"
    return str(value)
