"""What WeChat Pay and Douyin do when they call Jifen: hold the platform key, encrypt, sign. Written from the
providers' documentation, independently of the adapters, so unit, integration and e2e tests can all act as them."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
import time
import uuid
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

API_V3_KEY = "0123456789abcdefghijklmnopqrstuv"  # 32 ASCII characters, like the merchant's APIv3 key
OTHER_API_V3_KEY = "vutsrqponmlkjihgfedcba9876543210"
DOUYIN_TOKEN = "douyin-payment-token-0001"
WECHAT_APPID = "wx0123456789abcdef"
DOUYIN_APPID = "tt0123456789abcdef"

_SUMMARIES = {"TRANSACTION.SUCCESS": ("transaction", "支付成功"), "REFUND.SUCCESS": ("refund", "退款成功")}


@functools.cache
def wechat_keys(name: str = "platform") -> tuple[rsa.RSAPrivateKey, str, str]:
    """(private key, public key PEM, serial) of a WeChat Pay platform key; one 2048-bit key per name per session."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private_key, public_pem(private_key), serial_of(private_key)


def public_pem(private_key: rsa.RSAPrivateKey) -> str:
    return private_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def serial_of(private_key: rsa.RSAPrivateKey) -> str:
    """A stable 40-hex-digit serial, uppercase like WeChat's certificate serials."""
    der = private_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:40].upper()


def wechat_signature(private_key: rsa.RSAPrivateKey, timestamp: str, nonce: str, body: bytes) -> str:
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def wechat_encrypt(api_v3_key: str, plaintext: bytes, nonce: str, associated_data: str) -> str:
    """base64(ciphertext || 16-byte tag), as WeChat Pay puts it in ``resource.ciphertext``."""
    return base64.b64encode(AESGCM(api_v3_key.encode()).encrypt(nonce.encode(), plaintext, associated_data.encode())).decode()


def wechat_notification(
    private_key: rsa.RSAPrivateKey,
    api_v3_key: str,
    event_type: str,
    transaction: dict[str, Any],
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
    serial: str | None = None,
    notification_id: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """(headers, body) of a WeChat Pay v3 notification: ``transaction`` encrypted into the resource, the body signed."""
    original_type, summary = _SUMMARIES.get(event_type, ("transaction", "通知"))
    resource_nonce = secrets.token_hex(6)  # 12 characters, like WeChat's
    notification = {
        "id": notification_id or str(uuid.uuid4()),
        "create_time": "2025-06-15T20:00:01+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": wechat_encrypt(api_v3_key, json.dumps(transaction, ensure_ascii=False).encode(), resource_nonce, original_type),
            "associated_data": original_type,
            "nonce": resource_nonce,
        },
    }
    body = json.dumps(notification, ensure_ascii=False).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    header_nonce = nonce or secrets.token_hex(16).upper()
    headers = {
        "Content-Type": "application/json",
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": header_nonce,
        "Wechatpay-Signature": wechat_signature(private_key, ts, header_nonce, body),
        "Wechatpay-Serial": serial if serial is not None else serial_of(private_key),
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }
    return headers, body


def wechat_transaction(
    openid: str = "o-wechat-member-1",
    out_trade_no: str = "order-1001",
    total: int = 1999,
    *,
    payer_total: int | None = None,
    attach: str | None = None,
    success_time: str = "2025-06-15T20:00:00+08:00",
    appid: str = WECHAT_APPID,
) -> dict[str, Any]:
    """A decrypted ``TRANSACTION.SUCCESS`` resource."""
    transaction: dict[str, Any] = {
        "appid": appid,
        "mchid": "1900000001",
        "out_trade_no": out_trade_no,
        "transaction_id": "4200000000" + out_trade_no.encode().hex()[:18].ljust(18, "0"),
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "success_time": success_time,
        "payer": {"openid": openid},
        "amount": {
            "total": total,
            "payer_total": total if payer_total is None else payer_total,
            "currency": "CNY",
            "payer_currency": "CNY",
        },
    }
    if attach is not None:
        transaction["attach"] = attach
    return transaction


