"""Consent grants (DESIGN §4): who may see which of a patient's shared exams, and the
presentation of an access code and PIN that proves it.

A grant is made at enrolment (by the Edge Server, through the authenticated grant API) with an
eight-digit access code (:mod:`xds.security.accesscode`) and the scrypt hash of the patient's PIN
(:mod:`xds.security.pin`), or with no PIN yet (*PIN pending*: the patient chooses it later with
the code, :meth:`GrantStore.activate`; until then the code is refused like a wrong PIN). It
lists the shared exams, each with its manifest uniqueId, report uniqueIds and release time;
only released exams are in the token's scope. A *share* is a
narrower grant made from another: a subset of its studies, its own code, PIN and an expiry no
later than its parent's; whatever the parent loses (an exam, its release, its life) the share
loses with it, and revoking a grant revokes its shares.

Abuse (DESIGN §4): failed presentations count per code and per client address; from the fifth
failure a code (or address) is locked with exponential back-off (1, 2, 4... minutes, at most a
day). A code that no live grant holds is throttled like one that does, so lock-outs reveal
nothing about existence. Every presentation, and every change of a grant, is an audit row (the
grant id, never the code; never the PIN). Codes and PINs are never logged.

Public API (the values and errors live in :mod:`registry.grant_model`)::

    SharedExam(study_uid, manifest_unique_id=None, report_unique_ids=(), release_time=None)
    Grant(grant_id, patient_id, exams, created, expires, revoked, parent_id, label, pin_pending)
        .is_share .is_live(now) .released_exams(now) .scope(now) -> GrantScope
    IssuedGrant(grant, access_code)
    ThrottlePolicy(max_failures=5, base_lockout=1 min, max_lockout=1 day, forget_after=1 day)
    AuditRecord(at, grant_id, client_address, action, outcome, detail)
    GrantStore(engine, *, clock=..., rng=secrets, policy=ThrottlePolicy(), pin_params=...)
        .create(*, patient_id, pin, expires, exams=(), label=None, client_address=None) -> IssuedGrant
                                                           # pin None: a PIN-pending grant
        .create_share(parent_id, *, study_uids, pin, expires, label=None, client_address=None)
            -> IssuedGrant
        .get(grant_id) -> Grant
        .put_exam(grant_id, exam, *, client_address=None) -> Grant
        .set_release_time(grant_id, study_uid, release_time, *, client_address=None) -> Grant
        .withdraw_exam(grant_id, study_uid, *, client_address=None) -> Grant
        .reset_pin(grant_id, pin, *, client_address=None) -> None
        .extend(grant_id, expires, *, client_address=None) -> Grant
        .revoke(grant_id, *, client_address=None) -> int
        .present(code, pin, *, client_address, now=None, purpose="present") -> Grant
        .activate(code, pin, *, client_address) -> Grant       # first PIN of a PIN-pending grant
        .record(action, *, grant_id, client_address, outcome="success", detail=None) -> None
        .audit_records(*, grant_id=None) -> list[AuditRecord]
    GrantError > GrantNotFound, GrantConflict > PinAlreadySet,
                 PresentationRefused > CredentialsRejected > PinPending; Locked
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from sqlalchemy import Connection, Engine, Executable, Row, Table, and_, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from registry.grant_model import (
    AuditRecord,
    CredentialsRejected,
    Grant,
    GrantConflict,
    GrantError,
    GrantNotFound,
    IssuedGrant,
    Locked,
    PinAlreadySet,
    PinPending,
    PresentationRefused,
    SharedExam,
    ThrottlePolicy,
)
from registry.store import grants_schema as g
from registry.store import schema as t
from xds.security.accesscode import AccessCodeError, check_access_code, new_access_code
from xds.security.pin import DEFAULT_PARAMS, PinPolicyError, ScryptParams, hash_pin, verify_pin

__all__ = [
    "LABEL_MAX",
    "AuditRecord",
    "CredentialsRejected",
    "Grant",
    "GrantConflict",
    "GrantError",
    "GrantNotFound",
    "GrantStore",
    "IssuedGrant",
    "Locked",
    "PinAlreadySet",
    "PinPending",
    "PresentationRefused",
    "SharedExam",
    "ThrottlePolicy",
]

_SECRET_SETTING: Final = "consent.throttle_secret"
_MAX_SHARE_DEPTH: Final = 8
#: The longest label of a grant (e.g. "Dr. Lee, cardiology"); the column's width.
LABEL_MAX: Final = g.LABEL_LEN


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands DateTime(timezone=True) back naive; every time stored here is UTC.
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC)


def _addr_key(client_address: str | None) -> str:
    return f"addr:{client_address or '-'}"[:160]


def _label(label: str | None) -> str | None:
    if label is None:
        return None
    text = label.strip()
    if not 1 <= len(text) <= LABEL_MAX:
        raise GrantError(f"a label has 1 to {LABEL_MAX} characters")
    return text


def _insert_if_absent(conn: Connection, table: Table, **values: Any) -> Executable:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike."""
    if conn.dialect.name == "postgresql":
        return pg_insert(table).values(**values).on_conflict_do_nothing()
    return sqlite_insert(table).values(**values).on_conflict_do_nothing()


