"""Synthetic children's records for demos, tests and benchmarks.

Three organisations in an English Family Hub or a Welsh Flying Start area each
hold records about the same young children, typed into different systems with
different layouts, spellings and mistakes. Linkage is only worth measuring
against data that looks like that, and real children's records can never be
used, so this module invents them: one CSV per organisation plus a ground-truth
file saying which rows are the same child.

Everything here is made up. Names are drawn at random from hand-written lists
of common UK and Welsh names, postcodes are validly shaped but built from
random inward codes, and NHS numbers come only from the 999 test range (never
issued to patients) with a correct modulus-11 check digit. Output depends only
on the arguments and the seed: a fixed reference date is used instead of
today, and all randomness comes from one ``random.Random(seed)``.
"""

from __future__ import annotations

import csv
import dataclasses
import random
import unicodedata
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from hublink.nhs import check_digit

if TYPE_CHECKING:
    from hublink.spec import LinkageSpec
    from node.prepare import PreparedRecord

__all__ = [
    "DEFAULT_LAYOUTS",
    "FIELDS",
    "REFERENCE_DATE",
    "ErrorRates",
    "GeneratedData",
    "LinkageQuality",
    "OrganisationLayout",
    "Quality",
    "generate",
    "pairwise_quality",
]

#: Children are born in the five years up to and including this date. Fixed so
#: that a seed always gives the same files, whatever day the generator runs.
REFERENCE_DATE = date(2026, 3, 31)

#: Linkage fields an organisation layout may map to CSV columns.
FIELDS = ("given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number")

# --------------------------------------------------------------------------- names
# Lists of common names are facts about the population; these were written out
# by hand for this module. They deliberately include the awkward cases a
# normaliser must survive: accents (Siân, Zoë), hyphens (Lily-Mae,
# Lloyd-Davies), apostrophes (O'Brien), spaces (ap Rhys, de Souza) and very
# short names (Li, Cai).

_GIRLS = (
    "Olivia", "Amelia", "Isla", "Ava", "Lily", "Freya", "Ivy", "Florence", "Isabella", "Mia",
    "Willow", "Rosie", "Sophia", "Sophie", "Elsie", "Grace", "Evie", "Poppy", "Ella", "Evelyn",
    "Charlotte", "Sienna", "Daisy", "Harper", "Matilda", "Emily", "Millie", "Isabelle", "Phoebe",
    "Ruby", "Alice", "Sofia", "Bonnie", "Maisie", "Esme", "Hallie", "Layla", "Ada", "Eleanor",
    "Elizabeth", "Margaret", "Catherine", "Katherine", "Jessica", "Rebecca", "Victoria",
    "Alexandra", "Josephine", "Harriet", "Penelope", "Madeleine", "Gabriella", "Louisa", "Emma",
    "Hannah", "Lucy", "Chloe", "Chloé", "Zoë", "Renée", "Siân", "Ffion", "Cerys", "Megan", "Nia",
    "Seren", "Alys", "Mali", "Lowri", "Carys", "Gwen", "Eleri", "Rhiannon", "Angharad", "Bethan",
    "Catrin", "Gwenllian", "Heledd", "Manon", "Elin", "Efa", "Lili", "Aisha", "Fatima", "Maryam",
    "Zara", "Amira", "Anaya", "Priya", "Zuzanna", "Lily-Mae", "Mary-Jane", "Niamh", "Aoife",
)  # fmt: skip

_BOYS = (
    "Oliver", "Noah", "George", "Arthur", "Muhammad", "Leo", "Harry", "Oscar", "Archie", "Henry",
    "Theodore", "Freddie", "Jack", "Charlie", "Theo", "Jacob", "William", "Thomas", "Alfie",
    "Finley", "Lucas", "Isaac", "Edward", "Alexander", "Joshua", "James", "Samuel", "Joseph",
    "Benjamin", "Daniel", "Matthew", "Sebastian", "Elijah", "Zachary", "Maximilian", "Frederick",
    "Nicholas", "Christopher", "Anthony", "Robert", "Richard", "David", "Gareth", "Ethan", "Max",
    "Reuben", "Albie", "Teddy", "Ronnie", "Rhys", "Dafydd", "Osian", "Macsen", "Gruffudd", "Ioan",
    "Iwan", "Cai", "Llŷr", "Steffan", "Tomos", "Gethin", "Aled", "Huw", "Ifan", "Owain", "Elis",
    "Tudur", "Guto", "Siôn", "Llywelyn", "Gwion", "Deio", "Harri", "Jac", "Mohammed", "Yusuf",
    "Ibrahim", "Aarav", "Arjun", "Zain", "Kai", "Ayaan", "Oisín", "Cian", "Jean-Paul", "Kacper",
    "Jakub", "Mateo", "José", "Ali",
)  # fmt: skip

