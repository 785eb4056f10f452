"""node.encode_pool: the node's encoding shared over worker processes, byte for byte as one.

Real clkhash in real (spawned) worker processes; synthetic people only.
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Iterator

import pytest

from hublink.spec import LinkageSpec
from node import encode_pool
from node.encode_pool import EncodePool, workers_for
from node.encoder import Encoder
from node.errors import NodeError
from node.prepare import NO_IDENTIFIER, RowError, normalise_row, normalisers, prepare_rows
from node.source import SourceRow

SECRET = b"encode-pool test secret, synthetic people only"
DEFAULT = LinkageSpec.default()
#: What the project defaults are becoming: per-field filters and the salted record CLK.
SCORED_SALTED = LinkageSpec.from_json(DEFAULT.json_text, field_scoring=True, record_clk="salted")

GIVEN = ("amelia", "oliver", "isla", "noah", "freya", "")
FAMILY = ("pryce", "jenkins", "morgan", "")
POSTCODES = ("CF10 1AA", "SA1 1DP", "LL57 2EW", "")


def people(n: int) -> list[tuple[str, ...]]:
    """``n`` synthetic rows in the default schema's read order, some fields missing (so the
    salted parts' random stand-ins and the empty per-field filters are exercised too)."""
    rows = []
    for i, (given, family, postcode) in zip(
        range(n), itertools.cycle(itertools.product(GIVEN, FAMILY, POSTCODES)), strict=False
    ):
        day, month = 1 + i % 5, 1 + i % 3  # few salt values: each costs a permutation
        birth = f"{day:02d}{month:02d}{2019 + i % 2}" if i % 7 else ""
        rows.append((given, family, birth, "MF"[i % 2] if i % 5 else "", postcode, ""))
    return rows


def tokens(n: int) -> list[str]:
    return [f"token-{i:06d}" for i in range(n)]


def batches(rows: list[tuple[str, ...]], size: int) -> list[tuple[int, list[tuple[str, ...]]]]:
    return [(start, rows[start : start + size]) for start in range(0, len(rows), size)]


def encode_with(spec: LinkageSpec, workers: int, rows: list[tuple[str, ...]], size: int) -> list:
    names = tokens(len(rows))
    with EncodePool(spec, SECRET, workers) as pool:
        return [
            (start, encodings)
            for (start, _), encodings in pool.encode(
                batches(rows, size),
                lambda b: (b[1], names[b[0] : b[0] + len(b[1])]),
            )
        ]


@pytest.mark.parametrize("spec", [DEFAULT, SCORED_SALTED], ids=["default", "scored-salted"])
def test_two_workers_send_the_same_bytes_in_the_same_order_as_one(
    spec: LinkageSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encode_pool, "MIN_SLICE", 7)  # several slices a batch, uneven last
    rows = people(230)

    one = encode_with(spec, 1, rows, 50)
    two = encode_with(spec, 2, rows, 50)

    assert [start for start, _ in two] == [0, 50, 100, 150, 200]
    assert two == one
    flat = [e for _, encodings in two for e in encodings]
    assert len(flat) == 230
    # every layout part is there: the record CLK, then one filter per field group
    assert {len(e) for e in flat} == {1 + len(spec.field_groups)}
    # and it is the encoder's own output, not something the pool made up
    assert flat == Encoder(spec, SECRET).encode_all(rows, tokens(230))


@pytest.fixture(scope="module")
def pool() -> Iterator[EncodePool]:
    """Two workers for the default layout, shared by the tests below (starting costs ~1 s)."""
    with EncodePool(DEFAULT, SECRET, 2) as started:
        yield started


def test_an_encoding_error_in_a_worker_reaches_the_caller_unchanged(pool: EncodePool) -> None:
    bad = [("amelia", "pryce")]  # too few values for the schema
    with pytest.raises(ValueError) as inline:
        Encoder(DEFAULT, SECRET).encode_all(bad, ["t"])
    with pytest.raises(ValueError) as pooled:
        list(pool.encode([bad], lambda b: (b, ["t"])))
    assert str(pooled.value) == str(inline.value)


def test_tokens_must_match_the_values_one_for_one(pool: EncodePool) -> None:
    with pytest.raises(ValueError, match="2 tokens"):
        list(pool.encode([people(2)], lambda b: (b, ["only-one"])))


def test_at_most_two_batches_are_read_ahead_of_the_caller(pool: EncodePool) -> None:
    """Memory follows the chunk size: the pool reads a batch only when one is taken."""
    read = 0

    def extract() -> Iterator[list[tuple[str, ...]]]:
        nonlocal read
        for start in range(0, 1000, 100):
            read += 1
            yield people(1000)[start : start + 100]

    taken = 0
    for _, encodings in pool.encode(extract(), lambda b: (b, tokens(len(b)))):
        taken += 1
        assert len(encodings) == 100
        assert read - taken <= encode_pool.AHEAD - 1
    assert (read, taken) == (10, 10)


