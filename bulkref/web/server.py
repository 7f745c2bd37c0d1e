"""Serving the web app with uvicorn: in the foreground (``bulkref serve``) or from
a background thread (the browser tests)."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from bulkref.web.app import Settings, create_app
from bulkref.web.security import WILDCARD_HOSTS

log = logging.getLogger("bulkref.web")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free one), bound before uvicorn starts so
    that the URL printed is the one served and a port in use is reported first."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(host: str, port: int, token: str | None = None, https: bool = False) -> str:
    # Every interface has no name of its own: the machine's, which allowed_host accepts then.
    shown = socket.gethostname() if host in WILDCARD_HOSTS else host
    scheme = "https" if https else "http"
    root = f"{scheme}://[{shown}]:{port}" if ":" in shown else f"{scheme}://{shown}:{port}"
    return f"{root}/?token={token}" if token else f"{root}/"


def _uvicorn(app: Any, certfile: Path | None = None, keyfile: Path | None = None) -> uvicorn.Server:
    tls: dict[str, Any] = {}
    if certfile is not None and keyfile is not None:
        tls = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}
    config = uvicorn.Config(
        app,
        **tls,
        # No X-Forwarded-* header is trusted (a proxy's client address is not needed, and
        # the scheme and host people use come from --public-url instead).
        proxy_headers=False,
        log_config=None,
        access_log=False,  # uvicorn would log the query string, and with it the access token
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=3,
    )
    return uvicorn.Server(config)


def stop_jobs(app: Any, timeout: float = 30) -> None:
    """Stop every apply as Ctrl-C does (calls in flight finish, journal and results
    written) and wait for them, so that stopping the server never cuts a run short."""
    app.web.jobs.stop_all()
    app.web.jobs.wait(timeout)


def log_to_stderr() -> None:
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def serve(
    settings: Settings,
    host: str,
    sock: socket.socket,
    certfile: Path | None = None,
    keyfile: Path | None = None,
) -> None:
    """Serve in the foreground until Ctrl-C; the applies running then are stopped cleanly."""
    app = create_app(settings)
    log_to_stderr()
    try:
        _uvicorn(app, certfile, keyfile).run(sockets=[sock])
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
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
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
        self._server = _uvicorn(self.app, self.certfile, self.keyfile)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="bulkref-web", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the web app did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self.app is not None:
            stop_jobs(self.app)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
