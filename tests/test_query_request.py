"""ITI-18 AdhocQueryRequest parsing and building (ITI TF-2a §3.18.4.1.2.3; xds-notes §6, §8.4).

Requests are written here as raw XML, independently of the builder, and the expected parameter
rules come from the table in test_query_definitions (transcribed from xds-notes §6.2).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.test_query_definitions import EXPECTED
from xds.errors import ErrorCode, XdsError
from xds.metadata.model import Code
from xds.query import (
    CodeValue,
    QueryParam,
    ReturnType,
    StoredQueryId,
    TimeRange,
    build_adhoc_query,
    find_definition,
    parse_query,
)
from xds.vocabulary import NS_QUERY, NS_RIM, AssociationType, ObjectType, Status
from xds.xml import parse_xml, to_bytes

PID = "pid1^^^&1.2.3&ISO"
PID2 = "pid2^^^&1.2.3&ISO"
UUID1 = "urn:uuid:11111111-1111-1111-1111-111111111111"
UUID2 = "urn:uuid:22222222-2222-2222-2222-222222222222"
STABLE = ObjectType.STABLE_DOCUMENT_ENTRY
ON_DEMAND = ObjectType.ON_DEMAND_DOCUMENT_ENTRY
FIND_DOCUMENTS = StoredQueryId.FIND_DOCUMENTS
MISSING = ErrorCode.STORED_QUERY_MISSING_PARAM
NUMBER = ErrorCode.STORED_QUERY_PARAM_NUMBER
MALFORMED = ErrorCode.REGISTRY_ERROR

Slots = list[tuple[str, list[str]]]


# -- raw request writing (independent of xds.query) ----------------------------------------------


def q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def lst(*atoms: str) -> str:
    return "(" + ", ".join(atoms) + ")"


def request(
    query_id: str,
    slots: Sequence[tuple[str, Sequence[str]]],
    *,
    option: str | None = '<query:ResponseOption returnType="LeafClass" returnComposedObjects="true"/>',
    home: str | None = None,
) -> etree._Element:
    body = "".join(
        f"<rim:Slot name={quoteattr(name)}><rim:ValueList>"
        + "".join(f"<rim:Value>{escape(v)}</rim:Value>" for v in values)
        + "</rim:ValueList></rim:Slot>"
        for name, values in slots
    )
    home_attr = f" home={quoteattr(home)}" if home else ""
    xml = (
        f'<query:AdhocQueryRequest xmlns:query="{NS_QUERY}" xmlns:rim="{NS_RIM}">{option or ""}'
        f"<rim:AdhocQuery id={quoteattr(query_id)}{home_attr}>{body}</rim:AdhocQuery>"
        "</query:AdhocQueryRequest>"
    )
    return parse_xml(xml.encode())


def findings(element: etree._Element) -> list[tuple[ErrorCode | str, str]]:
    with pytest.raises(XdsError) as caught:
        parse_query(element)
    return [(e.code, e.location) for e in caught.value.errors]


def one_finding(element: etree._Element) -> tuple[ErrorCode | str, str, str]:
    with pytest.raises(XdsError) as caught:
        parse_query(element)
    assert len(caught.value.errors) == 1, caught.value.errors
    (error,) = caught.value.errors
    return error.code, error.location, error.context


def sample(name: str, n: int = 1) -> str:
    """The n-th sample value of a parameter, in wire form, chosen by the parameter's name."""
    if re.search(r"Time(From|To)$", name):
        return f"20{10 + n}0101"
    if name == "$MetadataLevel":
        return str(n)
    if name.endswith("Status"):
        return q([Status.APPROVED, Status.DEPRECATED][n % 2])
    if name == "$XDSDocumentEntryType":
        return q([STABLE, ON_DEMAND][n % 2])
    if name.endswith("PatientId") or name == "$patientId":
        return q(f"pid{n}^^^&1.2.3&ISO")
    if name == "$AssociationTypes":
        return q([AssociationType.HAS_MEMBER, AssociationType.RPLC][n % 2])
    if re.search(r"(Code|CodeList|ContentType)$", name):
        return q(f"c{n}^^s{n}")
    return q(f"urn:uuid:0000000{n}-0000-0000-0000-000000000000")


def is_single(query: str, name: str) -> bool:
    return name in EXPECTED[query][4]


def slot_for(query: str, name: str, n: int = 1) -> tuple[str, list[str]]:
    value = sample(name, n)
    return name, [value if is_single(query, name) else lst(value)]


