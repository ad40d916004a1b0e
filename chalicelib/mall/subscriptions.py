"""What the mall does when other domains' events happen: a payment webhook settles a points + cash order."""

from __future__ import annotations

from chalicelib.core import hooks
from chalicelib.core.hooks import PaymentReceived, PaymentVerdict
from chalicelib.mall import fulfilment


@hooks.subscribe(PaymentReceived)
def settle_order(event: PaymentReceived) -> PaymentVerdict:
    return fulfilment.on_payment(event.app, event.order_id, event.amount_fen, event.paid_at, event.clock, openid=event.openid)
