"""The points account: one conditional transaction per change (profile, ledger entry, guards, counters)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import TransactWriteError

from chalicelib.core.auth import nonce as request_guard
from chalicelib.core.errors import LimitReached
from chalicelib.core.models import Page
from chalicelib.core.table import keys
from chalicelib.core.table.cursors import decode_cursor, encode_cursor
from chalicelib.core.table.dynamo import cancellation_reasons, transaction
from chalicelib.core.table.items import CounterItem, GuardItem, MemberItem, NonceItem, WebhookEventItem
from chalicelib.core.txn.unit import (
    ConditionRefused,
    CounterSpec,
    DuplicateEffect,
    GuardSpec,
    VersionConflict,
    WebhookEventSpec,
    Write,
    _TransactionBuilder,
)
from chalicelib.points.models import LedgerEntry, PointsProfile
from chalicelib.points.store.items import LedgerItem


@dataclass
class ProfileChange:
    expected_version: int
    balance_delta: int = 0
    require_balance: int | None = None
    earned_add: int = 0
    spent_add: int = 0
    expired_add: int = 0
    growth_add: int = 0
    sets: dict[str, Any] = field(default_factory=dict)
    removes: tuple[str, ...] = ()


@dataclass
class Commit:
    app_id: str
    member_id: str
    profile: ProfileChange | None = None
    ledger: LedgerEntry | None = None
    guards: list[GuardSpec] = field(default_factory=list)
    counters: list[CounterSpec] = field(default_factory=list)
    webhook_events: list[WebhookEventSpec] = field(default_factory=list)
    # guards that must NOT exist for this to apply (e.g. a refund that arrived before its payment)
    absent: list[GuardSpec] = field(default_factory=list)
    # other members' profiles changed in the same transaction (transfers, invites)
    others: list[Commit] = field(default_factory=list)
    # any other items (stock shards, orders, config checks) that must change together with the rest
    writes: list[Write] = field(default_factory=list)


_NUMBER_FIELDS = ("balance", "earned_total", "spent_total", "expired_total", "growth", "streak", "earned_today")


def profile_from_item(item: MemberItem) -> PointsProfile:
    values = {name: int(getattr(item, name) or 0) for name in _NUMBER_FIELDS}
    buckets = item.buckets.as_dict() if item.buckets is not None else {}
    return PointsProfile(
        app_id=item.app_id,
        member_id=item.member_id,
        openid=item.openid,
        version=int(item.v or 0),
        buckets={day: int(points) for day, points in buckets.items()},
        checkin_day=item.checkin_day,
        earn_day=item.earn_day,
        birthday=item.birthday,
        invite_code=item.invite_code,
        invited_by=item.invited_by,
        level=item.level,
        nickname=item.nickname,
        created_at=item.created_at,
        last_login_at=item.last_login_at,
        **values,
    )


def _entry(item: LedgerItem) -> LedgerEntry:
    return LedgerEntry(
        id=item.entry_id,
        delta=int(item.delta),
        reason=item.reason,
        reference=item.reference,
        balance_after=int(item.balance_after),
        at=item.at,
        kind=item.entry_kind,
        capped_from=None if item.capped_from is None else int(item.capped_from),
        note=item.note,
    )


class PointsRepo:
    def get_profile(self, app_id: str, member_id: str, *, consistent: bool = True) -> PointsProfile | None:
        try:
            item = MemberItem.get(keys.member_pk(app_id, member_id), keys.PROFILE_SK, consistent_read=consistent)
        except MemberItem.DoesNotExist:
            return None
        return profile_from_item(item)

    def get_guard(self, guard: GuardSpec) -> tuple[dict[str, Any], str | None] | None:
        try:
            item = GuardItem.get(guard.pk, guard.sk, consistent_read=True)
        except GuardItem.DoesNotExist:
            return None
        # a webhook event record is a guard too, without a stored result
        return (json.loads(item.result) if item.result else {}), item.fingerprint

    def ledger(self, app_id: str, member_id: str, cursor: str | None, limit: int) -> Page[LedgerEntry]:
        pk = keys.member_pk(app_id, member_id)
        result = LedgerItem.query(
            pk,
            LedgerItem.SK.startswith(keys.LEDGER_PREFIX),
            scan_index_forward=False,
            limit=limit,
            last_evaluated_key=decode_cursor(cursor, expect={"PK": pk}, sk_prefix=keys.LEDGER_PREFIX),
        )
        items = [_entry(item) for item in result]
        return Page[LedgerEntry](items=items, cursor=encode_cursor(result.last_evaluated_key))

    def counters(self, pk: str, prefix: str) -> dict[str, int]:
        """Every counter of a partition whose key starts with ``prefix`` (expired ones go by TTL)."""
        return {item.SK: int(item.n) for item in CounterItem.query(pk, CounterItem.SK.startswith(prefix))}

    def commit(self, commit: Commit) -> None:
        """All of it or none of it. Maps a cancelled transaction to the reason that cancelled it."""
        tx = _TransactionBuilder()
        for part in [commit, *commit.others]:
            self._add(tx, part)
        nonce = request_guard.pending()
        if nonce is not None:
            nonce_item = NonceItem(PK=keys.nonce_pk(nonce.app_id, nonce.nonce), SK=keys.NONCE_SK, kind="nonce", ttl=nonce.expires_at)
            tx.save(nonce_item, condition=NonceItem.PK.does_not_exist(), label=("nonce", nonce))
        order = tx.order()
        try:
            tx.commit()
        except TransactWriteError as exc:
            reasons = cancellation_reasons(exc)
            if not reasons:
                raise
            failed = [(what, spec) for (what, spec), reason in zip(order, reasons, strict=False) if reason == "ConditionalCheckFailed"]
            # the most telling refusal wins: a replay, then a duplicate, then a limit, then a labelled write
            if any(what == "nonce" for what, _ in failed):
                raise request_guard.NonceReplayed from exc
            for what, spec in failed:
                if what == "guard":
                    raise DuplicateEffect(spec) from exc
            for what, spec in failed:
                if what == "counter":
                    raise LimitReached(spec.reason) from exc
            for what, spec in failed:
                if what.startswith("write:"):
                    raise ConditionRefused(what.removeprefix("write:"), spec) from exc
            # The profile's condition (version, balance) or a concurrent transaction: re-read and decide again.
            if any(reason in ("ConditionalCheckFailed", "TransactionConflict") for reason in reasons):
                raise VersionConflict from exc
            raise
        if nonce is not None:
            nonce.spent = True

    def _add(self, tx: _TransactionBuilder, part: Commit) -> None:
        pk = keys.member_pk(part.app_id, part.member_id)
        for marker in part.absent:
            tx.check(GuardItem, marker.pk, marker.sk, condition=GuardItem.PK.does_not_exist(), label=("guard", marker))
        if part.profile is not None:
            change = part.profile
            actions: list[Any] = [MemberItem.v.add(1)]
            for name, amount in (
                ("balance", change.balance_delta),
                ("earned_total", change.earned_add),
                ("spent_total", change.spent_add),
                ("expired_total", change.expired_add),
                ("growth", change.growth_add),
            ):
                if amount:
                    actions.append(getattr(MemberItem, name).add(amount))
            for name, value in change.sets.items():
                actions.append(getattr(MemberItem, name).set(value))
            for name in change.removes:
                actions.append(getattr(MemberItem, name).remove())
            condition = MemberItem.PK.exists()
            if change.expected_version == 0:
                condition &= MemberItem.v.does_not_exist() | (MemberItem.v == 0)
            else:
                condition &= MemberItem.v == change.expected_version
            if change.require_balance is not None:
                condition &= MemberItem.balance >= change.require_balance
            tx.update(MemberItem(PK=pk, SK=keys.PROFILE_SK), actions=actions, condition=condition, label=("profile", change))
        if part.ledger is not None:
            entry = part.ledger
            item = LedgerItem(
                PK=pk,
                SK=keys.ledger_sk(entry.id),
                kind="ledger",
                entry_id=entry.id,
                delta=entry.delta,
                reason=entry.reason,
                reference=entry.reference,
                balance_after=entry.balance_after,
                at=entry.at,
                entry_kind=entry.kind,
                capped_from=entry.capped_from,
                note=entry.note,
            )
            tx.save(item, condition=LedgerItem.PK.does_not_exist(), label=("ledger", entry))
        for guard in part.guards:
            guard_item = GuardItem(
                PK=guard.pk,
                SK=guard.sk,
                kind="guard",
                result=json.dumps(guard.result, separators=(",", ":")),
                fingerprint=guard.fingerprint,
                ttl=guard.ttl,
            )
            tx.save(guard_item, condition=GuardItem.PK.does_not_exist(), label=("guard", guard))
        for counter in part.counters:
            counter_item = CounterItem(PK=counter.pk, SK=counter.sk)
            counter_actions = [CounterItem.n.add(counter.by), CounterItem.kind.set("counter"), CounterItem.ttl.set(counter.ttl)]
            counter_condition = None
            if counter.limit is not None:
                counter_condition = CounterItem.n.does_not_exist() | (CounterItem.n <= counter.limit - counter.by)
                if counter.limit - counter.by < 0:
                    counter_condition = CounterItem.PK.does_not_exist() & CounterItem.PK.exists()  # can never pass
            tx.update(counter_item, actions=counter_actions, condition=counter_condition, label=("counter", counter))
        for event in part.webhook_events:
            event_item = WebhookEventItem(
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
            guard_label = GuardSpec(pk=event_item.PK, sk=event_item.SK, result={"webhook": event.event_id})
            tx.save(event_item, condition=WebhookEventItem.PK.does_not_exist(), label=("guard", guard_label))
        for write in part.writes:
            label = (f"write:{write.label}", write.spec)
            if write.op == "put":
                tx.save(write.item, condition=write.condition, label=label)
            elif write.op == "update":
                tx.update(write.item, actions=list(write.actions), condition=write.condition, label=label)
            elif write.op == "check":
                model, pk, sk = write.item
                tx.check(model, pk, sk, condition=write.condition, label=label)
            else:
                raise ValueError(f"unknown write op {write.op}")


class ExpiryIndexRepo:
    """Members by next expiry date: GSI1 ``EXP#<shard>`` sorted by ``<date>#<app>#<member>``."""

    def members_expiring(self, shard: int, last_day: str, first_day: str | None = None) -> Iterator[tuple[str, str, str]]:
        """(date, app, member) with a next expiry date up to ``last_day`` (from ``first_day``), oldest first."""
        upper = f"{last_day}#~"
        condition = MemberItem.GSI1SK.between(first_day, upper) if first_day else upper >= MemberItem.GSI1SK
        for item in MemberItem.gsi1.query(keys.expiry_gsi(shard), range_key_condition=condition):
            day, _, rest = (item.GSI1SK or "").partition("#")
            app_id, _, member_id = rest.partition("#")
            if day and app_id and member_id:
                yield day, app_id, member_id


