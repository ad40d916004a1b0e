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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.core import aws, effects
from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.config import get_settings
from chalicelib.core.errors import Conflict, NotFound, SoldOut, UpstreamFailed
from chalicelib.core.hooks import MallExchanged, PaymentVerdict
from chalicelib.core.observability import logger
from chalicelib.core.table import keys
from chalicelib.core.txn.unit import ConditionRefused, GuardSpec, Write
from chalicelib.mall import virtual
from chalicelib.mall.models.catalog import Goods, Order, Shipment
from chalicelib.mall.store.allocations import AllocationsRepo
from chalicelib.mall.store.goods import GoodsRepo
from chalicelib.mall.store.listings import ListingsRepo
from chalicelib.mall.store.orders import (
    OrdersRepo,
    order_token,
    order_token_clear,
    order_token_put,
    order_update,
    release_stock,
)
from chalicelib.payments.payouts import PayoutAdapter, PayoutRequest, payout_adapter
from chalicelib.payments.refunds import RefundAdapter, refund_adapter
from chalicelib.points.engine import Commit, PointsRepo, execute, ledger_entry, plan_earn
from chalicelib.points.models import PointsProfile
from chalicelib.tenancy.access import app_by_id
from chalicelib.tenancy.models import App

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


# statuses in which the order waits on its execution (the reconciler re-drives or cancels them)
DRIVEN = ("awaiting_payment", "paid", "paying_out")
UNDONE_IF_NOT_STARTED = ("awaiting_payment", "paying_out")


def execution_name(order: Order) -> str:
    """The order's execution: named by the order id (a repeated start is a no-op); a re-drive gets a new name."""
    return order.order_id if order.drive == 0 else f"{order.order_id}-r{order.drive}"


def start_execution(app: App, order: Order) -> None:
    """Start (or find running) the order's execution; UpstreamFailed when Step Functions refuses or cannot be reached."""
    aws.start_execution(get_settings().sfn_order_fulfilment, execution_name(order), execution_input(app, order))


def start(app: App, order: Order) -> None:
    """Start the order's execution (named: a repeated start — a replayed Idempotency-Key — is a no-op).

    If it cannot start, an order that would otherwise hold points and stock forever (unpaid, or a red
    packet nobody pays out) is undone at once and the member sees 502; an order awaiting shipment stays:
    the shipping API works without its execution; a paid order stays for the reconciler (its cash is in).
    """
    try:
        start_execution(app, order)
    except UpstreamFailed:
        if order.status not in UNDONE_IF_NOT_STARTED:
            logger().warning("fulfilment not started; the reconciler re-drives it", extra={"order_id": order.order_id})
            return
        revert(app, order, "cancelled", "the order could not be processed", from_statuses=(order.status,))
        raise UpstreamFailed("The order could not be processed now; your points were given back") from None


# --- workflow steps (each idempotent) ---------------------------------------------------------------


def _app(app_id: str) -> App:
    app = app_by_id(app_id)
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
    target = _virtual_target(app, order, goods)
    for _ in range(CODE_ATTEMPTS):
        try:
            _complete_virtual(app, order, goods, virtual.pick_codes(goods, order.quantity), target, now)
        except ConditionRefused as refused:
            if refused.label == "code":
                continue  # another order took a code we picked: pick again
            if refused.label != "order":
                raise
            # "order": settled by a concurrent run
        return _order(app.app_id, order.member_id, order.order_id)
    raise SoldOut("no codes left in the pool")


def _virtual_target(app: App, order: Order, goods: Goods) -> virtual.Target | None:
    """Where points goods credit; NOT_FOUND for goods that are not fulfilled automatically (or a target app gone)."""
    if order.category == "points":
        target = virtual.target_member(app, goods, order.openid)
        if target is None:
            raise NotFound("the target app no longer exists")
        return target
    if order.category not in ("cdk", "coupon_link"):
        raise NotFound(f"{order.category} goods are not fulfilled automatically")
    return None


