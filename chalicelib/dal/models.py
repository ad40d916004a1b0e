"""PynamoDB models of the single table. They never leave dal/: repositories return domain objects."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.config import get_settings
from chalicelib.dal import schema


class _SettingsMeta(type):
    """Table name, endpoint and region come from settings when first used, not at import."""

    @property
    def table_name(cls) -> str:
        return get_settings().table

    @property
    def host(cls) -> str | None:
        return get_settings().dynamodb_endpoint

    @property
    def region(cls) -> str:
        return get_settings().region

    @property
    def read_timeout_seconds(cls) -> float:
        return get_settings().dynamodb_timeout_seconds


class _TableMeta(metaclass=_SettingsMeta):
    max_retry_attempts = 3
    connect_timeout_seconds = 2


class GSI1(GlobalSecondaryIndex["BaseItem"]):
    class Meta:
        index_name = "GSI1"
        projection = AllProjection()

    GSI1PK = UnicodeAttribute(hash_key=True)
    GSI1SK = UnicodeAttribute(range_key=True)


class GSI2(GlobalSecondaryIndex["BaseItem"]):
    class Meta:
        index_name = "GSI2"
        projection = AllProjection()

    GSI2PK = UnicodeAttribute(hash_key=True)
    GSI2SK = UnicodeAttribute(range_key=True)


assert (GSI1.Meta.index_name, GSI2.Meta.index_name) == tuple(schema.GLOBAL_SECONDARY_INDEXES)


class BaseItem(Model):
    """Keys every item has; ``kind`` tells item types apart in one partition."""

    Meta = _TableMeta  # type: ignore[assignment]

    PK = UnicodeAttribute(hash_key=True)
    SK = UnicodeAttribute(range_key=True)
    GSI1PK = UnicodeAttribute(null=True)
    GSI1SK = UnicodeAttribute(null=True)
    GSI2PK = UnicodeAttribute(null=True)
    GSI2SK = UnicodeAttribute(null=True)
    kind = UnicodeAttribute()
    # epoch seconds; DynamoDB's TTL deletes the item some time after (schema.TTL_ATTRIBUTE)
    ttl = NumberAttribute(null=True)

    gsi1 = GSI1()
    gsi2 = GSI2()


class TenantItem(BaseItem):
    tenant_id = UnicodeAttribute()
    name = UnicodeAttribute()
    created_at = UnicodeAttribute()


class OperatorItem(BaseItem):
    tenant_id = UnicodeAttribute()
    username = UnicodeAttribute()
    role = UnicodeAttribute()
    password_hash = UnicodeAttribute()
    created_at = UnicodeAttribute()
    disabled = BooleanAttribute(default=False)


class ExpiryPolicyAttribute(MapAttribute[str, Any]):
    type = UnicodeAttribute()
    n = NumberAttribute(null=True)


class AppItem(BaseItem):
    app_id = UnicodeAttribute()
    tenant_id = UnicodeAttribute()
    name = UnicodeAttribute()
    points_rate = NumberAttribute()
    time_zone = UnicodeAttribute()
    expiry_policy = ExpiryPolicyAttribute()
    daily_earn_cap = NumberAttribute(null=True)
    login_mode = UnicodeAttribute()
    login_callback_url = UnicodeAttribute(null=True)
    reminder_webhook_url = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = NumberAttribute(default=1)


class SecretAttribute(MapAttribute[str, Any]):
    current = UnicodeAttribute()
    previous = UnicodeAttribute(null=True)
    previous_until = NumberAttribute(null=True)
    rotated_at = UnicodeAttribute()


class AppSecretsItem(BaseItem):
    tenant_id = UnicodeAttribute()
    login_secret = SecretAttribute()
    server_key = SecretAttribute()
    webhook_secret = SecretAttribute()


class MemberItem(BaseItem):
    """The member's profile: identity, points account, growth, check-in state (one item, versioned)."""

    app_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    openid = UnicodeAttribute()
    nickname = UnicodeAttribute(null=True)
    birthday = UnicodeAttribute(null=True)
    device_id = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    last_login_at = UnicodeAttribute()
    logins = NumberAttribute(default=0)
    invite_code = UnicodeAttribute(null=True)
    invited_by = UnicodeAttribute(null=True)
    # points account: changed only by conditional transactions (version + balance conditions)
    v = NumberAttribute(null=True)
    balance = NumberAttribute(null=True)
    earned_total = NumberAttribute(null=True)
    spent_total = NumberAttribute(null=True)
    expired_total = NumberAttribute(null=True)
    buckets = MapAttribute[str, Any](null=True)
    next_expiry = UnicodeAttribute(null=True)
    growth = NumberAttribute(null=True)
    level = UnicodeAttribute(null=True)
    checkin_day = UnicodeAttribute(null=True)
    streak = NumberAttribute(null=True)
    earn_day = UnicodeAttribute(null=True)
    earned_today = NumberAttribute(null=True)


