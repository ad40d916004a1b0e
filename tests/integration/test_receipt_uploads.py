"""Receipt uploads are bounded (issue 9, item 14): a size-limited presigned POST, a daily cap per member,
a TTL on receipts left "uploading".

moto accepts any POST whose signature is valid, but does not check the policy's conditions
(``content-length-range``, ``Content-Type``), so the size limit is proven on the policy document we sign,
and the POST itself is proven to work against moto with a small file.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from chalicelib.core.clock import FixedClock
from chalicelib.tasks import receipts
from chalicelib.tasks.receipt_models import ReceiptRequest
from tests.conftest import Tenant, bearer, call, table_items
from tests.integration.test_receipt_failures import member_token, queued, receipt_task, status, until
from tests.support import post_upload, upload_policy
from tests.support_workflows import UPLOADS, workflow_cloud_fixture, workflows_aws

workflow_cloud = workflow_cloud_fixture({"receipt_review"})
aws = workflows_aws


def create(api: Any, token: str, task_id: str, body: dict[str, Any] | None = None) -> Any:
    return call(api, "POST", f"/v1/tasks/{task_id}/receipts", body or {"images": 1}, bearer(token))


def receipt_item(receipt_id: str) -> dict[str, Any]:
    client = boto3.client("dynamodb")
    items = [item for item in table_items(client) if item.get("receipt_id", {}).get("S") == receipt_id]
    assert len(items) == 1
    return items[0]


def test_a_receipt_image_is_uploaded_with_a_presigned_post_bounded_in_size_and_type(
    api: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.core.config import get_settings

    # Given a receipt task, and receipt images limited to 1 KiB
    monkeypatch.setenv("JIFEN_RECEIPT_UPLOAD_MAX_BYTES", "1024")
    get_settings.cache_clear()
    token = member_token(api, tenant, "o_post")
    task_id = receipt_task(api, tenant)
    # When the member starts a PNG receipt
    created = create(api, token, task_id, {"images": 1, "content_type": "image/png"})
    # Then the slot is a POST: the url, the form fields to send, the limit
    assert created.status_code == 201, created.json_body
    slot = created.json_body["uploads"][0]
    assert slot["method"] == "POST"
    assert slot["max_bytes"] == 1024
    assert slot["fields"]["key"] == slot["key"]
    assert slot["fields"]["Content-Type"] == "image/png"
    assert slot["headers"] == {}
    # And the signed policy bounds the size and fixes the bucket, the key and the content type
    conditions = upload_policy(slot)["conditions"]
    assert ["content-length-range", 1, 1024] in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert {"bucket": UPLOADS} in conditions
    assert {"key": slot["key"]} in conditions
    # When the client POSTs a small image with the form
    response = post_upload(slot, b"\x89PNG small receipt", "receipt.png")
    # Then S3 (moto) takes it, and the receipt can be submitted into review
    assert response.status_code in (200, 201, 204), response.text
    assert boto3.client("s3").head_object(Bucket=UPLOADS, Key=slot["key"])["ContentLength"] == len(b"\x89PNG small receipt")
    submitted = call(api, "POST", created.json_body["submit_path"], None, bearer(token))
    assert submitted.status_code == 200, submitted.json_body
    receipt_id = created.json_body["receipt_id"]
    assert until(lambda: queued(api, tenant, receipt_id), bool)


def test_the_default_size_limit_is_ten_megabytes(api: Any, tenant: Tenant) -> None:
    # Given the default settings
    assert "JIFEN_RECEIPT_UPLOAD_MAX_BYTES" not in os.environ
    token = member_token(api, tenant, "o_default")
    task_id = receipt_task(api, tenant)
    # When a receipt is started
    slot = create(api, token, task_id).json_body["uploads"][0]
    # Then its policy refuses anything over 10 MiB
    assert ["content-length-range", 1, 10 * 1024 * 1024] in upload_policy(slot)["conditions"]


def test_a_member_over_the_daily_cap_is_refused_and_nothing_is_written(api: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a cap of two receipts a day, and a member who started two today
    monkeypatch.setattr(receipts, "RECEIPTS_PER_DAY", 2)
    token = member_token(api, tenant, "o_cap")
    other = member_token(api, tenant, "o_other")
    task_id = receipt_task(api, tenant)
    assert [create(api, token, task_id).status_code for _ in range(2)] == [201, 201]
    before = table_items(boto3.client("dynamodb"))
    # When the member starts a third
    third = create(api, token, task_id)
    # Then it is refused with LIMIT_REACHED, and nothing was written (no receipt, the counter unchanged)
    assert third.status_code == 409, third.json_body
    assert third.json_body["error"]["code"] == "LIMIT_REACHED"
    assert table_items(boto3.client("dynamodb")) == before
    assert sum(1 for item in before if item.get("kind", {}).get("S") == "receipt") == 2
    # And another member still may
    assert create(api, other, task_id).status_code == 201


def test_the_daily_cap_counts_in_the_apps_local_day(api: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.tenancy.access import app_by_id

    # Given a cap of one receipt a day, and a member who started one
    monkeypatch.setattr(receipts, "RECEIPTS_PER_DAY", 1)
    task_id = receipt_task(api, tenant)
    app = app_by_id(tenant.app_id)
    assert app is not None
    from zoneinfo import ZoneInfo

    local_midnight = datetime.now(ZoneInfo(app.time_zone)).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    clock = FixedClock((local_midnight - timedelta(minutes=1)).astimezone(UTC))
    receipts.create(app, "m_day", "o_day", task_id, ReceiptRequest(images=1), clock=clock)
    # When it tries again the same local day, then just after the app's local midnight
    from chalicelib.core.errors import LimitReached

    with pytest.raises(LimitReached):
        receipts.create(app, "m_day", "o_day", task_id, ReceiptRequest(images=1), clock=clock)
    clock.at = (local_midnight + timedelta(minutes=1)).astimezone(UTC)
    # Then the new day allows one again
    receipt, uploads = receipts.create(app, "m_day", "o_day", task_id, ReceiptRequest(images=1), clock=clock)
    assert receipt.status == "uploading" and len(uploads) == 1


def test_an_uploading_receipt_has_a_ttl_that_goes_once_it_is_submitted(api: Any, tenant: Tenant) -> None:
    # Given a receipt just started
    token = member_token(api, tenant, "o_ttl")
    task_id = receipt_task(api, tenant)
    started = int(time.time())
    created = create(api, token, task_id)
    receipt_id = created.json_body["receipt_id"]
    # Then while it is uploading it carries a TTL, two days on
    ttl = int(receipt_item(receipt_id)["ttl"]["N"])
    assert started + receipts.ABANDONED_AFTER_SECONDS <= ttl <= int(time.time()) + receipts.ABANDONED_AFTER_SECONDS
    # When its image is uploaded and it is submitted
    assert post_upload(created.json_body["uploads"][0], b"\xff\xd8 receipt").status_code in (200, 201, 204)
    assert call(api, "POST", created.json_body["submit_path"], None, bearer(token)).status_code == 200
    # Then it is kept: no TTL any more (in review, and after)
    assert "ttl" not in receipt_item(receipt_id)
    assert until(lambda: status(api, token, task_id, receipt_id), lambda s: s == "pending") == "pending"
    assert "ttl" not in receipt_item(receipt_id)


def test_a_receipt_put_back_after_a_failed_submit_gets_its_ttl_again(api: Any, tenant: Tenant) -> None:
    from tests.integration.test_receipt_failures import ORIGINAL, botocore_fault, refused, uploaded_receipt

    # Given an uploaded receipt, and Step Functions refusing to start its review
    task_id = receipt_task(api, tenant)
    token = member_token(api, tenant, "o_back")
    receipt_id, submit_path = uploaded_receipt(api, tenant, token, task_id)

    def fault(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "StartExecution":
            raise refused("Rate exceeded")
        return ORIGINAL(client, operation, params)

    # When the member submits it and the start fails
    with botocore_fault(fault):
        assert call(api, "POST", submit_path, None, bearer(token)).status_code == 502
    # Then the receipt is back to "uploading" with a TTL again (abandoned now, it would still go)
    assert status(api, token, task_id, receipt_id) == "uploading"
    assert int(receipt_item(receipt_id)["ttl"]["N"]) >= int(time.time()) + receipts.ABANDONED_AFTER_SECONDS - 60
