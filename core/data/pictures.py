"""Reading pictures: every format the installed Pillow decodes with its own code, guarded against damaged
files and pixel bombs, decoded at a reduced size when a model needs far fewer pixels than a photo has;
a dataset's decode cache (`DecodedImages`); and the listing of a folder's data files, shared by upload
and prediction so both read a folder alike.

A 12 MP JPEG takes about 0.15 s to decode in full on one core and 0.014 s with `Image.draft` (libjpeg
decodes at 1/2, 1/4 or 1/8 scale), so a model reading 128 px never pays for the full decode; and each
photo is decoded once: upload validation's pixels become the cache that training reads.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps

from core.data.archive import is_junk
from core.errors import GlassboxError

if TYPE_CHECKING:
    from core.data.base import PhaseProgress

__all__ = [
    "PREDECODED_SIZE", "SUFFIXES", "Checked", "DecodedImages", "UnreadableImage", "check_all", "decode_side",
    "list_files", "load_image",
]

PREDECODED_SIZE = 128
"""The model input size (px) upload validation decodes for, the Quick and Balanced presets' size: its pixels
become the dataset's decode cache, so training at that size decodes nothing again."""

# Real bombs only, checked on the header before decoding: below Pillow's own refusal (2 x
# Image.MAX_IMAGE_PIXELS, 179 MP) so that ours speaks first, and without touching that process-wide setting.
_MAX_PIXELS = 150_000_000
# Registered by Pillow but not decoded by its own code: EPS hands the file to Ghostscript, MPEG has no
# decoder at all (stub plugins, which need a handler installed, are left out by type).
_EXCLUDED = frozenset({"EPS", "MPEG"})
# Named when a file is not an image: Pillow format -> how people write it.
_COMMON = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "AVIF": "AVIF", "TIFF": "TIFF", "BMP": "BMP", "GIF": "GIF"}
# Modes whose bands `Image.reduce` may average (palette indices, bit-packed and 16-bit modes may not).
_REDUCIBLE = frozenset({"L", "LA", "La", "RGB", "RGBA", "RGBa", "CMYK", "YCbCr", "I", "F"})
# Resize to 1/0.875 of the input, then crop: the ImageNet convention (256 for 224), left for random crops.
_CROP_FRACTION = 0.875
# Each worker may hold a 150 MP non-JPEG image decoded (~0.5 GB) before reducing it.
_WORKERS = min(4, os.cpu_count() or 1)
_CACHE_FORMAT = 1  # part of a cache's fingerprint: bump when `load_image`'s reduced pixels change
_CACHE_FOLDER = "decoded"
_KEPT = "upload.tmp"  # the pixels upload validation kept, until `DecodedImages.adopt`
# `warnings.catch_warnings` changes process-wide state: threads opening files take turns (opening only
# reads a header; the decoding that follows runs in parallel).
_OPENING = threading.Lock()
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})


@functools.cache
def _formats() -> tuple[str, ...]:
    """Asking Pillow for a format it does not register is a KeyError, so only registered ones are asked."""
    Image.init()
    return tuple(
        name for name, (factory, _) in Image.OPEN.items()
        if name not in _EXCLUDED and not (isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile))
    )


def _suffixes() -> tuple[str, ...]:
    accepted = set(_formats())
    return tuple(sorted(ext for ext, name in Image.registered_extensions().items() if name in accepted))


SUFFIXES = _suffixes()
"""File extensions of the formats read here (".jpg", ".jfif", ".avif", ...), for file pickers. Reading
never relies on them: every file's bytes are sniffed."""


def decode_side(image_size: int) -> int:
    """Short side (px) an image is decoded at for a model reading `image_size` x `image_size` px: a little
    above the input, as ImageNet preprocessing resizes 256 px for a 224 px crop."""
    return math.ceil(image_size / _CROP_FRACTION)


