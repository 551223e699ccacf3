"""Signing in with the access code and PIN, choosing the first PIN, signing out, the language.

The sign-in form is CSRF-protected through a short-lived pre-session (no session exists yet).
The registry's token endpoint decides (DESIGN §4: the same lock-out and audit as any consumer);
the page shows its refusal (mistyped code, not accepted, locked with the time to wait) and never
echoes the code or the PIN. A code whose grant has no PIN yet leads to "choose your PIN": the
code then waits in the pre-session (server side, never sent back) until the PIN is chosen.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from consumer.self_service import PinAlreadySet, PinPending, SelfServiceError, SessionEnded
from consumer.token import ConsentToken, TokenError, TokenLocked, TokenMistyped, TokenRefused
from consumer.web.messages import LOCALES
from consumer.web.state import LANG_COOKIE, PRE_COOKIE, Portal
from consumer.web.views.common import blocking, checked_form, guarded
from xds.security.accesscode import check_access_code
from xds.security.pin import PinPolicyError, check_pin
from xds.web import CsrfError, Session


def _address(request: Request) -> str | None:
    """The browser's address, forwarded to the registry so its per-address throttle counts
    this patient's failures, not every patient's behind the portal."""
    return request.client.host if request.client else None

__all__ = ["routes"]

#: Longest code or PIN field accepted (a passphrase may be long; nothing longer is sent on).
MAX_FIELD: Final = 256
#: Notices the sign-in page shows after a redirect (?m=...).
NOTICES: Final = {"ended": "notice_session_ended", "signedout": "notice_signed_out", "pin_set": "notice_pin_already_set"}


def _field(form: object, name: str) -> str:
    value = form.get(name)  # type: ignore[attr-defined]
    return value.strip() if isinstance(value, str) and len(value) <= MAX_FIELD else ""


def _refusal(exc: TokenError) -> tuple[str, int, dict[str, object]]:
    """The message key, status and values for a refused presentation."""
    if isinstance(exc, TokenLocked):
        minutes = max(1, math.ceil((exc.retry_after or 60) / 60))
        return "error_locked", 423, {"minutes": minutes}
    if isinstance(exc, TokenMistyped):
        return "error_mistyped", 400, {}
    if isinstance(exc, TokenRefused):
        return "error_refused", 401, {}
    return "error_unavailable", 502, {}


def routes(portal: Portal) -> list[BaseRoute]:
    def signin_page(request: Request, pre: Session, *, status: int = 200, error: str = "", values: dict[str, object] | None = None, notice: str = "") -> Response:  # fmt: skip
        return portal.render(
            request, "signin.html", status=status, csrf=pre.csrf, error=error, error_values=values or {}, notice=notice
        )

    async def signin(request: Request) -> Response:
        if portal.signed_in(request) is not None:
            return portal.redirect(request, "jacket")
        pre = portal.pre_session(request)
        fresh = pre is None
        if pre is None:
            pre = portal.pre_sessions.create()
        response = signin_page(request, pre, notice=NOTICES.get(request.query_params.get("m", ""), ""))
        if fresh:
            portal.cookie(request, PRE_COOKIE).set(response, request, pre)
        return response

    async def begin(request: Request, token: ConsentToken) -> Response:
        """A session for ``token``: the grant's identity from the self-service API (or, from a
        registry without it, from the assertion)."""
        try:
            grant = await blocking(portal.backend.grant, token)
            grant_id, patient_id, is_share = grant.grant_id, grant.patient_id, grant.is_share
        except SessionEnded:
            raise TokenRefused("the token was not accepted") from None
        except SelfServiceError:
            grant_id, patient_id, is_share = "", token.patient_id or "", False
        if not patient_id:
            patient_id = token.patient_id or ""
        response = portal.redirect(request, "jacket")
        portal.start(request, response, token, grant_id=grant_id, patient_id=patient_id, is_share=is_share)
        return response

    async def signin_post(request: Request) -> Response:
        pre = portal.pre_session(request)
        try:
            form = await checked_form(request, pre)
        except CsrfError:
            response = signin_page(request, fresh := portal.pre_sessions.create(), status=403, error="error_form_expired")
            portal.cookie(request, PRE_COOKIE).set(response, request, fresh)
            return response
        assert pre is not None
        code, pin = _field(form, "code"), _field(form, "pin")
        if not code or not pin:
            return signin_page(request, pre, status=400, error="error_missing")
        try:
            token = await blocking(partial(portal.backend.sign_in, code, pin, client_address=_address(request)))
            return await begin(request, token)
        except PinPending:
            pre.data["pending_code"] = check_access_code(code)
            return portal.redirect(request, "choose_pin")
        except TokenError as exc:
            key, status, values = _refusal(exc)
            return signin_page(request, pre, status=status, error=key, values=values)

    async def choose_pin(request: Request) -> Response:
        pre = portal.pre_session(request)
        if pre is None or "pending_code" not in pre.data:
            return portal.redirect(request, "signin")
        return portal.render(request, "choose_pin.html", csrf=pre.csrf, error="", error_values={})

    async def choose_pin_post(request: Request) -> Response:
        pre = portal.pre_session(request)
        try:
            form = await checked_form(request, pre)
        except CsrfError:
            return portal.redirect(request, "signin")
        assert pre is not None
        code = pre.data.get("pending_code")
        if not code:
            return portal.redirect(request, "signin")

        def page(error: str, status: int, values: dict[str, object] | None = None) -> Response:
            return portal.render(request, "choose_pin.html", status=status, csrf=pre.csrf, error=error, error_values=values or {})

        pin, again = _field(form, "pin"), _field(form, "pin_again")
        if pin != again:
            return page("error_pin_mismatch", 400)
        try:
            check_pin(pin)
        except PinPolicyError:
            return page("error_pin_policy", 400)
        try:
            address = _address(request)
            await blocking(partial(portal.backend.activate, code, pin, client_address=address))
            token = await blocking(partial(portal.backend.sign_in, code, pin, client_address=address))
        except PinAlreadySet:
            pre.data.pop("pending_code", None)
            return portal.redirect(request, "signin", {"m": "pin_set"})
        except TokenError as exc:
            key, status, values = _refusal(exc)
            return page(key, status, values)
        except SelfServiceError:
            return page("error_unavailable", 502)
        pre.data.pop("pending_code", None)
        return await begin(request, token)

    async def signout(request: Request, _who: object) -> Response:
        response = portal.redirect(request, "signin", {"m": "signedout"})
        portal.end(request, response)
        return response

    async def home(request: Request) -> Response:
        return portal.redirect(request, "jacket" if portal.signed_in(request) else "signin")

    async def language(request: Request) -> Response:
        locale = request.path_params["locale"]
        root = portal.root(request)
        target = request.query_params.get("next", "")
        if not target.startswith(root + "/") or target.startswith("//") or "\\" in target:
            target = portal.url(request, "home")
        response = RedirectResponse(target, status_code=303)
        if locale in LOCALES:
            response.set_cookie(
                LANG_COOKIE, locale, path=root + "/", max_age=365 * 86400, httponly=True,
                secure=request.url.scheme == "https", samesite="lax",
            )  # fmt: skip
        return response

    return [
        Route("/", home, name="home"),
        Route("/signin", signin, methods=["GET"], name="signin"),
        Route("/signin", signin_post, methods=["POST"], name="signin_post"),
        Route("/pin", choose_pin, methods=["GET"], name="choose_pin"),
        Route("/pin", choose_pin_post, methods=["POST"], name="choose_pin_post"),
        Route("/signout", guarded(portal, signout), methods=["POST"], name="signout"),
        Route("/language/{locale}", language, methods=["GET"], name="language"),
    ]

