"""The mall's jobs: the CDK code import (S3 ObjectCreated under pools/ → mall.codes.run_job) and the order reconciler."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from pydantic import ValidationError

from chalicelib.core import aws
from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.config import get_settings
from chalicelib.core.errors import JifenError, UpstreamFailed
from chalicelib.core.observability import log_event, logger
from chalicelib.mall import after_sales, codes, fulfilment
from chalicelib.mall.models.catalog import Order
from chalicelib.mall.models.codes import ImportTarget
from chalicelib.mall.store.orders import OrdersRepo, order_unwatch, watched
from chalicelib.tenancy.access import app_by_id
from chalicelib.tenancy.models import App

JOB_MARGIN_SECONDS = 30.0


def targets(event: Any) -> list[ImportTarget]:
    """The imports an event asks for: S3 records whose key is a code file, or one direct payload."""
    if not isinstance(event, dict):
        return []
    if "Records" not in event:
        try:
            return [ImportTarget.model_validate(event)]
        except ValidationError:
            return []
    found = []
    for record in event.get("Records") or []:
        key = ((record or {}).get("s3") or {}).get("object", {}).get("key") if isinstance(record, dict) else None
        target = codes.target_of_key(unquote_plus(key)) if isinstance(key, str) else None
        if target is not None:
            found.append(target)
    return found


def import_codes(event: Any, context: Any = None) -> dict[str, Any]:
    """Run each import for up to the Lambda's time; an unfinished one continues in a fresh invocation of this function."""
    results = {}
    wanted = targets(event)
    if not wanted:
        logger().warning("code_import_ignored", extra={"reason": "no code file in the event"})
    for target in wanted:
        budget = codes.Budget.of(context, cap=codes.JOB_BUDGET_SECONDS, margin=JOB_MARGIN_SECONDS)
        try:
            outcome = codes.run_job(target, budget)
        except JifenError as exc:  # e.g. the object is gone: nothing a retry would fix
            log_event("code_import_refused", import_id=target.import_id, code=exc.code, error=exc.message)
            results[target.import_id] = exc.code
            continue
        results[target.import_id] = outcome.status
        if outcome.more and context is not None:
            waited = target.waited_seconds + outcome.waited_seconds
            aws.invoke_async(context.invoked_function_arn, target.model_copy(update={"waited_seconds": waited}).model_dump())
            log_event("code_import_continued", import_id=target.import_id, status=outcome.status, waited_seconds=waited)
    return results


# --- the order reconciler (issue 9, item 6) -------------------------------------------------------
#
# Every order that needs its workflow (``awaiting_payment``, ``paying_out`` at the exchange; a refund request) is
# on a watch list (``store.orders.watched``: one GSI2 partition per day, no scans). Past a grace period, an order
# still waiting with no running execution is re-driven (its named execution started: a no-op if it runs), or —
# unpaid past its payment window — cancelled with points and stock back (``fulfilment.revert``: exactly once); an
# execution that ended with the order still waiting leaves it ``needs_attention`` for an operator
# (``records.redrive`` / ``records.cancel``). A refund request whose review never started gets it started. Orders
# that no longer wait leave the list.

GRACE = timedelta(minutes=10)  # an exchange (or refund request) in flight starts its execution well within this
LOOKBACK_DAYS = 35  # refund reviews wait at most days; an order waiting longer is on an operator's list already
RECONCILE_BUDGET_SECONDS = 240.0
NOT_STARTED_CANCEL_REASON = "payment timed out (its workflow did not run)"


@dataclass
class Reconciled:
    seen: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    finished: bool = True

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def execution_status(order: Order) -> str | None:
    """The order's current execution's status (RUNNING, SUCCEEDED, FAILED, ...), None if it never started."""
    from botocore.exceptions import BotoCoreError, ClientError

    machine = get_settings().sfn_order_fulfilment
    if not machine:
        raise UpstreamFailed("The workflow is not configured")
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:{fulfilment.execution_name(order)}"
    try:
        described = aws.client("stepfunctions").describe_execution(executionArn=arn)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return None
        raise UpstreamFailed("The workflow could not be read") from exc
    except BotoCoreError as exc:
        raise UpstreamFailed("The workflow could not be read") from exc
    return str(described["status"])


