"""MTOM/XOP: the streaming multipart decoder, the receiver, attachments, XOP resolution, encoder."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from xds.soap.attachments import CHUNK_SIZE, Attachment, Spool
from xds.soap.envelope import build_request, parse_envelope_bytes
from xds.soap.fault import FaultCode, SoapFault
from xds.soap.mtom import (
    MtomReceiver,
    binary_content,
    feed_async,
    resolve_xop,
    xop_include,
)
from xds.soap.mtom_decode import (
    MessageEnd,
    MessageTooLarge,
    MimeError,
    MultipartDecoder,
    PartData,
    PartHeaders,
    normalize_content_id,
    parse_content_type,
)
from xds.soap.mtom_encode import OutgoingPart, cid_href, encode_mtom
from xds.vocabulary import NS_XDS, NS_XMIME, Action

from tests.support.mtom import ENVELOPE, decode, receive, split


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool", memory_threshold=1024) as s:
        yield s


def spool_files(spool: Spool) -> list[Path]:
    """The files in the spool's directory (made on the first sink: none before)."""
    return sorted(spool.directory.iterdir()) if spool.directory.exists() else []


# -- Content-Type and Content-ID ------------------------------------------------------------------
def test_parse_content_type_with_quoted_parameters() -> None:
    ctype = parse_content_type(
        'Multipart/Related; boundary="a b;c\\"d"; TYPE="application/xop+xml";start="<root@x>" ;'
        ' start-info="application/soap+xml"; action=urn:x'
    )
    assert ctype.media_type == "multipart/related"
    assert ctype.param("boundary") == 'a b;c"d'
    assert ctype.param("type") == "application/xop+xml"
    assert ctype.param("start") == "<root@x>"
    assert ctype.param("start-info") == "application/soap+xml"
    assert ctype.param("action") == "urn:x"
    assert ctype.param("missing") is None


@pytest.mark.parametrize("value", ["", "multipart", "/x", "a b/c", ";boundary=x"])
def test_parse_content_type_refuses_non_media_types(value: str) -> None:
    with pytest.raises(MimeError):
        parse_content_type(value)


@pytest.mark.parametrize(
    "value",
    [
        "<doc1@host>",
        "doc1@host",
        " <doc1@host> ",
        "cid:doc1@host",
        "cid:doc1%40host",
        "CID:doc1%40host",
        "<doc1%40host>",
    ],
)
def test_content_ids_normalize_to_one_form(value: str) -> None:
    assert normalize_content_id(value) == "doc1@host"


def test_cid_href_escapes_and_round_trips() -> None:
    cid = "a b/c%d@host"
    href = cid_href(f"<{cid}>")
    assert href.startswith("cid:") and " " not in href and "/" not in href
    assert normalize_content_id(href) == cid


# -- decoder: hand-written fixtures ----------------------------------------------------------------
ROOT_XML = b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body/></soap:Envelope>'


def test_decodes_a_typical_mtom_package_with_preamble_and_epilogue() -> None:
    body = (
        b"This is the preamble; it is ignored.\r\n"
        b"--MIMEBoundary_x\r\n"
        b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
        b"Content-Transfer-Encoding: binary\r\n"
        b"Content-ID: <root.part@host>\r\n"
        b"\r\n" + ROOT_XML + b"\r\n"
        b"--MIMEBoundary_x\r\n"
        b"Content-Type: application/dicom\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"Content-ID: <doc1@host>\r\n"
        b"\r\n"
        b"\r\n\r\nDICM\x00\x01\r\n"  # content starting and ending with CR/LF
        b"\r\n--MIMEBoundary_x--\r\n"
        b"epilogue, ignored\r\n--MIMEBoundary_x\r\nnot a part\r\n"
    )
    parts = decode('multipart/related; boundary=MIMEBoundary_x; start="<root.part@host>"', body)
    assert [p[0].content_id for p in parts] == ["root.part@host", "doc1@host"]
    assert parts[0][1] == ROOT_XML
    assert parts[1][1] == b"\r\n\r\nDICM\x00\x01\r\n"
    assert parts[1][0].content_type == "application/dicom"
    assert parts[1][0].transfer_encoding == "binary"
    assert parts[1][0].get("CONTENT-ID") == "<doc1@host>"


