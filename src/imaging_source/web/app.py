"""The staff console's ASGI app, meant to be mounted (``Mount("/console", app)``) by the
composition root next to the Edge Server's endpoints.

Staff sign in with a user name and password (:mod:`imaging_source.web.staff`); the console then
calls the same domain code as the ``xds source`` commands: the jacket, :class:`JobStore` for
shares, retries and autosend, :class:`Enrolment` for codes, PINs and revocation. Pages are
server-rendered (Jinja2, autoescaped), scripts and styles only from ``/static`` (the CSP of
:class:`xds.web.SecurityHeaders` allows nothing inline), every form carries a CSRF token.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from imaging_source.config import SourceSettings
from imaging_source.db import make_engine, upgrade
from imaging_source.dicomstore import DicomStore
from imaging_source.enrol import Enrolment, GrantBook
from imaging_source.grant_client import GrantClient
from imaging_source.jobs import JobStore
from imaging_source.rad68 import PatientMapping
from imaging_source.reports import ReportBook
from imaging_source.web.actions import StaffLog
from imaging_source.web.context import Console, Forbidden, SignInRequired, static_dir, templates_dir
from imaging_source.web.staff import DEFAULT_PARAMS, PasswordParams, StaffDirectory
from imaging_source.web.views_admin import admin_routes
from imaging_source.web.views_auth import auth_routes
from imaging_source.web.views_enrol import enrol_routes
from imaging_source.web.views_jobs import job_routes
from imaging_source.web.views_patients import patient_routes
from xds.web import CsrfError, SecurityHeaders, SessionStore, template_environment

__all__ = ["build_console_app"]


def _enrolment(
    settings: SourceSettings, engine: Engine, jobs: JobStore, client: GrantClient | None, clock: Callable[[], float]
) -> Enrolment | None:
    """Enrolment needs the registry's grant API; without a key the console says so."""
    if client is None:
        if not settings.grant_api_key:
            return None
        client = GrantClient(settings.grant_api_url, settings.grant_api_key)
    mapping = PatientMapping(settings.affinity_domain_oid, settings.patient_id_rule, settings.local_patient_id_oid)
    return Enrolment(client, GrantBook(engine, clock=clock), jobs, mapping, clock=clock)


def build_console_app(
    settings: SourceSettings,
    *,
    engine: Engine | None = None,
    store: DicomStore | None = None,
    grant_client: GrantClient | None = None,
    sessions: SessionStore | None = None,
    clock: Callable[[], float] = time.time,
    password_params: PasswordParams = DEFAULT_PARAMS,
) -> Starlette:
    """The console over the Edge Server's index of ``settings`` (or ``engine`` / ``store``, shared
    with the Edge Server in one process). ``grant_client`` overrides the grant API of the settings
    (tests); ``sessions`` defaults to 15 minutes idle, 8 hours at most (a staff shift)."""
    if store is not None:
        engine = store.engine
    if engine is None:
        engine = make_engine(settings.database_url())
    upgrade(engine)
    if store is None:
        store = DicomStore(settings.store_dir(), engine, fsync=settings.fsync)
    jobs = JobStore(engine, clock=clock)
    console = Console(
        settings=settings,
        engine=engine,
        store=store,
        reports=ReportBook(engine, clock=clock),
        jobs=jobs,
        book=GrantBook(engine, clock=clock),
        enrolment=_enrolment(settings, engine, jobs, grant_client, clock),
        staff=StaffDirectory(engine, clock=clock, params=password_params),
        log=StaffLog(engine, clock=clock),
        sessions=sessions or SessionStore(idle=15 * 60, absolute=8 * 3600, max_sessions=2000),
        templates=template_environment(templates_dir()),
        clock=clock,
    )
    routes: list[BaseRoute] = [
        *auth_routes(console),
        *patient_routes(console),
        *enrol_routes(console),
        *job_routes(console),
        *admin_routes(console),
        Mount("/static", StaticFiles(directory=static_dir()), name="static"),
    ]

    async def sign_in(request: Request, _exc: Exception) -> Response:
        return console.redirect(request, "/login")

    def forbidden(request: Request, exc: Exception) -> Response:
        return console.error_page(request, 403, str(exc) or "Not allowed.")

    def csrf(request: Request, exc: Exception) -> Response:
        return console.error_page(request, 403, f"The form was refused: {exc}.")

    def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "Server error."
        return console.error_page(request, status, "Page not found." if status == 404 else str(detail))

    app = Starlette(
        routes=routes,
        exception_handlers={
            SignInRequired: sign_in,
            Forbidden: forbidden,
            CsrfError: csrf,
            HTTPException: http_error,
        },
    )
    app.add_middleware(SecurityHeaders)
    app.state.console = console
    return app
