"""Build sample_data/digits.zip: a small, real, license-clean image dataset that ships with the repo.

Run from anywhere: `python sample_data/build_digits.py`. The pick is fixed (the first 40 distinct
images of each digit in scikit-learn's bundled copy) and the zip carries fixed timestamps and
permissions, so rebuilding gives the same bytes and a diff of the zip means the data changed.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

PER_CLASS = 40
SCALE = 4  # 8x8 -> 32x32
OUT = Path(__file__).resolve().parent / "digits.zip"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold; any fixed value would do


def pick(images: np.ndarray, targets: np.ndarray) -> dict[int, list[np.ndarray]]:
    """Distinct images only, so the sample itself does not trigger the duplicate warning."""
    chosen: dict[int, list[np.ndarray]] = {d: [] for d in range(10)}
    seen: set[bytes] = set()
    for image, target in zip(images, targets, strict=True):
        pixels = np.round(image * 255.0 / 16.0).astype(np.uint8)
        key = pixels.tobytes()
        if len(chosen[int(target)]) < PER_CLASS and key not in seen:
            seen.add(key)
            chosen[int(target)].append(pixels)
    return chosen


def png_bytes(pixels: np.ndarray) -> bytes:
    big = Image.fromarray(pixels, "L").resize((8 * SCALE, 8 * SCALE), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    big.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def build(out: Path = OUT) -> Path:
    digits = load_digits()
    chosen = pick(digits.images, digits.target)
    with zipfile.ZipFile(out, "w") as archive:
        for digit in range(10):
            found = len(chosen[digit])
            assert found == PER_CLASS, f"digit {digit}: only {found} distinct images"
            for i, pixels in enumerate(chosen[digit]):
                info = zipfile.ZipInfo(f"digits/{digit}/{i:02d}.png", date_time=_EPOCH)
                info.create_system = 3  # unix, whatever machine builds it
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_STORED  # PNG is already compressed
                archive.writestr(info, png_bytes(pixels))
    return out


if __name__ == "__main__":
    path = build()
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")