_SURNAMES = (
    # Welsh, including patronymic forms and Welsh spellings
    "Jones", "Davies", "Evans", "Williams", "Thomas", "Roberts", "Hughes", "Lewis", "Morgan",
    "Griffiths", "Edwards", "Owen", "Price", "Jenkins", "Rees", "Lloyd", "Powell", "Pritchard",
    "Bowen", "Howells", "Llewellyn", "Vaughan", "Pugh", "Prosser", "Parry", "Bevan", "Probert",
    "Gwynne", "Meredith", "Watkins", "Humphreys", "Rowlands", "Ellis", "Foulkes", "Ifans",
    "Wynne", "Tudor", "Gruffydd", "Cadwaladr", "Pryce", "Hopkins", "Morris", "Phillips", "James",
    "Harries", "Griffith", "Llwyd", "Gwilym", "Rhydderch", "Parri", "ap Rhys", "ap Gwilym",
    "ab Owain", "ap Dafydd",
    # English
    "Smith", "Taylor", "Brown", "Wilson", "Johnson", "Walker", "Wright", "Robinson", "Thompson",
    "White", "Green", "Hall", "Wood", "Harris", "Martin", "Jackson", "Clarke", "Clark", "Turner",
    "Hill", "Scott", "Cooper", "Ward", "Moore", "King", "Watson", "Baker", "Harrison", "Young",
    "Allen", "Mitchell", "Anderson", "Lee", "Bell", "Parker", "Davis", "Bennett", "Carter",
    "Shaw", "Cook", "Richardson", "Marshall", "Chapman", "Webb", "Rogers", "Gray", "Mason",
    "Holmes", "Palmer", "Knight", "Fisher", "Stevens", "Barnes", "Dixon", "Fletcher", "Hunt",
    "Butler", "Lawrence", "Russell", "Gibson", "Matthews", "Hudson", "Wells", "Spencer",
    "Foster", "Graham", "Simpson", "Barker", "Pearson", "Atkinson", "Hart", "Fox", "Cole",
    "Rose", "Dawson", "Hayes", "Newton", "Booth", "Burton", "Sutton", "Payne", "Lowe", "Day",
    # Irish and Scottish
    "O'Brien", "O'Connor", "O'Neill", "O'Sullivan", "O'Reilly", "O'Donnell", "O'Hara",
    "McCarthy", "MacDonald", "McLaughlin", "Campbell", "Stewart", "Murray", "Fraser", "Reid",
    "Kelly", "Murphy", "Byrne", "Doyle", "Quinn", "Gallagher", "McKenzie", "MacLeod", "Ferguson",
    "Walsh",
    # South Asian
    "Patel", "Khan", "Ahmed", "Ali", "Hussain", "Begum", "Shah", "Singh", "Kaur", "Rahman",
    "Islam", "Chowdhury", "Iqbal", "Malik", "Akhtar", "Mahmood", "Sharma", "Gupta", "Mistry",
    "D'Souza", "de Souza",
    # East and South-East Asian
    "Wong", "Chen", "Li", "Zhang", "Wang", "Nguyen", "Tran",
    # European
    "Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Müller", "García", "Fernández", "López",
    "Núñez", "Silva", "Santos", "Popescu", "Rossi", "Ferreira", "Öztürk", "Yılmaz", "D'Arcy",  # noqa: RUF001
    # African and Caribbean
    "Okafor", "Adeyemi", "Mensah", "Osei", "Abdi", "Mohamed", "Hassan", "Campbell-Brown",
    # Double-barrelled
    "Smith-Jones", "Lloyd-Davies", "Parry-Williams", "Rhys-Evans", "Bowen-Morgan",
    "Hughes-Thomas", "Taylor-Khan", "Brown-Okafor", "Price-Hopkins", "Wynne-Jones",
)  # fmt: skip

