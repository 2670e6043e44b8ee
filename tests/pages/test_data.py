"""The Data page: the sample, a hostile zip, a zip with a broken image, preview and delete."""

from __future__ import annotations

import json

from core.store import Store
from core.workspace import Workspace
from tests.pages.conftest import open_page, zip_bytes

PAGE = "pages/1_Data.py"


def _upload(at, name: str, data: bytes) -> None:
    at.file_uploader[0].set_value((name, data, "application/zip")).run()
    assert not at.exception, at.exception


def test_empty_workspace_invites_an_upload(store: Store) -> None:
    at = open_page(PAGE)
    assert any("No datasets yet" in i.value for i in at.info)
    assert at.button(key="load_sample")


def test_load_sample_adds_the_digits_and_previews_them(store: Store) -> None:
    at = open_page(PAGE)
    at.button(key="load_sample").click().run()
    assert not at.exception, at.exception

    [record] = store.list_datasets()
    assert len(record.info["classes"]) == 10
    assert record.info["num_items"] == 400
    assert any("Added" in s.value for s in at.success)
    assert at.selectbox(key="data_selected").value == record.id
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Classes"] == "10" and metrics["Items"] == "400"
    assert at.get("plotly_chart"), "class-count chart missing"
    images = at.get("image")
    assert len(images) >= 10, "one sample row per class expected"

    # a second click selects the loaded sample instead of adding a copy
    at.button(key="load_sample").click().run()
    assert len(store.list_datasets()) == 1
    assert any("already loaded" in i.value for i in at.info)


def test_load_text_sample_adds_the_drug_reviews(store: Store) -> None:
    at = open_page(PAGE)
    at.button(key="load_sample_text").click().run()
    assert not at.exception, at.exception
    [record] = store.list_datasets()
    assert (record.name, record.modality) == ("sample-drug-reviews", "text")
    assert record.info["classes"] == ["negative", "positive"] and record.info["num_items"] == 888
    assert any("Added **sample-drug-reviews**" in s.value for s in at.success)
    # the preview: label counts, the length histogram in tokens with the max length marked, the file as read
    charts = {json.loads(c.proto.spec)["layout"]["title"]["text"]: json.loads(c.proto.spec)
              for c in at.get("plotly_chart")}
    histogram = charts["Text length (tokens)"]
    assert sum(histogram["data"][0]["y"]) == 888
    assert histogram["layout"]["shapes"][0]["x0"] == 128
    assert any("Read as utf-8, delimiter: comma; texts from column **text**, labels from **label**" in c.value
               for c in at.caption)
    assert any("longer than 128 tokens" in w.value for w in at.warning)
    at.button(key="load_sample_text").click().run()
    assert len(store.list_datasets()) == 1
    assert any("sample-drug-reviews is already loaded" in i.value for i in at.info)


def test_zip_escaping_its_folder_is_refused_and_nothing_is_added(ws: Workspace, store: Store) -> None:
    at = open_page(PAGE)
    _upload(at, "evil.zip", zip_bytes(extra={"../evil.png": b"gotcha"}))

    assert at.error, "a refusal should be shown"
    assert "evil.zip was not added" in at.error[0].value
    assert store.list_datasets() == []
    assert list(ws.staging_dir.iterdir()) == [], "the temporary upload must be deleted"
    assert list(ws.datasets_dir.iterdir()) == []
    assert not (ws.home.parent / "evil.png").exists()


def test_corrupt_image_asks_and_drop_adds_the_rest(ws: Workspace, store: Store) -> None:
    at = open_page(PAGE)
    _upload(at, "shapes.zip", zip_bytes(extra={"shapes/cross/broken.png": b"\x89PNG\r\n\x1a\nnot really"}))

    assert store.list_datasets() == []
    assert any("cannot be used" in w.value for w in at.warning)
    bad_table = at.dataframe[0].value
    assert list(bad_table["file"]) == ["shapes/cross/broken.png"]
    assert list(ws.staging_dir.iterdir()) == []

    at.button(key="drop_bad").click().run()
    assert not at.exception, at.exception
    [record] = store.list_datasets()
    assert record.info["num_items"] == 18
    assert record.info["dropped"] == ["shapes/cross/broken.png"]
    assert any("1 unusable file(s) left out" in s.value for s in at.success)
    assert not _has_key(at, "drop_bad"), "the question is gone once answered"
    assert list(ws.staging_dir.iterdir()) == []


def test_corrupt_image_cancel_adds_nothing(store: Store) -> None:
    at = open_page(PAGE)
    _upload(at, "shapes.zip", zip_bytes(extra={"shapes/cross/broken.png": b"junk"}))
    at.button(key="cancel_upload").click().run()
    assert store.list_datasets() == []
    assert any("nothing was added" in i.value for i in at.info)
    assert not _has_key(at, "drop_bad")


def test_delete_asks_first(ws: Workspace, store: Store) -> None:
    at = open_page(PAGE)
    _upload(at, "shapes.zip", zip_bytes())
    [record] = store.list_datasets()

    at.button(key="delete_dataset").click().run()
    assert len(store.list_datasets()) == 1, "nothing is deleted before the confirmation"
    at.button(key="confirm_delete_yes").click().run()
    assert not at.exception, at.exception
    assert store.list_datasets() == []
    assert not ws.dataset_dir(record.id).exists()


