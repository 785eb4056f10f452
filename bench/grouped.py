"""Turn solved groups into the (organisation, local id) -> key mapping the benches score."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

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
