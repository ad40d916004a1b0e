"""The points account in the table: profiles, ledger entries, expiry index, reminders outbox.

A change is a ``Commit`` (profile change, ledger entry, guards, counters, other members, other writes),
committed as one core unit of work (``core.txn``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import TransactWriteError

from chalicelib.core.models import Page
from chalicelib.core.table import keys
from chalicelib.core.table.cursors import decode_cursor, encode_cursor
from chalicelib.core.table.dynamo import cancellation_reasons, transaction
from chalicelib.core.table.items import CounterItem, GuardItem, MemberItem
from chalicelib.core.txn import unit
from chalicelib.core.txn.unit import CounterSpec, GuardSpec, WebhookEventSpec, Write
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

    def unit_of_work(self) -> unit.UnitOfWork:
        """This change (and ``others``) as the core unit of work: profiles and ledger entries become writes."""
        work = unit.UnitOfWork()
        for part in [self, *self.others]:
            work.absent += part.absent
            if part.profile is not None:
                work.writes.append(profile_write(part.app_id, part.member_id, part.profile))
            if part.ledger is not None:
                work.writes.append(ledger_write(part.app_id, part.member_id, part.ledger))
            work.guards += part.guards
            work.counters += part.counters
            work.webhook_events += part.webhook_events
            work.writes += part.writes
        return work


def profile_write(app_id: str, member_id: str, change: ProfileChange) -> Write:
    """ADD on the balances, conditioned on the version read (and ``balance >= cost`` when spending)."""
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
    actions += [getattr(MemberItem, name).set(value) for name, value in change.sets.items()]
    actions += [getattr(MemberItem, name).remove() for name in change.removes]
    condition = MemberItem.PK.exists()
    if change.expected_version == 0:
        condition &= MemberItem.v.does_not_exist() | (MemberItem.v == 0)
    else:
        condition &= MemberItem.v == change.expected_version
    if change.require_balance is not None:
        condition &= MemberItem.balance >= change.require_balance
    item = MemberItem(PK=keys.member_pk(app_id, member_id), SK=keys.PROFILE_SK)
    return Write("update", item, condition, "profile", tuple(actions), spec=change, contention=True)


def ledger_write(app_id: str, member_id: str, entry: LedgerEntry) -> Write:
    item = LedgerItem(
        PK=keys.member_pk(app_id, member_id),
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
    return Write("put", item, LedgerItem.PK.does_not_exist(), "ledger", spec=entry, contention=True)


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
        """All of it or none of it (the core unit of work); a refusal is raised as the reason that refused it."""
        unit.commit(commit.unit_of_work())


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

        from chalicelib.points.store.items import OutboxItem

        guard = GuardItem(PK=keys.app_guard_pk(app_id, "remind", f"{member_id}:{expires_on}"), SK=keys.GUARD_SK, kind="guard")
        item = OutboxItem(
            PK=keys.outbox_pk(app_id, day),
            SK=keys.outbox_sk(at, member_id),
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
