"""The consent policy at the Document Repository (DESIGN §4 "Gate"): one component wrapped
around the ITI-43 handler; the retrieve code itself knows nothing of consent.

The gate (:class:`xds.security.gate.RetrievalGate`) verifies the assertion locally and yields
its scope. Each ``xds:DocumentRequest`` whose DocumentUniqueId is not a manifest or report
uniqueId of the scope is taken out of the request before the handler sees it, so its document
is never looked up, and is answered exactly as a document this repository does not hold
(ITI TF-2b §3.43.4.1.3: ``XDSDocumentUniqueIdError``, location = the uniqueId, the same
codeContext): nobody learns whether it exists. The rest is retrieved as usual; a mix is
PartialSuccess (ITI TF-2b §3.43.4.2.3).

ITI-41 is not gated: its callers are the hospitals' document sources, not consumers.

Public API::

    ConsentRetrieve(gate, *, repository_id)
        .wrap(handler) -> handler
"""

from __future__ import annotations

import logging
from copy import deepcopy
from dataclasses import replace

from lxml import etree

from repository import iti43
from xds.errors import RegistryError
from xds.http.server import Handler, SoapRequest, SoapResponse
from xds.security.gate import RetrievalGate, merge_denied
from xds.security.saml import GrantScope
from xds.vocabulary import NS_XDS, Action
from xds.xml import qname

__all__ = ["ConsentRetrieve"]

log = logging.getLogger(__name__)

_DOCUMENT_REQUEST = qname(NS_XDS, "DocumentRequest")
_DOCUMENT_ID = qname(NS_XDS, "DocumentUniqueId")
#: The audit's name of the transaction (DESIGN §4 "Abuse").
TRANSACTION = "ITI-43"


def _uid(item: etree._Element) -> str:
    return (item.findtext(_DOCUMENT_ID) or "").strip()


class ConsentRetrieve:
    """ITI-43 behind the consent gate, for the repository ``repository_id``."""

    def __init__(self, gate: RetrievalGate, *, repository_id: str) -> None:
        self.gate = gate
        self.repository_id = repository_id

    @staticmethod
    def _outside(item: etree._Element, scope: GrantScope) -> bool:
        # An empty uniqueId is a request error the handler reports; it names no document.
        uid = _uid(item)
        return bool(uid) and not scope.permits_document(uid)

    def _split(self, body: etree._Element, scope: GrantScope) -> tuple[etree._Element, etree._Element] | None:
        """Copies of ``body`` with only the permitted and only the denied DocumentRequests, or
        None when nothing is denied."""
        if body.tag != iti43.REQUEST or not any(self._outside(i, scope) for i in body.iterfind(_DOCUMENT_REQUEST)):
            return None  # not a retrieve request (the handler answers its error), or all in scope
        permitted, denied = deepcopy(body), deepcopy(body)
        for item in permitted.findall(_DOCUMENT_REQUEST):
            if self._outside(item, scope):
                permitted.remove(item)
        for item in denied.findall(_DOCUMENT_REQUEST):
            if not self._outside(item, scope):
                denied.remove(item)
        return permitted, denied

    def _unheld_errors(self, body: etree._Element) -> list[RegistryError]:
        """The handler's errors for ``body`` if this repository held none of its documents."""
        requests, errors = iti43.parse_request(body)
        _, more = iti43.answer(requests, repository_id=self.repository_id, available={})
        return [*errors, *more]

    def wrap(self, handler: Handler) -> Handler:
        """``handler`` with the gate in front (see the module documentation)."""

        async def answer(request: SoapRequest, scope: GrantScope) -> tuple[SoapResponse, int, int]:
            """The reply, the number of DocumentRequests and how many of them were withheld."""
            body = request.body
            requested = len(body.findall(_DOCUMENT_REQUEST)) if body.tag == iti43.REQUEST else 0
            split = self._split(body, scope)
            if split is None:
                return await handler(request), requested, 0
            permitted, denied = split
            withheld = len(denied.findall(_DOCUMENT_REQUEST))
            log.info("ITI-43: %d requested document(s) outside the consent scope", withheld)
            if permitted.find(_DOCUMENT_REQUEST) is None:
                # Nothing to look up: the answer for a repository that holds none of them.
                errors = self._unheld_errors(body)
                # ITI TF-2b §3.43.5: the ITI-43 response is always MTOM.
                reply = SoapResponse(action=Action.ITI43_RESPONSE, body=iti43.build_response([], errors), mtom=True)
                return reply, requested, withheld
            reply = await handler(replace(request, envelope=replace(request.envelope, body=permitted)))
            order = [_uid(item) for item in body.iterfind(_DOCUMENT_REQUEST)]
            return merge_denied(reply, self._unheld_errors(denied), order=order), requested, withheld

        return self.gate.guard(answer, transaction=TRANSACTION)
