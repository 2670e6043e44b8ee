"""Which modality reads an upload does not depend on which modules happened to be imported first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_table_is_detected_as_a_table_even_when_text_was_imported_first() -> None:
    code = ("import core.data.series, core.data.text\n"
            "from pathlib import Path\nfrom core import data\n"
            "print(data.names(), data.detect(Path('sample_data/penguins.csv')).name)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['images', 'tables', 'text', 'series'] tables"