# Given name -> informal forms a busy receptionist might type instead. Only
# names that appear in the lists above can ever be replaced; names with no
# common short form (Rhys, Siân, Cai...) are deliberately absent.
_NICKNAMES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "William": ("Will", "Bill", "Billy", "Liam"),
        "Elizabeth": ("Beth", "Liz", "Lizzie", "Eliza", "Libby"),
        "Margaret": ("Maggie", "Meg", "Peggy"),
        "Thomas": ("Tom", "Tommy"),
        "Tomos": ("Twm",),
        "Catherine": ("Kate", "Cathy", "Cat"),
        "Katherine": ("Kate", "Kathy", "Katie"),
        "Alexander": ("Alex", "Xander"),
        "Alexandra": ("Alex", "Lexi", "Sasha"),
        "Benjamin": ("Ben", "Benji"),
        "Samuel": ("Sam", "Sammy"),
        "Joseph": ("Joe", "Joey"),
        "James": ("Jim", "Jamie"),
        "Daniel": ("Dan", "Danny"),
        "Matthew": ("Matt",),
        "Oliver": ("Ollie",),
        "Charlotte": ("Lottie", "Charlie"),
        "Isabella": ("Bella", "Izzy"),
        "Isabelle": ("Izzy", "Belle"),
        "Olivia": ("Liv", "Livvy"),
        "Amelia": ("Millie", "Amy"),
        "Jessica": ("Jess", "Jessie"),
        "Rebecca": ("Becky", "Becca"),
        "Victoria": ("Tori", "Vicky"),
        "Edward": ("Ed", "Eddie", "Ted"),
        "Frederick": ("Fred", "Freddie"),
        "Henry": ("Harry", "Hal"),
        "Jacob": ("Jake",),
        "Nicholas": ("Nick", "Nicky"),
        "Christopher": ("Chris", "Kit"),
        "Anthony": ("Tony", "Ant"),
        "Robert": ("Rob", "Bob", "Bobby"),
        "Richard": ("Rich", "Rick"),
        "David": ("Dave", "Dai"),
        "Dafydd": ("Dai", "Dafi"),
        "Theodore": ("Theo", "Teddy"),
        "Sebastian": ("Seb",),
        "Florence": ("Flo", "Florrie"),
        "Evelyn": ("Evie",),
        "Eleanor": ("Ellie", "Nell"),
        "Penelope": ("Penny",),
        "Josephine": ("Jo", "Josie"),
        "Sophia": ("Sophie",),
        "Gabriella": ("Gabby",),
        "Madeleine": ("Maddie",),
        "Harriet": ("Hattie",),
        "Louisa": ("Lou",),
        "Elijah": ("Eli",),
        "Zachary": ("Zach", "Zac"),
        "Maximilian": ("Max",),
        "Llywelyn": ("Llew",),
        "Rhiannon": ("Rhi",),
        "Gwenllian": ("Gwen",),
        "Gareth": ("Gaz",),
        "Joshua": ("Josh",),
        "Matilda": ("Tilly", "Tilda"),
        "Gruffudd": ("Gruff",),
        "Archie": ("Arch",),
    }
)

# --------------------------------------------------------------------------- postcodes
# Outward codes of every UK shape (A9, A99, AA9, AA99, A9A, AA9A), weighted
# towards Wales. Inward codes are random, so the full postcodes are made up.
_OUTWARD_CODES = (
    "B1", "M1", "E1", "L1", "S1", "G1", "N1",
    "B15", "M14", "L18", "S10", "E14", "N16", "G12",
    "CF5", "CF3", "SA1", "SA2", "LS6", "BS5", "NP4", "CH1", "SY3", "LD1",
    "CF10", "CF11", "CF14", "CF24", "CF37", "CF44", "CF62", "NP20", "NP44", "LL57", "LL11",
    "SA31", "SA15", "SA62", "LS11", "BS16", "SY23",
    "W1A", "E1W", "N1C", "W1T", "N1P",
    "SW1A", "EC1A", "WC2H", "EC2M", "SE1P", "WC1E", "SW1P", "EC4M",
)  # fmt: skip

# Made-up local-authority codes (shaped like ONS codes, none of them real):
# each postcode district lies in two of them, and a full postcode in one.
AREA_CODES = (
    "E06000901", "E06000902", "E06000903", "E06000904",
    "W06000901", "W06000902", "W06000903", "W06000904",
)  # fmt: skip


def area_code(postcode: str) -> str:
    """The made-up local authority a postcode lies in: fixed by the postcode, two per district."""
    outward, _, inward = postcode.partition(" ")
    first = zlib.crc32(outward.encode()) % len(AREA_CODES)
    second = (first + 1 + zlib.crc32(outward.encode()[::-1]) % 3) % len(AREA_CODES)
    return AREA_CODES[second if zlib.crc32(inward.encode()) % 3 == 0 else first]


def with_areas(layouts: Sequence[OrganisationLayout]) -> tuple[OrganisationLayout, ...]:
    """The layouts with a local-authority code column each ("LA Code", "la_code", …)."""
    names = ("LA Code", "la_code", "Local Authority")
    return tuple(
        dataclasses.replace(layout, area_column=layout.area_column or names[i % len(names)])
        for i, layout in enumerate(layouts)
    )


# Letters used in the last two places of a UK postcode (C, I, K, M, O and V never are).
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

_MONTH_ABBREVIATIONS = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip

_TYPO_LETTERS = "abcdefghijklmnopqrstuvwxyz"

# How many births a family has had in the five-year window, and how likely each is.
_BIRTHS_PER_FAMILY = (1, 2, 3, 4)
_BIRTHS_WEIGHTS = (50, 33, 13, 4)
# Shortest gap between non-twin births in one family, in days.
_SIBLING_GAP_DAYS = 300
# Share of shared families that are held by three or more organisations rather than two.
_MULTI_ORG_SHARE = 0.35
# When a family moves, how often it stays in the same postcode district.
_MOVE_LOCAL_SHARE = 0.7


# --------------------------------------------------------------------------- public types
def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


