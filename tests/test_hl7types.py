"""HL7 v2 data types and value formats of XDS metadata (ITI TF-3 Table 4.2.3.1.7-2)."""

from __future__ import annotations

import datetime as dt
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xds.metadata import hl7types as h

# -- OID ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1.2.3", "2.25.329800735698586629295641978511506172918", "0.0", "1.3.6.1.4.1.21367.13.20.1000"])
def test_oid_valid(value: str) -> None:
    assert h.check_oid(value) is None
    assert h.is_oid(value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        ("1", "is not an OID"),
        ("3.1.2", "is not an OID"),
        ("1.02.3", "is not an OID"),
        ("1.2.3.", "is not an OID"),
        ("1..2", "is not an OID"),
        ("1.2.a", "is not an OID"),
        (" 1.2.3", "is not an OID"),
        ("1." + "1" * 63, "is longer than 64 characters"),
    ],
)
def test_oid_invalid(value: str, reason: str) -> None:
    assert h.check_oid(value) == reason
    assert not h.is_oid(value)


def test_oid_of_exactly_64_characters_is_valid() -> None:
    value = "1." + "1" * 62
    assert len(value) == 64
    assert h.is_oid(value)


# -- uniqueId ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1.2.3", "1.2.3^abc", "1.2.3^" + "x" * 16])
def test_document_unique_id_valid(value: str) -> None:
    assert h.check_document_unique_id(value) is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("1.2.3^", "ends with '^'"),
        ("1.2.3^" + "x" * 17, "extension longer than 16"),
        ("^ext", "empty OID root"),
        ("1.2.x^ext", "root that is not an OID"),
        ("1.2.3^a^b", "more than one '^'"),
        ("1." + "2" * 64, "longer than 64"),
        ("", "is empty"),
    ],
)
def test_document_unique_id_invalid(value: str, fragment: str) -> None:
    problem = h.check_document_unique_id(value)
    assert problem is not None and fragment in problem


def test_submission_set_unique_id_takes_no_extension() -> None:
    assert h.check_unique_id("1.2.3") is None
    assert h.check_unique_id("1.2.3^ext") == "is not an OID"


# -- UUID ----------------------------------------------------------------------------------------


def test_uuid_urn() -> None:
    assert h.check_uuid_urn("urn:uuid:2f0c9e4a-7b1d-4e55-9a3c-6d8e1f2a3b4c") is None
    assert h.check_uuid_urn("urn:uuid:2F0C9E4A-7B1D-4E55-9A3C-6D8E1F2A3B4C") is None
    assert h.check_uuid_urn("urn:uuid:2f0c9e4a7b1d4e559a3c6d8e1f2a3b4c") is not None
    assert h.check_uuid_urn("urn:uuid:not-a-uuid") is not None


# -- DTM ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["2024", "202402", "20240229", "2024022923", "202402292359", "20240229235959"])
def test_dtm_valid_precisions(value: str) -> None:
    assert h.check_dtm(value) is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2024-01", "is not a DTM (YYYY"),
        ("20240", "is not a DTM (YYYY"),
        ("2024010", "is not a DTM (YYYY"),
        ("20240101120000.5", "is not a DTM (YYYY"),
        ("20240101120000+0100", "is not a DTM (YYYY"),
        ("202413", "month out of range"),
        ("202400", "month out of range"),
        ("20230229", "day out of range"),
        ("20240431", "day out of range"),
        ("2024010124", "hour out of range"),
        ("202401012360", "minute out of range"),
        ("20240101235960", "second out of range"),
        ("２０２４", "is not a DTM (YYYY"),
        ("", "is not a DTM (YYYY"),
    ],
)
def test_dtm_invalid(value: str, fragment: str) -> None:
    problem = h.check_dtm(value)
    assert problem is not None and fragment in problem


@given(
    moment=st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)),
    precision=st.sampled_from([4, 6, 8, 10, 12, 14]),
)
def test_dtm_every_real_time_at_every_precision_is_valid(moment: dt.datetime, precision: int) -> None:
    text = f"{moment.year:04d}{moment.month:02d}{moment.day:02d}{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"
    assert h.check_dtm(text[:precision]) is None


@given(st.text(alphabet=string.digits, min_size=1, max_size=20).filter(lambda s: len(s) not in (4, 6, 8, 10, 12, 14)))
def test_dtm_wrong_length_is_invalid(value: str) -> None:
    assert not h.is_dtm(value)


