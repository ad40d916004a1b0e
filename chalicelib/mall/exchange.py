"""The points mall (G1–G4): goods, allocations, listings, and the exchange — one transaction, never oversold.

An exchange reads the member's profile (one consistent GetItem), decides from cached configuration, and
writes in one transaction: the points debit (``balance >= cost``), a stock shard (``n >= quantity``),
every limit counter (``count <= limit - quantity``), the order, the ledger entry, the Idempotency-Key
guard, and checks that the listing and allocation are still the versions it decided on (online). Free
virtual goods are fulfilled in the same transaction (``mall.virtual``: a CDK code claimed, points credited
to the target app).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

from chalicelib.core import effects, limits, stock
from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.errors import Conflict, IdempotencyMismatch, NotFound, NotOnSale, SoldOut, ValidationFailed
from chalicelib.core.hooks import MallExchanged
from chalicelib.core.models import Page
from chalicelib.core.table import keys
from chalicelib.core.txn.unit import ConditionRefused, CounterSpec, GuardSpec
from chalicelib.mall import virtual
from chalicelib.mall.listings import Offer, _offer, why_not_on_sale
from chalicelib.mall.models.catalog import (
    Allocation,
    ExchangeRequest,
    Fulfilment,
    Order,
)
from chalicelib.mall.store.allocations import AllocationsRepo
from chalicelib.mall.store.orders import OrdersRepo, order_put
from chalicelib.points.engine import Commit, Outcome, Plan, PointsRepo, execute, fingerprint, ledger_entry, new_entry_id, plan_spend
from chalicelib.points.models import PointsProfile
from chalicelib.tenancy.models import App

STOCK_ATTEMPTS = 8  # shard retries before SOLD_OUT / busy
CONFIG_ATTEMPTS = 2  # the listing or allocation changed under us: decide again on fresh config
CODE_ATTEMPTS = 6  # another exchange took the CDK code we picked
TRANSACTION_LIMIT = 100  # DynamoDB TransactWriteItems: at most 100 actions
WAITING_ON_WORKFLOW = ("awaiting_payment", "paid", "paying_out")
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


@dataclass(frozen=True)
class _Request:
    """One exchange as asked: who, what, the Idempotency-Key guard, and when."""

    app: App
    member_id: str
    openid: str
    device_id: str
    body: ExchangeRequest
    idem: GuardSpec | None
    fp: str
    who: str  # the openid points goods credit in their target app
    now: datetime


@dataclass
class _Attempt:
    """What the exchange decided besides the profile, kept across its tries: offer, target, shards, codes, tries."""

    offer: Offer
    target: virtual.Target | None
    shards: dict[int, int]
    codes: list[tuple[str, str]] = field(default_factory=list)
    config_tries: int = 0
    stock_tries: int = 0
    code_tries: int = 0


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
    who = openid if target_openid is None else target_openid
    request = _Request(app, member_id, openid, device_id, body, idem, fp, who, time_now(clock))
    try:
        return _exchange(request)
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
    order = OrdersRepo().get(app.app_id, member_id, str(result.get("order_id")))
    if order is not None:
        _restart(app, order)
    return order


def _restart(app: App, order: Order) -> bool:
    """A replayed Idempotency-Key (re)starts a waiting order's named execution: a no-op if it runs, the heal if it never
    started. Whether it tried (a final order — the usual replay — costs no call and no read)."""
    from chalicelib.mall import fulfilment

    if order.status not in WAITING_ON_WORKFLOW:
        return False
    fulfilment.start(app, order)
    return True


def _exchange(request: _Request) -> Order:
    """Decide and commit; while a condition refuses the transaction, decide again (other shards, codes, fresh config)."""
    app, body = request.app, request.body
    attempt = _Attempt(*_decide(app, body, request.who))
    while True:
        reason = why_not_on_sale(attempt.offer, request.now)
        if reason is not None:
            raise NotOnSale(f"Not on sale: {reason}")
        if not attempt.codes and _initial_status(attempt.offer) == "completed":
            attempt.codes = virtual.pick_codes(attempt.offer.goods, body.quantity)
        order = _new_order(request, attempt, "o" + new_entry_id(request.now))
        members = virtual.members(app.app_id, request.member_id, attempt.target)
        plan = _plan(request, attempt, order)
        try:
            # the buyer's profile exists (they logged in), so a missing profile is the target app's
            outcome = execute(members, plan, request.idem, PointsRepo(), expected_fingerprint=request.fp, missing=NO_ACCOUNT_THERE)
        except ConditionRefused as refused:
            _try_again(request, attempt, refused.label)
            continue
        if not outcome.applied:
            return _replayed(request, outcome)
        _after_exchange(app, order)
        return order


def _decide(app: App, body: ExchangeRequest, who: str, *, fresh: bool = False) -> tuple[Offer, virtual.Target | None, dict[int, int]]:
    """The offer (cached, or ``fresh``) checked against the request, the account its points go to, the shard to try first."""
    offer = _offer(app, body.listing_id, fresh=fresh)
    _validate_request(offer, body)
    return offer, _points_target(app, offer, who), _first_shards(offer.allocation, body.quantity)


def _try_again(request: _Request, attempt: _Attempt, label: str) -> None:
    """After a refused transaction: change what refused it (shards, codes), or raise when there is nothing left to try."""
    if label == "stock":
        _other_shards(request, attempt)
    elif label == "code":
        if attempt.code_tries >= CODE_ATTEMPTS:
            raise SoldOut("No codes left") from None
        attempt.code_tries += 1
        attempt.codes = []
    else:
        raise NotOnSale("Not on sale: the listing changed") from None


def _other_shards(request: _Request, attempt: _Attempt) -> None:
    """A stock shard refused: take from the shards that have stock, or decide again on fresh config if it changed."""
    if attempt.stock_tries >= STOCK_ATTEMPTS:
        raise Conflict("The item is in high demand; retry") from None
    attempt.stock_tries += 1
    shards = _shards_with_stock(attempt.offer, request.body.quantity, AllocationsRepo())
    if shards is not None:
        attempt.shards = shards
        return
    if attempt.config_tries >= CONFIG_ATTEMPTS:
        raise NotOnSale("Not on sale: the listing changed") from None
    attempt.config_tries += 1
    # the listing or allocation changed: decide again on fresh config (its price decides whether points are credited now)
    attempt.offer, attempt.target, attempt.shards = _decide(request.app, request.body, request.who, fresh=True)


def _replayed(request: _Request, outcome: Outcome) -> Order:
    """A repeated Idempotency-Key whose guard is written: the first exchange's order."""
    replay = OrdersRepo().get(request.app.app_id, request.member_id, str(outcome.extra.get("order_id")))
    if replay is None:
        raise Conflict("The first attempt with this Idempotency-Key is still in progress; retry")
    if not _restart(request.app, replay):
        return replay
    # a start that could not run may have undone the order (points and stock back): answer what it is now
    return OrdersRepo().get(request.app.app_id, request.member_id, replay.order_id) or replay


