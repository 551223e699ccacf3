"""The DICOM Upper Layer and DIMSE codecs (imaging_source.dul, imaging_source.dimse) and the
asyncio Storage SCP built on them, against independent peers: dcmtk (storescu, echoscu) and
pynetdicom as SCUs, pydicom as the reader of command sets, and raw sockets for what no
well-behaved peer sends (garbage, unaccepted context ids, tiny maximum PDU lengths)."""

from __future__ import annotations

import io
import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification  # type: ignore[attr-defined]

from imaging_source import dimse, dul
from imaging_source.db import make_engine, upgrade
from imaging_source.dicomstore import DicomStore
from imaging_source.intake import Intake
from imaging_source.scp import STATUS_MISMATCH, StorageSCP
from tests.support.dicom import DICOM_TOOL_ENV, StudySpec, make_study, tool, write_datasets

AET = "XDSEDGE"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
REPO = Path(__file__).resolve().parents[1]


# -- codec: golden bytes and round trips -----------------------------------------------------------
def test_fixed_pdus_have_the_standard_bytes() -> None:
    # PS3.8 §9.3.6-9.3.8 and §9.3.4: type, reserved, 4-byte big-endian length, fields.
    assert dul.encode_release_rq() == bytes.fromhex("05 00 00000004 00000000")
    assert dul.encode_release_rp() == bytes.fromhex("06 00 00000004 00000000")
    assert dul.encode_abort(dul.Abort(2, 6)) == bytes.fromhex("07 00 00000004 0000 02 06")
    assert dul.encode_associate_rj(dul.AssociateRJ(1, 1, 3)) == bytes.fromhex("03 00 00000004 00 01 01 03")


def test_pdata_golden_bytes_and_fragmentation() -> None:
    # PS3.8 §9.3.5 / Annex E.2: item length counts id and control; bit 0 command, bit 1 last.
    (one,) = dul.encode_pdata(1, b"ABCD", command=True, max_pdu=0)
    assert one == bytes.fromhex("04 00 0000000A 00000006 01 03") + b"ABCD"
    pieces = dul.encode_pdata(3, bytes(range(10)), command=False, max_pdu=10)
    assert [len(p) for p in pieces] == [16, 16, 14]  # 4, 4 and 2 data bytes: PDU length <= 10
    assert all(struct.unpack(">I", p[2:6])[0] <= 10 for p in pieces)
    assert [p[11] for p in pieces] == [0x00, 0x00, 0x02]
    assert b"".join(p[12:] for p in pieces) == bytes(range(10))


def _rq(max_length: int = 16384) -> dul.AssociateRQ:
    return dul.AssociateRQ(
        called_ae=AET, calling_ae="MODALITY", max_length=max_length,
        contexts=(dul.PresentationContextRQ(1, CT, (EXPLICIT, IMPLICIT)), dul.PresentationContextRQ(3, Verification, (IMPLICIT,))),
        implementation_class_uid="1.2.3.4", implementation_version="TEST_1",
        other_user_items=((0x54, b"\x00\x191.2.840.10008.5.1.4.1.1.2\x01\x00"),),
    )


def _feed_all(parser: dul.PduParser, data: bytes, step: int) -> list[dul.Event]:
    out: list[dul.Event] = []
    for start in range(0, len(data), step):
        out.extend(parser.feed(data[start : start + step]))
    return out


def test_associate_rq_and_ac_round_trip_in_any_split() -> None:
    rq = _rq()
    ac = dul.AssociateAC(
        called_ae=AET, calling_ae="MODALITY", max_length=0, implementation_class_uid="1.2.3", implementation_version="X",
        results=(dul.PresentationContextAC(1, 0, EXPLICIT), dul.PresentationContextAC(3, 3, IMPLICIT)),
    )
    stream = dul.encode_associate_rq(rq) + dul.encode_associate_ac(ac) + dul.encode_release_rq() + dul.encode_abort(dul.Abort(0, 0))
    for step in (1, 7, len(stream)):
        assert _feed_all(dul.PduParser(), stream, step) == [rq, ac, dul.ReleaseRQ(), dul.Abort(0, 0)]


