"""Building blocks of the registry test plan: patient roles, test data per case, and steps.

Test data lives in the case state under ``doc:<key>`` / ``folder:<key>`` (the spec, made once per
case, or once per run for the Stored Query data) and ``uuid:<key>`` (the entryUUID the registry
assigned, read back with a query). Steps refer to objects by these keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, cast

from lxml import etree

from conformance_tests.data.metadata import (
    DocumentSpec,
    FolderSpec,
    Submission,
    SubmissionSetSpec,
    document_spec,
    folder_spec,
)
from conformance_tests.model import Check, Counts, Expectation, Keeper, SoapStep, Transaction, Verifier, success
from conformance_tests.response import ObjectView, ResponseView
from conformance_tests.state import CaseState
from xds.query import build_adhoc_query
from xds.vocabulary import NS_RIM, SlotName, Status

# -- patient roles -------------------------------------------------------------------------------
REG: Final = "reg"
REG_OTHER: Final = "reg2"
UNKNOWN: Final = "unknown"
SQ: Final = "sq"
SQ2: Final = "sq2"

ROLES: Final = {
    REG: "register tests: the main patient",
    REG_OTHER: "register tests: a second known patient (patient id mismatches)",
    UNKNOWN: "register tests: a patient never fed to the registry (XDSUnknownPatientId)",
    SQ: "Stored Query data (test 12346): 6 DocumentEntries, 5 SubmissionSets, 2 Folders",
    SQ2: "Stored Query data of a second patient (test 12374)",
}
FED_ROLES: Final = (REG, REG_OTHER, SQ, SQ2)

APPROVED: Final = Status.APPROVED
DEPRECATED: Final = Status.DEPRECATED
LEAF: Final = "LeafClass"
OBJECT_REF: Final = "ObjectRef"


# -- test data -----------------------------------------------------------------------------------
def doc(state: CaseState, key: str, *, role: str = REG, shared: bool = False, **changes: object) -> DocumentSpec:
    """The DocumentEntry ``key`` of this case (or run), made on first use with ``changes``."""

    def make() -> DocumentSpec:
        return document_spec(state.ids, state.patient(role), symbol=f"Document_{key}", **changes)

    spec = state.shared_once(f"doc:{key}", make) if shared else state.once(f"doc:{key}", make)
    return cast(DocumentSpec, spec)


def folder(state: CaseState, key: str, *, role: str = REG, shared: bool = False, **changes: object) -> FolderSpec:
    """The Folder ``key`` of this case (or run), made on first use."""

    def make() -> FolderSpec:
        return folder_spec(state.ids, state.patient(role), symbol=f"Folder_{key}", **changes)

    spec = state.shared_once(f"folder:{key}", make) if shared else state.once(f"folder:{key}", make)
    return cast(FolderSpec, spec)


def submission_set(
    state: CaseState, key: str, *, role: str = REG, shared: bool = False, **changes: object
) -> SubmissionSetSpec:
    """The SubmissionSet ``key``, made on first use (a fresh uniqueId; sourceId shared by the run)."""

    def make() -> SubmissionSetSpec:
        source = state.shared_once("source-id", state.ids.oid)
        return SubmissionSetSpec(
            symbol=f"SubmissionSet_{key}",
            unique_id=state.ids.oid(),
            source_id=str(changes.pop("source_id", source)),
            patient_id=state.patient(role),
            **changes,  # type: ignore[arg-type]
        )

    spec = state.shared_once(f"ss:{key}", make) if shared else state.once(f"ss:{key}", make)
    return cast(SubmissionSetSpec, spec)


def new_submission(
    state: CaseState, key: str, *, role: str = REG, shared: bool = False, **changes: object
) -> Submission:
    """An empty Submission whose SubmissionSet is ``key``."""
    ss = submission_set(state, key, role=role, shared=shared, **changes)
    return Submission(state.ids, ss.patient_id, submission_set=ss)


def uid(state: CaseState, key: str) -> str:
    """The uniqueId of the DocumentEntry, Folder or SubmissionSet ``key``."""
    for kind in ("doc", "folder", "ss"):
        spec = state.get(f"{kind}:{key}")
        if spec is not None:
            return str(spec.unique_id)
    raise KeyError(f"no test object {key!r}")


def uuid(state: CaseState, key: str) -> str:
    """The entryUUID the registry gave object ``key`` (read back by an earlier query)."""
    return str(state[f"uuid:{key}"])


def remember(state: CaseState, key: str, value: str, *, shared: bool = False) -> None:
    if shared:
        state.share(f"uuid:{key}", value)
    else:
        state.set(f"uuid:{key}", value)


# -- steps ---------------------------------------------------------------------------------------
def register(
    name: str,
    purpose: str,
    build: Builder,
    expect: Expectation | None = None,
    *,
    verify: Sequence[Verifier] = (),
    keep: Keeper | None = None,
) -> SoapStep:
    """An ITI-42 Register Document Set-b step (ITI TF-2b §3.42)."""
    return SoapStep(
        name=name,
        purpose=purpose,
        transaction=Transaction.ITI42,
        request=lambda state: build(state).element(),
        expect=expect or success(),
        verify=tuple(verify),
        keep=keep,
    )


Params = Callable[[CaseState], Mapping[str, object]]
Builder = Callable[[CaseState], Submission]
Rewrite = Callable[[etree._Element, CaseState], etree._Element]


def query(
    name: str,
    purpose: str,
    stored_query: str,
    params: Params,
    expect: Expectation,
    *,
    return_type: str = LEAF,
    verify: Sequence[Verifier] = (),
    keep: Keeper | None = None,
    rewrite: Rewrite | None = None,
    transaction: Transaction = Transaction.ITI18,
) -> SoapStep:
    """An ITI-18 Registry Stored Query step (ITI TF-2a §3.18)."""

    def request(state: CaseState) -> etree._Element:
        element = build_adhoc_query(stored_query, params(state), return_type=return_type, validate=False)
        return rewrite(element, state) if rewrite is not None else element

    return SoapStep(
        name=name,
        purpose=purpose,
        transaction=transaction,
        request=request,
        expect=expect,
        verify=tuple(verify),
        keep=keep,
    )


def split_slot_values(slot_name: str) -> Rewrite:
    """Spread a list parameter over one ``rim:Value`` per item (ITI TF-2a §3.18.4.1.2.3.5, CP 295)."""

    def rewrite(element: etree._Element, state: CaseState) -> etree._Element:
        for slot in element.iter(f"{{{NS_RIM}}}Slot"):
            if slot.get("name") != slot_name:
                continue
            value_list = slot.find(f"{{{NS_RIM}}}ValueList")
            assert value_list is not None
            texts = [v.text or "" for v in value_list]
            items = [item.strip() for text in texts for item in text.strip().strip("()").split(",") if item.strip()]
            for child in list(value_list):
                value_list.remove(child)
            for item in items:
                etree.SubElement(value_list, f"{{{NS_RIM}}}Value").text = f"({item})"
        return element

    return rewrite


def set_slot_value(slot_name: str, value: Callable[[CaseState], str]) -> Rewrite:
    """Replace the Value of Slot ``slot_name`` with raw text (to send what the builder refuses)."""

    def rewrite(element: etree._Element, state: CaseState) -> etree._Element:
        for slot in element.iter(f"{{{NS_RIM}}}Slot"):
            if slot.get("name") == slot_name:
                value_list = slot.find(f"{{{NS_RIM}}}ValueList")
                assert value_list is not None
                for child in list(value_list):
                    value_list.remove(child)
                etree.SubElement(value_list, f"{{{NS_RIM}}}Value").text = value(state)
        return element

    return rewrite


def get_documents(
    name: str,
    keys: Sequence[str],
    *,
    purpose: str = "",
    statuses: Mapping[str, str] | None = None,
    expect: Expectation | None = None,
    by_uuid: bool = False,
    share: bool = False,
    verify: Sequence[Verifier] = (),
) -> SoapStep:
    """GetDocuments by the uniqueIds (or entryUUIDs) of ``keys``; remember their entryUUIDs."""

    def params(state: CaseState) -> Mapping[str, object]:
        if by_uuid:
            return {"$XDSDocumentEntryEntryUUID": [uuid(state, k) for k in keys]}
        return {"$XDSDocumentEntryUniqueId": [uid(state, k) for k in keys]}

    expected = expect or success(Counts(documents=len(keys)))
    checks: list[Verifier] = list(verify)
    if statuses:
        checks.append(document_statuses(statuses))
    keep = (
        None
        if expected.counts is None or expected.counts.documents != len(keys)
        else keep_document_ids(keys, share=share)
    )
    return query(
        name,
        purpose or f"read back {', '.join(keys)} (GetDocuments by {'entryUUID' if by_uuid else 'uniqueId'})",
        "GetDocuments",
        params,
        expected,
        verify=checks,
        keep=keep,
    )


def get_folders(
    name: str, keys: Sequence[str], *, purpose: str = "", share: bool = False, verify: Sequence[Verifier] = ()
) -> SoapStep:
    """GetFolders by the uniqueIds of ``keys``; remember their entryUUIDs."""
    return query(
        name,
        purpose or f"read back folder {', '.join(keys)} (GetFolders by uniqueId)",
        "GetFolders",
        lambda state: {"$XDSFolderUniqueId": [uid(state, k) for k in keys]},
        success(Counts(folders=len(keys), documents=0)),
        verify=verify,
        keep=keep_folder_ids(keys, share=share),
    )


# -- verifiers and keepers -----------------------------------------------------------------------
def find_object(view: ResponseView, unique_id: str, kind: str) -> ObjectView | None:
    pool = view.documents if kind == "doc" else view.folders if kind == "folder" else view.submission_sets
    found = [o for o in pool if o.unique_id == unique_id]
    return found[0] if len(found) == 1 else None


def keep_document_ids(keys: Iterable[str], *, share: bool = False) -> Keeper:
    """Remember the entryUUID of each DocumentEntry ``key`` found in the response."""
    keys = tuple(keys)

    def keep(state: CaseState, view: ResponseView) -> None:
        for key in keys:
            found = find_object(view, uid(state, key), "doc")
            if found is None:
                raise KeyError(f"{key} ({uid(state, key)}) is not exactly once in the response")
            remember(state, key, found.id, shared=share)

    return keep


def keep_folder_ids(keys: Iterable[str], *, share: bool = False) -> Keeper:
    keys = tuple(keys)

    def keep(state: CaseState, view: ResponseView) -> None:
        for key in keys:
            found = find_object(view, uid(state, key), "folder")
            if found is None:
                raise KeyError(f"folder {key} ({uid(state, key)}) is not exactly once in the response")
            remember(state, key, found.id, shared=share)

    return keep


def keep_submission_set_ids(keys: Iterable[str], *, share: bool = False) -> Keeper:
    keys = tuple(keys)

    def keep(state: CaseState, view: ResponseView) -> None:
        for key in keys:
            found = find_object(view, uid(state, key), "ss")
            if found is None:
                raise KeyError(f"submission set {key} ({uid(state, key)}) is not exactly once in the response")
            remember(state, key, found.id, shared=share)

    return keep


def document_statuses(expected: Mapping[str, str]) -> Verifier:
    """Each DocumentEntry ``key`` is in the response with this availabilityStatus."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        checks = []
        for key, status in expected.items():
            found = find_object(view, uid(state, key), "doc")
            seen = "absent (or more than once)" if found is None else str(found.status)
            checks.append(
                Check(
                    f"{key} availabilityStatus",
                    found is not None and found.status == status,
                    f"expected {status.rsplit(':', 1)[-1]}, got {seen.rsplit(':', 1)[-1]}",
                    "ITI TF-3 §4.2.2.2 (RPLC/XFRM_RPLC deprecate the original); §4.2.3.2 (availabilityStatus)",
                )
            )
        return checks

    return verify


