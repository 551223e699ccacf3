"""The consent gate of the retrieve transactions (DESIGN §4) over real loopback servers: a registry
in the consent policy with a grant and its token endpoint, our repository (ITI-43) and Edge Server
(RAD-69, WADO-URI) in the consent policy trusting the registry's certificate, and the consumer CLI
presenting code and PIN.

In scope: byte-identical answers. Outside the scope: XDSDocumentUniqueIdError worded exactly as for
a document that does not exist; a mix: PartialSuccess. No token, a tampered assertion, an expired
one (the services' injected clock), one for another audience, one signed by another key: SOAP
faults with the WS-Security subcodes. The open policy unchanged. The CLI with --code: a wrong PIN
is a clear refusal (exit 3), a typo is caught by the check digit with nothing sent."""

from __future__ import annotations

import base64
import copy
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from lxml import etree
from pydicom.dataset import Dataset
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consumer.kos import ImageReference
from consumer.rad69 import build_request as rad69_request
from consumer.token import token_url_for
from imaging_source.app import PATH as SOURCE_PATH
from imaging_source.app import WADO_PATH, build_source_app, open_store
from imaging_source.config import SourceSettings
from imaging_source.dicomstore import DicomStore
from registry.app import build_registry_app
from registry.config import RegistrySettings
from repository.app import build_repository_app
from tests.support.dicom import StudySpec
from tests.support.paths import CODES_XML, SCHEMAS
from tests.support.registry import Clock
from tests.support.repository import Live, repository_settings, retrieve_body
from tests.test_consumer_fetch import PATIENT, PID, SOURCE_ID, Tap, World, image_path
from xds.errors import ErrorCode
from xds.http.client import SoapClient
from xds.http.server import ServerThread
from xds.metadata.responses import parse_registry_response
from xds.security.accesscode import damm_check_digit
from xds.security.keys import generate_signing_material
from xds.security.saml import GrantScope, issue_assertion
from xds.security.wss import SamlToken, UsernameToken, security_header
from xds.settings import SettingsError
from xds.soap.fault import SoapFault
from xds.vocabulary import NS_RS, NS_SAML2, NS_XDS, Action, GrantAttribute, ResponseStatus, WssFault
from xds.xml import parse_xml, qname

API_KEY = "grant-api-key-for-tests"
AUDIENCE = "urn:test:imageshare"
PIN = "864209"
LIFETIME_S = 600
EXPLICIT_LE = "1.2.840.10008.1.2.1"
UNKNOWN_UID = "1.2.840.99999.1.2.3"
_REGISTRY_RESPONSE = qname(NS_RS, "RegistryResponse")
_DOCUMENT_RESPONSE = qname(NS_XDS, "DocumentResponse")


@dataclass
class Consent:
    """The running actors, what was shared, and the grant's code and assertion."""

    world: World
    clock: Clock
    registry_url: str
    cert_path: Path
    key_pem: bytes
    cert_pem: bytes
    code: str
    assertion: bytes
    in_scope: str  # study UID granted
    outside: str  # study UID shared to the repository but not granted
    kos: dict[str, bytes]  # study UID -> the KOS bytes submitted
    tmp: Path

    @property
    def store(self) -> DicomStore:
        return self.world.store

    def token(self) -> etree._Element:
        return parse_xml(self.assertion)


def _kos_bytes(tmp: Path, study_uid: str) -> bytes:
    return (tmp / "submit" / study_uid / "kos.dcm").read_bytes()


