"""Document relationships in ITI-42: RPLC, APND, XFRM, XFRM_RPLC, the deprecation cascade and the
documentation classification (xds-notes §3.5, §8.1; ITI TF-3 §4.2.2.2)."""

from __future__ import annotations

from typing import Final

from conformance_tests.data.codes import DOC_ADDITIONAL_INFO
from conformance_tests.data.metadata import Submission
from conformance_tests.model import Counts, TestCase, failure, success
from conformance_tests.plans.registry.common import (
    APPROVED,
    DEPRECATED,
    REG,
    REG_OTHER,
    Builder,
    doc,
    get_documents,
    new_submission,
    register,
    uuid,
)
from conformance_tests.state import CaseState
from xds.errors import ErrorCode
from xds.vocabulary import AssociationType

TF_RELATIONSHIPS: Final = "ITI TF-3 §4.2.2.2 (document relationships); ITI TF-2b §3.42.4.1.3"


def _submit(key: str, ss_key: str, *, role: str = REG) -> Builder:
    """A builder registering DocumentEntry ``key`` alone."""

    def build(state: CaseState) -> Submission:
        sub = new_submission(state, ss_key, role=role)
        sub.add_document(doc(state, key, role=role))
        return sub

    return build


def _related(kind: str, key: str, target: str, ss_key: str, *, role: str = REG, documented: bool = False) -> Builder:
    """A builder registering DocumentEntry ``key`` with a ``kind`` association to ``target``."""

    def build(state: CaseState) -> Submission:
        sub = new_submission(state, ss_key, role=role)
        new = sub.add_document(doc(state, key, role=role))
        sub.relate(kind, new, uuid(state, target), documentation=DOC_ADDITIONAL_INFO if documented else None)
        return sub

    return build


def case_11992() -> TestCase:
    return TestCase(
        id="11992",
        title="Replace (RPLC)",
        tf=TF_RELATIONSHIPS,
        reference="NIST 11992",
        description="RPLC deprecates the original; the replacement is Approved.",
        steps=(
            register("original", "register DE d1", _submit("d1", "s1")),
            get_documents("lookup", ["d1"], statuses={"d1": APPROVED}),
            register("replace", "register d2 RPLC d1", _related(AssociationType.RPLC, "d2", "d1", "s2")),
            get_documents("statuses", ["d1", "d2"], statuses={"d1": DEPRECATED, "d2": APPROVED}),
        ),
    )


def _amend_case(case_id: str, kind: str, label: str) -> TestCase:
    return TestCase(
        id=case_id,
        title=f"{label.capitalize()} ({kind.rsplit(':', 1)[-1]}), and {label} of a replaced document",
        tf=TF_RELATIONSHIPS,
        reference=f"NIST {case_id}",
        description=f"{label.capitalize()} of an Approved DE is accepted and changes no status; {label} of a Deprecated "
        "(replaced) DE is rejected and stores nothing.",
        steps=(
            register("original", "register DE d1", _submit("d1", "s1")),
            get_documents("lookup_original", ["d1"]),
            register("replace", "register d2 RPLC d1", _related(AssociationType.RPLC, "d2", "d1", "s2")),
            get_documents("lookup_replacement", ["d2"], statuses={"d2": APPROVED}),
            register("amend", f"register d3 {label} d2 (Approved)", _related(kind, "d3", "d2", "s3")),
            register(
                "amend_replaced",
                f"register d4 {label} d1 (Deprecated)",
                _related(kind, "d4", "d1", "s4"),
                failure(note="the target is Deprecated"),
            ),
            get_documents(
                "statuses",
                ["d1", "d2", "d3", "d4"],
                expect=success(Counts(documents=3), note="d4 was not stored"),
                statuses={"d1": DEPRECATED, "d2": APPROVED, "d3": APPROVED},
            ),
        ),
    )


def case_11993() -> TestCase:
    return _amend_case("11993", AssociationType.APND, "append")


def case_11994() -> TestCase:
    return _amend_case("11994", AssociationType.XFRM, "transform")