def _validate_request(offer: Offer, body: ExchangeRequest) -> None:
    if body.quantity > offer.listing.max_per_order:
        raise ValidationFailed(
            f"At most {offer.listing.max_per_order} per order",
            details=[{"field": "quantity", "problem": f"1..{offer.listing.max_per_order}"}],
        )
    if offer.goods.category == "physical" and body.address is None:
        raise ValidationFailed("Physical goods need a delivery address", details=[{"field": "address", "problem": "required"}])


def _points_target(app: App, offer: Offer, target_openid: str) -> virtual.Target | None:
    """Free points goods credit the member's account in another app of the tenant (P7) in the exchange's transaction."""
    if offer.goods.category != "points" or offer.listing.price_fen:
        return None
    target = virtual.target_member(app, offer.goods, target_openid)
    if target is None:
        raise NotOnSale("Not on sale: the target app no longer exists")
    return target


def _initial_status(offer: Offer) -> str:
    if offer.listing.price_fen:
        return "awaiting_payment"
    if not offer.allocation.auto_fulfil or offer.goods.category == "physical":
        return "awaiting_shipment"
    if offer.goods.category == "red_packet":
        return "paying_out"
    return "completed"


def _new_order(request: _Request, attempt: _Attempt, order_id: str) -> Order:
    """The order this try would write; free virtual goods are completed (fulfilled) in the same transaction."""
    listing, allocation, goods = attempt.offer.listing, attempt.offer.allocation, attempt.offer.goods
    quantity = request.body.quantity
    at = iso(request.now)
    status = _initial_status(attempt.offer)
    fulfilment = virtual.delivery(goods, quantity, attempt.codes, attempt.target) if status == "completed" else Fulfilment()
    return Order(
        order_id=order_id,
        app_id=request.app.app_id,
        member_id=request.member_id,
        openid=request.openid,
        listing_id=listing.listing_id,
        allocation_id=allocation.allocation_id,
        goods_id=goods.goods_id,
        category=goods.category,
        use=goods.use,
        title=listing.title,
        quantity=quantity,
        points=listing.price_points * quantity,
        cash_fen=listing.price_fen * quantity,
        status=status,  # type: ignore[arg-type]
        address=request.body.address,
        shards={str(shard): part for shard, part in attempt.shards.items()},
        fulfilment=fulfilment,
        points_back_on_return=listing.points_back_on_return,
        created_at=at,
        updated_at=at,
        completed_at=at if status == "completed" else None,
    )


