"""FindDocuments, FindDocumentsByReferenceId, FindSubmissionSets and FindFolders (ITI TF-2a
§3.18.4.1.2.3.7; xds-notes §8.4 tests 11897, 11898, 11899) over the data of :mod:`.sq_data`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from conformance_tests.data import codes as c
from conformance_tests.model import Counts, SoapStep, TestCase, Verifier, failure, success
from conformance_tests.plans.registry.common import (
    APPROVED,
    DEPRECATED,
    OBJECT_REF,
    SQ,
    exactly_documents,
    exactly_folders,
    exactly_refs,
    exactly_submission_sets,
    query,
)
from conformance_tests.plans.registry.sq_data import (
    ALL_DOCS,
    ALL_SETS,
    APPROVED_DOCS,
    LOAD_CASE,
    accession,
)
from conformance_tests.state import CaseState
from xds.errors import ErrorCode

TF_FIND: Final = "ITI TF-2a §3.18.4.1.2.3.7 (stored query parameters); §3.18.4.1.2.3.5 (value syntax)"
INVALID_STATUS: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:InvalidParameter"


def _find_documents(
    name: str,
    purpose: str,
    extra: Mapping[str, object] | None = None,
    *,
    docs: Sequence[str] | None = None,
    statuses: Sequence[str] = (APPROVED,),
    expect_failure: str | None = None,
    by_reference: bool = False,
    return_type: str = "LeafClass",
    dynamic: object = None,
) -> SoapStep:
    """A FindDocuments query for patient sq; ``docs`` are the DocumentEntries expected."""

    def params(state: CaseState) -> Mapping[str, object]:
        values: dict[str, object] = {
            "$XDSDocumentEntryPatientId": state.patient(SQ),
            "$XDSDocumentEntryStatus": list(statuses),
        }
        values.update(extra or {})
        if callable(dynamic):
            values.update(dynamic(state))
        return values

    if expect_failure is not None:
        expect = failure(*([expect_failure] if expect_failure else []))
        verify: tuple[Verifier, ...] = ()
    elif return_type == OBJECT_REF:
        expect = success(Counts(object_refs=len(docs or ()), documents=0))
        verify = (exactly_refs(list(docs or ())),)
    else:
        expect = success(Counts(documents=len(docs or ())))
        verify = (exactly_documents(list(docs or ())),)
    return query(
        name,
        purpose,
        "FindDocumentsByReferenceId" if by_reference else "FindDocuments",
        params,
        expect,
        return_type=return_type,
        verify=verify,
    )


def _code(*codes: c.Coded) -> list[str]:
    return [code.query_value() for code in codes]


def case_11897() -> TestCase:
    fd = _find_documents
    steps = (
        fd("approved", "status Approved", docs=APPROVED_DOCS),
        fd(
            "status_invalid",
            "a status value that is not a status",
            statuses=(INVALID_STATUS,),
            expect_failure=ErrorCode.STORED_QUERY_MISSING_PARAM.value,
        ),
        fd("approved_deprecated", "status Approved or Deprecated", docs=ALL_DOCS, statuses=(APPROVED, DEPRECATED)),
        fd("deprecated", "status Deprecated", docs=("D5",), statuses=(DEPRECATED,)),
        fd(
            "objectref",
            "ObjectRef, Approved or Deprecated",
            docs=ALL_DOCS,
            statuses=(APPROVED, DEPRECATED),
            return_type=OBJECT_REF,
        ),
        fd(
            "classcode_one",
            "classCode REPORTS",
            {"$XDSDocumentEntryClassCode": _code(c.CLASS_REPORTS)},
            docs=("D1", "D3"),
        ),
        fd(
            "classcode_two",
            "classCode REPORTS or SUMMARIES",
            {"$XDSDocumentEntryClassCode": _code(c.CLASS_REPORTS, c.CLASS_SUMMARIES)},
            docs=("D1", "D3", "D4"),
        ),
        fd(
            "classcode_scheme_2",
            "classCode IMAGES or a code of another scheme",
            {"$XDSDocumentEntryClassCode": _code(c.CLASS_IMAGES, c.CLASS_PRIVACY_ACK)},
            docs=("D2", "D6"),
        ),
        fd(
            "classcode_scheme_mismatch",
            "classCode list whose second code has no scheme ('a^^')",
            {"$XDSDocumentEntryClassCode": [c.CLASS_REPORTS.query_value(), "a^^"]},
            expect_failure="",
        ),
        fd(
            "no_matching_classcode",
            "classCode no document has",
            {"$XDSDocumentEntryClassCode": _code(c.CLASS_PRIVACY_ACK)},
            docs=(),
        ),
        fd(
            "practicesetting",
            "practiceSettingCode cardiology",
            {"$XDSDocumentEntryPracticeSettingCode": _code(c.PRACTICE_CARDIOLOGY)},
            docs=("D1", "D4", "D6"),
        ),
        fd(
            "practicesetting_scheme",
            "practiceSettingCode plus an unknown parameter (ignored)",
            {
                "$XDSDocumentEntryPracticeSettingCode": _code(c.PRACTICE_CARDIOLOGY),
                "$XDSDocumentEntryPracticeSettingCodeScheme": [c.PRACTICE_CARDIOLOGY.scheme],
            },
            docs=("D1", "D4", "D6"),
        ),
        fd(
            "classcode_practicesetting",
            "classCode REPORTS and practiceSettingCode cardiology",
            {
                "$XDSDocumentEntryClassCode": _code(c.CLASS_REPORTS),
                "$XDSDocumentEntryPracticeSettingCode": _code(c.PRACTICE_CARDIOLOGY),
            },
            docs=("D1",),
        ),
        fd(
            "creationtime_between",
            "creationTime in [20050101000000, 20060101000000)",
            {
                "$XDSDocumentEntryCreationTimeFrom": "20050101000000",
                "$XDSDocumentEntryCreationTimeTo": "20060101000000",
            },
            docs=("D2", "D3"),
        ),
        fd(
            "creationtime_between_long",
            "creationTime in [20000101000000, 20100101000000)",
            {
                "$XDSDocumentEntryCreationTimeFrom": "20000101000000",
                "$XDSDocumentEntryCreationTimeTo": "20100101000000",
            },
            docs=APPROVED_DOCS,
        ),
        fd(
            "creationtime_left_edge",
            "creationTimeFrom equal to D2's creationTime (inclusive)",
            {
                "$XDSDocumentEntryCreationTimeFrom": "20050101100000",
                "$XDSDocumentEntryCreationTimeTo": "20050101100001",
            },
            docs=("D2",),
        ),
        fd(
            "creationtime_right_edge",
            "creationTimeTo equal to D2's creationTime (exclusive)",
            {
                "$XDSDocumentEntryCreationTimeFrom": "20050101000000",
                "$XDSDocumentEntryCreationTimeTo": "20050101100000",
            },
            docs=(),
        ),
        fd(
            "creationtime_practicesetting",
            "creationTime in [2004, 2006) and practiceSettingCode general",
            {
                "$XDSDocumentEntryCreationTimeFrom": "20040101000000",
                "$XDSDocumentEntryCreationTimeTo": "20060101000000",
                "$XDSDocumentEntryPracticeSettingCode": _code(c.PRACTICE_GENERAL),
            },
            docs=("D2", "D3"),
        ),
        fd(
            "servicestarttime",
            "serviceStartTime in [20041201000000, 20051201000000)",
            {
                "$XDSDocumentEntryServiceStartTimeFrom": "20041201000000",
                "$XDSDocumentEntryServiceStartTimeTo": "20051201000000",
            },
            docs=("D2", "D3"),
        ),
        fd(
            "servicestoptime",
            "serviceStopTime in [20051201000000, 20080101000000)",
            {
                "$XDSDocumentEntryServiceStopTimeFrom": "20051201000000",
                "$XDSDocumentEntryServiceStopTimeTo": "20080101000000",
            },
            docs=("D4", "D6"),
        ),
        fd(
            "hcftc",
            "healthcareFacilityTypeCode emergency",
            {"$XDSDocumentEntryHealthcareFacilityTypeCode": _code(c.HCFT_EMERGENCY)},
            docs=("D3", "D4"),
        ),
        fd(
            "hcftc_scheme",
            "healthcareFacilityTypeCode hospital plus an unknown parameter (ignored)",
            {
                "$XDSDocumentEntryHealthcareFacilityTypeCode": _code(c.HCFT_HOSPITAL),
                "$XDSDocumentEntryHealthcareFacilityTypeCodeScheme": [c.HCFT_HOSPITAL.scheme],
            },
            docs=("D1", "D2", "D6"),
        ),
        fd(
            "eventcode",
            "eventCodeList CT",
            {"$XDSDocumentEntryEventCodeList": _code(c.EVENT_CT)},
            docs=("D1", "D2", "D6"),
        ),
        fd(
            "eventcode_multi_select",
            "eventCodeList MR or US (one Slot)",
            {"$XDSDocumentEntryEventCodeList": _code(c.EVENT_MR, c.EVENT_US)},
            docs=("D2", "D3", "D4"),
        ),
        fd(
            "and",
            "eventCodeList CT and eventCodeList MR (two Slots)",
            {"$XDSDocumentEntryEventCodeList": [_code(c.EVENT_CT), _code(c.EVENT_MR)]},
            docs=("D2",),
        ),
        fd(
            "confcode",
            "confidentialityCode R",
            {"$XDSDocumentEntryConfidentialityCode": _code(c.CONF_RESTRICTED)},
            docs=("D2", "D3"),
        ),
        fd(
            "confcode_and",
            "confidentialityCode N and confidentialityCode R (two Slots)",
            {"$XDSDocumentEntryConfidentialityCode": [_code(c.CONF_NORMAL), _code(c.CONF_RESTRICTED)]},
            docs=("D2",),
        ),
        fd("formatcode", "formatCode KOS", {"$XDSDocumentEntryFormatCode": _code(c.FORMAT_KOS)}, docs=("D2", "D6")),
        fd(
            "typecode",
            "typeCode consultation note",
            {"$XDSDocumentEntryTypeCode": _code(c.TYPE_CONSULTATION)},
            docs=("D1", "D3"),
        ),
        fd(
            "author", "authorPerson LIKE '%Smitty%'", {"$XDSDocumentEntryAuthorPerson": ["%Smitty%"]}, docs=("D1", "D3")
        ),
        fd(
            "author_underscore",
            "authorPerson LIKE '^Jone_^%'",
            {"$XDSDocumentEntryAuthorPerson": ["^Jone_^%"]},
            docs=("D4",),
        ),
        fd("author_none", "authorPerson LIKE '%Nobody%'", {"$XDSDocumentEntryAuthorPerson": ["%Nobody%"]}, docs=()),
        fd(
            "old_scheme",
            "practiceSettingCode without its scheme, scheme in a separate old-style parameter",
            {
                "$XDSDocumentEntryPracticeSettingCode": [c.PRACTICE_CARDIOLOGY.code],
                "$XDSDocumentEntryPracticeSettingCodeScheme": [c.PRACTICE_CARDIOLOGY.scheme],
            },
            expect_failure="",
        ),
        fd(
            "refid",
            "FindDocumentsByReferenceId: accession B",
            dynamic=lambda st: {"$XDSDocumentEntryReferenceIdList": [accession(st, "B")]},
            docs=("D2", "D3"),
            by_reference=True,
        ),
        fd(
            "refid_replaced",
            "FindDocumentsByReferenceId: accession C (D5 is Deprecated)",
            dynamic=lambda st: {"$XDSDocumentEntryReferenceIdList": [accession(st, "C")]},
            docs=("D6",),
            by_reference=True,
        ),
    )
    return TestCase(
        id="11897",
        title="FindDocuments",
        tf=TF_FIND,
        reference="NIST 11897",
        description="Each step is one FindDocuments (or FindDocumentsByReferenceId) query over patient "
        "sq; counts follow from the data table of test 12346. Time ranges are From <= t < To.",
        requires=(LOAD_CASE,),
        independent_steps=True,
        steps=steps,
    )


def _find_submission_sets(name: str, purpose: str, extra: Mapping[str, object], sets: Sequence[str]) -> SoapStep:
    def params(state: CaseState) -> Mapping[str, object]:
        values: dict[str, object] = {
            "$XDSSubmissionSetPatientId": state.patient(SQ),
            "$XDSSubmissionSetStatus": [APPROVED],
        }
        for key, value in extra.items():
            values[key] = value(state) if callable(value) else value
        return values

    return query(
        name,
        purpose,
        "FindSubmissionSets",
        params,
        success(Counts(submission_sets=len(sets), documents=0)),
        verify=(exactly_submission_sets(list(sets)),),
    )


def case_11898() -> TestCase:
    fs = _find_submission_sets
    return TestCase(
        id="11898",
        title="FindSubmissionSets",
        tf=TF_FIND,
        reference="NIST 11898",
        requires=(LOAD_CASE,),
        independent_steps=True,
        steps=(
            fs("simple", "status Approved", {}, ALL_SETS),
            fs(
                "sourceid",
                "a sourceId no SubmissionSet has",
                {"$XDSSubmissionSetSourceId": lambda st: [st.ids.oid()]},
                (),
            ),
            fs(
                "sourceid_match",
                "the sourceId of the test data",
                {"$XDSSubmissionSetSourceId": lambda st: [st["source-id"]]},
                ALL_SETS,
            ),
            fs(
                "submissiontime_in",
                "submissionTime in [20050101000000, 20060101000000)",
                {
                    "$XDSSubmissionSetSubmissionTimeFrom": "20050101000000",
                    "$XDSSubmissionSetSubmissionTimeTo": "20060101000000",
                },
                ("S2", "S3"),
            ),
            fs(
                "submissiontime_out",
                "submissionTime in [20090101000000, 20100101000000)",
                {
                    "$XDSSubmissionSetSubmissionTimeFrom": "20090101000000",
                    "$XDSSubmissionSetSubmissionTimeTo": "20100101000000",
                },
                (),
            ),
            fs(
                "submissiontime_no_start",
                "submissionTime before 20050101120000 (exclusive)",
                {"$XDSSubmissionSetSubmissionTimeTo": "20050101120000"},
                ("S1",),
            ),
            fs(
                "submissiontime_no_end",
                "submissionTime from 20070101000000",
                {"$XDSSubmissionSetSubmissionTimeFrom": "20070101000000"},
                ("S4", "S5"),
            ),
            fs("author_all", "authorPerson LIKE '%Smitty%'", {"$XDSSubmissionSetAuthorPerson": "%Smitty%"}, ALL_SETS),
            fs("author_none", "authorPerson LIKE '%Nobody%'", {"$XDSSubmissionSetAuthorPerson": "%Nobody%"}, ()),
            fs(
                "contenttype_all",
                "contentTypeCode hospital",
                {"$XDSSubmissionSetContentType": _code(c.CONTENT_HOSPITAL)},
                ALL_SETS,
            ),
            fs(
                "contenttype_none",
                "contentTypeCode emergency",
                {"$XDSSubmissionSetContentType": _code(c.HCFT_EMERGENCY)},
                (),
            ),
        ),
    )


def _window(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y%m%d000000")


def _find_folders(name: str, purpose: str, extra: Mapping[str, object], folders: Sequence[str]) -> SoapStep:
    def params(state: CaseState) -> Mapping[str, object]:
        values: dict[str, object] = {"$XDSFolderPatientId": state.patient(SQ), "$XDSFolderStatus": [APPROVED]}
        for key, value in extra.items():
            values[key] = value() if callable(value) else value
        return values

    return query(
        name,
        purpose,
        "FindFolders",
        params,
        success(Counts(folders=len(folders), documents=0)),
        verify=(exactly_folders(list(folders)),),
    )


def case_11899() -> TestCase:
    ff = _find_folders
    return TestCase(
        id="11899",
        title="FindFolders",
        tf=TF_FIND,
        reference="NIST 11899",
        requires=(LOAD_CASE,),
        independent_steps=True,
        steps=(
            ff("basic", "status Approved", {}, ("F1", "F2")),
            ff(
                "lastupdatetime_in",
                "lastUpdateTime within two days of now (the registry set it when the data was loaded)",
                {"$XDSFolderLastUpdateTimeFrom": lambda: _window(-2), "$XDSFolderLastUpdateTimeTo": lambda: _window(2)},
                ("F1", "F2"),
            ),
            ff(
                "lastupdatetime_out",
                "lastUpdateTime in [19900101000000, 20000101000000)",
                {"$XDSFolderLastUpdateTimeFrom": "19900101000000", "$XDSFolderLastUpdateTimeTo": "20000101000000"},
                (),
            ),
            ff("codelist", "codeList Referrals", {"$XDSFolderCodeList": _code(c.FOLDER_REFERRALS)}, ("F1", "F2")),
            ff("codelist_one", "codeList Allergy_Treatments", {"$XDSFolderCodeList": _code(c.FOLDER_ALLERGY)}, ("F2",)),
            ff(
                "codelist_and",
                "codeList Referrals and codeList Allergy_Treatments (two Slots)",
                {"$XDSFolderCodeList": [_code(c.FOLDER_REFERRALS), _code(c.FOLDER_ALLERGY)]},
                ("F2",),
            ),
        ),
    )


def cases() -> tuple[TestCase, ...]:
    return (case_11897(), case_11898(), case_11899())
