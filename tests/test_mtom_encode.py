"""The MTOM encoder (xds.soap.mtom_encode): headers per XOP and IHE, sources, content ids, and
the async body that gathers small parts per worker-thread hop."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from tests.support.mtom import ENVELOPE, decode, receive
from xds.soap.attachments import CHUNK_SIZE, Attachment, Spool
from xds.soap.mtom_decode import parse_content_type
from xds.soap.mtom_encode import COALESCE_BYTES, OutgoingPart, encode_mtom, new_content_id
from xds.vocabulary import Action


# -- encoder details ------------------------------------------------------------------------------
def test_encoder_headers_follow_xop_and_ihe() -> None:
    payload = encode_mtom(
        ENVELOPE,
        [("doc1@host", "text/xml", b"<doc/>")],
        action=Action.ITI41,
        boundary="MIMEBoundary_fixed",
        root_content_id="root.part@host",
    )
    ctype = parse_content_type(payload.content_type)
    assert ctype.media_type == "multipart/related"
    assert ctype.param("boundary") == "MIMEBoundary_fixed"
    assert ctype.param("type") == "application/xop+xml"
    assert ctype.param("start") == "<root.part@host>"
    assert ctype.param("start-info") == "application/soap+xml"
    assert ctype.param("action") == Action.ITI41
    wire = b"".join(payload)
    assert wire.startswith(
        b"--MIMEBoundary_fixed\r\n"
        b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
        b"Content-Transfer-Encoding: binary\r\n"
        b"Content-ID: <root.part@host>\r\n\r\n" + ENVELOPE + b"\r\n--MIMEBoundary_fixed\r\n"
        b"Content-Type: text/xml\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"Content-ID: <doc1@host>\r\n\r\n<doc/>\r\n"
    )
    assert wire.endswith(b"\r\n--MIMEBoundary_fixed--\r\n")


def test_encoder_without_attachments_and_with_quoted_boundary() -> None:
    payload = encode_mtom(ENVELOPE, boundary="a b")
    assert 'boundary="a b"' in payload.content_type
    assert decode(payload.content_type, b"".join(payload))[0][1] == ENVELOPE


def test_iterable_source_length_is_known_only_when_declared(tmp_path: Path) -> None:
    chunks = [b"ab", b"", b"cd"]
    unknown = encode_mtom(ENVELOPE, [OutgoingPart("a@x", "text/plain", iter(chunks))])
    assert unknown.length is None
    declared = encode_mtom(ENVELOPE, [OutgoingPart("a@x", "text/plain", iter(chunks), size=4)])
    assert declared.length == len(b"".join(declared))
    wrong = encode_mtom(ENVELOPE, [OutgoingPart("a@x", "text/plain", iter(chunks), size=5)])
    with pytest.raises(ValueError, match="announced"):
        b"".join(wrong)


def test_attachment_sources_keep_their_content_id(tmp_path: Path) -> None:
    attachment = Attachment.from_bytes(b"payload", content_id="kept@x", content_type="application/pdf")
    payload = encode_mtom(ENVELOPE, [attachment])
    with Spool(tmp_path / "s") as spool:
        message = receive(payload.content_type, [b"".join(payload)], spool)
        received = message.attachments["kept@x"]
        assert received.content_type == "application/pdf" and received.read_bytes() == b"payload"


@pytest.mark.parametrize("cid", ["", "<>", "a\r\nb", "a>b"])
def test_encoder_refuses_bad_content_ids(cid: str) -> None:
    with pytest.raises(ValueError):
        encode_mtom(ENVELOPE, [(cid, "text/plain", b"x")])


def test_encoder_refuses_duplicate_content_ids() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        encode_mtom(ENVELOPE, [("a@x", "text/plain", b"1"), ("<a@x>", "text/plain", b"2")])


def test_async_iteration_yields_the_same_bytes(tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(CHUNK_SIZE + 5))
    expected = b"".join(encode_mtom(ENVELOPE, [("a@x", "x/y", source)], boundary="q", root_content_id="r@x"))
    payload = encode_mtom(ENVELOPE, [("a@x", "x/y", source)], boundary="q", root_content_id="r@x")

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in payload])

    assert anyio.run(collect) == expected


def test_new_content_ids_are_unique() -> None:
    assert new_content_id() != new_content_id()


def test_async_body_gathers_small_parts_into_few_chunks_and_keeps_every_byte(tmp_path: Path) -> None:
    """Many small files (a RAD-69 study) reach the socket in about body/1 MiB chunks, not one
    or more per file, and the bytes are exactly the synchronous encoding's."""
    files = []
    for i in range(120):
        path = tmp_path / f"instance{i}.dcm"
        path.write_bytes(os.urandom(30_000 + i))
        files.append(OutgoingPart(f"part{i}@example.org", "application/dicom", path))
    expected = b"".join(encode_mtom(b"<root/>", files, boundary="b", root_content_id="root@example.org"))

    async def collect() -> list[bytes]:
        payload = encode_mtom(b"<root/>", files, boundary="b", root_content_id="root@example.org")
        return [chunk async for chunk in payload]

    chunks = anyio.run(collect)
    assert b"".join(chunks) == expected
    assert all(chunks)
    assert len(chunks) <= len(expected) // COALESCE_BYTES + 1 < len(files)


def test_payload_says_whether_producing_it_reads_files(tmp_path: Path) -> None:
    path = tmp_path / "part.bin"
    path.write_bytes(b"on disk")
    memory = encode_mtom(ENVELOPE, [OutgoingPart("a@x", "text/plain", b"in memory")])
    assert memory.in_memory and b"in memory" in b"".join(memory)
    assert encode_mtom(ENVELOPE).in_memory
    assert not encode_mtom(ENVELOPE, [OutgoingPart("b@x", "text/plain", path)]).in_memory
    assert not encode_mtom(ENVELOPE, [OutgoingPart("c@x", "text/plain", iter([b"x"]), size=1)]).in_memory
