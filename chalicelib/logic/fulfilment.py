"""Order fulfilment that waits (G5, E1): physical shipping, cash red packets, points + cash payment.

The exchange commits first; then a Standard execution named by the order id takes over
(infra/statemachines/order_fulfilment.asl.json). Its name makes a repeated start a no-op.
"""

from __future__ import annotations

from chalicelib.adapters import aws
from chalicelib.clock import Clock, SystemClock, iso
from chalicelib.config import get_settings
from chalicelib.dal import keys
from chalicelib.dal.mall import OrdersRepo, code_release, order_update, release_stock
from chalicelib.dal.points import Commit, ConditionRefused, GuardSpec, PointsRepo, Write
from chalicelib.errors import Conflict, NotFound
from chalicelib.logic.points import execute, new_entry_id, plan_earn
from chalicelib.models.domain import App, LedgerEntry, PointsProfile
from chalicelib.models.mall import Order


def start(app: App, order: Order) -> None:
    payload = {"app_id": app.app_id, "order_id": order.order_id, "member_id": order.member_id}
    aws.start_execution(get_settings().sfn_order_fulfilment, order.order_id, payload)


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
    now = (clock or SystemClock()).now()
    repo = OrdersRepo()
    for _ in range(5):
        current = repo.get(app.app_id, order.member_id, order.order_id)
        if current is None:
            raise NotFound("Order not found")
        if current.status not in from_statuses:
            return current  # already reverted (or moved on): nothing to do twice
        changed = current.model_copy(update={"status": status, "reason": reason, "updated_at": iso(now), **(extra or {})})
        refund_points = current.points if points_back and current.points else 0
        guard = GuardSpec(pk=keys.app_guard_pk(app.app_id, "order-revert", current.order_id), sk=keys.GUARD_SK, result={"order_id": current.order_id})

        def plan(profiles: list[PointsProfile], current: Order = current, changed: Order = changed, refund_points: int = refund_points) -> Commit:
            writes: list[Write] = [order_update(changed, current.version, from_statuses)]
            if stock_back:
                writes += release_stock(current)
            writes += [code_release(current.goods_id, code, current.order_id) for code in current.fulfilment.codes or []]
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