def test_our_associate_rq_is_what_pynetdicom_reads() -> None:
    from pynetdicom.pdu import A_ASSOCIATE_RQ

    pdu = A_ASSOCIATE_RQ()
    pdu.decode(dul.encode_associate_rq(_rq(max_length=12345)))
    assert pdu.called_ae_title == AET and pdu.calling_ae_title == "MODALITY"
    assert [(c.context_id, str(c.abstract_syntax), [str(t) for t in c.transfer_syntax]) for c in pdu.presentation_context] == [
        (1, CT, [EXPLICIT, IMPLICIT]), (3, Verification, [IMPLICIT])]
    user = {type(item).__name__: item for item in pdu.user_information.user_data}
    assert user["MaximumLengthSubItem"].maximum_length_received == 12345
    assert str(user["ImplementationClassUIDSubItem"].implementation_class_uid) == "1.2.3.4"


def test_pdata_pdvs_stream_out_without_waiting_for_the_pdu() -> None:
    data = bytes(range(256)) * 40
    stream = b"".join(dul.encode_pdata(5, data, command=False, max_pdu=4096))
    parser = dul.PduParser()
    chunks = [e for e in _feed_all(parser, stream, 1000) if isinstance(e, dul.PDataChunk)]
    assert b"".join(bytes(c.data) for c in chunks) == data
    assert [c.last for c in chunks].count(True) == 1 and chunks[-1].last
    assert {c.context_id for c in chunks} == {5} and not any(c.command for c in chunks)
    # A 1 GB PDU announced in its header: the first bytes come out at once.
    first = parser.feed(struct.pack(">BBI", 4, 0, 10**9) + struct.pack(">IBB", 10**9 - 4, 1, 0) + b"xyz")
    assert len(first) == 1 and bytes(first[0].data) == b"xyz" and not first[0].last  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "garbage",
    [b"\x09\x00\x00\x00\x00\x04abcd", b"\x04\x00\x00\x00\x00\x02\x00\x00",
     b"\x04\x00\x00\x00\x00\x08\x00\x00\x00\x10\x01\x00\x00\x00",
     b"\x01\x00\x00\x00\x00\x03abc", b"\x07\x00\x00\x00\x00\x05abcde", b"\x04\x00\x00\x00\x00\x06\x00\x00\x00\x02\x02\x00"],
)
def test_malformed_pdus_raise_protocol_error(garbage: bytes) -> None:
    parser = dul.PduParser()
    with pytest.raises(dul.ProtocolError):
        parser.feed(garbage)
    with pytest.raises(dul.ProtocolError):
        parser.feed(b"")  # a failed parser stays failed


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.integers(min_value=1, max_value=64))
def test_the_parser_never_fails_but_with_protocol_error(data: bytes, step: int) -> None:
    parser = dul.PduParser(max_control_length=4096)
    try:
        _feed_all(parser, data, step)
    except dul.ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=6))
def test_split_points_do_not_change_what_is_parsed(payload: bytes, cuts: list[int]) -> None:
    stream = dul.encode_associate_rq(_rq()) + b"".join(dul.encode_pdata(1, payload, command=False, max_pdu=64))
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    parser = dul.PduParser()
    events: list[dul.Event] = []
    for start, end in zip(bounds, bounds[1:]):
        events.extend(parser.feed(stream[start:end]))
    assert events[0] == _rq()
    assert b"".join(bytes(e.data) for e in events[1:] if isinstance(e, dul.PDataChunk)) == payload


# -- DIMSE command sets, read by pydicom -----------------------------------------------------------
def _implicit_le(ds: Dataset, *, implicit: bool = True) -> bytes:
    """A bare dataset in Implicit (or Explicit) VR Little Endian, written by pydicom."""
    from pydicom.filebase import DicomBytesIO

    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, implicit
    write_dataset(out, ds)
    return out.getvalue()


def _pydicom_command(data: bytes) -> Dataset:
    return read_dataset(io.BytesIO(data), is_implicit_VR=True, is_little_endian=True)


