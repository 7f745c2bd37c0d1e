"""Applying a plan: HTTP calls, bounded and paced, journaled, never duplicated.

At most ``concurrency`` rows are at work at once (the one limit: the client is
made with as many connections); the steps of one row run in order, step 2 only
after step 1 succeeded and with the fields of its answer. Every call waits on
one shared pacer (bulkref.apply.pacing).

One retry layer: the client's ``RetryPolicy`` retries what certainly did not
reach the service (a 429, a failure to connect) and reads. A write whose answer
was lost (a time-out, a dropped connection, a 5xx after the request went out, a
run killed mid-call) may have been stored, and is never simply sent again:

- A create is *in doubt* (bulkref.apply.doubt). Its row waits, without holding
  one of the ``concurrency`` places, until Partner Center settles it: a listing
  shows it (its answer is taken as the step's: the row goes on), or a listing
  read the consistency window after the loss leaves it out (it is sent again,
  with the same ``MS-RequestId``, at most ``retry.attempts`` sends in all). A
  row still in doubt when the rest of the run is done and ``wait_in_doubt``
  seconds have passed ends ``in_doubt``: kept in the journal and in the target's
  record of doubts (bulkref.plan.doubts), so that the next run, whatever its
  journal, looks it up first. Nothing here depends on the service honouring the
  request id.
- A PATCH is read back by id (a consistent read) and only the operations whose
  value Partner Center does not hold yet are sent again: an ``add`` to a list
  sent twice would add twice. The same happens after a 412: each operation is
  kept only where Partner Center still holds what the plan saw (``Step.expect``);
  what another hand changed in between is a conflict.

Answers are checked: a 2xx to a create without the id of what it created fails
that row (the step stays "sent", so a re-run looks it up), and step 2 is never
sent without the fields it carries from step 1's answer.

Time comes from ``clock`` and waits from the client's ``retry.sleep``, both
injectable, so that tests of timing need not wait on the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bulkref.api.client import ReferralsClient
from bulkref.apply.doubt import ABSENT, Doubt, Watcher
from bulkref.apply.journal import Journal, StepState
from bulkref.apply.outcome import FINAL, Outcome, RowResult
from bulkref.errors import (
    ApiError,
    Conflict,
    IncompleteAnswer,
    InvalidRequest,
    PreconditionFailed,
    ServerError,
    StalePlan,
    Unreachable,
)
from bulkref.plan.doubts import Doubt as Kept
from bulkref.plan.doubts import Ledger, Window, doubt_key
from bulkref.plan.model import Action, Plan, RowPlan, Step
from bulkref.plan.payload import is_microsoft
from bulkref.plan.remote import Lookup
from bulkref.redact import redact, redact_optional
from bulkref.spec.jsonpaths import at_pointer

#: ``apply --consistency-window``'s default: None, learned by the run (bulkref.plan.doubts.Window).
CONSISTENCY_WINDOW: float | None = None
#: Seconds a run waits, once every other row is done, for its creates in doubt to be settled
#: (``apply --wait-in-doubt``).
WAIT_IN_DOUBT = 120.0
# The fields of step 1's answer without which step 2 is not sent.
REQUIRED_FILL = frozenset({"engagementId"})
# How much of a lost call's error the journal keeps (it is said again if the row fails).
_ERROR_KEPT = 300


@dataclass
class _Last:
    """The last call made for a row, for the results sheet."""

    status: int | None = None
    request_id: str | None = None
    error: ApiError | None = None

    def reply(self, status: int, request_id: str | None) -> None:
        self.status, self.request_id, self.error = status, request_id, None

    def failed(self, error: ApiError) -> None:
        self.status, self.request_id, self.error = error.status or None, error.request_id, error


class _Lost(Exception):
    """A create's answer was lost: ``call`` is what the journal keeps of it."""

    def __init__(self, call: dict[str, Any]) -> None:
        super().__init__(call.get("error"))
        self.call = call


@dataclass
class _Parked:
    """A row waiting for a create in doubt to be settled."""

    step: Step
    doubt: Doubt
    call: dict[str, Any]
    answers: dict[str, dict[str, Any]]
    last: _Last


