"""Which legacy code page wrote some bytes that are not UTF-8: a CSV saved by an old Excel, the entry
names of a zip made on Windows. One guesser for every input, so a file and a zip agree.

charset-normalizer (the detector `requests` uses) scores each candidate decoding by how plausible it is
as language ("chaos", 0 = clean). On short samples (a few class names, a small CSV) several pages are
often equally plausible, so two policies are added on top, each for a reason:

- **Western first.** When a Western page (Windows-1252/Latin-1, or DOS's cp437/cp850 for zips) is
  plausible at all, or reads the bytes as one of the plausible pages does, it is chosen: on short
  samples the detector often prefers a regional cousin (ISO-8859-10 for French) that turns "è" into
  "č", and Western text is the most common by far.
- **East Asian ties.** Short Chinese names read about as cleanly in Korean cp949; among tied East Asian
  pages the more widely used wins (`_EAST_ASIAN_ORDER`), and the others are returned as rivals so the
  caller can tell the user it is unsure.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["CodePageGuess", "guess_code_page"]

_EAST_ASIAN_ORDER = ("gb18030", "gbk", "cp932", "big5", "cp950", "cp949", "euc_jp", "euc_kr")
# Two readings whose chaos differs by less than this are both plausible: short samples rarely
# separate code pages further.
_CLOSE_CHAOS = 0.05
_SAMPLE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class CodePageGuess:
    """The chosen codec (a Python codec name), and the codecs that read the bytes about as plausibly
    but into other text (empty when the choice is clear)."""

    codec: str
    rivals: list[str] = field(default_factory=list)


def guess_code_page(
    raw: bytes, candidates: Sequence[str] | None = None, western: Sequence[str] = ("cp1252", "latin_1")
) -> CodePageGuess | None:
    """The legacy code page of `raw` (bytes that are not UTF-8), among `candidates` (charset-normalizer's
    names, e.g. "cp866"; all it knows when None), or None when none decodes them. `western`: the
    Western pages of this kind of input, in order (a zip's names: DOS's cp437, cp850), chosen when
    the detector finds one plausible or one of its plausible readings is theirs. Only the first MiB
    is scored; the caller decodes the whole strictly."""
    from charset_normalizer import from_bytes

    matches = [m for m in from_bytes(raw[:_SAMPLE_BYTES], cp_isolation=list(candidates) if candidates else None)
               if m.encoding not in ("utf_8", "ascii")]
    if not matches:
        return None
    least = min(m.chaos for m in matches)
    tied = sorted((m for m in matches if m.chaos < least + _CLOSE_CHAOS),
                  key=lambda m: (_EAST_ASIAN_ORDER.index(m.encoding) if m.encoding in _EAST_ASIAN_ORDER
                                 else len(_EAST_ASIAN_ORDER), m.chaos))
    readings: dict[str, str] = {}
    for match in tied:
        readings.setdefault(str(match), _name(match.encoding))
    chosen = next(iter(readings.values()))
    plausible = [m for m in matches if m.encoding in western]
    if plausible:
        chosen = _name(min(plausible, key=lambda m: m.chaos).encoding)
    else:
        for page in western:
            try:
                if raw[:_SAMPLE_BYTES].decode(page) in readings:
                    chosen = _name(page)
                    break
            except UnicodeDecodeError:
                continue
    text = raw[:_SAMPLE_BYTES].decode(chosen, errors="replace")
    return CodePageGuess(chosen, [codec for reading, codec in readings.items() if reading != text])


def _name(encoding: str) -> str:
    return codecs.lookup(encoding).name
