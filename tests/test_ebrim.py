"""The ebRIM 3.0 codec: golden messages, round trips, schema validity, query form and the wire
findings the model cannot carry (ITI TF-3 §4.2.3, §4.2.2; xds-notes §3)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.support import factory as f
from xds.errors import ErrorCode
from xds.metadata.hl7types import check_uuid_urn
from xds.metadata.ebrim import (
    decode_registry_object_list,
    decode_submit_objects_request,
    encode_object,
    encode_object_refs,
    encode_registry_object_list,
    encode_submit_objects_request,
)
from xds.metadata.model import Association, Author, Code, DocumentEntry, Folder, Slot, Submission, SubmissionSet
from xds.metadata.responses import build_adhoc_query_response
from xds.vocabulary import (
    EXTERNAL_IDENTIFIER_NAMES,
    NS_LCM,
    NS_RIM,
    AssociationType,
    IdScheme,
    Node,
    ObjectType,
    Scheme,
    Status,
)
from xds.xml import parse_xml

DATA = Path(__file__).resolve().parent / "data" / "metadata"
FIXTURES = sorted(p.name for p in DATA.glob("*.xml"))
R = f"{{{NS_RIM}}}"
ORDER = ["Slot", "Name", "Description", "VersionInfo", "Classification", "ExternalIdentifier"]


def load(name: str) -> etree._Element:
    return parse_xml((DATA / name).read_bytes())


def reparse(el: etree._Element) -> etree._Element:
    return parse_xml(etree.tostring(el))


@pytest.fixture(scope="module")
def lcm_schema(schemas_dir: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(schemas_dir / "schema" / "ebRS" / "lcm.xsd")))


@pytest.fixture(scope="module")
def query_schema(schemas_dir: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(schemas_dir / "schema" / "ebRS" / "query.xsd")))


def test_fixtures_exist() -> None:
    assert {"one_document.xml", "two_documents_folder.xml", "rplc.xml", "folder_classification_outside.xml"} <= set(FIXTURES)


# -- golden messages ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_is_schema_valid_and_decodes_without_findings(name: str, lcm_schema: etree.XMLSchema) -> None:
    el = load(name)
    assert lcm_schema.validate(el), lcm_schema.error_log
    decoded = decode_submit_objects_request(el)
    assert decoded.findings == []
    assert len(decoded.submission.submission_sets) == 1


@pytest.mark.parametrize("name", FIXTURES)
def test_decode_encode_decode_is_the_identity_and_schema_valid(name: str, lcm_schema: etree.XMLSchema) -> None:
    first = decode_submit_objects_request(load(name)).submission
    encoded = encode_submit_objects_request(first)
    assert lcm_schema.validate(encoded), lcm_schema.error_log
    second = decode_submit_objects_request(reparse(encoded))
    assert second.findings == []
    assert second.submission == first


def test_one_document_golden_values() -> None:
    sub = decode_submit_objects_request(load("one_document.xml")).submission
    (ss,) = sub.submission_sets
    (de,) = sub.document_entries
    (a,) = sub.associations
    assert ss.id == "SubmissionSet01"
    assert ss.unique_id == "1.3.6.1.4.1.21367.2005.3.7.20250301.1"
    assert ss.source_id == "1.3.6.1.4.1.21367.2005.3.7"
    assert ss.patient_id == "IHERED-2718^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
    assert ss.submission_time == "20250301120000"
    assert ss.content_type_code == Code("22232009", "2.16.840.1.113883.6.96", "Hospital")
    assert ss.title == "CT chest for patient sharing" and ss.comments == "Released by the Edge Server"
    assert ss.intended_recipients[1] == "||^^Internet^radiology@mercy.example.org"
    assert ss.authors[0].person.startswith("7788^Radiant^Rita")

    assert de.id == "Document01"
    assert de.object_type == ObjectType.STABLE_DOCUMENT_ENTRY
    assert de.mime_type == "application/dicom"
    assert de.unique_id == "1.2.826.0.1.3680043.8.1055.1.20250301115500.7"
    assert de.patient_id == ss.patient_id
    assert de.class_code == Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1", "Images")
    assert de.confidentiality_codes == [Code("N", "2.16.840.1.113883.5.25", "normal")]
    assert [c.code for c in de.event_codes] == ["CT", "43799004"]
    assert de.format_code == Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1", "Key Object Selection Document")
    assert de.healthcare_facility_type_code is not None and de.healthcare_facility_type_code.code == "22232009"
    assert de.practice_setting_code is not None and de.practice_setting_code.code == "309964003"
    assert de.type_code is not None and de.type_code.code == "18748-4"
    assert de.hash == "4CF1A8B0E5D8C2B9A1F0E3D7C6B5A4938271605F"
    assert de.size == "2874" and de.size_bytes == 2874
    assert de.language_code == "en-US"
    assert de.repository_unique_id == "1.3.6.1.4.1.21367.13.40.216"
    assert (de.service_start_time, de.service_stop_time) == ("202502281400", "202502281430")
    assert de.legal_authenticator is not None and de.legal_authenticator.startswith("7788^")
    assert de.source_patient_id == "MRN-00451^^^&1.3.6.1.4.1.21367.2005.3.7.1&ISO"
    assert [v.split("|")[0] for v in de.source_patient_info] == ["PID-3", "PID-5", "PID-7", "PID-8", "PID-11"]
    assert de.reference_ids[0].endswith("^urn:ihe:iti:xds:2013:accession")
    assert de.title == "CT CHEST WITH CONTRAST"
    (author,) = de.authors
    assert author.roles == ["Radiologist"] and author.specialties == ["Diagnostic Radiology"]
    assert len(author.institutions) == 2 and author.telecommunications == ["^^Internet^rita.radiant@mercy.example.org"]
    assert de.extra_slots == [
        Slot("urn:example:imageshare:releasePolicy", ("routine", "72h")),
        Slot("urn:example:imageshare:edge", ("edge-b", "edge-a")),
    ]
    assert (a.association_type, a.source, a.target, a.submission_set_status) == (
        AssociationType.HAS_MEMBER, "SubmissionSet01", "Document01", "Original")


def test_extra_slots_and_multi_valued_slots_keep_their_order_through_a_round_trip() -> None:
    first = decode_submit_objects_request(load("one_document.xml")).submission
    again = decode_submit_objects_request(reparse(encode_submit_objects_request(first))).submission
    de = again.document_entries[0]
    assert [s.name for s in de.extra_slots] == ["urn:example:imageshare:releasePolicy", "urn:example:imageshare:edge"]
    assert de.extra_slots[1].values == ("edge-b", "edge-a")
    assert de.source_patient_info == first.document_entries[0].source_patient_info
    assert de.source_patient_info[-1] == "PID-11|10 Pinetree^^Webster^MO^63119"


def test_two_documents_and_folder() -> None:
    sub = decode_submit_objects_request(load("two_documents_folder.xml")).submission
    assert [d.id for d in sub.document_entries] == ["Report", "Manifest"]
    assert [c.code for c in sub.document_entries[0].confidentiality_codes] == ["N", "R"]
    assert sub.document_entries[0].unique_id == "1.3.6.1.4.1.21367.2005.3.7.99.1^R-17"
    (fd,) = sub.folders
    assert fd.id == "Folder01" and fd.codes == [Code("Referrals", "1.3.6.1.4.1.21367.2017.3", "Referrals")]
    assert fd.unique_id == "1.3.6.1.4.1.21367.2005.3.7.20250302.3"
    assert len(sub.associations) == 7
    assert {a.target for a in sub.associations if a.source == sub.submission_sets[0].id} == {
        "Report", "Manifest", "Folder01", "folder-report", "folder-manifest"}


def test_rplc_with_documentation() -> None:
    sub = decode_submit_objects_request(load("rplc.xml")).submission
    rplc = next(a for a in sub.associations if a.association_type == AssociationType.RPLC)
    assert rplc.source == "Corrected"
    assert rplc.target == "urn:uuid:2f0c9e4a-7b1d-4e55-9a3c-6d8e1f2a3b4c"
    assert rplc.documentation == [Code("Corrected_Information", "1.3.6.1.4.1.21367.2017.3", "Corrected Information")]
    assert rplc.is_relationship


def test_classification_outside_the_package_is_read_and_written_inside() -> None:
    el = load("folder_classification_outside.xml")
    sub = decode_submit_objects_request(el).submission
    assert [s.id for s in sub.submission_sets] == ["SS"]
    assert [fd.id for fd in sub.folders] == ["FD"]
    assert sub.folders[0].codes[0].code == "Allergy_Treatments"
    encoded = encode_submit_objects_request(sub)
    packages = encoded.findall(f"{R}RegistryObjectList/{R}RegistryPackage")
    nodes = {p.get("id"): [c.get("classificationNode") for c in p.findall(f"{R}Classification") if c.get("classificationNode")]
             for p in packages}
    assert nodes == {"SS": [Node.SUBMISSION_SET], "FD": [Node.FOLDER]}
    assert encoded.findall(f"{R}RegistryObjectList/{R}Classification") == []


def test_top_level_code_classification_and_external_identifier_attach_to_their_object() -> None:
    el = load("folder_classification_outside.xml")
    object_list = el.find(f"{R}RegistryObjectList")
    doc = object_list.find(f"{R}ExtrinsicObject")
    class_code = next(c for c in doc.findall(f"{R}Classification") if c.get("classificationScheme") == Scheme.DE_CLASS_CODE)
    unique_id = next(e for e in doc.findall(f"{R}ExternalIdentifier") if e.get("identificationScheme") == IdScheme.DE_UNIQUE_ID)
    object_list.append(class_code)
    object_list.append(unique_id)
    decoded = decode_submit_objects_request(el)
    assert decoded.findings == []
    de = decoded.submission.document_entries[0]
    assert de.class_code is not None and de.class_code.code == "SUMMARIES"
    assert de.unique_id == "1.3.6.1.4.1.21367.2005.3.7.99.44"


# -- encoding details -------------------------------------------------------------------------------


def _registry_objects(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter(f"{R}ExtrinsicObject", f"{R}RegistryPackage", f"{R}Association",
                                 f"{R}Classification", f"{R}ExternalIdentifier")]


def test_encoding_follows_the_xsd_element_order_and_gives_every_identifiable_an_id() -> None:
    sub = f.submission(f.patient_id(), entries=2, with_folder=True)
    root = encode_submit_objects_request(sub)
    for el in _registry_objects(root):
        assert el.get("id"), etree.tostring(el)[:120]
        ranks = [ORDER.index(etree.QName(c).localname) for c in el if etree.QName(c).localname in ORDER]
        assert ranks == sorted(ranks), [etree.QName(c).localname for c in el]
    ids = [el.get("id") for el in _registry_objects(root)]
    assert len(ids) == len(set(ids))
    generated = [el.get("id") for el in root.iter(f"{R}Classification", f"{R}ExternalIdentifier")]
    assert generated and all(check_uuid_urn(i) is None for i in generated)
    again = [el.get("id") for el in encode_submit_objects_request(sub).iter(f"{R}Classification")]
    assert not set(again) & set(generated)  # fresh ids every time


def test_external_identifiers_carry_registry_object_and_tf_name() -> None:
    sub = f.submission(f.patient_id(), with_folder=True)
    root = encode_submit_objects_request(sub)
    identifiers = list(root.iter(f"{R}ExternalIdentifier"))
    assert len(identifiers) == 3 + 2 + 2
    for e in identifiers:
        owner = e.getparent()
        assert e.get("registryObject") == owner.get("id")
        assert e.get("id").startswith("urn:uuid:")
        assert e.find(f"{R}Name/{R}LocalizedString").get("value") == EXTERNAL_IDENTIFIER_NAMES[e.get("identificationScheme")]


def test_code_classification_shape() -> None:
    de = f.document_entry(f.patient_id())
    el = encode_object(de, for_query=False)
    (c,) = [c for c in el.findall(f"{R}Classification") if c.get("classificationScheme") == Scheme.DE_CLASS_CODE]
    assert c.get("classifiedObject") == de.id
    assert c.get("nodeRepresentation") == de.class_code.code
    assert c.find(f"{R}Slot").get("name") == "codingScheme"
    assert [v.text for v in c.iter(f"{R}Value")] == [de.class_code.scheme]
    assert c.find(f"{R}Name/{R}LocalizedString").get("value") == de.class_code.display
    author = next(c for c in el.findall(f"{R}Classification") if c.get("classificationScheme") == Scheme.DE_AUTHOR)
    assert author.get("nodeRepresentation") == ""


def test_submission_form_writes_no_status_lid_or_version_unless_the_model_has_them() -> None:
    sub = f.submission(f.patient_id())
    root = encode_submit_objects_request(sub)
    for el in root.find(f"{R}RegistryObjectList"):
        assert el.get("status") is None and el.get("lid") is None
        assert el.find(f"{R}VersionInfo") is None
    assert root.tag == f"{{{NS_LCM}}}SubmitObjectsRequest"


def test_query_form_has_status_lid_and_version_on_every_object(query_schema: etree.XMLSchema) -> None:
    """NIST issue #598: lid = id and version "1" when the model has none."""
    sub = f.submission(f.patient_id(), entries=2, with_folder=True)
    sub.document_entries[0].status = Status.DEPRECATED
    sub.document_entries[0].lid = "urn:uuid:3c8e6c2c-2d3a-4a3e-9f63-5f0e9d1e0a11"
    sub.document_entries[0].version = "2"
    object_list = encode_registry_object_list(sub)
    top = list(object_list)
    assert len(top) == len(sub.all_objects())
    for el in top:
        assert el.get("status") in (Status.APPROVED, Status.DEPRECATED)
        assert el.get("lid")
        assert el.find(f"{R}VersionInfo").get("versionName")
    first = top[1]
    assert (first.get("status"), first.get("lid"), first.find(f"{R}VersionInfo").get("versionName")) == (
        Status.DEPRECATED, "urn:uuid:3c8e6c2c-2d3a-4a3e-9f63-5f0e9d1e0a11", "2")
    second = top[2]
    assert (second.get("status"), second.get("lid"), second.find(f"{R}VersionInfo").get("versionName")) == (
        Status.APPROVED, second.get("id"), "1")
    for c in object_list.iter(f"{R}Classification"):
        assert c.get("objectType") == ObjectType.CLASSIFICATION
    response = build_adhoc_query_response(objects=object_list, errors=[])
    assert query_schema.validate(reparse(response)), query_schema.error_log