def test_boundary_at_the_very_start_without_preamble() -> None:
    body = b"--b\r\nContent-ID: <a>\r\n\r\nA\r\n--b--"
    assert decode("multipart/related; boundary=b", body)[0][1] == b"A"


def test_bare_lf_line_endings_are_tolerated() -> None:
    body = (
        b"--b\nContent-ID: <a>\nContent-Type: text/plain\n\nline1\nline2\n--b\nContent-ID: <c>\n\nC\n--b--\n"
    )
    parts = decode("multipart/related; boundary=b", body)
    assert [(p[0].content_id, p[1]) for p in parts] == [("a", b"line1\nline2"), ("c", b"C")]
    assert parts[0][0].content_type == "text/plain"


def test_transport_padding_after_boundaries() -> None:
    body = b"--b \t \r\nContent-ID: <a>\r\n\r\nA\r\n--b  \r\nContent-ID: <c>\r\n\r\nC\r\n--b--  \r\n"
    parts = decode("multipart/related; boundary=b", body)
    assert [p[1] for p in parts] == [b"A", b"C"]


def test_boundary_with_every_allowed_character() -> None:
    boundary = "'()+_,-./:=? 0aZ"  # RFC 2046 bchars, space not last
    body = f"--{boundary}\r\nContent-ID: <a>\r\n\r\nA\r\n--{boundary}--\r\n".encode()
    assert decode(f'multipart/related; boundary="{boundary}"', body)[0][1] == b"A"


def test_text_that_only_starts_like_a_delimiter_is_content() -> None:
    content = b"x\r\n--bb\r\n--b-\r\n--bX\r\n--b\r"
    body = b"--b\r\nContent-ID: <a>\r\n\r\n" + content + b"\r\n--b--"
    assert decode("multipart/related; boundary=b", body)[0][1] == content


def test_folded_headers_are_unfolded() -> None:
    body = (
        b"--b\r\nContent-Type: application/xop+xml;\r\n\tcharset=UTF-8;\r\n"
        b' type="application/soap+xml"\r\nContent-ID: <a>\r\n\r\nA\r\n--b--'
    )
    headers = decode("multipart/related; boundary=b", body)[0][0]
    assert headers.content_type == 'application/xop+xml; charset=UTF-8; type="application/soap+xml"'


def test_part_without_headers() -> None:
    body = b"--b\r\n\r\nA\r\n--b--"
    headers, content = decode("multipart/related; boundary=b", body)[0]
    assert headers.headers == () and headers.content_id is None and content == b"A"
    assert headers.content_type == "application/octet-stream"


@pytest.mark.parametrize("encoding", ["binary", "8bit", "7bit", "BINARY"])
def test_identity_transfer_encodings(encoding: str) -> None:
    body = f"--b\r\nContent-Transfer-Encoding: {encoding}\r\n\r\nA\xe9\r\n--b--".encode("latin-1")
    assert decode("multipart/related; boundary=b", body)[0][1] == "A\xe9".encode("latin-1")


def test_base64_transfer_encoding_is_decoded_across_any_chunking() -> None:
    payload = os.urandom(3000) + b"\r\n--b"
    encoded = base64.encodebytes(payload)  # 76-character lines
    body = b"--b\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <a>\r\n\r\n" + encoded + b"\r\n--b--\r\n"
    for size in (1, 3, 7, 64, 1000):
        chunks = (body[i : i + size] for i in range(0, len(body), size))
        assert decode("multipart/related; boundary=b", body, chunks)[0][1] == payload


def test_invalid_base64_is_a_mime_error() -> None:
    body = b"--b\r\nContent-Transfer-Encoding: base64\r\n\r\nA*B=\r\n--b--"
    with pytest.raises(MimeError, match="base64"):
        decode("multipart/related; boundary=b", body)


def test_truncated_base64_is_a_mime_error() -> None:
    body = b"--b\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\nQQ\r\n--b--"
    with pytest.raises(MimeError, match="incomplete"):
        decode("multipart/related; boundary=b", body)


