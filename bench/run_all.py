"""Run the registry benchmarks with their defaults and write one markdown report.

    python bench/run_all.py                     # everything (about 25-40 minutes on 2 cores)
    python bench/run_all.py --quick             # 10^4 and 10^5 only, short phases (a few minutes)

Steps, each a separate process so that one's memory and threads do not touch the next:

1. ``registry_load.py --keep``: builds the registries (SQLite, PostgreSQL; 10^4, 10^5, 10^6);
2. ``registry_query.py --reuse``: FindDocuments latency on them (then drops them);
3. ``registry_submit.py``: ITI-42 submissions/s against the echo baseline.

Raw results are JSON files next to the report (``--out``, default ``/tmp/xds-bench/registry/results``).
The report is printed and written as ``report.md``; ``docs/benchmarks.md`` quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchutil import BENCH_DIR, REGISTRY_SCRATCH, machine


def run(script: str, args: list[str]) -> None:
    cmd = [sys.executable, str(BENCH_DIR / script), *args]
    print(f"$ {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, check=True)


def fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None or x != x else f"{x:,.{digits}f}"


def load_table(load: dict[str, Any]) -> list[str]:
    lines = ["| database | entries | rows | generate + load (s) | indexes (s) | ANALYZE (s) | **total (s)** | size (MiB) | XML per entry (B) | schema = Alembic |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in load["reports"]:
        same = r["index_definitions_match"] and not r["schema_differences"]
        lines.append(
            f"| {r['backend']} | {r['entries']:,} | {sum(r['rows'].values()):,} | {fmt(r['seconds_generate_and_load'], 1)} | "
            f"{fmt(r['seconds_index'], 1)} | {fmt(r['seconds_analyze'], 1)} | **{fmt(r['seconds_total'], 1)}** | "
            f"{r['size_bytes'] / 2**20:,.0f} | {r['xml_bytes_per_entry']:,.0f} | {'yes' if same else 'NO'} |"
        )
    return lines


def query_table(query: dict[str, Any]) -> list[str]:
    lines = ["| database | entries | in-process p50 / p95 (ms) | HTTP pre-built p50 / p95 (ms) | HTTP SoapClient p50 / p95 (ms) | with code+time filters, in-process p50 / p95 (ms) | plans scan a table? | load average during the runs (mean / max) |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]

    def cell(lat: dict[str, float] | None) -> str:
        return "-" if not lat else f"{lat['p50_ms']:.2f} / {lat['p95_ms']:.2f}"

    results = query["results"]
    for r in results:
        loads = [x for xs in r.get("load_avg", {}).values() for x in xs]
        load = f"{statistics.fmean(loads):.1f} / {max(loads):.1f}" if loads else "-"
        lines.append(f"| {r['backend']} | {r['entries']:,} | {cell(r.get('in_process'))} | {cell(r.get('http_raw'))} | "
                     f"{cell(r.get('http_client'))} | {cell(r.get('in_process_filtered'))} | {'**yes**' if r['scans'] else 'no'} | {load} |")
    lines += ["", "| database | path | p95 at 10^6 (ms) | p95 10^6 / 10^4 | target (<= 20 ms, <= 1.5x) |", "|---|---|---:|---:|---|"]
    for backend in sorted({r["backend"] for r in results}):
        by = {r["entries"]: r for r in results if r["backend"] == backend}
        if len(by) < 2:
            continue
        small, large = by[min(by)], by[max(by)]
        for key, label in (("in_process", "in-process"), ("http_raw", "HTTP pre-built"), ("http_client", "HTTP SoapClient")):
            if small.get(key) and large.get(key):
                a, b = small[key]["p95_ms"], large[key]["p95_ms"]
                ok = b <= 20 and b <= 1.5 * a
                lines.append(f"| {backend} | {label} | {b:.2f} | {b / a:.2f}x | {'met' if ok else '**missed**'} |")
    return lines


def submit_table(submit: dict[str, Any]) -> list[str]:
    lines = ["| database | workers | connections | server | endpoint | each phase (req/s) | **median req/s** | median p50 / p95 (ms) | server CPU per request (ms) |",
             "|---|---:|---:|---|---|---|---:|---:|---:|"]
    labels = {"registry": "ITI-42 /registry", "echo": "SOAP echo /echo", "null": "null handler /echo"}
    for r in submit["results"]:
        groups: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
        for p in r["phases"]:
            groups.setdefault((p["connections"], p["server"], p["name"]), []).append(p)
        for (conns, server, name), ps in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "cli", kv[0][2])):
            med = statistics.median(p["rate"] for p in ps)
            p50 = statistics.median(p["latency"]["p50_ms"] for p in ps)
            p95 = statistics.median(p["latency"]["p95_ms"] for p in ps)
            cpu = sum(p["server_cpu_seconds"] for p in ps) / max(sum(p["requests"] for p in ps), 1) * 1000
            each = ", ".join(f"{p['rate']:.0f}" for p in ps)
            lines.append(f"| {r['backend']} | {r['workers']} | {conns} | {'xds registry serve' if server == 'cli' else 'registry + echo'} | "
                         f"{labels[name]} | {each} | **{med:.0f}** | {p50:.1f} / {p95:.1f} | {cpu:.2f} |")
        for conns, rates in r["median_rate"].items():
            if rates.get("echo"):
                lines.append(f"| {r['backend']} | {r['workers']} | {conns} | | **registry / echo** | | **{rates['registry'] / rates['echo']:.3f}** | | |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REGISTRY_SCRATCH / "results")
    parser.add_argument("--quick", action="store_true", help="10^4 and 10^5 only, 500 queries, 4-second phases")
    parser.add_argument("--skip-submit", action="store_true")
    parser.add_argument("--skip-query", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="only render report.md from the JSON files in --out")
    args = parser.parse_args()
    if args.report_only:
        args.skip_query = args.skip_submit = True
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = ["10000", "100000"] if args.quick else ["10000", "100000", "1000000"]
    started = time.time()
    load_before = os.getloadavg()
    if not args.skip_query:
        run("registry_load.py", ["--keep", "--entries", *sizes, "--json", str(args.out / "load.json")])
        run("registry_query.py", ["--reuse", "--entries", *sizes, "--json", str(args.out / "query.json"),
                                  *(["--queries", "500"] if args.quick else [])])
    if not args.skip_submit:
        run("registry_submit.py", ["--json", str(args.out / "submit.json"),
                                   *(["--seconds", "4", "--preload", "10000", "--connections", "4"] if args.quick else [])])
    m = machine()
    lines = [
        f"# Registry benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {m['nproc']} vCPU {m['cpu']} ({m['cpu_flags']}), {m['memory']}, {m['os']}, kernel {m['kernel']}, "
        f"{m['virtualisation']}; Python {m['python']}, SQLite {m['sqlite']}, PostgreSQL {m['postgresql']}."
        + ("" if args.report_only else
           f" Load average before / after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f}; {time.time() - started:.0f} s in all."),
    ]
    if (args.out / "load.json").is_file() and (args.report_only or not args.skip_query):
        lines += ["", "## Building the registries", "", *load_table(json.loads((args.out / "load.json").read_text()))]
    if (args.out / "query.json").is_file() and (args.report_only or not args.skip_query):
        lines += ["", "## FindDocuments (10 documents per patient, ~9 Approved returned)", "",
                  *query_table(json.loads((args.out / "query.json").read_text()))]
    if (args.out / "submit.json").is_file() and (args.report_only or not args.skip_submit):
        lines += ["", "## ITI-42, one DocumentEntry per submission, through HTTP", "",
                  *submit_table(json.loads((args.out / "submit.json").read_text()))]
    report = "\n".join(lines) + "\n"
    (args.out / "report.md").write_text(report)
    print("\n" + report)
    print(f"written: {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
