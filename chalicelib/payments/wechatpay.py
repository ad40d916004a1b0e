"""WeChat Pay API v3 notifications: an RSA-SHA256 signature in the headers, the payload AES-256-GCM encrypted.

Who paid: a payment names its payer (``payer.openid``) unless the tenant's ``attach`` names the member
(``{"openid": ..., "product_ids": [...]}``, at most 128 characters), which wins so tenants whose member ids
are not this appid's openids still work. A refund notification names nobody and echoes no ``attach``: its
member comes from ``openid_for_order`` (the payment Jifen recorded for ``out_trade_no``), else ValidationFailed.

A resource the app's ``api_v3_key`` cannot open is Unauthorized, like a bad signature: AES-GCM is itself an
authentication check, and the fix is the app's credentials, not the payload.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from typing import Final, TypeVar

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.core.errors import Unauthorized, ValidationFailed
from chalicelib.payments.adapter import (
    OpenidForOrder,
    PaymentEvent,
    UnsupportedEvent,
    WechatPayConfig,
    build_event,
    check_fresh,
    iso_utc,
    resolve_openid,
    tenant_extra,
    validation_failed,
)
from chalicelib.payments.platform_key import load_platform_key

PROVIDER: Final = "wechatpay"
HEADER_TIMESTAMP: Final = "wechatpay-timestamp"
HEADER_NONCE: Final = "wechatpay-nonce"
HEADER_SIGNATURE: Final = "wechatpay-signature"
HEADER_SERIAL: Final = "wechatpay-serial"
HEADER_SIGNATURE_TYPE: Final = "wechatpay-signature-type"
SIGNATURE_TYPE: Final = "WECHATPAY2-SHA256-RSA2048"
ALGORITHM: Final = "AEAD_AES_256_GCM"
PAYMENT_EVENT: Final = "TRANSACTION.SUCCESS"
REFUND_EVENT: Final = "REFUND.SUCCESS"

_M = TypeVar("_M", bound=BaseModel)

# WeChat Pay treats HTTP 200/204 as received; this body is what its older docs ask for and is harmless to send.
SUCCESS_STATUS: Final = 200
SUCCESS_RESPONSE: Final[dict[str, str]] = {"code": "SUCCESS", "message": "成功"}


class WechatPay:
    """``PaymentProvider`` for one app's WeChat Pay merchant configuration."""

    name: Final = PROVIDER

    def __init__(self, config: WechatPayConfig, openid_for_order: OpenidForOrder | None = None) -> None:
        self.config = config
        self.openid_for_order = openid_for_order

    def parse(self, headers: Mapping[str, str], body: bytes, now_epoch: int, window: int) -> PaymentEvent:
        verify_signature(self.config, headers, body, now_epoch, window)
        notification = _decode(body)
        if notification.event_type == PAYMENT_EVENT:
            return self._payment(notification)
        if notification.event_type == REFUND_EVENT:
            return self._refund(notification)
        raise UnsupportedEvent(PROVIDER, notification.event_type)

    def _payment(self, notification: _Notification) -> PaymentEvent:
        transaction = _load(_Transaction, decrypt_resource(self.config.api_v3_key, notification.resource), "transaction")
        if transaction.trade_state != "SUCCESS":
            raise UnsupportedEvent(PROVIDER, f"{notification.event_type}/{transaction.trade_state}")
        if self.config.appid is not None and transaction.appid != self.config.appid:
            raise Unauthorized("The WeChat Pay transaction belongs to another appid")
        extra = tenant_extra(transaction.attach, "attach")
        openid = resolve_openid(
            extra.openid or (transaction.payer.openid if transaction.payer else None),
            transaction.out_trade_no,
            None,  # a payment must name its payer itself
            provider=PROVIDER,
            field="attach",
            required_by="transaction",
        )
        return build_event(
            PROVIDER,
            id=notification.id,
            type="payment.succeeded",
            openid=openid,
            order_id=transaction.out_trade_no,
            # What the member paid (after coupons) earns points; the order total is the fallback.
            amount_fen=transaction.amount.payer_total if transaction.amount.payer_total is not None else transaction.amount.total,
            product_ids=extra.product_ids,
            paid_at=_utc(transaction.success_time, "success_time"),
        )

    def _refund(self, notification: _Notification) -> PaymentEvent:
        refund = _load(_Refund, decrypt_resource(self.config.api_v3_key, notification.resource), "refund")
        if refund.refund_status != "SUCCESS":
            raise UnsupportedEvent(PROVIDER, f"{notification.event_type}/{refund.refund_status}")
        extra = tenant_extra(refund.attach, "attach")
        openid = resolve_openid(
            extra.openid or (refund.payer.openid if refund.payer else None),
            refund.out_trade_no,
            self.openid_for_order,
            provider=PROVIDER,
            field="attach",
            required_by="refund",
        )
        return build_event(
            PROVIDER,
            id=notification.id,
            type="payment.refunded",
            openid=openid,
            order_id=refund.out_trade_no,  # the paid order, so the refund finds what the payment granted
            amount_fen=refund.amount.payer_refund if refund.amount.payer_refund is not None else refund.amount.refund,
            product_ids=extra.product_ids,
            paid_at=_utc(refund.success_time, "success_time"),
        )