# -- CX / patientId --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["P123^^^&1.2.3&ISO", "IHERED-2718^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"])
def test_patient_id_valid(value: str) -> None:
    assert h.check_patient_id(value) is None
    assert h.check_cx(value) is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("P123", "only CX.1 and CX.4"),
        ("P123^^^&1.2.3&ISO^PI", "only CX.1 and CX.4"),
        ("P123^5^M10^&1.2.3&ISO", "CX.2 and CX.3 must be empty"),
        ("^^^&1.2.3&ISO", "CX.1 ID is empty"),
        ("P123^^^", "CX.4 assigning authority is missing"),
        ("P123^^^HOSP&1.2.3&ISO", "namespace ID"),
        ("P123^^^&1.2.3&L", "not ISO"),
        ("P123^^^&&ISO", "without universal ID"),
        ("P123^^^&1.2.x&ISO", "is not an OID"),
        ("P123^^^&1.2.3&ISO&x", "too many subcomponents"),
        ("", "is empty"),
    ],
)
def test_patient_id_invalid(value: str, fragment: str) -> None:
    problem = h.check_patient_id(value)
    assert problem is not None and fragment in problem


def test_cx_allows_more_components_than_a_patient_id() -> None:
    value = "MRN-1^^^&1.2.3&ISO^MR"
    assert h.check_cx(value) is None
    assert h.check_patient_id(value) is not None


@pytest.mark.parametrize("value", ["MRN-1", "MRN-1^^^HOSP", "^^^&1.2.3&ISO", "x^^^^^^^^^^^&1.2&ISO"])
def test_cx_invalid(value: str) -> None:
    assert h.check_cx(value) is not None


_ID_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-._", min_size=1, max_size=20)
_OIDS = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=8).map(
    lambda arcs: "1." + ".".join(str(a) for a in arcs)
)


@given(local=_ID_TEXT, oid=_OIDS)
def test_patient_id_built_from_parts_is_valid_and_parses_back(local: str, oid: str) -> None:
    pid = f"{local}^^^&{oid}&ISO"
    assert h.is_patient_id(pid)
    parts = h.cx_parts(pid)
    assert parts.id == local
    assert parts.authority_oid == oid
    assert parts.assigning_authority == h.HD("", oid, "ISO")


def test_cx_parts_of_a_full_cx() -> None:
    parts = h.cx_parts("A1^7^M10^NS&1.2&ISO^MR^FAC")
    assert (parts.id, parts.check_digit, parts.check_digit_scheme, parts.identifier_type_code) == ("A1", "7", "M10", "MR")
    assert parts.assigning_authority == h.HD("NS", "1.2", "ISO")
    assert parts.extra == ("FAC",)
    assert h.hd_parts("").is_empty


# -- CXi (referenceIdList) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "ACC-17^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:accession",
        "1.2.826.0.1.3680043.8.1055.1^^^^urn:ihe:iti:xds:2016:studyInstanceUID",
        "ORD-1^^^HOSP^urn:ihe:iti:xds:2013:order",
        "ref^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:referral^^^^^urn:oid:1.2.3.4",
    ],
)
def test_cxi_valid(value: str) -> None:
    assert h.check_cxi(value) is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("ACC-17^^^&1.2.3&ISO", "CXi.5 identifier type code is empty"),
        ("^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:accession", "CXi.1 ID is empty"),
        ("A^1^^&1.2.3&ISO^urn:ihe:iti:xds:2013:accession", "only components 1, 4, 5 and 10"),
        ("A^^^&1.2.3^urn:ihe:iti:xds:2013:accession", "incomplete CXi.4"),
        ("A^^^&1.2.x&ISO^urn:ihe:iti:xds:2013:accession", "not an OID"),
    ],
)
def test_cxi_invalid(value: str, fragment: str) -> None:
    problem = h.check_cxi(value)
    assert problem is not None and fragment in problem