def test_store_rsp_is_a_valid_implicit_little_endian_command_set() -> None:
    sop = "1.2.3.4.5.6.7"  # odd length: NUL padded (PS3.5 §6.2)
    data = dimse.encode_store_rsp(message_id=7, sop_class_uid=CT, sop_instance_uid=sop, status=0xA900)
    ds = _pydicom_command(data)
    assert ds.CommandGroupLength == len(data) - 12
    assert (ds.CommandField, ds.MessageIDBeingRespondedTo, ds.CommandDataSetType, ds.Status) == (0x8001, 7, 0x0101, 0xA900)
    assert ds.AffectedSOPClassUID == CT and ds.AffectedSOPInstanceUID == sop
    echo = _pydicom_command(dimse.encode_echo_rsp(message_id=3, sop_class_uid=Verification, status=0))
    assert (echo.CommandField, echo.Status, echo.AffectedSOPClassUID) == (0x8030, 0, Verification)
    assert "AffectedSOPInstanceUID" not in echo


def test_a_command_written_by_pydicom_is_decoded() -> None:
    ds = Dataset()
    ds.AffectedSOPClassUID = CT
    ds.CommandField = 0x0001
    ds.MessageID = 42
    ds.Priority = 2
    ds.CommandDataSetType = 0x0000
    ds.AffectedSOPInstanceUID = "1.2.3.45"
    ds.MoveOriginatorApplicationEntityTitle = "PACS"
    ds.MoveOriginatorMessageID = 9
    ds.CommandGroupLength = len(_implicit_le(ds))
    data = _implicit_le(ds)
    command = dimse.decode_command(data)
    assert command == dimse.Command(0x0001, 42, True, CT, "1.2.3.45", 2, "PACS", 9)
    with pytest.raises(dimse.DimseError):
        dimse.decode_command(data[:-3])


# -- the SCP, against real peers -------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Iterator[DicomStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'imaging.sqlite'}")
    upgrade(engine)
    yield DicomStore(tmp_path / "store", engine, fsync=False)
    engine.dispose()


@pytest.fixture
def scp(store: DicomStore) -> Iterator[StorageSCP]:
    with Intake(store) as intake, StorageSCP(store, ae_title=AET, port=0, intake=intake, artim_timeout=2.0) as server:
        yield server


def _dataset_bytes(data: bytes) -> bytes:
    return data[144 + int.from_bytes(data[140:144], "little") :]


def _echo_with_pynetdicom(port: int) -> int:
    ae = AE(ae_title="ECHOSCU")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=AET)
    assert assoc.is_established
    try:
        return int(assoc.send_c_echo().Status)
    finally:
        assoc.release()


