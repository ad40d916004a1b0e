"""Per-period limit counters: "at most N per member / device per day, week, month, …, or per cycle".

A limit is a counter item keyed by what it limits and the period it counts in
(``keys.counter_sk(subject, period)`` under the member's or device's partition). It is incremented
in the action's own transaction with ``count + by <= limit`` (``CounterSpec``), so a limit holds under
any concurrency, and it carries a TTL a little past its period so it cleans itself up. Periods are
the app's local calendar (its time zone), never UTC days.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib.core.table import keys
from chalicelib.core.txn.unit import CounterSpec

CALENDAR_PERIODS = ("day", "week", "month", "half_year", "year")
GRACE_SECONDS = 2 * 86_400  # a counter outlives its period by two days (time zones, clock skew), then TTL removes it
TOTAL_TTL_SECONDS = 5 * 366 * 86_400  # a limit over all time is kept for five years
_EPOCH_DAY = date(1970, 1, 1)


def calendar_periods(time_zone: str, at: datetime) -> dict[str, tuple[str, int]]:
    """The day / ISO week / month / half-year / year ``at`` falls in (local): its key, and when its counter may go (epoch)."""
    day = at.astimezone(ZoneInfo(time_zone)).date()
    iso_year, iso_week, _ = day.isocalendar()
    half = 1 if day.month <= 6 else 2
    ends = {
        "day": day + timedelta(days=1),
        "week": day + timedelta(days=8 - day.isoweekday()),
        "month": date(day.year + (day.month == 12), day.month % 12 + 1, 1),
        "half_year": date(day.year + (half == 2), 7 if half == 1 else 1, 1),
        "year": date(day.year + 1, 1, 1),
    }
    names = {
        "day": day.isoformat(),
        "week": f"{iso_year}-W{iso_week:02d}",
        "month": day.strftime("%Y-%m"),
        "half_year": f"{day.year}-H{half}",
        "year": str(day.year),
    }
    return {p: (names[p], int(datetime.combine(ends[p], datetime.min.time(), UTC).timestamp()) + GRACE_SECONDS) for p in names}


def cycle_period(unit: str, n: int, time_zone: str, at: datetime) -> tuple[str, datetime]:
    """The cycle of every ``n`` hours / days / years (or ``once``) that ``at`` falls in (local), and when it ends."""
    zone = ZoneInfo(time_zone)
    local = at.astimezone(zone)
    if unit == "once":
        return "once", at + timedelta(days=3650)
    if unit == "hour":
        hours = (local.date() - _EPOCH_DAY).days * 24 + local.hour
        index = hours // n
        start_hour = index * n
        end_day = _EPOCH_DAY + timedelta(days=(start_hour + n) // 24)
        return f"h{n}-{index}", datetime.combine(end_day, datetime.min.time(), zone) + timedelta(hours=(start_hour + n) % 24)
    if unit == "day":
        index = (local.date() - _EPOCH_DAY).days // n
        end_day = _EPOCH_DAY + timedelta(days=(index + 1) * n)
        return f"d{n}-{index}", datetime.combine(end_day, datetime.min.time(), zone)
    index = local.year // n
    return f"y{n}-{index}", datetime((index + 1) * n, 1, 1, tzinfo=zone)


def period_counters(
    pk: str,
    subject: str,
    limits: Mapping[str, int],
    periods: Mapping[str, tuple[str, int]],
    *,
    by: int,
    who: str,
) -> list[CounterSpec]:
    """One counter per limited calendar period of ``subject`` in partition ``pk`` (``who``: "member", "device")."""
    counters = []
    for period, limit in limits.items():
        name, ttl = periods[period]
        reason = f"At most {limit} per {who} per {period.replace('_', ' ')}"
        counters.append(CounterSpec(pk=pk, sk=keys.counter_sk(f"{subject}:{period}", name), limit=limit, ttl=ttl, by=by, reason=reason))
    return counters


def total_counter(pk: str, limit: int, *, by: int, at: datetime, reason: str) -> CounterSpec:
    """A limit over all time (e.g. how many of an item may ever go out)."""
    return CounterSpec(pk=pk, sk=keys.TOTAL_OUT_SK, limit=limit, ttl=int(at.timestamp()) + TOTAL_TTL_SECONDS, by=by, reason=reason)
