"""Whether an incremental run may carry the last run's bootstrap spreads instead of drawing
its bootstraps again.

A run's quality figures come with spreads from two bootstraps: the threshold
estimate refits its score mixture 100 times (``score_model.estimate``), and
recall on the run's output is resampled 200 times over every record with a
candidate (``output_recall``). Together they were the largest cost left in an
incremental run that touched 1% of a project, and a refresh of a few records
barely moves them. So an incremental run computes every point figure exactly
(the threshold it links at, precision, recall, the other fits, blocking's
measured miss) and carries the last bootstrapped spreads around them, while
the records its changes reached since that bootstrap stay under
``CARRY_SHARE`` of the project. The report says so
(``RunQuality.spread_carried``: how many records since); past the share, or
after a full run, the bootstraps are drawn again. The threshold a run links at
never depends on a bootstrap, so entities are the same either way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from coordinator.core.quality import RunQuality
from coordinator.core.score_model import Estimate
from coordinator.core.store import Store

#: Records reached by changes since the last bootstrap, as a share of the project, up to
#: which an incremental run carries that bootstrap's spreads.
CARRY_SHARE = 0.05


@dataclass(frozen=True)
class Carry:
    """The last bootstrapped spreads, each relative to its point figure."""

    since: int
    """Records reached by changes since the bootstrap, this run's included."""
    threshold_sd: float
    precision_sd: float
    precision: tuple[float, float]
    """(low - precision, high - precision) of the last precision interval."""
    recall: tuple[float, float]
    """(low - recall, high - recall) of the last recall interval (on the output)."""

    @property
    def output(self) -> tuple[float, float, int]:
        """What ``quality.Output.carried`` takes."""
        return self.recall[0], self.recall[1], self.since

    def apply(self, found: Estimate) -> Estimate:
        """An estimate fitted without a bootstrap, with the carried spreads around its points."""
        if not found.fitted:
            return found
        low, high = found.precision_interval
        return dataclasses.replace(
            found,
            threshold_sd=self.threshold_sd,
            precision_sd=self.precision_sd,
            precision_interval=(
                max(0.0, min(low, found.precision + self.precision[0])),
                min(1.0, max(high, found.precision + self.precision[1])),
            ),
        )


def carried(store: Store, project_id: str, reached: int, records: int) -> Carry | None:
    """The last completed run's spreads, if this run (``reached`` records of ``records``
    changed or paired with a change) may carry them; None: bootstrap afresh."""
    row = store.query_one(
        "SELECT q.report FROM run_quality q JOIN runs r ON r.id = q.run_id "
        "WHERE r.project_id = ? AND r.state = 'completed' "
        "ORDER BY r.finished_at DESC, r.rowid DESC LIMIT 1",
        (project_id,),
    )
    if row is None:
        return None
    last = RunQuality.from_json(row["report"])
    if not (last.recall_on_output and last.fitted):
        return None
    since = (last.spread_carried or 0) + reached
    if since > CARRY_SHARE * records:
        return None
    p_low, p_high = last.precision_interval
    r_low, r_high = last.recall_interval
    return Carry(
        since,
        last.threshold_sd,
        last.precision_sd,
        (float(p_low) - last.precision, float(p_high) - last.precision),
        (float(r_low) - last.recall, float(r_high) - last.recall),
    )
