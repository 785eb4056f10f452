"""The synthetic population: families of young children, and who holds which child.

Families are invented on demand from the name lists; each child has true
details and an NHS number from the 999 test range, never issued to patients.
``allocate`` then deals whole families out to the organisations so each
holds the share of children the others also hold that ``generate`` asks for.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from hublink.nhs import check_digit
from hublink.synthetic.layouts import check_probability
from hublink.synthetic.names import BOYS, GIRLS, SURNAMES, feminine_form, form_for
from hublink.synthetic.places import random_postcode

#: Children are born in the five years up to and including this date. Fixed so
#: that a seed always gives the same files, whatever day the generator runs.
REFERENCE_DATE = date(2026, 3, 31)

# How many births a family has had in the five-year window, and how likely each is.
_BIRTHS_PER_FAMILY = (1, 2, 3, 4)
_BIRTHS_WEIGHTS = (50, 33, 13, 4)
# Shortest gap between non-twin births in one family, in days.
_SIBLING_GAP_DAYS = 300
# Share of shared families that are held by three or more organisations rather than two.
_MULTI_ORG_SHARE = 0.35


@dataclass(frozen=True)
class PopulationSettings:
    """Who the children are, apart from what organisations get wrong about them.

    These make linkage harder in the ways real populations do: people who are
    not the same child but look alike. Defaults are chosen to be realistic for
    an English or Welsh local authority; each says where its figure comes from.
    """

    same_sex_twins: float = 0.65
    """Share of twin pairs of one sex: about a third of twins are identical (always one sex)
    and half of the others are, so about two in three."""
    similar_twin_names: float = 0.3
    """Share of twin pairs given names with the same first letter (Isla and Ivy, Alfie and
    Archie): a common choice for twins, and the hardest relatives to keep apart."""
    mother_other_surname: float = 0.4
    """Share of families whose mother has another family name than the children: about half
    of births in England and Wales are outside marriage, and many such children take the
    father's name. It shows where a record carries the mother's name ("Baby" placeholders,
    ``ErrorRates.baby_placeholder``)."""
    double_barrelled: float = 0.06
    """Share of families whose children carry both parents' names hyphenated (Evans-Nowak),
    on top of the double-barrelled names in the family-name list."""
    shared_postcode: float = 0.3
    """Share of families that live in a postcode where an unrelated family already lives (a
    block of flats, a refuge, a street of small houses: a UK postcode covers about 15
    addresses). A busy postcode attracts more families, so a few hold many."""

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            check_probability(name, value)


@dataclass(frozen=True, slots=True)
class Child:
    """A synthetic child's true details; organisations hold copies with errors."""

    person_id: str
    given_name: str
    family_name: str
    date_of_birth: date
    sex: str
    postcode: str
    nhs_number: str
    mother_family_name: str = ""
    """The mother's family name as she bears it (Kowalska), which may not be the child's."""
    other_family_form: str = ""
    """The other parent's form of a gendered family name (Kowalski for a girl Kowalska), or
    empty when the name has one form."""