@dataclass(frozen=True)
class ErrorRates:
    """Per-record probabilities of each error kind, applied independently at each organisation.

    Every organisation's copy of a child starts from the child's true details
    and then draws each error independently, so two organisations rarely make
    the same mistake, which is what real linkage has to cope with.
    """

    typo: float = 0.05
    """One character inserted, deleted, substituted or transposed in the given or family name."""
    nickname: float = 0.04
    """Given name replaced by a common short form (William -> Bill), where the name has one."""
    dob_day_month_swap: float = 0.02
    """Day and month swapped, when both are 12 or less and differ (US-style entry)."""
    dob_digit_error: float = 0.01
    """The last digit of the day or of the year off by one, always giving a real date."""
    moved_postcode: float = 0.05
    """Family moved: usually a new postcode in the same district, sometimes another area."""
    missing_nhs_number: float = 0.3
    """Blank NHS number, on top of the layout's ``nhs_number_coverage``."""
    family_name_change: float = 0.03
    """Child known by a step-parent's surname, either instead of or hyphenated with their own."""
    missing_postcode: float = 0.02
    """Blank postcode."""
    sex_missing: float = 0.02
    """Blank sex."""
    duplicate_referral: float = 0.02
    """Share of an organisation's rows that are a second copy of a child it already holds."""
    messy: float = 0.0
    """Per field, the chance of a messy-but-recoverable form: a placeholder given name
    ("BABY", "UNKNOWN"), a title, extra spaces, upper or lower case, accents stripped,
    a postcode without its space, an NHS number with spaces or hyphens, the date of birth
    in another of the formats UK systems export, another sex code. Off by default, and
    drawn only when on, so files without it are unchanged."""

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            _check_probability(name, value)

    @classmethod
    def none(cls) -> ErrorRates:
        """No errors at all: every copy carries the child's true details (layout quirks aside)."""
        return cls(**{name: 0.0 for name in vars(cls())})


@dataclass(frozen=True)
class OrganisationLayout:
    """How one organisation's system writes its extract.

    The first seven fields are what the rest of hublink reads (column mapping,
    date format, sex codes). The last three only steer the generator: they
    reproduce house styles such as local id formats, spaced NHS numbers and
    untidy postcodes, which a node's normaliser has to undo.
    """

    organisation: str
    display_name: str
    id_column: str
    columns: Mapping[str, str]
    """Linkage field (one of ``FIELDS``) -> CSV column, in the order the CSV has them."""
    date_format: str
    """strftime format for the date of birth; ``%b`` is always English month abbreviations."""
    sex_codes: Mapping[str, str]
    """"F"/"M" -> what this system writes. A missing sex is written as an empty string."""
    nhs_number_coverage: float
    """Share of records that carry an NHS number at all (before ``missing_nhs_number``)."""
    local_id_format: str = "{n:06d}"
    """``str.format`` template for local ids, given a random unique integer ``n``."""
    nhs_number_spaced_share: float = 0.0
    """Share of NHS numbers written as ``999 123 4567`` rather than ``9991234567``."""
    postcode_untidy_share: float = 0.0
    """Share of postcodes written without the space, in lower case, or both."""
    area_column: str = ""
    """If set, a last column with the family's (made-up) local-authority code (``area_code``)."""

    def __post_init__(self) -> None:
        unknown = set(self.columns) - set(FIELDS)
        if unknown:
            raise ValueError(f"{self.organisation}: unknown linkage fields {sorted(unknown)}")
        headers = [self.id_column, *self.columns.values()]
        if len(set(headers)) != len(headers):
            raise ValueError(f"{self.organisation}: CSV column names must be unique")
        if "sex" in self.columns and not {"F", "M"} <= set(self.sex_codes):
            raise ValueError(f"{self.organisation}: sex_codes needs entries for 'F' and 'M'")
        _check_probability("nhs_number_coverage", self.nhs_number_coverage)
        _check_probability("nhs_number_spaced_share", self.nhs_number_spaced_share)
        _check_probability("postcode_untidy_share", self.postcode_untidy_share)


DEFAULT_LAYOUTS: tuple[OrganisationLayout, ...] = (
    OrganisationLayout(
        organisation="health-visiting",
        display_name="Health visiting (NHS)",
        id_column="Patient ID",
        columns=MappingProxyType(
            {
                "given_name": "Forename",
                "family_name": "Surname",
                "date_of_birth": "DOB",
                "sex": "Sex",
                "postcode": "Postcode",
                "nhs_number": "NHS Number",
            }
        ),
        date_format="%d/%m/%Y",
        sex_codes=MappingProxyType({"F": "F", "M": "M"}),
        nhs_number_coverage=0.97,
        local_id_format="HV{n:06d}",
        nhs_number_spaced_share=0.5,
    ),
    OrganisationLayout(
        organisation="flying-start",
        display_name="Flying Start (council)",
        id_column="child_ref",
        columns=MappingProxyType(
            {
                "given_name": "first_name",
                "family_name": "last_name",
                "date_of_birth": "date_of_birth",
                "sex": "gender",
                "postcode": "post_code",
                "nhs_number": "nhs_no",
            }
        ),
        date_format="%Y-%m-%d",
        sex_codes=MappingProxyType({"F": "Female", "M": "Male"}),
        nhs_number_coverage=0.4,
        local_id_format="FS-2026-{n:05d}",
    ),
    OrganisationLayout(
        organisation="childcare",
        display_name="Childcare provider",
        id_column="Ref",
        columns=MappingProxyType(
            {
                "given_name": "Given Name",
                "family_name": "Family Name",
                "date_of_birth": "Birth Date",
                "sex": "Sex",
                "postcode": "Postcode",
            }
        ),
        date_format="%d-%b-%Y",
        # NHS data dictionary person stated gender: 1 male, 2 female.
        sex_codes=MappingProxyType({"F": "2", "M": "1"}),
        nhs_number_coverage=0.0,
        local_id_format="CC{n}",
        postcode_untidy_share=0.3,
    ),
)


