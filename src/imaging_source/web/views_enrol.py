"""Enrolment from the patient page (DESIGN §4, §5 step 2): issue the access code with
:class:`imaging_source.enrol.Enrolment` (the code path of ``xds source enrol``), the PIN typed by
the patient on a keypad screen or left for the portal, the code sheet as a PDF, PIN reset, and
revocation (administrators only).

The access code is shown once on screen and printed on the sheet; between the two it lives only
in the staff member's server-side session (at most 30 minutes, dropped at sign-out or "Done"),
never in the database or a log line. PINs are never kept at all.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imaging_source.enrol import AlreadyEnrolled, Enrolment, NotEnrolled, code_sheet_pdf
from imaging_source.grant_client import GrantApiError, GrantApiUnavailable
from imaging_source.web.actions import StaffAction
from imaging_source.web.context import Console, Signed
from imaging_source.web.search import display_name
from imaging_source.web.views_patients import patient_identity
from xds.security.pin import PinPolicyError, check_pin

__all__ = ["enrol_routes"]

DEFAULT_DAYS: Final = 365
MAX_DAYS: Final = 3650
_PURPOSES: Final = ("enrol", "reset")


def _days(value: object) -> int:
    try:
        days = int(str(value))
    except ValueError:
        return DEFAULT_DAYS
    return max(1, min(days, MAX_DAYS))


def enrol_routes(console: Console) -> list[BaseRoute]:
    def enrolment(request: Request) -> Enrolment | Response:
        if console.enrolment is None:
            return console.error_page(
                request, 503, "Enrolment is not configured: the Edge Server has no grant API key (grant_api_key)."
            )
        return console.enrolment

    def back(request: Request, mrn: str, issuer: str) -> Response:
        return console.redirect(request, "/patient", mrn=mrn, issuer=issuer)

    def patient_label(mrn: str, issuer: str) -> str:
        jacket = console.store.jacket(mrn, issuer=issuer)
        name = display_name(jacket.patient.name) if jacket is not None else ""
        return (f"{name} " if name else "") + mrn + (f" ({issuer})" if issuer else "")

    def issue(
        request: Request, signed: Signed, service: Enrolment, *, mrn: str, issuer: str, pin: str | None, days: int, replace: bool
    ) -> Response:
        expires = dt.datetime.fromtimestamp(console.clock(), dt.UTC) + dt.timedelta(days=days)
        try:
            issued = service.enrol(mrn, issuer=issuer, pin=pin, expires=expires, replace=replace)
        except AlreadyEnrolled:
            console.flash(signed.session, "This patient is enrolled already. Tick 'Replace' to issue a new code.", kind="error")
            return back(request, mrn, issuer)
        except GrantApiUnavailable:
            console.flash(signed.session, "The registry cannot be reached; nothing was issued. Try again later.", kind="error")
            return back(request, mrn, issuer)
        except GrantApiError as exc:
            console.flash(signed.session, f"The registry refused the enrolment: {exc}", kind="error")
            return back(request, mrn, issuer)
        except ValueError as exc:  # a patient ID the affinity-domain rule cannot map
            console.flash(signed.session, f"The patient cannot be enrolled: {exc}", kind="error")
            return back(request, mrn, issuer)
        ticket = console.keep_ticket(
            signed.session,
            {
                "code": issued.access_code_display,
                "grant_id": issued.grant_id,
                "mrn": mrn,
                "issuer": issuer,
                "label": patient_label(mrn, issuer),
                "expires": (issued.expires or expires).timestamp(),
                "pin_later": pin is None,
            },
        )
        detail = f"grant {issued.grant_id}, {days} days, PIN {'later in the portal' if pin is None else 'set at the keypad'}"
        console.record(signed, StaffAction.ENROL, patient_id=mrn, issuer=issuer, detail=detail + (", replaced" if replace else ""))
        return console.redirect(request, f"/enrolled/{ticket}")

    def enrol_later(request: Request) -> Response:
        """Enrol with the PIN pending: the patient chooses it in the portal."""
        signed = console.require(request)
        form = console.form(request, signed.session)
        service = enrolment(request)
        if isinstance(service, Response):
            return service
        mrn, issuer = patient_identity(form)
        return issue(
            request, signed, service, mrn=mrn, issuer=issuer or "", pin=None,
            days=_days(form.get("expires_days", DEFAULT_DAYS)), replace=form.get("replace") == "on",
        )

    def keypad_page(request: Request) -> Response:
        signed = console.require(request)
        mrn, issuer = patient_identity(request.query_params)
        purpose = request.query_params.get("purpose", "enrol")
        if purpose not in _PURPOSES or not mrn:
            return console.error_page(request, 400, "Open the keypad from a patient's page.")
        return console.render(
            request, "keypad.html", signed=signed, mrn=mrn, issuer=issuer or "", purpose=purpose, error="",
            expires_days=_days(request.query_params.get("expires_days", DEFAULT_DAYS)),
            replace=request.query_params.get("replace") == "on",
        )

    def keypad(request: Request) -> Response:
        """The patient's PIN, typed twice: enrol with it, or reset the PIN of the grant."""
        signed = console.require(request)
        form = console.form(request, signed.session)
        service = enrolment(request)
        if isinstance(service, Response):
            return service
        mrn, issuer_or_none = patient_identity(form)
        issuer = issuer_or_none or ""
        purpose = str(form.get("purpose", "enrol"))
        days = _days(form.get("expires_days", DEFAULT_DAYS))
        replace = form.get("replace") == "on"
        pin, again = str(form.get("pin", ""))[:256], str(form.get("pin_again", ""))[:256]
        error = ""
        if purpose not in _PURPOSES or not mrn:
            return console.error_page(request, 400, "Open the keypad from a patient's page.")
        if pin != again:
            error = "The two PINs are not the same. Please type your PIN again."
        else:
            try:
                check_pin(pin)
            except PinPolicyError as exc:
                error = f"{exc}."
        if error:
            return console.render(
                request, "keypad.html", signed=signed, status=400, mrn=mrn, issuer=issuer, purpose=purpose,
                error=error, expires_days=days, replace=replace,
            )
        if purpose == "enrol":
            return issue(request, signed, service, mrn=mrn, issuer=issuer, pin=pin, days=days, replace=replace)
        try:
            found = service.reset_pin(mrn, issuer=issuer, pin=pin)
        except NotEnrolled:
            console.flash(signed.session, "This patient is not enrolled.", kind="error")
            return back(request, mrn, issuer)
        except GrantApiError as exc:
            console.flash(signed.session, f"The PIN was not reset: {exc}", kind="error")
            return back(request, mrn, issuer)
        console.record(signed, StaffAction.PIN_RESET, patient_id=mrn, issuer=issuer, detail=f"grant {found.grant_id}")
        console.flash(signed.session, "The new PIN is set; the access code stays the same.")
        return back(request, mrn, issuer)

    def enrolled(request: Request) -> Response:
        """The access code, shown once; afterwards only the sheet can be printed again."""
        signed = console.require(request)
        ticket_id = request.path_params["ticket"]
        ticket = console.ticket(signed.session, ticket_id)
        if ticket is None:
            return console.error_page(request, 404, "This enrolment result is no longer available.")
        show = not ticket["shown"]
        ticket["shown"] = True
        return console.render(
            request, "enrolled.html", signed=signed, ticket_id=ticket_id, ticket=ticket, show_code=show,
            portal_url=console.settings.portal_url,
        )

    def sheet(request: Request) -> Response:
        signed = console.require(request)
        ticket = console.ticket(signed.session, request.path_params["ticket"])
        if ticket is None:
            return console.error_page(request, 404, "This code sheet is no longer available.")
        data = code_sheet_pdf(
            access_code_display=ticket["code"],
            patient_label=ticket["label"],
            expires=dt.datetime.fromtimestamp(ticket["expires"], dt.UTC),
            release_delay_hours=console.settings.release_delay_hours,
            portal_url=console.settings.portal_url,
            pin_later=bool(ticket.get("pin_later")),
        )
        console.record(signed, StaffAction.CODE_SHEET, patient_id=ticket["mrn"], issuer=ticket["issuer"], detail=f"grant {ticket['grant_id']}")
        return Response(
            data,
            media_type="application/pdf",
            headers={"content-disposition": f'attachment; filename="code-sheet-{ticket["grant_id"]}.pdf"'},
        )

    def done(request: Request) -> Response:
        signed = console.require(request)
        console.form(request, signed.session)
        ticket = console.ticket(signed.session, request.path_params["ticket"])
        console.drop_ticket(signed.session, request.path_params["ticket"])
        if ticket is None:
            return console.redirect(request, "/patients")
        return back(request, ticket["mrn"], ticket["issuer"])

    def revoke(request: Request) -> Response:
        signed = console.require(request, admin=True)
        form = console.form(request, signed.session)
        service = enrolment(request)
        if isinstance(service, Response):
            return service
        mrn, issuer_or_none = patient_identity(form)
        issuer = issuer_or_none or ""
        if form.get("confirm") != "on":
            console.flash(signed.session, "Tick the confirmation to revoke the grant.", kind="error")
            return back(request, mrn, issuer)
        try:
            count = service.revoke(mrn, issuer=issuer)
        except NotEnrolled:
            console.flash(signed.session, "This patient is not enrolled.", kind="error")
            return back(request, mrn, issuer)
        except GrantApiError as exc:
            console.flash(signed.session, f"The grant was not revoked: {exc}", kind="error")
            return back(request, mrn, issuer)
        console.record(signed, StaffAction.REVOKE, patient_id=mrn, issuer=issuer, detail=f"{count} grant(s) revoked")
        console.flash(signed.session, f"Revoked {count} grant(s): the access code no longer works.")
        return back(request, mrn, issuer)

    return [
        Route("/patient/enrol", enrol_later, methods=["POST"]),
        Route("/patient/keypad", keypad_page, methods=["GET"]),
        Route("/patient/keypad", keypad, methods=["POST"]),
        Route("/patient/revoke", revoke, methods=["POST"]),
        Route("/enrolled/{ticket}", enrolled, methods=["GET"]),
        Route("/enrolled/{ticket}/done", done, methods=["POST"]),
        Route("/sheet/{ticket}", sheet, methods=["GET"]),
    ]
