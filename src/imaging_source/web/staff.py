"""Staff users of the console: password hashes, roles, sign-in with lock-out.

Passwords are stored as scrypt hashes (RFC 7914) with their own random salt and the cost
parameters written next to the key (``scrypt$N$r$p$<salt>$<key>``), so the cost can be raised
later without invalidating stored hashes; keys are compared in constant time
(:func:`hmac.compare_digest`). A sign-in for an unknown user name still derives a key, so the
answer takes as long as for a known one (no user enumeration by timing).

Lock-out (OWASP Authentication Cheat Sheet, "account lockout"): after :data:`LOCK_AFTER`
consecutive failures the account is locked for :data:`LOCK_BASE_SECONDS`, doubling with each
further failure up to :data:`LOCK_MAX_SECONDS`; while locked no password is even checked. A
successful sign-in, or a new password set by an administrator, clears the counter. The caller
shows one generic message for every refusal.

Public API::

    StaffRole (USER, ADMIN)
    StaffUser (frozen dataclass)
    SignIn (frozen dataclass: user or None, locked)
    StaffDirectory(engine, *, clock=time.time, params=DEFAULT_PARAMS)
        .add(username, password, *, role) -> StaffUser
        .get(username) -> StaffUser | None
        .list() -> list[StaffUser]
        .set_password(username, password) -> StaffUser
        .set_disabled(username, *, disabled) -> StaffUser
        .authenticate(username, password) -> SignIn
    check_password(password) / check_username(username)   # StaffPolicyError(ValueError)
    hash_password(password, *, params) -> str / verify_password(password, stored) -> bool
"""

from __future__ import annotations

import enum
import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from imaging_source import schema as t
from xds.security.pin import ScryptParams, hash_secret, verify_secret

__all__ = [
    "DEFAULT_PARAMS",
    "LOCK_AFTER",
    "LOCK_BASE_SECONDS",
    "LOCK_MAX_SECONDS",
    "PasswordParams",
    "SignIn",
    "StaffDirectory",
    "StaffExists",
    "StaffPolicyError",
    "StaffRole",
    "StaffUser",
    "UnknownStaff",
    "check_password",
    "check_username",
    "hash_password",
    "verify_password",
]

Clock = Callable[[], float]

#: Consecutive failures that lock an account, the first lock and the longest one (seconds).
LOCK_AFTER: Final = 5
LOCK_BASE_SECONDS: Final = 60.0
LOCK_MAX_SECONDS: Final = 3600.0
#: NIST SP 800-63B §5.1.1.2: at least 8 characters; staff passwords guard many patients, so 10.
MIN_PASSWORD: Final = 10
MAX_PASSWORD: Final = 256
_USERNAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class StaffRole(enum.StrEnum):
    """``user`` searches, enrols, shares and retries; ``admin`` also manages staff and revokes."""

    USER = "user"
    ADMIN = "admin"


class StaffPolicyError(ValueError):
    """A user name or password the policy refuses (the message never repeats a password)."""


class StaffExists(ValueError):
    """A staff user of that name exists already."""


class UnknownStaff(LookupError):
    """No staff user of that name."""


#: scrypt cost (RFC 7914 §2) of staff passwords: the PINs' parameter type, own values allowed.
PasswordParams = ScryptParams


#: 16 MiB per hash (128 * r * N bytes), OWASP's minimum for scrypt.
DEFAULT_PARAMS: Final = PasswordParams()


@dataclass(frozen=True, slots=True)
class StaffUser:
    """A staff account as the console sees it (never its hash)."""

    id: int
    username: str
    role: StaffRole
    created: float
    disabled: bool
    failed_logins: int
    locked_until: float | None
    last_login: float | None

    @property
    def is_admin(self) -> bool:
        return self.role is StaffRole.ADMIN

    def locked(self, now: float) -> bool:
        return self.locked_until is not None and now < self.locked_until


@dataclass(frozen=True, slots=True)
class SignIn:
    """The outcome of a sign-in: the user when it succeeded; ``locked`` when the account is."""

    user: StaffUser | None
    locked: bool = False


def check_username(username: str) -> str:
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise StaffPolicyError("a user name is 1-64 letters, digits or . _ @ - (starting with a letter or digit)")
    return username


