"""RIS intake on the Edge Server: HL7 v2 ORU^R01 / ORM^O01 parsing and acknowledgements, the
report book on SQLite and PostgreSQL, report documents (text and PDF), the MLLP feed, and the
patient jacket with report status (API and ``xds source jacket``)."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import Engine, inspect, text

from imaging_source.cli import source as source_cli
from imaging_source.config import SourceSettings
from imaging_source.db import VERSION_TABLE, make_engine, upgrade
from imaging_source.dicomstore import DicomStore
from imaging_source.feed import RisFeed
from imaging_source.jacket import build_jacket
from imaging_source.model import ExamReport, PatientRecord, StudyRecord
from imaging_source.report_document import render_report, to_winansi
from imaging_source.reports import ReportBook
from imaging_source.ris import OrderEvent, ReportEvent, interpret, parse_hl7_time
from xds.hl7.ack import AckCode
from imaging_source.schema import metadata
from tests.support.dicom import StudySpec, free_port, make_study, part10_bytes
from xds.hl7.mllp import MllpClient, serve_mllp
from xds.hl7.v2 import ErrorCondition, parse_message

UTC = timezone.utc
OUR_TABLES = ("imaging_report", "imaging_report_version", "imaging_order")


# -- building messages ------------------------------------------------------------------------------


def seg(name: str, fields: dict[int, str]) -> str:
    """One ER7 segment with the given fields at their HL7 positions (MSH: position 3 onwards)."""
    if name == "MSH":
        last = max(fields)
        values = [fields.get(i, "") for i in range(3, last + 1)]
        return "MSH|^~\\&|" + "|".join(values)
    last = max(fields) if fields else 0
    return "|".join([name, *(fields.get(i, "") for i in range(1, last + 1))])


def msh(message_type: str, control_id: str, version: str) -> str:
    return seg("MSH", {3: "RIS", 4: "HOSP", 5: "EDGE", 6: "HOSP", 7: "20240102120000", 9: message_type, 10: control_id, 11: "P", 12: version})


def message(*segments: str) -> bytes:
    return ("\r".join(segments) + "\r").encode("utf-8")


PID = seg("PID", {1: "1", 3: "999^^^SSA^SS~MRN123^^^HOSP^MR", 5: "Doe^Jane", 7: "19700101", 8: "F"})


def oru_v231(
    *,
    accession: str = "ACC123",
    status: str = "F",
    status_time: str = "202401021130+0000",
    lines: tuple[str, ...] = ("FINDINGS: Lungs are clear.", "IMPRESSION: Normal chest."),
    control_id: str = "MSG0001",
    pid: str = PID,
) -> bytes:
    obr = seg("OBR", {1: "1", 2: "PLC1", 3: accession, 4: "71020^CHEST 2 VIEWS^C4", 7: "20240102100000", 22: status_time, 25: status})
    obx = [seg("OBX", {1: str(i), 2: "TX", 3: "RPT^Report^L", 5: line, 11: status}) for i, line in enumerate(lines, 1)]
    return message(msh("ORU^R01", control_id, "2.3.1"), pid, seg("ORC", {1: "RE", 2: "PLC1", 3: accession}), obr, *obx)


def orm(control: str, *, accession: str = "ACC123", order_status: str = "", when: str = "20240102090000+0000", version: str = "2.5", control_id: str = "ORM1", with_obr: bool = True) -> bytes:
    parts = [msh("ORM^O01^ORM_O01" if version >= "2.4" else "ORM^O01", control_id, version), PID]
    parts.append(seg("ORC", {1: control, 2: "PLC9", 3: accession, 5: order_status, 9: when}))
    if with_obr:
        parts.append(seg("OBR", {1: "1", 2: "PLC9", 3: accession, 4: "74150^CT ABDOMEN^C4", 18: accession, 36: "20240105080000+0000"}))
    return message(*parts)


def ack_of(data: bytes) -> tuple[str, str, str, str]:
    """MSA-1, MSA-2, the table 0357 code of the ERR segment ('' without one), and MSH-9."""
    parsed = parse_message(data.decode("utf-8"))
    msa = parsed.first("MSA")
    assert msa is not None
    err = parsed.first("ERR")
    code = ""
    if err is not None:
        code = err.value(3, 1) if err.field(3) else err.value(1, 4)
    return msa.value(1), msa.value(2), code, parsed.header.value(9, 1)


# -- parsing --------------------------------------------------------------------------------------


def test_oru_v231_gives_one_report_event_from_obr3_pid3_obr25_obr22_and_obx_lines() -> None:
    result = interpret(oru_v231())
    assert result.error is None
    (event,) = result.events
    assert isinstance(event, ReportEvent)
    assert event.accession == "ACC123"
    assert (event.patient_id, event.issuer) == ("MRN123", "HOSP")  # the MR identifier, not the SSN
    assert event.status == "F" and event.final
    assert event.status_time == datetime(2024, 1, 2, 11, 30, tzinfo=UTC).timestamp()
    assert event.text == "FINDINGS: Lungs are clear.\nIMPRESSION: Normal chest."
    assert (event.procedure.code, event.procedure.meaning, event.procedure.scheme) == ("71020", "CHEST 2 VIEWS", "C4")
    assert event.placer_number == "PLC1"
    assert event.message_id == "MSG0001"


def test_oru_v25_formatted_text_groups_and_fallbacks() -> None:
    pid = seg("PID", {1: "1", 3: "55^^^&1.2.3.4&ISO"})
    first = [
        seg("ORC", {1: "RE", 3: "A-1", 5: "CM", 15: "20240301084500"}),
        # OBR-3 empty: the accession falls back to ORC-3; OBR-25 empty: status from ORC-5;
        # OBR-22 empty: the time from ORC-15 (a local time, read in the zone given).
        seg("OBR", {1: "1", 4: "XR^Hand^L", 25: ""}),
        seg("OBX", {1: "1", 2: "FT", 5: "Line one\\.br\\Line two \\H\\bold\\N\\ end"}),
        seg("OBX", {1: "2", 2: "NM", 5: "42"}),  # numeric: not report text
        seg("OBX", {1: "3", 2: "ST", 5: "a^b"}),  # components are rejoined
    ]
    second = [
        seg("OBR", {1: "2", 18: "A-2", 22: "20240302101500-0500", 25: "P"}),  # accession from OBR-18
        seg("OBX", {1: "1", 2: "TX", 5: "Prelim~second line"}),  # repetitions are lines
    ]
    data = message(msh("ORU^R01^ORU_R01", "V25", "2.5"), pid, *first, *second)
    result = interpret(data, zone=UTC)
    assert result.error is None
    one, two = result.events
    assert isinstance(one, ReportEvent) and isinstance(two, ReportEvent)
    assert (one.accession, one.status, one.final) == ("A-1", "CM", False)
    assert one.issuer == "1.2.3.4"  # CX.4.2 when there is no namespace ID
    assert one.status_time == datetime(2024, 3, 1, 8, 45, tzinfo=UTC).timestamp()
    assert one.text == "Line one\nLine two bold end\na^b"
    assert (two.accession, two.status, two.final) == ("A-2", "P", False)
    assert two.status_time == datetime(2024, 3, 2, 15, 15, tzinfo=UTC).timestamp()
    assert two.text == "Prelim\nsecond line"


def test_corrected_is_final_and_the_accession_field_order_is_configurable() -> None:
    data = oru_v231(status="C")
    (event,) = interpret(data).events
    assert isinstance(event, ReportEvent) and event.final
    obr18 = message(
        msh("ORU^R01", "X1", "2.3.1"), PID, seg("OBR", {1: "1", 3: "FILLER7", 18: "ACC-18", 25: "F"})
    )
    assert interpret(obr18).events[0].accession == "FILLER7"
    assert interpret(obr18, accession_fields=("OBR-18", "OBR-3")).events[0].accession == "ACC-18"
    with pytest.raises(ValueError):
        interpret(obr18, accession_fields=("PID-3",))


@pytest.mark.parametrize(
    ("control", "order_status", "canceled"),
    [("NW", "", False), ("XO", "SC", False), ("CA", "", True), ("OC", "CA", True), ("DC", "", True), ("SC", "CA", True), ("SC", "IP", False)],
)
def test_orm_order_controls(control: str, order_status: str, canceled: bool) -> None:
    for version in ("2.3.1", "2.5"):
        result = interpret(orm(control, order_status=order_status, version=version))
        assert result.error is None, result.error
        (event,) = result.events
        assert isinstance(event, OrderEvent)
        assert (event.control, event.order_status, event.canceled) == (control, order_status, canceled)
        assert (event.accession, event.patient_id, event.issuer) == ("ACC123", "MRN123", "HOSP")
        assert event.transaction_time == datetime(2024, 1, 2, 9, tzinfo=UTC).timestamp()
        assert event.scheduled_time == datetime(2024, 1, 5, 8, tzinfo=UTC).timestamp()
        assert event.procedure.meaning == "CT ABDOMEN"


def test_orm_cancellation_with_only_an_orc_uses_orc3() -> None:
    (event,) = interpret(orm("CA", accession="ONLYORC", with_obr=False)).events
    assert isinstance(event, OrderEvent) and event.canceled and event.accession == "ONLYORC"


@pytest.mark.parametrize(
    ("data", "code", "condition"),
    [
        (message(msh("ADT^A01", "N1", "2.5"), PID), "AR", ErrorCondition.UNSUPPORTED_MESSAGE_TYPE),
        (message(msh("ORU^R03", "N2", "2.5"), PID), "AR", ErrorCondition.UNSUPPORTED_EVENT_CODE),
        (message(msh("ORU^R01", "N3", "3.0"), PID), "AR", ErrorCondition.UNSUPPORTED_VERSION_ID),
        (oru_v231(accession=""), "AE", ErrorCondition.REQUIRED_FIELD_MISSING),
        (oru_v231(pid=seg("PID", {1: "1", 5: "Doe^Jane"})), "AE", ErrorCondition.REQUIRED_FIELD_MISSING),
        (oru_v231(status=""), "AE", ErrorCondition.REQUIRED_FIELD_MISSING),
        (message(msh("ORU^R01", "N7", "2.5"), seg("OBR", {1: "1", 3: "A", 25: "F"})), "AE", ErrorCondition.SEGMENT_SEQUENCE_ERROR),
        (message(msh("ORU^R01", "N8", "2.5"), PID), "AE", ErrorCondition.SEGMENT_SEQUENCE_ERROR),
        (orm("RP"), "AE", ErrorCondition.TABLE_VALUE_NOT_FOUND),
        (b"this is not HL7 at all", "AR", ErrorCondition.SEGMENT_SEQUENCE_ERROR),
    ],
    ids=["adt", "r03", "version", "no-accession", "no-patient", "no-status", "no-pid", "no-obr", "orc1", "garbage"],
)
def test_refusals_name_the_reason(data: bytes, code: str, condition: ErrorCondition) -> None:
    result = interpret(data)
    assert result.events == ()
    assert result.error is not None
    assert (result.error.ack_code.value, result.error.condition) == (code, condition)


def test_naks_carry_err_in_the_received_version_style(engine: Engine) -> None:
    feed = RisFeed(ReportBook(engine), control_ids=lambda: "ACKID")
    v231 = feed(oru_v231(accession="", control_id="C231"))
    msa1, msa2, err_code, msh9 = ack_of(v231)
    assert (msa1, msa2, err_code, msh9) == ("AE", "C231", "101", "ACK")
    err = parse_message(v231.decode()).first("ERR")
    assert err is not None and (err.value(1, 1), err.value(1, 3)) == ("OBR", "3")  # v2.3.1 ERR-1 location
    v25 = parse_message(feed(message(msh("ORU^R01^ORU_R01", "C25", "2.5"), seg("OBR", {1: "1", 3: "A", 25: "F"}))).decode())
    err25 = v25.first("ERR")
    assert err25 is not None
    assert (err25.value(2, 1), err25.value(3, 1), err25.value(4)) == ("PID", "100", "E")  # ERR-2/3/4
    assert "PID" in err25.value(8)
    assert v25.header.value(9, 3) == "ACK"  # v2.4+: message structure
    assert v25.header.value(10) == "ACKID"


def test_hl7_times() -> None:
    assert parse_hl7_time("20240102", zone=UTC) == datetime(2024, 1, 2, tzinfo=UTC).timestamp()
    assert parse_hl7_time("202401021230+0100") == datetime(2024, 1, 2, 11, 30, tzinfo=UTC).timestamp()
    assert parse_hl7_time("20240102123045.5", zone=UTC) == datetime(2024, 1, 2, 12, 30, 45, 500000, tzinfo=UTC).timestamp()
    assert parse_hl7_time("") is None
    assert parse_hl7_time("20241399") is None
    assert parse_hl7_time("yesterday") is None


# -- the book on both databases ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty Edge Server index on each database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'imaging.sqlite'}"
    else:
        url = request.getfixturevalue("pg_database")
    eng = make_engine(url)
    upgrade(eng)
    if request.param == "postgresql":
        present = set(inspect(eng).get_table_names())
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables if t.name in present)
        with eng.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    yield eng
    eng.dispose()


class Clock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def report_event(status: str, status_time: float | None, *, accession: str = "ACC123", text_: str = "text", patient: str = "MRN123") -> ReportEvent:
    (event,) = interpret(oru_v231(accession=accession, status=status, lines=(text_,), status_time="", pid=seg("PID", {1: "1", 3: f"{patient}^^^HOSP^MR"}))).events
    assert isinstance(event, ReportEvent)
    return replace(event, status_time=status_time)


def test_migration_builds_exactly_the_declared_report_tables(engine: Engine) -> None:
    upgrade(engine)  # idempotent

    # Other revisions' tables (share jobs, other actors) are not this migration's business.
    def ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return getattr(table, "name", name) in OUR_TABLES

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "include_object": ours})
        assert compare_metadata(context, metadata) == []
    present = set(inspect(engine).get_table_names())
    assert set(OUR_TABLES) <= present
    indexes = {i["name"] for i in inspect(engine).get_indexes("imaging_report")}
    assert "ix_imaging_report_patient_id" in indexes


def test_latest_report_wins_and_history_is_kept(engine: Engine) -> None:
    book = ReportBook(engine, clock=Clock())
    first = book.record_report(report_event("P", 1000.0, text_="preliminary"))
    assert (first.status, first.final, first.text, first.canceled) == ("P", False, "preliminary", False)
    final = book.record_report(report_event("F", 2000.0, text_="final words"))
    assert (final.status, final.final, final.text, final.status_time) == ("F", True, "final words", 2000.0)
    latest = book.report("ACC123")
    assert latest == final
    assert latest is not None and latest.received > first.received
    assert book.history("ACC123") == [("P", 1000.0, True), ("F", 2000.0, True)]
    assert book.report("NOPE") is None


def test_an_older_status_time_does_not_overwrite_a_newer_report(engine: Engine) -> None:
    book = ReportBook(engine, clock=Clock())
    book.record_report(report_event("C", 3000.0, text_="corrected"))
    returned = book.record_report(report_event("P", 1000.0, text_="stale prelim"))
    assert (returned.status, returned.text) == ("C", "corrected")
    stored = book.report("ACC123")
    assert stored is not None and (stored.status, stored.text, stored.status_time) == ("C", "corrected", 3000.0)
    assert book.history("ACC123") == [("C", 3000.0, True), ("P", 1000.0, False)]
    # Without a status time, arrival order decides.
    book.record_report(report_event("F", None, text_="final, undated"))
    stored = book.report("ACC123")
    assert stored is not None and (stored.status, stored.status_time) == ("F", None)


def test_concurrent_versions_leave_the_newest(engine: Engine) -> None:
    book = ReportBook(engine)
    times = [float(t) for t in (5, 3, 8, 1, 7, 2, 6, 4)]
    errors: list[BaseException] = []

    def send(when: float) -> None:
        try:
            book.record_report(report_event("F", when, text_=f"version {when:g}", accession="RACE"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(when,)) for when in times]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = book.report("RACE")
    assert stored is not None and (stored.status_time, stored.text) == (8.0, "version 8")
    history = book.history("RACE")
    assert sorted(when for _, when, _ in history) == sorted(times)
    assert any(applied for _, when, applied in history if when == 8.0)


def test_for_patient_and_cancellations(engine: Engine) -> None:
    book = ReportBook(engine, clock=Clock())
    book.record_report(report_event("F", 100.0, accession="A1"))
    book.record_report(report_event("P", 200.0, accession="A2"))
    book.record_report(report_event("F", 300.0, accession="B1", patient="OTHER"))
    (cancel,) = interpret(orm("CA", accession="A2")).events
    (cancel_unreported,) = interpret(orm("OC", accession="A3")).events
    assert isinstance(cancel, OrderEvent) and isinstance(cancel_unreported, OrderEvent)
    book.record_order(cancel)
    book.record_order(cancel_unreported)
    listed = book.for_patient("MRN123")
    assert [r.accession for r in listed] == ["A2", "A1", "A3"]
    assert [r.canceled for r in listed] == [True, False, True]
    assert book.for_patient("MRN123", "HOSP") == listed
    assert book.for_patient("MRN123", "ELSEWHERE") == []
    assert book.canceled_accessions("MRN123", "HOSP") == {"A2", "A3"}
    assert book.canceled_accessions("OTHER") == set()
    a3 = book.report("A3")
    assert a3 is not None and a3.canceled and a3.status == "" and not a3.final


def test_orders_cancel_until_a_new_order_and_ignore_older_messages(engine: Engine) -> None:
    book = ReportBook(engine, clock=Clock())

    def order(control: str, when: str, status: str = "") -> OrderEvent:
        (event,) = interpret(orm(control, order_status=status, when=when)).events
        assert isinstance(event, OrderEvent)
        return event

    assert not book.record_order(order("NW", "20240101080000+0000")).canceled
    assert book.record_order(order("CA", "20240101090000+0000")).canceled
    # A status message after the cancellation does not revive the exam ...
    assert book.record_order(order("SC", "20240101100000+0000", "IP")).canceled
    # ... and a late message older than the cancellation changes nothing.
    late = book.record_order(order("XO", "20240101083000+0000"))
    assert late.canceled and late.order_control == "SC"
    revived = book.record_order(order("NW", "20240101110000+0000"))
    assert not revived.canceled and revived.order_control == "NW"
    assert book.orders_for_patient("MRN123")[0].accession == "ACC123"


# -- documents ----------------------------------------------------------------------------------


def _report(text_: str, *, status: str = "F") -> ExamReport:
    return ExamReport(
        accession="ACC(7)",
        patient_id="MRN123",
        issuer="HOSP",
        status=status,
        final=status in ("F", "C"),
        text=text_,
        status_time=datetime(2024, 1, 2, 11, 30, tzinfo=UTC).timestamp(),
        received=0.0,
    )


def _study() -> StudyRecord:
    return StudyRecord(
        study_uid="1.2.3.4.5", patient=PatientRecord("MRN123", "HOSP", "Doe^Jane", "19700101", "F"),
        accession="ACC(7)", accession_issuer="", study_id="1", study_date="20240102", study_time="101500",
        description="CT chest", referring_physician="", procedure_code="", procedure_scheme="",
        procedure_meaning="", modalities=("CT",), series_count=1, instance_count=2, updated=0.0,
    )


def test_text_document_has_the_header_then_the_text() -> None:
    data, mime = render_report(_report("FINDINGS: clear.\nIMPRESSION: ok — “fine”"), study=_study())
    assert mime == "text/plain"
    lines = data.decode("utf-8").split("\r\n")
    assert lines[:6] == [
        "Patient: Jane Doe, ID MRN123 (HOSP)",
        "Accession: ACC(7)",
        "Study: 20240102 CT chest (1.2.3.4.5)",
        "Status: Final",
        "Status time: 2024-01-02 11:30:00 UTC",
        "",
    ]
    assert lines[6:] == ["FINDINGS: clear.", "IMPRESSION: ok — “fine”"]
    again, _ = render_report(_report("FINDINGS: clear.\nIMPRESSION: ok — “fine”"), study=_study())
    assert again == data  # deterministic: a resubmission is byte-identical


def test_pdf_document_parses_wraps_and_spans_pages() -> None:
    pypdf = pytest.importorskip("pypdf")
    body = "\n".join(f"Paragraph {i}: " + "the lungs are clear and the heart is normal in size " * 4 for i in range(80))
    body += "\nŁódź naïve café “quoted” (parens) back\\slash 中文 end"
    data, mime = render_report(_report(body), study=_study(), pdf=True)
    assert mime == "application/pdf"
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    # The cross-reference table points at each object exactly (ISO 32000-1 §7.5.4).
    xref_at = int(data.rsplit(b"startxref", 1)[1].split()[0])
    assert data[xref_at:].startswith(b"xref\n0 ")
    entries = data[xref_at:].split(b"trailer", 1)[0].split(b"\n")[2:]
    offsets = [int(e[:10]) for e in entries if e.endswith(b" n\r")]
    assert offsets and all(data[o:].startswith(b"%d 0 obj" % n) for n, o in enumerate(offsets, 1))
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    assert len(reader.pages) > 2
    extracted = "\n".join(page.extract_text() for page in reader.pages)
    flat = " ".join(extracted.split())
    assert "Accession: ACC(7)" in flat
    assert "Status: Final" in flat
    for i in (0, 41, 79):
        assert f"Paragraph {i}:" in flat
    assert "Lódz naïve café “quoted” (parens) back\\slash ?? end" in flat
    # Wrapped: no extracted line is wider than the page allows.
    assert max(len(line) for line in extracted.splitlines()) < 120
    assert render_report(_report(body), study=_study(), pdf=True)[0] == data


def test_winansi_replacements() -> None:
    assert to_winansi("é€") == "é€".encode("cp1252")
    assert to_winansi("ő Ł ﬁ") == b"o L fi"
    assert to_winansi("中\u200b") == b"?"


# -- the feed and the MLLP socket ------------------------------------------------------------


@contextmanager
def mllp_listener(handler: RisFeed) -> Iterator[int]:
    """The feed behind a real MLLP listener on a free port, served from a background loop."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, object] = {}

    async def main() -> None:
        server = await serve_mllp(handler, host="127.0.0.1", port=0, oversize_reply=handler.reject_oversize)
        holder["server"] = server
        holder["port"] = server.port
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(main(), loop).result(timeout=10)
    assert started.is_set()
    try:
        yield int(holder["port"])  # type: ignore[call-overload]
    finally:
        asyncio.run_coroutine_threadsafe(holder["server"].stop(), loop).result(timeout=10)  # type: ignore[attr-defined]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_mllp_round_trip_keeps_serving_after_garbage(engine: Engine) -> None:
    book = ReportBook(engine)
    feed = RisFeed(book)
    with mllp_listener(feed) as port:
        with MllpClient("127.0.0.1", port, timeout=10) as client:
            bad = client.send(b"\x00\x01 garbage \xff")
            assert ack_of(bad)[0] == "AR"
            assert book.report("ACC123") is None
            good = client.send(oru_v231(control_id="GOOD1"))
            assert ack_of(good)[:2] == ("AA", "GOOD1")
            missing = client.send(oru_v231(accession="", control_id="BAD2"))
            assert ack_of(missing)[:3] == ("AE", "BAD2", "101")
        # A second connection is served too.
        with MllpClient("127.0.0.1", port, timeout=10) as client:
            assert ack_of(client.send(orm("CA", control_id="CAN1")))[:2] == ("AA", "CAN1")
    stored = book.report("ACC123")
    assert stored is not None
    assert (stored.status, stored.final, stored.canceled) == ("F", True, True)
    assert stored.text == "FINDINGS: Lungs are clear.\nIMPRESSION: Normal chest."


