"""The repository's ITI-41 checks and metadata augmentation, without I/O (sans-I/O core)."""

from __future__ import annotations

import hashlib
from copy import deepcopy

import pytest
from lxml import etree

from repository.iti41 import analyze, augment
from repository.iti43 import DocumentRequest, answer, parse_request, response_status
from tests.support import factory as f
from tests.support.repository import pnr_body, retrieve_body, with_content
from xds.soap.attachments import Attachment
from xds.soap.mtom import XOP_INCLUDE, binary_content
from xds.vocabulary import NS_RIM, NS_XDS, ResponseStatus

RIM = f"{{{NS_RIM}}}"
REPO = "1.2.3.4.5"


def _binary_for(parts):  # type: ignore[no-untyped-def]
    by_cid = {p.content_id: Attachment.from_bytes(p.source, content_id=p.content_id, content_type=p.content_type) for p in parts}

    def binary(element: etree._Element) -> Attachment:
        return binary_content(element, by_cid)

    return binary


def _analyze(sub, contents, **kwargs):  # type: ignore[no-untyped-def]
    body, parts = pnr_body(sub, contents, **kwargs)
    return analyze(body, binary=_binary_for(parts)), body


def _codes(analysis) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(e.code_text for e in analysis.errors)


def _slot_values(entry: etree._Element, name: str) -> list[list[str]]:
    return [
        [v.text for v in slot.iter(f"{RIM}Value")]
        for slot in entry.iterchildren(f"{RIM}Slot")
        if slot.get("name") == name
    ]


def test_a_valid_submission_passes_with_its_documents() -> None:
    sub = f.submission(f.patient_id(), entries=2)
    contents = {de.id: with_content(de, f"body {de.id}".encode()) for de in sub.document_entries}
    analysis, _ = _analyze(sub, contents)
    assert analysis.ok, analysis.errors
    assert [(d.entry_id, d.unique_id, d.mime_type) for d in analysis.documents] == [
        (de.id, de.unique_id, de.mime_type) for de in sub.document_entries
    ]
    assert [d.attachment.read_bytes() for d in analysis.documents] == list(contents.values())


def test_inline_base64_documents_are_accepted() -> None:
    sub = f.submission(f.patient_id())
    de = sub.document_entries[0]
    analysis, _ = _analyze(sub, {de.id: with_content(de, b"inline bytes")}, inline=True)
    assert analysis.ok, analysis.errors
    assert analysis.documents[0].attachment.read_bytes() == b"inline bytes"


@pytest.mark.parametrize(
    ("change", "ok"),
    [
        ("none", True),
        ("uppercase-hash", True),
        ("absent", True),
        ("wrong-hash", False),
        ("wrong-size", False),
        ("size-not-a-number", False),
    ],
)
def test_submitted_hash_and_size_must_describe_the_bytes(change: str, ok: bool) -> None:
    sub = f.submission(f.patient_id())
    de = sub.document_entries[0]
    data = with_content(de, b"the document as sent", hash_and_size=change != "absent")
    if change == "uppercase-hash":
        de.hash = (de.hash or "").upper()
    elif change == "wrong-hash":
        de.hash = hashlib.sha1(b"another document").hexdigest()
    elif change == "wrong-size":
        de.size = str(len(data) + 1)
    elif change == "size-not-a-number":
        de.size = "twenty"
    analysis, _ = _analyze(sub, {de.id: data})
    assert analysis.ok is ok
    if not ok:
        assert "XDSRepositoryMetadataError" in _codes(analysis)
        assert any(e.location == de.unique_id for e in analysis.errors)


def test_document_entry_without_document_and_document_without_entry() -> None:
    sub = f.submission(f.patient_id(), entries=2)
    first, second = sub.document_entries
    contents = {first.id: with_content(first, b"one"), "Stray": b"no metadata for me"}
    with_content(second, b"never sent")
    analysis, _ = _analyze(sub, contents)
    assert _codes(analysis) == ["XDSMissingDocument", "XDSMissingDocumentMetadata"]
    by_code = {e.code_text: e.location for e in analysis.errors}
    assert by_code == {"XDSMissingDocument": second.id, "XDSMissingDocumentMetadata": "Stray"}


