"""ITI-18 FindDocuments latency for a patient with 10 documents, in registries of 10^4, 10^5 and
10^6 DocumentEntries, on SQLite and PostgreSQL.

    python bench/registry_query.py                        # all sizes, both databases
    python bench/registry_query.py --db sqlite --entries 10000 100000 --queries 500

For each database the registries of every size are built with :mod:`registry_load` (or reused
with ``--reuse``), then measured side by side, in interleaved rounds (size A, B, C, A, B, C,
...) so that drift on a shared machine hits every size alike:

* in-process: ``RegistryStoredQuery.respond`` on a pre-built ``AdhocQueryRequest`` (parse the
  query, run the SQL, parse the stored XML of each hit, build the AdhocQueryResponse);
* over HTTP: one ``xds registry serve`` (one worker) per size on 127.0.0.1, queried one request
  at a time (a) with pre-built SOAP envelopes over one keep-alive connection (server plus
  transport) and (b) with the project's :class:`~xds.http.client.SoapClient` (what a Document
  Consumer sees: envelope built, request sent, reply parsed).

Each size gets 200 warm-up queries, then 2,000 timed ones for random patients; every answer is
checked (status, and the number of DocumentEntries equals the patient's Approved entries). Also
measured: the same query with code and time filters (the correlated EXISTS paths), and the plans
the registry's statements get (EXPLAIN QUERY PLAN / EXPLAIN ANALYZE), flagged when a plan scans a
table. Servers are stopped and databases dropped at the end (unless ``--keep``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree
from sqlalchemy import Engine, event, func, select

import registry_data as rd
import registry_load
from benchutil import (
    REGISTRY_SCRATCH,
    PG_ADMIN,
    KeepAlive,
    Latency,
    free_port,
    pg_available,
    server_process,
    venv_bin,
    write_json,
)
from registry.iti18 import RegistryStoredQuery
from registry.store import schema as t
from registry.store.db import make_engine
from xds.http.client import SoapClient
from xds.metadata.responses import parse_adhoc_query_response
from xds.query import build_adhoc_query
from xds.soap.envelope import request_envelope, soap_content_type
from xds.vocabulary import NS_RIM, Action, ResponseStatus, Status
from xds.xml import to_bytes

FIND_DOCUMENTS = "FindDocuments"
_EXTRINSIC = f"{{{NS_RIM}}}ExtrinsicObject"
Params = Callable[[str], dict[str, object]]


def find_documents_params(pid: str) -> dict[str, object]:
    return {"$XDSDocumentEntryPatientId": pid, "$XDSDocumentEntryStatus": [Status.APPROVED]}


def filtered_params(pid: str) -> dict[str, object]:
    """FindDocuments with code, AND/OR and time filters: the correlated EXISTS paths."""
    return {
        **find_documents_params(pid),
        "$XDSDocumentEntryClassCode": [rd.KINDS[0].class_code, rd.KINDS[1].class_code],
        "$XDSDocumentEntryEventCodeList": [list(rd.MODALITIES[:5])],
        "$XDSDocumentEntryConfidentialityCode": [[rd.CONF_N, rd.CONF_R]],
        "$XDSDocumentEntryCreationTimeFrom": "20150101000000",
        "$XDSDocumentEntryCreationTimeTo": "20260101000000",
    }


@dataclass(slots=True)
class Target:
    """One registry under test: its database, sampled patients, timings per path."""

    backend: str
    entries: int
    url: str
    engine: Engine
    patients: list[str]
    expected: dict[str, int]
    load: dict[str, Any] | None = None
    port: int | None = None
    timings: dict[str, list[float]] = field(default_factory=dict)
    round_p95: dict[str, list[float]] = field(default_factory=dict)
    plans: dict[str, str] = field(default_factory=dict)
    scans: list[str] = field(default_factory=list)
    load_avg: dict[str, list[float]] = field(default_factory=dict)  # 1-minute load average per round

    def result(self) -> dict[str, Any]:
        return {
            "backend": self.backend, "entries": self.entries, "load": self.load,
            **{path: Latency.of(ts).as_dict() for path, ts in self.timings.items()},
            "round_p95_ms": self.round_p95, "load_avg": self.load_avg, "plans": self.plans, "scans": self.scans,
        }


def sample_patients(engine: Engine, count: int, rng: random.Random) -> tuple[list[str], dict[str, int]]:
    """``count`` random patients (with replacement) and each one's number of Approved entries."""
    d = t.document_entry
    with engine.connect() as conn:
        pids = list(conn.execute(select(t.patient.c.patient_id)).scalars())
        chosen = [rng.choice(pids) for _ in range(count)]
        wanted = sorted(set(chosen))
        approved: dict[str, int] = {}
        for i in range(0, len(wanted), 500):
            stmt = (
                select(d.c.patient_id, func.count())
                .where(d.c.status == Status.APPROVED, d.c.patient_id.in_(wanted[i : i + 500]))
                .group_by(d.c.patient_id)
            )
            approved.update({pid: int(n) for pid, n in conn.execute(stmt)})
    return chosen, approved


