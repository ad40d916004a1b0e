"""The points account: earn, spend, refund, transfer — each one conditional transaction, exactly once.

A change reads the member's profile (one consistent GetItem), decides in plain Python, and writes the
profile, the ledger entry, the guard and any counters in one transaction conditioned on the version it
read (and on ``balance >= cost`` for spending). Balances are only ever changed with ADD by DynamoDB;
the read exists because a transaction returns no values and the ledger records ``balance_after``.
A concurrent change makes the condition fail and the change is decided again on fresh data.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.errors import AlreadyDone, Conflict, IdempotencyMismatch, InsufficientPoints, NotFound, ValidationFailed
from chalicelib.core.ids import member_id_for
from chalicelib.core.models import Page
from chalicelib.core.table import keys
from chalicelib.core.txn.unit import DuplicateEffect, GuardSpec, VersionConflict
from chalicelib.points.expiry import expiry_date, next_expiry
from chalicelib.points.models import LedgerEntry, PointsProfile

# the points engine is the points domain's public face: other domains build their changes with these
from chalicelib.points.store.points import Commit as Commit
from chalicelib.points.store.points import PointsRepo as PointsRepo
from chalicelib.points.store.points import ProfileChange as ProfileChange
from chalicelib.tenancy.models import App

MAX_ATTEMPTS = 80
MAX_POINTS = 100_000_000


@dataclass(frozen=True)
class Outcome:
    applied: bool
    entry: LedgerEntry | None
    balance: int
    extra: dict[str, Any] = field(default_factory=dict)


def local_day(app: App, at: datetime) -> date:
    """The app's business day (check-in "today", daily caps) for a UTC instant."""
    return at.astimezone(ZoneInfo(app.time_zone)).date()


def new_entry_id(at: datetime) -> str:
    """Sorts by time (ledger pages newest first), unique by its random tail."""
    return f"{int(at.timestamp() * 1000):013d}{secrets.token_hex(5)}"


def ledger_entry(
    profile: PointsProfile,
    delta: int,
    reason: str,
    reference: str,
    at: datetime,
    *,
    kind: str,
    note: str | None = None,
    capped_from: int | None = None,
) -> LedgerEntry:
    """The ledger entry of ``delta`` on the balance ``profile`` was read with: a fresh id, ``balance_after`` from that read."""
    return LedgerEntry(
        id=new_entry_id(at),
        delta=delta,
        reason=reason,
        reference=reference,
        balance_after=profile.balance + delta,
        at=iso(at),
        kind=kind,
        capped_from=capped_from,
        note=note,
    )


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def expiry_index(app_id: str, member_id: str, day: str | None) -> tuple[dict[str, Any], tuple[str, ...]]:
    """GSI1 entry that lets the expiry job find members by their next expiry date (sharded), no scan."""
    if day is None:
        return {"next_expiry": None}, ("GSI1PK", "GSI1SK", "next_expiry")
    shard = int(hashlib.sha256(member_id.encode()).hexdigest(), 16) % keys.EXPIRY_SHARDS
    return {
        "next_expiry": day,
        "GSI1PK": keys.expiry_gsi(shard),
        "GSI1SK": keys.expiry_gsi_sk(day, app_id, member_id),
    }, ()


@dataclass(frozen=True)
class Credit:
    change: ProfileChange
    points: int
    capped_from: int | None
    note: str | None


def plan_earn(
    app: App,
    profile: PointsProfile,
    requested: int,
    at: datetime,
    *,
    per_event_cap: int | None = None,
    daily_cap: bool = True,
    growth: int = 0,
) -> Credit:
    """Points to credit after the per-event and the app's daily cap, and the profile change that does it."""
    today = local_day(app, at)
    points, notes = requested, []
    if per_event_cap is not None and points > per_event_cap:
        points, notes = per_event_cap, [f"capped at {per_event_cap} per event"]
    earned_today = profile.earned_today if profile.earn_day == today.isoformat() else 0
    if daily_cap and app.daily_earn_cap is not None and points > app.daily_earn_cap - earned_today:
        points = max(0, app.daily_earn_cap - earned_today)
        notes.append(f"daily cap of {app.daily_earn_cap} reached")
    sets: dict[str, Any] = {"earn_day": today.isoformat(), "earned_today": earned_today + (points if daily_cap else 0)}
    removes: tuple[str, ...] = ()
    if points > 0:
        bucket = expiry_date(app.expiry_policy, today)
        buckets = dict(profile.buckets)
        buckets[bucket] = buckets.get(bucket, 0) + points
        sets["buckets"] = buckets
        upcoming = next_expiry(buckets)
        if upcoming != profile_next_expiry(profile):
            index_sets, removes = expiry_index(app.app_id, profile.member_id, upcoming)
            sets.update({k: v for k, v in index_sets.items() if v is not None})
    change = ProfileChange(
        expected_version=profile.version,
        balance_delta=points,
        earned_add=points,
        growth_add=growth,
        sets=sets,
        removes=removes,
    )
    return Credit(change=change, points=points, capped_from=requested if points != requested else None, note="; ".join(notes) or None)


