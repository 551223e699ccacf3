"""Consent-token benchmark (issue 5): what the SAML assertion costs a consumer, in one run on
loopback.

    python bench/consent_bench.py                  # both parts: 3 x 100 rounds, 3 x 500-instance fetch
    python bench/consent_bench.py --skip-fetch --runs 5 --rounds 200 --json out.json

Method (performance-anchors §4: same-run baseline, medians, ratios):

* Two registries, each its own ``xds registry serve`` process on SQLite: one in consent mode
  (``access_policy = "consent"`` and a grant API key, from a TOML ``[registry]`` section), one in
  open mode. Both receive the same content over ITI-42: one patient with ``--exams`` exams
  (manifest + report + one more document each, the manifest with the KOS format code), plus a
  second patient. In the consent registry one grant shares every exam, released an hour ago,
  enrolled through the grant API (POST /consent/grants).
* One round = (a) POST /consent/token with the access code and PIN (the scrypt PIN check runs
  here, by design), (b) FindDocuments for the patient with the assertion in a WS-Security header,
  (c) the same FindDocuments against the open registry without a token. a, b, c alternate inside
  every round, so drift hits all three alike. Each query goes through the project's SoapClient
  over one keep-alive connection per registry; the token through one httpx.Client.
* Per run: p50 / p95 of each; the report gives medians over runs and the ratios
  (token + gated query) / open query and gated query / open query.
* Whole-study fetch: a 500-instance study (5 series x 100, 512x512x16 bit) in two stacks of
  ``xds registry serve`` + ``xds repository serve`` + ``xds source serve`` processes, one in
  consent mode (repository and Edge Server trust the registry's token-signing certificate), one
  open. Each Edge Server's store is filled directly; its KOS goes to the repository by RAD-68
  (``build_submission`` + ``Rad68Sender``); in the consent stack a grant shares the exam. Then,
  interleaved A B C after a warm-up: a plain download of the same 500 files (Starlette
  StaticFiles, 1 MiB chunks, own process; ``curl -K`` over one keep-alive connection, written to
  files), ``xds consumer fetch --code --pin-stdin`` (consent) and ``xds consumer fetch
  --patient`` (open), each a subprocess timed from start to exit. Ratios fetch / plain and
  consent / open.

Everything binds 127.0.0.1. Scratch files live in ``$XDS_BENCH_DIR/consent`` (default
/tmp/xds-bench/consent) and are removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from bench.benchutil import Latency, free_port, machine, server_process, venv_bin, write_json  # noqa: E402

SCRATCH = Path(os.environ.get("XDS_BENCH_DIR", "/tmp/xds-bench")) / "consent"
API_KEY = "consent-bench-grant-api-key-0123456789"
PIN = "864209"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"


def start_registry(work: Path, name: str, *, consent: bool) -> tuple[Any, int, str, str]:
    """The argv, port, base URL and database URL of one registry process."""
    data = work / name
    data.mkdir(parents=True)
    db = f"sqlite:///{data / 'registry.sqlite'}"
    config = data / "registry.toml"
    lines = ["[registry]"]
    if consent:
        lines += ['access_policy = "consent"', f'grant_api_key = "{API_KEY}"', "token_lifetime_s = 3600"]
    config.write_text("\n".join(lines) + "\n")
    port = free_port()
    argv = [venv_bin("xds"), "registry", "serve", "--config", str(config), "--data-dir", str(data), "--db", db,
            "--port", str(port), "--mllp-port", "0"]
    return argv, port, f"http://127.0.0.1:{port}", db


def populate(base: str, db: str, exams: int) -> tuple[str, list[dict[str, Any]]]:
    """Register the same content (ITI-42) and return the patient and the exams to share."""
    from registry.iti42 import DocumentRegistry
    from registry.patients import Patient
    from registry.store.db import make_engine
    from tests.support import factory as f
    from xds.http.client import SoapClient
    from xds.metadata.ebrim import encode_submit_objects_request
    from xds.metadata.responses import parse_registry_response
    from xds.vocabulary import Action, ResponseStatus

    pid, other = "BENCH-A^^^&1.3.6.1.4.1.21367.13.20.1000&ISO", "BENCH-B^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
    engine = make_engine(db)
    registry = DocumentRegistry(engine)
    for p in (pid, other):
        registry.patients.add_or_update(Patient(patient_id=p))
    engine.dispose()
    shares: list[dict[str, Any]] = []
    released = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    with SoapClient(base + "/registry", timeout=60) as client:
        for i in range(exams + 2):
            sub = f.submission(pid if i < exams else other, entries=3)
            sub.document_entries[0].format_code = f.FORMAT_KOS
            sub.document_entries[0].class_code = f.CLASS_IMAGES
            reply = client.call(Action.ITI42, encode_submit_objects_request(sub))
            result = parse_registry_response(reply.body)
            assert (result.status, list(result.errors)) == (ResponseStatus.SUCCESS, []), result.errors
            if i < exams:
                shares.append({"study_uid": f"1.2.826.0.1.3680043.10.5.{i + 1}",
                               "manifest_unique_id": sub.document_entries[0].unique_id,
                               "report_unique_ids": [sub.document_entries[1].unique_id], "release_time": released})
    return pid, shares


def enrol(base: str, pid: str, shares: list[dict[str, Any]]) -> str:
    import httpx

    body = {"patient_id": pid, "pin": PIN, "expires": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            "exams": shares}
    answer = httpx.post(base + "/consent/grants", json=body, headers={"authorization": f"Bearer {API_KEY}"}, timeout=60)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["access_code"])


def measure(consent_base: str, open_base: str, pid: str, code: str, *, runs: int, rounds: int,
            expect: int) -> list[dict[str, Any]]:
    import httpx

    from xds.http.client import SoapClient
    from xds.metadata.responses import parse_adhoc_query_response
    from xds.query import build_adhoc_query
    from xds.security.wss import SamlToken, security_header
    from xds.vocabulary import Action, Status
    from xds.xml import parse_xml

    request = build_adhoc_query(FIND_DOCUMENTS, {"$XDSDocumentEntryPatientId": pid,
                                                 "$XDSDocumentEntryStatus": [Status.APPROVED]},
                                return_type="LeafClass", validate=False)

    def count(body: Any) -> int:
        parsed = parse_adhoc_query_response(body)
        assert not list(parsed.errors), parsed.errors
        return 0 if parsed.object_list is None else sum(
            1 for c in parsed.object_list if isinstance(c.tag, str) and c.tag.endswith("ExtrinsicObject"))

    results = []
    with httpx.Client(timeout=60) as http, SoapClient(consent_base + "/registry", timeout=60) as gated, \
            SoapClient(open_base + "/registry", timeout=60) as plain:
        # Warm-up: connections, caches, the first scrypt.
        for _ in range(3):
            token = http.post(consent_base + "/consent/token", data={"code": code, "pin": PIN})
            assert token.status_code == 200, token.text
            n_gated = count(gated.call(Action.ITI18, request,
                                       extra_headers=[security_header(SamlToken(parse_xml(token.content)))]).body)
            n_open = count(plain.call(Action.ITI18, request).body)
        assert n_gated == expect, (n_gated, expect)  # manifest + report of each shared exam
        print(f"  gated query returns {n_gated} entries, open query {n_open}", flush=True)
        for run in range(runs):
            tok, query, both, open_ = [], [], [], []
            for _ in range(rounds):
                t0 = time.perf_counter()
                answer = http.post(consent_base + "/consent/token", data={"code": code, "pin": PIN})
                t1 = time.perf_counter()
                assert answer.status_code == 200, answer.text
                header = security_header(SamlToken(parse_xml(answer.content)))
                t2 = time.perf_counter()
                body = gated.call(Action.ITI18, request, extra_headers=[header]).body
                t3 = time.perf_counter()
                assert count(body) == expect
                t4 = time.perf_counter()
                body = plain.call(Action.ITI18, request).body
                t5 = time.perf_counter()
                assert count(body) == n_open
                tok.append(t1 - t0)
                query.append(t3 - t2)
                both.append((t1 - t0) + (t3 - t2))
                open_.append(t5 - t4)
            entry = {"run": run + 1, "load_avg": os.getloadavg(),
                     "token": Latency.of(tok).as_dict(), "gated_query": Latency.of(query).as_dict(),
                     "token_plus_gated_query": Latency.of(both).as_dict(), "open_query": Latency.of(open_).as_dict()}
            results.append(entry)
            print(f"  run {run + 1}/{runs} (load {entry['load_avg'][0]:.2f}): token {Latency.of(tok)}\n"
                  f"      gated query {Latency.of(query)}\n      open query  {Latency.of(open_)}", flush=True)
    return results


def report(results: list[dict[str, Any]], *, exams: int, n_open: str) -> str:
    def med(key: str, p: str) -> float:
        return statistics.median(r[key][p] for r in results)

    rows = [("token request (POST /consent/token, scrypt PIN check)", "token"),
            ("FindDocuments, assertion in WS-Security (consent)", "gated_query"),
            ("token + FindDocuments (consent)", "token_plus_gated_query"),
            ("FindDocuments, no token (open)", "open_query")]
    lines = ["| what | p50 ms (median of runs) | p95 ms (median of runs) | p50 per run |", "|---|---:|---:|---|"]
    for label, key in rows:
        lines.append(f"| {label} | {med(key, 'p50_ms'):.2f} | {med(key, 'p95_ms'):.2f} | "
                     f"{', '.join(format(r[key]['p50_ms'], '.2f') for r in results)} |")
    lines += ["",
              f"- (token + gated FindDocuments) / open FindDocuments, p50: "
              f"**{med('token_plus_gated_query', 'p50_ms') / med('open_query', 'p50_ms'):.1f}x**; p95: "
              f"**{med('token_plus_gated_query', 'p95_ms') / med('open_query', 'p95_ms'):.1f}x**",
              f"- gated FindDocuments / open FindDocuments (token already held), p50: "
              f"**{med('gated_query', 'p50_ms') / med('open_query', 'p50_ms'):.2f}x**; p95: "
              f"**{med('gated_query', 'p95_ms') / med('open_query', 'p95_ms'):.2f}x**",
              "- load average (1 min) at the end of each run: " + ", ".join(format(r["load_avg"][0], ".2f") for r in results),
              f"- content: {exams} shared exams; the gated query returns {2 * exams} entries, the open one {n_open}"]
    return "\n".join(lines) + "\n"



# -- (2) the whole-study fetch ------------------------------------------------------------------------
SOURCE_ID = "1.3.6.1.4.1.21367.13.80.150"
AET = "XDSEDGE"
AFFINITY = "1.3.6.1.4.1.21367.13.20.1000"
LOCAL = "1.3.6.1.4.1.21367.13.20.9999"
CHOICE_DEFAULTS = {
    "class_images": "IMAGES^^1.3.6.1.4.1.19376.1.2.6.1", "class_reports": "REPORTS^^1.3.6.1.4.1.19376.1.2.6.1",
    "type_default": "18748-4^^2.16.840.1.113883.6.1", "type_report": "11528-7^^2.16.840.1.113883.6.1",
    "confidentiality": "N^^2.16.840.1.113883.5.25", "healthcare_facility_type": "22232009^^2.16.840.1.113883.6.96",
    "practice_setting": "309964003^^2.16.840.1.113883.6.96",
    "content_type": "UNSPECIFIED-CONTENT-TYPE^^1.3.6.1.4.1.21367.2017.3",
    "format_text": "urn:ihe:rad:TEXT^^1.3.6.1.4.1.19376.1.2.3", "format_pdf": "urn:ihe:rad:PDF^^1.3.6.1.4.1.19376.1.2.3",
}


def serve_static(directory: str, port: int) -> None:
    """The plain baseline: the same files behind Starlette StaticFiles (1 MiB chunks)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    FileResponse.chunk_size = 1024 * 1024
    app = Starlette(routes=[Mount("/files", app=StaticFiles(directory=directory))])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


