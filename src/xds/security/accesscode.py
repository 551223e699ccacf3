"""Eight-digit access codes whose last digit is a Damm check digit (DESIGN §4).

The Damm algorithm (H. M. Damm, 2004) uses a totally anti-symmetric quasigroup of order 10: it
detects every single-digit error and every transposition of two adjacent digits, so a typed code
with one such typo is refused before it counts as a failed presentation.

Public API::

    CODE_LENGTH = 8
    new_access_code(rng=secrets) -> str              # "12345678"
    check_access_code(text) -> str                    # normalised, or AccessCodeError
    format_access_code(code) -> str                   # "1234-5678"
    damm_check_digit(digits) -> str ; damm_valid(digits) -> bool
    AccessCodeError(ValueError)
"""

from __future__ import annotations

import secrets
from typing import Final, Protocol

__all__ = [
    "CODE_LENGTH",
    "AccessCodeError",
    "check_access_code",
    "damm_check_digit",
    "damm_valid",
    "format_access_code",
    "new_access_code",
]

CODE_LENGTH: Final = 8

# The weakly totally anti-symmetric quasigroup of order 10 from Damm's thesis (row = interim
# digit, column = next digit); its diagonal is zero, so a valid number checks to 0.
_DAMM: Final = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

# Separators a person may type or read off a printed code sheet.
_SEPARATORS: Final = frozenset(" -\u2010\u2011\u2012\u2013\u2014\t.")


class AccessCodeError(ValueError):
    """The text is not a well-formed access code; the message says what is wrong."""


class _Rng(Protocol):
    def randbelow(self, exclusive_upper_bound: int, /) -> int: ...


def _interim(digits: str) -> int:
    state = 0
    for ch in digits:
        state = _DAMM[state][ord(ch) - 48]
    return state


def damm_check_digit(digits: str) -> str:
    """The Damm check digit to append to ``digits`` (ASCII 0-9 only)."""
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("Damm check digits are computed over ASCII digits only")
    return str(_interim(digits))


def damm_valid(digits: str) -> bool:
    """True when the last digit of ``digits`` is the Damm check digit of the others."""
    return digits.isascii() and digits.isdigit() and len(digits) >= 2 and _interim(digits) == 0


def new_access_code(rng: _Rng = secrets) -> str:  # type: ignore[assignment]
    """A fresh random code: seven random digits and the check digit (10^7 codes)."""
    body = "".join(str(rng.randbelow(10)) for _ in range(CODE_LENGTH - 1))
    return body + damm_check_digit(body)


def check_access_code(text: str) -> str:
    """Normalise a typed code (spaces and dashes dropped) and check it; return the 8 digits.

    Raises :class:`AccessCodeError` naming the problem: a character that is not a digit, the
    wrong number of digits, or a check digit that does not match (a typo).
    """
    if not isinstance(text, str):
        raise AccessCodeError("the access code must be text")
    kept = []
    for ch in text.strip():
        if ch in _SEPARATORS:
            continue
        if not ("0" <= ch <= "9"):
            raise AccessCodeError("the access code may contain only digits (and spaces or dashes)")
        kept.append(ch)
    digits = "".join(kept)
    if len(digits) != CODE_LENGTH:
        raise AccessCodeError(f"the access code has {CODE_LENGTH} digits, not {len(digits)}")
    if not damm_valid(digits):
        raise AccessCodeError("the access code is mistyped (its check digit does not match)")
    return digits


def format_access_code(code: str) -> str:
    """The code as printed for people: ``1234-5678``."""
    digits = check_access_code(code)
    half = CODE_LENGTH // 2
    return f"{digits[:half]}-{digits[half:]}"
