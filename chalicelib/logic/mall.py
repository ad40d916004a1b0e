"""The points mall (G1–G4): goods, allocations, listings, and the exchange — one transaction, never oversold.

An exchange reads the member's profile (one consistent GetItem), decides from cached configuration, and
writes in one transaction: the points debit (``balance >= cost``), a stock shard (``n >= quantity``),
every limit counter (``count <= limit - quantity``), the order, the ledger entry, the Idempotency-Key
guard, and checks that the listing and allocation are still the versions it decided on (online). Virtual
goods are fulfilled in the same transaction (a CDK code claimed, points credited to the target app).
"""

from __future__ import annotations

import base64
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalicelib.adapters import aws
from chalicelib.clock import Clock, SystemClock, iso
from chalicelib.dal import keys
from chalicelib.dal.apps import AppsRepo, config_cache
from chalicelib.dal.mall import (
    AllocationsRepo,
    GoodsRepo,
    ListingsRepo,
    OrdersRepo,
    code_claims,
    free_codes,
    order_put,
    stock_write,
)
from chalicelib.dal.points import Commit, ConditionRefused, CounterSpec, GuardSpec, PointsRepo, Write
from chalicelib.errors import Conflict, IdempotencyMismatch, NotFound, NotOnSale, SoldOut, ValidationFailed
from chalicelib.logic import tasks
from chalicelib.logic.ids import member_id_for
from chalicelib.logic.points import execute, fingerprint, local_day, new_entry_id, plan_earn, plan_spend
from chalicelib.models.domain import App, LedgerEntry, Page, PointsProfile
from chalicelib.models.mall import (
    Allocation,
    AllocationIn,
    AllocationPatch,
    ExchangeRequest,
    Fulfilment,
    Goods,
    GoodsIn,
    GoodsPatch,
    Listing,
    ListingIn,
    ListingPatch,
    ListingView,
    Order,
)

STOCK_ATTEMPTS = 8  # shard retries before SOLD_OUT / busy
CONFIG_ATTEMPTS = 2  # the listing or allocation changed under us: decide again on fresh config
CODE_ATTEMPTS = 6  # another exchange took the CDK code we picked
NO_ACCOUNT_THERE = "You have no account in the target app yet: log in there first"


def _now(clock: Clock | None) -> datetime:
    return (clock or SystemClock()).now()


# --- G1 goods --------------------------------------------------------------------------------------


def _own_images(tenant_id: str, images: list[str]) -> None:
    """Image keys come from this tenant's upload endpoint: another tenant's key would leak its image."""
    if any(not key.startswith(f"goods/{tenant_id}/") for key in images):
        raise ValidationFailed(
            "Images must be uploaded through this tenant's image endpoint", details=[{"field": "images", "problem": "unknown key"}]
        )


def create_goods(tenant_id: str, body: GoodsIn, repo: GoodsRepo | None = None, clock: Clock | None = None) -> Goods:
    _own_images(tenant_id, body.images)
    now = iso(_now(clock))
    goods = Goods(
        **body.model_dump(),
        goods_id=f"g_{secrets.token_hex(8)}",
        tenant_id=tenant_id,
        available=body.total,
        created_at=now,
        updated_at=now,
        version=1,
    )
    (repo or GoodsRepo()).create(goods)
    return goods


def get_goods(tenant_id: str, goods_id: str, repo: GoodsRepo | None = None) -> Goods:
    goods = (repo or GoodsRepo()).get(tenant_id, goods_id, consistent=True)
    if goods is None:
        raise NotFound("Goods not found")
    return goods


def list_goods(tenant_id: str, cursor: str | None, limit: int, repo: GoodsRepo | None = None) -> Page[Goods]:
    return (repo or GoodsRepo()).page(tenant_id, cursor, limit)


def edit_goods(tenant_id: str, goods_id: str, patch: GoodsPatch, repo: GoodsRepo | None = None, clock: Clock | None = None) -> Goods:
    repo = repo or GoodsRepo()
    _own_images(tenant_id, patch.images)
    current = get_goods(tenant_id, goods_id, repo)
    fields = patch.model_dump(exclude={"expected_version"})
    changed = current.model_copy(update={**fields, "updated_at": iso(_now(clock))})
    repo.replace_fields(changed, patch.expected_version)
    return get_goods(tenant_id, goods_id, repo)


