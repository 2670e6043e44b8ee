"""The Explain page's view of a text classifier: pick a validation text (filtered by outcome and class) or
type one, choose the class and the methods, and see each method's word colouring, the words for and
against the class, and the deletion check (the top words' probability drop against random words').

`show_result` draws one explanation (`core.explain.text.explain_text`'s plain values); the Predict page
uses it too, so a text looks the same wherever it is explained.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from core import data
from core.explain import ExplainOptions, methods
from core.explain.text import TextModel, explain_text, scored_words, to_html
from core.store import RunRecord
from ui import explain_views, formatting, run_picker
from ui.errors import user_errors
from ui.shell import Studio

TOP_K = 5
PREVIEW_CHARS = 90
LEGEND = ("Green words are evidence **for** the class, red words evidence **against** it; the stronger the colour, "
          "the more the word weighs. Grey words lie beyond the model's max length: it never read them. "
          "Hover a word for its score.")


def show(studio: Studio, picked: run_picker.Picked) -> None:
    """The view for one completed text run (the page has picked it)."""
    state = st.session_state
    files, run_id = picked.files, picked.run.id
    subject: TextModel | None = explain_views.model_or_message(files, studio.ws.cache_dir)
    if subject is None:
        return
    classes = subject.classes

    st.subheader("Input")
    if run_picker.requested(run_id):  # Evaluate opened an item of this run
        state["explain_text_source"] = "Validation text"
    source = st.radio("Input", ("Validation text", "Type a text"), horizontal=True, key="explain_text_source",
                      label_visibility="collapsed")
    text = ""
    if source == "Validation text":
        picked_text = _validation_text(studio, picked)
        if picked_text is None:
            return
        text, true_class = picked_text
        st.markdown(f"True class: **{classes[true_class]}**")
    else:
        text = st.text_area("Text to explain", key="explain_text_input", height=140,
                            placeholder="Type or paste a text, then press Ctrl+Enter.")
    if not text.strip():
        st.caption("Choose a text above to explain.")
        return

    probs: np.ndarray | None = None
    with user_errors("Cannot read this text: "):
        probs = subject.probabilities([text])[0]
    if probs is None:
        return
    predicted = int(probs.argmax())
    target_col, chart_col = st.columns([1, 2], gap="large")
    target = target_col.selectbox(
        "Class to explain", list(range(len(classes))), index=predicted, key=f"explain_text_target-{run_id}",
        format_func=lambda i: f"{classes[i]} ({formatting.probability(probs[i])})"
        + (" · predicted" if i == predicted else ""),
    )
    chart_col.plotly_chart(explain_views.top_k(probs, classes, TOP_K, highlight=target), key="explain_text_topk")

    registry = methods(picked.run.modality)
    st.subheader("Methods")
    chosen = st.multiselect("Methods", list(registry), default=["ig"], key=f"explain_text_methods-{run_id}",
                            format_func=lambda n: registry.get(n).title)
    for name in chosen:
        st.caption(f"**{registry.get(name).title}**: {registry.get(name).description}")
    with st.expander("Method settings"):
        steps = st.slider("Integrated Gradients steps", 8, 128, 32, step=8, key="explain_text_steps",
                          help="More steps make the words' scores add up more exactly to the score's change.")
    options = ExplainOptions(ig_steps=steps)

    signature = (run_id, text, target, tuple(chosen), options)
    if st.button("Explain", type="primary", key="explain_text_go", icon=":material/lightbulb:", disabled=not chosen):
        results = []
        with st.spinner("Explaining..."):
            for name in chosen:
                with user_errors(f"{registry.get(name).title}: "):
                    results.append(explain_text(subject, text, name, target, options))
        state["explain_text_results"] = {"signature": signature, "results": results}
    stored = state.get("explain_text_results")
    if not stored or stored["signature"] != signature:
        st.caption("Press **Explain** to colour the words of this text for this class.")
        return
    st.subheader("Explanations")
    for result in stored["results"]:
        st.markdown(f"#### {registry.get(result['method']).title}")
        show_result(result, key=f"explain_text-{result['method']}")


def show_result(result: dict[str, Any], key: str) -> None:
    """One explanation: the coloured text, the words for and against the class, the deletion check."""
    st.caption(f"Explaining **{result['target']}** (probability "
               f"{formatting.probability(result['target_probability'])}) · {result['seconds']:.2f} s")
    st.html(result["html"])
    st.caption(LEGEND)
    for note in result["notes"]:
        st.caption(note)
    bars, check = st.columns([3, 2], gap="large")
    bars.plotly_chart(explain_views.word_bars(result["top_words"], result["target"]), key=f"{key}-words")
    with check:
        deletion = result["faithfulness"]
        k = deletion["k"]
        words = "word" if k == 1 else "words"
        target = f"p({result['target']})"
        verdict = (f"Deleting the top {k} {words} {formatting.change(-deletion['topk_drop'], target)}, "
                   f"deleting {k} random {words} {formatting.change(-deletion['random_drop'])} on average")
        if deletion["beats_random"]:
            st.success(verdict + ": the words the explanation picks matter more than random ones.")
        else:
            st.warning(verdict + ": the explanation's top words matter no more than random ones, so do not "
                                 "read much into it.")
        first, second = st.columns(2)
        first.metric(f"Change, top {k} {words}", f"{-deletion['topk_drop']:+.2f}",
                     help="The class's probability on the text without its top words minus on the whole text: "
                          "negative when deleting them lowers it.")
        second.metric(f"Change, {k} random {words}", f"{-deletion['random_drop']:+.2f}",
                      help="The same for k random words, averaged over 20 seeded draws.")


def mistakes(studio: Studio, run: RunRecord, subject: TextModel, items: list[int], refs: list[str],
             predicted: list[int]) -> tuple[str, list[str | None]]:
    """Evaluate's explanation of mistaken texts (`ui.views`): each text (`refs`) as HTML, its words coloured by
    Integrated Gradients for the class it was taken for, and the method's title."""
    return "Integrated Gradients", [to_html(text, scored_words(subject, text, target)[0])
                                    for text, target in zip(refs, predicted, strict=True)]


def _validation_text(studio: Studio, picked: run_picker.Picked) -> tuple[str, int] | None:
    """A validation text picked through the outcome and class filters, and its true class."""
    report: dict[str, Any] | None = None
    refs: list[str] | None = None
    with user_errors("Cannot read this run's validation texts: "):
        report = run_picker.report(picked.files)
        refs = run_picker.items(studio, picked.run)
    if report is None or refs is None:
        return None
    key = f"explain_text_item-{picked.run.id}"
    noun = data.modality(picked.run.modality).item_noun
    positions = run_picker.validation_positions(report, noun, "explain_text_filter", "explain_text_class",
                                                picked.run.id, key)
    if not positions:
        return None

    def _caption(i: int) -> str:
        item = refs[int(report["items"][i])]
        preview = item if len(item) <= PREVIEW_CHARS else item[: PREVIEW_CHARS - 1] + "…"
        return f"{run_picker.outcome(report, i)} · {preview}"

    if st.session_state.get(key) not in positions:
        st.session_state[key] = positions[0]
    position = st.selectbox(f"Validation text ({len(positions)})", positions, key=key, format_func=_caption)
    text = refs[int(report["items"][position])]
    with st.container(border=True):
        st.text(text)
    run_picker.mark_control(picked.run.dataset_id, int(report["items"][position]), noun)
    return text, int(report["labels"][position])
