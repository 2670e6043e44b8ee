"""Build the sample series: sample_data/japanese_vowels.csv (classification, long form) and
sample_data/electricity_demand.csv (forecasting, half-hourly), real series with their source and licence in
sample_data/README.md, read from the files inside two pip wheels.

    python sample_data/build_series.py [vowels|demand ...] [--wheels DIR]   (both by default)

The wheels are read as zip archives, never installed: aeon cannot be installed beside Glassbox's pins (see
issue 11), and pmdarima is not needed at run time. A wheel missing from DIR (default
/tmp/glassbox-sample-wheels) is fetched with `pip download NAME==VERSION --no-deps -d DIR`.

- japanese_vowels.csv: aeon 1.6.0's `datasets/data/JapaneseVowels/JapaneseVowels_{TRAIN,TEST}.ts` (the UEA
  archive's variable-length version, 7-29 steps, 12 channels), as one long table `series_id,time,channel,value,
  label`: series 1-270 are the archive's TRAIN part and 271-640 its TEST part, in file order; `time` counts
  the steps of a series from 0; channels are `c1`..`c12` (the 12 LPC cepstrum coefficients, in file order);
  values as written in the .ts file; labels `speaker1`..`speaker9` (the file's class labels 1-9).
- electricity_demand.csv: the `taylor` series in pmdarima 2.1.1's `datasets/taylor.py` (4,032 half-hourly
  values in megawatts), stamped every 30 minutes from 2000-06-05 00:00 (Monday 5 June to Sunday 27 August
  2000, the span the R forecast package gives for it), written `timestamp,demand_mw`.

Each CSV is UTF-8 with `\\n` line endings, so rebuilding gives the same bytes.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
WHEELS = Path("/tmp/glassbox-sample-wheels")
AEON = ("aeon", "1.6.0")
PMDARIMA = ("pmdarima", "2.1.1")
VOWELS_PARTS = ("TRAIN", "TEST")
DEMAND_START = datetime(2000, 6, 5)
DEMAND_STEP = timedelta(minutes=30)


def _wheel(wheels: Path, package: tuple[str, str]) -> zipfile.ZipFile:
    """The package's wheel in `wheels`, downloaded there first (no dependencies) when absent."""
    name, version = package
    found = sorted(wheels.glob(f"{name}-{version}-*.whl"))
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", f"{name}=={version}", "--no-deps", "-d",
                        str(wheels)], check=True)
        found = sorted(wheels.glob(f"{name}-{version}-*.whl"))
    if not found:
        raise SystemExit(f"no {name} {version} wheel in {wheels}")
    return zipfile.ZipFile(found[0])


def _write(out: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    out.write_bytes(buffer.getvalue().encode("utf-8"))
    return out


def ts_series(text: str) -> list[tuple[list[list[str]], str]]:
    """The series of a .ts file (the UEA/UCR archive's text format, as aeon ships it): after the `@data`
    line, one series per line, its channels separated by ':' and the class label last; each channel's
    values separated by ','. Returns (channels, each a list of the values as written; label) per series."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data") + 1
    series = []
    for line in lines[start:]:
        if not line.strip():
            continue
        *channels, label = line.strip().split(":")
        series.append(([channel.split(",") for channel in channels], label.strip()))
    return series


def vowels(wheels: Path = WHEELS, out: Path = HERE / "japanese_vowels.csv") -> Path:
    with _wheel(wheels, AEON) as wheel:
        texts = [wheel.read(f"aeon/datasets/data/JapaneseVowels/JapaneseVowels_{part}.ts").decode("utf-8")
                 for part in VOWELS_PARTS]
    rows = []
    number = 0
    for text in texts:
        for channels, label in ts_series(text):
            number += 1
            for step in range(max(len(values) for values in channels)):
                for channel, values in enumerate(channels, start=1):
                    if step < len(values):
                        rows.append((number, step, f"c{channel}", values[step], f"speaker{label}"))
    return _write(out, ("series_id", "time", "channel", "value", "label"), rows)


def demand(wheels: Path = WHEELS, out: Path = HERE / "electricity_demand.csv") -> Path:
    with _wheel(wheels, PMDARIMA) as wheel:
        source = wheel.read("pmdarima/datasets/taylor.py").decode("utf-8")
    # the values are a literal list inside load_taylor: read as data, never executed
    literal = re.search(r"np\.array\(\[(.*?)\]", source, re.S)
    if literal is None:
        raise SystemExit("pmdarima's taylor.py no longer holds the values as a list")
    values = ast.literal_eval(f"[{literal.group(1)}]")
    return _write(out, ("timestamp", "demand_mw"),
                  (((DEMAND_START + i * DEMAND_STEP).strftime("%Y-%m-%d %H:%M:%S"), value)
                   for i, value in enumerate(values)))


BUILDERS: dict[str, Callable[[Path], Path]] = {"vowels": vowels, "demand": demand}

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"which to build: {', '.join(BUILDERS)} (all by default)")
    parser.add_argument("--wheels", type=Path, default=WHEELS, help="where the aeon and pmdarima wheels are kept")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BUILDERS))
    if unknown:
        parser.error(f"unknown sample {', '.join(unknown)}; choose from {', '.join(BUILDERS)}")
    for name in args.names or list(BUILDERS):
        path = BUILDERS[name](args.wheels)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