def test_query_form_round_trips_status_lid_version_and_home() -> None:
    de = f.document_entry(f.patient_id(), id="urn:uuid:4d2a6e1b-8f3c-4b5d-9e7f-0a1b2c3d4e5f")
    de.status, de.lid, de.version, de.home = Status.APPROVED, de.id, "1", "urn:oid:1.2.3.4"
    decoded = decode_registry_object_list(reparse(encode_registry_object_list([de])))
    assert decoded.findings == []
    assert decoded.submission.document_entries == [de]


def test_encode_object_is_standalone_and_cheap_to_append() -> None:
    de = f.document_entry(f.patient_id())
    el = encode_object(de)
    assert el.tag == f"{R}ExtrinsicObject"
    assert el.nsmap.get("rim") == NS_RIM
    holder = etree.Element(f"{R}RegistryObjectList", nsmap={"rim": NS_RIM})
    holder.append(el)
    assert decode_registry_object_list(reparse(holder)).submission.document_entries == [
        _with(de, status=Status.APPROVED, lid=de.id, version="1")]


def _with(de: DocumentEntry, **changes: object) -> DocumentEntry:
    out = copy.deepcopy(de)
    for k, v in changes.items():
        setattr(out, k, v)
    return out


def test_unknown_object_type_is_rejected_by_the_encoder() -> None:
    with pytest.raises(TypeError):
        encode_object(Submission())  # type: ignore[arg-type]


