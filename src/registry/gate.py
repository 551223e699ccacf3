"""The consent gate in front of ITI-18 (DESIGN §4 "Gate"): one component that decides who is
asking and what they may see, wrapped around the stored-query handler when the registry runs the
``consent`` access policy. The stored-query code itself knows nothing of consent.

Who is asking, from the request:

* a SAML 2.0 assertion in the ``wsse:Security`` header (WSS SAML Token Profile 1.1 §3.3), issued
  by this registry's token endpoint: verified with this registry's own certificate, its audience
  and validity window; the grant it names must still be in force, and its scope is narrowed to
  what the grant permits now (a withdrawn exam disappears before the assertion expires);
* a UsernameToken (UsernameToken Profile 1.0 §3.1, PasswordText) whose Username is the access
  code and whose Password the PIN, presented through :meth:`GrantStore.present`, so lock-out,
  throttling and the presentation audit apply exactly as at the token endpoint;
* no token: a client certificate (mutual TLS) whose subject DN or SHA-256 fingerprint is on the
  ``trusted_institutions`` allow list sees everything (the ordering physician's institution);
  so does a service of the deployment presenting ``Authorization: Bearer <service key>`` (the
  registry's grant API key: the repositories' reconcilers must see what is registered, or they
  would discard documents that are); anyone else sees nothing (an empty Success).

With a grant, the query runs as usual, then only what the scope permits is kept: DocumentEntries
whose uniqueId is a released manifest or report of the grant's patient, the SubmissionSets and
Folders that hold such an entry, and Associations whose both ends are kept. A query for another
patient answers an empty Success: invisible, never forbidden, so nothing tells whether that
patient or those documents exist.

Faults (OASIS WSS SOAP Message Security 1.1 §12; SOAP 1.2 Part 1 §5.4.6, code ``env:Sender``
with the WSS fault as subcode):

====================================================  ===========================================
malformed Security header (no token, two tokens)      ``wsse:InvalidSecurity``
a token we do not take (PasswordDigest, other types)  ``wsse:UnsupportedSecurityToken``
assertion malformed, expired, not yet valid, for      ``wsse:InvalidSecurityToken``
another audience
assertion signature invalid or by another key         ``wsse:FailedCheck`` (WSS SAML Token Profile
                                                      1.1 §3.6)
code/PIN refused, locked, mistyped; grant revoked     ``wsse:FailedAuthentication``
or expired
====================================================  ===========================================

A header block with ``mustUnderstand`` that the registry does not process is refused earlier, by
the SOAP layer (``env:MustUnderstand`` with ``env:NotUnderstood``, SOAP 1.2 Part 1 §5.4.8).
Reasons name the class of problem, never the code, the PIN, or whether a grant exists.

Every gated transaction is an audit row in the grant store's audit table (action ``ITI-18``):
the grant id, or none with ``who=anonymous`` / ``who=institution:<DN>`` in the detail; the query
id; the outcome; the numbers of objects returned and withheld. Codes and PINs are never logged.

Public API::

    PeerCertificate(subject, sha256)
    tls_peer_certificate(request) -> PeerCertificate | None
    TrustedInstitutions(entries)            # subject DNs (RFC 4514) or SHA-256 fingerprints
        .match(peer) -> str | None
    ConsentGate(*, queries, grants, trusted_cert, audience, trusted_institutions=...,
                service_keys=(), peer_identity=tls_peer_certificate, clock=None, db_threads=2)
        .wrap(handler) -> handler
        .visible_objects(result, scope, conn) -> QueryResult
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeVar

import anyio
import anyio.to_thread
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from registry.grants import GrantError, GrantNotFound, GrantStore, Locked
from registry.iti18 import QueryResult, RegistryStoredQuery, TooManyResults
from registry.store import grants_schema as g
from registry.store import reader as sql
from registry.store import schema as t
from xds.errors import ErrorCode, RegistryError, XdsError
from xds.http.server import Handler, SoapRequest, SoapResponse
from xds.metadata.responses import build_adhoc_query_response
from xds.query import StoredQuery, parse_query
from xds.security.accesscode import AccessCodeError
from xds.security.gate import assertion_fault
from xds.security.saml import (
    GrantScope,
    InvalidAssertion,
    verify_assertion,
)
from xds.security.wss import SECURITY, SamlToken, UsernameToken, WsSecurityError, find_token
from xds.soap.fault import FaultCode, SoapFault
from xds.vocabulary import (
    NS_QUERY,
    NS_RIM,
    NS_SAML2,
    NS_SOAP12,
    NS_WSSE,
    SOAP12_ROLE_NEXT,
    SOAP12_ROLE_ULTIMATE_RECEIVER,
    WSSE_PASSWORD_TEXT,
    Action,
    AssociationType,
    WssFault,
)
from xds.xml import parse_xml, qname

__all__ = ["ConsentGate", "PeerCertificate", "TrustedInstitutions", "tls_peer_certificate"]

log = logging.getLogger(__name__)

AUDIT_ACTION: Final = "ITI-18"
#: The ``purpose`` of a UsernameToken presentation in the grant store's audit.
PRESENT_PURPOSE: Final = "iti18-username-token"

_QUERY = qname(NS_QUERY, "AdhocQueryRequest")
_OBJECT_LIST = qname(NS_RIM, "RegistryObjectList")
_OBJECT_REF = qname(NS_RIM, "ObjectRef")
_ASSERTION = qname(NS_SAML2, "Assertion")
_USERNAME_TOKEN = qname(NS_WSSE, "UsernameToken")
_PASSWORD = qname(NS_WSSE, "Password")
_ROLE = qname(NS_SOAP12, "role")
_OUR_ROLES: Final = frozenset({"", SOAP12_ROLE_NEXT, SOAP12_ROLE_ULTIMATE_RECEIVER})
# ITI TF-2a §3.18.4.1.2.3.7: the parameters that name the patient of a stored query.
_PATIENT_PARAMS: Final = (
    "$XDSDocumentEntryPatientId",
    "$XDSSubmissionSetPatientId",
    "$XDSFolderPatientId",
    "$patientId",
)
_CHUNK: Final = 500
_T = TypeVar("_T")
_RDN_SEPARATOR = re.compile(r"(?<!\\),")
_FINGERPRINT = re.compile(r"^(?:sha-?256:)?((?:[0-9a-f]{2}:?){31}[0-9a-f]{2})$", re.IGNORECASE)


# -- trusted institutions (mutual TLS) --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """The client certificate of a TLS connection: its subject (RFC 4514) and SHA-256 digest."""

    subject: str
    sha256: str


def _normal_dn(text: str) -> str:
    # RFC 4514 text of the parsed name, so spacing and escaping differences do not matter
    # ("CN=A, O=B" as people write it is "CN=A,O=B").
    parts = [p.strip() for p in _RDN_SEPARATOR.split(text.strip())]
    if not all(parts):
        raise ValueError(f"{text!r} is not a distinguished name")
    return x509.Name.from_rfc4514_string(",".join(parts)).rfc4514_string()


def tls_peer_certificate(request: SoapRequest) -> PeerCertificate | None:
    """The client certificate the TLS layer verified (``SoapRequest.tls_client_cert``), if any.

    The server requests one only when it is given a client CA (``ssl_ca_certs``), and the TLS
    handshake has already checked the chain; this reads its subject and digest.
    """
    pem = request.tls_client_cert
    if not pem:
        return None
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    der = cert.public_bytes(serialization.Encoding.DER)
    return PeerCertificate(subject=cert.subject.rfc4514_string(), sha256=hashlib.sha256(der).hexdigest())


class TrustedInstitutions:
    """The allow list of institutions that see everything without a token (DESIGN §4).

    Each entry is a certificate subject DN in RFC 4514 form (``CN=PACS,O=Hospital,C=CH``) or a
    SHA-256 certificate fingerprint (64 hex digits, colons and a ``sha256:`` prefix allowed). A
    fingerprint pins one certificate; a DN trusts whatever certificate with that subject the TLS
    client CA vouches for.
    """

    def __init__(self, entries: Iterable[str]) -> None:
        self._fingerprints: set[str] = set()
        self._subjects: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            match = _FINGERPRINT.match(entry)
            if match:
                self._fingerprints.add(match.group(1).replace(":", "").lower())
                continue
            try:
                self._subjects.add(_normal_dn(entry))
            except ValueError:
                raise ValueError(f"trusted institution {entry!r} is neither an RFC 4514 DN nor a SHA-256 fingerprint") from None

    def __bool__(self) -> bool:
        return bool(self._fingerprints or self._subjects)

    def match(self, peer: PeerCertificate | None) -> str | None:
        """The institution's subject when ``peer`` is trusted, else None."""
        if peer is None:
            return None
        if peer.sha256.lower() in self._fingerprints:
            return peer.subject
        try:
            subject = _normal_dn(peer.subject)
        except ValueError:
            return None
        return peer.subject if subject in self._subjects else None


