"""Cash payouts for red packets (G1, G5): an interface, a local fake, and "none".

What a real adapter (e.g. WeChat Pay merchant transfer, 商家转账到零钱) implements in ``pay``:

- **Idempotent per reference.** The reference is the Jifen order id (unique within the app); the real
  adapter sends it as the merchant's transfer number (WeChat ``out_bill_no``), so a retried call returns
  the first transfer and moves no more money. The workflow retries, so this is not optional.
- **PayoutFailed only when no money moved** (declined, unknown or blocked openid, over a limit). The
  workflow retries it, then cancels the order and gives the points back.
- **Anything else means "unknown"** (timeout, 5xx): raise any other exception. The workflow retries, and
  if it still does not know, stops with the order in ``paying_out`` for an operator: it never gives
  points back for a transfer that may have happened.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from chalicelib.core.config import get_settings
from chalicelib.core.errors import UpstreamFailed

FAIL_PREFIX = "payout-fail"  # the fake refuses members whose openid starts with this (tests, demos)


class PayoutFailed(UpstreamFailed):
    """The provider refused the payout: no money moved. (The class name is the workflow's error name.)"""


class PayoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id: str
    reference: str  # the order id: the same reference never pays twice
    openid: str
    amount_fen: int


class PayoutResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reference: str
    transfer_id: str  # the provider's id of the transfer (kept on the order)
    amount_fen: int


class PayoutAdapter(Protocol):
    def pay(self, request: PayoutRequest) -> PayoutResult:
        """Pay ``amount_fen`` to ``openid`` once per ``reference`` (see the module doc for the error contract)."""
        ...


class FakePayout:
    """Pays nobody. Deterministic: the same reference gets the same transfer id; configured openids always fail."""

    # Every request it accepted, by reference (what tests look at to prove "paid once").
    accepted: ClassVar[dict[tuple[str, str], list[PayoutRequest]]] = {}

    def __init__(self, fail_openids: frozenset[str] = frozenset()) -> None:
        self.fail_openids = fail_openids

    def pay(self, request: PayoutRequest) -> PayoutResult:
        if request.openid.startswith(FAIL_PREFIX) or request.openid in self.fail_openids:
            raise PayoutFailed("The payout provider refused the transfer (fake)")
        if request.amount_fen <= 0:
            raise PayoutFailed("A payout moves at least 1 fen")
        seen = self.accepted.setdefault((request.app_id, request.reference), [])
        if seen and seen[0] != request:
            raise PayoutFailed("This payout reference was used for another transfer")
        seen.append(request)
        digest = hashlib.sha256(f"{request.app_id}:{request.reference}".encode()).hexdigest()[:20]
        return PayoutResult(reference=request.reference, transfer_id=f"fake-{digest}", amount_fen=request.amount_fen)


class NoPayouts:
    """No payout provider configured: every red packet fails (the order is cancelled, its points go back)."""

    def pay(self, request: PayoutRequest) -> PayoutResult:
        raise PayoutFailed("No payout provider is configured")


def payout_adapter() -> PayoutAdapter:
    settings = get_settings()
    name = settings.payout_adapter or ("fake" if settings.stage == "local" else "none")
    if name == "fake":
        fail = frozenset(part.strip() for part in settings.payout_fake_fail_openids.split(",") if part.strip())
        return FakePayout(fail)
    if name == "none":
        return NoPayouts()
    raise ValueError(f"unknown payout adapter {name!r} (fake, none)")
