"""A bundle's own `predict.py` (`core.export.standalone`) in a Python where torch, transformers and pandas cannot be
imported, and `core.export.bundled.predict_bundle` in a fresh workspace, give the studio's predictions
(`python -m core predict RUN ...`) on the same files: images (a rotated JPEG, a transparent PNG, a broken file),
texts (a CSV beside an id column, a .txt), a table (money with thousands marks, dates, a bad cell) and series
(wide-form classification, a forecast from a history)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.unit.conftest import TinyRuns, cli_json, customers, waves

_HIDDEN = ("torch", "transformers", "pandas", "timm", "torchvision", "scipy", "sklearn", "core")
# runs predict.py with the packages above unimportable, as in an environment that never installed them
_WITHOUT = f"""
import runpy, sys
class _Hidden:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {_HIDDEN!r}:
            raise ImportError(f"{{name}} is hidden in this test")
sys.meta_path.insert(0, _Hidden())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _standalone(bundle: Path, where: Path, *inputs: str) -> subprocess.CompletedProcess[str]:
    """predict.py of the unpacked `bundle` on `inputs`, in a Python that cannot import torch, pandas or core."""
    folder = where / f"{bundle.stem}-unpacked"
    if not folder.exists():
        with zipfile.ZipFile(bundle) as archive:
            archive.extractall(folder)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GLASSBOX_HOME")}
    return subprocess.run([sys.executable, "-c", _WITHOUT, str(folder / "predict.py"), *inputs], capture_output=True,
                          text=True, cwd=where, env={**env, "OMP_NUM_THREADS": "1"}, timeout=300)


def _frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def _same(ours: pd.DataFrame, studio: pd.DataFrame, numbers: list[str]) -> None:
    """Equal but for the columns the studio adds beside (`unlike_training`); `numbers` compared within 1e-4."""
    studio = studio[[c for c in studio.columns if c != "unlike_training"]]
    ours = ours[[c for c in ours.columns if c != "unlike_training"]]
    assert list(ours.columns) == list(studio.columns)
    for column in ours.columns:
        if column in numbers:
            mine = np.array([float(v) if v else np.nan for v in ours[column]])
            theirs = np.array([float(v) if v else np.nan for v in studio[column]])
            np.testing.assert_allclose(mine, theirs, atol=1e-4, rtol=0, err_msg=column)
        else:
            assert ours[column].tolist() == studio[column].tolist(), column


def _studio(run_id: str, out: Path, *inputs: str) -> pd.DataFrame:
    cli_json("predict", run_id, *inputs, "--out", str(out))
    return pd.read_csv(out, dtype=str, keep_default_na=False)


def _fresh_predict_bundle(bundle: Path, tmp_path: Path, inputs: list[Path], **options: Any) -> pd.DataFrame:
    """`predict_bundle` in a workspace that never saw the run, its table written as the CLI would."""
    from core.export.bundled import predict_bundle

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GLASSBOX_HOME", str(tmp_path / "fresh"))
        table = predict_bundle(bundle, inputs, **options)
    return _frame(table.to_csv(index=False))


def _probabilities(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c.startswith("p(") or c in ("confidence", "forecast", "lower", "upper")]


# ---- images ----------------------------------------------------------------------------------------------------


@pytest.fixture
def image_run(tiny_runs: TinyRuns) -> tuple[str, Path]:
    """The session's image run (tests/unit/conftest.py: colour squares) and its bundle."""
    return tiny_runs.run("images")["run_id"], tiny_runs.bundle("images")[1]


