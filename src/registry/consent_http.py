"""The consent token over HTTP (DESIGN §4): the grant API the Edge Server calls, and the token
endpoint where a consumer trades an access code and PIN for a signed SAML assertion.

Grant API (``Authorization: Bearer <grant_api_key>``, compared in constant time; JSON bodies;
times are ISO 8601 with a zone)::

    POST   /consent/grants                         {patient_id, pin, expires, exams: [exam], label}
                                                   -> 201 {grant, access_code, access_code_display}
                                                   (pin omitted or null: a PIN-pending grant; the
                                                   patient chooses it at /consent/self/activate)
    GET    /consent/grants/{grant_id}              -> 200 {grant}
    PUT    /consent/grants/{grant_id}/exams/{study_uid}
                                                   {manifest_unique_id, report_unique_ids, release_time}
    PUT    /consent/grants/{grant_id}/exams/{study_uid}/release   {release_time}
    DELETE /consent/grants/{grant_id}/exams/{study_uid}
    POST   /consent/grants/{grant_id}/pin          {pin}            -> 204
    POST   /consent/grants/{grant_id}/revoke                        -> 200 {revoked: n}
    POST   /consent/grants/{grant_id}/shares       {study_uids, pin, expires, label} -> 201

Token endpoint (no API key; form or JSON)::

    POST   /consent/token   code=...&pin=...  -> 200 application/samlassertion+xml
           400 a mistyped code; 401 not accepted (unknown, wrong PIN, expired, revoked: the same
           answer; {"error", "pin_pending": true} only when the code is right and its grant has
           no PIN yet, so the portal can offer activation); 423 locked, with Retry-After.

The patient's own self-service routes (``/consent/self...``) are in :mod:`registry.consent_self`.

Codes and PINs are never logged; errors never echo them.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qs

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from registry.grants import Grant, GrantError, GrantStore, Locked, PinPending, SharedExam
from xds.security.accesscode import AccessCodeError, format_access_code
from xds.security.keys import SigningMaterial
from xds.security.pin import PinPolicyError
from xds.security.saml import issue_assertion

__all__ = ["ConsentApi", "consent_routes"]

log = logging.getLogger(__name__)

PREFIX: Final = "/consent"
#: SAML 2.0 Bindings / the IANA media type of a bare assertion (RFC 6750-style token responses
#: carry it as XML).
MEDIA_SAML_ASSERTION: Final = "application/samlassertion+xml"
MAX_JSON_BYTES: Final = 1 << 20


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _time(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _BadRequest(f"{what} must be an ISO 8601 date-time string")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _BadRequest(f"{what} {value!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise _BadRequest(f"{what} must carry a time zone (e.g. Z)")
    return moment


def _required_time(body: dict[str, Any], name: str) -> datetime:
    moment = _time(body.get(name), name)
    if moment is None:
        raise _BadRequest(f"{name} is required")
    return moment


def _string(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _BadRequest(f"{name} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise _BadRequest(f"{name} must be a non-empty string")
    return value.strip()


def _strings(body: dict[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _BadRequest(f"{name} must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _exam(study_uid: str, body: dict[str, Any]) -> SharedExam:
    try:
        return SharedExam(
            study_uid=study_uid,
            manifest_unique_id=_string(body, "manifest_unique_id", required=False),
            report_unique_ids=_strings(body, "report_unique_ids"),
            release_time=_time(body.get("release_time"), "release_time"),
        )
    except ValueError as exc:
        raise _BadRequest(str(exc)) from None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def grant_json(grant: Grant) -> dict[str, Any]:
    """A grant as the API shows it (never its code or PIN hash)."""
    return {
        "grant_id": grant.grant_id,
        "patient_id": grant.patient_id,
        "parent_id": grant.parent_id,
        "created": _iso(grant.created),
        "expires": _iso(grant.expires),
        "revoked": grant.revoked,
        "label": grant.label,
        "pin_pending": grant.pin_pending,
        "exams": [
            {
                "study_uid": e.study_uid,
                "manifest_unique_id": e.manifest_unique_id,
                "report_unique_ids": list(e.report_unique_ids),
                "release_time": _iso(e.release_time),
            }
            for e in grant.exams
        ],
    }


async def _json_body(request: Request) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise _BadRequest("the body must be application/json", 415)
    data = await _limited_body(request)
    try:
        body = json.loads(data or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest("the body must be a JSON object")
    return body


async def _limited_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise _BadRequest("the body is too large", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _label(body: dict[str, Any]) -> str | None:
    value = body.get("label")
    if value is not None and not isinstance(value, str):
        raise _BadRequest("label must be a string")
    return value


def locked_response(exc: Locked, **headers: str) -> JSONResponse:
    """423 with Retry-After in whole seconds (at least 1)."""
    seconds = str(max(1, math.ceil(exc.retry_after.total_seconds())))
    return _error(423, str(exc), **{"Retry-After": seconds}, **headers)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@dataclass(frozen=True, slots=True)
class ConsentApi:
    """The endpoints' shared state: the store, the signing material and the token settings."""

    store: GrantStore
    signing: SigningMaterial
    api_key: str | None
    token_lifetime: timedelta
    audience: str
    issuer: str
    limiter: anyio.CapacityLimiter

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    def _authorised(self, request: Request) -> bool:
        if not self.api_key:
            return False
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(presented.strip().encode(), self.api_key.encode())

    def guarded(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a grant-API handler: bearer key first, then errors mapped to precise 4xx."""

        async def endpoint(request: Request) -> Response:
            if not self.api_key:
                return _error(403, "the grant API is disabled (no grant_api_key is configured)")
            if not self._authorised(request):
                return _error(401, "a valid bearer API key is required", **{"WWW-Authenticate": "Bearer"})
            try:
                return await handler(request)
            except _BadRequest as exc:
                return _error(exc.status, str(exc))
            except PinPolicyError as exc:
                return _error(400, str(exc))
            except GrantError as exc:
                return _error(exc.http_status, str(exc))

        return endpoint

    # -- grant API -------------------------------------------------------------------------------
    async def create(self, request: Request) -> Response:
        body = await _json_body(request)
        patient_id = _string(body, "patient_id")
        pin = body.get("pin")
        if pin is not None and not isinstance(pin, str):
            raise _BadRequest("pin must be a string (or omitted: the patient sets it later)")
        label = _label(body)
        expires = _required_time(body, "expires")
        raw_exams = body.get("exams", [])
        if not isinstance(raw_exams, list) or not all(isinstance(e, dict) for e in raw_exams):
            raise _BadRequest("exams must be a list of objects")
        exams = [_exam(_string(e, "study_uid") or "", e) for e in raw_exams]
        issued = await self._run(
            lambda: self.store.create(
                patient_id=patient_id or "", pin=pin, expires=expires, exams=exams, label=label,
                client_address=_client(request),
            )
        )
        return JSONResponse(
            {
                "grant": grant_json(issued.grant),
                "access_code": issued.access_code,
                "access_code_display": format_access_code(issued.access_code),
            },
            status_code=201,
            headers={"Cache-Control": "no-store"},
        )

    async def read(self, request: Request) -> Response:
        grant = await self._run(self.store.get, request.path_params["grant_id"])
        return JSONResponse({"grant": grant_json(grant)})

    async def put_exam(self, request: Request) -> Response:
        body = await _json_body(request)
        exam = _exam(request.path_params["study_uid"], body)
        grant = await self._run(
            lambda: self.store.put_exam(request.path_params["grant_id"], exam, client_address=_client(request))
        )
        return JSONResponse({"grant": grant_json(grant)})

    async def release(self, request: Request) -> Response:
        body = await _json_body(request)
        when = _time(body.get("release_time"), "release_time")
        grant = await self._run(
            lambda: self.store.set_release_time(
                request.path_params["grant_id"], request.path_params["study_uid"], when, client_address=_client(request)
            )
        )
        return JSONResponse({"grant": grant_json(grant)})

    async def withdraw(self, request: Request) -> Response:
        grant = await self._run(
            lambda: self.store.withdraw_exam(
                request.path_params["grant_id"], request.path_params["study_uid"], client_address=_client(request)
            )
        )
        return JSONResponse({"grant": grant_json(grant)})

    async def reset_pin(self, request: Request) -> Response:
        body = await _json_body(request)
        pin = body.get("pin")
        if not isinstance(pin, str):
            raise _BadRequest("pin is required")
        await self._run(
            lambda: self.store.reset_pin(request.path_params["grant_id"], pin, client_address=_client(request))
        )
        return Response(status_code=204)

    async def revoke(self, request: Request) -> Response:
        count = await self._run(
            lambda: self.store.revoke(request.path_params["grant_id"], client_address=_client(request))
        )
        return JSONResponse({"revoked": count})

    async def share(self, request: Request) -> Response:
        body = await _json_body(request)
        studies = _strings(body, "study_uids")
        pin = body.get("pin")
        if not isinstance(pin, str):
            raise _BadRequest("pin is required")
        expires = _required_time(body, "expires")
        label = _label(body)
        issued = await self._run(
            lambda: self.store.create_share(
                request.path_params["grant_id"], study_uids=studies, pin=pin, expires=expires, label=label,
                client_address=_client(request),
            )
        )
        return JSONResponse(
            {
                "grant": grant_json(issued.grant),
                "access_code": issued.access_code,
                "access_code_display": format_access_code(issued.access_code),
            },
            status_code=201,
            headers={"Cache-Control": "no-store"},
        )

    # -- token endpoint --------------------------------------------------------------------------
    async def credentials(self, request: Request) -> tuple[str, str]:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/json":
            body: dict[str, Any] = await _json_body(request)
        elif ctype == "application/x-www-form-urlencoded":
            try:
                form = parse_qs((await _limited_body(request)).decode("utf-8"), strict_parsing=False)
            except UnicodeDecodeError:
                raise _BadRequest("the form is not UTF-8") from None
            body = {k: v[0] for k, v in form.items() if len(v) == 1}
        else:
            raise _BadRequest("send code and pin as a form or as JSON", 415)
        code = body.get("code", body.get("access_code"))
        pin = body.get("pin")
        if not isinstance(code, str) or not isinstance(pin, str) or not code or not pin:
            raise _BadRequest("code and pin are required")
        return code, pin

    async def token(self, request: Request) -> Response:
        """Code + PIN -> a signed assertion listing the released exams (DESIGN §4 (b))."""
        headers = {"Cache-Control": "no-store"}
        try:
            code, pin = await self.credentials(request)
        except _BadRequest as exc:
            return _error(exc.status, str(exc))
        client = _client(request)
        store = self.store
        try:
            grant = await self._run(lambda: store.present(code, pin, client_address=client, purpose="token"))
        except AccessCodeError as exc:
            return _error(400, str(exc))
        except Locked as exc:
            return locked_response(exc, **headers)
        except PinPending as exc:
            return JSONResponse({"error": str(exc), "pin_pending": True}, status_code=401, headers=headers)
        except GrantError as exc:
            return _error(401, str(exc), **headers)
        return await self.assertion_response(grant)

    async def assertion_response(self, grant: Grant) -> Response:
        """A signed assertion for ``grant`` with its scope as of now (not stored, not cached)."""
        now = self.store.clock()
        assertion = await self._run(
            lambda: issue_assertion(
                issuer=self.issuer,
                subject=grant.grant_id,
                audience=self.audience,
                scope=grant.scope(now),
                now=now,
                lifetime=self.token_lifetime,
                key_pem=self.signing.key_pem,
                cert_pem=self.signing.cert_pem,
            )
        )
        return Response(assertion, media_type=MEDIA_SAML_ASSERTION, headers={"Cache-Control": "no-store"})

    async def certificate(self, _request: Request) -> Response:
        """The issuer's certificate, for repositories and Edge Servers to trust."""
        return Response(self.signing.cert_pem, media_type="application/x-pem-file")


def consent_routes(
    store: GrantStore,
    *,
    signing: SigningMaterial,
    api_key: str | None,
    token_lifetime: timedelta,
    audience: str,
    issuer: str,
    db_threads: int = 2,
) -> list[BaseRoute]:
    """The grant API, the token endpoint and the issuer certificate, under ``/consent``."""
    api = ConsentApi(
        store=store,
        signing=signing,
        api_key=api_key,
        token_lifetime=token_lifetime,
        audience=audience,
        issuer=issuer,
        limiter=anyio.CapacityLimiter(db_threads),
    )
    base = f"{PREFIX}/grants"
    exam = f"{base}/{{grant_id}}/exams/{{study_uid}}"
    return [
        Route(f"{PREFIX}/token", api.token, methods=["POST"]),
        Route(f"{PREFIX}/certificate", api.certificate, methods=["GET"]),
        Route(base, api.guarded(api.create), methods=["POST"]),
        Route(f"{base}/{{grant_id}}", api.guarded(api.read), methods=["GET"]),
        Route(f"{base}/{{grant_id}}/pin", api.guarded(api.reset_pin), methods=["POST"]),
        Route(f"{base}/{{grant_id}}/revoke", api.guarded(api.revoke), methods=["POST"]),
        Route(f"{base}/{{grant_id}}/shares", api.guarded(api.share), methods=["POST"]),
        Route(f"{exam}/release", api.guarded(api.release), methods=["PUT"]),
        Route(exam, api.guarded(api.put_exam), methods=["PUT"]),
        Route(exam, api.guarded(api.withdraw), methods=["DELETE"]),
    ]
