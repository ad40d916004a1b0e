"""Order fulfilment that waits (G5, E1): points + cash payment, physical shipping, cash red packets.

The exchange commits first; then a Standard execution named by the order id takes over
(infra/statemachines/order_fulfilment.asl.json). It loops "route by the order's status → one step"
until the order is final. Every step reads the order and writes under a condition on its status and
version, so a step that runs twice (Lambda retries, a replayed webhook) finds its work done and
returns where the order is now.

Waiting steps keep their task token on the order. Whoever moves a waiting order on (the payment
webhook, the shipping API) writes DynamoDB first and resumes the token after; a waiting step that
finds the order already moved on resumes itself. So neither side depends on the other's timing.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any

from chalicelib.core import aws
from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.config import get_settings
from chalicelib.core.errors import Conflict, NotFound, SoldOut, UpstreamFailed
from chalicelib.core.hooks import PaymentVerdict
from chalicelib.core.ids import member_id_for
from chalicelib.core.observability import logger
from chalicelib.core.table import keys
from chalicelib.core.txn.unit import ConditionRefused, GuardSpec, Write
from chalicelib.mall.models.catalog import Fulfilment, Goods, Order, Shipment
from chalicelib.mall.store.allocations import AllocationsRepo
from chalicelib.mall.store.goods import GoodsRepo
from chalicelib.mall.store.listings import ListingsRepo
from chalicelib.mall.store.orders import (
    OrdersRepo,
    code_claims,
    code_releases,
    free_codes,
    order_token,
    order_token_clear,
    order_token_put,
    order_update,
    release_stock,
)
from chalicelib.payments.payouts import PayoutAdapter, PayoutRequest, payout_adapter
from chalicelib.points.engine import execute, new_entry_id, plan_earn
from chalicelib.points.models import LedgerEntry, PointsProfile
from chalicelib.points.store.points import Commit, PointsRepo
from chalicelib.tenancy.models import App
from chalicelib.tenancy.store.apps import AppsRepo

# A waiting step and the order status it waits in.
WAITS = {"payment": "awaiting_payment", "shipment": "awaiting_shipment"}
DEFAULT_PAYMENT_TIMEOUT = 900
CODE_ATTEMPTS = 6  # another order took the CDK code we picked: pick again
MOVE_ATTEMPTS = 5  # the order changed between read and write: read again


# --- starting -------------------------------------------------------------------------------------


def payment_timeout_seconds(app: App, order: Order) -> int:
    """The listing's payment window (from the config cache the exchange just filled)."""
    listing = next((item for item in ListingsRepo().all_cached(app.app_id) if item.listing_id == order.listing_id), None)
    return listing.payment_timeout_seconds if listing is not None else DEFAULT_PAYMENT_TIMEOUT


def execution_input(app: App, order: Order) -> dict[str, Any]:
    return {
        "app_id": app.app_id,
        "order_id": order.order_id,
        "member_id": order.member_id,
        "status": order.status,
        "payment_timeout_seconds": payment_timeout_seconds(app, order),
    }


def start(app: App, order: Order) -> None:
    """Start the order's execution (named by the order id: a repeated start is a no-op).

    If it cannot start, an order that would otherwise hold points and stock forever (unpaid, or a red
    packet nobody pays out) is undone at once and the member sees 502; an order awaiting shipment stays:
    the shipping API works without its execution.
    """
    try:
        aws.start_execution(get_settings().sfn_order_fulfilment, order.order_id, execution_input(app, order))
    except UpstreamFailed:
        if order.status == "awaiting_shipment":
            logger().warning("fulfilment not started; the order can still be shipped", extra={"order_id": order.order_id})
            return
        revert(app, order, "cancelled", "the order could not be processed", from_statuses=(order.status,))
        raise UpstreamFailed("The order could not be processed now; your points were given back") from None


# --- workflow steps (each idempotent) ---------------------------------------------------------------


def _app(app_id: str) -> App:
    app = AppsRepo().get_cached(app_id)
    if app is None:
        raise NotFound("App not found")
    return app


def _order(app_id: str, member_id: str, order_id: str) -> Order:
    order = OrdersRepo().get(app_id, member_id, order_id)
    if order is None:
        raise NotFound("Order not found")
    return order


def _write(order: Order, writes: list[Write]) -> None:
    PointsRepo().commit(Commit(order.app_id, order.member_id, writes=writes))


