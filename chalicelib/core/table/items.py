"""The table's base PynamoDB items: the table binding, both GSIs, and the items core's mechanisms own (member
profile, guards, counters, nonces, webhook events, config documents, index items). Domain items live in each
domain's store/items.py; no item leaves a store.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.core.config import get_settings
from chalicelib.core.table import schema


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


class NonceItem(BaseItem):
    pass


class WebhookEventItem(BaseItem):
    app_id = UnicodeAttribute()
    provider = UnicodeAttribute()
    event_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    received_at = UnicodeAttribute()
    body = UnicodeAttribute()


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


class PendingEffectItem(BaseItem):
    """One subscriber's effect of one event, still to be applied."""

    effect = UnicodeAttribute()  # the subscriber: "module:qualname"
    event = UnicodeAttribute()  # the event type's name (``EVENTS``)
    payload = UnicodeAttribute()  # the event as JSON: app_id, at, and its other fields
    recorded_at = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    error = UnicodeAttribute(null=True)