def profile_next_expiry(profile: PointsProfile) -> str | None:
    return next_expiry(profile.buckets)


def plan_spend(profile: PointsProfile, cost: int) -> ProfileChange:
    if profile.balance < cost:
        raise InsufficientPoints(f"Balance {profile.balance} is less than {cost}")
    return ProfileChange(expected_version=profile.version, balance_delta=-cost, require_balance=cost, spent_add=cost)


MemberKey = tuple[str, str]
Plan = Callable[[list[PointsProfile]], Commit]


def execute(
    members: list[MemberKey],
    plan: Plan,
    guard: GuardSpec | None,
    repo: PointsRepo,
    *,
    expected_fingerprint: str | None = None,
    missing: str = "Member not found",
) -> Outcome:
    """Read → decide → conditional write, again on a concurrent change; a repeated effect returns its first result."""
    for attempt in range(MAX_ATTEMPTS):
        profiles = []
        for app_id, member_id in members:
            profile = repo.get_profile(app_id, member_id)
            if profile is None:
                raise NotFound(missing)
            profiles.append(profile)
        try:
            commit = plan(profiles)
        except (InsufficientPoints, Conflict, AlreadyDone) as refused:
            # A retry of an effect that already happened must see its result, not a refusal.
            if guard is not None and (first := repo.get_guard(guard)) is not None:
                return _duplicate(first, expected_fingerprint, profiles[0].balance)
            raise refused
        try:
            repo.commit(commit)
        except DuplicateEffect as dup:
            first = repo.get_guard(dup.guard)
            if first is None:  # expired webhook record or a guard without a stored result: nothing to add
                return Outcome(applied=False, entry=None, balance=profiles[0].balance)
            same = guard is not None and (dup.guard.pk, dup.guard.sk) == (guard.pk, guard.sk)
            return _duplicate(first, expected_fingerprint if same else None, profiles[0].balance)
        except VersionConflict:
            time.sleep(random.uniform(0, 0.004) * min(attempt + 1, 10))  # noqa: S311 (jitter, not security)
            continue
        entry = commit.ledger
        return Outcome(applied=True, entry=entry, balance=entry.balance_after if entry else profiles[0].balance, extra=_extra(commit))
    raise Conflict("The account is busy; retry")


def _extra(commit: Commit) -> dict[str, Any]:
    return dict(commit.guards[0].result) if commit.guards else {}


def _duplicate(first: tuple[dict[str, Any], str | None], expected_fingerprint: str | None, balance: int) -> Outcome:
    result, stored_fingerprint = first
    if expected_fingerprint and stored_fingerprint and stored_fingerprint != expected_fingerprint:
        raise IdempotencyMismatch("This reference was already used for a different request")
    entry = LedgerEntry.model_validate(result["entry"]) if result.get("entry") else None
    return Outcome(applied=False, entry=entry, balance=balance, extra=result)


def _guard(app_id: str, kind: str, reference: str, entry: LedgerEntry, fp: str, ttl: int | None = None, **extra: Any) -> GuardSpec:
    return GuardSpec(
        pk=keys.app_guard_pk(app_id, kind, reference),
        sk=keys.GUARD_SK,
        result={"entry": entry.model_dump(), **extra},
        fingerprint=fp,
        ttl=ttl,
    )


def _check_points(points: int) -> None:
    if not 0 < points <= MAX_POINTS:
        raise ValidationFailed("points must be a positive integer", details=[{"field": "points", "problem": f"1..{MAX_POINTS}"}])


@dataclass(frozen=True)
class Change:
    """One member's side of an effect: the profile change and the ledger figures it produces."""

    change: ProfileChange
    delta: int
    capped_from: int | None = None
    note: str | None = None


def _single(
    app: App,
    openid: str,
    points: int,
    reference: str,
    reason: str,
    *,
    guard_kind: str,
    entry_kind: str,
    decide: Callable[[PointsProfile, datetime], Change],
    repo: PointsRepo | None,
    clock: Clock | None,
) -> Outcome:
    """An effect on one member, once per (guard kind, reference) in the app."""
    _check_points(points)
    now = time_now(clock)
    member_id = member_id_for(app.app_id, openid)
    fp = fingerprint(entry_kind, openid, points)
    probe = GuardSpec(pk=keys.app_guard_pk(app.app_id, guard_kind, reference), sk=keys.GUARD_SK, result={})

    def plan(profiles: list[PointsProfile]) -> Commit:
        profile = profiles[0]
        decided = decide(profile, now)
        entry = ledger_entry(
            profile, decided.delta, reason, reference, now, kind=entry_kind, capped_from=decided.capped_from, note=decided.note
        )
        guard = _guard(app.app_id, guard_kind, reference, entry, fp)
        return Commit(app.app_id, member_id, profile=decided.change, ledger=entry, guards=[guard])

    return execute([(app.app_id, member_id)], plan, probe, repo or PointsRepo(), expected_fingerprint=fp)


