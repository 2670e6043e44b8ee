"""Train: choose a dataset, a backbone, how much of it to fine-tune and a preset, then start a run.

The page only builds a `TrainConfig` and hands it to `core.runs.create`, which queues the run and
starts a worker process; training never happens in the page, which moves on to the live view at once.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import streamlit as st

from core import data, device, runs, tasks
from core.config import AUGMENTATIONS, CLASS_WEIGHTS, OPTIMIZERS, PRECISIONS, TrainConfig
from core.errors import GlassboxError
from core.models import BackboneInfo, family
from core.training.presets import apply, presets
from ui import formatting, search_views, views
from ui.baselines import IMBALANCE_RATIO
from ui.errors import user_errors
from ui.shell import setup
from ui.uploads import keep_file

studio = setup("Train")
state = st.session_state

MODE_LABELS = {
    "head": "Train only the new head (frozen backbone)",
    "partial": "Fine-tune the last stages",
    "full": "Fine-tune everything",
}
MODE_HELP = {
    "head": "Fastest: the pretrained backbone stays as it is; only a new last layer learns your classes.",
    "partial": "The last stages adapt to your data too: better on images unlike everyday photos, or on texts "
               "unlike everyday writing.",
    "full": "Every layer adapts: the most accurate with enough data, the slowest, best on a GPU.",
}
WEIGHT_TYPES = ["safetensors", "pth", "pt", "bin"]
WEIGHT_SOURCES = {
    "pip package": "ships with Glassbox (pip package)",
    "local cache": "downloaded before (local cache)",
    "hub": "downloaded from the hub on first use",
    "none": "none available: from scratch",
}


@st.cache_data(ttl=300, show_spinner="Loading the backbone catalog...")
def _catalog(modality: str) -> list[BackboneInfo]:
    """The curated list; cached because it builds each model on the meta device to count parameters."""
    return family(modality).catalog()


@st.cache_data(ttl=300, show_spinner=False)
def _describe(modality: str, name: str) -> BackboneInfo:
    return family(modality).describe(name)


st.title("Train")

records = studio.store.list_datasets()
if not records:
    st.info("There is no dataset to train on yet: add one first (the sample digits take a click).",
            icon=":material/info:")
    st.page_link("pages/1_Data.py", label="Go to Data", icon=":material/folder_open:")
    st.stop()

# ---- 1. dataset ---------------------------------------------------------------------------------------
by_id = {d.id: d for d in records}
ids = list(by_id)
st.subheader("1 · Dataset")
dataset_id = st.selectbox(
    "Dataset", ids, index=ids.index(state["dataset_id"]) if state.get("dataset_id") in by_id else 0,
    format_func=lambda i: f"{by_id[i].name} · {by_id[i].info.get('num_items', 0)} items, "
                          + (f"{len(by_id[i].info['classes'])} classes" if by_id[i].info.get("classes")
                             else f"{by_id[i].info.get('task', '')} of {by_id[i].info.get('target', '')}"),
)
state["dataset_id"] = dataset_id
dataset = by_id[dataset_id]
modality = dataset.modality
spec = data.modality(modality)  # the registered Modality: its nouns and the settings its runs read
noun = spec.noun
task = tasks.task(dataset.info.get("task", spec.tasks[0]))
choices = presets(modality)
titles = {p.name: p.title for p in choices}
# the preset chosen below, read first: a preset may name the backbone it trains (a table's MLP or ensemble), which
# the backbone list then starts on, and whether it trains from scratch by design (no pretrained weights exist)
current = state.get("preset") if state.get("preset") in titles else (choices[0].name if choices else "custom")
preset_values = next((p.values for p in choices if p.name == current), {})
from_scratch = preset_values.get("weights") == "none"

# ---- 2. backbone --------------------------------------------------------------------------------------
st.subheader("2 · Backbone")
catalog: list[BackboneInfo] = []
with user_errors("Cannot list backbones: "):
    catalog = _catalog(modality)
if catalog:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "name": b.name,
                    "params": formatting.params(b.params_m),
                    spec.input_size_label: f"{b.input_size}" if b.input_size else "—",
                    "pretrained weights": WEIGHT_SOURCES.get(b.weights, b.weights),
                    "why pick it": b.note,
                }
                for b in catalog
            ]
        ),
        hide_index=True,
    )
pick_col, typed_col = st.columns(2)
names = [b.name for b in catalog]
preset_backbone = preset_values.get("backbone")
picked = pick_col.selectbox(
    "Backbone", names, disabled=not catalog,
    index=names.index(preset_backbone) if preset_backbone in names else 0,
    key=f"backbone_pick-{modality}" + (f"-{current}" if preset_backbone else ""),
    help="The preset's model to start with; choose another to try it with the same settings." if preset_backbone
    else None)
typed_field = views.of(modality).typed_backbone
typed = typed_col.text_input(**typed_field, key=f"backbone_typed-{modality}") if typed_field else ""
backbone_name = typed.strip() or picked
info: BackboneInfo | None = None
if backbone_name:
    with user_errors():
        info = _describe(modality, backbone_name)

# weights: "auto" (the best source the catalog named), "none" (scratch) or a user file's path
weights: str | None = "auto"
if info is not None:
    weights_said = "" if from_scratch else \
        f" · pretrained weights: {WEIGHT_SOURCES.get(info.weights, info.weights)}"
    st.caption(f"**{info.name}** · {formatting.params(info.params_m)} parameters{weights_said}"
               + (f" · {info.note}" if info.note else ""))
    if from_scratch:
        weights = "none"
    elif info.weights == "none":
        st.warning(
            f"No pretrained weights for **{info.name}** here: none ship with Glassbox, none were downloaded "
            "before, and the model hub cannot be reached (or has none for it). Trained from scratch on "
            f"{dataset.info.get('num_items', 0)} {noun} it will do poorly: a network starting from random "
            f"weights needs thousands of {noun} per class and many epochs. Pick a backbone whose "
            "weights ship with Glassbox, upload a weights file for this architecture, or train from scratch on "
            "purpose.",
            icon=":material/warning:",
        )
        upload = st.file_uploader("Weights file for this architecture (optional)", type=WEIGHT_TYPES,
                                  key=f"weights_file-{info.name}")
        scratch = st.checkbox("Train from scratch (random initial weights)", key=f"scratch-{info.name}")
        if upload is not None:
            saved: dict[str, str] = state.setdefault("saved_weights", {})
            if upload.file_id not in saved:
                saved[upload.file_id] = str(keep_file(studio.ws.cache_dir / "user-weights", upload.name,
                                                      upload.getvalue()))
            weights = saved[upload.file_id]
            st.caption(f"Starting from your file **{upload.name}**; it is checked against the architecture "
                       "when the run starts.")
        else:
            weights = "none" if scratch else None

# ---- 3. preset and transfer mode ----------------------------------------------------------------------
st.subheader("3 · How to train")
preset_name = "custom"
if choices:
    preset_name = st.segmented_control("Preset", list(titles), format_func=titles.get, default=choices[0].name,
                                       required=True, key="preset") or choices[0].name
    st.caption(next(p.description for p in choices if p.name == preset_name))

base = TrainConfig(dataset_id=dataset.id, backbone=backbone_name or "", modality=modality, task=task.name)
# the backbone chosen above wins over the one a preset names, which only set where the list started
seeded = apply(base, preset_name).updated(backbone=base.backbone) if choices else base
if spec.input_size_setting:
    # the size the run will really use, which need not be the backbone's own
    unit = spec.input_size_unit
    native = f" (the backbone's own: {info.input_size} {unit})" if info is not None and info.input_size else ""
    st.caption(f"Input size with this preset: **{getattr(seeded, spec.input_size_setting)} {unit}**{native}; change "
               "it under *Advanced settings*.")
counts: dict[str, int] = dataset.info.get("counts", {})
if len(counts) > 1 and max(counts.values()) >= IMBALANCE_RATIO * min(counts.values()):
    big, small = max(counts, key=counts.__getitem__), min(counts, key=counts.__getitem__)
    st.info(f"Classes are imbalanced: {big!r} has {counts[big]} {noun}, {small!r} only {counts[small]}. Accuracy "
            f"will flatter a model that favours {big!r} (the run shows what always answering it scores); class "
            "weights *balanced* under *Advanced settings* make every class count as much in training.",
            icon=":material/balance:")
mode = seeded.mode
if from_scratch:
    st.caption(f"The network is trained from scratch on your {noun}: there is no pretrained model to transfer.")
else:
    mode = st.radio("Transfer learning", list(MODE_LABELS), format_func=MODE_LABELS.get,
                    index=list(MODE_LABELS).index(seeded.mode), key=f"mode-{preset_name}",
                    captions=[MODE_HELP[m] for m in MODE_LABELS])


# ---- advanced: every other TrainConfig field, starting from the preset ----------------------------------
def _key(field: str) -> str:
    # keyed by preset: choosing another preset gives fresh widgets, i.e. that preset's values
    return f"adv-{field}-{preset_name}"


def _index(options: list[str] | tuple[str, ...], value: str) -> int:
    return list(options).index(value) if value in options else 0


values: dict[str, Any] = {}
with st.expander("Advanced settings"):
    st.caption("These start from the preset's values; choosing another preset resets them.")
    a, b, c = st.columns(3)
    values["epochs"] = a.number_input("Epochs", 1, 1000, seeded.epochs, key=_key("epochs"))
    values["batch_size"] = b.number_input("Batch size", 1, 4096, seeded.batch_size, key=_key("batch_size"))
    values["lr"] = c.number_input("Learning rate", 1e-7, 1.0, float(seeded.lr), step=1e-4, format="%.1e",
                                  key=_key("lr"))
    values["backbone_lr_scale"] = a.number_input(
        "Backbone learning-rate scale", 0.0, 1.0, float(seeded.backbone_lr_scale), step=0.05, key=_key("blr"),
        help="Pretrained layers train at learning rate x this (partial and full fine-tuning).")
    values["weight_decay"] = b.number_input("Weight decay", 0.0, 1.0, float(seeded.weight_decay), step=1e-3,
                                            format="%.4f", key=_key("weight_decay"))
    values["optimizer"] = c.selectbox("Optimizer", OPTIMIZERS, index=_index(OPTIMIZERS, seeded.optimizer),
                                      key=_key("optimizer"))
    values["warmup_fraction"] = a.number_input("Warm-up fraction", 0.0, 0.9, float(seeded.warmup_fraction),
                                               step=0.05, key=_key("warmup"),
                                               help="Share of the steps over which the learning rate ramps up.")
    values["label_smoothing"] = b.number_input("Label smoothing", 0.0, 0.9, float(seeded.label_smoothing),
                                               step=0.05, key=_key("smoothing"))
    values["early_stopping_patience"] = c.number_input(
        "Early-stopping patience (epochs, 0 = off)", 0, 1000, seeded.early_stopping_patience, key=_key("patience"))
    # the settings only this modality's runs read, each offered when the modality declares it
    if "image_size" in spec.settings:
        values["image_size"] = a.number_input("Image size (px)", 32, 1024, seeded.image_size, step=16,
                                              key=_key("image_size"))
    if "augmentation" in spec.settings:
        values["augmentation"] = b.selectbox("Augmentation", AUGMENTATIONS,
                                             index=_index(AUGMENTATIONS, seeded.augmentation),
                                             key=_key("augmentation"))
    if "channels_last" in spec.settings:
        values["channels_last"] = c.checkbox("Channels-last memory layout (faster)", seeded.channels_last,
                                             key=_key("channels_last"))
    if "max_length" in spec.settings:
        values["max_length"] = a.number_input("Max tokens", 8, 4096, seeded.max_length, key=_key("max_length"))
    values["val_fraction"] = a.number_input("Validation fraction", 0.05, 0.85, float(seeded.val_fraction),
                                            step=0.05, key=_key("val_fraction"))
    values["seed"] = b.number_input("Seed", 0, 2**31 - 1, seeded.seed, key=_key("seed"),
                                    help="Same seed, same split and same result.")
    devices = ["auto", *device.available()]
    values["device"] = c.selectbox("Device", devices, index=_index(devices, seeded.device), key=_key("device"))
    values["precision"] = a.selectbox("Precision", PRECISIONS, index=_index(PRECISIONS, seeded.precision),
                                      key=_key("precision"),
                                      help="auto: mixed precision on a GPU, full precision on the CPU.")
    values["class_weights"] = b.selectbox(
        "Class weights", CLASS_WEIGHTS, index=_index(CLASS_WEIGHTS, seeded.class_weights), key=_key("class_weights"),
        help="balanced: each class counts as much in the loss, however few its items (for imbalanced classes).")
    if mode == "head" and spec.fixed_inputs(dataclasses.replace(seeded, **values)):
        st.caption("Frozen backbone on unchanging inputs: features are computed once, and only the head trains "
                   "(seconds on a CPU).")

# ---- start --------------------------------------------------------------------------------------------
st.divider()
config: TrainConfig | None = None
if info is not None and weights is not None:
    try:
        config = dataclasses.replace(seeded, preset=preset_name, mode=mode, weights=weights, **values).validate()
    except GlassboxError as exc:
        st.error(str(exc), icon=":material/error:")

if config is not None:
    st.markdown(
        f"**{config.backbone}** on **{dataset.name}** · {titles.get(preset_name, preset_name)} · "
        + ("" if from_scratch else f"{MODE_LABELS[config.mode].lower()} · ") + f"{config.epochs} epoch(s)"
        + (f" at {getattr(config, spec.input_size_setting)} {spec.input_size_unit}" if spec.input_size_setting else "")
        + f" · device {config.device} · {task.title.lower()}"
        + (f" · class weights {config.class_weights}" if config.class_weights != "none" else "")
        + (" · **from scratch**" if config.weights == "none" and not from_scratch else "")
    )
if config is not None and config.weights == "none" and config.mode != "full":
    st.warning("From scratch, the backbone starts random: keeping it (partly) frozen keeps it random. "
               "Choose *Fine-tune everything*.", icon=":material/warning:")
elif info is not None and weights is None:
    st.info("Tick *Train from scratch* or upload a weights file to start.", icon=":material/info:")

if st.toggle("Search settings: several runs, the best kept", key="search_mode",
             help="Tries the settings you choose over ranges, as ordinary runs, and stops early those falling behind."):
    search_views.show(studio, dataset.id, config, names)
    st.stop()

if st.button("Start training", type="primary", icon=":material/play_arrow:", disabled=config is None,
             key="start"):
    assert config is not None
    run = None
    with user_errors("Could not start: "):
        run = runs.create(studio.ws, studio.store, config)
    if run is not None:
        state["run_id"] = run.id
        st.switch_page("pages/3_Runs.py")