@pytest.fixture(scope="module")
def consent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consent]:
    tmp = tmp_path_factory.mktemp("consent")
    registry_db = f"sqlite:///{tmp / 'registry.sqlite'}"
    registry_settings = RegistrySettings(
        db=registry_db,
        data_dir=tmp / "registry",
        mllp_port=0,
        codes=CODES_XML if CODES_XML.is_file() else None,
        access_policy="consent",
        grant_api_key=API_KEY,
        token_lifetime_s=LIFETIME_S,
        token_audience=AUDIENCE,
    )
    clock = Clock(now=datetime.now(UTC))
    with ServerThread(build_registry_app(registry_settings)) as registry:
        cert_pem = httpx.get(registry.url + "/consent/certificate", timeout=10).content
        cert_path = tmp / "registry-token.pem"
        cert_path.write_bytes(cert_pem)
        repository = build_repository_app(
            repository_settings(
                tmp,
                registry_url=registry.url + "/registry",
                repository_db=f"sqlite:///{tmp / 'repository.sqlite'}",
                access_policy="consent",
                trusted_token_cert=cert_path,
                token_audience=AUDIENCE,
            ),
            clock=clock,
        )
        source_settings = SourceSettings(
            data_dir=tmp / "edge",
            source_id=SOURCE_ID,
            fsync=False,
            schemas=SCHEMAS if SCHEMAS.is_dir() else None,
            access_policy="consent",
            trusted_token_cert=cert_path,
            token_audience=AUDIENCE,
        )
        store = open_store(source_settings)
        tap = Tap(build_source_app(source_settings, store=store, clock=clock))
        try:
            with ServerThread(repository) as repo_server, ServerThread(tap) as edge:
                live = Live(
                    registry_url=registry.url + "/registry",
                    registry_db=registry_db,
                    repository_url=repo_server.url + "/repository",
                    store_dir=tmp / "store",
                    repository_db=f"sqlite:///{tmp / 'repository.sqlite'}",
                )
                live.feed(PID)
                world = World(live, store, tap, edge.url + SOURCE_PATH, tmp)
                granted = world.share(StudySpec(accession="ACC700", modalities=("CT",), instances_per_series=3), report=b"CT: normal.\n")
                other = world.share(StudySpec(accession="ACC701", modalities=("MR",), instances_per_series=2), report=b"MR: normal.\n")
                in_scope, outside = granted[0].StudyInstanceUID, other[0].StudyInstanceUID
                now = datetime.now(UTC)
                created = httpx.post(
                    registry.url + "/consent/grants",
                    headers={"authorization": f"Bearer {API_KEY}"},
                    json={
                        "patient_id": PID,
                        "pin": PIN,
                        "expires": (now + timedelta(days=30)).isoformat(),
                        "exams": [
                            {
                                "study_uid": in_scope,
                                "manifest_unique_id": world.manifests[in_scope],
                                "report_unique_ids": [world.reports[in_scope][0]],
                                "release_time": (now - timedelta(minutes=5)).isoformat(),
                            }
                        ],
                    },
                    timeout=30,
                )
                assert created.status_code == 201, created.text
                code = created.json()["access_code"]
                answer = httpx.post(registry.url + "/consent/token", data={"code": code, "pin": PIN}, timeout=30)
                assert answer.status_code == 200, answer.text
                key_pem = (tmp / "registry" / "keys" / "token-signing.key.pem").read_bytes()
                yield Consent(
                    world=world, clock=clock, registry_url=registry.url, cert_path=cert_path, key_pem=key_pem,
                    cert_pem=cert_pem, code=code, assertion=answer.content, in_scope=in_scope, outside=outside,
                    kos={uid: _kos_bytes(tmp, uid) for uid in (in_scope, outside)}, tmp=tmp,
                )  # fmt: skip
                live.close()
        finally:
            store.engine.dispose()


# -- helpers ----------------------------------------------------------------------------------------
def _header(assertion: etree._Element | None) -> list[etree._Element]:
    return [] if assertion is None else [security_header(SamlToken(assertion))]


@dataclass
class Answer:
    status: str
    errors: list  # type: ignore[type-arg]
    documents: dict[str, bytes]

    def error(self, uid: str) -> tuple[str, str]:
        found = [(e.code_text, e.context) for e in self.errors if e.location == uid]
        assert len(found) == 1, self.errors
        return found[0]