def test_unsupported_transfer_encoding_is_a_mime_error() -> None:
    body = b"--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nA\r\n--b--"
    with pytest.raises(MimeError, match="quoted-printable"):
        decode("multipart/related; boundary=b", body)


# -- decoder: malformed packages -----------------------------------------------------------------
def test_missing_closing_boundary_fails_at_close() -> None:
    decoder = MultipartDecoder("multipart/related; boundary=b")
    events = decoder.feed(b"--b\r\nContent-ID: <a>\r\n\r\nA lot of data")
    assert any(isinstance(e, PartHeaders) for e in events)
    with pytest.raises(MimeError, match="closing boundary"):
        decoder.close()


def test_body_without_any_boundary_fails_at_close() -> None:
    decoder = MultipartDecoder("multipart/related; boundary=b")
    assert decoder.feed(b"<soap:Envelope/>" * 100) == []
    with pytest.raises(MimeError, match="no multipart boundary"):
        decoder.close()


@pytest.mark.parametrize(
    "value",
    [
        "multipart/related",
        'multipart/related; boundary=""',
        "application/soap+xml; boundary=b",
        "multipart/related; boundary=" + "x" * 300,
    ],
)
def test_unusable_content_types_fail_at_construction(value: str) -> None:
    with pytest.raises(MimeError):
        MultipartDecoder(value)


def test_header_block_too_long_is_refused_without_waiting_for_its_end() -> None:
    decoder = MultipartDecoder("multipart/related; boundary=b", max_header_bytes=1024)
    decoder.feed(b"--b\r\n")
    with pytest.raises(MimeError, match="headers longer"):
        for _ in range(100):
            decoder.feed(b"X-Filler: " + b"a" * 100 + b"\r\n")


def test_malformed_header_line_is_refused() -> None:
    with pytest.raises(MimeError, match="malformed"):
        decode("multipart/related; boundary=b", b"--b\r\nno colon here\r\n\r\nA\r\n--b--")


def test_too_many_parts_are_refused() -> None:
    body = b"".join(b"--b\r\n\r\nA\r\n" for _ in range(5)) + b"--b--"
    decoder = MultipartDecoder("multipart/related; boundary=b", max_parts=3)
    with pytest.raises(MimeError, match="more than 3"):
        decoder.feed(body)


def test_boundary_line_with_endless_padding_is_refused() -> None:
    decoder = MultipartDecoder("multipart/related; boundary=b")
    with pytest.raises(MimeError, match="boundary line"):
        decoder.feed(b"--b" + b" " * 5000)


def test_feeding_after_the_end_is_ignored() -> None:
    decoder = MultipartDecoder("multipart/related; boundary=b")
    events = decoder.feed(b"--b\r\n\r\nA\r\n--b--")
    assert isinstance(events[-1], MessageEnd) and decoder.done
    assert decoder.feed(b"--b\r\n\r\nmore\r\n--b--") == []
    assert decoder.close() == []


def test_a_large_part_streams_out_while_it_arrives() -> None:
    # Memory stays bounded: the content of an unfinished part is passed on as it arrives,
    # apart from at most a boundary-length tail.
    decoder = MultipartDecoder("multipart/related; boundary=MIMEBoundary_0123456789")
    decoder.feed(b"--MIMEBoundary_0123456789\r\nContent-ID: <a>\r\n\r\n")
    block = b"\r\n-" + os.urandom(CHUNK_SIZE - 4) + b"\r\n-"
    emitted = 0
    for count in range(1, 21):
        emitted += sum(len(e.data) for e in decoder.feed(block) if isinstance(e, PartData))
        assert count * len(block) - emitted <= len(b"\r\n--MIMEBoundary_0123456789")


def test_a_chunk_that_cannot_hold_a_delimiter_is_passed_on_without_a_copy() -> None:
    decoder = MultipartDecoder("multipart/related; boundary=b")
    decoder.feed(b"--b\r\nContent-ID: <a>\r\n\r\n")
    chunk = b"x" * 100_000
    events = decoder.feed(chunk)
    assert len(events) == 1 and events[0].data is chunk


