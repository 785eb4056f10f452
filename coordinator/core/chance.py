"""Candidate floors that follow the chance level a run's own record CLKs show.

A salted record CLK is balanced part by part: each raw bit of a part travels
with its complement, so two unrelated records agree on about p² + (1 - p)² of a
part's bits, where p is how full the raw part is. With the built-in fields p is
near 0.5: the project's generator reads chance 0.52 on the row and 0.55 on its
fullest part, and that is where the shipped floors were tuned
(``score_model.SALTED_FLOOR`` 0.6 on the row, ``SALTED_PART_FLOOR`` 0.68 on a
part, ``field_scoring.SALTED_WITHIN_FLOOR``). A project that maps more fields
(an address line, a town, a local id) fills its parts further: FEBRL mapped in
full reads chance 0.63 on the row and 0.69 on its fullest part, so the fixed
0.6 floor kept about 19 million of FEBRL4's 25 million pairs and the run ran
out of memory.

So a floor is read in units of agreement *above chance*, as Cohen's kappa
reads agreement: a shipped floor f, tuned where chance was c0, asks for
(f - c0) / (1 - c0) of the way from chance to full agreement, and the run asks
the same share of the way from the chance level its own data show. True
pairs' partial agreement is compressed towards chance the same way (a shared
token sets bits that chance would have set anyway), so the floor keeps its
meaning. The shipped floors are never lowered: data at or below the
generator's chance level link as before.

Each part of the record CLK gets its own floor from its own chance level, by the
same rule. A project's fields are not spread evenly over the parts: FEBRL mapped
in full reads 0.61 on the birth part, 0.69 on the home part (name, address, town
and local id) and 0.58 on the name part. One part floor set from the fullest part
asked a pair that agrees only on its name part to reach 0.78 where strangers sit
at 0.58, far more of the way above chance than the shipped floor asks; each part
at its own floor asks the same share everywhere. A pair is kept when the whole
row reaches its floor or any part reaches that part's floor.

The chance level is the median Dice of pairs drawn from the records
themselves by a fixed rule: every record's row gets a key from its bytes, the
records are ordered by key and the first half is paired with the second. The
pairs depend only on the set of rows, not on their order, the dataset they sit
in, or whether the run is full, incremental, blocked or all-pairs, so every
way of running on the same data gets the same floors. The median rather than
the mean, so the odd true pair in the sample moves nothing; the spread is
reported beside it. Only aggregates leave here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from coordinator.core.caveats import Caveat
from coordinator.core.part_pass import PartPass
from coordinator.core.quality import Estimate
from coordinator.core.score_model import FLOOR, SALTED_FLOOR, SALTED_PART_FLOOR, part_pass_for
from hublink.spec import shipped_record_parts

#: Pairs sampled to read the chance level (at most; fewer when the run has fewer records).
SAMPLE_PAIRS = 5_000
#: The chance levels (row, fullest part) the shipped floors were tuned at, with a little room:
#: the generator reads 0.519-0.522 and 0.547-0.553 (2,000 a side, 3 or 5 organisations,
#: usual or doubled errors; docs/benchmarks.md), so its floors stay the shipped ones.
SHIPPED_WHOLE, SHIPPED_PART = 0.53, 0.56
#: No floor is lifted past this: above it the record CLK is too full to separate matches
#: from strangers at all, and the run says so (``CAVEAT``) rather than find nothing.
CEILING = 0.85
#: Fewer sampled pairs than this and the shipped floors stand (too few to read chance from).
MIN_PAIRS = 50
#: Odd 64-bit multipliers that mix a row's words into its sampling key.
_MIX = np.uint64(0x9E3779B97F4A7C15)

CAVEAT = Caveat(
    "dense_record_clk",
    "strangers' record encodings agree far above half their bits (the linkage schema "
    f"hashes many fields into each part), so the candidate floors were held at {CEILING}: "
    "true pairs with errors may not become candidates; hash fewer bits per field",
    untrusted=True,
)


@dataclass(frozen=True)
class Chance:
    """What the sampled pairs show: the median Dice of the whole row, of the fullest part
    and of each part, the spread (median absolute deviation scaled to a standard deviation)
    of the whole row's, and how many pairs were read."""

    whole: float = SHIPPED_WHOLE
    part: float = SHIPPED_PART
    spread: float = 0.0
    pairs: int = 0
    record_clk: str = "salted"
    """The project's record CLK: only a salted one's floors follow the chance level."""
    by_part: tuple[float, ...] = ()
    """Each part's median Dice, in row order (empty: not measured, every part at ``part``)."""

    def floor(self, shipped: float, *, part: bool = False) -> float:
        """A shipped floor lifted to this chance level (the fullest part's with ``part``),
        kept in the same units of agreement above chance; never below the shipped one, never
        above ``CEILING`` (unless shipped there already), rounded up to 0.005 so nearby
        samples give the same floor."""
        level, tuned = (self.part, SHIPPED_PART) if part else (self.whole, SHIPPED_WHOLE)
        return _floor(shipped, level, tuned)

    def capped(self, shipped: float, *, part: bool = False) -> bool:
        """Whether ``floor`` for ``shipped`` was held at the ceiling."""
        level, tuned = (self.part, SHIPPED_PART) if part else (self.whole, SHIPPED_WHOLE)
        return _lifted(shipped, level, tuned) > max(CEILING, shipped)

    @property
    def whole_floor(self) -> float:
        """The cross-dataset floor of the whole row: ``SALTED_FLOOR`` lifted, or the unsalted
        record CLK's fixed ``FLOOR``."""
        return self.floor(SALTED_FLOOR) if self.record_clk == "salted" else FLOOR

    @property
    def part_floor(self) -> float:
        """The fullest part's floor (``SALTED_PART_FLOOR`` lifted): the highest of
        ``part_floors``, and every part's where they were not measured."""
        return self.floor(SALTED_PART_FLOOR, part=True)

    @property
    def part_floors(self) -> tuple[float, ...]:
        """Each part's own floor: ``SALTED_PART_FLOOR`` lifted to that part's chance level
        by the rule ``floor`` follows (empty when the parts were not measured)."""
        return tuple(_floor(SALTED_PART_FLOOR, level, SHIPPED_PART) for level in self.by_part)

    def part_pass(self, field_scoring: bool) -> PartPass | None:
        """The run's part pass (``score_model.part_pass_for``): each part at its own floor
        (``part_floors``); one floor, ``part_floor``, when every part's is the same."""
        floors = self.part_floors
        own = floors if len(set(floors)) > 1 else ()
        return part_pass_for(self.record_clk, field_scoring, self.part_floor, own)

    def caveats(self) -> tuple[Caveat, ...]:
        """``CAVEAT`` when a floor was held at the ceiling; ``lifted`` when floors were
        lifted at all; else none."""
        held = self.capped(SALTED_FLOOR) or self.capped(SALTED_PART_FLOOR, part=True)
        if held:
            return (CAVEAT,)
        said = self.lifted()
        return (said,) if said else ()

    def lifted(self) -> Caveat | None:
        """Floors above the shipped ones, in plain words: the chance level read and the
        floors used. A reader comparing runs needs to know the run looked at fewer pairs
        than the shipped floors would have, and why; a matching pair with many errors
        that the shipped floor would have kept may not have been compared."""
        if self.record_clk != "salted":
            return None
        if self.whole_floor <= SALTED_FLOOR and self.part_floor <= SALTED_PART_FLOOR:
            return None
        floors = self.part_floors or (self.part_floor,)
        on_parts = (
            f"{floors[0]:.3f} on a part"
            if len(set(floors)) == 1
            else f"{min(floors):.3f}-{max(floors):.3f} on the parts, each by its own chance level"
        )
        return Caveat(
            "floors_lifted",
            f"strangers' record encodings agree on about {self.whole:.0%} of their bits "
            f"({self.part:.0%} on the fullest part), more than the {SHIPPED_WHOLE:.0%} the "
            f"shipped floors were tuned at, so the candidate floors were lifted to "
            f"{self.whole_floor:.3f} on the whole record (shipped {SALTED_FLOOR}) and "
            f"{on_parts} (shipped {SALTED_PART_FLOOR}): matches "
            "with many errors below them were never compared and recall counts them as missed",
        )

    def caveated(self, estimate: Estimate) -> Estimate:
        """A run's record-level ``estimate`` with ``caveats`` added."""
        more = self.caveats()
        return dataclasses.replace(estimate, caveats=(*estimate.caveats, *more))

    def figures(self) -> dict[str, float | int | list[float]]:
        """The chance level as stored with a run's matching details (and its audit entry):
        aggregates only, each part's median and floor in row order."""
        return {
            "chance_whole": round(self.whole, 4),
            "chance_part": round(self.part, 4),
            "chance_parts": [round(level, 4) for level in self.by_part],
            "chance_spread": round(self.spread, 4),
            "chance_pairs": self.pairs,
            "floor_whole": self.whole_floor,
            "floor_part": self.part_floor,
            "floor_parts": list(self.part_floors),
        }


