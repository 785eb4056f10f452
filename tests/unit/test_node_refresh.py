"""What a refresh sends: added, changed, removed, unchanged, told apart without identifiers."""

from __future__ import annotations

from node.prepare import PreparedRecord
from node.refresh import fingerprinter, plan

SECRET = b"synthetic test secret"


def record(local_id: str, *values: str) -> PreparedRecord:
    return PreparedRecord(local_id, tuple(values))


def test_each_kind_of_change_is_found_and_only_changes_are_sent() -> None:
    fp = fingerprinter(SECRET)
    last_month = [
        record("A", "seren", "davies", "2022-01-02"),
        record("B", "cai", "rowlands", "2023-09-01"),
        record("C", "isla", "morgan", "2022-07-22"),
    ]
    held = {r.local_id: (f"token-{r.local_id}", fp(r)) for r in last_month}
    this_month = [
        record("A", "seren", "davies", "2022-01-02"),  # unchanged
        record("B", "cai", "rowlands-jones", "2023-09-01"),  # a name change
        record("D", "elis", "price", "2026-03-01"),  # a birth
    ]
    delta, prints = plan(iter(this_month), held, fp, in_file={"A", "B", "D"}, sent_before={"D"})

    assert delta.added == frozenset({"D"})
    assert dict(delta.changed) == {"B": "token-B"}  # keeps its token
    assert dict(delta.removed) == {"C": "token-C"}
    assert delta.unchanged == 1 and delta.sent == 2
    assert (delta.left_extract, delta.left_consent, delta.rejoined) == (1, 0, 1)
    assert set(prints) == {"A", "B", "D"}
    assert "rowlands" not in str(prints)  # fingerprints, never values


def test_fingerprints_depend_on_the_secret_and_the_values() -> None:
    one = record("A", "seren", "davies")
    assert fingerprinter(SECRET)(one) == fingerprinter(SECRET)(record("A", "seren", "davies"))
    assert fingerprinter(SECRET)(one) != fingerprinter(b"another secret")(one)
    assert fingerprinter(SECRET)(one) != fingerprinter(SECRET)(record("A", "seren", "davis"))


def test_a_record_still_in_the_file_but_left_out_now_left_by_consent() -> None:
    fp = fingerprinter(SECRET)
    held = {"A": ("token-A", fp(record("A", "x"))), "B": ("token-B", fp(record("B", "y")))}
    delta, _ = plan(iter([record("A", "x")]), held, fp, in_file={"A", "B"})
    assert (delta.left_consent, delta.left_extract) == (1, 0)


def test_a_withdrawn_token_is_not_removed_twice() -> None:
    fp = fingerprinter(SECRET)
    held = {"A": ("token-A", fp(record("A", "x")))}
    delta, _ = plan(iter([]), held, fp, withdrawn_tokens={"token-A"})
    assert not delta.removed


def test_keys_kept_counts_only_records_unchanged_and_linked_the_same_way() -> None:
    from hublink.demo.refreshes import keys_kept

    before = {("a", "1"): "k1", ("b", "1"): "k1", ("a", "2"): "k2", ("a", "3"): "k3"}
    after = {("a", "1"): "k1", ("b", "1"): "k1", ("a", "2"): "k9", ("a", "3"): "k3"}
    assert keys_kept(before, after, edited=set()) == 3 / 4
    assert keys_kept(before, after, edited={("a", "2")}) == 1.0
