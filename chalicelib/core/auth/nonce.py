"""A request's own replay guard (the server-to-server nonce), written with the request's effect.

Authentication verifies the signature and leaves the nonce pending; the first transaction of the
request carries it (so a signed write is still one write round trip); if the request writes nothing,
or its transaction is refused, the nonce is spent on its own after the view. A replayed nonce is
therefore always refused, and never costs a successful write a second round trip.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class PendingNonce:
    app_id: str
    nonce: str
    expires_at: int
    spent: bool = False


_pending: ContextVar[PendingNonce | None] = ContextVar("jifen_pending_nonce", default=None)


def hold(nonce: PendingNonce | None) -> None:
    _pending.set(nonce)


def pending() -> PendingNonce | None:
    current = _pending.get()
    return current if current is not None and not current.spent else None


class NonceReplayed(Exception):
    """The request's nonce was used before."""