# -- encoder + decoder round trips ---------------------------------------------------------------
TRICKY = st.sampled_from(
    [
        b"\r\n",
        b"\r",
        b"\n",
        b"--",
        b"\r\n--",
        b"\r\n--MIMEBoundary_",
        b"--MIMEBoundary_",
        b"\r\n\r\n",
        b"\x00",
        b"-",
    ]
)
CONTENT = st.lists(st.one_of(st.binary(max_size=300), TRICKY), max_size=12).map(b"".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    contents=st.lists(CONTENT, min_size=0, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=25),
    threshold=st.sampled_from([0, 64, 1 << 20]),
)
def test_round_trip_arbitrary_content_any_chunking(
    contents: list[bytes], cuts: list[int], threshold: int, tmp_path: Path
) -> None:
    parts = [OutgoingPart(f"part{i}@test", "application/octet-stream", c) for i, c in enumerate(contents)]
    payload = encode_mtom(ENVELOPE, parts, action=Action.ITI43)
    wire = b"".join(payload)
    assert payload.length == len(wire)
    with Spool(tmp_path / "s", memory_threshold=threshold) as spool:
        message = receive(payload.content_type, list(split(wire, cuts)), spool)
        assert message.root == ENVELOPE
        assert message.action == Action.ITI43
        assert sorted(message.attachments) == sorted(p.content_id for p in parts)
        for part, content in zip(parts, contents, strict=True):
            attachment = message.attachments[part.content_id]
            assert attachment.read_bytes() == content
            assert attachment.size == len(content)
            assert attachment.sha1_hex == hashlib.sha1(content).hexdigest()
            assert attachment.sha256_hex == hashlib.sha256(content).hexdigest()
    assert list((tmp_path / "s").glob("*")) == []  # (no directory at all when nothing spilled)


NEAR_MISSES = (
    st.lists(st.sampled_from([b"\r", b"\n", b"-", b"b", b"x", b"\r\n-", b"\r\n--", b"--b"]), max_size=40)
    .map(b"".join)
    .filter(lambda c: b"\n--b" not in c)  # RFC 2046: the sender's boundary never occurs in content
)


@settings(max_examples=200, deadline=None)
@given(
    contents=st.lists(NEAR_MISSES, min_size=1, max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=30),
)
def test_round_trip_one_letter_boundary_with_near_misses(contents: list[bytes], cuts: list[int]) -> None:
    payload = encode_mtom(b"<r/>", [(f"p{i}", "x/y", c) for i, c in enumerate(contents)], boundary="b")
    wire = b"".join(payload)
    parts = decode(payload.content_type, wire, split(wire, cuts))
    assert [p[1] for p in parts] == [b"<r/>", *contents]


@settings(max_examples=60, deadline=None)
@given(content=CONTENT, cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=20))
def test_round_trip_base64_parts_any_chunking(content: bytes, cuts: list[int]) -> None:
    encoded = base64.encodebytes(content).replace(b"\n", b"\r\n")
    body = (
        b"--MIMEBoundary_q\r\nContent-ID: <r>\r\n\r\n<x/>\r\n--MIMEBoundary_q\r\n"
        b"Content-Transfer-Encoding: base64\r\nContent-ID: <d>\r\n\r\n"
        + encoded
        + b"\r\n--MIMEBoundary_q--\r\n"
    )
    parts = decode("multipart/related; boundary=MIMEBoundary_q", body, split(body, cuts))
    assert parts[1][1] == content


