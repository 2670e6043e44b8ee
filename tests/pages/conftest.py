"""Fixtures for the page tests: a fresh workspace per test (the root conftest's `ws`/`store`, which set
GLASSBOX_HOME and HF_HUB_OFFLINE), Streamlit's process-wide caches emptied between tests, no worker
processes, and small datasets and runs fabricated on the fly."""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import streamlit as st
import torch
from PIL import Image
from safetensors.torch import save_file
from streamlit.testing.v1 import AppTest

from core import data, datasets
from core.artifacts import RunFiles
from core.config import TrainConfig
from core.jobs.local import LocalBackend
from core.models import create_model
from core.store import DatasetRecord, RunRecord, Store
from core.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("circle", "cross", "square")


@pytest.fixture(autouse=True)
def _fresh_caches(ws: Workspace) -> Iterator[None]:
    """AppTest runs in this process, where `st.cache_resource` would hand the next test the previous
    test's workspace (ui.shell caches the Studio); so every test starts with empty caches."""
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def no_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs stay queued: the local backend starts no worker process."""
    monkeypatch.setattr(LocalBackend, "dispatch", lambda self: None)


def open_page(page: str | None = None) -> AppTest:
    """The app as a browser opens it: the entry script first (so page links resolve), then `page`."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    if page is not None:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def png(kind: str, index: int, size: int = 16) -> bytes:
    """A small drawing of `kind` with a little noise, so no two images are identical."""
    rng = np.random.default_rng(index + 100 * CLASSES.index(kind) if kind in CLASSES else index)
    pixels = rng.integers(0, 40, size=(size, size), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    centre = (size - 1) / 2
    if kind == "circle":
        mask = np.hypot(yy - centre, xx - centre) < size / 3
    elif kind == "cross":
        mask = (abs(yy - xx) < 2) | (abs(yy + xx - size + 1) < 2)
    else:
        mask = (abs(yy - centre) < size / 3) & (abs(xx - centre) < size / 3)
    pixels[mask] = 220
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    return buffer.getvalue()


def zip_bytes(per_class: int = 6, extra: dict[str, bytes] | None = None) -> bytes:
    """A zip of `shapes/<class>/<n>.png`, 3 classes, plus any `extra` entries (by name)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for kind in CLASSES:
            for i in range(per_class):
                archive.writestr(f"shapes/{kind}/{i:02d}.png", png(kind, i))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def dataset(ws: Workspace, store: Store, tmp_path: Path) -> DatasetRecord:
    """A 3-class x 6-image dataset added through the library, as an upload would be."""
    path = tmp_path / "shapes.zip"
    path.write_bytes(zip_bytes())
    return datasets.add(ws, store, path)


def fabricate_run(store: Store, dataset: DatasetRecord, status: str = "completed", epochs: int = 3,
                  backbone: str = "efficientnet_lite0", **values: Any) -> RunRecord:
    """A run record as the worker would have left it, without training anything."""
    run_id = f"run-test-{status}-{time.time_ns() % 10**9}"
    record = RunRecord(
        id=run_id, dataset_id=dataset.id, modality=dataset.modality, backbone=backbone, status=status,
        config={"dataset_id": dataset.id, "modality": dataset.modality, "backbone": backbone, "epochs": epochs,
                "lr": 0.001},
        backend="local", created_at=time.time(), total_epochs=epochs,
    )
    store.add_run(record)
    if values:
        store.update_run(run_id, **values)
    return store.get_run(run_id)


def write_predictions(ws: Workspace, run: RunRecord, items: list[int], labels: list[int], preds: list[int],
                      confidence: float = 0.8, classes: tuple[str, ...] = CLASSES) -> dict[str, Any]:
    """labels.json and predictions.json as the worker writes them: `items` are dataset item indices,
    each predicted as `preds[i]` at about `confidence`, the rest of the probability shared out."""
    files = RunFiles(ws.run_dir(run.id))
    files.root.mkdir(parents=True, exist_ok=True)
    n = len(classes)
    probs = []
    for i, p in enumerate(preds):
        row = [(1 - confidence - 0.01 * (i % 3)) / (n - 1)] * n
        row[p] = confidence + 0.01 * (i % 3)
        probs.append(row)
    predictions = {"items": items, "labels": labels, "probs": probs}
    files.write_json(files.labels, list(classes))
    files.write_json(files.predictions, predictions)
    files.config.write_text(json.dumps(run.config))
    return predictions


TEXT_CLASSES = ("bad", "good")


def reviews_csv(rows: int = 20) -> bytes:
    """A CSV of short reviews whose label follows one word ("awful" or "lovely"), two classes."""
    lines = ["review,verdict"] + [
        f"review {i} of the product was {'lovely' if i % 2 else 'awful'} overall,{TEXT_CLASSES[i % 2]}"
        for i in range(rows)
    ]
    return "\n".join(lines).encode("utf-8")


@pytest.fixture
def text_dataset(ws: Workspace, store: Store, tmp_path: Path) -> DatasetRecord:
    path = tmp_path / "reviews.csv"
    path.write_bytes(reviews_csv())
    return datasets.add(ws, store, path)


@pytest.fixture(scope="session")
def minilm_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pip-shipped MiniLM with a seeded, untrained 2-class head, saved once for every text run."""
    from core.models.text import DEFAULT_BACKBONE

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("minilm") / "model.safetensors"
    config = TrainConfig(dataset_id="test", modality="text", backbone=DEFAULT_BACKBONE)
    model = create_model(config, len(TEXT_CLASSES), tmp_path_factory.mktemp("cache"))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def fabricate_text_run(ws: Workspace, store: Store, dataset: DatasetRecord, weights: Path,
                       preds: list[int]) -> RunRecord:
    """A completed text run over the first len(preds) items of `dataset`, predicted as `preds`, with
    real (untrained) MiniLM weights so that explaining and predicting work."""
    from core.models.text import DEFAULT_BACKBONE

    run = fabricate_run(store, dataset, "completed", backbone=DEFAULT_BACKBONE,
                        metrics={"val_accuracy": 0.5, "best_epoch": 1})
    texts = data.modality("text").items(ws.dataset_dir(dataset.id), dataset.info)
    items = list(range(len(preds)))
    labels = [TEXT_CLASSES.index("good" if "lovely" in texts[i] else "bad") for i in items]
    write_predictions(ws, run, items, labels, preds, classes=TEXT_CLASSES)
    files = RunFiles(ws.run_dir(run.id))
    config = TrainConfig(dataset_id=dataset.id, modality="text", backbone=DEFAULT_BACKBONE, max_length=32)
    files.config.write_text(config.to_json())
    shutil.copyfile(weights, files.weights)
    return run


# dataset items are sorted by path: circle 0-5, cross 6-11, square 12-17; three of each are "validation"
EXPLAIN_ITEMS = [0, 1, 2, 6, 7, 8, 12, 13, 14]
EXPLAIN_LABELS = [0, 0, 0, 1, 1, 1, 2, 2, 2]
EXPLAIN_PREDS = [0, 0, 1, 1, 1, 1, 2, 0, 2]  # positions 2 and 7 are mistakes, at 0.82 and 0.81


@pytest.fixture
def explainable(ws: Workspace, store: Store, dataset: DatasetRecord) -> RunRecord:
    """A completed run as the worker leaves it, with a tiny model's weights (64 px: a 2x2 last feature map)."""
    run = fabricate_run(store, dataset, "completed", metrics={"val_accuracy": 7 / 9, "best_epoch": 1})
    write_predictions(ws, run, EXPLAIN_ITEMS, EXPLAIN_LABELS, EXPLAIN_PREDS)
    files = RunFiles(ws.run_dir(run.id))
    config = TrainConfig(dataset_id=dataset.id, backbone="test_efficientnet", weights="none", image_size=64)
    files.config.write_text(config.to_json())
    torch.manual_seed(0)
    save_file(create_model(config, len(CLASSES), ws.cache_dir).state_dict(), str(files.weights))
    return run


def dataset_named(store: Store, name: str) -> DatasetRecord:
    """The stored dataset called `name`."""
    return next(d for d in store.list_datasets() if d.name == name)


def run_on(store: Store, name: str) -> RunRecord:
    """The run trained on the dataset called `name`."""
    dataset = dataset_named(store, name)
    return next(r for r in store.list_runs() if r.dataset_id == dataset.id)


def predictions_of(ws: Workspace, run: RunRecord) -> dict[str, Any]:
    """A run's saved validation predictions (predictions.json)."""
    return json.loads(RunFiles(ws.run_dir(run.id)).predictions.read_text())


def metrics_shown(at: AppTest) -> dict[str, str]:
    """The page's st.metric values by label."""
    return {m.label: m.value for m in at.metric}


def charts_by_title(at: AppTest) -> dict[str, dict[str, Any]]:
    """The page's Plotly figures (their JSON specs) by title."""
    found = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = spec["layout"].get("title", {})
        found[title.get("text", "") if isinstance(title, dict) else str(title)] = spec
    return found


@dataclass(frozen=True)
class Planned:
    """A dataset to add to a template workspace and the quick run to train on it: the file, its name, the ingest
    `options`, the modality (None: detected), the backbone and the run's settings beyond the Quick preset."""

    path: Path
    name: str
    options: dict[str, Any]
    modality: str | None = None
    backbone: str = "mlp"
    settings: dict[str, Any] = field(default_factory=dict)


def train_template(home: Path, planned: Sequence[Planned]) -> Path:
    """A workspace at `home` holding each planned dataset and a completed Quick run on it, trained by the worker in
    this process (no worker process is started): the template a module's tests copy (`copy_template`)."""
    from core import runs, worker
    from core.training.presets import apply

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GLASSBOX_HOME", str(home))
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(LocalBackend, "dispatch", lambda self: None)
        ws = Workspace.from_env()
        ws.ensure()
        store = Store(ws.db_path)
        for plan in planned:
            record = datasets.add(ws, store, plan.path, name=plan.name, modality=plan.modality, options=plan.options)
            config = apply(TrainConfig(dataset_id=record.id, modality=record.modality, backbone=plan.backbone,
                                       task=record.info["task"]), "quick").updated(**plan.settings)
            run = runs.create(ws, store, config)
            worker.main(run.id)
            assert store.get_run(run.id).status == "completed", store.get_run(run.id).error
    return home


def copy_template(template: Path, ws: Workspace) -> Store:
    """This test's workspace as a copy of a `train_template` workspace (tests may add datasets and start runs)."""
    shutil.copytree(template, ws.home, dirs_exist_ok=True)
    return Store(ws.db_path)