# -- the three ways of asking ---------------------------------------------------------------------


def in_process_block(target: Target, patients: list[str], *, params: Params, check: bool) -> list[float]:
    queries = RegistryStoredQuery(target.engine)
    requests = [etree.fromstring(etree.tostring(build_adhoc_query(FIND_DOCUMENTS, params(p)))) for p in patients]
    timings = []
    for pid, request in zip(patients, requests):
        t0 = time.perf_counter()
        response = queries.respond(request)
        timings.append(time.perf_counter() - t0)
        result = parse_adhoc_query_response(response)
        if result.status != ResponseStatus.SUCCESS:
            raise AssertionError(f"FindDocuments for {pid} failed: {[e.code_text for e in result.errors]}")
        found = len(result.object_list.findall(_EXTRINSIC)) if result.object_list is not None else 0
        if check and found != target.expected.get(pid, 0):
            raise AssertionError(f"FindDocuments for {pid}: {found} entries, expected {target.expected.get(pid, 0)}")
    return timings


def http_raw_block(target: Target, patients: list[str], *, params: Params, check: bool) -> list[float]:
    assert target.port is not None
    url = f"http://127.0.0.1:{target.port}/registry"
    ctype = soap_content_type(Action.ITI18)
    bodies = [to_bytes(request_envelope(build_adhoc_query(FIND_DOCUMENTS, params(p)), action=Action.ITI18, to=url),
                       xml_declaration=True) for p in patients]
    client = KeepAlive(target.port, "/registry")
    timings = []
    try:
        for pid, body in zip(patients, bodies):
            t0 = time.perf_counter()
            status, reply = client.post(body, ctype)
            timings.append(time.perf_counter() - t0)
            if status != 200 or ResponseStatus.SUCCESS.encode() not in reply:
                raise AssertionError(f"HTTP {status} for {pid}: {reply[:300]!r}")
            found = len(re.findall(rb"<(?:\w+:)?ExtrinsicObject[ >]", reply))
            if check and found != target.expected.get(pid, 0):
                raise AssertionError(f"HTTP FindDocuments for {pid}: {found} entries, expected {target.expected.get(pid, 0)}")
    finally:
        client.close()
    return timings


def http_client_block(target: Target, patients: list[str], *, params: Params, check: bool) -> list[float]:
    timings = []
    with SoapClient(f"http://127.0.0.1:{target.port}/registry", timeout=60) as client:
        for pid in patients:
            t0 = time.perf_counter()
            reply = client.call(Action.ITI18, build_adhoc_query(FIND_DOCUMENTS, params(pid)))
            result = parse_adhoc_query_response(reply.body)
            timings.append(time.perf_counter() - t0)
            found = len(result.object_list.findall(_EXTRINSIC)) if result.object_list is not None else 0
            if result.status != ResponseStatus.SUCCESS or (check and found != target.expected.get(pid, 0)):
                raise AssertionError(f"SoapClient FindDocuments for {pid}: {result.status}, {found} entries")
    return timings