def test_large_file_part_round_trip_through_spool_files(tmp_path: Path) -> None:
    source = tmp_path / "study.bin"
    data = os.urandom(3 * CHUNK_SIZE + 12345)
    source.write_bytes(data)
    payload = encode_mtom(ENVELOPE, [OutgoingPart("img@x", "application/dicom", source)])
    chunk_sizes = []
    with Spool(tmp_path / "s") as spool:
        receiver = MtomReceiver(payload.content_type, sink_factory=spool.sink)
        for chunk in payload:
            chunk_sizes.append(len(chunk))
            receiver.feed(chunk)
        attachment = receiver.close().attachments["img@x"]
        assert attachment.path is not None and attachment.path.parent == tmp_path / "s"
        assert attachment.sha1_hex == hashlib.sha1(data).hexdigest()
        assert b"".join(attachment.iter_chunks()) == data
        assert max(len(c) for c in attachment.iter_chunks()) == CHUNK_SIZE
    # The file went out in 1 MiB reads, not as one buffer.
    assert max(chunk_sizes) <= CHUNK_SIZE + 2048
    assert sum(chunk_sizes) == payload.length
    assert not attachment.path.exists()


# -- receiver ----------------------------------------------------------------------------------------
def package(*parts: tuple[str | None, bytes], boundary: str = "B") -> bytes:
    out = b""
    for cid, content in parts:
        head = f"Content-ID: {cid}\r\n" if cid is not None else ""
        out += f"--{boundary}\r\n{head}\r\n".encode() + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def test_root_defaults_to_the_first_part_when_start_is_absent(spool: Spool) -> None:
    message = receive("multipart/related; boundary=B", [package(("<r@x>", ROOT_XML), ("<a@x>", b"A"))], spool)
    assert message.root == ROOT_XML and message.root_content_id == "r@x"
    assert list(message.attachments) == ["a@x"]


def test_parts_in_any_order_with_start(spool: Spool) -> None:
    wire = package(("<a@x>", b"A"), ("b@x", b"B"), ("<r@x>", ROOT_XML))
    message = receive('multipart/related; boundary=B; start="<r@x>"', [wire], spool)
    assert message.root == ROOT_XML
    assert {k: v.read_bytes() for k, v in message.attachments.items()} == {"a@x": b"A", "b@x": b"B"}


def test_start_without_brackets_and_percent_encoding_matches(spool: Spool) -> None:
    wire = package(("<a@x>", b"A"), ("<r@x>", ROOT_XML))
    assert receive("multipart/related; boundary=B; start=r%40x", [wire], spool).root == ROOT_XML


def test_start_naming_no_part_is_an_error(spool: Spool) -> None:
    with pytest.raises(MimeError, match="start"):
        receive('multipart/related; boundary=B; start="<nope>"', [package(("<r@x>", ROOT_XML))], spool)


def test_duplicate_content_ids_are_an_error(spool: Spool) -> None:
    wire = package(("<r@x>", ROOT_XML), ("<a@x>", b"A"), ("<a@x>", b"A2"))
    with pytest.raises(MimeError, match="duplicate"):
        receive("multipart/related; boundary=B", [wire], spool)


def test_parts_without_content_id_are_dropped(spool: Spool) -> None:
    wire = package(("<r@x>", ROOT_XML), (None, b"orphan" * 1000), ("<a@x>", b"A"))
    message = receive("multipart/related; boundary=B", [wire], spool)
    assert list(message.attachments) == ["a@x"]


def test_root_part_over_the_limit_is_too_large(spool: Spool) -> None:
    wire = package(("<r@x>", b"<x>" + b"a" * 5000 + b"</x>"))
    with pytest.raises(MessageTooLarge) as info:
        receive("multipart/related; boundary=B", [wire], spool, max_root_bytes=1000)
    assert info.value.limit == 1000


def test_failure_mid_stream_deletes_the_spool_files(spool: Spool) -> None:
    receiver = MtomReceiver("multipart/related; boundary=B", sink_factory=spool.sink)
    receiver.feed(package(("<r@x>", ROOT_XML), ("<a@x>", b"A" * 5000))[:-7])
    receiver.feed(b"--B\r\nContent-ID: <c@x>\r\n\r\n" + b"C" * 5000)
    assert len(spool_files(spool)) == 2
    with pytest.raises(MimeError):
        receiver.feed(b"\r\n--B\r\nbroken header line\r\n\r\n")
    assert spool_files(spool) == []
    with pytest.raises(MimeError):
        receiver.feed(b"more")


