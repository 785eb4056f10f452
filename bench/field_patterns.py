"""Where the field model goes wrong: true and false pairs tallied by agreement pattern.

Used by ``bench/quality.py --patterns``. For every candidate pair the model
scored, the pattern is its agreement level per comparison (0 best, 5 chance,
``-`` missing); each pattern's row counts the true pairs linked (TP) and missed
(FN), the false pairs linked (FP), and the model's mean match probability.
True pairs that never became candidates (blocking and the Dice floor) are counted
on their own line: no model can find them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from coordinator.core import matching
from coordinator.core.field_levels import MISSING
from coordinator.core.field_scoring import Scored
from coordinator.core.matching import Candidates


def _pattern(column: np.ndarray) -> str:
    return "".join("-" if x == MISSING else str(int(x)) for x in column)


def _ends(
    across: Candidates, within: Candidates, ids: Sequence[Sequence[Hashable]]
) -> tuple[list[Hashable], list[Hashable], int]:
    """Each scored pair's two record ids (across pairs first, then within), and how many are
    across."""
    _, d0, d1, r0, r1 = (np.asarray(a, dtype=np.int64) for a in matching.arrays(across))
    _, w0, _, v0, v1 = (np.asarray(a, dtype=np.int64) for a in matching.arrays(within))
    left = [
        ids[d][r] for d, r in zip(np.concatenate([d0, w0]), np.concatenate([r0, v0]), strict=True)
    ]
    right = [
        ids[d][r] for d, r in zip(np.concatenate([d1, w0]), np.concatenate([r1, v1]), strict=True)
    ]
    return left, right, len(d0)


def table(
    across: Candidates,
    within: Candidates,
    scored: Scored,
    ids: Sequence[Sequence[Hashable]],
    truth: Mapping[Hashable, str],
    predicted: Mapping[Hashable, str],
    top: int = 25,
) -> list[str]:
    """Lines tallying the model's errors by agreement pattern, the worst patterns first."""
    assert scored.levels is not None
    left, right, _ = _ends(across, within, ids)
    chance = np.concatenate([scored.across, scored.within])
    tally: dict[str, Counter[str]] = {}
    mass: Counter[str] = Counter()
    seen_true = 0
    for k, (a, b) in enumerate(zip(left, right, strict=True)):
        key = _pattern(scored.levels[:, k])
        same = truth[a] == truth[b]
        linked = predicted[a] == predicted[b]
        seen_true += same
        kind = ("TP" if linked else "FN") if same else ("FP" if linked else "TN")
        tally.setdefault(key, Counter())[kind] += 1
        mass[key] += float(chance[k])
    people: Counter[str] = Counter(truth.values())
    all_true = sum(n * (n - 1) // 2 for n in people.values())
    groups = " ".join(g[:6] for g in scored.model.groups)
    lines = [
        f"  comparisons: {groups}; true pairs never candidates: {all_true - seen_true}",
        "  pattern | TP | FN | FP | TN | mean P(match)",
    ]
    worst = sorted(tally, key=lambda p: -(tally[p]["FN"] + tally[p]["FP"]))
    for p in worst[:top]:
        c = tally[p]
        if not c["FN"] + c["FP"]:
            break
        n = sum(c.values())
        lines.append(f"  {p} | {c['TP']} | {c['FN']} | {c['FP']} | {c['TN']} | {mass[p] / n:.3f}")
    totals = Counter[str]()
    for c in tally.values():
        totals.update(c)
    lines.append(f"  all | {totals['TP']} | {totals['FN']} | {totals['FP']} | {totals['TN']} |")
    return lines


def households(
    across: Candidates,
    within: Candidates,
    scored: Scored,
    ids: Sequence[Sequence[Hashable]],
    truth: Mapping[Hashable, str],
    household: Mapping[Hashable, str],
    predicted: Mapping[Hashable, str],
    shown: Mapping[Hashable, str] | None = None,
) -> list[str]:
    """Lines listing the false pairs put together inside one household (twins, siblings):
    each pair the model scored with its pattern, kind, match probability and whether it was
    linked itself (else its group was joined through other links); pairs the model never
    scored are counted apart. ``shown`` (a record's given name and birth date, synthetic
    data only) helps read them."""
    assert scored.levels is not None
    left, right, n = _ends(across, within, ids)
    chance = np.concatenate([scored.across, scored.within])
    scored_at: dict[frozenset[Hashable], int] = {
        frozenset((a, b)): k for k, (a, b) in enumerate(zip(left, right, strict=True))
    }
    groups: dict[str, list[Hashable]] = {}
    for rid, key in predicted.items():
        groups.setdefault(key, []).append(rid)
    lines = ["  household false pairs: kind | pattern | P | linked itself | records"]
    unscored = 0
    for members in groups.values():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                house = household.get(a)
                if house is None or house != household.get(b) or truth[a] == truth[b]:
                    continue
                k = scored_at.get(frozenset((a, b)))
                if k is None:
                    unscored += 1
                    continue
                kind = "across" if k < n else "within"
                cut = scored.cuts[0] if k < n else scored.cuts[1]
                who = "" if shown is None else f"{shown.get(a, '?')} / {shown.get(b, '?')}"
                lines.append(
                    f"  {kind} | {_pattern(scored.levels[:, k])} | {chance[k]:.3f}"
                    f" | {'yes' if chance[k] >= cut else 'no'} | {who}"
                )
    lines.append(f"  household false pairs never scored (joined through others): {unscored}")
    return lines