def _has_key(at, key: str) -> bool:
    return any(b.key == key for b in at.button)


def test_a_csv_of_texts_is_added_with_the_columns_the_user_names(store: Store) -> None:
    rows = ["note;verdict;review"] + [
        f"{i};{'good' if i % 2 else 'bad'};review number {i} says {'yes' if i % 2 else 'no'}" for i in range(20)
    ]
    at = open_page(PAGE)
    at.text_input(key="csv_text_column").set_value("review")
    at.text_input(key="csv_label_column").set_value("verdict").run()
    at.file_uploader[0].set_value(("reviews.csv", "\n".join(rows).encode("utf-8"), "text/csv")).run()
    assert not at.exception, at.exception
    [dataset] = store.list_datasets()
    assert dataset.modality == "text"
    assert (dataset.info["text_column"], dataset.info["label_column"]) == ("review", "verdict")
    assert dataset.info["classes"] == ["bad", "good"]
    # the preview shows texts, not image thumbnails
    assert any("review number" in t.value for t in at.text)


def test_similar_labels_are_named_and_the_checkbox_merges_them(store: Store) -> None:
    rows = "".join(f"good text {i},{label}\n" for i, label in enumerate(["pos", "pos", "Pos", "Pos", "neg", "neg"]))
    data = ("text,label\n" + rows).encode()
    at = open_page(PAGE)
    at.file_uploader[0].set_value(("similar.csv", data, "text/csv")).run()
    assert not at.exception, at.exception
    [kept] = store.list_datasets()
    assert kept.info["classes"] == ["Pos", "neg", "pos"]
    assert any("'Pos' (2) and 'pos' (2)" in w.value and "Merge similar labels" in w.value for w in at.warning)

    at.checkbox(key="merge_similar_labels").check().run()
    at.file_uploader[0].set_value(("similar.csv", data, "text/csv")).run()
    assert not at.exception, at.exception
    merged = next(d for d in store.list_datasets() if d.id != kept.id)
    assert merged.info["counts"] == {"neg": 2, "pos": 4}


def test_a_tsv_with_an_unclosed_quote_names_the_line(store: Store) -> None:
    lines = ["text\tlabel", "fine\tpos", "good\tpos", '"never closed\tpos', "bad\tneg", "awful\tneg", "meh\tneg"]
    at = open_page(PAGE)
    at.file_uploader[0].set_value(("odd.tsv", "\n".join(lines).encode(), "text/tab-separated-values")).run()
    assert not at.exception, at.exception
    [record] = store.list_datasets()
    assert record.info["counts"] == {"neg": 3, "pos": 3}
    assert any("line 4" in w.value and "not closed properly" in w.value for w in at.warning)


def test_uploads_in_a_row_each_add_a_dataset(store: Store) -> None:
    """A second upload right after a success, and one right after a refusal, are each added."""
    at = open_page(PAGE)
    _upload(at, "first.zip", zip_bytes(per_class=4))
    _upload(at, "second.zip", zip_bytes(per_class=5))
    assert [s.value for s in at.success] == ["Added **second**: 15 items in 3 classes."]
    _upload(at, "evil.zip", zip_bytes(extra={"../evil.png": b"gotcha"}))
    assert at.error[0].value.startswith("evil.zip was not added")
    _upload(at, "third.zip", zip_bytes(per_class=6))
    assert [s.value for s in at.success] == ["Added **third**: 18 items in 3 classes."]
    assert sorted(d.name for d in store.list_datasets()) == ["first", "second", "third"]
    assert at.subheader[0].value == "Datasets (3)"


def test_an_identical_upload_names_the_stored_dataset_and_opens_it(store: Store) -> None:
    first = zip_bytes(per_class=4)
    at = open_page(PAGE)
    _upload(at, "first.zip", first)
    _upload(at, "second.zip", zip_bytes(per_class=5))
    stored = {d.name: d for d in store.list_datasets()}
    assert at.selectbox(key="data_selected").value == stored["second"].id

    _upload(at, "copy of first.zip", first)
    assert len(store.list_datasets()) == 2
    assert not at.success
    [notice] = [i.value for i in at.info]
    assert notice.startswith(f"**copy of first.zip** is identical to the dataset **first** (`{stored['first'].id}`, "
                             "added ")
    assert notice.endswith("): nothing was added.")
    at.button(key="open_duplicate").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="data_selected").value == stored["first"].id
    assert not at.info and not _has_key(at, "open_duplicate")


def test_a_one_column_csv_names_the_missing_label_column(store: Store) -> None:
    at = open_page(PAGE)
    at.file_uploader(key="upload").set_value(("onecol.csv", b"text\ngreat stuff\nawful thing\n", "text/csv")).run()
    assert not at.exception, at.exception
    assert store.list_datasets() == []
    assert any("has one column ('text'): a label column is missing" in e.value for e in at.error)
