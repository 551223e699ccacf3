"""ITI-8 Patient Identity Feed (HL7 v2 ADT) for the Document Registry, sans-I/O.

Bytes in, bytes out: :func:`interpret` reads an ADT message and decides what it asks for,
:func:`build_ack` writes the HL7 acknowledgement, and :class:`PatientIdentityFeed` ties them to a
:class:`~registry.patients.PatientIdentitySink` (the registry store). Sockets live in
:mod:`xds.hl7.mllp`.

ITI TF-2a §3.8 defines the transaction on HL7 v2.3.1; v2.4 and v2.5/v2.5.1 feeds (``ADT^A01^ADT_A01``
with an EVN segment) are accepted too, and each is answered in its own version's ACK style.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime

from xds.hl7.v2 import (
    STANDARD_ENCODING,
    ErrorCondition,
    Field,
    Hl7ParseError,
    Message,
    Segment,
    decode_bytes,
    encode_repetition,
    parse_message,
)
from xds.hl7.ack import (
    AckCode,
    Nak,
    build_ack,
    encode_ack,
    header_facts,
    new_control_id,
    salvage_header,
    shown,
    utc_now,
)
from registry.patients import Patient, PatientIdentitySink, UnknownPatientError, cx_patient_id

logger = logging.getLogger(__name__)

# ITI TF-2a §3.8.4.1.2: A01, A04, A05 (admit/register) and A08 (update) all add or revise a patient.
ADD_OR_UPDATE_EVENTS = frozenset({"A01", "A04", "A05", "A08"})
# ITI TF-2a §3.8.4.2.2: A40 merges the patient of MRG-1 into the patient of PID-3.
MERGE_EVENT = "A40"
SUPPORTED_VERSIONS = frozenset({"2.3.1", "2.4", "2.5", "2.5.1"})
# ITI TF-2a §3.8.3: the transaction's base version, used when a message names none we can trust.
DEFAULT_VERSION = "2.3.1"

_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+\Z")
_BAD_ID_CHARACTERS = re.compile(r"[\x00-\x20\x7f^&~|\\]")
_DTM = re.compile(
    r"(?P<year>\d{4})(?:(?P<month>\d{2})(?:(?P<day>\d{2})"
    r"(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,4})?)?)?)?)?)?(?:[+-]\d{4})?\Z"
)
_HL7_NULL = '""'


def is_oid(value: str) -> bool:
    """True for a syntactically valid ISO OID of at most 64 characters (ITI TF-3 §4.2.3.1.7)."""
    return len(value) <= 64 and bool(_OID.match(value))


@dataclass(frozen=True, slots=True)
class AddOrUpdatePatient:
    """A01/A04/A05/A08: record the patient or refresh its demographics."""

    patient: Patient


@dataclass(frozen=True, slots=True)
class MergePatients:
    """A40: the patient ``merged_id`` (MRG-1) is subsumed by ``surviving_id`` (PID-3)."""

    surviving_id: str
    merged_id: str


FeedAction = AddOrUpdatePatient | MergePatients


@dataclass(frozen=True, slots=True)
class FeedRequest:
    """What one message asks for, or why it cannot be done, plus what the ACK must echo."""

    header: Segment | None
    message_type: str
    event: str
    control_id: str
    version: str
    action: FeedAction | None = None
    error: Nak | None = None
    codec: str | None = "utf-8"  # None: MSH-18 named a character set we cannot use


@dataclass(frozen=True, slots=True)
class FeedResult:
    """The outcome of one message: the encoded ACK and what was done."""

    ack: bytes
    ack_code: AckCode
    message_type: str
    control_id: str
    outcome: str
    reason: str
    condition: ErrorCondition = ErrorCondition.MESSAGE_ACCEPTED


class _Rejected(Exception):
    """Internal control flow: stop interpreting with this error."""

    def __init__(self, error: Nak) -> None:
        super().__init__(error.reason)
        self.error = error


def _fail(
    ack_code: AckCode,
    condition: ErrorCondition,
    reason: str,
    segment: str | None = None,
    field: int | None = None,
    component: int | None = None,
) -> _Rejected:
    return _Rejected(Nak(ack_code, condition, reason, segment, field, component))


# -- reading the message ------------------------------------------------------------------------


def _id_number(cx: str) -> str:
    """CX.1 of a CX text, for reasons that must show only the identifier."""
    return cx.split("^", 1)[0]


def choose_patient_id(
    field: Field, *, affinity_domain_oid: str | None, segment: str, position: int
) -> str:
    """Pick the affinity-domain ID from a CX list (PID-3 or MRG-1), as ``id^^^&OID&ISO``.

    ITI TF-2a §3.8.4.1.3: the registry keeps only the identifier whose assigning authority (CX.4,
    ``&OID&ISO`` or ``NAME&OID&ISO``) is the affinity domain's; the others are ignored. Without a
    configured OID, the first repetition with an ISO universal ID is taken. The namespace ID and
    every other component are dropped (ITI TF-3 §4.2.3.2.16).
    """
    where = f"{segment}-{position}"
    if not field:
        raise _fail(
            AckCode.ERROR,
            ErrorCondition.REQUIRED_FIELD_MISSING,
            f"{where} (patient identifier list) is missing",
            segment,
            position,
        )
    for rep in field:
        id_number = rep[0][0] if rep and rep[0] else ""
        authority = rep[3] if len(rep) > 3 else ()
        universal_id = authority[1] if len(authority) > 1 else ""
        universal_type = authority[2] if len(authority) > 2 else ""
        if universal_type != "ISO" or not is_oid(universal_id):
            continue
        if affinity_domain_oid is not None and universal_id != affinity_domain_oid:
            continue
        if not id_number or id_number == _HL7_NULL:
            raise _fail(
                AckCode.ERROR,
                ErrorCondition.REQUIRED_FIELD_MISSING,
                f"{where} identifier assigned by {universal_id} has an empty ID number",
                segment,
                position,
                1,
            )
        if _BAD_ID_CHARACTERS.search(id_number):
            raise _fail(
                AckCode.ERROR,
                ErrorCondition.DATA_TYPE_ERROR,
                f"{where} ID number assigned by {universal_id} holds a space, control or delimiter character",
                segment,
                position,
                1,
            )
        return cx_patient_id(id_number, universal_id)
    wanted = f"assigned by {affinity_domain_oid}" if affinity_domain_oid else "with an ISO assigning authority"
    raise _fail(
        AckCode.ERROR,
        ErrorCondition.UNKNOWN_KEY_IDENTIFIER,
        f"no {where} identifier {wanted}",
        segment,
        position,
        4,
    )


def _demographic(value: str) -> str | None:
    """A demographic value, with HL7's explicit null (``""``) and absence both as None."""
    return None if value in ("", _HL7_NULL) else value