# -- who is asking ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Caller:
    """The outcome of identification: a grant (with its scope), an institution, or nobody."""

    who: str
    grant_id: str | None = None
    scope: GrantScope | None = None
    institution: str | None = None


@dataclass(frozen=True, slots=True)
class _Answer:
    body: etree._Element
    outcome: str
    returned: int
    withheld: int


def _fault(subcode: str, reason: str) -> SoapFault:
    # WSS 1.1 §12: the security fault codes travel as the Subcode of env:Sender in SOAP 1.2.
    return SoapFault(FaultCode.SENDER, reason, subcode=subcode)


def _unsupported_token(headers: Sequence[etree._Element]) -> bool:
    """True when our Security header holds a token of a kind this registry does not take."""
    for block in headers:
        if block.tag != SECURITY or (block.get(_ROLE) or "").strip() not in _OUR_ROLES:
            continue
        children = [c for c in block if isinstance(c.tag, str)]
        for child in children:
            if child.tag == _USERNAME_TOKEN:
                password = child.find(_PASSWORD)
                kind = (password.get("Type") if password is not None else None) or WSSE_PASSWORD_TEXT
                if kind.strip() != WSSE_PASSWORD_TEXT:
                    return True
        if not any(c.tag in (_ASSERTION, _USERNAME_TOKEN) for c in children) and any(
            etree.QName(c).localname.endswith("Token") for c in children
        ):
            return True
    return False


