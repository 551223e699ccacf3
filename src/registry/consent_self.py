"""The patient's self-service API (DESIGN §4 "Shares for the care team"), what the patient portal
calls on the patient's behalf.

Every route but activation authenticates with the consent token the patient already holds::

    Authorization: SAML <base64 of the assertion XML bytes, exactly as /consent/token returned them>

The registry verifies the assertion with its own certificate (signature, validity window,
audience) and takes the grant from its subject; that grant must be live now (not revoked, not
expired). Anything else, a malformed header included, is 401 {"error"}. Routes (JSON; times
ISO 8601 with a zone)::

    POST /consent/self/activate   code, pin (form or JSON)   -> 204  the first PIN of a PIN-pending
                                  grant; 400 mistyped code or PIN policy; 401 unknown code;
                                  409 a PIN is already set; 423 locked, with Retry-After
    GET  /consent/self                                        -> 200 {grant_id, patient_id, is_share,
                                  label, created, expires, exams: [{study_uid, manifest_unique_id,
                                  report_unique_ids, release_time, released, title, date, modalities}]}
    POST /consent/self/token                                  -> 200 a fresh assertion (current scope)
    GET  /consent/self/shares                                 -> 200 {shares: [share]}
    POST /consent/self/shares     {label, study_uids, expires} -> 201 {share, access_code,
                                  access_code_display, pin}   (shown this once; no-store)
    POST /consent/self/shares/{grant_id}/extend  {expires}    -> 200 {share}
    POST /consent/self/shares/{grant_id}/revoke               -> 200 {revoked: n}

    share = {grant_id, label, study_uids, created, expires, revoked, last_used}

The share routes are for a grant made at enrolment: a share's own token gets 403 there; a share
that is not the caller's is 404. Codes and PINs are never logged and never echoed in errors.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from registry.consent_http import (
    PREFIX,
    ConsentApi,
    _BadRequest,
    _client,
    _error,
    _iso,
    _json_body,
    _required_time,
    locked_response,
)
from registry.grant_shares import ExamView, SelfService, ShareView
from registry.grants import Grant, GrantError, GrantNotFound, GrantStore, Locked, PinAlreadySet
from xds.security.accesscode import AccessCodeError, format_access_code
from xds.security.keys import SigningMaterial
from xds.security.pin import PinPolicyError
from xds.security.saml import InvalidAssertion, verify_assertion
from xds.xml import parse_xml

__all__ = ["SelfApi", "self_service_routes"]

SELF: Final = f"{PREFIX}/self"
AUTH_SCHEME: Final = "SAML"
#: The largest base64 assertion accepted in the header (a grant's scope lists every released
#: manifest, study and report; a few hundred exams fit).
MAX_TOKEN_CHARS: Final = 256 * 1024
_NO_STORE: Final = {"Cache-Control": "no-store"}

Handler = Callable[[Request, Grant], Awaitable[Response]]


class _Unauthenticated(Exception):
    """The request carries no acceptable token; the message says why (never the token)."""


def exam_json(view: ExamView) -> dict[str, Any]:
    exam = view.exam
    return {
        "study_uid": exam.study_uid,
        "manifest_unique_id": exam.manifest_unique_id,
        "report_unique_ids": list(exam.report_unique_ids),
        "release_time": _iso(exam.release_time),
        "released": view.released,
        "title": view.title,
        "date": view.date,
        "modalities": list(view.modalities),
    }


def share_json(view: ShareView) -> dict[str, Any]:
    """A share as the patient sees it (never its code or PIN)."""
    return {
        "grant_id": view.grant.grant_id,
        "label": view.label,
        "study_uids": list(view.study_uids),
        "created": _iso(view.grant.created),
        "expires": _iso(view.grant.expires),
        "revoked": view.revoked,
        "last_used": _iso(view.last_used),
    }


@dataclass(frozen=True, slots=True)
class SelfApi:
    """The self-service endpoints: the consent API's state plus the share book."""

    api: ConsentApi
    shares: SelfService

    @property
    def store(self) -> GrantStore:
        return self.api.store

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.api._run(fn, *args)

    # -- authentication --------------------------------------------------------------------------
    def _grant_of(self, header: str) -> Grant:
        """The live grant whose assertion the Authorization header carries (in a worker thread:
        the signature check and the database read both block)."""
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != AUTH_SCHEME.lower() or not value.strip():
            raise _Unauthenticated(f"sign in: send Authorization: {AUTH_SCHEME} <base64 of the assertion>")
        value = value.strip()
        if len(value) > MAX_TOKEN_CHARS:
            raise _Unauthenticated("the assertion is too large")
        try:
            raw = base64.b64decode(value, validate=True)
            element = parse_xml(raw)
        except (binascii.Error, ValueError):
            raise _Unauthenticated("the Authorization header does not carry a base64 XML assertion") from None
        try:
            verified = verify_assertion(
                element, trusted_cert=self.api.signing.cert_pem, audience=self.api.audience, now=self.store.clock()
            )
        except InvalidAssertion as exc:
            raise _Unauthenticated(f"the assertion is not accepted: {exc}") from None
        try:
            grant = self.store.get(verified.grant_id)
        except GrantNotFound:
            raise _Unauthenticated("the assertion's grant is not known") from None
        if not grant.is_live(self.store.clock()):
            raise _Unauthenticated("the grant is revoked or expired; sign in again")
        return grant

    def authenticated(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler: the SAML token first, then errors mapped to precise 4xx."""

        async def endpoint(request: Request) -> Response:
            try:
                grant = await self._run(self._grant_of, request.headers.get("authorization", ""))
            except _Unauthenticated as exc:
                return _error(401, str(exc), **{"WWW-Authenticate": AUTH_SCHEME}, **_NO_STORE)
            try:
                return await handler(request, grant)
            except _BadRequest as exc:
                return _error(exc.status, str(exc))
            except PinPolicyError as exc:
                return _error(400, str(exc))
            except GrantError as exc:
                return _error(exc.http_status, str(exc))

        return endpoint

    # -- activation (code + PIN, no token) -------------------------------------------------------
    async def activate(self, request: Request) -> Response:
        """The first PIN of a PIN-pending grant; throttled and audited like the token endpoint."""
        try:
            code, pin = await self.api.credentials(request)
        except _BadRequest as exc:
            return _error(exc.status, str(exc))
        client = _client(request)
        store = self.store
        try:
            await self._run(lambda: store.activate(code, pin, client_address=client))
        except (AccessCodeError, PinPolicyError) as exc:
            return _error(400, str(exc), **_NO_STORE)
        except Locked as exc:
            return locked_response(exc, **_NO_STORE)
        except PinAlreadySet as exc:
            return _error(409, str(exc), **_NO_STORE)
        except GrantError as exc:
            return _error(401, str(exc), **_NO_STORE)
        return Response(status_code=204, headers=_NO_STORE)

    # -- the signed-in grant ---------------------------------------------------------------------
    async def show(self, _request: Request, grant: Grant) -> Response:
        exams = await self._run(self.shares.exams, grant)
        return JSONResponse(
            {
                "grant_id": grant.grant_id,
                "patient_id": grant.patient_id,
                "is_share": grant.is_share,
                "label": grant.label,
                "created": _iso(grant.created),
                "expires": _iso(grant.expires),
                "exams": [exam_json(view) for view in exams],
            },
            headers=_NO_STORE,
        )

    async def token(self, request: Request, grant: Grant) -> Response:
        """A fresh assertion for the signed-in grant, so a portal session outlives one assertion."""
        client = _client(request)
        await self._run(lambda: self.store.record("self-token", grant_id=grant.grant_id, client_address=client))
        return await self.api.assertion_response(grant)

    # -- shares ----------------------------------------------------------------------------------
    async def list_shares(self, _request: Request, grant: Grant) -> Response:
        views = await self._run(self.shares.shares, grant)
        return JSONResponse({"shares": [share_json(v) for v in views]}, headers=_NO_STORE)

    async def create_share(self, request: Request, grant: Grant) -> Response:
        self.shares.require_root(grant)  # 403 before the body is read
        body = await _json_body(request)
        label = body.get("label")
        if not isinstance(label, str):
            raise _BadRequest("label is required (1 to 120 characters)")
        studies = body.get("study_uids")
        if not isinstance(studies, list) or not studies or not all(isinstance(s, str) and s.strip() for s in studies):
            raise _BadRequest("study_uids must be a non-empty list of study UIDs")
        expires = _required_time(body, "expires")
        client = _client(request)
        made = await self._run(
            lambda: self.shares.create_share(
                grant, label=label, study_uids=[s.strip() for s in studies], expires=expires, client_address=client
            )
        )
        return JSONResponse(
            {
                "share": share_json(made.share),
                "access_code": made.access_code,
                "access_code_display": format_access_code(made.access_code),
                "pin": made.pin,
            },
            status_code=201,
            headers=_NO_STORE,
        )

    async def extend_share(self, request: Request, grant: Grant) -> Response:
        self.shares.require_root(grant)
        body = await _json_body(request)
        expires = _required_time(body, "expires")
        share_id, client = request.path_params["grant_id"], _client(request)
        view = await self._run(lambda: self.shares.extend_share(grant, share_id, expires, client_address=client))
        return JSONResponse({"share": share_json(view)}, headers=_NO_STORE)

    async def revoke_share(self, request: Request, grant: Grant) -> Response:
        share_id, client = request.path_params["grant_id"], _client(request)
        count = await self._run(lambda: self.shares.revoke_share(grant, share_id, client_address=client))
        return JSONResponse({"revoked": count}, headers=_NO_STORE)


def self_service_routes(
    store: GrantStore,
    *,
    signing: SigningMaterial,
    token_lifetime: timedelta,
    audience: str,
    issuer: str,
    db_threads: int = 2,
) -> list[BaseRoute]:
    """The patient's self-service routes under ``/consent/self``."""
    api = SelfApi(
        api=ConsentApi(
            store=store,
            signing=signing,
            api_key=None,
            token_lifetime=token_lifetime,
            audience=audience,
            issuer=issuer,
            limiter=anyio.CapacityLimiter(db_threads),
        ),
        shares=SelfService(store),
    )
    auth = api.authenticated
    shares = f"{SELF}/shares"
    return [
        Route(f"{SELF}/activate", api.activate, methods=["POST"]),
        Route(SELF, auth(api.show), methods=["GET"]),
        Route(f"{SELF}/token", auth(api.token), methods=["POST"]),
        Route(shares, auth(api.list_shares), methods=["GET"]),
        Route(shares, auth(api.create_share), methods=["POST"]),
        Route(f"{shares}/{{grant_id}}/extend", auth(api.extend_share), methods=["POST"]),
        Route(f"{shares}/{{grant_id}}/revoke", auth(api.revoke_share), methods=["POST"]),
    ]
