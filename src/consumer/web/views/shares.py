"""Shares for the care team (DESIGN §4): pick exams, name the recipient, choose an expiry; the
share's own code and PIN are shown once (the page is no-store, nothing keeps them) with a
printable PDF sheet; the list shows each share's last use, and extends or revokes it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from consumer.self_service import SelfExam, SelfGrant, SelfServiceError, SessionEnded
from consumer.web.formatting import format_date, format_moment, parse_day_end
from consumer.web.messages import CATALOGUE
from consumer.web.pdf import Line, text_pdf
from consumer.web.records import describe
from consumer.web.state import Portal, SignedIn
from consumer.web.views.common import blocking, error_page, guarded

__all__ = ["routes"]

MAX_LABEL: Final = 120
NOTICES: Final = {"revoked": "notice_share_revoked", "extended": "notice_share_extended"}


def _shareable(portal: Portal, who: SignedIn, grant: SelfGrant) -> list[SelfExam]:
    return [e for e in grant.exams if e.released and portal.in_scope(who, e.study_uid)]


def _limits(portal: Portal, grant: SelfGrant) -> tuple[str, str, str]:
    """(earliest, default, latest) expiry dates for the form, as YYYY-MM-DD."""
    today = portal.clock().astimezone(UTC).date()
    latest = grant.expires.astimezone(UTC).date() if grant.expires else today + timedelta(days=3650)
    default = min(today + timedelta(days=portal.settings.share_days), latest)
    return today.isoformat(), default.isoformat(), latest.isoformat()


def share_sheet(locale: str, *, label: str, code: str, pin: str, expires: datetime | None, exams: list[str]) -> bytes:
    """The printable sheet of a new share (its code and PIN; the page that offers it is no-store)."""
    _ = CATALOGUE.gettext(locale)
    lines = [
        Line(_("sheet_title"), size=18, bold=True),
        Line(_("sheet_for", label=label), size=13, gap=14),
        Line(_("sheet_code"), size=11, gap=22),
        Line(code, size=26, bold=True, gap=8),
        Line(_("sheet_pin"), size=11, gap=16),
        Line(pin, size=26, bold=True, gap=8),
        Line(_("sheet_expires", date=format_moment(expires)), size=12, gap=20),
        Line(_("sheet_exams"), size=12, bold=True, gap=16),
        *[Line(f"- {title}", size=11, gap=4) for title in exams],
        Line(_("sheet_how"), size=10, gap=22),
        Line(_("sheet_keep"), size=10, gap=6),
    ]
    return text_pdf(lines, title=_("sheet_title"))


def routes(portal: Portal) -> list[BaseRoute]:
    async def listing(request: Request, who: SignedIn) -> Response:
        def load() -> tuple[SelfGrant, list]:  # type: ignore[type-arg]
            token = portal.token(who)
            return portal.backend.grant(token), portal.backend.shares(token)

        grant, shares = await blocking(load)
        titles = {e.study_uid: describe(e.title) or e.study_uid for e in grant.exams}
        earliest, _default, latest = _limits(portal, grant)
        now = portal.clock()
        return portal.render(
            request,
            "shares.html",
            signed_in=who,
            csrf=who.csrf,
            shares=shares,
            titles=titles,
            now=now,
            earliest=earliest,
            latest=latest,
            moment=format_moment,
            notice=NOTICES.get(request.query_params.get("m", ""), ""),
        )

    async def new_form(request: Request, who: SignedIn, *, status: int = 200, error: str = "", chosen: list[str] | None = None, label: str = "", expires: str = "") -> Response:  # fmt: skip
        grant = await blocking(lambda: portal.backend.grant(portal.token(who)))
        earliest, default, latest = _limits(portal, grant)
        picked = chosen if chosen is not None else request.query_params.getlist("study")
        return portal.render(
            request,
            "share_new.html",
            status=status,
            signed_in=who,
            csrf=who.csrf,
            exams=_shareable(portal, who, grant),
            picked=set(picked),
            label=label,
            expires=expires or default,
            earliest=earliest,
            latest=latest,
            error=error,
            format_date=format_date,
            describe=describe,
        )

    async def new(request: Request, who: SignedIn) -> Response:
        return await new_form(request, who)

    async def create(request: Request, who: SignedIn) -> Response:
        form = await request.form()
        studies = [s for s in form.getlist("study") if isinstance(s, str)]
        label = str(form.get("label") or "").strip()
        expires_text = str(form.get("expires") or "")
        expires = parse_day_end(expires_text)

        async def again(error: str) -> Response:
            return await new_form(request, who, status=400, error=error, chosen=studies, label=label[:MAX_LABEL], expires=expires_text)

        if not studies:
            return await again("error_share_no_exam")
        if not label or len(label) > MAX_LABEL:
            return await again("error_share_label")
        if expires is None or expires <= portal.clock():
            return await again("error_share_expiry")

        def make():  # type: ignore[no-untyped-def]
            token = portal.token(who)
            grant = portal.backend.grant(token)
            allowed = {e.study_uid: e for e in _shareable(portal, who, grant)}
            chosen = [s for s in dict.fromkeys(studies) if s in allowed]
            if not chosen:
                return None, [], grant
            if grant.expires is not None and expires > grant.expires:
                clamp = grant.expires
            else:
                clamp = expires
            made = portal.backend.create_share(token, label=label, study_uids=chosen, expires=clamp)
            return made, [describe(allowed[s].title) or s for s in chosen], grant

        try:
            made, titles, _grant = await blocking(make)
        except SessionEnded:
            raise
        except SelfServiceError as exc:
            if exc.status == 400:
                return await again("error_share_refused")
            raise
        if made is None:
            return await again("error_share_no_exam")
        sheet = share_sheet(
            portal.locale(request), label=made.share.label or label, code=made.access_code_display, pin=made.pin,
            expires=made.share.expires, exams=titles,
        )  # fmt: skip
        return portal.render(
            request,
            "share_created.html",
            signed_in=who,
            csrf=who.csrf,
            share=made.share,
            label=made.share.label or label,
            code=made.access_code_display,
            pin=made.pin,
            titles=titles,
            expires=format_moment(made.share.expires),
            sheet="data:application/pdf;base64," + base64.b64encode(sheet).decode("ascii"),
        )

    async def extend(request: Request, who: SignedIn) -> Response:
        form = await request.form()
        expires = parse_day_end(str(form.get("expires") or ""))
        if expires is None or expires <= portal.clock():
            return error_page(portal, request, "error_share_expiry", status=400, who=who)
        grant_id = request.path_params["grant_id"]
        await blocking(lambda: portal.backend.extend_share(portal.token(who), grant_id, expires=expires))
        return portal.redirect(request, "shares", {"m": "extended"})

    async def revoke(request: Request, who: SignedIn) -> Response:
        grant_id = request.path_params["grant_id"]
        await blocking(lambda: portal.backend.revoke_share(portal.token(who), grant_id))
        return portal.redirect(request, "shares", {"m": "revoked"})

    return [
        Route("/shares", guarded(portal, listing, owner_only=True), methods=["GET"], name="shares"),
        Route("/shares", guarded(portal, create, owner_only=True), methods=["POST"], name="share_create"),
        Route("/shares/new", guarded(portal, new, owner_only=True), methods=["GET"], name="share_new"),
        Route("/shares/{grant_id}/extend", guarded(portal, extend, owner_only=True), methods=["POST"], name="share_extend"),
        Route("/shares/{grant_id}/revoke", guarded(portal, revoke, owner_only=True), methods=["POST"], name="share_revoke"),
    ]
