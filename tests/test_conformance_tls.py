"""Test 12028 (ITI-43 over TLS) against our Document Repository served over HTTPS, and against
peers whose TLS is wrong.

A throwaway CA signs a server certificate for 127.0.0.1 and a client certificate; a second CA
and a certificate for another host name stand in for a wrong peer. Our repository is started in
a child process with its own app under TLS with client certificates required (mutual TLS, ATNA),
because ``xds repository serve`` has no TLS options (yet). The runner is driven through its CLI
(``--ca-cert``, ``--client-cert``, ``--client-key``; an https:// endpoint declares the ``tls``
option): 12028 passes with the right certificates, and fails when the peer's certificate is not
trusted or names another host, when the runner has no client certificate to show, when the peer
speaks plain HTTP on the https:// port, and when the endpoint is plain http:// with the option
declared.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree

from conformance_tests.cli import conformance
from conformance_tests.transport import tls_context

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO.parent / "shared" / "schemas"
REPOSITORY_ID = "1.3.6.1.4.1.21367.13.40.217"

pytestmark = pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"shared schemas not found at {SCHEMAS}")

# -- certificates ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(directory: Path, stem: str, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Issued(cert_path, key_path)


def _ca(directory: Path, stem: str) -> tuple[Issued, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(f"conformance test CA {stem}"))
        .issuer_name(_name(f"conformance test CA {stem}"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(directory, stem, certificate, key), certificate, key


def _leaf(
    directory: Path,
    stem: str,
    ca: tuple[Issued, x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    names: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
) -> Issued:
    _, ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(stem))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return _write(directory, stem, certificate, key)


@dataclass(frozen=True)
class Certificates:
    ca: Path
    other_ca: Path
    server: Issued
    wrong_name: Issued
    client: Issued


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    directory = tmp_path_factory.mktemp("pki")
    ca = _ca(directory, "ca")
    other = _ca(directory, "other-ca")
    loopback = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    server = ExtendedKeyUsageOID.SERVER_AUTH
    return Certificates(
        ca=ca[0].cert,
        other_ca=other[0].cert,
        server=_leaf(directory, "repository", ca, names=loopback, usage=server),
        wrong_name=_leaf(directory, "elsewhere", ca, names=[x509.DNSName("elsewhere.example")], usage=server),
        client=_leaf(directory, "runner", ca, names=[x509.DNSName("runner.example")], usage=ExtendedKeyUsageOID.CLIENT_AUTH),
    )


# -- our repository, over TLS and over plain HTTP ---------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Peers:
    registry_port: int  # where every repository sends ITI-42: the CLI's registry simulator
    tls: str  # https, our certificate, client certificates required
    wrong_name: str  # https, a certificate for another host name
    plain_port: int  # plain HTTP


def _start(command: list[str], log_path: Path, ready: str, *, verify: object = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"the repository exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(ready, timeout=2, verify=verify if verify is not None else True).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.terminate()
            pytest.fail(f"the repository did not start:\n{log_path.read_text()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def peers(certificates: Certificates, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    registry = f"http://127.0.0.1:{_free_port()}/registry"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        urls = []
        for name, issued in (("tls", certificates.server), ("wrong-name", certificates.wrong_name)):
            directory = tmp_path_factory.mktemp(f"repository-{name}")
            port = _free_port()
            # Our repository through its CLI, HTTPS with client certificates required.
            command = [sys.executable, "-m", "repository", "serve", "--host", "127.0.0.1", "--port", str(port),
                       "--registry", registry, "--repository-id", REPOSITORY_ID, "--data-dir", str(directory),
                       "--registry-timeout", "10", "--tls-cert", str(issued.cert), "--tls-key", str(issued.key),
                       "--tls-client-ca", str(certificates.ca)]  # fmt: skip
            # The readiness probe trusts the CA, ignores the host name and shows our client certificate.
            probe = tls_context(verify=str(certificates.ca), client_cert=str(certificates.client.cert),
                                client_key=str(certificates.client.key))  # fmt: skip
            probe.check_hostname = False
            processes.append(_start(command, directory / "log", f"https://127.0.0.1:{port}/repository?wsdl", verify=probe))
            urls.append(f"https://127.0.0.1:{port}/repository")
        directory = tmp_path_factory.mktemp("repository-plain")
        plain = _free_port()
        command = [sys.executable, "-m", "repository", "serve", "--host", "127.0.0.1", "--port", str(plain),
                   "--registry", registry, "--repository-id", REPOSITORY_ID, "--data-dir", str(directory),
                   "--registry-timeout", "10"]  # fmt: skip
        processes.append(_start(command, directory / "log", f"http://127.0.0.1:{plain}/repository?wsdl"))
        yield Peers(int(registry.split(":")[2].split("/")[0]), urls[0], urls[1], plain)
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- the runner's CLI -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    exit_code: int
    output: str
    kind: str  # "passed", or the JUnit element of 12028: failure, error, skipped
    message: str


def _run_12028(peers: Peers, tmp_path: Path, endpoint: str, *extra: str) -> Outcome:
    junit = tmp_path / "junit.xml"
    result = CliRunner().invoke(
        conformance,
        ["run", "--actor", "repository", "--endpoint", endpoint, "--case", "12028", "--schemas", str(SCHEMAS),
         "--registry-sim-port", str(peers.registry_port), "--timeout", "20", "--junit", str(junit), *extra],
    )  # fmt: skip
    assert junit.is_file(), result.output
    (case,) = [c for c in etree.parse(str(junit)).getroot().iter("testcase") if c.get("name", "").startswith("12028 ")]
    found = [child for child in case if child.tag in ("failure", "error", "skipped")]
    if not found:
        return Outcome(result.exit_code, result.output, "passed", "")
    return Outcome(result.exit_code, result.output, found[0].tag, (found[0].text or "") + found[0].get("message", ""))


def _client(certificates: Certificates) -> list[str]:
    return ["--client-cert", str(certificates.client.cert), "--client-key", str(certificates.client.key)]


def test_12028_passes_against_our_repository_over_mutual_tls(
    peers: Peers, certificates: Certificates, tmp_path: Path
) -> None:
    outcome = _run_12028(peers, tmp_path, peers.tls, "--ca-cert", str(certificates.ca), *_client(certificates))
    assert (outcome.exit_code, outcome.kind) == (0, "passed"), outcome.output + outcome.message
    # The https:// endpoint declared the option; nothing else had to.
    assert "options: none" not in outcome.output
    report = etree.parse(str(tmp_path / "junit.xml")).getroot()
    properties = {p.get("name"): p.get("value") for p in report.iter("property")}
    assert properties["options"] == "tls" and properties["trusted CAs"] == str(certificates.ca)


@pytest.mark.parametrize(
    ("peer", "trust", "client", "detail"),
    [
        ("tls", "other_ca", True, "CERTIFICATE_VERIFY_FAILED"),  # a certificate the tester does not trust
        ("wrong_name", "ca", True, "CERTIFICATE_VERIFY_FAILED"),  # a certificate for another host
        ("tls", "ca", False, "refused our client certificate (none shown"),  # mutual TLS, no certificate shown
    ],
    ids=["untrusted-CA", "wrong-host-name", "no-client-certificate"],
)
def test_12028_fails_when_the_tls_handshake_fails(
    peers: Peers, certificates: Certificates, tmp_path: Path, peer: str, trust: str, client: bool, detail: str
) -> None:
    endpoint = getattr(peers, peer)
    extra = ["--ca-cert", str(getattr(certificates, trust)), *(_client(certificates) if client else [])]
    outcome = _run_12028(peers, tmp_path, endpoint, *extra)
    assert (outcome.exit_code, outcome.kind) == (1, "failure"), outcome.output + outcome.message
    assert "TLS handshake" in outcome.message and detail in outcome.message, outcome.message


def test_12028_fails_against_a_plain_http_peer(peers: Peers, certificates: Certificates, tmp_path: Path) -> None:
    # An https:// endpoint whose port speaks plain HTTP: no TLS handshake at all.
    https = _run_12028(peers, tmp_path, f"https://127.0.0.1:{peers.plain_port}/repository", "--ca-cert",
                       str(certificates.ca))  # fmt: skip
    assert (https.exit_code, https.kind) == (1, "failure"), https.output + https.message
    assert "TLS handshake" in https.message
    # The plain http:// endpoint with the option declared: the exchange works, the TLS check fails.
    plain = _run_12028(peers, tmp_path, f"http://127.0.0.1:{peers.plain_port}/repository", "--option", "tls")
    assert (plain.exit_code, plain.kind) == (1, "failure"), plain.output + plain.message
    assert "TLS: POST http://" in plain.message
    # Without the option, 12028 is not applicable over http://, and the run passes.
    undeclared = _run_12028(peers, tmp_path, f"http://127.0.0.1:{peers.plain_port}/repository")
    assert (undeclared.exit_code, undeclared.kind) == (0, "skipped")
    assert "not applicable: option 'tls' not declared" in undeclared.message


def test_the_tls_options_are_checked() -> None:
    both = CliRunner().invoke(conformance, ["run", "--actor", "repository", "--endpoint", "https://x.invalid/r",
                                            "--insecure", "--ca-cert", __file__, "--schemas", str(SCHEMAS)])  # fmt: skip
    assert both.exit_code == 2 and "exclude each other" in both.output
    key_only = CliRunner().invoke(conformance, ["run", "--actor", "repository", "--endpoint", "https://x.invalid/r",
                                                "--client-key", __file__, "--schemas", str(SCHEMAS)])  # fmt: skip
    assert key_only.exit_code == 2 and "--client-key needs --client-cert" in key_only.output
