"""Validation of XDS submissions with exact TF error codes, collecting every finding.

:func:`validate_submission` checks what a Document Registry (ITI-42) or Repository (ITI-41) must
check of the metadata itself, without its own state (xds-notes §4 items 2 and 3, plus the
in-message parts of items 4 and 5):

* submission structure (ITI TF-3 §4.2.2.1, §4.1): one SubmissionSet, HasMember patterns,
  SubmissionSetStatus, references, relationship associations;
* per-object required attributes, cardinalities and formats
  (:mod:`xds.metadata.validation_rules`);
* codes against the affinity domain, when a :class:`CodeValidator` is given;
* DocumentEntry and Folder patientId equal to the SubmissionSet's -> ``XDSPatientIdDoesNotMatch``;
* a uniqueId twice in the message -> ``XDSRegistryDuplicateUniqueIdInMessage`` (registry) or
  ``XDSRepositoryDuplicateUniqueIdInMessage`` (repository).

The actor chooses the profile at its boundary (IPF style): the profile names the transaction's
requirements and the default metadata error code (``XDSRegistryMetadataError`` at the registry,
``XDSRepositoryMetadataError`` at the repository). Decoder findings arrive with the registry code
and are mapped to the profile's.

Public API::

    validate_submission(sub, *, findings_from_decode=(), profile, codes=None) -> list[RegistryError]
    ValidationProfile.ITI42_REGISTRY / .ITI41_REPOSITORY / .RAD68_REPOSITORY
    CodeValidator (Protocol): contains(attribute, code), knows(attribute), mime_types()
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from xds.errors import ErrorCode, RegistryError
from xds.metadata import hl7types as hl7
from xds.metadata.model import Association, RegistryObject, Submission
from xds.metadata.validation_rules import (
    CodeValidator,
    Findings,
    check_association_codes,
    check_codes,
    check_document_entry,
    check_folder,
    check_submission_set,
    describe,
    location_of,
)
from xds.vocabulary import AssociationType, SubmissionSetStatus

__all__ = ["CodeValidator", "ValidationProfile", "validate_submission"]

_UUID_PREFIX = "urn:uuid:"
_SS_STATUSES = (SubmissionSetStatus.ORIGINAL, SubmissionSetStatus.REFERENCE)
# Associations whose source is a new DocumentEntry and whose target is a registered one.
_SOURCE_IS_NEW_DE = (*AssociationType.RELATIONSHIPS, AssociationType.IS_SNAPSHOT_OF)


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationProfile:
    """What one transaction at one actor requires of submitted metadata.

    ``metadata_error`` and ``duplicate_unique_id_error`` are the codes this actor answers with;
    ``hash_and_size_required`` and ``repository_unique_id_required`` hold at the registry (ITI-42)
    and not for a Document Source's ITI-41 (the repository computes and adds them).
    """

    name: str
    metadata_error: ErrorCode
    duplicate_unique_id_error: ErrorCode
    hash_and_size_required: bool
    repository_unique_id_required: bool

    ITI42_REGISTRY: ClassVar[ValidationProfile]
    ITI41_REPOSITORY: ClassVar[ValidationProfile]
    RAD68_REPOSITORY: ClassVar[ValidationProfile]


# ITI TF-2b §3.42.4.1.3: the registry validates complete metadata (hash, size, repositoryUniqueId).
ValidationProfile.ITI42_REGISTRY = ValidationProfile(
    name="ITI-42 Document Registry",
    metadata_error=ErrorCode.REGISTRY_METADATA_ERROR,
    duplicate_unique_id_error=ErrorCode.REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE,
    hash_and_size_required=True,
    repository_unique_id_required=True,
)
# ITI TF-2b §3.41.4.1.3: hash, size and repositoryUniqueId are the repository's to add.
ValidationProfile.ITI41_REPOSITORY = ValidationProfile(
    name="ITI-41 Document Repository",
    metadata_error=ErrorCode.REPOSITORY_METADATA_ERROR,
    duplicate_unique_id_error=ErrorCode.REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE,
    hash_and_size_required=False,
    repository_unique_id_required=False,
)
# RAD TF-3 §4.68.4.1.2: RAD-68 carries ITI-41 metadata to the same repository rules.
ValidationProfile.RAD68_REPOSITORY = ValidationProfile(
    name="RAD-68 Document Repository",
    metadata_error=ErrorCode.REPOSITORY_METADATA_ERROR,
    duplicate_unique_id_error=ErrorCode.REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE,
    hash_and_size_required=False,
    repository_unique_id_required=False,
)


def validate_submission(
    sub: Submission,
    *,
    findings_from_decode: Iterable[RegistryError] = (),
    profile: ValidationProfile,
    codes: CodeValidator | None = None,
) -> list[RegistryError]:
    """Every finding about ``sub`` (decoder findings first), each with its TF error code.

    An empty list means the metadata is acceptable as far as it can be judged without the
    registry's state (patients, registered uniqueIds and entryUUIDs are the registry's checks).
    """
    f = Findings(profile.metadata_error)
    for finding in findings_from_decode:
        if finding.code == ErrorCode.REGISTRY_METADATA_ERROR:
            finding = RegistryError(profile.metadata_error, finding.context, finding.location, finding.severity)
        f.items.append(finding)
    _structure(f, sub)
    for ss in sub.submission_sets:
        check_submission_set(f, ss)
    for de in sub.document_entries:
        check_document_entry(
            f,
            de,
            hash_and_size_required=profile.hash_and_size_required,
            repository_unique_id_required=profile.repository_unique_id_required,
        )
    for fd in sub.folders:
        check_folder(f, fd)
    for a in sub.associations:
        check_association_codes(f, a)
    if codes is not None:
        check_codes(f, sub.all_objects(), codes)
    _patient_ids(f, sub)
    _duplicate_unique_ids(f, sub, profile.duplicate_unique_id_error)
    return f.items


# -- in-message identity rules ------------------------------------------------------------------


def _patient_ids(f: Findings, sub: Submission) -> None:
    """ITI TF-2b §3.42.4.1.3 (NIST 11997): DocumentEntry and Folder patientId equal the
    SubmissionSet's; otherwise XDSPatientIdDoesNotMatch."""
    if len(sub.submission_sets) != 1 or not sub.submission_sets[0].patient_id:
        return
    expected = sub.submission_sets[0].patient_id
    for obj in (*sub.document_entries, *sub.folders):
        if obj.patient_id and obj.patient_id != expected:
            f.error(
                f"{describe(obj)}: patientId '{obj.patient_id}' differs from the SubmissionSet patientId '{expected}'",
                location_of(obj),
                code=ErrorCode.PATIENT_ID_DOES_NOT_MATCH,
            )