class _Rng(Protocol):
    def randbelow(self, exclusive_upper_bound: int, /) -> int: ...


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What a presentation decided, raised only after its counters and audit row committed."""

    grant: Grant | None = None
    error: PresentationRefused | None = None


# -- the store -------------------------------------------------------------------------------------
class GrantStore:
    """Grants on the registry's database (SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: _Rng = secrets,  # type: ignore[assignment]
        policy: ThrottlePolicy = ThrottlePolicy(),
        pin_params: ScryptParams = DEFAULT_PARAMS,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.rng = rng
        self.policy = policy
        self.pin_params = pin_params
        self._secret: bytes | None = None
        # Verified against when a code is unknown, so both paths cost one scrypt.
        self._dummy_hash = hash_pin(secrets.token_hex(16), params=pin_params)

    # -- reading -------------------------------------------------------------------------------
    def _row(self, conn: Connection, grant_id: str) -> Row[Any]:
        row = conn.execute(select(g.consent_grant).where(g.consent_grant.c.grant_id == grant_id)).first()
        if row is None:
            raise GrantNotFound(f"no grant {grant_id}")
        return row

    @staticmethod
    def _own_exams(conn: Connection, pk: int) -> list[SharedExam]:
        e = g.consent_grant_exam
        rows = conn.execute(select(e).where(e.c.grant_pk == pk).order_by(e.c.study_uid)).all()
        return [
            SharedExam(
                study_uid=r.study_uid,
                manifest_unique_id=r.manifest_unique_id,
                report_unique_ids=tuple(r.report_unique_ids.split()),
                release_time=_aware(r.release_time),
            )
            for r in rows
        ]

    def _resolve(self, conn: Connection, row: Row[Any]) -> Grant:
        """The grant in force: a share takes exams, expiry and revocation from its ancestors."""
        own = self._own_exams(conn, row.id)
        expires = _aware(row.expires)
        revoked = bool(row.revoked)
        parent_id: str | None = None
        exams = own
        if row.parent_id is not None:
            parent_row = conn.execute(select(g.consent_grant).where(g.consent_grant.c.id == row.parent_id)).one()
            parent = self._resolve(conn, parent_row)
            parent_id = parent.grant_id
            by_study = {e.study_uid: e for e in parent.exams}
            exams = [by_study[e.study_uid] for e in own if e.study_uid in by_study]
            expires = min(expires, parent.expires)  # type: ignore[type-var]
            revoked = revoked or parent.revoked
        assert expires is not None
        return Grant(
            grant_id=row.grant_id,
            patient_id=row.patient_id,
            exams=tuple(exams),
            created=_aware(row.created),  # type: ignore[arg-type]
            expires=expires,
            revoked=revoked,
            parent_id=parent_id,
            label=row.label,
            pin_pending=bool(row.pin_pending),
        )

    def get(self, grant_id: str) -> Grant:
        with self.engine.connect() as conn:
            return self._resolve(conn, self._row(conn, grant_id))

    # -- audit -----------------------------------------------------------------------------------
    @staticmethod
    def _audit(
        conn: Connection,
        *,
        at: datetime,
        action: str,
        outcome: str,
        grant_id: str | None,
        client_address: str | None,
        detail: str | None = None,
    ) -> None:
        conn.execute(
            insert(g.consent_audit).values(
                at=at,
                grant_id=grant_id,
                client_address=(client_address or None) and client_address[:64],
                action=action,
                outcome=outcome,
                detail=detail,
            )
        )

    def record(
        self,
        action: str,
        *,
        grant_id: str | None,
        client_address: str | None,
        outcome: str = "success",
        detail: str | None = None,
    ) -> None:
        """Append one audit row (e.g. an assertion renewed for a signed-in grant)."""
        with self.engine.begin() as conn:
            self._audit(
                conn, at=self.clock(), action=action, outcome=outcome, grant_id=grant_id,
                client_address=client_address, detail=detail,
            )

    def audit_records(self, *, grant_id: str | None = None) -> list[AuditRecord]:
        a = g.consent_audit
        query = select(a).order_by(a.c.id)
        if grant_id is not None:
            query = query.where(a.c.grant_id == grant_id)
        with self.engine.connect() as conn:
            return [
                AuditRecord(
                    at=_aware(r.at),  # type: ignore[arg-type]
                    grant_id=r.grant_id,
                    client_address=r.client_address,
                    action=r.action,
                    outcome=r.outcome,
                    detail=r.detail,
                )
                for r in conn.execute(query)
            ]

    # -- writing ---------------------------------------------------------------------------------
    def _insert_grant(
        self,
        *,
        patient_id: str,
        pin: str | None,
        expires: datetime,
        parent_pk: int | None,
        exams: Sequence[SharedExam],
        action: str,
        client_address: str | None,
        label: str | None = None,
    ) -> IssuedGrant:
        # hash_pin checks the PIN policy first. A PIN-pending grant holds the hash of a random
        # secret nobody knows, so no PIN can match before activation even if the flag were lost.
        pin_hash = hash_pin(pin if pin is not None else secrets.token_hex(16), params=self.pin_params)
        now = self.clock()
        grant_id = str(uuid.uuid4())
        for _attempt in range(20):
            code = new_access_code(self.rng)
            try:
                with self.engine.begin() as conn:
                    # DESIGN §4: the code is unique among live grants (the partial index keeps it).
                    pk = conn.execute(
                        insert(g.consent_grant)
                        .values(
                            grant_id=grant_id,
                            code_digest=self._code_digest(conn, code),
                            pin_hash=pin_hash,
                            pin_pending=pin is None,
                            label=label,
                            patient_id=patient_id,
                            parent_id=parent_pk,
                            created=now,
                            expires=_utc(expires),
                            revoked=False,
                            failures=0,
                        )
                        .returning(g.consent_grant.c.id)
                    ).scalar_one()
                    for exam in exams:
                        self._write_exam(conn, pk, exam)
                    self._audit(conn, at=now, action=action, outcome="success", grant_id=grant_id, client_address=client_address)
                    grant = self._resolve(conn, self._row(conn, grant_id))
                return IssuedGrant(grant=grant, access_code=code)
            except IntegrityError:
                continue  # that code is taken by a live grant: draw another
        raise GrantConflict("no free access code could be drawn")

    @staticmethod
    def _write_exam(conn: Connection, pk: int, exam: SharedExam) -> None:
        e = g.consent_grant_exam
        values = {
            "manifest_unique_id": exam.manifest_unique_id,
            "report_unique_ids": " ".join(exam.report_unique_ids),
            "release_time": exam.release_time,
        }
        done = conn.execute(
            update(e).where(and_(e.c.grant_pk == pk, e.c.study_uid == exam.study_uid)).values(**values)
        )
        if done.rowcount == 0:
            conn.execute(insert(e).values(grant_pk=pk, study_uid=exam.study_uid, **values))

    def create(
        self,
        *,
        patient_id: str,
        pin: str | None,
        expires: datetime,
        exams: Iterable[SharedExam] = (),
        label: str | None = None,
        client_address: str | None = None,
    ) -> IssuedGrant:
        """Enrol: a new grant with a fresh code. Raises PinPolicyError for a weak PIN; ``pin``
        None makes the grant PIN-pending (the patient sets it with :meth:`activate`)."""
        if not patient_id.strip():
            raise GrantError("a patient ID is required")
        if _utc(expires) <= self.clock():
            raise GrantError("the expiry must be in the future")
        exams = list(exams)
        if len({e.study_uid for e in exams}) != len(exams):
            raise GrantError("a study is listed twice")
        return self._insert_grant(
            patient_id=patient_id,
            pin=pin,
            expires=expires,
            parent_pk=None,
            exams=exams,
            action="create",
            client_address=client_address,
            label=_label(label),
        )

    def create_share(
        self,
        parent_id: str,
        *,
        study_uids: Iterable[str],
        pin: str,
        expires: datetime,
        label: str | None = None,
        client_address: str | None = None,
    ) -> IssuedGrant:
        """A narrower grant for one recipient (DESIGN §4 "shares for the care team")."""
        wanted = sorted(set(study_uids))
        if not wanted:
            raise GrantError("a share names at least one study")
        with self.engine.connect() as conn:
            parent_row = self._row(conn, parent_id)
            parent = self._resolve(conn, parent_row)
            depth, row = 0, parent_row
            while row.parent_id is not None:
                depth += 1
                row = conn.execute(select(g.consent_grant).where(g.consent_grant.c.id == row.parent_id)).one()
        now = self.clock()
        if not parent.is_live(now):
            raise GrantConflict("the grant is revoked or expired")
        if depth + 1 >= _MAX_SHARE_DEPTH:
            raise GrantConflict("shares of shares nest too deep")
        missing = [uid for uid in wanted if uid not in {e.study_uid for e in parent.exams}]
        if missing:
            raise GrantConflict(f"the grant does not share study {missing[0]}")
        if _utc(expires) > parent.expires:
            raise GrantConflict("a share cannot outlive the grant it is made from")
        if _utc(expires) <= now:
            raise GrantError("the expiry must be in the future")
        return self._insert_grant(
            patient_id=parent.patient_id,
            pin=pin,
            expires=expires,
            parent_pk=parent_row.id,
            exams=[SharedExam(study_uid=uid) for uid in wanted],
            action="share",
            client_address=client_address,
            label=_label(label),
        )

    def _change(self, grant_id: str, action: str, client_address: str | None, change: Callable[[Connection, Row[Any]], None]) -> Grant:
        with self.engine.begin() as conn:
            row = self._row(conn, grant_id)
            change(conn, row)
            self._audit(conn, at=self.clock(), action=action, outcome="success", grant_id=grant_id, client_address=client_address)
            return self._resolve(conn, self._row(conn, grant_id))

    def put_exam(self, grant_id: str, exam: SharedExam, *, client_address: str | None = None) -> Grant:
        """Add an exam to a grant, or update its manifest, reports and release time."""

        def change(conn: Connection, row: Row[Any]) -> None:
            if row.parent_id is not None:
                raise GrantConflict("a share takes its exams from its parent; change the parent")
            self._write_exam(conn, row.id, exam)

        return self._change(grant_id, "put-exam", client_address, change)

    def set_release_time(
        self, grant_id: str, study_uid: str, release_time: datetime | None, *, client_address: str | None = None
    ) -> Grant:
        def change(conn: Connection, row: Row[Any]) -> None:
            e = g.consent_grant_exam
            done = conn.execute(
                update(e)
                .where(and_(e.c.grant_pk == row.id, e.c.study_uid == study_uid))
                .values(release_time=None if release_time is None else _utc(release_time))
            )
            if done.rowcount == 0:
                raise GrantNotFound(f"the grant does not share study {study_uid}")

        return self._change(grant_id, "release-time", client_address, change)

    def withdraw_exam(self, grant_id: str, study_uid: str, *, client_address: str | None = None) -> Grant:
        """Stop sharing a study; shares made from this grant lose it too."""

        def change(conn: Connection, row: Row[Any]) -> None:
            e = g.consent_grant_exam
            done = conn.execute(e.delete().where(and_(e.c.grant_pk == row.id, e.c.study_uid == study_uid)))
            if done.rowcount == 0:
                raise GrantNotFound(f"the grant does not share study {study_uid}")

        return self._change(grant_id, "withdraw-exam", client_address, change)

    def reset_pin(self, grant_id: str, pin: str, *, client_address: str | None = None) -> None:
        """Set a new PIN (policy checked) and lift the code's lock-out."""
        pin_hash = hash_pin(pin, params=self.pin_params)

        def change(conn: Connection, row: Row[Any]) -> None:
            conn.execute(
                update(g.consent_grant)
                .where(g.consent_grant.c.id == row.id)
                .values(pin_hash=pin_hash, pin_pending=False, failures=0, locked_until=None)
            )

        self._change(grant_id, "reset-pin", client_address, change)

    def extend(self, grant_id: str, expires: datetime, *, client_address: str | None = None) -> Grant:
        """Move a grant's expiry (later or earlier); a share never outlives its parent."""
        moment = _utc(expires)
        if moment <= self.clock():
            raise GrantError("the expiry must be in the future")

        def change(conn: Connection, row: Row[Any]) -> None:
            if row.parent_id is not None:
                parent_row = conn.execute(select(g.consent_grant).where(g.consent_grant.c.id == row.parent_id)).one()
                if moment > self._resolve(conn, parent_row).expires:
                    raise GrantConflict("a share cannot outlive the grant it is made from")
            conn.execute(update(g.consent_grant).where(g.consent_grant.c.id == row.id).values(expires=moment))

        return self._change(grant_id, "extend", client_address, change)

    def revoke(self, grant_id: str, *, client_address: str | None = None) -> int:
        """Revoke a grant and every share made from it; the number of grants revoked."""
        revoked = 0

        def change(conn: Connection, row: Row[Any]) -> None:
            nonlocal revoked
            frontier = [row.id]
            while frontier:
                c = g.consent_grant.c
                revoked += conn.execute(
                    update(g.consent_grant).where(and_(c.id.in_(frontier), c.revoked.is_(False))).values(revoked=True)
                ).rowcount
                frontier = list(conn.execute(select(c.id).where(c.parent_id.in_(frontier))).scalars())

        self._change(grant_id, "revoke", client_address, change)
        return revoked

    # -- presentation ----------------------------------------------------------------------------
    def _throttle_secret(self, conn: Connection) -> bytes:
        if self._secret is None:
            s = t.registry_setting
            value = conn.execute(select(s.c.value).where(s.c.name == _SECRET_SETTING)).scalar()
            if value is None:
                conn.execute(_insert_if_absent(conn, s, name=_SECRET_SETTING, value=secrets.token_hex(32)))
                value = conn.execute(select(s.c.value).where(s.c.name == _SECRET_SETTING)).scalar_one()
            self._secret = bytes.fromhex(value)
        return self._secret

    def _code_digest(self, conn: Connection, code: str) -> str:
        """HMAC-SHA256 of an access code under the registry's own secret: what the grant and
        throttle tables hold instead of the code (a plain hash of 10^7 codes is reversible), so a
        copy of the database does not hand out codes."""
        return hmac.new(self._throttle_secret(conn), code.encode("ascii"), hashlib.sha256).hexdigest()

    def _code_key(self, conn: Connection, code: str) -> str:
        return f"code:{self._code_digest(conn, code)}"

    def _throttle_lock(self, conn: Connection, key: str, now: datetime) -> timedelta | None:
        row = conn.execute(select(g.consent_throttle).where(g.consent_throttle.c.key == key)).first()
        locked = _aware(row.locked_until) if row is not None else None
        return locked - now if locked is not None and locked > now else None

    def _throttle_fail(self, conn: Connection, key: str, now: datetime) -> None:
        th = g.consent_throttle
        row = conn.execute(select(th).where(th.c.key == key).with_for_update()).first()
        if row is None:
            # A concurrent presentation may insert the same key: the loser inserts nothing.
            conn.execute(_insert_if_absent(conn, th, key=key, failures=0, updated=now))
            row = conn.execute(select(th).where(th.c.key == key).with_for_update()).one()
        failures = row.failures
        updated = _aware(row.updated)
        assert updated is not None
        if now - updated > self.policy.forget_after:
            failures = 0
        failures += 1
        lock = self.policy.lockout(failures)
        conn.execute(
            update(th)
            .where(th.c.key == key)
            .values(failures=failures, updated=now, locked_until=None if lock is None else now + lock)
        )

    def _grant_fail(self, conn: Connection, pk: int, now: datetime) -> None:
        c = g.consent_grant.c
        conn.execute(update(g.consent_grant).where(c.id == pk).values(failures=c.failures + 1))
        failures = conn.execute(select(c.failures).where(c.id == pk)).scalar_one()
        lock = self.policy.lockout(failures)
        if lock is not None:
            conn.execute(update(g.consent_grant).where(c.id == pk).values(locked_until=now + lock))

    def present(
        self,
        code: str,
        pin: str,
        *,
        client_address: str | None,
        now: datetime | None = None,
        purpose: str = "present",
    ) -> Grant:
        """Check a code and PIN; the grant in force, or :class:`PresentationRefused`.

        A mistyped code (its check digit fails) raises :class:`AccessCodeError` and is not
        counted as a failure (DESIGN §4), but is audited.
        """
        moment = _utc(now) if now is not None else self.clock()
        try:
            normal = check_access_code(code)
        except AccessCodeError:
            with self.engine.begin() as conn:
                self._audit(conn, at=moment, action=purpose, outcome="malformed", grant_id=None, client_address=client_address)
            raise
        with self.engine.begin() as conn:
            outcome = self._decide(conn, normal, pin, client_address=client_address, now=moment, purpose=purpose)
        if outcome.error is not None:
            raise outcome.error
        assert outcome.grant is not None
        return outcome.grant

    def _find(
        self, conn: Connection, code: str, pin: str, *, client_address: str | None, now: datetime,
        audit: Callable[[str, str | None], None], dummy_work: bool,
    ) -> Row[Any] | _Outcome:
        """The live-code grant row (locked for update), or the refusal: a locked address or
        code, an unknown code (counted against the code and the address)."""
        addr_key = _addr_key(client_address)
        wait = self._throttle_lock(conn, addr_key, now)
        if wait is not None:
            audit("locked-address", None)
            return _Outcome(error=Locked(wait))
        c = g.consent_grant.c
        row = conn.execute(
            select(g.consent_grant)
            .where(and_(c.code_digest == self._code_digest(conn, code), c.revoked.is_(False)))
            .with_for_update()
        ).first()
        if row is None:
            code_key = self._code_key(conn, code)
            wait = self._throttle_lock(conn, code_key, now)
            if wait is not None:
                audit("locked", None)
                return _Outcome(error=Locked(wait))
            if dummy_work:
                verify_pin(pin, self._dummy_hash)  # the same work as for a real code
            self._throttle_fail(conn, code_key, now)
            self._throttle_fail(conn, addr_key, now)
            audit("unknown-code", None)
            return _Outcome(error=CredentialsRejected())
        locked = _aware(row.locked_until)
        if locked is not None and locked > now:
            audit("locked", row.grant_id)
            return _Outcome(error=Locked(locked - now))
        return row

    def _live(self, conn: Connection, row: Row[Any], now: datetime, audit: Callable[[str, str | None], None]) -> _Outcome:
        grant = self._resolve(conn, row)
        if grant.revoked:
            audit("revoked", row.grant_id)
            return _Outcome(error=CredentialsRejected())
        if now >= grant.expires:
            audit("expired", row.grant_id)
            return _Outcome(error=CredentialsRejected())
        return _Outcome(grant=grant)

    def _decide(
        self, conn: Connection, code: str, pin: str, *, client_address: str | None, now: datetime, purpose: str
    ) -> _Outcome:
        def audit(outcome: str, grant_id: str | None) -> None:
            self._audit(conn, at=now, action=purpose, outcome=outcome, grant_id=grant_id, client_address=client_address)

        found = self._find(conn, code, pin, client_address=client_address, now=now, audit=audit, dummy_work=True)
        if isinstance(found, _Outcome):
            return found
        row, addr_key = found, _addr_key(client_address)
        if row.pin_pending:
            # No PIN to guess yet: only the address is charged (the code's holder may be the patient
            # who has not activated yet), after the same work as a real check.
            verify_pin(pin, self._dummy_hash)
            self._throttle_fail(conn, addr_key, now)
            audit("pin-pending", row.grant_id)
            return _Outcome(error=PinPending())
        if not verify_pin(pin, row.pin_hash):
            self._grant_fail(conn, row.id, now)
            self._throttle_fail(conn, addr_key, now)
            audit("wrong-pin", row.grant_id)
            return _Outcome(error=CredentialsRejected())
        outcome = self._live(conn, row, now, audit)
        if outcome.grant is not None:
            c = g.consent_grant.c
            conn.execute(update(g.consent_grant).where(c.id == row.id).values(failures=0, locked_until=None))
            audit("success", row.grant_id)
        return outcome

    def activate(self, code: str, pin: str, *, client_address: str | None) -> Grant:
        """Set the first PIN of a PIN-pending grant, by its code (the patient's self-service).

        Throttled and audited like :meth:`present`: a mistyped code raises
        :class:`AccessCodeError` and a weak PIN :class:`PinPolicyError` (neither counted); an
        unknown code is :class:`CredentialsRejected`; a grant that has a PIN already raises
        :class:`PinAlreadySet` and charges the address (so codes cannot be probed this way).
        """
        now = self.clock()
        try:
            normal = check_access_code(code)
            pin_hash = hash_pin(pin, params=self.pin_params)  # the same scrypt on every path
        except (AccessCodeError, PinPolicyError) as exc:
            outcome = "malformed" if isinstance(exc, AccessCodeError) else "pin-policy"
            self.record("activate", grant_id=None, client_address=client_address, outcome=outcome)
            raise
        error: GrantError | None = None
        grant: Grant | None = None
        with self.engine.begin() as conn:

            def audit(outcome: str, grant_id: str | None) -> None:
                self._audit(conn, at=now, action="activate", outcome=outcome, grant_id=grant_id, client_address=client_address)

            found = self._find(conn, normal, pin, client_address=client_address, now=now, audit=audit, dummy_work=False)
            if isinstance(found, _Outcome):
                error = found.error
            elif not found.pin_pending:
                self._throttle_fail(conn, _addr_key(client_address), now)
                audit("pin-already-set", found.grant_id)
                error = PinAlreadySet()
            else:
                live = self._live(conn, found, now, audit)
                error = live.error
                if live.grant is not None:
                    c = g.consent_grant.c
                    conn.execute(
                        update(g.consent_grant)
                        .where(c.id == found.id)
                        .values(pin_hash=pin_hash, pin_pending=False, failures=0, locked_until=None)
                    )
                    audit("success", found.grant_id)
                    grant = self._resolve(conn, self._row(conn, found.grant_id))
        if error is not None:
            raise error
        assert grant is not None
        return grant
