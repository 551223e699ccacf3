"""The simulated peers of a Document Consumer / Imaging Document Consumer under test.

One HTTP server (uvicorn in a background thread, :mod:`xds.http.server`, so simple SOAP and
MTOM are both accepted) with four SOAP endpoints over the consumer test data:

* ``/registry``: a Document Registry answering ITI-18 (:class:`DataRegistry`);
* ``/repository``: a Document Repository answering ITI-43 (:class:`RepositoryResponder`);
* ``/imaging-source/1`` and ``/imaging-source/2``: two Imaging Document Sources answering
  RAD-69 (:class:`SourceResponder`), whose repositoryUniqueIds are the Retrieve Location UIDs
  of the test manifests;
* ``/wado/1`` and ``/wado/2``: the same two sources' RAD-55 WADO-URI endpoints.

Every POST, and every GET to a WADO endpoint, is recorded byte for byte (:class:`Recorder`),
also one the SOAP layer refuses.
Test steps wrap the consumer's command in :meth:`ConsumerPeers.observe` to get what arrived
meanwhile, and in the behaviour context managers to make a peer fail.

Public API::

    CONTEXT_KEY
    ConsumerPeers(*, host="127.0.0.1", port=0, assigning_authority=...)
        .start() .close() .url(name) .data .registry .repository .sources
        .observe() -> ContextManager[list[Exchange]]
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from starlette.routing import Route

from conformance_tests.data.consumer import REPOSITORY_ID, SOURCE_IDS, ConsumerTestData, consumer_test_data
from conformance_tests.data.ids import DEFAULT_ASSIGNING_AUTHORITY
from conformance_tests.evidence import Exchange
from conformance_tests.simulators.document_sources import RepositoryResponder, SourceResponder
from conformance_tests.simulators.hosting import HostedSimulator
from conformance_tests.simulators.recording import Recorder
from conformance_tests.simulators.registry_data import DataRegistry
from xds.http.server import SoapService, soap_app
from xds.vocabulary import Action

__all__ = ["CONTEXT_KEY", "PATHS", "ConsumerPeers"]

#: The key under which a run's context holds the peers.
CONTEXT_KEY: Final = "consumer-peers"
#: Peer name -> path of its endpoint.
PATHS: Final = {
    "registry": "/registry",
    "repository": "/repository",
    "source": "/imaging-source/1",
    "source2": "/imaging-source/2",
    "wado": "/wado/1",
    "wado2": "/wado/2",
}
_LABELS: Final = {
    PATHS["registry"]: "ITI-18 received by the registry simulator",
    PATHS["repository"]: "ITI-43 received by the repository simulator",
    PATHS["source"]: "RAD-69 received by imaging source simulator 1",
    PATHS["source2"]: "RAD-69 received by imaging source simulator 2",
    PATHS["wado"]: "RAD-55 received by imaging source simulator 1",
    PATHS["wado2"]: "RAD-55 received by imaging source simulator 2",
}


class ConsumerPeers(HostedSimulator):
    """The registry, repository and imaging source simulators on one port (module docs)."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, assigning_authority: str = DEFAULT_ASSIGNING_AUTHORITY
    ) -> None:
        self.host = host
        self.port = port
        self.data: ConsumerTestData = consumer_test_data(assigning_authority=assigning_authority)
        self.registry = DataRegistry(self.data)
        self.repository = RepositoryResponder(self.data, REPOSITORY_ID)
        self.sources = (SourceResponder(self.data, SOURCE_IDS[0]), SourceResponder(self.data, SOURCE_IDS[1]))
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._spool = Path(tempfile.mkdtemp(prefix="consumer-peers-"))
        services = [
            SoapService(path=PATHS["registry"], handlers={Action.ITI18: self.registry.handler},
                        name="Document Registry simulator (consumer test data)"),
            SoapService(path=PATHS["repository"], handlers={Action.ITI43: self.repository.handler},
                        name="Document Repository simulator (consumer test data)"),
            SoapService(path=PATHS["source"], handlers={Action.RAD69: self.sources[0].handler},
                        name="Imaging Document Source simulator 1"),
            SoapService(path=PATHS["source2"], handlers={Action.RAD69: self.sources[1].handler},
                        name="Imaging Document Source simulator 2"),
        ]  # fmt: skip
        wado = [
            Route(PATHS["wado"], self.sources[0].wado, methods=["GET"]),
            Route(PATHS["wado2"], self.sources[1].wado, methods=["GET"]),
        ]
        self._app = Recorder(
            soap_app(services=services, spool_dir=self._spool, extra_routes=wado),
            self._file,
            labels=_LABELS,
            get_paths=(PATHS["wado"], PATHS["wado2"]),
        )

    def url(self, name: str) -> str:
        """The endpoint URL of the peer ``name`` (``registry``, ``repository``, ``source``, ``source2``,
        ``wado``, ``wado2``)."""
        return self.base_url(PATHS[name])

    def _file(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    @contextmanager
    def observe(self) -> Iterator[list[Exchange]]:
        """The yielded list receives every exchange that arrived during the block."""
        with self._lock:
            first = len(self._exchanges)
        seen: list[Exchange] = []
        try:
            yield seen
        finally:
            with self._lock:
                seen += self._exchanges[first:]
