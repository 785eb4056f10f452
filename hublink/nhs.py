"""NHS number check digit (modulus 11), shared by node validation and the synthetic generator."""

from __future__ import annotations

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def check_digit(first_nine: str) -> int | None:
    """Return the check digit for nine digits, or None when no valid digit exists.

    The NHS modulus-11 scheme weights the first nine digits 10..2; a remainder
    giving 10 means the number can never be valid, which is why this returns
    None rather than a digit.
    """
    if len(first_nine) != 9 or not first_nine.isdigit():
        raise ValueError("check_digit needs exactly nine digits")
    total = sum(int(d) * w for d, w in zip(first_nine, _WEIGHTS, strict=True))
    digit = 11 - total % 11
    if digit == 11:
        return 0
    if digit == 10:
        return None
    return digit


def is_valid(number: str) -> bool:
    """True for a ten-digit string whose last digit is the modulus-11 check digit."""
    if len(number) != 10 or not number.isdigit():
        return False
    return check_digit(number[:9]) == int(number[9])
