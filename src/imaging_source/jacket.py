"""A patient's jacket with report status: the exams staff choose from when sharing.

rsna-image-share §2.6: the exam list is the patient's exams with their report status, and
canceled exams are hidden (§4 item 8: "canceled exams need a status and must be hidden"). The
stored studies (:meth:`DicomStore.jacket`) are joined by accession number with the RIS's reports
(:class:`ReportBook`); an exam whose order was canceled (or whose result status is X) is left
out. Exams the RIS has ordered but whose images are not stored yet are listed too, with no study
and zero instances, so staff can see (and later share) an exam whose images are still on the
PACS; they sort after the stored exams.
"""

from __future__ import annotations

from dataclasses import dataclass

from imaging_source.dicomstore import DicomStore
from imaging_source.model import ExamReport, PatientRecord, StudyRecord
from imaging_source.reports import ExamOrder, ReportBook


@dataclass(frozen=True, slots=True)
class JacketExam:
    """One exam of the jacket: its stored study (None while only ordered) and its report."""

    accession: str
    study: StudyRecord | None
    report: ExamReport | None
    order: ExamOrder | None = None

    @property
    def instance_count(self) -> int:
        return self.study.instance_count if self.study is not None else 0

    @property
    def series_count(self) -> int:
        return self.study.series_count if self.study is not None else 0

    @property
    def report_status(self) -> str:
        """OBR-25 of the latest report, '' when there is none."""
        return self.report.status if self.report is not None else ""

    @property
    def final(self) -> bool:
        return self.report is not None and self.report.final

    @property
    def description(self) -> str:
        if self.study is not None and self.study.description:
            return self.study.description
        for source in (self.report, self.order):
            if source is not None and (source.procedure_meaning or source.procedure_code):
                return source.procedure_meaning or source.procedure_code
        return ""


@dataclass(frozen=True, slots=True)
class PatientJacket:
    """A patient and the exams that may be shared: stored studies newest first, then open orders."""

    patient: PatientRecord
    exams: tuple[JacketExam, ...]


def build_jacket(
    store: DicomStore, reports: ReportBook, patient_id: str, *, issuer: str | None = None
) -> PatientJacket | None:
    """The jacket of a patient (None when neither images nor orders name them).

    ``issuer`` None matches the Patient ID under any issuer. A report is matched to a study by
    accession number only, so the RIS's assigning authority need not equal the DICOM Issuer of
    Patient ID; orders without images are matched by Patient ID (and issuer when the RIS sent one).
    """
    stored = store.jacket(patient_id, issuer=issuer)
    studies = stored.studies if stored is not None else ()
    found = reports.reports(s.accession for s in studies)
    exams: list[JacketExam] = []
    seen: set[str] = set()
    for study in studies:
        report = found.get(study.accession) if study.accession else None
        if report is not None and report.canceled:
            continue
        exams.append(JacketExam(accession=study.accession, study=study, report=report))
        if study.accession:
            seen.add(study.accession)
    orders = [
        o
        for o in reports.orders_for_patient(patient_id)
        if issuer is None or o.issuer in (issuer, "")
    ]
    pending = [o for o in orders if o.accession not in seen]
    pending_reports = reports.reports(o.accession for o in pending)
    for order in pending:
        report = pending_reports.get(order.accession)
        if report is not None and report.canceled:
            continue
        exams.append(JacketExam(accession=order.accession, study=None, report=report, order=order))
    if stored is not None:
        patient = stored.patient
    elif pending:
        patient = PatientRecord(patient_id, issuer if issuer is not None else pending[0].issuer, "", "", "")
    else:
        return None
    return PatientJacket(patient=patient, exams=tuple(exams))