def add_goods_stock(tenant_id: str, goods_id: str, add: int, repo: GoodsRepo | None = None, clock: Clock | None = None) -> Goods:
    """Total only grows. CDK goods grow by importing codes (a number alone would be stock without codes)."""
    repo = repo or GoodsRepo()
    goods = get_goods(tenant_id, goods_id, repo)
    if goods.category == "cdk":
        raise ValidationFailed("CDK goods grow by importing codes", details=[{"field": "add", "problem": "upload a code file instead"}])
    repo.add_total(tenant_id, goods_id, add, iso(_now(clock)))
    return get_goods(tenant_id, goods_id, repo)


def image_upload(tenant_id: str, content_type: str) -> tuple[str, str]:
    extension = content_type.split("/")[1]
    key = f"goods/{tenant_id}/{secrets.token_hex(10)}.{extension}"
    return key, aws.upload_url(key, content_type)


# --- G2 allocations --------------------------------------------------------------------------------


def create_allocation(app: App, body: AllocationIn, repo: AllocationsRepo | None = None, clock: Clock | None = None) -> Allocation:
    goods = get_goods(app.tenant_id, body.goods_id)
    if goods.category == "points" and goods.target_app_id == app.app_id:
        raise ValidationFailed(
            "Points goods credit another app: allocate them to a different app",
            details=[{"field": "goods_id", "problem": "targets this app"}],
        )
    now = iso(_now(clock))
    allocation = Allocation(
        **body.model_dump(exclude={"goods_id", "quantity", "shards"}),
        allocation_id=f"al_{secrets.token_hex(8)}",
        app_id=app.app_id,
        goods_id=goods.goods_id,
        category=goods.category,
        use=goods.use,
        shards=body.shards,
        quantity=body.quantity,
        created_at=now,
        updated_at=now,
        version=1,
    )
    (repo or AllocationsRepo()).create(allocation, app.tenant_id)
    return allocation.model_copy(update={"stock": body.quantity})


def get_allocation(app: App, allocation_id: str, repo: AllocationsRepo | None = None) -> Allocation:
    repo = repo or AllocationsRepo()
    found = repo.get(app.app_id, allocation_id, consistent=True)
    if found is None:
        raise NotFound("Allocation not found")
    return found.model_copy(update={"stock": sum(max(0, n) for n in repo.stock(app.app_id, allocation_id, found.shards).values())})


def list_allocations(app: App, repo: AllocationsRepo | None = None) -> list[Allocation]:
    repo = repo or AllocationsRepo()
    allocations = repo.all(app.app_id)
    stock = repo.stocks(allocations)
    return [a.model_copy(update={"stock": stock.get(a.allocation_id, 0)}) for a in allocations]


def edit_allocation(
    app: App, allocation_id: str, patch: AllocationPatch, repo: AllocationsRepo | None = None, clock: Clock | None = None
) -> Allocation:
    repo = repo or AllocationsRepo()
    current = get_allocation(app, allocation_id, repo)
    changed = current.model_copy(update={**patch.model_dump(exclude={"expected_version"}), "updated_at": iso(_now(clock))})
    repo.replace_settings(changed, patch.expected_version)
    return get_allocation(app, allocation_id, repo)


def top_up(app: App, allocation_id: str, quantity: int, repo: AllocationsRepo | None = None, clock: Clock | None = None) -> Allocation:
    repo = repo or AllocationsRepo()
    allocation = get_allocation(app, allocation_id, repo)
    repo.top_up(allocation, app.tenant_id, quantity, iso(_now(clock)))
    return get_allocation(app, allocation_id, repo)