@pytest.mark.slow
def test_predict_py_reads_images_as_the_studio_does(image_run: tuple[str, Path], tmp_path: Path) -> None:
    run_id, bundle = image_run
    rng = np.random.default_rng(1)
    photo = Image.fromarray(np.clip(rng.normal((200, 40, 40), 40, (90, 160, 3)), 0, 255).astype(np.uint8))
    exif = photo.getexif()
    exif[0x0112] = 6  # rotated: EXIF says turn it a quarter
    photo.save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=90)
    clear = np.zeros((70, 50, 4), dtype=np.uint8)
    clear[..., 2], clear[:35, :, 3] = 200, 255  # a blue top half, the rest transparent: white
    Image.fromarray(clear, "RGBA").save(tmp_path / "transparent.png")
    (tmp_path / "broken.jpg").write_bytes((tmp_path / "rotated.jpg").read_bytes()[:300])
    inputs = [str(tmp_path / n) for n in ("rotated.jpg", "transparent.png", "broken.jpg")]

    done = _standalone(bundle, tmp_path, *inputs)
    assert done.returncode == 0, done.stderr
    ours = _frame(done.stdout)
    studio = _studio(run_id, tmp_path / "studio.csv", *inputs)
    _same(ours, studio, _probabilities(ours))
    assert ours["error"].tolist()[:2] == ["", ""] and ours["error"][2] == "truncated JPEG"
    fresh = _fresh_predict_bundle(bundle, tmp_path, [Path(p) for p in inputs])
    _same(fresh, studio, _probabilities(ours))
    # predict --bundle keeps the studio's unlike-training hints (from the bundle's training_stats.json)
    assert fresh["unlike_training"].fillna("").tolist() == studio["unlike_training"].fillna("").tolist()
    assert "unlike_training" not in ours  # predict.py stays free of the studio's statistics code

    missing = _standalone(bundle, tmp_path, str(tmp_path / "nowhere.png"))
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip() == f"error: {tmp_path / 'nowhere.png'}: no such file or folder"


# ---- texts ------------------------------------------------------------------------------------------------------


@pytest.fixture
def text_run(tiny_runs: TinyRuns) -> tuple[str, Path]:
    """The session's text run (a 2-layer BERT with MiniLM's tokenizer, 12 tokens, text column "review")."""
    return tiny_runs.run("text")["run_id"], tiny_runs.bundle("text")[1]


@pytest.mark.slow
def test_predict_py_reads_texts_as_the_studio_does(text_run: tuple[str, Path], tmp_path: Path) -> None:
    run_id, bundle = text_run
    source = tmp_path / "new.csv"
    pd.DataFrame({"id": ["r1", "r2", "r3", "r4"],
                  "review": ["lovely and warm", "dull, tedious and cold",
                             "a very long review that goes on and on far beyond the twelve tokens the model reads",
                             " "]}).to_csv(source, index=False)
    lines = tmp_path / "lines.txt"
    lines.write_text("what a wonderful story\n\nboring, weak, awful\n", encoding="utf-8")
    for given in (source, lines):
        done = _standalone(bundle, tmp_path, str(given))
        assert done.returncode == 0, done.stderr
        ours = _frame(done.stdout)
        studio = _studio(run_id, tmp_path / f"studio-{given.stem}.csv", str(given))
        _same(ours, studio, _probabilities(ours))
        _same(_fresh_predict_bundle(bundle, tmp_path, [given]), studio, _probabilities(ours))
    assert ours["text"].tolist() == ["what a wonderful story", "boring, weak, awful"]

    unknown = _standalone(bundle, tmp_path, str(source), "--text-column", "body")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: new.csv has no column 'body'")
    assert "Traceback" not in unknown.stderr


# ---- tables -----------------------------------------------------------------------------------------------------


@pytest.fixture
def table_run(tiny_runs: TinyRuns) -> tuple[str, Path]:
    """The session's table run, trained on `customers(240, 0)`."""
    return tiny_runs.run("tables")["run_id"], tiny_runs.bundle("tables")[1]


