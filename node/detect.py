"""Telling a text export's encoding and delimiter, so a node reads every row of it.

Councils and NHS systems export CSV as UTF-8 (with or without a byte-order
mark), as Windows-1252 (what Excel on Windows calls "CSV") or Latin-1, with
commas, semicolons (Excel in a continental locale), tabs or pipes. A file
read with the wrong encoding loses exactly the children with accented names
(Siân, José, Zoë), so the rule is: the encoding is either told apart with
certainty, or the run stops and names the ``input.encoding`` to set.

Encodings are decided in this order, on the whole file (decoding is cheap;
guessing from the first block is how a file's one accented name is missed):

1. a byte-order mark: UTF-8 or UTF-16;
2. the whole file decodes as UTF-8: UTF-8 (ASCII is a subset);
3. otherwise Windows-1252, if the whole file decodes under it and every
   non-ASCII character it gives is one a Western name or export holds (an
   accented Latin letter, £, €, curly quotes, dashes), with no run of three
   such letters together. Windows-1252 agrees with Latin-1 on every letter
   (they differ only where Latin-1 has control characters no export
   writes), so one choice reads both. A file in another single-byte code
   page (Polish cp1250, Cyrillic cp1251) nearly always fails that test: its
   letters come out as symbols or as runs of accented letters;
4. anything else stops the run, naming charset-normalizer's guess as the
   ``input.encoding`` to set. charset-normalizer is not asked to decide:
   for a file whose only non-ASCII text is a few names, its guess is
   unreliable (for "Siân" alone it answers big5; for a page of
   Western names, cp1250), while a UK export is UTF-8 or Windows-1252.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from charset_normalizer import from_bytes

from node.errors import NodeError

#: Delimiters a node recognises by itself: comma, semicolon, tab and pipe.
DELIMITERS: Final[str] = ",;\t|"

_BLOCK: Final[int] = 1 << 20
_SAMPLE_BYTES: Final[int] = 1 << 16
_WINDOWS: Final[str] = "cp1252"
#: Non-ASCII characters of Windows-1252 that a Western name or an export holds.
_WESTERN_LETTERS: Final[str] = "À-ÖØ-öø-ÿŒœŠšŽžŸ"
# No-break space, pound, euro, curly quotes, dashes, ellipsis, acute, middle dot, degree.
_WESTERN_MARKS: Final[str] = (
    "\u00a0\u00a3\u20ac\u2018\u2019\u201a\u201c\u201d\u201e\u2013\u2014\u2026\u00b4\u00b7\u00b0"
)
_IMPLAUSIBLE: Final[re.Pattern[str]] = re.compile(f"[^\x00-\x7f{_WESTERN_LETTERS}{_WESTERN_MARKS}]")
_LETTER_RUN: Final[re.Pattern[str]] = re.compile(f"[{_WESTERN_LETTERS}]{{3}}")


class UnknownEncoding(NodeError, ValueError):
    """The file's encoding could not be told apart; ``guess`` is the best one to set."""

    def __init__(self, message: str, guess: str) -> None:
        self.guess = guess
        super().__init__(message)


def _blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            yield block


def decodes_as(path: Path, encoding: str) -> bool:
    """Whether every byte of the file decodes under ``encoding`` (read a block at a time)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        for block in _blocks(path):
            decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _non_ascii_lines(path: Path) -> bytes:
    """Up to 64 KiB of the lines holding non-ASCII bytes: what a detector should judge."""
    kept: list[bytes] = []
    size = 0
    with path.open("rb") as handle:
        for line in handle:
            if max(line, default=0) > 0x7F:
                kept.append(line)
                size += len(line)
                if size >= _SAMPLE_BYTES:
                    break
    return b"".join(kept)


def detect_encoding(path: Path) -> str:
    """The Python codec name to read ``path`` with; UnknownEncoding if it cannot be told."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if decodes_as(path, "utf-8"):
        return "utf-8"
    if _plausibly_western(path):
        return _WINDOWS
    best = from_bytes(_non_ascii_lines(path)).best()
    guess = best.encoding if best is not None else _WINDOWS
    if guess.startswith("utf_16") and decodes_as(path, guess):
        return guess
    raise UnknownEncoding(
        f"the file is not UTF-8, and not Windows-1252 or Latin-1 either; set input.encoding "
        f"(it looks like {guess!r})",
        guess,
    )


def _plausibly_western(path: Path) -> bool:
    """Whether the file decodes as Windows-1252 into characters a UK export would hold."""
    decoder = codecs.getincrementaldecoder(_WINDOWS)("strict")
    try:
        for block in _blocks(path):
            text = decoder.decode(block)
            if _IMPLAUSIBLE.search(text) or _LETTER_RUN.search(text):
                return False
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def detect_delimiter(sample: str) -> str:
    """The delimiter (one of ``DELIMITERS``) that splits the sample's lines most consistently.

    Each candidate splits the first lines with the csv module (so quoted cells
    holding the others do not count); the winner is the one for which most
    lines have the header's number of cells, more than one. Ties go to the
    one giving more columns, then to the order of ``DELIMITERS``. A file with
    one column is read with a comma.
    """
    lines = sample.splitlines(keepends=True)[:50]
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line of a sample may be cut short
    best = (0, 0, ",")
    for rank, delimiter in enumerate(DELIMITERS):
        try:
            rows = list(csv.reader(io.StringIO("".join(lines)), delimiter=delimiter))
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        agreeing = sum(1 for row in rows if len(row) == width)
        score = (agreeing, width, -rank)
        if score > (best[0], best[1], -DELIMITERS.index(best[2])):
            best = (agreeing, width, delimiter)
    return best[2]
