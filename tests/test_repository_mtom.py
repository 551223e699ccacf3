"""ITI-41 MTOM packages written byte by byte, the way other senders write them (xds-notes §1.4):
percent-encoded ``cid:`` references, no ``start`` parameter, parts out of order, base64 and 8bit
transfer encodings, CRLF and bare-LF line ends, Content-IDs without brackets. Each is accepted
and the stored document is exactly the bytes sent; broken packages get a SOAP fault and store
nothing."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests.support import factory as f
from tests.support.repository import DOCUMENT, PNR, Live, live_pair, with_content
from xds.metadata.ebrim import encode_submit_objects_request
from xds.metadata.responses import parse_registry_response
from xds.soap.envelope import build_request, parse_envelope_bytes
from xds.vocabulary import NS_XDS, NS_XOP, Action, ResponseStatus

# Bytes a careless MIME layer would damage: leading/trailing CR LF, a fake boundary, NULs.
AWKWARD = b"\r\n--MIMEBoundary\r\n\x00\x01" + os.urandom(150_000) + b"\r\n--\r\n"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    with live_pair(tmp_path, f"sqlite:///{tmp_path / 'repository.sqlite'}") as running:
        yield running


@dataclass
class Package:
    body: bytes
    content_type: str


def _envelope(sub, href: str) -> bytes:  # type: ignore[no-untyped-def]
    root = etree.Element(PNR, nsmap={"xds": NS_XDS})
    root.append(encode_submit_objects_request(sub))
    document = etree.SubElement(root, DOCUMENT, id=sub.document_entries[0].id)
    etree.SubElement(document, f"{{{NS_XOP}}}Include", nsmap={"xop": NS_XOP}, href=href)
    return build_request(root, action=Action.ITI41, to="http://repository.example/repository")


def _package(
    envelope: bytes,
    payload: bytes,
    *,
    doc_cid_header: str = "<doc1@sender.example>",
    transfer_encoding: str = "binary",
    with_start: bool = True,
    root_first: bool = True,
    eol: bytes = b"\r\n",
) -> Package:
    boundary = "MIMEBoundary_7f3a"
    encoded = payload
    if transfer_encoding == "base64":
        text = base64.b64encode(payload)
        encoded = eol.join(text[i : i + 76] for i in range(0, len(text), 76))
    root = (
        b"Content-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"" + eol
        + b"Content-Transfer-Encoding: binary" + eol
        + b"Content-ID: <root.message@sender.example>" + eol + eol
        + envelope
    )  # fmt: skip
    doc = (
        b"Content-Type: application/octet-stream" + eol
        + f"Content-Transfer-Encoding: {transfer_encoding}".encode() + eol
        + f"Content-ID: {doc_cid_header}".encode() + eol + eol
        + encoded
    )  # fmt: skip
    parts = [root, doc] if root_first else [doc, root]
    dash = b"--" + boundary.encode()
    body = b"preamble to ignore" + eol
    for part in parts:
        body += dash + eol + part + eol
    body += dash + b"--" + eol + b"epilogue to ignore"
    content_type = f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; start-info="application/soap+xml"'
    if with_start:
        content_type += '; start="<root.message@sender.example>"'
    return Package(body, content_type)


def _post(live: Live, package: Package) -> httpx.Response:
    return httpx.post(live.url, content=package.body, headers={"content-type": package.content_type}, timeout=30)


def _new_submission(live: Live, payload: bytes):  # type: ignore[no-untyped-def]
    sub = f.submission(live.feed(f.patient_id()))
    with_content(sub.document_entries[0], payload)
    return sub


CASES = {
    "percent-encoded cid": dict(href="cid:doc1%40sender.example"),
    "plain cid": dict(href="cid:doc1@sender.example"),
    "no start parameter": dict(with_start=False),
    "parts out of order": dict(root_first=False),
    "base64 transfer encoding": dict(transfer_encoding="base64"),
    "8bit transfer encoding": dict(transfer_encoding="8bit"),
    "bare LF line ends": dict(eol=b"\n"),
    "base64 with bare LF": dict(transfer_encoding="base64", eol=b"\n"),
    "Content-ID without brackets": dict(doc_cid_header="doc1@sender.example"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_tolerated_packaging(live: Live, case: str) -> None:
    options = dict(CASES[case])
    href = str(options.pop("href", "cid:doc1%40sender.example"))
    sub = _new_submission(live, AWKWARD)
    package = _package(_envelope(sub, href), AWKWARD, **options)  # type: ignore[arg-type]
    response = _post(live, package)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("multipart/related"), "answered in MTOM, like the request"
    status = parse_registry_response(_reply_body(response)).status
    assert status == ResponseStatus.SUCCESS
    uid = sub.document_entries[0].unique_id
    _, docs = live.retrieve([(live.repository_id, uid)])
    assert hashlib.sha256(docs[uid][1]).digest() == hashlib.sha256(AWKWARD).digest()


def _reply_body(response: httpx.Response) -> etree._Element:
    from xds.soap.attachments import Spool
    from xds.soap.mtom import MtomReceiver

    with Spool() as spool:
        receiver = MtomReceiver(response.headers["content-type"], sink_factory=spool.sink)
        receiver.feed(response.content)
        envelope = parse_envelope_bytes(receiver.close().root, require_action=False)
    assert envelope.body is not None
    return envelope.body


@pytest.mark.parametrize(
    "damage",
    ["no closing boundary", "unknown cid", "bad base64"],
)
def test_broken_packages_get_a_fault_and_store_nothing(live: Live, damage: str) -> None:
    sub = _new_submission(live, AWKWARD)
    href = "cid:someone-else@sender.example" if damage == "unknown cid" else "cid:doc1%40sender.example"
    package = _package(_envelope(sub, href), AWKWARD, transfer_encoding="base64" if damage == "bad base64" else "binary")
    body = package.body
    if damage == "no closing boundary":
        body = body[: body.rindex(b"--MIMEBoundary_7f3a--")]
    elif damage == "bad base64":
        body = body.replace(b"Content-Transfer-Encoding: base64\r\nContent-ID: <doc1@sender.example>\r\n\r\n", b"Content-Transfer-Encoding: base64\r\nContent-ID: <doc1@sender.example>\r\n\r\n!!!!")
    response = httpx.post(live.url, content=body, headers={"content-type": package.content_type}, timeout=30)
    assert response.status_code == 400
    assert b"Fault" in response.content
    assert live.store_files() == []
    assert live.registered([sub.document_entries[0].unique_id]) == []
    assert list((live.store_dir / "spool").rglob("xds-part-*")) == []
