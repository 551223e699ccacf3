"""The patient portal as an ASGI app (DESIGN §2: a PHR-style web consumer built on the consumer
library), meant to be mounted by the composition root::

    Mount("/portal", app=build_portal_app(PortalSettings(registry_url=..., repository_url=...,
          sources={retrieve_location_uid: rad69_url}, cache_dir=...)))

Every link is generated from the request (``url_for`` and the mount's ``root_path``), so the
app works under any prefix. Security headers (CSP without inline script or style, no framing,
``no-store``) wrap every response; the session and CSRF machinery is :mod:`xds.web`'s.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from consumer.web.backend import NetworkBackend, PortalBackend
from consumer.web.cache import CacheRoot
from consumer.web.settings import PortalSettings
from consumer.web.state import Portal
from consumer.web.views import auth, exam, images, jacket, shares
from xds.web import SecurityHeaders, template_environment

__all__ = ["build_portal_app"]

HERE: Final = Path(__file__).resolve().parent
def build_portal_app(settings: PortalSettings, *, backend: PortalBackend | None = None) -> Starlette:
    """The portal app; ``backend`` stands in for the affinity domain in tests.

    ``app.state.portal`` is the :class:`consumer.web.state.Portal` (its ``close()`` stops the
    token refresher and deletes the cache tree; the app's lifespan calls it when it is run).
    """
    portal = Portal(
        settings=settings,
        backend=backend or NetworkBackend(settings),
        templates=template_environment(HERE / "templates"),
        cache=CacheRoot(settings.cache_dir),
    )
    routes = [
        *auth.routes(portal),
        *jacket.routes(portal),
        *exam.routes(portal),
        *images.routes(portal),
        *shares.routes(portal),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            portal.close()

    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)], lifespan=lifespan)
    app.state.portal = portal
    return app
