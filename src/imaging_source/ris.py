"""RIS intake, sans-I/O: HL7 v2 ORU^R01 (reports) and ORM^O01 (orders) into frozen events, or
the :class:`~xds.hl7.ack.Nak` that refuses them (the ACK itself is :mod:`xds.hl7.ack`'s).

rsna-image-share §2.14: the RSNA Edge Server's HL7 receiver took the MRN from PID-3.1, the accession
number from OBR-3.1 (filler order number), the status from OBR-25 (falling back to ORC-5), the
status time from OBR-22 (falling back to ORC-15) and the report text from every OBX-5.

Accession number. OBR-3.1 is tried first, because that is where RSNA's receiver (and most RIS
report feeds) put it; then ORC-3.1 (the same filler order number in the common order segment,
which is all a bare ORC cancellation carries); then OBR-18 (Placer Field 1), where IHE RAD
Scheduled Workflow carries the accession number in v2.3.1 order messages (RAD TF-2 §4.4.4.1.2.2).
OBR-2 / ORC-2 (placer order number) is *not* used: it names the order in the ordering system, not
the exam, and RSNA never read it; it is kept as ``placer_number``. A site whose RIS differs can
pass its own ``accession_fields`` order.

Versions 2.3 to 2.6 are read alike (the segments used here did not change; HL7 v2.5 §4.5.1, §7.4.1
and v2.3.1 §4.5.1, §7.4.1); the ACK is written in the received version's style.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Final

from xds.hl7.ack import AckCode, Nak, header_facts, salvage_header, shown
from xds.hl7.v2 import (
    ErrorCondition,
    Hl7ParseError,
    Message,
    Segment,
    decode_bytes,
    parse_message,
)

SUPPORTED_VERSIONS: Final = frozenset({"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6"})
DEFAULT_VERSION: Final = "2.5"
# HL7 table 0123 (Result Status): F final, C correction to a final result.
FINAL_STATUSES: Final = frozenset({"F", "C"})
# HL7 table 0119 (Order Control codes) the Edge Server acts on.
NEW_ORDER: Final = "NW"
CHANGE_ORDER: Final = "XO"
CANCEL_REQUEST: Final = "CA"
ORDER_CANCELED: Final = "OC"
DISCONTINUED: Final = "DC"
STATUS_CHANGED: Final = "SC"
ORDER_CONTROLS: Final = frozenset({NEW_ORDER, CHANGE_ORDER, CANCEL_REQUEST, ORDER_CANCELED, DISCONTINUED, STATUS_CHANGED})
CANCEL_CONTROLS: Final = frozenset({CANCEL_REQUEST, ORDER_CANCELED, DISCONTINUED})
# HL7 table 0038 (Order Status, ORC-5): CA canceled, DC discontinued; table 0123 X: canceled.
CANCELED_ORDER_STATUSES: Final = frozenset({"CA", "DC"})
CANCELED_RESULT_STATUS: Final = "X"
# HL7 v2.5 §7.4.2.2 (OBX-2 value type): the textual types whose OBX-5 is report text.
TEXT_VALUE_TYPES: Final = frozenset({"TX", "FT", "ST"})
ACCESSION_FIELDS: Final = ("OBR-3", "ORC-3", "OBR-18")
_KNOWN_ACCESSION_FIELDS: Final = frozenset({"OBR-3", "ORC-3", "OBR-18", "OBR-2", "ORC-2", "OBR-19", "OBR-20"})
_HL7_NULL: Final = '""'
_DTM = re.compile(
    r"(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?(?P<s>\d{2})?"
    r"(?:\.(?P<f>\d{1,4}))?(?P<z>[+-]\d{4})?\Z"
)


@dataclass(frozen=True, slots=True)
class Procedure:
    """OBR-4 Universal Service ID (CE): code, text, coding system."""

    code: str = ""
    meaning: str = ""
    scheme: str = ""


@dataclass(frozen=True, slots=True)
class ReportEvent:
    """One ORU^R01 order-observation group: the report of one exam."""

    accession: str
    patient_id: str
    issuer: str
    status: str  # OBR-25 (or ORC-5 when OBR-25 is empty)
    status_time: float | None  # OBR-22 (or ORC-15), epoch seconds
    text: str  # OBX-5 of the textual OBX, one line per OBX (or OBX-5 repetition)
    procedure: Procedure
    placer_number: str = ""
    study_uid: str = ""
    message_id: str = ""

    @property
    def final(self) -> bool:
        """F or C: the report counts as final for release."""
        return self.status in FINAL_STATUSES


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One ORM^O01 order (ORC with its OBR): placed, changed, scheduled or canceled."""

    accession: str
    patient_id: str
    issuer: str
    control: str  # ORC-1
    order_status: str  # ORC-5
    canceled: bool
    transaction_time: float | None  # ORC-9 (or MSH-7)
    scheduled_time: float | None  # OBR-36 (or ORC-7.4)
    procedure: Procedure
    placer_number: str = ""
    study_uid: str = ""
    message_id: str = ""