class OutboxRepo:
    """Reminders for tenants to deliver ("N points expire on D"), bucketed by the day they were written."""

    def add(self, app_id: str, day: str, member_id: str, openid: str, expires_on: str, points: int, at: str) -> bool:
        """Once per (member, expiry date): False when this reminder was written before."""
        from pynamodb.exceptions import TransactWriteError

        from chalicelib.points.store.items import OutboxItem

        guard = GuardItem(PK=keys.app_guard_pk(app_id, "remind", f"{member_id}:{expires_on}"), SK=keys.GUARD_SK, kind="guard")
        item = OutboxItem(
            PK=keys.outbox_pk(app_id, day),
            SK=f"{at}#{member_id}",
            kind="outbox",
            app_id=app_id,
            member_id=member_id,
            openid=openid,
            expires_on=expires_on,
            points=points,
            created_at=at,
            message=f"{points} points expire on {expires_on}",
        )
        try:
            with_tx = transaction()
            with_tx.save(guard, condition=GuardItem.PK.does_not_exist())
            with_tx.save(item, condition=OutboxItem.PK.does_not_exist())
            with_tx._commit()
        except TransactWriteError as exc:
            if "ConditionalCheckFailed" in cancellation_reasons(exc):
                return False
            raise
        return True

    def page(self, app_id: str, day: str, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        from chalicelib.points.store.items import OutboxItem

        pk = keys.outbox_pk(app_id, day)
        result = OutboxItem.query(pk, limit=limit, last_evaluated_key=decode_cursor(cursor, expect={"PK": pk}))
        items = [
            {
                "member_id": item.member_id,
                "openid": item.openid,
                "expires_on": item.expires_on,
                "points": int(item.points),
                "created_at": item.created_at,
                "message": item.message,
            }
            for item in result
        ]
        return items, encode_cursor(result.last_evaluated_key)
