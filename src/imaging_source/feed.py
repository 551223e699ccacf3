"""The RIS feed handler: one HL7 v2 message in, its acknowledgement out (``bytes -> bytes``).

:mod:`imaging_source.ris` reads the message, :class:`~imaging_source.reports.ReportBook` stores
its events, and the ACK says what happened (HL7 v2.5 §2.9.2, original acknowledgment mode: AA
accepted, AE error in content, AR rejected). The MLLP socket is :mod:`xds.hl7.mllp`'s; this
handler never raises, so the listener keeps serving whatever a peer sends.

Logging: message type, control ID, accession number and outcome only; never report text, and
patient identifiers at debug level only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from xds.hl7.v2 import ErrorCondition, Hl7ParseError, decode_bytes
from imaging_source.reports import ReportBook
from imaging_source.ris import ACCESSION_FIELDS, DEFAULT_VERSION, Interpreted, OrderEvent, ReportEvent, interpret
from xds.hl7.ack import AckCode, Nak, build_ack, encode_ack, new_control_id, salvage_header, utc_now

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    """One message's result: the ACK bytes, its code, and a short description."""

    ack: bytes
    ack_code: AckCode
    message_type: str
    control_id: str
    reason: str
    condition: ErrorCondition = ErrorCondition.MESSAGE_ACCEPTED


class RisFeed:
    """``RisFeed(book)(message_bytes) -> ack_bytes``; synchronous (the MLLP server runs it in a thread)."""

    def __init__(
        self,
        book: ReportBook,
        *,
        accession_fields: Sequence[str] = ACCESSION_FIELDS,
        issuer: str | None = None,
        zone: tzinfo | None = None,
        application: str = "XDS_IMAGING_SOURCE",
        facility: str = "",
        control_ids: Callable[[], str] = new_control_id,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._book = book
        self._accession_fields = tuple(accession_fields)
        self._issuer = issuer
        self._zone = zone
        self._application = application
        self._facility = facility
        self._control_ids = control_ids
        self._clock = clock

    def __call__(self, data: bytes) -> bytes:
        return self.handle(data).ack

    def handle(self, data: bytes) -> FeedOutcome:
        """Interpret, store, acknowledge."""
        try:
            request = interpret(data, accession_fields=self._accession_fields, issuer=self._issuer, zone=self._zone)
        except Exception as exc:  # a defect, not bad input: answer anyway
            logger.error("RIS feed interpretation failed: %s", type(exc).__name__)
            logger.debug("RIS feed interpretation failure", exc_info=True)
            nak = Nak(AckCode.ERROR, ErrorCondition.APPLICATION_INTERNAL_ERROR, "internal error")
            request = Interpreted(None, "", "", DEFAULT_VERSION, error=nak)
        if request.error is not None:
            return self._answer(request, request.error)
        stored: list[str] = []
        try:
            for event in request.events:
                if isinstance(event, ReportEvent):
                    self._book.record_report(event)
                    stored.append(f"report {event.accession} {event.status}")
                else:
                    assert isinstance(event, OrderEvent)
                    self._book.record_order(event)
                    stored.append(f"order {event.accession} {event.control}")
                logger.debug("RIS feed %s for patient %s", stored[-1], event.patient_id)
        except Exception as exc:  # the database failed; do not echo its message (it may hold PHI)
            logger.error("RIS feed store call failed: %s", type(exc).__name__)
            logger.debug("RIS feed store failure", exc_info=True)
            nak = Nak(AckCode.ERROR, ErrorCondition.APPLICATION_INTERNAL_ERROR, "the Edge Server could not store the message")
            return self._answer(request, nak)
        return self._answer(request, None, text="; ".join(stored))

    def reject_oversize(self, prefix: bytes, limit: int) -> bytes:
        """The AR for a message over the MLLP size limit (echoes MSH-10 when the prefix holds it)."""
        try:
            codec: str | None = decode_bytes(prefix)[1]
        except Hl7ParseError:
            codec = None
        header = None
        text = prefix.decode(codec or "latin-1", errors="replace")
        if "\r" in text or "\n" in text:
            header = salvage_header(text)
        nak = Nak(AckCode.REJECT, ErrorCondition.APPLICATION_INTERNAL_ERROR, f"the message exceeds {limit} bytes")
        request = Interpreted(
            header,
            header.value(9, 1) if header is not None else "",
            header.value(10) if header is not None else "",
            DEFAULT_VERSION,
            error=nak,
            codec=codec,
        )
        return self._answer(request, nak).ack

    def _answer(self, request: Interpreted, nak: Nak | None, *, text: str = "") -> FeedOutcome:
        code = AckCode.ACCEPT if nak is None else nak.ack_code
        reason = text if nak is None else nak.reason
        message = build_ack(
            request.header,
            ack_code=code,
            text=reason,
            error=nak,
            control_id=self._control_ids(),
            timestamp=self._clock(),
            application=self._application,
            facility=self._facility,
            default_version=DEFAULT_VERSION,
            echo_charset=request.codec is not None,
        )
        shown = request.message_type[:32] or "(unparsed)"
        if nak is None:
            logger.info("RIS feed %s control_id=%r: AA %s", shown, request.control_id[:64], reason[:200])
        else:
            logger.info(
                "RIS feed %s control_id=%r: %s %d %s", shown, request.control_id[:64], code.value, int(nak.condition), reason
            )
        return FeedOutcome(
            ack=encode_ack(message, codec=request.codec),
            ack_code=code,
            message_type=request.message_type,
            control_id=request.control_id,
            reason=reason,
            condition=ErrorCondition.MESSAGE_ACCEPTED if nak is None else nak.condition,
        )
