"""A Document Repository simulator for testing an Imaging Document Source (RAD-68 / ITI-41).

The source under test is configured to send its Provide and Register (Imaging) Document Set-b
requests to :attr:`RepositorySimulator.url`. The simulator is a real SOAP 1.2 HTTP server
(uvicorn in a background thread, through :mod:`xds.http.server`, so MTOM and simple SOAP are both
accepted) and:

* records every HTTP request it receives, byte for byte, through the shared
  :class:`~conformance_tests.simulators.recording.Recorder` (also one its SOAP layer refuses:
  SOAP 1.1, no wsa:Action, broken MIME), so the plan judges what the source really sent;
* answers RAD-68 / ITI-41 like a repository whose registry accepted the submission: an
  ``rs:RegistryResponse`` with status Success (ITI TF-2b §3.41.4.2; RAD TF-3 §4.68.4.2), in the
  packaging of the request (xds-notes §1.4);
* keeps the documents of every accepted request (:class:`StoredDocument`: the bytes of the
  ``xds:Document`` with that id, and the DocumentEntry's mimeType and uniqueId).

Test steps reach the simulator through the run context (:data:`CONTEXT_KEY`); they read
:attr:`RepositorySimulator.exchanges` (what arrived, in order) and wait with
:meth:`RepositorySimulator.wait_for`.

Public API::

    CONTEXT_KEY, PATH, REPOSITORY_ID
    RepositorySimulator(*, host="127.0.0.1", port=0, repository_id=REPOSITORY_ID)
        .start() .close() .url .exchanges .documents .wait_for(predicate, timeout=...)
    StoredDocument(entry_id, unique_id, mime_type, data)
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from lxml import etree

from conformance_tests.evidence import Exchange
from conformance_tests.simulators.hosting import HostedSimulator
from conformance_tests.simulators.recording import Recorder
from xds.http.server import SoapRequest, SoapResponse, SoapService, soap_app
from xds.vocabulary import NS_LCM, NS_RIM, NS_RS, NS_XDS, Action, IdScheme, ResponseStatus

__all__ = ["CONTEXT_KEY", "PATH", "REPOSITORY_ID", "RepositorySimulator", "StoredDocument"]

#: The key under which a run's context holds the simulator.
CONTEXT_KEY: Final = "repository-simulator"
PATH: Final = "/repository"
#: The simulator's repositoryUniqueId (ISO/IEC 9834-8: an OID under 2.25 from a fixed UUID).
REPOSITORY_ID: Final = f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, 'imageshare.conformance.repository-simulator').int}"
_LABEL: Final = "RAD-68 received by the repository simulator"
_POLL: Final = 0.1
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """One document the simulator accepted."""

    entry_id: str
    unique_id: str
    mime_type: str
    data: bytes


def _unique_id(entry: etree._Element) -> str:
    for identifier in entry.iterfind(f"{{{NS_RIM}}}ExternalIdentifier"):
        if identifier.get("identificationScheme") == IdScheme.DE_UNIQUE_ID:
            return (identifier.get("value") or "").strip()
    return ""


class RepositorySimulator(HostedSimulator):
    """The simulated Document Repository (see the module documentation)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, repository_id: str = REPOSITORY_ID) -> None:
        self.host = host
        self.port = port
        self.repository_id = repository_id
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._documents: list[StoredDocument] = []
        self._spool = Path(tempfile.mkdtemp(prefix="repository-sim-"))
        service = SoapService(path=PATH, handlers={Action.ITI41: self._provide}, name="Document Repository simulator")
        self._app = Recorder(
            soap_app(services=[service], spool_dir=self._spool), self._file, labels={PATH: _LABEL}, default_label=_LABEL
        )

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The RAD-68 / ITI-41 endpoint to configure in the source under test."""
        return self.base_url(PATH)

    # -- what arrived ----------------------------------------------------------------------------
    @property
    def exchanges(self) -> list[Exchange]:
        """Every request received so far, in order of arrival."""
        with self._lock:
            return list(self._exchanges)

    @property
    def documents(self) -> list[StoredDocument]:
        """Every document of every accepted request, in order of arrival."""
        with self._lock:
            return list(self._documents)

    def wait_for(
        self, found: Callable[[list[Exchange]], T | None], *, timeout: float, sleep: Callable[[float], None] = time.sleep
    ) -> T | None:
        """Call ``found`` on the received exchanges until it returns something, for at most
        ``timeout`` seconds; what it returned last (None when nothing came)."""
        deadline = time.monotonic() + timeout
        while True:
            result = found(self.exchanges)
            if result is not None or time.monotonic() >= deadline:
                return result
            sleep(_POLL)

    def _file(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    # -- handler ---------------------------------------------------------------------------------
    async def _provide(self, request: SoapRequest) -> SoapResponse:
        """ITI-41 / RAD-68 (ITI TF-2b §3.41.4.1.3): keep each xds:Document with its entry's
        mimeType and uniqueId, answer Success. Judging is the plan's job, not the simulator's."""
        entries = {
            e.get("id", ""): e
            for e in request.body.iterfind(
                f"{{{NS_LCM}}}SubmitObjectsRequest/{{{NS_RIM}}}RegistryObjectList/{{{NS_RIM}}}ExtrinsicObject"
            )
        }
        kept: list[StoredDocument] = []
        for document in request.body.iterfind(f"{{{NS_XDS}}}Document"):
            entry_id = document.get("id", "")
            entry = entries.get(entry_id)
            # An unresolvable part raises SoapFault (env:Sender), as a repository answers it.
            data = request.binary(document).read_bytes()
            mime = entry.get("mimeType", "") if entry is not None else ""
            unique_id = _unique_id(entry) if entry is not None else ""
            kept.append(StoredDocument(entry_id, unique_id, mime, data))
        with self._lock:
            self._documents += kept
        response = etree.Element(f"{{{NS_RS}}}RegistryResponse", nsmap={"rs": NS_RS}, status=ResponseStatus.SUCCESS)
        # ITI TF-2x V.3.2: the response action; packaging as the request (xds-notes §1.4).
        return SoapResponse(action=Action.ITI41_RESPONSE, body=response)
