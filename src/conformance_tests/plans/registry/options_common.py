"""Building blocks shared by the registry's option suites (Metadata Update, Delete Document Set,
Restricted Update, On-Demand): requests the runner builds itself, the queries that read back
versions, and the checks on them.

A new version of DocumentEntry ``key`` is written as ITI TF-2b §3.57.4.1.3.3.1 describes it: a
SubmissionSet, the DocumentEntry with a new entryUUID and ``lid`` = the logicalID of the entry
it updates, and the SubmissionSet HasMember carrying SubmissionSetStatus ``Original`` and the
``PreviousVersion`` slot.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from lxml import etree

from conformance_tests.model import (
    Check,
    Counts,
    Expectation,
    Keeper,
    SoapStep,
    Transaction,
    Verifier,
    success,
)
from conformance_tests.mu import LOGICAL_ID_PARAM, METADATA_LEVEL, UPDATE_AVAILABILITY_STATUS
from conformance_tests.plans.registry.common import (
    APPROVED,
    DEPRECATED,
    doc,
    find_object,
    new_submission,
    query,
    remember,
    uid,
    uuid,
)
from conformance_tests.response import ObjectView, ResponseView
from conformance_tests.state import CaseState
from xds.vocabulary import NS_LCM, NS_RIM, AssociationType, SlotName

__all__ = [
    "UPDATED_TITLE",
    "all_versions",
    "delete_request",
    "first_version",
    "keep_submission",
    "latest_version",
    "status_request",
    "status_step",
    "title_of",
    "update_request",
    "update_step",
    "versions_are",
]

#: The title a new version carries, so that a query shows which version it returned.
UPDATED_TITLE: Final = "Conformance test document, metadata updated"
Ids = Callable[[CaseState], Sequence[str]]


def _rim(local: str) -> str:
    return f"{{{NS_RIM}}}{local}"


def _add_slot(element: etree._Element, name: str, values: Sequence[str]) -> None:
    """Append a Slot after the element's last Slot (ebRIM 3.0: Slot* come first)."""
    slot = etree.Element(_rim("Slot"), name=name)
    value_list = etree.SubElement(slot, _rim("ValueList"))
    for value in values:
        etree.SubElement(value_list, _rim("Value")).text = value
    slots = element.findall(_rim("Slot"))
    if slots:
        slots[-1].addnext(slot)
    else:
        element.insert(0, slot)


def title_of(obj: ObjectView) -> str:
    """The title (rim:Name) of a returned object."""
    found = obj.element.xpath("rim:Name/rim:LocalizedString/@value", namespaces={"rim": NS_RIM})
    return str(found[0]) if found else ""


# -- requests ------------------------------------------------------------------------------------
def update_request(
    state: CaseState,
    key: str,
    *,
    previous_version: str,
    logical_id: Callable[[CaseState], str] | None = None,
    with_lid: bool = True,
    tag: str = "v2",
) -> etree._Element:
    """An ITI-57 (or ITI-92) request with a new version of DocumentEntry ``key``.

    ITI TF-2b §3.57.4.1.3.3.1: the new version has a new entryUUID, ``lid`` = the logicalID of
    the entry it updates (by default the entryUUID the registry gave ``key``, which for a first
    version is its logicalID) and the same uniqueId; the SubmissionSet HasMember names the
    version it replaces in the ``PreviousVersion`` slot. ``with_lid=False`` sends an initial
    version instead (no lid), which ITI TF-2b §3.57.4.1.3.1 excludes from an update.
    """
    original = doc(state, key)
    new_id = str(state.once(f"entry:{key}:{tag}", state.ids.entry_uuid))
    spec = dataclasses.replace(original, symbol=f"{original.symbol}_{tag}", entry_uuid=new_id, title=UPDATED_TITLE)
    submission = new_submission(state, f"{key}-{tag}")
    submission.add_document(spec)
    root = submission.element()
    for element in root.iter(_rim("ExtrinsicObject")):
        if element.get("id") == new_id and with_lid:
            element.set("lid", logical_id(state) if logical_id is not None else uuid(state, key))
    for association in root.iter(_rim("Association")):
        if association.get("targetObject") == new_id:
            _add_slot(association, SlotName.PREVIOUS_VERSION, [previous_version])
    return root


