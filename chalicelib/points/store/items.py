"""The points domain's PynamoDB items: ledger entries and expiry reminders. They never leave points/store."""

from __future__ import annotations

from pynamodb.attributes import (
    NumberAttribute,
    UnicodeAttribute,
)

from chalicelib.core.table.items import BaseItem


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


class OutboxItem(BaseItem):
    app_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    openid = UnicodeAttribute()
    expires_on = UnicodeAttribute()
    points = NumberAttribute()
    created_at = UnicodeAttribute()
    message = UnicodeAttribute()
