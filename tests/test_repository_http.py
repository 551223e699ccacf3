"""The Document Repository over real loopback HTTP, against the real Document Registry: each
ITI-41 and ITI-43 case of the NIST catalogue (xds-notes §8.2, §8.3), the registry down, refusing
or answering ambiguously, and every response checked against the XSDs. The repository index runs
on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from lxml import etree

from tests.support import factory as f
from tests.support.repository import (  # noqa: F401  (repository_db_url is a fixture)
    Live,
    free_port,
    live_pair,
    repository_db_url,
    with_content,
)
from xds.errors import ErrorCode, RegistryError
from xds.http.client import AsyncSoapClient
from xds.http.server import ServerThread, SoapRequest, SoapResponse, SoapService, soap_app
from xds.metadata.responses import build_registry_response
from xds.vocabulary import NS_RIM, Action, AssociationType, ResponseStatus, Severity, Status

SUCCESS = ResponseStatus.SUCCESS
FAILURE = ResponseStatus.FAILURE
PARTIAL = ResponseStatus.PARTIAL_SUCCESS


@pytest.fixture
def live(tmp_path: Path, repository_db_url: str) -> Iterator[Live]:  # noqa: F811
    with live_pair(tmp_path, repository_db_url) as running:
        yield running


def _submission(live: Live, entries: int = 1, *, size: int = 3000, **kwargs: object):  # type: ignore[no-untyped-def]
    pid = live.feed(f.patient_id())
    sub = f.submission(pid, entries=entries, **kwargs)  # type: ignore[arg-type]
    contents = {de.id: with_content(de, os.urandom(size + i)) for i, de in enumerate(sub.document_entries)}
    return pid, sub, contents


def _assert_nothing_kept(live: Live, *, files_before: int = 0) -> None:
    counts = live.index_counts()
    assert counts.get("pending", 0) == 0
    assert len(live.store_files()) == files_before
    assert counts["blobs"] == files_before


# -- ITI-41 (xds-notes §8.2) --------------------------------------------------------------------------
def test_11966_one_document_is_registered_with_hash_size_and_repository_id(live: Live) -> None:
    _, sub, contents = _submission(live)
    de = sub.document_entries[0]
    de.hash = de.size = de.repository_unique_id = None  # the repository adds them
    outcome = live.submit(sub, contents)
    assert (outcome.status, outcome.codes) == (SUCCESS, [])
    assert outcome.is_mtom, "answered in the packaging of the request"
    [registered] = live.registered([de.unique_id])
    data = contents[de.id]
    assert (registered.hash, registered.size, registered.repository_unique_id) == (
        hashlib.sha1(data).hexdigest(),
        str(len(data)),
        live.repository_id,
    )
    assert registered.mime_type == de.mime_type


def test_11979_two_documents(live: Live) -> None:
    _, sub, contents = _submission(live, entries=2)
    assert live.submit(sub, contents).status == SUCCESS
    assert len(live.registered([de.unique_id for de in sub.document_entries])) == 2
    assert len(live.store_files()) == 2


@pytest.mark.parametrize(
    ("change", "expected"),
    [("correct", SUCCESS), ("uppercase", SUCCESS), ("wrong-hash", FAILURE), ("wrong-size", FAILURE)],
)
def test_11981_12369_submitted_hash_and_size(live: Live, change: str, expected: str) -> None:
    _, sub, contents = _submission(live)
    de = sub.document_entries[0]
    if change == "uppercase":
        de.hash = (de.hash or "").upper()
    elif change == "wrong-hash":
        de.hash = hashlib.sha1(b"something else").hexdigest()
    elif change == "wrong-size":
        de.size = str(int(de.size or 0) - 1)
    outcome = live.submit(sub, contents)
    assert outcome.status == expected
    if expected == FAILURE:
        assert outcome.codes == [ErrorCode.REPOSITORY_METADATA_ERROR.value]
        assert live.registered([de.unique_id]) == []
        _assert_nothing_kept(live)
    else:
        assert live.registered([de.unique_id])[0].hash == hashlib.sha1(contents[de.id]).hexdigest()


def test_11983_document_entry_without_document(live: Live) -> None:
    _, sub, contents = _submission(live, entries=2)
    del contents[sub.document_entries[1].id]
    outcome = live.submit(sub, contents)
    assert (outcome.status, outcome.codes) == (FAILURE, ["XDSMissingDocument"])
    _assert_nothing_kept(live)


def test_11983_document_without_document_entry(live: Live) -> None:
    _, sub, contents = _submission(live)
    contents["NoSuchEntry"] = b"orphan"
    outcome = live.submit(sub, contents)
    assert (outcome.status, outcome.codes) == (FAILURE, ["XDSMissingDocumentMetadata"])
    _assert_nothing_kept(live)


def test_duplicate_unique_id_in_the_message(live: Live) -> None:
    _, sub, contents = _submission(live, entries=2)
    sub.document_entries[1].unique_id = sub.document_entries[0].unique_id
    outcome = live.submit(sub, contents)
    assert outcome.status == FAILURE
    assert "XDSRepositoryDuplicateUniqueIdInMessage" in outcome.codes
    _assert_nothing_kept(live)


def test_11986_patient_id_mismatch(live: Live) -> None:
    _, sub, contents = _submission(live)
    sub.document_entries[0].patient_id = live.feed(f.patient_id())
    outcome = live.submit(sub, contents)
    assert outcome.status == FAILURE
    assert "XDSPatientIdDoesNotMatch" in outcome.codes
    _assert_nothing_kept(live)


def test_registry_refusing_is_relayed_and_nothing_is_kept(live: Live) -> None:
    pid = f.patient_id()  # never fed: only the registry can tell
    sub = f.submission(pid, entries=2)
    contents = {de.id: with_content(de, os.urandom(200_000)) for de in sub.document_entries}
    outcome = live.submit(sub, contents)
    assert (outcome.status, outcome.codes) == (FAILURE, ["XDSUnknownPatientId"])
    assert pid in outcome.errors[0].context
    _assert_nothing_kept(live)


def test_registry_down_is_registry_not_available(tmp_path: Path, repository_db_url: str) -> None:  # noqa: F811
    with live_pair(tmp_path, repository_db_url, registry_url=f"http://127.0.0.1:{free_port()}/registry") as live:
        _, sub, contents = _submission(live)
        outcome = live.submit(sub, contents)
        assert (outcome.status, outcome.codes) == (FAILURE, ["XDSRegistryNotAvailable"])
        _assert_nothing_kept(live)


def test_15816_submit_then_retrieve_normal_unknown_and_partial(live: Live) -> None:
    _, sub, contents = _submission(live, entries=2)
    assert live.submit(sub, contents).status == SUCCESS
    first, second = sub.document_entries
    repo = live.repository_id

    outcome, docs = live.retrieve([(repo, first.unique_id)])
    assert (outcome.status, outcome.codes) == (SUCCESS, [])
    assert docs == {first.unique_id: (first.mime_type, contents[first.id])}

    outcome, docs = live.retrieve([(repo, "1.2.3.4.404")])
    assert (outcome.status, outcome.codes, docs) == (FAILURE, ["XDSDocumentUniqueIdError"], {})
    assert outcome.errors[0].location == "1.2.3.4.404"

    outcome, docs = live.retrieve([(repo, second.unique_id), (repo, "1.2.3.4.404")])
    assert (outcome.status, outcome.codes) == (PARTIAL, ["XDSDocumentUniqueIdError"])
    assert docs == {second.unique_id: (second.mime_type, contents[second.id])}


def test_resubmitting_the_same_document_stores_it_once(live: Live) -> None:
    pid, sub, contents = _submission(live)
    assert live.submit(sub, contents).status == SUCCESS
    again = f.submission(pid)
    again.document_entries[0].unique_id = sub.document_entries[0].unique_id
    data = with_content(again.document_entries[0], contents[sub.document_entries[0].id])
    assert live.submit(again, {again.document_entries[0].id: data}).status == SUCCESS
    assert len(live.store_files()) == 1
    assert live.index_counts() == {"committed": 1, "blobs": 1}


def test_a_document_goes_to_the_disk_while_it_arrives(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository's spool writes behind: the bytes received are handed to the disk before
    the body ends, so the fsync before ITI-42 has little left (xds.durable)."""
    from xds import durable

    started: list[tuple[int, int]] = []
    real = durable.start_writeback

    def recording(fd: int, offset: int, length: int) -> bool:
        started.append((offset, length))
        return real(fd, offset, length)

    monkeypatch.setattr(durable, "start_writeback", recording)
    _, sub, contents = _submission(live, size=1_000_000)
    outcome = live.submit(sub, contents)
    assert (outcome.status, outcome.codes) == (SUCCESS, [])
    assert started and started[0][0] == 0
    covered = sum(length for _, length in started)
    assert 1_000_000 - durable.WRITE_BEHIND_EVERY < covered <= 1_000_000
    de = sub.document_entries[0]
    _, documents = live.retrieve([(live.repository_id, de.unique_id)])
    assert documents[de.unique_id][1] == contents[de.id]