def minimal(query: str, *, choose: str | None = None) -> Slots:
    """A valid request: the required parameters and one member of each "xor" group."""
    _id, required, xor, _and, _single = EXPECTED[query]
    names = sorted(required)
    for group in xor:
        names.append(choose if choose in group else sorted(group)[0])
    if query == "FindDocumentsForMultiplePatients":
        names.append("$XDSDocumentEntryClassCode")
    return [slot_for(query, name) for name in names]


def query_id(name: str) -> str:
    return EXPECTED[name][0]


ALL = sorted(EXPECTED)
REQUIRED = [(query, name) for query in ALL for name in sorted(EXPECTED[query][1])]
SINGLE = [(query, name) for query in ALL for name in sorted(EXPECTED[query][4])]
XOR = [query for query in ALL if EXPECTED[query][2]]


# -- every query ---------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ALL)
def test_valid_request_parses(query: str) -> None:
    slots = minimal(query)
    parsed = parse_query(request(query_id(query), slots))
    assert parsed.name == query
    assert parsed.query_id == query_id(query)
    assert set(parsed.params) == {name for name, _ in slots}
    assert parsed.return_type == ReturnType.LEAF_CLASS
    assert parsed.return_composed_objects is True


@pytest.mark.parametrize(("query", "param"), REQUIRED)
def test_missing_required_parameter(query: str, param: str) -> None:
    slots = [s for s in minimal(query) if s[0] != param]
    code, location, context = one_finding(request(query_id(query), slots))
    assert (code, location) == (MISSING, param)
    assert param in context


@pytest.mark.parametrize(("query", "param"), REQUIRED)
def test_required_parameter_with_empty_slot_counts_as_missing(query: str, param: str) -> None:
    slots = [(name, [] if name == param else values) for name, values in minimal(query)]
    assert findings(request(query_id(query), slots)) == [(MISSING, param)]


@pytest.mark.parametrize("form", ["list", "values", "slots"])
@pytest.mark.parametrize(("query", "param"), SINGLE)
def test_single_valued_parameter_given_twice(query: str, param: str, form: str) -> None:
    slots = [s for s in minimal(query, choose=param) if s[0] != param]
    one, two = sample(param, 1), sample(param, 2)
    if form == "list":
        slots.append((param, [lst(one, two)]))
    elif form == "values":
        slots.append((param, [one, two]))
    else:
        slots += [(param, [one]), (param, [two])]
    code, location, context = one_finding(request(query_id(query), slots))
    assert (code, location) == (NUMBER, param)
    assert param in context


@pytest.mark.parametrize(("query", "param"), SINGLE)
def test_single_valued_parameter_as_list_of_one_is_accepted(query: str, param: str) -> None:
    slots = [s for s in minimal(query, choose=param) if s[0] != param]
    slots.append((param, [lst(sample(param))]))
    parsed = parse_query(request(query_id(query), slots))
    if param == QueryParam.HOME_COMMUNITY_ID:
        assert parsed.home_community_id == sample(param)[1:-1]
    else:
        assert isinstance(parsed.params[param], str)


def test_repeated_slot_of_a_multi_valued_non_and_parameter() -> None:
    slots = minimal("FindDocuments") + [
        ("$XDSDocumentEntryClassCode", [lst(q("a^^s"))]),
        ("$XDSDocumentEntryClassCode", [lst(q("b^^s"))]),
    ]
    assert findings(request(FIND_DOCUMENTS, slots)) == [(NUMBER, "$XDSDocumentEntryClassCode")]


@pytest.mark.parametrize("query", XOR)
def test_exclusive_parameters_both_given(query: str) -> None:
    first, second = sorted(EXPECTED[query][2][0])[:2]
    slots = minimal(query, choose=first) + [slot_for(query, second)]
    code, _location, context = one_finding(request(query_id(query), slots))
    assert code == NUMBER
    assert first in context and second in context


@pytest.mark.parametrize("query", XOR)
def test_exclusive_parameters_neither_given(query: str) -> None:
    group = EXPECTED[query][2][0]
    slots = [s for s in minimal(query) if s[0] not in group]
    code, _location, context = one_finding(request(query_id(query), slots))
    assert code == MISSING
    assert all(name in context for name in group)


MPQ = "FindDocumentsForMultiplePatients"
MPQ_CODES = ["$XDSDocumentEntryClassCode", "$XDSDocumentEntryEventCodeList", "$XDSDocumentEntryHealthcareFacilityTypeCode"]