def verify_signature(config: WechatPayConfig, headers: Mapping[str, str], body: bytes, now_epoch: int, window: int) -> None:
    """Unauthorized unless the raw body is signed by the configured platform key, under its serial, recently."""
    lowered = {name.lower(): value for name, value in headers.items()}
    names = (HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE, HEADER_SERIAL)
    timestamp, nonce, signature, serial = (lowered.get(name, "") for name in names)
    if not (timestamp and nonce and signature and serial):
        raise Unauthorized("WeChat Pay signature headers are missing")
    if lowered.get(HEADER_SIGNATURE_TYPE, SIGNATURE_TYPE) != SIGNATURE_TYPE:
        raise Unauthorized(f"WeChat Pay signature type must be {SIGNATURE_TYPE}")
    if not hmac.compare_digest(serial.encode(), config.platform_serial.encode()):
        raise Unauthorized("Wechatpay-Serial is not the configured platform key")
    check_fresh(timestamp, now_epoch, window)
    try:
        raw_signature = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("Wechatpay-Signature is not base64") from None
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    try:
        load_platform_key(config.platform_public_key_pem).verify(raw_signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise Unauthorized("WeChat Pay signature does not match") from None


def decrypt_resource(api_v3_key: str, resource: _Resource) -> bytes:
    """The resource's plaintext. The ciphertext ends with the 16-byte GCM tag, as WeChat sends it."""
    if resource.algorithm != ALGORITHM:
        raise ValidationFailed(f"WeChat Pay resource algorithm must be {ALGORITHM}")
    try:
        ciphertext = base64.b64decode(resource.ciphertext, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed("WeChat Pay resource ciphertext is not base64") from None
    try:
        return AESGCM(api_v3_key.encode()).decrypt(resource.nonce.encode(), ciphertext, resource.associated_data.encode())
    except InvalidTag:
        raise Unauthorized("The app's api_v3_key does not open the WeChat Pay resource") from None
    except ValueError:  # nonce length out of range
        raise ValidationFailed("WeChat Pay resource nonce is invalid") from None


class _Resource(BaseModel):
    model_config = ConfigDict(extra="ignore")

    algorithm: str
    ciphertext: str = Field(min_length=1)
    associated_data: str = ""
    nonce: str = Field(min_length=1, max_length=128)
    original_type: str | None = None


class _Notification(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=128)
    create_time: str | None = None
    event_type: str = Field(min_length=1, max_length=64)
    resource_type: str | None = None
    resource: _Resource


class _Payer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    openid: str | None = None


class _Amount(BaseModel):
    model_config = ConfigDict(extra="ignore")

    total: int = Field(ge=0, strict=True)
    payer_total: int | None = Field(default=None, ge=0, strict=True)


class _Transaction(BaseModel):
    model_config = ConfigDict(extra="ignore")

    appid: str | None = None
    out_trade_no: str = Field(min_length=1, max_length=128)
    transaction_id: str | None = None
    trade_state: str
    payer: _Payer | None = None
    amount: _Amount
    success_time: str | None = None
    attach: str | None = None


class _RefundAmount(BaseModel):
    model_config = ConfigDict(extra="ignore")

    total: int | None = Field(default=None, ge=0, strict=True)
    refund: int = Field(ge=0, strict=True)
    payer_refund: int | None = Field(default=None, ge=0, strict=True)


class _Refund(BaseModel):
    model_config = ConfigDict(extra="ignore")

    out_trade_no: str = Field(min_length=1, max_length=128)
    out_refund_no: str | None = None
    refund_id: str | None = None
    refund_status: str
    amount: _RefundAmount
    success_time: str | None = None
    payer: _Payer | None = None  # not sent by WeChat today; read if it ever is
    attach: str | None = None  # likewise


def _decode(body: bytes) -> _Notification:
    try:
        data = json.loads(body)
    except ValueError:
        raise ValidationFailed("WeChat Pay notification is not JSON") from None
    return _load(_Notification, data, "notification")


def _load(model: type[_M], data: object, what: str) -> _M:
    try:
        return model.model_validate_json(data) if isinstance(data, bytes) else model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(f"WeChat Pay {what} is not in the expected shape", exc) from None


def _utc(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        return iso_utc(value)
    except ValueError as exc:
        raise ValidationFailed(f"WeChat Pay {field} {exc}", details=[{"field": field, "problem": str(exc)}]) from None