def test_object_refs() -> None:
    ids = ["urn:uuid:11111111-2222-4333-8444-555555555555", "urn:uuid:66666666-7777-4888-9999-aaaaaaaaaaaa"]
    el = encode_object_refs(ids)
    assert [r.get("id") for r in el] == ids
    assert decode_registry_object_list(reparse(el)).submission.object_refs == ids
    sub = f.add_to_folder(f.patient_id(), ids[0], ids[1])
    sub.object_refs = list(ids)
    again = decode_submit_objects_request(reparse(encode_submit_objects_request(sub))).submission
    assert again.object_refs == ids


def test_limited_metadata_round_trips() -> None:
    sub = f.submission(f.patient_id(), with_folder=True)
    sub.document_entries[0].limited_metadata = True
    sub.submission_sets[0].limited_metadata = True
    sub.folders[0].limited_metadata = True
    again = decode_submit_objects_request(reparse(encode_submit_objects_request(sub)))
    assert again.findings == []
    assert again.submission == sub


def test_present_but_empty_values_stay_distinct_from_absent_ones() -> None:
    de = f.document_entry(f.patient_id(), mime_type="", object_type="", language_code="", legal_authenticator=None,
                          class_code=Code("X", "", ""), title="")
    sub = Submission(document_entries=[de])
    again = decode_submit_objects_request(reparse(encode_submit_objects_request(sub))).submission
    assert again.document_entries == [de]