def test_multi_patient_query_without_restriction_fails() -> None:
    # NIST 12364 (reg_mpq): the query with no restricting code fails, even with patient ids.
    slots = [slot_for(MPQ, "$XDSDocumentEntryStatus"), ("$XDSDocumentEntryPatientId", [lst(q(PID), q(PID2))])]
    code, _location, context = one_finding(request(query_id(MPQ), slots))
    assert code == MISSING
    assert all(name in context for name in MPQ_CODES)


@pytest.mark.parametrize("restriction", MPQ_CODES)
def test_multi_patient_query_with_one_restriction(restriction: str) -> None:
    slots = [
        slot_for(MPQ, "$XDSDocumentEntryStatus"),
        ("$XDSDocumentEntryPatientId", [lst(q(PID), q(PID2))]),
        (restriction, [lst(q("c^^s"))]),
    ]
    parsed = parse_query(request(query_id(MPQ), slots))
    assert parsed.patient_ids() == (PID, PID2)
    assert parsed.and_codes(restriction) == ((CodeValue("c", "s"),),)


# -- NIST SQ.b cases (xds-notes §8.4) ------------------------------------------------------------


def find_documents(*extra: tuple[str, list[str]]) -> etree._Element:
    """FindDocuments with a patient id and Approved, plus ``extra`` (which replaces those)."""
    base = [("$XDSDocumentEntryPatientId", [q(PID)]), ("$XDSDocumentEntryStatus", [lst(q(Status.APPROVED))])]
    replaced = {name for name, _ in extra}
    return request(FIND_DOCUMENTS, [s for s in base if s[0] not in replaced] + list(extra))


@pytest.mark.parametrize("code", ["Consult^^", "Consult", "^^Connect-a-thon classCodes"])
def test_classcode_scheme_mismatch(code: str) -> None:
    # NIST 11897/classcode_scheme_mismatch: a code not in CODE^^SCHEME form -> Failure.
    error_code, location, context = one_finding(find_documents(("$XDSDocumentEntryClassCode", [lst(q(code))])))
    assert (error_code, location) == (MALFORMED, "$XDSDocumentEntryClassCode")
    assert "$XDSDocumentEntryClassCode" in context and "CODE^^SCHEME" in context


def test_old_scheme_style() -> None:
    # NIST 11897/old_scheme: codes and schemes in separate parameters (pre-2008 style) -> Failure.
    element = find_documents(
        ("$XDSDocumentEntryClassCode", [lst(q("Consult"))]),
        ("$XDSDocumentEntryClassCodeScheme", [lst(q("Connect-a-thon classCodes"))]),
    )
    assert findings(element) == [(MALFORMED, "$XDSDocumentEntryClassCode")]


def test_unknown_parameters_are_ignored() -> None:
    # NIST 11897/practicesetting_scheme: an extra parameter does not fail the query.
    element = find_documents(
        ("$XDSDocumentEntryPracticeSettingCode", [lst(q("Dialysis^^Connect-a-thon practiceSettingCodes"))]),
        ("$XDSDocumentEntryPracticeSettingCodeScheme", [lst(q("Connect-a-thon practiceSettingCodes"))]),
    )
    parsed = parse_query(element)
    assert parsed.ignored_params == ("$XDSDocumentEntryPracticeSettingCodeScheme",)
    assert "$XDSDocumentEntryPracticeSettingCodeScheme" not in parsed.params
    assert parsed.codes("$XDSDocumentEntryPracticeSettingCode") == (
        CodeValue("Dialysis", "Connect-a-thon practiceSettingCodes"),
    )


@pytest.mark.parametrize(
    "values",
    [
        [lst(q(UUID1)), lst(q(UUID2))],  # each rim:Value a list of its own
        [lst(q(UUID1), q(UUID2))],  # one list
        [f"({q(UUID1)},", f"{q(UUID2)})"],  # one list cut between items
        [f"({q(UUID1)}, {q(UUID2)[:10]}", f"{q(UUID2)[10:]})"],  # cut inside a string
    ],
)
def test_uuid_multiple_slot_values(values: list[str]) -> None:
    # NIST 11901/uuid_multiple_slot_values: several Values of one Slot are OR'ed.
    parsed = parse_query(request(StoredQueryId.GET_DOCUMENTS, [("$XDSDocumentEntryEntryUUID", values)]))
    assert parsed.strings("$XDSDocumentEntryEntryUUID") == (UUID1, UUID2)


