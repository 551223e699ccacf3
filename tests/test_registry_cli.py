"""``xds registry ...`` from the command line: patient add, and serve logging its endpoints."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from imageshare.cli import main
from registry.store.db import make_engine
from registry.store.patients import PatientStore


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_patient_add_then_known(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    pid = "CLI-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
    runner = CliRunner()
    first = runner.invoke(main, ["registry", "patient", "add", pid, "--db", db, "--family", "Doe"])
    assert first.exit_code == 0, first.output
    assert f"added {pid}" in first.output
    again = runner.invoke(main, ["registry", "patient", "add", pid, "--db", db])
    assert f"updated {pid}" in again.output
    assert PatientStore(make_engine(db)).is_known(pid)


def test_patient_add_refuses_a_malformed_id(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["registry", "patient", "add", "no-authority", "--db", f"sqlite:///{tmp_path / 'r.sqlite'}"])
    assert result.exit_code == 2
    assert "error" in result.output


def test_serve_from_config_file_and_environment_logs_its_endpoints(tmp_path: Path) -> None:
    port, mllp = _free_port(), _free_port()
    config = tmp_path / "xds.toml"
    config.write_text(f'[registry]\nport = 1\nmllp_port = {mllp}\ndata_dir = "{tmp_path}"\n')
    env = {**os.environ, "XDS_REGISTRY_PORT": "2"}  # the flag below wins over both
    proc = subprocess.Popen(
        [sys.executable, "-m", "imageshare", "registry", "serve", "--config", str(config), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/registry?wsdl", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("the registry did not start")
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/registry" in output
    assert f"mllp://127.0.0.1:{mllp}" in output
    assert (tmp_path / "registry.sqlite").exists()