def test_concurrent_submissions_when_one_worker_thread_is_all_there_is(tmp_path: Path, repository_db_url: str) -> None:  # noqa: F811
    """The flushes have their own limiter on worker threads: were they to share the default one
    with the stagers that wait for them, a stager holding the last token would wait forever for
    a flush that cannot start. With the default limiter at one token, concurrent submissions
    all go through."""
    import contextlib
    from concurrent.futures import ThreadPoolExecutor

    from starlette.applications import Starlette

    def one_default_token(app: Starlette) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(_app: Starlette) -> Iterator[None]:  # type: ignore[misc]
            anyio.to_thread.current_default_thread_limiter().total_tokens = 1
            async with app.router.lifespan_context(app):
                yield

        return Starlette(routes=app.routes, lifespan=lifespan)

    with live_pair(tmp_path, repository_db_url, wrap=one_default_token) as live:
        submissions = [_submission(live, size=300_000 + i) for i in range(6)]
        with ThreadPoolExecutor(len(submissions)) as pool:
            futures = [pool.submit(live.submit, sub, contents) for _, sub, contents in submissions]
            outcomes = [future.result(timeout=120) for future in futures]
        assert [(o.status, o.codes) for o in outcomes] == [(SUCCESS, [])] * len(submissions)
        assert live.index_counts() == {"committed": len(submissions), "blobs": len(submissions)}