@dataclass
class Executor:
    plan: Plan
    client: ReferralsClient
    journal: Journal
    #: How Partner Center is read (``--lookup``); the one the plan was made with.
    lookup: Lookup = field(default_factory=Lookup)
    concurrency: int = 8
    on_result: Callable[[RowResult], None] = lambda result: None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    clock: Callable[[], float] = time.time
    #: None: learned from the run's own creates; a number: that many seconds, as given.
    consistency_window: float | None = CONSISTENCY_WINDOW
    wait_in_doubt: float = WAIT_IN_DOUBT
    #: The target's record of creates in doubt, shared by every journal (None: this run's only).
    ledger: Ledger | None = None
    #: The creates in doubt from before this run were checked by a person: send them again.
    resend_in_doubt: bool = False
    on_note: Callable[[str], None] = lambda text: None
    # Rows whose every step was found in Partner Center before the run (bulkref.apply.reconcile).
    adopted: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        remembered = self.ledger.lags(self.clock()) if self.ledger is not None else []
        self.window = Window(self.consistency_window, remembered)
        self.watcher = Watcher(
            self.client,
            self.lookup,
            self.window,
            clock=self.clock,
            sleep=self.client.retry.sleep,
            on_note=self.on_note,
            on_lag=lambda lag: self.ledger.record_lags([lag]) if self.ledger is not None else None,
        )
        self._earlier: dict[str, Kept] = {}

    def now(self) -> str:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC).isoformat(timespec="seconds")

    async def run(self) -> Mapping[int, RowResult]:
        """Every row's result, read from the journal; rows not reached when ``stop`` was set
        are absent. The plan's rows are read as they are reached, and let go once done: a
        run holds about ``concurrency`` rows' payloads (and those waiting on a doubt)."""
        self.journal.forget_unfinished(FINAL)  # tried again now: until then, not reached
        finished = self.journal.rows_with(FINAL)
        self._earlier = self.ledger.doubts() if self.ledger is not None else {}
        if self.resend_in_doubt:
            for (row, key), call in self.journal.steps_in(StepState.SENT, StepState.IN_DOUBT).items():
                self.journal.absent(row, key, call)
        todo = (rp for rp in self.plan.rows if rp.row not in finished)
        places = asyncio.Semaphore(max(1, self.concurrency))
        give_up = asyncio.Event()
        count = {"active": 0, "parked": 0}
        changed = asyncio.Event()

        def move(active: int = 0, parked: int = 0) -> None:
            count["active"] += active
            count["parked"] += parked
            changed.set()

        async def one(rp: RowPlan) -> None:
            holding = True  # the place the feeder took for this row
            try:
                result = await self._row(rp, self.journal.steps_of(rp.row))
                while isinstance(result, _Parked):
                    places.release()
                    holding = False
                    move(active=-1, parked=1)
                    try:
                        settled = await self._settled(result.doubt, give_up)
                    finally:
                        move(active=1, parked=-1)
                    if settled is None:
                        result = self._in_doubt(rp, result)
                        break
                    await places.acquire()
                    holding = True
                    self._settle(rp, result, settled)
                    result = await self._row(rp, self.journal.steps_of(rp.row))
                self.journal.record(result)
                self.on_result(result)
            finally:
                move(active=-1)
                if holding:
                    places.release()

        async def drain() -> None:
            """Once nothing but doubts is left: wait for them at most ``wait_in_doubt``."""
            deadline: float | None = None
            while count["active"] or count["parked"]:
                changed.clear()
                if count["active"] or give_up.is_set():
                    await changed.wait()
                    continue
                now = self.clock()
                deadline = now + self.wait_in_doubt if deadline is None else deadline
                if now >= deadline:
                    give_up.set()
                    continue
                # Real time, not the injected clock: a tick to look at that clock again.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), timeout=min(1.0, deadline - now))

        async def stopping() -> None:
            await self.stop.wait()
            give_up.set()  # a stop does not wait for doubts: they are kept for the next run

        watching = asyncio.create_task(self.watcher.run())
        stopper = asyncio.create_task(stopping())
        try:
            # A TaskGroup, not gather: when one row fails (the journal cannot be written),
            # the others are cancelled, not left calling a closed client.
            async with asyncio.TaskGroup() as group:
                for rp in todo:
                    await places.acquire()
                    if self.stop.is_set():
                        places.release()
                        break
                    move(active=1)
                    group.create_task(one(rp))
                group.create_task(drain())
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        finally:
            self.watcher.close()
            self.watcher.settle_all()
            for task in (watching, stopper):
                task.cancel()
            await asyncio.gather(watching, stopper, return_exceptions=True)
        self.journal.flush()
        return self.journal.result_view()

    async def _settled(self, doubt: Doubt, give_up: asyncio.Event) -> Any:
        """What settled ``doubt`` (the referral found, or ``ABSENT``); None when the run gave up."""
        settled = self.watcher.doubt(doubt)
        giving_up = asyncio.ensure_future(give_up.wait())
        try:
            either: set[asyncio.Future[Any]] = {settled, giving_up}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            giving_up.cancel()
        if settled.done() and not settled.cancelled():
            return settled.result()
        return None

    def _settle(self, rp: RowPlan, parked: _Parked, settled: Any) -> None:
        if settled is ABSENT:
            self.journal.absent(rp.row, parked.step.key, parked.call)
        else:
            self.journal.done(rp.row, parked.step.key, settled)
        if self.ledger is not None:
            self.ledger.settle(parked.doubt.key)

    # -- one row ------------------------------------------------------------------------------
    async def _row(
        self, rp: RowPlan, previous: Mapping[str, tuple[StepState, dict[str, Any] | None]]
    ) -> RowResult | _Parked:
        if rp.action in (Action.INVALID, Action.BLOCKED):
            return self._result(rp, Outcome.SKIPPED, error_code=str(rp.action), error_message=rp.reason)
        if rp.action is not Action.CREATE and rp.external_id and self.ledger is not None:
            key = doubt_key(external_id=rp.external_id)
            if key in self._earlier:  # the plan found it in Partner Center: no longer in doubt
                self.ledger.settle(key)
        if rp.action is Action.UNCHANGED:
            return self._result(rp, Outcome.UNCHANGED)
        answers: dict[str, dict[str, Any]] = {}
        last = _Last()
        sent = False
        for step in rp.steps:
            state, call = previous.get(step.key, (None, None))
            if state is StepState.DONE:
                answers[step.key] = call or {}
                continue
            sent = True
            try:
                if step.method == "PATCH":
                    answers[step.key] = await self._patch(rp, step, last)
                else:
                    body = _filled(step, answers)
                    doubt = self._doubt(rp, step, body, answers, state, call or {})
                    if doubt is not None:
                        return _Parked(step, doubt, self._call_of(doubt, call or {}), answers, last)
                    try:
                        answers[step.key] = await self._post(rp, step, body, call or {}, state, last)
                    except _Lost as lost:
                        self.journal.lost(rp.row, step.key, lost.call)
                        doubt = self._doubt(rp, step, body, answers, StepState.IN_DOUBT, lost.call)
                        assert doubt is not None  # in doubt by its state
                        self._keep(rp, step, doubt, lost.call)
                        return _Parked(step, doubt, lost.call, answers, last)
                    create_key = _key(step, body)
                    if self.ledger is not None and create_key in self._earlier:
                        self.ledger.settle(create_key)  # in doubt before, and sent by a person's word
            except IncompleteAnswer as e:
                # A success without the id: it may be stored, so it stays "sent" (looked up next time).
                last.failed(e)
                self.journal.sent(rp.row, step.key)
                return self._result(rp, Outcome.PARTIAL if answers else Outcome.FAILED, answers, last)
            except StalePlan as e:
                self.journal.failed(rp.row, step.key)
                return self._result(
                    rp, Outcome.CONFLICT, answers, last, error_code="conflict", error_message=str(e)
                )
            except ApiError as e:
                self.journal.failed(rp.row, step.key)
                last.failed(e)
                outcome = Outcome.PARTIAL if answers else Outcome.FAILED
                return self._result(rp, outcome, answers, last)
            self.journal.done(rp.row, step.key, answers[step.key])
        if not sent and rp.row in self.adopted:
            return self._result(rp, Outcome.ADOPTED, answers, last)
        return self._result(
            rp, Outcome.CREATED if rp.action is Action.CREATE else Outcome.UPDATED, answers, last
        )

    def _doubt(
        self,
        rp: RowPlan,
        step: Step,
        body: dict[str, Any],
        answers: dict[str, dict[str, Any]],
        state: StepState | None,
        call: Mapping[str, Any],
    ) -> Doubt | None:
        """The doubt a create is in: cut off mid-call or answer lost (this journal), or in doubt
        for an earlier run of the target (its record); None when it may be sent."""
        ext, engagement = _lookup_keys(step, body)
        key = _key(step, body)
        if state is None and key is not None and key in self._earlier:
            earlier = self._earlier[key]
            if self.resend_in_doubt:
                return None  # a person checked: sent (and its record settled once answered)
            # No request id carried over: the row may have been edited since (one id, one body).
            call = {
                "sentAt": earlier.sent_at,
                "failedAt": earlier.failed_at,
                "sends": len(earlier.request_ids),
            }
            state = StepState.IN_DOUBT
        if state not in (StepState.SENT, StepState.IN_DOUBT):
            return None
        sent_at = float(call.get("firstSentAt") or call.get("sentAt") or self.clock())
        return Doubt(
            key=key or f"row:{rp.row}:{step.key}",  # nothing to look it up by: it stays in doubt
            body=body,
            sent_at=sent_at,
            # Cut off mid-call: the store may have happened until the call was given up.
            failed_at=float(call.get("failedAt") or call.get("sentAt") or sent_at),
            external_id=ext,
            engagement=engagement,
            first_id=answers.get("referral", {}).get("id") or rp.referral_id,
        )

    def _call_of(self, doubt: Doubt, call: Mapping[str, Any]) -> dict[str, Any]:
        return {"sentAt": doubt.sent_at, "failedAt": doubt.failed_at, **call}

    def _keep(self, rp: RowPlan, step: Step, doubt: Doubt, call: Mapping[str, Any]) -> None:
        """Into the target's record: the next run of any journal looks it up first."""
        if self.ledger is None or doubt.key.startswith("row:"):
            return
        ids = tuple(i for i in (call.get("requestId"),) if isinstance(i, str))
        self.ledger.add(
            Kept(doubt.key, self.plan.source, rp.row, step.key, doubt.sent_at, doubt.failed_at, ids)
        )

    async def _post(
        self,
        rp: RowPlan,
        step: Step,
        body: dict[str, Any],
        call: Mapping[str, Any],
        state: StepState | None,
        last: _Last,
    ) -> dict[str, Any]:
        url = self._url(step)
        again = state is StepState.ABSENT
        sends = int(call.get("sends") or 0) if again else 0
        if sends >= self.client.retry.attempts:
            raise ServerError(
                f"The create was sent {sends} times; each time its answer was lost and Partner "
                f"Center then showed it was not stored. The last error: {call.get('error')}",
                code="notStored",
                method="POST",
                url=url,
            )
        # One logical create: every send of it carries the same MS-RequestId (a service that
        # honours the id answers with what it stored; nothing here depends on that), and
        # never one id for two bodies (a service that replays would answer for the other).
        digest = _digest(body)
        same = again and call.get("requestId") and call.get("body") == digest
        request_id = str(call["requestId"]) if same else str(uuid.uuid4())
        sent_at = self.clock()
        first = float(call.get("firstSentAt") or call.get("sentAt") or sent_at) if again else sent_at
        made = {
            "sentAt": sent_at,
            "firstSentAt": first,
            "requestId": request_id,
            "body": digest,
            "sends": sends + 1,
        }
        self.journal.sent(rp.row, step.key, made)
        try:
            reply = await self.client.request("POST", url, json=body, request_id=request_id)
        except (ServerError, Unreachable) as e:
            if isinstance(e, Unreachable) and not e.maybe_delivered:
                raise
            last.failed(e)
            raise _Lost({**made, "failedAt": self.clock(), "error": redact(str(e))[:_ERROR_KEPT]}) from e
        last.reply(reply.status, reply.request_id)
        answer = _created(reply.body, reply.status, url, reply.request_id)
        self.watcher.confirmed(answer, sent_at, self.clock())
        return answer

    async def _patch(self, rp: RowPlan, step: Step, last: _Last) -> dict[str, Any]:
        """The PATCH, sent again after a 412 or a lost answer only with what Partner Center
        does not hold yet (read back by id: consistent, unlike a listing)."""
        assert rp.referral_id is not None
        ops, etag = list(step.body), step.if_match
        attempts = self.client.retry.attempts
        for attempt in range(1, attempts + 1):
            headers = {"If-Match": etag} if etag else {}
            self.journal.sent(rp.row, step.key, {"sentAt": self.clock()})
            try:
                # The client retries only what never reached the service (retry_unsent).
                reply = await self.client.request("PATCH", self._url(step), json=ops, headers=headers)
            except PreconditionFailed:
                if attempt == attempts:
                    raise StalePlan(
                        f"Referral {rp.referral_id} kept changing while bulkref updated it: plan again."
                    ) from None
            except (InvalidRequest, Conflict) as e:
                raise await self._refused(rp, e) from None
            except (ServerError, Unreachable) as e:
                if (isinstance(e, Unreachable) and not e.maybe_delivered) or attempt == attempts:
                    raise
                last.failed(e)
                await self.client.retry.sleep(self.client.retry.delay(attempt, e))
            else:
                last.reply(reply.status, reply.request_id)
                return {"id": rp.referral_id, "eTag": reply.etag}
            doc = await self.client.get(rp.referral_id)
            ops = _rediff(doc, ops, step.expect)
            if not ops:  # what the row says is there already (an earlier try, or someone else)
                return {"id": doc.get("id"), "eTag": doc.get("eTag")}
            etag = doc.get("eTag") if etag else None
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _refused(self, rp: RowPlan, error: ApiError) -> ApiError:
        """A PATCH the service refused, said in plain words where the referral is Closed:
        the documentation does not say whether the API takes changes to a Closed referral
        (only the UI's bulk upload says it does not), so a refusal is that row's, not a bug."""
        assert rp.referral_id is not None
        try:
            doc = await self.client.get(rp.referral_id)
        except ApiError:
            return error
        if doc.get("status") != "Closed":
            return error
        return type(error)(
            f"Partner Center refused the change: referral {rp.referral_id} is Closed "
            f"({doc.get('substatus') or 'no substatus'}), and it takes no change through the API. "
            f"Nothing of this row was changed. ({error})",
            status=error.status,
            code=error.code,
            request_id=error.request_id,
            method="PATCH",
        )

    def _url(self, step: Step) -> str:
        # Plan paths are relative to the API root (/referrals/...); the client knows the collection.
        return self.client.base_url + step.path.removeprefix("/referrals")

    def _in_doubt(self, rp: RowPlan, parked: _Parked) -> RowResult:
        """A row whose create is still in doubt as the run ends, said in plain words."""
        window = self.watcher.current_window()
        failed = float(parked.call.get("failedAt") or parked.doubt.failed_at)
        if window == float("inf"):
            decide = (
                "Partner Center's listing has shown none of bulkref's new referrals yet, so how long "
                "it lags is not known: run the same command again later (it is found, or it is told "
                "absent once a run has measured the lag)"
            )
        else:
            decide = (
                f"it is sent again only once a listing read after {_hms(failed + window)} UTC (the "
                f"consistency window, {window:.0f} s, after the answer was lost) leaves it out: run the "
                "same command again after then"
            )
        message = (
            f"The create sent at {_hms(parked.doubt.sent_at)} UTC may have been stored: its answer was "
            f"lost and Partner Center has not shown it yet. Nothing was sent twice; {decide} (it is "
            "looked up first). If you checked in Partner Center that it is not there, "
            "--resend-in-doubt sends it."
        )
        return self._result(
            rp, Outcome.IN_DOUBT, parked.answers, parked.last, error_code="inDoubt", error_message=message
        )

    def _result(
        self,
        rp: RowPlan,
        outcome: Outcome,
        answers: dict[str, dict[str, Any]] | None = None,
        last: _Last | None = None,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> RowResult:
        answers = answers or {}
        first = answers.get("referral") or answers.get("update") or {}
        linked = answers.get("connected") or {}
        error = last.error if last else None
        return RowResult(
            sheet=rp.sheet,
            row=rp.row,
            external_id=rp.external_id,
            action=str(rp.action),
            outcome=outcome,
            referral_id=first.get("id") or rp.referral_id,
            engagement_id=first.get("engagementId") or linked.get("engagementId") or rp.engagement_id,
            linked_referral_id=linked.get("id"),
            http_status=last.status if last else None,
            error_code=redact_optional(error_code or (error.code if error else None)),
            # Server and exception text: scrubbed of tokens before the journal or a results file.
            error_message=redact_optional(error_message or (str(error) if error else None)),
            request_id=last.request_id if last else None,
            timestamp=self.now(),
        )


def _digest(body: Any) -> str:
    """A body's fingerprint, to tell whether a request id was sent with this very body."""
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _hms(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _lookup_keys(step: Step, body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """What a create's referral is found by: (External Reference ID, None) for the
    partner's own referral, (None, engagement) for step 2 of a chain."""
    ext = body.get("externalReferenceId")
    if step.depends_on is None and isinstance(ext, str) and ext and not is_microsoft(body):
        return ext, None
    engagement = body.get("engagementId")
    return None, engagement if isinstance(engagement, str) and engagement else None


def _key(step: Step, body: Mapping[str, Any]) -> str | None:
    """The create's key in the target's record of doubts (bulkref.plan.doubts)."""
    ext, engagement = _lookup_keys(step, body)
    if ext is not None:
        return doubt_key(external_id=ext)
    return doubt_key(engagement=engagement, microsoft=is_microsoft(body)) if engagement else None


def _filled(step: Step, answers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The step's body with the fields it takes from the answer of the step it depends on."""
    if not step.fill:
        return dict(step.body)  # nothing to fill in: the plan's body is sent as it is
    body = copy.deepcopy(step.body)
    source = answers.get(step.depends_on or "", {})
    # The engagement is what links step 2 to step 1: without it step 2 would start a deal of its own.
    missing = [name for name in step.fill.values() if name in REQUIRED_FILL and not source.get(name)]
    if missing:
        raise IncompleteAnswer(
            f"Step {step.key} was not sent: the answer of step {step.depends_on} has no "
            f"{', '.join(missing)} to carry over. Look the referral up in Partner Center "
            "(bulkref get ID), then run the same command again."
        )
    for ptr, name in step.fill.items():
        *parents, leaf = ptr.strip("/").split("/")
        node = body
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = source.get(name)
    return dict(body)


def _created(body: Any, status: int, url: str, request_id: str | None) -> dict[str, Any]:
    """The answer of a create, which must name what it created."""
    if isinstance(body, dict) and isinstance(body.get("id"), str) and body["id"]:
        return dict(body)
    raise IncompleteAnswer(
        f"POST {url} answered HTTP {status} without the id of the referral it created: the row "
        "is not counted as created. A re-run looks it up in Partner Center before sending it again.",
        status=status,
        code="noIdInAnswer",
        request_id=request_id,
        method="POST",
        url=url,
    )


def _rediff(doc: dict[str, Any], ops: list[dict[str, Any]], expect: dict[str, Any]) -> list[dict[str, Any]]:
    """The operations still to apply to ``doc``; StalePlan where someone else changed a field."""
    if doc.get("status") == "Closed":
        raise StalePlan(f"Referral {doc.get('id')} was closed in Partner Center since the plan was made.")
    left = []
    for op in ops:
        if op["path"].endswith("/-"):  # an append: done once the list holds the value
            exists, items = at_pointer(doc, op["path"][:-2])
            if exists and isinstance(items, list) and op["value"] in items:
                continue
            left.append(op)
            continue
        exists, current = at_pointer(doc, op["path"])
        now = current if exists else None
        if now == op["value"]:
            continue
        if op["path"] in expect and now != expect[op["path"]]:
            raise StalePlan(
                f"{op['path']} changed in Partner Center since the plan was made "
                f"(it was {expect[op['path']]!r}, it is {now!r}): plan again."
            )
        left.append({**op, "op": "replace" if exists else "add"})
    return left
