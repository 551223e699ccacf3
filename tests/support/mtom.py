"""Helpers of the MTOM tests: a fixed envelope, chunking, and running the decoder and receiver."""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from xds.soap.attachments import Spool
from xds.soap.envelope import build_request
from xds.soap.mtom import MtomReceiver
from xds.soap.mtom_decode import MessageEnd, MultipartDecoder, PartData, PartEnd, PartHeaders
from xds.vocabulary import NS_XDS, Action

ENVELOPE = build_request(etree.Element(f"{{{NS_XDS}}}RetrieveDocumentSetRequest"), action=Action.ITI43)


def split(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    """Cut ``data`` at the given offsets (sorted, deduplicated)."""
    previous = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}):
        yield data[previous:cut]
        previous = cut
    yield data[previous:]


def decode(content_type: str, data: bytes, chunks: Iterator[bytes] | None = None) -> list[tuple]:
    """Run the decoder; return [(headers, content)] per part, checking the event order."""
    decoder = MultipartDecoder(content_type)
    events = []
    for chunk in chunks if chunks is not None else [data]:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    parts: list[tuple] = []
    current: list[bytes] | None = None
    headers = None
    ended = False
    for event in events:
        assert not ended, "event after MessageEnd"
        if isinstance(event, PartHeaders):
            assert current is None
            headers, current = event, []
        elif isinstance(event, PartData):
            assert current is not None and event.data
            current.append(event.data)
        elif isinstance(event, PartEnd):
            assert current is not None and headers is not None and event.index == headers.index
            parts.append((headers, b"".join(current)))
            current = None
        elif isinstance(event, MessageEnd):
            assert current is None
            ended = True
    assert ended
    return parts


def receive(content_type: str, chunks: list[bytes] | Iterator[bytes], spool: Spool, **kwargs: int):  # type: ignore[no-untyped-def]
    receiver = MtomReceiver(content_type, sink_factory=spool.sink, **kwargs)
    for chunk in chunks:
        receiver.feed(chunk)
    return receiver.close()