def test_feed_answers_ae_when_the_database_fails(tmp_path: Path) -> None:
    broken = make_engine(f"sqlite:///{tmp_path / 'never-migrated.sqlite'}")
    try:
        outcome = RisFeed(ReportBook(broken)).handle(oru_v231(control_id="DBFAIL"))
    finally:
        broken.dispose()
    assert (outcome.ack_code, outcome.condition) == (AckCode.ERROR, ErrorCondition.APPLICATION_INTERNAL_ERROR)
    assert ack_of(outcome.ack)[:2] == ("AE", "DBFAIL")
    assert "Lungs" not in outcome.ack.decode()


def test_oversize_message_gets_an_ar_echoing_the_control_id(engine: Engine) -> None:
    reply = RisFeed(ReportBook(engine)).reject_oversize(oru_v231(control_id="BIG1")[:200], 100)
    assert ack_of(reply)[:2] == ("AR", "BIG1")


def test_source_app_runs_the_ris_listener(engine: Engine, tmp_path: Path) -> None:
    from xds.http.server import ServerThread
    from imaging_source.app import build_source_app, describe_endpoints

    port = free_port()
    settings = SourceSettings(data_dir=tmp_path, mllp_port=port, dicom_port=0)
    assert any(f"mllp://127.0.0.1:{port}" in line for line in describe_endpoints(settings))
    assert not any("mllp://" in line for line in describe_endpoints(SourceSettings(data_dir=tmp_path, mllp_port=0)))
    store = DicomStore(tmp_path / "store", engine, fsync=False)
    book = ReportBook(engine)
    app = build_source_app(settings, store=store, ris_feed=RisFeed(book))
    with ServerThread(app):
        with MllpClient("127.0.0.1", port, timeout=10) as client:
            assert ack_of(client.send(oru_v231(accession="VIAAPP")))[0] == "AA"
    assert book.report("VIAAPP") is not None