class Population:
    """An endless supply of families of young children, drawn on demand.

    Families are produced lazily so that only as many children are invented as
    the organisations need, and each NHS number is used once.
    """

    def __init__(
        self,
        rng: random.Random,
        twin_rate: float,
        settings: PopulationSettings | None = None,
    ) -> None:
        self._rng = rng
        self._twin_rate = twin_rate
        self._settings = settings or PopulationSettings()
        # Every family's postcode, once per family: drawing from it favours busy postcodes.
        self._postcodes: list[str] = []
        self._next_person = 1
        self._nhs_numbers: set[str] = set()
        self._first_day = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - 5) + timedelta(days=1)
        self._window_days = (REFERENCE_DATE - self._first_day).days + 1

    def families(self) -> Iterator[list[Child]]:
        while True:
            yield self._family()

    def _nhs_number(self) -> str:
        # Only the 999 range, which the NHS sets aside for testing and never issues.
        # About 909,000 of its numbers have a valid check digit; stop well short.
        if len(self._nhs_numbers) >= 800_000:
            raise ValueError("too many children for the 999 NHS number test range")
        while True:
            first_nine = f"999{self._rng.randrange(1_000_000):06d}"
            digit = check_digit(first_nine)
            if digit is None:
                continue
            number = f"{first_nine}{digit}"
            if number not in self._nhs_numbers:
                self._nhs_numbers.add(number)
                return number

    def _birth_dates(self, births: int) -> list[date]:
        # Spread births at least _SIBLING_GAP_DAYS apart: choose the free slack
        # uniformly, then add the minimum gaps back in.
        slack = self._window_days - 1 - (births - 1) * _SIBLING_GAP_DAYS
        points = sorted(self._rng.randint(0, slack) for _ in range(births))
        return [
            self._first_day + timedelta(days=point + i * _SIBLING_GAP_DAYS)
            for i, point in enumerate(points)
        ]

    def _surnames(self) -> tuple[str, str]:
        """The children's family name (in its masculine form) and the mother's own."""
        rng, settings = self._rng, self._settings
        family_name = rng.choice(SURNAMES)
        other = rng.choice(SURNAMES)
        while other == family_name:
            other = rng.choice(SURNAMES)
        draw = rng.random()
        if draw < settings.double_barrelled:
            return f"{family_name}-{other}", other
        if draw < settings.double_barrelled + settings.mother_other_surname:
            return family_name, other
        return family_name, family_name

    def _postcode(self) -> str:
        rng = self._rng
        if self._postcodes and rng.random() < self._settings.shared_postcode:
            postcode = rng.choice(self._postcodes)
        else:
            postcode = random_postcode(rng)
        self._postcodes.append(postcode)
        return postcode

    def _given_name(self, sex: str, used: set[str], like: str | None) -> str:
        """A name not yet used in the family; with ``like``, one with the same first letter
        when there is one."""
        names = GIRLS if sex == "F" else BOYS
        if like is not None:
            alike = [n for n in names if n[0] == like[0] and n not in used]
            if alike:
                return self._rng.choice(alike)
        given = self._rng.choice(names)
        while given in used:
            given = self._rng.choice(names)
        return given

    def _family(self) -> list[Child]:
        rng, settings = self._rng, self._settings
        family_name, mother_name = self._surnames()
        mother = form_for(mother_name, "F")
        postcode = self._postcode()
        births = rng.choices(_BIRTHS_PER_FAMILY, weights=_BIRTHS_WEIGHTS)[0]
        used_names: set[str] = set()
        children: list[Child] = []
        for born in self._birth_dates(births):
            twins = rng.random() < self._twin_rate
            sexes = ["F" if rng.random() < 0.5 else "M"]
            similar = False
            if twins:
                same = rng.random() < settings.same_sex_twins
                sexes.append(sexes[0] if same else {"F": "M", "M": "F"}[sexes[0]])
                similar = rng.random() < settings.similar_twin_names
            like: str | None = None
            for sex in sexes:
                given = self._given_name(sex, used_names, like)
                used_names.add(given)
                like = given if similar else None
                feminine = feminine_form(family_name)
                children.append(
                    Child(
                        person_id=f"P{self._next_person:07d}",
                        given_name=given,
                        family_name=form_for(family_name, sex),
                        date_of_birth=born,
                        sex=sex,
                        postcode=postcode,
                        nhs_number=self._nhs_number(),
                        mother_family_name=mother,
                        other_family_form=(
                            "" if feminine is None else family_name if sex == "F" else feminine
                        ),
                    )
                )
                self._next_person += 1
        rng.shuffle(children)
        return children


def allocate(
    rng: random.Random,
    population: Population,
    organisations: Sequence[str],
    records_per_org: int,
    overlap: float,
    duplicate_rate: float,
) -> dict[str, list[Child]]:
    """Decide which children each organisation holds, duplicates included.

    See ``generate`` for the scheme. Returns, per organisation, exactly
    ``records_per_org`` children (a duplicated child appears twice).
    """
    duplicates: dict[str, int] = {}
    distinct: dict[str, int] = {}
    for org in organisations:
        drawn = sum(rng.random() < duplicate_rate for _ in range(records_per_org))
        duplicates[org] = min(drawn, records_per_org // 2)
        distinct[org] = records_per_org - duplicates[org]

    held: dict[str, list[Child]] = {org: [] for org in organisations}
    families = population.families()

    if len(organisations) >= 2:
        remaining = {org: round(overlap * distinct[org]) for org in organisations}
        shared: list[tuple[list[Child], list[str]]] = []
        while True:
            active = [org for org in organisations if remaining[org] > 0]
            if len(active) >= 2:
                family = next(families)
                size = 2
                if len(active) >= 3 and rng.random() < _MULTI_ORG_SHARE:
                    size = rng.randint(3, len(active))
                # Serve the organisations furthest from their target first, so
                # the targets run out together and few leftovers remain.
                tiebreak = {org: rng.random() for org in active}
                ranked = sorted(active, key=lambda org: (-remaining[org], tiebreak[org]))
                holders = ranked[:size]
                for org in holders:
                    held[org].extend(family)
                    remaining[org] -= len(family)
                shared.append((family, holders))
            elif len(active) == 1:
                # One organisation still short: let it also hold families the
                # others already share, so nobody else's count moves.
                org = active[0]
                candidates = [entry for entry in shared if org not in entry[1]]
                rng.shuffle(candidates)
                for family, holders in candidates:
                    if remaining[org] <= 0:
                        break
                    held[org].extend(family)
                    holders.append(org)
                    remaining[org] -= len(family)
                if remaining[org] > 0:
                    family = next(families)
                    partner = rng.choice([other for other in organisations if other != org])
                    for holder in (org, partner):
                        held[holder].extend(family)
                        remaining[holder] -= len(family)
                    shared.append((family, [org, partner]))
            else:
                break

    for org in organisations:
        children = held[org][: distinct[org]]
        while len(children) < distinct[org]:
            family = next(families)
            children.extend(family[: distinct[org] - len(children)])
        children.extend(rng.sample(children, duplicates[org]))
        rng.shuffle(children)
        held[org] = children
    return held