@dataclass(frozen=True)
class GeneratedData:
    """Where ``generate`` wrote its files, and how many rows each organisation got."""

    csv_paths: Mapping[str, Path]
    truth_path: Path
    layouts: tuple[OrganisationLayout, ...]
    records: Mapping[str, int]

    def truth(self) -> dict[tuple[str, str], str]:
        """(organisation, local_id) -> person_id for every row written, read back from disk."""
        with self.truth_path.open(newline="", encoding="utf-8") as handle:
            return {
                (row["organisation"], row["local_id"]): row["person_id"]
                for row in csv.DictReader(handle)
            }


@dataclass(frozen=True)
class Quality:
    """Pairwise precision and recall over one kind of record pair.

    ``precision`` is 1.0 when nothing was predicted and ``recall`` is 1.0 when
    there was nothing to find, so that an empty case reads as "no mistakes"
    rather than dividing by zero; ``f1`` is 0.0 only when both are 0.
    """

    precision: float
    recall: float
    f1: float
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int


@dataclass(frozen=True)
class LinkageQuality:
    """Quality across organisations (linkage) and within one organisation (deduplication)."""

    cross: Quality
    within: Quality


# --------------------------------------------------------------------------- population
@dataclass(frozen=True, slots=True)
class _Child:
    """A synthetic child's true details; organisations hold copies with errors."""

    person_id: str
    given_name: str
    family_name: str
    date_of_birth: date
    sex: str
    postcode: str
    nhs_number: str


def _random_inward(rng: random.Random) -> str:
    return f"{rng.randrange(10)}{rng.choice(_INWARD_LETTERS)}{rng.choice(_INWARD_LETTERS)}"


def _random_postcode(rng: random.Random) -> str:
    return f"{rng.choice(_OUTWARD_CODES)} {_random_inward(rng)}"


class _Population:
    """An endless supply of families of young children, drawn on demand.

    Families are produced lazily so that only as many children are invented as
    the organisations need, and each NHS number is used once.
    """

    def __init__(self, rng: random.Random, twin_rate: float) -> None:
        self._rng = rng
        self._twin_rate = twin_rate
        self._next_person = 1
        self._nhs_numbers: set[str] = set()
        self._first_day = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - 5) + timedelta(days=1)
        self._window_days = (REFERENCE_DATE - self._first_day).days + 1

    def families(self) -> Iterator[list[_Child]]:
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

    def _family(self) -> list[_Child]:
        rng = self._rng
        family_name = rng.choice(_SURNAMES)
        postcode = _random_postcode(rng)
        births = rng.choices(_BIRTHS_PER_FAMILY, weights=_BIRTHS_WEIGHTS)[0]
        used_names: set[str] = set()
        children: list[_Child] = []
        for born in self._birth_dates(births):
            twins = rng.random() < self._twin_rate
            for _ in range(2 if twins else 1):
                sex = "F" if rng.random() < 0.5 else "M"
                names = _GIRLS if sex == "F" else _BOYS
                given = rng.choice(names)
                while given in used_names:
                    given = rng.choice(names)
                used_names.add(given)
                children.append(
                    _Child(
                        person_id=f"P{self._next_person:07d}",
                        given_name=given,
                        family_name=family_name,
                        date_of_birth=born,
                        sex=sex,
                        postcode=postcode,
                        nhs_number=self._nhs_number(),
                    )
                )
                self._next_person += 1
        rng.shuffle(children)
        return children


def _allocate(
    rng: random.Random,
    population: _Population,
    organisations: Sequence[str],
    records_per_org: int,
    overlap: float,
    duplicate_rate: float,
) -> dict[str, list[_Child]]:
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

    held: dict[str, list[_Child]] = {org: [] for org in organisations}
    families = population.families()

    if len(organisations) >= 2:
        remaining = {org: round(overlap * distinct[org]) for org in organisations}
        shared: list[tuple[list[_Child], list[str]]] = []
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


