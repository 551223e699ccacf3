"""A Document Registry simulator for testing a Document Repository (ITI-41 -> ITI-42).

A repository under test is configured to send its Register Document Set-b (ITI-42) requests to
:attr:`RegistrySimulator.url`. The simulator is a real SOAP 1.2 HTTP server (uvicorn in a
background thread, through :mod:`xds.http.server`, so simple SOAP and MTOM are both accepted)
and:

* records every HTTP request it receives, byte for byte, as an
  :class:`~conformance_tests.evidence.Exchange` (even one it faults, e.g. SOAP 1.1), and every
  ITI-42 it could parse as a :class:`Registration` (the ``lcm:SubmitObjectsRequest``, its
  packaging and, when schemas are given, its XSD findings);
* answers ITI-42 with ``Success`` by default, or, inside :meth:`RegistrySimulator.refusing`,
  with ``Failure`` and the RegistryErrors it was given (which the repository must relay);
* is unreachable inside :meth:`RegistrySimulator.stopped` (the listening socket is closed and
  reopened on the same port afterwards), so the repository meets a registry that is down;
* answers ITI-18 GetDocuments by uniqueId from the registrations it accepted, for a repository
  that asks the registry what it holds after an ITI-42 whose outcome it did not learn.

Test steps reach the simulator through the run context (:data:`CONTEXT_KEY`) and wrap their
request in :meth:`RegistrySimulator.observe` to learn what the repository sent meanwhile.

Public API::

    RegistrySimulator(*, host="127.0.0.1", port=0, schemas=None)   # .start() .stop() .url
    RegistrySimulator.observe() -> ContextManager[Observation]
    RegistrySimulator.refusing(*errors: tuple[code, context]) -> ContextManager[None]
    RegistrySimulator.stopped() -> ContextManager[None]
    Registration(action, message_id, mtom, content_type, request, schema_errors, answered)
    Observation(registrations, exchanges)
"""

from __future__ import annotations

import copy
import re
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from lxml import etree

from conformance_tests.evidence import Exchange
from conformance_tests.schemas import SchemaSet
from conformance_tests.simulators.hosting import HostedSimulator
from conformance_tests.simulators.recording import Recorder
from xds.http.server import SoapRequest, SoapResponse, SoapService, soap_app
from xds.vocabulary import NS_LCM, NS_QUERY, NS_RIM, NS_RS, Action, IdScheme, ResponseStatus, Severity

__all__ = ["CONTEXT_KEY", "PATH", "Observation", "Registration", "RegistrySimulator"]

#: The key under which a run's context holds the simulator.
CONTEXT_KEY: Final = "registry-simulator"
PATH: Final = "/registry"
_GET_DOCUMENTS: Final = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"


@dataclass(frozen=True, slots=True, eq=False)
class Registration:
    """One ITI-42 request the simulator parsed, and how it answered."""

    action: str
    message_id: str | None
    mtom: bool
    content_type: str
    request: etree._Element  # the lcm:SubmitObjectsRequest (or whatever the body held), a copy
    schema_errors: tuple[str, ...]
    answered: str  # the ResponseStatusType sent back

    def document_entries(self) -> list[etree._Element]:
        """The rim:ExtrinsicObjects (DocumentEntries) of the submission."""
        return list(self.request.iterfind(f"{{{NS_RIM}}}RegistryObjectList/{{{NS_RIM}}}ExtrinsicObject"))


@dataclass(slots=True)
class Observation:
    """What reached the simulator during an :meth:`RegistrySimulator.observe` block."""

    registrations: list[Registration] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Refusal:
    errors: tuple[tuple[str, str], ...]


def _iti18_label(body: bytes) -> str | None:
    return "ITI-18 received by the registry simulator" if Action.ITI18.encode() in body else None


def _registry_response(status: str, errors: Sequence[tuple[str, str]] = ()) -> etree._Element:
    """An rs:RegistryResponse (ITI TF-3 §4.2.4.1) with Error-severity RegistryErrors."""
    response = etree.Element(f"{{{NS_RS}}}RegistryResponse", nsmap={"rs": NS_RS}, status=status)
    if errors:
        listing = etree.SubElement(response, f"{{{NS_RS}}}RegistryErrorList", highestSeverity=Severity.ERROR)
        for code, context in errors:
            etree.SubElement(
                listing,
                f"{{{NS_RS}}}RegistryError",
                errorCode=code,
                codeContext=context,
                location="",
                severity=Severity.ERROR,
            )
    return response


def _unique_id(entry: etree._Element) -> str | None:
    for identifier in entry.iterfind(f"{{{NS_RIM}}}ExternalIdentifier"):
        if identifier.get("identificationScheme") == IdScheme.DE_UNIQUE_ID:
            return (identifier.get("value") or "").strip()
    return None