def _call(url: str, action: str, body: etree._Element, headers: list[etree._Element]) -> Answer:
    with SoapClient(url, timeout=60) as client, client.call(action, body, mtom=True, extra_headers=headers) as reply:
        parsed = parse_registry_response(reply.body.find(_REGISTRY_RESPONSE))
        documents = {
            (item.findtext(qname(NS_XDS, "DocumentUniqueId")) or "").strip(): reply.binary(item.find(qname(NS_XDS, "Document"))).read_bytes(max_bytes=64 << 20)
            for item in reply.body.iterfind(_DOCUMENT_RESPONSE)
        }
        return Answer(parsed.status, list(parsed.errors), documents)


def iti43(consent: Consent, uids: list[str], assertion: etree._Element | None) -> Answer:
    live = consent.world.live
    return _call(live.url, Action.ITI43, retrieve_body([(live.repository_id, uid) for uid in uids]), _header(assertion))


def images(consent: Consent, study_uid: str) -> list[Dataset]:
    return consent.world.studies[study_uid]


def refs(datasets: list[Dataset], *, study_uid: str | None = None) -> list[ImageReference]:
    return [
        ImageReference(study_uid or ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPClassUID, ds.SOPInstanceUID, SOURCE_ID)
        for ds in datasets
    ]


def rad69(consent: Consent, references: list[ImageReference], assertion: etree._Element | None, *, url: str | None = None) -> Answer:
    body = rad69_request(references, repository_id=SOURCE_ID, transfer_syntaxes=[EXPLICIT_LE])
    return _call(url or consent.world.source_url, Action.RAD69, body, _header(assertion))


def stored_bytes(store: DicomStore, sop_uid: str) -> bytes:
    stored = store.instance(sop_uid)
    assert stored is not None
    return stored.path.read_bytes()


def fault_of(call: object) -> SoapFault:
    with pytest.raises(SoapFault) as caught:
        call()  # type: ignore[operator]
    return caught.value


def masked(context: str, uid: str) -> str:
    return context.replace(uid, "<uid>")


# -- ITI-43 at the repository -----------------------------------------------------------------------
def test_in_scope_documents_come_back_byte_identical(consent: Consent) -> None:
    manifest = consent.world.manifests[consent.in_scope]
    report_uid, report = consent.world.reports[consent.in_scope]
    answer = iti43(consent, [manifest, report_uid], consent.token())
    assert answer.status == ResponseStatus.SUCCESS, answer.errors
    assert answer.documents == {manifest: consent.kos[consent.in_scope], report_uid: report}


def test_documents_outside_the_scope_look_like_unknown_ones(consent: Consent) -> None:
    outside = consent.world.manifests[consent.outside]
    report_outside = consent.world.reports[consent.outside][0]
    denied = iti43(consent, [outside], consent.token())
    unknown = iti43(consent, [UNKNOWN_UID], consent.token())
    assert denied.status == unknown.status == ResponseStatus.FAILURE
    assert denied.documents == {}
    code, context = denied.error(outside)
    unknown_code, unknown_context = unknown.error(UNKNOWN_UID)
    assert code == unknown_code == ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value
    assert masked(context, outside) == masked(unknown_context, UNKNOWN_UID)
    assert iti43(consent, [report_outside], consent.token()).error(report_outside)[0] == ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value


def test_a_mixed_request_is_partial_success_in_request_order(consent: Consent) -> None:
    manifest = consent.world.manifests[consent.in_scope]
    outside = consent.world.manifests[consent.outside]
    answer = iti43(consent, [outside, manifest, UNKNOWN_UID], consent.token())
    assert answer.status == ResponseStatus.PARTIAL_SUCCESS
    assert answer.documents == {manifest: consent.kos[consent.in_scope]}
    assert [(e.code_text, e.location) for e in answer.errors] == [
        (ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value, outside),
        (ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value, UNKNOWN_UID),
    ]


# -- RAD-69 at the Edge Server ----------------------------------------------------------------------
def test_in_scope_instances_come_back_byte_identical(consent: Consent) -> None:
    datasets = images(consent, consent.in_scope)
    answer = rad69(consent, refs(datasets), consent.token())
    assert answer.status == ResponseStatus.SUCCESS, answer.errors
    assert answer.documents == {ds.SOPInstanceUID: stored_bytes(consent.store, ds.SOPInstanceUID) for ds in datasets}


