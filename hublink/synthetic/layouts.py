"""How each organisation's system writes its extract, and how often it gets a child wrong.

``OrganisationLayout`` is a house style (columns, date format, sex codes, id
format); ``ErrorRates`` are the per-record chances of each kind of mistake.
The three ``DEFAULT_LAYOUTS`` are the demo's health visiting, Flying Start
and childcare provider.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

#: Linkage fields an organisation layout may map to CSV columns.
FIELDS = ("given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number")


def check_probability(name: str, value: float) -> None:
    """Refuse a share or rate outside [0, 1], naming it."""
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
    """Given name replaced by a common short form (William -> Bill), where the name has one.
    Scaled by each layout's ``nickname_factor``: childcare writes what the family calls the
    child more often than health visiting, whose records start from the birth notification."""
    spelling_variant: float = 0.04
    """Given name written in another spelling of the same name (Muhammad -> Mohammed,
    Zoë -> Zoe, Catherine -> Katherine), where it has one (``data/spelling_variants.json``):
    about half the children's names do, so about 2% of records."""
    baby_placeholder: float = 0.05
    """At a layout that ``registers_newborns``, the chance that a child under one year old
    is still held as "Baby" with the mother's family name, the record made from the birth
    notification before the name was given and never updated: about 1% of its records."""
    surname_other_form: float = 0.2
    """For a child whose family name has a masculine and a feminine form (Polish Kowalski,
    Kowalska), the chance a copy writes the other parent's form."""
    hyphen_part_dropped: float = 0.2
    """For a child with a double-barrelled family name, the chance a copy keeps only one of
    its parts (the system's field was short, or the family uses one)."""
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
            check_probability(name, value)

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
    nickname_factor: float = 1.0
    """``ErrorRates.nickname`` is multiplied by this here (capped at 1): how readily this
    system holds the name a child is called by rather than the registered one."""
    registers_newborns: bool = False
    """Whether records start from the birth notification, so a newborn may be held as "Baby"
    (``ErrorRates.baby_placeholder``)."""

    def __post_init__(self) -> None:
        unknown = set(self.columns) - set(FIELDS)
        if unknown:
            raise ValueError(f"{self.organisation}: unknown linkage fields {sorted(unknown)}")
        headers = [self.id_column, *self.columns.values()]
        if len(set(headers)) != len(headers):
            raise ValueError(f"{self.organisation}: CSV column names must be unique")
        if "sex" in self.columns and not {"F", "M"} <= set(self.sex_codes):
            raise ValueError(f"{self.organisation}: sex_codes needs entries for 'F' and 'M'")
        check_probability("nhs_number_coverage", self.nhs_number_coverage)
        check_probability("nhs_number_spaced_share", self.nhs_number_spaced_share)
        check_probability("postcode_untidy_share", self.postcode_untidy_share)
        if self.nickname_factor < 0:
            raise ValueError(f"{self.organisation}: nickname_factor must not be negative")


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
        nickname_factor=0.25,
        registers_newborns=True,
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
        nickname_factor=2.5,
    ),
)


def with_areas(layouts: Sequence[OrganisationLayout]) -> tuple[OrganisationLayout, ...]:
    """The layouts with a local-authority code column each ("LA Code", "la_code", …)."""
    names = ("LA Code", "la_code", "Local Authority")
    return tuple(
        dataclasses.replace(layout, area_column=layout.area_column or names[i % len(names)])
        for i, layout in enumerate(layouts)
    )
