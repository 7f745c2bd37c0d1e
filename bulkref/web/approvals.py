"""Who may approve an import's plan, what an approval records, what withdraws it, and the queue.

The rules (``Rules``):

- With ``--team`` the approver is the signed-in person, never a typed name, and
  must not be the person who prepared the import (who uploaded its current
  input), nor someone who approved this plan already; ``--approvals N`` people
  must approve before it may be applied (default 1).
- Without ``--team`` one local user may approve their own import (a typed name,
  or their sign-in when they signed in); the record says so: ``ownImport`` true
  and ``fourEyes`` false.

``approval.json`` keeps its keys (``name``, ``at``, ``planFingerprint``,
``inputFingerprint``, ``target``, ``summary``) and adds ``approvals`` (one
entry a person: ``person``, ``name``, ``at``, ``ownImport``), ``required``,
``complete``, ``fourEyes`` and ``preparedBy``. ``name`` names every approver.

A change that would withdraw an approval (a new input or mapping, "Plan
again") asks for confirmation first (``confirm_withdraw``); what it withdrew,
by whom and why is kept in the import's ``meta.json`` under ``withdrawn`` and
in the audit trail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException

from bulkref.web.people import LOCAL, Actor
from bulkref.web.store import Import, now, write_json

# The queue's states, from the import's step (``App.step``).
QUEUE_STATE = {
    "uploaded": "not planned",
    "planned": "awaiting review",
    "approved": "approved",
    "applying": "applying",
    "interrupted": "stopped",
    "in doubt": "in doubt",
    "apply failed": "apply failed",
    "applied": "applied",
}


@dataclass(frozen=True)
class Rules:
    team: bool = False
    required: int = 1

    def preparer(self, imp: Import) -> Actor:
        return Actor.from_json(imp.meta.get("preparedBy"))

    def refusal(self, imp: Import, actor: Actor, approval: dict[str, Any] | None) -> str | None:
        """Why ``actor`` may not approve ``imp``'s plan now, or None."""
        if not self.team:
            return None
        if not actor.signed_in:
            return "Sign in to approve: an approval is recorded under your sign-in."
        if self.preparer(imp).key == actor.key:
            return (
                "You prepared this import (you uploaded its current input), so you cannot approve it: "
                "another person must review and approve it."
            )
        if approval and any(
            a.get("person", {}).get("key") == actor.key for a in approval.get("approvals", [])
        ):
            return "You approved this plan already: it needs another person's approval."
        return None

    def approve(
        self,
        imp: Import,
        actor: Actor,
        typed_name: str,
        *,
        plan_fingerprint: str,
        input_fingerprint: str,
        target: str,
        summary: dict[str, int],
        earlier: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Record ``actor``'s approval (with what came before for this plan) and return the document."""
        preparer = self.preparer(imp)
        name = actor.label if actor.signed_in else typed_name
        own = not self.team and (actor.key == preparer.key or not actor.signed_in)
        approvals = list(earlier.get("approvals", [])) if earlier else []
        approvals.append({"person": actor.as_json(), "name": name, "at": now(), "ownImport": own})
        required = self.required if self.team else 1
        doc = {
            "name": ", ".join(a["name"] for a in approvals),
            "at": approvals[-1]["at"],
            "planFingerprint": plan_fingerprint,
            "inputFingerprint": input_fingerprint,
            "target": target,
            "summary": summary,
            "approvals": approvals,
            "required": required,
            "complete": len(approvals) >= required,
            "fourEyes": self.team,
            "preparedBy": preparer.as_json(),
        }
        write_json(imp.approval_path, doc)
        return doc


def complete(approval: dict[str, Any] | None) -> bool:
    # An approval.json written before approvals were counted is one complete approval.
    return approval is not None and bool(approval.get("complete", True))


def require_confirmation(approval: dict[str, Any] | None, form: Any, change: str) -> None:
    """Refuse a change that would withdraw ``approval`` unless the form confirms it."""
    if approval and approval.get("approvals", [approval]) and form.get("confirm_withdraw") != "yes":
        raise HTTPException(
            409,
            f"This plan is approved by {approval.get('name')}: {change} withdraws that approval. "
            "Tick the box that says so, then send again.",
        )


def withdrawal(approval: dict[str, Any], actor: Actor, why: str) -> dict[str, Any]:
    return {
        "approvedBy": approval.get("name"),
        "planFingerprint": approval.get("planFingerprint"),
        "by": actor.as_json(),
        "at": now(),
        "why": why,
    }


def age(stamp: str) -> str:
    """How long ago ``stamp`` (ISO 8601) was, in words a queue shows."""
    try:
        then = dt.datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return ""
    seconds = max(0, int((dt.datetime.now(dt.UTC) - then).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "just now"


def awaiting(state: str, imp: Import, approval: dict[str, Any] | None, me: Actor, rules: Rules) -> bool:
    """Whether ``imp`` waits for ``me``'s review: planned, not complete, and ``me`` may approve it."""
    if state not in ("planned", "approved") or complete(approval):
        return False
    return me is not LOCAL and rules.refusal(imp, me, approval) is None