# -- the jacket -----------------------------------------------------------------------------------


def fill(store: DicomStore, spec: StudySpec) -> None:
    for ds in make_study(spec):
        store.store_bytes(part10_bytes(ds))


def test_report_before_and_after_images_both_reach_the_jacket(engine: Engine, tmp_path: Path) -> None:
    store = DicomStore(tmp_path / "store", engine, fsync=False)
    book = ReportBook(engine, clock=Clock())
    # Report first, images later.
    book.record_report(report_event("F", 100.0, accession="EARLY"))
    fill(store, StudySpec(patient_id="MRN123", accession="EARLY", study_date="20240101"))
    # Images first, report later.
    fill(store, StudySpec(patient_id="MRN123", accession="LATE", study_date="20240202"))
    jacket = build_jacket(store, book, "MRN123")
    assert jacket is not None
    assert [(e.accession, e.report_status) for e in jacket.exams] == [("LATE", ""), ("EARLY", "F")]
    book.record_report(report_event("P", 200.0, accession="LATE"))
    jacket = build_jacket(store, book, "MRN123", issuer="HOSP")
    assert jacket is not None
    assert [(e.accession, e.report_status, e.final, e.instance_count) for e in jacket.exams] == [
        ("LATE", "P", False, 2),
        ("EARLY", "F", True, 2),
    ]
    assert jacket.patient.name == "Doe^Jane"
    assert build_jacket(store, book, "MRN123", issuer="ELSEWHERE") is None


