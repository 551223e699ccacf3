"""A typed client of the registry's self-service API (DESIGN §4 "Shares for the care team"): what
a patient signed in with their own code and PIN may do with their grant.

The caller proves who it is with the consent token it already holds: every call carries
``Authorization: SAML <base64 of the assertion bytes>``. Endpoints (under ``<registry>/consent``)::

    POST /consent/token            code, pin -> assertion; 401 {"pin_pending": true} when the
                                   code is right and no PIN has been chosen yet
    POST /consent/self/activate    {code, pin} -> 204 (choose the first PIN); 409 already set
    GET  /consent/self             -> the grant and its exams (released or not)
    POST /consent/self/token       -> a fresh assertion
    GET  /consent/self/shares      -> {"shares": [...]}; 403 for a share's own token
    POST /consent/self/shares      {label, study_uids, expires} -> 201 {share, access_code,
                                   access_code_display, pin}
    POST /consent/self/shares/{id}/extend {expires} -> {share}
    POST /consent/self/shares/{id}/revoke           -> {revoked}

Codes and PINs are never logged and never part of an error message.

Public API::

    consent_base_for(registry_url) -> str
    token_expiry(token) -> datetime | None ; token_studies(token) -> frozenset[str]
    SelfExam, SelfGrant, Share, NewShare (frozen dataclasses)
    SelfServiceClient(registry_url, *, timeout=30.0, verify=True, cert=None, transport=None)
        .sign_in(code, pin) -> ConsentToken      # PinPending, TokenMistyped/Refused/Locked
        .activate(code, pin) -> None             # PinAlreadySet, TokenMistyped/Refused/Locked
        .grant(token) -> SelfGrant
        .refresh(token) -> ConsentToken
        .shares(token) -> list[Share]
        .create_share(token, *, label, study_uids, expires) -> NewShare
        .extend_share(token, grant_id, *, expires) -> Share
        .revoke_share(token, grant_id) -> int
    SelfServiceError(status) > PinPending, PinAlreadySet, SessionEnded, NotPermitted
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from consumer.token import (
    MAX_ASSERTION_BYTES,
    ConsentToken,
    TokenError,
    TokenLocked,
    TokenMistyped,
    TokenRefused,
    request_token,
)
from xds.http.client import CertTypes, VerifyTypes
from xds.security.accesscode import AccessCodeError, check_access_code
from xds.vocabulary import NS_SAML2, GrantAttribute
from xds.xml import parse_xml, qname

__all__ = [
    "NewShare",
    "NotPermitted",
    "PinAlreadySet",
    "PinPending",
    "SelfExam",
    "SelfGrant",
    "SelfServiceClient",
    "SelfServiceError",
    "SessionEnded",
    "Share",
    "consent_base_for",
    "token_expiry",
    "token_studies",
]

CONSENT_PATH: Final = "/consent"
MEDIA_ASSERTION: Final = "application/samlassertion+xml"
_ASSERTION = qname(NS_SAML2, "Assertion")
_CONDITIONS = qname(NS_SAML2, "Conditions")
_ATTRIBUTE = qname(NS_SAML2, "Attribute")
_ATTRIBUTE_VALUE = qname(NS_SAML2, "AttributeValue")


class SelfServiceError(Exception):
    """The registry refused a self-service call; ``status`` is its HTTP status (0: unreachable)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class PinPending(TokenRefused):
    """The code is right but its grant has no PIN yet: the patient chooses one (activate)."""


class PinAlreadySet(SelfServiceError):
    """Activation refused: the grant already has a PIN (409)."""


class SessionEnded(SelfServiceError):
    """The token is no longer accepted (expired, revoked): sign in again (401)."""


class NotPermitted(SelfServiceError):
    """The token may not do this (e.g. a share's own token listing shares) (403)."""


# -- the assertion, as far as the portal needs to read it -----------------------------------------
def consent_base_for(registry_url: str) -> str:
    """``http://h:8010/registry`` -> ``http://h:8010/consent`` (the last path segment replaced,
    as :func:`consumer.token.token_url_for` does)."""
    parts = urlsplit(registry_url)
    base = parts.path.rstrip("/").rpartition("/")[0]
    return urlunsplit((parts.scheme, parts.netloc, base + CONSENT_PATH, "", ""))


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def token_expiry(token: ConsentToken) -> datetime | None:
    """The assertion's NotOnOrAfter (SAML Core §2.5.1.2), read without verifying: the token came
    straight from the registry over our own connection."""
    conditions = token.assertion.find(_CONDITIONS)
    return _parse_time(conditions.get("NotOnOrAfter")) if conditions is not None else None


def token_studies(token: ConsentToken) -> frozenset[str]:
    """The Study Instance UIDs the assertion's scope lists (DESIGN §4: the released exams)."""
    values: set[str] = set()
    for attribute in token.assertion.iter(_ATTRIBUTE):
        if attribute.get("Name") == GrantAttribute.STUDY_INSTANCE_UID:
            values.update((v.text or "").strip() for v in attribute.iter(_ATTRIBUTE_VALUE) if (v.text or "").strip())
    return frozenset(values)


