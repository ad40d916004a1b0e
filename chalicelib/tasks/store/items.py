"""The tasks domain's PynamoDB items: receipts. They never leave tasks/store."""

from __future__ import annotations

from pynamodb.attributes import (
    NumberAttribute,
    UnicodeAttribute,
)

from chalicelib.core.table.items import BaseItem


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
