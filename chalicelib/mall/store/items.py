"""The mall's PynamoDB items: goods, allocations, orders, CDK codes. They never leave mall/store: repositories
return domain objects.
"""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    UnicodeAttribute,
)

from chalicelib.core.table.items import BaseItem


class GoodsItem(BaseItem):
    """Enterprise stock (G1): the document plus the two numbers conditions work on.

    ``total`` only grows; ``available`` is what is not allocated to an app yet (never below 0).
    """

    tenant_id = UnicodeAttribute()
    goods_id = UnicodeAttribute()
    document = UnicodeAttribute()
    total = NumberAttribute()
    available = NumberAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = NumberAttribute(default=1)


class AllocationItem(BaseItem):
    """An app's sub-stock (G2): settings document + net allocated quantity; stock itself is in shards."""

    app_id = UnicodeAttribute()
    tenant_id = UnicodeAttribute()
    allocation_id = UnicodeAttribute()
    goods_id = UnicodeAttribute()
    document = UnicodeAttribute()
    quantity = NumberAttribute()
    online = BooleanAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = NumberAttribute(default=1)


class OrderItem(BaseItem):
    """A mall order (G4–G6, E1–E2) in the member's partition; GSI1 by day, GSI2 by status and day."""

    order_id = UnicodeAttribute()
    app_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    openid = UnicodeAttribute()
    listing_id = UnicodeAttribute()
    status = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    document = UnicodeAttribute()  # the rest of the order (validated by models.mall.Order)
    task_token = UnicodeAttribute(null=True)
    version = NumberAttribute(default=1)


class CodeItem(BaseItem):
    """One CDK code of a goods pool; free codes are in the sparse GSI1 ``POOL#{goods}#{bucket}``."""

    goods_id = UnicodeAttribute()
    code = UnicodeAttribute()
    import_id = UnicodeAttribute()
    chunk = NumberAttribute()
    seq = NumberAttribute()
    order_id = UnicodeAttribute(null=True)
    app_id = UnicodeAttribute(null=True)
    issued_at = UnicodeAttribute(null=True)
