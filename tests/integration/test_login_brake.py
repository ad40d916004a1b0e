"""The brake on password guessing (issue 9, item 5): per account, 5 failed logins per 15-minute window, then 429."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core.clock import FixedClock, use_clock
from chalicelib.core.errors import TooManyAttempts, Unauthorized
from chalicelib.tenancy import accounts
from tests.conftest import OWNER, TENANT, Tenant, bearer, call, table_items
from tests.support_workflows import _serialized_stubber

WINDOW_START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # 10:00 UTC starts a 15-minute window


def operator_login(api: Any, tenant_id: str, username: str, password: str) -> Any:
    return call(api, "POST", "/v1/auth/operator", {"tenant_id": tenant_id, "username": username, "password": password})


def assert_braked(response: Any, retry_after: int) -> None:
    assert response.status_code == 429, response.json_body
    error = response.json_body["error"]
    assert error["code"] == "TOO_MANY_ATTEMPTS" and error["message"]
    assert error["request_id"] == response.headers["X-Request-Id"]
    assert response.headers["Retry-After"] == str(retry_after)


def test_five_failed_logins_brake_the_account_until_the_window_passes(api: Any, tenant: Tenant) -> None:
    # Given acme's owner, and an operator of the same tenant
    created = call(
        api,
        "POST",
        "/v1/admin/operators",
        {"username": "op1", "password": "op1-password-1", "role": "operator"},
        bearer(tenant.owner_token),
    )
    assert created.status_code == 201, created.json_body
    clock = FixedClock(WINDOW_START + timedelta(minutes=1))
    with use_clock(clock):
        # When someone fails the owner's password five times
        failures = [operator_login(api, TENANT, OWNER[0], f"guess-{n}").status_code for n in range(5)]
        # Then each is a 401, and the sixth attempt is a 429 even with the right password (the check does not run)
        assert failures == [401] * 5
        assert_braked(operator_login(api, TENANT, OWNER[0], OWNER[1]), retry_after=14 * 60)
        # And another account of the tenant is not braked
        assert operator_login(api, TENANT, "op1", "op1-password-1").status_code == 200
        # When the window has passed
        clock.at = WINDOW_START + timedelta(minutes=15)
        # Then the owner logs in again
        assert operator_login(api, TENANT, OWNER[0], OWNER[1]).status_code == 200


def test_unknown_accounts_are_braked_the_same_way(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given an unknown username of acme, an unknown tenant, and acme's real owner
    attempts = {"known": (TENANT, OWNER[0]), "unknown-user": (TENANT, "nobody"), "unknown-tenant": ("nosuchtenant", OWNER[0])}
    with use_clock(FixedClock(WINDOW_START)):
        # When each is tried six times with a wrong password
        seen = {name: [operator_login(api, t, u, "wrong-password").status_code for _ in range(6)] for name, (t, u) in attempts.items()}
    # Then all answer alike: five 401s, then 429 (nothing tells which accounts exist)
    assert set(map(tuple, seen.values())) == {(401, 401, 401, 401, 401, 429)}
    # And each is counted in one counter item that removes itself (TTL) after its window
    window = f"#w{int(WINDOW_START.timestamp()) // 900}"
    counters = [
        item for item in table_items(aws) if item["SK"]["S"].startswith("LIMIT#login#operator#") and item["SK"]["S"].endswith(window)
    ]
    assert len(counters) == 3
    ends = int((WINDOW_START + timedelta(minutes=15)).timestamp())
    assert all(int(item["n"]["N"]) == 5 and int(item["ttl"]["N"]) > ends for item in counters)


def test_a_verifier_is_braked_too(api: Any, tenant: Tenant) -> None:
    # Given a store with a verifier
    store = call(api, "POST", "/v1/admin/stores", {"name": "Store 1", "address": "Main St 1"}, bearer(tenant.owner_token))
    assert store.status_code == 201, store.json_body
    store_id = store.json_body["store_id"]
    body = {"username": "clerk", "password": "clerk-password-1"}
    assert call(api, "POST", f"/v1/admin/stores/{store_id}/verifiers", body, bearer(tenant.owner_token)).status_code == 201
    with use_clock(FixedClock(WINDOW_START)):
        # When its password is failed five times
        login = {"store_id": store_id, "username": "clerk"}
        failures = [call(api, "POST", "/v1/auth/verifier", {**login, "password": "wrong"}).status_code for _ in range(5)]
        # Then the right password is refused with 429 until the window passes
        assert failures == [401] * 5
        assert_braked(call(api, "POST", "/v1/auth/verifier", {**login, "password": "clerk-password-1"}), retry_after=15 * 60)


def test_a_success_takes_back_only_its_own_attempt(api: Any, tenant: Tenant) -> None:
    with use_clock(FixedClock(WINDOW_START)):
        # Given four failed logins of the owner
        assert [operator_login(api, TENANT, OWNER[0], "wrong").status_code for _ in range(4)] == [401] * 4
        # When the owner logs in
        assert operator_login(api, TENANT, OWNER[0], OWNER[1]).status_code == 200
        # Then the failures still count: one more is allowed, then the account is braked
        assert operator_login(api, TENANT, OWNER[0], "wrong").status_code == 401
        assert operator_login(api, TENANT, OWNER[0], OWNER[1]).status_code == 429


def test_concurrent_guesses_cannot_pass_the_brake_together(api: Any, tenant: Tenant) -> None:
    # Given twenty guesses of the owner's password sent at once (moto serialized, as DynamoDB applies writes one by one)
    def guess(n: int) -> str:
        try:
            accounts.login_operator(TENANT, OWNER[0], f"guess-{n}", "k" * 32, clock=FixedClock(WINDOW_START))
        except Unauthorized:
            return "401"
        except TooManyAttempts:
            return "429"
        return "200"

    # When they run concurrently
    with _serialized_stubber(), ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = sorted(pool.map(guess, range(20)))
    # Then only five passwords were checked; the rest were braked
    assert outcomes.count("401") == 5
    assert outcomes.count("429") == 15
