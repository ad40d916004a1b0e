"""The unit of work: one user action is one TransactWriteItems, with conditions, that applies at most once.

A unit names what must change together — exactly-once guards (``GuardSpec``, put only if absent),
limit counters (``CounterSpec``, ``count + by <= limit``), guards that must *not* exist, received
webhook events, and any other labelled item (``Write``: a profile, a ledger entry, a stock shard, an
order, a configuration check). ``commit`` sends it as one transaction (with the signed request's
nonce, when there is one) and turns a cancellation into the reason that matters most:

- the nonce was used → ``NonceReplayed``      - a guard exists → ``DuplicateEffect`` (first result in it)
- a counter is full → ``LimitReached``        - a labelled write refused → ``ConditionRefused(label)``
- a write marked ``contention`` refused, or a concurrent transaction → ``VersionConflict``: read again
  and decide again (the optimistic loop of the caller, e.g. the points engine's ``execute``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import TransactWriteError

from chalicelib.core.auth import nonce as request_nonce
from chalicelib.core.errors import LimitReached
from chalicelib.core.table import keys
from chalicelib.core.table.dynamo import cancellation_reasons, transaction
from chalicelib.core.table.items import CounterItem, GuardItem, NonceItem, WebhookEventItem


class VersionConflict(Exception):
    """What the decision was made on changed between read and write: read again and decide again."""


class DuplicateEffect(Exception):
    """A guard already exists: this effect was applied before (its first result is in the guard)."""

    def __init__(self, guard: GuardSpec) -> None:
        super().__init__(guard.sk)
        self.guard = guard


@dataclass(frozen=True)
class GuardSpec:
    pk: str
    sk: str
    result: dict[str, Any]
    fingerprint: str | None = None
    ttl: int | None = None


@dataclass(frozen=True)
class CounterSpec:
    """A limit counter: count + by must stay <= limit (no limit: just count)."""

    pk: str
    sk: str
    limit: int | None
    ttl: int
    by: int = 1
    reason: str = "limit reached"


@dataclass(frozen=True)
class WebhookEventSpec:
    app_id: str
    provider: str
    event_id: str
    event_type: str
    body: str
    received_at: str
    ttl: int


@dataclass(frozen=True)
class Write:
    """Any other item of the transaction (stock shard, order, config check, code claim, ...).

    ``op`` is "put" (``item`` saved), "update" (``item`` updated with ``actions``) or "check"
    (``item`` is ``(model, pk, sk)``). When its condition fails the commit raises
    ``ConditionRefused(label, spec)`` so the caller can tell which one refused.
    """

    op: str
    item: Any
    condition: Any
    label: str
    actions: tuple[Any, ...] = ()
    spec: Any = None
    # a refusal means "what you read changed" (an optimistic version, a fresh id): VersionConflict, not ConditionRefused
    contention: bool = False


class ConditionRefused(Exception):
    """A labelled write's condition failed (the stock shard was empty, the listing changed, ...)."""

    def __init__(self, label: str, spec: Any) -> None:
        super().__init__(label)
        self.label = label
        self.spec = spec


class _TransactionBuilder:
    """A PynamoDB TransactWrite that remembers what each item was for.

    PynamoDB sends condition checks, then puts, then updates; cancellation reasons come back in that order.
    """

    def __init__(self) -> None:
        self._tx = transaction()
        self._checks: list[tuple[str, Any]] = []
        self._puts: list[tuple[str, Any]] = []
        self._updates: list[tuple[str, Any]] = []

    def check(self, model: Any, pk: str, sk: str, condition: Any, label: tuple[str, Any]) -> None:
        self._tx.condition_check(model, pk, sk, condition=condition)
        self._checks.append(label)

    def update(self, item: Any, actions: list[Any], condition: Any, label: tuple[str, Any]) -> None:
        self._tx.update(item, actions=actions, condition=condition)
        self._updates.append(label)

    def save(self, item: Any, condition: Any, label: tuple[str, Any]) -> None:
        self._tx.save(item, condition=condition)
        self._puts.append(label)

    def order(self) -> list[tuple[str, Any]]:
        return self._checks + self._puts + self._updates

    def commit(self) -> None:
        self._tx._commit()


@dataclass
class UnitOfWork:
    """Everything one action changes, committed together or not at all."""

    guards: list[GuardSpec] = field(default_factory=list)
    counters: list[CounterSpec] = field(default_factory=list)
    # guards that must NOT exist for this to apply (e.g. a refund that arrived before its payment)
    absent: list[GuardSpec] = field(default_factory=list)
    webhook_events: list[WebhookEventSpec] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)