class StoreItem(BaseItem):
    store_id = UnicodeAttribute()
    tenant_id = UnicodeAttribute()
    name = UnicodeAttribute()
    address = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()


class VerifierItem(BaseItem):
    store_id = UnicodeAttribute()
    tenant_id = UnicodeAttribute()
    username = UnicodeAttribute()
    password_hash = UnicodeAttribute()
    created_at = UnicodeAttribute()


class NonceItem(BaseItem):
    pass


class WebhookEventItem(BaseItem):
    app_id = UnicodeAttribute()
    provider = UnicodeAttribute()
    event_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    received_at = UnicodeAttribute()
    body = UnicodeAttribute()


class LedgerItem(BaseItem):
    entry_id = UnicodeAttribute()
    delta = NumberAttribute()
    reason = UnicodeAttribute()
    reference = UnicodeAttribute()
    balance_after = NumberAttribute()
    at = UnicodeAttribute()
    entry_kind = UnicodeAttribute()
    capped_from = NumberAttribute(null=True)
    note = UnicodeAttribute(null=True)


class GuardItem(BaseItem):
    """Exactly-once marker of one effect; keeps the first result so a retry can return it."""

    result = UnicodeAttribute(null=True)
    fingerprint = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)


class CounterItem(BaseItem):
    n = NumberAttribute()
    # stock shards only: the allocation version the shard's stock is sold under (listing gates: g_<listing id>)
    v = NumberAttribute(null=True)


class ConfigItem(BaseItem):
    """App configuration (tasks, levels, ...): a JSON document validated by its pydantic model."""

    app_id = UnicodeAttribute()
    config_id = UnicodeAttribute()
    document = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = NumberAttribute(default=1)
    # documents a purchase depends on (listings) keep their state outside the JSON, for conditions
    status = UnicodeAttribute(null=True)


class IndexItem(BaseItem):
    """A lookup from one key to another (invite code -> member, ...)."""

    target = UnicodeAttribute()


class OutboxItem(BaseItem):
    app_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    openid = UnicodeAttribute()
    expires_on = UnicodeAttribute()
    points = NumberAttribute()
    created_at = UnicodeAttribute()
    message = UnicodeAttribute()


class ReceiptItem(BaseItem):
    """An uploaded receipt awaiting review (K2 upload receipt, K3 review queue on GSI2)."""

    receipt_id = UnicodeAttribute()
    app_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    openid = UnicodeAttribute()
    task_id = UnicodeAttribute()
    status = UnicodeAttribute()
    image_keys = UnicodeAttribute()
    created_at = UnicodeAttribute()
    submitted_at = UnicodeAttribute(null=True)
    decided_at = UnicodeAttribute(null=True)
    reviewer = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    task_token = UnicodeAttribute(null=True)
    points = NumberAttribute(null=True)


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
