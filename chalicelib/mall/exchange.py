"""The points mall (G1–G4): goods, allocations, listings, and the exchange — one transaction, never oversold.

An exchange reads the member's profile (one consistent GetItem), decides from cached configuration, and
writes in one transaction: the points debit (``balance >= cost``), a stock shard (``n >= quantity``),
every limit counter (``count <= limit - quantity``), the order, the ledger entry, the Idempotency-Key
guard, and checks that the listing and allocation are still the versions it decided on (online). Virtual
goods are fulfilled in the same transaction (a CDK code claimed, points credited to the target app).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.core import hooks, limits, stock
from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.errors import Conflict, IdempotencyMismatch, NotFound, NotOnSale, SoldOut, ValidationFailed
from chalicelib.core.hooks import MallExchanged
from chalicelib.core.ids import member_id_for
from chalicelib.core.models import Page
from chalicelib.core.table import keys
from chalicelib.core.txn.unit import ConditionRefused, CounterSpec, GuardSpec, Write
from chalicelib.mall.listings import Offer, _offer, why_not_on_sale
from chalicelib.mall.models.catalog import (
    Allocation,
    ExchangeRequest,
    Fulfilment,
    Order,
)
from chalicelib.mall.store.allocations import AllocationsRepo
from chalicelib.mall.store.orders import OrdersRepo, code_claims, free_codes, order_put
from chalicelib.points.engine import execute, fingerprint, new_entry_id, plan_earn, plan_spend
from chalicelib.points.models import LedgerEntry, PointsProfile
from chalicelib.points.store.points import Commit, PointsRepo
from chalicelib.tenancy.models import App
from chalicelib.tenancy.store.apps import AppsRepo

STOCK_ATTEMPTS = 8  # shard retries before SOLD_OUT / busy
CONFIG_ATTEMPTS = 2  # the listing or allocation changed under us: decide again on fresh config
CODE_ATTEMPTS = 6  # another exchange took the CDK code we picked
NO_ACCOUNT_THERE = "You have no account in the target app yet: log in there first"


# --- G4 exchange -----------------------------------------------------------------------------------


def limit_counters(app: App, allocation: Allocation, member_id: str, device_id: str, quantity: int, at: datetime) -> list[CounterSpec]:
    """The allocation's per-member and per-device period limits and its total-out limit, as counters of this exchange."""
    periods = limits.calendar_periods(app.time_zone, at)
    subject = f"alloc:{allocation.allocation_id}"
    counters = [
        *limits.period_counters(
            keys.member_pk(app.app_id, member_id), subject, allocation.member_limits.active(), periods, by=quantity, who="member"
        ),
        *limits.period_counters(
            keys.device_pk(app.app_id, device_id), subject, allocation.device_limits.active(), periods, by=quantity, who="device"
        ),
    ]
    if allocation.total_out_limit >= 0:
        out_pk = keys.allocation_out_pk(app.app_id, allocation.allocation_id)
        reason = "This item's total limit is reached"
        counters.append(limits.total_counter(out_pk, allocation.total_out_limit, by=quantity, at=at, reason=reason))
    return counters


@dataclass
class _Attempt:
    """What one try of an exchange decided that is not in the profile: shards, codes."""

    shards: dict[int, int]
    codes: list[tuple[str, str]]


def _first_shards(allocation: Allocation, quantity: int) -> dict[int, int]:
    return {random.randrange(allocation.shards): quantity}  # noqa: S311 (load spreading, not security)


def _shards_with_stock(offer: Offer, quantity: int, repo: AllocationsRepo) -> dict[int, int] | None:
    """After a shard refused: read every shard (one BatchGetItem) and take from those that have some.

    None when the shards say the configuration changed since the decision (decide again on fresh config).
    """
    stock, current = repo.gated_stock(offer.allocation, offer.listing)
    if not current:
        return None
    if sum(max(0, n) for n in stock.values()) < quantity:
        raise SoldOut("Sold out")
    candidates = [shard for shard, n in stock.items() if n > 0]
    random.shuffle(candidates)
    parts: dict[int, int] = {}
    left = quantity
    for shard in candidates:
        take = min(stock[shard], left)
        parts[shard] = take
        left -= take
        if left == 0:
            break
    return parts


def exchange(
    app: App,
    member_id: str,
    openid: str,
    device_id: str,
    body: ExchangeRequest,
    idempotency_key: str | None = None,
    *,
    target_openid: str | None = None,
    clock: Clock | None = None,
) -> Order:
    """G4: one request → one order, all or nothing; a repeated Idempotency-Key returns the first order."""
    fp = fingerprint("exchange", body.model_dump(mode="json"), target_openid)
    idem = (
        GuardSpec(pk=keys.app_guard_pk(app.app_id, "idem", f"{member_id}:{idempotency_key}"), sk=keys.GUARD_SK, result={}, fingerprint=fp)
        if idempotency_key
        else None
    )
    try:
        return _exchange(app, member_id, openid, device_id, body, idem, fp, target_openid, clock)
    except (NotFound, NotOnSale, SoldOut, ValidationFailed):
        # Refused before (or instead of) the transaction: a retry of an exchange that happened answers as the first time
        # did, even if the listing went offline or sold out since. Read only on this refusal path.
        first = _first_order(app, member_id, idem, fp) if idem is not None else None
        if first is None:
            raise
        return first


