"""The append-only audit log of the retrieval gates (DESIGN §4 "Abuse"), over real loopback
servers: the repository (ITI-43) and the Edge Server (RAD-69, WADO-URI) under the consent policy,
the same deployment tests/test_retrieval_gate.py runs (its module fixture is reused)."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.test_retrieval_gate import (
    AUDIENCE,
    PIN,
    Consent,
    _issued,
    _tampered,
    _wado,
    consent,  # noqa: F401 (the module fixture, reused)
    fault_of,
    images,
    iti43,
    rad69,
    refs,
)
from xds.security.audit import AuditError, AuditLog
from xds.security.keys import generate_signing_material
from xds.security.wss import UsernameToken, security_header
from xds.vocabulary import NS_SAML2, ResponseStatus, WssFault
from xds.xml import qname

REPOSITORY_LOG = ("repository", "audit", "repository-consent.jsonl")
SOURCE_LOG = ("edge", "audit", "imaging-source-consent.jsonl")
_lock = threading.Lock()  # the tests of one worker share the log files; read counts in order


def _path(consent: Consent, parts: tuple[str, ...]) -> Path:
    return consent.tmp.joinpath(*parts)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


def _new_records(path: Path, before: int) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines(path)[before:]]


def _one(path: Path, before: int) -> dict[str, Any]:
    found = _new_records(path, before)
    assert len(found) == 1, found
    return found[0]


def _grant_id(consent: Consent) -> str:
    name_id = consent.token().find(".//" + qname(NS_SAML2, "NameID"))
    assert name_id is not None and name_id.text
    return name_id.text.strip()


# -- ITI-43 -----------------------------------------------------------------------------------------
def test_iti43_outcomes_are_recorded_with_counts(consent: Consent) -> None:
    log = _path(consent, REPOSITORY_LOG)
    mine = consent.world.manifests[consent.in_scope]
    report_uid, _ = consent.world.reports[consent.in_scope]
    theirs = consent.world.manifests[consent.outside]
    with _lock:
        cases = [
            ([mine, report_uid], "permitted", 2, 2, 0, ResponseStatus.SUCCESS),
            ([mine, theirs], "partial", 2, 1, 1, ResponseStatus.PARTIAL_SUCCESS),
            ([theirs], "withheld-all", 1, 0, 1, ResponseStatus.FAILURE),
        ]
        for uids, outcome, requested, returned, withheld, status in cases:
            before = len(_lines(log))
            assert iti43(consent, uids, consent.token()).status == status
            record = _one(log, before)
            assert (record["actor"], record["transaction"], record["outcome"]) == ("repository", "ITI-43", outcome)
            assert (record["requested"], record["returned"], record["withheld"]) == (requested, returned, withheld)
            assert record["who"] == _grant_id(consent) and record["client"] == "127.0.0.1"
            assert record["reason"] is None
            stamp = datetime.fromisoformat(record["time"])
            assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("transaction", ["ITI-43", "RAD-69"])
def test_refused_tokens_are_recorded_with_their_kind(consent: Consent, transaction: str) -> None:
    other = generate_signing_material(common_name="not the registry")
    mine = consent.world.manifests[consent.in_scope]
    ours = refs(images(consent, consent.in_scope))
    parts = REPOSITORY_LOG if transaction == "ITI-43" else SOURCE_LOG
    log = _path(consent, parts)

    def ask(assertion: Any) -> None:
        if transaction == "ITI-43":
            fault_of(lambda: iti43(consent, [mine], assertion))
        else:
            fault_of(lambda: rad69(consent, ours, assertion))

    cases = {
        "no-token": None,
        "tampered": _tampered(consent),
        "wrong-audience": _issued(consent, audience="urn:test:elsewhere", key_pem=consent.key_pem, cert_pem=consent.cert_pem),
    }
    with _lock:
        for kind, assertion in cases.items():
            before = len(_lines(log))
            ask(assertion)
            record = _one(log, before)
            assert (record["transaction"], record["outcome"], record["reason"], record["who"]) == (
                transaction, "refused-token", kind, "anonymous",
            )  # fmt: skip
            assert (record["requested"], record["returned"], record["withheld"]) == (0, 0, 0)
        # Signed by another key: the signature does not verify, the same kind as tampering.
        before = len(_lines(log))
        ask(_issued(consent, audience=AUDIENCE, key_pem=other.key_pem, cert_pem=other.cert_pem))
        assert _one(log, before)["reason"] == "tampered"


def test_an_expired_assertion_is_recorded_as_expired(consent: Consent) -> None:
    mine = consent.world.manifests[consent.in_scope]
    log = _path(consent, REPOSITORY_LOG)
    with _lock:
        start = consent.clock.now
        try:
            consent.clock.advance(hours=2)
            before = len(_lines(log))
            fault = fault_of(lambda: iti43(consent, [mine], consent.token()))
            assert fault.subcode == WssFault.INVALID_SECURITY_TOKEN
            record = _one(log, before)
        finally:
            consent.clock.now = start
        assert (record["outcome"], record["reason"]) == ("refused-token", "expired")


# -- RAD-69 and WADO-URI ----------------------------------------------------------------------------
def test_rad69_outcomes_are_recorded_with_counts(consent: Consent) -> None:
    log = _path(consent, SOURCE_LOG)
    ours, theirs = refs(images(consent, consent.in_scope)), refs(images(consent, consent.outside))
    with _lock:
        cases = [
            (ours, "permitted", len(ours), len(ours), 0),
            (ours + theirs, "partial", len(ours) + len(theirs), len(ours), len(theirs)),
            (theirs, "withheld-all", len(theirs), 0, len(theirs)),
        ]
        for references, outcome, requested, returned, withheld in cases:
            before = len(_lines(log))
            answer = rad69(consent, references, consent.token())
            assert len(answer.documents) == returned
            record = _one(log, before)
            assert (record["actor"], record["transaction"], record["outcome"]) == ("imaging-source", "RAD-69", outcome)
            assert (record["requested"], record["returned"], record["withheld"]) == (requested, returned, withheld)
            assert record["who"] == _grant_id(consent)


def test_wado_outcomes_are_recorded(consent: Consent) -> None:
    log = _path(consent, SOURCE_LOG)
    ours, theirs = images(consent, consent.in_scope)[0], images(consent, consent.outside)[0]
    bearer = "SAML " + base64.b64encode(consent.assertion).decode()
    tampered = "SAML " + base64.b64encode(etree.tostring(_tampered(consent))).decode()
    cases = [
        (ours, bearer, 200, ("permitted", None, 1, 1, 0)),
        (theirs, bearer, 404, ("withheld-all", None, 1, 0, 1)),
        (ours, None, 401, ("refused-token", "no-token", 0, 0, 0)),
        (ours, "SAML not-base64!", 401, ("refused-token", "malformed-header", 0, 0, 0)),
        (ours, tampered, 401, ("refused-token", "tampered", 0, 0, 0)),
    ]
    with _lock:
        for ds, authorization, status, expected in cases:
            before = len(_lines(log))
            assert _wado(consent, ds, authorization).status_code == status
            record = _one(log, before)
            assert record["transaction"] == "RAD-55"
            assert (record["outcome"], record["reason"], record["requested"], record["returned"], record["withheld"]) == expected


# -- the file itself --------------------------------------------------------------------------------
def test_the_log_is_append_only_private_and_holds_no_secrets(consent: Consent) -> None:
    mine = consent.world.manifests[consent.in_scope]
    ours = refs(images(consent, consent.in_scope))
    with _lock:
        # A presentation of code and PIN (refused here: only the registry checks them) and a valid one.
        for log, ask in (
            (_path(consent, REPOSITORY_LOG), lambda h: iti43(consent, [mine], h)),
            (_path(consent, SOURCE_LOG), lambda h: rad69(consent, ours, h)),
        ):
            ask(consent.token())
            earlier = log.read_bytes()
            assert earlier.endswith(b"\n")
            fault_of(lambda: ask_with_pin(consent, log))
            ask(consent.token())
            now = log.read_bytes()
            assert now.startswith(earlier) and len(now) > len(earlier)  # earlier lines unchanged
            assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
            records = [json.loads(line) for line in now.splitlines()]
            assert any(r["reason"] == "unsupported-token" for r in records)
            text = now.decode("ascii")
            token_text = consent.assertion.decode()
            signature = token_text.split("SignatureValue>")[1].split("<")[0].strip()[:40]
            for secret in (consent.code, PIN, signature, "Assertion", "SignatureValue", "saml"):
                assert secret not in text, secret


def ask_with_pin(consent: Consent, log: Path) -> None:
    """ITI-43 or RAD-69 (by ``log``) with the grant's code and PIN in a UsernameToken."""
    from tests.test_retrieval_gate import EXPLICIT_LE, SOURCE_ID, _call, retrieve_body  # noqa: PLC0415
    from consumer.rad69 import build_request  # noqa: PLC0415
    from xds.vocabulary import Action  # noqa: PLC0415

    headers = [security_header(UsernameToken(consent.code, PIN))]
    if log.name.startswith("repository"):
        body = retrieve_body([(consent.world.live.repository_id, consent.world.manifests[consent.in_scope])])
        _call(consent.world.live.url, Action.ITI43, body, headers)
    else:
        body = build_request(refs(images(consent, consent.in_scope)), repository_id=SOURCE_ID, transfer_syntaxes=[EXPLICIT_LE])
        _call(consent.world.source_url, Action.RAD69, body, headers)