# -- hypothesis: lossless round trip of arbitrary values --------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)
_OPT = st.none() | _TEXT
_CODE = st.builds(Code, _TEXT, _TEXT, _TEXT)
_SLOT = st.builds(Slot, st.from_regex(r"urn:example:[a-z]{1,10}", fullmatch=True), st.tuples(_TEXT, _TEXT) | st.tuples(_TEXT),
                  st.none() | st.just("urn:example:type"))


def _unique_names(slots: list[Slot]) -> list[Slot]:
    seen: set[str] = set()
    return [s for s in slots if not (s.name in seen or seen.add(s.name))]  # type: ignore[func-returns-value]


@settings(max_examples=60, deadline=None)
@given(
    title=_OPT, comments=_OPT, creation=_OPT, spi=st.lists(_TEXT, max_size=4), extra=st.lists(_SLOT, max_size=4),
    codes=st.lists(_CODE, max_size=3), klass=st.none() | _CODE, person=_OPT, roles=st.lists(_TEXT, max_size=3),
    version=st.none() | st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=16),
)
def test_round_trip_of_arbitrary_values(title, creation, comments, spi, extra, codes, klass, person, roles, version) -> None:  # type: ignore[no-untyped-def]
    de = DocumentEntry(
        id="Doc", title=title, comments=comments, creation_time=creation, source_patient_info=spi,
        extra_slots=_unique_names(extra), event_codes=codes, class_code=klass, version=version,
        authors=[Author(person=person, roles=roles)],
    )
    ss = SubmissionSet(id="SS", content_type_code=klass, extra_slots=_unique_names(extra))
    fd = Folder(id="FD", codes=codes, title=title)
    a = Association(id="A", source="SS", target="Doc", submission_set_status=creation, documentation=codes)
    sub = Submission(submission_sets=[ss], document_entries=[de], folders=[fd], associations=[a])
    decoded = decode_submit_objects_request(reparse(encode_submit_objects_request(sub)))
    assert decoded.submission == sub