def test_same_unique_id_with_other_content_is_refused(live: Live) -> None:
    pid, sub, contents = _submission(live)
    assert live.submit(sub, contents).status == SUCCESS
    other = f.submission(pid)
    other.document_entries[0].unique_id = sub.document_entries[0].unique_id
    data = with_content(other.document_entries[0], b"different content")
    outcome = live.submit(other, {other.document_entries[0].id: data})
    assert (outcome.status, outcome.codes) == (FAILURE, ["XDSRepositoryMetadataError"])
    _, docs = live.retrieve([(live.repository_id, sub.document_entries[0].unique_id)])
    assert docs[sub.document_entries[0].unique_id][1] == contents[sub.document_entries[0].id]


# -- ReposAcceptanceTest 1111 / 1112 / 1113 ---------------------------------------------------------
def _entry_uuid(live: Live, unique_id: str) -> str:
    return live.registered([unique_id])[0].id


@pytest.mark.parametrize("kind", [AssociationType.RPLC, AssociationType.APND, AssociationType.XFRM_RPLC])
def test_1111_1112_replacement_append_and_transform(live: Live, kind: str) -> None:
    pid, sub, contents = _submission(live)
    assert live.submit(sub, contents).status == SUCCESS
    original = sub.document_entries[0]
    follow = f.replacement(pid, _entry_uuid(live, original.unique_id), kind=kind)
    new = follow.document_entries[0]
    outcome = live.submit(follow, {new.id: with_content(new, b"the next version")})
    assert (outcome.status, outcome.codes) == (SUCCESS, [])
    [old] = live.registered([original.unique_id])
    assert old.status == (Status.DEPRECATED if kind in AssociationType.REPLACING else Status.APPROVED)
    _, docs = live.retrieve([(live.repository_id, original.unique_id), (live.repository_id, new.unique_id)])
    assert docs[new.unique_id][1] == b"the next version"
    assert docs[original.unique_id][1] == contents[original.id]