RisEvent = ReportEvent | OrderEvent


@dataclass(frozen=True, slots=True)
class Interpreted:
    """What one message holds (``events``) or why it is refused (``error``), plus what the ACK echoes."""

    header: Segment | None
    message_type: str
    control_id: str
    version: str
    events: tuple[RisEvent, ...] = ()
    error: Nak | None = None
    codec: str | None = "utf-8"  # None: the charset could not be used; answer in UTF-8


class _Refused(Exception):
    def __init__(self, nak: Nak) -> None:
        super().__init__(nak.reason)
        self.nak = nak


def _refuse(
    code: AckCode, condition: ErrorCondition, reason: str, segment: str | None = None,
    field: int | None = None, component: int | None = None,
) -> _Refused:
    return _Refused(Nak(code, condition, reason, segment, field, component))


def _value(segment: Segment | None, position: int, component: int = 1) -> str:
    """A leaf value with HL7's explicit null (``""``) read as absent."""
    if segment is None:
        return ""
    value = segment.value(position, component).strip()
    return "" if value == _HL7_NULL else value


# -- times ---------------------------------------------------------------------------------------


def parse_hl7_time(value: str, *, zone: tzinfo | None = None) -> float | None:
    """HL7 TS/DTM (``YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]``) as epoch seconds; None if absent or bad.

    HL7 v2.5 §2.A.22: without an offset the time is the sender's local time; ``zone`` says which
    (None: the Edge Server's local zone, the usual case of a RIS on the same site).
    """
    value = value.split("^", 1)[0].strip()
    match = _DTM.match(value)
    if not value or match is None:
        return None
    try:
        parsed = datetime(
            int(match["y"]), int(match["mo"] or 1), int(match["d"] or 1), int(match["h"] or 0),
            int(match["mi"] or 0), int(match["s"] or 0), int((match["f"] or "0").ljust(6, "0")[:6]),
        )
    except ValueError:
        return None
    if match["z"]:
        sign = -1 if match["z"][0] == "-" else 1
        offset = timedelta(hours=int(match["z"][1:3]), minutes=int(match["z"][3:5]))
        return parsed.replace(tzinfo=timezone(sign * offset)).timestamp()
    if zone is not None:
        return parsed.replace(tzinfo=zone).timestamp()
    return parsed.timestamp()  # naive: the host's local zone


# -- fields ----------------------------------------------------------------------------------------


def _patient(pid: Segment | None, issuer_wanted: str | None) -> tuple[str, str]:
    """PID-3 (CX list) -> (ID number, assigning authority).

    The issuer is CX.4.1 (namespace ID, which is what DICOM Issuer of Patient ID (0010,0021)
    usually holds), else CX.4.2 (universal ID). With ``issuer_wanted`` the repetition assigned by
    that authority is taken; otherwise the first with identifier type ``MR`` (CX.5), else the
    first non-empty one. v2.3.1 senders sometimes leave PID-3 empty and use PID-2: accepted.
    """
    # HL7 v2.5 §3.4.2.3: PID-3 Patient Identifier List (CX, repeating).
    if pid is None:
        raise _refuse(AckCode.ERROR, ErrorCondition.SEGMENT_SEQUENCE_ERROR, "the PID segment is missing", "PID")
    candidates: list[tuple[str, str, str]] = []
    for position in (3, 2):
        for rep in pid.field(position):
            number = rep[0][0].strip() if rep and rep[0] else ""
            if not number or number == _HL7_NULL:
                continue
            authority = rep[3] if len(rep) > 3 else ()
            namespace = authority[0].strip() if authority else ""
            universal = authority[1].strip() if len(authority) > 1 else ""
            id_type = rep[4][0] if len(rep) > 4 and rep[4] else ""
            candidates.append((number, namespace or universal, id_type))
        if candidates:
            break
    if not candidates:
        raise _refuse(
            AckCode.ERROR, ErrorCondition.REQUIRED_FIELD_MISSING, "PID-3 (patient identifier) is missing", "PID", 3
        )
    if issuer_wanted is not None:
        for number, issuer, _ in candidates:
            if issuer == issuer_wanted:
                return number, issuer
        raise _refuse(
            AckCode.ERROR,
            ErrorCondition.UNKNOWN_KEY_IDENTIFIER,
            f"no PID-3 identifier assigned by {shown(issuer_wanted)}",
            "PID",
            3,
            4,
        )
    chosen = next((c for c in candidates if c[2] == "MR"), candidates[0])
    return chosen[0], chosen[1]