def _birth_date(pid: Segment) -> str | None:
    """PID-7 as DT text (``YYYY[MM[DD]]``); the time of birth, if sent, is dropped."""
    raw = _demographic(pid.value(7))
    if raw is None:
        return None
    match = _DTM.match(raw)
    if match is not None:
        year, month, day = match["year"], match["month"] or "", match["day"] or ""
        try:
            date(int(year), int(month or 1), int(day or 1))
        except ValueError:
            pass
        else:
            return year + month + day
    raise _fail(
        AckCode.ERROR, ErrorCondition.DATA_TYPE_ERROR, "PID-7 (date of birth) is not a valid date", "PID", 7
    )


def _patient(pid: Segment, patient_id: str) -> Patient:
    """The patient of a PID segment (ITI TF-2a §3.8.4.1.2.3, Table 3.8-2)."""
    # PID-5: prefer the legal name (XPN.7 = L); the name type is optional (NIST toolkit issue #260).
    names = pid.field(5)
    chosen = next(
        (i for i, rep in enumerate(names, 1) if len(rep) > 6 and rep[6] and rep[6][0] == "L"), 1
    )
    return Patient(
        patient_id=patient_id,
        family_name=_demographic(pid.value(5, 1, 1, repetition=chosen)),
        given_name=_demographic(pid.value(5, 2, 1, repetition=chosen)),
        birth_date=_birth_date(pid),
        sex=_demographic(pid.value(8)),
        identifiers=tuple(encode_repetition(rep, STANDARD_ENCODING) for rep in pid.field(3)),
    )


