"""Shared fixtures: an isolated workspace per test and small image data sets built on the fly."""

from __future__ import annotations

import io
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from core.models import weights
from core.store import Store
from core.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    home = tmp_path / "home"
    monkeypatch.setenv("GLASSBOX_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return Workspace.from_env()


@pytest.fixture
def store(ws: Workspace) -> Store:
    return Store(ws.db_path)


def colour_images(n_per_class: int = 24, size: int = 32, seed: int = 0) -> Iterator[tuple[str, str, bytes]]:
    """(class, filename, PNG bytes): each class is a dominant colour with noise, learnable in a few steps."""
    rng = np.random.default_rng(seed)
    palette = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}
    for name, colour in palette.items():
        for i in range(n_per_class):
            pixels = np.clip(rng.normal(colour, 40, size=(size, size, 3)), 0, 255).astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="PNG")
            yield name, f"{name}_{i}.png", buffer.getvalue()


@pytest.fixture
def colour_zip(tmp_path: Path) -> Path:
    path = tmp_path / "colours.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for cls, filename, data in colour_images():
            archive.writestr(f"colours/{cls}/{filename}", data)
    return path


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[Any, ...]]:
    """Empty Hugging Face and torch caches, and a hub probe that records its calls and always fails: what
    a machine that never downloaded a model looks like, whatever this one has cached."""
    probes: list[tuple[Any, ...]] = []

    def refuse(*args: Any, **kwargs: Any) -> socket.socket:
        probes.append(args)
        raise OSError("no network in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    weights._probe_hub.cache_clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    yield probes
    weights._probe_hub.cache_clear()
