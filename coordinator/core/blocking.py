"""Blocking: compare only pairs likely to reach the threshold, chosen from the encodings alone.

All-pairs matching is quadratic: two parties of a million records are 10^12
comparisons, about half a day of anonlink on one core at 2048 bits. Blocking
cuts that by comparing only pairs that agree exactly on every bit of at least
one *band* (a random set of bit positions): Hamming locality-sensitive hashing
by bit sampling, computed by the coordinator on the encodings it already holds.

Why this and not keyed blocking keys from the nodes (such as P-Sig): band
keys are derived from the hardened encodings themselves, so they disclose
nothing the coordinator does not already hold; node-made blocking keys are
new, low-entropy values that can be frequency-aligned with a population
(undoing the encodings' hardening), and they would have to cross the wire.

The plan follows from a little probability. Two records whose encodings agree
on a share ``p`` of positions collide in a band of ``k`` bits with chance
``p**k`` and in at least one of ``L`` bands with ``1 - (1 - p**k)**L``. The
agreement of a pair exactly at the threshold sets ``L`` for the required
completeness; closer pairs (true matches) are found with higher chance still.
Random pairs agree on about half their positions, so ``k`` near the log of the
dataset size keeps each band's chance collisions near the number of records.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from coordinator.core.comparison import BandChunk, sketch_columns
from coordinator.core.part_pass import PartPass

#: A project's choices: blocking always, never, or once all-pairs would be too dear.
BLOCKING_MODES = ("auto", "lsh", "none")
#: Required share of pairs at the threshold that blocking must still find.
DEFAULT_COMPLETENESS = 0.998
#: Above this many all-pairs comparisons, "auto" blocking switches on.
AUTO_MIN_COMPARISONS = 2_000_000_000
#: The same for a salted record CLK (``record_clk = "salted"``): its true pairs with one
#: salt wrong score 0.72-0.8, and a plan that finds them needs so many bands that blocking
#: costs more than comparing every pair up to about 140,000 a side (docs/benchmarks.md:
#: 144 s blocked at 100,000 a side finding 0.83 of true pairs, against all of them in
#: 1e10 comparisons of the native kernel).
SALTED_AUTO_MIN_COMPARISONS = 20_000_000_000
#: Most bands a plan may use; a plan needing more is refused (blocking would not pay).
MAX_BANDS = 4000
#: Most bands a plan made below the run's threshold may use (``lowest_plan``: salted record
#: CLKs): each band costs about one pass over both datasets.
DEFAULT_BAND_BUDGET = 1000
#: Bands given to one task, at least: a task hashes every record of both datasets once per
#: band. A close pair collides in many bands and each task compares it once, so fewer,
#: larger tasks waste less; ``TASKS_PER_PLAN`` keeps enough of them to share out.
BANDS_PER_TASK = 8
TASKS_PER_PLAN = 32


@dataclass(frozen=True)
class BandPlan:
    """How a pair of datasets is blocked, and the completeness that promises."""

    bits: int
    """Bits per band (its key length: whole bytes)."""
    bands: tuple[tuple[int, ...], ...]
    """Half-byte positions (byte 2u: high four bits, 2u + 1: low four) making each band's key."""
    agreement: float
    """Share of the bits bands use that a pair at the threshold is expected to agree on."""
    completeness: float
    """Chance that a pair exactly at the design threshold collides in some band."""
    sketch_limit: int
    """Most differing sketch bits a pair at the threshold may show and still be compared."""
    sketch: tuple[int, ...] = ()
    """The row's 64-bit words its sketch reads (empty: ``sketch_columns`` of the whole row;
    a part's plan: words of that part, ``part_plans``)."""

    def chance_found(self, agreement: float) -> float:
        """Chance that a pair agreeing on ``agreement`` of band positions is compared at all."""
        return 1.0 - (1.0 - agreement**self.bits) ** len(self.bands)


def agreement_at(threshold: float, density: float) -> float:
    """Share of positions two encodings with ``density`` ones agree on at Dice ``threshold``.

    With ``m`` ones each, Dice = |A∩B| / m and the Hamming distance is
    2m(1 - Dice), so agreement is 1 - 2·density·(1 - Dice). Balanced
    encodings (density 1/2) agree on exactly their Dice share.
    """
    return 1.0 - 2.0 * density * (1.0 - threshold)


