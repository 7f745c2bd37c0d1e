"""The remote is the truth, the journal a cache: before a run creates anything,
Partner Center is asked whether each create has been made already.

A journal knows what its own runs did, and a person does not always use the
same journal: a copied plan, a sheet saved under another name, ``--state
other.db``, a journal lost or damaged. So before the first call, every create
of the plan that the journal does not know as done is looked up, in batches
(bulkref.plan.remote.find_existing): the row's External Reference ID for step
1, the engagement for step 2 of a chain (co-sell, shared). What is found is
adopted: written to the journal as done, with its ids, so the run goes on from
there (step 2 only, or nothing) and the row is reported ``adopted``.

A plan made by this very run has just read Partner Center, so only plans made
earlier (a saved PLAN.json, a resumed run) and journals in doubt are checked.
But a listing may lag its writes: a run right after another one of the same
input can plan as new what that run has just created. So the creates of a
fresh plan that the previous run of the same journal made are read by id
(``adopt_known``): a read by id is consistent, a listing may not be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from bulkref.apply.journal import StepState
from bulkref.apply.outcome import RowResult
from bulkref.errors import NotFound
from bulkref.plan.model import Action, Plan, RowPlan, Step
from bulkref.plan.payload import is_microsoft
from bulkref.plan.remote import Lookup, find_existing

if TYPE_CHECKING:
    from bulkref.api.client import ReferralsClient
    from bulkref.apply.journal import Journal

Referral = dict[str, Any]


def own_referral(docs: Iterable[Referral]) -> Referral | None:
    """The partner's own referral among those holding an External Reference ID."""
    return next((d for d in docs if not is_microsoft(d)), None)


def second_referral(
    docs: Iterable[Referral], body: Mapping[str, Any], first_id: str | None
) -> Referral | None:
    """Step 2's referral among an engagement's: not step 1's, and Microsoft's when step 2 is."""
    for doc in docs:
        if not same_id(doc.get("id"), first_id) and is_microsoft(doc) == is_microsoft(body):
            return doc
    return None


def same_id(a: Any, b: Any) -> bool:
    """Two ids (or External Reference IDs) alike but for case: nothing says Partner Center
    keeps the case it was sent, and a look-up that misses a referral creates it again."""
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()


async def adopt_existing(plan: Plan, client: ReferralsClient, journal: Journal, lookup: Lookup) -> set[int]:
    """Look up every create the journal does not know as done; journal what is found
    as done. Returns the rows whose every step is now known done this way."""
    steps = journal.steps()
    state = {key: s for key, (s, _) in steps.items()}
    answers = {key: a or {} for key, (s, a) in steps.items() if s == StepState.DONE}

    def open_posts(rp: RowPlan) -> list[Step]:
        return [s for s in rp.steps if s.method == "POST" and state.get((rp.row, s.key)) != StepState.DONE]

    todo = {rp.row: (rp, posts) for rp in plan.rows if (posts := open_posts(rp))}
    if not todo:
        return set()
    adopted: set[int] = set()

    # Pass 1: steps that carry the partner's External Reference ID.
    firsts = {
        row: (rp, step)
        for row, (rp, posts) in todo.items()
        for step in posts[:1]
        if step.depends_on is None and _ext(step) is not None
    }
    wanted = [e for _, s in firsts.values() if (e := _ext(s)) is not None]  # each has one, by firsts
    found = await find_existing(client, lookup, external_ids=wanted)
    for row, (_, step) in firsts.items():
        doc = own_referral(found.by_external_id.get(_ext(step) or "", []))
        if doc is not None:
            journal.done(row, step.key, doc)
            answers[(row, step.key)] = doc
            adopted.add(row)
    found.close()  # a scan's local index

    # Pass 2: the second step of a chain, by the engagement step 1 created (or joined).
    seconds: dict[int, tuple[RowPlan, Step, str, str | None]] = {}
    for row, (rp, posts) in todo.items():
        for step in posts:
            if step.depends_on is None and _ext(step) is not None:
                continue
            source = answers.get((row, step.depends_on or ""), {}) if step.depends_on else {}
            engagement = step.body.get("engagementId") or source.get("engagementId") or rp.engagement_id
            if engagement:
                first_id = answers.get((row, "referral"), {}).get("id") or rp.referral_id
                seconds[row] = (rp, step, engagement, first_id)
    if seconds:
        found = await find_existing(client, lookup, engagement_ids=[e for _, _, e, _ in seconds.values()])
        for row, (_, step, engagement, first_id) in seconds.items():
            doc = second_referral(found.by_engagement.get(engagement, []), step.body, first_id)
            if doc is not None:
                journal.done(row, step.key, doc)
                adopted.add(row)
        found.close()

    journal_now = journal.steps()
    return {
        row
        for row in adopted
        if all(journal_now.get((row, s.key), ("",))[0] == StepState.DONE for s in todo[row][0].steps)
    }


