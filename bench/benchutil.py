"""Small helpers shared by the registry benchmarks: statistics, the machine, scratch databases
and server processes.

Everything here talks to 127.0.0.1 only. Databases and servers made by a benchmark are always
created through these helpers so that the benchmark can remove them again in a ``finally``.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_SCRATCH = Path(os.environ.get("XDS_BENCH_DIR", "/tmp/xds-bench"))
#: The registry benchmarks' own files (databases, server data, logs, results).
REGISTRY_SCRATCH = DEFAULT_SCRATCH / "registry"


# -- statistics ------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of already sorted values, by linear interpolation."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class Latency:
    """A latency sample summarised in milliseconds."""

    n: int
    p50: float
    p95: float
    p99: float
    mean: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ms = sorted(s * 1000.0 for s in seconds)
        return cls(
            n=len(ms),
            p50=percentile(ms, 0.50),
            p95=percentile(ms, 0.95),
            p99=percentile(ms, 0.99),
            mean=statistics.fmean(ms) if ms else float("nan"),
            max=ms[-1] if ms else float("nan"),
        )

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "p50_ms": self.p50, "p95_ms": self.p95, "p99_ms": self.p99, "mean_ms": self.mean, "max_ms": self.max}

    def __str__(self) -> str:
        return f"p50 {self.p50:7.3f} ms  p95 {self.p95:7.3f} ms  p99 {self.p99:7.3f} ms  (n={self.n})"


def write_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


# -- the machine -----------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the figures were measured on (for docs/benchmarks.md)."""
    cpu = "unknown"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    virt = "unknown"
    try:
        virt = subprocess.run(["systemd-detect-virt"], capture_output=True, text=True, timeout=5).stdout.strip() or virt
    except (OSError, subprocess.SubprocessError):
        pass
    pg = "unavailable"
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=5) as conn:
            pg = conn.execute("show server_version").fetchone()[0]  # type: ignore[index]
    except Exception:  # noqa: BLE001 - only reported
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "cpu_flags": " ".join(sorted(flags & {"avx512f", "sha_ni", "avx2", "hypervisor"})),
        "memory": mem,
        "kernel": platform.release(),
        "os": _os_release(),
        "virtualisation": virt,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg,
    }


def _os_release() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return platform.platform()
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.M)
    return match.group(1) if match else platform.platform()


def disk_usage(path: Path) -> int:
    """Bytes under ``path`` (a file or a directory)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- scratch databases -------------------------------------------------------------------------


def pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=5):
            return True
    except Exception:  # noqa: BLE001
        return False


def pg_url(name: str) -> str:
    """SQLAlchemy URL of a database on the local PostgreSQL."""
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def pg_create(name: str) -> str:
    """Create (or re-create) a benchmark database; its name must start with ``xds_bench``."""
    _check_bench_name(name)
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg_url(name)


def pg_drop(name: str) -> None:
    _check_bench_name(name)
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_database_size(name: str) -> int:
    import psycopg

    with psycopg.connect(PG_ADMIN) as conn:
        return int(conn.execute("select pg_database_size(%s)", (name,)).fetchone()[0])  # type: ignore[index]


def _check_bench_name(name: str) -> None:
    # A guard: these helpers drop databases, so they only ever touch the benchmark's own.
    if not re.fullmatch(r"xds_bench[a-z0-9_]*", name):
        raise ValueError(f"refusing to manage database {name!r}: benchmark databases are named xds_bench*")


# -- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def venv_bin(name: str) -> str:
    """An executable of the interpreter's environment (the project's .venv)."""
    return str(Path(sys.executable).parent / name)


@contextmanager
def server_process(
    argv: Sequence[str], *, port: int, path: str = "/registry", env: dict[str, str] | None = None,
    log: Path, startup_timeout: float = 60.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, wait until GET ``path`` answers, yield it, then stop it by its id.

    The server runs in its own session so that its worker processes can be signalled as one group;
    only that group (whose id is the server's pid) is ever signalled.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    out = log.open("ab")
    proc = subprocess.Popen(
        list(argv), stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        start_new_session=True, cwd=str(REPO),
    )
    try:
        _wait_ready(proc, port, path, startup_timeout, log)
        yield proc
    finally:
        _stop(proc)
        out.close()


def _wait_ready(proc: subprocess.Popen[bytes], port: int, path: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see {log}:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            status = conn.getresponse().status
            conn.close()
            if status < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not become ready in {timeout} s; see {log}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # Workers of the group that outlived the master (should not happen) get the same treatment.
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return
    time.sleep(1)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class KeepAlive:
    """One persistent HTTP/1.1 connection posting pre-built SOAP messages (a light client, so
    the load generator does not compete with the server for the CPU)."""

    def __init__(self, port: int, path: str, *, timeout: float = 60.0) -> None:
        self.port = port
        self.path = path
        self.timeout = timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def post(self, body: bytes, content_type: str) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type, "Content-Length": str(len(body)), "Connection": "keep-alive"}
        for attempt in (0, 1):
            try:
                self.conn.request("POST", self.path, body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection; reconnect once.
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()
