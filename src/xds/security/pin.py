"""PIN policy and storage (DESIGN §4): a PIN is 4-12 digits or a passphrase of at least 8
characters; it is stored as an scrypt hash (RFC 7914) with its own random salt and the cost
parameters, so the parameters can be raised later without invalidating stored hashes.

Nothing here logs; a PIN appears in no exception message and no ``repr``.

Public API::

    PinKind (DIGITS, PASSPHRASE)
    check_pin(pin) -> PinKind                  # PinPolicyError says which rule failed
    hash_pin(pin, *, params=DEFAULT_PARAMS) -> str     # "scrypt$n$r$p$salt$hash"
    verify_pin(pin, stored) -> bool            # constant-time comparison
    ScryptParams(n, r, p, dklen)
    PinPolicyError(ValueError)
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import unicodedata
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DEFAULT_PARAMS",
    "PinKind",
    "PinPolicyError",
    "ScryptParams",
    "check_pin",
    "hash_pin",
    "hash_secret",
    "verify_pin",
    "verify_secret",
]

MIN_DIGITS: Final = 4
MAX_DIGITS: Final = 12
MIN_PASSPHRASE: Final = 8
MAX_PASSPHRASE: Final = 256
SALT_BYTES: Final = 16
_SCHEME: Final = "scrypt"


class PinPolicyError(ValueError):
    """The PIN does not meet the policy; the message names the rule (never the PIN)."""


class PinKind(enum.Enum):
    DIGITS = "digits"
    PASSPHRASE = "passphrase"


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt cost (RFC 7914 §2): N (a power of two), r, p and the derived key length."""

    n: int = 2**14
    r: int = 8
    p: int = 1
    dklen: int = 32

    def __post_init__(self) -> None:
        if self.n < 2 or self.n & (self.n - 1):
            raise ValueError("scrypt N must be a power of two greater than 1")
        if self.r < 1 or self.p < 1 or not 16 <= self.dklen <= 64:
            raise ValueError("scrypt r and p must be positive and dklen 16-64")


#: 16 MiB of memory per hash (128 * r * N bytes): OWASP's minimum for scrypt.
DEFAULT_PARAMS: Final = ScryptParams()


def _normalise(pin: str) -> str:
    # Passphrases typed on different keyboards must hash alike (NFC composes accents).
    return unicodedata.normalize("NFC", pin)


def check_pin(pin: str) -> PinKind:
    """Say which kind of secret ``pin`` is, or raise :class:`PinPolicyError` naming the rule."""
    if not isinstance(pin, str):
        raise PinPolicyError("the PIN must be text")
    text = _normalise(pin)
    if text.isascii() and text.isdigit():
        if not MIN_DIGITS <= len(text) <= MAX_DIGITS:
            raise PinPolicyError(
                f"a numeric PIN has {MIN_DIGITS} to {MAX_DIGITS} digits (this one has {len(text)}); "
                f"or use a passphrase of at least {MIN_PASSPHRASE} characters"
            )
        return PinKind.DIGITS
    if len(text) < MIN_PASSPHRASE:
        raise PinPolicyError(
            f"a passphrase has at least {MIN_PASSPHRASE} characters (this one has {len(text)}); "
            f"or use a numeric PIN of {MIN_DIGITS} to {MAX_DIGITS} digits"
        )
    if len(text) > MAX_PASSPHRASE:
        raise PinPolicyError(f"a passphrase has at most {MAX_PASSPHRASE} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise PinPolicyError("a passphrase may not contain control characters")
    return PinKind.PASSPHRASE


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(pin: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(
        _normalise(pin).encode("utf-8"),
        salt=salt,
        n=params.n,
        r=params.r,
        p=params.p,
        dklen=params.dklen,
        maxmem=128 * params.r * params.n * 2 + (1 << 20),
    )


def hash_secret(secret: str, *, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """Hash any secret (a PIN, a staff password; the caller checks its own policy first) with a
    fresh salt: ``scrypt$N$r$p$<salt>$<key>`` (base64url, no padding)."""
    salt = os.urandom(SALT_BYTES)
    key = _derive(secret, salt, params)
    return f"{_SCHEME}${params.n}${params.r}${params.p}${_b64(salt)}${_b64(key)}"


def hash_pin(pin: str, *, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """Check the PIN policy, then :func:`hash_secret`."""
    check_pin(pin)
    return hash_secret(pin, params=params)


def _parse(stored: str) -> tuple[ScryptParams, bytes, bytes]:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != _SCHEME:
            raise ValueError(scheme)
        raw_key = _unb64(key)
        return ScryptParams(n=int(n), r=int(r), p=int(p), dklen=len(raw_key)), _unb64(salt), raw_key
    except (ValueError, TypeError):
        raise ValueError("not a stored scrypt PIN hash") from None


def verify_pin(pin: str, stored: str) -> bool:
    """True when ``pin`` matches ``stored``; the keys are compared in constant time. A stored
    value that is not a scrypt hash raises ValueError (a corrupt grant row)."""
    params, salt, expected = _parse(stored)
    if not isinstance(pin, str):
        return False
    candidate = _derive(pin, salt, params)
    return hmac.compare_digest(candidate, expected)


def verify_secret(secret: str, stored: str) -> bool:
    """:func:`verify_pin` for any secret, False (not an error) for a malformed stored value."""
    try:
        return verify_pin(secret, stored)
    except ValueError:
        return False
