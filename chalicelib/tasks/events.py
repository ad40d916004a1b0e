"""Payment and ad events: recorded durably once, and applied (points) in the same transaction.

The event record is itself the exactly-once guard: a provider retry, or the same delivery arriving
twice at once, finds it and applies nothing. Events that earn nothing (no matching task, unknown
member, cycle full) are still recorded so the provider gets its 2xx and stops retrying.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from chalicelib.core import hooks
from chalicelib.core.clock import Clock, epoch, iso, time_now
from chalicelib.core.errors import Conflict, LimitReached, NotFound
from chalicelib.core.hooks import PaymentReceived, PaymentVerdict
from chalicelib.core.ids import member_id_for
from chalicelib.core.table import keys
from chalicelib.core.table.requests import RequestsRepo
from chalicelib.core.txn.unit import DuplicateEffect, GuardSpec, VersionConflict, WebhookEventSpec
from chalicelib.points.engine import Commit, PointsRepo, ProfileChange, execute, ledger_entry
from chalicelib.points.models import PointsProfile
from chalicelib.tasks.models import ConsumptionTask, Task, WatchAdTask
from chalicelib.tasks.tasks import counter_for, credit_commit, live_tasks
from chalicelib.tenancy.models import App

# Providers retry for days (WeChat Pay: up to 24 h, others longer); keep every event id for 30 days.
EVENT_RETENTION = timedelta(days=30)
REFUND_ATTEMPTS = 5  # a refund racing its payment is decided again this often, then 409 (the provider retries)


class PaymentLike(Protocol):
    """A normalized payment event (generic body or a provider adapter's output)."""

    @property
    def id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def openid(self) -> str: ...
    @property
    def order_id(self) -> str: ...
    @property
    def amount_fen(self) -> int: ...
    @property
    def product_ids(self) -> list[str]: ...
    @property
    def paid_at(self) -> str | None: ...


class AdLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def openid(self) -> str: ...
    @property
    def ad_unit(self) -> str: ...


@dataclass(frozen=True)
class Handled:
    duplicate: bool
    points: int = 0


def _spec(app: App, channel: str, provider: str, event_id: str, event_type: str, raw: bytes, now: datetime) -> WebhookEventSpec:
    return WebhookEventSpec(
        app_id=app.app_id,
        provider=f"{channel}:{provider}",
        event_id=event_id,
        event_type=event_type,
        body=raw.decode("utf-8", "replace")[:32_000],
        received_at=iso(now),
        ttl=epoch(now + EVENT_RETENTION),
    )


def _record_only(spec: WebhookEventSpec, repo: RequestsRepo | None) -> Handled:
    new = (repo or RequestsRepo()).record_webhook_event(
        spec.app_id, spec.provider, spec.event_id, spec.event_type, spec.body, spec.received_at, spec.ttl
    )
    return Handled(duplicate=not new)


def _apply(
    app: App, member_id: str, spec: WebhookEventSpec, build: object, points_repo: PointsRepo | None, requests: RequestsRepo | None
) -> Handled:
    """Run the plan with the event record in its transaction; fall back to recording only."""
    repo = points_repo or PointsRepo()
    event_guard = GuardSpec(pk=keys.webhook_event_pk(spec.app_id, spec.provider, spec.event_id), sk=keys.WEBHOOK_EVENT_SK, result={})
    try:
        outcome = execute([(app.app_id, member_id)], build, None, repo)  # type: ignore[arg-type]
    except (NotFound, LimitReached):
        return _record_only(spec, requests)
    except DuplicateEffect:
        return _record_only(spec, requests)
    if not outcome.applied:
        # Either this very event (a retry) or the same business effect under another event id.
        recorded = repo.get_guard(event_guard) is not None
        return Handled(duplicate=True) if recorded and outcome.entry is None else _record_only(spec, requests)
    return Handled(duplicate=False, points=outcome.entry.delta if outcome.entry else 0)


def consumption_points(task: ConsumptionTask, event: PaymentLike) -> int:
    """Points per step of fen spent, capped per order; 0 when the product filter does not match."""
    if task.product_ids is not None and not set(task.product_ids) & set(event.product_ids):
        return 0
    points = (event.amount_fen // task.step_fen) * task.points_per_step
    return min(points, task.per_order_cap) if task.per_order_cap is not None else points


@dataclass(frozen=True)
class _Payment:
    """One payment event being handled, and what each of its steps needs."""

    app: App
    provider: str
    event: PaymentLike
    raw: bytes
    spec: WebhookEventSpec
    member_id: str  # the member the event names
    now: datetime
    points_repo: PointsRepo | None
    requests: RequestsRepo | None
    clock: Clock | None

    def record_only(self) -> Handled:
        return _record_only(self.spec, self.requests)


def _order_guard(app: App, kind: str, order_id: str, /, **result: Any) -> GuardSpec:
    """The app's guard of one order: ``order`` (its payment earned), ``order-refund`` (its refund was applied)."""
    return GuardSpec(pk=keys.app_guard_pk(app.app_id, kind, order_id), sk=keys.GUARD_SK, result=result)


def handle_payment(
    app: App,
    provider: str,
    event: PaymentLike,
    raw: bytes,
    points_repo: PointsRepo | None = None,
    requests: RequestsRepo | None = None,
    clock: Clock | None = None,
) -> Handled:
    """A payment succeeded (a mall order paid, consumption tasks earn) or was refunded (what it earned taken back)."""
    now = time_now(clock)
    payment = _Payment(
        app=app,
        provider=provider,
        event=event,
        raw=raw,
        spec=_spec(app, "payments", provider, event.id, event.type, raw, now),
        member_id=member_id_for(app.app_id, event.openid),
        now=now,
        points_repo=points_repo,
        requests=requests,
        clock=clock,
    )
    if event.type == "payment.succeeded":
        return _payment_succeeded(payment)
    if event.type == "payment.refunded":
        return _payment_refunded(payment)
    return payment.record_only()


def _payment_succeeded(payment: _Payment) -> Handled:
    """The event's record, and the first consumption task's points for the order (once per order)."""
    # A Jifen mall order awaiting this payment is paid (and its workflow resumed) first; a wrong amount
    # or a cancelled order is recorded and nothing else. Then consumption tasks earn as for any payment.
    event = payment.event
    verdicts = hooks.emit(PaymentReceived(payment.app, event.order_id, event.amount_fen, event.paid_at, payment.clock, openid=event.openid))
    if PaymentVerdict.REFUSED in verdicts:
        return payment.record_only()
    earning = _earning_task(payment.app, event, payment.now)
    if earning is None:
        return payment.record_only()
    task, points = earning
    return _apply(
        payment.app, payment.member_id, payment.spec, _consumption_credit(payment, task, points), payment.points_repo, payment.requests
    )


def _earning_task(app: App, event: PaymentLike, now: datetime) -> tuple[Task, int] | None:
    """The first live consumption task this payment earns points in, and how many."""
    candidates = [
        (task, consumption_points(task.definition, event))
        for task in live_tasks(app, "consumption", now)
        if isinstance(task.definition, ConsumptionTask)
    ]
    return next(((task, points) for task, points in candidates if points > 0), None)


def _consumption_credit(payment: _Payment, task: Task, points: int) -> Callable[[list[PointsProfile]], Commit]:
    """The credit of a paid order: guarded by the order id, and only while no refund of it came first."""
    app, event, now = payment.app, payment.event, payment.now
    order_guard = _order_guard(app, "order", event.order_id, order_id=event.order_id, openid=event.openid)
    refunded_first = _order_guard(app, "order-refund", event.order_id)

    def credit(profiles: list[PointsProfile]) -> Commit:
        commit = credit_commit(
            app,
            payment.member_id,
            profiles[0],
            task,
            points,
            now,
            f"order:{event.order_id}",
            task.definition.title,
            counters=[counter_for(app, payment.member_id, task, now)],
            guards=[order_guard],
            events=[payment.spec],
            kind="consumption",
        )
        commit.absent.append(refunded_first)  # a refund that arrived first: this order earns nothing
        return commit

    return credit


def _payment_refunded(payment: _Payment) -> Handled:
    """The event's record, and what the order earned taken back (or the order marked, if its payment has not come yet).

    A refund racing its own payment is decided again, at most ``REFUND_ATTEMPTS`` times; then a 409 (the provider retries).
    """
    repo = payment.points_repo or PointsRepo()
    for _ in range(REFUND_ATTEMPTS):
        handled = _refund_once(payment, repo)
        if handled is not None:
            return handled
    raise Conflict("This refund keeps racing its payment; retry")


def _refund_once(payment: _Payment, repo: PointsRepo) -> Handled | None:
    """One try at a refund event; None when the order's payment changed meanwhile (decide again)."""
    first = repo.get_guard(_order_guard(payment.app, "order", payment.event.order_id))
    if first is None:
        return _refund_before_payment(payment, repo)
    result = first[0]
    credited = int(result["entry"]["delta"]) if result.get("entry") else 0
    if credited <= 0:
        return payment.record_only()
    # Claw back from the member the order credited, whatever openid the refund names.
    credited_openid = result.get("openid")
    member_id = member_id_for(payment.app.app_id, credited_openid) if isinstance(credited_openid, str) else payment.member_id
    return _apply(payment.app, member_id, payment.spec, _claw_back(payment, member_id, credited), repo, payment.requests)


def _refund_before_payment(payment: _Payment, repo: PointsRepo) -> Handled | None:
    """Refunded before its payment arrived: mark the order so the late payment earns nothing.

    Only while the order is still unpaid: if the payment lands meanwhile, None (the caller decides again: claw it back).
    """
    order_id = payment.event.order_id
    order_guard = _order_guard(payment.app, "order", order_id)
    refund_guard = _order_guard(payment.app, "order-refund", order_id, order_id=order_id)
    try:
        repo.commit(
            Commit(payment.app.app_id, payment.member_id, guards=[refund_guard], webhook_events=[payment.spec], absent=[order_guard])
        )
    except DuplicateEffect as dup:
        if (dup.guard.pk, dup.guard.sk) == (order_guard.pk, order_guard.sk):
            return None
        return payment.record_only()
    except VersionConflict:
        return None
    return Handled(duplicate=False)


def _claw_back(payment: _Payment, member_id: str, credited: int) -> Callable[[list[PointsProfile]], Commit]:
    """Take back what the order credited, or what is left of it, once (the ``order-refund`` guard)."""
    app, order_id = payment.app, payment.event.order_id

    def claw_back(profiles: list[PointsProfile]) -> Commit:
        profile = profiles[0]
        taken = min(credited, profile.balance)
        note = None if taken == credited else f"{credited - taken} already spent"
        entry = ledger_entry(
            profile, -taken, f"order {order_id} refunded", f"order-refund:{order_id}", payment.now, kind="clawback", note=note
        )
        change = ProfileChange(expected_version=profile.version, balance_delta=-taken, require_balance=taken, spent_add=taken)
        guard = _order_guard(app, "order-refund", order_id, entry=entry.model_dump())
        return Commit(app.app_id, member_id, profile=change, ledger=entry, guards=[guard], webhook_events=[payment.spec])

    return claw_back


def handle_ad(
    app: App,
    provider: str,
    event: AdLike,
    raw: bytes,
    points_repo: PointsRepo | None = None,
    requests: RequestsRepo | None = None,
    clock: Clock | None = None,
) -> Handled:
    now = time_now(clock)
    spec = _spec(app, "ads", provider, event.id, event.type, raw, now)
    if event.type != "ad.completed":
        return _record_only(spec, requests)
    tasks: list[Task] = live_tasks(app, "watch_ad", now, lambda d: isinstance(d, WatchAdTask) and d.ad_unit in (None, event.ad_unit))
    if not tasks:
        return _record_only(spec, requests)
    task = tasks[0]
    member_id = member_id_for(app.app_id, event.openid)

    def credit(profiles: list[PointsProfile]) -> Commit:
        return credit_commit(
            app,
            member_id,
            profiles[0],
            task,
            task.definition.points,
            now,
            f"ad:{event.id}",
            task.definition.title,
            counters=[counter_for(app, member_id, task, now)],
            events=[spec],
            kind="ad",
        )

    return _apply(app, member_id, spec, credit, points_repo, requests)


UNKNOWN_PAYER = "-"


def openid_lookup(app: App, repo: PointsRepo | None = None) -> Callable[[str], str | None]:
    """Who paid for an order (for refund callbacks that do not say): from the order's consumption guard.

    An order that earned nothing has no guard; its refund must still be recorded (and may precede
    its payment), so it maps to UNKNOWN_PAYER instead of failing the provider's callback forever.
    """

    def lookup(order_id: str) -> str | None:
        first = (repo or PointsRepo()).get_guard(_order_guard(app, "order", order_id))
        openid = first[0].get("openid") if first else None
        return openid if isinstance(openid, str) else UNKNOWN_PAYER

    return lookup
