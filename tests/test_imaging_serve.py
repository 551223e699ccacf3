"""``xds source serve`` as a real process, driven only from outside, as a hospital would: a
modality pushes a study with dcmtk's storescu, the RIS sends the final report over MLLP, the
operator shares the exam with ``xds source share``; the running Edge Server's job runner builds
the KOS and submits it with the report (RAD-68) to a real repository and registry; a consumer
then retrieves the images by RAD-69 from the same process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from pydicom import dcmread

from imaging_source.cli import source as source_cli
from tests.support.dicom import StudySpec, dciodvfy, free_port, make_study, storescu, write_datasets
from tests.support.paths import CODES_XML, REPO
from tests.support.repository import REPOSITORY_ID, Live, live_pair
from xds.hl7.mllp import send_mllp
from xds.http.client import SoapClient
from xds.vocabulary import NS_RS, NS_XDS, Action, ResponseStatus
from xds.xml import qname

AFFINITY = "1.3.6.1.4.1.21367.13.20.1000"
LOCAL = "1.3.6.1.4.1.21367.13.20.9999"
SOURCE_ID = "1.3.6.1.4.1.21367.13.80.7"
AET = "EDGETEST"
NS_IDS = "urn:ihe:rad:xdsi-b:2009"


def _xds() -> list[str]:
    script = Path(sys.executable).with_name("xds")
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from imageshare.cli import main; main()"]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    (tmp_path / "xds").mkdir()
    with live_pair(tmp_path / "xds", f"sqlite:///{tmp_path / 'repository.sqlite'}") as running:
        yield running


def _environment(live: Live) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(
        XDS_SOURCE_REPOSITORY_URL=live.url,
        XDS_SOURCE_CODES=str(CODES_XML),
        XDS_SOURCE_LOCAL_PATIENT_ID_OID=LOCAL,
        XDS_SOURCE_AFFINITY_DOMAIN_OID=AFFINITY,
        XDS_SOURCE_JOB_POLL_SECONDS="0.5",
        XDS_SOURCE_FSYNC="false",
    )
    return env


def _segment(name: str, fields: dict[int, str]) -> str:
    return "|".join([name, *(fields.get(i, "") for i in range(1, max(fields) + 1))])


def _oru(accession: str) -> bytes:
    segments = [
        "MSH|^~\\&|RIS|HOSP|EDGE|HOSP|20260101120000||ORU^R01|ORU1|P|2.3.1",
        "PID|1||PAT001^^^HOSP^MR||Doe^Jane||19700101|F",
        _segment("OBR", {1: "1", 2: "PLC1", 3: accession, 4: "RPID1^CT chest^99LOCAL", 7: "20240102101500", 22: "20260101115900", 25: "F"}),
        "OBX|1|TX|REPORT||Impression: no acute findings.||||||F",
    ]
    return ("\r".join(segments) + "\r").encode()


def _wait(predicate, what: str, log: Path, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{log.read_text()[-4000:]}"
        time.sleep(0.3)


def test_modality_ris_and_share_through_the_running_edge_server(live: Live, tmp_path: Path) -> None:
    http_port, dicom_port, mllp_port = free_port(), free_port(), free_port()
    data_dir, log = tmp_path / "edge", tmp_path / "edge.log"
    env = _environment(live)
    command = [
        *_xds(), "source", "serve", "--port", str(http_port), "--dicom-port", str(dicom_port),
        "--mllp-port", str(mllp_port), "--ae-title", AET, "--source-id", SOURCE_ID, "--data-dir", str(data_dir),
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{http_port}"
    try:
        _wait(lambda: _answers(f"{base}/imaging-source?wsdl"), "the Edge Server to serve", log)
        live.feed(f"PAT001^^^&{AFFINITY}&ISO")

        spec = StudySpec(accession="ACC300", modalities=("CT",), instances_per_series=3)
        files = write_datasets(make_study(spec), tmp_path / "modality")
        pushed = storescu(files, port=dicom_port, called=AET)
        assert pushed.returncode == 0, pushed.stderr
        ack = send_mllp("127.0.0.1", mllp_port, _oru("ACC300"), timeout=10)
        assert b"MSA|AA" in ack, ack

        runner = CliRunner()
        cli_env = {key: value for key, value in env.items() if key.startswith("XDS_SOURCE_")}
        jacket = runner.invoke(source_cli, ["jacket", "PAT001", "--data-dir", str(data_dir)], env=cli_env)
        assert jacket.exit_code == 0 and "ACC300" in jacket.output, jacket.output
        shared = runner.invoke(
            source_cli, ["share", "PAT001", "--study", spec.study_uid, "--release", "when-final", "--data-dir", str(data_dir)], env=cli_env
        )
        assert shared.exit_code == 0, shared.output

        pid = f"PAT001^^^&{AFFINITY}&ISO"
        _wait(lambda: len(live.patient_entries(pid)) == 2, "the manifest and the report in the registry", log)
        entries = {e.mime_type: e for e in live.patient_entries(pid)}
        assert set(entries) == {"application/dicom", "text/plain"}
        assert entries["application/dicom"].repository_unique_id == REPOSITORY_ID
        outcome, documents = live.retrieve([(REPOSITORY_ID, entries["application/dicom"].unique_id)])
        assert outcome.status == ResponseStatus.SUCCESS
        kos_path = tmp_path / "kos.dcm"
        kos_path.write_bytes(documents[entries["application/dicom"].unique_id][1])
        errors, _warnings = dciodvfy(kos_path)  # the manifest the running server made, as registered
        assert errors == [], "\n".join(errors)
        kos = dcmread(kos_path)
        (series,) = kos.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
        assert series.RetrieveLocationUID == SOURCE_ID
        referenced = [item.ReferencedSOPInstanceUID for item in series.ReferencedSOPSequence]
        assert sorted(referenced) == sorted(str(dcmread(f).SOPInstanceUID) for f in files)

        jobs = runner.invoke(source_cli, ["jobs", "--data-dir", str(data_dir)], env={**cli_env, "COLUMNS": "300"})
        assert jobs.exit_code == 0 and "done" in jobs.output, jobs.output

        # RAD-69 of every referenced instance from the running process: the pushed bytes come back.
        retrieved = _rad69(f"{base}/imaging-source", spec.study_uid, series.SeriesInstanceUID, referenced, spool=tmp_path)
        # The data set is byte-identical; the File Meta Information is each file's own (PS3.10 §7.1).
        originals = {str(dcmread(f).SOPInstanceUID): _data_set(f.read_bytes()) for f in files}
        assert {uid: _data_set(data) for uid, data in retrieved.items()} == originals
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _data_set(part10: bytes) -> bytes:
    """The bytes after the File Meta Information group, whose length (0002,0000) gives its end."""
    assert part10[128:132] == b"DICM" and part10[132:136] == b"\x02\x00\x00\x00"
    return part10[144 + int.from_bytes(part10[140:144], "little") :]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _rad69(url: str, study_uid: str, series_uid: str, sop_uids: list[str], *, spool: Path) -> dict[str, bytes]:
    from lxml import etree

    body = etree.Element(qname(NS_IDS, "RetrieveImagingDocumentSetRequest"), nsmap={None: NS_IDS, "xds": NS_XDS})
    study = etree.SubElement(body, qname(NS_IDS, "StudyRequest"), studyInstanceUID=study_uid)
    series = etree.SubElement(study, qname(NS_IDS, "SeriesRequest"), seriesInstanceUID=series_uid)
    for uid in sop_uids:
        request = etree.SubElement(series, qname(NS_XDS, "DocumentRequest"))
        etree.SubElement(request, qname(NS_XDS, "RepositoryUniqueId")).text = SOURCE_ID
        etree.SubElement(request, qname(NS_XDS, "DocumentUniqueId")).text = uid
    syntaxes = etree.SubElement(body, qname(NS_IDS, "TransferSyntaxUIDList"))
    etree.SubElement(syntaxes, qname(NS_IDS, "TransferSyntaxUID")).text = "1.2.840.10008.1.2.1"
    with SoapClient(url, spool_dir=spool) as client, client.call(Action.RAD69, body) as reply:
        assert reply.action == Action.RAD69_RESPONSE and reply.is_mtom
        status = reply.body.find(f"{{{NS_RS}}}RegistryResponse")
        assert status is not None and status.get("status") == ResponseStatus.SUCCESS
        resolved = {element: part.read_bytes() for element, part in reply.resolve_xop().items()}
        return {
            str(item.findtext(qname(NS_XDS, "DocumentUniqueId"))): resolved[item.find(qname(NS_XDS, "Document"))]
            for item in reply.body.iterfind(qname(NS_XDS, "DocumentResponse"))
        }
