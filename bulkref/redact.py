"""One scrubber for every text that came from a server or an exception.

A gateway may echo the ``Authorization`` header in an error's ``message`` or
``target``; a sign-in library may put a refresh token in an exception. Such
text is passed through ``redact`` before it is shown, logged, journaled or
written to a results file, so a token never leaves the process in clear.

Two nets: the secrets this process knows (every bearer token the client
sends, the password and client secret of a sign-in: ``remember`` them), and
patterns that look like credentials whoever they belong to (``Bearer x``,
a JWT, ``access_token=...``, ``"refresh_token": "..."``, ``client_secret``,
``password``).
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"

# Shorter values are not secrets worth the false positives (the sandbox's "sandbox" token is 7).
_MIN_SECRET = 8
_known: set[str] = set()
_lock = threading.Lock()

_PATTERNS = (
    # Authorization: Bearer <token>, and any scheme-less echo of it
    re.compile(r"(?i)\b(bearer|basic)(\s+|%20|\+)[A-Za-z0-9\-._~+/%]+=*"),
    # a JWT (header.payload.signature, base64url): access and id tokens
    re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),
    # key=value and "key": "value" forms of the OAuth fields
    re.compile(
        r"(?i)(\"?\b(?:access_token|refresh_token|id_token|client_secret|password|assertion)\b\"?"
        r"\s*[:=]\s*\"?)([^\"&,;\s}]+)"
    ),
)


def remember(secret: str | None) -> None:
    """Scrub ``secret`` from every text redacted from now on (tokens, passwords)."""
    if secret and len(secret) >= _MIN_SECRET and secret not in _known:
        with _lock:
            _known.add(secret)


def redact(text: object) -> str:
    """``text`` as a string with every known secret and credential-looking value masked."""
    out = text if isinstance(text, str) else str(text)
    for secret in sorted(_known, key=len, reverse=True):  # the longest first: one may contain another
        if secret in out:
            out = out.replace(secret, MASK)
    out = _PATTERNS[0].sub(lambda m: f"{m.group(1)} {MASK}", out)
    out = _PATTERNS[1].sub(MASK, out)
    return _PATTERNS[2].sub(lambda m: f"{m.group(1)}{MASK}", out)


def redact_optional(text: str | None) -> str | None:
    return None if text is None else redact(text)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs each record's message (arguments included) before it is emitted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is logging's own problem to report
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