def grant(
    app: App,
    openid: str,
    points: int,
    reference: str,
    reason: str,
    *,
    kind: str = "grant",
    per_event_cap: int | None = None,
    repo: PointsRepo | None = None,
    clock: Clock | None = None,
) -> Outcome:
    """P6: credit a member once per reference (app-wide), after caps."""

    def decide(profile: PointsProfile, now: datetime) -> Change:
        credit = plan_earn(app, profile, points, now, per_event_cap=per_event_cap)
        return Change(credit.change, credit.points, credit.capped_from, credit.note)

    return _single(app, openid, points, reference, reason, guard_kind="points", entry_kind=kind, decide=decide, repo=repo, clock=clock)


def deduct(
    app: App,
    openid: str,
    points: int,
    reference: str,
    reason: str,
    *,
    kind: str = "deduction",
    repo: PointsRepo | None = None,
    clock: Clock | None = None,
) -> Outcome:
    """P6: debit a member once per reference; never below zero (INSUFFICIENT_POINTS)."""

    def decide(profile: PointsProfile, now: datetime) -> Change:
        return Change(plan_spend(profile, points), -points)

    return _single(app, openid, points, reference, reason, guard_kind="points", entry_kind=kind, decide=decide, repo=repo, clock=clock)


def refund(
    app: App,
    openid: str,
    points: int,
    reference: str,
    reason: str,
    *,
    repo: PointsRepo | None = None,
    clock: Clock | None = None,
) -> Outcome:
    """Points given back (cancelled order, compensation): a credit with a fresh expiry, exempt from caps."""

    def decide(profile: PointsProfile, now: datetime) -> Change:
        return Change(plan_earn(app, profile, points, now, daily_cap=False).change, points)

    return _single(app, openid, points, reference, reason, guard_kind="refund", entry_kind="refund", decide=decide, repo=repo, clock=clock)


def transfer(
    source: App,
    openid: str,
    target: App,
    target_openid: str,
    points: int,
    reference: str,
    reason: str,
    *,
    repo: PointsRepo | None = None,
    clock: Clock | None = None,
) -> Outcome:
    """P7: move points between two apps of one tenant at their points rates, in one transaction."""
    credited = _converted(source, target, points)
    repo = repo or PointsRepo()
    now = time_now(clock)
    source_member = member_id_for(source.app_id, openid)
    target_member = member_id_for(target.app_id, target_openid)
    fp = fingerprint("transfer", openid, target.app_id, target_openid, points)
    probe = GuardSpec(pk=keys.app_guard_pk(source.app_id, "points", reference), sk=keys.GUARD_SK, result={})

    def plan(profiles: list[PointsProfile]) -> Commit:
        debit_profile, credit_profile = profiles
        debit = plan_spend(debit_profile, points)
        credit = plan_earn(target, credit_profile, credited, now, daily_cap=False)
        out = ledger_entry(debit_profile, -points, reason, reference, now, kind="transfer_out", note=f"to {target.app_id} as {credited}")
        rate = f"{points} at rate {source.points_rate}:{target.points_rate}"
        into = ledger_entry(
            credit_profile, credited, reason, f"{source.app_id}:{reference}", now, kind="transfer_in", note=f"from {source.app_id} ({rate})"
        )
        guard = _guard(source.app_id, "points", reference, out, fp, credited=credited)
        other = Commit(target.app_id, target_member, profile=credit.change, ledger=into)
        return Commit(source.app_id, source_member, profile=debit, ledger=out, guards=[guard], others=[other])

    return execute([(source.app_id, source_member), (target.app_id, target_member)], plan, probe, repo, expected_fingerprint=fp)


def _converted(source: App, target: App, points: int) -> int:
    """The points a transfer of ``points`` credits in ``target``; refused unless both apps are of one tenant and differ."""
    _check_points(points)
    if source.tenant_id != target.tenant_id:
        raise NotFound("Target app not found")
    if source.app_id == target.app_id:
        raise ValidationFailed("Target app must differ from the source app", details=[{"field": "to_app_id", "problem": "same app"}])
    credited = points * target.points_rate // source.points_rate
    if credited <= 0:
        raise ValidationFailed("Too few points to convert at these rates", details=[{"field": "points", "problem": "converts to 0"}])
    return credited


def profile(app: App, member_id: str, repo: PointsRepo | None = None) -> PointsProfile:
    found = (repo or PointsRepo()).get_profile(app.app_id, member_id)
    if found is None:
        raise NotFound("Member not found")
    return found


def ledger(app_id: str, member_id: str, cursor: str | None, limit: int, repo: PointsRepo | None = None) -> Page[LedgerEntry]:
    return (repo or PointsRepo()).ledger(app_id, member_id, cursor, limit)
