"""The Imaging Document Consumer flow (RAD TF-3 §4.69; xds-notes §7.6; DESIGN §5 step 4):
find a patient's imaging manifests, retrieve them and their reports, and fetch every referenced
DICOM instance from the Imaging Document Source the manifest names, verified, onto disk.

1. ITI-18 FindDocuments (Approved, formatCode KOS) -> the manifests' DocumentEntries
   (mimeType application/dicom); GetSubmissionSets and GetSubmissionSetAndContents -> the
   report documents (text/plain, application/pdf) submitted with each manifest (RAD-68 puts
   both in one SubmissionSet).
2. ITI-43 for the manifests and reports; each KOS is parsed (:mod:`consumer.kos`).
3. RAD-69, in batches, to the source whose repositoryUniqueId is the series' Retrieve
   Location UID (its endpoint comes from the ``sources`` mapping); every returned instance is
   checked against its reference (SOP Instance UID, SOP Class UID, an accepted transfer
   syntax) and only then renamed to ``<out>/<patient>/<study>/<series>/<sop>.dcm``.

Resumable: an instance whose file is already there and passes the same check is not asked
for again; a file only ever appears under its final name complete (a spooled part, renamed;
fsynced first unless told otherwise), so an interrupted run leaves nothing half-written there.
PartialSuccess keeps what came; what is missing is listed in the summary and asked for again
by the next run.

Every SOAP call goes through :class:`SecuredSoapClient`, which adds the header the
``security`` callable returns (a WS-Security header carrying the consent token) to each
message.

Public API::

    SecurityHeader = Callable[[], etree._Element | None]
    SecuredSoapClient(endpoint, *, security=None, **SoapClient options)
    DocumentRef(unique_id, repository_id, mime_type, title, hash)
    Exam(manifest, reports, submission_set, study_uid, accession, date, modalities, title)
    find_exams(client, patient_id) -> list[Exam]
    retrieve_documents(client, documents, directory) -> tuple[dict[str, Path], list[str]]
    check_instance(stream, image, *, transfer_syntaxes=None) -> str | None
    instance_path(out, patient_dir, image) -> Path
    patient_directory(patient_id) -> str
    parse_sources(items) -> dict[str, str]
    FetchOptions(...), FetchProgress (Protocol), Failure, FetchSummary
    fetch(options, *, progress=None) -> FetchSummary
    FetchError
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final, Protocol

import httpx
from lxml import etree
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from consumer import iti43
from consumer.iti18 import QueryResult, stored_query
from consumer.kos import ImageReference, KosError, Manifest, read_manifest
from consumer.rad69 import DEFAULT_TRANSFER_SYNTAXES, BatchResult, CountingTransport, retrieve_batch
from xds.errors import RegistryError, XdsError
from xds.http.client import CertTypes, SoapClient, SoapConnectionError, SoapProtocolError, SoapReply, VerifyTypes
from xds.metadata.model import DocumentEntry
from xds.metadata.responses import ResponseFormatError, parse_registry_response
from xds.query import CodeValue, StoredQueryId
from xds.soap.attachments import Attachment
from xds.soap.fault import SoapFault
from xds.soap.mtom_encode import OutgoingPart
from xds.vocabulary import (
    DICOM_DCM_OID,
    DICOM_UID_REGISTRY_OID,
    KOS_SOP_CLASS_UID,
    MIME_DICOM,
    NS_RS,
    NS_XDS,
    Action,
    AssociationType,
    ReferenceIdType,
    Status,
)
from xds.xml import qname

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_TRANSFER_SYNTAXES",
    "DocumentRef",
    "Exam",
    "Failure",
    "FetchError",
    "FetchOptions",
    "FetchProgress",
    "FetchSummary",
    "SecuredSoapClient",
    "SecurityHeader",
    "check_instance",
    "fetch",
    "find_exams",
    "instance_path",
    "parse_sources",
    "patient_directory",
    "retrieve_documents",
]

#: RAD TF-3 §4.68.4.1.2.3.2: formatCode of the manifest, the KOS SOP Class in the DICOM UID registry.
FORMAT_KOS: Final = CodeValue(KOS_SOP_CLASS_UID, DICOM_UID_REGISTRY_OID)
#: The report documents the Edge Server submits with a manifest (RAD-68 SubmissionSet).
REPORT_MIME_TYPES: Final = ("text/plain", "application/pdf")
DEFAULT_BATCH: Final = 100
#: Spool directories of runs that ended without cleaning up are swept after this long.
STALE_WORK_SECONDS: Final = 3600.0
_WORK_PREFIX: Final = ".xds-fetch-"
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")
_REGISTRY_RESPONSE: Final = qname(NS_RS, "RegistryResponse")
_DOCUMENT_RESPONSE: Final = qname(NS_XDS, "DocumentResponse")
_DOCUMENT_ID: Final = qname(NS_XDS, "DocumentUniqueId")
_MIME_TYPE: Final = qname(NS_XDS, "mimeType")
_DOCUMENT: Final = qname(NS_XDS, "Document")

#: Returns the SOAP header block to add to one message (e.g. a wsse:Security header with the
#: consent token), or None. Called once per message, so a token with a timestamp stays fresh.
SecurityHeader = Callable[[], etree._Element | None]


class FetchError(Exception):
    """A failure that stops the whole run (registry unreachable, query refused...)."""


# -- the security seam ----------------------------------------------------------------------------
class SecuredSoapClient(SoapClient):
    """A :class:`SoapClient` that adds ``security()``'s header block to every message it sends.

    ITI TF-2x V.3.2 leaves the SOAP header open to further blocks; the consent token rides in a
    WS-Security header of ITI-18, ITI-43 and RAD-69 (DESIGN §4).
    """

    def __init__(self, endpoint: str, *, security: SecurityHeader | None = None, **options: Any) -> None:
        super().__init__(endpoint, **options)
        self._security = security

    def call(
        self,
        action: str,
        body: etree._Element,
        *,
        attachments: Sequence[Attachment | OutgoingPart] = (),
        mtom: bool = False,
        extra_headers: Iterable[etree._Element] = (),
        message_id: str | None = None,
    ) -> SoapReply:
        headers = list(extra_headers)
        header = self._security() if self._security is not None else None
        if header is not None:
            headers.append(header)
        return super().call(
            action, body, attachments=attachments, mtom=mtom, extra_headers=headers, message_id=message_id
        )


# -- ITI-18: the exams -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DocumentRef:
    """A registered document to retrieve with ITI-43."""

    unique_id: str
    repository_id: str
    mime_type: str
    title: str = ""
    hash: str = ""
    # ITI TF-2a §3.18.4.1.2.3.8: a homeCommunityId the registry returned goes back on ITI-43
    # (and, for the images a manifest of that community references, on RAD-69).
    home: str | None = None


@dataclass(frozen=True, slots=True)
class Exam:
    """One shared imaging exam: its manifest, its reports and what the registry says of it."""

    manifest: DocumentRef
    reports: tuple[DocumentRef, ...]
    submission_set: str
    study_uid: str
    accession: str
    date: str
    modalities: tuple[str, ...]
    title: str


def _ref(entry: DocumentEntry) -> DocumentRef:
    return DocumentRef(
        unique_id=entry.unique_id or "",
        repository_id=entry.repository_unique_id or "",
        mime_type=entry.mime_type,
        title=entry.title or "",
        hash=(entry.hash or "").lower(),
        home=entry.home or None,
    )


def _reference_id(entry: DocumentEntry, id_type: str) -> str:
    """CX.1 of the referenceIdList value of type ``id_type`` (CX.5) (ITI TF-3 §4.2.3.2.28)."""
    for value in entry.reference_ids:
        components = value.split("^")
        if len(components) >= 5 and components[4] == id_type:
            return components[0]
    return ""


def _checked(result: QueryResult, what: str) -> QueryResult:
    if not result.ok:
        detail = "; ".join(f"{e.code_text}: {e.context}" for e in result.errors if e.is_error)
        raise FetchError(f"{what} failed: {detail or result.status}")
    return result


def _submission_sets(client: SoapClient, entry_ids: Sequence[str]) -> dict[str, str]:
    """DocumentEntry entryUUID -> entryUUID of the SubmissionSet that holds it (GetSubmissionSets,
    ITI TF-2a §3.18.4.1.2.3.7.9: the SubmissionSets and their HasMember Associations)."""
    if not entry_ids:
        return {}
    result = _checked(stored_query(client, StoredQueryId.GET_SUBMISSION_SETS, {"$uuid": list(entry_ids)}), "GetSubmissionSets")
    sets = {ss.id for ss in result.submission.submission_sets}
    return {
        a.target: a.source
        for a in result.submission.associations
        if a.association_type == AssociationType.HAS_MEMBER and a.source in sets
    }


def _reports(client: SoapClient, submission_set: str) -> tuple[DocumentRef, ...]:
    """The approved report documents of one SubmissionSet (GetSubmissionSetAndContents)."""
    result = _checked(
        stored_query(client, StoredQueryId.GET_SUBMISSION_SET_AND_CONTENTS, {"$XDSSubmissionSetEntryUUID": submission_set}),
        "GetSubmissionSetAndContents",
    )
    return tuple(
        _ref(entry)
        for entry in result.submission.document_entries
        if entry.mime_type.split(";")[0].strip().lower() in REPORT_MIME_TYPES
        and entry.status in (None, Status.APPROVED)
        and entry.unique_id
    )


def find_exams(client: SoapClient, patient_id: str) -> list[Exam]:
    """The patient's imaging exams the registry lets the caller see, newest first.

    Raises :class:`FetchError` when a query is refused, and what the client raises.
    """
    # ITI TF-2a §3.18.4.1.2.3.7.1 FindDocuments; RAD TF-3 §4.68.4.1.2.3.2: the manifest's formatCode.
    found = _checked(
        stored_query(
            client,
            StoredQueryId.FIND_DOCUMENTS,
            {
                "$XDSDocumentEntryPatientId": patient_id,
                "$XDSDocumentEntryStatus": [Status.APPROVED],
                "$XDSDocumentEntryFormatCode": [FORMAT_KOS],
            },
        ),
        "FindDocuments",
    )
    manifests = [
        e for e in found.submission.document_entries if e.mime_type.split(";")[0].strip().lower() == MIME_DICOM and e.unique_id
    ]
    holders = _submission_sets(client, [e.id for e in manifests])
    reports = {ss: _reports(client, ss) for ss in sorted(set(holders.values()))}
    exams = [
        Exam(
            manifest=_ref(entry),
            reports=reports.get(holders.get(entry.id, ""), ()),
            submission_set=holders.get(entry.id, ""),
            study_uid=_reference_id(entry, ReferenceIdType.STUDY_INSTANCE_UID),
            accession=_reference_id(entry, ReferenceIdType.ACCESSION),
            date=entry.service_start_time or entry.creation_time or "",
            modalities=tuple(c.code for c in entry.event_codes if c.scheme == DICOM_DCM_OID),
            title=entry.title or "",
        )
        for entry in manifests
    ]
    return sorted(exams, key=lambda exam: exam.date, reverse=True)


# -- ITI-43: manifests and reports -----------------------------------------------------------------
def retrieve_documents(
    client: SoapClient, documents: Sequence[DocumentRef], directory: Path
) -> tuple[dict[str, Path], list[str]]:
    """ITI-43 for ``documents``: uniqueId -> file in ``directory``, and the problems met.

    A document whose bytes do not have the hash the registry holds is refused (ITI TF-3
    §4.2.3.2.12). ``client`` should spool into ``directory``'s filesystem (a rename each).
    """
    if not documents:
        return {}, []
    by_uid = {d.unique_id: d for d in documents}
    requests = [iti43.DocumentRequest(d.unique_id, d.repository_id, home=d.home) for d in documents]
    paths: dict[str, Path] = {}
    problems: list[str] = []
    with client.call(Action.ITI43, iti43.build_request(requests), mtom=True) as reply:
        status_element = reply.body.find(_REGISTRY_RESPONSE)
        if status_element is None:
            raise FetchError("the ITI-43 reply has no rs:RegistryResponse")
        parsed = parse_registry_response(status_element)
        for item in reply.body.iterfind(_DOCUMENT_RESPONSE):
            uid = (item.findtext(_DOCUMENT_ID) or "").strip()
            element = item.find(_DOCUMENT)
            wanted = by_uid.get(uid)
            if wanted is None or element is None:
                continue
            attachment = reply.binary(element)
            if wanted.hash and attachment.sha1_hex != wanted.hash:
                problems.append(f"document {uid}: its bytes do not match the registered hash")
                continue
            mime = (item.findtext(_MIME_TYPE) or wanted.mime_type).strip()
            paths[uid] = attachment.move_to(directory / iti43.file_name(uid, mime), fsync=False)
    problems.extend(f"ITI-43 {e.code_text} [{e.location}]: {e.context}" for e in parsed.errors if e.is_error)
    problems.extend(f"document {uid}: not returned by the repository" for uid in by_uid if uid not in paths and not _named(uid, parsed.errors))
    return paths, problems


def _named(uid: str, errors: Iterable[RegistryError]) -> bool:
    return any(e.location == uid for e in errors)


# -- checking instances ----------------------------------------------------------------------------
def check_instance(stream: BinaryIO, image: ImageReference, *, transfer_syntaxes: Collection[str] | None = None) -> str | None:
    """None when ``stream`` is a DICOM Part 10 file of the referenced instance, else why not.

    Checked (RAD TF-3 §4.69.4.2.3; PS3.10 §7.1): File Meta present; SOP Instance UID and SOP
    Class UID of the data set (and the Media Storage ones of the File Meta) equal the KOS
    reference; with ``transfer_syntaxes``, the file's Transfer Syntax is one of them. Only the
    header is read (up to the Pixel Data).
    """
    try:
        ds = dcmread(stream, stop_before_pixels=True)
    except (InvalidDicomError, EOFError, ValueError, TypeError, KeyError, OSError) as exc:
        return f"not a readable DICOM Part 10 file: {exc}"
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not syntax:
        return "no File Meta Information (not a Part 10 file)"
    sop_instance = str(ds.get("SOPInstanceUID", "")).strip()
    if sop_instance != image.sop_instance_uid:
        return f"SOP Instance UID {sop_instance or '(none)'} instead of {image.sop_instance_uid}"
    sop_class = str(ds.get("SOPClassUID", "")).strip()
    if sop_class != image.sop_class_uid:
        return f"SOP Class UID {sop_class or '(none)'} instead of {image.sop_class_uid} (the KOS reference)"
    media_instance = str(meta.get("MediaStorageSOPInstanceUID", "")).strip()
    media_class = str(meta.get("MediaStorageSOPClassUID", "")).strip()
    if (media_instance and media_instance != sop_instance) or (media_class and media_class != sop_class):
        return "File Meta Media Storage SOP UIDs differ from the data set's"
    # RAD TF-3 §4.69.4.2.3: the returned Transfer Syntax is one the request listed.
    if transfer_syntaxes is not None and syntax not in transfer_syntaxes:
        return f"Transfer Syntax {syntax} was not requested"
    return None


def _check_file(path: Path, image: ImageReference) -> str | None:
    try:
        with open(path, "rb") as stream:
            return check_instance(stream, image)
    except OSError as exc:
        return str(exc)


# -- paths -----------------------------------------------------------------------------------------
def _component(text: str) -> str:
    """``text`` as one safe path component (a UID stays as it is; ``..`` never survives)."""
    safe = _UNSAFE.sub("_", text.strip())
    if not safe.strip("."):
        safe = "_" + safe.replace(".", "_")
    return safe


def patient_directory(patient_id: str) -> str:
    """The directory name of a patient: the ID (CX.1) of the affinity-domain patient ID."""
    return _component(patient_id.split("^", 1)[0])


def instance_path(out: Path, patient_dir: str, image: ImageReference) -> Path:
    """``out/<patient>/<study>/<series>/<sop>.dcm``."""
    return out / patient_dir / _component(image.study_uid) / _component(image.series_uid) / f"{_component(image.sop_instance_uid)}.dcm"


def parse_sources(items: Iterable[str]) -> dict[str, str]:
    """``OID=URL`` items -> {OID: URL}; raises ValueError for a malformed item."""
    sources: dict[str, str] = {}
    for item in items:
        oid, sep, url = item.partition("=")
        oid, url = oid.strip(), url.strip()
        if not sep or not oid or not url.startswith(("http://", "https://")):
            raise ValueError(f"{item!r} is not OID=URL (the Retrieve Location UID, then the RAD-69 endpoint)")
        sources[oid] = url
    return sources


# -- the run ----------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class FetchOptions:
    """What to fetch, from where, and how."""

    registry: str
    repository: str
    patient_id: str
    out: Path
    sources: Mapping[str, str] = field(default_factory=dict)
    studies: tuple[str, ...] = ()
    batch_size: int = DEFAULT_BATCH
    transfer_syntaxes: tuple[str, ...] = DEFAULT_TRANSFER_SYNTAXES
    timeout: float = 60.0
    verify: VerifyTypes = True
    cert: CertTypes = None
    fsync: bool = True
    security: SecurityHeader | None = None


class FetchProgress(Protocol):
    """What a progress display is told as the run goes."""

    def planned(self, total: int, present: int) -> None:
        """``total`` referenced instances, ``present`` of them already on disk."""

    def received(self, n: int) -> None:
        """``n`` more response bytes arrived from an Imaging Document Source."""

    def stored(self, size: int) -> None:
        """One more instance (of ``size`` bytes) is verified and in place."""


@dataclass(frozen=True, slots=True)
class Failure:
    """An instance (or a document) the run could not deliver, and why."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    reason: str