def test_feed_async_offloaded_and_inline(tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 7)
    payload = encode_mtom(ENVELOPE, [OutgoingPart("a@x", "application/dicom", data)])
    wire = b"".join(payload)

    async def stream() -> Iterator[bytes]:  # type: ignore[misc]
        for i in range(0, len(wire), 65536):
            yield wire[i : i + 65536]

    for offload in (True, False):
        with Spool(tmp_path / f"s{offload}") as spool:
            receiver = MtomReceiver(payload.content_type, sink_factory=spool.sink)
            total = anyio.run(lambda: feed_async(receiver, stream(), offload=offload))  # noqa: B023
            assert total == len(wire)
            assert receiver.close().attachments["a@x"].sha1_hex == hashlib.sha1(data).hexdigest()


@pytest.mark.parametrize("offload", [True, False])
def test_feed_async_stops_at_max_bytes_and_cleans_up(tmp_path: Path, offload: bool) -> None:
    payload = encode_mtom(ENVELOPE, [OutgoingPart("a@x", "application/dicom", os.urandom(3 * CHUNK_SIZE))])
    wire = b"".join(payload)

    async def stream() -> Iterator[bytes]:  # type: ignore[misc]
        for i in range(0, len(wire), 65536):
            yield wire[i : i + 65536]

    with Spool(tmp_path / "s") as spool:
        receiver = MtomReceiver(payload.content_type, sink_factory=spool.sink)
        with pytest.raises(MessageTooLarge):
            anyio.run(lambda: feed_async(receiver, stream(), max_bytes=CHUNK_SIZE + 10, offload=offload))
        assert spool_files(spool) == []


def test_feed_async_reports_mime_errors_from_the_worker(tmp_path: Path) -> None:
    async def stream() -> Iterator[bytes]:  # type: ignore[misc]
        yield b"--B\r\nContent-ID: <r>\r\n\r\n<x/>\r\n--B\r\nbad header\r\n\r\n"
        for _ in range(10):
            yield b"x" * CHUNK_SIZE

    with Spool(tmp_path / "s") as spool:
        receiver = MtomReceiver("multipart/related; boundary=B", sink_factory=spool.sink)
        with pytest.raises(MimeError, match="malformed"):
            anyio.run(lambda: feed_async(receiver, stream(), batch_bytes=16))


# -- XOP -----------------------------------------------------------------------------------------------
def retrieve_response(*documents: etree._Element) -> etree._Element:
    root = etree.Element(f"{{{NS_XDS}}}RetrieveDocumentSetResponse", nsmap={"xds": NS_XDS})
    for document in documents:
        response = etree.SubElement(root, f"{{{NS_XDS}}}DocumentResponse")
        response.append(document)
    return root


def test_resolve_xop_maps_each_including_element(spool: Spool) -> None:
    attachments = {
        "doc1@host": spool.store_bytes(b"one", content_id="doc1@host", content_type="text/plain"),
        "doc 2@host": spool.store_bytes(b"two", content_id="doc 2@host", content_type="text/plain"),
    }
    first = etree.Element(f"{{{NS_XDS}}}Document")
    first.append(xop_include("doc1@host"))
    second = etree.Element(f"{{{NS_XDS}}}Document")
    include = xop_include("doc 2@host")
    include.set("href", "cid:doc%202%40host")  # percent-encoded, as some senders write it
    second.append(include)
    root = retrieve_response(first, second)
    resolved = resolve_xop(root, attachments)
    assert resolved[first].read_bytes() == b"one"
    assert resolved[second].read_bytes() == b"two"
    assert binary_content(second, attachments).content_id == "doc 2@host"


@pytest.mark.parametrize("href", ["cid:unknown@host", None, "http://evil/x"])
def test_bad_xop_references_are_sender_faults(href: str | None) -> None:
    document = etree.Element(f"{{{NS_XDS}}}Document")
    include = etree.SubElement(document, "{http://www.w3.org/2004/08/xop/include}Include")
    if href is not None:
        include.set("href", href)
    with pytest.raises(SoapFault) as info:
        resolve_xop(retrieve_response(document), {})
    assert info.value.code is FaultCode.SENDER


