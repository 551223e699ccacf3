"""ITI-61 Register On-Demand Document Entry at the Document Registry (the On-Demand Documents
option; xds-notes §8.1 "Options", NIST 15805).

An On-Demand Document Source registers a DocumentEntry whose objectType is the On-Demand one
(ITI TF-3 §4.2.5.2); it has no hash and no size, since its content is made when it is
retrieved. A Stored Query returns On-Demand entries only when $XDSDocumentEntryType asks for
them: absent, the type is Stable (ITI TF-2a §3.18.4.1.2.3.7.1). A stable snapshot of it is
registered with ITI-42 and an IsSnapshotOf association (ITI TF-3 §4.2.2). The cases run only
for a peer that declares the option (``--option on-demand``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from conformance_tests.data.metadata import Submission
from conformance_tests.model import Check, Counts, TestCase, Transaction, Verifier, success
from conformance_tests.plans.registry.common import (
    APPROVED,
    REG,
    doc,
    exactly_documents,
    find_object,
    get_documents,
    new_submission,
    query,
    register,
    uid,
    uuid,
)
from conformance_tests.plans.registry.options_common import update_step
from conformance_tests.response import ResponseView
from conformance_tests.state import CaseState
from xds.vocabulary import AssociationType, ObjectType

__all__ = ["OPTION", "cases"]

#: The option a registry declares when it accepts ITI-61.
OPTION: Final = "on-demand"


def _on_demand(state: CaseState) -> Submission:
    sub = new_submission(state, "s-od")
    on_demand = doc(state, "od", object_type=ObjectType.ON_DEMAND_DOCUMENT_ENTRY, omit=frozenset({"hash", "size"}))
    sub.add_document(on_demand)
    return sub


def _snapshot(state: CaseState) -> Submission:
    sub = new_submission(state, "s-snap")
    snapshot = sub.add_document(doc(state, "snap"))
    sub.relate(AssociationType.IS_SNAPSHOT_OF, snapshot, uuid(state, "od"))
    return sub


def _find(types: list[str] | None) -> Mapping[str, object]:
    params: dict[str, object] = {"$XDSDocumentEntryStatus": [APPROVED]}
    if types is not None:
        params["$XDSDocumentEntryType"] = types
    return params


def _object_type(key: str, expected: str) -> Verifier:
    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        found = find_object(view, uid(state, key), "doc")
        got = None if found is None else found.element.get("objectType")
        return [Check(f"{key} objectType", got == expected, f"expected {expected}, got {got}",
                      "ITI TF-3 §4.2.5.2 (objectType: Stable or On-Demand)")]  # fmt: skip

    return verify


def case_register() -> TestCase:
    return TestCase(
        id="od-register",
        title="Register an On-Demand DocumentEntry; only a query for On-Demand entries finds it",
        tf="ITI TF-2b §3.61 (Register On-Demand Document Entry); ITI TF-3 §4.1.14 (On-Demand Documents), "
        "§4.2.5.2 (objectType); ITI TF-2a §3.18.4.1.2.3.7.1 ($XDSDocumentEntryType, Stable when absent)",
        reference="NIST 15805 (xds-notes §8.1 Options); the case is the runner's",
        description="FindDocuments of the patient with $XDSDocumentEntryType = On-Demand returns exactly the "
        "new entry; without the parameter it returns no On-Demand entry.",
        option=OPTION,
        steps=(
            update_step("register", "ITI-61 with the On-Demand DocumentEntry od (no hash, no size)",
                        lambda state: _on_demand(state).element(), transaction=Transaction.ITI61),
            query("find_on_demand", "FindDocuments, $XDSDocumentEntryType On-Demand: exactly od", "FindDocuments",
                  lambda state: {"$XDSDocumentEntryPatientId": state.patient(REG),
                                 **_find([ObjectType.ON_DEMAND_DOCUMENT_ENTRY])},
                  success(Counts(documents=1)),
                  verify=(exactly_documents(["od"]), _object_type("od", ObjectType.ON_DEMAND_DOCUMENT_ENTRY))),
            query("find_default", "FindDocuments without $XDSDocumentEntryType: od is not among them",
                  "FindDocuments", lambda state: {"$XDSDocumentEntryPatientId": state.patient(REG), **_find(None)},
                  success(),
                  verify=(lambda state, view: [Check("no On-Demand entry", find_object(view, uid(state, "od"), "doc")
                                                     is None, "od returned by a query for Stable entries",
                                                     "ITI TF-2a §3.18.4.1.2.3.7.1")],)),
        ),
    )  # fmt: skip


def case_snapshot() -> TestCase:
    return TestCase(
        id="od-snapshot",
        title="A stable snapshot IsSnapshotOf the On-Demand entry; the On-Demand entry stays Approved",
        tf="ITI TF-3 §4.1.14 (On-Demand Documents: snapshots), §4.2.2 (IsSnapshotOf); ITI TF-2b §3.42",
        reference="NIST 15805 (xds-notes §8.1 Options); the case is the runner's",
        description="That a snapshot neither replaces nor deprecates its On-Demand entry is the runner's "
        "reading of ITI TF-3 §4.1.14.",
        option=OPTION,
        steps=(
            update_step("register", "ITI-61 with the On-Demand DocumentEntry od",
                        lambda state: _on_demand(state).element(), transaction=Transaction.ITI61),
            get_documents("read", ["od"], statuses={"od": APPROVED}),
            register("snapshot", "ITI-42 with the stable entry snap, IsSnapshotOf od", _snapshot),
            get_documents("both", ["od", "snap"], statuses={"od": APPROVED, "snap": APPROVED},
                          verify=(_object_type("snap", ObjectType.STABLE_DOCUMENT_ENTRY),)),
        ),
    )  # fmt: skip


def cases() -> tuple[TestCase, ...]:
    return (case_register(), case_snapshot())