def test_every_core_is_used_except_for_a_small_upload_unless_asked() -> None:
    assert workers_for(0, 100_000) == encode_pool.cores()
    assert workers_for(0, encode_pool.MIN_RECORDS_FOR_WORKERS - 1) == 1
    assert workers_for(4, 100_000) == 4
    assert workers_for(1, 100_000) == 1
    # set explicitly, the setting holds for a small upload, one slice a worker at most
    assert workers_for(4, 3 * encode_pool.MIN_SLICE) == 3
    assert workers_for(4, 10) == 1
    with pytest.raises(ValueError, match="encode_workers must be 0"):
        workers_for(-1, 100_000)


def test_a_pool_refuses_no_workers_and_an_empty_secret() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        EncodePool(DEFAULT, SECRET, 0)
    with pytest.raises(ValueError, match="secret is empty"):
        EncodePool(DEFAULT, b"", 2)


# ------------------------------------------------------------ normalising in the workers too
def raw_rows(n: int) -> list[SourceRow]:
    """``n`` synthetic rows as read from an export, before normalising: mixed case, spaces,
    dates written several ways; every ninth has no usable identifier at all."""
    out = []
    for i, values in enumerate(people(n)):
        given, family, birth, sex, postcode, _ = values
        if i % 9 == 4:
            cells = {"given_name": "N/A", "date_of_birth": "31/02/2019", "postcode": "??"}
        else:
            written = f"{birth[:2]}/{birth[2:4]}/{birth[4:]}" if birth and i % 2 else birth
            cells = {
                "given_name": f"  {given.upper()} ",
                "family_name": family.title(),
                "date_of_birth": written,
                "sex": sex.lower(),
                "postcode": postcode.lower(),
                "nhs_number": "",
            }
        out.append(SourceRow(i + 2, f"local-{i}", cells))
    return out


def prepare_with(
    spec: LinkageSpec, workers: int, rows: list[SourceRow], size: int, *, every: int = 1
) -> list:
    """Each batch's start and what the pool made of it; every ``every``-th row gets no token."""
    names: list[str | None] = [
        None if i % every == every - 1 else t for i, t in enumerate(tokens(len(rows)))
    ]
    with EncodePool(spec, SECRET, workers, DATE_FORMATS) as pool:
        return [
            (start, prepared)
            for (start, _), prepared in pool.prepare(
                batches(rows, size), lambda b: (b[1], names[b[0] : b[0] + len(b[1])])
            )
        ]


DATE_FORMATS = ("%d/%m/%Y", "%d%m%Y")


@pytest.mark.parametrize("spec", [DEFAULT, SCORED_SALTED], ids=["default", "scored-salted"])
def test_two_workers_normalise_and_encode_exactly_as_one_process_does(
    spec: LinkageSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encode_pool, "MIN_SLICE", 7)
    rows = raw_rows(230)

    one = prepare_with(spec, 1, rows, 50, every=5)
    two = prepare_with(spec, 2, rows, 50, every=5)

    assert [start for start, _ in two] == [0, 50, 100, 150, 200]
    assert two == one
    flat = [p for _, prepared in two for p in prepared]
    assert len(flat) == 230
    # the one-process path, by hand: node.prepare's normalising, then the encoder
    rules = normalisers(DATE_FORMATS, spec)
    for i, (row, got) in enumerate(zip(rows, flat, strict=True)):
        if i % 9 == 4:
            assert got is None  # no usable identifier: left out, as the intake leaves it out
            with pytest.raises(RowError):
                normalise_row(row, spec.all_fields, rules)
            continue
        assert got is not None
        values, encodings = got
        assert values == normalise_row(row, spec.all_fields, rules)
        if i % 5 == 4:
            assert encodings is None  # no token: normalised to be checked, never encoded
        else:
            assert encodings == Encoder(spec, SECRET).encode_all([values], [tokens(230)[i]])[0]


def test_a_row_with_no_identifier_in_a_worker_raises_what_one_process_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(encode_pool, "MIN_SLICE", 1)
    rows = raw_rows(6)  # row 6 (index 4) has nothing usable
    with pytest.raises(RowError) as inline:
        prepare_rows(rows, DEFAULT.all_fields, normalisers(DATE_FORMATS, DEFAULT))
    with EncodePool(DEFAULT, SECRET, 2, DATE_FORMATS) as pool, pytest.raises(RowError) as pooled:
        list(pool.prepare([rows], lambda b: (b, tokens(len(b))), strict=True))
    assert isinstance(pooled.value, NodeError)
    assert str(pooled.value) == str(inline.value) == f"row 6: {NO_IDENTIFIER}"
    assert (pooled.value.row, pooled.value.field, pooled.value.reason) == (6, "", NO_IDENTIFIER)
    assert "N/A" not in str(pooled.value) and "31/02" not in str(pooled.value)


def test_a_row_error_survives_the_pipe_between_processes() -> None:
    error = RowError(12, "postcode", "not a postcode")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is RowError
    assert (again.row, again.field, again.reason, str(again)) == (
        12,
        "postcode",
        "not a postcode",
        "row 12, field postcode: not a postcode",
    )


def test_rows_need_a_token_or_none_each(pool: EncodePool) -> None:
    with pytest.raises(ValueError, match="3 tokens"):
        list(pool.prepare([raw_rows(3)], lambda b: (b, ["t"])))
    with pytest.raises(ValueError, match="3 tokens"):
        list(EncodePool(DEFAULT, SECRET).prepare([raw_rows(3)], lambda b: (b, ["t"])))
