"""The consent gate in front of ITI-18 (DESIGN §4), over a real loopback HTTP server on SQLite and
PostgreSQL: documents registered for two patients, a grant enrolled through the grant API, a
token from /consent/token, then stored queries that see exactly the released exams' manifest and
report (assertion or UsernameToken); every refusal a precise WS-Security fault; another patient
and no token an empty Success; open mode untouched; an audit row per gated transaction; mutual
TLS for trusted institutions; and nothing logged that carries a code or a PIN."""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree
from sqlalchemy import Engine

from registry.app import build_registry_app
from registry.config import RegistrySettings
from registry.gate import AUDIT_ACTION, PRESENT_PURPOSE, PeerCertificate, TrustedInstitutions
from registry.grants import AuditRecord, GrantStore
from registry.iti42 import DocumentRegistry
from registry.patients import Patient
from registry.store.db import make_engine
from tests.support import factory as f
from tests.support.registry import Clock
from xds.http.client import SoapClient
from xds.http.server import ServerThread
from xds.metadata.ebrim import decode_registry_object_list, encode_submit_objects_request
from xds.metadata.model import Submission
from xds.metadata.responses import parse_adhoc_query_response, parse_registry_response
from xds.query import build_adhoc_query
from xds.security.saml import issue_assertion
from xds.security.wss import SamlToken, UsernameToken, security_header
from xds.soap.fault import FaultCode, SoapFault
from xds.vocabulary import (
    NS_SAML2,
    NS_SOAP12,
    NS_WSSE,
    WSSE_PASSWORD_DIGEST,
    Action,
    ResponseStatus,
    Status,
    WssFault,
)
from xds.xml import parse_xml

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_ALL = "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
GET_SS_AND_CONTENTS = "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83"
FIND_SUBMISSION_SETS = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"
API_KEY = "gate-test-grant-api-key-0123456789"
AUDIENCE = "urn:test:gate-audience"
PIN = "864209"
LIFETIME = timedelta(hours=6)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


@dataclass
class World:
    """What was registered: patient A's three exams (released, later, unshared) and patient B's."""

    pid_a: str
    pid_b: str
    released: Submission  # SS1: manifest M1, report R1, an unshared document X; a folder holds all
    later: Submission  # SS2: manifest M2 and report R2, released 72 h after enrolment
    unshared: Submission  # SS3: a manifest the patient did not share
    other: Submission  # SS4: patient B

    @property
    def m1(self) -> str:
        return self.released.document_entries[0].unique_id

    @property
    def r1(self) -> str:
        return self.released.document_entries[1].unique_id

    @property
    def m2(self) -> str:
        return self.later.document_entries[0].unique_id

    @property
    def r2(self) -> str:
        return self.later.document_entries[1].unique_id


