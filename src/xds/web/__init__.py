"""Shared pieces of the two web front ends (the patient portal and the staff console): server-side
sessions behind an HttpOnly cookie, CSRF tokens, security headers and a Jinja2 environment with
autoescaping and message catalogues. Sans protocol: no actor logic lives here."""

from xds.web.csrf import CSRF_FIELD, CsrfError, check_csrf, csrf_token
from xds.web.headers import SecurityHeaders
from xds.web.session import Session, SessionCookie, SessionStore
from xds.web.templating import Catalogue, pick_locale, template_environment

__all__ = [
    "CSRF_FIELD",
    "Catalogue",
    "CsrfError",
    "SecurityHeaders",
    "Session",
    "SessionCookie",
    "SessionStore",
    "check_csrf",
    "csrf_token",
    "pick_locale",
    "template_environment",
]
