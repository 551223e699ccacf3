"""The optimised ebRIM encoder writes exactly the bytes of the straightforward one.

:mod:`tests.support.ebrim_reference_encode` is the encoder as first written (one regex per value,
attributes joined per element); :mod:`xds.metadata.ebrim_encode` puts elements together from
fragments escaped at import. Given the same model and the same random ids (``uuid.uuid4`` made
deterministic), both must give the same bytes, or the same error for text XML cannot carry:
for arbitrary objects of every kind in both forms, for the metadata fixtures, for the factory's
submissions and for every code of the shared affinity domain.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import ebrim_reference_encode as reference
from tests.support import factory as f
from xds.metadata import ebrim_encode as fast
from xds.metadata.ebrim import decode_submit_objects_request, encode_object, encode_submit_objects_request
from xds.metadata.model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    Folder,
    RegistryObject,
    Slot,
    Submission,
    SubmissionSet,
)
from xds.vocabulary import AssociationType, ObjectType, Status
from xds.xml import parse_xml, to_bytes

DATA = Path(__file__).resolve().parent / "data" / "metadata"


@contextmanager
def _ids_from(seed: int) -> Iterator[None]:
    """Make uuid.uuid4 a seeded sequence (both encoders draw their ids from it)."""
    rng = random.Random(seed)
    original = uuid.uuid4
    uuid.uuid4 = lambda: uuid.UUID(int=rng.getrandbits(128), version=4)  # type: ignore[assignment]
    try:
        yield
    finally:
        uuid.uuid4 = original  # type: ignore[assignment]


def _outcome(encode: Callable[[], bytes], seed: int) -> tuple[str, object]:
    with _ids_from(seed):
        try:
            return "bytes", encode()
        except ValueError as exc:
            return "ValueError", str(exc)


def assert_same_bytes(obj: RegistryObject, *, for_query: bool, seed: int = 7) -> None:
    expected = _outcome(lambda: reference.encode_object_bytes(obj, for_query=for_query), seed)
    actual = _outcome(lambda: fast.encode_object_bytes(obj, for_query=for_query), seed)
    assert actual == expected


def _reparsed(encode: Callable[[], bytes]) -> Callable[[], bytes]:
    """The bytes lxml writes for what ``encode`` wrote (the message functions return elements)."""
    return lambda: to_bytes(parse_xml(encode()))


def assert_same_submission_bytes(sub: Submission, seed: int = 11) -> None:
    expected = _outcome(_reparsed(lambda: reference.encode_submit_objects_request_bytes(sub)), seed)
    actual = _outcome(lambda: to_bytes(encode_submit_objects_request(sub)), seed)
    assert actual == expected
    for_query = _outcome(_reparsed(lambda: reference.encode_registry_object_list_bytes(sub)), seed)
    assert _outcome(lambda: to_bytes(fast.encode_registry_object_list(sub)), seed) == for_query
    for obj in sub.all_objects():
        assert_same_bytes(obj, for_query=True, seed=seed)
        assert_same_bytes(obj, for_query=False, seed=seed)


# -- arbitrary objects ---------------------------------------------------------------------------

# Every character class the escaping distinguishes: markup characters, white space that attribute
# normalisation would eat, text XML cannot carry (C0 controls, U+FFFE, lone surrogates) and the rest.
_SPECIAL = st.sampled_from(['&', '<', '>', '"', "'", "\t", "\n", "\r", "\x00", "\x0b", "\x7f", "\ufffe", "\ud800", "é", "😀"])
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | _SPECIAL, max_size=12)
_CLEAN = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from('&<>"\t\n\r'), max_size=12)
_ANY = _TEXT | _CLEAN
_OPT = st.none() | _ANY
_LIST = st.lists(_ANY, max_size=3)
_CODE = st.builds(Code, _ANY, _ANY | st.just(""), _ANY | st.just(""))
_SLOT = st.builds(Slot, _ANY, _LIST.map(tuple), _OPT)
_AUTHOR = st.builds(
    Author,
    person=_OPT,
    institutions=_LIST,
    roles=_LIST,
    specialties=_LIST,
    telecommunications=_LIST,
    extra_slots=st.lists(_SLOT, max_size=2),
)
_BASE = {
    "id": _ANY,
    "lid": _OPT,
    "version": _OPT,
    "home": _OPT,
    "status": st.none() | st.sampled_from([Status.APPROVED, Status.DEPRECATED]) | _ANY,
    "title": _OPT,
    "comments": _OPT,
    "extra_slots": st.lists(_SLOT, max_size=2),
}
_DOCUMENT_ENTRY = st.builds(
    DocumentEntry,
    **_BASE,
    object_type=st.sampled_from([ObjectType.STABLE_DOCUMENT_ENTRY, ""]) | _ANY,
    mime_type=st.sampled_from(["text/plain", ""]) | _ANY,
    unique_id=_OPT,
    patient_id=_OPT,
    class_code=st.none() | _CODE,
    confidentiality_codes=st.lists(_CODE, max_size=2),
    event_codes=st.lists(_CODE, max_size=2),
    format_code=st.none() | _CODE,
    healthcare_facility_type_code=st.none() | _CODE,
    practice_setting_code=st.none() | _CODE,
    type_code=st.none() | _CODE,
    authors=st.lists(_AUTHOR, max_size=2),
    creation_time=_OPT,
    hash=_OPT,
    size=_OPT,
    repository_unique_id=_OPT,
    language_code=_OPT,
    legal_authenticator=_OPT,
    service_start_time=_OPT,
    service_stop_time=_OPT,
    source_patient_id=_OPT,
    source_patient_info=_LIST,
    uri=_OPT,
    document_availability=_OPT,
    reference_ids=_LIST,
    limited_metadata=st.booleans(),
)
_SUBMISSION_SET = st.builds(
    SubmissionSet,
    **_BASE,
    unique_id=_OPT,
    source_id=_OPT,
    patient_id=_OPT,
    submission_time=_OPT,
    content_type_code=st.none() | _CODE,
    authors=st.lists(_AUTHOR, max_size=2),
    intended_recipients=_LIST,
    limited_metadata=st.booleans(),
)
_FOLDER = st.builds(
    Folder,
    **_BASE,
    unique_id=_OPT,
    patient_id=_OPT,
    codes=st.lists(_CODE, max_size=2),
    last_update_time=_OPT,
    limited_metadata=st.booleans(),
)
_ASSOCIATION = st.builds(
    Association,
    **_BASE,
    association_type=st.sampled_from(AssociationType.ALL) | _ANY,
    source=_ANY,
    target=_ANY,
    submission_set_status=_OPT,
    documentation=st.lists(_CODE, max_size=2),
)
_OBJECT = _DOCUMENT_ENTRY | _SUBMISSION_SET | _FOLDER | _ASSOCIATION


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=_OBJECT, for_query=st.booleans(), seed=st.integers(0, 2**32))
def test_any_object_encodes_to_the_same_bytes_or_the_same_error(obj: RegistryObject, for_query: bool, seed: int) -> None:
    assert_same_bytes(obj, for_query=for_query, seed=seed)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sets=st.lists(_SUBMISSION_SET, max_size=2),
    entries=st.lists(_DOCUMENT_ENTRY, max_size=2),
    folders=st.lists(_FOLDER, max_size=2),
    associations=st.lists(_ASSOCIATION, max_size=3),
    refs=_LIST,
    seed=st.integers(0, 2**32),
)
def test_any_message_encodes_to_the_same_bytes(  # type: ignore[no-untyped-def]
    sets, entries, folders, associations, refs, seed
) -> None:
    sub = Submission(submission_sets=sets, document_entries=entries, folders=folders, associations=associations, object_refs=refs)
    assert_same_submission_bytes(sub, seed)


def test_the_error_for_text_xml_cannot_carry_names_the_first_bad_character() -> None:
    de = f.document_entry(f.patient_id(), title="ok\x01then\x02", comments="\ud800")
    for encode in (reference.encode_object_bytes, fast.encode_object_bytes):
        with pytest.raises(ValueError, match="U\\+0001"):
            encode(de)
    # Outside ASCII the first offender is found the same way.
    de = f.document_entry(f.patient_id(), title="é\ufffe", comments="\x02")
    assert _outcome(lambda: fast.encode_object_bytes(de), 1) == ("ValueError", "character U+FFFE cannot be written in XML metadata")
    assert _outcome(lambda: reference.encode_object_bytes(de), 1) == _outcome(lambda: fast.encode_object_bytes(de), 1)


# -- real metadata -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.xml")))
def test_fixture_messages_encode_to_the_same_bytes(name: str) -> None:
    sub = decode_submit_objects_request(parse_xml((DATA / name).read_bytes())).submission
    assert sub.all_objects()
    assert_same_submission_bytes(sub)


def test_factory_submissions_encode_to_the_same_bytes() -> None:
    pid = f.patient_id()
    subs = [
        f.submission(pid),
        f.submission(pid, entries=3, with_folder=True, extra_slot=Slot("urn:example:slot", ("a", "b"), "typed")),
        f.replacement(pid, "urn:uuid:0f0e0d0c-0b0a-4908-8706-050403020100"),
        f.add_to_folder(pid, "urn:uuid:10000000-0000-4000-8000-000000000001", "urn:uuid:10000000-0000-4000-8000-000000000002"),
    ]
    for sub in subs:
        # The registry's stored form: ids assigned, status, lid and version set.
        for obj in sub.all_objects():
            obj.status, obj.lid, obj.version = Status.APPROVED, obj.id, "1"
        assert_same_submission_bytes(sub)


def test_every_code_of_the_shared_affinity_domain_encodes_to_the_same_bytes(codes_xml: Path) -> None:
    from profiles.codes import load_code_set

    domain = load_code_set(codes_xml)
    pid = f.patient_id()
    single = {
        "classCode": "class_code",
        "formatCode": "format_code",
        "healthcareFacilityTypeCode": "healthcare_facility_type_code",
        "practiceSettingCode": "practice_setting_code",
        "typeCode": "type_code",
    }
    checked = 0
    for name, attribute in single.items():
        for code in domain.codes(name):
            assert_same_bytes(f.document_entry(pid, **{attribute: code}), for_query=True)
            checked += 1
    entry = f.document_entry(
        pid, confidentiality_codes=list(domain.codes("confidentialityCode")), event_codes=list(domain.codes("eventCodeList"))
    )
    assert_same_bytes(entry, for_query=True)
    assert_same_bytes(entry, for_query=False)
    for code in domain.codes("contentTypeCode"):
        assert_same_bytes(f.submission_set(pid, content_type_code=code), for_query=True)
        checked += 1
    folder = f.folder(pid, codes=list(domain.codes("folderCodeList")) or [f.FOLDER_CODE])
    assert_same_bytes(folder, for_query=True)
    assert checked > 20


def test_encode_object_parses_the_same_bytes() -> None:
    de = f.document_entry(f.patient_id(), title='a "quoted" <title> & more\ttab')
    with _ids_from(3):
        element = encode_object(de)
    assert ("bytes", to_bytes(element)) == _outcome(_reparsed(lambda: reference.encode_object_bytes(de)), 3)