def _patients(query: StoredQuery) -> set[str]:
    found: set[str] = set()
    for name in _PATIENT_PARAMS:
        value = query.params.get(name)
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, tuple):
            found.update(v for v in value if isinstance(v, str))
    return found


def _empty() -> etree._Element:
    # ITI TF-2a §3.18.4.1.3: no match is Success with an empty RegistryObjectList.
    return build_adhoc_query_response(objects=None, errors=[])


def _count_objects(body: etree._Element) -> int:
    object_list = body.find(_OBJECT_LIST)
    return 0 if object_list is None else sum(1 for c in object_list if isinstance(c.tag, str))


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


# -- what a scope lets its bearer see --------------------------------------------------------------
class _Visibility:
    """Decides, from the registry's tables, which objects a scope shows (memoised per query)."""

    def __init__(self, conn: Connection, scope: GrantScope) -> None:
        self.conn = conn
        self.scope = scope
        self._seen: dict[str, bool] = {}
        self._entries: set[str] = set()
        self._ends: dict[str, tuple[str, str]] = {}

    def _documents(self, uuids: Sequence[str]) -> set[str]:
        d = t.document_entry
        found: set[str] = set()
        for part in _chunks(uuids):
            for entry_uuid, unique_id, patient_id in self.conn.execute(
                select(d.c.entry_uuid, d.c.unique_id, d.c.patient_id).where(d.c.entry_uuid.in_(list(part)))
            ):
                found.add(entry_uuid)
                self._entries.add(entry_uuid)
                # DESIGN §4: only the grant patient's released manifests and their reports.
                self._seen[entry_uuid] = patient_id == self.scope.patient_id and self.scope.permits_document(unique_id)
        return found

    def _containers(self, uuids: Sequence[str]) -> set[str]:
        """SubmissionSets and Folders: shown when they hold (HasMember) a shown entry."""
        owners: dict[str, str] = {}
        for table in (t.submission_set, t.folder):
            for part in _chunks(uuids):
                for entry_uuid, patient_id in self.conn.execute(
                    select(table.c.entry_uuid, table.c.patient_id).where(table.c.entry_uuid.in_(list(part)))
                ):
                    owners[entry_uuid] = patient_id
        if not owners:
            return set()
        links = [
            (src, tgt)
            for part in _chunks(sorted(owners))
            for _, _, src, tgt in sql.associations_from(self.conn, list(part), types=[AssociationType.HAS_MEMBER])
        ]
        targets = sorted({tgt for _, tgt in links if tgt not in self._seen})
        if targets:
            self._documents(targets)
        holding = {src for src, tgt in links if tgt in self._entries and self._seen[tgt]}
        for uuid, patient_id in owners.items():
            self._seen[uuid] = uuid in holding and patient_id == self.scope.patient_id
        return set(owners)

    def _associations(self, uuids: Sequence[str]) -> set[str]:
        """Associations: shown when both their ends are shown (an end may be an association)."""
        a = t.association
        batch: dict[str, tuple[str, str]] = {}
        for part in _chunks(uuids):
            for entry_uuid, source, target in self.conn.execute(
                select(a.c.entry_uuid, a.c.source_uuid, a.c.target_uuid).where(a.c.entry_uuid.in_(list(part)))
            ):
                batch[entry_uuid] = (source, target)
        self._ends.update(batch)
        self.resolve({end for pair in batch.values() for end in pair if end not in self._ends})
        for uuid in batch:
            self._decide(uuid, set())
        return set(batch)

    def _decide(self, uuid: str, visiting: set[str]) -> bool:
        if uuid in self._seen:
            return self._seen[uuid]
        if uuid in visiting:
            return False  # a cycle of associations shows nothing
        visiting.add(uuid)
        shown = all(
            self._decide(end, visiting) if end in self._ends else self._seen.get(end, False) for end in self._ends[uuid]
        )
        self._seen[uuid] = shown
        return shown

    def resolve(self, uuids: Iterable[str]) -> None:
        pending = sorted({u for u in uuids if u not in self._seen and u not in self._ends})
        if not pending:
            return
        found = self._documents(pending)
        rest = [u for u in pending if u not in found]
        if rest:
            found |= self._containers(rest)
            rest = [u for u in rest if u not in found]
        if rest:
            found |= self._associations(rest)
        for uuid in pending:
            self._seen.setdefault(uuid, False)  # not in the registry: nothing to show

    def shown(self, uuid: str) -> bool:
        return self._seen.get(uuid, False)


