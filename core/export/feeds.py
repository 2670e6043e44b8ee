"""A run's real items as ONNX feeds: numpy arrays keyed by the exported graph's input names, read exactly as
the run's validation read them (the modality's `datasets`, the run's split and fitted `inputs.json`), so that
the ONNX checks and the quantisation figures are measured on what the model was judged on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import GlassboxError

if TYPE_CHECKING:
    from torch import nn

    from core.config import TrainConfig
    from core.store import Store
    from core.workspace import Workspace

__all__ = ["PARTS", "Feeds", "read_feeds", "validation_feeds"]

PARTS = ("val", "train", "test")
_BATCH = 64  # items per feed batch


@dataclass
class Feeds:
    """`batches`: ONNX input name -> batch-major array (float32 or int64 or bool, as the graph takes it), one
    dict per batch; `targets`: every item's target in feed order (class indices [n], values [n] or a forecast's
    [n, H], in the target's units, as the run's predictions files hold them); `items`: each item's index into
    the dataset's items (`Modality.items`), in feed order."""

    batches: list[dict[str, np.ndarray]]
    targets: np.ndarray
    items: list[int]

    def __len__(self) -> int:
        return len(self.items)


def validation_feeds(ws: Workspace, store: Store, run_id: str, part: str = "val", limit: int | None = None) -> Feeds:
    """The run's `part` items ("val", "test", or "train": training items read like validation's, never
    augmented) as ONNX feeds, at most `limit` of them (the first ones in the split's order).

    Loads the run's model (its datasets need it: a text run's tokenizer, a table run's encoder). Raises
    GlassboxError when the run has no weights, its dataset was deleted, or it has no such part (a test split
    the user did not make)."""
    from core.artifacts import RunFiles, load_model

    files = RunFiles(ws.run_dir(run_id))
    model, config, _ = load_model(files, ws.cache_dir)
    return read_feeds(ws, store, config, model, part, limit)


def read_feeds(ws: Workspace, store: Store, config: TrainConfig, model: nn.Module, part: str,
               limit: int | None = None) -> Feeds:
    """`validation_feeds` for a model already loaded (eval mode, CPU)."""
    import torch
    from torch.utils.data import DataLoader, Subset

    from core import data
    from core.data import Split
    from core.export.onnx import adapter

    if part not in PARTS:
        raise GlassboxError(f"unknown part {part!r} (known: {', '.join(PARTS)})")
    dataset_dir, info = _dataset(ws, store, config)
    modality = data.modality(config.modality)
    split = data.split_for(modality, dataset_dir, info, config)
    indices = {"val": split.val, "train": split.train, "test": split.test}[part]
    if not indices:
        raise GlassboxError(f"the run has no {part} items" + (" (no test split was made)" if part == "test" else ""))
    # the validation part of a split is read without augmentation: training items are read that way too
    dataset = modality.datasets(dataset_dir, info, config, Split([], indices, source=split.source), model)[1]
    count = len(indices) if limit is None else min(limit, len(indices))
    loader = DataLoader(Subset(dataset, range(count)) if count < len(indices) else dataset, batch_size=_BATCH,
                        shuffle=False, collate_fn=getattr(dataset, "collate", None))
    how = adapter(config.modality)
    batches: list[dict[str, np.ndarray]] = []
    targets: list[np.ndarray] = []
    with torch.no_grad():
        for inputs, batch_targets in loader:
            batches.append(how.feed(model, inputs))
            targets.append(batch_targets.numpy())
    return Feeds(batches, np.concatenate(targets), list(indices[:count]))


def _dataset(ws: Workspace, store: Store, config: TrainConfig) -> tuple[Path, dict[str, Any]]:
    try:
        dataset = store.get_dataset(config.dataset_id)
    except GlassboxError:
        raise GlassboxError(f"the run's dataset {config.dataset_id} was deleted: its validation items cannot be "
                            "read to check the export") from None
    return ws.dataset_dir(dataset.id), dataset.info