def test_1113_documents_in_folders(live: Live) -> None:
    from xds.metadata.ebrim import decode_registry_object_list
    from xds.metadata.responses import parse_adhoc_query_response
    from xds.query import StoredQueryId, build_adhoc_query

    pid, sub, contents = _submission(live, entries=2, with_folder=True)
    assert live.submit(sub, contents).status == SUCCESS
    request = build_adhoc_query(StoredQueryId.FIND_FOLDERS, {"$XDSFolderPatientId": pid, "$XDSFolderStatus": [Status.APPROVED]})
    with live.registry.call(Action.ITI18, request) as reply:
        object_list = parse_adhoc_query_response(reply.body).object_list
    [folder] = decode_registry_object_list(object_list).submission.folders

    # A new document into the existing folder ...
    extra = f.submission(pid)
    new = extra.document_entries[0]
    inner = f.has_member(folder.id, new.id, status=None)
    extra.associations += [inner, f.has_member(extra.submission_sets[0].id, inner.id, status=None)]
    assert live.submit(extra, {new.id: with_content(new, b"new member")}).status == SUCCESS
    # ... then an existing document into it (a submission without documents).
    loose_sub = f.submission(pid)
    loose = loose_sub.document_entries[0]
    assert live.submit(loose_sub, {loose.id: with_content(loose, b"loose")}).status == SUCCESS
    outcome = live.submit(f.add_to_folder(pid, folder.id, _entry_uuid(live, loose.unique_id)), {})
    assert (outcome.status, outcome.codes) == (SUCCESS, [])
    assert len(live.store_files()) == 4


# -- ITI-43 (xds-notes §8.3) --------------------------------------------------------------------------
def test_12029_12021_retrieve_one_and_two_documents_bytes_identical(live: Live) -> None:
    _, sub, contents = _submission(live, entries=2, size=3 << 20)
    assert live.submit(sub, contents).status == SUCCESS
    uids = [de.unique_id for de in sub.document_entries]
    outcome, docs = live.retrieve([(live.repository_id, uids[0])])
    assert outcome.status == SUCCESS and docs[uids[0]][1] == contents[sub.document_entries[0].id]
    outcome, docs = live.retrieve([(live.repository_id, u) for u in uids])
    assert outcome.status == SUCCESS
    assert {u: d for u, (_, d) in docs.items()} == {de.unique_id: contents[de.id] for de in sub.document_entries}


def test_retrieve_mixes_documents_from_memory_and_from_disk_and_reports_a_lost_file(live: Live) -> None:
    """Small documents are read with the index lookup and sent from memory, a large one streams
    from its file; a document whose file is gone is an error for that document only."""
    pid = live.feed(f.patient_id())
    sub = f.submission(pid, entries=3)
    sizes = (5_000, 3 << 20, 7_000)
    contents = {de.id: with_content(de, os.urandom(n)) for de, n in zip(sub.document_entries, sizes, strict=True)}
    assert live.submit(sub, contents).status == SUCCESS
    small, large, lost = sub.document_entries
    digest = hashlib.sha256(contents[lost.id]).hexdigest()
    (live.store_dir / "objects" / digest[:2] / digest[2:4] / digest).unlink()
    outcome, docs = live.retrieve([(live.repository_id, de.unique_id) for de in (small, large, lost)])
    assert (outcome.status, outcome.codes) == (PARTIAL, ["XDSDocumentUniqueIdError"])
    assert outcome.errors[0].location == lost.unique_id
    assert docs == {de.unique_id: (de.mime_type, contents[de.id]) for de in (small, large)}


@pytest.mark.parametrize("mime", ["application/dicom", "text/xml", "application/pdf"])
def test_12360_mime_type_round_trip(live: Live, mime: str) -> None:
    _, sub, contents = _submission(live)
    de = sub.document_entries[0]
    de.mime_type = mime
    assert live.submit(sub, contents).status == SUCCESS
    _, docs = live.retrieve([(live.repository_id, de.unique_id)])
    assert docs[de.unique_id][0] == mime


