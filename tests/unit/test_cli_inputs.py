"""`python -m core datasets add` on inputs people really have: what is read, and every refusal with its reason
on one `error:` line."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from core.cli import main
from core.workspace import Workspace
from tests.unit.test_reading import CASES, needs_cases


def _add(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict | None, str]:
    code = main(["datasets", "add", *args, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out.strip().splitlines()[-1]) if code == 0 else None, err


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@needs_cases
def test_an_odd_line_is_a_warning_and_the_rows_stay_apart(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    code, added, err = _add(capsys, str(CASES / "reviews.tsv"))
    assert code == 0 and added is not None
    assert (added["num_items"], added["counts"]) == (10, {"neg": 5, "pos": 5})
    assert "warning: 1 line(s) open a quote that is not closed properly" in err and "line 4" in err


@needs_cases
def test_excel_sep_line_from_the_cli(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    code, added, _ = _add(capsys, str(CASES / "excel_export.csv"))
    assert code == 0 and added is not None and added["num_items"] == 12 and added["delimiter"] == ";"


def test_merge_similar_labels_flag(ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "pets.zip"
    with zipfile.ZipFile(source, "w") as archive:
        for folder, colour in (("Cat", (200, 0, 0)), ("cat", (190, 10, 0)), ("dog", (0, 0, 200))):
            for i in range(3):
                archive.writestr(f"pets/{folder}/{i}.png", _png((colour[0], colour[1] + i, colour[2])))
    code, kept, err = _add(capsys, str(source))
    assert code == 0 and kept is not None and kept["classes"] == ["Cat", "cat", "dog"]
    assert "'Cat' (3) and 'cat' (3)" in err
    code, merged, _ = _add(capsys, str(source), "--merge-similar-labels")
    assert code == 0 and merged is not None and merged["counts"] == {"Cat": 6, "dog": 3}


def test_bad_rows_are_listed_with_their_reasons(ws: Workspace, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "holes.csv"
    source.write_text("text,label\ngood,pos\nfine,pos\nbad,neg\nawful,neg\nodd,N/A\n,pos\n", encoding="utf-8")
    code, _, err = _add(capsys, str(source))
    assert code == 1
    assert err == ("error: 2 rows cannot be used: line 6 (no label ('N/A')), line 7 (empty text); fix them, "
                   "or add --drop-bad to leave them out\n")


def test_a_one_column_csv_names_the_missing_label_column(ws: Workspace, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "onecol.csv"
    source.write_text("text\ngreat stuff\nawful thing\nfine\n", encoding="utf-8")
    for command in (["datasets", "add", str(source)], ["train", "--data", str(source)]):
        assert main(command) == 1
        assert capsys.readouterr().err == (
            "error: onecol.csv has one column ('text'): a label column is missing; add a column with each text's "
            "class, separated by a comma, semicolon, tab or |\n")


def test_train_flags_reach_the_run_config(ws: Workspace, colour_zip: Path) -> None:
    from core.cli import _build_parser, _train_config
    from core.store import Store

    args = _build_parser().parse_args(["train", "--data", str(colour_zip), "--early-stopping-patience", "3",
                                       "--class-weights", "balanced", "--epochs", "9"])
    config = _train_config(args, ws, Store(ws.db_path))
    assert (config.early_stopping_patience, config.class_weights, config.epochs) == (3, "balanced", 9)