def test_inline_base64_becomes_an_attachment_of_the_same_shape(spool: Spool) -> None:
    content = os.urandom(5000) + b"\r\n"
    document = etree.Element(f"{{{NS_XDS}}}Document", nsmap={"xmime": NS_XMIME})
    document.set(f"{{{NS_XMIME}}}contentType", "application/dicom")
    document.text = base64.encodebytes(content).decode()
    attachment = binary_content(document, {}, spool=spool)
    assert attachment.read_bytes() == content
    assert attachment.sha1_hex == hashlib.sha1(content).hexdigest()
    assert attachment.content_type == "application/dicom" and attachment.content_id == ""
    assert attachment.path is not None  # over the spool's memory threshold: on disk
    small = etree.Element(f"{{{NS_XDS}}}Document")
    small.text = base64.b64encode(b"hi").decode()
    in_memory = binary_content(small, {})
    assert in_memory.in_memory and in_memory.read_bytes() == b"hi"
    assert in_memory.content_type == "application/octet-stream"


@pytest.mark.parametrize("text", ["not base64!", "QUJD=QUJD", "QQ"])
def test_invalid_inline_base64_is_a_sender_fault(text: str) -> None:
    document = etree.Element(f"{{{NS_XDS}}}Document")
    document.text = text
    with pytest.raises(SoapFault) as info:
        binary_content(document, {})
    assert info.value.code is FaultCode.SENDER


def test_include_with_other_content_is_a_sender_fault() -> None:
    document = etree.Element(f"{{{NS_XDS}}}Document")
    document.text = "QUJD"
    document.append(xop_include("a@x"))
    with pytest.raises(SoapFault):
        binary_content(document, {"a@x": Attachment.from_bytes(b"x", content_id="a@x", content_type="x/y")})


def test_mtom_envelope_with_include_resolves_after_parsing(spool: Spool) -> None:
    document = etree.Element(f"{{{NS_XDS}}}Document", id="Document01")
    document.append(xop_include("doc1@host"))
    request = etree.Element(f"{{{NS_XDS}}}ProvideAndRegisterDocumentSetRequest")
    request.append(document)
    root = build_request(request, action=Action.ITI41)
    payload = encode_mtom(root, [("doc1@host", "application/dicom", b"DICM")], action=Action.ITI41)
    message = receive(payload.content_type, [b"".join(payload)], spool)
    envelope = parse_envelope_bytes(message.root)
    resolved = resolve_xop(envelope.root, message.attachments)
    ((element, attachment),) = resolved.items()
    assert element.get("id") == "Document01" and attachment.read_bytes() == b"DICM"


# -- attachments and spool -------------------------------------------------------------------------
def test_spool_keeps_small_parts_in_memory_and_spills_large_ones(tmp_path: Path) -> None:
    with Spool(tmp_path / "s", memory_threshold=10) as spool:
        small = spool.store_bytes(b"0123456789", content_id="s", content_type="x/y")
        large = spool.store_bytes(b"0123456789A", content_id="l", content_type="x/y")
        assert small.in_memory and small.path is None
        assert not large.in_memory and large.path is not None and large.path.read_bytes() == b"0123456789A"
        with small.open() as f1, large.open() as f2:
            assert f1.read() == b"0123456789" and f2.read() == b"0123456789A"
    assert not large.path.exists()
    with pytest.raises(ValueError):
        large.read_bytes()