def test_unknown_repository_id(live: Live) -> None:
    _, sub, contents = _submission(live)
    assert live.submit(sub, contents).status == SUCCESS
    uid = sub.document_entries[0].unique_id
    outcome, docs = live.retrieve([("1.2.3.999", uid)])
    assert (outcome.status, outcome.codes, docs) == (FAILURE, ["XDSUnknownRepositoryId"], {})
    assert outcome.errors[0].location == uid


def test_home_community_id_is_echoed_only_when_sent(live: Live) -> None:
    _, sub, contents = _submission(live, entries=2)
    assert live.submit(sub, contents).status == SUCCESS
    first, second = (de.unique_id for de in sub.document_entries)
    home = "urn:oid:1.3.6.1.4.1.21367.13.70.101"
    outcome, _ = live.retrieve([(live.repository_id, first, home), (live.repository_id, second)])
    assert outcome.status == SUCCESS
    ns = "{urn:ihe:iti:xds-b:2007}"
    homes = {r.findtext(f"{ns}DocumentUniqueId"): r.findtext(f"{ns}HomeCommunityId") for r in outcome.body.iter(f"{ns}DocumentResponse")}
    assert homes == {first: home, second: None}


def test_inline_base64_request_is_answered_as_simple_soap(live: Live) -> None:
    _, sub, contents = _submission(live)
    outcome = live.submit(sub, contents, inline=True)
    assert (outcome.status, outcome.is_mtom) == (SUCCESS, False)
    de = sub.document_entries[0]
    _, docs = live.retrieve([(live.repository_id, de.unique_id)])
    assert docs[de.unique_id][1] == contents[de.id]


def test_simple_soap_retrieve_request_gets_an_mtom_answer(live: Live) -> None:
    _, sub, contents = _submission(live)
    assert live.submit(sub, contents).status == SUCCESS
    from tests.support.repository import retrieve_body

    uid = sub.document_entries[0].unique_id
    with live.client.call(Action.ITI43, retrieve_body([(live.repository_id, uid)]), mtom=False) as reply:
        assert reply.is_mtom
        assert len(reply.attachments) == 1


# -- TLS (NIST 12028) ---------------------------------------------------------------------------------
def test_12028_retrieve_over_tls(tmp_path: Path, repository_db_url: str) -> None:  # noqa: F811
    import shutil
    import ssl
    import subprocess

    from repository.app import build_repository_app
    from tests.support.repository import registry_app, repository_settings
    from xds.http.client import SoapClient

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    pki = tmp_path / "pki"
    pki.mkdir()
    (pki / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.pem",
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        cwd=pki, check=True, capture_output=True,
    )  # fmt: skip
    app, registry_db = registry_app(tmp_path)
    with ServerThread(app) as registry:
        settings = repository_settings(tmp_path, registry_url=registry.url + "/registry", repository_db=repository_db_url)
        with ServerThread(build_repository_app(settings), ssl_certfile=pki / "server.pem", ssl_keyfile=pki / "server.key") as repo:
            assert repo.url.startswith("https://")
            live = Live(
                registry_url=registry.url + "/registry",
                registry_db=registry_db,
                repository_url=repo.url + "/repository",
                store_dir=tmp_path / "store",
                repository_db=repository_db_url,
            )
            live.client.close()
            live.client = SoapClient(live.url, timeout=30, verify=ssl.create_default_context(cafile=str(pki / "server.pem")))
            try:
                _, sub, contents = _submission(live)
                assert live.submit(sub, contents).status == SUCCESS
                de = sub.document_entries[0]
                outcome, docs = live.retrieve([(live.repository_id, de.unique_id)])
                assert outcome.status == SUCCESS and docs[de.unique_id][1] == contents[de.id]
            finally:
                live.close()


