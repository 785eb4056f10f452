"""Zipf-like populations of thousands of pronounceable synthetic names, and the public list.

The project's generator draws from a few hundred given names; the ceiling in
issue 20 is judged at realistic distributions: thousands of names, Zipf-like,
with the population's most common names more common than a public list says.
Names are built deterministically from syllables, so they look like names to
q-gram hashing (shared bigrams such as "an", "el") without being anyone's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

_ONSETS = (
    "b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "r",
    "s", "sh", "st", "t", "th", "tr", "v", "w", "z", "", "", "",
)  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "ai", "ea", "ie", "y", "ou")
_CODAS = ("", "", "", "n", "l", "r", "s", "th", "nd", "m", "x", "ck", "ll", "nn", "t")
_GIVEN_ENDINGS = ("a", "ah", "ie", "y", "o", "an", "el", "en", "ia", "us", "yn", "")
_FAMILY_ENDINGS = ("son", "ton", "ley", "man", "ford", "well", "er", "ham", "by", "ett", "s", "")
_OUTWARD = ("AB", "B", "BS", "CF", "CR", "E", "G", "L", "LS", "M", "N", "NE", "S", "SW", "W")
_INWARD = "ABDEFGHJLNPQRSTUWXYZ"


def syllable_names(count: int, *, seed: int, endings: tuple[str, ...]) -> list[str]:
    """``count`` distinct lower-case names of one to three syllables plus an ending."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        parts = [
            rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
            for _ in range(rng.choice((1, 2, 2, 2, 3)))
        ]
        name = "".join(parts) + rng.choice(endings)
        if 3 <= len(name) <= 12 and name not in seen:
            seen.add(name)
            out.append(name)
    return out


def zipf_weights(count: int, exponent: float = 1.0, offset: float = 10.0) -> np.ndarray:
    """Zipf-Mandelbrot weights 1/(rank+offset)^exponent, summing to one."""
    w = 1.0 / (np.arange(count) + offset) ** exponent
    return np.asarray(w / w.sum())


@dataclass(frozen=True)
class NameList:
    """A list of names with frequencies (public, or the population's own)."""

    names: tuple[str, ...]
    frequencies: tuple[float, ...]

    def counts(self) -> dict[str, float]:
        return dict(zip(self.names, self.frequencies, strict=True))


def population_and_public(
    names: list[str], *, seed: int, sharpen: float = 1.15, noise: float = 0.3
) -> tuple[NameList, NameList]:
    """The population's name frequencies and a public list that approximates them.

    The public list is Zipf over ``names`` in list order. The population's
    frequencies are the public ones raised to ``sharpen`` (its most common names
    over-represented) and multiplied by log-normal noise of spread ``noise``,
    so ranks differ from the public list's beyond the first few.
    """
    rng = np.random.default_rng(seed)
    public = zipf_weights(len(names))
    own = public**sharpen * rng.lognormal(0.0, noise, len(names))
    own /= own.sum()
    return (
        NameList(tuple(names), tuple(float(x) for x in own)),
        NameList(tuple(names), tuple(float(x) for x in public)),
    )


@dataclass(frozen=True)
class Person:
    """A synthetic person's normalised identifiers, as a node's normaliser outputs them."""

    given_name: str
    family_name: str
    date_of_birth: str  # DDMMYYYY
    sex: str
    postcode: str
    nhs_number: str

    def values(self) -> dict[str, str]:
        return {
            "given_name": self.given_name,
            "family_name": self.family_name,
            "date_of_birth": self.date_of_birth,
            "sex": self.sex,
            "postcode": self.postcode,
            "nhs_number": self.nhs_number,
        }


@dataclass(frozen=True)
class ZipfPopulation:
    """People drawn from Zipf-like name distributions, with the attacker's public lists."""

    people: tuple[Person, ...]
    public_given: NameList
    public_family: NameList


def _nhs_number(rng: random.Random) -> str:
    """A synthetic NHS number in the 999 test range with a valid modulus-11 check digit."""
    while True:
        first = "999" + "".join(rng.choice("0123456789") for _ in range(6))
        total = sum(int(d) * w for d, w in zip(first, range(10, 1, -1), strict=True))
        digit = 11 - total % 11
        if digit != 10:
            return first + str(0 if digit == 11 else digit)


def zipf_population(
    size: int, *, given_names: int = 3000, family_names: int = 5000, seed: int = 0
) -> ZipfPopulation:
    """``size`` people whose given and family names follow Zipf-like distributions.

    Each given name has a sex (its list position's parity), so sex carries no
    more than the name does. Dates fall in the five years before 2026-04-01.
    """
    given = syllable_names(given_names, seed=seed * 7 + 1, endings=_GIVEN_ENDINGS)
    family = syllable_names(family_names, seed=seed * 7 + 2, endings=_FAMILY_ENDINGS)
    own_given, public_given = population_and_public(given, seed=seed * 7 + 3)
    own_family, public_family = population_and_public(family, seed=seed * 7 + 4)
    nrng = np.random.default_rng(seed * 7 + 5)
    g_idx = nrng.choice(len(given), size=size, p=np.array(own_given.frequencies))
    f_idx = nrng.choice(len(family), size=size, p=np.array(own_family.frequencies))
    rng = random.Random(seed * 7 + 6)
    start = date(2021, 4, 1)
    people = []
    for gi, fi in zip(g_idx, f_idx, strict=True):
        born = start + timedelta(days=rng.randrange(5 * 365))
        postcode = (
            f"{rng.choice(_OUTWARD)}{rng.randrange(1, 30)} "
            f"{rng.randrange(10)}{rng.choice(_INWARD)}{rng.choice(_INWARD)}"
        )
        people.append(
            Person(
                given[gi],
                family[fi],
                born.strftime("%d%m%Y"),
                "F" if gi % 2 else "M",
                postcode,
                _nhs_number(rng),
            )
        )
    return ZipfPopulation(tuple(people), public_given, public_family)


def approximate_public(
    truth: list[str], *, seed: int, noise: float = 0.3, extra: list[str] | None = None
) -> NameList:
    """A public list for a population whose names are known only to the test: the observed
    frequencies blurred by log-normal noise (and flattened), plus unseen ``extra`` names.

    For the project's generator, which has no public list of its own.
    """
    rng = np.random.default_rng(seed)
    counted: dict[str, float] = {}
    for name in truth:
        counted[name] = counted.get(name, 0.0) + 1.0
    for name in extra or []:
        counted.setdefault(name, 0.5)
    names = sorted(counted)
    freq = np.array([counted[n] for n in names]) ** (1 / 1.15) * rng.lognormal(0, noise, len(names))
    freq /= freq.sum()
    return NameList(tuple(names), tuple(float(x) for x in freq))
