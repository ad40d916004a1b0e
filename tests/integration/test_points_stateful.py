"""P1-P4 as a state machine: random grants, deductions, refunds, retries, time passing and expiry runs
against the real logic on moto, checked after every step against a plain-Python model of FIFO buckets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from moto import mock_aws

from chalicelib.core.clock import FixedClock
from chalicelib.core.errors import InsufficientPoints
from chalicelib.core.ids import member_id_for
from chalicelib.core.table import schema
from chalicelib.core.table.cache import config_cache
from chalicelib.points import engine as points
from chalicelib.points import expiry_jobs
from chalicelib.points.expiry import expiring
from chalicelib.points.models import LedgerEntry
from chalicelib.points.store.points import PointsRepo
from chalicelib.tenancy import accounts, apps
from chalicelib.tenancy.models import App, CreateAppRequest, ExpiryPolicy
from chalicelib.tenancy.store.members import MembersRepo

ZONE = ZoneInfo("Asia/Shanghai")
ROLLING_DAYS = 3
OPENID = "member-1"
START = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


class Model:
    """What the account should hold: buckets of (last valid day → points left), consumed oldest first."""

    def __init__(self) -> None:
        self.buckets: dict[str, int] = {}
        self.earned = self.spent = self.expired = 0

    @property
    def balance(self) -> int:
        return sum(self.buckets.values())

    def earn(self, today: date, n: int) -> None:
        day = (today + timedelta(days=ROLLING_DAYS)).isoformat()
        self.buckets[day] = self.buckets.get(day, 0) + n
        self.earned += n

    def spend(self, n: int) -> None:
        assert n <= self.balance
        self.spent += n
        for day in sorted(self.buckets):
            taken = min(n, self.buckets[day])
            self.buckets[day] -= taken
            n -= taken
        self.buckets = {day: left for day, left in self.buckets.items() if left}

    def expire(self, today: date) -> int:
        due = [day for day in self.buckets if day < today.isoformat()]
        points = sum(self.buckets.pop(day) for day in due)
        self.expired += points
        return points


@pytest.fixture(scope="module")
def moto_client() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb")
        config_cache().clear()


class PointsAccount(RuleBasedStateMachine):
    client: Any = None

    def __init__(self) -> None:
        super().__init__()
        table = os.environ["JIFEN_TABLE"]
        if table in self.client.list_tables()["TableNames"]:
            self.client.delete_table(TableName=table)
        schema.create_table(self.client, table)
        config_cache().clear()
        accounts.create_tenant("acme", "Acme", "owner", "owner-password-1")
        request = CreateAppRequest(
            name="Stateful", points_rate=100, time_zone="Asia/Shanghai", expiry_policy=ExpiryPolicy(type="rolling_days", n=ROLLING_DAYS)
        )
        self.app: App = apps.create_app("acme", request).app
        self.member_id = member_id_for(self.app.app_id, OPENID)
        MembersRepo().record_login(self.app.app_id, self.member_id, OPENID, "2026-03-01T00:00:00Z", "d", None, None)
        self.clock = FixedClock(START)
        self.model = Model()
        self.repo = PointsRepo()
        self.serial = 0
        # (operation, reference, points, first entry id) for every applied call
        self.applied: list[tuple[str, str, int, str]] = []

    def today(self) -> date:
        return self.clock.now().astimezone(ZONE).date()

    def reference(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial}"

    def call(self, operation: str, reference: str, n: int) -> points.Outcome:
        functions = {"grant": points.grant, "deduct": points.deduct, "refund": points.refund}
        return functions[operation](self.app, OPENID, n, reference, operation, clock=self.clock)  # type: ignore[operator]

    # --- rules ------------------------------------------------------------------------------------

    @rule(n=st.integers(min_value=1, max_value=60))
    def grant(self, n: int) -> None:
        reference = self.reference("g")
        outcome = self.call("grant", reference, n)
        assert outcome.applied and outcome.entry is not None and outcome.entry.delta == n
        self.model.earn(self.today(), n)
        self.applied.append(("grant", reference, n, outcome.entry.id))

    @rule(n=st.integers(min_value=1, max_value=90))
    def deduct(self, n: int) -> None:
        reference = self.reference("d")
        if n > self.model.balance:
            try:
                self.call("deduct", reference, n)
            except InsufficientPoints:
                return
            raise AssertionError(f"deducting {n} from {self.model.balance} was not refused")
        outcome = self.call("deduct", reference, n)
        assert outcome.applied and outcome.entry is not None and outcome.entry.delta == -n
        self.model.spend(n)
        self.applied.append(("deduct", reference, n, outcome.entry.id))

    @rule(n=st.integers(min_value=1, max_value=40))
    def refund(self, n: int) -> None:
        reference = self.reference("r")
        outcome = self.call("refund", reference, n)
        assert outcome.applied and outcome.entry is not None and outcome.entry.kind == "refund"
        self.model.earn(self.today(), n)
        self.applied.append(("refund", reference, n, outcome.entry.id))

    @precondition(lambda self: bool(self.applied))
    @rule(data=st.data())
    def repeat(self, data: st.DataObject) -> None:
        # A retry of any earlier call (even a deduction the balance could no longer pay) returns its first entry
        operation, reference, n, entry_id = data.draw(st.sampled_from(self.applied))
        outcome = self.call(operation, reference, n)
        assert not outcome.applied
        assert outcome.entry is not None and outcome.entry.id == entry_id

    @rule(hours=st.integers(min_value=1, max_value=48))
    def advance(self, hours: int) -> None:
        self.clock.at += timedelta(hours=hours)

    @rule()
    def run_expiry(self) -> None:
        # The job finds every overdue member through the expiry index, however long since it last ran
        run = expiry_jobs.run_expiry(clock=self.clock)
        assert run.errors == [] and run.finished
        assert run.points == self.model.expire(self.today())

    # --- invariants -------------------------------------------------------------------------------

    @invariant()
    def account_matches_the_model(self) -> None:
        profile = self.repo.get_profile(self.app.app_id, self.member_id)
        page = self.repo.ledger(self.app.app_id, self.member_id, None, 100)
        assert profile is not None and page.cursor is None
        entries = page.items
        # The balance is the sum of the ledger and the model's, never negative; totals agree
        assert profile.balance == sum(entry.delta for entry in entries) == self.model.balance >= 0
        assert (profile.earned_total, profile.spent_total, profile.expired_total) == (
            self.model.earned,
            self.model.spent,
            self.model.expired,
        )
        # Each entry's balance_after follows from the one before it
        assert chains(entries)
        # What is left of each bucket is the model's FIFO remainder
        assert expiring(profile, limit=100) == sorted((day, left) for day, left in self.model.buckets.items() if left)
        # Every reference is applied at most once: one entry per applied call, plus expiry entries
        keys = [(entry.kind, entry.reference) for entry in entries]
        assert len(keys) == len(set(keys))
        assert len(keys) == len(self.applied) + sum(1 for entry in entries if entry.kind == "expiry")


def chains(entries: list[LedgerEntry]) -> bool:
    """True when the entries, oldest first (any order within one instant), each end at the previous balance + delta."""

    def follow(remaining: list[LedgerEntry], running: int) -> bool:
        if not remaining:
            return True
        earliest = min(entry.at for entry in remaining)
        return any(
            follow([other for other in remaining if other is not entry], entry.balance_after)
            for entry in remaining
            if entry.at == earliest and entry.balance_after == running + entry.delta
        )

    return follow(list(entries), 0)


def test_points_account_behaves_like_the_model(moto_client: Any) -> None:
    PointsAccount.client = moto_client
    run_state_machine_as_test(PointsAccount, settings=settings(max_examples=25, stateful_step_count=20, deadline=None))