def status_request(state: CaseState, key: str, *, original: str, new: str, tag: str) -> etree._Element:
    """An ITI-57 Update DocumentEntry Status request (ITI TF-2b §3.57.4.1.3.3.2): a SubmissionSet
    and an UpdateAvailabilityStatus association from it to the entry, with the OriginalStatus
    and NewStatus slots."""
    submission = new_submission(state, f"{key}-{tag}")
    link = submission.associate(UPDATE_AVAILABILITY_STATUS, submission.ss.id, uuid(state, key))
    root = submission.element()
    for association in root.iter(_rim("Association")):
        if association.get("id") == link:
            _add_slot(association, SlotName.ORIGINAL_STATUS, [original])
            _add_slot(association, SlotName.NEW_STATUS, [new])
    return root


def delete_request(ids: Sequence[str]) -> etree._Element:
    """An ITI-62 ``lcm:RemoveObjectsRequest`` (ITI TF-2b §3.62.4.1.2): the entryUUIDs to delete
    in a ``rim:ObjectRefList``; no AdhocQuery and no deletionScope."""
    root = etree.Element(f"{{{NS_LCM}}}RemoveObjectsRequest", nsmap={"lcm": NS_LCM, "rim": NS_RIM})
    refs = etree.SubElement(root, _rim("ObjectRefList"))
    for entry in ids:
        etree.SubElement(refs, _rim("ObjectRef"), id=entry)
    return root


# -- steps ---------------------------------------------------------------------------------------
def update_step(
    name: str,
    purpose: str,
    build: Callable[[CaseState], etree._Element],
    expect: Expectation | None = None,
    *,
    transaction: Transaction = Transaction.ITI57,
) -> SoapStep:
    """An ITI-57 (or ITI-92 / ITI-61 / ITI-62) step; each is answered with an rs:RegistryResponse."""
    return SoapStep(
        name=name, purpose=purpose, transaction=transaction, request=build, expect=expect or success()
    )


def status_step(name: str, key: str, *, original: str, new: str) -> SoapStep:
    short = f"{original.rsplit(':', 1)[-1]} -> {new.rsplit(':', 1)[-1]}"
    return update_step(
        name,
        f"ITI-57 Update DocumentEntry Status of {key}: {short}",
        lambda state: status_request(state, key, original=original, new=new, tag=name),
    )


def all_versions(name: str, key: str, expected: Mapping[str, str], *, purpose: str = "") -> SoapStep:
    """GetDocuments by the logicalID of ``key`` with $MetadataLevel 2: every version, with the
    version numbers and statuses of ``expected`` (ITI TF-2a §3.18.4.1.2.3.7.5)."""
    return query(
        name,
        purpose or f"GetDocuments {LOGICAL_ID_PARAM} of {key}, {METADATA_LEVEL} 2: all its versions",
        "GetDocuments",
        lambda state: {LOGICAL_ID_PARAM: [uuid(state, key)], METADATA_LEVEL: 2},
        success(Counts(documents=len(expected))),
        verify=(versions_are(key, expected),),
    )


