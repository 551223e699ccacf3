"""The demo: seed a running Edge Server the way a hospital would, end to end.

Against a running ``xds up`` (or ``xds source serve`` with a consent registry), :func:`seed`

1. draws a chest CT and a brain MR (:mod:`imaging_source.synthetic`, real pixel data),
2. sends them to the Edge Server's Storage SCP by C-STORE, as a modality does,
3. sends a final report for each by HL7 ORU^R01 over MLLP to its RIS feed, as a RIS does, and
   (with ``registry_feed``) the patient to the registry's ITI-8 feed, as the hospital's ADT does,
4. waits until the intake has indexed every instance,
5. enrols the demo patient (a grant in the registry: access code and a PIN; the PIN is chosen
   here at random unless given, since nobody sits at a keypad),
6. shares both exams with the *immediately* release policy (share jobs: KOS, report, RAD-68 to
   the repository, ITI-42 to the registry, then the grant updated),
7. waits until every job is done and the grant holds every exam.

Nothing here talks to the registry or the repository except through the Edge Server's own code
paths; a failure at any step raises :class:`DemoError` naming it.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from imaging_source.config import SourceSettings
from imaging_source.synthetic import SyntheticPatient, SyntheticStudy, brain_mr, chest_ct, recent_date

__all__ = ["DEMO_STAFF", "DemoError", "DemoExam", "DemoResult", "demo_staff", "seed"]

#: The staff console user the demo (re)creates, an admin, with a new random password each run.
DEMO_STAFF = "demo-admin"

Say = Callable[[str], None]


class DemoError(RuntimeError):
    """A demo step failed; the message names the step and what to check."""


@dataclass(frozen=True, slots=True)
class DemoExam:
    study_uid: str
    accession: str
    description: str
    modality: str
    instances: int


@dataclass(frozen=True, slots=True)
class DemoResult:
    patient_id: str
    affinity_patient_id: str
    grant_id: str
    access_code: str = field(repr=False)
    access_code_display: str = field(repr=False)
    pin: str = field(repr=False)
    expires: dt.datetime
    exams: tuple[DemoExam, ...]
    code_sheet: bytes = field(repr=False)


def _studies(today: dt.date) -> list[tuple[SyntheticStudy, Callable[..., list[Dataset]], str]]:
    ct = SyntheticStudy(
        accession="DEMO-CT-1",
        description="CT chest with contrast",
        study_date=recent_date(14, today=today),
        slices=48,
        procedure=("71260", "C4", "CT chest with contrast"),
        body_part="CHEST",
    )
    mr = SyntheticStudy(
        accession="DEMO-MR-1",
        description="MR brain without contrast",
        study_date=recent_date(3, today=today),
        slices=20,
        procedure=("70551", "C4", "MRI brain without contrast"),
        body_part="HEAD",
    )
    return [(ct, chest_ct, "CT"), (mr, brain_mr, "MR")]


REPORTS = {
    "DEMO-CT-1": (
        "CT CHEST WITH CONTRAST",
        "FINDINGS: The lungs are clear. No pleural effusion. Heart size is normal.",
        "The aorta is normal in calibre. No lymphadenopathy. Bones are unremarkable.",
        "IMPRESSION: Normal CT of the chest.",
    ),
    "DEMO-MR-1": (
        "MRI BRAIN WITHOUT CONTRAST",
        "FINDINGS: Normal grey-white matter differentiation. Ventricles are normal in size.",
        "No mass, haemorrhage or acute infarct.",
        "IMPRESSION: Normal MRI of the brain.",
    ),
}


def _hl7_escape(text: str) -> str:
    return text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\").replace("~", "\\R\\")


def oru_message(patient: SyntheticPatient, study: SyntheticStudy, *, now: dt.datetime, control_id: str) -> bytes:
    """A final ORU^R01 (HL7 v2.5.1) carrying the study's report text, one OBX per line."""
    stamp = now.strftime("%Y%m%d%H%M%S+0000")
    code, _, meaning = study.procedure
    pid_cx = f"{patient.patient_id}^^^{patient.issuer}^MR" if patient.issuer else f"{patient.patient_id}^^^^MR"
    segments = [
        f"MSH|^~\\&|DEMO-RIS|HOSP|EDGE|HOSP|{stamp}||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        f"PID|1||{pid_cx}||{patient.name}||{patient.birth_date}|{patient.sex}",
        f"ORC|RE|P-{study.accession}|{study.accession}",
        f"OBR|1|P-{study.accession}|{study.accession}|{code}^{_hl7_escape(meaning)}^C4|||{study.study_date}{study.study_time}"
        + "|" * 15
        + f"{stamp}|||F",
    ]
    for number, line in enumerate(REPORTS.get(study.accession, ("Report.",)), start=1):
        segments.append(f"OBX|{number}|TX|RPT^Report^L||{_hl7_escape(line)}||||||F")
    return ("\r".join(segments) + "\r").encode("utf-8")


