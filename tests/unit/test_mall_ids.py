"""Payment webhooks recognise mall orders by the shape of the ids the exchange gives them."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.mall.fulfilment import MALL_ORDER_ID
from chalicelib.points.engine import new_entry_id


@given(st.datetimes(min_value=datetime(2001, 9, 9, 2), max_value=datetime(2286, 11, 20)))
def test_every_order_id_the_exchange_makes_is_recognised(at: datetime) -> None:
    # Given the id an exchange at any moment gives its order ("o" + the ledger-style entry id)
    order_id = "o" + new_entry_id(at.replace(tzinfo=UTC))
    # Then a payment webhook naming it looks the order up
    assert MALL_ORDER_ID.fullmatch(order_id)


def test_tenants_own_order_ids_are_not_looked_up() -> None:
    for order_id in ("o-1", "ORDER-2026-1", "o1795458194385a1c2ba392", "o1795458194385a1c2ba3923x", "1795458194385a1c2ba3923"):
        assert not MALL_ORDER_ID.fullmatch(order_id)