def _duplicate_unique_ids(f: Findings, sub: Submission, code: ErrorCode) -> None:
    """ITI TF-3 Table 4.2.4.1-2: a uniqueId used twice in one message."""
    owners: dict[str, list[RegistryObject]] = {}
    for obj in (*sub.submission_sets, *sub.document_entries, *sub.folders):
        if obj.unique_id:
            owners.setdefault(obj.unique_id, []).append(obj)
    for unique_id, objs in owners.items():
        if len(objs) > 1:
            names = ", ".join(describe(o) for o in objs)
            f.error(f"uniqueId '{unique_id}' is used more than once in the message: {names}", unique_id, code=code)


# -- submission structure (ITI TF-3 §4.2.2; xds-notes §3.5, §4 item 2) --------------------------


@dataclass(frozen=True, slots=True)
class _Ids:
    """The ids of the message by kind, and the targets of the SubmissionSet's HasMembers."""

    ss: frozenset[str]
    de: frozenset[str]
    fd: frozenset[str]
    assoc: frozenset[str]
    ss_members: frozenset[str]

    @property
    def known(self) -> frozenset[str]:
        return self.ss | self.de | self.fd | self.assoc


def _index(sub: Submission) -> _Ids:
    ss = frozenset(s.id for s in sub.submission_sets)
    return _Ids(
        ss=ss,
        de=frozenset(d.id for d in sub.document_entries),
        fd=frozenset(fd.id for fd in sub.folders),
        assoc=frozenset(a.id for a in sub.associations),
        ss_members=frozenset(
            a.target for a in sub.associations if a.association_type == AssociationType.HAS_MEMBER and a.source in ss
        ),
    )


def _structure(f: Findings, sub: Submission) -> None:
    # ITI TF-3 §4.2.3.3 (NIST SubmissionStructure): exactly one SubmissionSet per submission.
    if len(sub.submission_sets) != 1:
        f.error(f"the submission has {len(sub.submission_sets)} SubmissionSets; exactly one is required", "")
    # Every object id is unique within the message.
    counts = Counter(o.id for o in sub.all_objects() if o.id)
    for obj_id, count in counts.items():
        if count > 1:
            f.error(f"id '{obj_id}' is used by {count} objects of the message", obj_id)

    ids = _index(sub)
    known = ids.known
    for a in sub.associations:
        _association(f, a, ids, known)

    # ITI TF-3 §4.2.2.1.1 / §4.2.2.1.2: every DocumentEntry and Folder is a member of the SubmissionSet.
    for obj in (*sub.document_entries, *sub.folders):
        if obj.id and obj.id not in ids.ss_members:
            f.error(
                f"{describe(obj)} is not the target of a HasMember association from the SubmissionSet",
                location_of(obj),
            )