def test_instances_of_other_studies_look_like_unknown_ones(consent: Consent) -> None:
    theirs = images(consent, consent.outside)[0]
    denied = rad69(consent, refs([theirs]), consent.token())
    assert denied.status == ResponseStatus.FAILURE and denied.documents == {}
    code, context = denied.error(theirs.SOPInstanceUID)
    assert code == ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value
    ghost = ImageReference(consent.outside, theirs.SeriesInstanceUID, theirs.SOPClassUID, UNKNOWN_UID, SOURCE_ID)
    # An unknown instance of a study in scope is answered the same way.
    ghost_in_scope = ImageReference(consent.in_scope, "1.2.3.4", theirs.SOPClassUID, UNKNOWN_UID, SOURCE_ID)
    unknown = rad69(consent, [ghost_in_scope], consent.token())
    assert (code, masked(context, theirs.SOPInstanceUID)) == (unknown.error(UNKNOWN_UID)[0], masked(unknown.error(UNKNOWN_UID)[1], UNKNOWN_UID))
    assert rad69(consent, [ghost], consent.token()).error(UNKNOWN_UID) == unknown.error(UNKNOWN_UID)
    # An out-of-scope instance asked for under a study in scope is not returned either.
    smuggled = rad69(consent, refs([theirs], study_uid=consent.in_scope), consent.token())
    assert smuggled.documents == {} and smuggled.status == ResponseStatus.FAILURE
    assert masked(smuggled.error(theirs.SOPInstanceUID)[1], theirs.SOPInstanceUID) == masked(unknown.error(UNKNOWN_UID)[1], UNKNOWN_UID)


def test_a_mixed_rad69_request_is_partial_success(consent: Consent) -> None:
    ours = images(consent, consent.in_scope)
    theirs = images(consent, consent.outside)
    looked_up: list[str] = []
    real = consent.store.instances

    def spy(uids):  # type: ignore[no-untyped-def]
        wanted = list(uids)
        looked_up.extend(wanted)
        return real(wanted)

    consent.store.instances = spy  # type: ignore[method-assign]
    try:
        answer = rad69(consent, refs([*theirs, *ours]), consent.token())
    finally:
        del consent.store.instances
    assert answer.status == ResponseStatus.PARTIAL_SUCCESS
    assert answer.documents == {ds.SOPInstanceUID: stored_bytes(consent.store, ds.SOPInstanceUID) for ds in ours}
    assert [(e.code_text, e.location) for e in answer.errors] == [
        (ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value, ds.SOPInstanceUID) for ds in theirs
    ]
    # The retrieve code behind the gate looked up only the instances in scope.
    assert sorted(looked_up) == sorted(ds.SOPInstanceUID for ds in ours)


# -- refusals ---------------------------------------------------------------------------------------
def _tampered(consent: Consent) -> etree._Element:
    """The real assertion with the other study's manifest added to its scope after signing."""
    assertion = consent.token()
    for attribute in assertion.iter(qname(NS_SAML2, "Attribute")):
        if attribute.get("Name") == GrantAttribute.MANIFEST_UNIQUE_ID:
            extra = copy.deepcopy(attribute[0])
            extra.text = consent.world.manifests[consent.outside]
            attribute.append(extra)
    return assertion


def _issued(consent: Consent, *, audience: str, key_pem: bytes, cert_pem: bytes) -> etree._Element:
    scope = GrantScope(PID, frozenset(consent.world.manifests.values()), frozenset(consent.world.studies), frozenset())
    return parse_xml(
        issue_assertion(
            issuer="urn:test:issuer", subject="grant-x", audience=audience, scope=scope, now=datetime.now(UTC),
            lifetime=timedelta(minutes=5), key_pem=key_pem, cert_pem=cert_pem,
        )  # fmt: skip
    )