def give_back(app: App, allocation_id: str, quantity: int, repo: AllocationsRepo | None = None, clock: Clock | None = None) -> Allocation:
    """Unsold stock back to the goods: taken from the fullest shards, each conditioned on having it."""
    repo = repo or AllocationsRepo()
    for _ in range(5):
        allocation = get_allocation(app, allocation_id, repo)
        shards = repo.stock(app.app_id, allocation_id, allocation.shards, consistent=True)
        if sum(max(0, n) for n in shards.values()) < quantity:
            raise Conflict(f"Only {sum(max(0, n) for n in shards.values())} left in this allocation")
        parts: dict[int, int] = {}
        left = quantity
        for shard, n in sorted(shards.items(), key=lambda kv: -kv[1]):
            if left == 0:
                break
            take = min(max(0, n), left)
            if take:
                parts[shard] = take
                left -= take
        try:
            repo.give_back(allocation, app.tenant_id, parts, iso(_now(clock)))
        except Conflict:
            continue  # a concurrent exchange took from a shard we chose: read again
        return get_allocation(app, allocation_id, repo)
    raise Conflict("The stock is changing too fast to return now; retry")


# --- G3 listings -----------------------------------------------------------------------------------


def create_listing(app: App, body: ListingIn, repo: ListingsRepo | None = None, clock: Clock | None = None) -> Listing:
    allocation = get_allocation(app, body.allocation_id)
    goods = get_goods(app.tenant_id, allocation.goods_id)
    _check_price(goods, body.price_points, body.price_fen)
    now = iso(_now(clock))
    listing = Listing(
        **body.model_dump(exclude={"title"}),
        title=body.title or goods.name,
        listing_id=f"l_{secrets.token_hex(8)}",
        app_id=app.app_id,
        goods_id=goods.goods_id,
        category=goods.category,
        use=goods.use,
        created_at=now,
        updated_at=now,
        version=1,
    )
    return (repo or ListingsRepo()).put(listing, None, allocation.shards)


def _check_price(goods: Goods, price_points: int, price_fen: int) -> None:
    if goods.use == "ecommerce" and price_fen == 0:
        raise ValidationFailed("E-commerce products are sold for cash", details=[{"field": "price_fen", "problem": "required"}])
    if goods.category == "red_packet" and price_fen:
        raise ValidationFailed("Cash red packets are bought with points only", details=[{"field": "price_fen", "problem": "must be 0"}])


def get_listing(app: App, listing_id: str, repo: ListingsRepo | None = None) -> Listing:
    found = (repo or ListingsRepo()).get(app.app_id, listing_id)
    if found is None:
        raise NotFound("Listing not found")
    return found


def list_listings(app: App, repo: ListingsRepo | None = None) -> list[Listing]:
    return sorted((repo or ListingsRepo()).all(app.app_id), key=lambda item: item.created_at, reverse=True)


def edit_listing(app: App, listing_id: str, patch: ListingPatch, repo: ListingsRepo | None = None, clock: Clock | None = None) -> Listing:
    repo = repo or ListingsRepo()
    current = get_listing(app, listing_id, repo)
    if current.status == "void":
        raise Conflict("A void listing cannot be edited")
    goods = get_goods(app.tenant_id, current.goods_id)
    _check_price(goods, patch.price_points, patch.price_fen)
    fields = patch.model_dump(exclude={"expected_version"})
    fields["title"] = patch.title or current.title
    changed = current.model_copy(update={**fields, "updated_at": iso(_now(clock))})
    return repo.put(changed, patch.expected_version, get_allocation(app, current.allocation_id).shards)


def set_listing_status(app: App, listing_id: str, status: str, repo: ListingsRepo | None = None, clock: Clock | None = None) -> Listing:
    """online / offline / draft / void; void is final (the listing stays for its orders' history)."""
    repo = repo or ListingsRepo()
    current = get_listing(app, listing_id, repo)
    if current.status == "void":
        raise Conflict("A void listing cannot change")
    changed = current.model_copy(update={"status": status, "updated_at": iso(_now(clock))})
    return repo.put(changed, current.version, get_allocation(app, current.allocation_id).shards)


@dataclass(frozen=True)
class Offer:
    """A listing with what it is sold from: the basis of a purchase decision (cached, then proven by conditions)."""

    listing: Listing
    allocation: Allocation
    goods: Goods


