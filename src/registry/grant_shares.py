"""A patient's own view of their grant (DESIGN §4 "Shares for the care team"): the exams with
what the registry knows of their manifests, and the shares made from the grant, with the last
time each share's code was used.

The rules the patient portal relies on live here, not in the HTTP layer: a share names only
exams the grant has *released* (the physician sees results first, and so does the patient's care
team), its expiry is in the future and no later than the grant's, its PIN is six random digits
drawn with :mod:`secrets`, and only the grant a share was made from may list, extend or revoke it.

Public API::

    ExamView(exam, released, title, date, modalities)
    ShareView(grant, study_uids, last_used)        .label .revoked
    NewShare(share, access_code, pin)
    SelfService(store, *, rng=secrets)
        .exams(grant) -> list[ExamView]
        .shares(grant) -> list[ShareView]
        .create_share(grant, *, label, study_uids, expires, client_address=None) -> NewShare
        .extend_share(grant, share_id, expires, *, client_address=None) -> ShareView
        .revoke_share(grant, share_id, *, client_address=None) -> int
    NotARootGrant(GrantError)                      # http_status 403
    SHARE_PIN_DIGITS, PRESENTATION_PURPOSES
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

from sqlalchemy import and_, func, select

from registry.gate import PRESENT_PURPOSE
from registry.grants import (
    LABEL_MAX,
    Grant,
    GrantConflict,
    GrantError,
    GrantNotFound,
    GrantStore,
    SharedExam,
)
from registry.store import grants_schema as g
from registry.store import schema as t
from xds.metadata.ebrim_names import Q_LOCALIZED_STRING, Q_NAME
from xds.vocabulary import DICOM_DCM_OID, Status
from xds.xml import parse_xml

__all__ = [
    "PRESENTATION_PURPOSES",
    "SHARE_PIN_DIGITS",
    "ExamView",
    "NewShare",
    "NotARootGrant",
    "SelfService",
    "ShareView",
]

SHARE_PIN_DIGITS: Final = 6
#: The audit actions that are a presentation of a share's own code and PIN: the token endpoint
#: and a WS-Security UsernameToken on ITI-18. Their last success is a share's "last used".
PRESENTATION_PURPOSES: Final = ("token", PRESENT_PURPOSE)
#: ITI TF-3 §4.2.3.2.8 eventCodeList; RAD TF-3 §4.68.4.1.2.3.2: a manifest's modalities are its
#: event codes in the DICOM scheme (CID 29).
_EVENT_KIND: Final = "event"


def _aware(moment: datetime) -> datetime:
    # SQLite hands DateTime(timezone=True) back naive; every time stored is UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class NotARootGrant(GrantError):
    """A share's own token asked to manage shares, which belong to the grant it came from."""

    http_status = 403

    def __init__(self) -> None:
        super().__init__("a share cannot manage shares")


class _Rng(Protocol):
    def randbelow(self, exclusive_upper_bound: int, /) -> int: ...


@dataclass(frozen=True, slots=True)
class ExamView:
    """One exam of a grant as the patient sees it; title, date (DTM) and modalities come from the
    registered manifest's DocumentEntry, empty when the manifest is not registered (yet)."""

    exam: SharedExam
    released: bool
    title: str = ""
    date: str = ""
    modalities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ShareView:
    """A share made from the caller's grant (never its code or PIN)."""

    grant: Grant
    study_uids: tuple[str, ...]
    last_used: datetime | None

    @property
    def label(self) -> str | None:
        return self.grant.label

    @property
    def revoked(self) -> bool:
        return self.grant.revoked


@dataclass(frozen=True, slots=True)
class NewShare:
    """A share just made, with its code and PIN: the only time either leaves the registry."""

    share: ShareView
    access_code: str = field(repr=False)
    pin: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Entry:
    title: str
    date: str
    modalities: tuple[str, ...]


def _title(xml: bytes) -> str:
    # ITI TF-3 §4.2.3.2.24: DocumentEntry.title is rim:Name/rim:LocalizedString/@value.
    try:
        element = parse_xml(xml)
    except ValueError:
        return ""
    name = element.find(Q_NAME)
    if name is None:
        return ""
    localized = name.find(Q_LOCALIZED_STRING)
    return (localized.get("value") or "") if localized is not None else ""


