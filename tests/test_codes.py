"""Affinity-domain code sets: the shared NIST codes.xml loads as-is and answers code questions."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiles.codes import MIME_TYPE, AffinityDomainCodes, CodeSetError, load_code_set, parse_code_set
from tests.support import factory as f
from xds.metadata.model import Code
from xds.metadata.validation import CodeValidator, ValidationProfile, validate_submission
from xds.vocabulary import CODE_SCHEMES


@pytest.fixture(scope="module")
def codes(codes_xml: Path) -> AffinityDomainCodes:
    return load_code_set(codes_xml)


def test_codes_xml_loads_with_every_coded_attribute(codes: AffinityDomainCodes) -> None:
    for name, scheme in CODE_SCHEMES.items():
        assert codes.knows(name), name
        assert codes.class_scheme(name) == scheme
        assert codes.attribute_for_scheme(scheme) == name
        assert len(codes.codes(name)) >= 2
    assert codes.knows(MIME_TYPE) and codes.class_scheme(MIME_TYPE) is None
    assert isinstance(codes, CodeValidator)


def test_known_code_is_accepted(codes: AffinityDomainCodes) -> None:
    assert codes.contains("classCode", Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1"))
    assert codes.contains("formatCode", Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1"))
    assert codes.contains("eventCodeList", Code("CT", "1.2.840.10008.2.16.4", "any display"))


@pytest.mark.parametrize(
    ("attribute", "code"),
    [
        ("classCode", Code("NOT-A-CLASS", "1.3.6.1.4.1.19376.1.2.6.1")),
        ("classCode", Code("IMAGES", "urn:oid:1.3.6.1.4.1.19376.1.2.6.1")),  # a FHIR system, not the OID
        ("formatCode", Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.16.4")),  # DCM instead of DCMUID
        ("typeCode", Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1")),  # a classCode used as typeCode
        ("classCode", Code("images", "1.3.6.1.4.1.19376.1.2.6.1")),  # comparison is exact
        ("noSuchAttribute", Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1")),
    ],
)
def test_unknown_code_is_rejected(codes: AffinityDomainCodes, attribute: str, code: Code) -> None:
    assert not codes.contains(attribute, code)


def test_display_and_order(codes: AffinityDomainCodes) -> None:
    assert codes.display("confidentialityCode", Code("N", "2.16.840.1.113883.5.25")) == "normal"
    assert codes.display("confidentialityCode", Code("N", "9.9")) is None
    assert [c.code for c in codes.codes("confidentialityCode")] == ["L", "M", "N", "R", "U", "V"]
    assert codes.codes("nothing") == ()


def test_mime_types(codes: AffinityDomainCodes) -> None:
    types = codes.mime_types()
    assert {"application/dicom", "application/pdf", "text/plain", "text/xml"} <= types
    assert "application/x-unheard-of" not in types


def test_assigning_authorities(codes: AffinityDomainCodes) -> None:
    first = codes.assigning_authorities[0]
    assert (first.id, first.display, first.oid) == ("&1.3.6.1.4.1.21367.13.20.1000&ISO", "IHERED", "1.3.6.1.4.1.21367.13.20.1000")


def test_factory_sample_passes_the_shared_code_set(codes: AffinityDomainCodes) -> None:
    sub = f.submission(f.patient_id(), entries=2, with_folder=True)
    assert validate_submission(sub, profile=ValidationProfile.ITI42_REGISTRY, codes=codes) == []


def test_parse_a_small_code_set() -> None:
    doc = b"""<?xml version="1.0"?>
    <Codes>
      <CodeType name="classCode" classScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a">
        <Code code="A" display="Alpha" codingScheme="1.2.3"/>
      </CodeType>
      <CodeType name="classCode"><Code code="B" codingScheme="1.2.3"/></CodeType>
      <!-- a comment between types -->
      <CodeType name="typeCode" classScheme="urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"/>
    </Codes>"""
    codes = parse_code_set(doc)
    assert codes.contains("classCode", Code("A", "1.2.3")) and codes.contains("classCode", Code("B", "1.2.3"))
    assert codes.class_scheme("classCode") == "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
    assert codes.knows("typeCode") and not codes.contains("typeCode", Code("A", "1.2.3"))
    assert codes.mime_types() == frozenset()
    assert codes.assigning_authorities == ()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b"<NotCodes/>", "not <Codes>"),
        (b"<Codes><CodeType><Code code='x'/></CodeType></Codes>", "CodeType without a name"),
        (b"<Codes><CodeType name='classCode'><Code display='x'/></CodeType></Codes>", "Code without a code attribute"),
        (b'<!DOCTYPE Codes [<!ENTITY x "y">]><Codes/>', "not acceptable XML"),
        (b"<Codes>", "not acceptable XML"),
    ],
)
def test_bad_code_sets_are_refused(doc: bytes, message: str) -> None:
    with pytest.raises(CodeSetError, match=message):
        parse_code_set(doc)


def test_load_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "codes.xml"
    path.write_bytes(b"<Codes><CodeType name='mimeType'><Code code='text/plain' ext='txt'/></CodeType></Codes>")
    assert load_code_set(path).mime_types() == frozenset({"text/plain"})
    assert load_code_set(str(path)).contains(MIME_TYPE, Code("text/plain", ""))