def test_move_to_and_detach_take_ownership(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    with Spool(tmp_path / "s", memory_threshold=0) as spool:
        moved = spool.store_bytes(b"moved", content_id="m", content_type="x/y")
        kept = spool.store_bytes(b"kept", content_id="k", content_type="x/y")
        dropped = spool.store_bytes(b"dropped", content_id="d", content_type="x/y")
        target = moved.move_to(store / "doc.bin")
        detached = kept.detach()
        dropped_path = dropped.path
    assert target.read_bytes() == b"moved" and moved.path == target
    assert detached.read_bytes() == b"kept"
    assert dropped_path is not None and not dropped_path.exists()


def test_in_memory_attachment_move_and_detach_write_files(tmp_path: Path) -> None:
    attachment = Attachment.from_bytes(b"abc", content_id="a", content_type="x/y")
    target = attachment.move_to(tmp_path / "a.bin")
    assert target.read_bytes() == b"abc" and attachment.path == target and not attachment.in_memory
    other = Attachment.from_bytes(b"def", content_id="b", content_type="x/y")
    path = other.detach()
    try:
        assert path.read_bytes() == b"def"
    finally:
        path.unlink()


def test_attachment_from_file_is_hashed_and_never_deleted(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    data = os.urandom(CHUNK_SIZE + 1)
    path.write_bytes(data)
    attachment = Attachment.from_file(path, content_id="f", content_type="x/y")
    assert attachment.size == len(data) and attachment.sha256_hex == hashlib.sha256(data).hexdigest()
    attachment.delete()
    assert path.exists()
    assert [len(c) for c in attachment.iter_chunks()] == [CHUNK_SIZE, 1]


def test_read_bytes_limit() -> None:
    attachment = Attachment.from_bytes(b"x" * 100, content_id="a", content_type="x/y")
    assert len(attachment.read_bytes(max_bytes=100)) == 100
    with pytest.raises(ValueError):
        attachment.read_bytes(max_bytes=99)


def test_open_sinks_are_aborted_at_cleanup(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", memory_threshold=0)
    sink = spool.sink("a", "x/y")
    sink.write(b"partial")
    assert len(list(spool.directory.iterdir())) == 1
    spool.cleanup()
    assert list(spool.directory.iterdir()) == []


def test_large_parts_are_written_by_a_background_thread_in_order(tmp_path: Path) -> None:
    from xds.soap.attachments import SpoolSink

    sink = SpoolSink(
        tmp_path, content_id="a", content_type="x/y", memory_threshold=0, background_write_above=0
    )
    pieces = [os.urandom(1000 + i) for i in range(200)]
    for piece in pieces:
        sink.write(bytearray(piece))  # mutable input is copied before it crosses threads
    attachment = sink.close()
    assert attachment.read_bytes() == b"".join(pieces)
    assert attachment.sha1_hex == hashlib.sha1(b"".join(pieces)).hexdigest()


def test_background_write_errors_reach_the_writer_of_the_sink() -> None:
    from xds.soap.attachments import _Writer

    read_end, write_end = os.pipe()
    os.close(read_end)  # writing now fails with EPIPE / BrokenPipeError
    try:
        writer = _Writer(write_end)
        writer.put(b"x")
        with pytest.raises(OSError):
            writer.finish()
    finally:
        os.close(write_end)


def test_move_to_another_filesystem_copies_then_removes_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import xds.soap.attachments as attachments_module

    real_replace = os.replace
    spool_dir = tmp_path / "s"

    def cross_device(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(src).parent == spool_dir:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(attachments_module.os, "replace", cross_device)
    with Spool(spool_dir, memory_threshold=0) as spool:
        attachment = spool.store_bytes(b"study", content_id="a", content_type="x/y")
        source = attachment.path
        attachment.detach()
        target = attachment.move_to(tmp_path / "store.bin")
    assert target.read_bytes() == b"study"
    assert source is not None and not source.exists()
    assert list(spool_dir.iterdir()) == []


def test_spool_has_files_only_while_cleanup_would_delete_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", memory_threshold=16)
    small = spool.sink("small", "x/y")
    small.write(b"tiny")
    small.close()
    assert not spool.has_files  # in memory only
    big = spool.sink("big", "x/y")
    big.write(b"x" * 100)
    assert spool.has_files  # an open sink's file
    moved = big.close()
    other = spool.sink("other", "x/y")
    other.write(b"y" * 100)
    kept = other.close()
    assert spool.has_files  # two unclaimed spool files
    moved.move_to(tmp_path / "moved", fsync=False)
    assert spool.has_files  # one still unclaimed
    kept.detach()
    assert not spool.has_files  # both claimed: cleanup deletes nothing
    spool.cleanup()
    assert (tmp_path / "moved").read_bytes() == b"x" * 100 and kept.path is not None and kept.path.exists()
