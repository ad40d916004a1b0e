"""What the payments domain keeps in the table: the local fake refund provider's records."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError

from chalicelib.core.table import keys
from chalicelib.core.table.dynamo import condition_failed
from chalicelib.core.table.items import BaseItem


class FakeRefundItem(BaseItem):
    app_id = UnicodeAttribute()
    reference = UnicodeAttribute()
    order_id = UnicodeAttribute()
    amount_fen = NumberAttribute()
    refund_id = UnicodeAttribute()
    refunded_at = UnicodeAttribute()
    calls = NumberAttribute()


def fake_refund(app_id: str, reference: str, order_id: str, amount_fen: int, refund_id: str, at: str) -> dict[str, Any]:
    """Record a refund once per reference; a repeated call returns the first record (its ``calls`` counted)."""
    pk = keys.fake_refund_pk(app_id, reference)
    item = FakeRefundItem(
        PK=pk,
        SK=keys.FAKE_REFUND_SK,
        kind="fake_refund",
        app_id=app_id,
        reference=reference,
        order_id=order_id,
        amount_fen=amount_fen,
        refund_id=refund_id,
        refunded_at=at,
        calls=1,
    )
    try:
        item.save(condition=FakeRefundItem.PK.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise
        item = FakeRefundItem(PK=pk, SK=keys.FAKE_REFUND_SK)
        item.update(actions=[FakeRefundItem.calls.add(1)])  # update() refreshes the item with what is stored
    return {
        "refund_id": item.refund_id,
        "order_id": item.order_id,
        "amount_fen": int(item.amount_fen),
        "refunded_at": item.refunded_at,
        "calls": int(item.calls),
    }