# -- the gate ---------------------------------------------------------------------------------------
class ConsentGate:
    """Wraps the ITI-18 handler of a ``consent`` registry (see the module documentation)."""

    def __init__(
        self,
        *,
        queries: RegistryStoredQuery,
        grants: GrantStore,
        trusted_cert: bytes,
        audience: str,
        trusted_institutions: TrustedInstitutions | None = None,
        service_keys: Sequence[str] = (),
        peer_identity: Callable[[SoapRequest], PeerCertificate | None] = tls_peer_certificate,
        clock: Callable[[], datetime] | None = None,
        db_threads: int = 2,
    ) -> None:
        self.queries = queries
        self.grants = grants
        self.trusted_cert = trusted_cert
        self.audience = audience
        self.trusted_institutions = trusted_institutions or TrustedInstitutions(())
        self.service_keys = tuple(k.encode() for k in service_keys if k)
        self.peer_identity = peer_identity
        self.clock = clock or grants.clock
        self.limiter = anyio.CapacityLimiter(db_threads)

    def wrap(self, handler: Handler) -> Handler:
        """The gated handler: identification, then the scoped (or empty, or full) answer."""

        async def gated(request: SoapRequest) -> SoapResponse:
            return await self._handle(request, handler)

        gated.__qualname__ = f"ConsentGate({getattr(handler, '__qualname__', 'handler')})"
        setattr(gated, "consent_gate", self)
        return gated

    async def _run(self, fn: Callable[[], _T]) -> _T:
        return await anyio.to_thread.run_sync(fn, limiter=self.limiter)

    # -- the exchange --------------------------------------------------------------------------
    async def _handle(self, request: SoapRequest, handler: Handler) -> SoapResponse:
        client = request.client[0] if request.client else None
        try:
            caller = await self._identify(request, client)
        except SoapFault as fault:
            kind = (fault.subcode or "").rpartition("}")[2]
            await self._run(lambda: self._audit(client, None, "token", f"refused-{kind}", None, 0, 0))
            log.info("ITI-18 refused (%s) from %s: %s", kind, client, fault.reason)
            raise
        query: StoredQuery | None = None
        if request.body.tag == _QUERY:
            try:
                query = parse_query(request.body)
            except XdsError:
                query = None
        if query is None or caller.institution is not None:
            # A malformed request gets the stored-query code's own errors (they tell nothing of
            # the data); a trusted institution sees everything, as in the open policy.
            reply = await handler(request)
            outcome = "invalid-query" if query is None else "success"
            count = _count_objects(reply.body) if query is not None else 0
            await self._run(lambda: self._audit(client, caller.grant_id, caller.who, outcome, query, count, 0))
            return reply
        asked = query
        if caller.scope is None:
            answer = _Answer(_empty(), "empty-anonymous", 0, 0)
        else:
            scope = caller.scope
            answer = await self._run(lambda: self._scoped(asked, scope))
        await self._run(
            lambda: self._audit(client, caller.grant_id, caller.who, answer.outcome, asked, answer.returned, answer.withheld)
        )
        return SoapResponse(action=Action.ITI18_RESPONSE, body=answer.body)

    async def _identify(self, request: SoapRequest, client: str | None) -> _Caller:
        try:
            token = find_token(request.headers)
        except WsSecurityError as exc:
            if _unsupported_token(request.headers):
                raise _fault(WssFault.UNSUPPORTED_SECURITY_TOKEN, str(exc)) from None
            raise _fault(WssFault.INVALID_SECURITY, str(exc)) from None
        if isinstance(token, SamlToken):
            return await self._run(lambda: self._from_assertion(token))
        if isinstance(token, UsernameToken):
            return await self._run(lambda: self._from_username(token, client))
        institution = self.trusted_institutions.match(self.peer_identity(request)) if self.trusted_institutions else None
        if institution is not None:
            return _Caller(who=f"institution:{institution}", institution=institution)
        if self._is_service(request):
            return _Caller(who="service", institution="service")
        return _Caller(who="anonymous")

    def _is_service(self, request: SoapRequest) -> bool:
        """A service key in ``Authorization: Bearer``, compared in constant time with each."""
        if not self.service_keys:
            return False
        scheme, _, presented = request.http_headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return False
        candidate = presented.strip().encode()
        matched = False
        for key in self.service_keys:
            matched |= hmac.compare_digest(candidate, key)
        return matched

    def _from_assertion(self, token: SamlToken) -> _Caller:
        now = self.clock()
        try:
            verified = verify_assertion(token.assertion, trusted_cert=self.trusted_cert, audience=self.audience, now=now)
        except InvalidAssertion as exc:
            raise assertion_fault(exc) from None
        # The registry holds the grants, so it checks what a repository cannot: the grant is
        # still in force, and the scope is what the grant permits now.
        try:
            grant = self.grants.get(verified.grant_id)
        except GrantNotFound:
            raise _fault(WssFault.FAILED_AUTHENTICATION, "the grant behind the SAML assertion is not in force") from None
        if not grant.is_live(now) or grant.patient_id != verified.scope.patient_id:
            raise _fault(WssFault.FAILED_AUTHENTICATION, "the grant behind the SAML assertion is not in force")
        current = grant.scope(now)
        claimed = verified.scope
        scope = GrantScope(
            patient_id=current.patient_id,
            manifest_unique_ids=claimed.manifest_unique_ids & current.manifest_unique_ids,
            study_instance_uids=claimed.study_instance_uids & current.study_instance_uids,
            report_unique_ids=claimed.report_unique_ids & current.report_unique_ids,
        )
        return _Caller(who=f"grant:{grant.grant_id}", grant_id=grant.grant_id, scope=scope)

    def _from_username(self, token: UsernameToken, client: str | None) -> _Caller:
        now = self.clock()
        try:
            grant = self.grants.present(token.username, token.password, client_address=client, now=now, purpose=PRESENT_PURPOSE)
        except AccessCodeError as exc:
            raise _fault(WssFault.FAILED_AUTHENTICATION, str(exc)) from None
        except Locked as exc:
            raise _fault(WssFault.FAILED_AUTHENTICATION, str(exc)) from None
        except GrantError as exc:
            raise _fault(WssFault.FAILED_AUTHENTICATION, str(exc)) from None
        return _Caller(who=f"grant:{grant.grant_id}", grant_id=grant.grant_id, scope=grant.scope(now))

    # -- the scoped answer -----------------------------------------------------------------------
    def _scoped(self, query: StoredQuery, scope: GrantScope) -> _Answer:
        patients = _patients(query)
        if patients and scope.patient_id not in patients:
            return _Answer(_empty(), "empty-other-patient", 0, 0)
        try:
            try:
                total, kept = self._run_filtered(query, scope)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                log.warning("ITI-18 (gated): database connection lost; retrying once: %s", exc.orig)
                total, kept = self._run_filtered(query, scope)
        except TooManyResults:
            error = RegistryError(
                ErrorCode.TOO_MANY_RESULTS,
                f"{query.definition.name} matches more than {self.queries.max_results} objects; narrow the query",
            )
            return _Answer(build_adhoc_query_response(objects=None, errors=[error]), "too-many-results", 0, 0)
        except SQLAlchemyError:
            log.exception("ITI-18 (gated) database failure")
            error = RegistryError(ErrorCode.SQL_ERROR, "registry database error")
            return _Answer(build_adhoc_query_response(objects=None, errors=[error]), "database-error", 0, 0)
        rows = kept.objects()
        out = etree.Element(_OBJECT_LIST, nsmap={"rim": NS_RIM})
        for row in rows:
            if query.is_leaf_class:
                out.append(parse_xml(row.xml))
            else:
                etree.SubElement(out, _OBJECT_REF, id=row.entry_uuid)
        body = build_adhoc_query_response(objects=out, errors=[])
        return _Answer(body, "success", len(rows), total - len(rows))

    def _run_filtered(self, query: StoredQuery, scope: GrantScope) -> tuple[int, QueryResult]:
        with self.queries.engine.connect() as conn:
            result = self.queries.run(conn, query)
            return len(result), self.visible_objects(result, scope, conn)

    @staticmethod
    def visible_objects(result: QueryResult, scope: GrantScope, conn: Connection) -> QueryResult:
        """The part of ``result`` that ``scope`` shows; the rest is simply absent."""
        visibility = _Visibility(conn, scope)
        visibility.resolve(r.entry_uuid for r in result.objects())
        return QueryResult(
            submission_sets=[r for r in result.submission_sets if visibility.shown(r.entry_uuid)],
            documents=[r for r in result.documents if visibility.shown(r.entry_uuid)],
            folders=[r for r in result.folders if visibility.shown(r.entry_uuid)],
            associations=[r for r in result.associations if visibility.shown(r.entry_uuid)],
        )

    # -- audit ------------------------------------------------------------------------------------
    def _audit(
        self,
        client: str | None,
        grant_id: str | None,
        who: str,
        outcome: str,
        query: StoredQuery | None,
        returned: int,
        withheld: int,
    ) -> None:
        """One row in the grant store's audit table (DESIGN §6 "Audit"); never a code or PIN."""
        what = query.query_id if query is not None else "-"
        detail = f"who={who} query={what} returned={returned} withheld={withheld}"
        with self.grants.engine.begin() as conn:
            conn.execute(
                insert(g.consent_audit).values(
                    at=self.clock(),
                    grant_id=grant_id,
                    client_address=(client or None) and client[:64],
                    action=AUDIT_ACTION,
                    outcome=outcome[:32],
                    detail=detail[:256],
                )
            )
