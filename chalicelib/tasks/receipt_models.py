"""Receipts (K2 "upload receipt") and their review (K3)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from chalicelib.core.models import Model

# Receipt images live under this prefix of the uploads bucket; the bucket deletes them this long after upload
# (longer than an upload, the longest review and its timeout take), so abandoned ones do not pile up.
RECEIPT_PREFIX = "receipts/"
RECEIPT_IMAGE_RETENTION_DAYS = 90

ReceiptStatus = Literal["uploading", "submitted", "pending", "deciding", "approved", "rejected"]


class Receipt(Model):
    receipt_id: str
    app_id: str
    member_id: str
    openid: str
    task_id: str
    status: ReceiptStatus
    image_keys: list[str]
    created_at: str
    submitted_at: str | None = None
    decided_at: str | None = None
    reviewer: str | None = None
    reason: str | None = None
    task_token: str | None = Field(default=None, exclude=True)
    points: int | None = None


class ReceiptRequest(Model):
    model_config = ConfigDict(extra="forbid", strict=True)

    images: int = Field(default=1, ge=1, le=9)
    content_type: Literal["image/jpeg", "image/png", "image/webp"] = "image/jpeg"


class UploadSlot(Model):
    """Where one image goes: a presigned POST (S3 refuses another content type, or a file over the size limit)."""

    key: str
    url: str = Field(description="POST a multipart/form-data body here: every entry of `fields`, then the image as `file`")
    method: Literal["POST"] = Field(default="POST", description="always POST (a presigned PUT could not bound the size)")
    fields: dict[str, str] = Field(description="form fields to send as they are, before the file (policy, signature, Content-Type, key)")
    max_bytes: int = Field(description="largest image S3 accepts, in bytes")
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers: none for the POST (kept for older clients)")


class ReceiptCreated(Model):
    receipt_id: str
    uploads: list[UploadSlot]
    submit_path: str


class ReceiptOut(Model):
    receipt_id: str
    task_id: str
    status: ReceiptStatus
    reason: str | None
    points: int | None
    created_at: str
    submitted_at: str | None
    decided_at: str | None


class ReviewItem(ReceiptOut):
    member_id: str
    openid: str
    image_urls: list[str]


class ReviewQueue(Model):
    items: list[ReviewItem]
    cursor: str | None


class ReviewDecision(Model):
    model_config = ConfigDict(extra="forbid", strict=True)

    approve: bool
    reason: str | None = Field(default=None, max_length=256)