def _plan(request: _Request, attempt: _Attempt, order: Order) -> Plan:
    """The transaction of this try: stock taken, the order, limits counted, points spent, free virtual goods fulfilled."""
    app, member_id, now, idem = request.app, request.member_id, request.now, request.idem
    listing, allocation = attempt.offer.listing, attempt.offer.allocation
    shards, codes, target = attempt.shards, attempt.codes, attempt.target
    gate = (allocation.version, listing.listing_id, listing.version)

    def plan(profiles: list[PointsProfile]) -> Commit:
        writes = [stock.take_or_put(app.app_id, allocation.allocation_id, shard, -part, gated=gate) for shard, part in shards.items()]
        commit = Commit(
            app.app_id,
            member_id,
            guards=[GuardSpec(idem.pk, idem.sk, {"order_id": order.order_id}, idem.fingerprint)] if idem else [],
            counters=limit_counters(app, allocation, member_id, request.device_id, order.quantity, now),
            writes=writes + order_put(order),
        )
        if order.points:
            commit.profile = plan_spend(profiles[0], order.points)
            note = f"{order.quantity} x {listing.price_points}"
            commit.ledger = ledger_entry(
                profiles[0], -order.points, f"mall: {listing.title}", order.order_id, now, kind="mall_exchange", note=note
            )
        if order.status == "completed":
            virtual.fulfil(commit, app, order, codes, target, profiles, now)
        check_transaction_size(commit, order)
        return commit

    return plan


def _actions(commit: Commit) -> int:
    work = commit.unit_of_work()
    return len(work.guards) + len(work.counters) + len(work.absent) + len(work.webhook_events) + len(work.writes)


def _code_actions(quantity: int) -> int:
    """A CDK order's code claims: one per code, and one issued counter per code bucket they fall in (at most all)."""
    return quantity + min(quantity, keys.CODE_BUCKETS)


def check_transaction_size(commit: Commit, order: Order) -> None:
    """Refuse (400) an order whose transaction — now, or its CDK codes' claim once paid — DynamoDB would refuse.

    One order is one transaction of at most ``TRANSACTION_LIMIT`` actions (a signed request's nonce may add one).
    A paid CDK order claims its codes later with the order's update: that transaction must fit too.
    """
    now = _actions(commit) + 1
    later = _code_actions(order.quantity) + 2 if order.category == "cdk" and order.status == "awaiting_payment" else 0
    if max(now, later) <= TRANSACTION_LIMIT:
        return
    if order.category != "cdk":
        raise ValidationFailed(f"This order is too large: one order is one DynamoDB transaction of at most {TRANSACTION_LIMIT} actions")
    most = max(1, TRANSACTION_LIMIT - (max(now, later) - _code_actions(order.quantity)) - keys.CODE_BUCKETS)
    raise ValidationFailed(
        f"At most {most} codes per order: one order is one DynamoDB transaction of at most {TRANSACTION_LIMIT} actions",
        details=[{"field": "quantity", "problem": f"1..{most}"}],
    )


def _after_exchange(app: App, order: Order) -> None:
    """After the transaction: start the workflow orders that wait need, then tell whoever reacts to an exchange.

    An order awaiting payment is not exchanged yet (it is cancelled if never paid): the mall tells of it when the
    payment settles it (``fulfilment.on_payment``). What reacts runs as a post-commit effect: it never fails the
    committed exchange (a failure is recorded and retried by the ``retry_effects`` job).
    """
    from chalicelib.mall import fulfilment

    if order.status in ("awaiting_payment", "awaiting_shipment", "paying_out"):
        fulfilment.start(app, order)
    if order.status != "awaiting_payment":
        effects.emit_after_commit(MallExchanged(app, order.member_id, order.listing_id, order.order_id))


# --- member orders ---------------------------------------------------------------------------------


def member_orders(app: App, member_id: str, cursor: str | None, limit: int) -> Page[Order]:
    return OrdersRepo().member_page(app.app_id, member_id, cursor, limit)


def member_order(app: App, member_id: str, order_id: str) -> Order:
    order = OrdersRepo().get(app.app_id, member_id, order_id)
    if order is None:
        raise NotFound("Order not found")
    return order
