"""A document over 2 GiB through the repository and back, with the server in its own process and
its peak memory read from /proc: the body streams both ways, so memory does not grow with the
document. The test process never holds the document either (generated on the fly, hashed as it
comes back)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests.support import factory as f
from tests.support.repository import DOCUMENT, PNR, RepositoryProcess, registry_app, retrieve_body
from xds.http.server import ServerThread
from xds.metadata.ebrim import encode_submit_objects_request
from xds.metadata.responses import parse_registry_response
from xds.soap.attachments import Attachment
from xds.soap.envelope import build_request, parse_envelope_bytes
from xds.soap.mtom import MtomReceiver
from xds.vocabulary import NS_XDS, NS_XOP, Action, ResponseStatus

SIZE = (2 << 30) + 12_345  # past 2^31: no 32-bit size anywhere
CHUNK = 1 << 20
HEAD = b"%PDF-1.7 this document starts with bytes and ends with bytes; the rest is a hole"
TAIL = b"%%EOF and the last bytes"
PEAK_RSS_LIMIT = 200 * 10**6  # bytes


def _document_chunks() -> Iterator[bytes]:
    """The document: a head, zeros (what a sparse file reads as), a tail."""
    zeros = bytes(CHUNK)
    yield HEAD
    remaining = SIZE - len(HEAD) - len(TAIL)
    while remaining:
        n = min(CHUNK, remaining)
        yield zeros if n == CHUNK else bytes(n)
        remaining -= n
    yield TAIL


def _expected_digest() -> str:
    sha1 = hashlib.sha1()
    for chunk in _document_chunks():
        sha1.update(chunk)
    return sha1.hexdigest()


class _HashSink:
    """An attachment sink that only hashes and counts (nothing is kept)."""

    def __init__(self) -> None:
        self.sha1 = hashlib.sha1()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.sha1.update(data)
        self.size += len(data)

    def close(self) -> Attachment:
        return Attachment.from_bytes(f"{self.size} {self.sha1.hexdigest()}".encode(), content_id="", content_type="")

    def abort(self) -> None:
        pass


@pytest.mark.slow
def test_two_gigabyte_document_round_trip_in_bounded_memory(tmp_path: Path) -> None:
    expected_sha1 = _expected_digest()
    app, registry_db = registry_app(tmp_path)
    store = tmp_path / "store"
    with ServerThread(app) as registry:
        from registry.patients import Patient
        from registry.store.db import make_engine
        from registry.store.patients import PatientStore

        pid = f.patient_id()
        engine = make_engine(registry_db)
        PatientStore(engine).add_or_update(Patient(patient_id=pid))
        engine.dispose()

        server = RepositoryProcess(
            registry_url=registry.url + "/registry",
            repository_db=f"sqlite:///{tmp_path / 'repository.sqlite'}",
            store=store,
            data_dir=tmp_path / "data",
        )
        server.start()
        try:
            sub = f.submission(pid)
            de = sub.document_entries[0]
            de.mime_type = "application/pdf"
            de.hash = de.size = None  # computed by the repository while it spools
            root = etree.Element(PNR, nsmap={"xds": NS_XDS})
            root.append(encode_submit_objects_request(sub))
            document = etree.SubElement(root, DOCUMENT, id=de.id)
            etree.SubElement(document, f"{{{NS_XOP}}}Include", nsmap={"xop": NS_XOP}, href="cid:big%40test")
            envelope = build_request(root, action=Action.ITI41, to=server.url)
            head = (
                b"--B\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\n"
                b"Content-ID: <root@test>\r\n\r\n" + envelope
                + b"\r\n--B\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: binary\r\n"
                b"Content-ID: <big@test>\r\n\r\n"
            )  # fmt: skip
            tail = b"\r\n--B--\r\n"

            def body() -> Iterator[bytes]:
                yield head
                yield from _document_chunks()
                yield tail

            headers = {
                "content-type": 'multipart/related; boundary=B; type="application/xop+xml"; start="<root@test>"; '
                'start-info="application/soap+xml"',
                "content-length": str(len(head) + SIZE + len(tail)),
            }
            with httpx.Client(timeout=300) as client:
                response = client.post(server.url, content=body(), headers=headers)
                assert response.status_code == 200, response.text[:2000]
                with_reply = MtomReceiver(response.headers["content-type"], sink_factory=lambda cid, ct: _HashSink())
                with_reply.feed(response.content)
                reply = parse_envelope_bytes(with_reply.close().root, require_action=False)
                assert reply.body is not None
                assert parse_registry_response(reply.body).status == ResponseStatus.SUCCESS

                sinks: list[_HashSink] = []

                def sink(cid: str, ctype: str) -> _HashSink:
                    sinks.append(_HashSink())
                    return sinks[-1]

                request = build_request(retrieve_body([("1.3.6.1.4.1.21367.13.40.216", de.unique_id)]), action=Action.ITI43)
                with client.stream(
                    "POST", server.url, content=request, headers={"content-type": "application/soap+xml"}
                ) as retrieved:
                    assert retrieved.status_code == 200
                    receiver = MtomReceiver(retrieved.headers["content-type"], sink_factory=sink)
                    for chunk in retrieved.iter_raw(CHUNK):
                        receiver.feed(chunk)
                    message = receiver.close()
            answer = parse_envelope_bytes(message.root, require_action=False)
            assert answer.body is not None
            assert answer.body.find(f"{{{NS_XDS}}}DocumentResponse/{{{NS_XDS}}}mimeType").text == "application/pdf"
            [document_sink] = sinks
            assert (document_sink.size, document_sink.sha1.hexdigest()) == (SIZE, expected_sha1)

            peak = server.peak_rss_kib() * 1024
            assert peak < PEAK_RSS_LIMIT, f"server peak RSS {peak / 1e6:.0f} MB"
        finally:
            server.stop()
            shutil.rmtree(store, ignore_errors=True)
