"""K1/K2/P5 rules as pure functions: task cycles in the app's time zone, streaks, consumption points, caps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from chalicelib.points.engine import plan_earn
from chalicelib.points.models import NEVER, PointsProfile
from chalicelib.tasks.events import consumption_points
from chalicelib.tasks.models import CheckinTask, ConsumptionTask, Cycle, GenericPaymentEvent
from chalicelib.tasks.tasks import period, streak_after, streak_bonus
from chalicelib.tenancy.models import App, ExpiryPolicy, LoginMode

EPOCH = date(1970, 1, 1)
# 16:30 UTC on Nov 23 is 00:30 on Nov 24 in Shanghai (UTC+8): the app's day has already turned.
LATE_UTC = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)


def make_app(time_zone: str = "Asia/Shanghai", *, daily_earn_cap: int | None = None, expiry: ExpiryPolicy | None = None) -> App:
    return App(
        app_id="app_rules",
        tenant_id="acme",
        name="Rules",
        points_rate=100,
        time_zone=time_zone,
        expiry_policy=expiry or ExpiryPolicy(),
        daily_earn_cap=daily_earn_cap,
        login_mode=LoginMode.JWT,
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def days_since_epoch(day: date) -> int:
    return (day - EPOCH).days


# --- period: keys and ends ----------------------------------------------------------------------


def test_day_cycle_follows_the_apps_midnight_not_utcs() -> None:
    # Given 16:30Z on Nov 23 (Nov 24 in Shanghai)
    # When the day period is computed for a Shanghai app and a UTC app
    shanghai_key, shanghai_end = period(Cycle(unit="day", n=1), make_app("Asia/Shanghai"), LATE_UTC)
    utc_key, utc_end = period(Cycle(unit="day", n=1), make_app("UTC"), LATE_UTC)
    # Then Shanghai is on Nov 24 and it ends at Shanghai's next midnight (16:00Z on Nov 24)
    assert shanghai_key == f"d1-{days_since_epoch(date(2026, 11, 24))}"
    assert shanghai_end == utc(2026, 11, 24, 16, 0)
    # And UTC is still on Nov 23, ending at 00:00Z on Nov 24
    assert utc_key == f"d1-{days_since_epoch(date(2026, 11, 23))}"
    assert utc_end == utc(2026, 11, 24, 0, 0)


@pytest.mark.parametrize(
    ("before", "after", "same"),
    [
        (utc(2026, 11, 23, 15, 59), utc(2026, 11, 23, 16, 1), False),  # Shanghai midnight between them
        (utc(2026, 11, 23, 16, 1), utc(2026, 11, 24, 15, 59), True),  # one Shanghai day, two UTC days
        (utc(2026, 11, 23, 0, 0), utc(2026, 11, 23, 15, 59, 59), True),
    ],
)
def test_shanghai_day_boundaries(before: datetime, after: datetime, same: bool) -> None:
    app = make_app("Asia/Shanghai")
    assert (period(Cycle(unit="day", n=1), app, before)[0] == period(Cycle(unit="day", n=1), app, after)[0]) is same


def test_n_day_cycle_groups_n_local_days_and_ends_at_local_midnight() -> None:
    app = make_app("Asia/Shanghai")
    key, end = period(Cycle(unit="day", n=7), app, LATE_UTC)
    index = days_since_epoch(date(2026, 11, 24)) // 7
    assert key == f"d7-{index}"
    # The 7-day window ends at the local midnight starting day (index + 1) * 7 after the epoch
    end_local_day = EPOCH + timedelta(days=(index + 1) * 7)
    assert end == datetime(end_local_day.year, end_local_day.month, end_local_day.day, tzinfo=UTC) - timedelta(hours=8)
    assert end == utc(2026, 11, 25, 16, 0)
    # Every moment before the end (local days 2026-11-19 .. 2026-11-25) is in the same cycle, the end is not
    assert period(Cycle(unit="day", n=7), app, utc(2026, 11, 18, 16, 0))[0] == key
    assert period(Cycle(unit="day", n=7), app, utc(2026, 11, 18, 15, 59))[0] != key
    assert period(Cycle(unit="day", n=7), app, end - timedelta(seconds=1))[0] == key
    assert period(Cycle(unit="day", n=7), app, end)[0] != key


def test_hour_cycle_is_local_and_ends_on_the_hour() -> None:
    app = make_app("Asia/Shanghai")
    key, end = period(Cycle(unit="hour", n=1), app, LATE_UTC)
    assert key == f"h1-{days_since_epoch(date(2026, 11, 24)) * 24 + 0}"
    assert end == utc(2026, 11, 23, 17, 0)
    assert period(Cycle(unit="hour", n=1), app, utc(2026, 11, 23, 16, 59, 59))[0] == key
    assert period(Cycle(unit="hour", n=1), app, utc(2026, 11, 23, 17, 0))[0] != key


def test_n_hour_cycle_crosses_local_midnight() -> None:
    # Given a 5-hour cycle (24 is not a multiple of 5) at 00:30 local on Nov 24
    app = make_app("Asia/Shanghai")
    key, end = period(Cycle(unit="hour", n=5), app, LATE_UTC)
    local_hours = days_since_epoch(date(2026, 11, 24)) * 24
    index = local_hours // 5
    # Then the window started at 20:00 local on Nov 23 and ends at 01:00 local on Nov 24 (17:00Z)
    assert key == f"h5-{index}"
    assert index * 5 == local_hours - 4
    assert end == utc(2026, 11, 23, 17, 0)
    assert period(Cycle(unit="hour", n=5), app, utc(2026, 11, 23, 12, 0))[0] == key  # 20:00 local on the 23rd
    assert period(Cycle(unit="hour", n=5), app, utc(2026, 11, 23, 11, 59))[0] != key


def test_year_cycle_turns_at_local_new_year() -> None:
    app = make_app("Asia/Shanghai")
    # 16:30Z on Dec 31 is already Jan 1 2027 in Shanghai
    assert period(Cycle(unit="year", n=1), app, utc(2026, 12, 31, 16, 30)) == ("y1-2027", utc(2027, 12, 31, 16, 0))
    assert period(Cycle(unit="year", n=1), app, utc(2026, 12, 31, 15, 59)) == ("y1-2026", utc(2026, 12, 31, 16, 0))
    assert period(Cycle(unit="year", n=1), make_app("UTC"), utc(2026, 12, 31, 16, 30)) == ("y1-2026", utc(2027, 1, 1))


def test_n_year_cycle_groups_years() -> None:
    app = make_app("UTC")
    key_2026, end = period(Cycle(unit="year", n=2), app, utc(2026, 6, 1))
    assert (key_2026, end) == ("y2-1013", utc(2028, 1, 1))
    assert period(Cycle(unit="year", n=2), app, utc(2027, 12, 31, 23, 59))[0] == key_2026
    assert period(Cycle(unit="year", n=2), app, utc(2028, 1, 1))[0] == "y2-1014"
    assert period(Cycle(unit="year", n=2), app, utc(2025, 12, 31, 23, 59))[0] == "y2-1012"


def test_once_is_one_cycle_forever() -> None:
    app = make_app("Asia/Shanghai")
    key, end = period(Cycle(unit="once"), app, LATE_UTC)
    assert key == "once"
    assert period(Cycle(unit="once"), app, utc(2040, 1, 1))[0] == "once"
    assert end > LATE_UTC + timedelta(days=3000)


# --- streaks ------------------------------------------------------------------------------------


def test_streak_continues_from_yesterday() -> None:
    assert streak_after("2026-11-23", 4, date(2026, 11, 24)) == 5
    assert streak_after("2026-12-31", 1, date(2027, 1, 1)) == 2
    assert streak_after("2024-02-28", 2, date(2024, 2, 29)) == 3


def test_a_missed_day_starts_over_at_one() -> None:
    assert streak_after("2026-11-22", 6, date(2026, 11, 24)) == 1
    assert streak_after(None, 0, date(2026, 11, 24)) == 1
    assert streak_after("2025-11-23", 9, date(2026, 11, 24)) == 1


def test_the_same_day_keeps_the_streak() -> None:
    # Consecutive days including today: checking today again does not break a 4-day streak.
    assert streak_after("2026-11-24", 4, date(2026, 11, 24)) == 4


def test_streak_bonus_pays_at_the_configured_lengths_only() -> None:
    task = CheckinTask.model_validate(
        {
            "template": "daily_checkin",
            "title": "Check in",
            "points": 10,
            "bonuses": [{"streak": 3, "points": 10}, {"streak": 7, "points": 30}],
        }
    )
    assert [streak_bonus(task, s) for s in range(1, 16)] == [0, 0, 10, 0, 0, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0]
    plain = CheckinTask.model_validate({"template": "daily_checkin", "title": "Check in", "points": 10})
    assert streak_bonus(plain, 3) == 0


def test_a_checkin_task_refuses_two_bonuses_for_one_streak() -> None:
    with pytest.raises(ValueError):
        CheckinTask.model_validate(
            {"template": "daily_checkin", "title": "x", "points": 1, "bonuses": [{"streak": 3, "points": 1}, {"streak": 3, "points": 2}]}
        )


# --- consumption points -------------------------------------------------------------------------


def consumption(**fields: object) -> ConsumptionTask:
    return ConsumptionTask.model_validate({"template": "consumption", "title": "Shop", "step_fen": 100, "points_per_step": 1, **fields})


def payment(amount_fen: int, product_ids: list[str] | None = None) -> GenericPaymentEvent:
    return GenericPaymentEvent.model_validate(
        {
            "id": "ev",
            "type": "payment.succeeded",
            "openid": "o",
            "order_id": "o1",
            "amount_fen": amount_fen,
            "product_ids": product_ids or [],
        }
    )


@pytest.mark.parametrize(
    ("fields", "amount", "expected"),
    [
        ({}, 999_900, 9999),
        ({}, 250, 2),  # whole steps only
        ({}, 99, 0),
        ({}, 0, 0),
        ({"step_fen": 1000, "points_per_step": 3}, 12_345, 36),
        ({"per_order_cap": 99}, 999_900, 99),
        ({"per_order_cap": 99}, 5_000, 50),
        ({"per_order_cap": 99}, 9_900, 99),
    ],
)
def test_consumption_points_per_step_with_a_per_order_cap(fields: dict[str, object], amount: int, expected: int) -> None:
    assert consumption_points(consumption(**fields), payment(amount)) == expected


def test_product_filter() -> None:
    task = consumption(product_ids=["p1", "p2"])
    assert consumption_points(task, payment(1_000, ["p3"])) == 0
    assert consumption_points(task, payment(1_000, [])) == 0
    assert consumption_points(task, payment(1_000, ["p3", "p2"])) == 10
    # Without a filter any order counts
    assert consumption_points(consumption(), payment(1_000, ["p3"])) == 10


def test_consumption_task_needs_a_step() -> None:
    with pytest.raises(ValueError):
        ConsumptionTask.model_validate({"template": "consumption", "title": "Shop", "points_per_step": 1})


# --- plan_earn: per-event and daily caps --------------------------------------------------------


def fresh(app: App, **fields: object) -> PointsProfile:
    return PointsProfile(app_id=app.app_id, member_id="m_1", openid="o", **fields)  # type: ignore[arg-type]


def test_per_event_cap_turns_a_9999_claim_into_99() -> None:
    # Given an upstream system claiming 9999 points for a 99-point action
    app = make_app()
    credit = plan_earn(app, fresh(app), 9999, LATE_UTC, per_event_cap=99)
    # Then 99 are credited, the claim is recorded and the note says why
    assert credit.points == 99
    assert credit.capped_from == 9999
    assert credit.note == "capped at 99 per event"
    assert (credit.change.balance_delta, credit.change.earned_add) == (99, 99)


def test_a_claim_under_the_caps_is_credited_in_full_without_a_note() -> None:
    app = make_app(daily_earn_cap=1000)
    credit = plan_earn(app, fresh(app), 50, LATE_UTC, per_event_cap=99)
    assert (credit.points, credit.capped_from, credit.note) == (50, None, None)
    assert credit.change.sets["earned_today"] == 50
    assert credit.change.sets["earn_day"] == "2026-11-24"  # the app's local day


def test_daily_cap_gives_partial_credit_then_nothing() -> None:
    # Given a daily cap of 100 and 70 already earned today (app-local Nov 24)
    app = make_app(daily_earn_cap=100)
    profile = fresh(app, earn_day="2026-11-24", earned_today=70, balance=70, earned_total=70, version=3)
    # When 50 more are requested
    credit = plan_earn(app, profile, 50, LATE_UTC)
    # Then 30 are credited and the day is full
    assert (credit.points, credit.capped_from) == (30, 50)
    assert credit.note == "daily cap of 100 reached"
    assert credit.change.sets["earned_today"] == 100
    assert credit.change.expected_version == 3
    # And once full, nothing more today
    full = fresh(app, earn_day="2026-11-24", earned_today=100)
    nothing = plan_earn(app, full, 50, LATE_UTC)
    assert (nothing.points, nothing.capped_from, nothing.change.balance_delta) == (0, 50, 0)
    assert "buckets" not in nothing.change.sets


def test_daily_cap_resets_on_the_next_local_day() -> None:
    app = make_app(daily_earn_cap=100)
    # Given the cap was reached on Nov 23 local; at 16:30Z on Nov 23 it is Nov 24 in Shanghai
    full_yesterday = fresh(app, earn_day="2026-11-23", earned_today=100)
    credit = plan_earn(app, full_yesterday, 60, LATE_UTC)
    assert (credit.points, credit.capped_from) == (60, None)
    assert (credit.change.sets["earn_day"], credit.change.sets["earned_today"]) == ("2026-11-24", 60)
    # But for a UTC app the same instant is still Nov 23: capped
    utc_app = make_app("UTC", daily_earn_cap=100)
    assert plan_earn(utc_app, fresh(utc_app, earn_day="2026-11-23", earned_today=100), 60, LATE_UTC).points == 0


def test_both_caps_apply_per_event_first() -> None:
    app = make_app(daily_earn_cap=100)
    credit = plan_earn(app, fresh(app, earn_day="2026-11-24", earned_today=40), 9999, LATE_UTC, per_event_cap=99)
    assert (credit.points, credit.capped_from) == (60, 9999)
    assert credit.note == "capped at 99 per event; daily cap of 100 reached"


def test_exempt_credit_ignores_and_does_not_fill_the_daily_cap() -> None:
    app = make_app(daily_earn_cap=100)
    credit = plan_earn(app, fresh(app, earn_day="2026-11-24", earned_today=100), 500, LATE_UTC, daily_cap=False)
    assert (credit.points, credit.capped_from) == (500, None)
    assert credit.change.sets["earned_today"] == 100


def test_earned_points_go_to_the_bucket_of_their_expiry_date() -> None:
    # Given a rolling-30-days app and a member holding a bucket that expires earlier
    app = make_app(expiry=ExpiryPolicy(type="rolling_days", n=30))
    profile = fresh(app, buckets={"2026-12-01": 5}, balance=5, earned_total=5)
    credit = plan_earn(app, profile, 20, LATE_UTC)
    # Then 20 land in the bucket of local Nov 24 + 30 days
    assert credit.change.sets["buckets"] == {"2026-12-01": 5, "2026-12-24": 20}
    # And the expiry index does not move (the earliest expiry is still Dec 1)
    assert "next_expiry" not in credit.change.sets
    # While a first credit puts the member in the index under its expiry date
    first = plan_earn(app, fresh(app), 20, LATE_UTC)
    assert first.change.sets["next_expiry"] == "2026-12-24"
    assert first.change.sets["GSI1PK"].startswith("EXP#")
    assert first.change.sets["GSI1SK"].startswith("2026-12-24#")


def test_never_expiring_points_stay_out_of_the_expiry_index() -> None:
    app = make_app()
    credit = plan_earn(app, fresh(app), 20, LATE_UTC)
    assert credit.change.sets["buckets"] == {NEVER: 20}
    assert "GSI1PK" not in credit.change.sets
