"""Fixtures and helpers for the Document Repository tests: its index on both databases, a live
registry + repository pair over loopback HTTP, ITI-41 / ITI-43 request builders, XSD checks."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from sqlalchemy import text

from tests.support.paths import CODES_XML, REPO, SCHEMAS
from xds.http.client import SoapClient, SoapReply
from xds.http.server import ServerThread
from xds.metadata.ebrim import decode_registry_object_list, encode_submit_objects_request
from xds.metadata.model import DocumentEntry, Submission
from xds.metadata.responses import parse_adhoc_query_response, parse_registry_response
from xds.query import StoredQueryId, build_adhoc_query
from xds.soap.mtom import XOP_INCLUDE, xop_include
from xds.soap.mtom_encode import OutgoingPart
from xds.vocabulary import NS_RS, NS_XDS, Action
from xds.xml import qname

REPOSITORY_ID = "1.3.6.1.4.1.21367.13.40.216"
PNR = qname(NS_XDS, "ProvideAndRegisterDocumentSetRequest")
DOCUMENT = qname(NS_XDS, "Document")
REGISTRY_RESPONSE = qname(NS_RS, "RegistryResponse")


# -- databases --------------------------------------------------------------------------------------
def _truncate_repository(url: str) -> None:
    from repository.db import make_engine, upgrade
    from repository.schema import metadata

    engine = make_engine(url)
    upgrade(engine)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def repository_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A repository index URL with an up-to-date, empty schema, on each of the two databases."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'repository.sqlite'}"
        return
    url = request.getfixturevalue("pg_database")
    _truncate_repository(url)
    yield url


# -- schemas ----------------------------------------------------------------------------------------
class Schemas:
    """The ebRS and IHE XSDs of ../shared/schemas, compiled once."""

    def __init__(self, root: Path = SCHEMAS) -> None:
        self.rs = etree.XMLSchema(etree.parse(str(root / "schema" / "ebRS" / "rs.xsd")))
        self.repository = etree.XMLSchema(etree.parse(str(root / "schema" / "IHE" / "XDS.b_DocumentRepository.xsd")))

    def check_registry_response(self, element: etree._Element) -> None:
        assert self.rs.validate(element), self.rs.error_log

    def check_retrieve_response(self, element: etree._Element, reply: SoapReply) -> None:
        """Validate the XOP infoset: each xop:Include replaced by the base64 of its part."""
        copy = etree.fromstring(etree.tostring(element))
        for doc, source in zip(copy.iter(DOCUMENT), element.iter(DOCUMENT), strict=True):
            include = doc.find(XOP_INCLUDE)
            if include is not None:
                # base64Binary validity does not depend on the length: the first MiB stands in.
                data = next(reply.binary(source).iter_chunks(), b"")
                doc.remove(include)
                doc.text = base64.b64encode(data).decode()
        assert self.repository.validate(copy), self.repository.error_log


# -- ITI-41 / ITI-43 requests -----------------------------------------------------------------------
def pnr_body(sub: Submission, contents: Mapping[str, bytes], *, inline: bool = False) -> tuple[etree._Element, list[OutgoingPart]]:
    """A ProvideAndRegisterDocumentSetRequest for ``sub``; ``contents`` maps a DocumentEntry id
    (or any xds:Document id) to its bytes. With ``inline`` the bytes go in as base64 text."""
    root = etree.Element(PNR, nsmap={"xds": NS_XDS})
    root.append(encode_submit_objects_request(sub))
    parts: list[OutgoingPart] = []
    for index, (doc_id, data) in enumerate(contents.items()):
        element = etree.SubElement(root, DOCUMENT, id=doc_id)
        if inline:
            element.text = base64.b64encode(data).decode()
        else:
            cid = f"doc{index}.{os.getpid()}@test.example"
            element.append(xop_include(cid))
            parts.append(OutgoingPart(cid, "application/octet-stream", data))
    return root, parts


def with_content(entry: DocumentEntry, data: bytes, *, hash_and_size: bool = True) -> bytes:
    """Set (or clear) the entry's hash and size for ``data``; returns ``data``."""
    entry.hash = hashlib.sha1(data).hexdigest() if hash_and_size else None
    entry.size = str(len(data)) if hash_and_size else None
    return data


