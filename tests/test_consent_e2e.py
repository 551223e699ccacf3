"""The consent token end to end, every actor a real process or peer on loopback (DESIGN §5):

Orthanc (the hospital PACS) -> the Edge Server pulls the study by C-MOVE -> KOS + RAD-68 to the
repository -> ITI-42 to the registry -> the grant holds the exam; then a consumer with only the
access code and PIN fetches every image (ITI-18, ITI-43, RAD-69 with the SAML assertion) and each
data set is byte-identical to what the PACS holds. Without the token nothing is visible; a wrong
PIN is refused. A second test runs ``xds demo`` against ``xds up`` and fetches with what it prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from imageshare.cli import main
from imaging_source.synthetic import SyntheticPatient, SyntheticStudy, chest_ct
from tests.support.dicom import OrthancServer, orthanc_factory, write_datasets  # noqa: F401
from tests.support.up import Up, running_up, xds_command, xds_env
from xds.hl7.mllp import send_mllp

PIN = "271828"
AFFINITY = "1.3.6.1.4.1.21367.13.20.1000"


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    with running_up(tmp_path) as instance:  # the default policy: consent
        yield instance


def _dataset_bytes(data: bytes) -> bytes:
    """A Part 10 file's data set: what follows the File Meta Information (PS3.10 §7.1), whose
    length (0002,0000) is the first element after the preamble and 'DICM'."""
    assert data[128:132] == b"DICM"
    assert data[132:136] == b"\x02\x00\x00\x00" and data[136:138] == b"UL"
    group_length = int.from_bytes(data[140:144], "little")
    return data[144 + group_length :]


def _wait(what: str, check: Callable[[], bool], log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{log.read_text()[-4000:]}"
        time.sleep(0.3)


def _feed(up: Up, patient_id: str) -> None:
    """ITI-8: the affinity-domain patient ID registered with the registry (the hospital's ADT)."""
    message = (
        "MSH|^~\\&|ADT|HOSP|XDS|REG|20261129120000||ADT^A04^ADT_A01|MSGE2E|P|2.5\r"
        f"EVN|A04|20261129120000\rPID|1||{patient_id}^^^&{AFFINITY}&ISO||Doe^Jane||19700101|F\r"
    ).encode()
    assert b"MSA|AA" in send_mllp("127.0.0.1", up.mllp_port, message, timeout=10)


def _xds(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*xds_command(), *args], input=stdin, capture_output=True, text=True, timeout=300, env={**xds_env(), **(env or {})}
    )


