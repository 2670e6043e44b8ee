"""A bundle's `MODEL_CARD.md`: what the model is, what it was trained and judged on, how far to trust it and how
to run it, in the spirit of Mitchell et al., "Model Cards for Model Reporting" (FAT* 2019), written from the run's
own figures (its metrics, baselines, calibration and the export's checks), never from templates of hopes.

A figure a run did not measure (calibration of a run made before it existed, a test split the user did not make)
is said to be "not measured", never left out silently or invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core import data

if TYPE_CHECKING:
    from core.config import TrainConfig
    from core.tasks import Task

__all__ = ["CardFacts", "model_card"]

NOT_MEASURED = "not measured"


@dataclass
class CardFacts:
    """What a card is written from: the run (`run_id`, `config`, `metrics` as the store keeps them, baselines
    included, `state`: the task state of target.json), its dataset (`dataset_name`, `dataset_info`), the split
    (`split_counts` {part: items}, `split_source`), `training_stats` (or None), the export's `checks`
    (bundle.json's), `quantize` (None, "int8" or "fp16") and the bundle's `files`."""

    run_id: str
    task: Task
    config: TrainConfig
    metrics: dict[str, Any]
    state: dict[str, Any]
    dataset_name: str
    dataset_info: dict[str, Any]
    split_counts: dict[str, int]
    split_source: str
    training_stats: dict[str, Any] | None
    checks: dict[str, Any]
    quantize: str | None
    files: list[str]
    inputs: dict[str, Any] | None = None  # the run's fitted inputs (`inputs.json`): a table's column descriptions


def model_card(facts: CardFacts) -> str:
    """The card's Markdown text."""
    # a quantised bundle's own figures come first: the run's metrics below describe the fp32 model it came from
    sections = [_title(facts), _quantisation(facts), _data(facts), _inputs(facts), _metrics(facts),
                _calibration(facts), _use(facts), _limitations(facts), _loading(facts), _checks(facts)]
    return "\n\n".join(s for s in sections if s) + "\n"


def _figure(value: Any, percent: bool = False) -> str:
    if value is None or isinstance(value, str):
        return NOT_MEASURED if value is None else value
    if isinstance(value, (list, tuple)):
        return ", ".join(_figure(v, percent) for v in value)
    return f"{value:.1%}" if percent else f"{value:.4g}"


def _title(facts: CardFacts) -> str:
    cfg = facts.config
    return (f"# Model card: {facts.task.title.lower()} of {facts.dataset_name}\n\n"
            f"Model: `{cfg.backbone}` ({cfg.modality}), trained by Glassbox in run "
            f"`{facts.run_id}`: {cfg.epochs} epoch(s) at most, batch {cfg.batch_size}, learning rate {cfg.lr}, seed "
            f"{cfg.seed}, transfer mode {cfg.mode}, {_weights(cfg.weights)}; best epoch "
            f"{facts.metrics.get('best_epoch', NOT_MEASURED)}. The whole configuration is `config.json`.")


def _data(facts: CardFacts) -> str:
    info = facts.dataset_info
    lines = ["## Data", "", f"- Dataset: {facts.dataset_name}, {info.get('num_items', NOT_MEASURED)} items."]
    if facts.state.get("classes"):
        counts = info.get("counts") or {}
        shown = ", ".join(f"{c} ({counts[c]})" if c in counts else str(c) for c in facts.state["classes"])
        lines.append(f"- Classes: {shown}.")
    if info.get("target"):
        lines.append(f"- Target: {info['target']}.")
    if "horizon" in info:
        lines.append(f"- Forecast horizon: {info['horizon']} steps, from {info.get('context', NOT_MEASURED)} "
                     "past steps.")
    parts = ", ".join(f"{n} {part}" for part, n in facts.split_counts.items() if n)
    lines.append(f"- Split: {parts} ({facts.split_source}).")
    return "\n".join(lines)


def _metrics(facts: CardFacts) -> str:
    shown = facts.task.metrics_shown
    parts = ["val"] + (["test"] if any(k.startswith("test_") for k in facts.metrics) else [])
    lines = ["## Metrics", "", "| metric | " + " | ".join(parts) + " |", "|---|" + "---|" * len(parts)]
    for metric in shown:
        cells = [_figure(facts.metrics.get(f"{part}_{metric.key}"), metric.percent) for part in parts]
        lines.append(f"| {metric.title} | " + " | ".join(cells) + " |")
    if "test" not in parts:
        lines.append("\nTest split: " + NOT_MEASURED + " (the dataset had no test part); the figures above are on "
                     "the validation items that chose the best epoch, so they flatter the model a little.")
    baselines: dict[str, dict[str, Any]] = facts.metrics.get("baselines") or {}
    if baselines:
        from core import baselines as known

        headline = shown[0]
        ours = facts.metrics.get(f"val_{headline.key}")
        lines += ["", f"Baselines on the same validation items ({headline.title}):", ""]
        for name, values in baselines.items():
            theirs = values.get(headline.key)
            lines.append(f"- {known.title(name, values)}: {_figure(theirs, headline.percent)}"
                         f" ({_verdict(ours, theirs, headline.higher_is_better)})")
    return "\n".join(lines)


def _verdict(ours: Any, theirs: Any, higher_is_better: bool) -> str:
    if not isinstance(ours, (int, float)) or not isinstance(theirs, (int, float)):
        return "cannot be compared"
    if ours == theirs:
        return "level with this model"
    better = ours > theirs if higher_is_better else ours < theirs
    return "this model does better" if better else "this baseline does better than this model"


def _calibration(facts: CardFacts) -> str:
    if facts.task.answers_key != "probs":
        interval = facts.metrics.get("interval_coverage")
        if interval is None:
            return ""
        return (f"## Calibration\n\nPrediction interval coverage on validation: {_figure(interval, True)}; "
                "the interval's half-widths are in `target.json`.")
    temperature = facts.state.get("temperature", facts.metrics.get("temperature"))
    lines = ["## Calibration", "",
             f"- Temperature T (Guo et al., 2017, fitted on validation): {_figure(temperature)}.",
             f"- Expected calibration error on validation, before scaling: "
             f"{_figure(facts.metrics.get('val_ece_uncalibrated'), True)}; after: "
             f"{_figure(facts.metrics.get('val_ece'), True)}."]
    if "test_ece" in facts.metrics:
        lines.append(f"- On the test split, before: {_figure(facts.metrics.get('test_ece_uncalibrated'), True)}; "
                     f"after: {_figure(facts.metrics.get('test_ece'), True)}.")
    lines.append("- `model.onnx` returns raw logits; probabilities are softmax(logits / T), which `predict.py` "
                 "applies.")
    return "\n".join(lines)


def _weights(weights: str) -> str:
    return {"auto": "starting from the backbone's pretrained weights where they exist", "none":
            "trained from scratch (no pretrained weights)"}.get(weights, f"starting from the weights file {weights}")


def _inputs(facts: CardFacts) -> str:
    """For a table: the columns the model reads, with their roles and what values they took in training, so a user
    can write a file to predict on; "" for other modalities."""
    encoder = (facts.inputs or {}).get("columns")
    if not encoder:
        return ""
    lines = ["## Inputs", "", "A CSV with these columns (others, the target included, are ignored; a missing value "
             "is allowed and imputed; a category not seen in training is read as unknown):", "",
             "| column | read as | in training |", "|---|---|---|"]
    for column in encoder:
        if column.get("dropped") or column.get("role") == "target":
            continue
        if "levels" in column:
            seen = ", ".join(map(str, column["levels"][:12])) + (" ..." if column.get("n_levels", 0) > 12 else "")
        elif "min" in column:
            seen = f"{column['min']} to {column['max']}"
        else:
            seen = ""
        lines.append(f"| {column['name']} | {column['role']} | {seen} |")
    return "\n".join(lines)


def _use(facts: CardFacts) -> str:
    what = {"probs": "the class of", "predictions": "the value of"}.get(facts.task.answers_key, "answers for")
    noun = data.modality(facts.config.modality).item_noun
    return ("## Intended use\n\n"
            f"Predicting {what} new {noun}s like those of {facts.dataset_name}, read the way "
            "its training items were read (`preprocessing.json`). It was judged only on the figures above; decisions "
            "about people need a human check and a judgement of errors this data cannot show.")


def _limitations(facts: CardFacts) -> str:
    lines = ["## Limitations", "",
             f"- Trained on {facts.split_counts.get('train', NOT_MEASURED)} items of one dataset: inputs unlike them "
             "(other sources, conditions, populations or periods) may be answered confidently and wrongly."]
    stats = facts.training_stats or {}
    if "colour_share" in stats:
        width, height = stats["width"], stats["height"]
        lines.append(f"- Training images: {stats['colour_share']:.0%} in colour, widths {width['min']}-"
                     f"{width['max']} px, heights {height['min']}-{height['max']} px; other images get an "
                     "`unlike_training` hint in the studio.")
    if "scripts" in stats:
        scripts = ", ".join(f"{s} {share:.0%}" for s, share in list(stats["scripts"].items())[:4])
        lines.append(f"- Training texts' letters by script: {scripts or 'none'}; texts in other scripts are unlike "
                     "them.")
    if "max_length" in data.modality(facts.config.modality).settings:
        lines.append(f"- Texts longer than {facts.config.max_length} tokens are cut: only their start is read.")
    if facts.metrics.get("suspicious"):
        lines.append(f"- Warning from training: {facts.metrics['suspicious']}")
    return "\n".join(lines)


def _loading(facts: CardFacts) -> str:
    lines = ["## How to load", "", "Without torch (onnxruntime, numpy, Pillow, tokenizers), in this folder:", "",
             "```bash", "pip install -r requirements.txt", "python predict.py INPUT...", "```", "",
             "It prints one CSV row per input (for rows and series: per row or series) with the prediction."]
    if "model.pt2" in facts.files:
        lines += ["", "With torch: `torch.export.load(\"model.pt2\").module()` takes the same inputs as `model.onnx` "
                  f"({', '.join(facts.checks.get('onnx_inputs', []))}, as torch tensors, in that order) and returns "
                  "the same raw outputs; or rebuild the Glassbox model from `config.json` and load "
                  "`model.safetensors` (`safetensors.torch.load_file`) into it. TorchScript is not offered: it is "
                  "deprecated upstream in favour of torch.export."]
    else:
        lines += ["", f"This bundle is quantised ({facts.quantize}): it holds the compressed `model.onnx` only, "
                  "without `model.safetensors` and `model.pt2`; export without quantisation for the PyTorch files."]
    return "\n".join(lines)


def _checks(facts: CardFacts) -> str:
    checks = facts.checks
    shapes = checks.get("onnx_shapes") or {}
    described = "; ".join(f"`{name}` {shape}" for name, shape in shapes.items())
    lines = ["## ONNX checks", "",
             ("The fp32 model this bundle's quantised one was made from: " if facts.quantize else "")
             + f"`model.onnx` (opset {checks.get('opset', NOT_MEASURED)}, exported with `torch.onnx.export(..., "
             f"dynamo=True)`) inputs: {described or NOT_MEASURED}; output `logits`. Against PyTorch on "
             f"{checks.get('onnx_items', NOT_MEASURED)} validation items with onnxruntime: largest absolute "
             f"difference {_figure(checks.get('onnx_max_abs_diff'))}"]
    if "top1_agreement" in checks:
        lines[-1] += f", top-1 agreement {_figure(checks['top1_agreement'], True)}"
    lines[-1] += "."
    return "\n".join(lines)


def _quantisation(facts: CardFacts) -> str:
    if not facts.quantize:
        return ""
    checks = facts.checks
    lines = ["## This bundle's model: quantised", "",
             f"`model.onnx` is the {facts.quantize} model (method: {checks.get('quantize_method', facts.quantize)}); "
             "the figures further down (metrics, calibration, ONNX checks) describe the fp32 model it was made from. "
             "Measured on the same validation items, fp32 before, this model after:", ""]
    for key in sorted(k for k in checks if k.endswith("_before")):
        stem = key[: -len("_before")]
        after = checks.get(stem + "_after")
        if stem == "size":
            lines.append(f"- model size: {checks[key] / 1e6:.2f} MB before, {(after or 0) / 1e6:.2f} MB after.")
        elif stem == "latency_ms":
            lines.append(f"- latency per item: {checks[key]:.3g} ms before, {_figure(after)} ms after.")
        else:
            lines.append(f"- {stem.replace('_', ' ')}: {_figure(checks[key])} before, {_figure(after)} after.")
    lines.append("- Latency is the median per item at batch 1 on one CPU thread of the exporting machine.")
    return "\n".join(lines)