# --------------------------------------------------------------------------- errors
def _typo(rng: random.Random, name: str) -> str:
    """One keyboard slip, never touching the capitalised first letter."""
    for _ in range(8):
        op = rng.randrange(4)
        length = len(name)
        if op == 0:
            i = rng.randint(1, length)
            out = name[:i] + rng.choice(_TYPO_LETTERS) + name[i:]
        elif op == 1 and length >= 3:
            i = rng.randrange(1, length)
            out = name[:i] + name[i + 1 :]
        elif op == 2 and length >= 2:
            i = rng.randrange(1, length)
            out = name[:i] + rng.choice(_TYPO_LETTERS) + name[i + 1 :]
        elif op == 3 and length >= 3:
            i = rng.randrange(1, length - 1)
            out = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
        else:
            continue
        if out != name:
            return out
    return name + rng.choice(_TYPO_LETTERS)


def _changed_family_name(rng: random.Random, family_name: str) -> str:
    other = rng.choice(_SURNAMES)
    while other == family_name:
        other = rng.choice(_SURNAMES)
    style = rng.randrange(3)
    if style == 0:
        return other
    if style == 1:
        return f"{family_name}-{other}"
    return f"{other}-{family_name}"


def _digit_error(rng: random.Random, born: date) -> date:
    """Move the last digit of the day or of the year by one, keeping a real date.

    Half the time the day changes, half the year; when only one of them can
    (the 30th of a 30-day month cannot move its day's last digit, 29 February
    cannot move its year) the other is used. A date after the reference date is
    never produced: source systems refuse future dates of birth at entry.
    """

    def shifted(part: str, value: int) -> list[date]:
        options = []
        for step in (-1, 1):
            if 0 <= value % 10 + step <= 9:
                try:
                    moved = born.replace(**{part: value + step})
                except ValueError:
                    continue
                if moved <= REFERENCE_DATE:
                    options.append(moved)
        return options

    days = shifted("day", born.day)
    years = shifted("year", born.year)
    if days and (not years or rng.random() < 0.5):
        return rng.choice(days)
    return rng.choice(years) if years else born


def _moved_postcode(rng: random.Random, postcode: str) -> str:
    outward = postcode.split(" ")[0]
    while True:
        if rng.random() < _MOVE_LOCAL_SHARE:
            moved = f"{outward} {_random_inward(rng)}"
        else:
            moved = _random_postcode(rng)
        if moved != postcode:
            return moved


def _format_date(born: date, date_format: str) -> str:
    # %b depends on the C locale; spell the English abbreviation out so files
    # are identical on every machine.
    if "%b" in date_format:
        date_format = date_format.replace("%b", _MONTH_ABBREVIATIONS[born.month - 1])
    return born.strftime(date_format)


def _copy(
    rng: random.Random, child: _Child, rates: ErrorRates, layout: OrganisationLayout
) -> dict[str, str]:
    """One organisation's version of a child: true details, independent errors, house style."""
    given = child.given_name
    if rng.random() < rates.nickname and given in _NICKNAMES:
        given = rng.choice(_NICKNAMES[given])
    family = child.family_name
    if rng.random() < rates.family_name_change:
        family = _changed_family_name(rng, family)
    if rng.random() < rates.typo:
        if rng.random() < 0.5:
            given = _typo(rng, given)
        else:
            family = _typo(rng, family)

    born = child.date_of_birth
    if (
        rng.random() < rates.dob_day_month_swap
        and born.day <= 12
        and born.month <= 12
        and born.day != born.month
    ):
        born = date(born.year, born.day, born.month)
    if rng.random() < rates.dob_digit_error:
        born = _digit_error(rng, born)

    sex = "" if rng.random() < rates.sex_missing else layout.sex_codes.get(child.sex, "")

    postcode = child.postcode
    area = area_code(postcode)
    if rng.random() < rates.missing_postcode:
        postcode = ""
    else:
        if rng.random() < rates.moved_postcode:
            postcode = _moved_postcode(rng, postcode)
            area = area_code(postcode)
        if rng.random() < layout.postcode_untidy_share:
            style = rng.randrange(3)
            if style != 1:
                postcode = postcode.replace(" ", "")
            if style != 0:
                postcode = postcode.lower()

    nhs_number = ""
    if (
        "nhs_number" in layout.columns
        and rng.random() < layout.nhs_number_coverage
        and rng.random() >= rates.missing_nhs_number
    ):
        nhs_number = child.nhs_number
        if rng.random() < layout.nhs_number_spaced_share:
            nhs_number = f"{nhs_number[:3]} {nhs_number[3:6]} {nhs_number[6:]}"

    values = {
        "area": area,
        "given_name": given,
        "family_name": family,
        "date_of_birth": _format_date(born, layout.date_format),
        "sex": sex,
        "postcode": postcode,
        "nhs_number": nhs_number,
    }
    if rates.messy:
        _make_messy(rng, values, born, child.sex, rates.messy)
    return values


