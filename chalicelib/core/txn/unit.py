"""The points account: one conditional transaction per change (profile, ledger entry, guards, counters)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.core.table.dynamo import transaction


class VersionConflict(Exception):
    """The profile changed between read and write: read again and retry."""


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
