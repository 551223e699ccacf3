"""What the portal asks of the affinity domain, in one seam: the registry's self-service API
(:mod:`consumer.self_service`) and the consumer flow (:mod:`consumer.fetch`: ITI-18, ITI-43,
RAD-69), every call carrying the session's consent token.

Views depend on the :class:`PortalBackend` protocol only, so their tests can stand in a fake;
:class:`NetworkBackend` is the real one. Every method blocks: views call them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from consumer.fetch import DocumentRef, Exam, FetchOptions, FetchSummary, SecuredSoapClient, fetch, find_exams
from consumer.fetch import retrieve_documents
from consumer.self_service import NewShare, SelfGrant, SelfServiceClient, Share
from consumer.token import ConsentToken
from consumer.web.settings import PortalSettings

__all__ = ["NetworkBackend", "PortalBackend"]


class PortalBackend(Protocol):
    """The calls the portal makes (raising the errors :mod:`consumer.self_service`,
    :mod:`consumer.token` and :mod:`consumer.fetch` define)."""

    def sign_in(self, code: str, pin: str, *, client_address: str | None = None) -> ConsentToken: ...

    def activate(self, code: str, pin: str, *, client_address: str | None = None) -> None: ...

    def grant(self, token: ConsentToken) -> SelfGrant: ...

    def refresh(self, token: ConsentToken) -> ConsentToken: ...

    def shares(self, token: ConsentToken) -> list[Share]: ...

    def create_share(self, token: ConsentToken, *, label: str, study_uids: Sequence[str], expires: datetime) -> NewShare: ...

    def extend_share(self, token: ConsentToken, grant_id: str, *, expires: datetime) -> Share: ...

    def revoke_share(self, token: ConsentToken, grant_id: str) -> int: ...

    def exams(self, token: ConsentToken, patient_id: str) -> list[Exam]: ...

    def documents(self, token: ConsentToken, documents: Sequence[DocumentRef], directory: Path) -> dict[str, Path]: ...

    def fetch_study(self, token: ConsentToken, patient_id: str, study_uid: str, out: Path) -> FetchSummary: ...


class NetworkBackend:
    """The real backend: HTTP to the registry, SOAP to the registry, repository and sources."""

    def __init__(self, settings: PortalSettings) -> None:
        self.settings = settings
        self.self_service = SelfServiceClient(
            settings.registry_url, timeout=settings.timeout, verify=settings.verify, cert=settings.cert
        )

    def sign_in(self, code: str, pin: str, *, client_address: str | None = None) -> ConsentToken:
        return self.self_service.sign_in(code, pin, client_address=client_address)

    def activate(self, code: str, pin: str, *, client_address: str | None = None) -> None:
        self.self_service.activate(code, pin, client_address=client_address)

    def grant(self, token: ConsentToken) -> SelfGrant:
        return self.self_service.grant(token)

    def refresh(self, token: ConsentToken) -> ConsentToken:
        return self.self_service.refresh(token)

    def shares(self, token: ConsentToken) -> list[Share]:
        return self.self_service.shares(token)

    def create_share(self, token: ConsentToken, *, label: str, study_uids: Sequence[str], expires: datetime) -> NewShare:
        return self.self_service.create_share(token, label=label, study_uids=study_uids, expires=expires)

    def extend_share(self, token: ConsentToken, grant_id: str, *, expires: datetime) -> Share:
        return self.self_service.extend_share(token, grant_id, expires=expires)

    def revoke_share(self, token: ConsentToken, grant_id: str) -> int:
        return self.self_service.revoke_share(token, grant_id)

    def _client(self, endpoint: str, token: ConsentToken, *, spool: Path | None = None) -> SecuredSoapClient:
        s = self.settings
        return SecuredSoapClient(
            endpoint, security=token.security_header, timeout=s.timeout, verify=s.verify, cert=s.cert, spool_dir=spool
        )

    def exams(self, token: ConsentToken, patient_id: str) -> list[Exam]:
        """ITI-18: the released exams the token shows, with their report documents."""
        with self._client(self.settings.registry_url, token) as client:
            return find_exams(client, patient_id)

    def documents(self, token: ConsentToken, documents: Sequence[DocumentRef], directory: Path) -> dict[str, Path]:
        """ITI-43 into ``directory``; the documents that came (hash-checked)."""
        directory.mkdir(parents=True, exist_ok=True)
        with self._client(self.settings.repository_url, token, spool=directory) as client:
            files, _problems = retrieve_documents(client, documents, directory)
        return files

    def fetch_study(self, token: ConsentToken, patient_id: str, study_uid: str, out: Path) -> FetchSummary:
        """The whole consumer flow for one study into ``out`` (verified DICOM files)."""
        s = self.settings
        options = FetchOptions(
            registry=s.registry_url,
            repository=s.repository_url,
            patient_id=patient_id,
            out=out,
            sources=s.sources,
            studies=(study_uid,),
            timeout=s.timeout,
            verify=s.verify,
            cert=s.cert,
            fsync=False,
            security=token.security_header,
        )
        return fetch(options)
