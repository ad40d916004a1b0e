"""`make bench`: DynamoDB round trips and items per action, import time, expiry throughput, concurrency.

Round trips and items do not depend on moto's speed, so they are the numbers to compare; timings on
moto are indicative only. Run: python -m tests.perf.bench [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import tests.conftest  # noqa: E402,F401  (test environment: moto credentials, fast hashes)


class DynamoCounter:
    """Counts PynamoDB's calls to DynamoDB: operations, items read and written."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def record(self, operation: str, kwargs: dict[str, Any], response: dict[str, Any]) -> None:
        reads = writes = 0
        if operation == "GetItem":
            reads = 1
        elif operation in ("Query", "Scan"):
            reads = int(response.get("Count", 0))
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            writes = 1
        elif operation == "TransactWriteItems":
            items = kwargs.get("TransactItems", [])
            writes = sum(1 for item in items if "ConditionCheck" not in item)
            reads = len(items) - writes
        elif operation == "BatchWriteItem":
            writes = sum(len(v) for v in kwargs.get("RequestItems", {}).values())
        self.calls.append((operation, reads, writes))

    def summary(self) -> dict[str, Any]:
        ops = Counter(op for op, _, _ in self.calls)
        return {
            "round_trips": len(self.calls),
            "reads": sum(1 for op, _, _ in self.calls if op in ("GetItem", "Query", "BatchGetItem")),
            "writes": sum(1 for op, _, _ in self.calls if op not in ("GetItem", "Query", "BatchGetItem", "Scan")),
            "items_read": sum(r for _, r, _ in self.calls),
            "items_written": sum(w for _, _, w in self.calls),
            "operations": dict(ops),
        }


