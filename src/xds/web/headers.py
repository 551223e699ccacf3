"""Security headers for the HTML front ends (OWASP Secure Headers): no framing, no MIME
sniffing, no referrer sent to other sites, a Content-Security-Policy that allows only our own
scripts, styles and images, and ``no-store`` on every page (they show health data).

``Referrer-Policy: same-origin``, not ``no-referrer``: under ``no-referrer`` browsers send
``Origin: null`` with every form post (Fetch standard, "serialize a request origin"), which the
CSRF check must refuse; ``same-origin`` keeps our own posts' origin and still tells other sites
nothing."""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeaders"]

DEFAULT_CSP: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


class SecurityHeaders:
    """ASGI middleware adding the headers to every HTTP response of the wrapped app."""

    def __init__(self, app: ASGIApp, *, csp: str = DEFAULT_CSP, cache: str = "no-store") -> None:
        self.app = app
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-security-policy", csp.encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        self.cache = cache.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                existing = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.headers if n not in existing]
                if b"cache-control" not in existing:
                    extra.append((b"cache-control", self.cache))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
