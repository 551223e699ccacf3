"""``xds up`` as a real process on free loopback ports, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.paths import REPO
from tests.support.repository import free_port

PATHS = ("registry", "repository", "imaging-source")


@dataclass(frozen=True)
class Up:
    base: str
    port: int
    mllp_port: int
    dicom_port: int
    ris_port: int
    data_dir: Path
    log: Path

    def flags(self) -> list[str]:
        """The flags that point another ``xds`` command (demo, source ...) at this instance."""
        return ["--data-dir", str(self.data_dir)]

    @property
    def grant_api_key(self) -> str:
        return (self.data_dir / "keys" / "grant-api.key").read_text().strip()


def xds_command() -> list[str]:
    script = Path(sys.executable).with_name("xds")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from imageshare.cli import main; main()"]


def xds_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@contextlib.contextmanager
def running_up(directory: Path, *extra: str) -> Iterator[Up]:
    """Start ``xds up`` with ``extra`` flags, wait until every actor answers, stop it with SIGINT."""
    port, mllp_port, dicom_port, ris_port = free_port(), free_port(), free_port(), free_port()
    data_dir, log = directory / "data", directory / "up.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                *xds_command(), "up", "--port", str(port), "--mllp-port", str(mllp_port), "--data-dir", str(data_dir),
                "--dicom-port", str(dicom_port), "--ris-port", str(ris_port), *extra,
            ],  # fmt: skip
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=xds_env(),
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if all(httpx.get(f"{base}/{path}?wsdl", timeout=2).status_code == 200 for path in PATHS):
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield Up(base, port, mllp_port, dicom_port, ris_port, data_dir, log)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
