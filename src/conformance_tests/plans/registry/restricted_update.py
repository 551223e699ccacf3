"""ITI-92 Restricted Update Document Set at a Document Registry acting as Update Responder (the
Restricted Metadata Update profile, RMU; xds-notes §8.1 "Options", NIST 40000-40007).

Only what the RMU text states concretely is tested: an update of a DocumentEntry's metadata
leaves the current version Approved and the prior version Deprecated (ITI TF-2b §3.92.4.1.3).
The request is an ITI-57 Update DocumentEntry Metadata request sent with the ITI-92 action:
ITI-92 is simple SOAP (§3.92.4.1.2) and the Update Responder processes it with the Metadata
Annotations of Metadata Update (§3.92.4.1.2.2), whose PreviousVersion slot the request
carries. The cases run only for a peer that declares the option (``--option rmu``).
"""

from __future__ import annotations

from typing import Final

from conformance_tests.data.metadata import Submission
from conformance_tests.model import TestCase, Transaction
from conformance_tests.plans.registry.common import APPROVED, DEPRECATED, doc, get_documents, new_submission, register
from conformance_tests.plans.registry.options_common import (
    all_versions,
    first_version,
    latest_version,
    update_request,
    update_step,
)
from conformance_tests.state import CaseState

__all__ = ["OPTION", "cases"]

#: The option a registry declares when it implements ITI-92 as Update Responder.
OPTION: Final = "rmu"


def case_update() -> TestCase:
    def build(state: CaseState) -> Submission:
        sub = new_submission(state, "s-d1")
        sub.add_document(doc(state, "d1"))
        return sub

    return TestCase(
        id="rmu-update",
        title="Restricted update of a DocumentEntry's title: the new version is current and Approved",
        tf="ITI TF-2b §3.92.4.1.3 (Update Responder expected actions: current version Approved, prior "
        "versions Deprecated); §3.92.4.1.2 (simple SOAP); §3.92.4.1.2.2 (Metadata Annotations)",
        reference="NIST 40000-40007 (xds-notes §8.1 Options); the case is the runner's",
        description="Only the title changes, which RMU allows. That the request takes the ITI-57 form "
        "(lid, new entryUUID, PreviousVersion slot) is the runner's reading of §3.92.4.1.2.2. The prior "
        "version is read with the Metadata Update query parameters ($XDSDocumentEntryLogicalID, "
        "$MetadataLevel 2; ITI TF-2a §3.18.4.1.2.3.7.5), so the case expects a registry that stores "
        "versions as Metadata Update does.",
        option=OPTION,
        steps=(
            register("register", "ITI-42 with d1 (its first version)", build),
            get_documents("read", ["d1"], statuses={"d1": APPROVED}, verify=(first_version("d1"),)),
            update_step("update", "ITI-92: version 2 of d1 (new title), PreviousVersion 1",
                        lambda state: update_request(state, "d1", previous_version="1"),
                        transaction=Transaction.ITI92),
            latest_version("current", "d1", "2"),
            all_versions("versions", "d1", {"1": DEPRECATED, "2": APPROVED}),
        ),
    )  # fmt: skip


def cases() -> tuple[TestCase, ...]:
    return (case_update(),)