def wechat_refund(
    out_trade_no: str = "order-1001",
    refund: int = 1999,
    *,
    total: int | None = None,
    payer_refund: int | None = None,
    out_refund_no: str = "refund-1001",
    refund_status: str = "SUCCESS",
    success_time: str = "2025-06-16T10:00:00+08:00",
) -> dict[str, Any]:
    """A decrypted ``REFUND.SUCCESS`` resource: WeChat names neither the payer nor the payment's attach."""
    return {
        "mchid": "1900000001",
        "out_trade_no": out_trade_no,
        "transaction_id": "4200000000000000000000000001",
        "out_refund_no": out_refund_no,
        "refund_id": "50000000000000000000000001",
        "refund_status": refund_status,
        "success_time": success_time,
        "user_received_account": "支付用户零钱",
        "amount": {
            "total": refund if total is None else total,
            "refund": refund,
            "payer_total": refund if total is None else total,
            "payer_refund": refund if payer_refund is None else payer_refund,
        },
    }


def douyin_signature(token: str, timestamp: str, nonce: str, msg: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, msg])).encode()).hexdigest()


def douyin_callback(
    token: str, msg: dict[str, Any], type: str = "payment", timestamp: int | None = None, *, nonce: str | None = None
) -> bytes:
    """The JSON body Douyin POSTs: ``msg`` as a JSON string, signed with the app's payment token."""
    msg_text = json.dumps(msg, separators=(",", ":"), ensure_ascii=False)
    ts = str(int(time.time()) if timestamp is None else timestamp)
    callback_nonce = nonce or str(secrets.randbelow(9000) + 1000)
    body = {
        "timestamp": ts,
        "nonce": callback_nonce,
        "msg": msg_text,
        "msg_signature": douyin_signature(token, ts, callback_nonce, msg_text),
        "type": type,
    }
    return json.dumps(body).encode()


def douyin_payment_msg(
    cp_orderno: str = "dy-order-1001",
    total_amount: int = 1999,
    *,
    cp_extra: dict[str, Any] | str | None = None,
    paid_at: int = 1_750_000_000,
    status: str = "SUCCESS",
    appid: str = DOUYIN_APPID,
) -> dict[str, Any]:
    """A ``payment`` msg; ``cp_extra`` as a dict is JSON-encoded, the way a tenant passes Jifen's fields."""
    return {
        "appid": appid,
        "cp_orderno": cp_orderno,
        "cp_extra": _extra_text(cp_extra),
        "way": "1",
        "channel_no": "",
        "channel_gateway_no": "",
        "payment_order_no": "PCP" + cp_orderno,
        "out_channel_order_no": "",
        "total_amount": total_amount,
        "status": status,
        "seller_uid": "69664700453838051970",
        "extra": "",
        "item_id": "",
        "paid_at": paid_at,
        "message": "",
        "order_id": "N7" + cp_orderno,
    }


def douyin_refund_msg(
    cp_refundno: str = "dy-refund-1001",
    refund_amount: int = 1999,
    *,
    cp_extra: dict[str, Any] | str | None = None,
    status: str = "SUCCESS",
    refunded_at: int = 1_750_086_400,
    appid: str = DOUYIN_APPID,
) -> dict[str, Any]:
    return {
        "appid": appid,
        "cp_refundno": cp_refundno,
        "cp_extra": _extra_text(cp_extra),
        "status": status,
        "refund_amount": refund_amount,
        "is_all_settled": False,
        "refunded_at": refunded_at,
        "message": "",
        "order_id": "N7" + cp_refundno,
    }


def _extra_text(cp_extra: dict[str, Any] | str | None) -> str:
    if cp_extra is None:
        return ""
    return cp_extra if isinstance(cp_extra, str) else json.dumps(cp_extra, separators=(",", ":"))