# -- what the registry receives, and what comes back from it -------------------------------------------
class FakeRegistry:
    """A SOAP endpoint standing in for the registry: records ITI-42 requests, answers as told, and
    forwards to the real registry when given one."""

    def __init__(
        self,
        *,
        answer: etree._Element | None = None,
        forward_to: str | None = None,
        fault_after_forward: bool = False,
        drop: bool = False,
        delay: float = 0.0,
    ) -> None:
        self.answer = answer
        self.forward_to = forward_to
        self.fault_after_forward = fault_after_forward
        self.drop = drop
        self.delay = delay
        self.received: list[etree._Element] = []

    async def _forward(self, action: str, body: etree._Element) -> etree._Element:
        assert self.forward_to is not None
        async with AsyncSoapClient(self.forward_to, timeout=30) as client:
            with await client.call(action, body) as reply:
                return reply.body

    async def register(self, request: SoapRequest) -> SoapResponse:
        self.received.append(etree.fromstring(etree.tostring(request.body)))
        if self.delay:
            await anyio.sleep(self.delay)
        if self.drop:
            raise RuntimeError("the registry lost the request")
        if self.forward_to is not None:
            body = await self._forward(Action.ITI42, request.body)
            if self.fault_after_forward:
                raise RuntimeError("registered, then failed to answer")
            return SoapResponse(action=Action.ITI42_RESPONSE, body=body)
        assert self.answer is not None
        return SoapResponse(action=Action.ITI42_RESPONSE, body=etree.fromstring(etree.tostring(self.answer)))

    async def query(self, request: SoapRequest) -> SoapResponse:
        return SoapResponse(action=Action.ITI18_RESPONSE, body=await self._forward(Action.ITI18, request.body))

    def app(self, spool: Path):  # type: ignore[no-untyped-def]
        service = SoapService(path="/registry", handlers={Action.ITI42: self.register, Action.ITI18: self.query})
        return soap_app(services=[service], spool_dir=spool)


def test_registry_response_is_relayed_unchanged(tmp_path: Path, repository_db_url: str) -> None:  # noqa: F811
    answer = build_registry_response(
        [
            RegistryError("XDSPatientIdDoesNotMatch", "patient <A> & patient 'B' differ", "Document01"),
            RegistryError("XDSExtraMetadataNotSaved", "urn:x:slot ignored", "Document01", Severity.WARNING),
        ]
    )
    answer.set("requestId", "relay-check")
    fake = FakeRegistry(answer=answer)
    with ServerThread(fake.app(tmp_path / "fake")) as registry:
        with live_pair(tmp_path, repository_db_url, registry_url=registry.url + "/registry") as live:
            _, sub, contents = _submission(live)
            outcome = live.submit(sub, contents)
            assert etree.tostring(outcome.body, method="c14n", exclusive=True) == etree.tostring(
                answer, method="c14n", exclusive=True
            )
            _assert_nothing_kept(live)


def test_forwarded_metadata_is_the_submitted_tree_plus_the_repository_slots(tmp_path: Path, repository_db_url: str) -> None:  # noqa: F811
    from tests.support.repository import pnr_body
    from xds.metadata.model import Slot

    fake = FakeRegistry(answer=build_registry_response([]))
    with ServerThread(fake.app(tmp_path / "fake")) as registry:
        with live_pair(tmp_path, repository_db_url, registry_url=registry.url + "/registry") as live:
            _, sub, contents = _submission(live, entries=2)
            sub.document_entries[0].extra_slots.append(Slot("urn:example:slot", ("keep  me", "and me"), None))
            sub.document_entries[1].hash = sub.document_entries[1].size = None
            body, parts = pnr_body(sub, contents)
            submitted = etree.fromstring(etree.tostring(body[0]))
            with live.client.call(Action.ITI41, body, attachments=parts, mtom=True) as reply:
                assert reply.body.get("status") == SUCCESS
            [forwarded] = fake.received
            assert live.index_counts() == {"committed": 2, "blobs": 2}
    rim = f"{{{NS_RIM}}}"

    def strip(tree: etree._Element) -> tuple[bytes, dict[str, dict[str, list[str]]]]:
        copy = etree.fromstring(etree.tostring(tree))
        added: dict[str, dict[str, list[str]]] = {}
        for eo in copy.iter(f"{rim}ExtrinsicObject"):
            for slot in list(eo.iterchildren(f"{rim}Slot")):
                if slot.get("name") in ("hash", "size", "repositoryUniqueId"):
                    added.setdefault(eo.get("id"), {})[slot.get("name")] = [v.text for v in slot.iter(f"{rim}Value")]
                    eo.remove(slot)
        return etree.tostring(copy, method="c14n", exclusive=True), added

    rest_forwarded, slots = strip(forwarded)
    rest_submitted, _ = strip(submitted)
    assert rest_forwarded == rest_submitted
    for de in sub.document_entries:
        data = contents[de.id]
        assert slots[de.id] == {
            "hash": [hashlib.sha1(data).hexdigest()],
            "size": [str(len(data))],
            "repositoryUniqueId": [live.repository_id],
        }