class UnreadableImage(GlassboxError):
    """A file that is no usable image: "<file name>: <reason>", `reason` alone in a few words ("truncated
    JPEG", "empty file", "HEIC is not supported; convert to JPEG")."""

    def __init__(self, name: str, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{name}: {reason}")


def load_image(path: Path, image_size: int | None = None) -> Image.Image:
    """An image as the model sees it: EXIF-rotated, RGB, transparency flattened on white; with the same
    guards as upload, since prediction also reads files nobody has vetted.

    With `image_size` (the model's input side, px) it is decoded reduced, its short side
    `decode_side(image_size)` (never enlarged): training's decode cache, prediction and explanations all
    read images this way, so they see the same pixels. Raises UnreadableImage.
    """
    try:
        rgb, _, _ = _decode(Path(path), None if image_size is None else decode_side(image_size))
    except _Unusable as exc:
        raise UnreadableImage(Path(path).name, str(exc)) from None
    return rgb


def list_files(folder: Path) -> list[str]:
    """A folder's data files, relative and '/'-separated like zip names, sorted; OS litter (`is_junk`:
    `__MACOSX/`, `._*`, `.DS_Store`, `Thumbs.db`) left out. Symlinked folders are not followed, so a
    folder cannot pull in half the disk."""
    found: list[str] = []
    for here, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not is_junk(d))
        rel_here = Path(here).relative_to(folder)
        found.extend((rel_here / n).as_posix() for n in sorted(names) if not is_junk(n))
    return found


@dataclass(frozen=True)
class Checked:
    """What upload validation learns of one file: why it cannot be used (None when it can), its full size
    in pixels as shown (EXIF rotation applied), its colour mode, the SHA-256 of its bytes, and where its
    pixels were kept (offset, height, width), if they were."""

    reason: str | None = None
    width: int = 0
    height: int = 0
    mode: str = ""
    digest: str = ""
    kept: tuple[int, int, int] | None = None


def check_all(paths: list[Path], keep_in: Path | None = None) -> list[Checked]:
    """`Checked` per path, in order. Each file is decoded as a model reading `PREDECODED_SIZE` px would
    read it (every byte read, few pixels made), in threads: Pillow's decoders and hashlib release the GIL.
    With `keep_in` (the dataset folder being made), those pixels are kept there for
    `DecodedImages.adopt`, to be decoded once and for all."""
    kept = keep_in / _CACHE_FOLDER / _KEPT if keep_in is not None else None
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
    results: list[Checked] = []
    with ThreadPoolExecutor(_WORKERS) as pool, open(kept, "wb") if kept else contextlib.nullcontext() as out:
        offset = 0
        for checked, pixels in pool.map(_check, paths):
            if out is not None and pixels is not None:
                out.write(pixels.tobytes())
                checked = replace(checked, kept=(offset, pixels.shape[0], pixels.shape[1]))
                offset += pixels.size
            results.append(checked)
    return results


class DecodedImages:
    """Every image of a dataset as `load_image(path, image_size)` decodes it (short side
    `decode_side(image_size)`), stored once in `<dataset>/decoded/`: one flat file of RGB uint8 pixels and
    an index of (offset, height, width) per item, memory-mapped so that later runs at the same size and
    DataLoader workers share its pages instead of decoding again. Evaluate, Explain and prediction decode
    their few images the same way, so they see the pixels training saw.

    The file names carry a fingerprint of the item files (names, sizes, modification times), the decoded
    side and `_CACHE_FORMAT`: a changed dataset or size builds a new cache, which replaces the stale one.
    A cache lives and dies with its dataset folder.
    """

    def __init__(self, pixels: Path, index: np.ndarray) -> None:
        self.pixels = pixels
        self.index = index
        self._map: np.memmap | None = None

    @classmethod
    def open(cls, dataset_dir: Path, items: list[str], image_size: int,
             progress: PhaseProgress | None = None) -> DecodedImages:
        """The cache of `items` (paths under `dataset_dir`, in item order) at `image_size`, built (in
        threads, its count told to `progress` as "decoding images") unless already there. Raises
        UnreadableImage when an image no longer decodes."""
        side = decode_side(image_size)
        pixels, index = _cache_files(dataset_dir, items, side)
        if not index.exists():  # written last: its presence means the pixels are complete
            _build([dataset_dir / item for item in items], image_size, pixels, index, progress)
            for stale in pixels.parent.glob(f"{side}px-*"):
                if not stale.name.startswith(pixels.stem):
                    stale.unlink(missing_ok=True)
        return cls(pixels, np.load(index))

    @staticmethod
    def adopt(dataset_dir: Path, items: list[tuple[str, Checked]]) -> None:
        """Make the pixels `check_all(..., keep_in=dataset_dir)` kept the dataset's cache at
        `PREDECODED_SIZE`, once its files are in place: `items` are its items in order, with their
        `Checked`."""
        kept = dataset_dir / _CACHE_FOLDER / _KEPT
        pixels, index = _cache_files(dataset_dir, [item for item, _ in items], decode_side(PREDECODED_SIZE))
        os.replace(kept, pixels)
        _write_index(np.array([checked.kept for _, checked in items], dtype=np.int64), index)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> Image.Image:
        if self._map is None:  # opened lazily, so each DataLoader worker maps the file itself
            self._map = np.memmap(self.pixels, dtype=np.uint8, mode="r")
        offset, height, width = (int(n) for n in self.index[item])
        return Image.fromarray(self._map[offset:offset + height * width * 3].reshape(height, width, 3))

    def __getstate__(self) -> dict[str, Any]:
        """Without the mapping: a worker started by spawning (macOS, Windows) would get a copy of the pixels."""
        return {**self.__dict__, "_map": None}


