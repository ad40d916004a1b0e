"""Listings (G3): what an app sells, at what price, when; the member's views of them with live stock."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from chalicelib.core import aws
from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.errors import Conflict, NotFound, ValidationFailed
from chalicelib.core.models import checked, merge_patch
from chalicelib.core.table import cursors
from chalicelib.core.table.cache import config_cache
from chalicelib.mall.allocations import get_allocation
from chalicelib.mall.goods import get_goods
from chalicelib.mall.models.catalog import (
    Allocation,
    Goods,
    Listing,
    ListingIn,
    ListingPatch,
    ListingView,
)
from chalicelib.mall.store.allocations import AllocationsRepo
from chalicelib.mall.store.goods import GoodsRepo
from chalicelib.mall.store.listings import ListingsRepo
from chalicelib.tenancy.models import App

# --- G3 listings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """A listing with what it is sold from: the basis of a purchase decision (cached, then proven by conditions)."""

    listing: Listing
    allocation: Allocation
    goods: Goods


def create_listing(app: App, body: ListingIn, repo: ListingsRepo | None = None, clock: Clock | None = None) -> Listing:
    allocation = get_allocation(app, body.allocation_id)
    goods = get_goods(app.tenant_id, allocation.goods_id)
    _check_price(goods, body.price_points, body.price_fen)
    now = iso(time_now(clock))
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
    """Only the fields sent change (JSON merge patch); the resulting listing is validated before the write."""
    repo = repo or ListingsRepo()
    current = get_listing(app, listing_id, repo)
    if current.status == "void":
        raise Conflict("A void listing cannot be edited")
    changes = patch.model_dump(exclude_unset=True, exclude={"expected_version"})
    changed = checked(Listing, merge_patch(current.model_dump(), {**changes, "updated_at": iso(time_now(clock))}), "listing")
    _check_price(get_goods(app.tenant_id, current.goods_id), changed.price_points, changed.price_fen)
    return repo.put(changed, patch.expected_version, get_allocation(app, current.allocation_id).shards)


def set_listing_status(app: App, listing_id: str, status: str, repo: ListingsRepo | None = None, clock: Clock | None = None) -> Listing:
    """online / offline / draft / void; void is final (the listing stays for its orders' history)."""
    repo = repo or ListingsRepo()
    current = get_listing(app, listing_id, repo)
    if current.status == "void":
        raise Conflict("A void listing cannot change")
    changed = current.model_copy(update={"status": status, "updated_at": iso(time_now(clock))})
    return repo.put(changed, current.version, get_allocation(app, current.allocation_id).shards)


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


def _visible_offers(app: App, wanted: set[str] | None = None) -> list[Offer]:
    """Listings members can see (online, allocation and goods known), from the cached configuration only.

    Whether a listing is shown never depends on its stock (a sold-out one is shown, stock 0,
    ``not_on_sale_reason`` "sold out"), so which listings are on a page is decided before any stock read.
    """
    offers: list[Offer] = []
    allocations, goods_repo = AllocationsRepo(), GoodsRepo()
    for listing in ListingsRepo().all_cached(app.app_id):
        if listing.status != "online" or (wanted is not None and listing.listing_id not in wanted):
            continue
        allocation = allocations.get_cached(app.app_id, listing.allocation_id)
        goods = goods_repo.get_cached(app.tenant_id, listing.goods_id)
        if allocation is not None and goods is not None:
            offers.append(Offer(listing, allocation, goods))
    return offers


def _best_first(offers: list[Offer]) -> list[Offer]:
    """The member's order: highest sort weight first, then oldest first (stable for equal keys)."""
    return sorted(offers, key=lambda offer: (-offer.listing.sort_weight, offer.listing.created_at))


def _views(offers: list[Offer], at: datetime) -> list[ListingView]:
    """These offers with live stock: only their allocations' shards are read (one BatchGetItem per 100 shards)."""
    stock = AllocationsRepo().stocks({offer.allocation.allocation_id: offer.allocation for offer in offers}.values())
    return [_view(offer, stock.get(offer.allocation.allocation_id, 0), at) for offer in offers]


def member_listings(
    app: App, member_id: str | None = None, listing_ids: list[str] | None = None, clock: Clock | None = None
) -> list[ListingView]:
    """Listings members can see (online, not void), best first, with live stock (one BatchGetItem)."""
    now = time_now(clock)
    offers = _visible_offers(app, set(listing_ids) if listing_ids is not None else None)
    if listing_ids is not None:
        order = {listing_id: index for index, listing_id in enumerate(listing_ids)}
        return _views(sorted(offers, key=lambda offer: order[offer.listing.listing_id]), now)
    return _views(_best_first(offers), now)


def listing_page(app: App, cursor: str | None, limit: int, clock: Clock | None = None) -> tuple[list[ListingView], str | None]:
    """One page of ``member_listings``: the page is chosen from the cached configuration, then only its stock is read."""
    start = _offset(cursor)
    now = time_now(clock)
    offers = _best_first(_visible_offers(app))
    end = start + limit
    return _views(offers[start:end], now), (cursors.pack({"o": end}) if end < len(offers) else None)


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    plain = cursors.unpack(cursor)
    offset = plain.get("o") if isinstance(plain, dict) and set(plain) == {"o"} else None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= 10_000:
        raise cursors.invalid_cursor()
    return offset


def member_listing(app: App, listing_id: str, clock: Clock | None = None) -> ListingView:
    views = member_listings(app, listing_ids=[listing_id], clock=clock)
    if not views:
        raise NotFound("Listing not found")
    return views[0]