# -- findings: what the model cannot carry -------------------------------------------------------------


def _mutated(mutate) -> list:  # type: ignore[no-untyped-def]
    el = load("one_document.xml")
    mutate(el.find(f"{R}RegistryObjectList"))
    return decode_submit_objects_request(el).findings


def _de(object_list: etree._Element) -> etree._Element:
    return object_list.find(f"{R}ExtrinsicObject")


def _slot(owner: etree._Element, name: str) -> etree._Element:
    return next(s for s in owner.findall(f"{R}Slot") if s.get("name") == name)


def _classification(owner: etree._Element, scheme: str) -> etree._Element:
    return next(c for c in owner.findall(f"{R}Classification") if c.get("classificationScheme") == scheme)


def _only(findings: list, fragment: str, location: str = "Document01") -> None:  # type: ignore[type-arg]
    assert len(findings) == 1, findings
    (finding,) = findings
    assert finding.code == ErrorCode.REGISTRY_METADATA_ERROR
    assert fragment in finding.context, finding.context
    assert finding.location == location


def _add_value(slot: etree._Element, text: str) -> None:
    etree.SubElement(slot.find(f"{R}ValueList"), f"{R}Value").text = text


def test_finding_single_valued_slot_with_several_values() -> None:
    findings = _mutated(lambda ol: _add_value(_slot(_de(ol), "creationTime"), "20250101"))
    _only(findings, "single-valued slot creationTime has 2 values")


def test_finding_repeated_slot() -> None:
    def mutate(ol: etree._Element) -> None:
        _slot(_de(ol), "hash").addnext(copy.deepcopy(_slot(_de(ol), "hash")))
    _only(_mutated(mutate), "slot hash appears more than once")


def test_finding_two_class_codes() -> None:
    def mutate(ol: etree._Element) -> None:
        c = _classification(_de(ol), Scheme.DE_CLASS_CODE)
        twin = copy.deepcopy(c)
        twin.set("id", "urn:uuid:5f3b2e64-8d51-4bb0-9c2e-7a4c3f0d1aff")
        twin.set("nodeRepresentation", "REPORTS")
        c.addnext(twin)
    _only(_mutated(mutate), "more than one classCode classification (extra code 'REPORTS')")