def _store(datasets: Sequence[Dataset], *, host: str, port: int, called: str) -> None:
    """C-STORE every data set over one association (PS3.4 B.2), as a modality sends a study."""
    from pynetdicom import AE

    ae = AE(ae_title="DEMOMODALITY")
    for sop_class in sorted({ds.SOPClassUID for ds in datasets}):
        ae.add_requested_context(sop_class, datasets[0].file_meta.TransferSyntaxUID)
    assoc = ae.associate(host, port, ae_title=called)
    if not assoc.is_established:
        raise DemoError(f"the Edge Server's Storage SCP {called} at {host}:{port} refused or is not running (is `xds up` running?)")
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            code = getattr(status, "Status", None)
            if code is None or code not in (0x0000, 0xB000, 0xB006, 0xB007):
                raise DemoError(f"C-STORE of {ds.SOPInstanceUID} failed with status {code!r}")
    finally:
        assoc.release()


def adt_message(affinity_patient_id: str, patient: SyntheticPatient, *, now: dt.datetime, control_id: str) -> bytes:
    """ITI-8 Patient Identity Feed (ITI TF-2a §3.8.4.1): ADT^A04 (v2.3.1) registering the
    affinity-domain patient ID with the registry."""
    stamp = now.strftime("%Y%m%d%H%M%S")
    segments = [
        f"MSH|^~\\&|DEMO-ADT|HOSP|XDS-REGISTRY|HOSP|{stamp}||ADT^A04|{control_id}|P|2.3.1",
        f"EVN|A04|{stamp}",
        f"PID|1||{affinity_patient_id}||{patient.name}||{patient.birth_date}|{patient.sex}",
        "PV1|1|O",
    ]
    return ("\r".join(segments) + "\r").encode("utf-8")


def _send(message: bytes, *, host: str, port: int, what: str) -> None:
    from xds.hl7.mllp import send_mllp

    try:
        reply = send_mllp(host, port, message, timeout=30)
    except OSError as exc:
        raise DemoError(f"the {what} at {host}:{port} cannot be reached: {exc}") from None
    if b"MSA|AA" not in reply and b"MSA|CA" not in reply:
        raise DemoError(f"the {what} did not accept the message: {reply[:200]!r}")