def _accession(orc: Segment | None, obr: Segment | None, fields: Sequence[str]) -> str:
    for name in fields:
        segment_name, _, position = name.partition("-")
        segment = orc if segment_name == "ORC" else obr
        value = _value(segment, int(position))
        if value:
            return value
    where = fields[0] if fields else "OBR-3"
    raise _refuse(
        AckCode.ERROR,
        ErrorCondition.REQUIRED_FIELD_MISSING,
        f"the accession number is missing (looked in {', '.join(fields)})",
        where.split("-")[0],
        int(where.split("-")[1]),
    )


def _procedure(obr: Segment | None) -> Procedure:
    # HL7 v2.5 §4.5.3.4: OBR-4 Universal Service Identifier (CE).
    return Procedure(code=_value(obr, 4, 1), meaning=_value(obr, 4, 2), scheme=_value(obr, 4, 3))


def _study_uid(message: Message) -> str:
    # IHE RAD TF-2 §4.4.4.1.2.2 (v2.3.1 ZDS-1 Study Instance UID); RAD TF-2 §4.4.4.2 (v2.5.1 IPC-3).
    zds = message.first("ZDS")
    if zds is not None and _value(zds, 1):
        return _value(zds, 1)
    return _value(message.first("IPC"), 3)


_FORMATTING = re.compile(r"\.(?:br|sp\s*\d*|in\s*[+-]?\d*|ti\s*[+-]?\d*|sk\s*\d*|ce|fi|nf)|H|N")


def _formatted_text(value: str, escape: str) -> str:
    """FT formatting (HL7 v2.5 §2.7.6): ``.br`` / ``.sp`` become line breaks, the rest is dropped."""
    if escape not in value:
        return value
    pattern = re.compile(re.escape(escape) + "(" + _FORMATTING.pattern + ")" + re.escape(escape))

    def replace_one(match: re.Match[str]) -> str:
        command = match.group(1)
        if command == ".br":
            return "\n"
        if command.startswith(".sp"):
            count = command[3:].strip()
            return "\n" * (int(count) if count.isdigit() else 1)
        return ""

    return pattern.sub(replace_one, value)


def _obx_lines(obx: Segment, message: Message) -> list[str]:
    """The text lines of one OBX: each OBX-5 repetition is a line; components rejoined."""
    # HL7 v2.5 §7.4.2.5: OBX-5 Observation Value; its type is OBX-2.
    joiner = message.encoding.component
    lines: list[str] = []
    for rep in obx.field(5):
        text = joiner.join(message.encoding.subcomponent.join(c) for c in rep)
        if text == _HL7_NULL:
            text = ""
        lines.extend(_formatted_text(text, message.encoding.escape).split("\n"))
    return lines or [""]


def _groups(message: Message) -> list[tuple[Segment | None, Segment | None, list[Segment]]]:
    """Order groups in message order: (ORC, OBR, the OBX that follow the OBR)."""
    groups: list[tuple[Segment | None, Segment | None, list[Segment]]] = []
    pending_orc: Segment | None = None
    for segment in message.segments:
        if segment.name == "ORC":
            if pending_orc is not None:  # an ORC with no OBR of its own (ORM cancellations)
                groups.append((pending_orc, None, []))
            pending_orc = segment
        elif segment.name == "OBR":
            groups.append((pending_orc, segment, []))
            pending_orc = None
        elif segment.name == "OBX" and groups and groups[-1][1] is not None:
            groups[-1][2].append(segment)
    if pending_orc is not None:
        groups.append((pending_orc, None, []))
    return groups


# -- the messages ------------------------------------------------------------------------------


