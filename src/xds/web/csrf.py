"""CSRF protection for form posts: a per-session synchronizer token plus an Origin check.

OWASP CSRF Prevention: every state-changing form carries the session's token in a hidden field
(:data:`CSRF_FIELD`), compared in constant time; a request whose ``Origin`` (or, without it,
``Referer``) names another site is refused even with a valid token. The sign-in form, which has
no session yet, uses a token bound to a short-lived pre-session the same way.
"""

from __future__ import annotations

import hmac
from typing import Final
from urllib.parse import urlsplit

from starlette.requests import Request

from xds.web.session import Session

__all__ = ["CSRF_FIELD", "CsrfError", "check_csrf", "csrf_token"]

CSRF_FIELD: Final = "csrf_token"


class CsrfError(Exception):
    """The form post is not from our own page; answer 403 and change nothing."""


def csrf_token(session: Session) -> str:
    return session.csrf


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        # No header at all: older clients and privacy settings; the token alone decides.
        return origin is None
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def check_csrf(request: Request, session: Session | None, submitted: object) -> None:
    """Raise :class:`CsrfError` unless ``submitted`` is the session's token from our own origin."""
    if session is None:
        raise CsrfError("no session: reload the page and try again")
    if not isinstance(submitted, str) or not hmac.compare_digest(submitted.encode(), session.csrf.encode()):
        raise CsrfError("the form has expired: reload the page and try again")
    if not _same_origin(request):
        raise CsrfError("the form was posted from another site")
