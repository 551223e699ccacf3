"""The Document Repository's settings (see :mod:`xds.settings` for how they are layered)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from repository.db import sqlite_url
from xds.security.gate import check_access_policy, consent_audit_path
from xds.settings import SettingsError
from xds.vocabulary import CONSENT_TOKEN_AUDIENCE

#: A repositoryUniqueId for a repository nobody configured: an OID under the UUID arc (2.25),
#: fixed so a default installation keeps its identity across restarts. Configure your own.
DEFAULT_REPOSITORY_ID: Final = "2.25.238961674467101617869808865231699281568"


@dataclass(frozen=True, kw_only=True)
class RepositorySettings:
    """Everything ``xds repository serve`` can be told; section ``[repository]``,
    env ``XDS_REPOSITORY_*``."""

    host: str = "127.0.0.1"
    port: int = 8020
    # The Document Registry's SOAP endpoint (ITI-42 out, ITI-18 for reconciliation).
    registry: str = "http://127.0.0.1:8010/registry"
    # XDSDocumentEntry.repositoryUniqueId of this repository (ITI TF-3 §4.2.3.2.18).
    repository_id: str = DEFAULT_REPOSITORY_ID
    # Where documents live (content-addressed); empty = <data_dir>/documents.
    store: Path | None = None
    # SQLAlchemy URL of the index; empty = SQLite (WAL) at <data_dir>/repository.sqlite.
    db: str | None = None
    data_dir: Path = Path("data")
    # Directory of the ebRS/IHE schemas, served at ?xsd= and referenced by the WSDL.
    schemas: Path | None = None
    # Seconds for each connect/read/write of the ITI-42 and ITI-18 calls to the registry.
    registry_timeout: float = 60.0
    # Sent as "Authorization: Bearer" on those calls: a registry in the consent policy shows its
    # services (this repository's reconciler) what is registered (its grant API key). Give it by
    # file or XDS_REPOSITORY_REGISTRY_KEY, not on a command line.
    registry_key: str | None = None
    # Largest ITI-41 request body (HTTP 413 beyond) and largest SOAP envelope held in memory.
    max_body_bytes: int = 8 << 30
    max_envelope_bytes: int = 64 << 20
    # After an ITI-42 call whose outcome is unknown (timeout, broken reply), how long the staged
    # documents wait before the reconciler asks the registry what it did with them.
    pending_grace: float = 300.0
    # How often the reconciler looks for staged documents whose submission was interrupted.
    reconcile_interval: float = 60.0
    workers: int = 1
    log_level: str = "info"
    # DESIGN §4: "open" (plain XDS.b: any admitted client retrieves anything) or "consent" (ITI-43
    # needs the registry's SAML assertion and returns only the documents of its scope).
    access_policy: str = "open"
    # The registry's token-signing certificate (PEM; its GET /consent/certificate), for "consent".
    trusted_token_cert: Path | None = None
    # This repository's name in the assertions' AudienceRestriction (the registry's token_audience).
    token_audience: str = CONSENT_TOKEN_AUDIENCE
    # DESIGN §4 "Abuse": the append-only audit log (JSON lines) of the consent gate; empty =
    # <data_dir>/audit/repository-consent.jsonl when access_policy is "consent" (see audit_path()).
    audit_log: Path | None = None
    # DESIGN §6 "TLS": HTTPS with this PEM certificate and key; with tls_client_ca, client
    # certificates signed by that CA are required (mutual TLS).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None

    def __post_init__(self) -> None:
        check_access_policy(self.access_policy, trusted_token_cert=self.trusted_token_cert)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingsError("tls_cert and tls_key go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise SettingsError("tls_client_ca needs tls_cert and tls_key")

    def registry_headers(self) -> dict[str, str]:
        """HTTP headers of the calls to the registry."""
        return {"authorization": f"Bearer {self.registry_key}"} if self.registry_key else {}

    def tls_options(self) -> dict[str, Path | bool | None]:
        """:func:`xds.http.server.run_server` keyword arguments for HTTPS (none set: plain HTTP)."""
        return {
            "ssl_certfile": self.tls_cert,
            "ssl_keyfile": self.tls_key,
            "ssl_ca_certs": self.tls_client_ca,
            "require_client_cert": self.tls_client_ca is not None,
        }

    def audit_path(self) -> Path | None:
        """Where the consent gate's audit goes (None under the open policy unless set)."""
        return consent_audit_path(self.access_policy, configured=self.audit_log, data_dir=self.data_dir, actor="repository")

    def database_url(self) -> str:
        return self.db or sqlite_url(self.data_dir)

    def store_dir(self) -> Path:
        return self.store if self.store is not None else self.data_dir / "documents"
