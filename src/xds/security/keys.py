"""The signing key pair of the token issuer: loaded from configured PEM files, or generated once
(RSA 3072 and a self-signed X.509 certificate) and kept under the data directory with 0600
permissions, so every worker process and every restart signs with the same key.

Public API::

    SigningMaterial(key_pem, cert_pem)          # .certificate_der
    load_or_create_signing_material(*, key_path, cert_path, common_name, valid_days=3650,
                                    now=None) -> SigningMaterial
    generate_signing_material(*, common_name, valid_days=3650, now=None) -> SigningMaterial
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

__all__ = ["SigningMaterial", "generate_signing_material", "load_or_create_signing_material"]

RSA_BITS = 3072


@dataclass(frozen=True, slots=True, repr=False)
class SigningMaterial:
    """A PEM private key and its PEM certificate (the ``repr`` hides the key)."""

    key_pem: bytes
    cert_pem: bytes

    @property
    def certificate_der(self) -> bytes:
        return x509.load_pem_x509_certificate(self.cert_pem).public_bytes(serialization.Encoding.DER)

    def __repr__(self) -> str:
        return "SigningMaterial(<key>, <certificate>)"


def generate_signing_material(
    *, common_name: str, valid_days: int = 3650, now: datetime | None = None
) -> SigningMaterial:
    """A new RSA key and a self-signed certificate for it (serverAuth-free: signing only)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningMaterial(key_pem=key_pem, cert_pem=cert.public_bytes(serialization.Encoding.PEM))


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new 0600 file atomically (a temporary name, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_or_create_signing_material(
    *, key_path: Path, cert_path: Path, common_name: str, valid_days: int = 3650, now: datetime | None = None
) -> SigningMaterial:
    """Read the key and certificate; create both when neither exists.

    One existing without the other is an error (a half-configured issuer must not silently
    start signing with a new key that no verifier trusts).
    """
    key_path.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(key_path.with_name(f".{key_path.name}.lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        # Several worker processes may start at once: one creates the pair, the others read it.
        fcntl.flock(lock, fcntl.LOCK_EX)
        have_key, have_cert = key_path.is_file(), cert_path.is_file()
        if have_key != have_cert:
            missing = cert_path if have_key else key_path
            raise FileNotFoundError(f"signing key and certificate go together; {missing} is missing")
        if not have_key:
            fresh = generate_signing_material(common_name=common_name, valid_days=valid_days, now=now)
            _write_private(key_path, fresh.key_pem)
            _write_private(cert_path, fresh.cert_pem)
    finally:
        os.close(lock)
    material = SigningMaterial(key_pem=key_path.read_bytes(), cert_pem=cert_path.read_bytes())
    # Fail at start-up, not at the first token request, when a file is not what it should be.
    serialization.load_pem_private_key(material.key_pem, password=None)
    x509.load_pem_x509_certificate(material.cert_pem)
    return material
