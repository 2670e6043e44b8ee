"""Unpacking uploaded zips without trusting them.

An upload is hostile until proven otherwise: entry names can climb out of the target folder, entries
can be symlinks, and headers can promise a few kilobytes while the data inflates to terabytes. So
every header is checked before a single byte is written, and the bytes actually produced are capped
again while extracting, because headers can lie.

Entry names are also where zips made on different systems disagree: a name flagged UTF-8 (bit 11) is
UTF-8, and an unflagged one is whatever the tool that wrote it used. `zip` on Linux and macOS writes
UTF-8 without the flag; Windows writes its OEM code page (cp437 in the US, cp866 in Russia, gbk in
China...), which Python's zipfile reads as cp437 regardless. So the unflagged names of an archive are
read together: as UTF-8 when they all are, else in the code page charset-normalizer finds.
"""

from __future__ import annotations

import contextlib
import lzma
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.data.code_pages import guess_code_page
from core.errors import GlassboxError

__all__ = ["ArchiveLimits", "Extracted", "extract_zip", "is_junk"]

_MIB = 1024**2
_CHUNK = _MIB
_SUPPORTED_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_JUNK_NAMES = {"__macosx", "thumbs.db", "desktop.ini"}
_DRIVE = re.compile(r"^[A-Za-z]:")
_UTF8_FLAG = 0x800
# Windows names entries in the OEM code page of its locale. These are the OEM code pages of the most
# used locales: US, Western and Central Europe, Cyrillic, Japanese, Chinese (simplified, traditional),
# Korean. Each page added makes short names more ambiguous to the detector, so the rarer ones (Greek,
# Arabic, Hebrew, Thai...) are left out: a name in one of them is read in its closest relative, with a
# warning when the reading is in doubt.
_LEGACY_CODE_PAGES = ["cp437", "cp850", "cp852", "cp866", "cp932", "gbk", "cp949", "cp950"]
_MAX_RIVALS = 3


@dataclass(frozen=True)
class ArchiveLimits:
    """What an upload may declare. The ratio rule only applies to entries above `ratio_min_bytes`
    because small, very regular files (blank masks, tiny BMPs) legitimately compress hundreds of times."""

    max_files: int = 50_000
    max_total_bytes: int = 4 * 1024**3
    max_ratio: float = 200.0
    max_entry_bytes: int = 512 * _MIB
    ratio_min_bytes: int = _MIB


def is_junk(relpath: str) -> bool:
    """OS litter (macOS resource forks, Finder/Explorer caches, hidden files) that is never data;
    shared with folder uploads so a zip and the folder it came from give the same dataset."""
    parts = [p for p in relpath.replace("\\", "/").split("/") if p not in ("", ".")]
    return any(p.lower() in _JUNK_NAMES or p.startswith(".") for p in parts)


@dataclass(frozen=True)
class Extracted:
    """What `extract_zip` wrote: the data files' paths in archive order, and warnings for the user
    (entry names whose code page is in doubt)."""

    files: list[Path]
    warnings: list[str]


def extract_zip(zip_path: Path, dest: Path, limits: ArchiveLimits = ArchiveLimits()) -> Extracted:
    """Extract the data files of `zip_path` into `dest`, named as the zip's author saw them (see the
    module's docstring for entry names without the UTF-8 flag).

    Raises GlassboxError, naming the offending entry, for anything unsafe or unreadable. On a
    refusal found in the headers nothing is written; on one found while extracting, the entry being
    written is removed and the rest is left for the caller to clean up with `dest`.
    """
    zip_path = Path(zip_path)
    try:
        archive = zipfile.ZipFile(zip_path)
    except FileNotFoundError:
        raise GlassboxError(f"{zip_path.name}: file not found") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise GlassboxError(f"{zip_path.name}: not a zip file, or the zip is damaged ({exc})") from None
    with archive:
        warnings = _decode_names(zip_path.name, archive.infolist())
        plan = _check_headers(zip_path.name, archive.infolist(), limits)
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        files = [_extract_entry(zip_path.name, archive, info, parts, root) for info, parts in plan]
    return Extracted(files, warnings)


def _decode_names(zip_name: str, infos: list[zipfile.ZipInfo]) -> list[str]:
    """Rename the entries without the UTF-8 flag in place (zipfile named them as cp437) and return a
    warning when the code page is in doubt. `ZipInfo.orig_filename` is left alone: zipfile checks it
    against each local header when the entry is opened.

    The names are decided together, since one tool wrote them all: UTF-8 when every one is valid
    UTF-8, else the code page among `_LEGACY_CODE_PAGES` that charset-normalizer finds for all of
    them at once (more text, a surer guess). Doubt: another page reads them differently and about as
    cleanly; the warning names both readings so the user can tell which is right."""
    legacy = [info for info in infos if not info.flag_bits & _UTF8_FLAG and not info.filename.isascii()]
    if not legacy:
        return []
    raw = [info.filename.encode("cp437") for info in legacy]  # cp437 maps every byte: this is lossless
    try:
        names = [r.decode("utf-8") for r in raw]
        warnings = []
    except UnicodeDecodeError:
        names, warnings = _decode_legacy(zip_name, raw)
    for info, name in zip(legacy, names, strict=True):
        info.filename = name
    return warnings


