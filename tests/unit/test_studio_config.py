"""The studio's own Streamlit settings as Streamlit reads them from .streamlit/config.toml."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_the_studio_listens_on_this_machine_only() -> None:
    """No logins yet: `streamlit run app.py` binds 127.0.0.1 unless the user opens it on purpose."""
    shown = subprocess.run([sys.executable, "-m", "streamlit", "config", "show"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, check=True).stdout
    lines = shown.splitlines()
    where = lines.index('address = "127.0.0.1"')
    assert lines[where - 1] == f"# The value below was set in {ROOT / '.streamlit' / 'config.toml'}"