def _first_order(app: App, member_id: str, idem: GuardSpec, fp: str) -> Order | None:
    found = PointsRepo().get_guard(idem)
    if found is None:
        return None
    result, stored_fingerprint = found
    if stored_fingerprint and stored_fingerprint != fp:
        raise IdempotencyMismatch("This reference was already used for a different request")
    return OrdersRepo().get(app.app_id, member_id, str(result.get("order_id")))


def _exchange(
    app: App,
    member_id: str,
    openid: str,
    device_id: str,
    body: ExchangeRequest,
    idem: GuardSpec | None,
    fp: str,
    target_openid: str | None,
    clock: Clock | None,
) -> Order:
    now = time_now(clock)
    offer = _offer(app, body.listing_id)
    _validate_request(offer, body)
    points_repo, allocations, orders = PointsRepo(), AllocationsRepo(), OrdersRepo()
    who = openid if target_openid is None else target_openid
    target = _points_target(app, offer, who)
    attempt = _Attempt(shards=_first_shards(offer.allocation, body.quantity), codes=[])
    config_tries = stock_tries = code_tries = 0
    while True:
        reason = why_not_on_sale(offer, now)
        if reason is not None:
            raise NotOnSale(f"Not on sale: {reason}")
        if offer.goods.category == "cdk" and offer.listing.price_fen == 0 and offer.allocation.auto_fulfil and not attempt.codes:
            attempt.codes = free_codes(offer.goods.goods_id, body.quantity)
        order_id = "o" + new_entry_id(now)
        plan, order = _plan(app, offer, member_id, openid, device_id, body, order_id, attempt, idem, target, now)
        members = [(app.app_id, member_id)] + ([(target[0].app_id, target[1])] if target else [])
        try:
            # the buyer's profile exists (they logged in), so a missing profile is the target app's
            outcome = execute(members, plan, idem, points_repo, expected_fingerprint=fp, missing=NO_ACCOUNT_THERE)
        except ConditionRefused as refused:
            if refused.label == "stock" and stock_tries < STOCK_ATTEMPTS:
                stock_tries += 1
                shards = _shards_with_stock(offer, body.quantity, allocations)
                if shards is not None:
                    attempt.shards = shards
                    continue
                if config_tries < CONFIG_ATTEMPTS:  # the listing or allocation changed: decide again on fresh config
                    config_tries += 1
                    offer = _offer(app, body.listing_id, fresh=True)
                    _validate_request(offer, body)
                    target = _points_target(app, offer, who)  # the fresh price decides whether points are credited now
                    attempt.shards = _first_shards(offer.allocation, body.quantity)
                    continue
                raise NotOnSale("Not on sale: the listing changed") from None
            if refused.label == "code" and code_tries < CODE_ATTEMPTS:
                code_tries += 1
                attempt.codes = []
                continue
            if refused.label == "stock":
                raise Conflict("The item is in high demand; retry") from None
            if refused.label == "code":
                raise SoldOut("No codes left") from None
            raise NotOnSale("Not on sale: the listing changed") from None
        if not outcome.applied:
            replay = orders.get(app.app_id, member_id, str(outcome.extra.get("order_id")))
            if replay is None:
                raise Conflict("The first attempt with this Idempotency-Key is still in progress; retry")
            return replay
        _after_exchange(app, order)
        return order


def _validate_request(offer: Offer, body: ExchangeRequest) -> None:
    if body.quantity > offer.listing.max_per_order:
        raise ValidationFailed(
            f"At most {offer.listing.max_per_order} per order",
            details=[{"field": "quantity", "problem": f"1..{offer.listing.max_per_order}"}],
        )
    if offer.goods.category == "physical" and body.address is None:
        raise ValidationFailed("Physical goods need a delivery address", details=[{"field": "address", "problem": "required"}])


def _points_target(app: App, offer: Offer, target_openid: str) -> tuple[App, str] | None:
    """Points goods credit the member's account in another app of the tenant (P7)."""
    if offer.goods.category != "points" or offer.listing.price_fen:
        return None
    target = AppsRepo().get_cached(offer.goods.target_app_id or "")
    if target is None or target.tenant_id != app.tenant_id:
        raise NotOnSale("Not on sale: the target app no longer exists")
    # no read here: the exchange reads both profiles anyway, and a missing one is NO_ACCOUNT_THERE
    return target, member_id_for(target.app_id, target_openid)