def test_value_text_split_by_a_comment_is_read_whole() -> None:
    xml = (
        f'<query:AdhocQueryRequest xmlns:query="{NS_QUERY}" xmlns:rim="{NS_RIM}">'
        f'<rim:AdhocQuery id="{StoredQueryId.GET_DOCUMENTS}"><rim:Slot name="$XDSDocumentEntryUniqueId">'
        "<rim:ValueList><rim:Value>('1.2<!-- c -->.3')</rim:Value></rim:ValueList></rim:Slot>"
        "</rim:AdhocQuery></query:AdhocQueryRequest>"
    )
    assert parse_query(parse_xml(xml.encode())).strings("$XDSDocumentEntryUniqueId") == ("1.2.3",)


@pytest.mark.parametrize("query", ALL)
def test_home_community_id_is_accepted_everywhere(query: str) -> None:
    # NIST 11901/homeCommunityId.
    slots = minimal(query) + [("$homeCommunityId", [q("urn:oid:1.2.3")])]
    parsed = parse_query(request(query_id(query), slots))
    assert parsed.home_community_id == "urn:oid:1.2.3"
    assert "$homeCommunityId" not in parsed.params
    assert parsed.ignored_params == ()


def test_home_attribute_is_the_fallback_home_community_id() -> None:
    slots = [("$XDSDocumentEntryUniqueId", [lst(q("1.2.3"))])]
    assert parse_query(request(StoredQueryId.GET_DOCUMENTS, slots, home="urn:oid:9.8")).home_community_id == "urn:oid:9.8"
    assert parse_query(request(StoredQueryId.GET_DOCUMENTS, slots)).home_community_id is None


# -- value checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slot", "value", "message"),
    [
        ("$XDSDocumentEntryStatus", lst(q("Approved")), "full status URN"),
        ("$XDSDocumentEntryStatus", lst("urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"), "position 1"),
        ("$XDSDocumentEntryType", lst(q("urn:uuid:00000000-0000-0000-0000-000000000000")), "not a DocumentEntry type"),
        ("$XDSDocumentEntryCreationTimeFrom", "2004-01-01", "position 4"),
        ("$XDSDocumentEntryCreationTimeFrom", "200413", "invalid month"),
        ("$XDSDocumentEntryServiceStopTimeTo", "'2004x'", "not a DTM"),
        ("$XDSDocumentEntryAuthorPerson", lst("Smith"), "position 1"),
        ("$XDSDocumentEntryAuthorPerson", lst(q("")), "empty string"),
        ("$XDSDocumentEntryAuthorPerson", lst(q("Smith")) + ",", "unexpected text"),
        ("$XDSDocumentEntryFormatCode", lst(q("f^^s"), "123"), "must be a quoted string"),
        ("$XDSDocumentEntryEventCodeList", f"({q('e^^s')}", "not closed"),
        ("$XDSDocumentEntryClassCode", lst(q("unterminated^^s")[:-1]), "not terminated"),
    ],
)
def test_malformed_values_name_the_parameter(slot: str, value: str, message: str) -> None:
    code, location, context = one_finding(find_documents((slot, [value])))
    assert (code, location) == (MALFORMED, slot)
    assert context.startswith(slot + ":")
    assert message in context


@pytest.mark.parametrize("pid", ["pid1", "pid1^^^", "^^^&1.2.3&ISO", ""])
def test_patient_id_must_be_a_cx_with_assigning_authority(pid: str) -> None:
    element = request(FIND_DOCUMENTS, [("$XDSDocumentEntryPatientId", [q(pid)]), slot_for("FindDocuments", "$XDSDocumentEntryStatus")])
    assert findings(element) == [(MALFORMED, "$XDSDocumentEntryPatientId")]


def test_quoted_time_is_accepted() -> None:
    parsed = parse_query(find_documents(("$XDSDocumentEntryCreationTimeTo", ["'20040101'"])))
    assert parsed.time_range("$XDSDocumentEntryCreationTime") == TimeRange(None, "20040101")


def test_every_finding_is_collected() -> None:
    element = request(
        FIND_DOCUMENTS,
        [
            ("$XDSDocumentEntryStatus", [lst(q("Approved"))]),
            ("$XDSDocumentEntryClassCode", [lst(q("a^^"), q("b"))]),
            ("$XDSDocumentEntryCreationTimeFrom", ["2004", "2005"]),
            ("$XDSDocumentEntryFormatCode", [lst(q("f^^s"))]),
            ("$XDSDocumentEntryFormatCode", [lst(q("g^^s"))]),
        ],
    )
    assert findings(element) == [
        (MALFORMED, "$XDSDocumentEntryStatus"),
        (MALFORMED, "$XDSDocumentEntryClassCode"),
        (MALFORMED, "$XDSDocumentEntryClassCode"),
        (NUMBER, "$XDSDocumentEntryCreationTimeFrom"),
        (NUMBER, "$XDSDocumentEntryFormatCode"),
        (MISSING, "$XDSDocumentEntryPatientId"),
    ]