def _move(app_id: str, member_id: str, order_id: str, allowed: tuple[str, ...], change: Callable[[Order], Order]) -> tuple[Order, bool]:
    """Apply ``change`` to the order if it is in one of ``allowed``; (the order now, whether this call moved it)."""
    for _ in range(MOVE_ATTEMPTS):
        current = _order(app_id, member_id, order_id)
        if current.status not in allowed:
            return current, False
        try:
            _write(current, [order_update(change(current), current.version, allowed)])
        except ConditionRefused as refused:
            if refused.label == "order":
                continue
            raise
        return _order(app_id, member_id, order_id), True
    raise Conflict("The order is changing; retry")


def hold(app_id: str, member_id: str, order_id: str, step: str, token: str) -> str:
    """A waiting step: keep its task token on the order, or resume at once if the order moved on."""
    waiting_in = WAITS[step]
    order = _order(app_id, member_id, order_id)
    if order.status == waiting_in and order_token_put(order, step, token, waiting_in):
        return "waiting"
    order = _order(app_id, member_id, order_id)
    _resume(token, order)
    return order.status


def _resume(token: str, order: Order, step: str | None = None) -> None:
    """Resume a waiting step; a token held on the order (``step``) is forgotten once used, so it is never resumed twice."""
    # Conflict: that step was resumed already (or gave up waiting): nothing left to resume
    with contextlib.suppress(Conflict):
        aws.send_task_success(token, {"status": order.status})
    if step is not None:
        order_token_clear(order, step, token)


def resume_waiting(order: Order) -> None:
    """Resume the step waiting on this order, if any, after the order was moved on (best effort, logged)."""
    for step, status in WAITS.items():
        if order.status == status:
            continue  # still waiting for exactly this: nothing to resume
        token = order_token(order.app_id, order.member_id, order.order_id, step)
        if token is None:
            continue
        try:
            _resume(token, order, step)
        except UpstreamFailed:
            logger().warning("order moved on but its workflow could not be resumed", extra={"order_id": order.order_id, "step": step})


def settle_payment(app_id: str, member_id: str, order_id: str, clock: Clock | None = None) -> Order:
    """Paid → fulfilled like a points-only order: physical (or manual) → awaiting shipment; virtual → completed."""
    order = _order(app_id, member_id, order_id)
    if order.status != "paid":
        return order
    app = _app(app_id)
    allocation = AllocationsRepo().get(app_id, order.allocation_id)
    goods = GoodsRepo().get_cached(app.tenant_id, order.goods_id)
    now = iso(time_now(clock))
    if order.category == "red_packet":
        return _move(app_id, member_id, order_id, ("paid",), lambda o: o.model_copy(update={"status": "paying_out", "updated_at": now}))[0]
    why = None
    if order.category != "physical" and allocation is not None and allocation.auto_fulfil and goods is not None:
        try:
            return _fulfil_virtual(app, order, goods, clock)
        except (SoldOut, NotFound) as failed:
            why = f"paid; could not fulfil automatically ({failed.message}): the operator fulfils this order"
            logger().warning("paid order needs manual fulfilment", extra={"order_id": order_id, "why": failed.message})
    return _move(
        app_id,
        member_id,
        order_id,
        ("paid",),
        lambda o: o.model_copy(update={"status": "awaiting_shipment", "updated_at": now, "reason": why or o.reason}),
    )[0]


def _fulfil_virtual(app: App, order: Order, goods: Goods, clock: Clock | None) -> Order:
    """Codes claimed, link set or points credited, in one transaction with paid → completed."""
    now = time_now(clock)
    at = iso(now)
    category = order.category
    target: tuple[App, str] | None = None
    if category == "points":
        target_app = AppsRepo().get_cached(goods.target_app_id or "")
        if target_app is None or target_app.tenant_id != app.tenant_id:
            raise NotFound("the target app no longer exists")
        target = (target_app, member_id_for(target_app.app_id, order.openid))
    elif category not in ("cdk", "coupon_link"):
        raise NotFound(f"{category} goods are not fulfilled automatically")
    points = (goods.points or 0) * order.quantity
    for _ in range(CODE_ATTEMPTS):
        codes = free_codes(order.goods_id, order.quantity) if category == "cdk" else []
        fulfilment = Fulfilment(
            codes=[code for _, code in codes] if category == "cdk" else None,
            url=goods.coupon_url if category == "coupon_link" else None,
            points_credited=points if target else None,
            target_app_id=target[0].app_id if target else None,
        )
        changed = order.model_copy(update={"status": "completed", "completed_at": at, "updated_at": at, "fulfilment": fulfilment})

        def plan(profiles: list[PointsProfile], changed: Order = changed, codes: list[tuple[str, str]] = codes) -> Commit:
            writes = [order_update(changed, order.version, ("paid",))]
            writes += code_claims(order.goods_id, codes, changed)
            commit = Commit(app.app_id, order.member_id, writes=writes)
            if target is not None:
                target_app, target_member = target
                profile = profiles[-1]
                credit = Commit(
                    target_app.app_id,
                    target_member,
                    profile=plan_earn(target_app, profile, points, now, daily_cap=False).change,
                    ledger=LedgerEntry(
                        id=new_entry_id(now),
                        delta=points,
                        reason=f"mall: {order.title}",
                        reference=f"{app.app_id}:{order.order_id}",
                        balance_after=profile.balance + points,
                        at=at,
                        kind="transfer_in",
                        note=f"exchanged in {app.app_id}",
                    ),
                )
                if (target_app.app_id, target_member) == (app.app_id, order.member_id):
                    commit.profile, commit.ledger = credit.profile, credit.ledger
                else:
                    commit.others.append(credit)
            return commit

        members = [(app.app_id, order.member_id)]
        if target is not None and (target[0].app_id, target[1]) != members[0]:
            members.append((target[0].app_id, target[1]))
        try:
            execute(members, plan, None, PointsRepo(), missing="the member has no account in the target app")
        except ConditionRefused as refused:
            if refused.label == "code":
                continue
            if refused.label == "order":
                return _order(app.app_id, order.member_id, order.order_id)  # settled by a concurrent run
            raise
        return _order(app.app_id, order.member_id, order.order_id)
    raise SoldOut("no codes left in the pool")


