"""What every view needs: the signed-in guard, CSRF on posts, errors as pages, blocking calls
in worker threads."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from consumer.fetch import FetchError
from consumer.self_service import NotPermitted, SelfServiceError, SessionEnded
from consumer.token import TokenError
from consumer.web.state import Portal, SignedIn
from xds.errors import XdsError
from xds.http.client import SoapConnectionError, SoapProtocolError
from xds.soap.fault import SoapFault
from xds.web import CSRF_FIELD, CsrfError, check_csrf

__all__ = ["Guarded", "blocking", "checked_form", "error_page", "guarded"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Guarded = Callable[[Request, SignedIn], Awaitable[Response]]
#: Failures of the affinity domain's services: shown as "not available right now".
UPSTREAM: Final = (SelfServiceError, TokenError, FetchError, XdsError, SoapConnectionError, SoapProtocolError, SoapFault, OSError)


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking call (HTTP to the registry, files) in a worker thread."""
    return await run_in_threadpool(fn, *args, **kwargs)


def error_page(portal: Portal, request: Request, key: str, *, status: int, who: SignedIn | None = None) -> Response:
    return portal.render(request, "error.html", status=status, message_key=key, signed_in=who, csrf=who.csrf if who else "")


async def checked_form(request: Request, session: Any) -> FormData:
    """The posted form, after the CSRF check (raises :class:`CsrfError`)."""
    form = await request.form()
    check_csrf(request, session, form.get(CSRF_FIELD))
    return form


def guarded(portal: Portal, handler: Guarded, *, owner_only: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a view: signed in or off to the sign-in page; POSTs CSRF-checked; a token the
    registry no longer accepts ends the session; the services' failures become an error page.
    With ``owner_only``, a share's own token (a recipient signed in) may not use the view."""

    async def endpoint(request: Request) -> Response:
        who = portal.signed_in(request)
        if who is None:
            return portal.redirect(request, "signin")
        if owner_only and who.is_share:
            return error_page(portal, request, "error_not_for_shares", status=403, who=who)
        if request.method == "POST":
            try:
                await checked_form(request, who.session)
            except CsrfError:
                return error_page(portal, request, "error_csrf", status=403, who=who)
        try:
            return await handler(request, who)
        except SessionEnded:
            response = portal.redirect(request, "signin", {"m": "ended"})
            portal.end(request, response)
            return response
        except NotPermitted:
            return error_page(portal, request, "error_not_for_shares", status=403, who=who)
        except UPSTREAM as exc:
            log.warning("portal: a service failed: %s: %s", type(exc).__name__, exc)
            return error_page(portal, request, "error_unavailable", status=502, who=who)

    return endpoint
