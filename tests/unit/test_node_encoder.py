"""node.encoder: normalise a row, hash it with the project's secret into a 1024-bit CLK, harden.

The default spec balances the CLK (appends its complement) and permutes the
2048 bits with a key derived from the secret, so what leaves is 256 bytes with
exactly half the bits set.
"""

from __future__ import annotations

import dataclasses

import pytest
from bitarray import bitarray

from hublink.spec import LinkageSpec, SpecError
from node.encoder import Encoder, encode_records, new_token
from node.prepare import RowError, normalise_checked, normalise_row, normalisers, prepare_rows
from node.source import SourceRow

SPEC = LinkageSpec.default()
FIELDS = SPEC.all_fields
SECRET = b"a-secret-of-16+chars"

AMELIA = ("amelia", "pryce", "03042021", "F", "CF10 1AA", "")
OLIVER = ("oliver", "jenkins", "15112020", "M", "SA1 1DP", "")
NOBODY = ("",) * len(FIELDS)


def bits_of(packed: bytes) -> bitarray:
    bits = bitarray(endian="big")
    bits.frombytes(packed)
    return bits


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder(SPEC, SECRET)


# --- normalise_row --------------------------------------------------------------------------


def test_a_row_is_normalised_into_schema_order() -> None:
    row = SourceRow(
        2,
        "HV-001",
        {
            "postcode": "cf101aa",
            "given_name": "  Amelia ",
            "family_name": "PRYCE",
            "date_of_birth": "03/04/2021",
            "sex": "Female",
        },
    )

    values = normalise_row(row, FIELDS, normalisers())

    assert values[: len(AMELIA)] == AMELIA  # nhs_number is not in the export, so it is empty
    # then the derived features (node.derived): canonical given name, sorted date of birth
    # and its order, postcode outward code
    assert values[len(AMELIA) :] == ("amelia", "03042021", "M", "CF10")


def test_configured_date_formats_are_used() -> None:
    row = SourceRow(2, "HV-001", {"date_of_birth": "2021|04|03"})
    values = normalise_row(row, FIELDS, normalisers(["%Y|%m|%d"]))
    assert values[FIELDS.index("date_of_birth")] == "03042021"


def test_an_impossible_date_is_missing_and_the_finding_names_field_and_reason() -> None:
    row = SourceRow(7, "HV-006", {"given_name": "Noah", "date_of_birth": "31/02/2022"})

    values, findings = normalise_checked(row, FIELDS, normalisers())

    assert values[FIELDS.index("given_name")] == "noah"
    assert values[FIELDS.index("date_of_birth")] == ""
    dob = [f for f in findings if f.field == "date_of_birth"]
    assert [(f.status, f.reason) for f in dob] == [("invalid", "impossible calendar date")]


def test_a_row_with_no_usable_identifier_is_a_row_error() -> None:
    row = SourceRow(7, "HV-006", {"given_name": "UNKNOWN", "date_of_birth": "31/02/2022"})

    with pytest.raises(RowError) as caught:
        normalise_row(row, FIELDS, normalisers())

    assert str(caught.value).startswith("row 7: no usable identifier")


def test_a_field_without_a_rule_is_only_trimmed() -> None:
    row = SourceRow(2, "X-1", {"given_name": "  Cai  ", "family_name": "   "})
    assert normalise_row(row, ("given_name", "family_name"), {}) == ("Cai", "")


# --- encoding -------------------------------------------------------------------------------


def test_each_record_becomes_384_balanced_bytes(encoder: Encoder) -> None:
    packed = encoder.encode([AMELIA, OLIVER])
    assert [len(p) for p in packed] == [384, 384]
    assert [bits_of(p).count() for p in packed] == [1536, 1536]
    assert encoder.encode([]) == []


def test_the_same_input_and_secret_give_the_same_bits(encoder: Encoder) -> None:
    again = Encoder(LinkageSpec.default(), SECRET)
    assert encoder.encode([AMELIA]) == again.encode([AMELIA])