def test_finding_unknown_classification_scheme_on_a_document_entry() -> None:
    def mutate(ol: etree._Element) -> None:
        _classification(_de(ol), Scheme.DE_TYPE_CODE).set("classificationScheme", "urn:uuid:00000000-0000-4000-8000-000000000000")
    findings = _mutated(mutate)
    _only(findings, "unknown classification scheme 'urn:uuid:00000000-0000-4000-8000-000000000000'")


def test_finding_coding_scheme_with_several_values_and_repeated() -> None:
    findings = _mutated(lambda ol: _add_value(_slot(_classification(_de(ol), Scheme.DE_CLASS_CODE), "codingScheme"), "9.9"))
    _only(findings, "codingScheme of code 'IMAGES' has 2 values")

    def repeat(ol: etree._Element) -> None:
        c = _classification(_de(ol), Scheme.DE_CLASS_CODE)
        _slot(c, "codingScheme").addnext(copy.deepcopy(_slot(c, "codingScheme")))
    _only(_mutated(repeat), "code 'IMAGES' has more than one codingScheme slot")


def test_missing_coding_scheme_slot_is_left_to_validation() -> None:
    def mutate(ol: etree._Element) -> None:
        c = _classification(_de(ol), Scheme.DE_CLASS_CODE)
        c.remove(_slot(c, "codingScheme"))
    el = load("one_document.xml")
    mutate(el.find(f"{R}RegistryObjectList"))
    decoded = decode_submit_objects_request(el)
    assert decoded.findings == []
    assert decoded.submission.document_entries[0].class_code == Code("IMAGES", "", "Images")


def test_finding_classification_without_id_and_for_another_object() -> None:
    def mutate(ol: etree._Element) -> None:
        c = _classification(_de(ol), Scheme.DE_CLASS_CODE)
        del c.attrib["id"]
        _classification(_de(ol), Scheme.DE_TYPE_CODE).set("classifiedObject", "SubmissionSet01")
    findings = _mutated(mutate)
    assert [x.context.split(": ", 1)[1] for x in findings] == [
        "a Classification has no id",
        "a Classification inside it classifies another object, SubmissionSet01",
    ]


def test_finding_registry_package_neither_submission_set_nor_folder() -> None:
    def mutate(ol: etree._Element) -> None:
        ss = ol.find(f"{R}RegistryPackage")
        ss.remove(next(c for c in ss.findall(f"{R}Classification") if c.get("classificationNode")))
    findings = _mutated(mutate)
    _only(findings, "RegistryPackage SubmissionSet01 is neither a SubmissionSet nor a Folder", "SubmissionSet01")


def test_finding_registry_package_both_submission_set_and_folder() -> None:
    def mutate(ol: etree._Element) -> None:
        ss = ol.find(f"{R}RegistryPackage")
        node = next(c for c in ss.findall(f"{R}Classification") if c.get("classificationNode"))
        twin = copy.deepcopy(node)
        twin.set("id", "urn:uuid:0b2d7b28-6cf7-4d3c-9d6f-2a6d9b0b7eff")
        twin.set("classificationNode", Node.FOLDER)
        node.addnext(twin)
    _only(_mutated(mutate), "is both a SubmissionSet and a Folder", "SubmissionSet01")


def test_finding_top_level_classification_for_an_object_not_in_the_message() -> None:
    def mutate(ol: etree._Element) -> None:
        etree.SubElement(ol, f"{R}Classification", id="urn:uuid:0b2d7b28-6cf7-4d3c-9d6f-2a6d9b0b7eee",
                         classifiedObject="Elsewhere", classificationNode=Node.FOLDER)
    _only(_mutated(mutate), "classifies Elsewhere, which is not an object of this message", "urn:uuid:0b2d7b28-6cf7-4d3c-9d6f-2a6d9b0b7eee")


