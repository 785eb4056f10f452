"""Disclosure control for every count an analyst receives.

A count table leaves the coordinator only after four steps, in this order:

1. **Exact counts.** Every cell and every total is counted from the entities
   themselves; a total is never the sum of protected cells.
2. **Primary suppression.** A cell whose exact count is from 1 to
   ``threshold - 1`` is withheld (shown as ``*``). Zero is released as 0: an
   empty cell points at nobody.
3. **Cell-key perturbation** (rounded rules only), after the method the ONS
   used for Census 2021. Every entity has a record key from 0 to 255, derived
   from its stable entity id with the project's own key (HMAC-SHA256). A cell's
   key is the sum of its entities' record keys modulo 256, and the published
   perturbation table ``PTABLE`` maps (count, cell key) to the noise added. The
   same set of people always gets the same noise, in any query and any run,
   so repeating a query or averaging many teaches nothing; and the rounding
   boundary a cell sits against moves whenever its set of people changes, so
   an attacker cannot pad a cell with people they know until it sits just
   below a boundary.
4. **Rounding** to the nearest multiple of the rule's base (halves up).

A rule without rounding (base 1) publishes exact counts, so it needs
**secondary suppression** instead: more cells are withheld until no withheld
cell can be worked out exactly from the published cells and totals of its
table (``secondary_suppression``).

What rounding can and cannot do against differencing. An attacker who
compares a count with the same count minus one known person, and guesses the
person is there when the two differ, is right with probability
``0.5 + 0.5 * P(the two differ)``. Any rule that publishes multiples of ``b``
and is right on average must change its output by ``b`` about once every
``b`` people, so ``P(differ)`` cannot fall below ``1/b`` for cells of
assorted sizes: 0.6 for base 5. Rounding to 5 reaches that bound, suppression
lowers it for small cells, and the perturbation table is deliberately
light (one cell in four moved by one before rounding) so that it costs
little here while still moving boundaries. Unrounded counts change with
every person and give no such protection: choose them only for tables
published once.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: Record and cell keys run from 0 to CELL_KEY_MODULUS - 1, as in the ONS method.
CELL_KEY_MODULUS = 256

#: The published perturbation table (p-table) "hublink-ptable-1". For every
#: count that is released (at or above the rule's threshold), the cell key
#: decides the noise added before rounding: (first key, last key, noise).
#: Zero and suppressed cells are never perturbed. The perturbed count is never
#: taken below the threshold, so perturbation cannot turn a released cell into
#: a suppressed one.
PTABLE_NAME = "hublink-ptable-1"
PTABLE: tuple[tuple[int, int, int], ...] = (
    (0, 31, +1),
    (32, 63, -1),
    (64, 255, 0),
)

SUPPRESSED = "*"


@dataclass(frozen=True)
class Rule:
    """How a project protects its counts: suppress 1..threshold-1, round to ``rounding``."""

    name: str
    threshold: int
    rounding: int

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError("the suppression threshold must be at least 1")
        if self.rounding < 1:
            raise ValueError("the rounding base must be at least 1 (1 = unrounded)")

    @property
    def perturbed(self) -> bool:
        """Rounded rules add cell-key noise; unrounded ones must stay additive."""
        return self.rounding > 1

    @property
    def secondary(self) -> bool:
        """Unrounded rules withhold extra cells so no withheld cell can be derived."""
        return self.rounding == 1

    def describe(self) -> str:
        """The rule in words, for the caption under every table."""
        parts = []
        if self.threshold > 1:
            parts.append(f"counts from 1 to {self.threshold - 1} are suppressed")
        else:
            parts.append("no suppression")
        if self.rounding > 1:
            parts.append(
                f"others are perturbed ({PTABLE_NAME}) and rounded to the nearest "
                f"{self.rounding}; totals are rounded from exact values"
            )
        else:
            parts.append("others are exact, with further cells withheld where needed")
        return f"{self.name}: " + "; ".join(parts)


#: The NHS hospital-statistics convention (1 to 7 shown as *, others to the
#: nearest 5), a stricter one (below 10 suppressed), and exact counts.
PRESETS: Mapping[str, Rule] = {
    "hospital-statistics": Rule("hospital-statistics", threshold=8, rounding=5),
    "strict": Rule("strict", threshold=10, rounding=5),
    "unrounded": Rule("unrounded", threshold=10, rounding=1),
}
DEFAULT_PRESET = "hospital-statistics"


def rule_for(preset: str, threshold: int = 0, rounding: int = 0) -> Rule:
    """A preset, with the project's own threshold or rounding base where it sets them (not 0)."""
    try:
        base = PRESETS[preset]
    except KeyError:
        raise ValueError(
            f"unknown disclosure preset {preset!r}; expected one of {', '.join(PRESETS)}"
        ) from None
    return Rule(base.name, threshold or base.threshold, rounding or base.rounding)