class SelfService:
    """What a signed-in grant may read and do with its own exams and shares."""

    def __init__(self, store: GrantStore, *, rng: _Rng = secrets) -> None:  # type: ignore[assignment]
        self.store = store
        self.rng = rng

    # -- exams -----------------------------------------------------------------------------------
    def _entries(self, unique_ids: Sequence[str]) -> dict[str, _Entry]:
        """The registry's own DocumentEntries of these manifests, an Approved one preferred."""
        if not unique_ids:
            return {}
        de, code = t.document_entry, t.document_entry_code
        found: dict[str, tuple[bool, _Entry]] = {}
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(de.c.id, de.c.unique_id, de.c.status, de.c.service_start_time, de.c.creation_time, de.c.xml)
                .where(de.c.unique_id.in_(sorted(set(unique_ids))))
                .order_by(de.c.id)
            ).all()
            modalities: dict[int, set[str]] = {}
            if rows:
                for entry_id, value in conn.execute(
                    select(code.c.entry_id, code.c.code).where(
                        and_(
                            code.c.entry_id.in_([r.id for r in rows]),
                            code.c.kind == _EVENT_KIND,
                            code.c.scheme == DICOM_DCM_OID,
                        )
                    )
                ):
                    modalities.setdefault(entry_id, set()).add(value)
        for row in rows:
            approved = row.status == Status.APPROVED
            if row.unique_id in found and (found[row.unique_id][0] or not approved):
                continue
            found[row.unique_id] = (
                approved,
                _Entry(
                    title=_title(row.xml),
                    # As a consumer lists exams: the service start time, else the creation time.
                    date=row.service_start_time or row.creation_time or "",
                    modalities=tuple(sorted(modalities.get(row.id, ()))),
                ),
            )
        return {uid: entry for uid, (_approved, entry) in found.items()}

    def exams(self, grant: Grant) -> list[ExamView]:
        """Every exam of the grant, released or not (the portal shows "available on <date>")."""
        now = self.store.clock()
        entries = self._entries([e.manifest_unique_id for e in grant.exams if e.manifest_unique_id])
        views: list[ExamView] = []
        for exam in grant.exams:
            entry = entries.get(exam.manifest_unique_id or "")
            views.append(
                ExamView(
                    exam=exam,
                    released=exam.is_released(now),
                    title=entry.title if entry else "",
                    date=entry.date if entry else "",
                    modalities=entry.modalities if entry else (),
                )
            )
        return views

    # -- shares ----------------------------------------------------------------------------------
    @staticmethod
    def require_root(grant: Grant) -> None:
        if grant.is_share:
            raise NotARootGrant()

    def _last_used(self, grant_ids: Iterable[str]) -> dict[str, datetime]:
        a = g.consent_audit
        wanted = list(grant_ids)
        if not wanted:
            return {}
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(a.c.grant_id, func.max(a.c.at))
                .where(
                    and_(
                        a.c.grant_id.in_(wanted),
                        a.c.action.in_(PRESENTATION_PURPOSES),
                        a.c.outcome == "success",
                    )
                )
                .group_by(a.c.grant_id)
            ).all()
        return {gid: _aware(at) for gid, at in rows}

    def _view(self, share: Grant, last_used: datetime | None) -> ShareView:
        return ShareView(grant=share, study_uids=tuple(e.study_uid for e in share.exams), last_used=last_used)

    def shares(self, grant: Grant) -> list[ShareView]:
        """The shares made from ``grant`` (live, expired and revoked), newest first."""
        self.require_root(grant)
        c = g.consent_grant.c
        with self.store.engine.connect() as conn:
            parent_pk = conn.execute(select(c.id).where(c.grant_id == grant.grant_id)).scalar_one()
            ids = list(
                conn.execute(
                    select(c.grant_id).where(c.parent_id == parent_pk).order_by(c.created.desc(), c.id.desc())
                ).scalars()
            )
        used = self._last_used(ids)
        return [self._view(self.store.get(gid), used.get(gid)) for gid in ids]

    def _own_share(self, grant: Grant, share_id: str) -> Grant:
        self.require_root(grant)
        try:
            share = self.store.get(share_id)
        except GrantNotFound:
            share = None
        if share is None or share.parent_id != grant.grant_id:
            raise GrantNotFound("no such share of this grant")
        return share

    def _check_expiry(self, grant: Grant, expires: datetime) -> None:
        if expires.tzinfo is None:
            raise GrantError("expires must carry a time zone")
        if expires <= self.store.clock():
            raise GrantError("expires must be in the future")
        if expires > grant.expires:
            raise GrantError(f"expires must not be after this grant's expiry ({grant.expires.isoformat()})")

    def create_share(
        self,
        grant: Grant,
        *,
        label: str,
        study_uids: Iterable[str],
        expires: datetime,
        client_address: str | None = None,
    ) -> NewShare:
        """A share of released exams of ``grant`` for one recipient, with a fresh code and PIN."""
        self.require_root(grant)
        text = label.strip()
        if not 1 <= len(text) <= LABEL_MAX:
            raise GrantError(f"label has 1 to {LABEL_MAX} characters")
        wanted = list(dict.fromkeys(study_uids))
        if not wanted:
            raise GrantError("study_uids names at least one exam")
        released = {e.study_uid for e in grant.released_exams(self.store.clock())}
        for uid in wanted:
            if uid not in released:
                raise GrantError(f"study {uid} is not a released exam of this grant")
        self._check_expiry(grant, expires)
        pin = "".join(str(self.rng.randbelow(10)) for _ in range(SHARE_PIN_DIGITS))
        issued = self.store.create_share(
            grant.grant_id, study_uids=wanted, pin=pin, expires=expires, label=text, client_address=client_address
        )
        return NewShare(share=self._view(issued.grant, None), access_code=issued.access_code, pin=pin)

    def extend_share(
        self, grant: Grant, share_id: str, expires: datetime, *, client_address: str | None = None
    ) -> ShareView:
        """Move a share's expiry (future, no later than the grant's)."""
        share = self._own_share(grant, share_id)
        if share.revoked:
            raise GrantConflict("the share is revoked")
        self._check_expiry(grant, expires)
        extended = self.store.extend(share.grant_id, expires, client_address=client_address)
        return self._view(extended, self._last_used([share.grant_id]).get(share.grant_id))

    def revoke_share(self, grant: Grant, share_id: str, *, client_address: str | None = None) -> int:
        """Revoke one of the grant's shares (and shares made from it); how many were revoked."""
        share = self._own_share(grant, share_id)
        return self.store.revoke(share.grant_id, client_address=client_address)

