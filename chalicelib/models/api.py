"""Request and response bodies of the HTTP API. Strict: unknown fields and wrong types are refused."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from chalicelib.models.base import Model
from chalicelib.models.domain import (
    App,
    ExpiryPolicy,
    LoginMode,
    Member,
    Operator,
    Role,
    SecretName,
    Store,
    check_time_zone,
)
from chalicelib.models.tasks import Level, Task, TaskDefinition

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{3,64}$"


class Strict(Model):
    model_config = ConfigDict(extra="forbid", strict=True)


# --- auth ---------------------------------------------------------------------------------------


class MemberLoginRequest(Strict):
    app_id: str = Field(pattern=ID_PATTERN)
    login_token: str | None = Field(default=None, min_length=1, max_length=4096)
    code: str | None = Field(default=None, min_length=1, max_length=512)
    device_id: str = Field(min_length=1, max_length=128)

    @model_validator(mode="after")
    def _one_credential(self) -> MemberLoginRequest:
        if (self.login_token is None) == (self.code is None):
            raise ValueError("send exactly one of login_token (jwt mode) or code (callback mode)")
        return self


class MemberOut(Model):
    member_id: str
    openid: str
    nickname: str | None
    created_at: str

    @classmethod
    def from_domain(cls, member: Member) -> MemberOut:
        return cls(member_id=member.member_id, openid=member.openid, nickname=member.nickname, created_at=member.created_at)


class MemberLoginResponse(Model):
    token: str
    expires_in: int
    member: MemberOut


class OperatorLoginRequest(Strict):
    tenant_id: str = Field(pattern=ID_PATTERN)
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class VerifierLoginRequest(Strict):
    store_id: str = Field(pattern=ID_PATTERN)
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(Model):
    token: str
    expires_in: int
    role: Role | None = None
    tenant_id: str
    store_id: str | None = None


# --- apps -----------------------------------------------------------------------------------------


class AppFields(Strict):
    name: str = Field(min_length=1, max_length=64)
    points_rate: int = Field(ge=1, le=1_000_000, description="points per 1 yuan")
    time_zone: str = Field(default="Asia/Shanghai", max_length=64)
    expiry_policy: ExpiryPolicy = Field(default_factory=ExpiryPolicy)
    daily_earn_cap: int | None = Field(default=None, ge=1, le=1_000_000_000, description="null = no cap")

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_time_zone(value)


class CreateAppRequest(AppFields):
    login_mode: LoginMode = Field(default=LoginMode.JWT, strict=False)
    login_callback_url: str | None = Field(default=None, max_length=1024)
    reminder_webhook_url: str | None = Field(
        default=None, max_length=1024, description="optional: expiry reminders are also POSTed here, signed like generic webhooks"
    )

    @model_validator(mode="after")
    def _callback_url(self) -> CreateAppRequest:
        if self.login_mode == LoginMode.CALLBACK and not self.login_callback_url:
            raise ValueError("login_callback_url is required when login_mode is 'callback'")
        return self

    @field_validator("login_callback_url", "reminder_webhook_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        return check_callback_url(value) if value else value


class UpdateAppRequest(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=64)
    points_rate: int | None = Field(default=None, ge=1, le=1_000_000)
    time_zone: str | None = Field(default=None, max_length=64)
    expiry_policy: ExpiryPolicy | None = None
    daily_earn_cap: int | None = Field(default=None, ge=1, le=1_000_000_000)
    login_mode: LoginMode | None = Field(default=None, strict=False)
    login_callback_url: str | None = Field(default=None, max_length=1024)
    reminder_webhook_url: str | None = Field(default=None, max_length=1024)
    version: int = Field(ge=1, description="the version read; the update fails with 409 CONFLICT if it changed")

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_time_zone(value)

    @field_validator("login_callback_url", "reminder_webhook_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value:
            check_callback_url(value)
        return value


def check_callback_url(value: str) -> str:
    """https with a host; plain http only to this machine, and only when Jifen itself runs locally."""
    from urllib.parse import urlsplit

    from chalicelib.config import get_settings

    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1") and get_settings().stage == "local":
        return value
    raise ValueError("must be an https URL")


def secret_hint(value: str) -> str:
    return f"…{value[-4:]}"


class AppOut(Model):
    app_id: str
    tenant_id: str
    name: str
    points_rate: int
    time_zone: str
    expiry_policy: ExpiryPolicy
    daily_earn_cap: int | None
    login_mode: LoginMode
    login_callback_url: str | None
    reminder_webhook_url: str | None = None
    created_at: str
    updated_at: str
    version: int
    secret_hints: dict[str, str] = Field(default_factory=dict, description="last 4 characters of each secret")

    @classmethod
    def from_domain(cls, app: App, hints: dict[str, str] | None = None) -> AppOut:
        return cls(**app.model_dump(), secret_hints=hints or {})


class AppSecretsOut(Model):
    """Full secret values: shown once, in the response that created them."""

    login_secret: str | None = None
    server_key: str | None = None
    webhook_secret: str | None = None


class CreateAppResponse(Model):
    app: AppOut
    secrets: AppSecretsOut


class RotateSecretsRequest(Strict):
    secrets: list[SecretName] = Field(min_length=1, max_length=3)

    @field_validator("secrets")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each secret at most once")
        return value


class RotateSecretsResponse(Model):
    secrets: AppSecretsOut
    previous_valid_until: str | None


class AppList(Model):
    items: list[AppOut]
    cursor: str | None


# --- operators, stores ----------------------------------------------------------------------------


class CreateOperatorRequest(Strict):
    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=10, max_length=256)
    role: Role = Field(strict=False)


class OperatorOut(Model):
    tenant_id: str
    username: str
    role: Role
    created_at: str

    @classmethod
    def from_domain(cls, operator: Operator) -> OperatorOut:
        return cls(tenant_id=operator.tenant_id, username=operator.username, role=operator.role, created_at=operator.created_at)


class OperatorList(Model):
    items: list[OperatorOut]
    cursor: str | None


class CreateStoreRequest(Strict):
    name: str = Field(min_length=1, max_length=128)
    address: str | None = Field(default=None, max_length=512)


class StoreOut(Model):
    store_id: str
    tenant_id: str
    name: str
    address: str | None
    created_at: str

    @classmethod
    def from_domain(cls, store: Store) -> StoreOut:
        return cls(**store.model_dump())


class StoreList(Model):
    items: list[StoreOut]
    cursor: str | None


class CreateVerifierRequest(Strict):
    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=10, max_length=256)


class VerifierOut(Model):
    store_id: str
    username: str
    created_at: str


class TenantOut(Model):
    tenant_id: str
    name: str
    created_at: str


# --- member ----------------------------------------------------------------------------------------


class ProfileOut(Model):
    member_id: str
    openid: str
    app_id: str
    nickname: str | None
    birthday: str | None
    created_at: str
    last_login_at: str


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


# --- points ----------------------------------------------------------------------------------------

REFERENCE = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:#@/-]+$")
OPENID = Field(min_length=1, max_length=128)


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


class CheckinOut(Model):
    points: int
    streak: int
    bonus: int
    balance: int


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


class LadderIn(Model):
    model_config = ConfigDict(extra="forbid", strict=True)

    levels: list[Level] = Field(max_length=50)
    version: int = Field(ge=0, description="the version read (0 when no ladder exists yet)")


class LadderOut(Model):
    levels: list[LevelOut]
    version: int


class Deleted(Model):
    deleted: bool


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


class ProviderList(Model):
    items: list[dict[str, Any]]
