"""Douyin (ByteDance mini-program) payment callbacks: ``msg_signature`` is the hex SHA-1 of the sorted
``[token, timestamp, nonce, msg]`` joined with "", all inside the JSON body.

Who paid: Douyin's ``msg`` carries no openid, so the tenant puts ``{"openid": ..., "product_ids": [...]}`` in the
order's ``cp_extra`` when it creates the order (and, for a refund, ``{"openid", "order_id"}`` in the refund's
``cp_extra``); no openid → ValidationFailed. A refund's ``order_id`` is the paid order named by ``cp_extra.order_id``,
falling back to ``cp_refundno`` (Douyin's refund callback does not echo ``cp_orderno``); when cp_extra names no
member, ``openid_for_order`` (the payment Jifen recorded for that order) may.

Event ids are ``douyin:{cp_orderno}:payment`` and ``douyin:{cp_refundno}:refund``: Douyin's retries of one callback
share them, and two partial refunds of one order do not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.core.errors import Unauthorized, ValidationFailed
from chalicelib.payments.adapter import (
    DouyinConfig,
    OpenidForOrder,
    PaymentEvent,
    UnsupportedEvent,
    build_event,
    check_fresh,
    iso_from_epoch,
    resolve_openid,
    tenant_extra,
    validation_failed,
)

PROVIDER: Final = "douyin"
PAYMENT_TYPE: Final = "payment"
REFUND_TYPE: Final = "refund"
LAST_EPOCH: Final = 253_402_300_799  # 9999-12-31T23:59:59Z

# Anything else in the body makes Douyin retry the callback.
SUCCESS_RESPONSE: Final[dict[str, object]] = {"err_no": 0, "err_tips": "success"}

_M = TypeVar("_M", bound=BaseModel)


class Douyin:
    """``PaymentProvider`` for one app's Douyin payment configuration. Headers carry nothing Douyin signs."""

    name: Final = PROVIDER

    def __init__(self, config: DouyinConfig, openid_for_order: OpenidForOrder | None = None) -> None:
        self.config = config
        self.openid_for_order = openid_for_order

    def parse(self, headers: Mapping[str, str], body: bytes, now_epoch: int, window: int) -> PaymentEvent:
        envelope = _envelope(body)
        msg = verify_signature(self.config.token, envelope, now_epoch, window)
        kind = envelope.get("type")
        # ``type`` is not signed: the msg schemas differ (cp_orderno/total_amount vs cp_refundno/refund_amount), so a
        # flipped type fails validation instead of reading a payment as a refund.
        if kind == PAYMENT_TYPE:
            return self._payment(_load(_PaymentMsg, msg))
        if kind == REFUND_TYPE:
            return self._refund(_load(_RefundMsg, msg))
        raise UnsupportedEvent(PROVIDER, str(kind))

    def _payment(self, msg: _PaymentMsg) -> PaymentEvent:
        if msg.status != "SUCCESS":
            raise UnsupportedEvent(PROVIDER, f"{PAYMENT_TYPE}/{msg.status}")
        self._check_appid(msg.appid)
        extra = tenant_extra(msg.cp_extra, "cp_extra")
        openid = resolve_openid(extra.openid, msg.cp_orderno, None, provider=PROVIDER, field="cp_extra", required_by="payment")
        return build_event(
            PROVIDER,
            id=f"{PROVIDER}:{msg.cp_orderno}:{PAYMENT_TYPE}",
            type="payment.succeeded",
            openid=openid,
            order_id=msg.cp_orderno,
            amount_fen=msg.total_amount,
            product_ids=extra.product_ids,
            paid_at=None if msg.paid_at is None else iso_from_epoch(msg.paid_at),
        )

    def _refund(self, msg: _RefundMsg) -> PaymentEvent:
        if msg.status != "SUCCESS":
            raise UnsupportedEvent(PROVIDER, f"{REFUND_TYPE}/{msg.status}")
        self._check_appid(msg.appid)
        extra = tenant_extra(msg.cp_extra, "cp_extra")
        order_id = extra.order_id or msg.cp_refundno
        openid = resolve_openid(extra.openid, order_id, self.openid_for_order, provider=PROVIDER, field="cp_extra", required_by="refund")
        return build_event(
            PROVIDER,
            id=f"{PROVIDER}:{msg.cp_refundno}:{REFUND_TYPE}",
            type="payment.refunded",
            openid=openid,
            order_id=order_id,
            amount_fen=msg.refund_amount,
            product_ids=extra.product_ids,
            paid_at=None if msg.refunded_at is None else iso_from_epoch(msg.refunded_at),
        )

    def _check_appid(self, appid: str | None) -> None:
        if self.config.appid is not None and appid != self.config.appid:
            raise Unauthorized("The Douyin callback belongs to another appid")


def msg_signature(token: str, timestamp: str, nonce: str, msg: str) -> str:
    joined = "".join(sorted([token, timestamp, nonce, msg]))
    return hashlib.sha1(joined.encode()).hexdigest()  # noqa: S324 (Douyin's documented algorithm)


def verify_signature(token: str, envelope: Mapping[str, Any], now_epoch: int, window: int) -> str:
    """The signed ``msg`` text; Unauthorized unless it is signed with ``token`` and fresh."""
    timestamp, nonce, msg, signature = (_signed_field(envelope, name) for name in ("timestamp", "nonce", "msg", "msg_signature"))
    check_fresh(timestamp, now_epoch, window)
    if not hmac.compare_digest(msg_signature(token, timestamp, nonce, msg).encode(), signature.lower().encode()):
        raise Unauthorized("Douyin msg_signature does not match")
    return msg


class _PaymentMsg(BaseModel):
    model_config = ConfigDict(extra="ignore")

    appid: str | None = None
    cp_orderno: str = Field(min_length=1, max_length=100)
    cp_extra: str | None = None
    payment_order_no: str | None = None
    total_amount: int = Field(ge=0, strict=True)
    status: str
    paid_at: int | None = Field(default=None, ge=0, le=LAST_EPOCH, strict=True)


class _RefundMsg(BaseModel):
    model_config = ConfigDict(extra="ignore")

    appid: str | None = None
    cp_refundno: str = Field(min_length=1, max_length=100)
    cp_extra: str | None = None
    refund_amount: int = Field(ge=0, strict=True)
    status: str
    refunded_at: int | None = Field(default=None, ge=0, le=LAST_EPOCH, strict=True)


def _envelope(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise ValidationFailed("Douyin callback is not JSON") from None
    if not isinstance(data, dict):
        raise ValidationFailed("Douyin callback is not a JSON object")
    return data


def _signed_field(envelope: Mapping[str, Any], name: str) -> str:
    value = envelope.get(name)
    # Douyin sends strings; a bare integer timestamp or nonce signs as its decimal text.
    if isinstance(value, int) and not isinstance(value, bool) and name in ("timestamp", "nonce"):
        return str(value)
    if not isinstance(value, str) or not value:
        raise Unauthorized(f"Douyin callback has no {name}")
    return value


def _load(model: type[_M], msg: str) -> _M:
    try:
        return model.model_validate_json(msg)
    except ValidationError as exc:
        raise validation_failed("Douyin msg is not in the expected shape", exc) from None
