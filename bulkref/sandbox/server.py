"""Serving the sandbox with uvicorn: in the foreground (``bulkref sandbox``) or
in a background thread (tests, the benchmark, an embedded ``--sandbox``)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import uvicorn

from bulkref.sandbox.app import API_ROOT, Gateway, create_app
from bulkref.sandbox.options import SandboxOptions
from bulkref.sandbox.tls import LoopbackCertificate

log = logging.getLogger("bulkref.sandbox")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0 = any free port); OSError when taken.

    Bound here rather than by uvicorn so that the port is known (and a port in
    use reported) before the server starts, and connections made before it
    is ready wait in the backlog instead of failing.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


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
    tls: dict[str, Any] = {}
    if certificate is not None:  # https: what MSAL needs to use the sandbox as its authority
        tls = {"ssl_certfile": str(certificate.cert_file), "ssl_keyfile": str(certificate.key_file)}
    config = uvicorn.Config(
        app,
        **tls,
        log_config=None,  # the sandbox logs its own one line per request
        access_log=False,
        lifespan="off",
        proxy_headers=False,  # scope["client"] must stay the real peer (see _tracking)
        server_header=False,
        timeout_graceful_shutdown=3,
    )
    config.load()
    config.http_protocol_class = _tracking(config.http_protocol_class, app.sandbox.transports)
    return uvicorn.Server(config)


def _address(sock: socket.socket) -> tuple[str, int]:
    host, port = sock.getsockname()[:2]
    return str(host), int(port)


def root_url(host: str, port: int, tls: bool = False) -> str:
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


class SandboxServer:
    """A sandbox serving from a background thread until ``stop()``.

    >>> with SandboxServer(SandboxOptions(port=0)) as server:
    ...     httpx.get(server.url, headers={"Authorization": "Bearer x"})
    """

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.app: Gateway | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
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
        self._server = _server(self.app, self.certificate)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                assert self._server is not None and self._sock is not None
                self._server.run(sockets=[self._sock])
            except BaseException as exc:  # reported to start() below
                failure.append(exc)

        self._thread = threading.Thread(target=run, name=f"sandbox-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if failure or not self._thread.is_alive():
                self._cleanup()
                raise RuntimeError(f"the sandbox did not start: {failure[0] if failure else 'thread ended'}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sandbox did not start in time")
            time.sleep(0.005)
        # Stopped at exit when nobody calls stop(): a server thread still running
        # while the interpreter shuts down can crash it, and the store and the TLS
        # folder would not be closed and removed.
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
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


def log_to_stderr() -> None:
    """One line per request on stderr, unless the embedding program logs already."""
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """SIGTERM (and Ctrl-Break on Windows) stop like Ctrl-C. uvicorn stops
    gracefully on them, then raises the signal again for the handler that was in
    place before it ran; the default one would end the process before the
    ``finally`` clauses that close the store and remove the TLS folder."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = [signal.SIGTERM] + ([signal.SIGBREAK] if hasattr(signal, "SIGBREAK") else [])
    previous = {name: signal.signal(name, _interrupt) for name in names}
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(name, handler)


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
    with _stop_signals_interrupt():  # from the start: a SIGTERM right after ready() too
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
            log_to_stderr()
            server.run(sockets=[sock])
        finally:
            app.sandbox.store.close()
    finally:
        sock.close()
        if made is not None:
            made.remove()
