"""Serving an ASGI app with uvicorn, in the foreground or from a background thread: the
web app (``bulkref.web.server``) and the sandbox (``bulkref.sandbox.server``) both.

Process plumbing only, knowing nothing of Partner Center, referrals or the
client: the sandbox, which imports nothing else of bulkref, may use it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

__all__ = ["ServerNotStarted", "ServerThread", "bind", "log_to_stderr", "root_url", "uvicorn_server"]


def bind(host: str, port: int, backlog: int = 128) -> socket.socket:
    """A listening socket on host:port (0: any free port); OSError when it cannot be had.

    Bound here rather than by uvicorn so that the port is known (and a port in use
    reported) before the server starts, the URL printed is the one served, and
    connections made before the server is ready wait in the backlog instead of failing.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def root_url(host: str, port: int, tls: bool = False) -> str:
    """``http://host:port`` (https with ``tls``), an IPv6 address in brackets."""
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


Protocol = type[asyncio.Protocol]


def uvicorn_server(
    app: Any,
    certfile: Path | str | None = None,
    keyfile: Path | str | None = None,
    http_protocol: Callable[[Protocol], Protocol] | None = None,
) -> uvicorn.Server:
    """A uvicorn server for ``app``, https with ``certfile`` and ``keyfile``. ``http_protocol``
    makes the HTTP protocol class to use of uvicorn's own."""
    tls: dict[str, Any] = {}
    if certfile is not None and keyfile is not None:
        tls = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}
    config = uvicorn.Config(
        app,
        **tls,
        # No X-Forwarded-* header is trusted: the web app takes the scheme and host people
        # use from --public-url, and the sandbox needs scope["client"] to be the real peer.
        proxy_headers=False,
        log_config=None,  # each app logs what it wants to, its own way
        access_log=False,  # uvicorn would log the query string, and with it the web app's access token
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=3,
    )
    if http_protocol is not None:
        config.load()
        config.http_protocol_class = http_protocol(config.http_protocol_class)
    return uvicorn.Server(config)


class ServerNotStarted(RuntimeError):
    """The server's thread ended first (``reason``: the error it ended with), or the server
    did not start in time (``timed_out``)."""

    def __init__(self, reason: str, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.timed_out = reason, timed_out


class ServerThread:
    """``server`` serving ``sock`` from a background thread until ``stop()``."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket, name: str) -> None:
        self.server, self.sock, self.name = server, sock, name
        self._thread: threading.Thread | None = None
        self._failure: list[BaseException] = []

    def start(self, timeout: float = 10.0) -> None:
        """Serve, once the server has started; ``ServerNotStarted`` when its thread ended
        first (its reason: the error it ended with) or ``timeout`` passed. The caller stops
        it then."""
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if self._failure or not self._thread.is_alive():
                raise ServerNotStarted(str(self._failure[0]) if self._failure else "thread ended")
            if time.monotonic() > deadline:
                raise ServerNotStarted("not started in time", timed_out=True)
            time.sleep(0.005)

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:  # reported to start()
            self._failure.append(exc)

    def stop(self) -> None:
        """Stop serving (the requests in flight get a few seconds) and wait for the thread."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def log_to_stderr(log: logging.Logger) -> None:
    """``log``'s lines on stderr with their time, unless the embedding program handles them."""
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
