"""Domain objects: what repositories return and logic works with."""

from __future__ import annotations

from enum import StrEnum
from typing import Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import ConfigDict, Field, field_validator, model_validator

from chalicelib.models.base import Model


class Role(StrEnum):
    OWNER = "owner"
    OPERATOR = "operator"
    REVIEWER = "reviewer"
    VIEWER = "viewer"


class LoginMode(StrEnum):
    JWT = "jwt"
    CALLBACK = "callback"


class ExpiryPolicy(Model):
    """When earned points expire: end of the Nth month / year after earning, N days later, or never."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    type: Literal["never", "end_of_nth_month", "end_of_nth_year", "rolling_days"] = "never"
    n: int | None = Field(default=None, ge=0, le=3650)

    @model_validator(mode="after")
    def _n_fits_type(self) -> ExpiryPolicy:
        limits = {"end_of_nth_month": 120, "end_of_nth_year": 10, "rolling_days": 3650}
        if self.type == "never":
            if self.n is not None:
                raise ValueError("n must be omitted when type is 'never'")
        elif self.n is None or not (0 if self.type != "rolling_days" else 1) <= self.n <= limits[self.type]:
            raise ValueError(f"n must be set and at most {limits[self.type]} for type '{self.type}'")
        return self


def check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ValueError, KeyError, OSError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class Tenant(Model):
    tenant_id: str
    name: str
    created_at: str


class Operator(Model):
    tenant_id: str
    username: str
    role: Role
    created_at: str
    disabled: bool = False
    password_hash: str = Field(default="", exclude=True, repr=False)


class App(Model):
    app_id: str
    tenant_id: str
    name: str
    points_rate: int
    time_zone: str
    expiry_policy: ExpiryPolicy
    daily_earn_cap: int | None
    login_mode: LoginMode
    login_callback_url: str | None = None
    reminder_webhook_url: str | None = None
    created_at: str
    updated_at: str
    version: int = 1

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_time_zone(value)


SecretName = Literal["login_secret", "server_key", "webhook_secret"]
SECRET_NAMES: tuple[SecretName, ...] = ("login_secret", "server_key", "webhook_secret")


class Secret(Model):
    current: str
    previous: str | None = None
    previous_until: int | None = None
    rotated_at: str

    def accepted(self, now_epoch: int) -> list[str]:
        """The values that verify now: the current one, and the previous one during its grace period."""
        values = [self.current]
        if self.previous and self.previous_until and now_epoch < self.previous_until:
            values.append(self.previous)
        return values


class AppSecrets(Model):
    app_id: str
    tenant_id: str
    login_secret: Secret
    server_key: Secret
    webhook_secret: Secret

    def get(self, name: SecretName) -> Secret:
        secret: Secret = getattr(self, name)
        return secret


class Member(Model):
    app_id: str
    member_id: str
    openid: str
    nickname: str | None = None
    birthday: str | None = None
    device_id: str | None = None
    created_at: str
    last_login_at: str
    logins: int = 0


class Store(Model):
    store_id: str
    tenant_id: str
    name: str
    address: str | None = None
    created_at: str


class Verifier(Model):
    store_id: str
    tenant_id: str
    username: str
    created_at: str
    password_hash: str = Field(default="", exclude=True, repr=False)


T = TypeVar("T")


class Page(Model, Generic[T]):
    items: list[T]
    cursor: str | None = None


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
