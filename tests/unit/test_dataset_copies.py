"""The same upload twice is one dataset: `core.datasets.add` knows an upload by its content hash and ingest
choices, refuses a copy by naming the stored dataset, and `train --data` trains on the stored one."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from core import datasets
from core.cli import main
from core.data.labels import MERGE_OPTION
from core.jobs.local import LocalBackend
from core.store import Store
from core.workspace import Workspace
from tests.conftest import colour_images


def _zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for cls, filename, data in colour_images(n_per_class=4):
            archive.writestr(f"colours/{cls}/{filename}", data)
    return path


def test_the_same_bytes_again_name_the_stored_dataset(ws: Workspace, store: Store, tmp_path: Path) -> None:
    source = _zip(tmp_path / "colours.zip")
    first = datasets.add(ws, store, source)
    assert first.info["source"] == {"sha256": hashlib.sha256(source.read_bytes()).hexdigest(), "options": {}}

    copy = tmp_path / "elsewhere" / "renamed.zip"
    copy.parent.mkdir()
    shutil.copy(source, copy)
    with pytest.raises(datasets.DuplicateDatasetError) as caught:
        datasets.add(ws, store, copy, name="another name")
    assert caught.value.existing.id == first.id
    assert str(caught.value).startswith(f"renamed.zip is identical to the dataset colours ({first.id}, added ")
    assert str(caught.value).endswith(f"): nothing was added; use {first.id}")
    assert [d.id for d in store.list_datasets()] == [first.id]
    assert list(ws.staging_dir.iterdir()) == []


def test_other_choices_or_other_bytes_make_a_new_dataset(ws: Workspace, store: Store, tmp_path: Path) -> None:
    source = _zip(tmp_path / "colours.zip")
    first = datasets.add(ws, store, source)
    merged = datasets.add(ws, store, source, options={MERGE_OPTION: True})
    with zipfile.ZipFile(source, "a") as archive:
        archive.writestr("colours/red/extra.png", next(colour_images(n_per_class=1, seed=7))[2])
    grown = datasets.add(ws, store, source)
    assert len({first.id, merged.id, grown.id}) == 3
    assert (grown.info["num_items"], merged.info["source"]["options"]) == (13, {MERGE_OPTION: True})


def test_a_folder_copied_elsewhere_is_the_same_dataset(ws: Workspace, store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "colours"
    for cls, filename, data in colour_images(n_per_class=4):
        (folder / cls).mkdir(parents=True, exist_ok=True)
        (folder / cls / filename).write_bytes(data)
    first = datasets.add(ws, store, folder)
    shutil.copytree(folder, tmp_path / "copy" / "colours")
    with pytest.raises(datasets.DuplicateDatasetError) as caught:
        datasets.add(ws, store, tmp_path / "copy" / "colours")
    assert caught.value.existing.id == first.id


def test_cli_refuses_a_copy_with_the_id_and_train_uses_the_stored_one(
    ws: Workspace, store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _zip(tmp_path / "colours.zip")
    assert main(["datasets", "add", str(source), "--json"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["dataset_id"]

    assert main(["datasets", "add", str(source)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"error: colours.zip is identical to the dataset colours ({first}, added ")
    assert err.endswith(f"): nothing was added; use {first}\n") and err.count("\n") == 1

    monkeypatch.setattr(LocalBackend, "dispatch", lambda self: None)  # the run stays queued
    assert main(["train", "--data", str(source), "--backbone", "test_efficientnet", "--weights", "none",
                 "--detach", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == f"dataset {first} (colours): the same file, already stored\n"
    assert json.loads(out.strip().splitlines()[-1])["dataset_id"] == first
    assert [d.id for d in store.list_datasets()] == [first]
