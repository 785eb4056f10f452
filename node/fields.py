"""Normalisers for the fields a project adds beyond the six, and postcodes of other countries.

A project's linkage schema may add features such as an address line, a town or
a local identifier; each names one normaliser from a small set
(``hublink.spec.FIELD_NORMALISERS``), so what a field means is data in the
schema and not code per field:

* ``free_text``: a town or any short text. Folded as names are (accents, case,
  apostrophes), punctuation becomes a space, digits stay.
* ``number_and_street``: an address line. Free text, and then the forms the same
  address is written in are brought together: "Flat 2, 10 High St", "2/10 High
  Street" and "flat 2 10 high st." all give "flat 2 10 high street".
* ``code``: a local identifier. Upper case, with the separators systems print
  inside codes (spaces, hyphens, slashes, dots) removed.

The postcode feature may name a country (``hublink.spec.POSTCODE_COUNTRIES``):
GB (the default, ``node.normalise.postcode``), AU (four digits) or "any".

The contract differs from ``node.normalise`` in one way, so that nothing is
silently blanked: a blank value gives ``None``; a placeholder ("unknown", "N/A",
"no fixed abode", "0000") raises :class:`Placeholder`; a value present but of
no usable form raises :class:`~node.normalise.NormalisationError`. Both carry a
short reason, never the value, which ``node.prepare`` counts by field and reason.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Final

from hublink.spec import DEFAULT_POSTCODE_COUNTRY, FIELD_NORMALISERS, POSTCODE_COUNTRIES
from node import normalise
from node.normalise import NormalisationError

__all__ = [
    "NORMALISERS",
    "Placeholder",
    "code",
    "free_text",
    "number_and_street",
    "postcode_for",
]


class Placeholder(NormalisationError):
    """A value written in place of one ("unknown", "N/A"): missing, counted as a placeholder."""


FieldNormaliser = Callable[[str | None], str | None]

#: Texts typed when the value is not known, compared after folding (punctuation as spaces).
_PLACEHOLDERS: Final[frozenset[str]] = frozenset(
    {"unknown", "not known", "notknown", "unk", "n a", "na", "nk", "n k", "none", "null",
     "nil", "not stated", "not given", "not recorded", "tbc", "tba", "to be confirmed",
     "no fixed abode", "nfa", "no address", "address unknown", "not applicable", "blank"}
)  # fmt: skip
_MAX_TEXT: Final[int] = 200
_MAX_CODE: Final[int] = 64


def _folded_words(raw: str) -> list[str]:
    """Lower-case ASCII words: accents and apostrophes dropped, other punctuation a space."""
    folded = normalise._fold_to_ascii_lower(unicodedata.normalize("NFKC", raw))
    return re.sub(r"[^a-z0-9]+", " ", folded).split()


def _check_placeholder(words: list[str]) -> None:
    text = " ".join(words)
    if text in _PLACEHOLDERS or (len(text) > 1 and len(set(text)) == 1 and text[0] in "x0?-"):
        raise Placeholder("a placeholder, not a value")


def _text_words(raw: str | None) -> list[str] | None:
    if raw is None or not raw.strip():
        return None
    if len(raw) > _MAX_TEXT:
        raise NormalisationError(f"longer than {_MAX_TEXT} characters")
    words = _folded_words(raw)
    if not words:
        if all(not ch.isalnum() for ch in raw):
            raise Placeholder("a placeholder, not a value")
        raise NormalisationError("no Latin letters or digits")
    _check_placeholder(words)
    return words


def free_text(raw: str | None) -> str | None:
    """A town or other short text: lower-case ASCII words separated by single spaces.

    "Ynys Môn" gives "ynys mon", "Llanfair-ym-Muallt" "llanfair ym muallt",
    "St. Mary's" "st marys". Placeholders raise :class:`Placeholder`; text with
    no Latin letter or digit (another script only) is invalid.
    """
    words = _text_words(raw)
    return None if words is None else " ".join(words)


#: Street types written short, and the word they stand for. Only the last word of the street
#: is expanded: "St" ends "High St" (street) but begins "St Mary's Road" (saint).
_STREET_TYPES: Final[Mapping[str, str]] = {
    "st": "street", "str": "street", "rd": "road", "ave": "avenue", "av": "avenue",
    "ln": "lane", "dr": "drive", "cl": "close", "ct": "court", "cres": "crescent",
    "cresc": "crescent", "gdns": "gardens", "gdn": "garden", "pl": "place", "sq": "square",
    "ter": "terrace", "terr": "terrace", "tce": "terrace", "gr": "grove", "grn": "green",
    "pk": "park", "wy": "way", "hl": "hill", "bvd": "boulevard", "blvd": "boulevard",
    "mws": "mews", "pde": "parade", "cotts": "cottages", "rw": "row",
}  # fmt: skip
#: Words that open a flat or unit number, all written "flat".
_SUB_BUILDING: Final[frozenset[str]] = frozenset(
    {"flat", "flt", "fl", "apartment", "apt", "apts", "unit", "room", "rm", "maisonette"}
)
_NUMBER: Final[re.Pattern[str]] = re.compile(r"[0-9]+[a-z]?")


def _join_number_letters(words: list[str]) -> list[str]:
    """ "10 a" -> "10a": a house number's letter written apart from it."""
    out: list[str] = []
    for word in words:
        if out and len(word) == 1 and word.isalpha() and out[-1].isdigit():
            out[-1] += word
        else:
            out.append(word)
    return out


