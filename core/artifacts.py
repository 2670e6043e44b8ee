"""A run's files, in one place: what the worker writes and what later steps (evaluate, explain,
predict, export) read back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import TrainConfig
from core.errors import GlassboxError

if TYPE_CHECKING:  # torch is imported where a model is loaded, not by every command that reads a run
    from torch import nn


@dataclass(frozen=True)
class RunFiles:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    @property
    def weights(self) -> Path:
        """Best-epoch weights (safetensors)."""
        return self.root / "model.safetensors"

    @property
    def labels(self) -> Path:
        return self.root / "labels.json"

    @property
    def preprocessing(self) -> Path:
        """The input normalisation of the weights the run started from (timm's pretrained_cfg
        mean/std/interpolation), which a model rebuilt without those weights would not know."""
        return self.root / "preprocessing.json"

    @property
    def target(self) -> Path:
        """The task's state (`Task.state`): the class names, or a regression target's mean and standard
        deviation; what turns the model's outputs into answers."""
        return self.root / "target.json"

    @property
    def inputs(self) -> Path:
        """The input preprocessing fitted on the training split (`Modality.fit_inputs`: a table's encoder);
        absent for modalities that fit none."""
        return self.root / "inputs.json"

    @property
    def training_stats(self) -> Path:
        """What the training inputs looked like (`core.training_stats`), for Predict's "unlike the training
        data" hints."""
        return self.root / "training_stats.json"

    @property
    def predictions(self) -> Path:
        """Validation-set predictions of the best model: what Evaluate and Explain start from."""
        return self.root / "predictions.json"

    @property
    def test_predictions(self) -> Path:
        """Test-set predictions of the best model, same schema as `predictions`; only for a dataset
        whose own split has a test part (`core.data.split_for`), never mixed into validation."""
        return self.root / "test_predictions.json"

    @property
    def log(self) -> Path:
        return self.root / "worker.log"

    def write_json(self, path: Path, value: Any) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(value))
        tmp.replace(path)

    def read_json(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise GlassboxError(f"{path.name} is missing: has the run finished?") from None


def load_model(files: RunFiles, cache_dir: Path) -> tuple[nn.Module, TrainConfig, list[str]]:
    """The trained model in eval mode on the CPU, rebuilt from the run's config and best weights.

    Rebuilding with `weights="none"` means no pretrained source is needed to reload a run.
    """
    from safetensors.torch import load_file

    from core import tasks
    from core.models import create_model

    if not files.weights.exists():
        raise GlassboxError("this run has no trained weights yet")
    config = TrainConfig.load(files.config)
    state = target_state(files)
    inputs = files.read_json(files.inputs) if files.inputs.exists() else None
    model = create_model(config.updated(weights="none"), tasks.of_run(config).outputs(state), cache_dir, inputs)
    classes = list(state.get("classes", []))
    model.load_state_dict(load_file(str(files.weights)))
    if files.preprocessing.exists():
        model.pretrained_cfg = {**model.pretrained_cfg, **files.read_json(files.preprocessing)}
    return model.eval(), config, classes


def target_state(files: RunFiles) -> dict[str, Any]:
    """The run's task state (`Task.state`); runs made before tasks existed kept only labels.json."""
    if files.target.exists():
        return files.read_json(files.target)
    return {"classes": files.read_json(files.labels)}


def save_preprocessing(files: RunFiles, model: nn.Module) -> None:
    """Keep what `load_model` needs to feed a rebuilt model the pixels training fed it."""
    pretrained_cfg = getattr(model, "pretrained_cfg", None)
    if isinstance(pretrained_cfg, dict):
        kept = {k: pretrained_cfg[k] for k in ("mean", "std", "interpolation") if k in pretrained_cfg}
        files.write_json(files.preprocessing, kept)