@dataclass(frozen=True, slots=True)
class FetchSummary:
    studies: tuple[str, ...]
    instances: int
    fetched: int
    present: int
    bytes: int
    reports: tuple[Path, ...]
    failures: tuple[Failure, ...]
    errors: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.errors


@dataclass
class _Run:
    """Mutable state of one run (local to :func:`fetch`)."""

    options: FetchOptions
    patient_dir: str
    work: Path
    progress: FetchProgress | None
    fetched: int = 0
    bytes: int = 0
    reasons: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)
    homes: dict[str, str] = field(default_factory=dict)  # SOP Instance UID -> homeCommunityId

    def client(self, endpoint: str, *, transport: httpx.BaseTransport | None = None) -> SecuredSoapClient:
        o = self.options
        return SecuredSoapClient(
            endpoint, security=o.security, timeout=o.timeout, verify=o.verify, cert=o.cert,
            transport=transport, spool_dir=self.work,
        )  # fmt: skip

    def target(self, image: ImageReference) -> Path:
        return instance_path(self.options.out, self.patient_dir, image)

    def accept(self, image: ImageReference, attachment: Attachment) -> str | None:
        """Check a returned instance and rename it into place (the :data:`rad69.Accept` callback)."""
        with attachment.open() as stream:
            reason = check_instance(stream, image, transfer_syntaxes=self.options.transfer_syntaxes)
        if reason is not None:
            return reason
        target = self.target(image)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            attachment.move_to(target, fsync=self.options.fsync)
        except OSError as exc:
            return f"could not be written to {target}: {exc}"
        self.fetched += 1
        self.bytes += attachment.size
        if self.progress is not None:
            self.progress.stored(attachment.size)
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _abandoned(directory: Path, now: float) -> bool:
    """A spool directory of a run that is over: its process is gone, or it is stale."""
    pid_text = directory.name[len(_WORK_PREFIX) :].split("-", 1)[0]
    if pid_text.isdigit() and int(pid_text) != os.getpid() and not _alive(int(pid_text)):
        return True
    return now - directory.stat().st_mtime > STALE_WORK_SECONDS


