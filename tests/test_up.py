"""``xds up``: the real command in its own process hosts the registry and the repository on one
port; a document submitted through the repository is registered, found and retrieved
byte-identical, and the repository reaches the registry over loopback HTTP (open policy here; the
consent policy, the default, is tested end to end in test_consent_e2e.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from consumer.cli import consumer
from imageshare.cli import main
from tests.support import factory as f
from tests.support.up import PATHS, Up, running_up
from xds.hl7.mllp import send_mllp


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    """``xds up`` in the open policy: plain XDS.b, what a Connectathon harness expects."""
    with running_up(tmp_path, "--policy", "open") as instance:
        yield instance


def _feed(up: Up, pid: str) -> None:
    local, authority = pid.split("^^^")
    message = (
        f"MSH|^~\\&|ADT|HOSP|XDS|REG|20261129120000||ADT^A04^ADT_A01|MSG{local}|P|2.5\r"
        f"EVN|A04|20261129120000\rPID|1||{local}^^^{authority}||Doe^Jane||19700101|F\r"
    ).encode()
    reply = send_mllp("127.0.0.1", up.mllp_port, message, timeout=10)
    assert b"MSA|AA" in reply, reply


def test_up_serves_registry_and_repository_together(up: Up, tmp_path: Path) -> None:
    pid = f.patient_id()
    _feed(up, pid)
    document = tmp_path / "report.txt"
    document.write_bytes(b"Impression: normal study.\n" + os.urandom(200_000))
    env = {"XDS_CONSUMER_REGISTRY": f"{up.base}/registry", "XDS_CONSUMER_REPOSITORY": f"{up.base}/repository"}
    runner = CliRunner()

    submitted = runner.invoke(consumer, ["submit", str(document), "--patient", pid], env=env)
    assert submitted.exit_code == 0, submitted.output
    listed = runner.invoke(consumer, ["query", "--patient", pid, "--xml"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success" in listed.output
    unique_ids = _unique_ids(listed.output)
    assert len(unique_ids) == 1, listed.output

    out = tmp_path / "out"
    fetched = runner.invoke(consumer, ["retrieve", unique_ids[0], "--out", str(out)], env=env)
    assert fetched.exit_code == 0, fetched.output
    [written] = out.glob(f"{unique_ids[0]}.*")
    assert written.read_bytes() == document.read_bytes()
    assert (up.data_dir / "registry.sqlite").is_file() or any(up.data_dir.glob("*.sqlite"))
    assert any((up.data_dir / "documents").rglob("*")), "the repository stores under the data directory"
    log = up.log.read_text()
    assert all(f"/{path}" in log for path in PATHS), "the endpoints are logged at start"


def test_up_runs_the_edge_server_dicom_intake(up: Up, tmp_path: Path) -> None:
    from tests.support.dicom import StudySpec, make_study, storescu, write_datasets

    spec = StudySpec(accession="UP1", instances_per_series=2)
    files = write_datasets(make_study(spec), tmp_path / "modality")
    pushed = storescu(files, port=up.dicom_port, called="XDSEDGE")
    assert pushed.returncode == 0, pushed.stderr
    runner = CliRunner()
    deadline = time.monotonic() + 30
    while True:
        jacket = runner.invoke(main, ["source", "jacket", spec.patient_id, "--data-dir", str(up.data_dir)])
        if jacket.exit_code == 0 and "UP1" in jacket.output:
            break
        assert time.monotonic() < deadline, jacket.output
        time.sleep(0.3)


def _unique_ids(xml: str) -> list[str]:
    from lxml import etree

    from xds.vocabulary import IdScheme

    root = etree.fromstring(xml.encode())
    return [
        e.get("value")
        for e in root.iter("{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}ExternalIdentifier")
        if e.get("identificationScheme") == IdScheme.DE_UNIQUE_ID
    ]


def test_every_actor_group_is_on_the_xds_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for group in ("registry", "repository", "source", "consumer", "conformance", "up"):
        assert f"  {group} " in result.output, result.output
