"""Payment-provider webhooks, normalized: every provider adapter turns its callback into one ``PaymentEvent``.

The event has the shape of the generic payment webhook body (API.md), so the route records and consumes all
providers the same way. Adapters are pure: configuration and lookups come in as parameters, time as ``now_epoch``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chalicelib.core.auth.signatures import check_timestamp
from chalicelib.core.errors import Unauthorized, ValidationFailed

PaymentEventType = Literal["payment.succeeded", "payment.refunded"]

# A refund callback may not say who paid (WeChat's never does): the route can answer from the recorded payment.
OpenidForOrder = Callable[[str], str | None]


class PaymentEvent(BaseModel):
    """One paid or refunded order. ``id`` is stable across the provider's retries, so it deduplicates deliveries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=128)
    type: PaymentEventType
    openid: str = Field(min_length=1, max_length=128)
    order_id: str = Field(min_length=1, max_length=128)
    amount_fen: int = Field(ge=0, strict=True)
    product_ids: list[str] = Field(default_factory=list, max_length=100)
    paid_at: str | None = None  # ISO 8601 UTC ("2025-06-15T12:00:00Z"): when the money moved (paid, or refunded)

    @field_validator("paid_at")
    @classmethod
    def _utc(cls, value: str | None) -> str | None:
        return None if value is None else iso_utc(value)


class WechatPayConfig(BaseModel):
    """What an app configures for WeChat Pay API v3 notifications (merchant platform → Jifen)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["wechatpay"] = "wechatpay"
    # The WeChat Pay platform public key (``-----BEGIN PUBLIC KEY-----``) or platform certificate, PEM.
    platform_public_key_pem: str = Field(min_length=1, max_length=8192)
    # ``Wechatpay-Serial`` of that key: the certificate serial, or the ``PUB_KEY_ID_...`` of a platform public key.
    platform_serial: str = Field(min_length=1, max_length=64)
    api_v3_key: str = Field(min_length=32, max_length=32, pattern=r"^[\x21-\x7e]{32}$", repr=False)
    # When set, notifications for another mini-program of the same merchant are refused (resource ``appid``).
    appid: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("platform_public_key_pem")
    @classmethod
    def _loads(cls, value: str) -> str:
        from chalicelib.payments.platform_key import load_platform_key

        load_platform_key(value)
        return value


class DouyinConfig(BaseModel):
    """What an app configures for Douyin (ByteDance mini-program) payment callbacks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["douyin"] = "douyin"
    # The payment "token" set in the Douyin developer console (payment settings); it salts ``msg_signature``.
    token: str = Field(min_length=1, max_length=128, repr=False)
    # When set, callbacks for another mini-program are refused (``msg.appid``).
    appid: str | None = Field(default=None, min_length=1, max_length=64)


class PaymentProvider(Protocol):
    def parse(self, headers: Mapping[str, str], body: bytes, now_epoch: int, window: int) -> PaymentEvent:
        """The verified event. Unauthorized when the callback is not the provider's (signature, serial, age,
        key); ValidationFailed when it is but cannot be understood; UnsupportedEvent for events with nothing to apply."""
        ...


class UnsupportedEvent(ValidationFailed):
    """A genuine callback that carries nothing to apply (closed refund, failed payment, settlement...).

    It is a ValidationFailed (400) unless the route chooses to acknowledge it so the provider stops retrying."""

    def __init__(self, provider: str, event_type: str) -> None:
        super().__init__(f"{provider} event {event_type!r} is not a payment or refund success")
        self.provider = provider
        self.event_type = event_type


class TenantExtra(BaseModel):
    """What the tenant may put in the order's pass-through field (WeChat ``attach``, Douyin ``cp_extra``) as JSON."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    openid: str | None = Field(default=None, min_length=1, max_length=128)
    product_ids: list[str] = Field(default_factory=list, max_length=100)
    order_id: str | None = Field(default=None, min_length=1, max_length=128)


def tenant_extra(text: str | None, field: str) -> TenantExtra:
    """Free text or non-object JSON is the tenant's own business and means "nothing for Jifen"; a JSON object is read."""
    if not text:
        return TenantExtra()
    try:
        data = json.loads(text)
    except ValueError:
        return TenantExtra()
    if not isinstance(data, dict):
        return TenantExtra()
    try:
        return TenantExtra.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(f"{field} is a JSON object but not a valid Jifen extra", exc) from None


def check_fresh(timestamp: str, now_epoch: int, window: int) -> None:
    """Unauthorized unless ``timestamp`` is ASCII unix seconds within ``window`` of now."""
    if not timestamp.isascii():  # str.isdigit() accepts "²", which int() refuses
        raise Unauthorized("Timestamp is missing or not unix seconds")
    check_timestamp(timestamp, now_epoch, window)


def resolve_openid(
    found: str | None, order_id: str, openid_for_order: OpenidForOrder | None, *, provider: str, field: str, required_by: str
) -> str:
    """The member who paid: named by the callback, or else by the payment recorded for ``order_id``."""
    if found:
        return found
    if openid_for_order is not None and (known := openid_for_order(order_id)):
        return known
    raise ValidationFailed(
        f'{provider} {required_by} names no member: put {{"openid": ...}} in {field}',
        details=[{"field": field, "problem": "openid is missing"}],
    )


def build_event(provider: str, **fields: object) -> PaymentEvent:
    """The normalized event, or ValidationFailed naming what the provider sent that does not fit it."""
    try:
        return PaymentEvent.model_validate(fields)
    except ValidationError as exc:
        raise validation_failed(f"{provider} event does not fit a payment event", exc) from None


def validation_failed(message: str, exc: ValidationError) -> ValidationFailed:
    details = [{"field": ".".join(str(part) for part in error["loc"]) or "(body)", "problem": error["msg"]} for error in exc.errors()]
    return ValidationFailed(message, details=details)


def iso_utc(value: str) -> str:
    """RFC 3339 with an offset (WeChat sends +08:00) → ``YYYY-MM-DDTHH:MM:SSZ``."""
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time with an offset") from None
    if at.tzinfo is None:
        raise ValueError("must carry a UTC offset")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_from_epoch(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
