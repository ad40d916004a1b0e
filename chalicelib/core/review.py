"""The task-token review: a person decides, a Standard Step Functions execution waits for it and applies it.

Every human review (receipts, refund requests; next coupon templates and sidebar campaigns) is the same
small machine around one stored item, whatever the domain calls the item and its end states::

    (new) ──wait step keeps the token──▶ pending ──an operator decides──▶ deciding ──apply step──▶ settled
                                           ▲  │                              │
                                           │  └────nobody decided in time: timeout step────────▶ settled
                                           └──the decision could not be applied: reopened, token dropped──┘

- **wait**: the execution's ``.waitForTaskToken`` step hands its task token to the domain's wait task, whose
  store keeps it on the item with a write conditioned on the item still waiting. A repeated wait step (a
  Lambda retry, or waiting again after a reopening) replaces the token; a settled item takes none.
- **decide** (:func:`claim_and_resume`): a decision is refused unless the item is ``pending`` *with* a token (a
  pending item without one is between two waits: its old token was used and dropped). One decision wins: the
  item moves ``pending → deciding`` by a write conditioned on ``pending``, and only then does the token resume
  the execution (SendTaskSuccess, the :class:`Decision` as its output). When the execution stopped waiting
  meanwhile (it timed out: the token is stale) or Step Functions cannot be reached, the domain decides what
  becomes of the item before the error reaches the operator.
- **apply** (:func:`apply_once`): the resumed execution applies the decision. Lambda retries may run the step
  again, so a review that is no longer open only reports how it was settled; what approving and rejecting do
  is the domain's (points for a receipt, cash and stock back for a refund), each idempotent on its own.
- **time out** (:func:`expire_once`): nobody decided within the execution's timeout (or a step gave up); an
  open review is settled with the reason the member reads (:data:`TIMEOUT_REASON` unless the workflow says).
- **reopen**: a decision that could not be applied may go back to ``pending`` without its used token, with
  :func:`failure_note` for the next reviewer; the execution then waits again and keeps a fresh token.

No storage here: the domain's store makes the conditional writes (its PynamoDB items stay in the domain) and
passes them in as callables, and the domain's workflow side implements :class:`Steps`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from chalicelib.core import aws
from chalicelib.core.errors import Conflict, UpstreamFailed, ValidationFailed

PENDING = "pending"
DECIDING = "deciding"
TIMEOUT_REASON = "not reviewed in time"
FAILURE_TEXT_LIMIT = 300  # characters of a caught failure a reviewer reads (not a stack trace)

Result = TypeVar("Result", covariant=True)


@dataclass(frozen=True)
class Decision:
    """What an operator decided: the output the waiting execution is resumed with, and later applies."""

    approve: bool
    reason: str | None = None
    reviewer: str | None = None

    def output(self) -> dict[str, Any]:
        """The SendTaskSuccess output; the state machine puts it at ``$.decision`` for the apply step."""
        return {"approve": self.approve, "reason": self.reason, "reviewer": self.reviewer}

    @classmethod
    def from_output(cls, output: Mapping[str, Any] | None) -> Decision:
        """The decision as the apply step receives it; anything short of ``approve: true`` is a rejection."""
        output = output or {}
        return cls(approve=bool(output.get("approve")), reason=output.get("reason"), reviewer=output.get("reviewer"))


class Reviewable(Protocol):
    """A review item as the domain's store reads it: its state and the token of the execution waiting on it."""

    @property
    def status(self) -> str: ...

    @property
    def task_token(self) -> str | None: ...


def claim_and_resume(
    item: Reviewable,
    decision: Decision,
    *,
    claim: Callable[[], bool],
    not_waiting: str,
    taken: str,
    rules: Callable[[], None] | None = None,
    on_expired: Callable[[], object] | None = None,
    on_unreachable: Callable[[], object] | None = None,
) -> None:
    """The decide step: refuse what cannot be decided, let one decision win, resume the execution with it.

    ``claim`` is the store's ``pending → deciding`` write conditioned on ``pending`` (False: another decision
    won). ``rules`` raises the domain's own refusals, after the common ones and before anything is written.
    ``on_expired`` (the execution no longer waits: the token is stale) and ``on_unreachable`` (Step Functions
    failed) run before the error propagates: e.g. reject the item now, or put it back in the queue.
    ``not_waiting`` and ``taken`` are the Conflict messages the operator reads.
    """
    token = item.task_token
    if item.status != PENDING or not token:
        raise Conflict(not_waiting)
    if not decision.approve and not decision.reason:
        raise ValidationFailed("A rejection needs a reason", details=[{"field": "reason", "problem": "required to reject"}])
    if rules is not None:
        rules()
    if not claim():
        raise Conflict(taken)
    try:
        aws.send_task_success(token, decision.output())
    except Conflict:
        if on_expired is not None:
            on_expired()
        raise
    except UpstreamFailed:
        if on_unreachable is not None:
            on_unreachable()
        raise


class Steps(Protocol[Result]):
    """The domain's half of the apply and timeout steps, for the one review an execution waits on."""

    def is_open(self) -> bool:
        """Still waiting for this execution's decision: neither settled (by an earlier run) nor superseded."""
        ...

    def settled(self) -> Result:
        """What a step that finds the review closed returns (after tidying what it must, e.g. the queue)."""
        ...

    def approve(self, decision: Decision) -> Result: ...

    def reject(self, decision: Decision) -> Result: ...

    def expire(self, reason: str) -> Result:
        """Nobody decided in time: usually a rejection the member reads ``reason`` on."""
        ...


def apply_once(steps: Steps[Result], decision: Decision) -> Result:
    """The apply step: the decision takes effect while the review is open; a repeated run reports the settlement."""
    if not steps.is_open():
        return steps.settled()
    return steps.approve(decision) if decision.approve else steps.reject(decision)


def expire_once(steps: Steps[Result], reason: str | None = None) -> Result:
    """The timeout step: an open review ends with ``reason`` (the timeout's by default); a closed one stays."""
    if not steps.is_open():
        return steps.settled()
    return steps.expire(reason or TIMEOUT_REASON)


def failure_text(error: Any) -> str:
    """The task failure a Step Functions Catch hands over, as one short line (the error's message, not its trace)."""
    if not isinstance(error, dict):
        return "unknown error"
    kind, cause = str(error.get("Error") or "error"), error.get("Cause")
    try:
        parsed = json.loads(cause) if isinstance(cause, str) else None
    except ValueError:
        parsed = None
    message = parsed.get("errorMessage") if isinstance(parsed, dict) else cause
    return f"{kind}: {message}"[:FAILURE_TEXT_LIMIT] if message else kind[:FAILURE_TEXT_LIMIT]


def failure_note(error: Any, reviewer: str | None) -> str:
    """What the next reviewer of a reopened review reads: whose decision failed, and why."""
    who = f" by {reviewer}" if reviewer else ""
    return f"the decision{who} could not be applied: {failure_text(error)}"