def bit_frequencies(rows: Sequence[np.ndarray], sample: int = 20_000) -> np.ndarray:
    """Share of records with each bit position set, over up to ``sample`` records a dataset."""
    counts: np.ndarray | None = None
    total = 0
    for r in rows:
        for start in range(0, min(len(r), sample), 4096):
            block = np.unpackbits(r[start : min(start + 4096, sample)], axis=1)
            summed = block.sum(axis=0, dtype=np.int64)
            counts = summed if counts is None else counts + summed
            total += len(block)
    if counts is None:
        raise ValueError("no encodings to block")
    frequencies: np.ndarray = counts / total
    return frequencies


def plan(
    sizes: tuple[int, int],
    frequencies: np.ndarray,
    threshold: float,
    *,
    completeness: float = DEFAULT_COMPLETENESS,
    seed: int | None = None,
) -> BandPlan:
    """A band plan for two datasets of ``sizes`` whose bit positions are set at ``frequencies``.

    A band is a few half-bytes of the encoding (reading four bits costs what
    reading one does). Real encodings are far from random bits: a position
    hashed from a common name or postcode is set in most records, and records
    then collide on it by the thousand. So each half-byte is scored by how much it
    cuts chance collisions for how much it risks missing a true pair, and
    bands are drawn from the better half. A pair's disagreements fall mostly
    on positions whose values vary, so the plan assumes a pair at the
    threshold disagrees at each position in proportion to how often random
    pairs do there. Bands have as many bytes as bring a band's chance
    collisions down to about the larger dataset's size (each band then costs
    about one pass over the data), and are added until a pair at the
    threshold collides in at least one with chance ``completeness``.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], not {threshold}")
    variability = 2.0 * frequencies * (1.0 - frequencies)
    overall = float(variability.mean())
    if overall <= 0.0:
        raise ValueError("every encoding is the same: there is nothing to block on")
    disagreement = 1.0 - agreement_at(threshold, float(frequencies.mean()))
    agree = np.clip(1.0 - disagreement * variability / overall, 1e-9, 1.0)
    chance = np.clip(1.0 - variability, 1e-9, 1.0)
    nbytes = len(frequencies) // 8
    # Units of four bits (half a byte): fine enough steps, still cheap to read.
    units = nbytes * 2
    log_hit = np.log(agree[: units * 4]).reshape(units, 4).sum(axis=1)
    log_chance = np.log(chance[: units * 4]).reshape(units, 4).sum(axis=1)
    # Chance cut per hit risked: bigger is better; a byte that never varies cuts nothing.
    worth = np.where(log_hit < 0, log_chance / np.minimum(log_hit, -1e-12), 0.0)
    usable = np.flatnonzero(log_chance < -1e-6)
    if not len(usable):
        raise ValueError("no byte of the encodings varies: there is nothing to block on")
    pool = usable[np.argsort(-worth[usable], kind="stable")][: max(8, len(usable) // 2)]
    index_bits = max(1, (max(sizes) - 1).bit_length())
    most_units = max(1, (63 - index_bits) // 4)
    pairs = max(2, sizes[0] * sizes[1])
    larger = max(2, max(sizes))
    per_byte = float(np.mean(log_chance[pool]))
    width = math.ceil(math.log(larger / pairs) / per_byte) if per_byte < 0 else 1
    width = max(1, min(width, most_units, len(pool)))
    rng = random.Random(seed)
    positions = [int(b) for b in pool]
    chosen: list[tuple[int, ...]] = []
    missed = 1.0
    while missed > 1.0 - completeness:
        if len(chosen) >= MAX_BANDS:
            raise ValueError(
                f"blocking at threshold {threshold} would need more than {MAX_BANDS} bands of "
                f"{4 * width} bits; use all-pairs matching or a higher threshold"
            )
        band = tuple(sorted(rng.sample(positions, width)))
        missed *= 1.0 - math.exp(float(log_hit[list(band)].sum()))
        chosen.append(band)
    sketch_bits = 64 * len(sketch_columns(nbytes))
    expected = sketch_bits * disagreement
    spread = math.sqrt(sketch_bits * disagreement * (1.0 - disagreement))
    return BandPlan(
        bits=4 * width,
        bands=tuple(chosen),
        agreement=math.exp(float(np.mean(log_hit[pool])) / 4),
        completeness=1.0 - missed,
        sketch_limit=math.ceil(expected + 4.5 * spread),
    )


def lowest_plan(
    sizes: tuple[int, int],
    frequencies: np.ndarray,
    low: float,
    high: float,
    *,
    completeness: float = DEFAULT_COMPLETENESS,
    seed: int | None = None,
    budget: int = MAX_BANDS,
) -> tuple[float, BandPlan]:
    """The plan at the lowest design threshold from ``low`` up to ``high`` (in steps of
    0.01) that needs at most ``budget`` bands, with that threshold; the plan at ``high``
    when none lower fits.

    A salted record CLK (``record_clk = "salted"``) scores a true pair a step lower for each
    salt that differs, so a plan made at the run's threshold leaves pairs with one salt
    wrong to chance. Planning as low as the budget allows finds them at the cost of more
    bands. How low that is depends on the sizes and the encodings' bits, so it is searched
    for here rather than fixed: a smaller run plans lower.
    """
    steps = max(0, round((high - low) / 0.01))  # low == high: the plan at high
    for k in range(steps):
        threshold = round(low + 0.01 * k, 4)
        try:
            found = plan(sizes, frequencies, threshold, completeness=completeness, seed=seed)
        except ValueError:
            continue
        if len(found.bands) <= budget:
            return threshold, found
    return high, plan(sizes, frequencies, high, completeness=completeness, seed=seed)


def part_plans(
    sizes: tuple[int, int],
    frequencies: np.ndarray,
    parts: PartPass,
    high: float,
    *,
    completeness: float = DEFAULT_COMPLETENESS,
    seed: int | None = None,
    budget: int = DEFAULT_BAND_BUDGET,
) -> tuple[tuple[float, BandPlan], ...]:
    """One plan per part of a salted record CLK, each with bands inside its part only, and
    the part Dice it was made for.

    A part whose salt differs between two records reads chance (about 0.5), so a pair with
    one salt agreeing scores about 0.63 on the whole row, and bands drawn over the whole
    row find it only by luck. Each part is planned on its own bits (``lowest_plan`` over
    that slice of ``frequencies``: the lowest part Dice from that part's floor up to ``high``
    that ``budget`` bands a part allow; a pair whose part reaches it collides in one of
    the part's bands with chance ``completeness``) and screened on a sketch of its own
    words; its bands are then moved to the part's place in the row. A pair is a candidate
    if it collides in some band of some part (``part_keep`` decides if it stays).
    """
    width = len(frequencies) // 8
    plans = []
    floors = parts.part_floors
    for number, (first, last) in enumerate(parts.bounds(width)):
        at, found = lowest_plan(
            sizes,
            frequencies[8 * first : 8 * last],
            floors[number],
            max(high, floors[number]),
            completeness=completeness,
            seed=None if seed is None else seed ^ (number + 1) * 0x9E3779B1,
            budget=budget,
        )
        words = tuple(first // 8 + w for w in sketch_columns(last - first))
        moved = tuple(tuple(u + 2 * first for u in band) for band in found.bands)
        plans.append((at, dataclasses.replace(found, bands=moved, sketch=words)))
    return tuple(plans)


def chunks(
    plan_: BandPlan,
    left: int,
    right: int,
    threshold: float,
    per_task: int = 0,
    parts: PartPass | None = None,
) -> list[BandChunk]:
    """The plan's bands for one pair of datasets (or one dataset with itself), as tasks.

    ``left`` and ``right`` index the datasets; ``per_task`` bands go to each
    task (default: enough for ``TASKS_PER_PLAN`` tasks). With ``parts`` (a part's plan,
    ``part_plans``) a task also keeps the pairs whose best part reaches the part floor.
    """
    per_task = per_task or max(BANDS_PER_TASK, math.ceil(len(plan_.bands) / TASKS_PER_PLAN))
    return [
        BandChunk(
            left=left,
            right=right,
            bands=plan_.bands[start : start + per_task],
            threshold=threshold,
            sketch_limit=plan_.sketch_limit,
            sketch=plan_.sketch,
            parts=parts,
        )
        for start in range(0, len(plan_.bands), per_task)
    ]


def auto_limit(record_clk: str) -> int:
    """All-pairs comparisons above which "auto" blocks, for a project's record CLK."""
    return SALTED_AUTO_MIN_COMPARISONS if record_clk == "salted" else AUTO_MIN_COMPARISONS


def should_block(mode: str, sizes: Sequence[int], limit: int = AUTO_MIN_COMPARISONS) -> bool:
    """Whether a run blocks: "lsh" always, "none" never, "auto" when all-pairs is too dear
    (more than ``limit`` comparisons: ``auto_limit``)."""
    if mode == "lsh":
        return True
    if mode == "none":
        return False
    pairs = sum(a * b for n, a in enumerate(sizes) for b in sizes[n + 1 :])
    return pairs > limit