@contextmanager
def counting() -> Iterator[DynamoCounter]:
    from pynamodb.connection.base import Connection

    counter = DynamoCounter()
    original = Connection._make_api_call

    def wrapped(self: Any, operation_name: str, operation_kwargs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        response = original(self, operation_name, operation_kwargs, *args, **kwargs)
        counter.record(operation_name, operation_kwargs, response or {})
        return response

    Connection._make_api_call = wrapped  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        Connection._make_api_call = original  # type: ignore[method-assign]


def measure(label: str, action: Callable[[], Any], rows: list[dict[str, Any]]) -> Any:
    with counting() as counter:
        result = action()
    rows.append({"action": label, **counter.summary()})
    return result


def per_action(rows: list[dict[str, Any]]) -> None:
    import boto3
    from chalice.test import Client
    from moto import mock_aws

    from chalicelib.core.table import schema
    from chalicelib.core.table.cache import config_cache
    from chalicelib.tenancy import accounts
    from tests.conftest import bearer, call
    from tests.support import dumps, login_token, server_headers, webhook_headers

    with mock_aws():
        schema.create_table(boto3.client("dynamodb"), os.environ["JIFEN_TABLE"])
        config_cache().clear()
        from app import app

        accounts.create_tenant("bench", "Bench", "owner", "owner-password-1")
        with Client(app) as api:
            token = call(
                api, "POST", "/v1/auth/operator", {"tenant_id": "bench", "username": "owner", "password": "owner-password-1"}
            ).json_body["token"]
            owner = bearer(token)
            created = call(
                api,
                "POST",
                "/v1/admin/apps",
                {"name": "Bench", "points_rate": 100, "daily_earn_cap": 100000, "expiry_policy": {"type": "end_of_nth_year", "n": 1}},
                owner,
            ).json_body
            app_id, secrets = created["app"]["app_id"], created["secrets"]
            tasks = {}
            for task in (
                {"template": "daily_checkin", "title": "Check in", "points": 10, "bonuses": [{"streak": 3, "points": 10}]},
                {"template": "browse_page", "title": "Browse", "points": 5, "url": "https://x", "completions_per_cycle": 100},
                {
                    "template": "consumption",
                    "title": "Shop",
                    "step_fen": 100,
                    "points_per_step": 1,
                    "per_order_cap": 99,
                    "completions_per_cycle": 100,
                },
            ):
                tasks[task["template"]] = call(api, "POST", f"/v1/admin/apps/{app_id}/tasks", {"task": task}, owner).json_body["task_id"]

            def login(openid: str) -> Any:
                body = {"app_id": app_id, "login_token": login_token(secrets["login_secret"], openid), "device_id": "bench"}
                return call(api, "POST", "/v1/auth/member", body)

            def signed(path: str, body: dict[str, Any]) -> Any:
                raw = dumps(body)
                return call(api, "POST", path, raw=raw, headers=server_headers(app_id, secrets["server_key"], "POST", path, raw))

            # warm the per-container config cache, as a running Lambda has it
            warm = bearer(login("warm").json_body["token"])
            call(api, "GET", "/v1/me", None, warm)
            call(api, "GET", "/v1/tasks", None, warm)
            call(api, "POST", "/v1/me/checkins", None, warm)
            signed("/v1/server/points/grants", {"openid": "warm", "points": 1, "reference": "warm", "reason": "warm"})

            measure("login (first, creates member)", lambda: login("m1"), rows)
            member = bearer(measure("login (returning member)", lambda: login("m1"), rows).json_body["token"])
            measure("profile read GET /v1/me", lambda: call(api, "GET", "/v1/me", None, member), rows)
            measure(
                "grant (server, signed)",
                lambda: signed("/v1/server/points/grants", {"openid": "m1", "points": 500, "reference": "g1", "reason": "b"}),
                rows,
            )
            measure(
                "grant replay (same reference)",
                lambda: signed("/v1/server/points/grants", {"openid": "m1", "points": 500, "reference": "g1", "reason": "b"}),
                rows,
            )
            measure(
                "deduction (server, signed)",
                lambda: signed("/v1/server/points/deductions", {"openid": "m1", "points": 50, "reference": "d1", "reason": "b"}),
                rows,
            )
            measure("check-in", lambda: call(api, "POST", "/v1/me/checkins", None, member), rows)
            measure(
                "task completion (self-reported)",
                lambda: call(api, "POST", f"/v1/tasks/{tasks['browse_page']}/completions", None, member),
                rows,
            )
            event = dumps({"id": "ev-1", "type": "payment.succeeded", "openid": "m1", "order_id": "o-1", "amount_fen": 5000})
            measure(
                "payment webhook (consumption points)",
                lambda: call(
                    api,
                    "POST",
                    f"/v1/webhooks/payments/generic/{app_id}",
                    raw=event,
                    headers=webhook_headers(secrets["webhook_secret"], event),
                ),
                rows,
            )
            measure(
                "payment webhook replay",
                lambda: call(
                    api,
                    "POST",
                    f"/v1/webhooks/payments/generic/{app_id}",
                    raw=event,
                    headers=webhook_headers(secrets["webhook_secret"], event),
                ),
                rows,
            )
            measure("ledger page (20)", lambda: call(api, "GET", "/v1/me/ledger", None, member), rows)
            mall_actions(api, app_id, owner, member, signed, rows)


def mall_actions(
    api: Any, app_id: str, owner: dict[str, str], member: dict[str, str], signed: Callable[..., Any], rows: list[dict[str, Any]]
) -> None:
    """G4: the exchange (virtual goods complete in the request), its replay, the listing page."""
    from tests.conftest import call
    from tests.support_mall import add_free_codes

    signed("/v1/server/points/grants", {"openid": "m1", "points": 5000, "reference": "mall", "reason": "b"})

    def listing(goods: dict[str, Any], quantity: int, shards: int = 4) -> str:
        goods_id = call(api, "POST", "/v1/admin/goods", goods, owner).json_body["goods_id"]
        if goods["category"] == "cdk":
            add_free_codes("bench", goods_id, [f"CODE-{seq:04d}" for seq in range(quantity)])
        allocation = call(
            api,
            "POST",
            f"/v1/admin/apps/{app_id}/allocations",
            {"goods_id": goods_id, "quantity": quantity, "shards": shards, "member_limits": {"day": 5}, "device_limits": {"week": 5}},
            owner,
        ).json_body
        return str(
            call(
                api, "POST", f"/v1/admin/apps/{app_id}/listings", {"allocation_id": allocation["allocation_id"], "price_points": 10}, owner
            ).json_body["listing_id"]
        )

    link = listing({"name": "Voucher", "category": "coupon_link", "coupon_url": "https://x.example/c", "total": 100}, 100)
    cdk = listing({"name": "Key", "category": "cdk", "total": 0}, 20)
    # warm this container's listing / allocation / goods caches, as a running Lambda has them
    call(api, "GET", "/v1/mall/listings", None, member)
    for listing_id in (link, cdk):
        call(api, "POST", "/v1/mall/exchanges", {"listing_id": listing_id}, member | {"Idempotency-Key": f"warm-{listing_id}"})

    def exchange(listing_id: str, key: str) -> Any:
        return call(api, "POST", "/v1/mall/exchanges", {"listing_id": listing_id}, member | {"Idempotency-Key": key})

    measure("mall exchange (coupon link, 2 limits)", lambda: exchange(link, "x1"), rows)
    measure("mall exchange replay (Idempotency-Key)", lambda: exchange(link, "x1"), rows)
    measure("mall exchange (CDK code claimed)", lambda: exchange(cdk, "x2"), rows)
    measure("mall listings page (live stock)", lambda: call(api, "GET", "/v1/mall/listings", None, member), rows)
    measure("my orders page", lambda: call(api, "GET", "/v1/me/orders", None, member), rows)


def expiry_throughput(members: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from chalicelib.core.clock import FixedClock
    from chalicelib.core.ids import member_id_for
    from chalicelib.core.table import schema
    from chalicelib.core.table.cache import config_cache
    from chalicelib.points import engine as points
    from chalicelib.points import expiry_jobs
    from chalicelib.tenancy import accounts, apps
    from chalicelib.tenancy.models import CreateAppRequest, ExpiryPolicy
    from chalicelib.tenancy.store.members import MembersRepo

    with mock_aws():
        schema.create_table(boto3.client("dynamodb"), os.environ["JIFEN_TABLE"])
        config_cache().clear()
        accounts.create_tenant("exp", "Exp", "owner", "owner-password-1")
        app = apps.create_app("exp", CreateAppRequest(name="E", points_rate=100, expiry_policy=ExpiryPolicy(type="rolling_days", n=1))).app
        earned = FixedClock(datetime(2026, 1, 10, 4, tzinfo=UTC))
        for index in range(members):
            openid = f"x{index}"
            MembersRepo().record_login(app.app_id, member_id_for(app.app_id, openid), openid, "2026-01-10T00:00:00Z", "d", None, None)
            points.grant(app, openid, 100, f"r{index}", "bench", clock=earned)
            points.deduct(app, openid, 30, f"s{index}", "bench", clock=earned)
        later = FixedClock(earned.at + timedelta(days=3))
        with counting() as counter:
            started = time.perf_counter()
            run = expiry_jobs.run_expiry(clock=later)
            seconds = time.perf_counter() - started
        summary = counter.summary()
        again = expiry_jobs.run_expiry(clock=later)
        return {
            "members": members,
            "expired_points": run.points,
            "seconds": round(seconds, 2),
            "members_per_second_on_moto": round(members / seconds, 1),
            "round_trips_per_member": round(summary["round_trips"] / members, 2),
            "items_written_per_member": round(summary["items_written"] / members, 2),
            "second_run_points": again.points,
        }


def import_times(runs: int) -> dict[str, float]:
    def median_of(code: str) -> float:
        samples = []
        for _ in range(runs):
            env = {**os.environ, "JIFEN_SIGNING_KEY": "x" * 40, "PYTHONPATH": str(ROOT)}
            out = subprocess.run(
                [sys.executable, "-c", f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"],
                capture_output=True,
                text=True,
                cwd=ROOT,
                env=env,
                check=True,
            )
            samples.append(float(out.stdout.strip().splitlines()[-1]))
        return round(statistics.median(samples) * 1000, 1)

    return {"import boto3 (ms)": median_of("import boto3"), "import app (API handler, ms)": median_of("import app")}


@contextmanager
def local_server() -> Iterator[dict[str, Any]]:
    """`make run`'s server in a subprocess (its own moto, demo data); yields .local/jifen.json's details."""
    import tempfile

    out = Path(tempfile.mkdtemp()) / "jifen.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JIFEN_", "AWS_", "POWERTOOLS_", "MOTO_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "jifen_local.server", "--port", "0", "--out", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        yield json.loads(out.read_text())
    finally:
        process.terminate()
        process.wait(timeout=10)


def concurrency(requests_per_case: int) -> dict[str, Any]:
    """Against the real local server (subprocess): duplicate grants, overdraft deductions, req/s."""
    import requests

    from tests.support import dumps, login_token, server_headers

    with local_server() as details:
        base, app_id, key = details["base_url"], details["app_id"], details["server_key"]
        openid = f"bench-{uuid.uuid4().hex[:6]}"
        login = {"app_id": app_id, "login_token": login_token(details["login_secret"], openid), "device_id": "b"}
        requests.post(base + "/v1/auth/member", json=login, timeout=10).raise_for_status()

        def signed(path: str, body: dict[str, Any]) -> requests.Response:
            raw = dumps(body)
            return requests.post(base + path, data=raw, headers=server_headers(app_id, key, "POST", path, raw), timeout=60)

        results: dict[str, Any] = {}
        with ThreadPoolExecutor(max_workers=16) as pool:
            started = time.perf_counter()
            grants = list(
                pool.map(
                    lambda _: signed("/v1/server/points/grants", {"openid": openid, "points": 200, "reference": "dup", "reason": "b"}),
                    range(requests_per_case),
                )
            )
            elapsed = time.perf_counter() - started
            results["duplicate grants"] = {
                "requests": len(grants),
                "applied": sum(r.json().get("applied") is True for r in grants),
                "req_per_s": round(len(grants) / elapsed, 1),
            }
            started = time.perf_counter()
            debits = list(
                pool.map(
                    lambda i: signed("/v1/server/points/deductions", {"openid": openid, "points": 10, "reference": f"d{i}", "reason": "b"}),
                    range(30),
                )
            )
            elapsed = time.perf_counter() - started
            me = requests.get(
                f"{base}/v1/server/members/{openid}", headers=server_headers(app_id, key, "GET", f"/v1/server/members/{openid}"), timeout=10
            )
            results["30 deductions of 10 from 200"] = {
                "succeeded": sum(r.status_code == 200 for r in debits),
                "insufficient": sum(r.status_code == 409 for r in debits),
                "member_found": me.status_code == 200,
                "req_per_s": round(30 / elapsed, 1),
            }
        return results


def flash_sale(stock: int, buyers: int, shard_counts: tuple[int, ...]) -> list[dict[str, Any]]:
    """G4 against the real local server: ``buyers`` members at once on ``stock`` items, per shard count."""
    import requests

    from tests.support import dumps, login_token, server_headers

    with local_server() as details:
        base, app_id = details["base_url"], details["app_id"]
        operator = requests.post(base + "/v1/auth/operator", json={"tenant_id": details["tenant_id"], **details["operator"]}, timeout=30)
        owner = {"Authorization": f"Bearer {operator.json()['token']}"}
        members = []
        for index in range(buyers):
            openid = f"flash-{index}"
            login = {"app_id": app_id, "login_token": login_token(details["login_secret"], openid), "device_id": f"d{index}"}
            token = requests.post(base + "/v1/auth/member", json=login, timeout=30).json()["token"]
            raw = dumps({"openid": openid, "points": 100 * len(shard_counts), "reference": f"seed-{openid}", "reason": "bench"})
            path = "/v1/server/points/grants"
            requests.post(base + path, data=raw, headers=server_headers(app_id, details["server_key"], "POST", path, raw), timeout=30)
            members.append({"Authorization": f"Bearer {token}"})
        results = []
        for shards in shard_counts:
            goods = requests.post(
                base + "/v1/admin/goods",
                json={"name": f"Flash x{shards}", "category": "coupon_link", "coupon_url": "https://x.example/c", "total": stock},
                headers=owner,
                timeout=30,
            ).json()
            allocation = requests.post(
                base + f"/v1/admin/apps/{app_id}/allocations",
                json={"goods_id": goods["goods_id"], "quantity": stock, "shards": shards},
                headers=owner,
                timeout=30,
            ).json()
            listing = requests.post(
                base + f"/v1/admin/apps/{app_id}/listings",
                json={"allocation_id": allocation["allocation_id"], "price_points": 100},
                headers=owner,
                timeout=30,
            ).json()

            def buy(member: dict[str, str], listing_id: str = listing["listing_id"]) -> int:
                return requests.post(base + "/v1/mall/exchanges", json={"listing_id": listing_id}, headers=member, timeout=120).status_code

            with ThreadPoolExecutor(max_workers=64) as pool:
                started = time.perf_counter()
                statuses = list(pool.map(buy, members))
                elapsed = time.perf_counter() - started
            left = requests.get(
                base + f"/v1/admin/apps/{app_id}/allocations/{allocation['allocation_id']}", headers=owner, timeout=30
            ).json()
            results.append(
                {
                    "shards": shards,
                    "orders": statuses.count(201),
                    "sold_out": statuses.count(409),
                    "other": len(statuses) - statuses.count(201) - statuses.count(409),
                    "stock_left": left["stock"],
                    "seconds": round(elapsed, 2),
                    "req_per_s": round(len(statuses) / elapsed, 1),
                }
            )
        return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    per_action(rows)
    print("\nDynamoDB per action (config cache warm, as in a running Lambda)")
    print(f"{'action':40} {'trips':>5} {'reads':>5} {'writes':>6} {'items r':>7} {'items w':>7}  operations")
    for row in rows:
        ops = ", ".join(f"{k}×{v}" for k, v in row["operations"].items())
        counts = f"{row['round_trips']:>5} {row['reads']:>5} {row['writes']:>6} {row['items_read']:>7} {row['items_written']:>7}"
        print(f"{row['action']:40} {counts}  {ops}")
    print("\nImport time (median of fresh interpreters)")
    for name, value in import_times(3 if args.quick else 7).items():
        print(f"  {name:32} {value:8.1f}")
    print("\nExpiry job")
    print("  " + json.dumps(expiry_throughput(50 if args.quick else 200)))
    print("\nConcurrency against the local server (moto serialized behind a lock)")
    for name, value in concurrency(40).items():
        print(f"  {name}: {json.dumps(value)}")
    buyers = 100 if args.quick else 400
    print(f"\nFlash sale against the local server: 50 items, {buyers} members at once (64 client threads)")
    for row in flash_sale(50, buyers, (1, 4, 16)):
        print("  " + json.dumps(row))


if __name__ == "__main__":
    main()