def _resolvable(f: Findings, a: Association, end: str, value: str, known: frozenset[str]) -> bool:
    """An association end is present, and a symbolic id names an object of the message
    (ebRIM 3.0: a symbolic id links objects within one message; xds-notes §4 item 2); a
    urn:uuid: must be a UUID."""
    if not value:
        f.error(f"{describe(a)}: required attribute {end} is missing", a.id)
        return False
    if value.startswith(_UUID_PREFIX):
        problem = hl7.check_uuid_urn(value)
        if problem:
            f.error(f"{describe(a)}: {end} '{value}' {problem}", a.id)
            return False
        return True
    if value not in known:
        f.error(f"{describe(a)}: {end} '{value}' is a symbolic id that names no object of this submission", a.id)
        return False
    return True


def _association(f: Findings, a: Association, ids: _Ids, known: frozenset[str]) -> None:
    kind = a.association_type
    if not kind:
        f.error(f"{describe(a)}: required attribute associationType is missing", a.id)
    elif kind not in AssociationType.ALL:
        f.error(f"{describe(a)}: associationType '{kind}' is not an XDS association type", a.id)
    source_ok = _resolvable(f, a, "sourceObject", a.source, known)
    target_ok = _resolvable(f, a, "targetObject", a.target, known)
    # ITI TF-3 §4.2.2: a SubmissionSet is never the target of an association.
    if a.target in ids.ss:
        f.error(f"{describe(a)}: the SubmissionSet {a.target} may not be the target of an association", a.id)
        target_ok = False
    # ITI TF-3 §4.2.2.2 (NIST 12370): documentation is allowed on relationships only.
    if a.documentation and kind not in AssociationType.RELATIONSHIPS:
        f.error(
            f"{describe(a)}: an associationDocumentation classification is allowed only on document relationships",
            a.id,
        )
    if kind == AssociationType.HAS_MEMBER and source_ok and target_ok:
        _has_member(f, a, ids)
    elif kind in _SOURCE_IS_NEW_DE:
        _relationship(f, a, ids, known, source_ok=source_ok, target_ok=target_ok)


def _has_member(f: Findings, a: Association, ids: _Ids) -> None:
    status = a.submission_set_status
    if a.source in ids.ss:
        if a.target in ids.de:
            # ITI TF-3 §4.2.2.1.1: SS -> DE of this submission carries SubmissionSetStatus Original.
            if status is None:
                f.error(
                    f"{describe(a)}: HasMember from the SubmissionSet to DocumentEntry {a.target} "
                    "has no SubmissionSetStatus slot",
                    a.id,
                )
            elif status != SubmissionSetStatus.ORIGINAL:
                f.error(
                    f"{describe(a)}: SubmissionSetStatus '{status}' must be Original for "
                    f"DocumentEntry {a.target} of this submission",
                    a.id,
                )
        elif a.target not in ids.fd and a.target not in ids.assoc and status is not None:
            # ITI TF-3 §4.2.2.1.1: an SS -> registered DE reference carries Reference.
            if status not in _SS_STATUSES:
                f.error(f"{describe(a)}: SubmissionSetStatus '{status}' is neither Original nor Reference", a.id)
            elif status != SubmissionSetStatus.REFERENCE:
                f.error(
                    f"{describe(a)}: SubmissionSetStatus Original names {a.target}, which is not a DocumentEntry "
                    "of this submission (use Reference)",
                    a.id,
                )
        # ITI TF-3 §4.2.2.1.2 / §4.2.2.1.4: SS -> Folder and SS -> Association have no slot rules.
        return
    # Otherwise a Folder -> DocumentEntry membership (ITI TF-3 §4.2.2.1.3).
    if a.source in ids.de or a.source in ids.assoc:
        f.error(f"{describe(a)}: HasMember source {a.source} is neither the SubmissionSet nor a Folder", a.id)
        return
    if a.target in ids.fd or a.target in ids.assoc:
        f.error(f"{describe(a)}: a Folder HasMember target must be a DocumentEntry, not {a.target}", a.id)
    # ITI TF-3 §4.2.2.1.4 (NIST 12000, 12326): the FD -> DE association is itself an SS member.
    if a.id not in ids.ss_members:
        f.error(
            f"{describe(a)}: Folder membership is not the target of a HasMember association from the SubmissionSet",
            a.id,
        )


def _relationship(
    f: Findings, a: Association, ids: _Ids, known: frozenset[str], *, source_ok: bool, target_ok: bool
) -> None:
    """ITI TF-3 §4.2.2.2: the source is a new DocumentEntry of this submission; the target a
    registered DocumentEntry named by its UUID (``signs`` may also target a DocumentEntry of this
    submission)."""
    if source_ok and a.source not in ids.de:
        f.error(f"{describe(a)}: sourceObject {a.source} is not a DocumentEntry of this submission", a.id)
    if not target_ok or a.association_type == AssociationType.SIGNS:
        return
    if not a.target.startswith(_UUID_PREFIX):
        f.error(
            f"{describe(a)}: targetObject '{a.target}' must be the urn:uuid of a registered DocumentEntry, "
            "not a symbolic id",
            a.id,
        )
    elif a.target in known:
        f.error(
            f"{describe(a)}: targetObject {a.target} is an object of this submission, not a registered DocumentEntry",
            a.id,
        )