class Stack:
    """Registry + repository + Edge Server, each an ``xds ... serve`` process, one access policy."""

    def __init__(self, work: Path, name: str, *, consent: bool, datasets: list[Any], pid: str) -> None:
        self.work, self.name, self.consent, self.datasets, self.pid = work / name, name, consent, datasets, pid
        self.code = ""

    def __enter__(self) -> Stack:
        from contextlib import ExitStack

        from imaging_source.app import PATH

        self._exit = ExitStack().__enter__()
        self.work.mkdir(parents=True)
        argv, port, self.registry, db = start_registry(self.work, "registry", consent=self.consent)
        self._exit.enter_context(server_process(argv, port=port, log=self.work / "registry.log"))
        policy: list[str] = []
        if self.consent:
            cert = self.work / "registry" / "keys" / "token-signing.cert.pem"
            assert cert.is_file(), cert
            policy = ["--access-policy", "consent", "--trusted-token-cert", str(cert)]
        rport = free_port()
        self.repository = f"http://127.0.0.1:{rport}/repository"
        self._exit.enter_context(server_process(
            [venv_bin("xds"), "repository", "serve", "--registry", self.registry + "/registry", "--data-dir",
             str(self.work / "repository"), "--port", str(rport), *policy],
            port=rport, path="/repository", log=self.work / "repository.log"))
        edge_dir = self.work / "edge"
        manifest = self._fill_edge(edge_dir)
        sport = free_port()
        self.source = f"http://127.0.0.1:{sport}{PATH}"
        self._exit.enter_context(server_process(
            [venv_bin("xds"), "source", "serve", "--data-dir", str(edge_dir), "--port", str(sport), "--dicom-port", "0",
             "--mllp-port", "0", "--source-id", SOURCE_ID, "--repository-url", self.repository, *policy],
            port=sport, path=PATH, log=self.work / "source.log"))
        self._register(db, manifest)
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.__exit__(None, None, None)

    def _fill_edge(self, edge_dir: Path) -> tuple[Any, Path, str]:
        from imaging_source.app import open_store
        from imaging_source.config import SourceSettings
        from imaging_source.kos import encode_part10, kos_for_study
        from tests.support.dicom import part10_bytes

        store = open_store(SourceSettings(data_dir=edge_dir, source_id=SOURCE_ID, fsync=False))
        for ds in self.datasets:
            store.store_bytes(part10_bytes(ds))
        study_uid = str(self.datasets[0].StudyInstanceUID)
        kos_bytes = encode_part10(kos_for_study(store, study_uid, source_id=SOURCE_ID, retrieve_ae_title=AET))
        kos_path = self.work / "kos.dcm"
        kos_path.write_bytes(kos_bytes)
        contents = store.contents(study_uid)
        store.engine.dispose()
        return contents, kos_path, study_uid

    def _register(self, db: str, manifest: tuple[Any, Path, str]) -> None:
        import hashlib

        from pydicom import dcmread

        from imaging_source.rad68 import DocumentFacts, ExamFacts, PatientMapping, build_submission, resolve_codes
        from imaging_source.submit import DocumentFile, Rad68Sender, SubmitOutcome
        from profiles.codes import load_code_set
        from registry.iti42 import DocumentRegistry
        from registry.patients import Patient
        from registry.store.db import make_engine
        from tests.support.paths import CODES_XML

        contents, kos_path, study_uid = manifest
        engine = make_engine(db)
        DocumentRegistry(engine).patients.add_or_update(Patient(patient_id=self.pid))
        engine.dispose()
        kos_bytes = kos_path.read_bytes()
        kos = dcmread(kos_path)
        codes = load_code_set(CODES_XML)
        exam = ExamFacts(contents.study, tuple(s.modality for s in contents.series), tuple(s.body_part for s in contents.series))
        facts = DocumentFacts(str(kos.SOPInstanceUID), "application/dicom", hashlib.sha1(kos_bytes).hexdigest(),
                              len(kos_bytes), f"{kos.ContentDate}{kos.ContentTime}"[:14])
        submission = build_submission(
            exam, manifest=facts, report=None, submission_uid=f"2.25.{int.from_bytes(os.urandom(12), 'big')}",
            source_id=SOURCE_ID, submission_time=datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
            mapping=PatientMapping(AFFINITY, local_oid=LOCAL), choices=resolve_codes(CHOICE_DEFAULTS, codes), codes=codes)
        result = Rad68Sender(self.repository).send(submission, [DocumentFile("Manifest", kos_path, "application/dicom")])
        assert result.outcome is SubmitOutcome.ACCEPTED, result.detail
        if self.consent:
            share = {"study_uid": study_uid, "manifest_unique_id": facts.unique_id, "report_unique_ids": [],
                     "release_time": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
            self.code = enrol(self.registry, self.pid, [share])

    def fetch(self, out: Path) -> float:
        import subprocess

        shutil.rmtree(out, ignore_errors=True)
        argv = [venv_bin("xds"), "consumer", "fetch", "--registry", self.registry + "/registry", "--repository",
                self.repository, "--source", f"{SOURCE_ID}={self.source}", "--out", str(out), "--no-progress"]
        argv += ["--code", self.code, "--pin-stdin"] if self.consent else ["--patient", self.pid]
        start = time.perf_counter()
        done = subprocess.run(argv, input=PIN + "\n" if self.consent else "", capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"fetch ({self.name}) failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")
        got = [p for p in out.rglob("*.dcm")]
        assert len(got) >= len(self.datasets), (len(got), len(self.datasets))
        return elapsed


def fetch_phase(work: Path, *, instances: int, runs: int) -> dict[str, Any]:
    import subprocess

    from tests.support.dicom import StudySpec, make_study, write_datasets

    series = 5 if instances >= 5 else 1
    spec = StudySpec(modalities=("CT",) * series, instances_per_series=instances // series, rows=512, columns=512,
                     issuer=LOCAL)
    datasets = make_study(spec)
    plain_dir = work / "plain"
    files = sorted(write_datasets(datasets, plain_dir))
    megabytes = sum(f.stat().st_size for f in files) / 1e6
    pid = f"{spec.patient_id}^^^&{AFFINITY}&ISO"
    print(f"  fetch phase: {len(files)} instances, {megabytes:.1f} MB", flush=True)
    port = free_port()
    urls = work / "urls.txt"
    outdir = work / "plain-out"
    urls.write_text("".join(f'url = "http://127.0.0.1:{port}/files/{f.name}"\noutput = "{outdir / f.name}"\n' for f in files))
    curl = ["curl", "-s", "-f", "--create-dirs", "-K", str(urls)]
    results: dict[str, list[float]] = {}
    with server_process([sys.executable, str(Path(__file__).resolve()), "--child", "static", str(plain_dir), str(port)],
                        port=port, path="/files/" + files[0].name, log=work / "static.log"), \
            Stack(work, "consent-stack", consent=True, datasets=datasets, pid=pid) as consent, \
            Stack(work, "open-stack", consent=False, datasets=datasets, pid=pid) as open_:

        def plain() -> float:
            shutil.rmtree(outdir, ignore_errors=True)
            start = time.perf_counter()
            subprocess.run(curl, check=True)
            return time.perf_counter() - start

        contenders = [("plain download (curl -K, one keep-alive connection, StaticFiles)", plain),
                      ("xds consumer fetch, consent (token)", lambda: consent.fetch(work / "out-consent")),
                      ("xds consumer fetch, open (no token)", lambda: open_.fetch(work / "out-open"))]
        for _, fn in contenders:  # warm-up
            fn()
        for run in range(runs):
            for name, fn in contenders:
                results.setdefault(name, []).append(fn())
            print(f"  fetch run {run + 1}/{runs} (load {os.getloadavg()[0]:.2f}): "
                  + ", ".join(f"{n.split(' (')[0]} {v[-1]:.2f} s" for n, v in results.items()), flush=True)
    return {"instances": len(files), "megabytes": megabytes, "seconds": results, "load_avg": os.getloadavg()}


def fetch_report(phase: dict[str, Any]) -> str:
    names = list(phase["seconds"])
    med = {n: statistics.median(v) for n, v in phase["seconds"].items()}
    lines = ["| contender | median s | MB/s | runs (s) |", "|---|---:|---:|---|"]
    for n in names:
        lines.append(f"| {n} | {med[n]:.3f} | {phase['megabytes'] / med[n]:,.0f} | "
                     + ", ".join(format(s, ".2f") for s in phase["seconds"][n]) + " |")
    plain, consent, open_ = (med[n] for n in names)
    lines += ["", f"- fetch (consent) / plain: **{consent / plain:.2f}x**; fetch (open) / plain: **{open_ / plain:.2f}x**;"
              f" consent / open: **{consent / open_:.2f}x**"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--exams", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--instances", type=int, default=500, help="instances in the fetched study")
    parser.add_argument("--fetch-runs", type=int, default=3)
    parser.add_argument("--skip-fetch", action="store_true", help="only the token / FindDocuments figures")
    parser.add_argument("--skip-query", action="store_true", help="only the whole-study fetch")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve_static(args.child[1], int(args.child[2]))
        return 0
    SCRATCH.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=SCRATCH))
    try:
        results: list[dict[str, Any]] = []
        fetched: dict[str, Any] = {}
        text = ""
        if not args.skip_query:
            c_argv, c_port, c_base, c_db = start_registry(work, "consent", consent=True)
            o_argv, o_port, o_base, o_db = start_registry(work, "open", consent=False)
            with server_process(c_argv, port=c_port, log=work / "consent.log"), \
                    server_process(o_argv, port=o_port, log=work / "open.log"):
                pid, shares = populate(c_base, c_db, args.exams)
                populate(o_base, o_db, args.exams)
                code = enrol(c_base, pid, shares)
                results = measure(c_base, o_base, pid, code, runs=args.runs, rounds=args.rounds, expect=2 * args.exams)
            text += report(results, exams=args.exams, n_open=f"{3 * args.exams}")
        if not args.skip_fetch:
            fetched = fetch_phase(work, instances=args.instances, runs=args.fetch_runs)
            text += "\n" + fetch_report(fetched)
        print("\n" + text)
        if args.json:
            write_json(args.json, {"machine": machine(), "runs": results, "fetch": fetched})
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
