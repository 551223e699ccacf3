"""The share-job list (states, errors, times; filters by state and patient), a job's history,
and the retry button: :meth:`imaging_source.jobs.JobStore.retry`, as ``xds source retry``."""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imaging_source.jobs import ACTIVE_STATES, InvalidTransition, JobState
from imaging_source.web.actions import StaffAction
from imaging_source.web.context import Console

__all__ = ["job_routes"]

PAGE: Final = 200


def job_routes(console: Console) -> list[BaseRoute]:
    def jobs(request: Request) -> Response:
        signed = console.require(request)
        state_text = request.query_params.get("state", "")
        patient = request.query_params.get("patient", "").strip()[:64]
        try:
            states = [JobState(state_text)] if state_text else None
        except ValueError:
            return console.error_page(request, 400, f"Unknown job state {state_text!r}.")
        found = console.jobs.list(states=states, patient_id=patient or None, limit=PAGE)
        return console.render(
            request, "jobs.html", signed=signed, jobs=found, states=list(JobState), state=state_text, patient=patient,
            active_states=ACTIVE_STATES, page=PAGE,
        )

    def job(request: Request) -> Response:
        signed = console.require(request)
        found = console.jobs.get(int(request.path_params["job_id"]))
        if found is None:
            return console.error_page(request, 404, "No such job.")
        return console.render(request, "job.html", signed=signed, job=found, events=console.jobs.events(found.id))

    def retry(request: Request) -> Response:
        signed = console.require(request)
        form = console.form(request, signed.session)
        job_id = int(request.path_params["job_id"])
        try:
            found = console.jobs.retry(job_id)
        except LookupError:
            return console.error_page(request, 404, "No such job.")
        except InvalidTransition as exc:
            console.flash(signed.session, str(exc), kind="error")
        else:
            console.record(signed, StaffAction.RETRY, patient_id=found.patient_id, issuer=found.issuer, detail=f"job {job_id}: {found.state}")
            console.flash(signed.session, f"Job {job_id} is {found.state} again and will be tried now.")
        back = str(form.get("back", ""))
        if back == "detail":
            return console.redirect(request, f"/jobs/{job_id}")
        return console.redirect(request, "/jobs", state=form.get("state") or None, patient=form.get("patient") or None)

    return [
        Route("/jobs", jobs, methods=["GET"]),
        Route("/jobs/{job_id:int}", job, methods=["GET"]),
        Route("/jobs/{job_id:int}/retry", retry, methods=["POST"]),
    ]