def retrieve_body(items: Sequence[tuple[str, str] | tuple[str, str, str]]) -> etree._Element:
    """A RetrieveDocumentSetRequest for (repositoryId, documentId[, homeCommunityId]) items."""
    from consumer.iti43 import DocumentRequest, build_request

    return build_request([DocumentRequest(i[1], i[0], i[2] if len(i) > 2 else None) for i in items])  # type: ignore[misc]


@dataclass
class Outcome:
    status: str
    codes: list[str]
    body: etree._Element
    is_mtom: bool
    errors: list = field(default_factory=list)  # type: ignore[type-arg]


# -- a live registry + repository -------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Live:
    """A registry and a repository over loopback HTTP, with helpers to drive them."""

    def __init__(self, *, registry_url: str, registry_db: str, repository_url: str, store_dir: Path, repository_db: str) -> None:
        self.registry_url = registry_url
        self.registry_db = registry_db
        self.url = repository_url
        self.store_dir = store_dir
        self.repository_db = repository_db
        self.repository_id = REPOSITORY_ID
        self.client = SoapClient(repository_url, timeout=60)
        self.registry = SoapClient(registry_url, timeout=60)
        self.schemas = Schemas()

    def close(self) -> None:
        self.client.close()
        self.registry.close()

    def feed(self, pid: str) -> str:
        from registry.patients import Patient
        from registry.store.db import make_engine
        from registry.store.patients import PatientStore

        engine = make_engine(self.registry_db)
        try:
            PatientStore(engine).add_or_update(Patient(patient_id=pid))
        finally:
            engine.dispose()
        return pid

    def submit(self, sub: Submission, contents: Mapping[str, bytes], *, inline: bool = False) -> Outcome:
        body, parts = pnr_body(sub, contents, inline=inline)
        with self.client.call(Action.ITI41, body, attachments=parts, mtom=not inline) as reply:
            assert reply.action == Action.ITI41_RESPONSE
            self.schemas.check_registry_response(reply.body)
            parsed = parse_registry_response(reply.body)
            return Outcome(parsed.status, [e.code_text for e in parsed.errors], reply.body, reply.is_mtom, list(parsed.errors))

    def retrieve(self, items: Sequence[tuple[str, ...]]) -> tuple[Outcome, dict[str, tuple[str, bytes]]]:
        """ITI-43; returns the outcome and uniqueId -> (mimeType, bytes)."""
        with self.client.call(Action.ITI43, retrieve_body(items), mtom=True) as reply:  # type: ignore[arg-type]
            assert reply.action == Action.ITI43_RESPONSE
            assert reply.is_mtom, "ITI-43 responses are always MTOM"
            self.schemas.check_retrieve_response(reply.body, reply)
            status_element = reply.body.find(REGISTRY_RESPONSE)
            parsed = parse_registry_response(status_element)
            documents: dict[str, tuple[str, bytes]] = {}
            for item in reply.body.iterfind(qname(NS_XDS, "DocumentResponse")):
                uid = item.findtext(qname(NS_XDS, "DocumentUniqueId"))
                mime = item.findtext(qname(NS_XDS, "mimeType"))
                data = reply.binary(item.find(DOCUMENT)).read_bytes(max_bytes=256 << 20)
                documents[uid] = (mime, data)
            outcome = Outcome(parsed.status, [e.code_text for e in parsed.errors], reply.body, True, list(parsed.errors))
            return outcome, documents

    def registered(self, unique_ids: Sequence[str]) -> list[DocumentEntry]:
        """The registry's DocumentEntries for these uniqueIds (ITI-18 GetDocuments)."""
        request = build_adhoc_query(StoredQueryId.GET_DOCUMENTS, {"$XDSDocumentEntryUniqueId": list(unique_ids)})
        with self.registry.call(Action.ITI18, request) as reply:
            parsed = parse_adhoc_query_response(reply.body)
        if parsed.object_list is None:
            return []
        return decode_registry_object_list(parsed.object_list).submission.document_entries

    def patient_entries(self, pid: str) -> list[DocumentEntry]:
        request = build_adhoc_query(
            StoredQueryId.FIND_DOCUMENTS,
            {
                "$XDSDocumentEntryPatientId": pid,
                "$XDSDocumentEntryStatus": [
                    "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
                    "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated",
                ],
            },
        )
        with self.registry.call(Action.ITI18, request) as reply:
            parsed = parse_adhoc_query_response(reply.body)
        if parsed.object_list is None:
            return []
        return decode_registry_object_list(parsed.object_list).submission.document_entries

    def store_files(self) -> list[Path]:
        return sorted(p for p in (self.store_dir / "objects").rglob("*") if p.is_file())

    def index_counts(self) -> dict[str, int]:
        from repository.db import make_engine
        from repository.store import DocumentStore

        engine = make_engine(self.repository_db)
        try:
            return DocumentStore(self.store_dir, engine).counts()
        finally:
            engine.dispose()