async def adopt_known(
    plan: Plan, client: ReferralsClient, journal: Journal, known: Mapping[str, RowResult]
) -> set[int]:
    """Creates of ``plan`` that an earlier run of this journal made (``known``, by External
    Reference ID: its results), read by id and journaled done when Partner Center has them;
    and upgrades to Co-sell of referrals it created with their second referral (a listing
    showed the first only). Returns the rows whose every step is now known done this way."""
    todo = [
        (rp, result)
        for rp in plan.rows
        if rp.action is Action.CREATE
        and rp.external_id is not None
        and (result := known.get(rp.external_id)) is not None
        and result.referral_id
    ]

    async def read(referral_id: str | None) -> Referral | None:
        if not referral_id:
            return None
        try:
            return await client.get(referral_id)
        except NotFound:
            return None

    firsts = await asyncio.gather(*(read(r.referral_id) for _, r in todo))
    seconds = await asyncio.gather(*(read(r.linked_referral_id) for _, r in todo))
    adopted: set[int] = set()
    for (rp, _), first, second in zip(todo, firsts, seconds, strict=True):
        if (
            first is None
            or is_microsoft(first)
            or not same_id(first.get("externalReferenceId"), rp.external_id)
        ):
            continue
        journal.done(rp.row, rp.steps[0].key, first)
        done = 1
        if (
            len(rp.steps) > 1
            and second is not None
            and same_id(second.get("engagementId"), first.get("engagementId"))
        ):
            journal.done(rp.row, rp.steps[1].key, second)
            done = 2
        if done == len(rp.steps):
            adopted.add(rp.row)
    return adopted | await _adopt_known_upgrades(plan, journal, known, read)


async def _adopt_known_upgrades(
    plan: Plan,
    journal: Journal,
    known: Mapping[str, RowResult],
    read: Callable[[str | None], Awaitable[Referral | None]],
) -> set[int]:
    """Updates of ``plan`` that would add a second referral (an upgrade to Co-sell) to a
    referral the last run created with its second one: a lagging listing showed the first
    only. The second is read by id; when it is there, in the same engagement, the step is done."""
    todo = [
        (rp, step, result)
        for rp in plan.rows
        for step in rp.steps
        if rp.action is Action.UPDATE
        and step.method == "POST"
        and rp.external_id is not None
        and (result := known.get(rp.external_id)) is not None
        and result.referral_id == rp.referral_id
        and result.linked_referral_id
    ]
    if not todo:
        return set()
    seconds = await asyncio.gather(*(read(r.linked_referral_id) for _, _, r in todo))
    adopted: set[int] = set()
    for (rp, step, _), second in zip(todo, seconds, strict=True):
        if second is None or not same_id(second.get("engagementId"), rp.engagement_id):
            continue
        if is_microsoft(step.body) != is_microsoft(second):
            continue
        journal.done(rp.row, step.key, second)
        if len(rp.steps) == 1:
            adopted.add(rp.row)
    return adopted


def _ext(step: Step) -> str | None:
    body = step.body if isinstance(step.body, dict) else {}
    ext = body.get("externalReferenceId")
    return str(ext) if ext and not is_microsoft(body) else None
