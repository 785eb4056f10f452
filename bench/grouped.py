"""Turn solved groups into the (organisation, local id) -> key mapping the benches score."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

from coordinator.core.matching import RecordRef


def predicted(
    groups: Sequence[Sequence[RecordRef]], ids: Sequence[Sequence[Hashable]]
) -> dict[Hashable, str]:
    """Each record's key: its group's number, or one of its own when it was left alone.

    Keys only need to be equal within a group and distinct across groups for
    ``synthetic.pairwise_quality``; stable entity ids are the run's business.
    """
    out: dict[Hashable, str] = {}
    for number, group in enumerate(groups):
        for dataset, row in group:
            out[ids[dataset][row]] = f"group-{number}"
    for part in ids:
        for rid in part:
            out.setdefault(rid, f"alone-{rid}")
    return out


def household_false_pairs(
    predicted: Mapping[Hashable, str],
    household: Mapping[Hashable, str],
    truth: Mapping[Hashable, str],
) -> int:
    """Predicted pairs of two different children of one household (``household``: a
    record's true family name and postcode): twins and siblings put together."""
    by_house: Counter[tuple[str, str]] = Counter()
    by_person: Counter[tuple[str, str, str]] = Counter()
    for rid, key in predicted.items():
        house = household.get(rid)
        if house is None:
            continue
        by_house[(key, house)] += 1
        by_person[(key, house, truth[rid])] += 1
    pairs = sum(n * (n - 1) // 2 for n in by_house.values())
    return pairs - sum(n * (n - 1) // 2 for n in by_person.values())