def _token_from(raw: bytes) -> ConsentToken:
    if len(raw) > MAX_ASSERTION_BYTES:
        raise SelfServiceError("the registry's assertion is too large")
    try:
        assertion = parse_xml(raw)
    except ValueError:
        raise SelfServiceError("the registry's answer is not XML") from None
    if assertion.tag != _ASSERTION:
        raise SelfServiceError("the registry's answer is not a SAML 2.0 assertion")
    return ConsentToken(assertion=assertion, raw=raw)


# -- what the API answers ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SelfExam:
    """One exam of the signed-in grant; ``released`` False: the physician sees it first."""

    study_uid: str
    manifest_unique_id: str | None
    report_unique_ids: tuple[str, ...]
    release_time: datetime | None
    released: bool
    title: str
    date: str
    modalities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SelfGrant:
    grant_id: str
    patient_id: str
    is_share: bool
    label: str
    created: datetime | None
    expires: datetime | None
    exams: tuple[SelfExam, ...]


@dataclass(frozen=True, slots=True)
class Share:
    """A narrower grant made for one recipient (never its code or PIN)."""

    grant_id: str
    label: str
    study_uids: tuple[str, ...]
    created: datetime | None
    expires: datetime | None
    revoked: bool
    last_used: datetime | None


@dataclass(frozen=True, slots=True)
class NewShare:
    """A share just made, with its code and PIN: the only time they are ever shown."""

    share: Share
    access_code: str = field(repr=False)
    access_code_display: str = field(repr=False)
    pin: str = field(repr=False)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(v.strip() for v in value if isinstance(v, str) and v.strip()) if isinstance(value, list) else ()


def _exam(data: Mapping[str, Any]) -> SelfExam:
    return SelfExam(
        study_uid=_text(data.get("study_uid")),
        manifest_unique_id=_text(data.get("manifest_unique_id")) or None,
        report_unique_ids=_texts(data.get("report_unique_ids")),
        release_time=_parse_time(data.get("release_time")),
        released=bool(data.get("released")),
        title=_text(data.get("title")),
        date=_text(data.get("date")),
        modalities=_texts(data.get("modalities")),
    )


def _share(data: Any) -> Share:
    if not isinstance(data, Mapping):
        raise SelfServiceError("the registry's answer has no share")
    return Share(
        grant_id=_text(data.get("grant_id")),
        label=_text(data.get("label")),
        study_uids=_texts(data.get("study_uids")),
        created=_parse_time(data.get("created")),
        expires=_parse_time(data.get("expires")),
        revoked=bool(data.get("revoked")),
        last_used=_parse_time(data.get("last_used")),
    )


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("a share's expiry must carry a time zone")
    return moment.isoformat()


def forwarded_for(client_address: str | None) -> dict[str, str]:
    """``X-Forwarded-For`` naming the end user (RFC 7239 §4 predecessor, de facto): the registry
    counts failed presentations per client address, and without it every patient signing in
    through one portal would share the portal's count (five typos anywhere would lock everyone
    out). The registry's server takes it only from trusted proxies (uvicorn's
    ``forwarded_allow_ips``, loopback by default), so a portal elsewhere must be listed there."""
    return {"x-forwarded-for": client_address} if client_address else {}


class _Recorder(httpx.BaseTransport):
    """Keeps the last response of the wrapped transport, so a refusal's JSON body (``pin_pending``)
    can be read after :func:`consumer.token.request_token` has mapped its status."""

    def __init__(self, inner: httpx.BaseTransport, *, headers: dict[str, str] | None = None) -> None:
        self.inner = inner
        self.headers = headers or {}
        self.response: httpx.Response | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for name, value in self.headers.items():
            request.headers[name] = value
        self.response = self.inner.handle_request(request)
        return self.response

    def close(self) -> None:
        self.inner.close()