def test_different_people_get_different_bits(encoder: Encoder) -> None:
    amelia, oliver = encoder.encode([AMELIA, OLIVER])
    assert amelia != oliver


def test_another_secret_gives_unrelated_bits(encoder: Encoder) -> None:
    (ours,) = encoder.encode([AMELIA])
    (theirs,) = Encoder(SPEC, b"another-secret-16+chars").encode([AMELIA])
    a, b = bits_of(ours), bits_of(theirs)

    # Balanced filters have exactly half their 3072 bits set; under another secret both the
    # CLK and the permutation change, so the two differ in about half of the positions and
    # share only the bits chance says they should.
    assert a.count() == b.count() == 1536
    assert 0.4 * 3072 < (a ^ b).count() < 0.6 * 3072
    assert (a & b).count() == pytest.approx(1536 * 1536 / 3072, rel=0.15)


def test_a_record_with_every_field_empty_hashes_nothing(encoder: Encoder) -> None:
    unsalted = SPEC.with_record_parts(())
    (packed,) = Encoder(unsalted, SECRET).encode([NOBODY])
    unhardened = Encoder(dataclasses.replace(unsalted, hardening="none"), SECRET)
    (clk,) = unhardened.encode([NOBODY])
    assert len(packed) == 256
    assert bits_of(clk).count() == 0
    assert bits_of(packed).count() == 1024  # only the complement half is set
    # Salted, it has no salt for any part: every part is random bits, the same each time.
    (salted,) = encoder.encode([NOBODY])
    assert encoder.encode([NOBODY]) == [salted]
    assert 0.4 * 3072 < (bits_of(salted) ^ bits_of(packed + packed[:128])).count() < 0.6 * 3072


# --- the record CLK's salted parts (hublink/schemas/record-clk.json) ------------------------


def agreement(a: bytes, b: bytes) -> float:
    """Share of positions two balanced CLKs agree on (their Dice similarity)."""
    x, y = bits_of(a), bits_of(b)
    return 1 - (x ^ y).count() / len(x)


def test_one_error_in_a_salt_field_leaves_the_other_parts_agreeing(encoder: Encoder) -> None:
    amelia = ("amelia", "pryce", "15042021", "F", "CF10 1AA", "9990000018")
    variants = {
        "date slip": ("amelia", "pryce", "15042022", "F", "CF10 1AA", "9990000018"),
        "move": ("amelia", "pryce", "15042021", "F", "SA1 1DP", "9990000018"),
        "misspelt name": ("emelia", "pryce", "15042021", "F", "CF10 1AA", "9990000018"),
        "day/month swap": ("amelia", "pryce", "04152021", "F", "CF10 1AA", "9990000018"),
    }
    packed = encoder.encode([amelia, *variants.values()])
    scores = {k: agreement(packed[0], p) for k, p in zip(variants, packed[1:], strict=True)}
    # One part of three turns unrelated (agreeing on half its bits), the rest still agree.
    for kind in ("date slip", "move", "misspelt name"):
        assert 0.7 < scores[kind] < 0.9, (kind, scores)
    # Sorting day and month before salting keeps every part's salt through a swap.
    assert scores["day/month swap"] > 0.9, scores
    # Errors in two salt fields leave one part agreeing, well above unrelated records.
    (both,) = encoder.encode([("amelia", "pryce", "15042022", "F", "SA1 1DP", "9990000018")])
    (other,) = encoder.encode([OLIVER])
    assert 0.6 < agreement(packed[0], both) < 0.7
    assert agreement(packed[0], other) < 0.56


def test_every_part_is_balanced_on_its_own(encoder: Encoder) -> None:
    """Each 512-bit part leaves as 1,024 bits with exactly 512 set, so the whole row's Dice
    is the mean of its parts' and the coordinator can score one part alone."""
    width = 2 * 512 // 8
    for packed in encoder.encode([AMELIA, OLIVER, NOBODY]):
        parts = [packed[k : k + width] for k in range(0, len(packed), width)]
        assert len(parts) == 3
        assert [bits_of(p).count() for p in parts] == [512, 512, 512]


