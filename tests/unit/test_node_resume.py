"""Which interrupted upload a node resumes: the same input and secret epoch, nothing else."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from node import consent
from node.intake import Intake
from node.tokens import TokenStore
from node.workflow import _resume_or_record


def intake(included: int, fingerprint: str) -> Intake:
    return Intake(
        input_path=Path("children.csv"),
        prepared=(),
        rows=included,
        rejects=(),
        decisions={consent.INCLUDED: included},
        policy=None,
        rejects_path=Path("rejects.csv"),
        included_sha256=fingerprint,
    )


def resume(tmp_path: Path, store: TokenStore, read: Intake) -> tuple[str, bool, list[str]]:
    config: Any = SimpleNamespace(state_dir=tmp_path)
    return _resume_or_record(
        config, store, "project", (read.included, read.included_sha256), secret_epoch=0
    )


def test_the_same_input_resumes_and_another_starts_afresh(tmp_path: Path) -> None:
    with TokenStore(tmp_path / "tokens.sqlite") as store:
        first, resumed, _ = resume(tmp_path, store, intake(3, "ab" * 32))
        assert not resumed
        store.add_tokens(first, [("t" * 32, "R1")])

        again, resumed, notes = resume(tmp_path, store, intake(3, "ab" * 32))
        assert (again, resumed, notes) == (first, True, [])

        other, resumed, notes = resume(tmp_path, store, intake(3, "cd" * 32))
        assert other != first and not resumed
        assert "input changed" in notes[0]


def test_an_upload_recorded_before_fingerprints_is_not_resumed(tmp_path: Path) -> None:
    with TokenStore(tmp_path / "tokens.sqlite") as store:
        store.record_upload("old-upload", "project", [("t" * 32, "R1")])

        upload_id, resumed, notes = resume(tmp_path, store, intake(1, "ab" * 32))

        assert upload_id != "old-upload" and not resumed
        assert "earlier hublink" in notes[0]
        assert store.interrupted_upload_id("project") == upload_id