def pay_out(app_id: str, member_id: str, order_id: str, adapter: PayoutAdapter | None = None, clock: Clock | None = None) -> Order:
    """Red packet: pay through the adapter (idempotent by the order id), then paying_out → completed.

    PayoutFailed (no money moved) propagates for the workflow to retry, then compensate.
    """
    order = _order(app_id, member_id, order_id)
    if order.status != "paying_out":
        return order
    app = _app(app_id)
    goods = GoodsRepo().get_cached(app.tenant_id, order.goods_id)
    amount = (goods.amount_fen or 0) * order.quantity if goods is not None else 0
    request = PayoutRequest(app_id=app_id, reference=order_id, openid=order.openid, amount_fen=amount)
    result = (adapter or payout_adapter()).pay(request)
    logger().info("payout", extra={"order_id": order_id, "amount_fen": amount, "transfer_id": result.transfer_id})
    at = iso(time_now(clock))

    def completed(current: Order) -> Order:
        fulfilment = current.fulfilment.model_copy(update={"payout_reference": result.transfer_id})
        return current.model_copy(update={"status": "completed", "completed_at": at, "updated_at": at, "fulfilment": fulfilment})

    return _move(app_id, member_id, order_id, ("paying_out",), completed)[0]


def cancel(app_id: str, member_id: str, order_id: str, from_status: str, reason: str, clock: Clock | None = None) -> Order:
    """Compensation: an unpaid order timed out, or a payout failed — status, stock and points back, once."""
    return revert(_app(app_id), _order(app_id, member_id, order_id), "cancelled", reason, from_statuses=(from_status,), clock=clock)


def confirm_shipment(app_id: str, member_id: str, order_id: str, shipment: dict[str, Any] | None, clock: Clock | None = None) -> Order:
    """After the shipment wait: the shipping API marked the order shipped already (then a no-op);
    a resume that carries a shipment of its own applies it."""
    order = _order(app_id, member_id, order_id)
    if order.status != "awaiting_shipment" or not shipment:
        return order
    return _ship(_app(app_id), order, Shipment.model_validate(shipment), clock)


# --- moving orders on from outside: payment webhook, shipping -----------------------------------


# ids the exchange gives orders: "o" + logic.points.new_entry_id (13 digits of ms, 10 hex)
MALL_ORDER_ID = re.compile(r"o[0-9]{13}[0-9a-f]{10}")