def _report_events(
    message: Message, patient: tuple[str, str], *, accession_fields: Sequence[str], zone: tzinfo | None
) -> tuple[ReportEvent, ...]:
    # HL7 v2.5 §7.3.1 ORU^R01: MSH, {PID, {[ORC], OBR, {OBX}}}.
    groups = [g for g in _groups(message) if g[1] is not None]
    if not groups:
        raise _refuse(AckCode.ERROR, ErrorCondition.SEGMENT_SEQUENCE_ERROR, "the OBR segment is missing", "OBR")
    events = []
    for orc, obr, observations in groups:
        accession = _accession(orc, obr, accession_fields)
        # rsna-image-share §2.14: status = OBR-25, falling back to ORC-5.
        status = _value(obr, 25) or _value(orc, 5)
        if not status:
            raise _refuse(
                AckCode.ERROR, ErrorCondition.REQUIRED_FIELD_MISSING, "OBR-25 (result status) is missing", "OBR", 25
            )
        if len(status) > 8:
            raise _refuse(AckCode.ERROR, ErrorCondition.TABLE_VALUE_NOT_FOUND, "OBR-25 is not a status code", "OBR", 25)
        # HL7 v2.5 §4.5.3.22: OBR-22 Results Rpt/Status Chng - Date/Time; RSNA fell back to ORC-15.
        status_time = parse_hl7_time(_value(obr, 22), zone=zone)
        if status_time is None:
            status_time = parse_hl7_time(_value(orc, 15), zone=zone)
        lines: list[str] = []
        for obx in observations:
            if obx.value(2).strip().upper() in TEXT_VALUE_TYPES:
                lines.extend(_obx_lines(obx, message))
        events.append(
            ReportEvent(
                accession=accession,
                patient_id=patient[0],
                issuer=patient[1],
                status=status.upper(),
                status_time=status_time,
                text="\n".join(lines).strip("\n"),
                procedure=_procedure(obr),
                placer_number=_value(obr, 2) or _value(orc, 2),
                study_uid=_study_uid(message),
                message_id=message.header.value(10),
            )
        )
    return tuple(events)


def _order_events(
    message: Message, patient: tuple[str, str], *, accession_fields: Sequence[str], zone: tzinfo | None
) -> tuple[OrderEvent, ...]:
    # HL7 v2.5 §4.4.1 ORM^O01: MSH, [PID, ...], {ORC, [OBR, ...]}.
    groups = _groups(message)
    if not groups or any(orc is None for orc, _, _ in groups):
        raise _refuse(AckCode.ERROR, ErrorCondition.SEGMENT_SEQUENCE_ERROR, "the ORC segment is missing", "ORC")
    message_time = parse_hl7_time(message.header.value(7), zone=zone)
    events = []
    for orc, obr, _ in groups:
        # HL7 v2.5 §4.5.1.1: ORC-1 Order Control (table 0119).
        control = _value(orc, 1).upper()
        if not control:
            raise _refuse(
                AckCode.ERROR, ErrorCondition.REQUIRED_FIELD_MISSING, "ORC-1 (order control) is missing", "ORC", 1
            )
        if control not in ORDER_CONTROLS:
            raise _refuse(
                AckCode.ERROR,
                ErrorCondition.TABLE_VALUE_NOT_FOUND,
                f"ORC-1 order control {shown(control, 4)} is not supported (NW, XO, CA, OC, DC, SC are)",
                "ORC",
                1,
            )
        accession = _accession(orc, obr, accession_fields)
        order_status = _value(orc, 5).upper()[:2]
        canceled = (
            control in CANCEL_CONTROLS
            or order_status in CANCELED_ORDER_STATUSES
            or _value(obr, 25).upper() == CANCELED_RESULT_STATUS
        )
        # HL7 v2.5 §4.5.1.9: ORC-9 Date/Time of Transaction.
        transaction_time = parse_hl7_time(_value(orc, 9), zone=zone)
        # HL7 v2.5 §4.5.3.36: OBR-36 Scheduled Date/Time; v2.3.1 ORC-7.4 (TQ start).
        scheduled = parse_hl7_time(_value(obr, 36), zone=zone) or parse_hl7_time(_value(orc, 7, 4), zone=zone)
        events.append(
            OrderEvent(
                accession=accession,
                patient_id=patient[0],
                issuer=patient[1],
                control=control,
                order_status=order_status,
                canceled=canceled,
                transaction_time=transaction_time if transaction_time is not None else message_time,
                scheduled_time=scheduled,
                procedure=_procedure(obr),
                placer_number=_value(orc, 2) or _value(obr, 2),
                study_uid=_study_uid(message),
                message_id=message.header.value(10),
            )
        )
    return tuple(events)