def _offer(app: App, listing_id: str, *, fresh: bool = False) -> Offer:
    """From the few-second cache; ``fresh`` reads every part consistently (after a condition said it changed)."""
    listings, allocations, goods_repo = ListingsRepo(), AllocationsRepo(), GoodsRepo()
    if fresh:
        listing = listings.get(app.app_id, listing_id)
        listings.forget(app.app_id)
    else:
        listing = next((item for item in listings.all_cached(app.app_id) if item.listing_id == listing_id), None)
    if listing is None or listing.status in ("draft", "void"):
        raise NotFound("Listing not found")
    if fresh:  # consistent reads: an eventually consistent one could return the version just refused
        config_cache().forget(("allocation", app.app_id, listing.allocation_id))
        config_cache().forget(("goods", app.tenant_id, listing.goods_id))
        allocation = allocations.get(app.app_id, listing.allocation_id, consistent=True)
        goods = goods_repo.get(app.tenant_id, listing.goods_id, consistent=True)
    else:
        allocation = allocations.get_cached(app.app_id, listing.allocation_id)
        goods = goods_repo.get_cached(app.tenant_id, listing.goods_id)
    if allocation is None or goods is None:
        raise NotFound("Listing not found")
    return Offer(listing, allocation, goods)


def why_not_on_sale(offer: Offer, at: datetime) -> str | None:
    listing, allocation, goods = offer.listing, offer.allocation, offer.goods
    if listing.status != "online" or not allocation.online:
        return "offline"
    for start in (listing.sale_starts_at, allocation.valid_from):
        if start is not None and at < start:
            return "not started"
    for end in (listing.sale_ends_at, allocation.valid_to):
        if end is not None and at >= end:
            return "ended"
    if goods.expires_at is not None and at >= goods.expires_at:
        return "expired"
    if goods.category == "coupon":
        return "Jifen coupons are not available yet"
    return None


def _view(offer: Offer, stock: int, at: datetime) -> ListingView:
    listing, goods = offer.listing, offer.goods
    reason = why_not_on_sale(offer, at) or ("sold out" if stock <= 0 else None)
    return ListingView(
        listing_id=listing.listing_id,
        title=listing.title,
        subtitle=listing.subtitle,
        category=listing.category,
        use=listing.use,
        description=goods.description,
        images=[aws.download_url(key) for key in goods.images],
        price_points=listing.price_points,
        price_fen=listing.price_fen,
        strike_points=listing.strike_points,
        strike_fen=listing.strike_fen,
        sale_starts_at=listing.sale_starts_at,
        sale_ends_at=listing.sale_ends_at,
        delivery_days=listing.delivery_days,
        max_per_order=listing.max_per_order,
        stock=max(0, stock),
        on_sale=reason is None,
        not_on_sale_reason=reason,
        needs_address=listing.category == "physical",
    )


def member_listings(
    app: App, member_id: str | None = None, listing_ids: list[str] | None = None, clock: Clock | None = None
) -> list[ListingView]:
    """Listings members can see (online, not void), best first, with live stock (one BatchGetItem)."""
    now = _now(clock)
    wanted = set(listing_ids) if listing_ids is not None else None
    offers: list[Offer] = []
    allocations, goods_repo = AllocationsRepo(), GoodsRepo()
    for listing in ListingsRepo().all_cached(app.app_id):
        if listing.status != "online" or (wanted is not None and listing.listing_id not in wanted):
            continue
        allocation = allocations.get_cached(app.app_id, listing.allocation_id)
        goods = goods_repo.get_cached(app.tenant_id, listing.goods_id)
        if allocation is not None and goods is not None:
            offers.append(Offer(listing, allocation, goods))
    stock = allocations.stocks({offer.allocation.allocation_id: offer.allocation for offer in offers}.values())
    views = [_view(offer, stock.get(offer.allocation.allocation_id, 0), now) for offer in offers]
    if listing_ids is not None:
        order = {listing_id: index for index, listing_id in enumerate(listing_ids)}
        return sorted(views, key=lambda view: order[view.listing_id])
    weights = {offer.listing.listing_id: (-offer.listing.sort_weight, offer.listing.created_at) for offer in offers}
    return sorted(views, key=lambda view: weights[view.listing_id])