@pytest.mark.parametrize("transaction", ["ITI-43", "RAD-69"])
def test_untrusted_tokens_are_faults(consent: Consent, transaction: str) -> None:
    other = generate_signing_material(common_name="not the registry")

    def ask(assertion: etree._Element | None, headers: list[etree._Element] | None = None) -> SoapFault:
        if transaction == "ITI-43":
            body = retrieve_body([(consent.world.live.repository_id, consent.world.manifests[consent.in_scope])])
            url, action = consent.world.live.url, Action.ITI43
        else:
            body = rad69_request(refs(images(consent, consent.in_scope)), repository_id=SOURCE_ID, transfer_syntaxes=[EXPLICIT_LE])
            url, action = consent.world.source_url, Action.RAD69
        sent = headers if headers is not None else _header(assertion)
        return fault_of(lambda: _call(url, action, body, sent))

    cases = {
        "no token": (ask(None), WssFault.FAILED_AUTHENTICATION),
        "tampered": (ask(_tampered(consent)), WssFault.FAILED_CHECK),
        "another key": (ask(_issued(consent, audience=AUDIENCE, key_pem=other.key_pem, cert_pem=other.cert_pem)), WssFault.FAILED_CHECK),
        "another audience": (
            ask(_issued(consent, audience="urn:test:elsewhere", key_pem=consent.key_pem, cert_pem=consent.cert_pem)),
            WssFault.INVALID_SECURITY_TOKEN,
        ),
        "code and PIN": (ask(None, [security_header(UsernameToken(consent.code, PIN))]), WssFault.UNSUPPORTED_SECURITY_TOKEN),
    }
    for name, (fault, subcode) in cases.items():
        assert (name, fault.code.value, fault.subcode, fault.status) == (name, "Sender", subcode, 400)
        assert PIN not in fault.reason and consent.code not in fault.reason
    # The same assertion that the registry really issued is accepted by the same request.
    if transaction == "ITI-43":
        assert iti43(consent, [consent.world.manifests[consent.in_scope]], consent.token()).status == ResponseStatus.SUCCESS


def test_an_expired_assertion_is_a_fault(consent: Consent) -> None:
    manifest = consent.world.manifests[consent.in_scope]
    ours = refs(images(consent, consent.in_scope))
    assert iti43(consent, [manifest], consent.token()).status == ResponseStatus.SUCCESS
    start = consent.clock.now
    try:
        consent.clock.advance(hours=2)  # well past NotOnOrAfter plus the tolerated skew
        for fault in (fault_of(lambda: iti43(consent, [manifest], consent.token())), fault_of(lambda: rad69(consent, ours, consent.token()))):
            assert (fault.code.value, fault.subcode) == ("Sender", WssFault.INVALID_SECURITY_TOKEN)
            assert "expired" in fault.reason
    finally:
        consent.clock.now = start


# -- WADO-URI ---------------------------------------------------------------------------------------
def _wado(consent: Consent, ds: Dataset, authorization: str | None) -> httpx.Response:
    url = consent.world.source_url.removesuffix(SOURCE_PATH) + WADO_PATH
    params = {
        "requestType": "WADO", "studyUID": ds.StudyInstanceUID, "seriesUID": ds.SeriesInstanceUID,
        "objectUID": ds.SOPInstanceUID, "contentType": "application/dicom", "transferSyntax": "*",
    }  # fmt: skip
    headers = {"authorization": authorization} if authorization is not None else {}
    return httpx.get(url, params=params, headers=headers, timeout=30)


