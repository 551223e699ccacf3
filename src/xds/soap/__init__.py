"""SOAP 1.2, WS-Addressing 1.0 and MTOM/XOP for the XDS.b transactions (ITI TF-2x Appendix V).

A sans-I/O codec: functions take bytes (or parsed elements) and return objects or bytes; the
HTTP adapters in :mod:`xds.http` move those bytes over sockets. The modules:

* :mod:`xds.soap.envelope`: parse an envelope with the XDS rules; build requests and responses;
  classify a request Content-Type.
* :mod:`xds.soap.fault`: :class:`SoapFault` (raise it; it knows its HTTP status and envelope)
  and the fault-reply parser.
* :mod:`xds.soap.mtom_decode`: the incremental multipart/related decoder (events).
* :mod:`xds.soap.mtom_encode`: the streaming MTOM encoder.
* :mod:`xds.soap.mtom`: the receiver that files parts into attachment sinks, XOP resolution.
* :mod:`xds.soap.attachments`: :class:`Attachment`, sinks and the per-message :class:`Spool`.

The names below are the ones other packages use.
"""

from xds.soap.attachments import CHUNK_SIZE, Attachment, AttachmentSink, SinkFactory, Spool, SpoolSink
from xds.soap.envelope import (
    UNDERSTOOD_HEADERS,
    Addressing,
    Packaging,
    SoapEnvelope,
    build_request,
    build_response,
    parse_envelope,
    parse_envelope_bytes,
    request_envelope,
    request_packaging,
    response_envelope,
    soap_content_type,
)
from xds.soap.fault import FaultCode, SoapFault, new_message_id, parse_fault
from xds.soap.mtom import (
    XOP_INCLUDE,
    MtomMessage,
    MtomReceiver,
    binary_content,
    feed_async,
    resolve_xop,
    xop_include,
)
from xds.soap.mtom_decode import (
    ContentType,
    MessageEnd,
    MessageTooLarge,
    MimeError,
    MultipartDecoder,
    PartData,
    PartEnd,
    PartHeaders,
    normalize_content_id,
    parse_content_type,
)
from xds.soap.mtom_encode import MtomPayload, OutgoingPart, Source, cid_href, encode_mtom, new_content_id

__all__ = [
    "CHUNK_SIZE",
    "UNDERSTOOD_HEADERS",
    "XOP_INCLUDE",
    "Addressing",
    "Attachment",
    "AttachmentSink",
    "ContentType",
    "FaultCode",
    "MessageEnd",
    "MessageTooLarge",
    "MimeError",
    "MtomMessage",
    "MtomPayload",
    "MtomReceiver",
    "MultipartDecoder",
    "OutgoingPart",
    "Packaging",
    "PartData",
    "PartEnd",
    "PartHeaders",
    "SinkFactory",
    "SoapEnvelope",
    "SoapFault",
    "Source",
    "Spool",
    "SpoolSink",
    "binary_content",
    "build_request",
    "build_response",
    "cid_href",
    "encode_mtom",
    "feed_async",
    "new_content_id",
    "new_message_id",
    "normalize_content_id",
    "parse_content_type",
    "parse_envelope",
    "parse_envelope_bytes",
    "parse_fault",
    "request_envelope",
    "request_packaging",
    "resolve_xop",
    "response_envelope",
    "soap_content_type",
    "xop_include",
]