def _wait(what: str, check: Callable[[], bool], *, timeout: float, poll: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def seed(
    settings: SourceSettings,
    *,
    dicom_host: str = "127.0.0.1",
    ris_host: str = "127.0.0.1",
    registry_feed: tuple[str, int] | None = None,
    patient: SyntheticPatient = SyntheticPatient(),
    pin: str | None = None,
    expires_days: int = 30,
    timeout: float = 180.0,
    say: Say = lambda _line: None,
) -> DemoResult:
    """Seed the running Edge Server described by ``settings`` (see the module documentation)."""
    from imaging_source.db import make_engine, upgrade
    from imaging_source.dicomstore import DicomStore
    from imaging_source.enrol import AlreadyEnrolled, Enrolment, GrantBook, code_sheet_pdf
    from imaging_source.grant_client import GrantApiError, GrantClient
    from imaging_source.jobs import JobState, JobStore
    from imaging_source.rad68 import PatientMapping
    from imaging_source.release import ReleasePolicy

    if not settings.dicom_port or not settings.mllp_port:
        raise DemoError("the demo needs the Edge Server's Storage SCP and RIS feed (non-zero dicom and RIS ports)")
    if not settings.grant_api_key:
        raise DemoError("the demo needs the registry's grant API key (xds up keeps it under <data-dir>/keys)")
    now = dt.datetime.now(dt.UTC)
    pin = pin or f"{secrets.randbelow(10**6):06d}"
    try:
        mapping = PatientMapping(settings.affinity_domain_oid, settings.patient_id_rule, settings.local_patient_id_oid)
        affinity = mapping.affinity_patient_id(patient.patient_id, patient.issuer)
        mapping.source_patient_id(patient.patient_id, patient.issuer)
    except ValueError as exc:
        raise DemoError(f"the Edge Server cannot map the demo patient: {exc}") from None
    if registry_feed is not None:
        say(f"registering patient {affinity} with the registry (ITI-8 at {registry_feed[0]}:{registry_feed[1]})")
        adt = adt_message(affinity, patient, now=now, control_id=f"DEMOADT{int(now.timestamp())}")
        _send(adt, host=registry_feed[0], port=registry_feed[1], what="registry's ITI-8 feed")
    exams: list[DemoExam] = []
    for index, (study, draw, modality) in enumerate(_studies(now.date())):
        datasets = draw(patient, study)
        say(f"sending {study.description} ({len(datasets)} images) to {settings.ae_title} at {dicom_host}:{settings.dicom_port}")
        _store(datasets, host=dicom_host, port=settings.dicom_port, called=settings.ae_title)
        oru = oru_message(patient, study, now=now, control_id=f"DEMO{int(now.timestamp())}{index}")
        _send(oru, host=ris_host, port=settings.mllp_port, what="Edge Server's RIS feed")
        exams.append(DemoExam(study.uid(), study.accession, study.description, modality, len(datasets)))

    engine = make_engine(settings.database_url())
    client = GrantClient(settings.grant_api_url, settings.grant_api_key)
    try:
        upgrade(engine)
        store = DicomStore(settings.store_dir(), engine)
        for exam in exams:
            _wait(
                f"the intake to index {exam.accession}",
                lambda exam=exam: store.count_instances(exam.study_uid) >= exam.instances,  # type: ignore[misc]
                timeout=timeout,
            )
        say("images indexed; enrolling the demo patient")
        jobs = JobStore(engine)
        book = GrantBook(engine)
        enrolment = Enrolment(client, book, jobs, mapping)
        expires = now + dt.timedelta(days=expires_days)
        try:
            try:
                issued = enrolment.enrol(patient.patient_id, issuer=patient.issuer, pin=pin, expires=expires)
            except AlreadyEnrolled:
                issued = enrolment.enrol(patient.patient_id, issuer=patient.issuer, pin=pin, expires=expires, replace=True)
        except GrantApiError as exc:
            raise DemoError(f"enrolment at the registry failed: {exc}") from None
        created = []
        for exam in exams:
            active = jobs.active_for_study(exam.study_uid)
            job = active or jobs.create(
                patient_id=patient.patient_id,
                issuer=patient.issuer,
                study_uid=exam.study_uid,
                accession=exam.accession,
                policy=ReleasePolicy.IMMEDIATELY,
            )
            created.append(job.id)
        say(f"sharing {len(created)} exam(s) with immediate release (jobs {', '.join(map(str, created))})")

        def finished() -> bool:
            for job_id in created:
                job = jobs.get(job_id)
                if job is None or job.state == JobState.FAILED:
                    raise DemoError(f"share job {job_id} failed: {job.last_error if job else 'gone'} (see `xds source jobs`)")
                if job.state != JobState.DONE or book.pending(job_id) is not None:
                    return False
            return True

        _wait("the share jobs (KOS, report, RAD-68, grant update)", finished, timeout=timeout)
        sheet = code_sheet_pdf(
            access_code_display=issued.access_code_display,
            patient_label=patient.patient_id,
            expires=issued.expires or expires,
            release_delay_hours=settings.release_delay_hours,
            portal_url=settings.portal_url,
        )
    finally:
        client.close()
        engine.dispose()
    return DemoResult(
        patient_id=patient.patient_id,
        affinity_patient_id=affinity,
        grant_id=issued.grant_id,
        access_code=issued.access_code,
        access_code_display=issued.access_code_display,
        pin=pin,
        expires=issued.expires or expires,
        exams=tuple(exams),
        code_sheet=sheet,
    )


def demo_staff(settings: SourceSettings) -> tuple[str, str]:
    """(user name, password) of the demo's staff console admin: created, or given a new random
    password when it exists (a demo on one machine; real staff are added with
    ``xds source staff add``)."""
    from imaging_source.db import make_engine, upgrade
    from imaging_source.web.staff import StaffDirectory, StaffRole

    password = secrets.token_urlsafe(12)
    engine = make_engine(settings.database_url())
    try:
        upgrade(engine)
        staff = StaffDirectory(engine)
        if staff.get(DEMO_STAFF) is None:
            staff.add(DEMO_STAFF, password, role=StaffRole.ADMIN)
        else:
            staff.set_password(DEMO_STAFF, password)
            staff.set_disabled(DEMO_STAFF, disabled=False)
    finally:
        engine.dispose()
    return DEMO_STAFF, password