PATHS: dict[str, tuple[Callable[..., list[float]], Params]] = {
    "in_process": (in_process_block, find_documents_params),
    "in_process_filtered": (in_process_block, filtered_params),
    "http_raw": (http_raw_block, find_documents_params),
    "http_client": (http_client_block, find_documents_params),
}


def interleaved(targets: list[Target], path: str, *, warmup: int, queries: int, rounds: int) -> None:
    """Warm every target up, then time ``queries`` per target in ``rounds`` alternating blocks."""
    block, params = PATHS[path]
    check = params is find_documents_params  # the filtered query's expected counts are not precomputed
    for tg in targets:
        block(tg, tg.patients[:warmup], params=params, check=check)
    per_round = -(-queries // rounds)
    for r in range(rounds):
        load = os.getloadavg()[0]
        for tg in targets:
            tg.load_avg.setdefault(path, []).append(round(load, 2))
            chunk = tg.patients[warmup + r * per_round : warmup + min((r + 1) * per_round, queries)]
            ts = block(tg, chunk, params=params, check=check)
            tg.timings.setdefault(path, []).extend(ts)
            tg.round_p95.setdefault(path, []).append(round(Latency.of(ts).p95, 3))
    for tg in targets:
        print(f"  {tg.backend:6} {tg.entries:>9,}  {path:20} {Latency.of(tg.timings[path])}", flush=True)


# -- plans -------------------------------------------------------------------------------------


def capture_statements(engine: Engine, patient: str, params: Params) -> list[tuple[str, Any]]:
    """The SELECT statements (with parameters) one stored query issues."""
    seen: list[tuple[str, Any]] = []

    def listener(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        RegistryStoredQuery(engine).respond(build_adhoc_query(FIND_DOCUMENTS, params(patient)))
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")]


def explain(engine: Engine, statement: str, parameters: Any) -> str:
    with engine.connect() as conn:
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        if engine.dialect.name == "sqlite":
            cur.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            return "\n".join(f"{row[0]}|{row[1]}| {row[3]}" for row in cur.fetchall())
        cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters)
        return "\n".join(row[0] for row in cur.fetchall())


def scans_in(plan: str, dialect: str) -> list[str]:
    """Plan lines that read a whole table."""
    if dialect == "sqlite":
        return [ln for ln in plan.splitlines() if re.search(r"\bSCAN (?!.*USING)", ln)]
    return [ln.strip() for ln in plan.splitlines() if "Seq Scan" in ln]


def record_plans(tg: Target) -> None:
    for label, params in (("FindDocuments", find_documents_params), ("FindDocuments+filters", filtered_params)):
        for k, (stmt, prm) in enumerate(capture_statements(tg.engine, tg.patients[0], params)):
            plan = explain(tg.engine, stmt, prm)
            tg.plans[f"{label} #{k + 1}"] = f"{stmt}\n--\n{plan}"
            tg.scans += [f"{label}: {ln}" for ln in scans_in(plan, tg.engine.dialect.name)]
    if tg.scans:
        print(f"  WARNING {tg.backend} {tg.entries:,}: table scans in query plans: {tg.scans}", flush=True)


# -- driver ------------------------------------------------------------------------------------


def exists(backend: str, entries: int, scratch: Path) -> bool:
    if backend == "sqlite":
        return registry_load.sqlite_path(entries, scratch).is_file()
    import psycopg

    with psycopg.connect(PG_ADMIN) as conn:
        return conn.execute("select 1 from pg_database where datname = %s", (registry_load.pg_name(entries),)).fetchone() is not None


@contextlib.contextmanager
def servers(targets: list[Target], scratch: Path) -> Iterator[None]:
    """One ``xds registry serve`` (one worker) per target, all stopped on exit."""
    with contextlib.ExitStack() as stack:
        for tg in targets:
            tg.port = free_port()
            argv = [venv_bin("xds"), "registry", "serve", "--db", tg.url, "--port", str(tg.port), "--mllp-port", "0",
                    "--data-dir", str(scratch / "serve-query")]
            stack.enter_context(server_process(argv, port=tg.port, log=scratch / "logs" / f"query-server-{tg.backend}-{tg.entries}.log"))
        yield


def measure_backend(backend: str, sizes: list[int], args: argparse.Namespace) -> list[Target]:
    targets: list[Target] = []
    rng = random.Random(args.seed)
    try:
        for n in sizes:
            load = None
            if not (args.reuse and exists(backend, n, args.scratch)):
                report = registry_load.build(backend, n, scratch=args.scratch, verbose=False)
                print(f"  built: {report.summary()}", flush=True)
                load = {"seconds_total": report.seconds_total, "size_bytes": report.size_bytes}
            url = registry_load.database_url(backend, n, args.scratch)
            engine = make_engine(url)
            patients, expected = sample_patients(engine, args.warmup + args.queries, rng)
            targets.append(Target(backend, n, url, engine, patients, expected, load))
        for path in ("in_process", "in_process_filtered"):
            interleaved(targets, path, warmup=args.warmup, queries=args.queries, rounds=args.rounds)
        for tg in targets:
            record_plans(tg)
        if not args.no_http:
            with servers(targets, args.scratch):
                for path in ("http_raw", "http_client"):
                    interleaved(targets, path, warmup=args.warmup, queries=args.queries, rounds=args.rounds)
    finally:
        for tg in targets:
            tg.engine.dispose()
    return targets


def summarise(results: list[dict[str, Any]]) -> list[str]:
    def cell(lat: dict[str, float] | None) -> str:
        return f"{lat['p50_ms']:7.2f} / {lat['p95_ms']:7.2f}" if lat else f"{'-':>17}"

    lines = ["", "FindDocuments p50 / p95 (ms), 10 documents per patient, ~9 returned:",
             f"{'db':7}{'entries':>10}  {'in-process':>17}  {'HTTP pre-built':>17}  {'HTTP SoapClient':>17}  {'filtered in-proc':>17}"]
    for r in results:
        lines.append(f"{r['backend']:7}{r['entries']:>10,}  {cell(r.get('in_process'))}  {cell(r.get('http_raw'))}  "
                     f"{cell(r.get('http_client'))}  {cell(r.get('in_process_filtered'))}")
    for backend in sorted({r["backend"] for r in results}):
        by = {r["entries"]: r for r in results if r["backend"] == backend}
        if len(by) < 2:
            continue
        small, large = by[min(by)], by[max(by)]
        for key in ("in_process", "http_raw", "http_client"):
            if small.get(key) and large.get(key):
                a, b = small[key]["p95_ms"], large[key]["p95_ms"]
                verdict = "met" if b <= 20 and b <= 1.5 * a else "MISSED"
                lines.append(f"{backend:7}{key:12} p95 at {max(by):,}: {b:6.2f} ms = {b / a:4.2f}x the {min(by):,} figure "
                             f"(target <= 20 ms and <= 1.5x): {verdict}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "pg", "both"], default="both")
    parser.add_argument("--entries", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=2000, help="timed queries per size and path")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20, help="alternating blocks the timed queries are split into")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--scratch", type=Path, default=REGISTRY_SCRATCH)
    parser.add_argument("--reuse", action="store_true", help="use databases left by registry_load --keep")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--no-http", action="store_true", help="in-process only")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    backends = ["sqlite", "pg"] if args.db == "both" else [args.db]
    if "pg" in backends and not pg_available():
        print("PostgreSQL is not reachable on 127.0.0.1:5432; skipping it", file=sys.stderr)
        backends.remove("pg")
    sizes = sorted(args.entries)
    results: list[dict[str, Any]] = []
    try:
        for backend in backends:
            print(f"{backend}: {', '.join(f'{n:,}' for n in sizes)} entries", flush=True)
            results += [tg.result() for tg in measure_backend(backend, sizes, args)]
            if not args.keep:
                for n in sizes:
                    registry_load.drop(backend, n, scratch=args.scratch)
    finally:
        if not args.keep:
            for backend in backends:
                for n in sizes:
                    registry_load.drop(backend, n, scratch=args.scratch)
    print("\n".join(summarise(results)))
    if args.json:
        write_json(args.json, {"queries": args.queries, "warmup": args.warmup, "rounds": args.rounds, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
