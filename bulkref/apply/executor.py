"""Applying a plan: HTTP calls, bounded and paced, retried, journaled, never duplicated.

Rows run concurrently (``concurrency`` workers); the steps of one row run in
order, step 2 only after step 1 succeeded and with the fields of its answer.
Every call waits on one shared pacer (bulkref.apply.pacing).

Never a duplicate: a POST whose answer was lost (a time-out, a dropped
connection, a 5xx after the request went out, or a run killed mid-call) may
have been stored. Before sending it again the executor looks Partner Center
up (the partner's referral by External Reference ID, the connected one in
its engagement) and adopts what it finds. Listings may show a new referral
only some time after it was made, so a look-up that finds nothing is made
again until ``consistency_window`` seconds have passed since the lost call;
only then is the create sent again, with the same ``MS-RequestId`` as the
first time, so that a service that honours it answers with what it stored
instead of storing it twice.

Answers are checked: a 2xx to a create without the id of what it created
fails that row (the step stays "maybe sent", so a re-run looks it up), and
step 2 is never sent without the fields it carries from step 1's answer.

Waits go through the client's one ``RetryPolicy`` (its ``sleep`` is injectable).

A PATCH carries the eTag the plan read. On 412 the referral is read again
and each operation kept only where Partner Center still holds what the plan
saw (``Step.expect``); what another hand changed in between is a conflict.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bulkref.api.client import (
    ApiError,
    IncompleteAnswer,
    PreconditionFailed,
    ReferralsClient,
    ServerError,
    Throttled,
    Unreachable,
    retry_read,
)
from bulkref.apply.journal import Journal
from bulkref.apply.outcome import Outcome, RowResult
from bulkref.apply.reconcile import own_referral, second_referral
from bulkref.errors import ConflictError
from bulkref.plan.model import Action, Plan, RowPlan, Step
from bulkref.plan.payload import is_microsoft
from bulkref.plan.remote import find_existing
from bulkref.redact import redact_optional
from bulkref.spec.jsonpaths import at_pointer

# How often a create whose answer was lost is looked up and, if absent, sent again.
AMBIGUOUS_ATTEMPTS = 5
# How often a PATCH is re-diffed and re-sent after 412s (someone else keeps writing).
PRECONDITION_ATTEMPTS = 3
# Outcomes a re-run does not redo; the others (failed, partial, conflict) are tried again.
FINAL = frozenset({Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED, Outcome.ADOPTED})
#: Seconds a create whose answer was lost is looked for again before it is sent again
#: (``apply --consistency-window``): how long Partner Center's listings may lag its writes.
CONSISTENCY_WINDOW = 10.0
# The fields of step 1's answer without which step 2 is not sent.
REQUIRED_FILL = frozenset({"engagementId"})
# The pauses between those look-ups: soon at first (most lags are short), then every 2 s.
_LOOKUP_PAUSES = (0.5, 1.0, 2.0)


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


@dataclass
class Executor:
    plan: Plan
    client: ReferralsClient
    journal: Journal
    concurrency: int = 8
    on_result: Callable[[RowResult], None] = lambda result: None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    now: Callable[[], str] = lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    consistency_window: float = CONSISTENCY_WINDOW
    # Rows whose every step was found in Partner Center before the run (bulkref.apply.reconcile).
    adopted: set[int] = field(default_factory=set)

    async def run(self) -> Mapping[int, RowResult]:
        """Every row's result, read from the journal; rows not reached when ``stop`` was set
        are absent. The plan's rows are read as they are reached, and let go once done: a
        run holds about ``concurrency`` rows' payloads, whatever the plan's size."""
        self.journal.forget_unfinished(FINAL)  # tried again now: until then, not reached
        finished = self.journal.rows_with(FINAL)
        todo = (rp for rp in self.plan.rows if rp.row not in finished)

        async def worker() -> None:
            for rp in todo:
                result = await self._row(rp, self.journal.steps_of(rp.row))
                self.journal.record(result)
                self.on_result(result)
                if self.stop.is_set():
                    return

        try:
            # A TaskGroup, not gather: when one worker fails (the journal cannot be
            # written), the others are cancelled, not left calling a closed client.
            async with asyncio.TaskGroup() as group:
                for _ in range(max(1, self.concurrency)):
                    group.create_task(worker())
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        self.journal.flush()
        return self.journal.result_view()

    # -- one row ------------------------------------------------------------------------------
    async def _row(self, rp: RowPlan, previous: Mapping[str, tuple[str, Any]]) -> RowResult:
        if rp.action in (Action.INVALID, Action.BLOCKED):
            return self._result(rp, Outcome.SKIPPED, error_code=str(rp.action), error_message=rp.reason)
        if rp.action is Action.UNCHANGED:
            return self._result(rp, Outcome.UNCHANGED)
        answers: dict[str, dict[str, Any]] = {}
        last = _Last()
        sent = False
        for step in rp.steps:
            state, answer = previous.get(step.key, (None, None))
            if state == "done":
                answers[step.key] = answer or {}
                continue
            sent = True
            sent_at = (answer or {}).get("sentAt") if state == "sent" else None
            try:
                answers[step.key] = await self._step(rp, step, answers, last, state == "sent", sent_at)
            except IncompleteAnswer as e:
                # A success without the id: it may be stored, so it stays "maybe sent" (looked up next time).
                last.failed(e)
                self.journal.sent(rp.row, step.key)
                return self._result(rp, Outcome.PARTIAL if answers else Outcome.FAILED, answers, last)
            except ConflictError as e:
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

    async def _step(
        self,
        rp: RowPlan,
        step: Step,
        answers: dict[str, dict[str, Any]],
        last: _Last,
        was_sent: bool,
        sent_at: float | None = None,
    ) -> dict[str, Any]:
        if step.method == "PATCH":
            return await self._patch(rp, step, last)
        body = _filled(step, answers)
        if was_sent:  # cut off mid-call in an earlier run: only what is left of the window is waited
            since = time.time() - sent_at if isinstance(sent_at, int | float) else 0.0
            first = dt.datetime.fromtimestamp(sent_at, dt.UTC) if isinstance(sent_at, int | float) else None
            found = await self._settled_lookup(rp, body, answers, waited=max(0.0, since), sent=first)
            if found is not None:
                return found
        return await self._post(rp, step, body, answers, last)

    async def _post(
        self, rp: RowPlan, step: Step, body: dict[str, Any], answers: dict[str, dict[str, Any]], last: _Last
    ) -> dict[str, Any]:
        url = self._url(step)
        # One logical create: every resend of it carries the same MS-RequestId.
        request_id = str(uuid.uuid4())
        first_sent = dt.datetime.now(dt.UTC)
        for attempt in range(1, AMBIGUOUS_ATTEMPTS + 1):
            self.journal.sent(rp.row, step.key)
            try:
                reply = await self.client.request("POST", url, json=body, request_id=request_id)
            except (ServerError, Unreachable) as e:
                if isinstance(e, Unreachable) and not e.maybe_delivered:
                    raise
                # The request may have been stored: look (and look again) before sending it again.
                last.failed(e)
                found = await self._settled_lookup(rp, body, answers, sent=first_sent)
                if found is not None:
                    return found
                if attempt == AMBIGUOUS_ATTEMPTS:
                    raise
                await self.client.retry.sleep(self.client.retry.delay(attempt, e))
                continue
            last.reply(reply.status, reply.request_id)
            return _created(reply.body, reply.status, url, reply.request_id)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _settled_lookup(
        self,
        rp: RowPlan,
        body: dict[str, Any],
        answers: dict[str, dict[str, Any]],
        waited: float = 0.0,
        sent: dt.datetime | None = None,
    ) -> dict[str, Any] | None:
        """``_lookup``, made again while nothing is found until the consistency window has
        passed (``waited``: seconds of it gone already): a listing that lags its writes
        must not make a lost create look unsent."""
        n = 0
        while True:
            found = await self._lookup(rp, body, answers, sent)
            if found is not None or waited >= self.consistency_window:
                return found
            pause = min(_LOOKUP_PAUSES[min(n, len(_LOOKUP_PAUSES) - 1)], self.consistency_window - waited)
            await self.client.retry.sleep(pause)
            waited += pause
            n += 1

    async def _lookup(
        self,
        rp: RowPlan,
        body: dict[str, Any],
        answers: dict[str, dict[str, Any]],
        sent: dt.datetime | None = None,
    ) -> dict[str, Any] | None:
        """The referral a lost POST (first sent at ``sent``) may have created, if Partner
        Center has it. ``sent`` lets a scan read only the newest referrals."""
        ext = body.get("externalReferenceId")
        if ext and not is_microsoft(body):
            found = await self._read(lambda: find_existing(self.client, external_ids=[ext], since=sent))
            try:
                return own_referral(list(found.by_external_id.get(ext, [])))
            finally:
                found.close()
        engagement = body.get("engagementId")
        if not engagement:
            return None
        found = await self._read(lambda: find_existing(self.client, engagement_ids=[engagement], since=sent))
        first = answers.get("referral", {}).get("id") or rp.referral_id
        try:
            return second_referral(list(found.by_engagement.get(engagement, [])), body, first)
        finally:
            found.close()

    async def _read(self, call: Callable[[], Any]) -> Any:
        # A look-up is a read, retried by the client; throttling is waited out here too.
        for attempt in range(1, AMBIGUOUS_ATTEMPTS + 1):
            try:
                return await call()
            except Throttled as e:
                if attempt == AMBIGUOUS_ATTEMPTS:
                    raise
                await self.client.retry.sleep(self.client.retry.delay(attempt, e))
        raise AssertionError("unreachable")

    async def _patch(self, rp: RowPlan, step: Step, last: _Last) -> dict[str, Any]:
        assert rp.referral_id is not None
        ops, etag = list(step.body), step.if_match
        for _ in range(PRECONDITION_ATTEMPTS):
            headers = {"If-Match": etag} if etag else {}
            self.journal.sent(rp.row, step.key)
            try:
                reply = await self.client.request(
                    "PATCH", self._url(step), json=ops, headers=headers, retryable=retry_read
                )
            except PreconditionFailed:
                doc = await self.client.get(rp.referral_id)
                ops = _rediff(doc, ops, step.expect)
                if not ops:  # what the row says is there already (an earlier try, or someone else)
                    return {"id": doc.get("id"), "eTag": doc.get("eTag")}
                etag = doc.get("eTag")
                continue
            last.reply(reply.status, reply.request_id)
            return {"id": rp.referral_id, "eTag": reply.etag}
        raise ConflictError(f"Referral {rp.referral_id} kept changing while bulkref updated it: plan again.")

    def _url(self, step: Step) -> str:
        # Plan paths are relative to the API root (/referrals/...); the client knows the collection.
        return self.client.base_url + step.path.removeprefix("/referrals")

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
    """The operations still to apply to ``doc``; ConflictError where someone else changed a field."""
    if doc.get("status") == "Closed":
        raise ConflictError(f"Referral {doc.get('id')} was closed in Partner Center since the plan was made.")
    left = []
    for op in ops:
        exists, current = at_pointer(doc, op["path"])
        now = current if exists else None
        if now == op["value"]:
            continue
        if op["path"] in expect and now != expect[op["path"]]:
            raise ConflictError(
                f"{op['path']} changed in Partner Center since the plan was made "
                f"(it was {expect[op['path']]!r}, it is {now!r}): plan again."
            )
        left.append({**op, "op": "replace" if exists else "add"})
    return left