def _decode_legacy(zip_name: str, raw: list[bytes]) -> tuple[list[str], list[str]]:
    """Names in the code page `code_pages.guess_code_page` finds for them all together (among
    `_LEGACY_CODE_PAGES`, DOS's Western pages first), and a warning that shows the rival readings
    when the guess is in doubt."""
    distinct = list(dict.fromkeys(raw))
    guess = guess_code_page(b"\n".join(distinct), _LEGACY_CODE_PAGES, western=("cp437", "cp850"))
    if guess is None:  # no candidate decodes them all: keep what the zip standard prescribes
        return [r.decode("cp437") for r in raw], [
            f"{zip_name}: file names are not marked as UTF-8 and fit no known code page; read as cp437, "
            "so class names may be garbled: zip with a tool that writes UTF-8 names (7-Zip, or zip on macOS or Linux)"
        ]
    warnings = []
    if guess.rivals:
        example = next(r for r in distinct if r.decode(guess.codec) != r.decode(guess.rivals[0]))
        others = ", ".join(f"{codec} {example.decode(codec)!r}" for codec in guess.rivals[:_MAX_RIVALS])
        warnings.append(
            f"{zip_name}: file names are not marked as UTF-8 and their code page is uncertain: read as "
            f"{guess.codec} ({example.decode(guess.codec)!r}; also plausible: {others}); check the class names, "
            "or zip with a tool that writes UTF-8 names (7-Zip, or zip on macOS or Linux)"
        )
    return [r.decode(guess.codec) for r in raw], warnings


def _check_headers(
    zip_name: str, infos: list[zipfile.ZipInfo], limits: ArchiveLimits
) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Every refusal that the central directory alone can justify, so a bad zip writes nothing."""
    if len(infos) > limits.max_files:
        raise GlassboxError(f"{zip_name}: {len(infos)} entries, more than the limit of {limits.max_files}")
    plan: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    seen: set[tuple[str, ...]] = set()
    total = 0
    for info in infos:
        name = info.filename
        parts = _safe_parts(zip_name, name)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise GlassboxError(f"{zip_name}: entry {name!r} is a symbolic link, which is not allowed")
        if info.is_dir() or name.replace("\\", "/").endswith("/") or not parts or is_junk(name):
            continue
        if info.flag_bits & 0x1:
            raise GlassboxError(f"{zip_name}: entry {name!r} is encrypted; upload an unencrypted zip")
        if info.compress_type not in _SUPPORTED_METHODS:
            raise GlassboxError(
                f"{zip_name}: entry {name!r} uses an unsupported compression method ({info.compress_type}); "
                "re-zip it with standard (deflate) compression"
            )
        if parts in seen:
            raise GlassboxError(f"{zip_name}: entry {name!r} appears more than once")
        seen.add(parts)
        if info.file_size > limits.max_entry_bytes:
            raise GlassboxError(
                f"{zip_name}: entry {name!r} declares {_mib(info.file_size)}, "
                f"more than the per-file limit of {_mib(limits.max_entry_bytes)}"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_min_bytes and ratio > limits.max_ratio:
            raise GlassboxError(
                f"{zip_name}: entry {name!r} would expand {ratio:.0f}x (limit {limits.max_ratio:.0f}x); "
                "this looks like a zip bomb"
            )
        total += info.file_size
        if total > limits.max_total_bytes:
            raise GlassboxError(
                f"{zip_name}: unpacks to more than the limit of {_mib(limits.max_total_bytes)} "
                f"(reached at entry {name!r})"
            )
        plan.append((info, parts))
    return plan


def _safe_parts(zip_name: str, name: str) -> tuple[str, ...]:
    """Path components that stay inside the target whatever OS made the zip (Windows tools write
    backslashes, so they count as separators here)."""
    normal = name.replace("\\", "/")
    if "\x00" in normal:
        raise GlassboxError(f"{zip_name}: entry {name!r} has a NUL byte in its name")
    if normal.startswith("/"):
        raise GlassboxError(f"{zip_name}: entry {name!r} has an absolute path, which is not allowed")
    if _DRIVE.match(normal):
        raise GlassboxError(f"{zip_name}: entry {name!r} names a drive, which is not allowed")
    parts = tuple(p for p in PurePosixPath(normal).parts if p != ".")
    if ".." in parts:
        raise GlassboxError(f"{zip_name}: entry {name!r} points outside the archive ('..'); not allowed")
    return parts


def _extract_entry(
    zip_name: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, parts: tuple[str, ...], root: Path
) -> Path:
    target = root.joinpath(*parts)
    # Defence in depth: the name checks already rule this out unless `dest` itself holds symlinks.
    if not target.parent.resolve().is_relative_to(root):
        raise GlassboxError(f"{zip_name}: entry {info.filename!r} would land outside the dataset folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as src, open(target, "xb") as out:
            written = 0
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if written > info.file_size:
                    raise GlassboxError(
                        f"{zip_name}: entry {info.filename!r} holds more data than its header declares "
                        f"({info.file_size} bytes); refusing it"
                    )
                out.write(chunk)
    except GlassboxError:
        _remove(target)
        raise
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        # A file and a folder of the same name ("a" and "a/b"): the zip cannot be laid out on disk.
        raise GlassboxError(f"{zip_name}: entry {info.filename!r} clashes with another entry") from None
    except (zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError, ValueError) as exc:
        _remove(target)
        raise GlassboxError(f"{zip_name}: entry {info.filename!r} is damaged ({exc})") from None
    return target


def _remove(path: Path) -> None:
    """Best effort: the caller deletes the whole destination anyway, this just avoids leaving a
    half-written file behind for callers that keep it."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _mib(n: int) -> str:
    return f"{n / _MIB:,.0f} MiB" if n >= _MIB else f"{n:,} bytes"