# ---- decoding -------------------------------------------------------------------------------------


class _Unusable(Exception):
    """Why a file cannot be used, phrased for the user in a few words."""


def _check(path: Path) -> tuple[Checked, np.ndarray | None]:
    try:
        rgb, mode, (width, height) = _decode(path, decode_side(PREDECODED_SIZE))
    except _Unusable as exc:
        return Checked(reason=str(exc)), None
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    return Checked(width=width, height=height, mode=mode, digest=digest), np.asarray(rgb, dtype=np.uint8)


def _cache_files(dataset_dir: Path, items: list[str], side: int) -> tuple[Path, Path]:
    """(pixels, index) of the cache of `items` at `side`, named by their fingerprint."""
    digest = hashlib.sha256(f"{_CACHE_FORMAT} {side}".encode())
    for item in items:
        stat = (dataset_dir / item).stat()
        digest.update(f"\n{item}\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
    stem = dataset_dir / _CACHE_FOLDER / f"{side}px-{digest.hexdigest()[:16]}"
    return stem.with_suffix(".u8"), stem.with_suffix(".index.npy")


def _build(paths: list[Path], image_size: int, pixels: Path, index: Path, progress: PhaseProgress | None) -> None:
    """Decode `paths` in order into `pixels` and write their `index`, through a temporary file and a
    rename, so that a cache never looks complete when it is not (two runs may build it at once)."""
    pixels.parent.mkdir(exist_ok=True)
    rows = np.empty((len(paths), 3), dtype=np.int64)
    temporary = pixels.with_name(f"{pixels.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as out, ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            offset = 0
            for row, image in enumerate(pool.map(functools.partial(load_image, image_size=image_size), paths)):
                array = np.asarray(image, dtype=np.uint8)
                out.write(array.tobytes())
                rows[row] = offset, array.shape[0], array.shape[1]
                offset += array.size
                if progress is not None:
                    progress("decoding images", row + 1, len(paths))
        os.replace(temporary, pixels)
    finally:
        temporary.unlink(missing_ok=True)
    _write_index(rows, index)


def _write_index(rows: np.ndarray, index: Path) -> None:
    temporary = index.with_name(f"{index.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as out:
        np.save(out, rows)
    os.replace(temporary, index)


def _decode(path: Path, side: int | None) -> tuple[Image.Image, str, tuple[int, int]]:
    """(RGB image, the file's mode, its full size as shown). With `side`, the image's short side is
    reduced to `side` px: JPEGs decode at a smaller scale (`draft`), other formats are shrunk with
    `reduce` before anything copies them at full size, then resized with antialiasing.

    Any exception from a decoder means a bad file, not a bug: Pillow raises anything from OSError to
    struct.error on malformed input."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise _Unusable(f"cannot be read ({exc.strerror})") from None
    if not head:
        raise _Unusable("empty file")
    kind = _kind(head)
    try:
        with _open(path) as im:
            width, height = im.size
            if width * height > _MAX_PIXELS:
                raise _Unusable(_too_large(width * height))
            if side is not None:
                im.draft(None, (side, side))  # never below the requested size; a no-op but for JPEG
            exif = im.getexif()
            im.load()
            small = _reduced(im, side)
            if small is not im and ExifTags.Base.Orientation in exif:
                small.info["exif"] = exif.tobytes()  # TIFF keeps its tags on the file object only
            rgb = _fitted(_to_rgb(small), side)
            turned = exif.get(ExifTags.Base.Orientation) in (5, 6, 7, 8)
            return rgb, im.mode, (height, width) if turned else (width, height)
    except _Unusable:
        raise
    except Image.UnidentifiedImageError:
        raise _Unusable(_unsupported(path)) from None
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _Unusable(_too_large(int(found.group(1)) if found else None)) from None
    except Exception as exc:  # any decoder failure, see the docstring
        if "truncated" in str(exc).lower() or isinstance(exc, EOFError):
            raise _Unusable(f"truncated {kind}") from None
        raise _Unusable(f"damaged {kind} ({str(exc)[:80] or type(exc).__name__})") from None


def _open(path: Path) -> ImageFile.ImageFile:
    """`Image.open` without Pillow's DecompressionBombWarning, printed on stderr above 89 MP (a 108 MP phone
    photo passes it): such a photo is decoded reduced, and `_MAX_PIXELS` decides what is too large."""
    with _OPENING, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path, formats=_formats())


def _kind(head: bytes) -> str:
    """The format the first bytes announce ("JPEG"), to name a file whose header is damaged too."""
    for name in _formats():
        accept = Image.OPEN[name][1]
        with contextlib.suppress(Exception):  # some assume a 16-byte header, as Image.open's prefix has
            if accept is not None and accept(head) is True:
                return "JPEG" if name == "MPO" else name
    return "image"


def _reduced(im: Image.Image, side: int | None) -> Image.Image:
    """A box-filtered (antialiased) copy down to at least twice `side`, as Pillow's `reducing_gap` does:
    cheap, and it spares the conversions a full-size copy; the final resize does the rest."""
    factor = min(im.size) // (2 * side) if side is not None else 0
    return im.reduce(factor) if factor >= 2 and im.mode in _REDUCIBLE else im


def _fitted(rgb: Image.Image, side: int | None) -> Image.Image:
    short = min(rgb.size)
    if side is None or short <= side:
        return rgb
    width, height = (round(n * side / short) for n in rgb.size)
    return rgb.resize((width, height), Image.Resampling.LANCZOS)


def _to_rgb(im: Image.Image) -> Image.Image:
    """Always a new image (the source is closed by the caller)."""
    out = ImageOps.exif_transpose(im)
    if out.mode.startswith("I;16"):
        # 16-bit greyscale: keep the scale fixed (not stretched per image) so intensities stay comparable.
        out = Image.fromarray((np.asarray(out, dtype=np.uint32) >> 8).astype(np.uint8), "L")
    elif out.mode in ("I", "F"):
        arr = np.asarray(out, dtype=np.float64)
        low, high = float(arr.min()), float(arr.max())
        scaled = (arr - low) * (255.0 / (high - low)) if high > low else np.zeros_like(arr)
        out = Image.fromarray(scaled.astype(np.uint8), "L")
    if out.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in out.info:
        rgba = out.convert("RGBA")
        out = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        out.alpha_composite(rgba)
    return out.convert("RGB") if out.mode != "RGB" else out


def _too_large(pixels: int | None) -> str:
    size = f"{pixels / 1e6:.0f} MP, " if pixels else ""
    return f"too large ({size}limit {_MAX_PIXELS // 1_000_000} MP)"


def _unsupported(path: Path) -> str:
    """Why Pillow found no decoder here: a format people have that it does not read (named, so the user
    knows what to convert), or no image at all."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    name = _foreign_format(head)
    if name is None:
        try:  # a format Pillow recognises but that is left out above (EPS, stubs): its header names it
            with Image.open(path) as im:
                name = im.format
        except Exception:  # nothing recognised it: not an image
            common = [shown for name, shown in _COMMON.items() if name in _formats()]
            return f"not an image ({', '.join(common[:-1])} or {common[-1]} expected)"
    return f"{name} is not supported; convert to JPEG"


def _foreign_format(head: bytes) -> str | None:
    if head[4:8] == b"ftyp":  # ISO media: HEIF from iPhones, AVIF where Pillow lacks it (or a video)
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return "HEIC"
        if brand in (b"avif", b"avis"):
            return "AVIF"
    if head.startswith(b"%PDF"):
        return "PDF"
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL ")):
        return "JPEG XL"
    if b"<svg" in head:
        return "SVG"
    return None
