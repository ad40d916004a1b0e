"""P1-P3, P6, P7 over signed server-to-server HTTP: exactly once, never negative, ledger == balance, transfers."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.core.table import schema
from chalicelib.core.table.cache import config_cache
from tests.conftest import bearer, call, table_items
from tests.support import dumps, login_token, server_headers

GRANTS = "/v1/server/points/grants"
DEDUCTIONS = "/v1/server/points/deductions"
TRANSFERS = "/v1/server/points/transfers"


@dataclass
class AppKeys:
    app_id: str
    login_secret: str
    server_key: str


@dataclass
class World:
    api: Any
    client: Any
    main: AppKeys  # acme, points rate 100, no caps
    capped: AppKeys  # acme, points rate 10, daily cap 1000
    foreign: AppKeys  # globex's app


def _create_app(api: Any, token: str, body: dict[str, Any]) -> AppKeys:
    response = call(api, "POST", "/v1/admin/apps", body, bearer(token))
    assert response.status_code == 201, response.json_body
    secrets = response.json_body["secrets"]
    return AppKeys(response.json_body["app"]["app_id"], secrets["login_secret"], secrets["server_key"])


def _owner_token(api: Any, tenant_id: str, password: str) -> str:
    from chalicelib.tenancy import accounts

    accounts.create_tenant(tenant_id, tenant_id.title(), "owner", password)
    response = call(api, "POST", "/v1/auth/operator", {"tenant_id": tenant_id, "username": "owner", "password": password})
    assert response.status_code == 200, response.json_body
    return str(response.json_body["token"])


@pytest.fixture
def world(moto_api: tuple[Any, Any]) -> World:
    """Given tenant acme with two apps (rates 100 and 10) and tenant globex with one app, on an empty table."""
    api, client = moto_api
    table = os.environ["JIFEN_TABLE"]
    if table in client.list_tables()["TableNames"]:
        client.delete_table(TableName=table)
    schema.create_table(client, table)
    config_cache().clear()
    acme = _owner_token(api, "acme", "owner-password-1")
    globex = _owner_token(api, "globex", "owner-password-2")
    return World(
        api=api,
        client=client,
        main=_create_app(api, acme, {"name": "Main", "points_rate": 100}),
        capped=_create_app(api, acme, {"name": "Capped", "points_rate": 10, "daily_earn_cap": 1000}),
        foreign=_create_app(api, globex, {"name": "Globex", "points_rate": 100}),
    )


def member(world: World, keys: AppKeys, openid: str | None = None) -> tuple[str, str]:
    """A member logged in to the app: (openid, member token)."""
    openid = openid or f"o-{uuid.uuid4().hex[:12]}"
    response = call(
        world.api,
        "POST",
        "/v1/auth/member",
        {"app_id": keys.app_id, "login_token": login_token(keys.login_secret, openid), "device_id": "d"},
    )
    assert response.status_code == 200, response.json_body
    return openid, str(response.json_body["token"])


def signed(world: World, keys: AppKeys, path: str, body: Any, *, method: str = "POST", sign_key: str | None = None) -> Any:
    raw = body if isinstance(body, bytes) else dumps(body)
    return call(world.api, method, path, raw=raw, headers=server_headers(keys.app_id, sign_key or keys.server_key, method, path, raw))


def grant(world: World, keys: AppKeys, openid: str, points: Any, reference: str, reason: str = "gift") -> Any:
    return signed(world, keys, GRANTS, {"openid": openid, "points": points, "reference": reference, "reason": reason})


def deduct(world: World, keys: AppKeys, openid: str, points: Any, reference: str, reason: str = "spend") -> Any:
    return signed(world, keys, DEDUCTIONS, {"openid": openid, "points": points, "reference": reference, "reason": reason})


def me(world: World, token: str) -> dict[str, Any]:
    response = call(world.api, "GET", "/v1/me", headers=bearer(token))
    assert response.status_code == 200, response.json_body
    return dict(response.json_body)


def whole_ledger(world: World, token: str, limit: int = 100) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        path = f"/v1/me/ledger?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = call(world.api, "GET", path, headers=bearer(token))
        assert response.status_code == 200, response.json_body
        entries += response.json_body["items"]
        cursor = response.json_body["cursor"]
        if not cursor:
            return entries
    raise AssertionError("ledger paging did not end")


def business_items(world: World) -> list[str]:
    """Every item but spent nonces (a correctly signed request always spends its nonce)."""
    return sorted(json.dumps(item, sort_keys=True) for item in table_items(world.client) if "#NONCE#" not in item["PK"]["S"])


def all_items(world: World) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in table_items(world.client))


def assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.json_body
    error = response.json_body["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["X-Request-Id"]
    return dict(error)


# --- grants and deductions: exactly once ------------------------------------------------------------


def test_a_grant_credits_once_and_a_repeated_reference_returns_the_first_entry(world: World) -> None:
    # Given a member with nothing
    openid, token = member(world, world.main)
    ref = f"grant-{uuid.uuid4().hex}"
    # When the tenant grants 120 points
    first = grant(world, world.main, openid, 120, ref, "welcome gift")
    # Then it is applied with a ledger entry
    assert first.status_code == 200, first.json_body
    body = first.json_body
    assert body["applied"] is True and body["balance"] == 120
    entry = body["entry"]
    assert (entry["delta"], entry["reason"], entry["reference"], entry["balance_after"], entry["kind"]) == (
        120,
        "welcome gift",
        ref,
        120,
        "grant",
    )
    # When the same grant is delivered twice more
    again = [grant(world, world.main, openid, 120, ref, "welcome gift") for _ in range(2)]
    # Then nothing is applied and the first entry comes back
    for response in again:
        assert response.status_code == 200, response.json_body
        assert response.json_body["applied"] is False
        assert response.json_body["entry"] == entry
        assert response.json_body["balance"] == 120
    # And the member has one entry and 120 points
    assert [e["id"] for e in whole_ledger(world, token)] == [entry["id"]]
    assert me(world, token)["balance"] == 120


def test_the_same_reference_with_other_points_is_an_idempotency_mismatch(world: World) -> None:
    openid, token = member(world, world.main)
    other, _ = member(world, world.main)
    ref = f"grant-{uuid.uuid4().hex}"
    assert grant(world, world.main, openid, 100, ref).json_body["applied"] is True
    before = business_items(world)
    # When the reference comes again with 101 points, for another member, or as a deduction
    for response in (
        grant(world, world.main, openid, 101, ref),
        grant(world, world.main, other, 100, ref),
        deduct(world, world.main, openid, 100, ref),
    ):
        # Then 409 IDEMPOTENCY_MISMATCH and nothing changes
        assert_envelope(response, 409, "IDEMPOTENCY_MISMATCH")
    assert business_items(world) == before
    assert me(world, token)["balance"] == 100


def test_a_reference_is_per_app(world: World) -> None:
    # Given the same reference used by two apps of the tenant
    ref = f"shared-{uuid.uuid4().hex}"
    a, _ = member(world, world.main)
    b, _ = member(world, world.capped)
    # Then each app applies it once for its own member
    assert grant(world, world.main, a, 10, ref).json_body["applied"] is True
    assert grant(world, world.capped, b, 10, ref).json_body["applied"] is True


def test_a_deduction_debits_once_and_never_below_zero(world: World) -> None:
    # Given a member with 60 points
    openid, token = member(world, world.main)
    assert grant(world, world.main, openid, 60, f"g-{uuid.uuid4().hex}").status_code == 200
    ref = f"d-{uuid.uuid4().hex}"
    # When 50 are deducted
    first = deduct(world, world.main, openid, 50, ref, "coffee")
    assert first.status_code == 200, first.json_body
    assert first.json_body["applied"] is True and first.json_body["balance"] == 10
    assert (first.json_body["entry"]["delta"], first.json_body["entry"]["kind"]) == (-50, "deduction")
    # And the same deduction is retried although only 10 are left
    retry = deduct(world, world.main, openid, 50, ref, "coffee")
    # Then the retry sees the first result, not INSUFFICIENT_POINTS
    assert retry.status_code == 200, retry.json_body
    assert retry.json_body["applied"] is False
    assert retry.json_body["entry"] == first.json_body["entry"]
    # When 11 more are asked for
    before = business_items(world)
    refused = deduct(world, world.main, openid, 11, f"d-{uuid.uuid4().hex}")
    # Then 409 INSUFFICIENT_POINTS and nothing is written (no ledger entry, no guard)
    assert_envelope(refused, 409, "INSUFFICIENT_POINTS")
    assert business_items(world) == before
    # And exactly the balance can still be spent
    assert deduct(world, world.main, openid, 10, f"d-{uuid.uuid4().hex}").json_body["balance"] == 0
    profile = me(world, token)
    assert (profile["balance"], profile["earned_total"], profile["spent_total"]) == (0, 60, 60)


BAD_BODIES = [
    ("negative", {"points": -5}, "points"),
    ("zero", {"points": 0}, "points"),
    ("huge", {"points": 10**12}, "points"),
    ("fraction", {"points": 1.5}, "points"),
    ("string", {"points": "10"}, "points"),
    ("boolean", {"points": True}, "points"),
    ("no reference", {"reference": None}, "reference"),
    ("empty reference", {"reference": ""}, "reference"),
    ("reference with spaces", {"reference": "a b"}, "reference"),
    ("no openid", {"openid": None}, "openid"),
    ("no reason", {"reason": None}, "reason"),
    ("unknown field", {"bonus": 1}, "bonus"),
]


@pytest.mark.parametrize("path", [GRANTS, DEDUCTIONS])
def test_bad_input_is_400_with_details_and_nothing_is_written(world: World, path: str) -> None:
    # Given a member with 100 points
    openid, token = member(world, world.main)
    assert grant(world, world.main, openid, 100, f"g-{uuid.uuid4().hex}").status_code == 200
    before = business_items(world)
    for case, change, field in BAD_BODIES:
        body: dict[str, Any] = {"openid": openid, "points": 10, "reference": f"r-{uuid.uuid4().hex}", "reason": "x"}
        body.update(change)
        body = {k: v for k, v in body.items() if v is not None}
        # When the tenant sends a malformed request
        response = signed(world, world.main, path, body)
        # Then 400 VALIDATION_FAILED names the field
        error = assert_envelope(response, 400, "VALIDATION_FAILED")
        assert field in [detail["field"] for detail in error["details"]], (case, error)
    # And nothing at all was written
    assert business_items(world) == before
    assert me(world, token)["balance"] == 100


def test_a_body_that_is_not_a_json_object_is_400(world: World) -> None:
    before = business_items(world)
    for raw in (b"", b"not json", b"[1, 2]", b'{"openid": "x"', b"null"):
        assert_envelope(signed(world, world.main, GRANTS, raw), 400, "VALIDATION_FAILED")
    assert business_items(world) == before


@pytest.mark.parametrize("path", [GRANTS, DEDUCTIONS])
def test_an_unknown_openid_is_404_and_nothing_is_written(world: World, path: str) -> None:
    before = business_items(world)
    response = signed(
        world, world.main, path, {"openid": "never-logged-in", "points": 5, "reference": f"r-{uuid.uuid4().hex}", "reason": "x"}
    )
    assert_envelope(response, 404, "NOT_FOUND")
    # No member profile was created on the side, no guard, no ledger entry
    assert business_items(world) == before


def test_a_member_of_another_app_is_unknown_here(world: World) -> None:
    # Given a member of the capped app
    openid, token = member(world, world.capped)
    # When the main app grants to that openid
    response = grant(world, world.main, openid, 5, f"r-{uuid.uuid4().hex}")
    # Then 404: member identity is (app, openid)
    assert_envelope(response, 404, "NOT_FOUND")
    assert me(world, token)["balance"] == 0


ATTACKS = ["other app's key", "other tenant's key", "forged signature", "body changed", "stale timestamp", "no signature", "no nonce"]


def test_a_badly_signed_request_is_401_and_nothing_is_written(world: World) -> None:
    # Given a member and a grant of 500 points
    openid, token = member(world, world.main)
    before = all_items(world)
    for attack in ATTACKS:
        body = dumps({"openid": openid, "points": 500, "reference": f"r-{uuid.uuid4().hex}", "reason": "x"})
        headers = server_headers(world.main.app_id, world.main.server_key, "POST", GRANTS, body)
        if attack == "other app's key":
            headers = server_headers(world.main.app_id, world.capped.server_key, "POST", GRANTS, body)
        elif attack == "other tenant's key":
            headers = server_headers(world.main.app_id, world.foreign.server_key, "POST", GRANTS, body)
        elif attack == "forged signature":
            headers["X-Jifen-Signature"] = "0" * 64
        elif attack == "body changed":
            body = body.replace(b"500", b"900")
        elif attack == "stale timestamp":
            headers = server_headers(world.main.app_id, world.main.server_key, "POST", GRANTS, body, timestamp=int(time.time()) - 301)
        elif attack == "no signature":
            del headers["X-Jifen-Signature"]
        else:
            del headers["X-Jifen-Nonce"]
        # When it arrives signed wrongly
        response = call(world.api, "POST", GRANTS, raw=body, headers=headers)
        # Then 401 with the envelope
        assert response.status_code == 401, (attack, response.json_body)
        assert_envelope(response, 401, "UNAUTHORIZED")
    # And nothing was written, not even a nonce
    assert all_items(world) == before
    assert me(world, token)["balance"] == 0


def test_a_replayed_nonce_is_401_and_applies_nothing(world: World) -> None:
    openid, token = member(world, world.main)
    body = dumps({"openid": openid, "points": 7, "reference": f"r-{uuid.uuid4().hex}", "reason": "x"})
    headers = server_headers(world.main.app_id, world.main.server_key, "POST", GRANTS, body)
    assert call(world.api, "POST", GRANTS, raw=body, headers=headers).status_code == 200
    before = all_items(world)
    assert_envelope(call(world.api, "POST", GRANTS, raw=body, headers=headers), 401, "UNAUTHORIZED")
    assert all_items(world) == before
    assert me(world, token)["balance"] == 7


def test_a_grant_is_capped_by_the_apps_daily_cap(world: World) -> None:
    # Given the capped app (1000 a day)
    openid, token = member(world, world.capped)
    # When 9999 are granted, then 1 more
    first = grant(world, world.capped, openid, 9999, f"r-{uuid.uuid4().hex}")
    second = grant(world, world.capped, openid, 1, f"r-{uuid.uuid4().hex}")
    # Then 1000 are credited with the claim recorded, and the second credits 0
    assert first.json_body["entry"]["delta"] == 1000
    assert first.json_body["entry"]["capped_from"] == 9999
    assert first.json_body["entry"]["note"] == "daily cap of 1000 reached"
    assert (second.json_body["applied"], second.json_body["entry"]["delta"], second.json_body["balance"]) == (True, 0, 1000)
    assert me(world, token)["balance"] == 1000


# --- ledger ----------------------------------------------------------------------------------------


def test_ledger_is_newest_first_pages_cover_everything_once_and_sums_to_the_balance(world: World) -> None:
    # Given seven changes to one account
    openid, token = member(world, world.main)
    steps = [("g", 100), ("g", 40), ("d", 30), ("g", 5), ("d", 100), ("g", 70), ("d", 1)]
    refs = []
    for i, (kind, n) in enumerate(steps):
        ref = f"ledger-{i}-{uuid.uuid4().hex[:8]}"
        refs.append(ref)
        response = (grant if kind == "g" else deduct)(world, world.main, openid, n, ref)
        assert response.status_code == 200, response.json_body
    # When the member reads the ledger two entries at a time
    pages = []
    cursor = None
    while True:
        response = call(world.api, "GET", "/v1/me/ledger?limit=2" + (f"&cursor={cursor}" if cursor else ""), headers=bearer(token))
        assert response.status_code == 200, response.json_body
        pages.append(response.json_body["items"])
        cursor = response.json_body["cursor"]
        if not cursor:
            break
    entries = [entry for page in pages for entry in page]
    # Then every page but the last has two entries, and every entry appears exactly once
    assert [len(page) for page in pages[:-1]] == [2] * (len(pages) - 1)
    assert len(entries) == 7 and len({e["id"] for e in entries}) == 7
    # And they are newest first
    assert [e["reference"] for e in entries] == list(reversed(refs))
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    # And the deltas sum to the balance, each balance_after following from the one before
    balance = me(world, token)["balance"]
    assert sum(e["delta"] for e in entries) == balance == 84
    running = 0
    for entry in reversed(entries):
        running += entry["delta"]
        assert entry["balance_after"] == running
    # And a full read matches the paged one
    assert whole_ledger(world, token) == entries


def test_another_members_cursor_is_refused(world: World) -> None:
    openid, token = member(world, world.main)
    for i in range(3):
        grant(world, world.main, openid, 1, f"c-{i}-{uuid.uuid4().hex}")
    cursor = call(world.api, "GET", "/v1/me/ledger?limit=1", headers=bearer(token)).json_body["cursor"]
    _, other_token = member(world, world.main)
    response = call(world.api, "GET", f"/v1/me/ledger?limit=1&cursor={cursor}", headers=bearer(other_token))
    assert_envelope(response, 400, "VALIDATION_FAILED")


# --- P7 transfers between apps of one tenant -----------------------------------------------------


def transfer(world: World, source: AppKeys, openid: str, target: AppKeys, to_openid: str, points: int, ref: str) -> Any:
    body = {"openid": openid, "to_app_id": target.app_id, "to_openid": to_openid, "points": points, "reference": ref, "reason": "prize"}
    return signed(world, source, TRANSFERS, body)


def test_a_transfer_converts_at_the_two_points_rates_once(world: World) -> None:
    # Given alice with 1000 points in the main app (rate 100) and an account in the capped app (rate 10)
    openid, main_token = member(world, world.main)
    _, capped_token = member(world, world.capped, openid)
    assert grant(world, world.main, openid, 1000, f"g-{uuid.uuid4().hex}").status_code == 200
    ref = f"t-{uuid.uuid4().hex}"
    # When 250 are transferred
    first = transfer(world, world.main, openid, world.capped, openid, 250, ref)
    # Then 250 leave the main app and 250 * 10 // 100 = 25 arrive in the other
    assert first.status_code == 200, first.json_body
    assert (first.json_body["applied"], first.json_body["credited"], first.json_body["balance"]) == (True, 25, 750)
    assert (first.json_body["entry"]["delta"], first.json_body["entry"]["kind"]) == (-250, "transfer_out")
    # When it is delivered again
    again = transfer(world, world.main, openid, world.capped, openid, 250, ref)
    # Then it applies nothing and returns the first result
    assert again.status_code == 200, again.json_body
    assert (again.json_body["applied"], again.json_body["credited"]) == (False, 25)
    assert again.json_body["entry"] == first.json_body["entry"]
    # And each side has one entry and the converted balance
    assert me(world, main_token)["balance"] == 750
    assert me(world, capped_token)["balance"] == 25
    into = whole_ledger(world, capped_token)
    assert [(e["delta"], e["kind"], e["reference"]) for e in into] == [(25, "transfer_in", f"{world.main.app_id}:{ref}")]
    assert [e["delta"] for e in whole_ledger(world, main_token)] == [-250, 1000]
    # And the capped app's daily cap does not apply to a transfer (exempt) but the account earns normally after
    assert me(world, capped_token)["earned_total"] == 25


def test_a_transfer_the_other_way_multiplies(world: World) -> None:
    openid, main_token = member(world, world.main)
    _, capped_token = member(world, world.capped, openid)
    assert grant(world, world.capped, openid, 7, f"g-{uuid.uuid4().hex}").status_code == 200
    response = transfer(world, world.capped, openid, world.main, openid, 7, f"t-{uuid.uuid4().hex}")
    assert response.status_code == 200, response.json_body
    assert response.json_body["credited"] == 70
    assert (me(world, capped_token)["balance"], me(world, main_token)["balance"]) == (0, 70)


def test_a_transfer_that_converts_to_nothing_is_400(world: World) -> None:
    openid, _ = member(world, world.main)
    member(world, world.capped, openid)
    assert grant(world, world.main, openid, 100, f"g-{uuid.uuid4().hex}").status_code == 200
    before = business_items(world)
    assert_envelope(transfer(world, world.main, openid, world.capped, openid, 9, f"t-{uuid.uuid4().hex}"), 400, "VALIDATION_FAILED")
    assert business_items(world) == before


def test_a_transfer_to_another_tenants_app_is_404_and_writes_nothing(world: World) -> None:
    openid, token = member(world, world.main)
    member(world, world.foreign, openid)
    assert grant(world, world.main, openid, 100, f"g-{uuid.uuid4().hex}").status_code == 200
    before = business_items(world)
    response = transfer(world, world.main, openid, world.foreign, openid, 50, f"t-{uuid.uuid4().hex}")
    assert_envelope(response, 404, "NOT_FOUND")
    assert business_items(world) == before
    assert me(world, token)["balance"] == 100


def test_a_transfer_to_the_same_app_is_400(world: World) -> None:
    openid, _ = member(world, world.main)
    other, _ = member(world, world.main)
    assert grant(world, world.main, openid, 100, f"g-{uuid.uuid4().hex}").status_code == 200
    before = business_items(world)
    assert_envelope(transfer(world, world.main, openid, world.main, other, 50, f"t-{uuid.uuid4().hex}"), 400, "VALIDATION_FAILED")
    assert business_items(world) == before


def test_an_insufficient_transfer_changes_neither_side(world: World) -> None:
    openid, main_token = member(world, world.main)
    _, capped_token = member(world, world.capped, openid)
    assert grant(world, world.main, openid, 100, f"g-{uuid.uuid4().hex}").status_code == 200
    before = business_items(world)
    response = transfer(world, world.main, openid, world.capped, openid, 101, f"t-{uuid.uuid4().hex}")
    assert_envelope(response, 409, "INSUFFICIENT_POINTS")
    assert business_items(world) == before
    assert (me(world, main_token)["balance"], me(world, capped_token)["balance"]) == (100, 0)


def test_a_transfer_to_an_unknown_member_is_404_and_debits_nothing(world: World) -> None:
    openid, token = member(world, world.main)
    assert grant(world, world.main, openid, 100, f"g-{uuid.uuid4().hex}").status_code == 200
    before = business_items(world)
    response = transfer(world, world.main, openid, world.capped, "nobody-there", 50, f"t-{uuid.uuid4().hex}")
    assert_envelope(response, 404, "NOT_FOUND")
    assert business_items(world) == before
    assert me(world, token)["balance"] == 100
