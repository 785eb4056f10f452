"""A project's blocking plan and estimate sample, fixed so that any two runs on the same data
see the same candidate pairs and the same threshold.

A blocked run used to draw its bands and its estimate sample afresh, so two
full re-links of the same records disagreed at the margin, and an incremental
run (which keeps the last run's pairs) could only be compared with a full one
"within blocking's spread". Here both are made functions of the project and
its records:

- **the plan** is drawn once, from a seed that is a hash of the project id,
  and kept with the run's pairs (``incremental.Basis``). Later runs, full or
  incremental, reuse it while every dataset stays within ``SIZE_DRIFT`` of
  the size it was planned for; past that the next run is a full one and plans
  again. A pair is then a candidate exactly when it collides in a band of the
  plan, its sketches differ in at most the plan's limit, and its Dice reaches
  the threshold: a property of the two records alone, so the pairs of records
  a refresh did not touch stay what they were, and the touched records'
  pairs can be found on their own (``colliding``).
- **the sample** of records whose exact best scores feed the threshold
  estimate is, in each dataset, the records with the smallest keyed hash of
  their record id (bottom-k). A refresh changes it only where it removes a
  sampled record or adds one with a smaller hash.

The seed never leaves the coordinator and derives from nothing a node sends
but the records the coordinator already holds.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from coordinator.core import blocking
from coordinator.core.comparison import band_keys
from coordinator.core.part_pass import PartPass

#: A plan is reused while every dataset is within this share of the size it was planned for.
SIZE_DRIFT = 0.1
#: Cross pairs are kept from this far below a whole-row plan's threshold (pairs further
#: down collide only by chance): ``candidates.BLOCKED_MARGIN`` is this.
MARGIN = 0.05


def project_seed(project_id: str, purpose: str) -> int:
    """A 63-bit seed for one purpose ("bands", "sample") of one project: the same every run."""
    digest = hashlib.sha256(f"hublink:{purpose}:{project_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class Pinned:
    """The band plans a project's blocked runs use, and what they were made for."""

    sizes: tuple[int, ...]
    design: float
    within: float
    completeness: float
    plans: tuple[tuple[int, int, blocking.BandPlan], ...]
    """(left dataset, right dataset, plan); left == right for within-dataset search."""
    planned: float = 0.0
    """The lowest threshold a cross-dataset plan was made for (a salted record CLK's plans
    reach below ``design``: ``blocking.lowest_plan``); 0: ``design``."""
    parts: tuple[int, float, bool] = (0, 0.0, False)
    """The part pass the plans were made for (count, floor, within; count 0: none). With
    one, a pair of datasets the pass searches has a plan per part (``blocking.part_plans``)
    and its tasks keep what the pass keeps."""
    part_design: float = 0.0
    """The highest part Dice a part's plan was made for (``blocking.part_plans``: each part
    as low from the part floor as the band budget allows); 0: no part plans."""
    part_floors: tuple[float, ...] = ()
    """Each part's own floor, when the part pass gave them (``PartPass.floors``); empty: the
    one floor of ``parts`` (and plans pinned before parts had their own)."""

    @property
    def lowest(self) -> float:
        """The lowest threshold the cross-dataset plans promise to find pairs at."""
        return self.planned or self.design

    @property
    def part_pass(self) -> PartPass | None:
        count, floor, within = self.parts
        return PartPass(count, floor, within, self.part_floors) if count else None

    def kept_from(self, low: float) -> float:
        """Where a blocked run keeps cross pairs from: ``low`` with part plans (they are
        made at the part floor, below any whole-row plan), else a margin below the lowest
        plan (pairs far under it are found only by chance)."""
        if self.part_pass is not None:
            return low
        return max(low, self.lowest - MARGIN)

    def plans_for(self, left: int, right: int) -> list[blocking.BandPlan]:
        """The plans of one pair of datasets (left <= right): one, or one per part."""
        return [plan for a, b, plan in self.plans if (a, b) == (left, right)]

    def parts_for(self, left: int, right: int) -> PartPass | None:
        """The part pass the tasks of one pair of datasets keep pairs by (None: whole row)."""
        passes = self.part_pass
        return passes.for_pair(left == right) if passes is not None else None

    def fits(
        self,
        sizes: Sequence[int],
        design: float,
        within: float,
        completeness: float,
        parts: PartPass | None = None,
    ) -> bool:
        """Whether runs over datasets of ``sizes`` searching so (and with the part pass
        ``parts``) may use these plans."""
        if (design, within, completeness) != (self.design, self.within, self.completeness):
            return False
        if self.part_pass != parts:
            return False
        if len(sizes) != len(self.sizes):
            return False
        return all(
            abs(now - then) <= SIZE_DRIFT * max(1, then)
            for now, then in zip(sizes, self.sizes, strict=True)
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Pinned:
        raw = json.loads(text)
        plans = tuple(
            (
                int(a),
                int(b),
                blocking.BandPlan(
                    bits=int(p["bits"]),
                    bands=tuple(tuple(int(u) for u in band) for band in p["bands"]),
                    agreement=float(p["agreement"]),
                    completeness=float(p["completeness"]),
                    sketch_limit=int(p["sketch_limit"]),
                    sketch=tuple(int(w) for w in p.get("sketch", ())),
                ),
            )
            for a, b, p in raw["plans"]
        )
        return cls(
            tuple(raw["sizes"]),
            raw["design"],
            raw["within"],
            raw["completeness"],
            plans,
            float(raw.get("planned", 0.0)),
            _parts(raw.get("parts")),
            float(raw.get("part_design", 0.0)),
            tuple(float(f) for f in raw.get("part_floors", ())),
        )


def make(
    rows: Sequence[np.ndarray],
    design: float,
    within: float,
    completeness: float,
    seed: int | None,
    plan_from: float | None = None,
    band_budget: int = blocking.DEFAULT_BAND_BUDGET,
    parts: PartPass | None = None,
) -> Pinned:
    """Plans for every pair of datasets (and each with itself when ``within`` is set), each
    drawn from ``seed`` and the pair's place, so the same data and seed give the same plans
    (``seed`` None: drawn at random). With ``parts`` (a salted record CLK's part pass),
    each pair of datasets the pass searches gets one plan per part, as low from the part
    floor as ``band_budget`` bands a part allow (``blocking.part_plans``). Else, with
    ``plan_from`` (a salted record CLK's floor), each
    cross-dataset plan is made at the lowest threshold from there up to ``design`` that
    needs at most ``band_budget`` bands (``blocking.lowest_plan``)."""
    frequencies = blocking.bit_frequencies(rows)
    sizes = [len(r) for r in rows]
    plans: list[tuple[int, int, blocking.BandPlan]] = []
    planned = design
    part_design = 0.0
    for a in range(len(rows)):
        for b in range(a, len(rows)):
            threshold = within if a == b else design
            if not threshold:
                continue
            pair_seed = None if seed is None else seed ^ (a * 1_000_003 + b)
            if parts is not None and parts.for_pair(a == b) is not None:
                for at, plan in blocking.part_plans(
                    (sizes[a], sizes[b]),
                    frequencies,
                    parts,
                    threshold,
                    completeness=completeness,
                    seed=pair_seed,
                    budget=band_budget,
                ):
                    plans.append((a, b, plan))
                    part_design = max(part_design, at)
                continue
            if a != b and plan_from is not None:
                at, plan = blocking.lowest_plan(
                    (sizes[a], sizes[b]),
                    frequencies,
                    plan_from,
                    design,
                    completeness=completeness,
                    seed=pair_seed,
                    budget=band_budget,
                )
                planned = min(planned, at)
            else:
                plan = blocking.plan(
                    (sizes[a], sizes[b]),
                    frequencies,
                    threshold,
                    completeness=completeness,
                    seed=pair_seed,
                )
            plans.append((a, b, plan))
    return Pinned(
        tuple(sizes),
        design,
        within,
        completeness,
        tuple(plans),
        planned if planned < design else 0.0,
        (parts.count, parts.floor, parts.within) if parts is not None else (0, 0.0, False),
        part_design,
        parts.floors if parts is not None else (),
    )


def _parts(raw: object) -> tuple[int, float, bool]:
    """A part pass as kept in JSON (a list), or none (plans kept before there were any)."""
    if not isinstance(raw, list) or len(raw) != 3:
        return (0, 0.0, False)
    return (int(raw[0]), float(raw[1]), bool(raw[2]))


def colliding(
    plan: blocking.BandPlan,
    left: np.ndarray,
    right: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
) -> np.ndarray:
    """Which pairs (left row i, right row j) share a key in at least one band of ``plan``.

    Only the pairs' own rows are keyed, so it costs what the pairs do, not a pass
    over the datasets.
    """
    hit = np.zeros(len(i), dtype=bool)
    if not len(i):
        return hit
    step = 64
    for first in range(0, len(plan.bands), step):
        bands = plan.bands[first : first + step]
        hit |= (band_keys(left[i], bands) == band_keys(right[j], bands)).any(axis=0)
    return hit


def _mix(values: np.ndarray, seed: int) -> np.ndarray:
    """A keyed 64-bit hash of each value (splitmix64's finaliser over value ^ seed)."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) ^ np.uint64(seed)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        out: np.ndarray = z ^ (z >> np.uint64(31))
    return out


def sample_picks(record_ids: Sequence[np.ndarray], total: int, seed: int) -> list[np.ndarray]:
    """Row numbers (ascending) of each dataset's sampled records: the ``total / datasets``
    with the smallest keyed hash of their record id."""
    each = max(1, math.ceil(total / max(1, len(record_ids))))
    out: list[np.ndarray] = []
    for ids in record_ids:
        hashed = _mix(np.asarray(ids, dtype=np.int64), seed)
        take = min(len(hashed), each)
        rows = np.argpartition(hashed, take - 1)[:take] if take else np.zeros(0, np.int64)
        out.append(np.sort(rows).astype(np.int64))
    return out
