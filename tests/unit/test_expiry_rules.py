"""P4 expiry rules as pure functions: the last valid day per policy, FIFO over buckets, what is due."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.points.expiry import expire_due, expiring, expiry_date, next_expiry, remaining_by_bucket
from chalicelib.points.models import NEVER, PointsProfile
from chalicelib.tenancy.models import ExpiryPolicy


def policy(kind: str, n: int | None = None) -> ExpiryPolicy:
    return ExpiryPolicy(type=kind, n=n)  # type: ignore[arg-type]


def profile(buckets: dict[str, int], *, spent: int = 0, expired: int = 0, earned: int | None = None) -> PointsProfile:
    """A profile whose totals agree with its buckets: balance = earned - spent - expired."""
    earned_total = sum(buckets.values()) if earned is None else earned
    return PointsProfile(
        app_id="app_x",
        member_id="m_x",
        openid="o",
        balance=earned_total - spent - expired,
        earned_total=earned_total,
        spent_total=spent,
        expired_total=expired,
        buckets=buckets,
    )


# --- expiry_date: every policy ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earned_on", "n", "expected"),
    [
        (date(2026, 1, 31), 1, "2026-02-28"),  # Jan 31 + 1 month → the end of February, not March 3
        (date(2024, 1, 31), 1, "2024-02-29"),  # leap year
        (date(2026, 1, 1), 0, "2026-01-31"),  # n = 0: the end of the month of earning
        (date(2026, 2, 15), 0, "2026-02-28"),
        (date(2026, 3, 31), 1, "2026-04-30"),  # 31 → a 30-day month
        (date(2026, 11, 30), 1, "2026-12-31"),
        (date(2026, 12, 1), 1, "2027-01-31"),  # crosses the year
        (date(2026, 12, 31), 2, "2027-02-28"),
        (date(2027, 12, 31), 2, "2028-02-29"),
        (date(2026, 12, 15), 13, "2028-01-31"),
        (date(2026, 1, 10), 12, "2027-01-31"),
        (date(2026, 6, 30), 120, "2036-06-30"),
    ],
)
def test_end_of_nth_month_is_the_last_day_of_that_month(earned_on: date, n: int, expected: str) -> None:
    # Given points earned on a day under "end of the Nth month"
    # When the expiry date is computed
    # Then it is the last calendar day of the month N months later
    assert expiry_date(policy("end_of_nth_month", n), earned_on) == expected


@pytest.mark.parametrize(
    ("earned_on", "n", "expected"),
    [
        (date(2026, 3, 5), 1, "2027-12-31"),
        (date(2026, 1, 1), 1, "2027-12-31"),
        (date(2026, 12, 31), 1, "2027-12-31"),
        (date(2026, 7, 1), 0, "2026-12-31"),
        (date(2024, 2, 29), 2, "2026-12-31"),  # a leap day does not matter for year ends
        (date(2026, 5, 5), 10, "2036-12-31"),
    ],
)
def test_end_of_nth_year_is_december_31(earned_on: date, n: int, expected: str) -> None:
    assert expiry_date(policy("end_of_nth_year", n), earned_on) == expected


@pytest.mark.parametrize(
    ("earned_on", "n", "expected"),
    [
        (date(2026, 1, 1), 30, "2026-01-31"),
        (date(2026, 1, 31), 1, "2026-02-01"),
        (date(2024, 2, 28), 1, "2024-02-29"),  # leap year
        (date(2023, 2, 28), 1, "2023-03-01"),  # not a leap year
        (date(2026, 12, 31), 1, "2027-01-01"),
        (date(2024, 1, 1), 366, "2025-01-01"),
        (date(2026, 11, 24), 3650, "2036-11-21"),
    ],
)
def test_rolling_days_adds_n_calendar_days(earned_on: date, n: int, expected: str) -> None:
    assert expiry_date(policy("rolling_days", n), earned_on) == expected


@pytest.mark.parametrize("earned_on", [date(2026, 1, 31), date(2024, 2, 29), date(9999, 12, 30)])
def test_never_expires(earned_on: date) -> None:
    assert expiry_date(policy("never"), earned_on) == NEVER == "9999-12-31"


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2200, 12, 31)), st.integers(min_value=0, max_value=120))
@settings(max_examples=200, deadline=None)
def test_end_of_nth_month_property(earned_on: date, n: int) -> None:
    # Given any earning day and N
    result = date.fromisoformat(expiry_date(policy("end_of_nth_month", n), earned_on))
    # Then it is the last day of a month, exactly N months after the month of earning
    assert (result.year - earned_on.year) * 12 + result.month - earned_on.month == n
    assert result.day >= 28 and date.fromordinal(result.toordinal() + 1).day == 1


@pytest.mark.parametrize(
    ("kind", "n"),
    [("rolling_days", 0), ("rolling_days", None), ("end_of_nth_month", 121), ("end_of_nth_year", 11), ("never", 1)],
)
def test_a_policy_that_does_not_fit_its_type_is_refused(kind: str, n: int | None) -> None:
    with pytest.raises(ValueError):
        policy(kind, n)


# --- remaining_by_bucket: FIFO ------------------------------------------------------------------

BUCKETS = {"2026-03-31": 30, "2026-01-31": 100, "2026-02-28": 50}  # deliberately unsorted


def test_nothing_spent_leaves_every_bucket_whole_oldest_first() -> None:
    assert remaining_by_bucket(profile(BUCKETS)) == [("2026-01-31", 100), ("2026-02-28", 50), ("2026-03-31", 30)]


def test_a_spend_consumes_the_oldest_bucket_first() -> None:
    # Given 180 earned in three buckets, 70 spent
    # Then the oldest bucket has 30 left and the others are whole
    assert remaining_by_bucket(profile(BUCKETS, spent=70)) == [("2026-01-31", 30), ("2026-02-28", 50), ("2026-03-31", 30)]


def test_a_spend_of_exactly_the_oldest_bucket_removes_it() -> None:
    assert remaining_by_bucket(profile(BUCKETS, spent=100)) == [("2026-02-28", 50), ("2026-03-31", 30)]


def test_a_spend_across_two_buckets_consumes_one_fully_and_one_partly() -> None:
    assert remaining_by_bucket(profile(BUCKETS, spent=120)) == [("2026-02-28", 30), ("2026-03-31", 30)]


def test_everything_spent_leaves_nothing() -> None:
    assert remaining_by_bucket(profile(BUCKETS, spent=180)) == []


def test_pruned_buckets_count_as_consumed() -> None:
    # Given the January bucket (100, of which 70 were spent and 30 expired) already dropped from the map
    p = profile({"2026-02-28": 50, "2026-03-31": 30}, earned=180, spent=70, expired=30)
    # Then the later buckets are whole: what was spent came from the pruned bucket
    assert p.balance == 80
    assert remaining_by_bucket(p) == [("2026-02-28", 50), ("2026-03-31", 30)]
    # And a later spend of 60 takes the February bucket and 10 of March
    p2 = profile({"2026-02-28": 50, "2026-03-31": 30}, earned=180, spent=130, expired=30)
    assert remaining_by_bucket(p2) == [("2026-03-31", 20)]


def test_never_bucket_is_consumed_last() -> None:
    p = profile({NEVER: 40, "2026-05-31": 10}, spent=15)
    assert remaining_by_bucket(p) == [(NEVER, 35)]
    assert expiring(p) == []  # NEVER is not shown as expiring
    assert expiring(profile({NEVER: 40, "2026-05-31": 10}, spent=5)) == [("2026-05-31", 5)]


@given(
    st.dictionaries(st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31)), st.integers(1, 500), min_size=1, max_size=8),
    st.data(),
)
@settings(max_examples=200, deadline=None)
def test_remaining_always_sums_to_the_balance_and_is_a_fifo_suffix(raw: dict[date, int], data: st.DataObject) -> None:
    buckets = {day.isoformat(): n for day, n in raw.items()}
    spent = data.draw(st.integers(0, sum(buckets.values())))
    left = remaining_by_bucket(profile(buckets, spent=spent))
    # Then what is left sums to the balance, is in date order, never exceeds a bucket
    assert sum(n for _, n in left) == sum(buckets.values()) - spent
    assert [day for day, _ in left] == sorted(day for day, _ in left)
    assert all(0 < n <= buckets[day] for day, n in left)
    # And only the oldest remaining bucket may be partial (FIFO)
    assert all(n == buckets[day] for day, n in left[1:])


# --- expire_due ---------------------------------------------------------------------------------


def test_nothing_is_due_on_the_last_valid_day() -> None:
    due = expire_due(profile(BUCKETS, spent=70), date(2026, 1, 31))
    assert (due.points, due.drop, due.due_dates) == (0, (), ())


def test_the_day_after_the_last_valid_day_expires_what_is_left_of_that_bucket() -> None:
    due = expire_due(profile(BUCKETS, spent=70), date(2026, 2, 1))
    assert (due.points, due.drop) == (30, ("2026-01-31",))


def test_multiple_due_buckets_expire_together() -> None:
    # Given 70 spent (from January) and a run on March 1st
    due = expire_due(profile(BUCKETS, spent=70), date(2026, 3, 1))
    # Then January's remaining 30 and February's 50 expire; March is untouched
    assert due.points == 80
    assert due.drop == due.due_dates == ("2026-01-31", "2026-02-28")


def test_a_fully_spent_due_bucket_expires_nothing_but_is_dropped() -> None:
    due = expire_due(profile(BUCKETS, spent=120), date(2026, 3, 1))
    # January fully spent, February 30 left
    assert due.points == 30
    assert due.drop == ("2026-01-31", "2026-02-28")
    assert expire_due(profile(BUCKETS, spent=150), date(2026, 3, 1)).points == 0


def test_never_is_never_due() -> None:
    due = expire_due(profile({NEVER: 40}), date(9999, 12, 31))
    assert (due.points, due.drop) == (0, ())


def test_after_expiring_the_profile_has_nothing_more_due() -> None:
    # Given the expiry applied the way the job applies it (buckets dropped, balance reduced)
    before = profile(BUCKETS, spent=70)
    due = expire_due(before, date(2026, 3, 1))
    after = profile({d: n for d, n in before.buckets.items() if d not in due.drop}, earned=180, spent=70, expired=due.points)
    # Then the balance is exactly the March bucket, and a second run finds nothing
    assert after.balance == 30
    assert remaining_by_bucket(after) == [("2026-03-31", 30)]
    assert expire_due(after, date(2026, 3, 1)).points == 0


def test_next_expiry_skips_never_and_respects_after() -> None:
    assert next_expiry(BUCKETS) == "2026-01-31"
    assert next_expiry(BUCKETS, after="2026-01-31") == "2026-02-28"
    assert next_expiry({NEVER: 5}) is None
    assert next_expiry({}) is None