def registry_app(tmp_path: Path, *, registry_db: str | None = None):  # type: ignore[no-untyped-def]
    """The real registry (SQLite under ``tmp_path``), checking codes against the shared affinity
    domain when it is there."""
    from registry.app import build_registry_app
    from registry.config import RegistrySettings

    db = registry_db or f"sqlite:///{tmp_path / 'registry.sqlite'}"
    codes = CODES_XML if CODES_XML.is_file() else None
    settings = RegistrySettings(db=db, data_dir=tmp_path / "registry", mllp_port=0, codes=codes)
    return build_registry_app(settings), db


def repository_settings(tmp_path: Path, *, registry_url: str, repository_db: str, **changes: object):  # type: ignore[no-untyped-def]
    from repository.config import RepositorySettings

    values: dict[str, object] = {
        "registry": registry_url,
        "repository_id": REPOSITORY_ID,
        "store": tmp_path / "store",
        "db": repository_db,
        "data_dir": tmp_path / "repository",
        "registry_timeout": 10.0,
    }
    values.update(changes)
    return RepositorySettings(**values)  # type: ignore[arg-type]


@contextmanager
def live_pair(
    tmp_path: Path,
    repository_db: str,
    *,
    registry_url: str | None = None,
    wrap: Callable[[Any], Any] | None = None,
    **changes: object,
) -> Iterator[Live]:
    """A registry (SQLite) and a repository (index on ``repository_db``) in server threads.

    With ``registry_url`` the repository talks to that URL instead (a stopped or fake registry);
    the registry still runs, for the helpers. ``wrap`` takes the repository's ASGI app and
    returns the one to serve (to change its surroundings in a test).
    """
    from repository.app import build_repository_app

    app, registry_db = registry_app(tmp_path)
    with ServerThread(app) as registry:
        target = registry_url or registry.url + "/registry"
        settings = repository_settings(tmp_path, registry_url=target, repository_db=repository_db, **changes)
        repository_app = build_repository_app(settings)
        with ServerThread(wrap(repository_app) if wrap is not None else repository_app) as repository:
            live = Live(
                registry_url=registry.url + "/registry",
                registry_db=registry_db,
                repository_url=repository.url + "/repository",
                store_dir=tmp_path / "store",
                repository_db=repository_db,
            )
            try:
                yield live
            finally:
                live.close()


# -- the repository as a subprocess ---------------------------------------------------------------
class RepositoryProcess:
    """``python -m repository serve`` in a child process (for RSS and SIGKILL tests)."""

    def __init__(self, *, registry_url: str, repository_db: str, store: Path, data_dir: Path, port: int | None = None, extra: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/repository"
        self.args = [
            sys.executable, "-m", "repository", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--registry", registry_url, "--repository-id", REPOSITORY_ID,
            "--store", str(store), "--db", repository_db, "--data-dir", str(data_dir),
            *extra,
        ]  # fmt: skip
        self.log = data_dir / f"repository-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 30.0, env: Mapping[str, str] | None = None) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"repository exited with {self.process.returncode}: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"repository did not start: {self.log.read_text()[-3000:]}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def peak_rss_kib(self) -> int:
        """VmHWM of the server process, in KiB (Linux)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("VmHWM not found")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
