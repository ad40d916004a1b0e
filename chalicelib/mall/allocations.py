"""Allocations (G2): stock moved from goods into an app's sharded sub-stock, with its limits; top-ups and
returns.
"""

from __future__ import annotations

import secrets

from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.errors import Conflict, NotFound, ValidationFailed
from chalicelib.core.models import checked, merge_patch
from chalicelib.mall.goods import get_goods
from chalicelib.mall.models.catalog import (
    Allocation,
    AllocationIn,
    AllocationPatch,
)
from chalicelib.mall.store.allocations import AllocationsRepo
from chalicelib.tenancy.models import App

# --- G2 allocations --------------------------------------------------------------------------------


def create_allocation(app: App, body: AllocationIn, repo: AllocationsRepo | None = None, clock: Clock | None = None) -> Allocation:
    goods = get_goods(app.tenant_id, body.goods_id)
    if goods.category == "points" and goods.target_app_id == app.app_id:
        raise ValidationFailed(
            "Points goods credit another app: allocate them to a different app",
            details=[{"field": "goods_id", "problem": "targets this app"}],
        )
    now = iso(time_now(clock))
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
    """Only the fields sent change (JSON merge patch: limits merge per period); the result is validated before the write."""
    repo = repo or AllocationsRepo()
    current = get_allocation(app, allocation_id, repo)
    changes = patch.model_dump(exclude_unset=True, exclude={"expected_version"})
    changed = checked(Allocation, merge_patch(current.model_dump(), {**changes, "updated_at": iso(time_now(clock))}), "allocation")
    repo.replace_settings(changed, patch.expected_version)
    return get_allocation(app, allocation_id, repo)


def top_up(app: App, allocation_id: str, quantity: int, repo: AllocationsRepo | None = None, clock: Clock | None = None) -> Allocation:
    repo = repo or AllocationsRepo()
    allocation = get_allocation(app, allocation_id, repo)
    repo.top_up(allocation, app.tenant_id, quantity, iso(time_now(clock)))
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
            repo.give_back(allocation, app.tenant_id, parts, iso(time_now(clock)))
        except Conflict:
            continue  # a concurrent exchange took from a shard we chose: read again
        return get_allocation(app, allocation_id, repo)
    raise Conflict("The stock is changing too fast to return now; retry")
