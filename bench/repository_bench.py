"""Document Repository throughput: ITI-41 ingest and ITI-43 retrieve in MB/s, each against a plain
upload and a plain download of the same bytes through the same server, plus the server's peak RSS.

    python bench/repository_bench.py                        # 1 MB, 100 MB, 1 GB
    python bench/repository_bench.py --sizes 1e6 1e8 --runs 5

One server process per document size (so each peak RSS belongs to one size) runs the benchmark's
composition of the repository: :func:`repository.app.build_repository_app` unchanged, plus two
routes the product does not have:

* ``PUT /plain/{name}``: the request body streamed to a file (the writes handed to a worker
  thread, as the repository's spool does), fsynced and renamed; the durable minimum of a plain
  upload service, without MIME, hashing, metadata or a registry;
* ``GET /plain/{sha256}``: the repository's stored file for that content, as a Starlette
  FileResponse with 1 MiB chunks.

The registry (SQLite) runs in its own process. Clients, each measured in the same run, A/B
interleaved: **curl** (a fast client: ``-w %{time_total}``, bodies from files) and **httpx**
(1 MiB generator uploads, ``iter_raw`` downloads), both discarding what they receive. ITI-41 bodies
are MTOM files whose SOAP part is rewritten in place for each run (fresh uniqueIds, same length);
between runs the stored documents are removed from the repository's index and store, so no run
is deduplicated into a rename-free no-op. MB = 10^6 bytes. Medians of ``--runs`` runs.

``--floor`` adds, for the smallest size, what an ITI-41 cannot do without, each measured alone in
the same run:

* SHA-1 + SHA-256 of the document (the issue asks for both);
* one hardened parse of the SOAP part (the metadata must be read once);
* one durable index commit (raw ``sqlite3``, WAL, ``synchronous=FULL``: the pending row must
  survive a power cut before ITI-42);
* one durable rename (a flushed file renamed to its content address, its directory fsynced;
  the plain PUT renames without making the name durable);
* one ITI-42 round trip of that document's metadata to the same registry process from a
  minimal client (``http.client``, keep-alive, envelopes built beforehand; DESIGN keeps ITI-42 on
  the wire). The registry is left idle before each call for as long as it is idle between two
  back-to-back ITI-41 submissions (measured ITI-41 minus a back-to-back round trip), because on
  this kind of machine code that has sat idle for a few milliseconds runs markedly slower; the
  back-to-back figure is reported beside it.

Their sum added to the plain PUT is the fastest an ITI-41 could be if everything else (HTTP
framing, MIME, validation, thread hand-offs, the index transaction's own SQL) cost nothing; the
PUT's time over it is the best ingest ratio this design allows on the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import random
import queue
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchutil import DEFAULT_SCRATCH, free_port, machine, server_process, write_json

CHUNK = 1 << 20
REPOSITORY_ID = "1.3.6.1.4.1.21367.13.40.999"
PATIENT = "BENCH1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"


# -- the benchmark's server ------------------------------------------------------------------------
def _plain_routes(store_root: Path) -> list[Any]:
    """The plain PUT/GET baseline routes (see the module documentation)."""
    import anyio
    import anyio.to_thread
    from starlette.requests import Request
    from starlette.responses import FileResponse, PlainTextResponse, Response
    from starlette.routing import Route

    plain_dir = store_root / "plain"
    plain_dir.mkdir(parents=True, exist_ok=True)

    class ChunkedFile(FileResponse):
        chunk_size = CHUNK

    async def put(request: Request) -> Response:
        target = plain_dir / request.path_params["name"]
        partial = target.with_suffix(".part")
        chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)

        def write() -> int:
            size = 0
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                while (chunk := chunks.get()) is not None:
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
                    size += len(chunk)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(partial, target)
            return size

        async with anyio.create_task_group() as group:
            result: list[int] = []

            async def writer() -> None:
                result.append(await anyio.to_thread.run_sync(write))

            group.start_soon(writer)
            batch: list[bytes] = []
            pending = 0
            async for chunk in request.stream():
                batch.append(chunk)
                pending += len(chunk)
                if pending >= CHUNK:
                    await anyio.to_thread.run_sync(chunks.put, b"".join(batch))
                    batch, pending = [], 0
            if batch:
                await anyio.to_thread.run_sync(chunks.put, b"".join(batch))
            await anyio.to_thread.run_sync(chunks.put, None)
        return PlainTextResponse(f"{result[0]}\n", status_code=201)

    async def get(request: Request) -> Response:
        sha256 = request.path_params["sha256"]
        path = store_root / "objects" / sha256[:2] / sha256[2:4] / sha256
        if not path.is_file():
            return PlainTextResponse("not found\n", status_code=404)
        return ChunkedFile(path, media_type="application/octet-stream")

    return [Route("/plain/{name}", put, methods=["PUT"]), Route("/plain/{sha256}", get, methods=["GET"])]


def serve(args: argparse.Namespace) -> None:
    """``repository_bench.py serve``: the composition described in the module documentation."""
    import logging

    from repository.app import build_repository_app
    from repository.config import RepositorySettings
    from xds.http.server import run_server

    logging.basicConfig(level=logging.WARNING)
    if os.environ.get("XDS_BENCH_DEBUG"):
        logging.getLogger("repository").setLevel(logging.DEBUG)
    settings = RepositorySettings(
        port=args.port, registry=args.registry, repository_id=REPOSITORY_ID, store=args.store, db=args.db, data_dir=args.store.parent
    )
    app = build_repository_app(settings, extra_routes=_plain_routes(args.store))
    run_server(app, host="127.0.0.1", port=args.port, log_level="warning")


# -- building ITI-41 bodies ------------------------------------------------------------------------
@dataclass
class Body:
    """An MTOM ITI-41 body on disk: [head][document][tail]; the head is rewritten per run."""

    path: Path
    content_type: str
    head_length: int
    document: Path
    size: int
    unique_ids: list[str] = field(default_factory=list)

    def next_run(self) -> str:
        """Fresh uniqueIds in the head (same length); returns the document uniqueId."""
        head, unique_id = _head(self.document, self.size, next(_RUNS))
        if len(head) != self.head_length:
            raise RuntimeError("the SOAP part changed length")
        with open(self.path, "r+b") as f:
            f.write(head)
        self.unique_ids.append(unique_id)
        return unique_id


_BOUNDARY = "MIMEBoundary_repository_bench"
#: Run numbers, unique across sizes and across invocations of the benchmark (random start).
_RUNS = itertools.count(random.randrange(10**30))


def _fixed_oid(kind: int, counter: int) -> str:
    # Fixed width: 2.25 + a 39-digit number.
    return f"2.25.{10**38 * kind + counter:039d}"


def _head(document: Path, size: int, counter: int) -> tuple[bytes, str]:
    from consumer.iti41 import DocumentOptions, build_request, describe
    from xds.soap.envelope import build_request as envelope

    unique_id = _fixed_oid(1, counter)
    options = DocumentOptions(patient_id=PATIENT, mime_type="application/pdf", include_hash=False, unique_ids=(unique_id,))
    submission, documents = describe([document], options)
    submission.submission_sets[0].unique_id = _fixed_oid(2, counter)
    documents = [type(documents[0])(documents[0].path, documents[0].entry, "document@bench")]
    soap = envelope(build_request(submission, documents), action=ITI41, to="http://127.0.0.1/repository")
    head = (
        f"--{_BOUNDARY}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\n"
        "Content-Transfer-Encoding: binary\r\nContent-ID: <root@bench>\r\n\r\n"
    ).encode() + soap + (
        f"\r\n--{_BOUNDARY}\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: binary\r\n"
        "Content-ID: <document@bench>\r\n\r\n"
    ).encode()
    return head, unique_id


def make_body(scratch: Path, document: Path, size: int) -> Body:
    head, _ = _head(document, size, next(_RUNS))
    tail = f"\r\n--{_BOUNDARY}--\r\n".encode()
    path = scratch / f"iti41-{size}.mtom"
    with open(path, "wb") as out, open(document, "rb") as src:
        out.write(head)
        shutil.copyfileobj(src, out, CHUNK)
        out.write(tail)
    content_type = (
        f'multipart/related; boundary={_BOUNDARY}; type="application/xop+xml"; start="<root@bench>"; '
        f'start-info="application/soap+xml"; action="{ITI41}"'
    )
    return Body(path, content_type, len(head), document, size)


def make_document(scratch: Path, size: int) -> Path:
    path = scratch / f"document-{size}.bin"
    if not path.exists() or path.stat().st_size != size:
        with open(path, "wb") as f:
            remaining = size
            while remaining:
                n = min(CHUNK, remaining)
                f.write(os.urandom(n))
                remaining -= n
    return path


def retrieve_request(unique_id: str) -> bytes:
    from consumer.iti43 import DocumentRequest, build_request
    from xds.soap.envelope import build_request as envelope

    return envelope(build_request([DocumentRequest(unique_id, REPOSITORY_ID)]), action=ITI43, to="http://127.0.0.1/repository")


# -- clients ---------------------------------------------------------------------------------------
def _curl(args: list[str]) -> float:
    out = subprocess.run(["curl", "-s", "-S", "--fail", "-w", "%{time_total}", *args], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            yield chunk


class Clients:
    """The two clients, each timing one transfer and returning seconds."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(timeout=600)

    def close(self) -> None:
        self.http.close()

    # uploads
    def iti41(self, client: str, body: Body) -> float:
        body.next_run()
        url = self.base + "/repository"
        if client == "curl":
            return _curl(["-o", "/dev/null", "-X", "POST", "-H", f"Content-Type: {body.content_type}",
                          "--data-binary", f"@{body.path}", url])  # fmt: skip
        headers = {"content-type": body.content_type, "content-length": str(body.path.stat().st_size)}
        start = time.perf_counter()
        response = self.http.post(url, content=_file_chunks(body.path), headers=headers)
        elapsed = time.perf_counter() - start
        if response.status_code != 200 or b"ResponseStatusType:Success" not in response.content:
            raise RuntimeError(f"ITI-41 failed: {response.status_code} {response.content[:2000]!r}")
        return elapsed

    def plain_put(self, client: str, document: Path, name: str) -> float:
        url = f"{self.base}/plain/{name}"
        if client == "curl":
            return _curl(["-o", "/dev/null", "-T", str(document), url])
        headers = {"content-length": str(document.stat().st_size)}
        start = time.perf_counter()
        response = self.http.put(url, content=_file_chunks(document), headers=headers)
        elapsed = time.perf_counter() - start
        response.raise_for_status()
        return elapsed

    # downloads
    def iti43(self, client: str, unique_id: str, request_file: Path) -> float:
        url = self.base + "/repository"
        request_file.write_bytes(retrieve_request(unique_id))
        if client == "curl":
            return _curl(["-o", "/dev/null", "-X", "POST", "-H", "Content-Type: application/soap+xml",
                          "--data-binary", f"@{request_file}", url])  # fmt: skip
        start = time.perf_counter()
        with self.http.stream("POST", url, content=request_file.read_bytes(), headers={"content-type": "application/soap+xml"}) as r:
            for _ in r.iter_raw(CHUNK):
                pass
        elapsed = time.perf_counter() - start
        if r.status_code != 200:
            raise RuntimeError(f"ITI-43 failed: {r.status_code}")
        return elapsed

    def plain_get(self, client: str, sha256: str) -> float:
        url = f"{self.base}/plain/{sha256}"
        if client == "curl":
            return _curl(["-o", "/dev/null", url])
        start = time.perf_counter()
        with self.http.stream("GET", url) as r:
            for _ in r.iter_raw(CHUNK):
                pass
        r.raise_for_status()
        return time.perf_counter() - start