def on_payment(app: App, order_id: str, amount_fen: int, paid_at: str | None, clock: Clock | None = None) -> PaymentVerdict:
    """A payment webhook for ``order_id``: if it is a mall order awaiting this payment, mark it paid and resume its workflow."""
    if not MALL_ORDER_ID.fullmatch(order_id):
        return PaymentVerdict.NOT_MINE  # the tenant's own order: no lookup (most payments are these)
    order = OrdersRepo().find(app.app_id, order_id)
    if order is None:
        return PaymentVerdict.NOT_MINE
    log = logger()
    if order.cash_fen == 0 or amount_fen != order.cash_fen:
        log.warning(
            "mall payment ignored: wrong amount", extra={"order_id": order_id, "amount_fen": amount_fen, "expected": order.cash_fen}
        )
        return PaymentVerdict.REFUSED
    if order.status == "cancelled":
        log.warning("payment for a cancelled mall order: refund it", extra={"order_id": order_id, "reason": order.reason})
        return PaymentVerdict.REFUSED
    at = iso(time_now(clock))
    order, _ = _move(
        app.app_id,
        order.member_id,
        order_id,
        ("awaiting_payment",),
        lambda o: o.model_copy(update={"status": "paid", "paid_at": paid_at or at, "updated_at": at}),
    )
    if order.status == "cancelled":  # the payment window closed while this payment arrived
        log.warning("payment for a cancelled mall order: refund it", extra={"order_id": order_id, "reason": order.reason})
        return PaymentVerdict.REFUSED
    if order.status == "paid":
        token = order_token(app.app_id, order.member_id, order_id, "payment")
        if token is not None:
            _resume(token, order, "payment")  # UpstreamFailed → the provider retries; the order is paid already
    log.info("mall order paid", extra={"order_id": order_id, "status": order.status})
    return PaymentVerdict.SETTLED


def find_order(app: App, order_id: str) -> Order:
    order = OrdersRepo().find(app.app_id, order_id)
    if order is None:
        raise NotFound("Order not found")
    return order


def ship(app: App, order_id: str, shipment: Shipment, clock: Clock | None = None) -> Order:
    """E1 / G5: an operator ships an order awaiting shipment (DynamoDB first, then the waiting workflow)."""
    return _ship(app, find_order(app, order_id), shipment, clock)


def _ship(app: App, order: Order, shipment: Shipment, clock: Clock | None) -> Order:
    at = iso(time_now(clock))

    def shipped(current: Order) -> Order:
        fulfilment = current.fulfilment.model_copy(
            update={"carrier": shipment.carrier, "tracking_no": shipment.tracking_no, "shipped_at": at}
        )
        return current.model_copy(update={"status": "shipped", "updated_at": at, "fulfilment": fulfilment})

    current, moved = _move(app.app_id, order.member_id, order.order_id, ("awaiting_shipment",), shipped)
    if not moved:
        raise Conflict(f"This order is {current.status.replace('_', ' ')}, not awaiting shipment")
    resume_waiting(current)
    return current


# --- undo -----------------------------------------------------------------------------------------


def revert(
    app: App,
    order: Order,
    status: str,
    reason: str,
    *,
    from_statuses: tuple[str, ...],
    points_back: bool = True,
    stock_back: bool = True,
    extra: dict[str, object] | None = None,
    clock: Clock | None = None,
) -> Order:
    """Undo an order in one transaction: its state, the stock it took, its CDK codes, and (if asked) its points.

    Exactly once: the order's state and version are conditions, and the points refund carries a guard
    on the order id; a repeated call returns the order as it is now.
    """
    now = time_now(clock)
    repo = OrdersRepo()
    for _ in range(5):
        current = repo.get(app.app_id, order.member_id, order.order_id)
        if current is None:
            raise NotFound("Order not found")
        if current.status not in from_statuses:
            return current  # already reverted (or moved on): nothing to do twice
        changed = current.model_copy(update={"status": status, "reason": reason, "updated_at": iso(now), **(extra or {})})
        refund_points = current.points if points_back and current.points else 0
        guard = GuardSpec(
            pk=keys.app_guard_pk(app.app_id, "order-revert", current.order_id), sk=keys.GUARD_SK, result={"order_id": current.order_id}
        )

        def plan(
            profiles: list[PointsProfile],
            current: Order = current,
            changed: Order = changed,
            refund_points: int = refund_points,
            guard: GuardSpec = guard,
        ) -> Commit:
            writes: list[Write] = [order_update(changed, current.version, from_statuses)]
            if stock_back:
                writes += release_stock(current)
            writes += code_releases(current.goods_id, current.fulfilment.codes or [], current.order_id)
            change, entry = None, None
            if refund_points:
                change = plan_earn(app, profiles[0], refund_points, now, daily_cap=False).change
                entry = LedgerEntry(
                    id=new_entry_id(now),
                    delta=refund_points,
                    reason=f"mall: {reason}",
                    reference=current.order_id,
                    balance_after=profiles[0].balance + refund_points,
                    at=iso(now),
                    kind="refund",
                    note=f"order {current.order_id} {status}",
                )
            return Commit(app.app_id, current.member_id, profile=change, ledger=entry, guards=[guard], writes=writes)

        try:
            execute([(app.app_id, current.member_id)], plan, guard, PointsRepo())
        except ConditionRefused as refused:
            if refused.label == "order":
                continue  # the order moved meanwhile: look again
            raise
        found = repo.get(app.app_id, order.member_id, order.order_id)
        assert found is not None
        return found
    raise Conflict("The order is changing; retry")