@dataclass
class Live:
    url: str
    settings: RegistrySettings
    engine: Engine
    clock: Clock
    world: World | None = None
    code: str = ""
    grant_id: str = ""
    secrets_used: list[str] = field(default_factory=list)

    @property
    def soap_url(self) -> str:
        return self.url + "/registry"

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"authorization": f"Bearer {API_KEY}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def token(self, code: str, pin: str) -> bytes:
        answer = httpx.post(self.url + "/consent/token", data={"code": code, "pin": pin}, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.content

    def query(
        self,
        query_id: str,
        params: dict[str, object],
        *,
        token: SamlToken | UsernameToken | None = None,
        headers: list[etree._Element] | None = None,
        return_type: str = "LeafClass",
        source: str = "127.0.0.1",
    ) -> Answer:
        extra = list(headers or [])
        if token is not None:
            extra.append(security_header(token))
        request = build_adhoc_query(query_id, params, return_type=return_type, validate=False)
        with SoapClient(self.soap_url, timeout=30, transport=httpx.HTTPTransport(local_address=source)) as client:
            reply = client.call(Action.ITI18, request, extra_headers=extra)
        assert reply.action == Action.ITI18_RESPONSE
        return Answer(parse_adhoc_query_response(reply.body))

    def fault(self, query_id: str, params: dict[str, object], **kwargs: object) -> SoapFault:
        with pytest.raises(SoapFault) as raised:
            self.query(query_id, params, **kwargs)  # type: ignore[arg-type]
        return raised.value

    def audit(self) -> list[AuditRecord]:
        return GrantStore(self.engine).audit_records()

    def gated(self) -> list[AuditRecord]:
        return [r for r in self.audit() if r.action == AUDIT_ACTION]


class Answer:
    def __init__(self, parsed: object) -> None:
        self.status: str = parsed.status  # type: ignore[attr-defined]
        self.errors = list(parsed.errors)  # type: ignore[attr-defined]
        self.element: etree._Element | None = parsed.object_list  # type: ignore[attr-defined]

    @property
    def ok_and_empty(self) -> bool:
        return self.status == ResponseStatus.SUCCESS and not self.errors and self.ids() == []

    def ids(self, local: str | None = None) -> list[str]:
        if self.element is None:
            return []
        return [c.get("id") for c in self.element if isinstance(c.tag, str) and (local is None or etree.QName(c).localname == local)]

    def unique_ids(self) -> set[str]:
        assert self.element is not None
        return {d.unique_id for d in decode_registry_object_list(self.element).submission.document_entries}

    def submission(self) -> Submission:
        assert self.element is not None
        return decode_registry_object_list(self.element).submission


def _register(live: Live, sub: Submission) -> None:
    with SoapClient(live.soap_url, timeout=30) as client:
        reply = client.call(Action.ITI42, encode_submit_objects_request(sub))
    result = parse_registry_response(reply.body)
    assert (result.status, list(result.errors)) == (ResponseStatus.SUCCESS, [])


def _exam(pid: str, entries: int, *, folder: bool = False) -> Submission:
    sub = f.submission(pid, entries=entries, with_folder=folder)
    sub.document_entries[0].format_code = f.FORMAT_KOS
    sub.document_entries[0].class_code = f.CLASS_IMAGES
    return sub


def _populate(live: Live) -> World:
    registry = DocumentRegistry(live.engine)
    pid_a, pid_b = f.patient_id(), f.patient_id()
    for pid in (pid_a, pid_b):
        registry.patients.add_or_update(Patient(patient_id=pid))
    world = World(
        pid_a=pid_a,
        pid_b=pid_b,
        released=_exam(pid_a, 3, folder=True),
        later=_exam(pid_a, 2),
        unshared=_exam(pid_a, 1),
        other=_exam(pid_b, 2),
    )
    for sub in (world.released, world.later, world.unshared, world.other):
        _register(live, sub)
    now = live.clock.now
    body = {
        "patient_id": pid_a,
        "pin": PIN,
        "expires": _iso(now + timedelta(days=30)),
        "exams": [
            {"study_uid": "1.2.7.1", "manifest_unique_id": world.m1, "report_unique_ids": [world.r1],
             "release_time": _iso(now - timedelta(hours=1))},
            {"study_uid": "1.2.7.2", "manifest_unique_id": world.m2, "report_unique_ids": [world.r2],
             "release_time": _iso(now + timedelta(hours=72))},
        ],
    }
    created = live.api("POST", "/consent/grants", json=body)
    assert created.status_code == 201, created.text
    live.code, live.grant_id = created.json()["access_code"], created.json()["grant"]["grant_id"]
    live.secrets_used += [live.code, PIN]
    live.world = world
    return world


def _start(registry_db_url: str, tmp_path: Path, clock: Clock, **options: object) -> tuple[RegistrySettings, ServerThread]:
    settings = RegistrySettings(
        db=registry_db_url,
        data_dir=tmp_path,
        mllp_port=0,
        grant_api_key=API_KEY,
        token_lifetime_s=int(LIFETIME.total_seconds()),
        token_audience=AUDIENCE,
        **options,  # type: ignore[arg-type]
    )
    return settings, ServerThread(build_registry_app(settings, clock=clock))


@pytest.fixture
def live(registry_db_url: str, tmp_path: Path) -> Iterator[Live]:
    clock = Clock()
    engine = make_engine(registry_db_url)
    settings, server = _start(registry_db_url, tmp_path, clock, access_policy="consent")
    with server:
        state = Live(server.url, settings, engine, clock)
        _populate(state)
        yield state
    engine.dispose()


def _find(pid: str) -> dict[str, object]:
    return {"$XDSDocumentEntryPatientId": pid, "$XDSDocumentEntryStatus": [Status.APPROVED]}


def _get_all(pid: str) -> dict[str, object]:
    return {
        "$patientId": pid,
        "$XDSDocumentEntryStatus": [Status.APPROVED],
        "$XDSSubmissionSetStatus": [Status.APPROVED],
        "$XDSFolderStatus": [Status.APPROVED],
    }


def _assertion(live: Live) -> SamlToken:
    return SamlToken(parse_xml(live.token(live.code, PIN)))


def _signing(live: Live) -> tuple[bytes, bytes]:
    keys = live.settings.data_dir / "keys"
    return (keys / "token-signing.key.pem").read_bytes(), (keys / "token-signing.cert.pem").read_bytes()


# -- what a valid token sees ---------------------------------------------------------------------
def test_assertion_sees_exactly_the_released_exam(live: Live) -> None:
    w = live.world
    assert w is not None
    token = _assertion(live)

    found = live.query(FIND_DOCUMENTS, _find(w.pid_a), token=token)
    assert found.status == ResponseStatus.SUCCESS and found.errors == []
    assert found.unique_ids() == {w.m1, w.r1}

    # The submission set of the released exam: the SS, M1, R1, the folder and only the
    # associations whose both ends are shown; the unshared document X is simply absent.
    contents = live.query(GET_SS_AND_CONTENTS, {"$XDSSubmissionSetUniqueId": w.released.submission_sets[0].unique_id}, token=token)
    sub = contents.submission()
    assert {d.unique_id for d in sub.document_entries} == {w.m1, w.r1}
    assert [s.unique_id for s in sub.submission_sets] == [w.released.submission_sets[0].unique_id]
    assert len(sub.folders) == 1
    shown = {o for o in contents.ids() if o not in contents.ids("Association")}
    assert len(contents.ids("Association")) == 7  # SS->M1, SS->R1, SS->FD, FD->M1, FD->R1, SS->(FD->M1), SS->(FD->R1)
    for assoc in sub.associations:
        assert assoc.source in shown | set(contents.ids("Association")) and assoc.target in shown | set(contents.ids("Association"))
    hidden = w.released.document_entries[2].unique_id
    assert hidden not in etree.tostring(contents.element).decode()

    # The later exam's submission set holds nothing released yet: invisible.
    assert live.query(GET_SS_AND_CONTENTS, {"$XDSSubmissionSetUniqueId": w.later.submission_sets[0].unique_id}, token=token).ok_and_empty

    everything = live.query(GET_ALL, _get_all(w.pid_a), token=token)
    sub = everything.submission()
    assert {d.unique_id for d in sub.document_entries} == {w.m1, w.r1}
    assert [s.unique_id for s in sub.submission_sets] == [w.released.submission_sets[0].unique_id]
    assert len(sub.folders) == 1 and len(sub.associations) == 7

    sets = live.query(FIND_SUBMISSION_SETS, {"$XDSSubmissionSetPatientId": w.pid_a, "$XDSSubmissionSetStatus": [Status.APPROVED]}, token=token)
    assert [s.unique_id for s in sets.submission().submission_sets] == [w.released.submission_sets[0].unique_id]

    # ObjectRef: the entryUUIDs of exactly M1 and R1.
    refs = live.query(FIND_DOCUMENTS, _find(w.pid_a), token=token, return_type="ObjectRef")
    leaf_uuids = {d.id for d in found.submission().document_entries}
    assert set(refs.ids("ObjectRef")) == leaf_uuids and len(leaf_uuids) == 2
    all_refs = live.query(GET_ALL, _get_all(w.pid_a), token=token, return_type="ObjectRef")
    assert set(all_refs.ids("ObjectRef")) == set(everything.ids())

    # GetDocuments by uniqueId: only what the scope permits, whoever the documents belong to.
    by_id = live.query(GET_DOCUMENTS, {"$XDSDocumentEntryUniqueId": [w.m1, w.m2, w.unshared.document_entries[0].unique_id, w.other.document_entries[0].unique_id]}, token=token)
    assert by_id.unique_ids() == {w.m1}

    # Seventy-three hours on, the old assertion has expired; a new one also sees the second exam.
    live.clock.advance(hours=73)
    _is_fault(live.fault(FIND_DOCUMENTS, _find(w.pid_a), token=token), WssFault.INVALID_SECURITY_TOKEN, "expired")
    fresh = _assertion(live)
    assert live.query(FIND_DOCUMENTS, _find(w.pid_a), token=fresh).unique_ids() == {w.m1, w.r1, w.m2, w.r2}
    # The registry checks the grant behind an assertion: a withdrawn exam vanishes at once.
    assert live.api("DELETE", f"/consent/grants/{live.grant_id}/exams/1.2.7.2").status_code == 200
    assert live.query(FIND_DOCUMENTS, _find(w.pid_a), token=fresh).unique_ids() == {w.m1, w.r1}

    outcomes = [(r.grant_id, r.outcome) for r in live.gated()]
    success = (live.grant_id, "success")
    assert outcomes == [success] * 8 + [(None, "refused-InvalidSecurityToken"), success, success]
    first = live.gated()[0]
    assert first.detail == f"who=grant:{live.grant_id} query={FIND_DOCUMENTS} returned=2 withheld=4"


def test_username_token_sees_the_same(live: Live) -> None:
    w = live.world
    assert w is not None
    token = UsernameToken(f"{live.code[:4]}-{live.code[4:]}", PIN)
    assert live.query(FIND_DOCUMENTS, _find(w.pid_a), token=token).unique_ids() == {w.m1, w.r1}
    refs = live.query(GET_ALL, _get_all(w.pid_a), token=token, return_type="ObjectRef")
    assert len(refs.ids("ObjectRef")) == 1 + 1 + 2 + 7  # SS, FD, M1, R1, 7 associations
    records = live.audit()
    assert [(r.action, r.outcome) for r in records if r.action in (PRESENT_PURPOSE, AUDIT_ACTION)] == [
        (PRESENT_PURPOSE, "success"),
        (AUDIT_ACTION, "success"),
        (PRESENT_PURPOSE, "success"),
        (AUDIT_ACTION, "success"),
    ]


def test_other_patient_and_no_token_see_nothing(live: Live) -> None:
    w = live.world
    assert w is not None
    token = _assertion(live)
    assert live.query(FIND_DOCUMENTS, _find(w.pid_b), token=token).ok_and_empty
    assert live.query(GET_ALL, _get_all(w.pid_b), token=token, return_type="ObjectRef").ok_and_empty
    # The same answer for a patient that does not exist at all: nothing tells them apart.
    assert live.query(FIND_DOCUMENTS, _find(f.patient_id()), token=token).ok_and_empty
    assert live.query(FIND_DOCUMENTS, _find(w.pid_a)).ok_and_empty
    assert live.query(GET_ALL, _get_all(w.pid_b)).ok_and_empty
    # A malformed query still gets the stored query's own error, with or without a token.
    missing = live.query(FIND_DOCUMENTS, {"$XDSDocumentEntryStatus": [Status.APPROVED]})
    assert missing.status == ResponseStatus.FAILURE and [e.code_text for e in missing.errors] == ["XDSStoredQueryMissingParam"]
    rows = live.gated()
    assert [(r.grant_id, r.outcome) for r in rows] == [
        (live.grant_id, "empty-other-patient"),
        (live.grant_id, "empty-other-patient"),
        (live.grant_id, "empty-other-patient"),
        (None, "empty-anonymous"),
        (None, "empty-anonymous"),
        (None, "invalid-query"),
    ]
    assert rows[3].detail == f"who=anonymous query={FIND_DOCUMENTS} returned=0 withheld=0"
    assert rows[3].client_address == "127.0.0.1"


# -- refusals --------------------------------------------------------------------------------------
def _is_fault(fault: SoapFault, subcode: str, reason: str) -> None:
    assert fault.code is FaultCode.SENDER and fault.http_status == 400
    assert fault.subcode == subcode, fault
    assert reason in fault.reason


def test_wrong_pin_is_counted_then_the_code_locks(live: Live) -> None:
    w = live.world
    assert w is not None
    for i in range(5):
        fault = live.fault(FIND_DOCUMENTS, _find(w.pid_a), token=UsernameToken(live.code, "000000"), source=f"127.0.0.{10 + i}")
        _is_fault(fault, WssFault.FAILED_AUTHENTICATION, "not accepted")
    # Fifth failure locked the code: even the right PIN is refused now, from a fresh address.
    fault = live.fault(FIND_DOCUMENTS, _find(w.pid_a), token=UsernameToken(live.code, PIN), source="127.0.0.30")
    _is_fault(fault, WssFault.FAILED_AUTHENTICATION, "too many failed attempts")
    typo = live.code[:2] + str((int(live.code[2]) + 1) % 10) + live.code[3:]
    live.secrets_used.append(typo)
    fault = live.fault(FIND_DOCUMENTS, _find(w.pid_a), token=UsernameToken(typo, PIN), source="127.0.0.31")
    _is_fault(fault, WssFault.FAILED_AUTHENTICATION, "mistyped")
    presented = [r.outcome for r in live.audit() if r.action == PRESENT_PURPOSE]
    assert presented == ["wrong-pin"] * 5 + ["locked", "malformed"]
    gated = [r.outcome for r in live.gated()]
    assert gated == ["refused-FailedAuthentication"] * 7
    # The lock lapses (one minute) and the right PIN works again.
    live.clock.advance(minutes=2)
    assert live.query(FIND_DOCUMENTS, _find(w.pid_a), token=UsernameToken(live.code, PIN), source="127.0.0.32").unique_ids() == {w.m1, w.r1}


def test_expired_and_revoked_grants(live: Live) -> None:
    w = live.world
    assert w is not None
    short = live.api(
        "POST",
        "/consent/grants",
        json={"patient_id": w.pid_a, "pin": "135792", "expires": _iso(live.clock.now + timedelta(hours=1)),
              "exams": [{"study_uid": "1.2.7.1", "manifest_unique_id": w.m1, "release_time": _iso(live.clock.now)}]},
    ).json()
    live.secrets_used += [short["access_code"], "135792"]
    assertion = SamlToken(parse_xml(live.token(short["access_code"], "135792")))
    assert live.query(FIND_DOCUMENTS, _find(w.pid_a), token=assertion).unique_ids() == {w.m1}
    # Two hours on the grant has expired; its assertion (valid six hours) no longer opens anything.
    live.clock.advance(hours=2)
    _is_fault(live.fault(FIND_DOCUMENTS, _find(w.pid_a), token=assertion), WssFault.FAILED_AUTHENTICATION, "not in force")
    _is_fault(
        live.fault(FIND_DOCUMENTS, _find(w.pid_a), token=UsernameToken(short["access_code"], "135792")),
        WssFault.FAILED_AUTHENTICATION,
        "not accepted",
    )
    # Revocation: the main grant's assertion and its code stop working at once.
    token = _assertion(live)
    assert live.query(FIND_DOCUMENTS, _find(w.pid_a), token=token).unique_ids() == {w.m1, w.r1}
    assert live.api("POST", f"/consent/grants/{live.grant_id}/revoke").json() == {"revoked": 1}
    _is_fault(live.fault(FIND_DOCUMENTS, _find(w.pid_a), token=token), WssFault.FAILED_AUTHENTICATION, "not in force")
    _is_fault(
        live.fault(FIND_DOCUMENTS, _find(w.pid_a), token=UsernameToken(live.code, PIN), source="127.0.0.40"),
        WssFault.FAILED_AUTHENTICATION,
        "not accepted",
    )
    # A revoked grant's code is no live grant's code any more: refused like an unknown one.
    assert [r.outcome for r in live.audit() if r.action == PRESENT_PURPOSE] == ["expired", "unknown-code"]
    assert [r.outcome for r in live.gated()] == [
        "success",
        "refused-FailedAuthentication",
        "refused-FailedAuthentication",
        "success",
        "refused-FailedAuthentication",
        "refused-FailedAuthentication",
    ]


def test_bad_assertions_are_faults(live: Live) -> None:
    w = live.world
    assert w is not None
    key_pem, cert_pem = _signing(live)
    good = _assertion(live)

    # Tampered: one more manifest written into the signed attribute list.
    tampered = copy.deepcopy(good.assertion)
    value = tampered.find(f".//{{{NS_SAML2}}}AttributeValue")
    assert value is not None
    value.addnext(copy.deepcopy(value))
    value.getnext().text = w.unshared.document_entries[0].unique_id  # type: ignore[union-attr]
    _is_fault(live.fault(FIND_DOCUMENTS, _find(w.pid_a), token=SamlToken(tampered)), WssFault.FAILED_CHECK, "signature")

    # Signed by the registry's own key, but for another audience.
    grant = GrantStore(live.engine).get(live.grant_id)
    foreign = issue_assertion(
        issuer="urn:x", subject=live.grant_id, audience="urn:another:audience", scope=grant.scope(live.clock.now),
        now=live.clock.now, lifetime=LIFETIME, key_pem=key_pem, cert_pem=cert_pem,
    )
    _is_fault(live.fault(FIND_DOCUMENTS, _find(w.pid_a), token=SamlToken(parse_xml(foreign))), WssFault.INVALID_SECURITY_TOKEN, "audience")

    # Signed by someone else's key.
    from xds.security.keys import generate_signing_material

    stranger = generate_signing_material(common_name="stranger")
    forged = issue_assertion(
        issuer="urn:x", subject=live.grant_id, audience=AUDIENCE, scope=grant.scope(live.clock.now),
        now=live.clock.now, lifetime=LIFETIME, key_pem=stranger.key_pem, cert_pem=stranger.cert_pem,
    )
    _is_fault(live.fault(FIND_DOCUMENTS, _find(w.pid_a), token=SamlToken(parse_xml(forged))), WssFault.FAILED_CHECK, "signature")

    # Unsigned: there is no signature to check (SignatureInvalid, so FailedCheck).
    unsigned = copy.deepcopy(good.assertion)
    for sig in unsigned.findall("{http://www.w3.org/2000/09/xmldsig#}Signature"):
        unsigned.remove(sig)
    _is_fault(live.fault(FIND_DOCUMENTS, _find(w.pid_a), token=SamlToken(unsigned)), WssFault.FAILED_CHECK, "signature")

    # Expired: seven hours later (lifetime six).
    live.clock.advance(hours=7)
    _is_fault(live.fault(FIND_DOCUMENTS, _find(w.pid_a), token=good), WssFault.INVALID_SECURITY_TOKEN, "expired")

    # No fault reason or audit row carries an assertion's content or the grant's scope.
    gated = live.gated()
    assert [r.outcome for r in gated] == [
        "refused-FailedCheck",
        "refused-InvalidSecurityToken",
        "refused-FailedCheck",
        "refused-FailedCheck",
        "refused-InvalidSecurityToken",
    ]
    assert all(w.m1 not in (r.detail or "") for r in gated)


def _security(*children: etree._Element, must_understand: bool = True) -> etree._Element:
    block = etree.Element(f"{{{NS_WSSE}}}Security", nsmap={"wsse": NS_WSSE})
    if must_understand:
        block.set(f"{{{NS_SOAP12}}}mustUnderstand", "true")
    for child in children:
        block.append(child)
    return block


def test_security_headers_we_cannot_use(live: Live) -> None:
    w = live.world
    assert w is not None
    # An empty Security header: nothing to authenticate with.
    _is_fault(live.fault(FIND_DOCUMENTS, _find(w.pid_a), headers=[_security()]), WssFault.INVALID_SECURITY, "no SAML assertion")
    # A PasswordDigest: a token kind this registry does not take (it keeps only PIN hashes).
    token = etree.Element(f"{{{NS_WSSE}}}UsernameToken")
    etree.SubElement(token, f"{{{NS_WSSE}}}Username").text = live.code
    etree.SubElement(token, f"{{{NS_WSSE}}}Password", Type=WSSE_PASSWORD_DIGEST).text = "abc="
    _is_fault(live.fault(FIND_DOCUMENTS, _find(w.pid_a), headers=[_security(token)]), WssFault.UNSUPPORTED_SECURITY_TOKEN, "PasswordDigest")
    # A binary security token (X.509, Kerberos...): unsupported.
    binary = etree.Element(f"{{{NS_WSSE}}}BinarySecurityToken")
    binary.text = "AAAA"
    _is_fault(live.fault(FIND_DOCUMENTS, _find(w.pid_a), headers=[_security(binary)]), WssFault.UNSUPPORTED_SECURITY_TOKEN, "")
    # A mustUnderstand header block the registry does not process at all: env:MustUnderstand.
    strange = etree.Element("{urn:example:policy}Obligation")
    strange.set(f"{{{NS_SOAP12}}}mustUnderstand", "true")
    with pytest.raises(SoapFault) as raised:
        live.query(FIND_DOCUMENTS, _find(w.pid_a), headers=[strange], token=_assertion(live))
    assert raised.value.code is FaultCode.MUST_UNDERSTAND and "Obligation" in raised.value.reason
    assert [r.outcome for r in live.gated()] == [
        "refused-InvalidSecurity",
        "refused-UnsupportedSecurityToken",
        "refused-UnsupportedSecurityToken",
    ]


# -- the policies ----------------------------------------------------------------------------------
def _iti18_handler(app: object) -> object:
    for route in app.routes:  # type: ignore[attr-defined]
        service = getattr(getattr(route, "endpoint", None), "service", None)
        if service is not None and Action.ITI18 in service.handlers:
            return service.handlers[Action.ITI18]
    raise AssertionError("no ITI-18 endpoint")


def test_open_mode_has_no_gate(registry_db_url: str, tmp_path: Path) -> None:
    clock = Clock()
    engine = make_engine(registry_db_url)
    settings, server = _start(registry_db_url, tmp_path / "open", clock)
    assert settings.access_policy == "open"
    assert not hasattr(_iti18_handler(build_registry_app(settings, clock=clock)), "consent_gate")
    consent = RegistrySettings(db=registry_db_url, data_dir=tmp_path / "consent", mllp_port=0, access_policy="consent")
    assert hasattr(_iti18_handler(build_registry_app(consent, clock=clock)), "consent_gate")
    with server:
        state = Live(server.url, settings, engine, clock)
        w = _populate(state)
        # No token: everything of the patient, as plain XDS.b; a token changes nothing either.
        everyone = {d.unique_id for d in w.released.document_entries + w.later.document_entries + w.unshared.document_entries}
        assert state.query(FIND_DOCUMENTS, _find(w.pid_a)).unique_ids() == everyone
        assert state.query(FIND_DOCUMENTS, _find(w.pid_a), token=UsernameToken(state.code, "000000")).unique_ids() == everyone
        assert state.gated() == []
    engine.dispose()


# -- trusted institutions over mutual TLS ------------------------------------------------------------
def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Hospital"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey,
    *, ca: bool = False, server: bool = False,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_trusted_institution_over_mutual_tls(registry_db_url: str, tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Test CA")
    ca = _cert(ca_name, ca_key, ca_name, ca_key, ca=True)
    ca_path, _ = _write(pki, "ca", ca, ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert, server_key_path = _write(pki, "server", _cert(_name("registry"), server_key, ca_name, ca_key, server=True), server_key)
    clients = {}
    for cn in ("Ordering Radiology", "Pinned Clinic", "Stranger Clinic"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(_name(cn), key, ca_name, ca_key)
        clients[cn] = (_write(pki, cn.replace(" ", "_"), cert, key), cert)
    pinned = hashlib.sha256(clients["Pinned Clinic"][1].public_bytes(serialization.Encoding.DER)).hexdigest()

    clock = Clock()
    engine = make_engine(registry_db_url)
    settings = RegistrySettings(
        db=registry_db_url, data_dir=tmp_path / "data", mllp_port=0, grant_api_key=API_KEY, token_audience=AUDIENCE,
        access_policy="consent",
        trusted_institutions=("CN=Ordering Radiology, O=Test Hospital", f"sha256:{pinned.upper()}"),
    )
    app = build_registry_app(settings, clock=clock)
    with ServerThread(app, ssl_certfile=server_cert, ssl_keyfile=server_key_path, ssl_ca_certs=ca_path) as server:
        state = Live(server.url, settings, engine, clock)
        # Register over plain HTTPS without a client certificate (ITI-42 is not gated).
        w = _populate_tls(state, ca_path)
        everyone = {d.unique_id for d in w.released.document_entries + w.later.document_entries + w.unshared.document_entries}

        def ask(cn: str | None) -> Answer:
            context = ssl.create_default_context(cafile=ca_path)
            if cn:
                context.load_cert_chain(*clients[cn][0])
            request = build_adhoc_query(FIND_DOCUMENTS, _find(w.pid_a), validate=False)
            with SoapClient(state.soap_url, timeout=30, verify=context) as client:
                return Answer(parse_adhoc_query_response(client.call(Action.ITI18, request).body))

        assert ask("Ordering Radiology").unique_ids() == everyone
        assert ask("Pinned Clinic").unique_ids() == everyone
        assert ask("Stranger Clinic").ok_and_empty
        assert ask(None).ok_and_empty
        rows = state.gated()
        assert [r.outcome for r in rows] == ["success", "success", "empty-anonymous", "empty-anonymous"]
        assert rows[0].detail is not None and rows[0].detail.startswith("who=institution:CN=Ordering Radiology,O=Test Hospital ")
        assert rows[0].detail.endswith("returned=6 withheld=0")
    engine.dispose()


def _populate_tls(live: Live, ca_path: str) -> World:
    registry = DocumentRegistry(live.engine)
    pid_a, pid_b = f.patient_id(), f.patient_id()
    for pid in (pid_a, pid_b):
        registry.patients.add_or_update(Patient(patient_id=pid))
    world = World(pid_a, pid_b, _exam(pid_a, 3, folder=True), _exam(pid_a, 2), _exam(pid_a, 1), _exam(pid_b, 2))
    with SoapClient(live.soap_url, timeout=30, verify=ssl.create_default_context(cafile=ca_path)) as client:
        for sub in (world.released, world.later, world.unshared, world.other):
            result = parse_registry_response(client.call(Action.ITI42, encode_submit_objects_request(sub)).body)
            assert result.status == ResponseStatus.SUCCESS, result.errors
    return world


def test_allow_list_entries() -> None:
    trusted = TrustedInstitutions(["CN=A Clinic,O=Net", "AB:" * 31 + "AB", ""])
    assert trusted.match(PeerCertificate(subject="CN=A Clinic, O=Net", sha256="00" * 32)) == "CN=A Clinic, O=Net"
    assert trusted.match(PeerCertificate(subject="CN=B Clinic,O=Net", sha256="ab" * 32)) == "CN=B Clinic,O=Net"
    assert trusted.match(PeerCertificate(subject="CN=B Clinic,O=Net", sha256="ac" * 32)) is None
    assert trusted.match(None) is None
    assert not TrustedInstitutions([])
    with pytest.raises(ValueError, match="neither"):
        TrustedInstitutions(["not a DN"])


# -- logging ---------------------------------------------------------------------------------------
def test_no_code_or_pin_is_logged(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    w = live.world
    assert w is not None
    assert live.query(FIND_DOCUMENTS, _find(w.pid_a), token=UsernameToken(live.code, PIN)).unique_ids() == {w.m1, w.r1}
    live.fault(FIND_DOCUMENTS, _find(w.pid_a), token=UsernameToken(live.code, "999999"), source="127.0.0.50")
    live.secrets_used.append("999999")
    typo = live.code[:5] + str((int(live.code[5]) + 1) % 10) + live.code[6:]
    live.fault(FIND_DOCUMENTS, _find(w.pid_a), token=UsernameToken(typo, PIN), source="127.0.0.51")
    live.secrets_used.append(typo)
    live.fault(FIND_DOCUMENTS, _find(w.pid_a), headers=[_security(_digest(live.code))])
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert any(r.name == "registry.gate" for r in caplog.records), "the gate logged nothing, so the scan proves nothing"
    for secret in live.secrets_used:
        assert secret not in logged
    audited = " ".join(f"{r.client_address} {r.action} {r.outcome} {r.detail}" for r in live.audit())
    for secret in live.secrets_used:
        assert secret not in audited


def _digest(code: str) -> etree._Element:
    token = etree.Element(f"{{{NS_WSSE}}}UsernameToken")
    etree.SubElement(token, f"{{{NS_WSSE}}}Username").text = code
    etree.SubElement(token, f"{{{NS_WSSE}}}Password", Type=WSSE_PASSWORD_DIGEST).text = "abc="
    return token



def test_allow_list_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from registry.app import _export
    from xds.settings import SettingsError, load_settings

    pin = "ab" * 32
    loaded = load_settings(
        RegistrySettings, section="registry", environ={"XDS_REGISTRY_TRUSTED_INSTITUTIONS": f"sha256:{pin}, CN=Lab"}
    )
    assert loaded.trusted_institutions == (f"sha256:{pin}", "CN=Lab")
    assert TrustedInstitutions(loaded.trusted_institutions).match(PeerCertificate(subject="CN=Lab", sha256="00" * 32)) == "CN=Lab"
    # A DN with commas cannot travel through the environment to worker processes.
    monkeypatch.setattr(os, "environ", dict(os.environ))  # _export writes the process environment
    with pytest.raises(SettingsError, match="TOML"):
        _export(RegistrySettings(data_dir=tmp_path, trusted_institutions=("CN=Lab,O=Net",)))
    # An entry that is neither a DN nor a fingerprint stops the consent registry at start-up.
    bad = RegistrySettings(data_dir=tmp_path, db=f"sqlite:///{tmp_path / 'r.sqlite'}", mllp_port=0, access_policy="consent", trusted_institutions=("not a DN",))
    with pytest.raises(SettingsError, match="trusted_institutions"):
        build_registry_app(bad)


def test_a_service_of_the_deployment_sees_what_is_registered(live: Live) -> None:
    """The repository's reconciler presents the grant API key as a bearer token: it must see every
    registered document (else it would discard registered ones); a wrong key sees nothing."""
    w = live.world
    assert w is not None

    def ask(key: str) -> Answer:
        request = build_adhoc_query(FIND_DOCUMENTS, _find(w.pid_a), return_type="LeafClass", validate=False)
        with SoapClient(live.soap_url, timeout=30, headers={"authorization": f"Bearer {key}"}) as client:
            reply = client.call(Action.ITI18, request)
        return Answer(parse_adhoc_query_response(reply.body))

    everything = {e.unique_id for sub in (w.released, w.later, w.unshared) for e in sub.document_entries}
    assert ask(API_KEY).unique_ids() == everything
    assert ask(API_KEY[:-1] + ("x" if API_KEY[-1] != "x" else "y")).ok_and_empty
    assert ask("x" * len(API_KEY)).ok_and_empty
    rows = live.gated()
    assert [(r.grant_id, r.outcome) for r in rows] == [(None, "success"), (None, "empty-anonymous"), (None, "empty-anonymous")]
    assert rows[0].detail is not None and rows[0].detail.startswith("who=service ")
