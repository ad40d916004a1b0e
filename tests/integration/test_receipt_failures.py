"""Receipts never stuck, never rejected with their points credited (issue 9, items 6 and 12).

The review workflow really executes (moto Step Functions, see tests/support_workflows.py); faults are
injected at the botocore client (``BaseClient._make_api_call``), beneath the code under test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from chalicelib.tasks import receipts
from tests.conftest import Tenant, bearer, call
from tests.support import login_token, post_upload
from tests.support_workflows import workflow_cloud_fixture, workflows_aws

workflow_cloud = workflow_cloud_fixture({"receipt_review"})
aws = workflows_aws  # the conftest's api / tenant fixtures run on moto with the receipt review executing

ORIGINAL = BaseClient._make_api_call
Fault = Callable[[Any, str, dict[str, Any]], Any]


@contextmanager
def botocore_fault(fault: Fault) -> Iterator[None]:
    """Every AWS call of this process goes through ``fault(client, operation, params)`` (which may call ORIGINAL)."""

    def call_api(self: Any, operation: str, params: dict[str, Any]) -> Any:
        return fault(self, operation, params)

    with patch.object(BaseClient, "_make_api_call", call_api):
        yield


def until(fetch: Callable[[], Any], done: Callable[[Any], bool], seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def member_token(api: Any, tenant: Tenant, openid: str) -> str:
    body = {"app_id": tenant.app_id, "login_token": login_token(tenant.login_secret, openid), "device_id": "d"}
    response = call(api, "POST", "/v1/auth/member", body)
    assert response.status_code == 200, response.json_body
    return str(response.json_body["token"])


def receipt_task(api: Any, tenant: Tenant) -> str:
    task = {"template": "upload_receipt", "title": "Receipt", "points": 30, "review_timeout_seconds": 600}
    created = call(api, "POST", f"/v1/admin/apps/{tenant.app_id}/tasks", {"task": task}, bearer(tenant.owner_token))
    assert created.status_code == 201, created.json_body
    return str(created.json_body["task_id"])


def uploaded_receipt(api: Any, tenant: Tenant, token: str, task_id: str) -> tuple[str, str]:
    """A receipt with its image uploaded: (receipt id, submit path)."""
    created = call(api, "POST", f"/v1/tasks/{task_id}/receipts", {"images": 1}, bearer(token))
    assert created.status_code == 201, created.json_body
    # the way a client uploads: the presigned POST form, then the file
    assert post_upload(created.json_body["uploads"][0], b"\xff\xd8 receipt").status_code in (200, 201, 204)
    return str(created.json_body["receipt_id"]), str(created.json_body["submit_path"])


def status(api: Any, token: str, task_id: str, receipt_id: str) -> str:
    response = call(api, "GET", f"/v1/tasks/{task_id}/receipts/{receipt_id}", None, bearer(token))
    assert response.status_code == 200, response.json_body
    return str(response.json_body["status"])


def queued(api: Any, tenant: Tenant, receipt_id: str) -> bool:
    queue = call(api, "GET", f"/v1/admin/apps/{tenant.app_id}/receipts", None, bearer(tenant.owner_token))
    assert queue.status_code == 200, queue.json_body
    return any(item["receipt_id"] == receipt_id for item in queue.json_body["items"])


def execution_exists(receipt_id: str) -> bool:
    from chalicelib.core.config import get_settings

    machine = get_settings().sfn_receipt_review
    assert machine
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:{receipt_id}"
    try:
        boto3.client("stepfunctions").describe_execution(executionArn=arn)
    except ClientError:
        return False
    return True


def balance(api: Any, token: str) -> int:
    return int(call(api, "GET", "/v1/me", None, bearer(token)).json_body["balance"])


def refused(message: str) -> Exception:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": message}}, "StartExecution")


# --- item 6: a failed start leaves nothing stuck ---------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(lambda: refused("Rate exceeded"), id="step-functions-refuses"),
        pytest.param(lambda: EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com"), id="no-connection"),
    ],
)
def test_a_submit_whose_start_fails_answers_502_and_can_be_submitted_again(api: Any, tenant: Tenant, failure: Any) -> None:
    # Given an uploaded receipt, and Step Functions refusing or unreachable at the botocore client
    task_id = receipt_task(api, tenant)
    token = member_token(api, tenant, "ann")
    receipt_id, submit_path = uploaded_receipt(api, tenant, token, task_id)

    def fault(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "StartExecution":
            raise failure()
        return ORIGINAL(client, operation, params)

    # When the member submits it
    with botocore_fault(fault):
        response = call(api, "POST", submit_path, None, bearer(token))
    # Then a clean 502 in the envelope, no execution, and the receipt is back to be submitted again
    assert response.status_code == 502, response.json_body
    assert response.json_body["error"]["code"] == "UPSTREAM_FAILED"
    assert status(api, token, task_id, receipt_id) == "uploading"
    assert not execution_exists(receipt_id)
    # When the member submits again with Step Functions back
    again = call(api, "POST", submit_path, None, bearer(token))
    # Then it goes to review
    assert again.status_code == 200, again.json_body
    assert until(lambda: queued(api, tenant, receipt_id), bool)
    assert status(api, token, task_id, receipt_id) == "pending"


def test_a_start_that_timed_out_after_step_functions_accepted_it_still_reaches_review(api: Any, tenant: Tenant) -> None:
    # Given an uploaded receipt, and Step Functions that starts the execution but whose answer never arrives
    task_id = receipt_task(api, tenant)
    token = member_token(api, tenant, "bea")
    receipt_id, submit_path = uploaded_receipt(api, tenant, token, task_id)

    def fault(client: Any, operation: str, params: dict[str, Any]) -> Any:
        result = ORIGINAL(client, operation, params)
        if operation == "StartExecution":
            raise ReadTimeoutError(endpoint_url="https://states.us-east-1.amazonaws.com")
        return result

    # When the member submits it
    with botocore_fault(fault):
        response = call(api, "POST", submit_path, None, bearer(token))
    # Then the member gets a 502, yet the running execution takes the receipt into review (not stuck)
    assert response.status_code == 502, response.json_body
    assert until(lambda: queued(api, tenant, receipt_id), bool), status(api, token, task_id, receipt_id)
    assert status(api, token, task_id, receipt_id) == "pending"
    # And a repeated submit changes nothing; the operator's approval credits the points
    assert call(api, "POST", submit_path, None, bearer(token)).json_body["status"] == "pending"
    decided = call(
        api, "POST", f"/v1/admin/apps/{tenant.app_id}/receipts/{receipt_id}/decision", {"approve": True}, bearer(tenant.owner_token)
    )
    assert decided.status_code == 200, decided.json_body
    assert until(lambda: status(api, token, task_id, receipt_id), lambda s: s == "approved") == "approved"
    assert balance(api, token) == 30


def test_a_receipt_left_submitted_is_started_again_by_the_next_submit(api: Any, tenant: Tenant) -> None:
    # Given an uploaded receipt; Step Functions unreachable, and the table too when the receipt is put back
    task_id = receipt_task(api, tenant)
    token = member_token(api, tenant, "cid")
    receipt_id, submit_path = uploaded_receipt(api, tenant, token, task_id)
    state = {"start_failed": False}

    def fault(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "StartExecution":
            state["start_failed"] = True
            raise EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com")
        if operation == "UpdateItem" and state["start_failed"]:
            raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")
        return ORIGINAL(client, operation, params)

    # When the member submits it
    with botocore_fault(fault):
        response = call(api, "POST", submit_path, None, bearer(token))
    # Then a 502 (not a 500), the receipt is left "submitted" with no execution
    assert response.status_code == 502, response.json_body
    assert status(api, token, task_id, receipt_id) == "submitted"
    assert not execution_exists(receipt_id)
    # When the member submits again
    again = call(api, "POST", submit_path, None, bearer(token))
    # Then its review execution starts and takes it into review
    assert again.status_code == 200, again.json_body
    assert until(lambda: queued(api, tenant, receipt_id), bool)
    assert status(api, token, task_id, receipt_id) == "pending"


# --- item 12: the timeout never rejects a receipt whose points were credited ------------------------


def deciding_receipt(api: Any, tenant: Tenant, openid: str, receipt_id: str) -> tuple[str, Any]:
    """A receipt an operator approved (deciding), of a logged-in member: (member token, app)."""
    from chalicelib.tasks.receipt_models import Receipt
    from chalicelib.tasks.store.receipts import ReceiptsRepo
    from chalicelib.tenancy.store.apps import AppsRepo

    task_id = receipt_task(api, tenant)
    token = member_token(api, tenant, openid)
    member_id = call(api, "GET", "/v1/me", None, bearer(token)).json_body["member_id"]
    app = AppsRepo().get(tenant.app_id)
    assert app is not None
    receipt = Receipt(
        receipt_id=receipt_id,
        app_id=app.app_id,
        member_id=member_id,
        openid=openid,
        task_id=task_id,
        status="deciding",
        image_keys=["k"],
        created_at="2026-01-01T00:00:00Z",
        submitted_at="2026-01-01T00:00:00Z",
    )
    ReceiptsRepo().create(receipt)
    return token, app


def stored(app_id: str, receipt_id: str) -> Any:
    from chalicelib.tasks.store.receipts import ReceiptsRepo

    receipt = ReceiptsRepo().get(app_id, receipt_id)
    assert receipt is not None
    return receipt


def test_a_receipt_whose_points_were_credited_ends_approved_when_the_failure_path_times_it_out(api: Any, tenant: Tenant) -> None:
    # Given an approval whose apply step credits the points, then cannot record the approval (the table is unreachable)
    token, app = deciding_receipt(api, tenant, "dan", "rc_credited")
    state = {"credited": False}

    def fault(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "UpdateItem" and state["credited"]:
            raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")
        result = ORIGINAL(client, operation, params)
        if operation == "TransactWriteItems":
            state["credited"] = True
        return result

    event = {"app_id": app.app_id, "receipt_id": "rc_credited", "decision": {"approve": True, "reviewer": "owner"}}
    with botocore_fault(fault), pytest.raises(Exception):
        receipts.apply_decision(event)
    assert balance(api, token) == 30
    # When the workflow's failure path times the review out
    result = receipts.time_out({"app_id": app.app_id, "receipt_id": "rc_credited", "reason": "the decision could not be applied"})
    # Then the receipt ends approved with the points it was credited, not rejected
    assert result == {"status": "approved", "points": 30}
    receipt = stored(app.app_id, "rc_credited")
    assert (receipt.status, receipt.points) == ("approved", 30)
    assert balance(api, token) == 30


def test_a_credit_racing_the_timeout_never_leaves_a_rejected_receipt_with_points(api: Any, tenant: Tenant) -> None:
    # Given an approval being applied, and the review timing out just before its credit is written
    token, app = deciding_receipt(api, tenant, "eve", "rc_raced")
    state = {"timed_out": False}

    def fault(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "TransactWriteItems" and not state["timed_out"]:
            state["timed_out"] = True
            receipts.time_out({"app_id": app.app_id, "receipt_id": "rc_raced"})
        return ORIGINAL(client, operation, params)

    # When the apply step writes its credit
    with botocore_fault(fault):
        result = receipts.apply_decision({"app_id": app.app_id, "receipt_id": "rc_raced", "decision": {"approve": True}})
    # Then the receipt stays rejected by the timeout and no points were credited
    assert state["timed_out"]
    assert result["status"] == "rejected"
    assert stored(app.app_id, "rc_raced").status == "rejected"
    assert balance(api, token) == 0