def test_a_pair_with_one_salt_agreeing_keeps_that_part_whole() -> None:
    """Two salt fields wrong: the row reads about 0.6 (the mean of two chance parts and one
    that still agrees on its salt), under the whole-row floor, while that part alone reads
    well above chance (it hashes the two wrong fields too, so not near 1)."""
    encoder = Encoder(SPEC, SECRET)
    amelia = ("amelia", "pryce", "15042021", "F", "CF10 1AA", "")
    moved_and_slipped = ("amelia", "pryce", "15042022", "F", "SA1 1DP", "")
    a, b = encoder.encode([amelia, moved_and_slipped])
    width = 128
    parts = [agreement(a[k : k + width], b[k : k + width]) for k in range(0, len(a), width)]
    whole = agreement(a, b)
    assert whole == pytest.approx(sum(parts) / 3)
    assert whole < 0.62
    assert max(parts) > 0.7  # the name part
    assert sorted(parts)[:2] == [pytest.approx(0.5, abs=0.08)] * 2


def test_per_part_balancing_is_pinned_in_the_encoding_hash() -> None:
    """Rows balanced whole and rows balanced per part must never meet in one project: the
    salted, balanced layout has its own hash; the unsalted and the unbalanced keep theirs."""
    unsalted = SPEC.with_record_parts(())
    assert "record_balance" not in repr(unsalted)  # nothing new in the legacy layout
    salted_none = dataclasses.replace(SPEC, hardening="none")
    assert len({SPEC.sha256, unsalted.sha256, salted_none.sha256}) == 3
    # Under hardening "none" nothing is balanced: the parts are sent as hashed.
    (raw,) = Encoder(salted_none, SECRET).encode([AMELIA])
    assert len(raw) == 192


def test_namesakes_share_no_positions_unless_they_share_a_salt(encoder: Encoder) -> None:
    """Children with the same name but another birth date, address and family name hold
    the name on unrelated positions: nothing gathers records by name."""
    unsalted = Encoder(SPEC.with_record_parts(()), SECRET)
    amelia = ("amelia", "pryce", "15042021", "F", "CF10 1AA", "")
    namesake = ("amelia", "pryce", "28092020", "F", "SA1 1DP", "")
    stranger = ("oliver", "jenkins", "02022020", "M", "LL11 2AB", "")
    plain = unsalted.encode([amelia, namesake, stranger])
    assert agreement(plain[0], plain[1]) > agreement(plain[0], plain[2]) + 0.1
    # The name part (salted by the full name) agrees: one part of three.
    salted = encoder.encode([amelia, namesake, stranger])
    assert agreement(salted[0], salted[1]) < 0.72
    other_family = ("amelia", "evans", "28092020", "F", "SA1 1DP", "")
    (far,) = encoder.encode([other_family])
    assert agreement(salted[0], far) == pytest.approx(agreement(salted[0], salted[2]), abs=0.03)


def test_a_record_clk_salt_the_schema_cannot_supply_is_refused() -> None:
    parts = [dataclasses.replace(p, salt=("school_year",)) for p in SPEC.record_parts]
    with pytest.raises(ValueError, match="clk@birth is salted with school_year"):
        Encoder(SPEC.with_record_parts(parts), SECRET)


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret is empty"):
        Encoder(SPEC, b"")


def test_rows_are_prepared_then_encoded_each_with_a_fresh_token(encoder: Encoder) -> None:
    rows = [
        SourceRow(2, "HV-001", {"given_name": "Amelia", "date_of_birth": "03/04/2021"}),
        SourceRow(3, "HV-002", {"given_name": "Amelia", "date_of_birth": "03/04/2021"}),
        SourceRow(4, "HV-003", {"given_name": "Oliver"}),
    ]
    progress: list[int] = []

    prepared = prepare_rows(rows, FIELDS, normalisers())
    encoded = encode_records(prepared, encoder, batch=2, progress=progress.append)

    assert prepared[0].values == (
        "amelia",
        "",
        "03042021",
        "",
        "",
        "",
        "amelia",
        "03042021",
        "M",
        "",
    )
    assert [e.local_id for e in encoded] == ["HV-001", "HV-002", "HV-003"]
    assert len({e.token for e in encoded}) == 3
    assert progress == [2, 1]
    assert encoded[0].encodings == encoded[1].encodings  # same values, same bits
    assert all(len(e.encodings) == 1 and len(e.encodings[0]) == 384 for e in encoded)


