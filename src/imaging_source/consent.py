"""The consent policy at the Edge Server (DESIGN §4 "Gate"): one component wrapped around the
RAD-69 handler and one around the WADO-URI endpoint; the retrieve code knows nothing of consent.

RAD-69: the gate (:class:`xds.security.gate.RetrievalGate`) verifies the assertion in the
``wsse:Security`` header locally and yields its scope. Every ``xdsi:StudyRequest`` whose
studyInstanceUID is not a study of the scope is taken out of the request before the handler
sees it, so none of its instances is looked up, and each of its DocumentRequests is answered
exactly as an instance this source does not hold (RAD TF-3 §4.69.4.2.3, ITI TF-2b
§3.43.4.1.3: ``XDSDocumentUniqueIdError``, location = the SOP Instance UID, the same
codeContext): nobody learns whether it exists. The rest is retrieved as usual; a mix is
PartialSuccess (RAD69-003). Every other ``XDSDocumentUniqueIdError`` of the answer is worded as
for an unknown instance too: "not in study X" for an instance of another study named under a
study in scope would otherwise tell that it exists.

WADO-URI (RAD-55) is plain HTTP GET and has no SOAP header, so the assertion travels in the
``Authorization`` header as ``SAML <base64 of the saml:Assertion XML>`` (the token endpoint's
answer, base64-encoded). Without one, or with one that does not verify, the answer is
401 with ``WWW-Authenticate: SAML`` (RFC 9110 §11.6.1); an object of a study outside the
scope answers the 404 of an unknown object.

Public API::

    ConsentRad69(gate, *, source_id)
        .wrap(handler) -> handler
    ConsentWado(endpoint, gate)          # an ASGI app wrapping WadoEndpoint
    AUTH_SCHEME = "SAML"
"""

from __future__ import annotations

import base64
import binascii
import logging
from copy import deepcopy
from dataclasses import replace
from typing import Final

from lxml import etree
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imaging_source import rad69
from imaging_source.wado import NOT_FOUND_REASON, WadoError, parse_wado_query
from xds.errors import ErrorCode, RegistryError
from xds.http.server import Handler, SoapRequest, SoapResponse
from xds.security.audit import RefusalKind
from xds.security.gate import RetrievalGate, merge_denied
from xds.security.saml import GrantScope, VerifiedAssertion
from xds.soap.fault import SoapFault
from xds.vocabulary import NS_XDS, NS_XDSI, Action
from xds.xml import parse_xml, qname

__all__ = ["AUTH_SCHEME", "ConsentRad69", "ConsentWado"]

log = logging.getLogger(__name__)

AUTH_SCHEME: Final = "SAML"
#: Largest Authorization header value accepted (an assertion with a few hundred UIDs).
MAX_AUTHORIZATION_BYTES: Final = 256 << 10
_STUDY = qname(NS_XDSI, "StudyRequest")
_DOCUMENT_REQUEST = qname(NS_XDS, "DocumentRequest")
_DOCUMENT_ID = qname(NS_XDS, "DocumentUniqueId")
#: The audit's names of the transactions (DESIGN §4 "Abuse").
RAD69_TRANSACTION: Final = "RAD-69"
WADO_TRANSACTION: Final = "RAD-55"


def _study_uid(study: etree._Element) -> str:
    return (study.get("studyInstanceUID") or "").strip()


def _outside(study: etree._Element, scope: GrantScope) -> bool:
    # An empty studyInstanceUID is a request error the handler reports (NIST 4811 cases 05-07).
    uid = _study_uid(study)
    return bool(uid) and uid not in scope.study_instance_uids


def _as_unknown(error: RegistryError) -> RegistryError:
    # An instance asked for under a study in scope that lives in another study is "not in study
    # X" to the handler (NIST 4811 case 03); with a scope that would tell that it exists, so
    # every XDSDocumentUniqueIdError reads as an unknown instance.
    if error.code == ErrorCode.DOCUMENT_UNIQUE_ID_ERROR and error.location:
        return rad69.unknown_instance_error(error.location)
    return error


