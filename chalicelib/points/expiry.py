"""Points expiry rules: when earned points expire, and FIFO over the earned-by-expiry-date buckets.

Spending never touches buckets: the profile keeps totals, and what is left of each bucket is derived
(oldest first) from what has been consumed so far (spent + expired = earned - balance).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from chalicelib.points.models import NEVER, PointsProfile
from chalicelib.tenancy.models import ExpiryPolicy


def expiry_date(policy: ExpiryPolicy, earned_on: date) -> str:
    """The last day (app-local) on which points earned on ``earned_on`` are still valid."""
    if policy.type == "never" or policy.n is None:
        return NEVER
    if policy.type == "rolling_days":
        return (earned_on + timedelta(days=policy.n)).isoformat()
    if policy.type == "end_of_nth_year":
        return date(earned_on.year + policy.n, 12, 31).isoformat()
    months = earned_on.month - 1 + policy.n
    year, month = earned_on.year + months // 12, months % 12 + 1
    return date(year, month, calendar.monthrange(year, month)[1]).isoformat()


def remaining_by_bucket(profile: PointsProfile) -> list[tuple[str, int]]:
    """What is left of each bucket, oldest expiry first (FIFO), for buckets with anything left."""
    consumed = profile.earned_total - profile.balance
    pruned = profile.earned_total - sum(profile.buckets.values())
    cumulative = pruned
    left = []
    for day in sorted(profile.buckets):
        before = cumulative
        cumulative += profile.buckets[day]
        remaining = min(profile.buckets[day], max(0, cumulative - max(consumed, before)))
        if remaining > 0:
            left.append((day, remaining))
    return left


@dataclass(frozen=True)
class Expiry:
    points: int
    # buckets that are due and can be dropped from the map (their points are consumed or expired)
    drop: tuple[str, ...]
    due_dates: tuple[str, ...]


def expire_due(profile: PointsProfile, today: date) -> Expiry:
    """FIFO: what is left of each bucket whose last valid day is before ``today``."""
    today_iso = today.isoformat()
    due = tuple(day for day in sorted(profile.buckets) if day < today_iso)
    left = dict(remaining_by_bucket(profile))
    points = sum(left.get(day, 0) for day in due)
    return Expiry(points=points, drop=due, due_dates=due)


def next_expiry(buckets: dict[str, int], after: str | None = None) -> str | None:
    """The earliest expiring bucket (excluding NEVER), optionally strictly after a date."""
    days = sorted(day for day in buckets if day != NEVER and (after is None or day > after))
    return days[0] if days else None


def expiring(profile: PointsProfile, limit: int = 12) -> list[tuple[str, int]]:
    """What the member sees: "N points expire on D", soonest first."""
    return [(day, points) for day, points in remaining_by_bucket(profile) if day != NEVER][:limit]
