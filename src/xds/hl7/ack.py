"""HL7 v2 original-mode acknowledgements, shared by every feed we receive (ITI-8 at the registry,
ORU/ORM at the Edge Server): the MSA-1 codes, why a message is refused, the ACK message in the
received message's version, and the helpers a receiver needs around it. Sans-I/O.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Final

from xds.hl7.v2 import (
    STANDARD_ENCODING,
    ErrorCondition,
    Field,
    Hl7ParseError,
    Message,
    Segment,
    composite,
    encode_message,
    header_segment,
    parse_message,
    split_segments,
    text_field,
)

__all__ = [
    "MSA_TEXT_LIMIT",
    "AckCode",
    "Nak",
    "build_ack",
    "encode_ack",
    "header_facts",
    "new_control_id",
    "salvage_header",
    "shown",
    "utc_now",
    "version_key",
]

# HL7 v2.5 §2.15.8.3: MSA-3 (text message) is at most 80 characters.
MSA_TEXT_LIMIT: Final = 80
#: The version an ACK claims when the received message named none we can read.
FALLBACK_VERSION: Final = "2.3.1"


class AckCode(str, enum.Enum):
    """MSA-1 acknowledgment codes, original mode (HL7 table 0008)."""

    ACCEPT = "AA"
    ERROR = "AE"
    REJECT = "AR"


@dataclass(frozen=True, slots=True)
class Nak:
    """Why a message is not acted on: MSA-1, the table 0357 condition, a reason, a location."""

    ack_code: AckCode
    condition: ErrorCondition
    reason: str
    segment: str | None = None
    field: int | None = None
    component: int | None = None


def version_key(version: str, *, default: str = FALLBACK_VERSION) -> tuple[int, ...]:
    """``"2.5.1"`` as ``(2, 5, 1)`` for comparisons; an unreadable version counts as ``default``."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return tuple(int(part) for part in default.split("."))


def shown(value: str, limit: int = 24) -> str:
    """A sender's value as echoed in a reason: ``(empty)`` or at most ``limit`` characters."""
    if not value:
        return "(empty)"
    return value if len(value) <= limit else value[:limit] + "..."


def salvage_header(text: str) -> Segment | None:
    """The MSH of a message that failed to parse, when its first line is a complete, valid MSH."""
    lines = split_segments(text)
    if not lines or not lines[0].startswith("MSH"):
        return None
    try:
        return parse_message(lines[0]).header
    except Hl7ParseError:
        return None


def header_facts(header: Segment) -> tuple[str, str, str, str]:
    """Message type (MSH-9.1), trigger event (MSH-9.2), control ID (MSH-10), version (MSH-12.1)."""
    return header.value(9, 1), header.value(9, 2), header.value(10), header.value(12, 1)


def new_control_id() -> str:
    """A fresh MSH-10 for an ACK (20 characters, HL7 v2.5 §2.14.9.10 allows 199)."""
    return uuid.uuid4().hex[:20].upper()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _error_segment(nak: Nak, version: str) -> Segment:
    code = composite(str(int(nak.condition)), nak.condition.text, "HL70357")
    location: list[str] = []
    if nak.segment:
        location = [nak.segment, "1"]
        if nak.field is not None:
            location.append(str(nak.field))
            if nak.component is not None:
                location += ["1", str(nak.component)]
    if version_key(version) >= (2, 5):
        # HL7 v2.5 §2.15.5: ERR-2 location, ERR-3 error code, ERR-4 severity, ERR-8 user message.
        return Segment("ERR", ((), composite(*location), code, text_field("E"), (), (), (), text_field(nak.reason)))
    # HL7 v2.3.1 §2.16.5: ERR-1 = segment ID ^ sequence ^ field position ^ code (CE, as subcomponents).
    eld = (location + ["", "", ""])[:3]
    return Segment("ERR", (composite(*eld, (str(int(nak.condition)), nak.condition.text, "HL70357")),))


def _charset_fields(received: Segment, *, echo: bool) -> tuple[Field, ...]:
    """MSH-13..MSH-18 for the ACK: empty, but MSH-18 echoed when the ACK uses the same charset."""
    charset = received.field(18)
    if not charset or not echo:
        return ()
    empty: Field = ()
    return (empty, empty, empty, empty, empty, charset)


def build_ack(
    header: Segment | None,
    *,
    ack_code: AckCode,
    text: str,
    error: Nak | None,
    control_id: str,
    timestamp: datetime,
    application: str,
    facility: str = "",
    default_version: str = FALLBACK_VERSION,
    echo_charset: bool = True,
) -> Message:
    """The ACK of a received message (or of bytes without a usable MSH), in the message's version
    (HL7 v2.5 §2.14.1; v2.3.1 §2.24.1).

    ``echo_charset`` copies MSH-18; pass False when the ACK is not encoded in that charset.
    """
    received = header if header is not None else Segment("MSH")
    version = received.value(12) or default_version
    event = received.value(9, 2)
    if not event:
        message_type = composite("ACK")
    elif version_key(version, default=default_version) >= (2, 4):
        message_type = composite("ACK", event, "ACK")  # HL7 v2.4+: MSH-9.3 message structure
    else:
        message_type = composite("ACK", event)
    msh = header_segment(
        STANDARD_ENCODING,
        (
            received.field(5) or text_field(application),  # MSH-3 <- received MSH-5
            received.field(6) or text_field(facility),  # MSH-4 <- received MSH-6
            received.field(3),  # MSH-5 <- received MSH-3
            received.field(4),  # MSH-6 <- received MSH-4
            text_field(timestamp.strftime("%Y%m%d%H%M%S%z")),  # MSH-7
            (),  # MSH-8
            message_type,  # MSH-9
            text_field(control_id),  # MSH-10
            received.field(11) or text_field("P"),  # MSH-11
            received.field(12) or text_field(default_version),  # MSH-12
            *_charset_fields(received, echo=echo_charset),  # MSH-13..MSH-18
        ),
    )
    # HL7 v2.5 §2.15.8: MSA-1 code, MSA-2 the received MSH-10, MSA-3 text.
    msa = Segment("MSA", (text_field(ack_code.value), text_field(received.value(10)), text_field(text[:MSA_TEXT_LIMIT])))
    segments = (msh, msa) if error is None else (msh, msa, _error_segment(error, version))
    return Message(segments, STANDARD_ENCODING)


def encode_ack(message: Message, *, codec: str | None) -> bytes:
    """The ACK's bytes, in the received message's character set when it was usable."""
    return encode_message(message).encode(codec or "utf-8", errors="replace")
