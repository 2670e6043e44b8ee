"""The Explain page's view of an image classifier: pick a validation image (filtered by outcome and
class, from a gallery) or upload one, choose methods and their settings, and see each method's map over
the picture with how far it can be trusted (deletion and insertion against a random map, infidelity,
sensitivity) and the randomisation sanity check.

The work is in `core.explain`; this view keeps the loaded model between clicks and the computed maps in
the session, so that moving the opacity slider only redraws.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from PIL import Image

from core.data.pictures import SUFFIXES, load_image
from core.explain import BASELINES, ExplainOptions, explain, faithfulness, methods
from core.explain.images import ImageModel, occlusion_geometry
from ui import explain_views, formatting, run_picker, thumbnails
from ui.errors import user_errors
from ui.shell import Studio
from ui.uploads import staged_file

GALLERY = 12
PER_ROW = 6
TOP_K = 5
SENSITIVITY_SAMPLES = 3
BASELINE_TITLES = {"black": "Black image", "blurred": "Blurred copy", "noise": "Uniform noise"}
UPLOAD_TYPES = [suffix.lstrip(".") for suffix in SUFFIXES]


def _faithfulness_figures(figures: faithfulness.Faithfulness, method: str) -> None:
    (st.success if figures.beats_random else st.warning)(figures.verdict)
    first, second = st.columns(2)
    first.metric("Deletion AUC", f"{figures.deletion.auc:.3f}",
                 delta=f"{figures.deletion.auc - figures.random_deletion.auc:+.3f} vs random", delta_color="inverse",
                 help="Area under the probability as the map's top regions are removed: lower is better. The random "
                      "map is this map moved to a random place.")
    second.metric("Insertion AUC", f"{figures.insertion.auc:.3f}",
                  delta=f"{figures.insertion.auc - figures.random_insertion.auc:+.3f} vs random",
                  help="Area under the probability as the map's top regions are added to a blurred copy: "
                       "higher is better.")
    first.metric("Infidelity", f"{figures.infidelity:.3g}",
                 delta=f"{figures.infidelity - figures.random_infidelity:+.3g} vs random", delta_color="inverse",
                 help="How badly the map predicts the score's reaction to noise (Captum): lower is better.")
    second.metric("Sensitivity", "—" if figures.sensitivity is None else f"{figures.sensitivity:.3f}",
                  help="Largest change of the map under a tiny input change, relative to the map (Captum's "
                       "sensitivity_max): lower is steadier.")
    st.plotly_chart(explain_views.curves(figures), key=f"explain_curves-{method}")
    st.caption("Measured in " + ", ".join(f"{step} {seconds:.2f} s" for step, seconds in figures.seconds.items()))


def _ranking(figures: dict[str, faithfulness.Faithfulness], titles: dict[str, str]) -> None:
    """One table of the methods run on this input, most faithful first, and one verdict."""
    ranked = faithfulness.rank(figures)
    st.subheader("Which map to trust")
    st.dataframe(
        [{"method": titles[r.method], "deletion_gap": r.deletion_gap, "insertion_gap": r.insertion_gap,
          "beats_random": r.beats_random} for r in ranked],
        hide_index=True, key="explain_ranking",
        column_config={
            "method": st.column_config.TextColumn("method"),
            "deletion_gap": st.column_config.NumberColumn(
                "deletion below random", format="%.3f",
                help="The random map's deletion area minus this map's: how much faster the probability falls when "
                     "this map's top regions go first. Higher is more faithful."),
            "insertion_gap": st.column_config.NumberColumn(
                "insertion above random", format="%.3f",
                help="This map's insertion area minus the random map's. Higher is more faithful."),
            "beats_random": st.column_config.CheckboxColumn("clearly beats random"),
        },
    )
    (st.success if ranked and ranked[0].beats_random else st.warning)(faithfulness.ranking_verdict(ranked, titles))


def _read_upload(studio: Studio, upload: Any, image_size: int) -> Image.Image:
    """Uploads go through the same decoder and guards as datasets, which read files."""
    with staged_file(studio.ws.staging_dir, upload.name, upload.getvalue()) as path:
        return load_image(path, image_size)


def show(studio: Studio, picked: run_picker.Picked) -> None:
    """The view for one completed image run (the page has picked it)."""
    state = st.session_state
    run, files, run_id = picked.run, picked.files, picked.run.id
    registry = methods(run.modality)

    subject: ImageModel | None = explain_views.model_or_message(files, studio.ws.cache_dir)
    if subject is None:
        return
    classes = subject.classes

    # ---- the input ---------------------------------------------------------------------------------------
    st.subheader("Input")
    if run_picker.requested(run_id):  # Evaluate opened an item of this run
        state["explain_source"] = "Validation image"
    source = st.radio("Input", ("Validation image", "Upload an image"), horizontal=True, key="explain_source",
                      label_visibility="collapsed")
    image: Image.Image | None = None
    image_id = ""
    true_class: int | None = None
    if source == "Validation image":
        report: dict[str, Any] | None = None
        refs: list[str] | None = None
        with user_errors("Cannot read this run's validation images: "):
            report = run_picker.report(files)
            refs = run_picker.items(studio, run)
        if report is None or refs is None:
            return
        dataset_dir = studio.ws.dataset_dir(run.dataset_id)
        item_key = f"explain_item-{run_id}"
        positions = run_picker.validation_positions(report, "image", "explain_filter", "explain_class", run_id,
                                                    item_key)
        if not positions:
            return

        def _caption(i: int) -> str:
            return run_picker.outcome(report, i)

        if state.get(item_key) not in positions:
            state[item_key] = positions[0]

        def _use(position: int) -> None:
            state[item_key] = position

        gallery = positions[:GALLERY]
        for start in range(0, len(gallery), PER_ROW):
            for column, position in zip(st.columns(PER_ROW), gallery[start:start + PER_ROW], strict=False):
                preview = thumbnails.thumbnail(dataset_dir / refs[int(report["items"][position])])
                if preview is not None:
                    column.image(preview, caption=_caption(position), width=thumbnails.SIZE)
                column.button("Use", key=f"explain_use-{position}", on_click=_use, args=(position,),
                              type="primary" if state[item_key] == position else "secondary")
        if len(positions) > GALLERY:
            st.caption(f"Showing {GALLERY} of {len(positions)} images; pick any of them below.")
        position = st.selectbox("Image", positions, key=item_key,
                                format_func=lambda i: f"{refs[int(report['items'][i])]} · {_caption(i)}")
        with user_errors("Cannot read this image: "):
            image = load_image(dataset_dir / refs[int(report["items"][position])], subject.image_size)
        image_id, true_class = f"val-{position}", int(report["labels"][position])
        run_picker.mark_control(run.dataset_id, int(report["items"][position]), "image")
    else:
        upload = st.file_uploader("Upload an image", type=UPLOAD_TYPES, key="explain_upload")
        if upload is not None:
            with user_errors("Cannot read this image: "):
                image = _read_upload(studio, upload, subject.image_size)
            image_id = f"upload-{upload.file_id}"
    if image is None:
        return

    inputs = subject.tensor(image)
    probs = subject.probabilities(inputs)[0]
    predicted = int(probs.argmax())
    picture = subject.picture(inputs)

    # ---- prediction and target ---------------------------------------------------------------------------
    seen, prediction = st.columns([1, 2], gap="large")
    with prediction:
        target = st.selectbox(
            "Class to explain", list(range(len(classes))), index=predicted, key=f"explain_target-{run_id}-{image_id}",
            format_func=lambda i: f"{classes[i]} ({formatting.probability(probs[i])})"
            + (" · predicted" if i == predicted else ""),
        )
        st.plotly_chart(explain_views.top_k(probs, classes, TOP_K, highlight=target), key="explain_topk")
    with seen:
        truth = f" · true class {classes[true_class]}" if true_class is not None else ""
        st.image(Image.fromarray(picture).resize((224, 224), Image.Resampling.NEAREST), width=224,
                 caption=f"As the model sees it{truth}")

    # ---- methods and settings ----------------------------------------------------------------------------
    st.subheader("Methods")
    usable = [name for name in registry if registry.get(name).unavailable(subject) is None]
    chosen = st.multiselect("Methods", usable, default=["gradcam"] if "gradcam" in usable else usable[:1],
                            key=f"explain_methods-{run_id}", format_func=lambda n: registry.get(n).title)
    for name in registry:
        reason = registry.get(name).unavailable(subject)
        if reason is not None:
            st.caption(f"{registry.get(name).title} is not available for this model: {reason}. "
                       "The methods offered above still apply.")
    for name in chosen:
        st.caption(f"**{registry.get(name).title}**: {registry.get(name).description}")

    size = subject.image_size
    with st.expander("Method settings"):
        ig_col, occ_col = st.columns(2, gap="large")
        with ig_col:
            st.markdown("**Integrated Gradients**")
            baseline = st.selectbox("Baseline", BASELINES, key="explain_baseline", format_func=BASELINE_TITLES.get)
            steps = st.slider("Steps", 8, 128, 32, step=8, key="explain_steps")
            smoothgrad = st.checkbox("SmoothGrad (average over noisy copies)", key="explain_smoothgrad")
            samples = st.slider("SmoothGrad samples", 2, 32, 8, key="explain_samples", disabled=not smoothgrad)
        with occ_col:
            st.markdown("**Occlusion**")
            default = occlusion_geometry(size, ExplainOptions())
            window = st.slider("Window (px)", 1, size, default.window, key=f"explain_window-{size}")
            stride = st.slider("Stride (px)", 1, size, max(1, window // 2), key=f"explain_stride-{size}-{window}")
            geometry = occlusion_geometry(size, ExplainOptions(occlusion_window=window, occlusion_stride=stride))
            st.caption(f"{geometry.positions} positions, {geometry.forward_passes} batched forward passes.")
        sensitivity = st.checkbox(f"Measure sensitivity (re-runs each method {SENSITIVITY_SAMPLES} times on slightly "
                                  "changed inputs; slow for Integrated Gradients and Occlusion)",
                                  value=True, key="explain_sensitivity")
    options = ExplainOptions(ig_steps=steps, ig_baseline=baseline, smoothgrad=smoothgrad, smoothgrad_samples=samples,
                             occlusion_window=window, occlusion_stride=stride)
    opacity = st.slider("Map opacity", 0.0, 1.0, 0.6, step=0.05, key="explain_opacity")

    signature = (run_id, image_id, target, tuple(chosen), options, sensitivity)
    if st.button("Explain", type="primary", key="explain_go", icon=":material/lightbulb:", disabled=not chosen):
        explained = []
        for name in chosen:
            title = registry.get(name).title
            bar = st.progress(0.0, text=f"{title}...")
            with user_errors(f"{title}: "):
                explained.append(explain(subject, inputs, target, name, options,
                                         progress=lambda f, t=title, b=bar: b.progress(f, text=f"{t}: {f:.0%}")))
            bar.empty()
        # faithfulness figures are filled in below, after every map is on screen: the maps come in a blink,
        # the figures take a forward pass per point of each curve
        state["explain_results"] = {"signature": signature, "results": explained, "figures": {}, "picture": picture}
        state.pop("explain_sanity", None)

    stored = state.get("explain_results")
    if not stored or stored["signature"] != signature:
        st.caption("Press **Explain** to compute the maps for this image, class and methods.")
        return


    # ---- maps and faithfulness ---------------------------------------------------------------------------
    st.subheader("Maps")
    results: list[Any] = stored["results"]
    holders = []
    for start in range(0, len(results), 3):
        row = results[start:start + 3]
        for column, result in zip(st.columns(len(row), gap="medium"), row, strict=True):
            with column:
                st.markdown(f"#### {registry.get(result.method).title}")
                st.caption(f"map of class {classes[result.target]!r}, made in {result.seconds:.2f} s")
                st.plotly_chart(explain_views.overlay(stored["picture"], result.attribution, opacity, "Overlay"),
                                key=f"explain_overlay-{result.method}")
                st.plotly_chart(explain_views.map_alone(result.attribution, "Map alone"),
                                key=f"explain_map-{result.method}")
                for note in result.notes:
                    st.caption(note)
                holders.append(st.container())
    for holder, result in zip(holders, results, strict=True):
        with holder:
            if result.method not in stored["figures"]:
                with st.spinner("Measuring faithfulness..."):
                    stored["figures"][result.method] = faithfulness.measure(
                        subject, inputs, result, options, sensitivity_samples=SENSITIVITY_SAMPLES if sensitivity else 0)
            _faithfulness_figures(stored["figures"][result.method], result.method)
    _ranking(stored["figures"], {name: registry.get(name).title for name in registry})

    # ---- sanity check ------------------------------------------------------------------------------------
    st.subheader("Sanity check: randomise the model")
    st.caption("Re-initialise the model's top layers and explain again. A map that stays the same shows the picture "
               "(its edges, its colours), not what the model learned (Adebayo et al., 2018).")
    depth = len(subject.layout.layers)
    layers = st.slider("Top layers to randomise", 1, max(2, min(12, depth)), min(3, depth), key="explain_layers")
    if st.button("Run the randomisation check", key="explain_sanity_go", icon=":material/casino:"):
        checks = []
        with st.spinner("Explaining again with a randomised model..."):
            for result in results:
                with user_errors(f"{registry.get(result.method).title}: "):
                    checks.append(faithfulness.randomisation_test(subject, inputs, result, options, layers))
        state["explain_sanity"] = {"signature": (signature, layers), "checks": checks}
    sanity = state.get("explain_sanity")
    if sanity and sanity["signature"] == (signature, layers):
        originals = {result.method: result for result in results}
        for check in sanity["checks"]:
            method = check.randomised.method
            st.markdown(f"**{registry.get(method).title}**")
            before, after = st.columns(2)
            before.plotly_chart(explain_views.map_alone(originals[method].attribution, "Trained model"),
                                key=f"explain_before-{method}")
            after.plotly_chart(explain_views.map_alone(check.randomised.attribution, "Top layers randomised"),
                               key=f"explain_after-{method}")
            (st.success if check.changed else st.warning)(check.verdict)
            st.caption("Randomised: " + ", ".join(check.layers) + f" · {check.seconds:.2f} s")
