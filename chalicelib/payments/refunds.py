"""Cash refunds through the payment provider (E2): an interface, a local fake, and "none".

``refund`` is idempotent per ``reference``: calling it again for the same reference returns the first
refund and moves no more money (providers key refunds by the merchant's refund number the same way:
WeChat Pay's ``out_refund_no``, Douyin's ``out_refund_no``). Real provider implementations are future
work (docs/decisions.md); until then deployed stages refuse cash refunds instead of faking them.
"""

from __future__ import annotations

import secrets
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from chalicelib.core.clock import Clock, iso, process_clock
from chalicelib.core.config import get_settings
from chalicelib.core.errors import UpstreamFailed
from chalicelib.tenancy.models import App

FAIL_PREFIX = "refund-fail"  # the fake refuses refunds to members whose openid starts with this (tests)


class RefundResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    refund_id: str
    reference: str
    amount_fen: int
    refunded_at: str


class RefundAdapter(Protocol):
    def refund(self, app: App, order_id: str, amount_fen: int, reference: str, *, openid: str) -> RefundResult:
        """Give ``amount_fen`` of the order's payment back to the payer, once per ``reference``.

        UpstreamFailed when the provider refuses or cannot be reached (the caller may retry: same reference)."""
        ...


class FakeRefunds:
    """Records each refund as an item in the table (``fake_refund_pk``); fails for openids starting with ``refund-fail``."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or process_clock()

    def refund(self, app: App, order_id: str, amount_fen: int, reference: str, *, openid: str) -> RefundResult:
        from chalicelib.payments.store import fake_refund

        if openid.startswith(FAIL_PREFIX):
            raise UpstreamFailed("The payment provider refused the refund (fake)")
        if amount_fen <= 0:
            raise UpstreamFailed("A refund moves at least 1 fen")
        record = fake_refund(app.app_id, reference, order_id, amount_fen, f"rf_{secrets.token_hex(8)}", iso(self.clock.now()))
        if record["amount_fen"] != amount_fen or record["order_id"] != order_id:
            raise UpstreamFailed("This refund reference was used for another amount")
        return RefundResult(refund_id=record["refund_id"], reference=reference, amount_fen=amount_fen, refunded_at=record["refunded_at"])


class NoRefunds:
    """No refund provider configured: every cash refund fails (the review shows why)."""

    def refund(self, app: App, order_id: str, amount_fen: int, reference: str, *, openid: str) -> RefundResult:
        raise UpstreamFailed("No refund provider is configured for cash refunds")


def refund_adapter() -> RefundAdapter:
    settings = get_settings()
    name = settings.refund_adapter or ("fake" if settings.stage == "local" else "none")
    if name == "fake":
        return FakeRefunds()
    if name == "none":
        return NoRefunds()
    raise ValueError(f"unknown refund adapter {name!r} (fake, none)")