def _complete_virtual(
    app: App, order: Order, goods: Goods, codes: list[tuple[str, str]], target: virtual.Target | None, now: datetime
) -> None:
    """paid → completed with what the member receives, in one transaction (``virtual.fulfil``)."""
    at = iso(now)
    fulfilment = virtual.delivery(goods, order.quantity, codes, target)
    changed = order.model_copy(update={"status": "completed", "completed_at": at, "updated_at": at, "fulfilment": fulfilment})

    def plan(profiles: list[PointsProfile]) -> Commit:
        commit = Commit(app.app_id, order.member_id, writes=[order_update(changed, order.version, ("paid",))])
        return virtual.fulfil(commit, app, changed, codes, target, profiles, now)

    members = virtual.members(app.app_id, order.member_id, target)
    execute(members, plan, None, PointsRepo(), missing="the member has no account in the target app")


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


def record_failure(app_id: str, member_id: str, order_id: str, error: Any, clock: Clock | None = None) -> Order:
    """The workflow's failure path: an order still waiting on it goes ``needs_attention`` with the error, for an operator.

    Nothing is given back here: whether cash or a payout moved is the operator's call (re-drive or cancel).
    """
    at = iso(time_now(clock))
    note = error if isinstance(error, dict) else {"Error": str(error)}
    attention = {k: str(note.get(k))[:500] for k in ("Error", "Cause") if note.get(k) is not None}

    def failed(current: Order) -> Order:
        info = {"from_status": current.status, "error": attention, "at": at}
        return current.model_copy(update={"status": "needs_attention", "attention": info, "updated_at": at})

    order, moved = _move(app_id, member_id, order_id, DRIVEN, failed)
    if moved:
        logger().error("order needs an operator", extra={"order_id": order_id, "error": attention})
    return order


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


def on_payment(
    app: App,
    order_id: str,
    amount_fen: int,
    paid_at: str | None,
    clock: Clock | None = None,
    *,
    openid: str | None = None,
    refunds: RefundAdapter | None = None,
) -> PaymentVerdict:
    """A payment webhook for ``order_id``: if it is a mall order awaiting this payment, mark it paid and resume its workflow.

    Refused (recorded only, nobody credited): a payer (``openid``) who is not the order's member, a wrong amount.
    A payment for an order that was cancelled meanwhile is given back through the refund adapter, once.
    """
    if not MALL_ORDER_ID.fullmatch(order_id):
        return PaymentVerdict.NOT_MINE  # the tenant's own order: no lookup (most payments are these)
    order = OrdersRepo().find(app.app_id, order_id)
    if order is None:
        return PaymentVerdict.NOT_MINE
    if not _payment_matches(order, amount_fen, openid):
        return PaymentVerdict.REFUSED
    log = logger()
    at = iso(time_now(clock))
    if order.status == "cancelled":
        return refund_late_payment(app, order, refunds, clock)
    if order.status == "needs_attention" and (order.attention or {}).get("from_status") == "awaiting_payment":
        # its workflow failed while it waited: the payment is kept on the order for the operator (re-drive settles it)
        def paid_meanwhile(o: Order) -> Order:
            attention = {**(o.attention or {}), "from_status": "paid"}
            return o.model_copy(update={"attention": attention, "paid_at": paid_at or at, "updated_at": at})

        _move(app.app_id, order.member_id, order_id, ("needs_attention",), paid_meanwhile)
        return PaymentVerdict.SETTLED
    order, moved = _move(
        app.app_id,
        order.member_id,
        order_id,
        ("awaiting_payment",),
        lambda o: o.model_copy(update={"status": "paid", "paid_at": paid_at or at, "updated_at": at}),
    )
    if order.status == "cancelled":  # the payment window closed while this payment arrived
        return refund_late_payment(app, order, refunds, clock)
    if moved:
        # paid: it can no longer be cancelled for non-payment, so the exchange counts now (the mall task credit);
        # once, by the call that moved it; a post-commit effect that never fails the webhook
        effects.emit_after_commit(MallExchanged(app, order.member_id, order.listing_id, order.order_id, clock))
    if order.status == "paid":
        token = order_token(app.app_id, order.member_id, order_id, "payment")
        if token is not None:
            _resume(token, order, "payment")  # UpstreamFailed → the provider retries; the order is paid already
    log.info("mall order paid", extra={"order_id": order_id, "status": order.status})
    return PaymentVerdict.SETTLED


