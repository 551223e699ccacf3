"""Patient merge at the Document Registry: ITI-8 ADT^A40 Merge Patient - Patient Identifier List.

The runner feeds two fresh patients itself (ADT^A01), registers a submission for the one that
will be merged away, sends the A40 (PID-3 = the surviving id, MRG-1 = the subsumed id) and then
judges the registry through ITI-18 and ITI-42 only.

What the Technical Framework text says, and what is the runner's reading of it:

* ITI TF-2a §3.8.2: the Document Registry "updates patient identity in document metadata by
  tracking identity change operations (e.g., merge)"; ITI TF-2b §3.44.4.2.4 says the same for
  the HL7 v3 feed: the subsumed patient identity is merged into the surviving one.
* ITI TF-2a §3.18.4.1.2.3.9.1: a query by the surviving patient id returns the metadata
  registered against it and against the subsumed id; a query by the subsumed id returns nothing.
* That the returned DocumentEntry and SubmissionSet carry the surviving id in their patientId is
  the runner's reading of §3.8.2 ("updates patient identity in document metadata").
* That a new ITI-42 for the subsumed id fails with XDSUnknownPatientId is the runner's reading:
  the registry takes only patients known from the feed (ITI TF-2b §3.42.4.1.3), and after the
  merge the subsumed id names no patient of its own (§3.18.4.1.2.3.9.1 returns nothing for it).

The cases need the ITI-8 feed (``--mllp``): patients pre-loaded by a command or given as ids
cannot be merged over the wire. They run only when the option is declared (``--option merge``);
declared without a feed, they end in a runner error that says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from conformance_tests.data.metadata import Submission
from conformance_tests.evidence import Exchange
from conformance_tests.model import (
    ActionStep,
    Check,
    Counts,
    SoapStep,
    TestCase,
    Transaction,
    Verifier,
    failure,
    success,
)
from conformance_tests.patients import FEED_KEY, FeedPatients
from conformance_tests.plans.registry.common import (
    APPROVED,
    doc,
    exactly_documents,
    find_object,
    get_documents,
    keep_document_ids,
    new_submission,
    query,
    register,
    uid,
    uuid,
)
from conformance_tests.response import ResponseView
from conformance_tests.state import CaseState
from xds.errors import ErrorCode

__all__ = ["OPTION", "OPTION_TEXT", "cases"]

#: Declared for a registry whose ITI-8 feed the runner reaches (``--mllp``).
OPTION: Final = "merge"
#: The text ``list`` shows; the part before the first colon is the hint in an n/a reason.
OPTION_TEXT: Final = (
    "--option merge, with the ITI-8 feed --mllp (pre-loaded patients cannot be merged): the registry "
    "takes ITI-8 ADT^A40 Merge Patient (ITI TF-2a §3.8.2, §3.18.4.1.2.3.9.1; NIST 16101-16103c are XAD-PID "
    "link change and not covered)"
)

ROLE_TF: Final = (
    "ITI TF-2a §3.8.2 (the Document Registry updates patient identity in document metadata by tracking "
    "identity change operations, e.g. merge); ITI TF-2b §3.44.4.2.4 (HL7 v3 feed: the subsumed identity is "
    "merged into the surviving one)"
)
QUERY_TF: Final = (
    "ITI TF-2a §3.18.4.1.2.3.9.1 (surviving id: metadata of both ids; subsumed id: no results)"
)
ACK_TF: Final = "ITI TF-2a §3.8 (every ITI-8 message is acknowledged by an HL7 ACK, ITI TF-2x C.2.3)"
REFERENCE: Final = "no NIST test (xds-notes §8.1 lists none for A40); the case split is the runner's"

#: Patient roles: the surviving id (PID-3) and the subsumed id (MRG-1) of each case. They are
#: not fed in the setup case: each case feeds its own, through the feed it then merges with.
SURVIVOR: Final = "mrgkeep"
SUBSUMED: Final = "mrgold"
SURVIVOR_2: Final = "mrgkeep2"
SUBSUMED_2: Final = "mrgold2"
ROLES: Final = {
    SURVIVOR: "merge suite: the surviving patient (PID-3 of the A40)",
    SUBSUMED: "merge suite: the patient merged into it (MRG-1 of the A40)",
    SURVIVOR_2: "merge suite: the surviving patient of the second case",
    SUBSUMED_2: "merge suite: the subsumed patient of the second case",
}

Perform = Callable[[CaseState], tuple[list[Exchange], list[Check]]]


# -- the feed ------------------------------------------------------------------------------------
def _no_feed() -> tuple[list[Exchange], list[Check]]:
    """A runner error: the option is declared but patients do not travel over ITI-8."""
    why = "no ITI-8 feed: --option merge needs --mllp HOST:PORT (pre-loaded patients cannot be merged)"
    exchange = Exchange(label="ITI-8 feed", protocol="MLLP", target="(none)", started="", error=why)
    return [exchange], [Check("ITI-8 feed", False, why, "the merge suite's setup")]


def _with_feed(action: Callable[[FeedPatients, CaseState], tuple[list[Exchange], list[Check]]]) -> Perform:
    def perform(state: CaseState) -> tuple[list[Exchange], list[Check]]:
        feed = state.get(FEED_KEY)
        if not isinstance(feed, FeedPatients):
            return _no_feed()
        return action(feed, state)

    return perform


def _feed_step(role: str, what: str) -> ActionStep:
    """ITI-8 ADT^A01 for the case's patient ``role``."""
    return ActionStep(
        name=f"feed {what}",
        purpose=f"ITI-8 ADT^A01: make the {what} patient known",
        transaction=Transaction.ITI8,
        perform=_with_feed(lambda feed, state: feed.load(state.patient(role), role=role)),
        outcome="ACK with MSA-1 AA (or CA)",
    )