def test_concurrent_requests_write_whole_lines(consent: Consent) -> None:
    mine = consent.world.manifests[consent.in_scope]
    theirs = consent.world.manifests[consent.outside]
    log = _path(consent, REPOSITORY_LOG)
    rounds = 24
    with _lock:
        before = len(_lines(log))
        failures: list[BaseException] = []

        def one(i: int) -> None:
            try:
                if i % 3 == 0:
                    fault_of(lambda: iti43(consent, [mine], None))
                else:
                    iti43(consent, [mine] if i % 3 == 1 else [mine, theirs], consent.token())
            except BaseException as exc:  # noqa: BLE001 (reported below)
                failures.append(exc)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(rounds)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, failures
        records = _new_records(log, before)  # every line parses as one JSON object
    assert len(records) == rounds
    counts = {o: sum(r["outcome"] == o for r in records) for o in ("refused-token", "permitted", "partial")}
    assert counts == {"refused-token": rounds // 3, "permitted": rounds // 3, "partial": rounds // 3}


def test_audit_log_unit(tmp_path: Path) -> None:
    """Threads of one process writing to one AuditLog: whole lines, 0600, closed means closed."""
    path = tmp_path / "deep" / "audit.jsonl"
    fixed = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    log = AuditLog(path, clock=lambda: fixed)
    per_thread, threads_n = 200, 8

    def write(n: int) -> None:
        for i in range(per_thread):
            log.record(actor="repository", transaction="ITI-43", outcome="permitted", who=f"g{n}-{i}\n\"x", requested=i, returned=i)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    raw = path.read_bytes()
    records = [json.loads(line) for line in raw.splitlines()]
    assert len(records) == per_thread * threads_n == raw.count(b"\n")
    assert {r["who"] for r in records} == {f"g{n}-{i}\n\"x" for n in range(threads_n) for i in range(per_thread)}
    assert records[0]["time"] == "2026-01-02T03:04:05+00:00"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(AuditError):
        log.record(actor="repository", transaction="ITI-43", outcome="permitted")
    # Reopening appends after what is there.
    with AuditLog(path, clock=lambda: fixed) as again:
        again.record(actor="imaging-source", transaction="RAD-55", outcome="refused-token", reason="no-token")
    assert path.read_bytes().startswith(raw) and len(path.read_bytes().splitlines()) == len(records) + 1