def _wait_until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


def test_lost_reply_after_registration_keeps_the_documents(tmp_path: Path, repository_db_url: str) -> None:  # noqa: F811
    """The registry registers but its reply is lost (Receiver fault): the repository asks the
    registry at once (ITI-18), finds the documents and keeps them."""
    fake = FakeRegistry(fault_after_forward=True)
    with ServerThread(fake.app(tmp_path / "fake")) as proxy:
        with live_pair(tmp_path, repository_db_url, registry_url=proxy.url + "/registry") as live:
            fake.forward_to = live.registry_url
            _, sub, contents = _submission(live)
            outcome = live.submit(sub, contents)
            assert (outcome.status, outcome.codes) == (SUCCESS, [])
            de = sub.document_entries[0]
            _, docs = live.retrieve([(live.repository_id, de.unique_id)])
            assert docs[de.unique_id][1] == contents[de.id]


def test_lost_request_is_settled_by_the_reconciler(tmp_path: Path, repository_db_url: str) -> None:  # noqa: F811
    """The registry loses the request (Receiver fault): the outcome is unknown, the documents wait
    for the grace period, then the reconciler finds them unregistered and removes them."""
    fake = FakeRegistry(drop=True)
    with ServerThread(fake.app(tmp_path / "fake")) as proxy:
        with live_pair(
            tmp_path, repository_db_url, registry_url=proxy.url + "/registry", pending_grace=0.5, reconcile_interval=0.2
        ) as live:
            fake.forward_to = live.registry_url
            _, sub, contents = _submission(live)
            outcome = live.submit(sub, contents)
            assert (outcome.status, outcome.codes) == (FAILURE, ["XDSRegistryError"])
            assert "outcome is not known" in outcome.errors[0].context
            _wait_until(lambda: live.index_counts().get("pending", 0) == 0)
            _assert_nothing_kept(live)
            assert live.registered([sub.document_entries[0].unique_id]) == []


def test_late_registration_is_settled_by_the_reconciler(tmp_path: Path, repository_db_url: str) -> None:  # noqa: F811
    """The registry answers only after the repository gave up (timeout) but does register: the
    documents are kept once the reconciler sees them in the registry."""
    fake = FakeRegistry(delay=2.0)
    with ServerThread(fake.app(tmp_path / "fake")) as proxy:
        with live_pair(
            tmp_path,
            repository_db_url,
            registry_url=proxy.url + "/registry",
            registry_timeout=0.4,
            pending_grace=4.0,
            reconcile_interval=0.2,
        ) as live:
            fake.forward_to = live.registry_url
            _, sub, contents = _submission(live)
            outcome = live.submit(sub, contents)
            assert (outcome.status, outcome.codes) == (FAILURE, ["XDSRegistryNotAvailable"])
            assert live.index_counts().get("pending") == 1
            _wait_until(lambda: live.index_counts().get("committed") == 1)
            de = sub.document_entries[0]
            assert live.registered([de.unique_id])[0].repository_unique_id == live.repository_id
            _, docs = live.retrieve([(live.repository_id, de.unique_id)])
            assert docs[de.unique_id][1] == contents[de.id]


def test_wsdl_is_served(live: Live) -> None:
    import httpx

    response = httpx.get(live.url + "?wsdl", timeout=10)
    assert response.status_code == 200
    assert b"DocumentRepository_ProvideAndRegisterDocumentSet-b" in response.content
    assert live.url.encode() in response.content
