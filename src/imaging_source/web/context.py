"""What every console view needs: the Edge Server's domain objects, the staff directory and log,
sessions, templates, and the helpers for signing in, roles, CSRF, links and rendering.

Views are plain (synchronous) functions: Starlette runs them in its worker threads, so database
and grant-API calls never block the event loop (the registry may be served by the same loop in
``xds up``). A form is read with :meth:`Console.form`, which also checks the CSRF token.

Links are built from the request's ``root_path``, so the console works mounted anywhere
(``Mount("/console", app)``) and never depends on route names that another mounted app may share.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import anyio.from_thread
import jinja2
from sqlalchemy import Engine, select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from imaging_source import schema as t
from imaging_source.config import SourceSettings
from imaging_source.dicomstore import DicomStore
from imaging_source.enrol import Enrolment, GrantBook
from imaging_source.jobs import JobStore
from imaging_source.reports import ReportBook
from imaging_source.web.actions import StaffAction, StaffLog
from imaging_source.web.staff import StaffDirectory, StaffUser
from xds.web import CSRF_FIELD, Session, SessionCookie, SessionStore, check_csrf

__all__ = ["COOKIE_NAME", "Console", "Forbidden", "SignInRequired", "Signed", "when"]

COOKIE_NAME: Final = "xds_console"
#: Enrolment results kept in a session for the code sheet: how many, and for how long.
MAX_TICKETS: Final = 5
TICKET_SECONDS: Final = 30 * 60.0
_MAX_FORM_FIELDS: Final = 2000


class SignInRequired(Exception):
    """No signed-in staff user: the answer is the sign-in page."""


class Forbidden(Exception):
    """Signed in, but the role does not allow this (403)."""


@dataclass(frozen=True, slots=True)
class Signed:
    """The signed-in staff user of a request and their session."""

    session: Session
    user: StaffUser


def when(moment: float | None) -> str:
    """Epoch seconds as ``YYYY-MM-DD HH:MM`` UTC ('' for None)."""
    if moment is None:
        return ""
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%d %H:%M")


def dicom_date(value: str) -> str:
    """DICOM DA ``YYYYMMDD`` (PS3.5 §6.2) as ``YYYY-MM-DD``."""
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else value


@dataclass(frozen=True, kw_only=True)
class Console:
    """The console's collaborators; one per app (no module-level state)."""

    settings: SourceSettings
    engine: Engine
    store: DicomStore
    reports: ReportBook
    jobs: JobStore
    book: GrantBook
    enrolment: Enrolment | None
    staff: StaffDirectory
    log: StaffLog
    sessions: SessionStore
    templates: jinja2.Environment
    clock: Callable[[], float] = time.time

    # -- links ----------------------------------------------------------------------------------
    @staticmethod
    def href(request: Request, path: str, **query: object) -> str:
        """``path`` of the console as seen by the browser (under the mount's root path)."""
        root = str(request.scope.get("root_path", "")).rstrip("/")
        params = {k: v for k, v in query.items() if v is not None}
        return root + path + (("?" + urlencode(params, doseq=True)) if params else "")

    def redirect(self, request: Request, path: str, **query: object) -> RedirectResponse:
        return RedirectResponse(self.href(request, path, **query), status_code=303)

    @staticmethod
    def cookie(request: Request) -> SessionCookie:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return SessionCookie(name=COOKIE_NAME, path=root or "/", same_site="strict")

    # -- sessions and roles -----------------------------------------------------------------------
    def session(self, request: Request) -> Session | None:
        return self.sessions.get(self.cookie(request).read(request))

    def signed(self, request: Request) -> Signed | None:
        """The signed-in user, re-read from the directory (a disabled user is signed out)."""
        session = self.session(request)
        if session is None or "staff" not in session.data:
            return None
        user = self.staff.get(session.data["staff"])
        if user is None or user.disabled:
            self.sessions.drop(session.sid)
            return None
        return Signed(session, user)

    def require(self, request: Request, *, admin: bool = False) -> Signed:
        signed = self.signed(request)
        if signed is None:
            raise SignInRequired()
        if admin and not signed.user.is_admin:
            raise Forbidden("this needs an administrator")
        return signed

    def form(self, request: Request, session: Session | None) -> FormData:
        """The posted form (read from this worker thread), its CSRF token checked."""
        form: FormData = anyio.from_thread.run(self._read_form, request)
        check_csrf(request, session, form.get(CSRF_FIELD))
        return form

    @staticmethod
    async def _read_form(request: Request) -> FormData:
        return await request.form(max_files=0, max_fields=_MAX_FORM_FIELDS)

    def record(self, signed: Signed, action: StaffAction, *, patient_id: str = "", issuer: str = "", detail: str = "") -> None:
        self.log.record(signed.user.username, action, patient_id=patient_id, issuer=issuer, detail=detail)

    @staticmethod
    def flash(session: Session, message: str, *, kind: str = "info") -> None:
        session.data.setdefault("flash", []).append((kind, message))

    def book_owner(self, grant_id: str) -> str:
        """``MRN (issuer)`` of the patient a grant of this Edge Server belongs to ('' if none)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.grant).where(t.grant.c.grant_id == grant_id)).first()
        if row is None:
            return ""
        return row.patient_id + (f" ({row.issuer})" if row.issuer else "")

    # -- enrolment results (the code, kept in the session for the sheet, never stored) ------------
    def keep_ticket(self, session: Session, values: Mapping[str, Any]) -> str:
        now = self.clock()
        tickets: dict[str, dict[str, Any]] = session.data.setdefault("tickets", {})
        for key in [k for k, v in tickets.items() if now - v["created"] > TICKET_SECONDS]:
            del tickets[key]
        while len(tickets) >= MAX_TICKETS:
            del tickets[min(tickets, key=lambda k: tickets[k]["created"])]
        ticket = secrets.token_urlsafe(16)
        tickets[ticket] = {**values, "created": now, "shown": False}
        return ticket

    def ticket(self, session: Session, ticket: str) -> dict[str, Any] | None:
        found = session.data.get("tickets", {}).get(ticket)
        if found is None or self.clock() - found["created"] > TICKET_SECONDS:
            return None
        return found

    @staticmethod
    def drop_ticket(session: Session, ticket: str) -> None:
        session.data.get("tickets", {}).pop(ticket, None)

    # -- rendering --------------------------------------------------------------------------------
    def render(
        self, request: Request, template: str, /, *, signed: Signed | None = None, status: int = 200, **values: Any
    ) -> HTMLResponse:
        session = signed.session if signed is not None else values.pop("session", None)
        flashes = session.data.pop("flash", []) if session is not None else []

        def href(path: str, **query: object) -> str:
            return self.href(request, path, **query)

        html = self.templates.get_template(template).render(
            href=href,
            static=lambda file: self.href(request, "/static/" + file),
            csrf=session.csrf if session is not None else "",
            csrf_field=CSRF_FIELD,
            me=signed.user if signed is not None else None,
            flashes=flashes,
            when=when,
            dicom_date=dicom_date,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def error_page(self, request: Request, status: int, message: str) -> Response:
        signed = self.signed(request)
        return self.render(request, "error.html", signed=signed, status=status, message=message)


def templates_dir() -> Path:
    return Path(__file__).resolve().parent / "templates"


def static_dir() -> Path:
    return Path(__file__).resolve().parent / "static"