def _initial_status(offer: Offer) -> str:
    if offer.listing.price_fen:
        return "awaiting_payment"
    if not offer.allocation.auto_fulfil or offer.goods.category == "physical":
        return "awaiting_shipment"
    if offer.goods.category == "red_packet":
        return "paying_out"
    return "completed"


def _plan(
    app: App,
    offer: Offer,
    member_id: str,
    openid: str,
    device_id: str,
    body: ExchangeRequest,
    order_id: str,
    attempt: _Attempt,
    idem: GuardSpec | None,
    target: tuple[App, str] | None,
    now: datetime,
) -> tuple[Any, Order]:
    listing, allocation, goods = offer.listing, offer.allocation, offer.goods
    cost = listing.price_points * body.quantity
    at = iso(now)
    status = _initial_status(offer)
    fulfilment = Fulfilment()
    if status == "completed":
        if goods.category == "cdk":
            fulfilment = Fulfilment(codes=[code for _, code in attempt.codes])
        elif goods.category == "coupon_link":
            fulfilment = Fulfilment(url=goods.coupon_url)
        elif goods.category == "points" and target is not None:
            fulfilment = Fulfilment(points_credited=(goods.points or 0) * body.quantity, target_app_id=target[0].app_id)
    order = Order(
        order_id=order_id,
        app_id=app.app_id,
        member_id=member_id,
        openid=openid,
        listing_id=listing.listing_id,
        allocation_id=allocation.allocation_id,
        goods_id=goods.goods_id,
        category=goods.category,
        use=goods.use,
        title=listing.title,
        quantity=body.quantity,
        points=cost,
        cash_fen=listing.price_fen * body.quantity,
        status=status,  # type: ignore[arg-type]
        address=body.address,
        shards={str(shard): part for shard, part in attempt.shards.items()},
        fulfilment=fulfilment,
        points_back_on_return=listing.points_back_on_return,
        created_at=at,
        updated_at=at,
        completed_at=at if status == "completed" else None,
    )

    def plan(profiles: list[PointsProfile]) -> Commit:
        profile = profiles[0]
        gate = (allocation.version, listing.listing_id, listing.version)
        writes: list[Write] = [
            stock.take_or_put(app.app_id, allocation.allocation_id, shard, -part, gated=gate) for shard, part in attempt.shards.items()
        ]
        writes += order_put(order)
        if status == "completed" and goods.category == "cdk":
            writes += code_claims(goods.goods_id, attempt.codes, order)
        entry = None
        change = None
        if cost:
            change = plan_spend(profile, cost)
            entry = LedgerEntry(
                id=new_entry_id(now),
                delta=-cost,
                reason=f"mall: {listing.title}",
                reference=order_id,
                balance_after=profile.balance - cost,
                at=at,
                kind="mall_exchange",
                note=f"{body.quantity} x {listing.price_points}",
            )
        guards = [GuardSpec(idem.pk, idem.sk, {"order_id": order_id}, idem.fingerprint)] if idem else []
        others = []
        if target is not None and status == "completed" and fulfilment.points_credited:
            target_app, target_member = target
            credit = plan_earn(target_app, profiles[1], fulfilment.points_credited, now, daily_cap=False)
            into = LedgerEntry(
                id=new_entry_id(now),
                delta=fulfilment.points_credited,
                reason=f"mall: {listing.title}",
                reference=f"{app.app_id}:{order_id}",
                balance_after=profiles[1].balance + fulfilment.points_credited,
                at=at,
                kind="transfer_in",
                note=f"exchanged in {app.app_id}",
            )
            others.append(Commit(target_app.app_id, target_member, profile=credit.change, ledger=into))
        return Commit(
            app.app_id,
            member_id,
            profile=change,
            ledger=entry,
            guards=guards,
            counters=limit_counters(app, allocation, member_id, device_id, body.quantity, now),
            others=others,
            writes=writes,
        )

    return plan, order


def _after_exchange(app: App, order: Order) -> None:
    """After the transaction: start the workflow orders that wait need, then tell whoever reacts to an exchange."""
    from chalicelib.mall import fulfilment

    if order.status in ("awaiting_payment", "awaiting_shipment", "paying_out"):
        fulfilment.start(app, order)
    hooks.emit(MallExchanged(app, order.member_id, order.listing_id, order.order_id))


# --- member orders ---------------------------------------------------------------------------------


def member_orders(app: App, member_id: str, cursor: str | None, limit: int) -> Page[Order]:
    return OrdersRepo().member_page(app.app_id, member_id, cursor, limit)


def member_order(app: App, member_id: str, order_id: str) -> Order:
    order = OrdersRepo().get(app.app_id, member_id, order_id)
    if order is None:
        raise NotFound("Order not found")
    return order