def _check_structure(message: Message, event: str) -> tuple[Segment, Segment | None]:
    """The PID (and for A40 the MRG) segment, in the order the message structure requires.

    ADT_A01/ADT_A05 (HL7 v2.3.1 §3.3.1): MSH, EVN, PID, ... ; ADT_A39 (§3.3.40): MSH, EVN,
    {PID, [PD1], MRG, [PV1]}. EVN and PV1 are not demanded: Patient Identity Sources in the
    field omit them, and they carry nothing the registry uses. One patient group per message.
    """
    pids = [i for i, s in enumerate(message.segments) if s.name == "PID"]
    if not pids:
        raise _fail(AckCode.ERROR, ErrorCondition.SEGMENT_SEQUENCE_ERROR, "the PID segment is missing", "PID")
    if len(pids) > 1:
        raise _fail(
            AckCode.ERROR,
            ErrorCondition.SEGMENT_SEQUENCE_ERROR,
            "more than one PID segment (one patient per message is supported)",
            "PID",
        )
    evn = message.index("EVN")
    if evn is not None and evn > pids[0]:
        raise _fail(AckCode.ERROR, ErrorCondition.SEGMENT_SEQUENCE_ERROR, "the EVN segment follows PID", "EVN")
    pid = message.segments[pids[0]]
    if event != MERGE_EVENT:
        return pid, None
    mrgs = [i for i, s in enumerate(message.segments) if s.name == "MRG"]
    if not mrgs:
        raise _fail(
            AckCode.ERROR, ErrorCondition.SEGMENT_SEQUENCE_ERROR, "the MRG segment is missing (required for A40)", "MRG"
        )
    if len(mrgs) > 1:
        raise _fail(
            AckCode.ERROR,
            ErrorCondition.SEGMENT_SEQUENCE_ERROR,
            "more than one MRG segment (one merge per message is supported)",
            "MRG",
        )
    if mrgs[0] < pids[0]:
        raise _fail(AckCode.ERROR, ErrorCondition.SEGMENT_SEQUENCE_ERROR, "the MRG segment precedes PID", "MRG")
    return pid, message.segments[mrgs[0]]


def interpret(data: bytes, *, affinity_domain_oid: str | None = None) -> FeedRequest:
    """Read one ADT message and decide what it asks for (no I/O, no store access)."""
    try:
        text, codec = decode_bytes(data)
    except Hl7ParseError as exc:
        header = salvage_header(data.decode("latin-1"))
        return replace(_parse_failure(header, exc), codec=None)
    try:
        message = parse_message(text)
    except Hl7ParseError as exc:
        return replace(_parse_failure(salvage_header(text), exc), codec=codec)
    header = message.header
    message_type, event, control_id, version = header_facts(header)
    request = FeedRequest(
        header, f"{message_type}^{event}" if event else message_type, event, control_id, version, codec=codec
    )
    try:
        action = _decide(message, message_type, event, control_id, version, affinity_domain_oid)
    except _Rejected as rejected:
        return replace(request, error=rejected.error)
    return replace(request, action=action)


def _parse_failure(header: Segment | None, exc: Hl7ParseError) -> FeedRequest:
    # HL7 v2.5 §2.9.2: a message the receiver cannot process at all is rejected (AR).
    error = Nak(AckCode.REJECT, exc.condition, f"the message cannot be parsed: {exc.reason}", exc.segment)
    if header is None:
        return FeedRequest(None, "", "", "", DEFAULT_VERSION, error=error)
    message_type, event, control_id, version = header_facts(header)
    return FeedRequest(
        header, f"{message_type}^{event}" if event else message_type, event, control_id, version, error=error
    )


