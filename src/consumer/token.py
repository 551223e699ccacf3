"""The consumer's side of the consent token (DESIGN §4 "Presentation" (b)): trade the access
code and PIN, once, at the registry's token endpoint for a signed SAML 2.0 assertion, then send
that assertion in the ``wsse:Security`` header of every ITI-18, ITI-43 and RAD-69 message (WSS
SAML Token Profile 1.1 §3.3).

The code's Damm check digit is checked here, before anything is sent, so a typo never counts as
a failed presentation against the patient's code. The PIN is never logged and never part of an
error message.

Public API::

    token_url_for(registry_url) -> str        # <registry base>/consent/token
    ConsentToken(assertion, raw)              # .patient_id  .security_header()
    request_token(token_url, code, pin, *, timeout=30.0, verify=True, cert=None, transport=None)
        -> ConsentToken
    TokenError(Exception) > TokenMistyped, TokenRefused, TokenLocked(retry_after)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import httpx
from lxml import etree

from xds.http.client import CertTypes, VerifyTypes
from xds.security.accesscode import AccessCodeError, check_access_code
from xds.security.wss import SamlToken, security_header
from xds.vocabulary import NS_SAML2, GrantAttribute
from xds.xml import parse_xml, qname

__all__ = [
    "ConsentToken",
    "TokenError",
    "TokenLocked",
    "TokenMistyped",
    "TokenRefused",
    "request_token",
    "token_url_for",
]

log = logging.getLogger(__name__)

TOKEN_PATH: Final = "/consent/token"
_ASSERTION = qname(NS_SAML2, "Assertion")
_ATTRIBUTE = qname(NS_SAML2, "Attribute")
_ATTRIBUTE_VALUE = qname(NS_SAML2, "AttributeValue")
#: Largest token endpoint answer read (an assertion listing a few thousand UIDs).
MAX_ASSERTION_BYTES: Final = 4 << 20


class TokenError(Exception):
    """No token was obtained; the message says why (never with the code or the PIN)."""


class TokenMistyped(TokenError):
    """The access code is not well formed or its check digit does not match (caught locally)."""


class TokenRefused(TokenError):
    """The registry did not accept the code and PIN (unknown, wrong PIN, expired, revoked)."""


class TokenLocked(TokenError):
    """Too many failed presentations: the code (or this address) is locked for a while."""

    def __init__(self, message: str, *, retry_after: int | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def token_url_for(registry_url: str) -> str:
    """The token endpoint next to a registry SOAP endpoint: ``http://h:8010/registry`` ->
    ``http://h:8010/consent/token`` (the last path segment replaced)."""
    parts = urlsplit(registry_url)
    base = parts.path.rstrip("/").rpartition("/")[0]
    return urlunsplit((parts.scheme, parts.netloc, base + TOKEN_PATH, "", ""))


@dataclass(frozen=True, slots=True, eq=False)
class ConsentToken:
    """The registry's assertion as received (the consumer does not need to verify it: every
    service it is presented to does)."""

    assertion: etree._Element
    raw: bytes = field(repr=False)

    @property
    def patient_id(self) -> str | None:
        """The grant's affinity-domain patient ID, as the assertion states it."""
        for attribute in self.assertion.iter(_ATTRIBUTE):
            if attribute.get("Name") == GrantAttribute.PATIENT_ID:
                value = attribute.findtext(_ATTRIBUTE_VALUE)
                if value and value.strip():
                    return value.strip()
        return None

    def security_header(self) -> etree._Element:
        """A fresh ``wsse:Security`` header block carrying the assertion (one per message)."""
        return security_header(SamlToken(self.assertion))


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after", "")
    return int(value) if value.isdigit() else None


def _reason(response: httpx.Response) -> str:
    try:
        message = response.json().get("error")
    except (ValueError, AttributeError):
        message = None
    return message if isinstance(message, str) and message else f"HTTP {response.status_code}"


def request_token(
    token_url: str,
    code: str,
    pin: str,
    *,
    timeout: float = 30.0,
    verify: VerifyTypes = True,
    cert: CertTypes = None,
    transport: httpx.BaseTransport | None = None,
) -> ConsentToken:
    """Present ``code`` and ``pin`` at ``token_url`` and return the assertion.

    Raises :class:`TokenMistyped` before any request when the code is malformed or mistyped,
    :class:`TokenRefused` / :class:`TokenLocked` for the registry's refusals, :class:`TokenError`
    for anything else (unreachable, an answer that is not an assertion).
    """
    try:
        digits = check_access_code(code)
    except AccessCodeError as exc:
        raise TokenMistyped(str(exc)) from None
    if not pin:
        raise TokenError("the PIN is empty")
    try:
        with httpx.Client(timeout=timeout, verify=verify, cert=cert, transport=transport) as client:
            response = client.post(token_url, data={"code": digits, "pin": pin}, headers={"accept": "application/samlassertion+xml"})
    except httpx.HTTPError as exc:
        raise TokenError(f"the token endpoint {token_url} cannot be reached ({type(exc).__name__})") from None
    status = response.status_code
    if status == 401:
        raise TokenRefused("the access code or the PIN was not accepted")
    if status == 423:
        raise TokenLocked(f"the access code is locked for now: {_reason(response)}", retry_after=_retry_after(response))
    if status == 400:
        raise TokenMistyped(_reason(response))
    if status != 200:
        raise TokenError(f"the token endpoint {token_url} answered {status}: {_reason(response)}")
    if len(response.content) > MAX_ASSERTION_BYTES:
        raise TokenError("the token endpoint's answer is too large")
    try:
        assertion = parse_xml(response.content)
    except ValueError:
        raise TokenError("the token endpoint's answer is not XML") from None
    if assertion.tag != _ASSERTION:
        raise TokenError("the token endpoint's answer is not a SAML 2.0 assertion")
    log.info("consent token obtained from %s", token_url)
    return ConsentToken(assertion=assertion, raw=response.content)
