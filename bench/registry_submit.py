"""ITI-42 Register Document Set-b throughput through HTTP, against a transport baseline.

    python bench/registry_submit.py                      # PostgreSQL, 2 workers; SQLite, 1 worker
    python bench/registry_submit.py --db pg --seconds 5

For each database: a registry of ``--preload`` DocumentEntries is built (:mod:`registry_load`),
``--patients`` patients are fed, and then two servers run one after the other on 127.0.0.1:

1. ``xds registry serve --workers N`` (the project's CLI, unchanged);
2. the benchmark's composition (:mod:`echo_app`): the same registry app plus ``/echo``, so the
   same server stack also answers a trivial SOAP echo of the same message (and a "null" handler
   that answers the registry's Success response without touching the registry).

A load generator of several client processes x threads, each thread on its own keep-alive
connection (``--connections``: 4 = 2 x 2 and 16 = 4 x 4 by default), sends pre-built single-DocumentEntry submissions (SS + DE + HasMember, fresh
uniqueIds, codes from the affinity domain) for the pre-fed patients for ``--seconds`` per phase,
after a warm-up. Phases alternate (echo, null, registry, echo, null, registry) so drift hits all
alike. Reported per phase: requests/s, p50/p95 latency, server and client CPU. Every reply is
checked for Success, and the registry's row count must equal the successes. Servers are
stopped, and databases dropped, at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import func, select

import registry_data as rd
import registry_load
from benchutil import (
    BENCH_DIR,
    REGISTRY_SCRATCH,
    KeepAlive,
    Latency,
    free_port,
    pg_available,
    server_process,
    venv_bin,
    write_json,
)
from echo_app import ECHO_ACTION, ECHO_PATH, NULL_ACTION
from registry.patients import Patient
from registry.store import schema as t
from registry.store.db import make_engine
from registry.store.patients import PatientStore
from xds.metadata.ebrim import encode_submit_objects_request
from xds.soap.envelope import request_envelope, soap_content_type
from xds.vocabulary import Action, ResponseStatus
from xds.xml import to_bytes

SUCCESS = ResponseStatus.SUCCESS.encode()
ECHO_OK = (ECHO_ACTION + "Response").encode()
PATIENT_PREFIX = "SUB"


@dataclass(frozen=True, slots=True)
class Phase:
    """One timed run of the load generator against one endpoint."""

    name: str  # registry | echo | null
    server: str  # cli | composed
    path: str
    action: str
    fresh: bool  # every message must be new (registry) or may repeat (baselines)
    ok_marker: bytes = SUCCESS  # a reply is good when HTTP 200 and it contains this
    connections: int = 4


@dataclass(slots=True)
class PhaseResult:
    name: str
    server: str
    connections: int
    requests: int
    failures: int
    seconds: float
    rate: float
    latency: Latency
    server_cpu: float
    client_cpu: float
    message_bytes: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "server": self.server, "connections": self.connections, "requests": self.requests, "failures": self.failures,
            "seconds": self.seconds, "rate": self.rate, "latency": self.latency.as_dict(),
            "server_cpu_seconds": self.server_cpu, "client_cpu_seconds": self.client_cpu, "message_bytes": self.message_bytes,
        }

    def line(self) -> str:
        return (f"  {self.server:8} {self.connections:2} conn {self.name:8} {self.rate:8.1f} req/s  p50 {self.latency.p50:6.2f} ms  p95 {self.latency.p95:6.2f} ms"
                f"  ({self.requests} ok, {self.failures} failed, {self.seconds:.1f} s; server CPU {self.server_cpu / max(self.requests, 1) * 1000:.2f} ms/req,"
                f" client CPU {self.client_cpu / max(self.requests, 1) * 1000:.2f} ms/req)")


# -- messages ------------------------------------------------------------------------------


class Messages:
    """Pre-built ITI-42 envelopes (bytes): single-DocumentEntry submissions, unique per run."""

    def __init__(self, patients: Sequence[str], *, seed: int) -> None:
        self.patients = list(patients)
        self.rng = random.Random(seed)
        self.ids = rd.Ids(self.rng)
        self.authors = rd.authors_pool()
        self.counter = 0

    def build(self, count: int, *, endpoint: str, action: str) -> list[bytes]:
        out = []
        for _ in range(count):
            self.counter += 1
            pid = self.patients[self.counter % len(self.patients)]
            sub = rd.single_document_submission(pid, self.rng, ids=self.ids, n=self.counter, authors=self.authors)
            body = encode_submit_objects_request(sub)
            out.append(to_bytes(request_envelope(body, action=action, to=endpoint), xml_declaration=True))
        return out


# -- load generator ------------------------------------------------------------------------


def _client_process(
    port: int, path: str, content_type: str, marker: bytes, slices: list[list[bytes]], fresh: bool,
    warmup_until: float, deadline: float, start: Any, out: Any,
) -> None:
    """One client process: a thread per slice, each on its own keep-alive connection."""
    results: list[tuple[list[float], int, int]] = []
    lock = threading.Lock()

    def run(messages: list[bytes]) -> None:
        conn = KeepAlive(port, path)
        lat: list[float] = []
        ok = failed = 0
        i = 0
        try:
            while True:
                if i >= len(messages):
                    if fresh:
                        break  # never resend a registry submission
                    i = 0
                now = time.perf_counter()
                if now >= deadline:
                    break
                status, reply = conn.post(messages[i], content_type)
                i += 1
                done = time.perf_counter()
                good = status == 200 and marker in reply
                if now >= warmup_until:
                    if good:
                        ok += 1
                        lat.append(done - now)
                    else:
                        failed += 1
                        if failed <= 3:
                            sys.stderr.write(f"failed reply (HTTP {status}): {reply[:400]!r}\n")
        finally:
            conn.close()
        with lock:
            results.append((lat, ok, failed))

    start.wait()
    cpu0 = time.process_time()
    threads = [threading.Thread(target=run, args=(s,)) for s in slices]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out.put(([x for r in results for x in r[0]], sum(r[1] for r in results), sum(r[2] for r in results),
             time.process_time() - cpu0))


def _server_cpu(pid: int) -> float:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            c = p.cpu_times()
            total += c.user + c.system
        except psutil.NoSuchProcess:
            pass
    return total


def _postgres_cpu(database: str) -> float:
    """CPU of the PostgreSQL backends serving ``database`` (they do the registry's SQL work)."""
    total = 0.0
    for p in psutil.process_iter(["cmdline", "cpu_times"]):
        cmd = " ".join(p.info["cmdline"] or ())
        if cmd.startswith("postgres: ") and f" {database} " in cmd and p.info["cpu_times"]:
            total += p.info["cpu_times"].user + p.info["cpu_times"].system
    return total


def run_phase(
    phase: Phase, *, port: int, server_pid: int, messages: list[bytes], seconds: float, warmup: float,
    pg_database: str | None,
) -> PhaseResult:
    ctx = multiprocessing.get_context("fork")
    clients = min(4, max(1, phase.connections // 2))
    threads = -(-phase.connections // clients)
    connections = clients * threads
    slices = [messages[i::connections] for i in range(connections)]
    start = ctx.Event()
    out = ctx.Queue()
    t_begin = time.perf_counter() + 0.5
    warmup_until = t_begin + warmup
    deadline = warmup_until + seconds
    ctype = soap_content_type(phase.action)
    procs = [
        ctx.Process(target=_client_process, args=(port, phase.path, ctype, phase.ok_marker,
                                                    slices[c * threads:(c + 1) * threads], phase.fresh,
                                                    warmup_until, deadline, start, out))
        for c in range(clients)
    ]
    for p in procs:
        p.start()
    while time.perf_counter() < t_begin:
        time.sleep(0.01)
    start.set()
    while time.perf_counter() < warmup_until:
        time.sleep(0.005)
    cpu0, pg0 = _server_cpu(server_pid), (_postgres_cpu(pg_database) if pg_database else 0.0)
    gathered = [out.get(timeout=seconds + warmup + 120) for _ in procs]
    cpu1, pg1 = _server_cpu(server_pid), (_postgres_cpu(pg_database) if pg_database else 0.0)
    for p in procs:
        p.join(timeout=30)
    latencies = [x for g in gathered for x in g[0]]
    ok = sum(g[1] for g in gathered)
    failed = sum(g[2] for g in gathered)
    elapsed = seconds  # every thread ran to the deadline unless it ran out of messages
    if phase.fresh and ok + failed >= len(messages) - connections * 2:
        print(f"  note: {phase.name} used up its {len(messages)} messages; raise --messages-per-second", file=sys.stderr)
    return PhaseResult(
        name=phase.name, server=phase.server, connections=connections, requests=ok, failures=failed, seconds=elapsed, rate=ok / elapsed,
        latency=Latency.of(latencies), server_cpu=(cpu1 - cpu0) + (pg1 - pg0),
        client_cpu=sum(g[3] for g in gathered), message_bytes=statistics.fmean(len(m) for m in messages[:200]),
    )


# -- driver ------------------------------------------------------------------------------------


@dataclass(slots=True)
class BackendResult:
    backend: str
    workers: int
    preload: int
    phases: list[PhaseResult]
    registered_rows_ok: bool

    def select(self, name: str, server: str | None, connections: int | None) -> list[PhaseResult]:
        return [p for p in self.phases if p.name == name and server in (None, p.server) and connections in (None, p.connections)]

    def median_rate(self, name: str, server: str | None = None, connections: int | None = None) -> float:
        rates = [p.rate for p in self.select(name, server, connections)]
        return statistics.median(rates) if rates else float("nan")

    def median_latency(self, name: str, server: str | None = None, connections: int | None = None) -> tuple[float, float]:
        ps = self.select(name, server, connections)
        if not ps:
            return float("nan"), float("nan")
        return statistics.median(p.latency.p50 for p in ps), statistics.median(p.latency.p95 for p in ps)

    def levels(self) -> list[int]:
        return sorted({p.connections for p in self.phases})

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend, "workers": self.workers, "preload": self.preload,
            "phases": [p.as_dict() for p in self.phases], "registered_rows_ok": self.registered_rows_ok,
            "median_rate": {str(c): {n: self.median_rate(n, connections=c) for n in ("registry", "echo", "null")}
                            for c in self.levels()},
        }


def feed_patients(url: str, count: int) -> list[str]:
    engine = make_engine(url)
    store = PatientStore(engine)
    pids = [rd.patient_id(i, prefix=PATIENT_PREFIX) for i in range(1, count + 1)]
    for pid in pids:
        store.add_or_update(Patient(patient_id=pid, family_name="BENCH", given_name="SUBMIT"))
    engine.dispose()
    return pids


def count_registered(url: str) -> int:
    engine = make_engine(url)
    d = t.document_entry
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(d).where(d.c.patient_id.like(f"{PATIENT_PREFIX}%"))).scalar_one()
    engine.dispose()
    return int(n)


def run_backend(backend: str, *, workers: int, args: argparse.Namespace) -> BackendResult:
    scratch: Path = args.scratch
    preload = args.preload
    if preload:
        print(f"  building a {preload:,}-entry registry on {backend}", flush=True)
        report = registry_load.build(backend, preload, scratch=scratch, verbose=False)
        print(f"  {report.summary()}", flush=True)
        url = report.url
    else:
        registry_load.build(backend, 10, scratch=scratch, verbose=False)  # an empty-ish Alembic schema
        url = registry_load.database_url(backend, 10, scratch)
    size = preload or 10
    phases: list[PhaseResult] = []
    try:
        patients = feed_patients(url, args.patients)
        msgs = Messages(patients, seed=args.seed)
        per_phase = int(args.messages_per_second * (args.seconds + args.warmup)) + 100
        data_dir = scratch / f"serve-submit-{backend}"
        codes = rd.CODES_XML if rd.CODES_XML.is_file() and not args.no_codes else None
        env = {"XDS_REGISTRY_DB": url, "XDS_REGISTRY_DATA_DIR": str(data_dir), "XDS_REGISTRY_MLLP_PORT": "0",
               "XDS_REGISTRY_LOG_LEVEL": args.log_level,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")]))}
        if codes is not None:
            env["XDS_REGISTRY_CODES"] = str(codes)
        pg_database = registry_load.pg_name(size) if backend == "pg" else None

        def phase_run(phase: Phase, port: int, pid: int) -> None:
            endpoint = f"http://127.0.0.1:{port}{phase.path}"
            messages = msgs.build(per_phase if phase.fresh else min(per_phase, 2000), endpoint=endpoint, action=phase.action)
            result = run_phase(phase, port=port, server_pid=pid, messages=messages, seconds=args.seconds,
                               warmup=args.warmup, pg_database=pg_database)
            phases.append(result)
            print(result.line(), flush=True)

        # 1. The project's own server, unchanged.
        port = free_port()
        argv = [venv_bin("xds"), "registry", "serve", "--db", url, "--port", str(port), "--mllp-port", "0",
                "--data-dir", str(data_dir), "--workers", str(workers)]
        if codes is not None:
            argv += ["--codes", str(codes)]
        with server_process(argv, port=port, env=env, log=scratch / "logs" / f"submit-cli-{backend}.log") as proc:
            for conns in args.connections:
                for _ in range(args.rounds):
                    phase_run(Phase("registry", "cli", "/registry", Action.ITI42, True, connections=conns), port, proc.pid)
        # 2. The same app plus the transport baselines, interleaved.
        if args.cli_only:
            return BackendResult(backend, workers, preload, phases, count_registered(url) >= sum(p.requests for p in phases))
        port = free_port()
        argv = [sys.executable, str(BENCH_DIR / "echo_app.py"), "--port", str(port), "--workers", str(workers),
                "--log-level", args.log_level]
        with server_process(argv, port=port, env=env, log=scratch / "logs" / f"submit-composed-{backend}.log") as proc:
            for conns in args.connections:
                for _ in range(args.rounds):
                    phase_run(Phase("echo", "composed", ECHO_PATH, ECHO_ACTION, False, ECHO_OK, conns), port, proc.pid)
                    phase_run(Phase("null", "composed", ECHO_PATH, NULL_ACTION, False, connections=conns), port, proc.pid)
                    phase_run(Phase("registry", "composed", "/registry", Action.ITI42, True, connections=conns), port, proc.pid)
        registered = count_registered(url)
        expected = sum(p.requests for p in phases if p.name == "registry")
        # Warm-up submissions are registered too but not counted; so the table holds at least the successes.
        ok_rows = registered >= expected
        print(f"  {registered} entries registered for the benchmark's patients; {expected} timed successes", flush=True)
    finally:
        if not args.keep:
            registry_load.drop(backend, size, scratch=scratch)
    return BackendResult(backend, workers, preload, phases, ok_rows)


def summarise(results: list[BackendResult]) -> list[str]:
    lines = ["", "ITI-42 single-document submissions through HTTP (medians of the phases):"]
    for r in results:
        for c in r.levels():
            reg, echo, null = (r.median_rate(n, connections=c) for n in ("registry", "echo", "null"))
            cli = r.median_rate("registry", "cli", c)
            p50, p95 = r.median_latency("registry", connections=c)
            e50, e95 = r.median_latency("echo", connections=c)
            lines.append(
                f"{r.backend:7} {r.workers} worker(s), {c:2} connections: registry {reg:6.1f}/s (CLI server {cli:6.1f}/s) "
                f"p50 {p50:.1f} ms p95 {p95:.1f} ms | echo {echo:7.1f}/s p50 {e50:.1f} ms p95 {e95:.1f} ms | null {null:7.1f}/s"
                f" | registry/echo {reg / echo if echo else float('nan'):.3f}"
            )
        if r.backend == "pg":
            best = max(r.median_rate("registry", connections=c) for c in r.levels())
            lines.append(f"        target >= 250 submissions/s with two workers: {'met' if best >= 250 else 'MISSED'} (best {best:.0f}/s)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "pg", "both"], default="both")
    parser.add_argument("--pg-workers", type=int, default=2)
    parser.add_argument("--sqlite-workers", type=int, default=1)
    parser.add_argument("--preload", type=int, default=100_000, help="DocumentEntries already in the registry")
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--connections", type=int, nargs="+", default=[4, 16],
                        help="concurrent keep-alive connections (client processes x threads), one run per value")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed seconds before each phase")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--messages-per-second", type=float, default=500.0,
                        help="registry messages prepared per phase second (must exceed the rate reached)")
    parser.add_argument("--log-level", default="info", help="server log level (the CLI's default: info)")
    parser.add_argument("--no-codes", action="store_true", help="do not check codes against codes.xml")
    parser.add_argument("--cli-only", action="store_true", help="only the xds registry serve phases (no baselines)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--scratch", type=Path, default=REGISTRY_SCRATCH)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    backends = ["pg", "sqlite"] if args.db == "both" else [args.db]
    if "pg" in backends and not pg_available():
        print("PostgreSQL is not reachable on 127.0.0.1:5432; skipping it", file=sys.stderr)
        backends.remove("pg")
    results = []
    for backend in backends:
        workers = args.pg_workers if backend == "pg" else args.sqlite_workers
        print(f"{backend}: {workers} worker(s), {args.connections} keep-alive connections, {args.seconds:g} s per phase", flush=True)
        results.append(run_backend(backend, workers=workers, args=args))
    print("\n".join(summarise(results)))
    if args.json:
        write_json(args.json, {"settings": {k: str(v) for k, v in vars(args).items()}, "results": [r.as_dict() for r in results],
                               "nproc": os.cpu_count()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