def _decide(
    message: Message,
    message_type: str,
    event: str,
    control_id: str,
    version: str,
    affinity_domain_oid: str | None,
) -> FeedAction:
    # HL7 v2.5 §2.9.2.1: the MSH checks; a failure rejects the message (AR).
    if not control_id:
        raise _fail(
            AckCode.REJECT, ErrorCondition.REQUIRED_FIELD_MISSING, "MSH-10 (message control ID) is missing", "MSH", 10
        )
    if not version:
        raise _fail(AckCode.REJECT, ErrorCondition.REQUIRED_FIELD_MISSING, "MSH-12 (version ID) is missing", "MSH", 12)
    if version not in SUPPORTED_VERSIONS:
        raise _fail(
            AckCode.REJECT,
            ErrorCondition.UNSUPPORTED_VERSION_ID,
            f"HL7 version {shown(version)} is not supported (2.3.1, 2.4, 2.5, 2.5.1 are)",
            "MSH",
            12,
        )
    if message_type != "ADT":
        raise _fail(
            AckCode.REJECT,
            ErrorCondition.UNSUPPORTED_MESSAGE_TYPE,
            f"message type {shown(message_type)} is not supported (ADT is)",
            "MSH",
            9,
            1,
        )
    if event not in ADD_OR_UPDATE_EVENTS and event != MERGE_EVENT:
        raise _fail(
            AckCode.REJECT,
            ErrorCondition.UNSUPPORTED_EVENT_CODE,
            f"trigger event {shown(event)} is not supported (A01, A04, A05, A08, A40 are)",
            "MSH",
            9,
            2,
        )
    pid, mrg = _check_structure(message, event)
    surviving = choose_patient_id(pid.field(3), affinity_domain_oid=affinity_domain_oid, segment="PID", position=3)
    if mrg is None:
        return AddOrUpdatePatient(_patient(pid, surviving))
    merged = choose_patient_id(mrg.field(1), affinity_domain_oid=affinity_domain_oid, segment="MRG", position=1)
    if merged == surviving:
        raise _fail(
            AckCode.ERROR,
            ErrorCondition.DUPLICATE_KEY_IDENTIFIER,
            f"MRG-1 and PID-3 name the same patient {_id_number(surviving)}",
            "MRG",
            1,
        )
    return MergePatients(surviving_id=surviving, merged_id=merged)


# -- the acknowledgement (ITI TF-2x §C.2.3; HL7 v2.5 §2.14.1 ACK) -----------------------------------


# -- the receiver -------------------------------------------------------------------------------