def test_duplicate_unique_id_in_the_message() -> None:
    sub = f.submission(f.patient_id(), entries=2)
    first, second = sub.document_entries
    second.unique_id = first.unique_id
    contents = {de.id: with_content(de, de.id.encode()) for de in sub.document_entries}
    analysis, _ = _analyze(sub, contents)
    assert "XDSRepositoryDuplicateUniqueIdInMessage" in _codes(analysis)
    assert not analysis.ok


def test_metadata_errors_use_the_repository_code() -> None:
    sub = f.submission(f.patient_id())
    de = sub.document_entries[0]
    de.creation_time = "not a time"
    analysis, _ = _analyze(sub, {de.id: with_content(de, b"x")})
    assert "XDSRepositoryMetadataError" in _codes(analysis)
    assert "XDSRegistryMetadataError" not in _codes(analysis)


def test_wrong_body_is_an_error_not_a_crash() -> None:
    analysis = analyze(retrieve_body([(REPO, "1.2")]), binary=lambda e: Attachment.from_bytes(b"", content_id="", content_type=""))
    assert _codes(analysis) == ["XDSRepositoryMetadataError"]


def test_augment_adds_and_replaces_slots_and_keeps_everything_else() -> None:
    sub = f.submission(f.patient_id(), entries=2)
    first, second = sub.document_entries
    data_1 = with_content(first, b"first document")
    first.hash = (first.hash or "").upper()
    first.repository_unique_id = "1.9.9.9"
    data_2 = with_content(second, b"second document", hash_and_size=False)
    second.repository_unique_id = None
    analysis, body = _analyze(sub, {first.id: data_1, second.id: data_2})
    assert analysis.ok, analysis.errors
    sor = analysis.submit_objects_request
    assert sor is not None
    before = deepcopy(sor)
    augment(sor, analysis.documents, repository_id=REPO)

    entries = {e.get("id"): e for e in sor.iter(f"{RIM}ExtrinsicObject")}
    for de, data in ((first, data_1), (second, data_2)):
        entry = entries[de.id]
        assert _slot_values(entry, "hash") == [[hashlib.sha1(data).hexdigest()]]
        assert _slot_values(entry, "size") == [[str(len(data))]]
        assert _slot_values(entry, "repositoryUniqueId") == [[REPO]]
        # ebRIM order: every Slot before Name/Description/Classification/ExternalIdentifier.
        tags = [etree.QName(c).localname for c in entry if isinstance(c.tag, str)]
        assert tags == sorted(tags, key=lambda t: t != "Slot")

    # Everything but those three slots is exactly what was submitted.
    def without_added(tree: etree._Element) -> bytes:
        copy = deepcopy(tree)
        for slot in list(copy.iter(f"{RIM}Slot")):
            if slot.get("name") in ("hash", "size", "repositoryUniqueId") and slot.getparent().tag == f"{RIM}ExtrinsicObject":
                slot.getparent().remove(slot)
        return etree.tostring(copy, method="c14n")

    assert without_added(sor) == without_added(before)
    assert body.find(f"{{{NS_XDS}}}Document").find(XOP_INCLUDE) is not None


def test_retrieve_request_parsing_and_answers() -> None:
    requests, errors = parse_request(retrieve_body([(REPO, "1.1"), ("7.7.7", "1.2"), (REPO, "1.3", "urn:oid:1.2.3")]))
    assert errors == []
    assert requests[2] == DocumentRequest(home="urn:oid:1.2.3", repository_id=REPO, document_id="1.3")
    found, problems = answer(requests, repository_id=REPO, available={"1.1": "doc-1.1"})
    assert [doc for _, doc in found] == ["doc-1.1"]
    assert sorted((e.code_text, e.location) for e in problems) == [
        ("XDSDocumentUniqueIdError", "1.3"),
        ("XDSUnknownRepositoryId", "1.2"),
    ]
    assert response_status(found, problems) == ResponseStatus.PARTIAL_SUCCESS
    assert response_status([], problems) == ResponseStatus.FAILURE
    assert response_status(found, []) == ResponseStatus.SUCCESS


def test_retrieve_request_without_document_requests() -> None:
    requests, errors = parse_request(etree.Element(f"{{{NS_XDS}}}RetrieveDocumentSetRequest"))
    assert requests == [] and [e.code_text for e in errors] == ["XDSRepositoryError"]