def _query_unique_ids(request: etree._Element) -> list[str] | None:
    """The $XDSDocumentEntryUniqueId values of a GetDocuments query, or None for another query."""
    query = request.find(f"{{{NS_RIM}}}AdhocQuery")
    if query is None or query.get("id") != _GET_DOCUMENTS:
        return None
    values: list[str] = []
    for slot in query.iterfind(f"{{{NS_RIM}}}Slot"):
        if slot.get("name") == "$XDSDocumentEntryUniqueId":
            for value in slot.iterfind(f"{{{NS_RIM}}}ValueList/{{{NS_RIM}}}Value"):
                # ITI TF-2a §3.18.4.1.2.3.5: a list value is ('a','b').
                values += re.findall(r"'((?:[^']|'')*)'", value.text or "")
    return [v.replace("''", "'") for v in values]


class RegistrySimulator(HostedSimulator):
    """The simulated Document Registry (see the module documentation)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, schemas: SchemaSet | None = None) -> None:
        self.host = host
        self.port = port
        self.schemas = schemas
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._registrations: list[Registration] = []
        self._refusal: _Refusal | None = None
        self._spool = Path(tempfile.mkdtemp(prefix="registry-sim-"))
        service = SoapService(
            path=PATH,
            handlers={Action.ITI42: self._register, Action.ITI18: self._query},
            name="Document Registry simulator",
        )
        self._app = Recorder(
            soap_app(services=[service], spool_dir=self._spool),
            self._file_exchange,
            labels={},
            default_label="ITI-42 received by the registry simulator",
            label_body=_iti18_label,
        )

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The ITI-42 endpoint to configure in the repository under test."""
        return self.base_url(PATH)

    # -- behaviour -------------------------------------------------------------------------------
    @contextmanager
    def refusing(self, *errors: tuple[str, str]) -> Iterator[None]:
        """Within the block, answer every ITI-42 with Failure and these (errorCode, codeContext)."""
        with self._lock:
            self._refusal = _Refusal(tuple(errors))
        try:
            yield
        finally:
            with self._lock:
                self._refusal = None

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """Within the block, nothing listens on the simulator's port (a registry that is down)."""
        was_running = self.running
        self.stop()
        try:
            yield
        finally:
            if was_running:
                self.start()

    @contextmanager
    def observe(self) -> Iterator[Observation]:
        """Collect what arrives during the block into the yielded :class:`Observation`."""
        with self._lock:
            first_exchange, first_registration = len(self._exchanges), len(self._registrations)
        observation = Observation()
        try:
            yield observation
        finally:
            with self._lock:
                observation.exchanges += self._exchanges[first_exchange:]
                observation.registrations += self._registrations[first_registration:]

    @property
    def registrations(self) -> list[Registration]:
        with self._lock:
            return list(self._registrations)

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def _file_exchange(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    # -- handlers --------------------------------------------------------------------------------
    async def _register(self, request: SoapRequest) -> SoapResponse:
        """ITI-42 (ITI TF-2b §3.42.4.2): Success, or the Failure the current case asked for."""
        body = copy.deepcopy(request.body)
        findings: tuple[str, ...] = ()
        if self.schemas is not None:
            findings = tuple(self.schemas.validate(body))
        with self._lock:
            refusal = self._refusal
        status = ResponseStatus.FAILURE if refusal is not None else ResponseStatus.SUCCESS
        registration = Registration(
            action=request.action,
            message_id=request.message_id,
            mtom=request.is_mtom,
            content_type=request.http_headers.get("content-type", ""),
            request=body,
            schema_errors=findings,
            answered=status,
        )
        with self._lock:
            self._registrations.append(registration)
        response = _registry_response(status, refusal.errors if refusal is not None else ())
        # ITI TF-2x V.3.2: the response action; packaging as the request (simple SOAP for ITI-42).
        return SoapResponse(action=Action.ITI42_RESPONSE, body=response)

    async def _query(self, request: SoapRequest) -> SoapResponse:
        """ITI-18 GetDocuments by uniqueId over the accepted registrations (ITI TF-2a
        §3.18.4.1.2.3.7.5); any other stored query is XDSUnknownStoredQuery."""
        wanted = _query_unique_ids(request.body)
        response = etree.Element(f"{{{NS_QUERY}}}AdhocQueryResponse", nsmap={"query": NS_QUERY, "rim": NS_RIM})
        if wanted is None:
            response.set("status", ResponseStatus.FAILURE)
            refusal = _registry_response(
                ResponseStatus.FAILURE, [("XDSUnknownStoredQuery", "the simulator answers GetDocuments by uniqueId only")]
            )
            response.extend(list(refusal))  # the RegistryErrorList
            etree.SubElement(response, f"{{{NS_RIM}}}RegistryObjectList")
            return SoapResponse(action=Action.ITI18_RESPONSE, body=response)
        response.set("status", ResponseStatus.SUCCESS)
        objects = etree.SubElement(response, f"{{{NS_RIM}}}RegistryObjectList")
        for registration in self.registrations:
            accepted = registration.answered == ResponseStatus.SUCCESS
            if not accepted or registration.request.tag != f"{{{NS_LCM}}}SubmitObjectsRequest":
                continue
            for entry in registration.document_entries():
                if _unique_id(entry) in wanted:
                    objects.append(copy.deepcopy(entry))
        return SoapResponse(action=Action.ITI18_RESPONSE, body=response)
