"""rs:RegistryResponse and query:AdhocQueryResponse, built and parsed (xds-notes §2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from tests.support import factory as f
from xds.errors import ErrorCode, RegistryError
from xds.metadata.ebrim import decode_registry_object_list, encode_registry_object_list
from xds.metadata.responses import (
    ResponseFormatError,
    build_adhoc_query_response,
    build_registry_response,
    derive_status,
    parse_adhoc_query_response,
    parse_registry_response,
)
from xds.vocabulary import NS_QUERY, NS_RIM, NS_RS, ResponseStatus, Severity
from xds.xml import parse_xml

RS = f"{{{NS_RS}}}"
ERROR = RegistryError(ErrorCode.REGISTRY_METADATA_ERROR, "DocumentEntry Doc: creationTime '2024-01' is not a DTM", "1.2.3")
WARNING = RegistryError(ErrorCode.EXTRA_METADATA_NOT_SAVED, "extra metadata not saved: urn:x", severity=Severity.WARNING)


@pytest.fixture(scope="module")
def rs_schema(schemas_dir: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(schemas_dir / "schema" / "ebRS" / "rs.xsd")))


@pytest.fixture(scope="module")
def query_schema(schemas_dir: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(schemas_dir / "schema" / "ebRS" / "query.xsd")))


def wire(el: etree._Element) -> etree._Element:
    return parse_xml(etree.tostring(el))


# -- RegistryResponse -------------------------------------------------------------------------------


def test_success_has_no_error_list(rs_schema: etree.XMLSchema) -> None:
    el = build_registry_response([])
    assert rs_schema.validate(wire(el)), rs_schema.error_log
    assert el.get("status") == ResponseStatus.SUCCESS
    assert el.find(f"{RS}RegistryErrorList") is None


def test_warnings_only_is_success_with_a_list(rs_schema: etree.XMLSchema) -> None:
    """NIST #265: there is no Warning status."""
    el = build_registry_response([WARNING])
    assert rs_schema.validate(wire(el)), rs_schema.error_log
    assert el.get("status") == ResponseStatus.SUCCESS
    assert el.find(f"{RS}RegistryErrorList").get("highestSeverity") == Severity.WARNING


def test_any_error_is_failure_with_highest_severity_error(rs_schema: etree.XMLSchema) -> None:
    el = build_registry_response([WARNING, ERROR])
    assert rs_schema.validate(wire(el)), rs_schema.error_log
    assert el.get("status") == ResponseStatus.FAILURE
    error_list = el.find(f"{RS}RegistryErrorList")
    assert error_list.get("highestSeverity") == Severity.ERROR
    entries = error_list.findall(f"{RS}RegistryError")
    assert [e.get("errorCode") for e in entries] == ["XDSExtraMetadataNotSaved", "XDSRegistryMetadataError"]
    assert entries[1].get("codeContext") == ERROR.context
    assert entries[1].get("location") == "1.2.3"
    assert entries[0].get("location") is None  # no empty location attribute
    assert entries[0].get("severity") == Severity.WARNING


def test_explicit_status_wins() -> None:
    el = build_registry_response([RegistryError(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, "not here", "1.2.3")],
                                 status=ResponseStatus.PARTIAL_SUCCESS)
    assert el.get("status") == ResponseStatus.PARTIAL_SUCCESS


def test_derive_status() -> None:
    assert derive_status([]) == ResponseStatus.SUCCESS
    assert derive_status([WARNING]) == ResponseStatus.SUCCESS
    assert derive_status([WARNING, ERROR]) == ResponseStatus.FAILURE


def test_registry_response_round_trip() -> None:
    custom = RegistryError("XDSRepositoryWrongRepositoryUniqueId", "NIST-only code", "1.2")
    parsed = parse_registry_response(wire(build_registry_response([ERROR, WARNING, custom])))
    assert parsed.status == ResponseStatus.FAILURE and not parsed.succeeded
    assert parsed.errors == (ERROR, WARNING, custom)
    assert parsed.errors[0].code is ErrorCode.REGISTRY_METADATA_ERROR
    assert parsed.error_codes == ["XDSRegistryMetadataError", "XDSRepositoryWrongRepositoryUniqueId"]


def test_parse_defaults_severity_to_error_and_reads_text_context() -> None:
    el = parse_xml(
        f"""<rs:RegistryResponse xmlns:rs="{NS_RS}" status="{ResponseStatus.FAILURE}">
          <rs:RegistryErrorList><rs:RegistryError errorCode="XDSRegistryError" codeContext="">boom</rs:RegistryError>
          </rs:RegistryErrorList></rs:RegistryResponse>""".encode()
    )
    (error,) = parse_registry_response(el).errors
    assert error == RegistryError(ErrorCode.REGISTRY_ERROR, "boom", "", Severity.ERROR)


def test_parse_refuses_wrong_element_or_missing_status() -> None:
    with pytest.raises(ResponseFormatError, match="expected rs:RegistryResponse"):
        parse_registry_response(etree.Element(f"{{{NS_QUERY}}}AdhocQueryResponse"))
    with pytest.raises(ResponseFormatError, match="has no status"):
        parse_registry_response(etree.Element(f"{RS}RegistryResponse"))


# -- AdhocQueryResponse ---------------------------------------------------------------------------------


def test_query_response_with_objects(query_schema: etree.XMLSchema) -> None:
    sub = f.submission(f.patient_id(), with_folder=True)
    el = build_adhoc_query_response(objects=encode_registry_object_list(sub), errors=[])
    assert query_schema.validate(wire(el)), query_schema.error_log
    parsed = parse_adhoc_query_response(wire(el))
    assert parsed.status == ResponseStatus.SUCCESS and parsed.succeeded and parsed.errors == ()
    assert parsed.object_list is not None
    back = decode_registry_object_list(parsed.object_list).submission
    assert [d.unique_id for d in back.document_entries] == [d.unique_id for d in sub.document_entries]


def test_query_errors_come_inside_an_adhoc_query_response(query_schema: etree.XMLSchema) -> None:
    """NIST #147/#173/#251: never a bare RegistryResponse for ITI-18."""
    error = RegistryError(ErrorCode.UNKNOWN_STORED_QUERY, "urn:uuid:0000 is not a stored query", "")
    el = build_adhoc_query_response(objects=None, errors=[error])
    assert el.tag == f"{{{NS_QUERY}}}AdhocQueryResponse"
    assert query_schema.validate(wire(el)), query_schema.error_log
    assert el.get("status") == ResponseStatus.FAILURE
    children = [etree.QName(c).localname for c in el]
    assert children == ["RegistryErrorList", "RegistryObjectList"]  # rs.xsd sequence, list required
    parsed = parse_adhoc_query_response(wire(el))
    assert parsed.errors == (error,)
    assert parsed.object_list is not None and len(parsed.object_list) == 0


def test_query_response_partial_success_status_is_kept() -> None:
    el = build_adhoc_query_response(objects=None, errors=[ERROR], status=ResponseStatus.PARTIAL_SUCCESS)
    assert parse_adhoc_query_response(wire(el)).status == ResponseStatus.PARTIAL_SUCCESS


def test_query_response_objects_must_be_a_registry_object_list() -> None:
    with pytest.raises(ValueError, match="rim:RegistryObjectList"):
        build_adhoc_query_response(objects=etree.Element(f"{{{NS_RIM}}}ExtrinsicObject"), errors=[])


def test_parse_adhoc_refuses_a_bare_registry_response() -> None:
    with pytest.raises(ResponseFormatError, match="expected query:AdhocQueryResponse"):
        parse_adhoc_query_response(build_registry_response([ERROR]))