# -- the client -------------------------------------------------------------------------------------
class SelfServiceClient:
    """Synchronous client of the self-service API (one short-lived connection per call, so one
    instance serves every thread of a web app)."""

    def __init__(
        self,
        registry_url: str,
        *,
        timeout: float = 30.0,
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = consent_base_for(registry_url)
        self.timeout = timeout
        self.verify = verify
        self.cert = cert
        self.transport = transport

    # -- plumbing ---------------------------------------------------------------------------------
    def _inner_transport(self) -> httpx.BaseTransport:
        return self.transport or httpx.HTTPTransport(verify=self.verify, cert=self.cert)

    def _send(
        self, method: str, path: str, *, token: ConsentToken | None = None, body: Any = None, extra: dict[str, str] | None = None
    ) -> httpx.Response:
        headers = {"accept": "application/json", **(extra or {})}
        if token is not None:
            headers["authorization"] = "SAML " + base64.b64encode(token.raw).decode("ascii")
        try:
            with httpx.Client(timeout=self.timeout, transport=self._inner_transport()) as client:
                return client.request(method, self.base + path, headers=headers, json=body)
        except httpx.HTTPError as exc:
            raise SelfServiceError(f"the registry cannot be reached ({type(exc).__name__})") from None

    @staticmethod
    def _reason(response: httpx.Response) -> str:
        try:
            message = response.json().get("error")
        except (ValueError, AttributeError):
            message = None
        return message if isinstance(message, str) and message else f"HTTP {response.status_code}"

    def _checked(self, response: httpx.Response, *expected: int) -> httpx.Response:
        status = response.status_code
        if status in expected:
            return response
        reason = self._reason(response)
        if status == 401:
            raise SessionEnded(reason, status=status)
        if status == 403:
            raise NotPermitted(reason, status=status)
        raise SelfServiceError(reason, status=status)

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise SelfServiceError("the registry's answer is not JSON", status=response.status_code) from None
        if not isinstance(data, dict):
            raise SelfServiceError("the registry's answer is not a JSON object", status=response.status_code)
        return data

    # -- signing in -------------------------------------------------------------------------------
    def sign_in(self, code: str, pin: str, *, client_address: str | None = None) -> ConsentToken:
        """Code + PIN -> the grant's assertion (:func:`consumer.token.request_token`, whose
        mistyped / refused / locked errors pass through), or :class:`PinPending`.
        ``client_address``: the end user's address, forwarded (see :func:`forwarded_for`)."""
        recorder = _Recorder(self._inner_transport(), headers=forwarded_for(client_address))
        try:
            return request_token(self.base + "/token", code, pin, timeout=self.timeout, transport=recorder)
        except TokenRefused as exc:
            last = recorder.response
            if last is not None and last.status_code == 401:
                try:
                    pending = last.json().get("pin_pending") is True
                except (ValueError, AttributeError):
                    pending = False
                if pending:
                    raise PinPending("this access code has no PIN yet: choose one") from None
            raise exc from None

    def activate(self, code: str, pin: str, *, client_address: str | None = None) -> None:
        """Choose the first PIN of a grant enrolled without one."""
        try:
            digits = check_access_code(code)
        except AccessCodeError as exc:
            raise TokenMistyped(str(exc)) from None
        response = self._send("POST", "/self/activate", body={"code": digits, "pin": pin}, extra=forwarded_for(client_address))
        status = response.status_code
        if status == 204:
            return
        reason = self._reason(response)
        if status == 409:
            raise PinAlreadySet(reason, status=status)
        if status == 400:
            raise TokenMistyped(reason)
        if status == 401:
            raise TokenRefused("the access code was not accepted")
        if status == 423:
            value = response.headers.get("retry-after", "")
            raise TokenLocked(f"the access code is locked for now: {reason}", retry_after=int(value) if value.isdigit() else None)
        raise TokenError(f"the registry answered {status}: {reason}")

    # -- the signed-in grant ----------------------------------------------------------------------
    def grant(self, token: ConsentToken) -> SelfGrant:
        data = self._json(self._checked(self._send("GET", "/self", token=token), 200))
        exams = data.get("exams", [])
        return SelfGrant(
            grant_id=_text(data.get("grant_id")),
            patient_id=_text(data.get("patient_id")),
            is_share=bool(data.get("is_share")),
            label=_text(data.get("label")),
            created=_parse_time(data.get("created")),
            expires=_parse_time(data.get("expires")),
            exams=tuple(_exam(e) for e in exams if isinstance(e, Mapping)) if isinstance(exams, list) else (),
        )

    def refresh(self, token: ConsentToken) -> ConsentToken:
        """A fresh assertion for the same grant (before the old one's NotOnOrAfter)."""
        response = self._checked(self._send("POST", "/self/token", token=token), 200)
        return _token_from(response.content)

    # -- shares -----------------------------------------------------------------------------------
    def shares(self, token: ConsentToken) -> list[Share]:
        data = self._json(self._checked(self._send("GET", "/self/shares", token=token), 200))
        items = data.get("shares", [])
        return [_share(s) for s in items] if isinstance(items, list) else []

    def create_share(self, token: ConsentToken, *, label: str, study_uids: Sequence[str], expires: datetime) -> NewShare:
        body = {"label": label, "study_uids": list(study_uids), "expires": _iso(expires)}
        data = self._json(self._checked(self._send("POST", "/self/shares", token=token, body=body), 201))
        code, pin = _text(data.get("access_code")), _text(data.get("pin"))
        if not code or not pin:
            raise SelfServiceError("the registry's answer has no access code or PIN", status=201)
        return NewShare(
            share=_share(data.get("share")),
            access_code=code,
            access_code_display=_text(data.get("access_code_display")) or code,
            pin=pin,
        )

    def extend_share(self, token: ConsentToken, grant_id: str, *, expires: datetime) -> Share:
        path = f"/self/shares/{quote(grant_id, safe='')}/extend"
        data = self._json(self._checked(self._send("POST", path, token=token, body={"expires": _iso(expires)}), 200))
        return _share(data.get("share"))

    def revoke_share(self, token: ConsentToken, grant_id: str) -> int:
        path = f"/self/shares/{quote(grant_id, safe='')}/revoke"
        data = self._json(self._checked(self._send("POST", path, token=token), 200))
        revoked = data.get("revoked")
        return revoked if isinstance(revoked, int) else 0