def number_and_street(raw: str | None) -> str | None:
    """An address line as "[flat N] [number] street words", street type written in full.

    Commas, full stops and case do not matter; "Flat 2, 10 High St", "Apt 2 10 High
    Street", "2/10 High St" and "FLAT 2 10 HIGH STREET" all give "flat 2 10 high
    street". A letter written apart from its number joins it ("10 A" is "10a"); a
    range keeps its hyphen ("10-12"). A named house needs no number ("Rose
    Cottage, Mill Ln" gives "rose cottage mill lane"). A line with no letters
    at all ("10") has no street and is invalid.
    """
    if raw is None or not raw.strip():
        return None
    # "2/10" and "2 / 10" are flat 2 of number 10; "10-12" is a range of numbers.
    text = re.sub(r"\b([0-9]+[a-zA-Z]?)\s*/\s*([0-9]+[a-zA-Z]?)\b", r"flat \1 \2", raw)
    text = re.sub(r"\b([0-9]+)\s*-\s*([0-9]+)\b", r"\1range\2", text)
    words = _text_words(text)
    if words is None:
        return None
    words = [w.replace("range", "-") if re.fullmatch(r"[0-9]+range[0-9]+", w) else w for w in words]
    words = _join_number_letters(words)
    if not any(ch.isalpha() for w in words if not _NUMBER.fullmatch(w) for ch in w):
        raise NormalisationError("no street name")
    out: list[str] = []
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if word in _SUB_BUILDING and (
            _NUMBER.fullmatch(following) or (len(following) == 1 and following.isalpha())
        ):
            out.append("flat")
        else:
            out.append(word)
    last = len(out) - 1
    if out[last] in _STREET_TYPES and last > 0 and not _NUMBER.fullmatch(out[last - 1]):
        out[last] = _STREET_TYPES[out[last]]
    return " ".join(out)


def code(raw: str | None) -> str | None:
    """A local identifier: upper-case letters and digits, separators removed.

    "ab-123 456", "AB123456" and "AB/123.456" all give "AB123456". Leading zeros
    stay (they may be part of the code). Anything other than letters, digits
    and separators is invalid; a run of one character ("0000", "XXXX") or a
    placeholder ("N/A", "unknown") raises :class:`Placeholder`.
    """
    if raw is None or not raw.strip():
        return None
    _check_placeholder(_folded_words(raw))
    compact = re.sub(r"[\s\-/.\u2010-\u2015]", "", unicodedata.normalize("NFKC", raw)).upper()
    if not compact:
        raise Placeholder("a placeholder, not a value")
    if not re.fullmatch(r"[A-Z0-9]+", compact, re.ASCII):
        raise NormalisationError("not letters and digits")
    if len(compact) > _MAX_CODE:
        raise NormalisationError(f"longer than {_MAX_CODE} characters")
    if len(compact) > 1 and len(set(compact)) == 1:
        raise Placeholder("a placeholder, not a value")
    return compact


def australian_postcode(raw: str | None) -> str | None:
    """An Australian postcode: four digits ("2000", "0800").

    Three digits are read as a four-digit code that lost its leading zero in a
    spreadsheet ("800" is "0800", Darwin). "0000" is a placeholder; anything
    else that is not four digits is invalid.
    """
    if raw is None or not raw.strip():
        return None
    compact = re.sub(r"\s", "", unicodedata.normalize("NFKC", raw))
    if re.fullmatch(r"[0-9]{3}", compact, re.ASCII):
        compact = "0" + compact
    if not re.fullmatch(r"[0-9]{4}", compact, re.ASCII):
        _check_placeholder(_folded_words(raw))
        raise NormalisationError("not an Australian postcode (four digits)")
    if compact == "0000":
        raise Placeholder("a placeholder, not a value")
    return compact


def any_postcode(raw: str | None) -> str | None:
    """A postcode of no fixed country: two to ten letters and digits, upper case, with spaces,
    hyphens and dots removed ("d02 x285" gives "D02X285", "75008" stays)."""
    if raw is None or not raw.strip():
        return None
    _check_placeholder(_folded_words(raw))
    compact = re.sub(r"[\s\-.]", "", unicodedata.normalize("NFKC", raw)).upper()
    if not re.fullmatch(r"[A-Z0-9]{2,10}", compact, re.ASCII):
        raise NormalisationError("not a postcode (2 to 10 letters and digits)")
    if len(set(compact)) == 1:
        raise Placeholder("a placeholder, not a value")
    return compact


NORMALISERS: Final[Mapping[str, FieldNormaliser]] = {
    "free_text": free_text,
    "number_and_street": number_and_street,
    "code": code,
}
"""Each normaliser a schema feature may name, by the name it uses (hublink.spec)."""

_POSTCODES: Final[Mapping[str, FieldNormaliser]] = {
    "GB": normalise.postcode,
    "AU": australian_postcode,
    "any": any_postcode,
}

if set(NORMALISERS) != set(FIELD_NORMALISERS) or set(_POSTCODES) != set(POSTCODE_COUNTRIES):
    raise ImportError("node.fields and hublink.spec disagree on the normalisers they know")


def postcode_for(country: str = DEFAULT_POSTCODE_COUNTRY) -> FieldNormaliser:
    """The postcode normaliser of a country (``hublink.spec.POSTCODE_COUNTRIES``)."""
    try:
        return _POSTCODES[country]
    except KeyError:
        raise ValueError(f"no postcode normaliser for country {country!r}") from None
