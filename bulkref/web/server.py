"""Serving the web app (``bulkref.serving``): in the foreground (``bulkref serve``) or
from a background thread (the browser tests)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

from bulkref.serving import ServerNotStarted, ServerThread, bind, log_to_stderr, root_url, uvicorn_server
from bulkref.web.app import Settings, create_app
from bulkref.web.security import WILDCARD_HOSTS

__all__ = ["WebServer", "bind", "serve", "stop_jobs", "url_of"]

log = logging.getLogger("bulkref.web")


def url_of(host: str, port: int, token: str | None = None, https: bool = False) -> str:
    # Every interface has no name of its own: the machine's, which allowed_host accepts then.
    root = root_url(socket.gethostname() if host in WILDCARD_HOSTS else host, port, https)
    return f"{root}/?token={token}" if token else f"{root}/"


def stop_jobs(app: Any, timeout: float = 30) -> None:
    """Stop every apply as Ctrl-C does (calls in flight finish, journal and results
    written) and wait for them, so that stopping the server never cuts a run short."""
    app.web.jobs.stop_all()
    app.web.jobs.wait(timeout)


def serve(
    settings: Settings,
    host: str,
    sock: socket.socket,
    certfile: Path | None = None,
    keyfile: Path | None = None,
) -> None:
    """Serve in the foreground until Ctrl-C; the applies running then are stopped cleanly."""
    app = create_app(settings)
    log_to_stderr(log)
    try:
        uvicorn_server(app, certfile, keyfile).run(sockets=[sock])
    finally:
        stop_jobs(app)
        sock.close()


class WebServer:
    """The app served from a background thread until ``stop()`` (tests)."""

    def __init__(
        self,
        settings: Settings,
        host: str = "127.0.0.1",
        certfile: Path | None = None,
        keyfile: Path | None = None,
    ) -> None:
        self.settings, self.host = settings, host
        self.certfile, self.keyfile = certfile, keyfile
        self.app: Any = None
        self._running: ServerThread | None = None
        self._sock: socket.socket | None = None
        self.port = settings.port

    @property
    def url(self) -> str:
        return url_of(self.host, self.port, https=self.certfile is not None).rstrip("/")

    def start(self, timeout: float = 10) -> WebServer:
        self._sock = bind(self.host, self.settings.port)
        self.port = int(self._sock.getsockname()[1])
        self.settings.port = self.port
        self.settings.host = self.host
        self.app = create_app(self.settings)
        server = uvicorn_server(self.app, self.certfile, self.keyfile)
        self._running = ServerThread(server, self._sock, name="bulkref-web")
        try:
            self._running.start(timeout)
        except ServerNotStarted:
            self.stop()
            raise RuntimeError("the web app did not start") from None
        return self

    def stop(self) -> None:
        if self.app is not None:
            stop_jobs(self.app)
        if self._running is not None:
            self._running.stop()
            self._running = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
