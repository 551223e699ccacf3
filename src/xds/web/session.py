"""Server-side web sessions: the cookie carries only a random 256-bit identifier.

Why server-side: a portal session holds a signed SAML assertion (several kilobytes, over the
4 KB a cookie may carry) and must be revocable at sign-out. The store belongs to one app
instance (no module-level state); sessions expire after ``idle`` without use and after
``absolute`` in any case, and the store holds at most ``max_sessions`` (the oldest go first), so
a flood of sign-ins cannot grow memory without bound. A restart signs everybody out, which loses
nothing but a sign-in.

Cookie attributes (OWASP Session Management): ``HttpOnly``, ``SameSite=Lax`` (``Strict`` on
request), ``Secure`` when the request came over TLS, ``Path`` of the front end, no ``Expires``
(a browser-session cookie).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Session", "SessionCookie", "SessionStore"]


@dataclass(slots=True)
class Session:
    """One signed-in user. ``data`` is the front end's own (e.g. the assertion, the user name)."""

    sid: str
    created: float
    last_seen: float
    data: dict[str, Any] = field(default_factory=dict)
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))


class SessionStore:
    """Sessions in memory, bounded and expiring; thread-safe (views may run in worker threads)."""

    def __init__(
        self,
        *,
        idle: float = 15 * 60,
        absolute: float = 8 * 3600,
        max_sessions: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if idle <= 0 or absolute <= 0 or max_sessions <= 0:
            raise ValueError("idle, absolute and max_sessions must be positive")
        self.idle = idle
        self.absolute = absolute
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def create(self, data: dict[str, Any] | None = None) -> Session:
        """A new session with a fresh identifier (never reuse one across a sign-in: fixation)."""
        now = self.clock()
        session = Session(sid=secrets.token_urlsafe(32), created=now, last_seen=now, data=dict(data or {}))
        with self._lock:
            self._sessions[session.sid] = session
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return session

    def get(self, sid: str | None) -> Session | None:
        """The live session of ``sid``, its idle timer restarted; None when unknown or expired."""
        if not sid:
            return None
        now = self.clock()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if now - session.last_seen > self.idle or now - session.created > self.absolute:
                del self._sessions[sid]
                return None
            session.last_seen = now
            self._sessions.move_to_end(sid)
            return session

    def drop(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                self._sessions.pop(sid, None)

    def drop_where(self, predicate: Callable[[Session], bool]) -> int:
        """End every session matching ``predicate`` (e.g. all sessions of a revoked grant)."""
        with self._lock:
            doomed = [sid for sid, s in self._sessions.items() if predicate(s)]
            for sid in doomed:
                del self._sessions[sid]
        return len(doomed)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionCookie:
    """How the session identifier travels: name, path and SameSite policy."""

    name: str
    path: str = "/"
    same_site: Literal["lax", "strict"] = "lax"

    def read(self, request: Request) -> str | None:
        return request.cookies.get(self.name)

    def set(self, response: Response, request: Request, session: Session) -> None:
        response.set_cookie(
            self.name,
            session.sid,
            path=self.path,
            httponly=True,
            secure=request.url.scheme == "https",
            samesite=self.same_site,
        )

    def clear(self, response: Response, request: Request) -> None:
        response.delete_cookie(
            self.name, path=self.path, httponly=True, secure=request.url.scheme == "https", samesite=self.same_site
        )