def listing_page(app: App, cursor: str | None, limit: int, clock: Clock | None = None) -> tuple[list[ListingView], str | None]:
    views = member_listings(app, clock=clock)
    start = _offset(cursor)
    end = start + limit
    return views[start:end], (base64.urlsafe_b64encode(f"o{end}".encode()).decode() if end < len(views) else None)


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not text.startswith("o") or not text[1:].isdigit() or len(text) > 8:
            raise ValueError(text)
        return int(text[1:])
    except ValueError:
        raise ValidationFailed("Invalid cursor", details=[{"field": "cursor", "problem": "not a cursor from this list"}]) from None


def member_listing(app: App, listing_id: str, clock: Clock | None = None) -> ListingView:
    views = member_listings(app, listing_ids=[listing_id], clock=clock)
    if not views:
        raise NotFound("Listing not found")
    return views[0]


# --- G4 exchange -----------------------------------------------------------------------------------


def period_keys(app: App, at: datetime) -> dict[str, tuple[str, int]]:
    """Limit periods in the app's local calendar: key and when its counter may be forgotten (epoch)."""
    day = local_day(app, at)
    iso_year, iso_week, _ = day.isocalendar()
    half = 1 if day.month <= 6 else 2
    ends = {
        "day": day + timedelta(days=1),
        "week": day + timedelta(days=8 - day.isoweekday()),
        "month": date(day.year + (day.month == 12), day.month % 12 + 1, 1),
        "half_year": date(day.year + (half == 2), 7 if half == 1 else 1, 1),
        "year": date(day.year + 1, 1, 1),
    }
    names = {
        "day": day.isoformat(),
        "week": f"{iso_year}-W{iso_week:02d}",
        "month": day.strftime("%Y-%m"),
        "half_year": f"{day.year}-H{half}",
        "year": str(day.year),
    }
    # counters outlive their period by two days (time zones, clock skew), then TTL removes them
    return {p: (names[p], int(datetime.combine(ends[p], datetime.min.time(), UTC).timestamp()) + 2 * 86_400) for p in names}


def limit_counters(app: App, allocation: Allocation, member_id: str, device_id: str, quantity: int, at: datetime) -> list[CounterSpec]:
    periods = period_keys(app, at)
    counters = []
    for scope, pk, limits in (
        ("member", keys.member_pk(app.app_id, member_id), allocation.member_limits.active()),
        ("device", keys.device_pk(app.app_id, device_id), allocation.device_limits.active()),
    ):
        for period, limit in limits.items():
            name, ttl = periods[period]
            counters.append(
                CounterSpec(
                    pk=pk,
                    sk=keys.counter_sk(f"alloc:{allocation.allocation_id}:{period}", name),
                    limit=limit,
                    ttl=ttl,
                    by=quantity,
                    reason=f"At most {limit} per {scope} per {period.replace('_', ' ')}",
                )
            )
    if allocation.total_out_limit >= 0:
        counters.append(
            CounterSpec(
                pk=keys.allocation_out_pk(app.app_id, allocation.allocation_id),
                sk="OUT",
                limit=allocation.total_out_limit,
                ttl=int(at.timestamp()) + 5 * 366 * 86_400,
                by=quantity,
                reason="This item's total limit is reached",
            )
        )
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
    now = _now(clock)
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
            stock_write(app.app_id, allocation.allocation_id, shard, -part, gate=gate) for shard, part in attempt.shards.items()
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
    """After the transaction: start the workflow orders that wait need, then the mall-exchange task hook."""
    from chalicelib.logic import fulfilment

    if order.status in ("awaiting_payment", "awaiting_shipment", "paying_out"):
        fulfilment.start(app, order)
    tasks.on_mall_exchanged(app, order.member_id, order.listing_id, order.order_id)


# --- member orders ---------------------------------------------------------------------------------


def member_orders(app: App, member_id: str, cursor: str | None, limit: int) -> Page[Order]:
    return OrdersRepo().member_page(app.app_id, member_id, cursor, limit)


def member_order(app: App, member_id: str, order_id: str) -> Order:
    order = OrdersRepo().get(app.app_id, member_id, order_id)
    if order is None:
        raise NotFound("Order not found")
    return order
