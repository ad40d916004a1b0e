"""The points domain's objects and bodies: profiles, ledger entries, levels, and the points API's requests and
results.
"""

from __future__ import annotations

from itertools import pairwise

from pydantic import ConfigDict, Field, model_validator

from chalicelib.core.models import ID_PATTERN, OPENID, REFERENCE, Model, Strict

NEVER = "9999-12-31"


class PointsProfile(Model):
    """The points side of a member's profile item, as read (consistently) before a change."""

    app_id: str
    member_id: str
    openid: str
    exists: bool = True
    version: int = 0
    balance: int = 0
    earned_total: int = 0
    spent_total: int = 0
    expired_total: int = 0
    # expiry date (app-local, ISO) -> points earned that expire at the end of that day; NEVER for no expiry
    buckets: dict[str, int] = Field(default_factory=dict)
    growth: int = 0
    checkin_day: str | None = None
    streak: int = 0
    earn_day: str | None = None
    earned_today: int = 0
    birthday: str | None = None
    invite_code: str | None = None
    invited_by: str | None = None
    level: str | None = None
    nickname: str | None = None
    created_at: str | None = None
    last_login_at: str | None = None


class LedgerEntry(Model):
    id: str
    delta: int
    reason: str
    reference: str
    balance_after: int
    at: str
    kind: str = "grant"
    capped_from: int | None = None
    note: str | None = None


# --- member ----------------------------------------------------------------------------------------


class ProfileOut(Model):
    member_id: str
    openid: str
    app_id: str
    nickname: str | None
    birthday: str | None
    created_at: str
    last_login_at: str


class LedgerEntryOut(Model):
    id: str
    delta: int
    reason: str
    reference: str
    balance_after: int
    at: str
    kind: str
    capped_from: int | None = None
    note: str | None = None


class LedgerPage(Model):
    items: list[LedgerEntryOut]
    cursor: str | None


class Expiring(Model):
    date: str
    points: int


class LevelOut(Model):
    level_id: str
    name: str
    min_growth: int
    badge_url: str | None = None


class MeOut(Model):
    member_id: str
    openid: str
    app_id: str
    nickname: str | None
    balance: int
    earned_total: int
    spent_total: int
    expired_total: int
    growth: int
    level: LevelOut | None
    next_level: LevelOut | None
    expiring: list[Expiring]
    streak: int
    checked_in_on: str | None
    invite_code: str | None
    created_at: str | None


class PointsRequest(Strict):
    openid: str = OPENID
    points: int = Field(ge=1, le=100_000_000)
    reference: str = REFERENCE
    reason: str = Field(min_length=1, max_length=128)


class PointsResult(Model):
    applied: bool
    entry: LedgerEntryOut | None
    balance: int


class GrowthRequest(Strict):
    openid: str = OPENID
    task_id: str = Field(pattern=ID_PATTERN)
    reference: str = REFERENCE


class GrowthResult(Model):
    applied: bool
    entry: LedgerEntryOut | None = None
    balance: int
    growth: int
    level: LevelOut | None


class TransferRequest(Strict):
    openid: str = OPENID
    to_app_id: str = Field(pattern=ID_PATTERN)
    to_openid: str = OPENID
    points: int = Field(ge=1, le=100_000_000)
    reference: str = REFERENCE
    reason: str = Field(min_length=1, max_length=128)


class TransferResult(PointsResult):
    credited: int | None = None


class LadderIn(Model):
    model_config = ConfigDict(extra="forbid", strict=True)

    levels: list[Level] = Field(max_length=50)
    version: int = Field(ge=0, description="the version read (0 when no ladder exists yet)")


class LadderOut(Model):
    levels: list[LevelOut]
    version: int


class OutboxEntry(Model):
    member_id: str
    openid: str
    expires_on: str
    points: int
    created_at: str
    message: str


class OutboxPage(Model):
    day: str
    items: list[OutboxEntry]
    cursor: str | None


class Level(Model):
    model_config = ConfigDict(extra="forbid", strict=True)

    level_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = Field(min_length=1, max_length=32)
    min_growth: int = Field(ge=0, le=1_000_000_000)
    badge_url: str | None = Field(default=None, max_length=1024)


class LevelLadder(Model):
    model_config = ConfigDict(extra="forbid", strict=True)

    levels: list[Level] = Field(max_length=50)

    @model_validator(mode="after")
    def _strictly_increasing(self) -> LevelLadder:
        growths = [level.min_growth for level in self.levels]
        if any(b <= a for a, b in pairwise(growths)):
            raise ValueError("min_growth must be strictly increasing")
        ids = [level.level_id for level in self.levels]
        if len(set(ids)) != len(ids):
            raise ValueError("level ids must be unique")
        return self
