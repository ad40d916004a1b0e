"""Payment and ad events: recorded durably once, and applied (points) in the same transaction.

The event record is itself the exactly-once guard: a provider retry, or the same delivery arriving
twice at once, finds it and applies nothing. Events that earn nothing (no matching task, unknown
member, cycle full) are still recorded so the provider gets its 2xx and stops retrying.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from chalicelib.core import hooks
from chalicelib.core.clock import Clock, epoch, iso, time_now
from chalicelib.core.errors import LimitReached, NotFound
from chalicelib.core.hooks import PaymentReceived, PaymentVerdict
from chalicelib.core.ids import member_id_for
from chalicelib.core.table import keys
from chalicelib.core.table.requests import RequestsRepo
from chalicelib.core.txn.unit import DuplicateEffect, GuardSpec, VersionConflict, WebhookEventSpec
from chalicelib.points.engine import execute, new_entry_id
from chalicelib.points.models import LedgerEntry, PointsProfile
from chalicelib.points.store.points import Commit, PointsRepo, ProfileChange
from chalicelib.tasks.models import ConsumptionTask, Task, WatchAdTask
from chalicelib.tasks.tasks import counter_for, credit_commit, live_tasks
from chalicelib.tenancy.models import App

# Providers retry for days (WeChat Pay: up to 24 h, others longer); keep every event id for 30 days.
EVENT_RETENTION = timedelta(days=30)


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


def handle_payment(
    app: App,
    provider: str,
    event: PaymentLike,
    raw: bytes,
    points_repo: PointsRepo | None = None,
    requests: RequestsRepo | None = None,
    clock: Clock | None = None,
) -> Handled:
    now = time_now(clock)
    spec = _spec(app, "payments", provider, event.id, event.type, raw, now)
    member_id = member_id_for(app.app_id, event.openid)
    if event.type == "payment.succeeded":
        # A Jifen mall order awaiting this payment is paid (and its workflow resumed) first; a wrong amount
        # or a cancelled order is recorded and nothing else. Then consumption tasks earn as for any payment.
        verdicts = hooks.emit(PaymentReceived(app, event.order_id, event.amount_fen, event.paid_at, clock))
        if PaymentVerdict.REFUSED in verdicts:
            return _record_only(spec, requests)
        candidates = [
            (task, consumption_points(task.definition, event))
            for task in live_tasks(app, "consumption", now)
            if isinstance(task.definition, ConsumptionTask)
        ]
        earning = [(task, points) for task, points in candidates if points > 0]
        if not earning:
            return _record_only(spec, requests)
        task, points = earning[0]
        order_guard = GuardSpec(
            pk=keys.app_guard_pk(app.app_id, "order", event.order_id),
            sk=keys.GUARD_SK,
            result={"order_id": event.order_id, "openid": event.openid},
        )

        refunded_first = GuardSpec(pk=keys.app_guard_pk(app.app_id, "order-refund", event.order_id), sk=keys.GUARD_SK, result={})

        def credit(profiles: list[PointsProfile]) -> Commit:
            commit = credit_commit(
                app,
                member_id,
                profiles[0],
                task,
                points,
                now,
                f"order:{event.order_id}",
                task.definition.title,
                counters=[counter_for(app, member_id, task, now)],
                guards=[order_guard],
                events=[spec],
                kind="consumption",
            )
            commit.absent.append(refunded_first)  # a refund that arrived first: this order earns nothing
            return commit

        return _apply(app, member_id, spec, credit, points_repo, requests)
    if event.type == "payment.refunded":
        repo = points_repo or PointsRepo()
        first = repo.get_guard(GuardSpec(pk=keys.app_guard_pk(app.app_id, "order", event.order_id), sk=keys.GUARD_SK, result={}))
        credited = int(first[0]["entry"]["delta"]) if first and first[0].get("entry") else 0
        clawback_guard = GuardSpec(
            pk=keys.app_guard_pk(app.app_id, "order-refund", event.order_id), sk=keys.GUARD_SK, result={"order_id": event.order_id}
        )
        if first is None:
            # Refunded before its payment arrived: mark the order so the late payment earns nothing
            # (only while the order is still unpaid: if the payment lands meanwhile, claw it back).
            order_guard = GuardSpec(pk=keys.app_guard_pk(app.app_id, "order", event.order_id), sk=keys.GUARD_SK, result={})
            try:
                repo.commit(Commit(app.app_id, member_id, guards=[clawback_guard], webhook_events=[spec], absent=[order_guard]))
            except DuplicateEffect as dup:
                if (dup.guard.pk, dup.guard.sk) == (order_guard.pk, order_guard.sk):
                    return handle_payment(app, provider, event, raw, points_repo, requests, clock)
                return _record_only(spec, requests)
            except VersionConflict:
                return handle_payment(app, provider, event, raw, points_repo, requests, clock)
            return Handled(duplicate=False)
        if credited <= 0:
            return _record_only(spec, requests)
        # Claw back from the member the order credited, whatever openid the refund names.
        credited_openid = first[0].get("openid")
        if isinstance(credited_openid, str):
            member_id = member_id_for(app.app_id, credited_openid)

        def claw_back(profiles: list[PointsProfile]) -> Commit:
            profile = profiles[0]
            taken = min(credited, profile.balance)
            entry = LedgerEntry(
                id=new_entry_id(now),
                delta=-taken,
                reason=f"order {event.order_id} refunded",
                reference=f"order-refund:{event.order_id}",
                balance_after=profile.balance - taken,
                at=iso(now),
                kind="clawback",
                note=None if taken == credited else f"{credited - taken} already spent",
            )
            change = ProfileChange(expected_version=profile.version, balance_delta=-taken, require_balance=taken, spent_add=taken)
            guard = GuardSpec(pk=clawback_guard.pk, sk=clawback_guard.sk, result={"entry": entry.model_dump()})
            return Commit(app.app_id, member_id, profile=change, ledger=entry, guards=[guard], webhook_events=[spec])

        return _apply(app, member_id, spec, claw_back, repo, requests)
    return _record_only(spec, requests)


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
        first = (repo or PointsRepo()).get_guard(
            GuardSpec(pk=keys.app_guard_pk(app.app_id, "order", order_id), sk=keys.GUARD_SK, result={})
        )
        openid = first[0].get("openid") if first else None
        return openid if isinstance(openid, str) else UNKNOWN_PAYER

    return lookup