def test_preparing_stops_at_the_first_bad_row() -> None:
    rows = [
        SourceRow(2, "HV-001", {"date_of_birth": "03/04/2021"}),
        SourceRow(3, "HV-002", {"date_of_birth": "30/02/2021"}),
    ]
    with pytest.raises(RowError, match="row 3: no usable identifier"):
        prepare_rows(rows, FIELDS, normalisers())


def test_tokens_are_random_and_url_safe() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(t) == 22 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)


# --- per-field filters (field_scoring) ------------------------------------------------------


def group_dice(spec: LinkageSpec, group: str, a: tuple[str, ...], b: tuple[str, ...]) -> float:
    at = [e.name for e in spec.encodings].index(group)
    x, y = (bits_of(e[at]) for e in Encoder(spec, SECRET).encode_all([a, b], ["t1", "t2"]))
    return 2 * (x & y).count() / (x.count() + y.count())


def test_each_name_variant_agrees_only_where_its_salt_agrees() -> None:
    spec = LinkageSpec.from_json(SPEC.json_text, field_scoring=True)
    salts = {g.name: g.salt for g in spec.field_groups}
    assert salts["given@birth"] == "date_of_birth_sorted"
    assert salts["given@home"] == "postcode"
    amelia = ("amelia", "pryce", "15042021", "F", "CF10 1AA", "")
    # The same birth date (a day/month swap included): the birth variant agrees.
    for same_date in ("15042021", "04152021"):
        other_home = ("amelia", "jenkins", same_date, "F", "SA1 1DP", "")
        assert group_dice(spec, "given@birth", amelia, other_home) > 0.9, same_date
        assert group_dice(spec, "given@home", amelia, other_home) < 0.6, same_date
    # A mistyped year at the same address: the home variant agrees.
    slipped = ("amelia", "pryce", "15042022", "F", "CF10 1AA", "")
    assert group_dice(spec, "given@home", amelia, slipped) > 0.9
    assert group_dice(spec, "given@birth", amelia, slipped) < 0.6
    # Another child with the same name, born the same month elsewhere: nothing agrees,
    # so filters cannot be gathered into clusters of one name.
    namesake = ("amelia", "pryce", "28042020", "F", "SA1 1DP", "")
    for group in ("given@birth", "given@home", "family@birth", "family@home"):
        assert group_dice(spec, group, amelia, namesake) < 0.6, group


def test_a_missing_salt_sends_random_bits_for_that_variant() -> None:
    spec = LinkageSpec.from_json(SPEC.json_text, field_scoring=True)
    homeless = ("amelia", "pryce", "15042021", "F", "", "")
    also_homeless = ("oliver", "evans", "02022020", "M", "", "")
    # Two records without a postcode would share one permutation: random bits instead.
    assert group_dice(spec, "given@home", homeless, also_homeless) < 0.6
    assert group_dice(spec, "given@home", homeless, homeless) < 0.6
    assert group_dice(spec, "given@birth", homeless, homeless) > 0.9


def test_a_salt_the_schema_cannot_supply_is_refused() -> None:
    spec = LinkageSpec.from_json(SPEC.json_text, field_scoring=True)
    with pytest.raises(ValueError, match="given@birth is salted with school_year"):
        Encoder(spec.with_salts({"given@birth": "school_year"}), SECRET)
    with pytest.raises(SpecError, match="no field group named gvien"):
        spec.with_salts({"gvien": "year_of_birth"})