def _payment_window_over(app: App, order: Order, now: datetime) -> bool:
    created = datetime.fromisoformat(order.created_at.replace("Z", "+00:00"))
    return created + timedelta(seconds=fulfilment.payment_timeout_seconds(app, order)) + GRACE <= now


def reconcile_order(app: App, order: Order, now: datetime, clock: Clock | None = None) -> str:
    """One watched order: what was done ("running", "started", "cancelled", "needs_attention", "review_started", "waiting", "done")."""
    if order.status == "refund_requested":
        return "review_started" if after_sales.heal(order) else "waiting"
    if order.status not in fulfilment.DRIVEN:
        return "done"
    status = execution_status(order)
    if status == "RUNNING":
        return "running"
    if status is None:
        if order.status == "awaiting_payment" and _payment_window_over(app, order, now):
            fulfilment.revert(app, order, "cancelled", NOT_STARTED_CANCEL_REASON, from_statuses=("awaiting_payment",), clock=clock)
            return "cancelled"
        fulfilment.start_execution(app, order)
        return "started"
    # the execution ended and left the order waiting: nobody would move it on
    fulfilment.record_failure(
        app.app_id, order.member_id, order.order_id, {"Error": "WorkflowEnded", "Cause": f"its execution {status}"}, clock
    )
    return "needs_attention"


def reconcile(now: datetime | None = None, budget_seconds: float = RECONCILE_BUDGET_SECONDS, clock: Clock | None = None) -> Reconciled:
    """Every watched order older than the grace period, oldest day first; resumable (what it did is not done twice)."""
    now = now or time_now(clock)
    deadline = time.monotonic() + budget_seconds
    before = iso(now - GRACE)
    run = Reconciled()
    for back in range(LOOKBACK_DAYS, -1, -1):
        day = (now - timedelta(days=back)).date().isoformat()
        for entry, app_id, order_id in watched(day, before):
            if time.monotonic() > deadline:
                run.finished = False
                return run
            run.seen += 1
            try:
                outcome = _one(entry, app_id, order_id, now, clock)
            except Exception as exc:  # one order's trouble never stops the others; it is tried again next run
                logger().exception("order not reconciled", extra={"order_id": order_id})
                run.errors.append(f"{order_id}: {type(exc).__name__}")
                continue
            run.count(outcome)
    log_event("orders_reconciled", seen=run.seen, errors=len(run.errors), **run.outcomes)
    return run


def _one(entry: str, app_id: str, order_id: str, now: datetime, clock: Clock | None) -> str:
    app = app_by_id(app_id)
    order = OrdersRepo().find(app_id, order_id) if app is not None else None
    if app is None or order is None:
        order_unwatch(app_id, order_id, entry)
        return "gone"
    outcome = reconcile_order(app, order, now, clock)
    current = OrdersRepo().find(app_id, order_id)
    if current is None or (current.status not in fulfilment.DRIVEN and current.status != "refund_requested"):
        order_unwatch(app_id, order_id, entry)
    return outcome


def reconcile_orders(event: Any, context: Any = None) -> dict[str, Any]:
    """The scheduled job: reconcile within the Lambda's remaining time (less a margin)."""
    budget = RECONCILE_BUDGET_SECONDS
    context = context if context is not None else getattr(event, "context", None)
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        budget = min(budget, context.get_remaining_time_in_millis() / 1000 - 10)
    run = reconcile(budget_seconds=max(budget, 1.0))
    return {"seen": run.seen, "outcomes": run.outcomes, "errors": run.errors, "finished": run.finished}
