"""The jacket: every exam of the signed-in grant, released ones with their reports, the others
as "available on <date>" (the physician sees them first)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from consumer.web.formatting import format_moment
from consumer.web.records import load_jacket
from consumer.web.state import Portal, SignedIn
from consumer.web.views.common import blocking, guarded

__all__ = ["routes"]


def routes(portal: Portal) -> list[BaseRoute]:
    async def jacket(request: Request, who: SignedIn) -> Response:
        grant, exams = await blocking(load_jacket, portal, who)
        return portal.render(
            request,
            "jacket.html",
            signed_in=who,
            csrf=who.csrf,
            grant=grant,
            exams=exams,
            released=[e for e in exams if e.released],
            pending=[e for e in exams if not e.released],
            moment=format_moment,
        )

    return [Route("/jacket", guarded(portal, jacket), methods=["GET"], name="jacket")]
