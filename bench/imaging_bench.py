"""Edge Server benchmark: C-STORE ingest against dcmtk's storescp, RAD-69 retrieval against
Orthanc's REST API, in the same run, with each server's peak RSS.

    python bench/imaging_bench.py                 # 500 CT instances (512x512x16, ~525 KB), 5 runs
    python bench/imaging_bench.py --runs 3 --instances 100

Method (performance-anchors §1.5, §3):

* Ingest: dcmtk ``storescu`` (one association, TCP_NODELAY=1) sends the same 500 files to
  ``storescp`` (TCP_NODELAY=1, default write mode) and to the Edge Server's Storage SCP (its own
  process, fresh store each run, with and without fsync), interleaved A B A B. A reference row:
  plain pynetdicom (TCP_NODELAY, a C-STORE handler that does nothing), its protocol cost alone.
* Retrieval: the same 500-instance study from Orthanc (TCP_NODELAY=1, per-instance
  ``/instances/{id}/file`` over one keep-alive connection with ``curl -K``) and from the Edge
  Server (one RAD-69 request for all 500 instances, MTOM response, posted with curl to
  /dev/null; also through the project's httpx SoapClient, which checks every returned byte).
* Peak RSS: psutil samples each server process (and its children) every 20 ms.

Everything binds 127.0.0.1. Scratch files live in ``$XDS_BENCH_DIR/imaging`` (default
/tmp/xds-bench/imaging) and are removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

SCRATCH = Path(os.environ.get("XDS_BENCH_DIR", "/tmp/xds-bench")) / "imaging"
ENV = {**os.environ, "TCP_NODELAY": "1", "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
AET = "XDSEDGE"
SOURCE_ID = "1.3.6.1.4.1.21367.13.80.110"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin")
    if not found:
        raise SystemExit(f"{name} not found: run scripts/install-dicom-tools.sh")
    return found


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class RssSampler:
    """Peak RSS (bytes) of a process and its children, sampled every 20 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                total = self.process.memory_info().rss
                for child in self.process.children(recursive=True):
                    total += child.memory_info().rss
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            self._stop.wait(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


@contextmanager
def server(cmd: Sequence[str], *, port: int, log: Path) -> Iterator[RssSampler]:
    with open(log, "ab") as out:
        process = subprocess.Popen(list(cmd), env=ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(port)
        sampler = RssSampler(process.pid)
        yield sampler
        sampler.stop()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def timed(cmd: Sequence[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(list(cmd), env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {result.stderr[-1000:]}")
    return elapsed


# -- data -------------------------------------------------------------------------------------------
def make_inputs(directory: Path, count: int) -> list[Path]:
    from tests.support.dicom import StudySpec, make_study, write_datasets

    files = sorted(directory.glob("*.dcm"))
    if len(files) == count:
        return files
    shutil.rmtree(directory, ignore_errors=True)
    series = 5 if count >= 5 else 1
    spec = StudySpec(modalities=("CT",) * series, instances_per_series=count // series, rows=512, columns=512)
    return sorted(write_datasets(make_study(spec), directory))


# -- child-process servers --------------------------------------------------------------------------
def serve_pynetdicom_null(port: int) -> None:
    """Plain pynetdicom's own cost (the reference row): a Storage SCP whose handler stores
    nothing, TCP_NODELAY on its accepted sockets, every Storage SOP Class in every syntax."""
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
    from pynetdicom.transport import ThreadedAssociationServer

    class NoDelayServer(ThreadedAssociationServer):
        def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
            client, address = super().get_request()
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return client, address

    ae = AE(ae_title=AET)
    ae.maximum_pdu_size = 0
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    server = ae.make_server(("127.0.0.1", port), evt_handlers=[(evt.EVT_C_STORE, lambda event: 0)],
                            server_class=NoDelayServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.shutdown()


def serve_scp(data_dir: Path, port: int, *, fsync: bool) -> None:
    from imaging_source.db import make_engine, upgrade
    from imaging_source.dicomstore import DicomStore
    from imaging_source.intake import Intake
    from imaging_source.scp import StorageSCP

    engine = make_engine(f"sqlite:///{data_dir / 'imaging.sqlite'}")
    upgrade(engine)
    store = DicomStore(data_dir / "dicom", engine, fsync=fsync)
    intake = Intake(store)
    intake.start()
    scp = StorageSCP(store, ae_title=AET, host="127.0.0.1", port=port, intake=intake)
    scp.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    scp.stop()
    intake.stop()


def serve_http(data_dir: Path, port: int) -> None:
    from imaging_source.app import build_source_app, open_store
    from imaging_source.config import SourceSettings
    from xds.http.server import run_server

    settings = SourceSettings(data_dir=data_dir, source_id=SOURCE_ID, fsync=False, dicom_port=0)
    run_server(build_source_app(settings, store=open_store(settings)), host="127.0.0.1", port=port, log_level="warning")


def _child(mode: str, *args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", mode, *args]


# -- phases -----------------------------------------------------------------------------------------
def ingest(files: list[Path], runs: int, work: Path) -> dict[str, Any]:
    storescu = [tool("storescu"), "-aec", "{aec}", "127.0.0.1", "{port}", *map(str, files)]
    results: dict[str, dict[str, Any]] = {}

    def one(name: str, start: Callable[[Path, int], list[str]], aec: str) -> None:
        out = work / f"ingest-{name}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        port = free_port()
        with server(start(out, port), port=port, log=work / f"{name}.log") as sampler:
            cmd = [part.format(aec=aec, port=port) for part in storescu]
            elapsed = timed(cmd)
            time.sleep(0.2)
            peak = sampler.peak
        entry = results.setdefault(name, {"seconds": [], "peak_rss": []})
        entry["seconds"].append(elapsed)
        entry["peak_rss"].append(peak)
        shutil.rmtree(out, ignore_errors=True)

    contenders: list[tuple[str, Callable[[Path, int], list[str]], str]] = [
        ("storescp", lambda out, port: [tool("storescp"), "-aet", "STORESCP", "-od", str(out), str(port)], "STORESCP"),
        ("edge (fsync off)", lambda out, port: _child("scp", str(out), str(port), "0"), AET),
        ("edge (fsync on)", lambda out, port: _child("scp", str(out), str(port), "1"), AET),
        ("pynetdicom, handler does nothing", lambda out, port: _child("null", str(out), str(port), "0"), AET),
    ]
    for run in range(runs):
        for name, start, aec in contenders:
            one(name, start, aec)
        print(f"  ingest run {run + 1}/{runs}: " + ", ".join(f"{n} {results[n]['seconds'][-1]:.2f} s" for n, _, _ in contenders), flush=True)
    return results


def retrieval(files: list[Path], runs: int, work: Path) -> dict[str, Any]:
    import httpx
    from lxml import etree
    from pydicom import dcmread

    from imaging_source.app import PATH, open_store
    from imaging_source.config import SourceSettings
    from tests.support.dicom import rad69_request
    from xds.http.client import SoapClient
    from xds.soap.envelope import request_envelope
    from xds.vocabulary import Action

    results: dict[str, dict[str, Any]] = {}
    # The Edge Server's store, filled directly (ingest is measured above).
    edge_dir = work / "edge"
    shutil.rmtree(edge_dir, ignore_errors=True)
    settings = SourceSettings(data_dir=edge_dir, source_id=SOURCE_ID, fsync=False)
    store = open_store(settings)
    mapping: dict[str, dict[str, list[str]]] = {}
    for path in files:
        stored = store.store_bytes(path.read_bytes())
        mapping.setdefault(stored.study_uid, {}).setdefault(stored.series_uid, []).append(stored.sop_uid)
    store.engine.dispose()
    request = rad69_request(mapping, repository_id=SOURCE_ID)
    envelope = etree.tostring(request_envelope(request, action=Action.RAD69), xml_declaration=True, encoding="UTF-8")
    (work / "rad69.xml").write_bytes(envelope)

    # Orthanc with the same 500 instances.
    orthanc_dir = work / "orthanc"
    shutil.rmtree(orthanc_dir, ignore_errors=True)
    orthanc_dir.mkdir(parents=True)
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "bench", "StorageDirectory": str(orthanc_dir / "storage"), "IndexDirectory": str(orthanc_dir / "index"),
        "StorageCompression": False, "HttpPort": http_port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "DicomAet": "ORTHANC", "DicomPort": dicom_port, "DicomCheckCalledAet": False, "StableAge": 3600, "Plugins": [],
    }
    (orthanc_dir / "orthanc.json").write_text(json.dumps(config))
    edge_port = free_port()
    with server([tool("Orthanc"), str(orthanc_dir / "orthanc.json")], port=http_port, log=work / "orthanc.log") as orthanc, \
            server(_child("http", str(edge_dir), str(edge_port)), port=edge_port, log=work / "edge-http.log") as edge:
        wait_port(dicom_port)
        timed([tool("storescu"), "-aec", "ORTHANC", "127.0.0.1", str(dicom_port), *map(str, files)])
        ids = \
            httpx.get(f"http://127.0.0.1:{http_port}/instances", timeout=60).json()
        assert len(ids) == len(files), f"Orthanc holds {len(ids)} instances"
        urls = work / "urls.txt"
        urls.write_text("".join(f'url = "http://127.0.0.1:{http_port}/instances/{i}/file"\noutput = "/dev/null"\n' for i in ids))
        edge_url = f"http://127.0.0.1:{edge_port}{PATH}"
        curl_edge = [tool("curl"), "-s", "-f", "-o", "/dev/null", "-H",
                     f'Content-Type: application/soap+xml; charset=UTF-8; action="{Action.RAD69}"',
                     "--data-binary", f"@{work / 'rad69.xml'}", edge_url]
        curl_orthanc = [tool("curl"), "-s", "-f", "-K", str(urls)]

        def soap_client() -> float:
            start = time.perf_counter()
            with SoapClient(edge_url, spool_dir=work / "spool", timeout=300) as client, client.call(Action.RAD69, request) as reply:
                parts = reply.resolve_xop()
                elapsed = time.perf_counter() - start
                assert len(parts) == len(files), len(parts)
                for attachment in list(parts.values())[:5]:
                    assert dcmread(attachment.open()).SOPInstanceUID
            return elapsed

        # Warm both (page cache, first-request costs), then interleave.
        timed(curl_orthanc)
        timed(curl_edge)
        for run in range(runs):
            for name, fn in (("orthanc REST (curl -K, keep-alive)", lambda: timed(curl_orthanc)),
                             ("edge RAD-69 (curl)", lambda: timed(curl_edge)),
                             ("edge RAD-69 (httpx SoapClient)", soap_client)):
                results.setdefault(name, {"seconds": []})["seconds"].append(fn())
            print(f"  retrieval run {run + 1}/{runs}: " + ", ".join(f"{n} {v['seconds'][-1]:.3f} s" for n, v in results.items()), flush=True)
        orthanc_peak, edge_peak = orthanc.peak, edge.peak
    results["orthanc REST (curl -K, keep-alive)"]["peak_rss"] = [orthanc_peak]
    for name in ("edge RAD-69 (curl)", "edge RAD-69 (httpx SoapClient)"):
        results[name]["peak_rss"] = [edge_peak]
    return results


def summarise(phase: dict[str, Any], count: int, megabytes: float) -> list[str]:
    lines = ["| contender | median s | instances/s | MB/s | runs (s) | peak RSS (MiB) |", "|---|---:|---:|---:|---|---:|"]
    for name, entry in phase.items():
        median = statistics.median(entry["seconds"])
        entry["median"] = median
        lines.append(
            f"| {name} | {median:.3f} | {count / median:,.0f} | {megabytes / median:,.0f} | "
            f"{', '.join(f'{s:.2f}' for s in entry['seconds'])} | {max(entry['peak_rss']) / 2**20:,.0f} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *rest = args.child
        if mode == "scp":
            serve_scp(Path(rest[0]), int(rest[1]), fsync=rest[2] == "1")
        elif mode == "null":
            serve_pynetdicom_null(int(rest[1]))
        else:
            serve_http(Path(rest[0]), int(rest[1]))
        return 0

    SCRATCH.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=SCRATCH))
    try:
        files = make_inputs(SCRATCH / f"input-{args.instances}", args.instances)
        megabytes = sum(f.stat().st_size for f in files) / 1e6
        print(f"{len(files)} instances, {megabytes:.1f} MB; scratch {work}", flush=True)
        ingest_results = ingest(files, args.runs, work)
        retrieval_results = retrieval(files, args.runs, work)
        lines = ["## C-STORE ingest (storescu, one association, TCP_NODELAY=1)", "",
                 *summarise(ingest_results, len(files), megabytes), ""]
        base = ingest_results["storescp"]["median"]
        for name in ("edge (fsync off)", "edge (fsync on)", "pynetdicom, handler does nothing"):
            lines.append(f"- {name} / storescp rate: **{base / ingest_results[name]['median']:.2f}** (target >= 0.50)")
        lines += ["", "## Retrieval of the whole study", "", *summarise(retrieval_results, len(files), megabytes), ""]
        orthanc = retrieval_results["orthanc REST (curl -K, keep-alive)"]["median"]
        for name in ("edge RAD-69 (curl)", "edge RAD-69 (httpx SoapClient)"):
            lines.append(f"- {name} / Orthanc rate: **{orthanc / retrieval_results[name]['median']:.2f}** (target >= 1.00)")
        report = "\n".join(lines) + "\n"
        print("\n" + report)
        if args.json:
            args.json.write_text(json.dumps({"ingest": ingest_results, "retrieval": retrieval_results}, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