def test_wado_needs_the_assertion_in_the_authorization_header(consent: Consent) -> None:
    ours, theirs = images(consent, consent.in_scope)[0], images(consent, consent.outside)[0]
    bearer = "SAML " + base64.b64encode(consent.assertion).decode()
    missing = _wado(consent, ours, None)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("SAML")
    assert _wado(consent, ours, "SAML not-base64!").status_code == 401
    tampered = "SAML " + base64.b64encode(etree.tostring(_tampered(consent))).decode()
    assert _wado(consent, ours, tampered).status_code == 401
    granted = _wado(consent, ours, bearer)
    assert granted.status_code == 200 and granted.content == stored_bytes(consent.store, ours.SOPInstanceUID)
    denied = _wado(consent, theirs, bearer)
    ghost = Dataset()
    ghost.StudyInstanceUID, ghost.SeriesInstanceUID, ghost.SOPInstanceUID = consent.in_scope, "1.2.3.4", UNKNOWN_UID
    unknown = _wado(consent, ghost, bearer)
    assert (denied.status_code, denied.text) == (unknown.status_code, unknown.text) == (404, unknown.text)


# -- the open policy --------------------------------------------------------------------------------
def test_open_policy_serves_everything_without_a_token(consent: Consent) -> None:
    tmp = consent.tmp
    settings = repository_settings(
        tmp, registry_url=consent.world.live.registry_url, repository_db=f"sqlite:///{tmp / 'repository.sqlite'}"
    )
    assert settings.access_policy == "open"
    source = SourceSettings(data_dir=tmp / "edge", source_id=SOURCE_ID, fsync=False)
    outside = consent.world.manifests[consent.outside]
    with ServerThread(build_repository_app(settings)) as repo, ServerThread(build_source_app(source, store=consent.store)) as edge:
        with SoapClient(repo.url + "/repository", timeout=60) as client:
            body = retrieve_body([(consent.world.live.repository_id, outside)])
            with client.call(Action.ITI43, body, mtom=True) as reply:
                assert parse_registry_response(reply.body.find(_REGISTRY_RESPONSE)).status == ResponseStatus.SUCCESS
                assert reply.binary(reply.body.find(f"{_DOCUMENT_RESPONSE}/{{{NS_XDS}}}Document")).read_bytes() == consent.kos[consent.outside]
        theirs = images(consent, consent.outside)
        answer = rad69(consent, refs(theirs), None, url=edge.url + SOURCE_PATH)
        assert answer.status == ResponseStatus.SUCCESS and set(answer.documents) == {ds.SOPInstanceUID for ds in theirs}


def test_consent_settings_need_the_certificate(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="trusted_token_cert"):
        SourceSettings(data_dir=tmp_path, access_policy="consent")
    with pytest.raises(SettingsError, match="open' or 'consent"):
        repository_settings(tmp_path, registry_url="http://127.0.0.1:1/registry", repository_db="sqlite://", access_policy="closed")
    not_pem = tmp_path / "not.pem"
    not_pem.write_bytes(b"hello")
    with pytest.raises(SettingsError, match="PEM"):
        build_repository_app(
            repository_settings(
                tmp_path, registry_url="http://127.0.0.1:1/registry", repository_db=f"sqlite:///{tmp_path / 'r.sqlite'}",
                access_policy="consent", trusted_token_cert=not_pem,
            )  # fmt: skip
        )


# -- the consumer CLI -------------------------------------------------------------------------------
def test_token_url_is_next_to_the_registry() -> None:
    assert token_url_for("http://h:8010/registry") == "http://h:8010/consent/token"
    assert token_url_for("https://h/xds/registry/") == "https://h/xds/consent/token"


def test_fetch_with_code_and_pin_from_stdin(consent: Consent, tmp_path: Path) -> None:
    out = tmp_path / "images"
    live = consent.world.live
    code = f"{consent.code[:4]}-{consent.code[4:]}"
    argv = ["fetch", "--code", code, "--pin-stdin", "--out", str(out), "--no-progress", "--no-fsync", "--source", f"{SOURCE_ID}={consent.world.source_url}"]
    result = run_with_input(live, argv, PIN + "\n")
    assert result.exit_code == 0, result.output
    ours = images(consent, consent.in_scope)
    for ds in ours:
        assert image_path(out, ds).read_bytes() == stored_bytes(consent.store, ds.SOPInstanceUID)
    assert not (out / PATIENT / consent.outside).exists()
    assert PIN not in result.output
    listed = run_with_input(live, ["list", "--code", consent.code, "--pin-stdin"], PIN + "\n")
    assert listed.exit_code == 0, listed.output
    assert consent.in_scope in listed.output and consent.outside not in listed.output