def test_unknown_stored_query() -> None:
    element = request("urn:uuid:deadbeef-0000-0000-0000-000000000000", [("$XDSDocumentEntryPatientId", [q(PID)])])
    code, location, context = one_finding(element)
    assert code == ErrorCode.UNKNOWN_STORED_QUERY
    assert "urn:uuid:deadbeef-0000-0000-0000-000000000000" in context
    assert findings(request("", [])) == [(ErrorCode.UNKNOWN_STORED_QUERY, "")]


def test_query_id_letter_case_is_ignored() -> None:
    assert parse_query(request(FIND_DOCUMENTS.upper(), minimal("FindDocuments"))).name == "FindDocuments"


def test_wrong_element_is_refused() -> None:
    element = parse_xml(f'<rs:RegistryResponse xmlns:rs="urn:x" status="x"/>'.encode())
    assert [c for c, _ in findings(element)] == [MALFORMED]
    no_query = parse_xml(f'<query:AdhocQueryRequest xmlns:query="{NS_QUERY}"/>'.encode())
    assert [c for c, _ in findings(no_query)] == [MALFORMED]


def test_bare_adhoc_query_is_read_with_ebrs_defaults() -> None:
    adhoc = request(FIND_DOCUMENTS, minimal("FindDocuments")).find(f"{{{NS_RIM}}}AdhocQuery")
    parsed = parse_query(adhoc)
    assert parsed.return_type == ReturnType.LEAF_CLASS
    assert parsed.return_composed_objects is False


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ('<query:ResponseOption returnType="ObjectRef"/>', ReturnType.OBJECT_REF),
        ('<query:ResponseOption returnType="LeafClass"/>', ReturnType.LEAF_CLASS),
        ('<query:ResponseOption returnType="LeafClassWithRepositoryItem"/>', ReturnType.LEAF_CLASS),
        ('<query:ResponseOption returnType="RegistryObject"/>', ReturnType.LEAF_CLASS),
        ("<query:ResponseOption/>", ReturnType.LEAF_CLASS),  # ebRS default: RegistryObject
        (None, ReturnType.LEAF_CLASS),
    ],
)
def test_return_type(option: str | None, expected: str) -> None:
    parsed = parse_query(request(FIND_DOCUMENTS, minimal("FindDocuments"), option=option))
    assert parsed.return_type == expected
    assert parsed.return_composed_objects is False


def test_bad_response_option_is_reported_with_the_other_findings() -> None:
    option = '<query:ResponseOption returnType="Everything" returnComposedObjects="maybe"/>'
    slots = [s for s in minimal("FindDocuments") if s[0] != "$XDSDocumentEntryStatus"]
    assert findings(request(FIND_DOCUMENTS, slots, option=option)) == [
        (MALFORMED, "returnType"),
        (MALFORMED, "returnComposedObjects"),
        (MISSING, "$XDSDocumentEntryStatus"),
    ]


# -- typed values and accessors ------------------------------------------------------------------


def test_typed_values_and_accessors() -> None:
    parsed = parse_query(
        find_documents(
            ("$XDSDocumentEntryClassCode", [lst(q("a^^s1"), q("b^^s2"))]),
            ("$XDSDocumentEntryEventCodeList", [lst(q("e1^^s"), q("e2^^s"))]),
            ("$XDSDocumentEntryEventCodeList", [lst(q("e3^^s"))]),
            ("$XDSDocumentEntryConfidentialityCode", [lst(q("N^^conf"))]),
            ("$XDSDocumentEntryCreationTimeFrom", ["20040101"]),
            ("$XDSDocumentEntryCreationTimeTo", ["20050101"]),
            ("$XDSDocumentEntryAuthorPerson", [lst(q("%Smith%"), "'O''Brien'")]),
        )
    )
    assert parsed.params["$XDSDocumentEntryPatientId"] == PID
    assert parsed.string("$XDSDocumentEntryPatientId") == PID
    assert parsed.codes("$XDSDocumentEntryClassCode") == (CodeValue("a", "s1"), CodeValue("b", "s2"))
    assert parsed.and_codes("$XDSDocumentEntryClassCode") == ((CodeValue("a", "s1"), CodeValue("b", "s2")),)
    assert parsed.and_codes("$XDSDocumentEntryEventCodeList") == (
        (CodeValue("e1", "s"), CodeValue("e2", "s")),
        (CodeValue("e3", "s"),),
    )
    # An AND/OR parameter keeps the AND-of-OR shape even for a single Slot.
    assert parsed.params["$XDSDocumentEntryConfidentialityCode"] == ((CodeValue("N", "conf"),),)
    assert parsed.and_codes("$XDSDocumentEntryTypeCode") == ()
    assert parsed.codes("$XDSDocumentEntryFormatCode") == ()
    assert parsed.time_range("$XDSDocumentEntryCreationTime") == TimeRange("20040101", "20050101")
    assert parsed.time_range("$XDSDocumentEntryServiceStartTime").is_open
    assert parsed.strings("$XDSDocumentEntryAuthorPerson") == ("%Smith%", "O'Brien")
    assert parsed.statuses("$XDSDocumentEntryStatus") == (Status.APPROVED,)
    assert parsed.patient_ids() == (PID,)
    assert "$XDSDocumentEntryClassCode" in parsed and "$XDSDocumentEntryTypeCode" not in parsed
    with pytest.raises(TypeError):
        parsed.codes("$XDSDocumentEntryEventCodeList")  # flattening would lose the AND
    with pytest.raises(TypeError):
        parsed.strings("$XDSDocumentEntryClassCode")
    with pytest.raises(KeyError, match="not a parameter of FindDocuments"):
        parsed.codes("$XDSDocumentEntryClasCode")
    with pytest.raises(KeyError):
        parsed.get("$XDSFolderStatus")


