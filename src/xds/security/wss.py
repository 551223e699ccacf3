"""The WS-Security header (OASIS WSS SOAP Message Security 1.0/1.1) as the consent token rides
in it (DESIGN §4): either a SAML 2.0 Assertion (WSS SAML Token Profile 1.1 §3.3, as IHE XUA
uses it, ITI TF-2b §3.40.4.1) or a UsernameToken whose Username is the access code and whose
Password (type PasswordText, UsernameToken Profile 1.0 §3.1) is the PIN.

Parsing takes the header blocks of a parsed envelope (``SoapEnvelope.headers``) and returns the
one token found; building returns a ``wsse:Security`` element for
``request_envelope(extra_headers=...)``.

Public API::

    SECURITY: str                                     # "{wsse}Security"
    UsernameToken(username, password)                 # repr hides the password
    SamlToken(assertion)                              # the saml:Assertion element
    find_token(headers) -> UsernameToken | SamlToken | None
    security_header(token, *, must_understand=True) -> etree._Element
    WsSecurityError(ValueError)
"""

from __future__ import annotations

from collections.abc import Iterable
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from xds.vocabulary import (
    NS_SAML2,
    NS_SOAP12,
    NS_WSSE,
    NS_WSSE11,
    NS_WSU,
    SOAP12_ROLE_NEXT,
    SOAP12_ROLE_ULTIMATE_RECEIVER,
    WSSE_PASSWORD_DIGEST,
    WSSE_PASSWORD_TEXT,
)
from xds.xml import qname

__all__ = ["SECURITY", "SamlToken", "UsernameToken", "WsSecurityError", "find_token", "security_header"]

SECURITY: Final = qname(NS_WSSE, "Security")
_USERNAME_TOKEN = qname(NS_WSSE, "UsernameToken")
_USERNAME = qname(NS_WSSE, "Username")
_PASSWORD = qname(NS_WSSE, "Password")
_ASSERTION = qname(NS_SAML2, "Assertion")
_ROLE = qname(NS_SOAP12, "role")
_MUST_UNDERSTAND = qname(NS_SOAP12, "mustUnderstand")
_OUR_ROLES: Final = frozenset({"", SOAP12_ROLE_NEXT, SOAP12_ROLE_ULTIMATE_RECEIVER})


class WsSecurityError(ValueError):
    """A Security header we cannot accept (WSS 1.1 §12: wsse:InvalidSecurity); never echoes
    a password."""


@dataclass(frozen=True, slots=True)
class UsernameToken:
    """Username and clear-text password of a UsernameToken (code and PIN)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True, eq=False)
class SamlToken:
    """A SAML 2.0 Assertion carried in the Security header (still to be verified)."""

    assertion: etree._Element


Token = UsernameToken | SamlToken


def _ours(block: etree._Element) -> bool:
    # WSS 1.1 §6.1: a Security header without a role (actor) is for the ultimate receiver.
    return (block.get(_ROLE) or "").strip() in _OUR_ROLES


def _username_token(element: etree._Element) -> UsernameToken:
    usernames = element.findall(_USERNAME)
    passwords = element.findall(_PASSWORD)
    if len(usernames) != 1 or len(passwords) != 1:
        raise WsSecurityError("a UsernameToken needs exactly one Username and one Password")
    kind = (passwords[0].get("Type") or WSSE_PASSWORD_TEXT).strip()
    if kind == WSSE_PASSWORD_DIGEST:
        # UsernameToken Profile 1.0 §3.1: a digest needs the clear PIN on our side, which we
        # never keep (only its scrypt hash).
        raise WsSecurityError("PasswordDigest is not supported; send the PIN as PasswordText over TLS")
    if kind != WSSE_PASSWORD_TEXT:
        raise WsSecurityError("unknown UsernameToken password type")
    username = (usernames[0].text or "").strip()
    if not username:
        raise WsSecurityError("the UsernameToken has an empty Username")
    return UsernameToken(username=username, password=passwords[0].text or "")


def find_token(headers: Iterable[etree._Element]) -> Token | None:
    """The consent token in the header blocks, or None when there is no Security header for us.

    Raises :class:`WsSecurityError` for two Security headers for us (WSS 1.1 §6.1 allows one
    per role), or one holding no token, both kinds, or two of a kind.
    """
    blocks = [b for b in headers if b.tag == SECURITY and _ours(b)]
    if not blocks:
        return None
    if len(blocks) > 1:
        raise WsSecurityError("more than one wsse:Security header for this receiver")
    security = blocks[0]
    assertions = [c for c in security if c.tag == _ASSERTION]
    usernames = [c for c in security if c.tag == _USERNAME_TOKEN]
    if len(assertions) + len(usernames) == 0:
        raise WsSecurityError("the wsse:Security header holds no SAML assertion and no UsernameToken")
    if len(assertions) + len(usernames) > 1:
        raise WsSecurityError("the wsse:Security header must hold exactly one token")
    if assertions:
        return SamlToken(assertion=assertions[0])
    return _username_token(usernames[0])


def security_header(token: Token, *, must_understand: bool = True) -> etree._Element:
    """A ``wsse:Security`` header block holding ``token`` (for a client's request)."""
    security = etree.Element(
        SECURITY, nsmap={"wsse": NS_WSSE, "wsu": NS_WSU, "wsse11": NS_WSSE11}
    )
    if must_understand:
        # SOAP 1.2 Part 1 §5.2.3; WSS 1.1 §5: the receiver must process the header or fault.
        security.set(_MUST_UNDERSTAND, "true")
    if isinstance(token, SamlToken):
        security.append(deepcopy(token.assertion))
        return security
    element = etree.SubElement(security, _USERNAME_TOKEN)
    etree.SubElement(element, _USERNAME).text = token.username
    password = etree.SubElement(element, _PASSWORD, Type=WSSE_PASSWORD_TEXT)
    password.text = token.password
    return security
