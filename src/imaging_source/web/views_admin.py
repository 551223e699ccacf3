"""The audit trail (staff actions from the console's table, gated retrievals from the consent
gate's JSON-lines log, read a page at a time) and, for administrators, staff management."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imaging_source.web.actions import StaffAction
from imaging_source.web.context import Console
from imaging_source.web.retrievals import read_page
from imaging_source.web.staff import StaffExists, StaffPolicyError, StaffRole, UnknownStaff

__all__ = ["admin_routes"]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def admin_routes(console: Console) -> list[BaseRoute]:
    def audit(request: Request) -> Response:
        signed = console.require(request)
        params = request.query_params
        patient = params.get("patient", "").strip()[:64]
        staff = params.get("staff", "").strip()[:64]
        actions = console.log.page(before_id=_int(params.get("before")), limit=50, patient_id=patient or None, staff=staff or None)
        retrievals = read_page(console.settings.audit_path(), before=_int(params.get("rbefore")), limit=50)
        # Whose grant a retrieval used, where the grant is one of this Edge Server's enrolments.
        owners = {g: console.book_owner(g) for g in {r.who for r in retrievals.records}}
        return console.render(
            request, "audit.html", signed=signed, actions=actions, retrievals=retrievals, owners=owners,
            patient=patient, staff=staff, next_before=actions[-1].id if len(actions) == 50 else None,
        )

    def staff_page(request: Request) -> Response:
        signed = console.require(request, admin=True)
        return console.render(request, "staff.html", signed=signed, users=console.staff.list(), roles=list(StaffRole), now=console.clock())

    def staff_add(request: Request) -> Response:
        signed = console.require(request, admin=True)
        form = console.form(request, signed.session)
        username = str(form.get("username", "")).strip()[:64]
        password, again = str(form.get("password", ""))[:256], str(form.get("password_again", ""))[:256]
        try:
            role = StaffRole(str(form.get("role", "user")))
            if password != again:
                raise StaffPolicyError("the two passwords differ")
            console.staff.add(username, password, role=role)
        except (StaffPolicyError, StaffExists, ValueError) as exc:
            console.flash(signed.session, f"Not added: {exc}.", kind="error")
            return console.redirect(request, "/staff")
        console.record(signed, StaffAction.STAFF_ADD, detail=f"{username} ({role})")
        console.flash(signed.session, f"Added {username} ({role}).")
        return console.redirect(request, "/staff")

    def staff_switch(request: Request) -> Response:
        signed = console.require(request, admin=True)
        form = console.form(request, signed.session)
        username = str(form.get("username", ""))[:64]
        disable = form.get("disabled") == "on"
        if disable and username == signed.user.username:
            console.flash(signed.session, "You cannot disable your own account.", kind="error")
            return console.redirect(request, "/staff")
        try:
            console.staff.set_disabled(username, disabled=disable)
        except UnknownStaff:
            return console.error_page(request, 404, "No such staff user.")
        if disable:
            console.sessions.drop_where(lambda s: s.data.get("staff") == username)
        console.record(signed, StaffAction.STAFF_DISABLE if disable else StaffAction.STAFF_ENABLE, detail=username)
        console.flash(signed.session, f"{username} is {'disabled' if disable else 'enabled'}.")
        return console.redirect(request, "/staff")

    return [
        Route("/audit", audit, methods=["GET"]),
        Route("/staff", staff_page, methods=["GET"]),
        Route("/staff/add", staff_add, methods=["POST"]),
        Route("/staff/disabled", staff_switch, methods=["POST"]),
    ]
