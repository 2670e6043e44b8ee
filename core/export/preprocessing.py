"""What a bundle's `predict.py` (`core.export.standalone`) needs to turn a raw input into the ONNX inputs exactly as
the run's validation did: `preprocessing.json`, and for text models the tokenizer files.

Written from the run's own objects rather than restated: the image steps are read off the very transform that
validation and prediction use (`core.data.image_pipeline.eval_transform`, timm's eval transform), the tokenizer is
the run's (`save_pretrained`), the table encoding and column conversions are the run's fitted `inputs.json`, and a
series' reading settings are its dataset's. A run whose preprocessing the standalone reader cannot reproduce is
refused here (GlassboxError) rather than exported to predict differently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import GlassboxError
from core.export.standalone import FORMAT

if TYPE_CHECKING:
    from torch import nn

    from core.artifacts import RunFiles
    from core.config import TrainConfig

__all__ = ["write"]

TOKENIZER_FOLDER = "tokenizer"


def write(folder: Path, files: RunFiles, model: nn.Module, config: TrainConfig) -> dict[str, Any]:
    """Write `preprocessing.json` (and, for text, `tokenizer/`: the run's tokenizer and its encoder's Hugging Face
    config, so the bundle can also be rebuilt with torch) into `folder`, and return what the JSON holds:
    {"format", "modality", "task", <modality>: {...}}, plus for images the run's own `mean`, `std` and
    `interpolation` at the top level, which `core.artifacts.load_model` reads from a run folder.

    `model` is the run's model as `core.artifacts.load_model` rebuilt it (eval mode). Raises GlassboxError when a
    step of the run's preprocessing has no standalone equivalent (a tokenizer without a fast `tokenizer.json`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = {"format": FORMAT, "modality": config.modality, "task": config.task}
    section = _SECTIONS.get(config.modality)
    if section is None:
        raise GlassboxError(f"{config.modality} runs cannot be exported for the standalone predict.py yet")
    if config.modality == "images" and files.preprocessing.exists():
        written.update(files.read_json(files.preprocessing))
    written[config.modality] = section(folder, files, model, config)
    (folder / "preprocessing.json").write_text(json.dumps(written, indent=1))
    return written


def _images(folder: Path, files: RunFiles, model: nn.Module, config: TrainConfig) -> dict[str, Any]:
    """The decode side of `core.data.pictures.load_image` and the eval transform's steps, read off the transform."""
    from torchvision import transforms

    from core.data.image_pipeline import eval_transform
    from core.data.pictures import decode_side

    steps: list[dict[str, Any]] = []
    for step in eval_transform(model, config).transforms:
        name = type(step).__name__
        if isinstance(step, transforms.Resize):
            if step.max_size is not None:
                raise GlassboxError("the image resize has a max_size, which the standalone predict.py does not apply")
            size = [step.size] if isinstance(step.size, int) else list(step.size)
            steps.append({"op": "resize", "size": size, "interpolation": step.interpolation.value})
        elif isinstance(step, transforms.CenterCrop):
            steps.append({"op": "center_crop", "size": [int(n) for n in step.size]})
        elif name in ("ToTensor", "MaybeToTensor"):
            steps.append({"op": "to_tensor"})
        elif isinstance(step, transforms.Normalize):
            steps.append({"op": "normalize", "mean": [float(v) for v in step.mean],
                          "std": [float(v) for v in step.std]})
        else:
            raise GlassboxError(f"the image transform step {name} has no standalone equivalent")
    return {"image_size": int(config.image_size), "decode_side": decode_side(config.image_size), "steps": steps}


def _text(folder: Path, files: RunFiles, model: nn.Module, config: TrainConfig) -> dict[str, Any]:
    """The tokenizer (saved under `tokenizer/`) and how the studio calls it: truncated at the smaller of the run's
    and the model's max length, batches padded to their longest text on the tokenizer's padding side."""
    tokenizer = model.tokenizer
    target = folder / TOKENIZER_FOLDER
    tokenizer.save_pretrained(str(target))
    model.encoder.config.save_pretrained(str(target))
    if not (target / "tokenizer.json").is_file():
        raise GlassboxError("the run's tokenizer has no fast tokenizer.json, which the standalone predict.py needs")
    return {"tokenizer": f"{TOKENIZER_FOLDER}/tokenizer.json",
            "max_length": min(int(config.max_length), int(model.max_length)),
            "padding_side": str(tokenizer.padding_side), "pad_id": int(tokenizer.pad_token_id),
            "pad_token": str(tokenizer.pad_token)}


def _tables(folder: Path, files: RunFiles, model: nn.Module, config: TrainConfig) -> dict[str, Any]:
    """The column descriptions (roles and conversions) and the fitted encoder (`TableEncoder.to_dict`)."""
    from core.data.table_encoding import TableEncoder

    inputs = files.read_json(files.inputs)
    return {"columns": inputs["columns"], "target_column": inputs.get("target_column"),
            "encoder": TableEncoder.from_dict(inputs).to_dict()}


def _series(folder: Path, files: RunFiles, model: nn.Module, config: TrainConfig) -> dict[str, Any]:
    """The fitted normalisation and the dataset's reading settings: the form and columns, their conversions, and
    for forecasts the time and target columns, covariates, grid, context and horizon."""
    info = _dataset_info(files, config)
    used = info.get("columns", {})
    section: dict[str, Any] = {"fitted": files.read_json(files.inputs), "form": used.get("form", "forecast"),
                               "label": used.get("label"), "conversions": dict(info.get("conversions", {}))}
    if config.task == "forecast":
        section.update(time=info["time"]["column"], target=info["target"], covariates=list(info["covariates"]),
                       grid=dict(info["grid"]), frequency=info.get("frequency"), context=int(info["context"]),
                       horizon=int(info["horizon"]))
    return section


def _dataset_info(files: RunFiles, config: TrainConfig) -> dict[str, Any]:
    """The info of the dataset the run trained on, from the current workspace (`GLASSBOX_HOME`)."""
    from core.store import Store
    from core.workspace import Workspace

    ws = Workspace.from_env()
    try:
        return Store(ws.db_path).get_dataset(config.dataset_id).info
    except GlassboxError:
        raise GlassboxError(f"the run's dataset {config.dataset_id} was deleted: its series reading settings are "
                            "needed to export it") from None


_SECTIONS = {"images": _images, "text": _text, "tables": _tables, "series": _series}