def test_reference_id_list_is_and_of_or() -> None:
    acc1, acc2 = "A1^^^&1.2&ISO^urn:ihe:iti:xds:2013:accession", "A2^^^&1.2&ISO^urn:ihe:iti:xds:2013:accession"
    slots = minimal("FindDocumentsByReferenceId")
    slots = [s for s in slots if s[0] != "$XDSDocumentEntryReferenceIdList"] + [
        ("$XDSDocumentEntryReferenceIdList", [lst(q(acc1), q(acc2))]),
        ("$XDSDocumentEntryReferenceIdList", [lst(q(acc1))]),
    ]
    parsed = parse_query(request(query_id("FindDocumentsByReferenceId"), slots))
    assert parsed.and_strings("$XDSDocumentEntryReferenceIdList") == ((acc1, acc2), (acc1,))


@pytest.mark.parametrize(
    ("query", "sent", "expected"),
    [
        ("FindDocuments", None, (STABLE,)),  # issue #182: absent -> Stable only
        ("FindDocuments", [ON_DEMAND], (ON_DEMAND,)),
        ("FindDocuments", [STABLE, ON_DEMAND], (STABLE, ON_DEMAND)),
        ("GetAll", None, (STABLE,)),
        ("GetRelatedDocuments", None, (STABLE,)),
        ("GetDocuments", None, (STABLE, ON_DEMAND)),  # no such parameter: no filter
    ],
)
def test_effective_document_entry_types(query: str, sent: list[str] | None, expected: tuple[str, ...]) -> None:
    slots = minimal(query)
    if sent:
        slots.append(("$XDSDocumentEntryType", [lst(*(q(t) for t in sent))]))
    parsed = parse_query(request(query_id(query), slots))
    assert parsed.object_types() == expected
    assert ("$XDSDocumentEntryType" in parsed.params) == bool(sent)


@pytest.mark.parametrize(
    ("value", "inside"),
    [
        (None, False),
        ("20031231", False),
        ("2004", False),  # compared as strings, as NIST does: "2004" < "20040101"
        ("20040101", True),
        ("20041231235959", True),
        ("20050101", False),
        ("20050101000000", False),
    ],
)
def test_time_range_from_inclusive_to_exclusive(value: str | None, inside: bool) -> None:
    # NIST 11897/creationtime_right_edge: the To bound is exclusive.
    assert TimeRange("20040101", "20050101").contains(value) is inside
    assert TimeRange().contains(value) is True


# -- building ------------------------------------------------------------------------------------


def typed_sample(query: str, name: str, n: int = 1) -> object:
    """The typed value a parsed query holds for sample(name, n)."""
    raw = sample(name, n)
    text = raw[1:-1].replace("''", "'") if raw.startswith("'") else raw
    definition = find_definition(query)
    assert definition is not None
    param = definition.params[name]
    value: object = CodeValue(*text.split("^^")) if "Code" in name or name.endswith("ContentType") else text
    if is_single(query, name):
        return value
    if param.and_or:
        return ((value,),)
    return (value,)


def serialize_and_parse(element: etree._Element) -> object:
    return parse_query(parse_xml(to_bytes(element)))