# -- orchestration ---------------------------------------------------------------------------------
def _wipe_documents(db: str, store: Path) -> None:
    """Remove the stored documents (index rows and files): the next run stores afresh."""
    from sqlalchemy import delete

    from repository.db import make_engine
    from repository.schema import blob, document

    engine = make_engine(db)
    with engine.begin() as conn:
        conn.execute(delete(document))
        conn.execute(delete(blob))
    engine.dispose()
    shutil.rmtree(store / "objects", ignore_errors=True)
    (store / "objects").mkdir(parents=True, exist_ok=True)
    for path in (store / "plain").glob("*"):
        path.unlink()


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _median_rate(size: int, seconds: list[float]) -> float:
    return size / statistics.median(seconds) / 1e6


def _feed_patient(registry_db: str) -> None:
    from registry.patients import Patient
    from registry.store.db import make_engine, upgrade
    from registry.store.patients import PatientStore

    engine = make_engine(registry_db)
    upgrade(engine)
    PatientStore(engine).add_or_update(Patient(patient_id=PATIENT))
    engine.dispose()


def run_size(size: int, runs: int, *, registry: str, scratch: Path, clients_used: list[str]) -> dict[str, Any]:
    document = make_document(scratch, size)
    sha256 = hashlib.sha256(document.read_bytes()).hexdigest() if size <= 1 << 28 else _sha256_file(document)
    body = make_body(scratch, document, size)
    store = scratch / f"store-{size}"
    shutil.rmtree(store, ignore_errors=True)
    db = f"sqlite:///{scratch / f'repository-{size}.sqlite'}"
    Path(db.removeprefix("sqlite:///")).unlink(missing_ok=True)
    port = free_port()
    argv = [sys.executable, str(Path(__file__).resolve()), "serve", "--port", str(port), "--registry", registry,
            "--store", str(store), "--db", db]  # fmt: skip
    request_file = scratch / "retrieve.xml"
    times: dict[str, list[float]] = {}
    with server_process(argv, port=port, path="/repository", log=scratch / f"server-{size}.log") as proc:
        bench = Clients(f"http://127.0.0.1:{port}")
        try:
            # Warm-up: one of each (not timed), and the document left stored for the downloads.
            bench.iti41("httpx", body)
            bench.plain_put("httpx", document, "warm")
            for run in range(runs):
                for client in clients_used:
                    # Uploads, A/B: ITI-41 then plain PUT, each on an empty store.
                    _wipe_documents(db, store)
                    times.setdefault(f"iti41/{client}", []).append(bench.iti41(client, body))
                    times.setdefault(f"put/{client}", []).append(bench.plain_put(client, document, f"run{run}"))
                    # Downloads of what was just stored, A/B.
                    uid = body.unique_ids[-1]
                    times.setdefault(f"iti43/{client}", []).append(bench.iti43(client, uid, request_file))
                    times.setdefault(f"get/{client}", []).append(bench.plain_get(client, sha256))
            peak = _peak_rss(proc.pid)
        finally:
            bench.close()
    shutil.rmtree(store, ignore_errors=True)
    body.path.unlink(missing_ok=True)
    result: dict[str, Any] = {"size": size, "runs": runs, "peak_rss_bytes": peak, "seconds": times, "mb_per_s": {}}
    for key, seconds in times.items():
        result["mb_per_s"][key] = _median_rate(size, seconds)
    for client in clients_used:
        rates = result["mb_per_s"]
        result.setdefault("ratios", {})[client] = {
            "ingest": rates[f"iti41/{client}"] / rates[f"put/{client}"],
            "retrieve": rates[f"iti43/{client}"] / rates[f"get/{client}"],
        }
    return result


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in _file_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


