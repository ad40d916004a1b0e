"""Virtual goods, fulfilled in the transaction that completes their order, and undone by ``fulfilment.revert``.

CDK codes are claimed from the goods' pool (a claim's condition is the truth: a code another order took
refuses the transaction as ``code`` and the caller picks again), a coupon link is handed over, and points
goods credit the member's account in the target app of the same tenant (P7). A free order is completed
by the exchange's own transaction (``exchange``); an order paid in cash by ``fulfilment.settle_payment``.
Both build the same items here.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.core.ids import member_id_for
from chalicelib.core.txn.unit import Write
from chalicelib.mall.models.catalog import Fulfilment, Goods, Order
from chalicelib.mall.store.orders import code_claims, code_releases, free_codes
from chalicelib.points.engine import Commit, MemberKey, ledger_entry, plan_earn
from chalicelib.points.models import PointsProfile
from chalicelib.tenancy.access import app_by_id
from chalicelib.tenancy.models import App

Target = tuple[App, str]  # points goods: the target app, and the member's id there


def target_member(app: App, goods: Goods, openid: str) -> Target | None:
    """Points goods: the member's account in the goods' target app; None when that app is gone (or another tenant's).

    No profile read: the completing transaction reads it anyway, and a missing one refuses it.
    """
    target = app_by_id(goods.target_app_id or "")
    if target is None or target.tenant_id != app.tenant_id:
        return None
    return target, member_id_for(target.app_id, openid)


def pick_codes(goods: Goods, quantity: int) -> list[tuple[str, str]]:
    """CDK goods: (digest, code) of free codes to claim (SOLD_OUT when the pool has too few); other goods: none."""
    return free_codes(goods.goods_id, quantity) if goods.category == "cdk" else []


def delivery(goods: Goods, quantity: int, codes: list[tuple[str, str]], target: Target | None) -> Fulfilment:
    """What the member receives, as the completed order shows it."""
    if goods.category == "cdk":
        return Fulfilment(codes=[code for _, code in codes])
    if goods.category == "coupon_link":
        return Fulfilment(url=goods.coupon_url)
    if goods.category == "points" and target is not None:
        return Fulfilment(points_credited=(goods.points or 0) * quantity, target_app_id=target[0].app_id)
    return Fulfilment()


def members(app_id: str, member_id: str, target: Target | None) -> list[MemberKey]:
    """The profiles the completing transaction reads: the buyer's, then (points goods) the target member's."""
    buyer = (app_id, member_id)
    if target is None or (target[0].app_id, target[1]) == buyer:
        return [buyer]
    return [buyer, (target[0].app_id, target[1])]


def fulfil(
    commit: Commit,
    app: App,
    order: Order,
    codes: list[tuple[str, str]],
    target: Target | None,
    profiles: list[PointsProfile],
    now: datetime,
) -> Commit:
    """Add to ``commit`` (the transaction that completes ``order``) the codes' claims and the target app's credit.

    ``profiles`` are those ``members`` names, as read for this transaction.
    """
    commit.writes += code_claims(order.goods_id, codes, order)
    points = order.fulfilment.points_credited
    if target is None or not points:
        return commit
    credit = _credit(app, order, target, profiles[-1], points, now)
    if (credit.app_id, credit.member_id) == (commit.app_id, commit.member_id) and commit.profile is None:
        commit.profile, commit.ledger = credit.profile, credit.ledger
    else:
        commit.others.append(credit)
    return commit


def _credit(app: App, order: Order, target: Target, profile: PointsProfile, points: int, now: datetime) -> Commit:
    """Points goods: ``points`` into the member's account in the target app, exempt from its daily cap."""
    target_app, target_member_id = target
    change = plan_earn(target_app, profile, points, now, daily_cap=False).change
    entry = ledger_entry(
        profile,
        points,
        f"mall: {order.title}",
        f"{app.app_id}:{order.order_id}",
        now,
        kind="transfer_in",
        note=f"exchanged in {app.app_id}",
    )
    return Commit(target_app.app_id, target_member_id, profile=change, ledger=entry)


def release(order: Order) -> list[Write]:
    """Undo for a reverted order: its CDK codes back to the pool (points credited to another app stay there)."""
    return code_releases(order.goods_id, order.fulfilment.codes or [], order.order_id)