def test_orthanc_to_consumer_with_the_token(up: Up, tmp_path: Path, orthanc_factory) -> None:  # noqa: F811
    patient = SyntheticPatient(patient_id="E2E0001", name="Doe^Jane")
    study = SyntheticStudy(accession="E2E-CT-1", description="CT chest", study_date="20261120", slices=12, size=128)
    files = write_datasets(chest_ct(patient, study), tmp_path / "modality")
    pacs: OrthancServer = orthanc_factory(modalities={"edge": ("XDSEDGE", "127.0.0.1", up.dicom_port)})
    pacs.start()
    pacs.upload(files)
    _feed(up, patient.patient_id)

    edge = {"XDS_SOURCE_GRANT_API_KEY": up.grant_api_key, "XDS_SOURCE_GRANT_API_URL": f"{up.base}/consent"}
    added = _xds("source", "pacs", "add", "hospital", "--ae-title", pacs.aet, "--host", "127.0.0.1", "--port", str(pacs.dicom_port), *up.flags())
    assert added.returncode == 0, added.stderr
    enrolled = _xds("source", "enrol", patient.patient_id, "--sheet", str(tmp_path / "sheet.pdf"), *up.flags(), stdin=f"{PIN}\n{PIN}\n", env=edge)
    assert enrolled.returncode == 0, enrolled.stderr + enrolled.stdout
    code = next(line.split(":", 1)[1].strip() for line in enrolled.stdout.splitlines() if line.startswith("access code:"))
    assert code not in up.log.read_text() and code.replace("-", "") not in up.log.read_text()

    shared = _xds("source", "share", patient.patient_id, "--all", "--release", "immediately", *up.flags(), env=edge)
    assert shared.returncode == 0, shared.stderr + shared.stdout
    assert "E2E-CT-1" in shared.stdout, "the study was found on the PACS by C-FIND"

    from imaging_source.db import make_engine
    from imaging_source.enrol import GrantBook
    from imaging_source.jobs import JobState, JobStore

    engine = make_engine(f"sqlite:///{up.data_dir / 'imaging.sqlite'}")
    try:
        jobs, book = JobStore(engine), GrantBook(engine)

        def synced() -> bool:
            listed = jobs.list(patient_id=patient.patient_id)
            assert all(j.state != JobState.FAILED for j in listed), [j.last_error for j in listed]
            return bool(listed) and all(j.state == JobState.DONE and book.pending(j.id) is None for j in listed)

        _wait("the share job and the grant update", synced, up.log)
    finally:
        engine.dispose()

    registry, repository = f"{up.base}/registry", f"{up.base}/repository"
    from imaging_source.config import SourceSettings

    source_id = SourceSettings().source_id
    out = tmp_path / "fetched"
    fetched = _xds(
        "consumer", "fetch", "--registry", registry, "--repository", repository,
        "--source", f"{source_id}={up.base}/imaging-source", "--code", code, "--pin-stdin", "--out", str(out), "--no-progress",
        stdin=PIN + "\n",
    )  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr + fetched.stdout
    received = {p.name: p for p in out.rglob("*.dcm")}
    for original in files:
        orthanc_file = httpx.get(f"{pacs.url}/instances/{_orthanc_id(pacs, original)}/file", timeout=30).content
        mine = received.get(original.name)
        assert mine is not None, f"{original.name} missing from {sorted(received)}"
        assert _dataset_bytes(mine.read_bytes()) == _dataset_bytes(orthanc_file)
    assert "instances: 12 (fetched 12" in fetched.stdout and "failures: 0" in fetched.stdout

    # Without the token: nothing; with a wrong PIN: refused, nothing written.
    anonymous = _xds("consumer", "list", "--registry", registry, "--patient", f"{patient.patient_id}^^^&{AFFINITY}&ISO")
    assert anonymous.returncode == 0 and "E2E" not in anonymous.stdout and "2.25." not in anonymous.stdout
    wrong = _xds("consumer", "list", "--registry", registry, "--code", code, "--pin-stdin", stdin="000000\n")
    assert wrong.returncode != 0 and "not accepted" in (wrong.stderr + wrong.stdout)
    audit = (up.data_dir / "audit" / "imaging-source-consent.jsonl").read_text()
    assert '"RAD-69"' in audit and code.replace("-", "") not in audit and PIN not in audit


def _orthanc_id(pacs: OrthancServer, path: Path) -> str:
    from pydicom import dcmread

    sop = dcmread(path, stop_before_pixels=True).SOPInstanceUID
    found = httpx.post(f"{pacs.url}/tools/lookup", content=sop, timeout=30).json()
    return next(item["ID"] for item in found if item["Type"] == "Instance")


def test_demo_prints_what_fetches_the_images(up: Up, tmp_path: Path) -> None:
    seeded = _xds(
        "demo", "--port", str(up.port), "--dicom-port", str(up.dicom_port), "--ris-port", str(up.ris_port),
        "--mllp-port", str(up.mllp_port), "--json", *up.flags(),
    )  # fmt: skip
    assert seeded.returncode == 0, seeded.stderr + seeded.stdout
    result = json.loads(seeded.stdout)
    assert [s["modality"] for s in result["studies"]] == ["CT", "MR"]
    assert len(result["access_code"]) == 8 and result["pin"].isdigit()
    assert Path(result["code_sheet"]).read_bytes().startswith(b"%PDF-")
    assert os.stat(result["code_sheet"]).st_mode & 0o077 == 0
    command = result["consumer_command"]
    assert command.startswith(f"echo {result['pin']} | xds consumer fetch ")
    args = command.split(" | ", 1)[1].split()[1:]  # the printed command, run as printed
    out = tmp_path / "demo-images"
    args[args.index("--out") + 1] = str(out)
    fetched = _xds(*args, "--no-progress", stdin=result["pin"] + "\n")
    assert fetched.returncode == 0, fetched.stderr + fetched.stdout
    images = sum(s["instances"] for s in result["studies"])
    assert f"instances: {images} (fetched {images}" in fetched.stdout
    assert "reports: 2" in fetched.stdout
    # What the code unlocks is exactly the two exams, and nothing leaks to the log.
    runner = CliRunner()
    listed = runner.invoke(main, ["consumer", "list", "--registry", result["registry"], "--code", result["access_code"], "--pin-stdin"], input=result["pin"] + "\n")
    assert listed.exit_code == 0, listed.output
    assert all(s["study_uid"][:40] in listed.output for s in result["studies"])
    log = up.log.read_text()
    assert result["access_code"] not in log and result["access_code_display"] not in log
