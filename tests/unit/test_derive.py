"""`core.datasets.derive`: a dataset without the items a user left out, naming its parent, which stays as it was."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest

from core import data, datasets
from core.errors import GlassboxError
from core.store import RunRecord, Store
from core.workspace import Workspace
from tests.conftest import colour_images


def _zip(path: Path, per_class: int, split: bool = False) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for cls, filename, png in colour_images(per_class, size=16):
            part = ("train/" if int(filename.split("_")[1][:-4]) % 2 else "valid/") if split else ""
            archive.writestr(f"colours/{part}{cls}/{filename}", png)
    return path


def test_derived_images_lack_the_excluded_items_and_name_their_parent(ws: Workspace, store: Store,
                                                                      tmp_path: Path) -> None:
    parent = datasets.add(ws, store, _zip(tmp_path / "colours.zip", 4), name="colours")
    images = data.modality("images")
    parent_items = images.items(ws.dataset_dir(parent.id), parent.info)
    run = RunRecord(id="run-on-parent", dataset_id=parent.id, modality="images", backbone="efficientnet_lite0",
                    status="completed", config={"dataset_id": parent.id}, backend="local", created_at=time.time())
    store.add_run(run)

    child = datasets.derive(ws, store, parent.id, {1: "mislabelled", 6: "exclude"})

    assert parent_items[1] == "images/blue/blue_1.png" and parent_items[6] == "images/green/green_2.png"
    kept = [item for i, item in enumerate(parent_items) if i not in (1, 6)]
    child_dir = ws.dataset_dir(child.id)
    assert images.items(child_dir, child.info) == kept
    assert images.labels(child_dir, child.info) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert sorted(p.relative_to(child_dir).as_posix() for p in (child_dir / "images").rglob("*.png")) == sorted(kept)
    assert child.name == "colours without 2 item(s)"
    assert child.info["parent"] == parent.id and "source" not in child.info, "not taken for a copy of the upload"
    assert child.info["counts"] == {"blue": 3, "green": 3, "red": 4} and child.info["num_items"] == 10
    assert child.info["samples"]["blue"] == ["images/blue/blue_0.png", "images/blue/blue_2.png",
                                             "images/blue/blue_3.png"]
    assert child.info["excluded"] == [
        {"item": "images/blue/blue_1.png", "label": "blue", "reason": "mislabelled"},
        {"item": "images/green/green_2.png", "label": "green", "reason": "exclude"},
    ]
    # the parent and its run are untouched
    assert images.items(ws.dataset_dir(parent.id), store.get_dataset(parent.id).info) == parent_items
    assert (ws.dataset_dir(parent.id) / "images/blue/blue_1.png").is_file()
    assert store.get_dataset(parent.id).info == parent.info
    assert store.get_run("run-on-parent").dataset_id == parent.id


def test_a_kept_split_keeps_its_rows(ws: Workspace, store: Store, tmp_path: Path) -> None:
    parent = datasets.add(ws, store, _zip(tmp_path / "split.zip", 4, split=True))
    assert parent.info["split"]["counts"] == {"train": 6, "val": 6, "test": 0}
    # items sort by path: images/blue/train/blue_1.png, .../train/blue_3.png, .../valid/blue_0.png, ...
    child = datasets.derive(ws, store, parent.id, {0: "exclude", 2: "exclude"})
    assert child.info["split"]["counts"] == {"train": 5, "val": 5, "test": 0}
    split = (ws.dataset_dir(child.id) / "split.csv").read_text(encoding="utf-8").splitlines()
    assert split[:3] == ["relpath,split", "images/blue/train/blue_3.png,train", "images/blue/valid/blue_2.png,val"]
    assert len(split) == 1 + 10


def test_texts_are_derived_too(ws: Workspace, store: Store, tmp_path: Path) -> None:
    source = tmp_path / "reviews.csv"
    source.write_text("text,label\n" + "".join(f"review number {i},{'good' if i % 2 else 'bad'}\n" for i in range(8)))
    parent = datasets.add(ws, store, source)
    child = datasets.derive(ws, store, parent.id, {0: "mislabelled", 3: "exclude"}, name="fewer reviews")
    texts = data.modality("text").items(ws.dataset_dir(child.id), child.info)
    assert texts == [f"review number {i}" for i in (1, 2, 4, 5, 6, 7)]
    assert child.name == "fewer reviews" and child.info["counts"] == {"bad": 3, "good": 3}
    assert child.info["samples"]["bad"] == ["review number 2", "review number 4", "review number 6"]


@pytest.mark.parametrize(("exclude", "reason"), [
    ({}, "no item is left out: the new dataset would be colours again"),
    ({99: "exclude"}, "dataset colours has no item 99 (it has 6)"),
    ({0: "exclude", 1: "exclude", 2: "exclude", 3: "exclude"}, "leaving out 4 item(s) of colours leaves fewer than 2 "
                                                               "classes"),
])
def test_refusals_say_why_and_leave_nothing(ws: Workspace, store: Store, tmp_path: Path, exclude: dict[int, str],
                                            reason: str) -> None:
    parent = datasets.add(ws, store, _zip(tmp_path / "colours.zip", 2), name="colours")
    with pytest.raises(GlassboxError) as caught:
        datasets.derive(ws, store, parent.id, exclude)
    assert str(caught.value) == reason
    assert [d.id for d in store.list_datasets()] == [parent.id]
    assert list(ws.staging_dir.iterdir()) == []