_TITLES = {"F": ("Miss", "Ms"), "M": ("Master", "Mr")}
_PLACEHOLDERS = ("BABY", "UNKNOWN", "Baby Girl", "Baby Boy", "INFANT OF {family}", "Twin 1")
_MESSY_DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%b-%Y", "%d.%m.%Y", "%d/%m/%y", "%Y%m%d")
_MESSY_SEX = {"F": ("female", "FEMALE", "2", "f", "Girl"), "M": ("male", "MALE", "1", "m", "Boy")}


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _messy_name(rng: random.Random, name: str, sex: str, family: str, given: bool) -> str:
    kind = rng.randrange(5 if given else 4)
    if kind == 0:
        return f"  {name}   " if rng.random() < 0.5 else name.replace("-", " - ").replace(" ", "  ")
    if kind == 1:
        return name.upper() if rng.random() < 0.5 else name.lower()
    if kind == 2:
        stripped = _strip_accents(name)
        return stripped if stripped != name else name.upper()
    if kind == 3:
        return f"{rng.choice(_TITLES[sex])} {name}" if given else f"{name.upper()} "
    return rng.choice(_PLACEHOLDERS).format(family=family.upper())


def _make_messy(
    rng: random.Random, values: dict[str, str], born: date, sex: str, rate: float
) -> None:
    """Rewrite some fields in messy forms a normaliser should undo (or treat as missing)."""
    family = values["family_name"]
    if rng.random() < rate:
        values["given_name"] = _messy_name(rng, values["given_name"], sex, family, True)
    if rng.random() < rate:
        values["family_name"] = _messy_name(rng, family, sex, family, False)
    if rng.random() < rate:
        values["date_of_birth"] = _format_date(born, rng.choice(_MESSY_DATE_FORMATS))
    if rng.random() < rate and values["sex"]:
        values["sex"] = rng.choice(_MESSY_SEX.get(sex, ("",)))
    if rng.random() < rate and values["postcode"]:
        code = values["postcode"]
        style = rng.randrange(3)
        values["postcode"] = (
            code.replace(" ", "") if style == 0 else code.lower() if style == 1 else f" {code} "
        )
    if rng.random() < rate and values["nhs_number"]:
        digits = values["nhs_number"].replace(" ", "")
        sep = rng.choice(("-", " "))
        values["nhs_number"] = f"{digits[:3]}{sep}{digits[3:6]}{sep}{digits[6:]}"


# --------------------------------------------------------------------------- generate
_DEFAULT_RATES = ErrorRates()


def generate(
    out_dir: Path,
    records_per_org: int = 5000,
    *,
    seed: int = 0,
    overlap: float = 0.6,
    rates: ErrorRates = _DEFAULT_RATES,
    layouts: Sequence[OrganisationLayout] = DEFAULT_LAYOUTS,
    twin_rate: float = 0.02,
) -> GeneratedData:
    """Write one CSV per organisation and a ground-truth CSV into ``out_dir``.

    Population. Children are invented family by family: a family has one to
    four births (weights 50/33/13/4) at least 300 days apart, all within the
    five years ending ``REFERENCE_DATE``; each birth is twins with probability
    ``twin_rate`` (same date of birth, different given names and NHS numbers).
    Siblings share the family name and postcode.

    Sampling. Each organisation first draws how many of its
    ``records_per_org`` rows are duplicate referrals (each row is one with
    probability ``rates.duplicate_referral``), leaving ``distinct`` children.
    It then wants ``round(overlap * distinct)`` children that at least one
    other organisation also holds. Whole families are dealt out in turn to the
    organisations furthest from that target: to two of them, or with
    probability 0.35 to three or more. When one organisation is left short it
    joins families already shared by others. Families therefore stay together
    (twins are held by the same organisations), and the shared share of each
    organisation's distinct children lands within a few children of
    ``overlap``. The rest of its children are families nobody else holds.
    Duplicates are copies of randomly chosen children it already holds.

    Errors. Every row, duplicates included, is an independent copy of the
    child's true details with ``rates`` applied, then written in the
    organisation's layout. NHS numbers appear with probability
    ``layout.nhs_number_coverage * (1 - rates.missing_nhs_number)``.

    Files. ``<organisation>.csv`` per layout (UTF-8, header row, random row
    order, random unique local ids in the layout's format) and ``truth.csv``
    with columns ``organisation,local_id,person_id``. The same arguments and
    seed always give byte-identical files. Errors use a random stream of their
    own, so two runs with the same seed that differ only in error rates
    (``duplicate_referral`` aside) hold the same children in the same rows
    under the same local ids, and ``truth.csv`` is identical: useful for
    measuring how linkage degrades as errors rise on one fixed population.
    """
    if records_per_org < 0:
        raise ValueError("records_per_org must not be negative")
    _check_probability("overlap", overlap)
    _check_probability("twin_rate", twin_rate)
    layouts = tuple(layouts)
    if not layouts:
        raise ValueError("need at least one organisation layout")
    organisations = [layout.organisation for layout in layouts]
    if len(set(organisations)) != len(organisations):
        raise ValueError("organisation names must be unique")

    rng = random.Random(seed)
    # Errors draw from their own stream, so changing error rates (other than
    # duplicate_referral) keeps the same children, rows and local ids.
    error_rng = random.Random(rng.getrandbits(64))
    population = _Population(rng, twin_rate)
    held = _allocate(
        rng, population, organisations, records_per_org, overlap, rates.duplicate_referral
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    csv_paths: dict[str, Path] = {}
    records: dict[str, int] = {}
    truth_rows: list[tuple[str, str, str]] = []
    for layout in layouts:
        children = held[layout.organisation]
        numbers = rng.sample(range(1, max(10 * len(children), 1000)), len(children))
        fields = list(layout.columns)
        path = out_dir / f"{layout.organisation}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            area = [layout.area_column] if layout.area_column else []
            writer.writerow([layout.id_column, *layout.columns.values(), *area])
            for child, number in zip(children, numbers, strict=True):
                local_id = layout.local_id_format.format(n=number)
                values = _copy(error_rng, child, rates, layout)
                writer.writerow(
                    [local_id, *(values[name] for name in fields), *(values["area"] for _ in area)]
                )
                truth_rows.append((layout.organisation, local_id, child.person_id))
        csv_paths[layout.organisation] = path
        records[layout.organisation] = len(children)

    truth_path = out_dir / "truth.csv"
    with truth_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["organisation", "local_id", "person_id"])
        writer.writerows(truth_rows)

    return GeneratedData(
        csv_paths=MappingProxyType(csv_paths),
        truth_path=truth_path,
        layouts=layouts,
        records=MappingProxyType(records),
    )