@pytest.mark.parametrize("query", ALL)
def test_build_round_trip(query: str) -> None:
    names = [name for name, _ in minimal(query)]
    params = {name: typed_sample(query, name) for name in names}
    built = build_adhoc_query(query_id(query), params, return_type=ReturnType.OBJECT_REF)
    parsed = serialize_and_parse(built)
    assert parsed.name == query  # type: ignore[attr-defined]
    assert dict(parsed.params) == params  # type: ignore[attr-defined]
    assert parsed.return_type == ReturnType.OBJECT_REF  # type: ignore[attr-defined]


def test_build_writes_the_wire_syntax() -> None:
    built = build_adhoc_query(
        "FindDocuments",
        {
            "$XDSDocumentEntryPatientId": PID,
            "$XDSDocumentEntryStatus": [Status.APPROVED, Status.DEPRECATED],
            "$XDSDocumentEntryCreationTimeFrom": 20040101,
            "$XDSDocumentEntryAuthorPerson": ["O'Brien"],
            "$XDSDocumentEntryClassCode": [Code("c", "s", "display"), CodeValue("d", "t"), "e^^u"],
            "$XDSDocumentEntryEventCodeList": [[CodeValue("e1", "s")], [CodeValue("e2", "s"), CodeValue("e3", "s")]],
        },
    )
    slots = [
        (slot.get("name"), [v.text for v in slot.iter(f"{{{NS_RIM}}}Value")])
        for slot in built.iter(f"{{{NS_RIM}}}Slot")
    ]
    assert slots == [
        ("$XDSDocumentEntryPatientId", [q(PID)]),
        ("$XDSDocumentEntryStatus", [f"({q(Status.APPROVED)},{q(Status.DEPRECATED)})"]),
        ("$XDSDocumentEntryCreationTimeFrom", ["20040101"]),
        ("$XDSDocumentEntryAuthorPerson", ["('O''Brien')"]),
        ("$XDSDocumentEntryClassCode", ["('c^^s','d^^t','e^^u')"]),
        ("$XDSDocumentEntryEventCodeList", ["('e1^^s')"]),
        ("$XDSDocumentEntryEventCodeList", ["('e2^^s','e3^^s')"]),
    ]
    option = built.find(f"{{{NS_QUERY}}}ResponseOption")
    assert option is not None
    assert (option.get("returnType"), option.get("returnComposedObjects")) == ("LeafClass", "true")
    assert built.find(f"{{{NS_RIM}}}AdhocQuery").get("id") == FIND_DOCUMENTS  # type: ignore[union-attr]


def test_build_flat_list_for_and_parameter_is_one_or_list() -> None:
    built = build_adhoc_query(
        "FindDocuments",
        {
            "$XDSDocumentEntryPatientId": PID,
            "$XDSDocumentEntryStatus": Status.APPROVED,
            "$XDSDocumentEntryConfidentialityCode": [CodeValue("N", "c"), CodeValue("R", "c")],
        },
    )
    parsed = serialize_and_parse(built)
    assert parsed.params["$XDSDocumentEntryConfidentialityCode"] == ((CodeValue("N", "c"), CodeValue("R", "c")),)  # type: ignore[attr-defined]
    assert parsed.params["$XDSDocumentEntryStatus"] == (Status.APPROVED,)  # type: ignore[attr-defined]


def test_build_spreads_long_lists_over_values() -> None:
    uuids = [f"urn:uuid:{i:08d}-0000-0000-0000-000000000000" for i in range(40)]
    built = build_adhoc_query("GetDocuments", {"$XDSDocumentEntryEntryUUID": uuids})
    values = [v.text or "" for v in built.iter(f"{{{NS_RIM}}}Value")]
    assert len(values) > 1 and all(len(v) <= 256 for v in values)
    assert serialize_and_parse(built).strings("$XDSDocumentEntryEntryUUID") == tuple(uuids)  # type: ignore[attr-defined]


def test_build_home_community_id() -> None:
    built = build_adhoc_query("GetDocuments", {"$XDSDocumentEntryUniqueId": ["1.2.3"]}, home_community_id="urn:oid:1.2")
    adhoc = built.find(f"{{{NS_RIM}}}AdhocQuery")
    assert adhoc is not None and adhoc.get("home") == "urn:oid:1.2"
    assert [s.get("name") for s in adhoc] == ["$XDSDocumentEntryUniqueId", "$homeCommunityId"]
    assert serialize_and_parse(built).home_community_id == "urn:oid:1.2"  # type: ignore[attr-defined]
    find = build_adhoc_query("FindDocuments", {"$XDSDocumentEntryPatientId": PID, "$XDSDocumentEntryStatus": [Status.APPROVED]}, home_community_id="urn:oid:1.2")
    assert [s.get("name") for s in find.iter(f"{{{NS_RIM}}}Slot")] == ["$XDSDocumentEntryPatientId", "$XDSDocumentEntryStatus"]