def exactly_documents(keys: Sequence[str]) -> Verifier:
    """The response holds exactly the DocumentEntries ``keys`` (by uniqueId), no others."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        wanted = sorted(uid(state, k) for k in keys)
        got = sorted(d.unique_id or "(none)" for d in view.documents)
        names = {uid(state, k): k for k in keys}
        return [
            Check(
                "which DocumentEntries",
                got == wanted,
                f"expected {[names[w] for w in wanted]}, got {[names.get(g, g) for g in got]}",
                "test data",
            )
        ]

    return verify


def exactly_folders(keys: Sequence[str]) -> Verifier:
    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        wanted = sorted(uid(state, k) for k in keys)
        got = sorted(f.unique_id or "(none)" for f in view.folders)
        names = {uid(state, k): k for k in keys}
        return [
            Check(
                "which Folders",
                got == wanted,
                f"expected {[names[w] for w in wanted]}, got {[names.get(g, g) for g in got]}",
                "test data",
            )
        ]

    return verify


def exactly_submission_sets(keys: Sequence[str]) -> Verifier:
    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        wanted = sorted(uid(state, k) for k in keys)
        got = sorted(s.unique_id or "(none)" for s in view.submission_sets)
        names = {uid(state, k): k for k in keys}
        return [
            Check(
                "which SubmissionSets",
                got == wanted,
                f"expected {[names[w] for w in wanted]}, got {[names.get(g, g) for g in got]}",
                "test data",
            )
        ]

    return verify


def exactly_refs(keys: Sequence[str]) -> Verifier:
    """The ObjectRefs are exactly the entryUUIDs of ``keys``."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        wanted = sorted(uuid(state, k) for k in keys)
        got = sorted(view.object_refs)
        return [Check("which ObjectRefs", got == wanted, f"expected {wanted}, got {got}", "test data")]

    return verify


def slot_of(view: ResponseView, kind: str, state: CaseState, key: str, slot: str) -> list[str]:
    found = find_object(view, uid(state, key), kind)
    return [] if found is None else found.slot(slot)


def last_update_time(view: ResponseView, state: CaseState, key: str) -> str:
    values = slot_of(view, "folder", state, key, SlotName.LAST_UPDATE_TIME)
    if len(values) != 1:
        raise ValueError(f"folder {key} has {len(values)} lastUpdateTime values")
    return values[0]