# --------------------------------------------------------------------------- quality
def _pair_counts(groups: Iterable[Counter[str]]) -> tuple[int, int]:
    """(cross-organisation, same-organisation) pairs inside each group, summed."""
    cross = within = 0
    for per_org in groups:
        total = sum(per_org.values())
        same = sum(n * (n - 1) // 2 for n in per_org.values())
        cross += total * (total - 1) // 2 - same
        within += same
    return cross, within


def _quality(true_pairs: int, predicted_pairs: int, correct_pairs: int) -> Quality:
    precision = correct_pairs / predicted_pairs if predicted_pairs else 1.0
    recall = correct_pairs / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Quality(precision, recall, f1, true_pairs, predicted_pairs, correct_pairs)


def pairwise_quality(
    predicted: Mapping[tuple[str, str], str], truth: Mapping[tuple[str, str], str]
) -> LinkageQuality:
    """Score a linkage against ground truth by counting record pairs, not records.

    ``predicted`` and ``truth`` map (organisation, local_id) to a linkage key
    and to a person id. Two records form a predicted pair when they share a
    key and a true pair when they share a person; a correct pair is both.
    Pairs whose records come from different organisations count towards
    ``cross`` (linkage) and pairs from the same organisation towards
    ``within`` (duplicates). A record absent from ``predicted`` is a
    singleton; predicted records absent from ``truth`` can only add wrong
    pairs.

    Pairs are counted per group with n*(n-1)/2 rather than enumerated, and the
    correct pairs are those inside each (key, person) intersection, so this
    runs in linear time however large the clusters.
    """
    by_key: dict[str, Counter[str]] = defaultdict(Counter)
    by_person: dict[str, Counter[str]] = defaultdict(Counter)
    by_both: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for (org, local_id), key in predicted.items():
        by_key[key][org] += 1
        person = truth.get((org, local_id))
        if person is not None:
            by_both[(key, person)][org] += 1
    for (org, _local_id), person in truth.items():
        by_person[person][org] += 1

    predicted_cross, predicted_within = _pair_counts(by_key.values())
    true_cross, true_within = _pair_counts(by_person.values())
    correct_cross, correct_within = _pair_counts(by_both.values())
    return LinkageQuality(
        cross=_quality(true_cross, predicted_cross, correct_cross),
        within=_quality(true_within, predicted_within, correct_within),
    )


def prepared_records(data: GeneratedData, spec: LinkageSpec) -> dict[str, list[PreparedRecord]]:
    """Each organisation's generated rows read and normalised the node's way, for benches and tests.

    Rows the generator planted as unreadable are left out, as a node rejects them.
    The node's modules are imported here so that generating data needs none of them.
    """
    from node.prepare import RowError, normalisers, prepare_rows
    from node.source import read_rows

    out: dict[str, list[PreparedRecord]] = {}
    for layout in data.layouts:
        rows = read_rows(
            data.csv_paths[layout.organisation],
            id_column=layout.id_column,
            columns=layout.columns,
            fields=spec.all_fields,
        )
        kept: list[PreparedRecord] = []
        for row in rows:
            try:
                kept.extend(prepare_rows([row], spec.all_fields, normalisers()))
            except RowError:
                continue
        out[layout.organisation] = kept
    return out
