"""The consent grant's values and errors (DESIGN §4), apart from the store that keeps them.

Public API (re-exported by :mod:`registry.grants`)::

    SharedExam(study_uid, manifest_unique_id=None, report_unique_ids=(), release_time=None)
    Grant(grant_id, patient_id, exams, created, expires, revoked, parent_id, label, pin_pending)
    IssuedGrant(grant, access_code)
    ThrottlePolicy(max_failures=5, base_lockout=1 min, max_lockout=1 day, forget_after=1 day)
    AuditRecord(at, grant_id, client_address, action, outcome, detail)
    GrantError > GrantNotFound, GrantConflict > PinAlreadySet,
                 PresentationRefused > CredentialsRejected > PinPending; Locked
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from xds.security.saml import GrantScope

__all__ = [
    "AuditRecord",
    "CredentialsRejected",
    "Grant",
    "GrantConflict",
    "GrantError",
    "GrantNotFound",
    "IssuedGrant",
    "Locked",
    "PinAlreadySet",
    "PinPending",
    "PresentationRefused",
    "SharedExam",
    "ThrottlePolicy",
]


# -- errors ----------------------------------------------------------------------------------------
class GrantError(Exception):
    """A grant operation that cannot be done; ``http_status`` is what the API answers."""

    http_status = 400


class GrantNotFound(GrantError, LookupError):
    http_status = 404


class GrantConflict(GrantError):
    """The request contradicts the grant (e.g. a share wider or longer-lived than its parent)."""

    http_status = 409


class PresentationRefused(GrantError):
    """A presentation of code and PIN that gives no access. Messages are the same whatever the
    reason, so a refusal never tells whether a code exists."""

    http_status = 401

    def __init__(self, message: str = "the access code and PIN were not accepted") -> None:
        super().__init__(message)


class CredentialsRejected(PresentationRefused):
    """Unknown code, wrong PIN, expired or revoked grant (told apart only in the audit)."""


class PinPending(CredentialsRejected):
    """The code is right but its grant has no PIN yet. Refused like a wrong PIN; the API may say
    so, since only the code's holder (the patient) learns it."""


class PinAlreadySet(GrantConflict):
    """Activation of a grant whose PIN is already set."""

    def __init__(self) -> None:
        super().__init__("a PIN is already set for this access code")


class Locked(PresentationRefused):
    """Too many failures for this code or this client address; try again after ``retry_after``."""

    http_status = 423

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__("too many failed attempts; try again later")
        self.retry_after = retry_after


# -- values ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SharedExam:
    """One shared exam. ``release_time`` None = not yet released (e.g. waiting for the report)."""

    study_uid: str
    manifest_unique_id: str | None = None
    report_unique_ids: tuple[str, ...] = ()
    release_time: datetime | None = None

    def __post_init__(self) -> None:
        if not self.study_uid or " " in self.study_uid:
            raise ValueError("a study UID is required and has no spaces")
        for uid in self.report_unique_ids:
            if not uid or " " in uid:
                raise ValueError("report uniqueIds are non-empty and have no spaces")
        if self.release_time is not None and self.release_time.tzinfo is None:
            raise ValueError("release_time must be timezone-aware")

    def is_released(self, now: datetime) -> bool:
        # DESIGN §4 release policy: visible from the release time on, and only with a manifest.
        return self.manifest_unique_id is not None and self.release_time is not None and self.release_time <= now


@dataclass(frozen=True, slots=True)
class Grant:
    """A grant as it is in force: a share's exams, expiry and revocation already include its
    ancestors'. ``label`` says who a share is for; ``pin_pending`` is True until the patient
    chooses the first PIN."""

    grant_id: str
    patient_id: str
    exams: tuple[SharedExam, ...]
    created: datetime
    expires: datetime
    revoked: bool
    parent_id: str | None = None
    label: str | None = None
    pin_pending: bool = False

    @property
    def is_share(self) -> bool:
        return self.parent_id is not None

    def is_live(self, now: datetime) -> bool:
        return not self.revoked and now < self.expires

    def released_exams(self, now: datetime) -> tuple[SharedExam, ...]:
        return tuple(e for e in self.exams if e.is_released(now))

    def scope(self, now: datetime) -> GrantScope:
        """What the token issued now may list: released manifests, their studies and reports."""
        released = self.released_exams(now)
        return GrantScope(
            patient_id=self.patient_id,
            manifest_unique_ids=frozenset(e.manifest_unique_id for e in released if e.manifest_unique_id),
            study_instance_uids=frozenset(e.study_uid for e in released),
            report_unique_ids=frozenset(uid for e in released for uid in e.report_unique_ids),
        )


@dataclass(frozen=True, slots=True)
class IssuedGrant:
    """A new grant and its access code: the only time the code leaves the store."""

    grant: Grant
    access_code: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Lock-out after ``max_failures``: ``base_lockout * 2**(failures - max_failures)``, capped;
    an address's failures are forgotten after ``forget_after`` without a new one."""

    max_failures: int = 5
    base_lockout: timedelta = timedelta(minutes=1)
    max_lockout: timedelta = timedelta(days=1)
    forget_after: timedelta = timedelta(days=1)

    def lockout(self, failures: int) -> timedelta | None:
        if failures < self.max_failures:
            return None
        exponent = min(failures - self.max_failures, 40)
        return min(self.base_lockout * (2**exponent), self.max_lockout)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: datetime
    grant_id: str | None
    client_address: str | None
    action: str
    outcome: str
    detail: str | None = None
