"""Safe unzip: every refusal happens before a byte is written, and nothing lands outside dest."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from core.data.archive import ArchiveLimits, extract_zip, is_junk
from core.errors import GlassboxError


def make_zip(path: Path, entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, payload in entries.items():
            archive.writestr(name, payload)
    return path


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def patch_central_header(path: Path, offset: int, fmt: str, value: int) -> None:
    """Rewrite one field of the (only) central directory record: how forged headers are made."""
    raw = bytearray(path.read_bytes())
    at = raw.rindex(b"PK\x01\x02")
    struct.pack_into(fmt, raw, at + offset, value)
    path.write_bytes(bytes(raw))


def test_extracts_data_files_and_skips_os_litter(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "a.zip",
        {
            "set/": b"",
            "set/cat/1.txt": b"one",
            "set\\dog\\2.txt": b"two",  # written by a Windows tool
            "__MACOSX/set/cat/._1.txt": b"resource fork",
            "set/.DS_Store": b"finder",
            "set/cat/Thumbs.db": b"explorer",
        },
    )
    dest = tmp_path / "out"
    written = extract_zip(archive, dest)
    assert written.warnings == []
    assert written.files == [dest.resolve() / "set/cat/1.txt", dest.resolve() / "set/dog/2.txt"]
    assert (dest / "set/cat/1.txt").read_bytes() == b"one"
    assert files_under(dest) == [dest / "set/cat/1.txt", dest / "set/dog/2.txt"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.txt", "outside"),
        ("ok/../../evil.txt", "outside"),
        ("..\\evil.txt", "outside"),
        ("/evil.txt", "absolute"),
        ("\\\\server\\share\\evil.txt", "absolute"),
        ("C:/evil.txt", "drive"),
        ("C:evil.txt", "drive"),
    ],
)
def test_escaping_names_are_refused_before_anything_is_written(
    tmp_path: Path, name: str, reason: str
) -> None:
    # A harmless entry first: if checks ran while extracting, it would already be on disk.
    archive = make_zip(tmp_path / "a.zip", {"fine.txt": b"ok", name: b"pwned"})
    dest = tmp_path / "box" / "dest"
    with pytest.raises(GlassboxError, match=reason) as refused:
        extract_zip(archive, dest)
    assert "evil.txt" in str(refused.value)
    assert files_under(dest) == []
    assert sorted(p.name for p in tmp_path.rglob("evil.txt")) == []


def test_symlink_entry_is_refused(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("link")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("fine.txt", b"ok")
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(GlassboxError, match="'link' is a symbolic link"):
        extract_zip(path, tmp_path / "dest")
    assert files_under(tmp_path / "dest") == []


def test_encrypted_entry_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {"secret.txt": b"x"})
    patch_central_header(path, 8, "<H", 0x1)  # general purpose flag: encrypted
    with pytest.raises(GlassboxError, match="'secret.txt' is encrypted"):
        extract_zip(path, tmp_path / "dest")


def test_zip_bomb_is_refused_from_its_headers(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("fine.txt", b"ok")
        with archive.open("zeros.bin", "w") as entry:
            chunk = bytes(1 << 20)
            for _ in range(200):
                entry.write(chunk)
    assert path.stat().st_size < 1 << 20  # it really is a bomb: 200 MB from a few hundred KB
    dest = tmp_path / "dest"
    with pytest.raises(GlassboxError, match="'zeros.bin' would expand"):
        extract_zip(path, dest)
    assert files_under(dest) == []


def test_small_highly_compressible_files_are_fine(tmp_path: Path) -> None:
    # 512 KiB of zeros compresses ~1000x, but below the ratio threshold that is just a blank image.
    path = make_zip(tmp_path / "a.zip", {"blank.bmp": bytes(512 * 1024)})
    assert [p.name for p in extract_zip(path, tmp_path / "dest").files] == ["blank.bmp"]


def test_too_many_files_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {f"{i}.txt": b"x" for i in range(6)})
    with pytest.raises(GlassboxError, match="6 entries, more than the limit of 5"):
        extract_zip(path, tmp_path / "dest", ArchiveLimits(max_files=5))
    assert files_under(tmp_path / "dest") == []
    assert len(extract_zip(path, tmp_path / "dest", ArchiveLimits(max_files=6)).files) == 6


def test_declared_total_and_entry_sizes_are_limited(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {"a.bin": b"a" * 600, "b.bin": b"b" * 600}, zipfile.ZIP_STORED)
    with pytest.raises(GlassboxError, match="reached at entry 'b.bin'"):
        extract_zip(path, tmp_path / "d1", ArchiveLimits(max_total_bytes=1000))
    with pytest.raises(GlassboxError, match="'a.bin' declares 600 bytes"):
        extract_zip(path, tmp_path / "d2", ArchiveLimits(max_entry_bytes=500))
    assert files_under(tmp_path / "d1") == files_under(tmp_path / "d2") == []


def test_header_understating_the_size_is_caught_while_extracting(tmp_path: Path) -> None:
    payload = b"".join(b"line %d\n" % i for i in range(20_000))
    path = make_zip(tmp_path / "a.zip", {"liar.txt": payload})
    patch_central_header(path, 24, "<I", 100)  # uncompressed size: claims 100 bytes
    dest = tmp_path / "dest"
    with pytest.raises(GlassboxError, match="'liar.txt'"):
        extract_zip(path, dest)
    assert files_under(dest) == []


def test_stream_yielding_more_than_declared_is_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cap itself, independent of zipfile's own truncation: a decoder that over-delivers."""
    path = make_zip(tmp_path / "a.zip", {"data.bin": b"x" * 10})
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info, *a, **k: io.BytesIO(b"x" * 5000))
    dest = tmp_path / "dest"
    with pytest.raises(GlassboxError, match="more data than its header declares"):
        extract_zip(path, dest)
    assert files_under(dest) == []


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04garbage"])
def test_not_a_zip_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "upload.zip"
    path.write_bytes(content)
    with pytest.raises(GlassboxError, match="upload.zip: not a zip"):
        extract_zip(path, tmp_path / "dest")


