"""``xds consumer submit | query | retrieve`` through click's CliRunner against a live registry
(checking codes against the shared affinity domain) and repository: a newcomer's round trip with
default metadata, every stored query the command offers, and the failures a user meets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from lxml import etree

from consumer import iti43
from consumer.cli import consumer
from tests.support import factory as f
from tests.support.repository import Live, free_port, live_pair
from xds.vocabulary import NS_QUERY


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    with live_pair(tmp_path, f"sqlite:///{tmp_path / 'repository.sqlite'}") as running:
        yield running


def run(live: Live, *args: str) -> Result:
    env = {"XDS_CONSUMER_REGISTRY": live.registry_url, "XDS_CONSUMER_REPOSITORY": live.url, "COLUMNS": "400"}
    return CliRunner().invoke(consumer, list(args), env=env, catch_exceptions=False)


def _unique_ids(live: Live, pid: str) -> list[str]:
    return sorted(de.unique_id or "" for de in live.patient_entries(pid))


def test_submit_query_retrieve_round_trip_with_defaults(live: Live, tmp_path: Path) -> None:
    pid = live.feed(f.patient_id())
    report = tmp_path / "report.txt"
    report.write_bytes(b"Findings: none.\r\n" + os.urandom(5000))
    scan = tmp_path / "scan.dcm"
    scan.write_bytes(b"\0" * 128 + b"DICM" + os.urandom(3 << 20))

    submitted = run(live, "submit", str(report), str(scan), "--patient", pid)
    assert submitted.exit_code == 0, submitted.output
    uids = _unique_ids(live, pid)
    assert len(uids) == 2 and all(uid in submitted.output for uid in uids)
    entries = {de.title: de for de in live.patient_entries(pid)}
    assert entries["scan.dcm"].mime_type == "application/dicom"
    assert entries["scan.dcm"].class_code.code == "IMAGES"
    assert entries["report.txt"].mime_type == "text/plain"

    listed = run(live, "query", "--patient", pid)
    assert listed.exit_code == 0, listed.output
    assert all(uid in listed.output for uid in uids)
    assert "Success" in listed.output

    out = tmp_path / "retrieved"
    fetched = run(live, "retrieve", *uids, "--out", str(out))
    assert fetched.exit_code == 0, fetched.output
    by_uid = {de.unique_id: de for de in live.patient_entries(pid)}
    for uid in uids:
        original = report if by_uid[uid].title == "report.txt" else scan
        [written] = out.glob(f"{uid}.*")
        assert written.read_bytes() == original.read_bytes()
    assert (out / f"{entries['scan.dcm'].unique_id}.dcm").is_file()
    assert not list(out.glob("xds-part-*")), "no spool file is left behind"


def test_every_offered_query(live: Live, tmp_path: Path) -> None:
    pid = live.feed(f.patient_id())
    doc = tmp_path / "note.txt"
    doc.write_text("a note")
    assert run(live, "submit", str(doc), "--patient", pid, "--title", "A note").exit_code == 0

    sets = run(live, "query", "--query", "find-submission-sets", "--patient", pid, "--xml")
    assert sets.exit_code == 0, sets.output
    response = etree.fromstring(sets.output.encode())
    assert response.tag == f"{{{NS_QUERY}}}AdhocQueryResponse"
    ss_unique_id = next(
        e.get("value")
        for e in response.iter("{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}ExternalIdentifier")
        if e.get("identificationScheme") == "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
    )
    contents = run(live, "query", "--query", "get-submission-set-and-contents", "--submission-set", ss_unique_id)
    assert contents.exit_code == 0, contents.output
    assert "A note" in contents.output and ss_unique_id in contents.output
    everything = run(live, "query", "--query", "get-all", "--patient", pid, "--status", "all")
    assert everything.exit_code == 0, everything.output
    assert "1 document(s)" in everything.output and "1 submission set(s)" in everything.output


def test_query_errors_are_reported(live: Live) -> None:
    missing = run(live, "query", "--query", "get-submission-set-and-contents")
    assert missing.exit_code != 0 and "--submission-set" in missing.output
    bad = run(live, "query", "--patient", "not a patient id")
    assert bad.exit_code != 0


def test_submit_for_an_unknown_patient_fails_with_the_registry_code(live: Live, tmp_path: Path) -> None:
    doc = tmp_path / "note.txt"
    doc.write_text("a note")
    result = run(live, "submit", str(doc), "--patient", f.patient_id())
    assert result.exit_code == 1
    assert "XDSUnknownPatientId" in result.output
    assert live.store_files() == []


def test_retrieve_errors(live: Live, tmp_path: Path) -> None:
    pid = live.feed(f.patient_id())
    doc = tmp_path / "note.txt"
    doc.write_text("a note")
    assert run(live, "submit", str(doc), "--patient", pid).exit_code == 0
    [uid] = _unique_ids(live, pid)

    unknown = run(live, "retrieve", "1.2.3.404", "--out", str(tmp_path / "o"))
    assert unknown.exit_code == 2 and "knows no document 1.2.3.404" in unknown.output
    wrong_repo = run(live, "retrieve", uid, "--repository-id", "1.2.3.999", "--out", str(tmp_path / "o"))
    assert wrong_repo.exit_code == 1 and "XDSUnknownRepositoryId" in wrong_repo.output
    partial = run(live, "retrieve", uid, "1.2.3.404", "--repository-id", live.repository_id, "--out", str(tmp_path / "p"))
    assert partial.exit_code == 0 and "PartialSuccess" in partial.output and "XDSDocumentUniqueIdError" in partial.output


def test_unreachable_services_are_clear_errors(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    doc = tmp_path / "note.txt"
    doc.write_text("a note")
    env = {"XDS_CONSUMER_REGISTRY": dead + "/registry", "XDS_CONSUMER_REPOSITORY": dead + "/repository"}
    runner = CliRunner()
    for args in (["submit", str(doc), "--patient", f.patient_id()], ["query", "--patient", f.patient_id()], ["retrieve", "1.2.3"]):
        result = runner.invoke(consumer, args, env=env, catch_exceptions=False)
        assert result.exit_code == 2, result.output
        assert "error:" in result.output and "127.0.0.1" in result.output


def test_retrieve_reports_progress_of_a_large_document(live: Live, tmp_path: Path) -> None:
    pid = live.feed(f.patient_id())
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 << 20))
    assert run(live, "submit", str(big), "--patient", pid, "--mime-type", "application/pdf").exit_code == 0
    [uid] = _unique_ids(live, pid)

    class Counter:
        total: int | None = None
        seen = 0

        def start(self, total: int | None) -> None:
            self.total = total

        def advance(self, n: int) -> None:
            self.seen += n

    counter = Counter()
    result = iti43.retrieve(live.url, [iti43.DocumentRequest(uid, live.repository_id)], tmp_path / "out", progress=counter)
    assert result.ok
    [document] = result.documents
    assert document.path.read_bytes() == big.read_bytes() and document.path.suffix == ".pdf"
    assert counter.total is not None and counter.seen == counter.total > big.stat().st_size