def test_canceled_exams_leave_the_jacket_and_open_orders_are_listed(engine: Engine, tmp_path: Path) -> None:
    store = DicomStore(tmp_path / "store", engine, fsync=False)
    book = ReportBook(engine, clock=Clock())
    fill(store, StudySpec(patient_id="MRN123", accession="KEEP", study_date="20240101"))
    fill(store, StudySpec(patient_id="MRN123", accession="DROP", study_date="20240102"))
    for control, accession in (("NW", "ORDERED"), ("NW", "DROPPED-ORDER"), ("OC", "DROPPED-ORDER")):
        (event,) = interpret(orm(control, accession=accession)).events
        assert isinstance(event, OrderEvent)
        book.record_order(event)
    before = build_jacket(store, book, "MRN123")
    assert before is not None
    assert [e.accession for e in before.exams] == ["DROP", "KEEP", "ORDERED"]
    ordered = before.exams[-1]
    assert ordered.study is None and ordered.instance_count == 0 and ordered.description == "CT ABDOMEN"
    (cancel,) = interpret(orm("CA", accession="DROP")).events
    assert isinstance(cancel, OrderEvent)
    book.record_order(cancel)
    after = build_jacket(store, book, "MRN123")
    assert after is not None
    assert [e.accession for e in after.exams] == ["KEEP", "ORDERED"]
    # An ORU with result status X (canceled) hides the exam as well.
    book.record_report(report_event("X", 500.0, accession="KEEP"))
    final = build_jacket(store, book, "MRN123")
    assert final is not None and [e.accession for e in final.exams] == ["ORDERED"]


