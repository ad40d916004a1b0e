"""Task definitions (K1–K3) and the tasks API's bodies: check-ins, completions, the member's task list, inbound
events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from chalicelib.core.models import Model, Strict
from chalicelib.points.models import LedgerEntryOut

# --- webhooks --------------------------------------------------------------------------------------


class WebhookReceipt(Model):
    received: bool = True
    duplicate: bool
    points: int = 0


class GenericPaymentEvent(Strict):
    """API.md's generic payment event."""

    model_config = ConfigDict(extra="ignore", strict=True)

    id: str = Field(min_length=1, max_length=128)
    type: Literal["payment.succeeded", "payment.refunded"]
    openid: str = Field(min_length=1, max_length=128)
    order_id: str = Field(min_length=1, max_length=128)
    amount_fen: int = Field(ge=0, le=10_000_000_000)
    product_ids: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=200)
    paid_at: str | None = Field(default=None, max_length=40)


class GenericAdEvent(Strict):
    """API.md's generic ad event."""

    model_config = ConfigDict(extra="ignore", strict=True)

    id: str = Field(min_length=1, max_length=128)
    type: Literal["ad.completed", "ad.clicked", "ad.exposed"]
    openid: str = Field(min_length=1, max_length=128)
    ad_unit: str = Field(min_length=1, max_length=128)
    at: str | None = Field(default=None, max_length=40)


class CheckinOut(Model):
    points: int
    streak: int
    bonus: int
    balance: int


class CompletionOut(Model):
    applied: bool
    points: int
    entry: LedgerEntryOut | None
    balance: int


class MemberTaskOut(Model):
    task_id: str
    template: str
    title: str
    description: str | None
    points: int
    growth: int
    cycle: dict[str, Any]
    completions_per_cycle: int
    done: int
    period: str
    details: dict[str, Any] = Field(default_factory=dict, description="template-specific fields a client needs (url, ad unit, ...)")


class MemberTaskList(Model):
    items: list[MemberTaskOut]


class TaskReplace(Model):
    model_config = ConfigDict(extra="forbid")

    task: TaskDefinition
    version: int = Field(ge=1, strict=True)


class TaskList(Model):
    items: list[Task]


POINTS = Field(ge=0, le=1_000_000)


class Cycle(Model):
    """Completions are counted per cycle: N hours, N natural days, N years, or once ever."""

    model_config = ConfigDict(extra="forbid", strict=True)

    unit: Literal["hour", "day", "year", "once"] = "day"
    n: int = Field(default=1, ge=1, le=366)


class TaskCommon(Model):
    model_config = ConfigDict(extra="forbid", strict=True)

    title: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=512)
    cycle: Cycle = Field(default_factory=Cycle)
    completions_per_cycle: int = Field(default=1, ge=1, le=1000)
    points: int = POINTS
    growth: int = Field(default=0, ge=0, le=1_000_000, description="growth value per completion (M2)")
    per_event_cap: int | None = Field(default=None, ge=1, le=1_000_000, description="most points one event can earn")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    sort_weight: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    online: bool = True

    @field_validator("starts_at", "ends_at", mode="before")
    @classmethod
    def _parse_time(cls, value: object) -> object:
        if isinstance(value, str):
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        return value

    @model_validator(mode="after")
    def _window(self) -> TaskCommon:
        for moment in (self.starts_at, self.ends_at):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("times need a time zone (ISO 8601 with Z or an offset)")
        if self.starts_at and self.ends_at and self.starts_at >= self.ends_at:
            raise ValueError("starts_at must be before ends_at")
        return self


class StreakBonus(Model):
    model_config = ConfigDict(extra="forbid", strict=True)

    streak: int = Field(ge=2, le=366)
    points: int = Field(ge=1, le=1_000_000)


class CheckinTask(TaskCommon):
    template: Literal["daily_checkin"]
    bonuses: list[StreakBonus] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _unique_streaks(self) -> CheckinTask:
        streaks = [bonus.streak for bonus in self.bonuses]
        if len(set(streaks)) != len(streaks):
            raise ValueError("one bonus per streak length")
        return self


class ConsumptionTask(TaskCommon):
    template: Literal["consumption"]
    step_fen: int = Field(ge=1, le=100_000_000, description="points are earned per this many fen spent")
    points_per_step: int = Field(ge=1, le=1_000_000)
    per_order_cap: int | None = Field(default=None, ge=1, le=1_000_000)
    product_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(default=None, max_length=200)
    points: int = Field(default=0, ge=0, le=0, description="unused: consumption points come from the order amount")


class ReceiptTask(TaskCommon):
    template: Literal["upload_receipt"]
    review_timeout_seconds: int = Field(default=3 * 24 * 3600, ge=1, le=30 * 24 * 3600)
    max_images: int = Field(default=3, ge=1, le=9)


class JoinDrawTask(TaskCommon):
    template: Literal["join_draw"]
    activity_id: str = Field(min_length=1, max_length=64)


class MallExchangeTask(TaskCommon):
    template: Literal["mall_exchange"]
    listing_id: str | None = Field(default=None, max_length=64, description="null = any listing")


class BrowsePageTask(TaskCommon):
    template: Literal["browse_page"]
    url: str = Field(min_length=1, max_length=1024)
    min_seconds: int = Field(default=0, ge=0, le=3600)


class WatchAdTask(TaskCommon):
    template: Literal["watch_ad"]
    ad_unit: str | None = Field(default=None, max_length=128, description="null = any ad unit")


class BirthdayTask(TaskCommon):
    template: Literal["birthday"]
    cycle: Cycle = Field(default_factory=lambda: Cycle(unit="year", n=1))


class FestivalTask(TaskCommon):
    template: Literal["festival"]

    @model_validator(mode="after")
    def _dated(self) -> FestivalTask:
        if self.starts_at is None or self.ends_at is None:
            raise ValueError("a festival task needs starts_at and ends_at")
        return self


class SocialTask(TaskCommon):
    template: Literal["add_friend", "join_group"]
    config_id: str = Field(min_length=1, max_length=128, description="the friend / group the member joins")


class InviteTask(TaskCommon):
    template: Literal["invite"]
    cycle: Cycle = Field(default_factory=lambda: Cycle(unit="once", n=1))
    completions_per_cycle: int = Field(default=1000, ge=1, le=100_000, description="most invitees an inviter earns for")


TaskDefinition = Annotated[
    CheckinTask
    | ConsumptionTask
    | ReceiptTask
    | JoinDrawTask
    | MallExchangeTask
    | BrowsePageTask
    | WatchAdTask
    | BirthdayTask
    | FestivalTask
    | SocialTask
    | InviteTask,
    Field(discriminator="template"),
]

SELF_REPORTED = frozenset({"browse_page", "add_friend", "join_group", "festival"})


class TaskIn(Model):
    """Request body for creating / replacing a task."""

    model_config = ConfigDict(extra="forbid")

    task: TaskDefinition


class Task(Model):
    task_id: str
    version: int
    updated_at: str
    definition: TaskDefinition
