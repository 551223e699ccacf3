"""Patient search, the patient page (the jacket with report and share state), and the cart:
chosen exams shared under a release policy, and autosend of future exams.

Sharing goes through :class:`imaging_source.jobs.JobStore` exactly as ``xds source share`` does
(one job per exam; an exam with an active job keeps it), so the job runner cannot tell a console
share from a CLI one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imaging_source.jacket import JacketExam, build_jacket
from imaging_source.jobs import Job
from imaging_source.release import ReleasePolicy
from imaging_source.report_document import status_word
from imaging_source.web.actions import StaffAction
from imaging_source.web.context import Console, Signed
from imaging_source.web.search import display_name, search_patients

__all__ = ["ExamLine", "patient_identity", "patient_routes"]

POLICY_LABELS = {
    ReleasePolicy.ROUTINE: "Routine: after the final report plus the site's delay",
    ReleasePolicy.WHEN_FINAL: "When the report is final",
    ReleasePolicy.IMMEDIATELY: "Immediately, even without a report",
}


@dataclass(frozen=True, slots=True)
class ExamLine:
    """One jacket row as the patient page shows it."""

    exam: JacketExam
    job: Job | None
    report: str

    @property
    def study_uid(self) -> str:
        return self.exam.study.study_uid if self.exam.study is not None else ""

    @property
    def shareable(self) -> bool:
        return bool(self.study_uid) and (self.job is None or not self.job.active)


def patient_identity(source: Mapping[str, Any]) -> tuple[str, str | None]:
    """(MRN, issuer) from a query or form; the issuer is None when not given (any issuer)."""
    mrn = str(source.get("mrn", "") or "").strip()[:64]
    issuer = source.get("issuer")
    return mrn, (str(issuer)[:64] if issuer is not None else None)


def default_policy(console: Console) -> ReleasePolicy:
    try:
        return ReleasePolicy(console.settings.default_release)
    except ValueError:
        return ReleasePolicy.ROUTINE


def patient_routes(console: Console) -> list[BaseRoute]:
    def patients(request: Request) -> Response:
        signed = console.require(request)
        query = request.query_params.get("q", "")[:128]
        hits = search_patients(console.engine, query) if query.strip() else []
        return console.render(
            request, "patients.html", signed=signed, query=query, hits=hits, display_name=display_name, searched=bool(query.strip())
        )

    def patient(request: Request) -> Response:
        signed = console.require(request)
        mrn, issuer = patient_identity(request.query_params)
        return _patient_page(request, signed, mrn, issuer)

    def _patient_page(request: Request, signed: Signed, mrn: str, issuer: str | None, *, status: int = 200) -> Response:
        jacket = build_jacket(console.store, console.reports, mrn, issuer=issuer) if mrn else None
        if jacket is None:
            return console.render(
                request, "error.html", signed=signed, status=404, message=f"No patient {mrn or '(none)'} is known here."
            )
        who = jacket.patient
        latest: dict[str, Job] = {}
        for job in console.jobs.list(patient_id=who.patient_id, limit=2000):
            if job.issuer == who.issuer:
                latest.setdefault(job.study_uid, job)  # newest first
        lines = [
            ExamLine(exam, latest.get(exam.study.study_uid) if exam.study is not None else None,
                     status_word(exam.report_status) if exam.report is not None else "No report")
            for exam in jacket.exams
        ]
        autosend = next(
            (a for a in console.jobs.autosend_patients() if a.patient_id == who.patient_id and a.issuer == who.issuer), None
        )
        grant = console.book.get(who.patient_id, issuer=who.issuer)
        console.record(signed, StaffAction.VIEW_PATIENT, patient_id=who.patient_id, issuer=who.issuer)
        return console.render(
            request,
            "patient.html",
            signed=signed,
            status=status,
            patient=who,
            name=display_name(who.name),
            lines=lines,
            autosend=autosend,
            grant=grant,
            policies=list(ReleasePolicy),
            policy_labels=POLICY_LABELS,
            default_policy=default_policy(console),
            enrolment_ready=console.enrolment is not None,
            delay_hours=console.settings.release_delay_hours,
        )

    def back(request: Request, mrn: str, issuer: str | None) -> Response:
        return console.redirect(request, "/patient", mrn=mrn, issuer=issuer)

    def share(request: Request) -> Response:
        signed = console.require(request)
        form = console.form(request, signed.session)
        mrn, issuer = patient_identity(form)
        issuer = issuer or ""
        try:
            policy = ReleasePolicy(str(form.get("policy", "")))
        except ValueError:
            console.flash(signed.session, "Choose a release policy.", kind="error")
            return back(request, mrn, issuer)
        studies = [str(s) for s in form.getlist("study")][:500]
        if not studies:
            console.flash(signed.session, "Select at least one exam to share.", kind="error")
            return back(request, mrn, issuer)
        created: list[str] = []
        for uid in studies:
            record = console.store.study(uid)
            # The same check as ``xds source share --study``: the exam must be this patient's.
            if record is None or record.patient.patient_id != mrn or record.patient.issuer != issuer:
                console.flash(signed.session, f"Exam {uid} is not an exam of this patient; nothing was shared.", kind="error")
                return back(request, mrn, issuer)
        for uid in studies:
            record = console.store.study(uid)
            assert record is not None
            job = console.jobs.create(patient_id=mrn, issuer=issuer, study_uid=uid, accession=record.accession, policy=policy)
            created.append(f"job {job.id} {record.accession or uid} ({job.state})")
        console.record(signed, StaffAction.SHARE, patient_id=mrn, issuer=issuer, detail=f"{policy}: " + "; ".join(created))
        console.flash(signed.session, f"Shared {len(created)} exam(s) ({policy}).")
        return back(request, mrn, issuer)

    def autosend(request: Request) -> Response:
        signed = console.require(request)
        form = console.form(request, signed.session)
        mrn, issuer = patient_identity(form)
        issuer = issuer or ""
        if not mrn:
            return console.error_page(request, 400, "No patient given.")
        if form.get("enable") == "on":
            try:
                policy = ReleasePolicy(str(form.get("policy", "")))
            except ValueError:
                policy = default_policy(console)
            console.jobs.enable_autosend(mrn, issuer=issuer, policy=policy)
            console.record(signed, StaffAction.AUTOSEND_ON, patient_id=mrn, issuer=issuer, detail=str(policy))
            console.flash(signed.session, f"Autosend is on ({policy}): future exams are shared as they arrive.")
        else:
            console.jobs.disable_autosend(mrn, issuer=issuer)
            console.record(signed, StaffAction.AUTOSEND_OFF, patient_id=mrn, issuer=issuer)
            console.flash(signed.session, "Autosend is off.")
        return back(request, mrn, issuer)

    return [
        Route("/patients", patients, methods=["GET"]),
        Route("/patient", patient, methods=["GET"]),
        Route("/patient/share", share, methods=["POST"]),
        Route("/patient/autosend", autosend, methods=["POST"]),
    ]
