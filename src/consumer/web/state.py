"""The portal's per-app state and the helpers every view uses: sessions (the signed-in one and
the sign-in form's pre-session), the consent token kept fresh, rendering with the patient's
language, links that work wherever the app is mounted, and the cache of each session.

A session holds the registry's assertion (never the code, never the PIN), the grant's id and
patient, the token's study scope and its cache directory id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from consumer.self_service import SessionEnded, token_expiry, token_studies
from consumer.token import ConsentToken
from consumer.web.backend import PortalBackend
from consumer.web.cache import CacheRoot
from consumer.web.messages import CATALOGUE, LOCALES
from consumer.web.settings import PortalSettings
from xds.web import CSRF_FIELD, Session, SessionCookie, SessionStore, pick_locale
from xds.xml import parse_xml

__all__ = ["Portal", "SignedIn"]

log = logging.getLogger(__name__)

SESSION_COOKIE: Final = "portal_session"
PRE_COOKIE: Final = "portal_signin"
LANG_COOKIE: Final = "lang"
SWEEP_EVERY_S: Final = 60.0


@dataclass
class SignedIn:
    """What a view learns about the signed-in session."""

    session: Session
    cache_id: str
    grant_id: str
    patient_id: str
    is_share: bool

    @property
    def csrf(self) -> str:
        return self.session.csrf


@dataclass
class Portal:
    """Everything the views share; one per app (no module-level state)."""

    settings: PortalSettings
    backend: PortalBackend
    templates: jinja2.Environment
    cache: CacheRoot
    sessions: SessionStore = field(init=False)
    pre_sessions: SessionStore = field(init=False)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _last_sweep: float = 0.0
    _sweep_lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _refresher: threading.Thread | None = None

    def __post_init__(self) -> None:
        s = self.settings
        self.sessions = SessionStore(idle=s.session_idle_s, absolute=s.session_absolute_s, max_sessions=s.max_sessions)
        self.pre_sessions = SessionStore(idle=s.signin_form_s, absolute=s.signin_form_s, max_sessions=s.max_sessions)

    # -- links and cookies ------------------------------------------------------------------------
    @staticmethod
    def root(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    def url(self, request: Request, name: str, query: Mapping[str, Any] | None = None, **params: Any) -> str:
        """The path of route ``name`` (with the mount prefix), plus an optional query string."""
        path = request.url_for(name, **{k: str(v) for k, v in params.items()}).path
        if query:
            items = [(k, v) for k, v in query.items() if v is not None]
            path += "?" + urlencode(items, doseq=True)
        return path

    def cookie(self, request: Request, name: str) -> SessionCookie:
        return SessionCookie(name=name, path=self.root(request) + "/", same_site="lax")

    def redirect(self, request: Request, name: str, query: Mapping[str, Any] | None = None, **params: Any) -> RedirectResponse:
        return RedirectResponse(self.url(request, name, query, **params), status_code=303)

    # -- language ---------------------------------------------------------------------------------
    @staticmethod
    def locale(request: Request) -> str:
        return pick_locale(request, LOCALES, cookie=LANG_COOKIE)

    # -- rendering --------------------------------------------------------------------------------
    def render(
        self,
        request: Request,
        template: str,
        *,
        status: int = 200,
        csrf: str = "",
        signed_in: SignedIn | None = None,
        **context: Any,
    ) -> HTMLResponse:
        locale = self.locale(request)
        gettext = CATALOGUE.gettext(locale)

        def url(name: str, query: Mapping[str, Any] | None = None, **params: Any) -> str:
            return self.url(request, name, query, **params)

        def static(path: str) -> str:
            return request.url_for("static", path=path).path

        html = self.templates.get_template(template).render(
            _=gettext,
            locale=locale,
            locales=LOCALES,
            url=url,
            static=static,
            csrf_field=CSRF_FIELD,
            csrf=csrf,
            signed_in=signed_in,
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            **context,
        )
        return HTMLResponse(html, status_code=status)

    # -- sessions ---------------------------------------------------------------------------------
    def pre_session(self, request: Request) -> Session | None:
        return self.pre_sessions.get(self.cookie(request, PRE_COOKIE).read(request))

    def new_pre_session(self, request: Request, response: Response) -> Session:
        session = self.pre_sessions.create()
        self.cookie(request, PRE_COOKIE).set(response, request, session)
        return session

    def start(self, request: Request, response: Response, token: ConsentToken, *, grant_id: str, patient_id: str, is_share: bool) -> None:
        """A fresh session (a new identifier: no fixation) for a token just obtained."""
        pre = self.cookie(request, PRE_COOKIE)
        self.pre_sessions.drop(pre.read(request))
        pre.clear(response, request)
        session = self.sessions.create(
            {
                "cache": self.cache.create(),
                "grant_id": grant_id,
                "patient_id": patient_id,
                "is_share": is_share,
                "lock": threading.Lock(),
            }
        )
        self._store_token(session, token)
        self.cookie(request, SESSION_COOKIE).set(response, request, session)
        self.start_refresher()
        self.sweep()

    def end(self, request: Request, response: Response) -> None:
        cookie = self.cookie(request, SESSION_COOKIE)
        session = self.sessions.get(cookie.read(request))
        if session is not None:
            self.sessions.drop(session.sid)
            self.cache.remove(session.data["cache"])
        cookie.clear(response, request)

    def signed_in(self, request: Request) -> SignedIn | None:
        self.sweep()
        session = self.sessions.get(self.cookie(request, SESSION_COOKIE).read(request))
        if session is None:
            return None
        d = session.data
        return SignedIn(session, d["cache"], d["grant_id"], d["patient_id"], d["is_share"])

    def sweep(self, *, force: bool = False) -> None:
        """End expired sessions and delete the cache directories of sessions that are over."""
        now = time.monotonic()
        with self._sweep_lock:
            if not force and now - self._last_sweep < SWEEP_EVERY_S:
                return
            self._last_sweep = now
        store = self.sessions
        moment = store.clock()
        live: set[str] = set()

        def expired(session: Session) -> bool:
            over = moment - session.last_seen > store.idle or moment - session.created > store.absolute
            if not over:
                live.add(session.data.get("cache", ""))
            return over

        store.drop_where(expired)
        self.cache.sweep(live)

    # -- the consent token ------------------------------------------------------------------------
    @staticmethod
    def _store_token(session: Session, token: ConsentToken) -> None:
        session.data["assertion"] = token.raw
        session.data["expires"] = token_expiry(token)
        session.data["studies"] = token_studies(token)

    def token(self, who: SignedIn) -> ConsentToken:
        """The session's assertion, refreshed first when it is about to expire (blocking).

        Raises :class:`consumer.self_service.SessionEnded` when the registry no longer accepts
        it (the grant was revoked or expired): the caller signs the session out.
        """
        session = who.session
        with session.data["lock"]:
            raw: bytes = session.data["assertion"]
            token = ConsentToken(assertion=parse_xml(raw), raw=raw)
            expires: datetime | None = session.data.get("expires")
            margin = timedelta(seconds=self.settings.token_refresh_margin_s)
            if expires is None or expires - self.clock() < margin:
                token = self.backend.refresh(token)
                self._store_token(session, token)
            return token

    def refresh_due(self) -> int:
        """Refresh the tokens of live sessions that expire within the next two margins, so an
        idle (but not yet timed-out) session keeps a valid assertion; a session whose token the
        registry no longer accepts is ended. How many were refreshed."""
        horizon = self.clock() + timedelta(seconds=2 * self.settings.token_refresh_margin_s)
        due: list[Session] = []

        def collect(session: Session) -> bool:
            expires = session.data.get("expires")
            if expires is not None and expires < horizon:
                due.append(session)
            return False

        self.sessions.drop_where(collect)
        refreshed = 0
        for session in due:
            d = session.data
            who = SignedIn(session, d["cache"], d["grant_id"], d["patient_id"], d["is_share"])
            try:
                self.token(who)
                refreshed += 1
            except SessionEnded:
                self.sessions.drop(session.sid)
                self.cache.remove(who.cache_id)
            except Exception as exc:  # the registry is down: try again next round
                log.warning("portal token refresh failed: %s", type(exc).__name__)
        return refreshed

    def start_refresher(self) -> None:
        """Start the background refresher (once; a daemon thread stopped by :meth:`close`)."""
        with self._sweep_lock:
            if self._refresher is not None:
                return
            self._refresher = threading.Thread(target=self._refresh_loop, name="portal-token-refresh", daemon=True)
            self._refresher.start()

    def _refresh_loop(self) -> None:
        interval = max(1.0, self.settings.token_refresh_margin_s / 3)
        while not self._stopping.wait(interval):
            try:
                self.refresh_due()
                self.sweep()
            except Exception:  # keep refreshing whatever one round met
                log.exception("portal token refresh round failed")

    def close(self) -> None:
        """Stop the refresher and delete this instance's cache tree."""
        self._stopping.set()
        if self._refresher is not None:
            self._refresher.join(timeout=5)
        self.cache.close()

    def in_scope(self, who: SignedIn, study_uid: str) -> bool:
        """Only studies within the token's scope are ever fetched or shown."""
        return study_uid in who.session.data.get("studies", frozenset())

    def cache_dir(self, who: SignedIn) -> Path:
        return self.cache.path(who.cache_id)
