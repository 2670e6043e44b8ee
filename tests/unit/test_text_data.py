"""The text modality on real files written to disk: encodings and delimiters as spreadsheets and
scripts write them, column suggestion, every refusal, and the warnings for suspicious data."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pytest

from core import data, datasets
from core.data import BadFilesError
from core.data.text import BadRowsError, TextModality, preview, read_texts
from core.errors import GlassboxError
from core.models import shipped
from core.store import Store
from core.workspace import Workspace
from tests.conftest import ROOT

SAMPLE = ROOT / "sample_data" / "drugreviews.csv"
# accents, a currency sign and typographic quotes: what breaks when an encoding is guessed wrong
TEXTS = {
    "pos": ["Café was great, really “lovely”", "Naïve but charming; I’d go back", "Brilliant service at Zürich"],
    "neg": ["Cold food, rude staff", "Overpriced at 30 € per plate", "Never again; awful crème brûlée"],
}


def _rows() -> list[tuple[str, str]]:
    return [(text, label) for label, texts in TEXTS.items() for text in texts]


def _write(path: Path, rows: list[tuple[str, ...]], delimiter: str = ",", encoding: str = "utf-8",
           header: tuple[str, ...] = ("text", "label")) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def _ingest(source: Path, tmp_path: Path, **kwargs: object) -> tuple[dict, Path]:
    dest = tmp_path / "dataset"
    info = TextModality().ingest(source, dest, **kwargs)  # type: ignore[arg-type]
    return info, dest


def _messages(info: dict) -> str:
    return " | ".join(p["message"] for p in info["problems"])


@pytest.mark.parametrize(
    ("codec", "expected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("utf-16", "utf-16"), ("cp1252", "cp1252")],
)
def test_encodings_are_detected_and_texts_survive(tmp_path: Path, codec: str, expected: str) -> None:
    source = _write(tmp_path / "reviews.csv", _rows(), encoding=codec)
    if codec == "utf-16":
        assert source.read_bytes().startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    info, dest = _ingest(source, tmp_path)
    assert info["encoding"] == expected
    assert info["classes"] == ["neg", "pos"] and info["counts"] == {"neg": 3, "pos": 3}
    # the dataset keeps the texts as typed, as UTF-8, whatever the upload's encoding
    assert sorted(TextModality().items(dest, info)) == sorted(text for text, _ in _rows())
    assert (dest / "items.csv").read_text(encoding="utf-8").startswith("text,label")


def test_latin1_without_windows_only_characters_is_reported_as_latin1(tmp_path: Path) -> None:
    rows = [("Café crème très bon", "pos"), ("Très déçu, à éviter", "neg"), ("Service génial", "pos"),
            ("Plat froid, garçon impoli", "neg")]
    source = _write(tmp_path / "avis.csv", rows, encoding="latin-1")
    info, dest = _ingest(source, tmp_path)
    assert info["encoding"] == "latin-1"
    assert "Très déçu, à éviter" in TextModality().items(dest, info)


def test_utf16_without_bom_is_recognised(tmp_path: Path) -> None:
    source = _write(tmp_path / "reviews.csv", _rows(), encoding="utf-16-le")
    info, _ = _ingest(source, tmp_path)
    assert info["encoding"] == "utf-16-le"


@pytest.mark.parametrize(("delimiter", "suffix"), [(",", ".csv"), (";", ".csv"), ("\t", ".tsv"), ("\t", ".txt"),
                                                   ("|", ".csv")])
def test_delimiters_are_detected_even_when_texts_contain_the_others(
    tmp_path: Path, delimiter: str, suffix: str
) -> None:
    # texts carry commas and semicolons, unquoted wherever the delimiter allows it
    source = _write(tmp_path / f"reviews{suffix}", _rows(), delimiter=delimiter)
    info, dest = _ingest(source, tmp_path)
    assert info["delimiter"] == delimiter
    assert info["num_items"] == 6
    assert "Naïve but charming; I’d go back" in TextModality().items(dest, info)


def test_real_drug_review_tsv_suggests_review_and_rating(tmp_path: Path) -> None:
    """The UCI Drugs.com file as distributed: an unnamed index column, quoted reviews with line breaks."""
    source = Path(__file__).resolve().parents[1] / "fixtures" / "drugsComTest.tsv"
    shown = preview(source)
    assert shown["delimiter"] == "\t" and shown["encoding"] == "utf-8"
    assert shown["columns"][0] == "column 1"
    assert (shown["text_column"], shown["label_column"]) == ("review", "rating")
    assert len(shown["head"]) == 5 and shown["head"][0]["rating"] in {"positive", "negative", "neutral"}
    info, _ = _ingest(source, tmp_path)
    assert info["classes"] == ["negative", "neutral", "positive"]
    assert info["num_items"] == 379 and info["text_column"] == "review"


def test_sample_data_is_detected_as_text_and_ingests_cleanly(tmp_path: Path) -> None:
    assert data.detect(SAMPLE).name == "text"
    info, _ = _ingest(SAMPLE, tmp_path)
    assert info["counts"] == {"negative": 256, "positive": 632}
    assert info["dropped"] == []
    # lengths are counted in the default backbone's tokens, which is what a max length cuts
    length = info["length"]
    assert length["unit"] == "tokens" and length["tokenizer"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert length["median"] > length["words_median"] > 50  # word pieces and [CLS]/[SEP]: more tokens than words
    assert sum(info["length_histogram"]["counts"]) == info["num_items"]
    assert info["length_histogram"]["edges"][-1] == length["max"]
    [problem] = info["problems"]
    assert problem["message"].startswith(f"{length['over_default_max']} of 888 text(s) are longer than 128 tokens")
    assert {len(v) for v in info["samples"].values()} == {5}


def test_column_suggestion_by_name_and_by_content(tmp_path: Path) -> None:
    named = _write(tmp_path / "named.csv", [(str(i), text, label, "2024") for i, (text, label) in enumerate(_rows())],
                   header=("id", "comment", "sentiment", "year"))
    assert (preview(named)["text_column"], preview(named)["label_column"]) == ("comment", "sentiment")
    # no telling names: the wordiest column is the text, the one with few distinct values the label
    unnamed = _write(tmp_path / "unnamed.csv", [(label, text) for text, label in _rows()], header=("a", "b"))
    assert (preview(unnamed)["text_column"], preview(unnamed)["label_column"]) == ("b", "a")
    # the user's choice wins, and the other column is suggested around it
    info, _ = _ingest(named, tmp_path, options={"label_column": "Sentiment"})
    assert (info["text_column"], info["label_column"]) == ("comment", "sentiment")


def test_detection_leaves_other_files_to_other_modalities(tmp_path: Path, colour_zip: Path) -> None:
    assert data.detect(colour_zip).name == "images"
    binary = tmp_path / "blob.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    assert not TextModality().accepts(binary)
    with pytest.raises(GlassboxError, match="not a dataset Glassbox can read"):
        data.detect(binary)
    # a CSV of one column is still a CSV: reading it names the missing column
    single = tmp_path / "words.csv"
    single.write_text("text\nhello\nworld\n")
    assert data.detect(single).name == "text"


def _refused(tmp_path: Path, name: str, content: bytes | str, match: str, **kwargs: object) -> None:
    source = tmp_path / name
    source.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    with pytest.raises(GlassboxError, match=match) as caught:
        TextModality().ingest(source, tmp_path / "dataset", **kwargs)  # type: ignore[arg-type]
    assert not isinstance(caught.value, BadFilesError)
    assert not (tmp_path / "dataset").exists()  # a refused upload leaves nothing behind


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.csv", "", "is empty"),
        ("blank.csv", "\r\n  \n", "is empty"),
        ("header.csv", "text,label\n", "header row but no data rows"),
        ("one_column.csv", "text\ngood\nbad\n", r"one column \('text'\): a label column is missing"),
        ("binary.csv", b"text,label\n\x00\x01\x02,x\n", "binary data"),
        ("broken_utf16.csv", codecs.BOM_UTF16_LE + b"t\x00e\x00x\x00t\x00\x00\xd8", "not valid"),
        ("notes.json", '{"text": "label"}', "upload a CSV or TSV"),
        ("one_class.csv", "text,label\ngood film,pos\ngreat film,pos\nfine film,pos\n", "only one class 'pos'"),
        ("lonely.csv", "text,label\ngood,pos\ngreat,pos\nbad,neg\n", "'neg' have only 1 row"),
        ("ids.csv", "text,label\n" + "".join(f"review number {i},{i}\n" for i in range(20)), "have only 1 row"),
        ("unlabelled.csv", "text,label\na,x\nb,\nc,\nd,y\ne,\n", "'label' is empty in 3 of 5 rows"),
        ("untexted.csv", "text,label\n,x\n,y\n,x\nd,y\n", "'text' is empty in 3 of 4 rows"),
        ("no_labels.csv", "text,notes\n" + "".join(f"text {i},note {i}\n" for i in range(6)), "no column looks like"),
    ],
)
def test_refusals(tmp_path: Path, name: str, content: bytes | str, match: str) -> None:
    _refused(tmp_path, name, content, match)


def test_refusals_of_the_chosen_columns(tmp_path: Path) -> None:
    source = _write(tmp_path / "reviews.csv", _rows())
    with pytest.raises(GlassboxError, match="no column 'review'.*columns: text, label"):
        TextModality().ingest(source, tmp_path / "a", options={"text_column": "review"})
    with pytest.raises(GlassboxError, match="both 'text'"):
        TextModality().ingest(source, tmp_path / "b", options={"text_column": "text", "label_column": "text"})
    with pytest.raises(GlassboxError, match="unknown text option.*txt_column"):
        TextModality().ingest(source, tmp_path / "c", options={"txt_column": "text"})


def test_unusable_rows_are_the_users_call(tmp_path: Path) -> None:
    rows = [*_rows(), ("", "pos"), ("lovely place", ""), ("too", "many", "fields")]
    source = _write(tmp_path / "reviews.csv", rows)  # type: ignore[arg-type]
    with pytest.raises(BadRowsError) as caught:
        TextModality().ingest(source, tmp_path / "refused")
    assert caught.value.bad == [("line 8", "empty text"), ("line 9", "no label"),
                                ("line 10", "3 fields, the header has 2")]
    assert str(caught.value).startswith("3 rows cannot be used: line 8 (empty text)")
    assert not (tmp_path / "refused").exists()

    info, _ = _ingest(source, tmp_path, drop_bad=True)
    assert info["num_items"] == 6 and info["dropped"] == ["line 8", "line 9", "line 10"]
    assert "3 unusable row(s) left out: line 8, line 9, line 10" in _messages(info)


def test_duplicates_and_contradictions_are_warned_about(tmp_path: Path) -> None:
    rows = [*_rows(), ("Cold  food, rude staff", "neg"), ("Cold food, rude staff", "neg"),
            ("Brilliant service at Zürich", "neg")]
    info, dest = _ingest(_write(tmp_path / "reviews.csv", rows), tmp_path)
    # copies with the same label are left out (whitespace aside); the contradicting one stays
    assert info["num_items"] == 7 and info["counts"] == {"neg": 4, "pos": 3}
    assert TextModality().items(dest, info).count("Brilliant service at Zürich") == 2
    messages = _messages(info)
    assert "2 row(s) repeat an earlier row's text and label" in messages
    assert "1 text(s) appear with different labels (e.g. line 4: 'neg', 'pos')" in messages


def test_small_imbalanced_and_long_data_is_warned_about(tmp_path: Path) -> None:
    long_text = " ".join(["word"] * 450)
    rows = [(f"{long_text} {i}" if i < 2 else f"a fine review {i}", "pos") for i in range(12)]
    rows += [("a bad review", "neg"), ("another bad review", "neg")]
    info, _ = _ingest(_write(tmp_path / "reviews.csv", rows), tmp_path)
    messages = _messages(info)
    assert "class(es) 'neg' have fewer than 10 rows" in messages
    assert "imbalanced: 'pos' has 12 rows, 'neg' only 2" in messages
    # [CLS], 450 x "word", the number, [SEP]
    assert "2 of 14 text(s) are longer than 128 tokens, the default max length" in messages
    assert info["length"]["max"] == 453 and info["length"]["over_default_max"] == 2


def test_lengths_fall_back_to_words_without_the_shipped_tokenizer(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shipped, "text_folder", lambda name: None)
    long_text = " ".join(["word"] * 450)
    rows = [(f"{long_text} {i}" if i < 2 else f"a fine review {i}", "pos" if i % 2 else "neg") for i in range(12)]
    info, _ = _ingest(_write(tmp_path / "reviews.csv", rows), tmp_path)
    assert "2 text(s) are longer than 400 words" in _messages(info)
    assert (info["length"]["unit"], info["length"]["max"], info["length"]["tokenizer"]) == ("words", 451, None)


def test_datasets_add_passes_the_column_choice_and_keeps_it(ws: Workspace, store: Store, tmp_path: Path) -> None:
    source = _write(tmp_path / "reviews.csv", [(label, text, "x") for text, label in _rows()],
                    header=("verdict", "sentence", "source"))
    record = datasets.add(ws, store, source, options={"text_column": "sentence", "label_column": "verdict"})
    assert record.modality == "text"
    stored = store.get_dataset(record.id).info
    assert (stored["text_column"], stored["label_column"]) == ("sentence", "verdict")
    assert stored["columns"] == ["verdict", "sentence", "source"]
    assert len(TextModality().labels(ws.dataset_dir(record.id), stored)) == 6


def test_texts_to_predict_may_be_one_column(tmp_path: Path) -> None:
    quoted = tmp_path / "new.csv"
    quoted.write_text('review\n"first line\nsecond line, with a comma"\n\nplain one\n', encoding="utf-8")
    read = read_texts(quoted)
    assert (read.column, read.texts) == ("review", ["first line\nsecond line, with a comma", "plain one"])
    assert read.problems == ["", ""]
    lines = tmp_path / "new.txt"
    lines.write_bytes("Works, mostly\n\n  café au lait  \n".encode("cp1252"))
    assert (read_texts(lines).column, read_texts(lines).texts) == ("text", ["Works, mostly", "café au lait"])
    # the suggested text column of a wider file, or the one named
    wide = _write(tmp_path / "wide.csv", [(str(i), text, label) for i, (text, label) in enumerate(_rows())],
                  header=("id", "comment", "sentiment"))
    assert read_texts(wide).column == "comment" and read_texts(wide, "SENTIMENT").column == "sentiment"
    with pytest.raises(GlassboxError, match="has no column 'nope'"):
        read_texts(wide, "nope")
    # one ragged row in twenty does not turn a table into one column, and it is flagged
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("id,comment\n" + "".join(f"{i},text {i}\n" for i in range(19)) + "19,oops, a comma\n",
                      encoding="utf-8")
    read = read_texts(ragged)
    assert read.column == "comment" and read.texts[:2] == ["text 0", "text 1"] and len(read.texts) == 20
    assert read.problems[:19] == [""] * 19 and read.problems[19] == "line 21: 3 fields, the header has 2"
    # a dataset still needs a label column
    with pytest.raises(GlassboxError, match=r"one column \('review'\): a label column is missing"):
        _ingest(quoted, tmp_path)
