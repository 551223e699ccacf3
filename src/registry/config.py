"""The Document Registry's settings (see :mod:`xds.settings` for how they are layered)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from registry.store.db import sqlite_url
from xds.settings import SettingsError
from xds.vocabulary import CONSENT_TOKEN_AUDIENCE


@dataclass(frozen=True, kw_only=True)
class RegistrySettings:
    """Everything ``xds registry serve`` can be told; section ``[registry]``, env ``XDS_REGISTRY_*``."""

    host: str = "127.0.0.1"
    port: int = 8010
    # SQLAlchemy URL; empty = SQLite (WAL) at <data_dir>/registry.sqlite.
    db: str | None = None
    data_dir: Path = Path("data")
    # Affinity-domain code set (codes.xml format); empty = codes are not checked.
    codes: Path | None = None
    # Directory of the ebRS/IHE schemas, served at ?xsd= and referenced by the WSDL.
    schemas: Path | None = None
    mllp_host: str = "127.0.0.1"
    # ITI-8 listener port; 0 disables the feed.
    mllp_port: int = 2575
    # ITI TF-2a §3.18.4.1.3: XDSTooManyResults above this many objects.
    max_results: int = 5000
    max_body_bytes: int = 64 * 1024 * 1024
    # Store extra (urn:) metadata and return it (else: warning XDSExtraMetadataNotSaved).
    store_extra_metadata: bool = True
    workers: int = 1
    log_level: str = "info"
    # DESIGN §4: "open" (plain XDS.b in an affinity domain) or "consent" (the token gate).
    access_policy: str = "open"
    # Bearer key of the grant API the Edge Server calls; empty = the grant API is off.
    grant_api_key: str | None = None
    # Lifetime of the SAML assertions the token endpoint issues.
    token_lifetime_s: int = 300
    # PEM key and certificate that sign assertions; empty = generated once under data_dir/keys.
    signing_key: Path | None = None
    signing_cert: Path | None = None
    # Audience (SAML Core §2.5.1.4) and Issuer of the assertions: the affinity domain's services.
    token_audience: str = CONSENT_TOKEN_AUDIENCE
    token_issuer: str = "urn:imageshare:xds:registry"
    # DESIGN §4: institutions that see everything without a token in the consent policy, by the
    # client certificate of a mutual-TLS connection: subject DNs (RFC 4514) or SHA-256
    # fingerprints (comma-separated in the environment).
    trusted_institutions: tuple[str, ...] = ()
    # HTTPS: the server's PEM certificate and key; with tls_client_ca, client certificates signed
    # by that CA are requested and verified (and can be matched against trusted_institutions).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None

    def __post_init__(self) -> None:
        if self.access_policy not in ("open", "consent"):
            raise SettingsError(f"access_policy must be 'open' or 'consent', not {self.access_policy!r}")
        if self.token_lifetime_s <= 0:
            raise SettingsError("token_lifetime_s must be a positive number of seconds")

    def database_url(self) -> str:
        return self.db or sqlite_url(self.data_dir)
