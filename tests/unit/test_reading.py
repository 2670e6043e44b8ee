"""The one reader of CSV/TSV/text files (core/data/reading.py) and the label rules every modality shares
(core/data/labels.py), on the real-world files of ../shared/cases and on files made here of the same kinds."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from core.data import labels as labelling
from core.data.reading import read_table
from core.data.text import BadRowsError, TextModality, preview, read_texts
from core.errors import GlassboxError

CASES = Path(__file__).resolve().parents[2].parent / "shared" / "cases"
needs_cases = pytest.mark.skipif(not CASES.is_dir(), reason="../shared/cases is not beside this checkout")


def _file(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


# ---- the shared cases ---------------------------------------------------------------------------------


@needs_cases
def test_an_unclosed_quote_is_reported_by_line_and_never_fuses_rows(tmp_path: Path) -> None:
    table = read_table(CASES / "reviews.tsv")
    assert [cells for _, cells in table.rows] == [
        ["Fast delivery, works fine", "pos"], ["Exactly what I needed", "pos"], ['"Best purchase this year', "pos"],
        ["Stopped working after a week", "neg"], ["Arrived broken", "neg"], ["Does the job", "pos"],
        ['The so-called "premium" case cracked', "neg"], ["Would not recommend", "neg"], ["Five stars", "pos"],
        ["Refund took a month", "neg"],
    ]
    assert list(table.irregular) == [4]
    info = TextModality().ingest(CASES / "reviews.tsv", tmp_path / "ds")
    assert info["num_items"] == 10 and info["counts"] == {"neg": 5, "pos": 5}
    assert any("line 4" in p["message"] and "not closed properly" in p["message"] for p in info["problems"])


@needs_cases
def test_excel_sep_line_sets_the_delimiter(tmp_path: Path) -> None:
    table = read_table(CASES / "excel_export.csv")
    assert (table.delimiter, table.columns, len(table.rows)) == (";", ["text", "label"], 12)
    assert table.rows[0] == (3, ["good product number 0", "positive"])  # lines count the sep= line
    assert "the first line 'sep=;' sets the delimiter (semicolon)" in table.notes
    info = TextModality().ingest(CASES / "excel_export.csv", tmp_path / "ds")
    assert info["counts"] == {"negative": 6, "positive": 6}


@needs_cases
@pytest.mark.parametrize(("name", "length"), [("long_110k.csv", 110_000), ("long_140k.csv", 140_000)])
def test_one_long_document_is_accepted_and_cut_with_a_warning(tmp_path: Path, name: str, length: int) -> None:
    info = TextModality().ingest(CASES / name, tmp_path / "ds")
    assert info["num_items"] == 11 and info["counts"] == {"finance": 5, "legal": 6}
    longest = max(len(text) for _, cells in read_table(CASES / name).rows for text in cells[:1])
    assert longest == length
    assert any("1 of 11 text(s) are longer than 128 tokens" in p["message"] for p in info["problems"])


@needs_cases
def test_texts_to_predict_from_the_cases() -> None:
    comments = read_texts(CASES / "predict_texts" / "comments.txt")
    assert comments.texts == [
        "Arrived late, but it works great", "Nice colour, very happy with it", "Broke in a week, total waste of money",
        "Cheap plastic, stopped working", "Good value, would recommend it", "Awful smell, avoid it",
    ]
    long = read_texts(CASES / "predict_texts" / "with_long_text.csv")
    assert [len(text) for text in long.texts] == [12, 140_000, 14] and long.problems == ["", "", ""]


# ---- kinds of the same faults -------------------------------------------------------------------------


def test_a_quote_left_open_at_the_end_reads_the_rest_line_by_line(tmp_path: Path) -> None:
    source = _file(tmp_path / "open.csv", 'text,label\ngood,pos\nbad,neg\n"never closed,neg\nfine,pos\nmeh,neg\n')
    table = read_table(source)
    assert [cells for _, cells in table.rows] == [["good", "pos"], ["bad", "neg"], ['"never closed', "neg"],
                                                  ["fine", "pos"], ["meh", "neg"]]
    assert list(table.irregular) == [4]


def test_quoted_line_breaks_stay_in_their_field(tmp_path: Path) -> None:
    source = _file(tmp_path / "multi.csv", 'text,label\n"first line\nsecond, line",pos\nplain,neg\n')
    table = read_table(source)
    assert table.rows == [(2, ["first line\nsecond, line", "pos"]), (4, ["plain", "neg"])]
    assert table.irregular == {}


def test_a_first_row_that_looks_like_data_is_not_a_header(tmp_path: Path) -> None:
    rows = "".join(f"review {i} text\t{'pos' if i % 2 else 'neg'}\n" for i in range(8))
    table = read_table(_file(tmp_path / "plain.tsv", rows))
    assert not table.has_header and table.columns == ["column 1", "column 2"] and len(table.rows) == 8
    assert any("no header row" in note and "'neg' is also a value" in note for note in table.notes)
    numbers = read_table(_file(tmp_path / "numbers.csv", "1.5,2,a\n3.0,4,b\n5.5,6,a\n7,8,b\n"))
    assert not numbers.has_header and len(numbers.rows) == 4
    named = read_table(_file(tmp_path / "named.csv", "x,y,label\n1.5,2,a\n3.0,4,b\n5.5,6,a\n"))
    assert named.has_header and named.columns == ["x", "y", "label"]
    # a headerless text dataset still finds its text and label columns
    info = TextModality().ingest(tmp_path / "plain.tsv", tmp_path / "ds")
    assert (info["text_column"], info["label_column"], info["num_items"]) == ("column 1", "column 2", 8)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom(tmp_path: Path, codec: str) -> None:
    content = "text,label\nthé vert très bon,pos\n很好用,pos\nnul,neg\nmauvais,neg\n"
    table = read_table(_file(tmp_path / "u.csv", content.encode(codec)))
    assert table.encoding == codec and table.rows[1] == (3, ["很好用", "pos"])
    # text in another script has few ASCII characters: its delimiters and line breaks are enough
    russian = "текст,метка\n" + "".join(f"отзыв номер {i} хороший,хорошо\nплохой отзыв {i},плохо\n" for i in range(6))
    table = read_table(_file(tmp_path / "ru.csv", russian.encode(codec)))
    assert (table.encoding, table.columns, len(table.rows)) == (codec, ["текст", "метка"], 12)
    assert TextModality().accepts(tmp_path / "ru.csv")


def test_legacy_code_pages_are_detected(tmp_path: Path) -> None:
    russian = "text,label\nПривет, как дела у вас сегодня,pos\nОчень плохо работает,neg\nОтлично работает,pos\n"
    table = read_table(_file(tmp_path / "ru.csv", russian.encode("cp1251")))
    assert table.encoding == "cp1251" and table.rows[1][1] == ["Очень плохо работает", "neg"]
    french = "text;label\nCafé crème très bon;pos\nTrès déçu, à éviter;neg\n"
    assert read_table(_file(tmp_path / "fr.csv", french.encode("latin-1"))).rows[0][1][0] == "Café crème très bon"


def test_fields_longer_than_the_csv_module_limit(tmp_path: Path) -> None:
    content = 'text,label\n"' + "word " * 60_000 + '",pos\nshort,neg\n'
    table = read_table(_file(tmp_path / "big.csv", content))
    assert [len(cells[0]) for _, cells in table.rows] == [300_000, 5]


def test_a_txt_is_one_text_per_line_when_predicting(tmp_path: Path) -> None:
    source = _file(tmp_path / "lines.txt", "a, b, c\td\n\nlast one; really\n")
    read = read_texts(source)
    assert read.texts == ["a, b, c\td", "last one; really"] and read.column == "text"


def test_missing_label_spellings_are_missing_labels(tmp_path: Path) -> None:
    rows = ["good,pos", "great,pos", "bad,neg", "awful,neg", "x,nan", "y,NaN", "z,null", "w,None", "v,N/A", "u,",
            "fine,pos", "nice,pos", "poor,neg", "sad,neg", "okay,pos", "ugly,neg"]
    source = _file(tmp_path / "missing.csv", "text,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(BadRowsError) as caught:
        TextModality().ingest(source, tmp_path / "refused")
    assert [line for line, _ in caught.value.bad] == [f"line {n}" for n in range(6, 12)]
    assert caught.value.bad[0] == ("line 6", "no label ('nan')") and caught.value.bad[-1] == ("line 11", "no label")
    info = TextModality().ingest(source, tmp_path / "kept", drop_bad=True)
    assert info["classes"] == ["neg", "pos"]


def test_similar_labels_are_named_and_merged_on_request(tmp_path: Path) -> None:
    decomposed = "ne\u0301gatif"
    rows = ["a,positif", "b,positif", "c,Positif", "d,positif ", "e,négatif", "f,négatif", f"g,{decomposed}",
            "h,Positif", "i,positif ", f"j,{decomposed}", "k,positif"]
    source = _file(tmp_path / "similar.csv", "text,label\n" + "\n".join(rows) + "\n")
    info = TextModality().ingest(source, tmp_path / "kept")
    assert info["classes"] == ["Positif", decomposed, "négatif", "positif", "positif "]
    message = next(p["message"] for p in info["problems"] if "differ only by case" in p["message"])
    assert "'Positif' (2) and 'positif' (3) and 'positif ' (2)" in message and "--merge-similar-labels" in message
    merged = TextModality().ingest(source, tmp_path / "merged", options={labelling.MERGE_OPTION: True})
    assert merged["counts"] == {"négatif": 4, "positif": 7}
    # a spelling with one row is refused as a class of one, with the way out
    lonely = _file(tmp_path / "lonely.csv", "text,label\na,pos\nb,pos\nc,Pos\nd,neg\ne,neg\n")
    with pytest.raises(GlassboxError, match=r"'Pos' have only 1 row.*'Pos' and 'pos' differ only by case"):
        TextModality().ingest(lonely, tmp_path / "lonely")
    assert any(p["message"] == "labels that differ only by case, spaces or accents were merged: 'Positif' (2) and "
               f"'positif' (3) and 'positif ' (2) into 'positif'; '{decomposed}' (2) and 'négatif' (2) into 'négatif'"
               for p in merged["problems"])


def test_preview_says_what_was_decided(tmp_path: Path) -> None:
    source = _file(tmp_path / "e.csv", "sep=;\ntext;label\nbon;pos\nmauvais;neg\n")
    shown = preview(source)
    assert (shown["delimiter"], shown["has_header"], shown["num_rows"]) == (";", True, 2)
    assert shown["notes"] == ["the first line 'sep=;' sets the delimiter (semicolon)"]


def test_refusals_say_why(tmp_path: Path) -> None:
    with pytest.raises(GlassboxError, match="holds binary data"):
        read_table(_file(tmp_path / "b.csv", b"text,label\n\x00\x01\x02,x\n"))
    with pytest.raises(GlassboxError, match="looks like UTF-16 but is not valid"):
        read_table(_file(tmp_path / "u.csv", codecs.BOM_UTF16_LE + b"t\x00e\x00\x00\xd8"))
