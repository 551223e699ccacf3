"""What every simulator shares: its ASGI app served by a ServerThread on ``host:port`` (port 0 =
a free one, fixed once started), a spool directory removed at close, and ``with`` support."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Self

from starlette.types import ASGIApp

from xds.http.server import ServerThread

__all__ = ["HostedSimulator"]


class HostedSimulator:
    """Base of the simulators: set ``host``, ``port``, ``_app`` and ``_spool`` in ``__init__``."""

    host: str
    port: int
    _app: ASGIApp
    _spool: Path
    _server: ServerThread | None = None

    def base_url(self, path: str) -> str:
        """``http://host:port`` + ``path`` (an IPv6 host in brackets)."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}{path}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        if self._server is None:
            server = ServerThread(self._app, host=self.host, port=self.port)
            server.start()
            self.port = server.port
            self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._spool, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
