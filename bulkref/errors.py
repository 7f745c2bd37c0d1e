"""Every error a bulkref user can meet, in one place. Each carries the exit code of
the command-line contract (docs/cli.md): 2 when a command could not do its job,
1 when it worked but something it was asked for is not there.

::

    BulkrefError                   exit 2 unless said otherwise
    ├── UnusableFile               the input is not a readable spreadsheet (or is not there)
    │   └── NoSuchSheet            the workbook has no sheet by the name asked for
    ├── UnreadablePlan             a saved plan (plan --out) that is not one
    ├── UnwritableOutput           an output file cannot or should not be written
    ├── BadOption                  a command-line value that cannot be used (a size, a locale)
    ├── NoTerminal                 a question to ask and no terminal to ask it (add --yes)
    ├── DataDirError               bulkref's own data folder (BULKREF_HOME) cannot be used
    ├── MappingError               the mapping file cannot be used
    ├── TaxonomyError              the taxonomy file (solution areas and plays) cannot be used
    ├── BadTarget                  the target flags or URL cannot be used
    ├── NoCredentials              no token for a real service
    ├── AuthError                  signing in could not be done
    │   ├── BadSettings            the sign-in settings cannot be used
    │   ├── SignInRefused          the sign-in service said no
    │   └── NotSignedIn            no usable sign-in
    ├── ApiError                   a call the service refused or that could not be made
    │   ├── Unauthenticated        401
    │   ├── Forbidden              403
    │   ├── NotFound               404
    │   ├── Conflict               409
    │   │   └── PreconditionFailed 412: the If-Match eTag is stale
    │   ├── InvalidRequest         400, 413, 415, 422
    │   ├── Throttled              429
    │   ├── ServerError            5xx
    │   │   └── ServiceUnavailable 503
    │   ├── Unreachable            no answer at all
    │   └── IncompleteAnswer       a success that lacks what it must carry (a create's id)
    ├── JournalError               the apply journal cannot be read or written
    │   └── JournalInUse           another apply holds the journal
    ├── StalePlan                  what the plan was made against changed (ConflictError, its old name)
    └── ReferralNotFound           ``bulkref get`` of an unknown id (exit 1)

The modules that raise them import them from here; the public API re-exports
every one (``bulkref.ApiError`` and so on). Code decides on the class, never on
the message, which is for people.
"""

from __future__ import annotations

from typing import Any


class BulkrefError(Exception):
    """Something bulkref could not do, said in one plain sentence."""

    exit_code = 2


class UnusableFile(BulkrefError):
    """The input cannot be read as a spreadsheet at all (exit 2)."""


class NoSuchSheet(UnusableFile):
    """The workbook has no sheet by the name asked for (--sheet, a mapping's [source] sheet)."""


class UnreadablePlan(BulkrefError):
    """A saved plan (``bulkref plan --out``) that cannot be read as one (exit 2)."""


class UnwritableOutput(BulkrefError):
    """An output cannot or should not be written (exit 2): it exists and --force was not
    given, its folder is missing or read-only, its suffix is not one bulkref writes, or
    the disk is full. Said before anything is sent wherever that can be known."""


class BadOption(BulkrefError):
    """A command-line value that cannot be used (a size, a locale), naming the option."""


class NoTerminal(BulkrefError):
    """A command must ask before it writes and has no terminal to ask on: add --yes."""


class DataDirError(BulkrefError):
    """bulkref's own data folder (BULKREF_HOME: the embedded sandbox's state, apply's
    lock) cannot be used: the sentence names it and how to choose another."""


class MappingError(BulkrefError):
    """The mapping file cannot be used (exit 2): each problem names its line."""


class TaxonomyError(BulkrefError):
    """The taxonomy file (Services co-sell solution areas and plays) cannot be used
    (exit 2): the sentence names the file, the line and what is wrong."""


class BadTarget(BulkrefError):
    """The target flags or URL cannot be used (exit 2)."""


class NoCredentials(BulkrefError):
    """No token for a real service (exit 2)."""


class AuthError(BulkrefError):
    """Signing in could not be done (exit 2)."""


class BadSettings(AuthError):
    """The sign-in settings (flags, environment) cannot be used."""


class SignInRefused(AuthError):
    """The sign-in service refused the credentials."""


class NotSignedIn(AuthError):
    """No usable sign-in: never signed in, signed out, or the refresh was refused."""


class ApiError(BulkrefError):
    """A call the service refused or that could not be made.

    ``code``, ``message`` and ``target`` are the service's ``error`` object
    (None when the answer was not JSON); decide on ``code`` and ``status``,
    never on the message. ``retry_after`` is the wait the service asked for, in
    seconds, when it said one. Exit code 2 when it ends a command (the command
    could not do its job); the executor records per-row failures instead.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        target: str | None = None,
        service_message: str | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.target = target
        self.service_message = service_message
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.method = method
        self.url = url
        self.retry_after = retry_after


class Unauthenticated(ApiError):
    """401: the token is missing, invalid or expired (exit 2)."""


class Forbidden(ApiError):
    """403: the user lacks a Referrals role, or conditional access wants more claims."""


class NotFound(ApiError):
    """404 ``itemNotFound``."""


class Conflict(ApiError):
    """409: the referral changed or clashes with another."""


class PreconditionFailed(Conflict):
    """412, or ``preconditionFailed`` / ``resourceModified``: the If-Match eTag is stale."""


class InvalidRequest(ApiError):
    """400, 413, 415, 422: the request itself is wrong; ``target`` names the field."""


class Throttled(ApiError):
    """429: too many requests; ``retry_after`` says how long to wait."""


class ServerError(ApiError):
    """5xx: the service failed."""


class ServiceUnavailable(ServerError):
    """503 ``serviceNotAvailable``: retry later, after ``retry_after`` when given."""


class Unreachable(ApiError):
    """No answer at all: connection refused or reset, DNS, time-out (exit 2).

    ``maybe_delivered`` is False when the request certainly never reached the
    service (it could not connect) and True when it was sent and the answer
    was lost: what a write must know before it tries again.
    """

    def __init__(self, message: str, *, maybe_delivered: bool, attempts: int, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.maybe_delivered = maybe_delivered
        self.attempts = attempts


class IncompleteAnswer(ApiError):
    """A 2xx that lacks what the call must return (a create without the id of what it
    made), or a step whose earlier step's answer lacked what it carries over."""


class JournalError(BulkrefError):
    """The apply journal cannot be read or written (corrupt, disk full): exit 2,
    in one sentence naming the journal and what to do."""


class JournalInUse(JournalError):
    """Another bulkref apply holds the journal: one run at a time may use it."""


class StalePlan(BulkrefError):
    """What a plan was made against changed: the referral in Partner Center (a row of
    an apply, which then fails alone), or for a saved plan the input, the mapping or
    the target, or the plan was made --offline. Plan again and review."""


#: StalePlan's first name, kept so that code catching it goes on working.
ConflictError = StalePlan


class ReferralNotFound(BulkrefError):
    """``bulkref get`` of an id Partner Center does not know. Exit 1, as for a
    call that failed: the command worked, the referral is not there."""

    exit_code = 1