def _merge_step(survivor: str, subsumed: str) -> ActionStep:
    """ITI-8 ADT^A40: PID-3 = the surviving id, MRG-1 = the subsumed id."""
    return ActionStep(
        name="merge",
        purpose="ITI-8 ADT^A40: merge the subsumed patient (MRG-1) into the surviving one (PID-3)",
        transaction=Transaction.ITI8,
        perform=_with_feed(
            lambda feed, state: feed.merge(surviving_id=state.patient(survivor), merged_id=state.patient(subsumed))
        ),
        outcome=f"ACK with MSA-1 AA (or CA) echoing MSH-10; {ACK_TF}",
    )


# -- ITI-42 and ITI-18 steps ---------------------------------------------------------------------
def _submission(role: str) -> Callable[[CaseState], Submission]:
    def build(state: CaseState) -> Submission:
        sub = new_submission(state, "s1", role=role)
        sub.add_document(doc(state, "d1", role=role))
        return sub

    return build


def _find(
    name: str, purpose: str, role: str, docs: tuple[str, ...], *, verify: tuple[Verifier, ...] = (), rule: str = ""
) -> SoapStep:
    """FindDocuments (Approved) for the patient ``role``: exactly the DocumentEntries ``docs``."""
    return query(
        name,
        purpose,
        "FindDocuments",
        lambda state: {"$XDSDocumentEntryPatientId": state.patient(role), "$XDSDocumentEntryStatus": [APPROVED]},
        success(Counts(documents=len(docs)), note=rule),
        verify=(exactly_documents(list(docs)), *verify),
        keep=keep_document_ids(docs) if docs else None,
    )