# -- XCN, XON, XTN ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["^Welby^Marcus^^^Dr^MD", "11375^Welby^Marcus^J^Jr. MD^Dr^^^&1.2.840.113619.6.197&ISO", "7788", "^Radiant"],
)
def test_xcn_valid(value: str) -> None:
    assert h.check_xcn(value) is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("^^Marcus", "neither XCN.1 ID nor XCN.2 family name"),
        ("11375^Welby^^^^^^^HOSP&1.2.3&ISO", "namespace ID"),
        ("11375^Welby^^^^^^^&1.2.3&L", "not ISO"),
        ("", "is empty"),
        ("1" + "^x" * 23, "more than 23 components"),
    ],
)
def test_xcn_invalid(value: str, fragment: str) -> None:
    problem = h.check_xcn(value)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize(
    "value",
    [
        "Some Hospital",
        "Some Hospital^^^^^^^^^1.2.3.4.5.6.7.8.9.1789.45",
        "Some Hospital^^^^^&1.2.3.4&ISO^^^^45",
        "Some Hospital^^^^^&1.2.3.4&ISO^^^^LOCAL-ID",
    ],
)
def test_xon_valid(value: str) -> None:
    assert h.check_xon(value) is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("^^^^^^^^^1.2.3", "XON.1 organization name is empty"),
        ("Some Hospital^L", "only components 1, 6 and 10"),
        ("Some Hospital^^^^^^^^^LOCAL-ID", "XON.10 is not an OID"),
        ("Some Hospital^^^^^NS&1.2.3&ISO^^^^45", "namespace ID"),
        ("Some Hospital" + "^" * 10 + "x", "more than 10 components"),
    ],
)
def test_xon_invalid(value: str, fragment: str) -> None:
    problem = h.check_xon(value)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize(
    "value",
    ["^^Internet^radiology@mercy.example.org", "^WPN^PH^^1^314^5551234", "^PRN^CP^^^^^^^^^+1 555 0100", "(555)1234^WPN^PH"],
)
def test_xtn_valid(value: str) -> None:
    assert h.check_xtn(value) is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("^^Internet", "without XTN.4 address"),
        ("^WPN^PH", "without a telephone number"),
        ("^^Pigeon^coop 7", "unknown XTN.3 equipment type"),
        ("mail@example.org", "XTN.3 telecommunication equipment type is empty"),
    ],
)
def test_xtn_invalid(value: str, fragment: str) -> None:
    problem = h.check_xtn(value)
    assert problem is not None and fragment in problem


# -- intendedRecipient -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "Some Hospital^^^^^^^^^1.2.3.9.1789.45|^Wel^Marcus^^^Dr^MD|^^Internet^mwel@healthcare.example.org",
        "|12345^LaShawn^James^^^Dr^MD",
        "||^^Internet^onlineservice@healthcare.example.org",
        "Main Hospital^^^^^^^^^1.2.3.4.5.6.7.8.9.1789.2364",
        "^^Internet^onlineservice@healthcare.example.org",
    ],
)
def test_intended_recipient_valid(value: str) -> None:
    assert h.check_intended_recipient(value) is None


@pytest.mark.parametrize("value", ["||", "a|b|c|d", "|^^Marcus", "Hosp^L|"])
def test_intended_recipient_invalid(value: str) -> None:
    assert h.check_intended_recipient(value) is not None


# -- scalars ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["da39a3ee5e6b4b0d3255bfef95601890afd80709", "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709"])
def test_hash_either_case_is_valid(value: str) -> None:
    assert h.is_hash(value)


@pytest.mark.parametrize("value", ["", "da39a3ee5e6b4b0d3255bfef95601890afd8070", "da39a3ee5e6b4b0d3255bfef95601890afd807090", "g" * 40])
def test_hash_invalid(value: str) -> None:
    assert h.check_hash(value) == "is not a SHA-1 hash (40 hexadecimal digits)"


@pytest.mark.parametrize(("value", "ok"), [("0", True), ("2874", True), ("", False), ("-1", False), ("1.0", False), ("12kb", False), (" 1", False)])
def test_size(value: str, ok: bool) -> None:
    assert h.is_size(value) is ok


@pytest.mark.parametrize(
    "value",
    ["en", "en-US", "de-CH", "fr", "zh-Hant-TW", "sr-Latn-RS", "es-419", "de-CH-1996", "x-private", "i-klingon",
     "en-GB-oed", "zh-min-nan", "EN-us", "en-a-bbb-x-a-ccc", "sgn-BE-FR", "zh-yue-HK"],
)
def test_language_code_valid(value: str) -> None:
    assert h.is_language_code(value)


@pytest.mark.parametrize("value", ["", "e", "englishes", "en_US", "en-", "en--US", "123", "en-US-", "toolongtag", "en-x"])
def test_language_code_invalid(value: str) -> None:
    assert h.check_language_code(value) == "is not an RFC 5646 language tag"


@pytest.mark.parametrize(("value", "ok"), [("PID-3|A^^^&1.2&ISO", True), ("PID-5|DOE^JOHN^^^", True), ("PID-8|M", True),
                                           ("PID5|DOE", False), ("DOE^JOHN", False), ("PID-|x", False)])
def test_source_patient_info(value: str, ok: bool) -> None:
    assert (h.check_source_patient_info(value) is None) is ok