@pytest.mark.slow
def test_predict_py_converts_and_encodes_rows_as_the_studio_does(table_run: tuple[str, Path],
                                                                 tmp_path: Path) -> None:
    run_id, bundle = table_run
    rows = customers(6, 3).drop(columns="renewed")
    rows.loc[1, "spend"] = "1450"  # typed without the symbol: still dollars
    rows.loc[2, "spend"] = "lots"  # no number: the row keeps its place, with the reason
    rows.loc[3, "signup"] = "n/a"  # missing date: imputed
    rows.loc[4, "plan"] = "enterprise"  # a level never seen: the unknown level
    source = tmp_path / "rows.csv"
    rows.to_csv(source, index=False)
    done = _standalone(bundle, tmp_path, str(source))
    assert done.returncode == 0, done.stderr
    ours = _frame(done.stdout)
    studio = _studio(run_id, tmp_path / "studio.csv", str(source))
    _same(ours, studio, _probabilities(ours))
    assert ours["error"][2] == "spend: 'lots' is not a number in $" and ours["predicted"][2] == ""
    assert ours["row"].tolist() == ["2", "3", "4", "5", "6", "7"]
    _same(_fresh_predict_bundle(bundle, tmp_path, [source]), studio, _probabilities(ours))

    lacking = tmp_path / "lacking.csv"
    rows.drop(columns="signup").to_csv(lacking, index=False)
    refused = _standalone(bundle, tmp_path, str(lacking))
    assert refused.returncode == 2 and refused.stderr.strip() == \
        "error: the file lacks the column(s) the model reads: 'signup'"


# ---- series -----------------------------------------------------------------------------------------------------


@pytest.fixture
def series_run(tiny_runs: TinyRuns) -> tuple[str, Path]:
    """The session's series run, trained on `waves(60, 0, shortest=20)`: 30 steps at most."""
    return tiny_runs.run("series")["run_id"], tiny_runs.bundle("series")[1]


@pytest.mark.slow
def test_predict_py_classifies_wide_series_as_the_studio_does(series_run: tuple[str, Path], tmp_path: Path) -> None:
    run_id, bundle = series_run
    new = waves(4, 5).drop(columns="label")
    new.iloc[1, 25:] = np.nan  # a shorter series, padded and masked
    new.iloc[2, 3] = np.nan  # a gap, filled between its neighbours
    source = tmp_path / "new_waves.csv"
    new.to_csv(source, index=False)
    done = _standalone(bundle, tmp_path, str(source))
    assert done.returncode == 0, done.stderr
    ours = _frame(done.stdout)
    studio = _studio(run_id, tmp_path / "studio.csv", str(source))
    _same(ours, studio, _probabilities(ours))
    assert ours["steps"].tolist() == ["30", "25", "30", "30"]
    _same(_fresh_predict_bundle(bundle, tmp_path, [source]), studio, _probabilities(ours))


@pytest.fixture
def forecast_run(tiny_runs: TinyRuns) -> tuple[str, Path, pd.DataFrame]:
    """The session's forecast run (daily sales and a price covariate, 7 days ahead), its bundle and its data."""
    frame = pd.read_csv(tiny_runs.data("forecast"), dtype=str, keep_default_na=False)
    return tiny_runs.run("forecast")["run_id"], tiny_runs.bundle("forecast")[1], frame


@pytest.mark.slow
def test_predict_py_forecasts_from_a_history_as_the_studio_does(forecast_run: tuple[str, Path, pd.DataFrame],
                                                                tmp_path: Path) -> None:
    run_id, bundle, frame = forecast_run
    history = tmp_path / "history.csv"
    frame.iloc[:-30].to_csv(history, index=False)
    done = _standalone(bundle, tmp_path, str(history))
    assert done.returncode == 0, done.stderr
    ours = _frame(done.stdout)
    studio = _studio(run_id, tmp_path / "studio.csv", str(history))
    _same(ours, studio, _probabilities(ours))
    assert ours["time"][0] == "2024-05-10 00:00" and len(ours) == 7  # the day after the history's last, 7 ahead
    _same(_fresh_predict_bundle(bundle, tmp_path, [history]), studio, _probabilities(ours))

    gappy = tmp_path / "gappy.csv"
    frame.drop(index=100).to_csv(gappy, index=False)
    refused = _standalone(bundle, tmp_path, str(gappy))
    assert refused.returncode == 2 and "without gaps or repeats" in refused.stderr and "Traceback" not in refused.stderr