def test_c_echo_from_echoscu_and_pynetdicom(scp: StorageSCP) -> None:
    result = subprocess.run([tool("echoscu"), "-aec", AET, "127.0.0.1", str(scp.port)],
                            env=DICOM_TOOL_ENV, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert _echo_with_pynetdicom(scp.port) == 0


def test_storescu_with_4k_pdus_is_reassembled(scp: StorageSCP, store: DicomStore, tmp_path: Path) -> None:
    datasets = make_study(StudySpec(instances_per_series=3, rows=128, columns=128))
    files = write_datasets(datasets, tmp_path / "in")
    result = subprocess.run([tool("storescu"), "--max-pdu", "4096", "-aec", AET, "127.0.0.1", str(scp.port), *map(str, files)],
                            env=DICOM_TOOL_ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert scp.intake is not None and scp.intake.flush(timeout=60)
    for ds, path in zip(datasets, files, strict=True):
        stored = store.instance(ds.SOPInstanceUID)
        assert stored is not None and _dataset_bytes(stored.path.read_bytes()) == _dataset_bytes(path.read_bytes())


def test_a_calling_ae_not_allowed_is_rejected(store: DicomStore) -> None:
    with StorageSCP(store, ae_title=AET, port=0, allowed_calling_aets=["MODALITY1"]) as server:
        refused = subprocess.run([tool("echoscu"), "-aet", "INTRUDER", "-aec", AET, "127.0.0.1", str(server.port)],
                                 env=DICOM_TOOL_ENV, capture_output=True, text=True, timeout=60)
        allowed = subprocess.run([tool("echoscu"), "-aet", "MODALITY1", "-aec", AET, "127.0.0.1", str(server.port)],
                                 env=DICOM_TOOL_ENV, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    text = refused.stdout + refused.stderr
    # PS3.8 §9.3.4: rejected-permanent, service-user, calling AE title not recognized.
    assert "Rejected Permanent" in text and "Calling AE Title Not Recognized" in text, text
    assert allowed.returncode == 0, allowed.stderr


def test_unsupported_abstract_and_transfer_syntaxes_are_refused_per_context(scp: StorageSCP) -> None:
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context("1.2.3.4.5.6")  # not a SOP Class we know
    ae.add_requested_context(CTImageStorage, ["1.2.3.4.999"])  # no transfer syntax we know
    ae.add_requested_context(MR, ["1.2.3.4.999", EXPLICIT, IMPLICIT])  # the first acceptable one wins
    assoc = ae.associate("127.0.0.1", scp.port, ae_title=AET)
    assert assoc.is_established
    try:
        results = {str(c.abstract_syntax): (c.result, str(c.transfer_syntax[0]) if c.result == 0 else None)
                   for c in assoc.accepted_contexts + assoc.rejected_contexts}
    finally:
        assoc.release()
    assert results == {"1.2.3.4.5.6": (3, None), CT: (4, None), MR: (0, EXPLICIT)}


def test_concurrent_associations_all_store(scp: StorageSCP, store: DicomStore) -> None:
    spec = StudySpec(modalities=("CT",) * 6, instances_per_series=4)
    datasets = make_study(spec)
    statuses: list[int] = []

    def send(part: list[Dataset]) -> None:
        ae = AE(ae_title="PARALLEL")
        ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", scp.port, ae_title=AET)
        assert assoc.is_established
        statuses.extend(int(assoc.send_c_store(ds).Status) for ds in part)
        assoc.release()

    threads = [threading.Thread(target=send, args=(datasets[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == [0] * 24
    assert scp.intake is not None and scp.intake.flush(timeout=60)
    assert store.count_instances(spec.study_uid) == 24


# -- raw peers: what well-behaved SCUs never send -------------------------------------------------
def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_events(sock: socket.socket, parser: dul.PduParser, *, until: type) -> list[dul.Event]:
    """Read until an event of type ``until`` (or the connection ends)."""
    events: list[dul.Event] = []
    while not any(isinstance(e, until) for e in events):
        data = sock.recv(65536)
        if not data:
            break
        events.extend(dul.PDataChunk(e.context_id, e.command, e.last, bytes(e.data)) if isinstance(e, dul.PDataChunk) else e
                      for e in parser.feed(data))
    return events


def _associate(sock: socket.socket, *, max_length: int = 16384) -> dul.PduParser:
    sock.sendall(dul.encode_associate_rq(_rq(max_length=max_length)))
    parser = dul.PduParser()
    (ac,) = _read_events(sock, parser, until=dul.AssociateAC)
    assert isinstance(ac, dul.AssociateAC) and ac.results[0].result == 0
    return parser


def _closed(sock: socket.socket) -> bool:
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


def test_responses_respect_the_peers_maximum_pdu_length(scp: StorageSCP) -> None:
    with _connect(scp.port) as sock:
        parser = _associate(sock, max_length=32)
        echo = dimse.encode_command({0x0002: Verification, 0x0100: 0x0030, 0x0110: 5, 0x0800: 0x0101})
        sock.sendall(b"".join(dul.encode_pdata(3, echo, command=True, max_pdu=0)))
        raw = bytearray()
        while True:
            data = sock.recv(65536)
            raw += data
            events = [e for e in dul.PduParser().feed(bytes(raw)) if isinstance(e, dul.PDataChunk)] if raw else []
            if (events and events[-1].last) or not data:
                break
        lengths, pos = [], 0
        while pos < len(raw):
            kind, _, length = struct.unpack_from(">BBI", raw, pos)
            assert kind == 4
            lengths.append(length)
            pos += 6 + length
        assert len(lengths) > 1 and max(lengths) <= 32
        response = _pydicom_command(b"".join(bytes(e.data) for e in dul.PduParser().feed(bytes(raw)) if isinstance(e, dul.PDataChunk)))
        assert (response.CommandField, response.MessageIDBeingRespondedTo, response.Status) == (0x8030, 5, 0)
        sock.sendall(dul.encode_release_rq())
        assert _read_events(sock, parser, until=dul.ReleaseRP)[-1] == dul.ReleaseRP()


def test_an_unaccepted_context_id_aborts_and_the_next_association_works(scp: StorageSCP) -> None:
    with _connect(scp.port) as sock:
        parser = _associate(sock)
        sock.sendall(b"".join(dul.encode_pdata(99, b"\x00" * 8, command=True, max_pdu=0)))
        events = _read_events(sock, parser, until=dul.Abort)
        assert isinstance(events[-1], dul.Abort) and events[-1].source == 2
        assert _closed(sock)
    assert _echo_with_pynetdicom(scp.port) == 0


def test_a_data_set_of_another_sop_class_gets_a900(scp: StorageSCP, store: DicomStore) -> None:
    (ds,) = make_study(StudySpec(modalities=("MR",), instances_per_series=1))
    # Context 1 was accepted with Explicit VR Little Endian; no File Meta, as a C-STORE carries it.
    body = io.BytesIO(_implicit_le(ds, implicit=False))
    command = dimse.encode_command({0x0002: CT, 0x0100: 0x0001, 0x0110: 11, 0x0700: 0, 0x0800: 0, 0x1000: ds.SOPInstanceUID})
    with _connect(scp.port) as sock:
        parser = _associate(sock)
        sock.sendall(b"".join(dul.encode_pdata(1, command, command=True, max_pdu=16384)))
        sock.sendall(b"".join(dul.encode_pdata(1, body.getvalue(), command=False, max_pdu=16384)))
        chunks = [e for e in _read_events(sock, parser, until=dul.PDataChunk) if isinstance(e, dul.PDataChunk)]
        response = _pydicom_command(b"".join(bytes(c.data) for c in chunks))
        sock.sendall(dul.encode_release_rq())
    assert (response.CommandField, response.MessageIDBeingRespondedTo, response.Status) == (0x8001, 11, STATUS_MISMATCH)
    assert scp.intake is not None and scp.intake.flush(timeout=30)
    assert store.instance(ds.SOPInstanceUID) is None
    assert list(store.incoming_dir.iterdir()) == [] and list(store.tmp_dir.iterdir()) == []


def test_silence_after_connect_ends_with_artim(scp: StorageSCP) -> None:
    with _connect(scp.port) as sock:
        sock.settimeout(30)
        assert sock.recv(100) == b""  # closed by the SCP once ARTIM (2 s here) expires


def test_a_request_trickling_in_does_not_hold_off_artim(scp: StorageSCP) -> None:
    """ARTIM runs from the connection to a complete A-ASSOCIATE-RQ (PS3.8 §9.1.5): bytes
    trickling in do not restart it (the network timeout is not ARTIM)."""
    request = dul.encode_associate_rq(_rq())
    closed = False
    with _connect(scp.port) as sock:
        sock.settimeout(0.3)
        for index in range(40):  # 40 bytes of a longer request, one every 0.3 s (> ARTIM's 2 s)
            try:
                sock.sendall(request[index : index + 1])
                if sock.recv(100) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
    assert len(request) > 40 and closed


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=1, max_size=400), st.booleans())
def test_garbage_never_stops_the_server(scp: StorageSCP, garbage: bytes, after_associate: bool) -> None:
    with _connect(scp.port) as sock:
        parser = _associate(sock) if after_associate else dul.PduParser()
        try:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            _read_events(sock, parser, until=dul.Abort)
        except (ConnectionResetError, BrokenPipeError, dul.ProtocolError):
            pass
    assert _echo_with_pynetdicom(scp.port) == 0


# -- a large instance streams with bounded memory --------------------------------------------------
_SERVE = """
import sys, threading
from pathlib import Path
from imaging_source.db import make_engine, upgrade
from imaging_source.dicomstore import DicomStore
from imaging_source.intake import Intake
from imaging_source.scp import StorageSCP
root = Path(sys.argv[1])
engine = make_engine(f"sqlite:///{root / 'imaging.sqlite'}")
upgrade(engine)
store = DicomStore(root / "store", engine, fsync=False)
with Intake(store) as intake, StorageSCP(store, ae_title="XDSEDGE", port=0, intake=intake) as scp:
    print(scp.port, flush=True)
    sys.stdin.read()
"""


def _big_instance(path: Path) -> Dataset:
    spec = StudySpec(modalities=("OT",), instances_per_series=1, rows=64, columns=64)
    (ds,) = make_study(spec)
    ds.Rows, ds.Columns = 10_000, 20_000  # 200 MB of 8-bit pixels
    ds.PixelData = np.random.default_rng(1).integers(0, 255, size=10_000 * 20_000, dtype=np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return ds


def test_a_200_mb_instance_streams_with_bounded_memory(tmp_path: Path) -> None:
    source = tmp_path / "big.dcm"
    ds = _big_instance(source)
    del ds  # the test process's copy is not the SCP's
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    server = subprocess.Popen([sys.executable, "-c", _SERVE, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        process = psutil.Process(server.pid)
        baseline = process.memory_info().rss
        peak = baseline
        sender = subprocess.Popen([tool("storescu"), "-aec", AET, "127.0.0.1", str(port), str(source)],
                                  env=DICOM_TOOL_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while sender.poll() is None:
            peak = max(peak, process.memory_info().rss)
            try:
                sender.wait(timeout=0.01)
            except subprocess.TimeoutExpired:
                pass
        assert sender.returncode == 0, sender.stderr.read() if sender.stderr else ""
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=60)
    size = source.stat().st_size
    assert size > 200_000_000
    # The SCP held a few network reads and one 256 KiB write buffer, not the instance.
    assert peak - baseline < 48 * 2**20, f"RSS grew by {(peak - baseline) / 2**20:.0f} MiB"
    stored = list((tmp_path / "store" / "studies").rglob("*.dcm"))
    assert len(stored) == 1
    with stored[0].open("rb") as received, source.open("rb") as sent:
        received.seek(132 + 12 + int.from_bytes(received.read(144)[140:144], "little"))
        sent.seek(132 + 12 + int.from_bytes(sent.read(144)[140:144], "little"))
        while True:
            a, b = received.read(1 << 22), sent.read(1 << 22)
            assert a == b
            if not a:
                break


def test_network_timeout_spares_a_slow_data_set_and_ends_an_idle_association(store: DicomStore) -> None:
    (ds,) = make_study(StudySpec(instances_per_series=1, rows=32, columns=32))
    body = _implicit_le(ds, implicit=False)
    command = dimse.encode_command({0x0002: CT, 0x0100: 0x0001, 0x0110: 1, 0x0700: 0, 0x0800: 0, 0x1000: ds.SOPInstanceUID})
    pdus = dul.encode_pdata(1, body, command=False, max_pdu=len(body) // 5 + 7)
    with Intake(store) as intake, StorageSCP(store, ae_title=AET, port=0, intake=intake, network_timeout=0.6) as server:
        with _connect(server.port) as sock:
            parser = _associate(sock)
            sock.sendall(b"".join(dul.encode_pdata(1, command, command=True, max_pdu=0)))
            for pdu in pdus:  # ~1.6 s in all, longer than the timeout, never idle that long
                threading.Event().wait(0.3)
                sock.sendall(pdu)
            events = _read_events(sock, parser, until=dul.PDataChunk)
            response = _pydicom_command(b"".join(bytes(e.data) for e in events if isinstance(e, dul.PDataChunk)))
            assert response.Status == 0
            # Now idle: the SCP aborts the association (A-ABORT, service provider) and closes.
            events = _read_events(sock, parser, until=dul.Abort)
            assert isinstance(events[-1], dul.Abort) and events[-1].source == 2
        assert intake.flush(timeout=30)
    stored = store.instance(ds.SOPInstanceUID)
    assert stored is not None and _dataset_bytes(stored.path.read_bytes()) == body