#: The chance level the shipped floors assume: what a run uses without a sample.
SHIPPED = Chance()


def of_run(encodings: Sequence[np.ndarray], record_clk: str) -> Chance:
    """The chance level a run's floors follow: measured on a salted record CLK's shipped
    parts; ``SHIPPED`` for the unsalted one, whose fixed floors (``score_model.FLOOR``)
    stand."""
    if record_clk != "salted":
        return Chance(record_clk=record_clk)
    return measure(encodings, len(shipped_record_parts()))


def measure(encodings: Sequence[np.ndarray], parts: int) -> Chance:
    """The chance level of packed record CLKs (one uint8 array of rows per dataset) cut
    into ``parts`` equal parts, from at most ``SAMPLE_PAIRS`` pairs chosen by the rows'
    own bytes (module docstring). Too few records: ``SHIPPED``."""
    sizes = [len(e) for e in encodings]
    total = sum(sizes)
    half = min(total // 2, SAMPLE_PAIRS)
    if half < MIN_PAIRS:
        return SHIPPED
    keys = np.concatenate([_keys(e) for e in encodings if len(e)])
    # ties only between identical rows, which are interchangeable: a stable sort on the key
    order = np.argsort(keys, kind="stable")[: 2 * half]
    where = np.searchsorted(np.cumsum(sizes), order, side="right")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    chosen = [encodings[d][r] for d, r in zip(where, order - starts[where], strict=True)]
    rows = np.stack(chosen)
    left, right = rows[:half], rows[half:]
    both = _part_ones(left & right, parts)
    ones = _part_ones(left, parts) + _part_ones(right, parts)
    with np.errstate(divide="ignore", invalid="ignore"):
        part_dice = np.where(ones > 0, 2.0 * both / ones, 0.0)
        whole = np.where(ones.sum(1) > 0, 2.0 * both.sum(1) / ones.sum(1), 0.0)
    median = float(np.median(whole))
    spread = 1.4826 * float(np.median(np.abs(whole - median)))
    each = tuple(float(level) for level in np.median(part_dice, axis=0))
    return Chance(median, max(each), spread, half, by_part=each)


def _lifted(shipped: float, level: float, tuned: float) -> float:
    """``shipped``, tuned where chance read ``tuned``, as the same share of the way from
    chance to full agreement taken from ``level``."""
    return level + (shipped - tuned) / (1 - tuned) * (1 - level)


def _floor(shipped: float, level: float, tuned: float) -> float:
    """``_lifted`` kept between ``shipped`` and ``CEILING`` (or ``shipped`` if higher) and
    rounded up to 0.005 (``Chance.floor``)."""
    lifted = min(max(_lifted(shipped, level, tuned), shipped), max(CEILING, shipped))
    return max(shipped, float(np.ceil(round(lifted * 200, 6)) / 200))


def _keys(rows: np.ndarray) -> np.ndarray:
    """A 64-bit key per row from its bytes: each word times an odd constant, summed with
    wrap-around, then mixed once more (a row's order among the others is all it decides)."""
    padded = rows
    if rows.shape[1] % 8:
        padded = np.pad(rows, ((0, 0), (0, 8 - rows.shape[1] % 8)))
    words = np.ascontiguousarray(padded).view(np.uint64)
    weights = _MIX * (2 * np.arange(words.shape[1], dtype=np.uint64) + np.uint64(1))
    key = (words * weights).sum(axis=1, dtype=np.uint64)
    key ^= key >> np.uint64(29)
    out: np.ndarray = key * _MIX
    return out


def _part_ones(rows: np.ndarray, parts: int) -> np.ndarray:
    """Set bits of each row in each of ``parts`` equal byte ranges (rows x parts)."""
    counts = np.bitwise_count(rows).astype(np.int64)
    if parts < 1 or rows.shape[1] % parts:
        raise ValueError(f"rows of {rows.shape[1]} bytes do not split into {parts} equal parts")
    out: np.ndarray = counts.reshape(len(rows), parts, -1).sum(axis=2)
    return out
