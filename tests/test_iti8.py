"""ITI-8 Patient Identity Feed: what each ADT message does to the store, and the ACK it gets."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import count

import hl7  # python-hl7, an independent reader of our ACKs
import pytest

from xds.hl7.v2 import ErrorCondition, Message, parse_message
from registry.iti8 import (
    AckCode,
    AddOrUpdatePatient,
    MergePatients,
    PatientIdentityFeed,
    interpret,
)
from registry.patients import Patient, PatientIdentitySink, UnknownPatientError

OID = "1.3.6.1.4.1.21367.13.20.1000"
OTHER_OID = "1.2.840.113619.6.197"
BLUE = f"IHEBLUE-1234^^^&{OID}&ISO"
RED = f"IHERED-77^^^&{OID}&ISO"


@dataclass
class MemorySink:
    """A small in-memory PatientIdentitySink that records every call."""

    patients: dict[str, Patient] = field(default_factory=dict)
    merged: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, object]] = field(default_factory=list)
    fail_with: Exception | None = None

    def add_or_update(self, patient: Patient) -> bool:
        self.calls.append(("add_or_update", patient))
        if self.fail_with is not None:
            raise self.fail_with
        created = patient.patient_id not in self.patients
        self.patients[patient.patient_id] = patient
        return created

    def merge(self, *, surviving_id: str, merged_id: str) -> None:
        self.calls.append(("merge", (surviving_id, merged_id)))
        if self.fail_with is not None:
            raise self.fail_with
        if merged_id not in self.patients:
            raise UnknownPatientError(merged_id)
        del self.patients[merged_id]
        self.merged[merged_id] = surviving_id

    def is_known(self, patient_id: str) -> bool:
        return patient_id in self.patients


def adt(
    event: str = "A01",
    *,
    version: str = "2.3.1",
    control_id: str = "NIST-123",
    pid3: str = f"IHEBLUE-1234^^^&{OID}&ISO",
    name: str = "BLUE^JOHN",
    birth: str = "19600101",
    sex: str = "M",
    message_type: str | None = None,
    mrg: str | None = None,
    evn: bool = True,
    pid: bool = True,
) -> bytes:
    """A NIST-style ADT message: v2.3.1 as the NIST toolkit sends it, v2.5 with the structure ID."""
    structure = {"A40": "ADT_A39", "A05": "ADT_A05"}.get(event, "ADT_A01")
    msh9 = message_type or (f"ADT^{event}^{structure}" if version != "2.3.1" else f"ADT^{event}")
    segments = [
        f"MSH|^~\\&|NIST_SENDER^^|NIST^^|NIST_RECEIVER^^|NIST^^|20240101120000||{msh9}|{control_id}|P|{version}"
    ]
    if evn:
        segments.append(f"EVN|{event}|20240101120000")
    if pid:
        segments.append(f"PID|||{pid3}||{name}||{birth}|{sex}|||100 MAIN ST^^SPRINGFIELD^IL^62701")
    if mrg is not None:
        segments.append(f"MRG|{mrg}")
    segments.append("PV1||O")
    return ("\r".join(segments) + "\r").encode("ascii")


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


def make_feed(sink: PatientIdentitySink, *, oid: str | None = OID) -> PatientIdentityFeed:
    ids = count(1)
    return PatientIdentityFeed(
        sink,
        affinity_domain_oid=oid,
        application="XDS_REGISTRY",
        control_ids=lambda: f"ACK-{next(ids)}",
        clock=lambda: datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    )


@pytest.fixture
def feed(sink: MemorySink) -> PatientIdentityFeed:
    return make_feed(sink)


def ack_of(data: bytes) -> Message:
    return parse_message(data.decode("utf-8"))


def msa(ack: Message) -> tuple[str, str, str]:
    segment = ack.first("MSA")
    assert segment is not None
    return segment.value(1), segment.value(2), segment.value(3)


# -- add or update ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.3.1", "2.5"])
@pytest.mark.parametrize("event", ["A01", "A04", "A05", "A08"])
def test_admit_register_update_creates_then_updates(
    feed: PatientIdentityFeed, sink: MemorySink, event: str, version: str
) -> None:
    first = feed.handle(adt(event, version=version, control_id="C-1"))
    assert (first.ack_code, first.outcome) == (AckCode.ACCEPT, "created")
    assert sink.patients[BLUE].family_name == "BLUE"

    second = feed.handle(adt(event, version=version, control_id="C-2", name="BLUE-GREEN^JOHN^Q"))
    assert (second.ack_code, second.outcome) == (AckCode.ACCEPT, "updated")
    assert list(sink.patients) == [BLUE]
    assert sink.patients[BLUE].family_name == "BLUE-GREEN"

    ack = ack_of(second.ack)
    assert msa(ack)[:2] == ("AA", "C-2")
    assert ack.first("ERR") is None
    assert ack.header.value(10) == "ACK-2"
    assert ack.header.value(12) == version


def test_a_known_patient_fed_again_is_accepted(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    sink.patients[BLUE] = Patient(BLUE)
    result = feed.handle(adt("A04"))
    assert result.ack_code is AckCode.ACCEPT
    assert msa(ack_of(result.ack))[0] == "AA"
    assert result.outcome == "updated"


def test_the_patient_carries_the_normalised_id_and_demographics(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    pid3 = f"L-77^^^HOSP&{OTHER_OID}&ISO^MR~IHEBLUE-1234^^^NIST2010&{OID}&ISO^PI"
    feed.handle(adt("A01", pid3=pid3, name="BLUE^JOHN^Q^^^^L", birth="196001011230", sex="M"))
    patient = sink.patients[BLUE]
    assert patient == Patient(
        patient_id=BLUE,
        family_name="BLUE",
        given_name="JOHN",
        birth_date="19600101",
        sex="M",
        identifiers=(f"L-77^^^HOSP&{OTHER_OID}&ISO^MR", f"IHEBLUE-1234^^^NIST2010&{OID}&ISO^PI"),
    )


def test_the_legal_name_repetition_is_preferred(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    feed.handle(adt("A08", name="JOHNNY^B^^^^^A~BLUE^JOHN^^^^^L"))
    assert (sink.patients[BLUE].family_name, sink.patients[BLUE].given_name) == ("BLUE", "JOHN")


def test_name_without_name_type_and_absent_demographics_are_accepted(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    result = feed.handle(adt("A01", name="BLUE", birth="", sex='""'))
    assert result.ack_code is AckCode.ACCEPT
    patient = sink.patients[BLUE]
    assert (patient.family_name, patient.given_name, patient.birth_date, patient.sex) == ("BLUE", None, None, None)


def test_partial_birth_date_keeps_its_precision(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    feed.handle(adt("A01", birth="196005"))
    assert sink.patients[BLUE].birth_date == "196005"


def test_patient_ids_with_hyphens_and_dots_work(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    result = feed.handle(adt("A04", pid3=f"P-2024-01.7^^^&{OID}&ISO"))
    assert result.ack_code is AckCode.ACCEPT
    assert sink.is_known(f"P-2024-01.7^^^&{OID}&ISO")


def test_without_a_configured_oid_the_first_iso_identifier_is_taken(sink: MemorySink) -> None:
    feed = make_feed(sink, oid=None)
    pid3 = f"LOCAL1^^^HOSP~L-77^^^&{OTHER_OID}&ISO~IHEBLUE-1234^^^&{OID}&ISO"
    assert feed.handle(adt("A01", pid3=pid3)).ack_code is AckCode.ACCEPT
    assert list(sink.patients) == [f"L-77^^^&{OTHER_OID}&ISO"]


def test_interpret_is_pure_and_returns_the_action() -> None:
    request = interpret(adt("A05"), affinity_domain_oid=OID)
    assert request.error is None
    assert isinstance(request.action, AddOrUpdatePatient)
    assert request.action.patient.patient_id == BLUE
    assert (request.message_type, request.control_id, request.version) == ("ADT^A05", "NIST-123", "2.3.1")


# -- merge --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.3.1", "2.5"])
def test_a40_merges_mrg_1_into_pid_3(feed: PatientIdentityFeed, sink: MemorySink, version: str) -> None:
    sink.patients[BLUE] = Patient(BLUE)
    sink.patients[RED] = Patient(RED)
    result = feed.handle(
        adt("A40", version=version, pid3=f"IHEBLUE-1234^^^NIST&{OID}&ISO^PI", mrg=f"IHERED-77^^^&{OID}&ISO")
    )
    assert result.ack_code is AckCode.ACCEPT
    assert result.outcome == "merged"
    assert sink.calls == [("merge", (BLUE, RED))]
    assert sink.merged == {RED: BLUE}
    assert msa(ack_of(result.ack))[:2] == ("AA", "NIST-123")


def test_a40_interprets_to_a_merge_action() -> None:
    request = interpret(adt("A40", mrg=f"IHERED-77^^^&{OID}&ISO"), affinity_domain_oid=OID)
    assert request.action == MergePatients(surviving_id=BLUE, merged_id=RED)


def test_a40_without_mrg_is_an_application_error(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    result = feed.handle(adt("A40", version="2.5"))
    assert result.ack_code is AckCode.ERROR
    assert result.condition is ErrorCondition.SEGMENT_SEQUENCE_ERROR
    assert "MRG segment is missing" in result.reason
    assert sink.calls == []
    err = ack_of(result.ack).first("ERR")
    assert err is not None
    assert err.value(3, 1) == "100"


def test_a40_merging_a_patient_into_itself_is_refused(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    result = feed.handle(adt("A40", mrg=f"IHEBLUE-1234^^^&{OID}&ISO"))
    assert result.ack_code is AckCode.ERROR
    assert result.condition is ErrorCondition.DUPLICATE_KEY_IDENTIFIER
    assert sink.calls == []


def test_a40_for_an_unknown_patient_reports_an_unknown_key(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    result = feed.handle(adt("A40", version="2.5", mrg=f"IHERED-77^^^&{OID}&ISO"))
    assert result.ack_code is AckCode.ERROR
    assert result.condition is ErrorCondition.UNKNOWN_KEY_IDENTIFIER
    assert result.reason == "patient IHERED-77 is not known"
    err = ack_of(result.ack).first("ERR")
    assert err is not None
    assert (err.value(2, 1), err.value(2, 3), err.value(3, 1), err.value(4)) == ("MRG", "1", "204", "E")


def test_a40_mrg_without_an_affinity_domain_id(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    result = feed.handle(adt("A40", mrg=f"IHERED-77^^^&{OTHER_OID}&ISO"))
    assert result.ack_code is AckCode.ERROR
    assert result.reason == f"no MRG-1 identifier assigned by {OID}"
    assert sink.calls == []


# -- rejections ---------------------------------------------------------------------------------


def test_unsupported_event_v25_is_rejected_with_err_3(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    result = feed.handle(adt("A03", version="2.5", control_id="DISCH-1"))
    assert result.ack_code is AckCode.REJECT
    ack = ack_of(result.ack)
    assert msa(ack) == ("AR", "DISCH-1", "trigger event A03 is not supported (A01, A04, A05, A08, A40 are)")
    assert (ack.header.value(9, 1), ack.header.value(9, 2), ack.header.value(9, 3)) == ("ACK", "A03", "ACK")
    err = ack.first("ERR")
    assert err is not None
    assert err.field(1) == ()
    assert (err.value(2, 1), err.value(2, 2), err.value(2, 3), err.value(2, 5)) == ("MSH", "1", "9", "2")
    assert (err.value(3, 1), err.value(3, 2), err.value(3, 3)) == ("201", "Unsupported event code", "HL70357")
    assert err.value(4) == "E"
    assert err.value(8) == "trigger event A03 is not supported (A01, A04, A05, A08, A40 are)"
    assert sink.calls == []


def test_unsupported_event_v231_is_rejected_with_err_1(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    result = feed.handle(adt("A03", version="2.3.1"))
    ack = ack_of(result.ack)
    assert msa(ack)[:2] == ("AR", "NIST-123")
    assert (ack.header.value(9, 1), ack.header.value(9, 2), ack.header.value(9, 3)) == ("ACK", "A03", "")
    err = ack.first("ERR")
    assert err is not None
    assert (err.value(1, 1), err.value(1, 2), err.value(1, 3)) == ("MSH", "1", "9")
    assert (err.value(1, 4, 1), err.value(1, 4, 2), err.value(1, 4, 3)) == ("201", "Unsupported event code", "HL70357")
    assert sink.calls == []


@pytest.mark.parametrize(
    ("message", "condition", "reason"),
    [
        (adt(message_type="ORU^R01^ORU_R01", version="2.5"), ErrorCondition.UNSUPPORTED_MESSAGE_TYPE,
         "message type ORU is not supported (ADT is)"),
        (adt(message_type="ADT", version="2.5"), ErrorCondition.UNSUPPORTED_EVENT_CODE,
         "trigger event (empty) is not supported (A01, A04, A05, A08, A40 are)"),
        (adt(version="2.2"), ErrorCondition.UNSUPPORTED_VERSION_ID,
         "HL7 version 2.2 is not supported (2.3.1, 2.4, 2.5, 2.5.1 are)"),
        (adt(control_id=""), ErrorCondition.REQUIRED_FIELD_MISSING, "MSH-10 (message control ID) is missing"),
    ],
)
def test_header_problems_are_rejected(
    feed: PatientIdentityFeed, sink: MemorySink, message: bytes, condition: ErrorCondition, reason: str
) -> None:
    result = feed.handle(message)
    assert (result.ack_code, result.condition, result.reason) == (AckCode.REJECT, condition, reason)
    assert msa(ack_of(result.ack))[0] == "AR"
    assert sink.calls == []


@pytest.mark.parametrize(
    "garbage",
    [b"", b"hello world", b"\x00\xff\xfe\x01", b"PID|||1^^^&1.2&ISO\r", b"MSH|\r", "MSH|^~\\&|\u00e9".encode("utf-16")],
)
def test_garbage_is_rejected_without_touching_the_store(
    feed: PatientIdentityFeed, sink: MemorySink, garbage: bytes
) -> None:
    result = feed.handle(garbage)
    assert result.ack_code is AckCode.REJECT
    ack = ack_of(result.ack)
    assert msa(ack)[:2] == ("AR", "")
    assert msa(ack)[2].startswith("the message cannot be parsed")
    assert ack.header.value(3) == "XDS_REGISTRY"
    assert ack.header.value(12) == "2.3.1"
    err = ack.first("ERR")
    assert err is not None and err.value(1, 4, 1) in {"100", "102"}
    assert sink.calls == []


def test_a_bad_body_still_echoes_the_control_id(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    broken = adt("A01", version="2.5", control_id="CTL-9", name="BLUE\\S^JOHN")  # unterminated escape
    result = feed.handle(broken)
    assert result.ack_code is AckCode.REJECT
    assert result.condition is ErrorCondition.DATA_TYPE_ERROR
    ack = ack_of(result.ack)
    assert msa(ack)[:2] == ("AR", "CTL-9")
    assert (ack.header.value(5), ack.header.value(6)) == ("NIST_SENDER", "NIST")
    assert sink.calls == []


def test_missing_pid_segment(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    result = feed.handle(adt("A01", pid=False))
    assert (result.ack_code, result.condition) == (AckCode.ERROR, ErrorCondition.SEGMENT_SEQUENCE_ERROR)
    assert result.reason == "the PID segment is missing"
    assert msa(ack_of(result.ack)) == ("AE", "NIST-123", "the PID segment is missing")
    assert sink.calls == []


def test_missing_pid_3(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    result = feed.handle(adt("A04", version="2.5", pid3=""))
    assert (result.ack_code, result.condition) == (AckCode.ERROR, ErrorCondition.REQUIRED_FIELD_MISSING)
    assert result.reason == "PID-3 (patient identifier list) is missing"
    err = ack_of(result.ack).first("ERR")
    assert err is not None
    assert (err.value(2, 1), err.value(2, 3), err.value(3, 1)) == ("PID", "3", "101")
    assert sink.calls == []


def test_no_identifier_in_the_affinity_domain(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    result = feed.handle(adt("A01", pid3=f"L-77^^^HOSP&{OTHER_OID}&ISO~X-1^^^NS"))
    assert (result.ack_code, result.condition) == (AckCode.ERROR, ErrorCondition.UNKNOWN_KEY_IDENTIFIER)
    assert result.reason == f"no PID-3 identifier assigned by {OID}"
    ack = ack_of(result.ack)
    assert msa(ack) == ("AE", "NIST-123", result.reason)
    err = ack.first("ERR")
    assert err is not None
    assert (err.value(1, 1), err.value(1, 3), err.value(1, 4, 1)) == ("PID", "3", "204")
    assert sink.calls == []


def test_an_affinity_domain_oid_with_a_non_iso_type_does_not_count(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    result = feed.handle(adt("A01", pid3=f"IHEBLUE-1234^^^&{OID}&L"))
    assert result.condition is ErrorCondition.UNKNOWN_KEY_IDENTIFIER
    assert sink.calls == []


@pytest.mark.parametrize("bad_id", ["IHE BLUE", "IHE\\S\\BLUE", "IHE\\T\\BLUE"])
def test_identifier_with_forbidden_characters(feed: PatientIdentityFeed, sink: MemorySink, bad_id: str) -> None:
    result = feed.handle(adt("A01", pid3=f"{bad_id}^^^&{OID}&ISO"))
    assert (result.ack_code, result.condition) == (AckCode.ERROR, ErrorCondition.DATA_TYPE_ERROR)
    assert sink.calls == []


def test_empty_id_number_in_the_affinity_domain(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    result = feed.handle(adt("A01", pid3=f"^^^&{OID}&ISO"))
    assert (result.ack_code, result.condition) == (AckCode.ERROR, ErrorCondition.REQUIRED_FIELD_MISSING)
    assert sink.calls == []


@pytest.mark.parametrize("birth", ["1960-01-01", "19601301", "19600230", "60"])
def test_invalid_birth_date(feed: PatientIdentityFeed, sink: MemorySink, birth: str) -> None:
    result = feed.handle(adt("A01", birth=birth))
    assert (result.ack_code, result.condition) == (AckCode.ERROR, ErrorCondition.DATA_TYPE_ERROR)
    assert result.reason == "PID-7 (date of birth) is not a valid date"
    assert birth not in result.ack.decode()
    assert sink.calls == []


def test_two_pid_segments_are_refused(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    message = adt("A01").replace(b"PV1||O\r", f"PID|||IHERED-77^^^&{OID}&ISO\rPV1||O\r".encode())
    result = feed.handle(message)
    assert (result.ack_code, result.condition) == (AckCode.ERROR, ErrorCondition.SEGMENT_SEQUENCE_ERROR)
    assert sink.calls == []


def test_a_failing_store_gives_ae_without_its_message(
    feed: PatientIdentityFeed, sink: MemorySink, caplog: pytest.LogCaptureFixture
) -> None:
    sink.fail_with = RuntimeError("INSERT failed for BLUE JOHN 19600101")
    with caplog.at_level(logging.INFO, logger="registry.iti8"):
        result = feed.handle(adt("A01"))
    assert (result.ack_code, result.condition) == (AckCode.ERROR, ErrorCondition.APPLICATION_INTERNAL_ERROR)
    assert result.reason == "the registry could not record the feed"
    assert b"JOHN" not in result.ack and b"19600101" not in result.ack
    assert "JOHN" not in caplog.text and "19600101" not in caplog.text
    assert "RuntimeError" in caplog.text


# -- ACK details and privacy --------------------------------------------------------------------


def test_ack_header_swaps_sender_and_receiver_v25(feed: PatientIdentityFeed) -> None:
    ack = ack_of(feed(adt("A01", version="2.5")))
    header = ack.header
    assert header.field(3) == ((("NIST_RECEIVER",), ("",), ("",)),)
    assert (header.value(4), header.value(5), header.value(6)) == ("NIST", "NIST_SENDER", "NIST")
    assert header.value(7) == "20240102030405+0000"
    assert (header.value(9, 1), header.value(9, 2), header.value(9, 3)) == ("ACK", "A01", "ACK")
    assert (header.value(10), header.value(11), header.value(12)) == ("ACK-1", "P", "2.5")
    assert msa(ack) == ("AA", "NIST-123", "patient IHEBLUE-1234 created")


def test_ack_v231_message_type_has_no_structure(feed: PatientIdentityFeed) -> None:
    header = ack_of(feed(adt("A04"))).header
    assert [c[0] for c in header.field(9)[0]] == ["ACK", "A04"]


def test_ack_reads_the_same_with_python_hl7(feed: PatientIdentityFeed) -> None:
    ack = hl7.parse(feed(adt("A01", version="2.5", pid3="")).decode())
    assert str(ack["MSA.F1"]) == "AE"
    assert str(ack["MSA.F2"]) == "NIST-123"
    assert str(ack["ERR.F3.R1.C1"]) == "101"
    assert str(ack["ERR.F4"]) == "E"
    assert str(ack["ERR.F8"]) == "PID-3 (patient identifier list) is missing"


def test_ack_answers_in_the_message_character_set(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    text = (
        "MSH|^~\\&|KLINIK\u00dc|HOSP|REG|HOSP|20240101||ADT^A01^ADT_A01|L1|P|2.5||||||8859/1\r"
        f"PID|||IHEBLUE-1234^^^&{OID}&ISO||M\u00dcLLER^J\u00dcRGEN||19600101|M\r"
    )
    result = feed.handle(text.encode("latin-1"))
    assert result.ack_code is AckCode.ACCEPT
    assert sink.patients[BLUE].family_name == "M\u00dcLLER"
    ack = parse_message(result.ack.decode("latin-1"))
    assert ack.header.value(5) == "KLINIK\u00dc"
    assert ack.header.value(18) == "8859/1"


def test_long_reasons_are_cut_to_the_msa_3_limit(feed: PatientIdentityFeed) -> None:
    long_id = "X" * 150
    result = feed.handle(adt("A40", version="2.5", pid3=f"{long_id}^^^&{OID}&ISO", mrg=f"{long_id}^^^&{OID}&ISO"))
    ack = ack_of(result.ack)
    assert len(msa(ack)[2]) == 80
    err = ack.first("ERR")
    assert err is not None
    assert err.value(8) == result.reason and len(result.reason) > 80


def test_errors_and_logs_never_show_name_or_birth_date(
    feed: PatientIdentityFeed, caplog: pytest.LogCaptureFixture
) -> None:
    messages = [
        adt("A01"),
        adt("A03"),
        adt("A01", pid3=f"X^^^&{OTHER_OID}&ISO"),
        adt("A01", birth="19600230"),
        adt("A40", mrg=f"IHEBLUE-1234^^^&{OID}&ISO"),
    ]
    with caplog.at_level(logging.DEBUG, logger="registry"):
        acks = [feed(m) for m in messages]
    for ack in acks:
        assert b"BLUE^JOHN" not in ack and b"JOHN" not in ack and b"1960" not in ack
    assert "JOHN" not in caplog.text and "1960" not in caplog.text
    assert "control_id='NIST-123'" in caplog.text
    assert "ADT^A01" in caplog.text and "AA created" in caplog.text


def test_patient_repr_hides_demographics() -> None:
    patient = Patient(BLUE, family_name="BLUE", given_name="JOHN", birth_date="19600101")
    assert "JOHN" not in repr(patient) and "19600101" not in repr(patient)
    assert BLUE in repr(patient)


def test_reject_oversize_echoes_the_control_id(feed: PatientIdentityFeed) -> None:
    prefix = adt("A01", version="2.5", control_id="BIG-1")[:200]
    ack = ack_of(feed.reject_oversize(prefix, 1024))
    assert msa(ack) == ("AR", "BIG-1", "the message exceeds the maximum size of 1024 bytes")
    err = ack.first("ERR")
    assert err is not None and err.value(3, 1) == "207"


def test_reject_oversize_without_a_complete_header(feed: PatientIdentityFeed) -> None:
    ack = ack_of(feed.reject_oversize(b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|CUT", 10))
    assert msa(ack)[:2] == ("AR", "")


def test_a_bad_affinity_domain_oid_is_a_configuration_error(sink: MemorySink) -> None:
    with pytest.raises(ValueError):
        PatientIdentityFeed(sink, affinity_domain_oid="not-an-oid")


def test_memory_sink_satisfies_the_protocol(sink: MemorySink) -> None:
    assert isinstance(sink, PatientIdentitySink)


def test_an_unknown_character_set_is_rejected_and_not_echoed(feed: PatientIdentityFeed, sink: MemorySink) -> None:
    message = adt("A01", version="2.5", control_id="CS-1").replace(b"|2.5\r", b"|2.5||||||EBCDIC\r", 1)
    result = feed.handle(message)
    assert (result.ack_code, result.condition) == (AckCode.REJECT, ErrorCondition.TABLE_VALUE_NOT_FOUND)
    ack = ack_of(result.ack)
    assert msa(ack)[:2] == ("AR", "CS-1")
    assert ack.header.value(18) == ""
    assert sink.calls == []


def test_sender_values_echoed_in_reasons_are_bounded(feed: PatientIdentityFeed) -> None:
    result = feed.handle(adt(message_type="Z" * 500 + "^A01", version="2.5"))
    assert result.condition is ErrorCondition.UNSUPPORTED_MESSAGE_TYPE
    assert result.reason == f"message type {'Z' * 24}... is not supported (ADT is)"
