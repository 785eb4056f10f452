"""Splitting a full-name column into given and family names, inside the node.

Childcare and school systems often hold a child's name in one column. The
linkage schema hashes given and family names apart (and derives features
from each), so a node config may map such a column as ``full_name`` and the
node splits it here, before normalising. The rules, and why:

* "SURNAME, Forename Middle": a comma puts the family name first, as NHS
  and many council systems write it.
* Otherwise, words written wholly in capitals among others that are not
  ("Siân JONES", "JONES Siân") are the family name, the other common house
  style.
* Otherwise the last word is the family name, with the particles before it
  that belong to it: "Rhys ap Gwilym", "Anna van der Berg", "Lucía de la
  Cruz", "Mc Donald" written apart, "Llwyd-ap Gwilym". Mc, Mac and O' joined to the name
  ("McDonald", "O'Neill") are one word already.
* Everything else is the given name, middle names included, as a separate
  given-name column would hold them.

An unhyphenated double surname ("Lloyd Jones") cannot be told from a middle
name without a comma or capitals; it splits as given "… Lloyd", family
"Jones". The normaliser strips titles afterwards, so "Mr John Smith" works.
"""

from __future__ import annotations

from typing import Final

#: Words that start a family name when they stand before its last word.
PARTICLES: Final[frozenset[str]] = frozenset(
    {
        "ap", "ab", "ferch", "verch",  # Welsh: son of, daughter of
        "van", "von", "der", "den", "ter", "ten", "vande", "vander",
        "de", "del", "della", "dela", "di", "da", "das", "dos", "do", "du", "des",
        "la", "le", "lo", "st", "st.", "saint",
        "mc", "mac", "o", "o'", "bin", "binti", "bint", "ibn", "al", "el",
    }
)  # fmt: skip


def _is_capitals(word: str) -> bool:
    """A word written wholly in capitals: at least two letters, no lower-case one."""
    letters = [ch for ch in word if ch.isalpha()]
    return len(letters) >= 2 and all(ch.isupper() for ch in letters)


def _ends_in_particle(word: str) -> bool:
    """A particle, alone or closing a hyphenated word ("Llwyd-ap" in "Llwyd-ap Gwilym")."""
    return word.casefold().rsplit("-", 1)[-1] in PARTICLES


def split_full_name(raw: str) -> tuple[str, str]:
    """(given, family) from a full name, each as written (normalising comes later)."""
    text = " ".join(raw.split())
    if not text:
        return "", ""
    if "," in text:
        family, _, given = text.partition(",")
        return given.strip(" ,"), family.strip(" ,")
    words = text.split(" ")
    if len(words) == 1:
        return ("", text) if _is_capitals(text) else (text, "")
    capitals = [_is_capitals(w) for w in words]
    if any(capitals) and not all(capitals):
        pairs = list(zip(words, capitals, strict=True))
        return " ".join(w for w, c in pairs if not c), " ".join(w for w, c in pairs if c)
    start = len(words) - 1
    while start > 1 and _ends_in_particle(words[start - 1]):
        start -= 1
    return " ".join(words[:start]), " ".join(words[start:])