def test_retrieve_with_code_and_a_hidden_pin_prompt(consent: Consent, tmp_path: Path) -> None:
    manifest = consent.world.manifests[consent.in_scope]
    outside = consent.world.manifests[consent.outside]
    live = consent.world.live
    argv = ["retrieve", manifest, outside, "--repository-id", live.repository_id, "--out", str(tmp_path), "--no-progress", "--code", consent.code]
    result = run_with_input(live, argv, PIN + "\n")
    assert result.exit_code == 0, result.output  # PartialSuccess: one of two
    assert "PIN" in result.output and PIN not in result.output  # asked for, never echoed
    assert (tmp_path / f"{manifest}.dcm").read_bytes() == consent.kos[consent.in_scope]
    assert not (tmp_path / f"{outside}.dcm").exists()
    assert "XDSDocumentUniqueIdError" in result.output


def test_a_wrong_pin_is_a_clear_refusal(consent: Consent, tmp_path: Path) -> None:
    live = consent.world.live
    wrong = "135799"
    result = run_with_input(live, ["fetch", "--code", consent.code, "--pin-stdin", "--out", str(tmp_path / "x"), "--no-progress"], wrong + "\n")
    assert result.exit_code == 3, result.output
    assert "not accepted" in result.output
    assert wrong not in result.output and consent.code not in result.output
    assert not (tmp_path / "x").exists()


class Recorder:
    """A stand-in token endpoint that counts what reaches it and answers ``status``."""

    def __init__(self, status: int = 401, headers: dict[str, str] | None = None) -> None:
        self.hits = 0
        self.status = status
        self.headers = headers or {}
        self.lock = threading.Lock()

    async def token(self, _request: Request) -> Response:
        with self.lock:
            self.hits += 1
        return Response(b'{"error": "no"}', status_code=self.status, media_type="application/json", headers=self.headers)


def test_a_typo_is_caught_before_anything_is_sent(consent: Consent, tmp_path: Path) -> None:
    recorder = Recorder()
    app = Starlette(routes=[Route("/consent/token", recorder.token, methods=["POST"])])
    live = consent.world.live
    body = consent.code[:7]
    typo = body[:3] + str((int(body[3]) + 1) % 10) + body[4:] + consent.code[7]
    assert typo[:7] + damm_check_digit(typo[:7]) != typo  # really a typo the check digit catches
    with ServerThread(app) as server:
        url = server.url + "/consent/token"
        result = run_with_input(live, ["list", "--code", typo, "--pin-stdin", "--token-url", url], PIN + "\n")
        assert result.exit_code == 2, result.output
        assert "mistyped" in result.output and recorder.hits == 0
        # The same command with a well-formed code does reach the endpoint (the count can move).
        sent = run_with_input(live, ["list", "--code", consent.code, "--pin-stdin", "--token-url", url], PIN + "\n")
        assert sent.exit_code == 3 and recorder.hits == 1


def test_a_locked_code_says_when_to_try_again(consent: Consent) -> None:
    recorder = Recorder(423, {"retry-after": "37"})
    app = Starlette(routes=[Route("/consent/token", recorder.token, methods=["POST"])])
    with ServerThread(app) as server:
        argv = ["list", "--code", consent.code, "--pin-stdin", "--token-url", server.url + "/consent/token"]
        result = run_with_input(consent.world.live, argv, PIN + "\n")
    assert (result.exit_code, recorder.hits) == (3, 1), result.output
    assert "locked" in result.output and "try again in 37 s" in result.output


def run_with_input(live: Live, argv: list[str], text: str):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from consumer.cli import consumer

    env = {"XDS_CONSUMER_REGISTRY": live.registry_url, "XDS_CONSUMER_REPOSITORY": live.url, "COLUMNS": "400"}
    return CliRunner().invoke(consumer, argv, env=env, input=text, catch_exceptions=False)