def test_jacket_cli_prints_exams_with_report_status(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    eng = make_engine(url)
    upgrade(eng)
    store = DicomStore(tmp_path / "store", eng, fsync=False)
    fill(store, StudySpec(patient_id="MRN9", accession="CLI-1", study_date="20240315", modalities=("CT", "MR"), instances_per_series=2))
    fill(store, StudySpec(patient_id="MRN9", accession="CLI-2", study_date="20240316"))
    fill(store, StudySpec(patient_id="MRN9", accession="CLI-3", study_date="20240317"))
    book = ReportBook(eng)
    book.record_report(report_event("F", 100.0, accession="CLI-1", patient="MRN9"))
    (cancel,) = interpret(orm("CA", accession="CLI-3")).events
    assert isinstance(cancel, OrderEvent)
    book.record_order(cancel)
    eng.dispose()
    args = ["jacket", "MRN9", "--db", url, "--store", str(tmp_path / "store"), "--data-dir", str(tmp_path)]
    outcome = CliRunner().invoke(source_cli, args, env={"COLUMNS": "200"}, catch_exceptions=False)
    assert outcome.exit_code == 0, outcome.output
    rows = {line.split("│")[2].strip(): line for line in outcome.output.splitlines() if "CLI-" in line}
    assert set(rows) == {"CLI-1", "CLI-2"}
    assert "2024-03-15" in rows["CLI-1"] and "CT, MR" in rows["CLI-1"] and "2/4" in rows["CLI-1"] and "Final" in rows["CLI-1"]
    assert "no report" in rows["CLI-2"]
    missing = CliRunner().invoke(source_cli, ["jacket", "NOBODY", "--db", url, "--data-dir", str(tmp_path)])
    assert missing.exit_code != 0 and "no exams" in missing.output