def _document_patient(key: str, role: str) -> Verifier:
    """DocumentEntry ``key`` carries the patient id of ``role``."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        found = find_object(view, uid(state, key), "doc")
        got = "absent" if found is None else str(found.patient_id)
        wanted = state.patient(role)
        return [Check(f"{key} patientId", got == wanted, f"expected {wanted}, got {got}",
                      ROLE_TF + "; the exact check is the runner's reading")]  # fmt: skip

    return verify


def _submission_set_patient(role: str) -> SoapStep:
    """GetSubmissionSets of d1: its SubmissionSet carries the patient id of ``role``."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        found = find_object(view, uid(state, "s1"), "ss")
        got = "absent" if found is None else str(found.patient_id)
        wanted = state.patient(role)
        return [Check("SubmissionSet patientId", got == wanted, f"expected {wanted}, got {got}",
                      ROLE_TF + "; that it covers the SubmissionSet is the runner's reading")]  # fmt: skip

    return query(
        "submission set",
        "GetSubmissionSets of d1: the SubmissionSet now carries the surviving patient id",
        "GetSubmissionSets",
        lambda state: {"$uuid": [uuid(state, "d1")]},
        success(Counts(submission_sets=1, documents=0)),
        verify=(verify,),
    )


# -- cases ---------------------------------------------------------------------------------------
def case_merge() -> TestCase:
    return TestCase(
        id="merge-a40",
        title="ADT^A40: the subsumed patient's entries answer under the surviving patient id",
        tf=f"{ROLE_TF}; {QUERY_TF}; {ACK_TF}",
        reference=REFERENCE,
        description="Feed P1 (surviving) and P2 (subsumed); register SS + DE d1 for P2 and find it by P2; "
        "send ADT^A40 with PID-3 = P1 and MRG-1 = P2 (accepting ACK). FindDocuments by P1 then returns d1 and "
        "FindDocuments by P2 returns nothing (§3.18.4.1.2.3.9.1). That d1 and its SubmissionSet now carry P1 "
        "as patientId is the runner's reading of §3.8.2 (the registry updates patient identity in document "
        "metadata).",
        option=OPTION,
        steps=(
            _feed_step(SURVIVOR, "surviving"),
            _feed_step(SUBSUMED, "subsumed"),
            register("register", "ITI-42 with SS + DE d1 for the patient that will be merged away",
                     _submission(SUBSUMED)),
            _find("before", "FindDocuments by the subsumed id before the merge: d1", SUBSUMED, ("d1",)),
            _merge_step(SURVIVOR, SUBSUMED),
            _find("surviving", "FindDocuments by the surviving id: d1, now with the surviving patientId",
                  SURVIVOR, ("d1",), verify=(_document_patient("d1", SURVIVOR),), rule=QUERY_TF),
            _submission_set_patient(SURVIVOR),
            _find("subsumed", "FindDocuments by the subsumed id after the merge: nothing", SUBSUMED, (),
                  rule=QUERY_TF),
        ),
    )  # fmt: skip


def case_subsumed_id_refused() -> TestCase:
    return TestCase(
        id="merge-subsumed-id",
        title="After ADT^A40 a submission for the subsumed patient id is refused (XDSUnknownPatientId)",
        tf="ITI TF-2b §3.42.4.1.3 (only patients known from the feed); ITI TF-3 Table 4.2.4.1-2 "
        f"(XDSUnknownPatientId); {QUERY_TF}",
        reference=REFERENCE,
        description="Feed P1 and P2, merge P2 into P1, then register SS + DE for P2. The runner's reading: "
        "after the merge P2 names no patient of its own (a query by it returns nothing, §3.18.4.1.2.3.9.1), "
        "so the registry refuses it as it refuses any patient not known from the feed; nothing is stored.",
        option=OPTION,
        steps=(
            _feed_step(SURVIVOR_2, "surviving"),
            _feed_step(SUBSUMED_2, "subsumed"),
            _merge_step(SURVIVOR_2, SUBSUMED_2),
            register("register", "ITI-42 with SS + DE d1 for the subsumed patient id",
                     _submission(SUBSUMED_2), failure(ErrorCode.UNKNOWN_PATIENT_ID.value)),
            get_documents("nothing stored", ["d1"], expect=success(Counts(documents=0)), purpose="nothing was stored"),
        ),
    )  # fmt: skip


def cases() -> tuple[TestCase, ...]:
    return (case_merge(), case_subsumed_id_refused())
