"""ITI-57 Update Document Set at the Document Registry (the XDS Metadata Update option;
xds-notes §8.1 "Options", NIST 15800-15802b and 20000-21004, collection ``reg_mu``).

Each case registers its own DocumentEntry (ITI-42), reads back the entryUUID the registry gave
it (a first version: logicalID = entryUUID, version 1) and then updates it with ITI-57. The
cases run only for a peer that declares the option (``--option mu``); otherwise they are
reported as not applicable. The split into cases is the runner's own, written from the TF
sections each case names; where a case rests on the runner's reading of the TF rather than on a
sentence of it, its description says so.
"""

from __future__ import annotations

from typing import Final

from conformance_tests.data.metadata import Submission
from conformance_tests.model import Counts, SoapStep, TestCase, failure, success
from conformance_tests.mu import MuError
from conformance_tests.plans.registry.common import APPROVED, DEPRECATED, doc, get_documents, new_submission, register
from conformance_tests.plans.registry.options_common import (
    all_versions,
    first_version,
    latest_version,
    status_step,
    update_request,
    update_step,
)
from conformance_tests.state import CaseState

__all__ = ["OPTION", "cases"]

#: The option a registry declares when it implements ITI-57.
OPTION: Final = "mu"
TF57: Final = "ITI TF-2b §3.57.4.1.3.3.1 (Update DocumentEntry Metadata)"
REFERENCE: Final = "NIST reg_mu 15800-15802b, 20000-21004 (xds-notes §8.1 Options); the case split is the runner's"


def _register(key: str = "d1") -> SoapStep:
    """ITI-42 with DocumentEntry ``key`` alone (its first version)."""

    def build(state: CaseState) -> Submission:
        sub = new_submission(state, f"s-{key}")
        sub.add_document(doc(state, key))
        return sub

    return register("register", f"ITI-42 with {key} (its first version)", build)


def _read(key: str = "d1") -> SoapStep:
    """GetDocuments ``key``: Approved, a first version; remember its entryUUID."""
    return get_documents("read", [key], statuses={key: APPROVED}, verify=(first_version(key),))


def case_update() -> TestCase:
    return TestCase(
        id="mu-update",
        title="Update a DocumentEntry's metadata: a new version, the previous one Deprecated",
        tf=TF57 + "; §3.57.4.1.3.3.1.3 (Document Registry expected actions); ITI TF-2a §3.18.4.1.2.3.7.5",
        reference=REFERENCE + " (15800 DocumentEntry Update)",
        description="The update carries the same uniqueId, lid = the entry's logicalID, a new entryUUID and "
        "a new title, with PreviousVersion 1 on the SubmissionSet HasMember. The registry makes it "
        "version 2, Approved, and deprecates version 1 (§3.57.4.1.3.3.1.3). GetDocuments by uniqueId "
        "(default $MetadataLevel 1) returns the current version only (ITI TF-2a §3.18.4.1.2.3.5.1.1); "
        "GetDocuments by $XDSDocumentEntryLogicalID with $MetadataLevel 2 returns both.",
        option=OPTION,
        steps=(
            _register(),
            _read(),
            update_step("update", "ITI-57: version 2 of d1 (new title), PreviousVersion 1",
                        lambda state: update_request(state, "d1", previous_version="1")),
            latest_version("current", "d1", "2", only_latest=True),
            all_versions("versions", "d1", {"1": DEPRECATED, "2": APPROVED}),
        ),
    )  # fmt: skip


def case_status() -> TestCase:
    return TestCase(
        id="mu-status",
        title="Deprecate a DocumentEntry, then approve it again, by UpdateAvailabilityStatus",
        tf="ITI TF-2b §3.57.4.1.3.3.2 (Update DocumentEntry Status); ITI TF-3 §4.2.2 (UpdateAvailabilityStatus)",
        reference=REFERENCE + " (15802 Update DocumentEntry Status)",
        description="Each ITI-57 carries a SubmissionSet and an UpdateAvailabilityStatus association from it "
        "to the entry, with OriginalStatus and NewStatus. The status changes in place; that no new "
        "version is made (the version stays 1) is the runner's reading of §3.57.4.1.3.3.2.",
        option=OPTION,
        steps=(
            _register(),
            _read(),
            status_step("deprecate", "d1", original=APPROVED, new=DEPRECATED),
            get_documents("deprecated", ["d1"], by_uuid=True, statuses={"d1": DEPRECATED},
                          verify=(first_version("d1"),)),
            status_step("approve", "d1", original=DEPRECATED, new=APPROVED),
            get_documents("approved", ["d1"], by_uuid=True, statuses={"d1": APPROVED}),
        ),
    )  # fmt: skip


def case_version_error() -> TestCase:
    return TestCase(
        id="mu-version-error",
        title="An update naming a PreviousVersion that is not the latest is refused",
        tf=TF57 + "; §3.57.4.1.3.3.1.3 (XDSMetadataVersionError); ITI TF-3 Table 4.2.4.1-2",
        reference=REFERENCE,
        description="PreviousVersion 2 for an entry whose latest version is 1: XDSMetadataVersionError, "
        "and nothing changes (the entry keeps one version, Approved).",
        option=OPTION,
        steps=(
            _register(),
            _read(),
            update_step("update", "ITI-57: a new version of d1 with PreviousVersion 2 (the latest is 1)",
                        lambda state: update_request(state, "d1", previous_version="2"),
                        failure(MuError.VERSION)),
            all_versions("unchanged", "d1", {"1": APPROVED}),
        ),
    )  # fmt: skip


def case_unknown_logical_id() -> TestCase:
    def unknown(state: CaseState) -> str:
        return str(state.once("unknown-lid", state.ids.entry_uuid))

    return TestCase(
        id="mu-unknown-lid",
        title="An update of a logicalID the registry does not hold is refused",
        tf=TF57 + "; §3.57.4.1.3.3.1.3; ITI TF-3 Table 4.2.4.1-2 (XDSMetadataUpdateError)",
        reference=REFERENCE + " (15800/no_orig_docentry expects XDSMetadataUpdateError)",
        description="The update's lid is a fresh UUID no entry has. The code XDSMetadataUpdateError is the "
        "one NIST 15800 expects for this; nothing may be stored.",
        option=OPTION,
        steps=(
            update_step("update", "ITI-57: a 'new version' of d1 whose lid is unknown to the registry",
                        lambda state: update_request(state, "d1", previous_version="1", logical_id=unknown),
                        failure(MuError.UPDATE)),
            get_documents("nothing", ["d1"], expect=success(Counts(documents=0))),
        ),
    )  # fmt: skip


def case_initial_version() -> TestCase:
    return TestCase(
        id="mu-initial-version",
        title="An update carrying an initial version (no logicalID) is refused",
        tf="ITI TF-2b §3.57.4.1.3.1 (an update shall not include initial versions: entryUUID = logicalID "
        "or logicalID missing)",
        reference=REFERENCE,
        description="The runner's reading of §3.57.4.1.3.1: the TF forbids the request, so a registry must "
        "not store it; any error code is accepted. Afterwards the entry is not in the registry.",
        option=OPTION,
        steps=(
            update_step("update", "ITI-57 with a DocumentEntry d1 that has no lid",
                        lambda state: update_request(state, "d1", previous_version="1", with_lid=False),
                        failure(note="any RegistryError")),
            get_documents("nothing", ["d1"], expect=success(Counts(documents=0))),
        ),
    )  # fmt: skip


def cases() -> tuple[TestCase, ...]:
    return (case_update(), case_status(), case_version_error(), case_unknown_logical_id(), case_initial_version())
