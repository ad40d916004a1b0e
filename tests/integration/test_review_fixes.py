"""Edges found in review: stage-prefixed paths in the cloud, odd query values, long ids, crafted cursors,
callback URLs, receipts approved past their cycle limit."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from chalicelib.core.clock import FixedClock
from chalicelib.tasks import receipts
from tests.conftest import Tenant, bearer, call
from tests.support import login_token, server_headers


def member_token(api: Any, tenant: Tenant, openid: str) -> str:
    body = {"app_id": tenant.app_id, "login_token": login_token(tenant.login_secret, openid), "device_id": "d"}
    response = call(api, "POST", "/v1/auth/member", body)
    assert response.status_code == 200
    return str(response.json_body["token"])


def test_a_signed_call_verifies_against_the_path_without_the_api_gateway_stage(api: Any, tenant: Tenant) -> None:
    # Given a member and a tenant backend that signs the path as API.md writes it
    member_token(api, tenant, "alice")
    from app import app

    path = "/v1/server/members/alice"
    headers = {k.lower(): v for k, v in server_headers(tenant.app_id, tenant.server_key, "GET", path).items()}
    # When API Gateway delivers it with the stage in requestContext.path (as the deployed API does)
    event = {
        "resource": "/v1/server/members/{openid}",
        "path": path,
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"openid": "alice"},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/v1/server/members/{openid}",
            "httpMethod": "GET",
            "path": "/api" + path,
            "stage": "api",
            "requestId": "req-stage-1",
        },
        "body": None,
        "isBase64Encoded": False,
    }
    from chalice.local import LambdaContext

    response = app(event, LambdaContext("api_handler", 512))
    # Then the signature matches and the member is returned
    assert response["statusCode"] == 200, response["body"]
    assert json.loads(response["body"])["openid"] == "alice"


def test_a_non_ascii_digit_limit_is_a_400(api: Any, tenant: Tenant) -> None:
    token = member_token(api, tenant, "bob")
    response = call(api, "GET", "/v1/me/ledger?limit=%C2%B2", None, bearer(token))
    assert response.status_code == 400
    assert response.json_body["error"]["code"] == "VALIDATION_FAILED"


def test_an_overlong_id_in_the_path_is_not_found(api: Any, tenant: Tenant) -> None:
    response = call(api, "GET", f"/v1/admin/apps/{'a' * 3000}", None, bearer(tenant.owner_token))
    assert response.status_code == 404
    assert response.json_body["error"]["code"] == "NOT_FOUND"


def test_a_crafted_cursor_without_a_sort_key_is_refused(api: Any, tenant: Tenant) -> None:
    # Given a member who builds a cursor for their own partition but without the sort key
    token = member_token(api, tenant, "carol")
    me = call(api, "GET", "/v1/me", None, bearer(token)).json_body
    crafted = base64.urlsafe_b64encode(json.dumps({"PK": f"APP#{tenant.app_id}#M#{me['member_id']}"}).encode()).decode().rstrip("=")
    # When they page the ledger with it, then it is a 400, not a DynamoDB error
    response = call(api, "GET", f"/v1/me/ledger?cursor={crafted}", None, bearer(token))
    assert response.status_code == 400
    assert response.json_body["error"]["details"][0]["field"] == "cursor"


def test_callback_urls_must_really_be_https(api: Any, tenant: Tenant) -> None:
    for url in ("http://localhost.evil.example/cb", "ftp://example.com/cb", "https:///nohost"):
        body = {"name": "Cb", "points_rate": 100, "login_mode": "callback", "login_callback_url": url}
        response = call(api, "POST", "/v1/admin/apps", body, bearer(tenant.owner_token))
        assert response.status_code == 400, url


def test_a_receipt_approved_after_the_cycle_is_full_is_rejected_not_stuck(api: Any, tenant: Tenant) -> None:
    # Given a receipt task allowing one approval a day, and two receipts of one member under review
    task = {"template": "upload_receipt", "title": "Receipt", "points": 30}
    task_id = call(api, "POST", f"/v1/admin/apps/{tenant.app_id}/tasks", {"task": task}, bearer(tenant.owner_token)).json_body["task_id"]
    token = member_token(api, tenant, "dave")
    me = call(api, "GET", "/v1/me", None, bearer(token)).json_body
    from chalicelib.tasks.receipt_models import Receipt
    from chalicelib.tasks.store.receipts import ReceiptsRepo
    from chalicelib.tenancy.store.apps import AppsRepo

    app = AppsRepo().get(tenant.app_id)
    assert app is not None
    repo = ReceiptsRepo()
    for receipt_id in ("rc_one", "rc_two"):
        repo.create(
            Receipt(
                receipt_id=receipt_id,
                app_id=app.app_id,
                member_id=me["member_id"],
                openid="dave",
                task_id=task_id,
                status="deciding",
                image_keys=["k"],
                created_at="2026-01-01T00:00:00Z",
            )
        )
    clock = FixedClock(datetime(2026, 6, 1, 4, tzinfo=UTC))
    # When both approvals are applied by the workflow
    first = receipts.apply_decision({"app_id": app.app_id, "receipt_id": "rc_one", "decision": {"approve": True}}, clock=clock)
    second = receipts.apply_decision({"app_id": app.app_id, "receipt_id": "rc_two", "decision": {"approve": True}}, clock=clock)
    # Then the first earns its points and the second ends rejected with a reason, not stuck in "deciding"
    assert first == {"status": "approved", "points": 30}
    assert second["status"] == "rejected"
    stuck = repo.get(app.app_id, "rc_two")
    assert stuck is not None and stuck.status == "rejected" and stuck.reason


def test_a_colliding_invite_code_gives_the_new_member_a_longer_code(api: Any, tenant: Tenant) -> None:
    # Given the short invite code erin would get is already taken by another member
    from chalicelib.core.ids import invite_code_for, member_id_for
    from chalicelib.tenancy.store.members import MembersRepo

    erin = member_id_for(tenant.app_id, "erin")
    assert MembersRepo().put_invite_code(tenant.app_id, invite_code_for(erin), "m_someone_else")
    # When erin logs in for the first time
    token = member_token(api, tenant, "erin")
    code = call(api, "GET", "/v1/me", None, bearer(token)).json_body["invite_code"]
    # Then erin's code is a longer one that leads to erin, and the taken one still leads to its owner
    assert code == invite_code_for(erin, length=16)
    assert MembersRepo().member_for_invite_code(tenant.app_id, code) == erin
    assert MembersRepo().member_for_invite_code(tenant.app_id, invite_code_for(erin)) == "m_someone_else"