class ConsentRad69:
    """RAD-69 behind the consent gate, for the Imaging Document Source ``source_id``."""

    def __init__(self, gate: RetrievalGate, *, source_id: str) -> None:
        self.gate = gate
        self.source_id = source_id

    @staticmethod
    def _split(body: etree._Element, scope: GrantScope) -> tuple[etree._Element, etree._Element] | None:
        """Copies of ``body`` with only the permitted and only the denied StudyRequests, or None
        when nothing is denied."""
        if body.tag != rad69.REQUEST or not any(_outside(s, scope) for s in body.iterfind(_STUDY)):
            return None
        permitted, denied = deepcopy(body), deepcopy(body)
        for study in permitted.findall(_STUDY):
            if _outside(study, scope):
                permitted.remove(study)
        for study in denied.findall(_STUDY):
            if not _outside(study, scope):
                denied.remove(study)
        return permitted, denied

    def _unheld(self, body: etree._Element) -> tuple[rad69.Rad69Request, list[RegistryError]]:
        """The handler's errors for ``body`` if this source held none of its instances."""
        parsed, errors = rad69.parse_request(body)
        _, more = rad69.plan(
            parsed, source_id=self.source_id, instances={}, choose=lambda _ts, _requested: None, new_content_id=str
        )
        return parsed, [*errors, *more]

    def wrap(self, handler: Handler) -> Handler:
        """``handler`` with the gate in front (see the module documentation)."""

        async def answer(request: SoapRequest, scope: GrantScope) -> tuple[SoapResponse, int, int]:
            """The reply, the number of DocumentRequests and how many of them were withheld."""
            body = request.body
            order = [(d.findtext(_DOCUMENT_ID) or "").strip() for d in body.iter(_DOCUMENT_REQUEST)]
            requested = len(order) if body.tag == rad69.REQUEST else 0
            split = self._split(body, scope)
            if split is None:
                return merge_denied(await handler(request), [], order=order, reword=_as_unknown), requested, 0
            permitted, denied = split
            withheld = sum(1 for _ in denied.iter(_DOCUMENT_REQUEST))
            if permitted.find(_STUDY) is None:
                # Nothing to look up: the answer of a source that holds none of these instances.
                _, errors = self._unheld(body)
                log.info("RAD-69: every requested study is outside the consent scope")
                # RAD TF-3 §4.69.4.2: the response is MTOM.
                reply = SoapResponse(action=Action.RAD69_RESPONSE, body=rad69.build_response([], errors), mtom=True)
                return reply, requested, withheld
            reply = await handler(replace(request, envelope=replace(request.envelope, body=permitted)))
            _, refused = self._unheld(denied)
            log.info("RAD-69: %d requested study(ies) outside the consent scope", len(denied.findall(_STUDY)))
            return merge_denied(reply, refused, order=order, reword=_as_unknown), requested, withheld

        return self.gate.guard(answer, transaction=RAD69_TRANSACTION)


def _assertion_from_header(value: str) -> etree._Element | None:
    """The assertion of an ``Authorization: SAML <base64>`` value, or None when malformed."""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != AUTH_SCHEME.lower() or not token.strip() or len(token) > MAX_AUTHORIZATION_BYTES:
        return None
    try:
        data = base64.b64decode(token.strip(), validate=True)
        return parse_xml(data)
    except (binascii.Error, ValueError):  # XmlError is a ValueError
        return None


class ConsentWado:
    """The WADO-URI endpoint behind the consent gate (see the module documentation)."""

    def __init__(self, endpoint: ASGIApp, gate: RetrievalGate) -> None:
        self.endpoint = endpoint
        self.gate = gate

    @staticmethod
    def _unauthorized(reason: str) -> Response:
        # RFC 9110 §15.5.2 / §11.6.1: 401 names the scheme that would be accepted.
        return PlainTextResponse(reason + "\n", status_code=401, headers={"www-authenticate": f'{AUTH_SCHEME} realm="xds"'})

    def _check(self, request: Request) -> tuple[Response | None, VerifiedAssertion | None]:
        """(None, the verified assertion) when the request may go on to the endpoint, else
        (the refusal to send, the assertion when it verified). A refused token is audited here."""
        client = request.client.host if request.client else None
        header = request.headers.get("authorization")
        if header is None:
            self.gate.refused(RefusalKind.NO_TOKEN, transaction=WADO_TRANSACTION, client=client)
            return self._unauthorized("this service requires the consent token: Authorization: SAML <base64 assertion>"), None
        assertion = _assertion_from_header(header)
        if assertion is None:
            self.gate.refused(RefusalKind.MALFORMED_HEADER, transaction=WADO_TRANSACTION, client=client)
            return self._unauthorized("the Authorization header is not SAML <base64 of a SAML assertion>"), None
        try:
            verified = self.gate.verify_assertion(assertion, transaction=WADO_TRANSACTION, client=client)
        except SoapFault as fault:
            return self._unauthorized(fault.reason), None
        try:
            query = parse_wado_query(request.query_params)
        except WadoError:
            return None, verified  # the endpoint answers the malformed request (it names no object)
        if query.study_uid not in verified.scope.study_instance_uids:
            # The answer of an unknown object (no existence leak).
            return PlainTextResponse(NOT_FOUND_REASON + "\n", status_code=404), verified
        return None, verified

    def _audit(self, request: Request, verified: VerifiedAssertion, *, returned: int, withheld: int) -> None:
        self.gate.audit_outcome(
            verified,
            transaction=WADO_TRANSACTION,
            client=request.client.host if request.client else None,
            requested=1,
            returned=returned,
            withheld=withheld,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if request.method not in ("GET", "HEAD"):
            await self.endpoint(scope, receive, send)
            return
        refusal, verified = self._check(request)
        if refusal is not None:
            if verified is not None:
                self._audit(request, verified, returned=0, withheld=1)
            await refusal(scope, receive, send)
            return
        assert verified is not None
        audited: list[bool] = []

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start" and not audited:
                # Audited before the answer leaves, so a client that has it finds the record.
                # returned: the object goes out (2xx); a 404 of an unknown object in scope is not withheld.
                audited.append(True)
                self._audit(request, verified, returned=int(200 <= int(message["status"]) < 300), withheld=0)
            await send(message)

        try:
            await self.endpoint(scope, receive, watched)
        finally:
            if not audited:  # the endpoint failed before answering
                self._audit(request, verified, returned=0, withheld=0)