def latest_version(
    name: str, key: str, version: str, *, title: str = UPDATED_TITLE, only_latest: bool = False
) -> SoapStep:
    """GetDocuments by uniqueId (default $MetadataLevel 1): the Approved entry is version
    ``version`` of ``key``'s logical entry, with ``title``; any other returned is Deprecated.
    ``only_latest``: no other version may be returned (ITI TF-2a §3.18.4.1.2.3.5.1.1)."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        mine = [d for d in view.documents if d.unique_id == uid(state, key)]
        approved = [d for d in mine if d.status == APPROVED]
        others = [d for d in mine if d.status != APPROVED]
        rule = "ITI TF-2b §3.57.4.1.3.3.1.3; ITI TF-2b §3.92.4.1.3 (current version Approved, prior Deprecated)"
        checks = [Check("one Approved version", len(approved) == 1, f"{len(approved)} Approved of {len(mine)}", rule)]
        if len(approved) == 1:
            current = approved[0]
            checks += [
                Check("version", current.version == version, f"expected {version}, got {current.version}", rule),
                Check("logicalID", current.lid == uuid(state, key),
                      f"expected {uuid(state, key)}, got {current.lid}", "ITI TF-3 §4.2.3.2.13 (logicalID)"),
                Check("updated metadata", title_of(current) == title, f"title {title_of(current)!r}", rule),
            ]  # fmt: skip
        checks.append(Check("prior versions Deprecated", all(d.status == DEPRECATED for d in others),
                            f"statuses {[d.status for d in others]}", rule))  # fmt: skip
        if only_latest:
            checks.append(Check("only the current version", len(mine) == 1, f"{len(mine)} versions returned",
                                "ITI TF-2a §3.18.4.1.2.3.5.1.1 ($MetadataLevel 1: latest versions only)"))  # fmt: skip
        return checks

    return query(
        name,
        f"GetDocuments by the uniqueId of {key}: the current version is {version}",
        "GetDocuments",
        lambda state: {"$XDSDocumentEntryUniqueId": [uid(state, key)]},
        success(),
        verify=(verify,),
    )


# -- checks and keepers --------------------------------------------------------------------------
def versions_are(key: str, expected: Mapping[str, str]) -> Verifier:
    """Every returned entry is a version of ``key`` (same uniqueId and lid), and the versions
    and their statuses are exactly ``expected`` (version -> status)."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        rule = "ITI TF-2b §3.57.4.1.3.3.1.3 (new version = previous + 1; previous Deprecated)"
        seen = {d.version or "(none)": d.status or "(none)" for d in view.documents}
        wanted = {v: s.rsplit(":", 1)[-1] for v, s in expected.items()}
        got = {v: s.rsplit(":", 1)[-1] for v, s in seen.items()}
        lids = {d.lid for d in view.documents}
        uids = {d.unique_id for d in view.documents}
        return [
            Check("versions and statuses", got == wanted, f"expected {wanted}, got {got}", rule),
            Check("one logicalID", lids == {uuid(state, key)},
                  f"expected {uuid(state, key)}, got {sorted(map(str, lids))}",
                  "ITI TF-3 §4.2.3.2.13 (all versions share the logicalID)"),
            Check("one uniqueId", uids == {uid(state, key)}, f"got {sorted(map(str, uids))}",
                  "ITI TF-2b §3.57.4.1.3.3.1 (uniqueId does not change)"),
        ]  # fmt: skip

    return verify


def first_version(key: str) -> Verifier:
    """DocumentEntry ``key`` is a first version: lid = entryUUID, version 1 (ITI TF-3 §4.2.3.2.13,
    §4.2.3.2.27)."""

    def verify(state: CaseState, view: ResponseView) -> list[Check]:
        found = find_object(view, uid(state, key), "doc")
        if found is None:
            return [Check(f"{key} found", False, "absent (or more than once)", "test data")]
        return [
            Check(f"{key} logicalID", found.lid == found.id, f"lid {found.lid}, id {found.id}",
                  "ITI TF-3 §4.2.3.2.13 (a first version has logicalID = entryUUID)"),
            Check(f"{key} version", found.version == "1", f"got {found.version}",
                  "ITI TF-3 §4.2.3.2.27 (version 1 for a first version)"),
        ]  # fmt: skip

    return verify


def keep_submission(ss_key: str, doc_keys: Sequence[str]) -> Keeper:
    """From a GetSubmissionSetAndContents answer remember the entryUUIDs of the SubmissionSet,
    its DocumentEntries and, as ``<doc>-member``, each SS-DE HasMember association."""

    def keep(state: CaseState, view: ResponseView) -> None:
        ss = find_object(view, uid(state, ss_key), "ss")
        if ss is None:
            raise KeyError(f"submission set {ss_key} is not exactly once in the response")
        remember(state, ss_key, ss.id)
        for key in doc_keys:
            found = find_object(view, uid(state, key), "doc")
            if found is None:
                raise KeyError(f"{key} is not exactly once in the response")
            remember(state, key, found.id)
            links = view.associations_of(AssociationType.HAS_MEMBER, source=ss.id, target=found.id)
            if len(links) != 1:
                raise KeyError(f"{len(links)} HasMember associations from {ss_key} to {key}")
            remember(state, f"{key}-member", links[0].id)

    return keep