# -- the floor (--floor) -----------------------------------------------------------------------------
def _iti42_envelopes(document: Path, size: int, count: int) -> list[bytes]:
    """``count`` ITI-42 envelopes as the repository sends them for the bench's ITI-41 (fresh ids)."""
    from repository import iti41
    from xds.soap.attachments import Attachment
    from xds.soap.envelope import build_request as envelope
    from xds.xml import parse_xml

    sha1 = hashlib.sha1(document.read_bytes()).hexdigest() if size <= 1 << 28 else "0" * 40
    stand_in = Attachment.from_bytes(b"", content_id="document@bench", content_type="application/pdf")
    envelopes = []
    for _ in range(count):
        head, unique_id = _head(document, size, next(_RUNS))
        soap = head.split(b"\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0]
        sor = parse_xml(soap).find(".//{urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0}SubmitObjectsRequest")
        entry = sor.find(".//{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}ExtrinsicObject")
        part = iti41.DocumentPart(entry.get("id"), unique_id, "application/pdf", stand_in)
        iti41.augment(sor, [part], repository_id=REPOSITORY_ID)
        for slot in sor.iter("{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}Slot"):
            if slot.get("name") in ("hash", "size"):
                value = slot.find(".//{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}Value")
                value.text = sha1 if slot.get("name") == "hash" else str(size)
        envelopes.append(envelope(sor, action="urn:ihe:iti:2007:RegisterDocumentSet-b", to="http://127.0.0.1/registry"))
    return envelopes


def _registry_round_trips(registry: str, envelopes: list[bytes], *, idle: float = 0.0) -> list[float]:
    """One ITI-42 round trip per envelope on one keep-alive connection; with ``idle``, the
    registry is left idle that long (seconds) before each request, as it is between the ITI-42
    calls of back-to-back ITI-41 submissions."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(registry)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    headers = {"Content-Type": 'application/soap+xml; charset=UTF-8; action="urn:ihe:iti:2007:RegisterDocumentSet-b"'}
    seconds = []
    try:
        for body in envelopes:
            if idle:
                time.sleep(idle)
            start = time.perf_counter()
            connection.request("POST", url.path, body=body, headers=headers)
            answer = connection.getresponse().read()
            seconds.append(time.perf_counter() - start)
            if b"ResponseStatusType:Success" not in answer:
                raise RuntimeError(f"ITI-42 failed: {answer[:2000]!r}")
    finally:
        connection.close()
    return seconds


def _digest_times(document: Path, runs: int) -> list[float]:
    data = document.read_bytes()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        hashlib.sha1(data).digest()
        hashlib.sha256(data).digest()
        seconds.append(time.perf_counter() - start)
    return seconds


def _durable_commit_times(scratch: Path, runs: int) -> list[float]:
    import sqlite3

    path = scratch / "floor.sqlite"
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE document (unique_id TEXT PRIMARY KEY, sha256 TEXT, sha1 TEXT, size INTEGER, state TEXT)")
        seconds = []
        for run in range(runs):
            start = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO document VALUES (?, ?, ?, ?, 'pending')", (f"2.25.{run}", "0" * 64, "0" * 40, 10**6))
            db.execute("COMMIT")
            seconds.append(time.perf_counter() - start)
        return seconds
    finally:
        db.close()
        path.unlink(missing_ok=True)


def _envelope_parse_times(document: Path, size: int, runs: int) -> list[float]:
    """The hardened parse of the bench's SOAP part (the metadata must be read at least once)."""
    from xds.xml import parse_xml

    head, _ = _head(document, size, next(_RUNS))
    soap = head.split(b"\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0]
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        parse_xml(soap)
        seconds.append(time.perf_counter() - start)
    return seconds


def _durable_rename_times(scratch: Path, runs: int) -> list[float]:
    """A flushed file renamed to its content address and the new name made durable (the
    directory fsynced): what every stored document needs before ITI-42 and the plain PUT skips."""
    from xds.durable import fsync_dir

    root = scratch / "floor-rename"
    shutil.rmtree(root, ignore_errors=True)
    (root / "in").mkdir(parents=True)
    (root / "out").mkdir()
    seconds = []
    try:
        for run in range(runs):
            source = root / "in" / f"{run}.part"
            fd = os.open(source, os.O_WRONLY | os.O_CREAT, 0o600)
            os.fsync(fd)
            os.close(fd)
            start = time.perf_counter()
            os.replace(source, root / "out" / str(run))
            fsync_dir(root / "out")
            seconds.append(time.perf_counter() - start)
        return seconds
    finally:
        shutil.rmtree(root, ignore_errors=True)


def floor(result: dict[str, Any], *, registry: str, scratch: Path, client: str, runs: int) -> dict[str, Any]:
    """The floor of an ITI-41 of ``result``'s size (see the module documentation), in ms.

    The ITI-42 round trip is measured twice: back to back (``iti42_warm``, for reference) and
    with the registry left idle before each call for as long as it is between two back-to-back
    ITI-41 submissions (the measured ITI-41 minus the warm round trip): the state an ITI-41
    finds it in. The floor uses the second.
    """
    size = result["size"]
    document = make_document(scratch, size)
    runs = max(runs, 40)
    put = statistics.median(result["seconds"][f"put/{client}"])
    iti41 = statistics.median(result["seconds"][f"iti41/{client}"])
    warm = statistics.median(_registry_round_trips(registry, _iti42_envelopes(document, size, runs)))
    idle = max(iti41 - warm, 0.0)
    parts = {
        "sha1_sha256": statistics.median(_digest_times(document, runs)),
        "envelope_parse": statistics.median(_envelope_parse_times(document, size, runs)),
        "durable_index_commit": statistics.median(_durable_commit_times(scratch, runs)),
        "durable_rename": statistics.median(_durable_rename_times(scratch, runs)),
        "iti42_round_trip": statistics.median(_registry_round_trips(registry, _iti42_envelopes(document, size, runs), idle=idle)),
    }
    least = put + sum(parts.values())
    least_warm = least - parts["iti42_round_trip"] + warm
    return {
        "size": size,
        "client": client,
        "ms": {name: 1000 * value for name, value in parts.items()},
        "iti42_warm_ms": 1000 * warm,
        "registry_idle_ms": 1000 * idle,
        "put_ms": 1000 * put,
        "iti41_ms": 1000 * iti41,
        "floor_ms": 1000 * least,
        "best_ratio": put / least,
        "floor_warm_ms": 1000 * least_warm,
        "best_ratio_warm": put / least_warm,
        "measured_ratio": put / iti41,
    }


def floor_report(entry: dict[str, Any]) -> str:
    ms = entry["ms"]
    return "\n".join([
        f"Floor of a {entry['size'] / 1e6:,.0f} MB ITI-41 ({entry['client']}; medians, ms):",
        f"  plain PUT {entry['put_ms']:.2f} + SHA-1/SHA-256 {ms['sha1_sha256']:.2f} + SOAP part parse "
        f"{ms['envelope_parse']:.2f} + durable index commit {ms['durable_index_commit']:.2f} + durable rename "
        f"{ms['durable_rename']:.2f} + ITI-42 round trip {ms['iti42_round_trip']:.2f} "
        f"(registry idle {entry['registry_idle_ms']:.1f} ms before it) = {entry['floor_ms']:.2f}",
        f"  best ingest ratio this design allows: {entry['best_ratio']:.0%}; measured ITI-41 {entry['iti41_ms']:.2f} ms, "
        f"ratio {entry['measured_ratio']:.0%}",
        f"  (with the ITI-42 round trip measured back to back, {entry['iti42_warm_ms']:.2f} ms: floor "
        f"{entry['floor_warm_ms']:.2f}, best ratio {entry['best_ratio_warm']:.0%})",
    ])  # fmt: skip


def report(results: list[dict[str, Any]], clients_used: list[str]) -> str:
    lines = [
        "| size | client | ITI-41 MB/s | plain PUT MB/s | **ingest ratio** | ITI-43 MB/s | plain GET MB/s | **retrieve ratio** | server peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for client in clients_used:
            m = r["mb_per_s"]
            ratio = r["ratios"][client]
            lines.append(
                f"| {r['size'] / 1e6:,.0f} MB | {client} | {m[f'iti41/{client}']:,.0f} | {m[f'put/{client}']:,.0f} | "
                f"**{ratio['ingest']:.0%}** | {m[f'iti43/{client}']:,.0f} | {m[f'get/{client}']:,.0f} | "
                f"**{ratio['retrieve']:.0%}** | {r['peak_rss_bytes'] / 1e6:,.0f} MB |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    serve_parser = sub.add_parser("serve", help="run the benchmark's server (used by the benchmark itself)")
    serve_parser.add_argument("--port", type=int, required=True)
    serve_parser.add_argument("--registry", required=True)
    serve_parser.add_argument("--store", type=Path, required=True)
    serve_parser.add_argument("--db", required=True)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e8, 1e9], help="document sizes in bytes")
    parser.add_argument("--runs", type=int, nargs="+", default=[15, 7, 5], help="runs per size (the last value repeats)")
    parser.add_argument("--clients", nargs="+", default=["curl", "httpx"], choices=["curl", "httpx"])
    parser.add_argument("--scratch", type=Path, default=DEFAULT_SCRATCH / "repository")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--floor", action="store_true", help="also measure the floor of an ITI-41 of the smallest size")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args)
        return 0
    if "curl" in args.clients and shutil.which("curl") is None:
        parser.error("curl is not installed; use --clients httpx")
    scratch: Path = args.scratch
    scratch.mkdir(parents=True, exist_ok=True)
    registry_db = f"sqlite:///{scratch / 'registry.sqlite'}"
    Path(registry_db.removeprefix("sqlite:///")).unlink(missing_ok=True)
    _feed_patient(registry_db)
    registry_port = free_port()
    registry_argv = [
        sys.executable, "-c", "import sys; from registry.cli import registry; registry(sys.argv[1:])",
        "serve", "--port", str(registry_port), "--db", registry_db, "--data-dir", str(scratch / "registry"), "--mllp-port", "0",
    ]  # fmt: skip
    results = []
    with server_process(registry_argv, port=registry_port, path="/registry", log=scratch / "registry.log"):
        registry = f"http://127.0.0.1:{registry_port}/registry"
        for index, size in enumerate(args.sizes):
            runs = args.runs[min(index, len(args.runs) - 1)]
            print(f"size {size / 1e6:,.0f} MB, {runs} runs ...", flush=True)
            results.append(run_size(int(size), runs, registry=registry, scratch=scratch, clients_used=args.clients))
            print(report(results[-1:], args.clients), flush=True)
        floors = []
        if args.floor:
            smallest = min(results, key=lambda r: r["size"])
            for client in args.clients:
                floors.append(floor(smallest, registry=registry, scratch=scratch, client=client, runs=smallest["runs"]))
    payload = {"machine": machine(), "results": results, "floors": floors}
    write_json(args.json or scratch / "repository_bench.json", payload)
    print()
    print(report(results, args.clients))
    for entry in floors:
        print(floor_report(entry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