def case_11995() -> TestCase:
    return TestCase(
        id="11995",
        title="Transform and replace (XFRM_RPLC)",
        tf=TF_RELATIONSHIPS,
        reference="NIST 11995",
        steps=(
            register("original", "register DE d1", _submit("d1", "s1")),
            get_documents("lookup", ["d1"]),
            register("xfrm_rplc", "register d2 XFRM_RPLC d1", _related(AssociationType.XFRM_RPLC, "d2", "d1", "s2")),
            get_documents("statuses", ["d1", "d2"], statuses={"d1": DEPRECATED, "d2": APPROVED}),
        ),
    )


def case_11998() -> TestCase:
    return TestCase(
        id="11998",
        title="Replacement under another patient id",
        tf="ITI TF-3 §4.2.2.2 (a relationship joins documents of one patient); ITI TF-3 Table 4.2.4.1-2",
        reference="NIST 11998",
        steps=(
            register("original", "register DE d1 (patient reg)", _submit("d1", "s1")),
            get_documents("lookup", ["d1"]),
            register(
                "replace_other_patient",
                "register d2 RPLC d1 under another known patient",
                _related(AssociationType.RPLC, "d2", "d1", "s2", role=REG_OTHER),
                failure(ErrorCode.PATIENT_ID_DOES_NOT_MATCH.value),
            ),
            get_documents(
                "unchanged",
                ["d1", "d2"],
                expect=success(Counts(documents=1), note="d2 not stored"),
                statuses={"d1": APPROVED},
            ),
        ),
    )


def case_12022() -> TestCase:
    def amendments(state: CaseState) -> Submission:
        sub = new_submission(state, "s2")
        apnd = sub.add_document(doc(state, "d2"))
        xfrm = sub.add_document(doc(state, "d3"))
        sub.relate(AssociationType.APND, apnd, uuid(state, "d1"))
        sub.relate(AssociationType.XFRM, xfrm, uuid(state, "d1"))
        return sub

    return TestCase(
        id="12022",
        title="Replacement deprecates the original's addenda and transforms",
        tf="ITI TF-3 §4.2.2.2 (RPLC: the original and its APND/XFRM documents are deprecated)",
        reference="NIST 12022",
        steps=(
            register("original", "register DE d1", _submit("d1", "s1")),
            get_documents("lookup", ["d1"]),
            register("amend", "register d2 APND d1 and d3 XFRM d1", amendments),
            register("replace", "register d4 RPLC d1", _related(AssociationType.RPLC, "d4", "d1", "s3")),
            get_documents(
                "cascade",
                ["d1", "d2", "d3", "d4"],
                statuses={"d1": DEPRECATED, "d2": DEPRECATED, "d3": DEPRECATED, "d4": APPROVED},
            ),
        ),
    )


def case_12370() -> TestCase:
    def on_has_member(state: CaseState) -> Submission:
        sub = new_submission(state, "s1")
        sub.add_document(doc(state, "d1"), documentation=DOC_ADDITIONAL_INFO)
        return sub

    return TestCase(
        id="12370",
        title="Association documentation classification",
        tf="ITI TF-3 §4.2.2.2 (associationDocumentation on relationship associations only)",
        reference="NIST 12370",
        steps=(
            register(
                "on_has_member",
                "register a DE whose SS HasMember carries an associationDocumentation",
                on_has_member,
                failure(note="documentation is allowed on relationship associations only"),
            ),
            get_documents("not_stored", ["d1"], expect=success(Counts(documents=0))),
            register("original", "register DE d2", _submit("d2", "s2")),
            get_documents("lookup", ["d2"]),
            register(
                "on_rplc",
                "register d3 RPLC d2 with an associationDocumentation",
                _related(AssociationType.RPLC, "d3", "d2", "s3", documented=True),
            ),
            get_documents("statuses", ["d2", "d3"], statuses={"d2": DEPRECATED, "d3": APPROVED}),
        ),
    )


def cases() -> tuple[TestCase, ...]:
    return (
        case_11992(),
        case_11993(),
        case_11994(),
        case_11995(),
        case_11998(),
        case_12022(),
        case_12370(),
    )