def test_truncated_zip_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {f"{i}.txt": bytes(range(256)) * 40 for i in range(5)})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(GlassboxError, match="a.zip"):
        extract_zip(path, tmp_path / "dest")


def test_corrupt_entry_data_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {"a.txt": b"hello world " * 100}, zipfile.ZIP_STORED)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"hello world")
    raw[at : at + 5] = b"HELLO"  # CRC no longer matches
    path.write_bytes(bytes(raw))
    with pytest.raises(GlassboxError, match="'a.txt' is damaged"):
        extract_zip(path, tmp_path / "dest")
    assert files_under(tmp_path / "dest") == []


@pytest.mark.parametrize(
    ("name", "junk"),
    [
        ("__MACOSX/a/._b.png", True),
        ("a/.DS_Store", True),
        ("a/THUMBS.DB", True),
        (".hidden/x.png", True),
        ("./a/b.png", False),
        ("a/b.png", False),
    ],
)
def test_is_junk(name: str, junk: bool) -> None:
    assert is_junk(name) is junk


# ---- entry names without the UTF-8 flag ------------------------------------------------------------


class _LegacyName(zipfile.ZipInfo):
    """An entry named in a Windows code page, without the UTF-8 flag, as Windows' own zip writes it
    (zipfile writes any non-ASCII name as flagged UTF-8, so the raw bytes are passed as the cp437 text
    that reads back as them)."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802 (zipfile's name)
        return self.filename.encode("cp437"), self.flag_bits & ~0x800


def legacy_zip(path: Path, names: list[str] | dict[str, bytes], encoding: str) -> Path:
    """A zip whose entries (names, or names and contents) are named in `encoding` without the UTF-8 flag."""
    entries = names if isinstance(names, dict) else dict.fromkeys(names, b"x")
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in entries.items():
            archive.writestr(_LegacyName(name.encode(encoding).decode("cp437")), payload)
    with zipfile.ZipFile(path) as archive:  # really written unflagged, in that code page
        assert all(not info.flag_bits & 0x800 for info in archive.infolist())
    return path


def extracted_names(path: Path, dest: Path) -> tuple[list[str], list[str]]:
    result = extract_zip(path, dest)
    return [p.relative_to(dest.resolve()).as_posix() for p in result.files], result.warnings


@pytest.mark.parametrize(
    ("encoding", "names"),
    [
        ("utf-8", ["photos/café/1.png", "photos/猫/1.png"]),  # zip on Linux and macOS: UTF-8, unflagged
        ("cp437", ["photos/café/1.png", "photos/thé/1.png"]),  # Windows, US
        ("cp850", ["fotos/café/1.png", "fotos/crème/1.png"]),  # Windows, Western Europe
        ("cp866", ["животные/кошка/1.png", "животные/собака/1.png"]),  # Windows, Russia
        ("cp932", ["動物/猫/写真1.png", "動物/犬/写真1.png"]),  # Windows, Japan
        ("gbk", ["宠物照片/猫/1.png", "宠物照片/狗/1.png"]),  # Windows, China
        ("gbk", ["数据/猫咪/图片1.png", "数据/小狗/图片1.png"]),
    ],
)
def test_unflagged_names_are_read_in_their_code_page(tmp_path: Path, encoding: str, names: list[str]) -> None:
    path = legacy_zip(tmp_path / "a.zip", names, encoding)
    assert extracted_names(path, tmp_path / "dest") == (names, [])


def test_an_uncertain_code_page_is_warned_with_the_other_readings(tmp_path: Path) -> None:
    # two Chinese characters are as valid in Korean cp949: no detector can tell, so the user is told;
    path = legacy_zip(tmp_path / "pets.zip", ["猫/1.png", "狗/1.png"], "gbk")
    names, warnings = extracted_names(path, tmp_path / "dest")
    # among tied East Asian pages the most widely used wins (code_pages._EAST_ASIAN_ORDER)
    assert names == ["猫/1.png", "狗/1.png"]
    assert warnings == [
        "pets.zip: file names are not marked as UTF-8 and their code page is uncertain: read as gbk "
        "('猫/1.png'; also plausible: cp932 'ﾃｨ/1.png', cp950 '癡/1.png', cp949 '챔/1.png'); check the class names, "
        "or zip with a tool that writes UTF-8 names (7-Zip, or zip on macOS or Linux)"
    ]


def test_flagged_and_ascii_names_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("plain/a.png", b"x")
        archive.writestr("flagged/é.png", b"x")  # zipfile flags non-ASCII names as UTF-8
        archive.writestr(_LegacyName("legacy/ä.png"), b"x")  # cp437, the zip standard's code page
    names, warnings = extracted_names(path, tmp_path / "dest")
    assert names == ["plain/a.png", "flagged/é.png", "legacy/ä.png"]
    # only the unflagged name is judged; one letter is too little to tell cp437 from cp866
    assert warnings == [
        "a.zip: file names are not marked as UTF-8 and their code page is uncertain: read as cp437 "
        "('legacy/ä.png'; also plausible: cp866 'legacy/Д.png'); check the class names, "
        "or zip with a tool that writes UTF-8 names (7-Zip, or zip on macOS or Linux)"
    ]
