"""The consent gate of the retrieve transactions (DESIGN §4 "Gate"): ITI-43 at the Document
Repository and RAD-69 at the Imaging Document Source.

Both actors hold no grants, so the gate decides from the request alone, with no database call:
the SAML 2.0 assertion the registry's token endpoint issued must ride in the ``wsse:Security``
header (WSS SAML Token Profile 1.1 §3.3; IHE XUA, ITI TF-2b §3.40.4.1), its signature must
verify with the registry's certificate the actor was configured to trust, ``now`` must lie in its
validity window, and the actor must be its audience. What it lets its bearer see is the
:class:`~xds.security.saml.GrantScope` it carries.

Faults (OASIS WSS SOAP Message Security 1.1 §12, Tables 4 and 5; SOAP 1.2 Part 1 §5.4.6: code
``env:Sender``, the WSS fault QName as subcode), the same mapping the registry's ITI-18 gate uses:

=====================================================  ==========================================
no Security header, or one without an assertion        ``wsse:FailedAuthentication``
a UsernameToken (code and PIN need the registry)       ``wsse:UnsupportedSecurityToken``
Security header malformed (two of them, two tokens)    ``wsse:InvalidSecurity``
assertion malformed, expired, not yet valid, for       ``wsse:InvalidSecurityToken``
another audience
signature missing, altered, or by another key          ``wsse:FailedCheck`` (WSS SAML Token
                                                       Profile 1.1 §3.6)
=====================================================  ==========================================

What is *inside* the scope is the actor's business; :func:`merge_denied` is the shared last step:
the requests the scope does not cover are answered ``XDSDocumentUniqueIdError`` exactly as an
unknown document is (no existence leak), merged into the actor's answer for the rest, with the
status recomputed (ITI TF-2b §3.43.4.2.3: PartialSuccess when some documents are returned).

Public API::

    RetrievalGate(trusted_cert_pem, *, audience, clock=utc_now, skew=DEFAULT_SKEW,
                  audit: AuditLog | None = None, actor="")
        .authorize(request: SoapRequest, *, transaction="") -> GrantScope          # raises SoapFault
        .authorize_assertion(assertion, *, transaction="", client=None) -> GrantScope
        .verify(request, *, transaction) -> VerifiedAssertion                      # raises SoapFault
        .verify_assertion(assertion, *, transaction, client=None) -> VerifiedAssertion
        .refused(kind, *, transaction, client) -> None     # audit a refusal decided by a wrapper
        .audit_outcome(verified, *, transaction, client, requested, returned, withheld) -> None
    client_address(request: SoapRequest) -> str | None
    load_trusted_certificate(path) -> bytes                      # raises ValueError
    assertion_fault(exc: InvalidAssertion) -> SoapFault
    merge_denied(reply, denied, *, order, reword=None) -> SoapResponse
    retrieve_status(returned, errors) -> str
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from lxml import etree

from xds.errors import RegistryError
from xds.http.server import Handler, SoapRequest, SoapResponse
from xds.security.audit import ANONYMOUS, AuditLog, Outcome, RefusalKind
from xds.metadata.responses import build_registry_response, parse_registry_errors
from xds.security.saml import (
    DEFAULT_SKEW,
    AssertionExpired,
    AssertionNotYetValid,
    AudienceMismatch,
    GrantScope,
    InvalidAssertion,
    SignatureInvalid,
    VerifiedAssertion,
    verify_assertion,
)
from xds.security.wss import SamlToken, UsernameToken, WsSecurityError, find_token
from xds.settings import SettingsError
from xds.soap.fault import FaultCode, SoapFault
from xds.vocabulary import NS_RS, NS_XDS, ResponseStatus, WssFault
from xds.xml import qname

__all__ = [
    "RetrievalGate",
    "assertion_fault",
    "client_address",
    "refusal_kind",
    "load_trusted_certificate",
    "merge_denied",
    "retrieve_status",
    "utc_now",
]

log = logging.getLogger(__name__)

_REGISTRY_RESPONSE = qname(NS_RS, "RegistryResponse")
_DOCUMENT_RESPONSE = qname(NS_XDS, "DocumentResponse")


def utc_now() -> datetime:
    """The system clock, timezone-aware (the default clock of the gate)."""
    return datetime.now(UTC)


def _fault(subcode: str, reason: str) -> SoapFault:
    # WSS 1.1 §12: with SOAP 1.2 the security fault QName is the Subcode of env:Sender.
    return SoapFault(FaultCode.SENDER, reason, subcode=subcode)


def assertion_fault(exc: InvalidAssertion) -> SoapFault:
    """The SOAP fault for an assertion that must not be trusted (reasons never echo its content)."""
    # WSS SAML Token Profile 1.1 §3.6: a signature within the assertion that is invalid is
    # wsse:FailedCheck; any other unacceptable assertion is wsse:InvalidSecurityToken (WSS 1.1 §12).
    if isinstance(exc, SignatureInvalid):
        return _fault(WssFault.FAILED_CHECK, "the SAML assertion's signature does not verify with the trusted token certificate")
    if isinstance(exc, AssertionExpired):
        return _fault(WssFault.INVALID_SECURITY_TOKEN, "the SAML assertion has expired")
    if isinstance(exc, AssertionNotYetValid):
        return _fault(WssFault.INVALID_SECURITY_TOKEN, "the SAML assertion is not valid yet")
    if isinstance(exc, AudienceMismatch):
        return _fault(WssFault.INVALID_SECURITY_TOKEN, "the SAML assertion is not meant for this service (audience)")
    return _fault(WssFault.INVALID_SECURITY_TOKEN, "the SAML assertion is malformed")


def refusal_kind(exc: InvalidAssertion) -> RefusalKind:
    """The audit's name for why ``exc``'s assertion was refused (never its content)."""
    if isinstance(exc, SignatureInvalid):
        return RefusalKind.TAMPERED
    if isinstance(exc, AssertionExpired):
        return RefusalKind.EXPIRED
    if isinstance(exc, AssertionNotYetValid):
        return RefusalKind.NOT_YET_VALID
    if isinstance(exc, AudienceMismatch):
        return RefusalKind.WRONG_AUDIENCE
    return RefusalKind.MALFORMED


def client_address(request: SoapRequest) -> str | None:
    """The client's address of ``request`` (the audit's ``client``), when the server knows it."""
    return request.client[0] if request.client else None


def load_trusted_certificate(path: Path) -> bytes:
    """The PEM certificate at ``path`` (the registry's ``GET /consent/certificate``), checked."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"the trusted token certificate cannot be read: {exc}") from None
    try:
        x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ValueError(f"{path} is not a PEM X.509 certificate") from None
    return data


class RetrievalGate:
    """Verifies the consent token of a retrieve request locally and returns its scope.

    ``trusted_cert_pem`` is the token issuer's (the registry's) certificate; ``audience`` the
    name this service answers to in the assertion's AudienceRestriction; ``clock`` what "now" is.
    """

    def __init__(
        self,
        trusted_cert_pem: bytes,
        *,
        audience: str,
        clock: Callable[[], datetime] = utc_now,
        skew: timedelta = DEFAULT_SKEW,
        audit: AuditLog | None = None,
        actor: str = "",
    ) -> None:
        if not audience:
            raise ValueError("the gate needs the audience this service answers to")
        try:
            x509.load_pem_x509_certificate(trusted_cert_pem)
        except ValueError:
            raise ValueError("the trusted token certificate is not a PEM X.509 certificate") from None
        self.trusted_cert = trusted_cert_pem
        self.audience = audience
        self.clock = clock
        self.skew = skew
        self.audit = audit
        self.actor = actor

    def authorize(self, request: SoapRequest, *, transaction: str = "") -> GrantScope:
        """The scope of the request's assertion; a :class:`SoapFault` when there is none to trust."""
        return self.verify(request, transaction=transaction).scope

    def authorize_assertion(self, assertion: etree._Element, *, transaction: str = "", client: str | None = None) -> GrantScope:
        """Verify ``assertion`` (signature, validity window, audience) and return its scope."""
        return self.verify_assertion(assertion, transaction=transaction, client=client).scope

    def verify(self, request: SoapRequest, *, transaction: str) -> VerifiedAssertion:
        """The request's verified assertion (its grant id and scope); a refusal is audited and
        raised as a :class:`SoapFault`."""
        client = client_address(request)
        try:
            token = find_token(request.headers)
        except WsSecurityError as exc:
            self.refused(RefusalKind.MALFORMED_HEADER, transaction=transaction, client=client)
            # WSS 1.1 §12 Table 4: an error processing the wsse:Security header.
            raise _fault(WssFault.INVALID_SECURITY, str(exc)) from None
        if token is None:
            self.refused(RefusalKind.NO_TOKEN, transaction=transaction, client=client)
            # WSS 1.1 §12 Table 5: the request cannot be authorized without a token.
            raise _fault(WssFault.FAILED_AUTHENTICATION, "this service requires the consent token (a SAML assertion in wsse:Security)")
        if isinstance(token, UsernameToken):
            self.refused(RefusalKind.UNSUPPORTED_TOKEN, transaction=transaction, client=client)
            # Only the registry holds the grants that code and PIN are checked against.
            raise _fault(
                WssFault.UNSUPPORTED_SECURITY_TOKEN,
                "a UsernameToken is not accepted here; present the SAML assertion of the registry's token endpoint",
            )
        assert isinstance(token, SamlToken)
        return self.verify_assertion(token.assertion, transaction=transaction, client=client)

    def verify_assertion(self, assertion: etree._Element, *, transaction: str, client: str | None = None) -> VerifiedAssertion:
        """Verify ``assertion``; a refusal is audited and raised as a :class:`SoapFault`."""
        try:
            return verify_assertion(
                assertion, trusted_cert=self.trusted_cert, audience=self.audience, now=self.clock(), skew=self.skew
            )
        except InvalidAssertion as exc:
            log.info("consent token refused: %s", type(exc).__name__)
            self.refused(refusal_kind(exc), transaction=transaction, client=client)
            raise assertion_fault(exc) from None

    def refused(self, kind: RefusalKind, *, transaction: str, client: str | None) -> None:
        """Audit a request refused for its token (DESIGN §4 "Abuse")."""
        if self.audit is not None:
            self.audit.record(
                actor=self.actor, transaction=transaction, outcome=Outcome.REFUSED_TOKEN, who=ANONYMOUS, client=client, reason=kind
            )

    def guard(
        self,
        answer: Callable[[SoapRequest, GrantScope], Awaitable[tuple[SoapResponse, int, int]]],
        *,
        transaction: str,
    ) -> Handler:
        """A SOAP handler that verifies the token, lets ``answer`` reply within its scope (it
        returns the reply, the number of DocumentRequests and how many were withheld) and audits
        the outcome with the DocumentResponses returned; a refused token is audited by
        :meth:`verify` itself."""

        async def gated(request: SoapRequest) -> SoapResponse:
            verified = self.verify(request, transaction=transaction)
            reply, requested, withheld = await answer(request, verified.scope)
            self.audit_outcome(
                verified,
                transaction=transaction,
                client=client_address(request),
                requested=requested,
                returned=len(reply.body.findall(_DOCUMENT_RESPONSE)),
                withheld=withheld,
            )
            return reply

        return gated

    def audit_outcome(
        self,
        verified: VerifiedAssertion,
        *,
        transaction: str,
        client: str | None,
        requested: int,
        returned: int,
        withheld: int,
    ) -> None:
        """Audit a request with a valid token: permitted, partial (some of it outside the scope)
        or withheld-all (everything asked for outside it)."""
        if self.audit is None:
            return
        if not withheld:
            outcome = Outcome.PERMITTED
        elif withheld >= requested:
            outcome = Outcome.WITHHELD_ALL
        else:
            outcome = Outcome.PARTIAL
        self.audit.record(
            actor=self.actor,
            transaction=transaction,
            outcome=outcome,
            who=verified.grant_id,
            client=client,
            requested=requested,
            returned=returned,
            withheld=withheld,
        )


# -- answering the part outside the scope ------------------------------------------------------------
def retrieve_status(returned: int, errors: Sequence[RegistryError]) -> str:
    """ITI TF-2b §3.43.4.2.3 (RAD69-003): Success when everything asked for is returned,
    PartialSuccess when some of it is, Failure when none is."""
    if not returned:
        return ResponseStatus.FAILURE
    if any(e.is_error for e in errors):
        return ResponseStatus.PARTIAL_SUCCESS
    return ResponseStatus.SUCCESS


def merge_denied(
    reply: SoapResponse,
    denied: Sequence[RegistryError],
    *,
    order: Sequence[str],
    reword: Callable[[RegistryError], RegistryError] | None = None,
) -> SoapResponse:
    """``reply`` (an ``xds:RetrieveDocumentSetResponse``) with the ``denied`` errors added.

    ``reword`` may replace each of the reply's own errors (to word every "not available" the
    same way). An error the reply already holds is not repeated (a request-level finding both
    halves made); the errors are put in the order of the requested uniqueIds ``order``
    (request-level ones first), as the actor lists them, so the answer reads like one that was
    never split; the status is recomputed from the DocumentResponses the reply holds.
    """
    body = reply.body
    old = body.find(_REGISTRY_RESPONSE)
    if old is None:
        raise ValueError("the reply has no rs:RegistryResponse")
    errors = list(parse_registry_errors(old))
    if reword is not None:
        errors = [reword(e) for e in errors]
    errors.extend(e for e in denied if e not in errors)
    position = {uid: i for i, uid in reversed(list(enumerate(order)))}
    errors.sort(key=lambda e: position.get(e.location, -1))
    returned = len(body.findall(_DOCUMENT_RESPONSE))
    fresh = build_registry_response(errors, status=retrieve_status(returned, errors))
    body.replace(old, fresh)
    return replace(reply, body=body)


def gate_for_policy(
    access_policy: str,
    *,
    trusted_token_cert: Path | None,
    audience: str,
    clock: Callable[[], datetime] = utc_now,
    audit: AuditLog | None = None,
    actor: str = "",
) -> RetrievalGate | None:
    """The retrieval gate of the ``consent`` policy (None for ``open``), trusting the token
    certificate at ``trusted_token_cert``; a certificate that cannot be used is a SettingsError.
    ``audit`` (with ``actor``, this service's name in it) receives every gated decision."""
    if access_policy != "consent":
        return None
    if trusted_token_cert is None:
        raise SettingsError("trusted_token_cert: the consent policy needs the registry's token certificate")
    try:
        certificate = load_trusted_certificate(trusted_token_cert)
    except ValueError as exc:
        raise SettingsError(f"trusted_token_cert: {exc}") from None
    return RetrievalGate(certificate, audience=audience, clock=clock, audit=audit, actor=actor)


def check_access_policy(access_policy: str, *, trusted_token_cert: Path | None) -> None:
    """The settings rule of every service behind a retrieval gate (DESIGN §4: "open" or
    "consent"; consent needs the registry's token certificate); a SettingsError otherwise."""
    if access_policy not in ("open", "consent"):
        raise SettingsError(f"access_policy must be 'open' or 'consent', not {access_policy!r}")
    if access_policy == "consent" and trusted_token_cert is None:
        raise SettingsError("access_policy 'consent' needs trusted_token_cert (the registry's certificate, PEM)")


def consent_audit_path(access_policy: str, *, configured: Path | None, data_dir: Path, actor: str) -> Path | None:
    """Where a retrieval gate's audit goes: the configured file, else
    ``<data_dir>/audit/<actor>-consent.jsonl`` under the consent policy, else None."""
    if configured is not None:
        return configured
    return data_dir / "audit" / f"{actor}-consent.jsonl" if access_policy == "consent" else None
