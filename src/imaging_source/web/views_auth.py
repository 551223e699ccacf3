"""Signing in and out of the console.

The sign-in form has no session yet, so GET /login opens a short pre-session whose CSRF token
the form carries (:mod:`xds.web.csrf`); a successful sign-in drops it and starts a fresh
session (a new identifier: no session fixation, OWASP Session Management). Every refusal shows
the same message, whatever the cause (unknown user, wrong password, locked, disabled), so the
form tells an attacker nothing; the cause goes to the console's audit trail.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imaging_source.web.actions import StaffAction
from imaging_source.web.context import Console

__all__ = ["GENERIC_FAILURE", "auth_routes"]

GENERIC_FAILURE: Final = "Sign-in failed. Check your user name and password, or try again later."
_MAX_INPUT: Final = 256


def auth_routes(console: Console) -> list[BaseRoute]:
    def login_page(request: Request) -> Response:
        if console.signed(request) is not None:
            return console.redirect(request, "/patients")
        session = console.session(request)
        if session is None:
            session = console.sessions.create({"pre": True})
        response = console.render(request, "login.html", session=session, error="", username="")
        console.cookie(request).set(response, request, session)
        return response

    def login(request: Request) -> Response:
        pre = console.session(request)
        form = console.form(request, pre)
        assert pre is not None  # check_csrf refused a missing session
        username = str(form.get("username", ""))[:_MAX_INPUT].strip()
        password = str(form.get("password", ""))[:_MAX_INPUT]
        outcome = console.staff.authenticate(username, password)
        if outcome.user is None:
            known = console.staff.get(username) is not None
            reason = "account locked" if outcome.locked else ("wrong password or disabled" if known else "unknown user")
            console.log.record(username if known else "-", StaffAction.SIGN_IN_FAILED, detail=reason)
            return console.render(request, "login.html", session=pre, status=401, error=GENERIC_FAILURE, username=username)
        console.sessions.drop(pre.sid)
        session = console.sessions.create({"staff": outcome.user.username})
        console.log.record(outcome.user.username, StaffAction.SIGN_IN)
        response = console.redirect(request, "/patients")
        console.cookie(request).set(response, request, session)
        return response

    def logout(request: Request) -> Response:
        signed = console.signed(request)
        session = signed.session if signed is not None else console.session(request)
        console.form(request, session)
        if signed is not None:
            console.log.record(signed.user.username, StaffAction.SIGN_OUT)
        if session is not None:
            console.sessions.drop(session.sid)
        response = console.redirect(request, "/login")
        console.cookie(request).clear(response, request)
        return response

    def home(request: Request) -> Response:
        return console.redirect(request, "/patients" if console.signed(request) is not None else "/login")

    return [
        Route("/", home, methods=["GET"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
