"""Tenancy's objects and bodies: tenants, apps (settings, secrets), operators, members, stores, verifiers."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import ConfigDict, Field, field_validator, model_validator

from chalicelib.core.models import ID_PATTERN, USERNAME_PATTERN, Model, Role, Strict, omittable


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
    """A JSON merge patch (RFC 7396) of an app: only the fields sent change; null only where the app can hold null."""

    name: str = omittable(min_length=1, max_length=64)
    points_rate: int = omittable(ge=1, le=1_000_000)
    time_zone: str = omittable(max_length=64)
    expiry_policy: ExpiryPolicy = omittable(description="replaced as a whole (its n depends on its type)")
    daily_earn_cap: int | None = Field(default=None, ge=1, le=1_000_000_000, description="null = no cap")
    login_mode: LoginMode = omittable(strict=False, description="fixed once chosen: only the current mode is accepted")
    login_callback_url: str | None = Field(default=None, max_length=1024, description="owner only; null removes it (jwt mode)")
    reminder_webhook_url: str | None = Field(default=None, max_length=1024, description="owner only; null removes it")
    version: int = Field(ge=1, description="the version read; the update fails with 409 CONFLICT if it changed")

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_time_zone(value)

    @field_validator("login_callback_url", "reminder_webhook_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value:
            check_callback_url(value)
        return value


INTEGRATION_FIELDS = ("login_callback_url", "reminder_webhook_url")


def check_callback_url(value: str) -> str:
    """https with a host; plain http only to this machine, and only when Jifen itself runs locally."""
    from urllib.parse import urlsplit

    from chalicelib.core.config import get_settings

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