def _payment_matches(order: Order, amount_fen: int, openid: str | None) -> bool:
    """The payer is the order's member and the amount its cash price (anything else is recorded, not applied)."""
    log = logger()
    if openid is None or openid != order.openid:
        log.warning("mall payment refused: the payer is not the order's member", extra={"order_id": order.order_id, "payer": openid})
        return False
    if order.cash_fen == 0 or amount_fen != order.cash_fen:
        extra = {"order_id": order.order_id, "amount_fen": amount_fen, "expected": order.cash_fen}
        log.warning("mall payment ignored: wrong amount", extra=extra)
        return False
    return True


def payment_refund_reference(order_id: str) -> str:
    """One reference for giving an order's payment back: a late payment and an operator cancel never refund twice."""
    return f"pay-{order_id}"


def refund_payment(app: App, order: Order, allowed: tuple[str, ...], refunds: RefundAdapter | None, clock: Clock | None) -> Order:
    """Give the order's cash back (by reference: exactly once) and show it on the order (``payment_refund``)."""
    if order.payment_refund:
        return order
    result = (refunds or refund_adapter()).refund(
        app, order.order_id, order.cash_fen, payment_refund_reference(order.order_id), openid=order.openid
    )
    at = iso(time_now(clock))
    record = {**result.model_dump(), "reason": order.reason}
    logger().info("mall payment refunded", extra={"order_id": order.order_id, "refund_id": result.refund_id})

    def remembered(current: Order) -> Order:
        return current if current.payment_refund else current.model_copy(update={"payment_refund": record, "updated_at": at})

    return _move(app.app_id, order.member_id, order.order_id, allowed, remembered)[0]


def refund_late_payment(app: App, order: Order, refunds: RefundAdapter | None = None, clock: Clock | None = None) -> PaymentVerdict:
    """A payment for an order cancelled before it came (timed out): the member's cash goes back, once.

    UpstreamFailed (the refund provider cannot be reached) propagates: the provider delivers the event again.
    """
    logger().warning("payment for a cancelled mall order: refunding it", extra={"order_id": order.order_id, "reason": order.reason})
    refund_payment(app, order, ("cancelled",), refunds, clock)
    return PaymentVerdict.REFUSED


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


@dataclass(frozen=True)
class _Undo:
    """What ``revert`` was asked to do."""

    status: str
    reason: str
    from_statuses: tuple[str, ...]
    points_back: bool
    stock_back: bool
    extra: dict[str, object]
    now: datetime


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
    undo = _Undo(status, reason, from_statuses, points_back, stock_back, extra or {}, time_now(clock))
    repo = OrdersRepo()
    for _ in range(MOVE_ATTEMPTS):
        current = repo.get(app.app_id, order.member_id, order.order_id)
        if current is None:
            raise NotFound("Order not found")
        if current.status not in from_statuses:
            return current  # already reverted (or moved on): nothing to do twice
        try:
            _revert_once(app, current, undo)
        except ConditionRefused as refused:
            if refused.label == "order":
                continue  # the order moved meanwhile: look again
            raise
        found = repo.get(app.app_id, order.member_id, order.order_id)
        assert found is not None
        return found
    raise Conflict("The order is changing; retry")


def _revert_once(app: App, current: Order, undo: _Undo) -> None:
    """One transaction, conditioned on the order as read: its new state, stock and codes back, points back once."""
    now = undo.now
    changed = current.model_copy(update={"status": undo.status, "reason": undo.reason, "updated_at": iso(now), **undo.extra})
    refund_points = current.points if undo.points_back and current.points else 0
    guard = GuardSpec(
        pk=keys.app_guard_pk(app.app_id, "order-revert", current.order_id), sk=keys.GUARD_SK, result={"order_id": current.order_id}
    )

    def plan(profiles: list[PointsProfile]) -> Commit:
        writes: list[Write] = [order_update(changed, current.version, undo.from_statuses)]
        if undo.stock_back:
            writes += release_stock(current)
        writes += virtual.release(current)
        commit = Commit(app.app_id, current.member_id, guards=[guard], writes=writes)
        if refund_points:
            commit.profile = plan_earn(app, profiles[0], refund_points, now, daily_cap=False).change
            note = f"order {current.order_id} {undo.status}"
            commit.ledger = ledger_entry(
                profiles[0], refund_points, f"mall: {undo.reason}", current.order_id, now, kind="refund", note=note
            )
        return commit

    execute([(app.app_id, current.member_id)], plan, guard, PointsRepo())