def record_key(project_key: bytes, entity_id: str) -> int:
    """An entity's record key, 0..255: stable across runs, unpredictable without the project key."""
    mac = hmac.new(project_key, b"record-key\x1f" + entity_id.encode(), hashlib.sha256).digest()
    return int.from_bytes(mac[:4], "big") % CELL_KEY_MODULUS


def cell_key(record_keys: Sequence[int]) -> int:
    """The key of a cell: the sum of its entities' record keys, modulo 256."""
    return sum(record_keys) % CELL_KEY_MODULUS


def noise(cell_key_value: int) -> int:
    """The p-table's noise for a released cell with this key."""
    for first, last, amount in PTABLE:
        if first <= cell_key_value <= last:
            return amount
    raise ValueError(f"cell key {cell_key_value} is outside 0..{CELL_KEY_MODULUS - 1}")


def round_to(value: int, base: int) -> int:
    """Nearest multiple of ``base``, halves rounded up (12.5 → 15)."""
    return base * ((value + base // 2) // base) if base > 1 else value


@dataclass(frozen=True)
class ExactCell:
    """A cell before protection: its exact count and its cell key. Never leaves the coordinator."""

    value: int
    key: int = 0


@dataclass(frozen=True)
class Protected:
    """A cell after protection: the released value, or None when withheld, and why."""

    value: int | None
    suppressed: bool
    reason: str = ""  # "", "primary" or "secondary"


@dataclass(frozen=True)
class Constraint:
    """``total`` is the sum of ``parts`` (indexes into a table's cells): a margin of the table."""

    total: int
    parts: tuple[int, ...] = field(default_factory=tuple)


def protect(
    cells: Sequence[ExactCell], rule: Rule, constraints: Sequence[Constraint] = ()
) -> list[Protected]:
    """Apply ``rule`` to a table: exact values in, released values out, in the same order.

    ``constraints`` name the table's margins (a total and the cells it adds
    up); they matter only to unrounded rules, which must make sure a withheld
    cell cannot be worked out from the published cells and totals.
    """
    primary = [0 < c.value < rule.threshold for c in cells]
    if rule.secondary:
        withheld = secondary_suppression([c.value for c in cells], primary, constraints)
        return [
            Protected(None, True, "primary" if primary[i] else "secondary")
            if withheld[i]
            else Protected(c.value, False)
            for i, c in enumerate(cells)
        ]
    out = []
    for c, small in zip(cells, primary, strict=True):
        if small:
            out.append(Protected(None, True, "primary"))
        elif c.value == 0:
            out.append(Protected(0, False))
        else:
            perturbed = max(rule.threshold, c.value + noise(c.key))
            out.append(Protected(round_to(perturbed, rule.rounding), False))
    return out


def secondary_suppression(
    values: Sequence[int], primary: Sequence[bool], constraints: Sequence[Constraint]
) -> list[bool]:
    """Which cells to withhold so that no primary cell can be derived exactly.

    Every total that adds up a withheld cell is withheld too (and so on up
    to the grand total). Then a withheld cell can move by one with every
    total containing it moving alike, and every margin equation still holds:
    the published cells and totals are consistent with more than one value
    for it. This costs totals rather than inner cells, which suits the
    unrounded rule's purpose (exact inner cells for a one-off table); the
    solver test in tests/unit/test_disclosure.py checks the claim.
    """
    del values  # the rule depends only on which cells are withheld
    withheld = list(primary)
    changed = True
    while changed:
        changed = False
        for constraint in constraints:
            if not withheld[constraint.total] and any(withheld[p] for p in constraint.parts):
                withheld[constraint.total] = True
                changed = True
    return withheld
