"""Tenancy's PynamoDB items: tenants, operators, apps and their secrets, stores, verifiers. They never leave
tenancy/store.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)

from chalicelib.core.table.items import BaseItem


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