def commit(unit: UnitOfWork) -> None:
    """All of it or none of it, in one TransactWriteItems; a cancellation becomes the reason that cancelled it."""
    tx = _TransactionBuilder()
    _add(tx, unit)
    nonce = request_nonce.pending()
    if nonce is not None:
        nonce_item = NonceItem(PK=keys.nonce_pk(nonce.app_id, nonce.nonce), SK=keys.NONCE_SK, kind="nonce", ttl=nonce.expires_at)
        tx.save(nonce_item, condition=NonceItem.PK.does_not_exist(), label=("nonce", nonce))
    order = tx.order()
    try:
        tx.commit()
    except TransactWriteError as exc:
        _refusal(exc, order)
        raise
    if nonce is not None:
        nonce.spent = True


def _refusal(exc: TransactWriteError, order: list[tuple[str, Any]]) -> None:
    """Raise the most telling refusal: a replay, then a duplicate, then a limit, then a labelled write."""
    reasons = cancellation_reasons(exc)
    if not reasons:
        return
    failed = [(what, spec) for (what, spec), reason in zip(order, reasons, strict=False) if reason == "ConditionalCheckFailed"]
    if any(what == "nonce" for what, _ in failed):
        raise request_nonce.NonceReplayed from exc
    for what, spec in failed:
        if what == "guard":
            raise DuplicateEffect(spec) from exc
    for what, spec in failed:
        if what == "counter":
            raise LimitReached(spec.reason) from exc
    for what, spec in failed:
        if what.startswith("write:"):
            raise ConditionRefused(what.removeprefix("write:"), spec) from exc
    # a contention write (version, fresh id) or a concurrent transaction: re-read and decide again
    if any(reason in ("ConditionalCheckFailed", "TransactionConflict") for reason in reasons):
        raise VersionConflict from exc


def _add(tx: _TransactionBuilder, unit: UnitOfWork) -> None:
    for marker in unit.absent:
        tx.check(GuardItem, marker.pk, marker.sk, condition=GuardItem.PK.does_not_exist(), label=("guard", marker))
    for guard in unit.guards:
        tx.save(_guard_item(guard), condition=GuardItem.PK.does_not_exist(), label=("guard", guard))
    for counter in unit.counters:
        _add_counter(tx, counter)
    for event in unit.webhook_events:
        event_item = _event_item(event)
        as_guard = GuardSpec(pk=event_item.PK, sk=event_item.SK, result={"webhook": event.event_id})
        tx.save(event_item, condition=WebhookEventItem.PK.does_not_exist(), label=("guard", as_guard))
    for write in unit.writes:
        _add_write(tx, write)


def _guard_item(guard: GuardSpec) -> GuardItem:
    result = json.dumps(guard.result, separators=(",", ":"))
    return GuardItem(PK=guard.pk, SK=guard.sk, kind="guard", result=result, fingerprint=guard.fingerprint, ttl=guard.ttl)


def _add_counter(tx: _TransactionBuilder, counter: CounterSpec) -> None:
    actions = [CounterItem.n.add(counter.by), CounterItem.kind.set("counter"), CounterItem.ttl.set(counter.ttl)]
    condition = None
    if counter.limit is not None:
        condition = CounterItem.n.does_not_exist() | (CounterItem.n <= counter.limit - counter.by)
        if counter.limit - counter.by < 0:
            condition = CounterItem.PK.does_not_exist() & CounterItem.PK.exists()  # can never pass
    tx.update(CounterItem(PK=counter.pk, SK=counter.sk), actions=actions, condition=condition, label=("counter", counter))


def _event_item(event: WebhookEventSpec) -> WebhookEventItem:
    return WebhookEventItem(
        PK=keys.webhook_event_pk(event.app_id, event.provider, event.event_id),
        SK=keys.WEBHOOK_EVENT_SK,
        kind="webhook_event",
        app_id=event.app_id,
        provider=event.provider,
        event_id=event.event_id,
        event_type=event.event_type,
        body=event.body,
        received_at=event.received_at,
        ttl=event.ttl,
    )


def _add_write(tx: _TransactionBuilder, write: Write) -> None:
    label = ("contention" if write.contention else f"write:{write.label}", write.spec)
    if write.op == "put":
        tx.save(write.item, condition=write.condition, label=label)
    elif write.op == "update":
        tx.update(write.item, actions=list(write.actions), condition=write.condition, label=label)
    elif write.op == "check":
        model, pk, sk = write.item
        tx.check(model, pk, sk, condition=write.condition, label=label)
    else:
        raise ValueError(f"unknown write op {write.op}")
