"""How one domain reacts to another without importing it: named events and provided services.

A domain that causes something (tenancy logs a member in, the mall completes an exchange, a payment
webhook arrives) calls ``emit``; a domain that reacts subscribes in its own ``subscriptions`` module.
A service core needs but a domain owns (the app directory for signed calls, the payment-provider
webhook verifier) is registered with ``provide`` and looked up with ``provided``.

Every domain's subscriptions are imported once by ``chalicelib.wiring`` (app.py imports it; ``emit``
and ``provided`` import it before their first use, so a job or a test that calls logic directly is
wired the same way as the API).

What a domain does *after* its own transaction committed (a task credit after an exchange or a login) is
emitted with ``core.effects.emit_after_commit``: a subscriber that raises is logged and its event recorded as a pending
effect (``core.effects``) that the ``retry_effects`` job runs again, so the committed request never fails
for it. Such subscribers must be idempotent (guarded by the event's reference): delivery is at least once.
"""

from __future__ import annotations

import importlib
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

# --- the events, with what they carry -------------------------------------------------------------


@dataclass(frozen=True)
class MemberLoggedIn:
    """tenancy: a member logged in (``created`` on the first login; ``inviter_id`` when the invite code was valid)."""

    app: Any
    member_id: str
    created: bool
    invite_code: str | None
    inviter_id: str | None
    birthday: str | None
    clock: Any = None


@dataclass(frozen=True)
class MallExchanged:
    """mall: an exchange was committed (tasks of the "exchange in the mall" template pay)."""

    app: Any
    member_id: str
    listing_id: str
    order_id: str
    clock: Any = None  # when it counts as exchanged (a points + cash order: when it was paid)


@dataclass(frozen=True)
class PaymentReceived:
    """tasks: a verified payment webhook for ``order_id`` paid by ``openid`` (the mall settles its own orders, paid by their member)."""

    app: Any
    order_id: str
    amount_fen: int
    paid_at: str | None
    clock: Any = None
    openid: str | None = None  # the payer the event names: a mall order is paid only by its own member


class PaymentVerdict(Enum):
    NOT_MINE = "not mine"  # the subscriber has no order of this id
    SETTLED = "settled"  # it paid (or had already paid) the subscriber's order
    REFUSED = "refused"  # the subscriber's order, but the amount is wrong or it no longer waits: record only


# --- the registry ---------------------------------------------------------------------------------

_subscribers: dict[type, list[Callable[[Any], Any]]] = defaultdict(list)
_services: dict[str, Any] = {}
_wired = False
_lock = threading.Lock()


def subscribe(event: type) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Decorator: call this function with every ``event`` emitted (in the order of subscription)."""

    def register(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        if fn not in _subscribers[event]:
            _subscribers[event].append(fn)
        return fn

    return register


def emit(event: Any) -> list[Any]:
    """Call every subscriber of ``type(event)``; returns what each returned."""
    _wire()
    return [fn(event) for fn in list(_subscribers[type(event)])]


def subscribers(event: type) -> list[Callable[[Any], Any]]:
    """Who subscribes to ``event``, in order (wired first)."""
    _wire()
    return list(_subscribers[event])


def subscriber_name(fn: Callable[[Any], Any]) -> str:
    return f"{fn.__module__}:{fn.__qualname__}"


def subscriber_named(event: type, name: str) -> Callable[[Any], Any] | None:
    """The subscriber of ``event`` recorded as ``name`` (None if it no longer subscribes)."""
    _wire()
    return next((fn for fn in _subscribers[event] if subscriber_name(fn) == name), None)


def provide(name: str, service: Any) -> None:
    _services[name] = service


def provided(name: str) -> Any:
    _wire()
    try:
        return _services[name]
    except KeyError:
        raise LookupError(f"no domain provides '{name}'") from None


def _wire() -> None:
    global _wired
    if _wired:
        return
    with _lock:
        if not _wired:
            importlib.import_module("chalicelib.wiring")  # the composition root, named by string: core imports no domain
            _wired = True