def check_password(password: str) -> None:
    if not isinstance(password, str):
        raise StaffPolicyError("the password must be text")
    text = unicodedata.normalize("NFC", password)
    if len(text) < MIN_PASSWORD:
        raise StaffPolicyError(f"a staff password has at least {MIN_PASSWORD} characters")
    if len(text) > MAX_PASSWORD:
        raise StaffPolicyError(f"a staff password has at most {MAX_PASSWORD} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise StaffPolicyError("a password may not contain control characters")


def hash_password(password: str, *, params: PasswordParams = DEFAULT_PARAMS) -> str:
    """Check the policy, then hash with a fresh salt (the PINs' scrypt, its own parameters)."""
    check_password(password)
    return hash_secret(unicodedata.normalize("NFC", password), params=params)


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; constant-time comparison of the keys."""
    return isinstance(password, str) and verify_secret(unicodedata.normalize("NFC", password), stored)


def _user(row: Any) -> StaffUser:
    return StaffUser(
        id=int(row.id),
        username=row.username,
        role=StaffRole(row.role),
        created=row.created,
        disabled=bool(row.disabled),
        failed_logins=int(row.failed_logins),
        locked_until=row.locked_until,
        last_login=row.last_login,
    )


def lock_seconds(failures: int) -> float:
    """How long ``failures`` consecutive failures lock an account (0 below the threshold)."""
    if failures < LOCK_AFTER:
        return 0.0
    return min(LOCK_MAX_SECONDS, LOCK_BASE_SECONDS * 2 ** (failures - LOCK_AFTER))


class StaffDirectory:
    """The staff user table of the Edge Server's index (already migrated)."""

    def __init__(self, engine: Engine, *, clock: Clock = time.time, params: PasswordParams = DEFAULT_PARAMS) -> None:
        self.engine = engine
        self.clock = clock
        self.params = params
        # A hash to check unknown user names against, so they cost as much as known ones.
        self._decoy = hash_secret(secrets.token_urlsafe(24), params=params)

    def add(self, username: str, password: str, *, role: StaffRole) -> StaffUser:
        check_username(username)
        stored = hash_password(password, params=self.params)
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    t.staff_user.insert().values(
                        username=username,
                        password_hash=stored,
                        role=StaffRole(role).value,
                        created=now,
                        disabled=False,
                        failed_logins=0,
                        locked_until=None,
                        last_login=None,
                        password_changed=now,
                    )
                )
        except IntegrityError:
            raise StaffExists(f"staff user {username} exists already") from None
        return self._must(username)

    def get(self, username: str) -> StaffUser | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.staff_user).where(t.staff_user.c.username == username)).first()
        return _user(row) if row is not None else None

    def _must(self, username: str) -> StaffUser:
        found = self.get(username)
        if found is None:
            raise UnknownStaff(f"no staff user {username}")
        return found

    def list(self) -> list[StaffUser]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.staff_user).order_by(t.staff_user.c.username)).all()
        return [_user(r) for r in rows]

    def count_admins(self) -> int:
        return sum(1 for u in self.list() if u.is_admin and not u.disabled)

    def set_password(self, username: str, password: str) -> StaffUser:
        """A new password; the failure counter and any lock are cleared."""
        stored = hash_password(password, params=self.params)
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(t.staff_user)
                .where(t.staff_user.c.username == username)
                .values(password_hash=stored, password_changed=self.clock(), failed_logins=0, locked_until=None)
            ).rowcount
        if not changed:
            raise UnknownStaff(f"no staff user {username}")
        return self._must(username)

    def set_disabled(self, username: str, *, disabled: bool) -> StaffUser:
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(t.staff_user).where(t.staff_user.c.username == username).values(disabled=disabled)
            ).rowcount
        if not changed:
            raise UnknownStaff(f"no staff user {username}")
        return self._must(username)

    def authenticate(self, username: str, password: str) -> SignIn:
        """Check a sign-in. Refusals look alike to the caller except ``locked``, which is for the
        audit trail, not for the screen."""
        now = self.clock()
        with self.engine.connect() as conn:
            row = conn.execute(select(t.staff_user).where(t.staff_user.c.username == username)).first()
        if row is None or row.disabled:
            verify_password(password, self._decoy)  # the same work as a real check
            return SignIn(None)
        if row.locked_until is not None and now < row.locked_until:
            return SignIn(None, locked=True)
        if not verify_password(password, row.password_hash):
            with self.engine.begin() as conn:
                conn.execute(
                    update(t.staff_user)
                    .where(t.staff_user.c.id == row.id)
                    .values(failed_logins=t.staff_user.c.failed_logins + 1)
                )
                failures = conn.execute(
                    select(t.staff_user.c.failed_logins).where(t.staff_user.c.id == row.id)
                ).scalar_one()
                wait = lock_seconds(int(failures))
                if wait:
                    conn.execute(update(t.staff_user).where(t.staff_user.c.id == row.id).values(locked_until=now + wait))
            return SignIn(None, locked=bool(wait))
        with self.engine.begin() as conn:
            conn.execute(
                update(t.staff_user)
                .where(t.staff_user.c.id == row.id)
                .values(failed_logins=0, locked_until=None, last_login=now)
            )
        return SignIn(self._must(username))
