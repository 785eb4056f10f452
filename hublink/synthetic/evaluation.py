"""Scoring a linkage against the generator's ground truth, by record pairs.

Kept apart from generating: a benchmark that scores keys from another tool
needs only this module and a truth file.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


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