def interpret(
    data: bytes,
    *,
    accession_fields: Sequence[str] = ACCESSION_FIELDS,
    issuer: str | None = None,
    zone: tzinfo | None = None,
) -> Interpreted:
    """Read one message into events, or the reason it is refused. Never raises on bad input.

    ``accession_fields``: where the accession number is looked for, in order (see the module
    docstring); ``issuer``: the PID-3 assigning authority to take (None: MR, else the first);
    ``zone``: the zone of times sent without an offset (None: the host's).
    """
    unknown = [f for f in accession_fields if f not in _KNOWN_ACCESSION_FIELDS]
    if unknown or not accession_fields:
        raise ValueError(f"unsupported accession fields {unknown or accession_fields!r}")
    try:
        text, codec = decode_bytes(data)
    except Hl7ParseError as exc:
        header = salvage_header(data.decode("latin-1"))
        return replace(_unparsed(header, exc), codec=None)
    try:
        message = parse_message(text)
    except Hl7ParseError as exc:
        return replace(_unparsed(salvage_header(text), exc), codec=codec)
    message_type, event, control_id, version = header_facts(message.header)
    shown_type = f"{message_type}^{event}" if event else message_type
    result = Interpreted(message.header, shown_type, control_id, version, codec=codec)
    try:
        events = _decide(message, message_type, event, control_id, version, accession_fields, issuer, zone)
    except _Refused as refused:
        return replace(result, error=refused.nak)
    return replace(result, events=events)


def _unparsed(header: Segment | None, exc: Hl7ParseError) -> Interpreted:
    # HL7 v2.5 §2.9.2: a message the receiver cannot process at all is rejected (AR).
    nak = Nak(AckCode.REJECT, exc.condition, f"the message cannot be parsed: {exc.reason}", exc.segment)
    if header is None:
        return Interpreted(None, "", "", DEFAULT_VERSION, error=nak)
    message_type, event, control_id, version = header_facts(header)
    return Interpreted(header, f"{message_type}^{event}", control_id, version, error=nak)


def _decide(
    message: Message,
    message_type: str,
    event: str,
    control_id: str,
    version: str,
    accession_fields: Sequence[str],
    issuer: str | None,
    zone: tzinfo | None,
) -> tuple[RisEvent, ...]:
    # HL7 v2.5 §2.9.2.1: the MSH checks; a failure rejects the message (AR).
    if not control_id:
        raise _refuse(AckCode.REJECT, ErrorCondition.REQUIRED_FIELD_MISSING, "MSH-10 (message control ID) is missing", "MSH", 10)
    if version not in SUPPORTED_VERSIONS:
        raise _refuse(
            AckCode.REJECT,
            ErrorCondition.UNSUPPORTED_VERSION_ID,
            f"HL7 version {shown(version)} is not supported (2.3 to 2.6 are)",
            "MSH",
            12,
        )
    if message_type not in ("ORU", "ORM"):
        raise _refuse(
            AckCode.REJECT,
            ErrorCondition.UNSUPPORTED_MESSAGE_TYPE,
            f"message type {shown(message_type)} is not supported (ORU^R01 and ORM^O01 are)",
            "MSH",
            9,
            1,
        )
    expected = "R01" if message_type == "ORU" else "O01"
    if event != expected:
        raise _refuse(
            AckCode.REJECT,
            ErrorCondition.UNSUPPORTED_EVENT_CODE,
            f"trigger event {shown(event)} is not supported for {message_type} ({expected} is)",
            "MSH",
            9,
            2,
        )
    pids = message.all("PID")
    if len(pids) > 1:
        raise _refuse(
            AckCode.ERROR,
            ErrorCondition.SEGMENT_SEQUENCE_ERROR,
            "more than one PID segment (one patient per message is supported)",
            "PID",
        )
    patient = _patient(pids[0] if pids else None, issuer)
    if message_type == "ORU":
        return _report_events(message, patient, accession_fields=accession_fields, zone=zone)
    return _order_events(message, patient, accession_fields=accession_fields, zone=zone)

