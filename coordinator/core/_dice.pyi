"""Types of the native Dice kernel (coordinator/core/_dice.c); see coordinator.core.kernel."""

from typing_extensions import Buffer

RIGHT_BLOCK: int
VARIANT: str

def dice_block(
    left: Buffer,
    right: Buffer,
    words: int,
    ones_left: Buffer,
    rest_left: Buffer,
    ones_right: Buffer,
    rest_right: Buffer,
    threshold: float,
    diagonal: bool,
    block: int,
    row: int,
    sims_out: Buffer,
    left_out: Buffer,
    right_out: Buffer,
    /,
) -> tuple[int, int, int]: ...
def dice_block_parts(
    left: Buffer,
    right: Buffer,
    words: int,
    ones_left: Buffer,
    rest_left: Buffer,
    ones_right: Buffer,
    rest_right: Buffer,
    part_ones_left: Buffer,
    part_ones_right: Buffer,
    parts: int,
    threshold: float,
    part_threshold: float,
    diagonal: bool,
    block: int,
    row: int,
    sims_out: Buffer,
    left_out: Buffer,
    right_out: Buffer,
    early_exit: bool,
    /,
) -> tuple[int, int, int]: ...
def dice_pairs(
    left: Buffer,
    right: Buffer,
    words: int,
    ones_left: Buffer,
    rest_left: Buffer,
    ones_right: Buffer,
    rest_right: Buffer,
    threshold: float,
    left_index: Buffer,
    right_index: Buffer,
    sims_out: Buffer,
    kept_out: Buffer,
    /,
) -> int: ...
def band_join(
    keys_left: Buffer,
    keys_right: Buffer,
    same: bool,
    sketch_left: Buffer,
    sketch_right: Buffer,
    sketch_words: int,
    limit: int,
    width: int,
    /,
) -> tuple[bytes, int]: ...
def sketch_near(
    sketch_left: Buffer, sketch_right: Buffer, sketch_words: int, limit: int, width: int, /
) -> bytes: ...
def counts(rows: Buffer, words: int, ones_out: Buffer, rest_out: Buffer, /) -> int: ...