def test_build_skips_empty_filters() -> None:
    built = build_adhoc_query(
        "FindDocuments",
        {
            "$XDSDocumentEntryPatientId": PID,
            "$XDSDocumentEntryStatus": [Status.APPROVED],
            "$XDSDocumentEntryClassCode": [],
            "$XDSDocumentEntryCreationTimeFrom": None,
        },
    )
    assert [s.get("name") for s in built.iter(f"{{{NS_RIM}}}Slot")] == ["$XDSDocumentEntryPatientId", "$XDSDocumentEntryStatus"]


def test_build_validates_by_default() -> None:
    with pytest.raises(XdsError) as caught:
        build_adhoc_query("FindDocuments", {"$XDSDocumentEntryPatientId": PID})
    assert [(e.code, e.location) for e in caught.value.errors] == [(MISSING, "$XDSDocumentEntryStatus")]
    with pytest.raises(XdsError) as unknown:
        build_adhoc_query("NoSuchQuery", {})
    assert unknown.value.errors[0].code == ErrorCode.UNKNOWN_STORED_QUERY
    with pytest.raises(ValueError):
        build_adhoc_query("FindDocuments", {"$XDSDocumentEntryPatientId": [PID, PID2], "$XDSDocumentEntryStatus": [Status.APPROVED]})


def test_build_without_validation_sends_what_it_is_given() -> None:
    # For conformance tests that probe a registry with invalid requests.
    built = build_adhoc_query(
        "FindDocuments",
        {"$XDSDocumentEntryPatientId": PID, "$XDSDocumentEntryClassCodeScheme": ["Connect-a-thon classCodes"]},
        validate=False,
    )
    assert [(c, loc) for c, loc in findings(parse_xml(to_bytes(built)))] == [(MISSING, "$XDSDocumentEntryStatus")]
    unknown = build_adhoc_query("urn:uuid:deadbeef-0000-0000-0000-000000000000", {}, validate=False)
    assert [c for c, _ in findings(unknown)] == [ErrorCode.UNKNOWN_STORED_QUERY]


xml_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Co")) | st.sampled_from(list("'(),^%_ ")),
    min_size=1,
    max_size=60,
)
code_text = xml_text.filter(lambda t: "^" not in t)


@settings(max_examples=60, deadline=None)
@given(
    authors=st.lists(xml_text, min_size=1, max_size=8),
    unique_ids=st.lists(xml_text, min_size=1, max_size=30),
    events=st.lists(st.lists(st.builds(CodeValue, code_text, code_text), min_size=1, max_size=4), min_size=1, max_size=3),
)
def test_build_round_trip_of_arbitrary_values(
    authors: list[str], unique_ids: list[str], events: list[list[CodeValue]]
) -> None:
    params = {
        "$XDSDocumentEntryPatientId": PID,
        "$XDSDocumentEntryStatus": (Status.APPROVED,),
        "$XDSDocumentEntryAuthorPerson": tuple(authors),
        "$XDSDocumentEntryEventCodeList": tuple(tuple(group) for group in events),
    }
    parsed = serialize_and_parse(build_adhoc_query("FindDocuments", params))
    assert dict(parsed.params) == params  # type: ignore[attr-defined]
    by_uid = serialize_and_parse(build_adhoc_query("GetDocuments", {"$XDSDocumentEntryUniqueId": unique_ids}))
    assert by_uid.strings("$XDSDocumentEntryUniqueId") == tuple(unique_ids)  # type: ignore[attr-defined]


def test_status_with_no_known_value_is_a_missing_parameter() -> None:
    """NIST 11897/status_invalid: an unknown status URN leaves the required status missing."""
    from xds.errors import XdsError
    from xds.query import build_adhoc_query, parse_query

    request = build_adhoc_query(
        "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
        {
            "$XDSDocumentEntryPatientId": "P1^^^&1.2.3&ISO",
            "$XDSDocumentEntryStatus": ["urn:oasis:names:tc:ebxml-regrep:StatusType:InvalidParameter"],
        },
        validate=False,
    )
    with pytest.raises(XdsError) as raised:
        parse_query(request)
    assert [e.code_text for e in raised.value.errors] == ["XDSStoredQueryMissingParam"]