class PatientIdentityFeed:
    """The Document Registry side of ITI-8: ``feed(message_bytes) -> ack_bytes``.

    Synchronous, because the store is; the MLLP adapter runs it in a worker thread. It never
    raises: every failure becomes an AE or AR acknowledgement.
    """

    def __init__(
        self,
        sink: PatientIdentitySink,
        *,
        affinity_domain_oid: str | None = None,
        application: str = "XDS_REGISTRY",
        facility: str = "",
        control_ids: Callable[[], str] = new_control_id,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if affinity_domain_oid is not None and not is_oid(affinity_domain_oid):
            raise ValueError(f"affinity_domain_oid {affinity_domain_oid!r} is not an OID")
        self._sink = sink
        self._oid = affinity_domain_oid
        self._application = application
        self._facility = facility
        self._control_ids = control_ids
        self._clock = clock

    def __call__(self, data: bytes) -> bytes:
        return self.handle(data).ack

    def handle(self, data: bytes) -> FeedResult:
        """Interpret one message, apply it to the store, and build the acknowledgement."""
        try:
            request = interpret(data, affinity_domain_oid=self._oid)
        except Exception as exc:  # a defect, not bad input: answer anyway
            logger.error("ITI-8 interpretation failed: %s", type(exc).__name__)
            logger.debug("ITI-8 interpretation failure", exc_info=True)
            request = FeedRequest(
                None,
                "",
                "",
                "",
                DEFAULT_VERSION,
                error=Nak(AckCode.ERROR, ErrorCondition.APPLICATION_INTERNAL_ERROR, "internal error"),
            )
        if request.error is not None:
            return self._answer(request, request.error, outcome="rejected")
        assert request.action is not None
        return self._apply(request, request.action)

    def reject_oversize(self, prefix: bytes, limit: int) -> bytes:
        """The AR for a message over the size limit; echoes MSH-10 when the prefix holds a full MSH."""
        try:
            codec: str | None = decode_bytes(prefix)[1]
        except Hl7ParseError:
            codec = None
        text = prefix.decode(codec or "latin-1", errors="replace")
        header = salvage_header(text) if ("\r" in text or "\n" in text) else None
        error = Nak(
            AckCode.REJECT,
            ErrorCondition.APPLICATION_INTERNAL_ERROR,
            f"the message exceeds the maximum size of {limit} bytes",
        )
        if header is None:
            request = FeedRequest(None, "", "", "", DEFAULT_VERSION, error=error, codec=codec)
        else:
            message_type, event, control_id, version = header_facts(header)
            request = FeedRequest(
                header, f"{message_type}^{event}", event, control_id, version, error=error, codec=codec
            )
        return self._answer(request, error, outcome="rejected").ack

    def _apply(self, request: FeedRequest, action: FeedAction) -> FeedResult:
        try:
            if isinstance(action, AddOrUpdatePatient):
                created = self._sink.add_or_update(action.patient)
                outcome = "created" if created else "updated"
                pid = action.patient.patient_id
                text = f"patient {_id_number(pid)} {outcome}"
            else:
                self._sink.merge(surviving_id=action.surviving_id, merged_id=action.merged_id)
                outcome = "merged"
                text = f"patient {_id_number(action.merged_id)} merged into {_id_number(action.surviving_id)}"
        except UnknownPatientError as exc:
            error = Nak(
                AckCode.ERROR,
                ErrorCondition.UNKNOWN_KEY_IDENTIFIER,
                f"patient {_id_number(exc.patient_id)} is not known",
                "MRG" if isinstance(action, MergePatients) else "PID",
                1 if isinstance(action, MergePatients) else 3,
            )
            return self._answer(request, error, outcome="rejected")
        except Exception as exc:  # the store failed; say so without its message (it may hold PHI)
            logger.error("ITI-8 store call failed: %s", type(exc).__name__)
            logger.debug("ITI-8 store failure", exc_info=True)
            error = Nak(
                AckCode.ERROR, ErrorCondition.APPLICATION_INTERNAL_ERROR, "the registry could not record the feed"
            )
            return self._answer(request, error, outcome="rejected")
        return self._answer(request, None, outcome=outcome, text=text)

    def _answer(
        self, request: FeedRequest, error: Nak | None, *, outcome: str, text: str = ""
    ) -> FeedResult:
        ack_code = AckCode.ACCEPT if error is None else error.ack_code
        reason = text if error is None else error.reason
        ack = build_ack(
            request.header,
            ack_code=ack_code,
            text=reason,
            error=error,
            control_id=self._control_ids(),
            timestamp=self._clock(),
            application=self._application,
            facility=self._facility,
            default_version=DEFAULT_VERSION,
            echo_charset=request.codec is not None,
        )
        condition = ErrorCondition.MESSAGE_ACCEPTED if error is None else error.condition
        message_type = shown(request.message_type, 32) if request.message_type else "(unparsed)"
        control_id = request.control_id[:64]
        if error is None:
            logger.info("ITI-8 %s control_id=%r: %s %s", message_type, control_id, ack_code.value, outcome)
        else:
            logger.info(
                "ITI-8 %s control_id=%r: %s %d %s", message_type, control_id, ack_code.value, int(condition), reason
            )
        return FeedResult(
            ack=encode_ack(ack, codec=request.codec),
            ack_code=ack_code,
            message_type=request.message_type,
            control_id=request.control_id,
            outcome=outcome,
            reason=reason,
            condition=condition,
        )