def _work_dir(out: Path) -> Path:
    """A fresh spool directory inside ``out`` (same filesystem: parts are renamed into place),
    named after this process; those of runs that were killed are removed first."""
    out.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in out.glob(_WORK_PREFIX + "*"):
        try:
            if old.is_dir() and _abandoned(old, now):
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix=f"{_WORK_PREFIX}{os.getpid()}-", dir=out))


def _place(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    return target


def _study_dir(run: _Run, manifest: Manifest, images: Sequence[ImageReference]) -> Path:
    study = manifest.study_uid or (images[0].study_uid if images else manifest.sop_instance_uid)
    return run.options.out / run.patient_dir / _component(study)


def _load_exam(run: _Run, exam: Exam, files: Mapping[str, Path]) -> list[ImageReference]:
    """Parse an exam's manifest, put it and its reports in the study directory; its images
    (those of the requested studies)."""
    path = files.get(exam.manifest.unique_id)
    if path is None:
        return []
    try:
        manifest = read_manifest(path.read_bytes())
    except KosError as exc:
        run.errors.append(f"manifest {exam.manifest.unique_id}: {exc}")
        return []
    wanted = set(run.options.studies)
    images = [i for i in manifest.images() if not wanted or i.study_uid in wanted]
    if not images:
        return []
    study_dir = _study_dir(run, manifest, images)
    _place(path, study_dir / f"manifest-{_component(exam.manifest.unique_id)}.dcm")
    for report in exam.reports:
        if report.unique_id in files:
            name = "report-" + files[report.unique_id].name
            run.reports.append(_place(files[report.unique_id], study_dir / name))
    return images


def _discover(run: _Run) -> list[ImageReference]:
    """ITI-18 then ITI-43: every referenced instance of the patient's (requested) exams."""
    o = run.options
    with run.client(o.registry) as registry:
        exams = find_exams(registry, o.patient_id)
    if o.studies:
        # Exams whose study is known from the registry and not asked for are not retrieved.
        exams = [e for e in exams if not e.study_uid or e.study_uid in o.studies]
    documents = [d for e in exams for d in (e.manifest, *e.reports)]
    with run.client(o.repository) as repository:
        files, problems = retrieve_documents(repository, documents, run.work)
    run.errors.extend(problems)
    images: list[ImageReference] = []
    seen: set[str] = set()
    for exam in exams:
        for image in _load_exam(run, exam, files):
            if image.sop_instance_uid not in seen:
                seen.add(image.sop_instance_uid)
                images.append(image)
                if exam.manifest.home:
                    run.homes[image.sop_instance_uid] = exam.manifest.home
    found = {i.study_uid for i in images}
    run.errors.extend(f"study {uid}: no manifest of this patient references it" for uid in o.studies if uid not in found)
    return images


def _pending(run: _Run, images: Sequence[ImageReference]) -> list[ImageReference]:
    """The instances not yet on disk; a file that fails the check is removed, to be fetched again."""
    pending = []
    for directory in {run.target(image).parent for image in images}:
        # A small instance goes through ".<name>.<pid>.tmp" before its rename: a killed run's.
        for leftover in directory.glob(".*.dcm.*.tmp") if directory.is_dir() else ():
            leftover.unlink(missing_ok=True)
    for image in images:
        target = run.target(image)
        if target.is_file() and _check_file(target, image) is None:
            continue
        target.unlink(missing_ok=True)
        pending.append(image)
    return pending


def _batches(images: Sequence[ImageReference], size: int) -> Iterator[list[ImageReference]]:
    for start in range(0, len(images), size):
        yield list(images[start : start + size])


def _record(run: _Run, batch: Sequence[ImageReference], result: BatchResult) -> None:
    by_location = {e.location: e for e in result.errors if e.is_error and e.location}
    for uid, reason in result.rejected:
        run.reasons[uid] = f"refused: {reason}"
    for uid in result.missing:
        error = by_location.get(uid)
        run.reasons[uid] = f"{error.code_text}: {error.context}" if error else f"not returned (status {result.status.rsplit(':', 1)[-1]})"
    requested = {i.sop_instance_uid for i in batch}
    for error in result.errors:
        if error.is_error and error.location not in requested:
            run.errors.append(f"RAD-69 {error.code_text}: {error.context}")


def _fetch_from(
    run: _Run, location: str, endpoint: str, images: Sequence[ImageReference], *, home: str | None = None
) -> None:
    """Every pending instance of one Imaging Document Source, batch by batch (RAD TF-3 §4.69),
    with the homeCommunityId of the manifests that reference them, when they had one."""
    o = run.options
    on_bytes = run.progress.received if run.progress is not None else (lambda n: None)
    transport = CountingTransport(httpx.HTTPTransport(verify=o.verify, cert=o.cert), on_bytes)
    with run.client(endpoint, transport=transport) as client:
        for batch in _batches(images, o.batch_size):
            try:
                result = retrieve_batch(
                    client, batch, repository_id=location, transfer_syntaxes=o.transfer_syntaxes, accept=run.accept, home=home
                )
            except (SoapConnectionError, SoapProtocolError, SoapFault, ResponseFormatError, ValueError) as exc:
                # The source is down or broken: the rest of its instances wait for the next run.
                run.errors.append(f"Imaging Document Source {location}: {exc}")
                reason = f"not fetched: the Imaging Document Source {location} failed (see the error above)"
                for image in images:
                    run.reasons.setdefault(image.sop_instance_uid, reason)
                return
            _record(run, batch, result)


def _fetch_images(run: _Run, pending: Sequence[ImageReference]) -> None:
    by_location: dict[tuple[str, str | None], list[ImageReference]] = {}
    for image in pending:
        by_location.setdefault((image.retrieve_location_uid, run.homes.get(image.sop_instance_uid)), []).append(image)
    for (location, home), images in by_location.items():
        endpoint = run.options.sources.get(location)
        if not location:
            reason = "the manifest gives no Retrieve Location UID for this series"
        elif endpoint is None:
            reason = f"no endpoint is configured for Retrieve Location UID {location} (give --source {location}=URL)"
        else:
            _fetch_from(run, location, endpoint, images, home=home)
            continue
        run.errors.append(f"{len(images)} instance(s): {reason}")
        for image in images:
            run.reasons[image.sop_instance_uid] = reason


def fetch(options: FetchOptions, *, progress: FetchProgress | None = None) -> FetchSummary:
    """The whole flow (module documentation); the summary says what is on disk and what is not.

    Raises :class:`FetchError` (and the client's connection errors) when the registry or the
    repository cannot be used at all.
    """
    if options.batch_size < 1:
        raise ValueError("the batch size is at least 1")
    run = _Run(options, patient_directory(options.patient_id), _work_dir(options.out), progress)
    try:
        try:
            images = _discover(run)
        except XdsError as exc:
            raise FetchError(str(exc)) from None
        pending = _pending(run, images)
        if progress is not None:
            progress.planned(len(images), len(images) - len(pending))
        _fetch_images(run, pending)
    finally:
        shutil.rmtree(run.work, ignore_errors=True)
    # Every referenced instance must be on disk now (each was checked before its rename).
    failures = tuple(
        Failure(i.study_uid, i.series_uid, i.sop_instance_uid, run.reasons.get(i.sop_instance_uid, "not retrieved"))
        for i in images
        if not run.target(i).is_file()
    )
    return FetchSummary(
        studies=tuple(dict.fromkeys(i.study_uid for i in images)),
        instances=len(images),
        fetched=run.fetched,
        present=len(images) - len(pending),
        bytes=run.bytes,
        reports=tuple(run.reports),
        failures=failures,
        errors=tuple(run.errors),
    )
