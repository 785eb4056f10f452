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

Modules, in the order the data is made: ``names`` (the word lists in
``data/``), ``places`` (postcodes, local authorities), ``population``
(families, and who holds which child), ``layouts`` (house styles, error
rates), ``mistakes`` (one organisation's copy of a child), ``extracts``
(``generate``: the files), and ``evaluation`` (scoring keys against the
truth). The node's reading of these files for tests and benchmarks is
``node.synthetic_input``.
"""

from hublink.synthetic.evaluation import LinkageQuality, Quality, pairwise_quality
from hublink.synthetic.extracts import GeneratedData, generate
from hublink.synthetic.layouts import (
    DEFAULT_LAYOUTS,
    FIELDS,
    ErrorRates,
    OrganisationLayout,
    with_areas,
)
from hublink.synthetic.places import AREA_CODES, area_code
from hublink.synthetic.population import REFERENCE_DATE, PopulationSettings

__all__ = [
    "AREA_CODES",
    "DEFAULT_LAYOUTS",
    "FIELDS",
    "REFERENCE_DATE",
    "ErrorRates",
    "GeneratedData",
    "LinkageQuality",
    "OrganisationLayout",
    "PopulationSettings",
    "Quality",
    "area_code",
    "generate",
    "pairwise_quality",
    "with_areas",
]
