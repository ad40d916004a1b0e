"""Receipt review through moto's real Step Functions execution, over HTTP against the local server."""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests

from tests.support import login_token, post_upload


def _member(local_api: dict[str, Any]) -> dict[str, str]:
    openid = f"receipt-{uuid.uuid4().hex[:8]}"
    response = requests.post(
        local_api["base_url"] + "/v1/auth/member",
        json={"app_id": local_api["app_id"], "login_token": login_token(local_api["login_secret"], openid), "device_id": "e2e"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return {"authorization": "Bearer " + response.json()["token"]}


def _receipt_task(local_api: dict[str, Any], operator: dict[str, str], timeout_seconds: int) -> str:
    response = requests.post(
        f"{local_api['base_url']}/v1/admin/apps/{local_api['app_id']}/tasks",
        json={
            "task": {
                "template": "upload_receipt",
                "title": f"Receipt {timeout_seconds}s",
                "points": 40,
                "review_timeout_seconds": timeout_seconds,
            }
        },
        headers=operator,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["task_id"])


def _upload_and_submit(local_api: dict[str, Any], member: dict[str, str], task_id: str) -> str:
    base = local_api["base_url"]
    created = None
    for _ in range(30):  # the member API caches task config for a few seconds
        created = requests.post(f"{base}/v1/tasks/{task_id}/receipts", json={"images": 1}, headers=member, timeout=10)
        if created.status_code != 404:
            break
        time.sleep(0.3)
    assert created is not None and created.status_code == 201, created.text if created else None
    slot = created.json()["uploads"][0]
    # the presigned POST: its form fields, then the file (S3 bounds the size through the policy)
    assert post_upload(slot, b"\xff\xd8 receipt").status_code in (200, 201, 204)
    submitted = requests.post(base + created.json()["submit_path"], headers=member, timeout=10)
    assert submitted.status_code == 200, submitted.text
    return str(created.json()["receipt_id"])


def _wait_for(fetch: Any, done: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def _status(local_api: dict[str, Any], member: dict[str, str], task_id: str, receipt_id: str) -> dict[str, Any]:
    response = requests.get(f"{local_api['base_url']}/v1/tasks/{task_id}/receipts/{receipt_id}", headers=member, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _queued(local_api: dict[str, Any], operator: dict[str, str], receipt_id: str) -> bool:
    queue = requests.get(f"{local_api['base_url']}/v1/admin/apps/{local_api['app_id']}/receipts", headers=operator, timeout=10).json()
    return any(item["receipt_id"] == receipt_id for item in queue["items"])


def _balance(local_api: dict[str, Any], member: dict[str, str]) -> int:
    return int(requests.get(local_api["base_url"] + "/v1/me", headers=member, timeout=10).json()["balance"])


def test_approved_receipt_credits_points_once(local_api: dict[str, Any], operator_token: str) -> None:
    # Given a member who uploaded and submitted a receipt, now waiting in the review queue
    operator = {"authorization": f"Bearer {operator_token}"}
    member = _member(local_api)
    task_id = _receipt_task(local_api, operator, 3600)
    receipt_id = _upload_and_submit(local_api, member, task_id)
    assert _wait_for(lambda: _queued(local_api, operator, receipt_id), bool)

    # When a reviewer approves it (and a second, late decision arrives)
    url = f"{local_api['base_url']}/v1/admin/apps/{local_api['app_id']}/receipts/{receipt_id}/decision"
    first = requests.post(url, json={"approve": True}, headers=operator, timeout=10)
    second = requests.post(url, json={"approve": True}, headers=operator, timeout=10)

    # Then the workflow credits the task's points exactly once and the member sees "approved"
    assert first.status_code == 200, first.text
    assert second.status_code == 409
    final = _wait_for(lambda: _status(local_api, member, task_id, receipt_id), lambda s: s["status"] == "approved")
    assert final["status"] == "approved" and final["points"] == 40
    assert _balance(local_api, member) == 40
    assert not _queued(local_api, operator, receipt_id)


def test_rejected_receipt_shows_the_reason_and_credits_nothing(local_api: dict[str, Any], operator_token: str) -> None:
    # Given a submitted receipt in the queue
    operator = {"authorization": f"Bearer {operator_token}"}
    member = _member(local_api)
    task_id = _receipt_task(local_api, operator, 3600)
    receipt_id = _upload_and_submit(local_api, member, task_id)
    assert _wait_for(lambda: _queued(local_api, operator, receipt_id), bool)
    url = f"{local_api['base_url']}/v1/admin/apps/{local_api['app_id']}/receipts/{receipt_id}/decision"

    # When a reviewer rejects without a reason, then with one
    no_reason = requests.post(url, json={"approve": False}, headers=operator, timeout=10)
    rejected = requests.post(url, json={"approve": False, "reason": "blurry photo"}, headers=operator, timeout=10)

    # Then the first is refused, the second stands, and the member sees the reason and no points
    assert no_reason.status_code == 400
    assert rejected.status_code == 200, rejected.text
    final = _wait_for(lambda: _status(local_api, member, task_id, receipt_id), lambda s: s["status"] == "rejected")
    assert final["status"] == "rejected" and final["reason"] == "blurry photo"
    assert _balance(local_api, member) == 0


def test_unreviewed_receipt_times_out_into_rejection(local_api: dict[str, Any], operator_token: str) -> None:
    # Given a receipt task whose reviews time out after 2 seconds
    operator = {"authorization": f"Bearer {operator_token}"}
    member = _member(local_api)
    task_id = _receipt_task(local_api, operator, 2)

    # When a receipt is submitted and nobody reviews it
    receipt_id = _upload_and_submit(local_api, member, task_id)

    # Then the execution times out into a rejection the member can read, with no points
    final = _wait_for(lambda: _status(local_api, member, task_id, receipt_id), lambda s: s["status"] == "rejected", seconds=30)
    assert final["status"] == "rejected"
    assert final["reason"] == "not reviewed in time"
    assert _balance(local_api, member) == 0
    late = requests.post(
        f"{local_api['base_url']}/v1/admin/apps/{local_api['app_id']}/receipts/{receipt_id}/decision",
        json={"approve": True},
        headers=operator,
        timeout=10,
    )
    assert late.status_code == 409


def test_submitting_before_uploading_is_refused(local_api: dict[str, Any], operator_token: str) -> None:
    # Given a receipt whose image was never uploaded
    operator = {"authorization": f"Bearer {operator_token}"}
    member = _member(local_api)
    task_id = _receipt_task(local_api, operator, 3600)
    created = _wait_for(
        lambda: requests.post(f"{local_api['base_url']}/v1/tasks/{task_id}/receipts", json={"images": 1}, headers=member, timeout=10),
        lambda r: r.status_code != 404,
    )
    # When the member submits it
    submitted = requests.post(local_api["base_url"] + created.json()["submit_path"], headers=member, timeout=10)
    # Then it is refused and stays out of the review queue
    assert submitted.status_code == 400
    assert submitted.json()["error"]["code"] == "VALIDATION_FAILED"
    assert not _queued(local_api, operator, created.json()["receipt_id"])