def test_finding_external_identifiers() -> None:
    def unknown(ol: etree._Element) -> None:
        e = _de(ol).find(f"{R}ExternalIdentifier")
        e.set("identificationScheme", IdScheme.SS_SOURCE_ID)
    _only(_mutated(unknown), f"unknown ExternalIdentifier scheme '{IdScheme.SS_SOURCE_ID}'")

    def twice(ol: etree._Element) -> None:
        e = _de(ol).findall(f"{R}ExternalIdentifier")[1]
        twin = copy.deepcopy(e)
        twin.set("id", "urn:uuid:5f3b2e64-8d51-4bb0-9c2e-7a4c3f0d1aee")
        twin.set("value", "1.2.3.4")
        e.addnext(twin)
    _only(_mutated(twice), "more than one unique_id ExternalIdentifier ('1.2.3.4')")

    def other(ol: etree._Element) -> None:
        _de(ol).find(f"{R}ExternalIdentifier").set("registryObject", "SubmissionSet01")
    _only(_mutated(other), "an ExternalIdentifier inside it names another object, SubmissionSet01")


def test_external_identifier_without_value_decodes_as_empty_for_validation() -> None:
    el = load("one_document.xml")
    del el.find(f"{R}RegistryObjectList/{R}ExtrinsicObject/{R}ExternalIdentifier").attrib["value"]
    decoded = decode_submit_objects_request(el)
    assert decoded.findings == []
    assert decoded.submission.document_entries[0].patient_id == ""


def test_finding_author_person_with_several_values() -> None:
    findings = _mutated(lambda ol: _add_value(_slot(_classification(_de(ol), Scheme.DE_AUTHOR), "authorPerson"), "^Other"))
    _only(findings, "authorPerson has 2 values")


def test_finding_external_identifier_on_an_association() -> None:
    def mutate(ol: etree._Element) -> None:
        a = ol.find(f"{R}Association")
        etree.SubElement(a, f"{R}ExternalIdentifier", id="urn:uuid:0b2d7b28-6cf7-4d3c-9d6f-2a6d9b0b7e99",
                         registryObject="Association01", identificationScheme=IdScheme.DE_UNIQUE_ID, value="1.2")
    _only(_mutated(mutate), "an Association carries no ExternalIdentifier in XDS", "Association01")


def test_finding_slot_value_longer_than_a_long_name() -> None:
    findings = _mutated(lambda ol: _add_value(_slot(_de(ol), "urn:example:imageshare:edge"), "x" * 257))
    _only(findings, "longer than 256 characters")


def test_finding_object_ref_without_id_and_unexpected_element() -> None:
    def mutate(ol: etree._Element) -> None:
        etree.SubElement(ol, f"{R}ObjectRef")
        etree.SubElement(ol, f"{R}ExternalLink", id="x", externalURI="http://example.org")
    findings = _mutated(mutate)
    assert [x.context for x in findings] == ["an ObjectRef has no id", f"unexpected element {R}ExternalLink in rim:RegistryObjectList"]


def test_object_without_id_is_decoded_with_an_empty_id() -> None:
    el = load("one_document.xml")
    de = el.find(f"{R}RegistryObjectList/{R}ExtrinsicObject")
    del de.attrib["id"]
    decoded = decode_submit_objects_request(el)
    assert decoded.submission.document_entries[0].id == ""


def test_finding_ebrim_21_submission_is_refused() -> None:
    xds_a = b"""<SubmitObjectsRequest xmlns="urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1">
      <LeafRegistryObjectList xmlns="urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1">
        <ExtrinsicObject id="Document01" mimeType="text/plain" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"/>
      </LeafRegistryObjectList></SubmitObjectsRequest>"""
    decoded = decode_submit_objects_request(parse_xml(xds_a))
    assert [x.code for x in decoded.findings] == [ErrorCode.REGISTRY_METADATA_ERROR]
    assert "ebRIM 2.1 (XDS.a)" in decoded.findings[0].context
    assert decoded.submission == Submission()


def test_finding_ebrim_21_element_inside_a_30_list() -> None:
    findings = _mutated(lambda ol: etree.SubElement(ol, "{urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1}ExtrinsicObject", id="x"))
    assert len(findings) == 1 and "ebRIM 2.1 (XDS.a)" in findings[0].context


def test_finding_wrong_root_or_list_count() -> None:
    decoded = decode_submit_objects_request(etree.Element(f"{R}RegistryObjectList"))
    assert "expected lcm:SubmitObjectsRequest" in decoded.findings[0].context
    empty = etree.Element(f"{{{NS_LCM}}}SubmitObjectsRequest")
    assert "has 0 rim:RegistryObjectList elements" in decode_submit_objects_request(empty).findings[0].context
    assert "expected rim:RegistryObjectList" in decode_registry_object_list(empty).findings[0].context
