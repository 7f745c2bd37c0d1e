"""Serving the sandbox (``bulkref.serving``): in the foreground (``bulkref sandbox``) or
in a background thread (tests, the benchmark, an embedded ``--sandbox``)."""

from __future__ import annotations

import asyncio
import atexit
import logging
import socket
from collections.abc import Callable
from typing import Any

import uvicorn

from bulkref.sandbox.app import API_ROOT, Gateway, create_app
from bulkref.sandbox.options import SandboxOptions
from bulkref.sandbox.tls import LoopbackCertificate
from bulkref.serving import ServerNotStarted, ServerThread, log_to_stderr, root_url, uvicorn_server
from bulkref.serving import bind as bind_socket
from bulkref.stop_signals import stopping_as_interrupt

log = logging.getLogger("bulkref.sandbox")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0 = any free port); OSError when taken. A deep
    backlog: a benchmark's hundreds of connections at once wait instead of failing."""
    return bind_socket(host, port, backlog=2048)


def _tracking(
    base: type[asyncio.Protocol], transports: dict[tuple[str, int], asyncio.Transport]
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, also filing each connection's transport under the
    client address that the ASGI scope carries: ASGI has no way to close a
    connection without answering, which is what a "reset" fault must do."""

    class Tracking(base):  # type: ignore[valid-type, misc]
        _peer: tuple[str, int] | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            peer = transport.get_extra_info("peername")
            if isinstance(peer, tuple) and len(peer) >= 2:
                self._peer = (str(peer[0]), int(peer[1]))
                transports[self._peer] = transport  # type: ignore[assignment]

        def connection_lost(self, exc: Exception | None) -> None:
            if self._peer is not None:
                transports.pop(self._peer, None)
            super().connection_lost(exc)

    return Tracking


def _server(app: Gateway, certificate: LoopbackCertificate | None = None) -> uvicorn.Server:
    # https: what MSAL needs to use the sandbox as its authority.
    cert, key = (certificate.cert_file, certificate.key_file) if certificate is not None else (None, None)
    return uvicorn_server(app, cert, key, lambda base: _tracking(base, app.sandbox.transports))


def _address(sock: socket.socket) -> tuple[str, int]:
    host, port = sock.getsockname()[:2]
    return str(host), int(port)


class SandboxServer:
    """A sandbox serving from a background thread until ``stop()``.

    >>> with SandboxServer(SandboxOptions(port=0)) as server:
    ...     httpx.get(server.url, headers={"Authorization": "Bearer x"})
    """

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.app: Gateway | None = None
        self._running: ServerThread | None = None
        self._sock: socket.socket | None = None
        # With options.tls: the throwaway CA and certificate, made at start (see tls.py).
        self.certificate: LoopbackCertificate | None = None
        self.host = options.host
        self.port = options.port

    @property
    def root(self) -> str:
        """``http://127.0.0.1:PORT`` (https with ``tls``): where the admin routes are."""
        return root_url(self.host, self.port, self.options.tls)

    @property
    def ca_file(self) -> str | None:
        """With ``tls``: the PEM file of the certificate authority that clients must trust."""
        return str(self.certificate.ca_file) if self.certificate is not None else None

    @property
    def admin_token(self) -> str:
        """A token the admin routes take under ``require_issued_tokens`` (issued in-process)."""
        assert self.app is not None, "start() the sandbox first"
        return self.app.sandbox.identity.operator_token(self.root)

    @property
    def url(self) -> str:
        """The referrals collection, ``http://127.0.0.1:PORT/v1.0/engagements/referrals``."""
        return self.root + API_ROOT

    def start(self, timeout: float = 10.0) -> SandboxServer:
        self._sock = bind(self.options.host, self.options.port)
        self.host, self.port = _address(self._sock)
        self.app = create_app(self.options)
        if self.options.tls:
            self.certificate = LoopbackCertificate.create()
        self._running = ServerThread(_server(self.app, self.certificate), self._sock, f"sandbox-{self.port}")
        try:
            self._running.start(timeout)
        except ServerNotStarted as e:
            self.stop()
            raise RuntimeError(
                "the sandbox did not start in time"
                if e.timed_out
                else f"the sandbox did not start: {e.reason}"
            ) from None
        # Stopped at exit when nobody calls stop(): a server thread still running
        # while the interpreter shuts down can crash it, and the store and the TLS
        # folder would not be closed and removed.
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self._running is not None:
            self._running.stop()
            self._running = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self.app is not None:
            self.app.sandbox.store.close()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.certificate is not None:
            self.certificate.remove()
            self.certificate = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve(
    options: SandboxOptions,
    ready: Callable[[str, str], None] | None = None,
    certificate: LoopbackCertificate | None = None,
) -> None:
    """Serve in the foreground until interrupted (Ctrl-C, SIGTERM).

    Raises OSError when the address cannot be bound. ``ready(url, state)`` is
    called once the port is bound, with the referrals URL and ``memory`` or
    the database path. With ``options.tls``, ``certificate`` is the one to
    serve (the caller tells its CA file to the user); None makes one for this run.
    """
    with stopping_as_interrupt():  # from the start: a SIGTERM right after ready() too
        _serve(options, ready, certificate)


def _serve(
    options: SandboxOptions,
    ready: Callable[[str, str], None] | None,
    certificate: LoopbackCertificate | None,
) -> None:
    made = LoopbackCertificate.create() if options.tls and certificate is None else None
    sock = bind(options.host, options.port)
    try:
        app = create_app(options)
        try:
            server = _server(app, (certificate or made) if options.tls else None)
            if ready is not None:
                ready(root_url(*_address(sock), options.tls) + API_ROOT, app.sandbox.store.description)
            log_to_stderr(log)  # one line per request, unless the embedding program logs already
            server.run(sockets=[sock])
        finally:
            app.sandbox.store.close()
    finally:
        sock.close()
        if made is not None:
            made.remove()
