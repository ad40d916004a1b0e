"""G6 exchange records: orders by business day / status / listing / member, cursor pages, CSV exports to S3.

The orders are placed once for the module (through the admin and member APIs, at chosen instants) and the
cases only read them; exports write to S3 only. The app's time zone is Asia/Shanghai (UTC+8), so local
days straddle two of the indexes' UTC-day partitions.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from unittest.mock import patch

import boto3
import pytest
import requests
from moto import mock_aws

from chalicelib.core.clock import FixedClock, use_clock
from chalicelib.core.config import get_settings
from chalicelib.core.ids import member_id_for
from chalicelib.core.table import schema
from chalicelib.core.table.cache import config_cache
from chalicelib.core.table.dynamo import transaction
from chalicelib.mall import records
from chalicelib.mall.models.catalog import Fulfilment, Order
from chalicelib.mall.store.orders import order_put
from tests.conftest import OWNER, Tenant, bearer, call
from tests.support_mall import allocate, create_goods, exchange, grant, list_item, member_token

ACME = "acme"
BOB_ADDRESS = {
    "name": "@Bob",
    "phone": "+86 138 0000 0000",
    "province": "Zhejiang",
    "city": "Hangzhou",
    "district": "Xihu",
    "detail": "=cmd|' /C calc'!A0",
    "postcode": "310000",
}
CAROL_ADDRESS = {
    "name": "Carol",
    "phone": "13900000000",
    "province": "",
    "city": "Shanghai",
    "district": "",
    "detail": '1 "Bund" Rd, Huangpu',
}
CODES = ["ABCDEFGH1234", "WXYZ98765432"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class World:
    api: Any
    s3: Any
    acme: Tenant
    other_owner: str  # another tenant's owner
    viewer: str  # an acme viewer
    second_app: str  # another acme app
    coupon: dict[str, Any]  # coupon_link listing: completes in the exchange
    mug: dict[str, Any]  # physical listing, titled like a formula: waits for shipment
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # by label, as the exchange returned them

    def get(self, path: str, token: str | None = None) -> Any:
        return call(self.api, "GET", path, headers=bearer(token or self.acme.owner_token))

    def post(self, path: str, body: Any, token: str | None = None) -> Any:
        return call(self.api, "POST", path, body, bearer(token or self.acme.owner_token))

    def orders_path(self, app_id: str | None = None) -> str:
        return f"/v1/admin/apps/{app_id or self.acme.app_id}/orders"

    def ids(self, *labels: str) -> list[str]:
        return [self.orders[label]["order_id"] for label in labels]

    def walk(self, query: str, limit: int) -> tuple[list[str], int]:
        """Every page of a list: the order ids in the order served, and how many requests it took."""
        ids: list[str] = []
        cursor = None
        for requests_made in range(1, 100):
            suffix = f"&cursor={cursor}" if cursor else ""
            response = self.get(f"{self.orders_path()}?{query}&limit={limit}{suffix}")
            assert response.status_code == 200, response.json_body
            assert len(response.json_body["items"]) <= limit
            ids += [item["order_id"] for item in response.json_body["items"]]
            cursor = response.json_body["cursor"]
            if cursor is None:
                return ids, requests_made
        raise AssertionError("the cursor never ended")


def _login(api: Any, tenant_id: str, username: str, password: str) -> str:
    response = call(api, "POST", "/v1/auth/operator", {"tenant_id": tenant_id, "username": username, "password": password})
    assert response.status_code == 200, response.json_body
    return str(response.json_body["token"])


def _seed_cdk_order(tenant: Tenant, openid: str, created_at: str) -> Order:
    """A completed CDK order as the exchange stores it (codes in its fulfilment)."""
    order = Order(
        order_id="o" + str(int(at(created_at).timestamp() * 1000)).zfill(13) + "cdk0000001",
        app_id=tenant.app_id,
        member_id=member_id_for(tenant.app_id, openid),
        openid=openid,
        listing_id="l_cdk",
        allocation_id="al_cdk",
        goods_id="g_cdk",
        category="cdk",
        use="mall",
        title="Game key",
        quantity=2,
        points=400,
        cash_fen=0,
        status="completed",
        fulfilment=Fulfilment(codes=CODES),
        created_at=created_at,
        updated_at=created_at,
        completed_at=created_at,
    )
    tx = transaction()
    for write in order_put(order):
        tx.save(write.item, condition=write.condition)
    tx._commit()
    return order


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """Given acme's app (Asia/Shanghai) with a coupon listing and a mug listing, and orders placed at chosen instants:

    local 2026-03-01: alice coupon (01:00Z)
    local 2026-03-02: bob mug (16:00:00Z the day before = local midnight), alice coupon x2 (18:00Z, 20:00Z),
                      carol mug (02:00Z), alice coupon (03:00Z), alice coupon (03:00Z, same second), bob coupon (15:59:59Z)
    local 2026-03-03: carol coupon (16:00:00Z = local midnight), alice mug (09:00Z)
    local 2026-03-04: dave's CDK order (seeded with two codes)
    """
    from chalice.test import Client

    from app import app
    from chalicelib.mall import fulfilment
    from chalicelib.tenancy import accounts

    # orders that wait (physical goods) would start their fulfilment workflow: not what these tests read
    with mock_aws(), patch.object(fulfilment, "start"):
        client = boto3.client("dynamodb")
        schema.create_table(client, os.environ["JIFEN_TABLE"])
        config_cache().clear()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=get_settings().bucket)
        with Client(app) as api:
            accounts.create_tenant(ACME, "Acme", *OWNER)
            owner = _login(api, ACME, *OWNER)
            created = call(api, "POST", "/v1/admin/apps", {"name": "Acme App", "points_rate": 100}, bearer(owner))
            assert created.status_code == 201, created.json_body
            keys = created.json_body["secrets"]
            acme = Tenant(ACME, owner, created.json_body["app"]["app_id"], keys["login_secret"], keys["server_key"], keys["webhook_secret"])
            second = call(api, "POST", "/v1/admin/apps", {"name": "Acme Two", "points_rate": 100}, bearer(owner))
            viewer = call(
                api, "POST", "/v1/admin/operators", {"username": "vera", "password": "viewer-password-1", "role": "viewer"}, bearer(owner)
            )
            assert viewer.status_code == 201, viewer.json_body
            accounts.create_tenant("other", "Other", *OWNER)

            coupon_goods = create_goods(
                api, acme, name="Coffee coupon", category="coupon_link", coupon_url="https://example.com/c", total=50
            )
            coupon = list_item(api, acme, allocate(api, acme, coupon_goods["goods_id"], 40)["allocation_id"], price_points=100)
            mug_goods = create_goods(api, acme, name="Mug", total=50)
            mug = list_item(api, acme, allocate(api, acme, mug_goods["goods_id"], 40)["allocation_id"], price_points=300, title="+Mug")
            world = World(
                api,
                s3,
                acme,
                _login(api, "other", *OWNER),
                _login(api, ACME, "vera", "viewer-password-1"),
                second.json_body["app"]["app_id"],
                coupon,
                mug,
            )

            tokens = {}
            for openid in ("alice", "bob", "carol"):
                tokens[openid] = member_token(api, acme, openid)
                grant(api, acme, openid, 100_000)
            clock = FixedClock(at("2026-03-01T00:00:00Z"))
            placed = [
                ("alice-0301", "alice", coupon, "2026-03-01T01:00:00Z", {}),
                ("bob-mug", "bob", mug, "2026-03-01T16:00:00Z", {"address": BOB_ADDRESS}),
                ("alice-1", "alice", coupon, "2026-03-01T18:00:00Z", {}),
                ("alice-2", "alice", coupon, "2026-03-01T20:00:00Z", {"quantity": 2}),
                ("carol-mug", "carol", mug, "2026-03-02T02:00:00Z", {"address": CAROL_ADDRESS}),
                ("alice-3", "alice", coupon, "2026-03-02T03:00:00Z", {}),
                ("alice-4", "alice", coupon, "2026-03-02T03:00:00Z", {}),
                ("bob-coupon", "bob", coupon, "2026-03-02T15:59:59Z", {}),
                ("carol-0303", "carol", coupon, "2026-03-02T16:00:00Z", {}),
                ("alice-mug-0303", "alice", mug, "2026-03-03T09:00:00Z", {"address": CAROL_ADDRESS}),
            ]
            with use_clock(clock):
                for label, openid, listing, when, extra in placed:
                    clock.at = at(when)
                    response = exchange(api, tokens[openid], listing["listing_id"], **extra)
                    assert response.status_code == 201, response.json_body
                    world.orders[label] = response.json_body
            tokens["dave"] = member_token(api, acme, "dave")
            world.orders["dave-cdk"] = _seed_cdk_order(acme, "dave", "2026-03-04T01:00:00Z").model_dump(mode="json")
            world.orders["dave-token"] = {"token": tokens["dave"]}
            # "today" for the list's default day: local 2026-03-02 (10:00 in Shanghai)
            with use_clock(FixedClock(at("2026-03-02T02:00:00Z"))):
                yield world
        config_cache().clear()


def _local_0302(world: World) -> list[str]:
    """The expected order of local 2026-03-02: newest first; the two orders of one second by order id, descending."""
    same_second = sorted(world.ids("alice-3", "alice-4"), reverse=True)
    return world.ids("bob-coupon") + same_second + world.ids("carol-mug", "alice-2", "alice-1", "bob-mug")


# --- listing ---------------------------------------------------------------------------------------


def test_a_business_day_is_the_apps_local_day_across_two_utc_partitions(world: World) -> None:
    # Given orders from local midnight (16:00Z the day before) to 23:59:59 local, and others just outside
    # When local 2026-03-02 is listed
    response = world.get(f"{world.orders_path()}?day=2026-03-02")
    # Then exactly that day's orders come back, newest first, with the day range and time zone echoed
    assert response.status_code == 200, response.json_body
    assert [item["order_id"] for item in response.json_body["items"]] == _local_0302(world)
    assert response.json_body["cursor"] is None
    assert (response.json_body["day"], response.json_body["to_day"], response.json_body["time_zone"]) == (
        "2026-03-02",
        "2026-03-02",
        "Asia/Shanghai",
    )


def test_without_a_day_the_list_is_today_in_the_apps_time_zone(world: World) -> None:
    # Given "now" is 2026-03-02T02:00Z, which is 10:00 on 2026-03-02 in Shanghai
    # When the list is read without day
    response = world.get(world.orders_path())
    # Then it is local 2026-03-02
    assert response.status_code == 200, response.json_body
    assert response.json_body["day"] == "2026-03-02"
    assert [item["order_id"] for item in response.json_body["items"]] == _local_0302(world)


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 100])
def test_paging_through_a_day_range_returns_every_order_once_newest_first(world: World, limit: int) -> None:
    # Given 11 orders over local days 2026-03-01..03 (five UTC-day partitions)
    expected = world.ids("alice-mug-0303", "carol-0303") + _local_0302(world) + world.ids("alice-0301")
    # When the range is walked page by page with the cursor
    ids, pages = world.walk("day=2026-03-01&to_day=2026-03-03", limit)
    # Then every order comes exactly once, in order, and full pages were served until the end
    assert ids == expected
    assert pages in (-(-len(expected) // limit), -(-len(expected) // limit) + 1)


def test_status_filter_reads_the_status_index(world: World) -> None:
    # Given mugs wait for shipment and coupons completed in the exchange
    # When local days 03-01..03 are listed by status
    shipping, _ = world.walk("day=2026-03-01&to_day=2026-03-03&status=awaiting_shipment", 1)
    done, _ = world.walk("day=2026-03-01&to_day=2026-03-03&status=completed", 2)
    # Then each status holds exactly its orders
    assert shipping == world.ids("alice-mug-0303", "carol-mug", "bob-mug")
    assert done == world.ids("carol-0303", "bob-coupon") + sorted(world.ids("alice-3", "alice-4"), reverse=True) + world.ids(
        "alice-2", "alice-1", "alice-0301"
    )


def test_listing_filter_pages_fill_and_still_visit_everything(world: World) -> None:
    # Given the mug listing has 3 orders among 11
    # When the range is listed for the mug listing, one at a time
    ids, _ = world.walk(f"day=2026-03-01&to_day=2026-03-03&listing_id={world.mug['listing_id']}", 1)
    # Then exactly the mug orders, newest first
    assert ids == world.ids("alice-mug-0303", "carol-mug", "bob-mug")
    # And with a status as well: both filters apply
    both, _ = world.walk(f"day=2026-03-02&status=completed&listing_id={world.mug['listing_id']}", 5)
    assert both == []


def test_member_filter_lists_one_members_orders_all_time_or_within_days(world: World) -> None:
    # Given alice ordered on local 03-01, 03-02 (4 times) and 03-03
    # When her orders are listed without days, then for local 03-02, then only completed ones on 03-03
    all_time, _ = world.walk("openid=alice", 2)
    one_day = world.get(f"{world.orders_path()}?openid=alice&day=2026-03-02")
    completed, _ = world.walk("openid=alice&day=2026-03-03&status=completed", 1)
    # Then all of hers newest first; the day is the local day; the status filter leaves none on 03-03
    same_second = sorted(world.ids("alice-3", "alice-4"), reverse=True)
    assert all_time == world.ids("alice-mug-0303") + same_second + world.ids("alice-2", "alice-1", "alice-0301")
    assert one_day.status_code == 200, one_day.json_body
    assert [item["order_id"] for item in one_day.json_body["items"]] == same_second + world.ids("alice-2", "alice-1")
    assert one_day.json_body["day"] == "2026-03-02"
    assert completed == []
    # And a member with no orders has an empty list (not an error)
    nobody = world.get(f"{world.orders_path()}?openid=nobody")
    assert nobody.status_code == 200 and nobody.json_body["items"] == [] and nobody.json_body["cursor"] is None
    assert nobody.json_body["day"] is None


def test_listed_orders_carry_address_and_shipping_details(world: World) -> None:
    # Given bob's mug order with an address
    # When local 03-02 is listed for the mug
    response = world.get(f"{world.orders_path()}?day=2026-03-02&listing_id={world.mug['listing_id']}")
    # Then the operator sees the address as entered
    bob = next(item for item in response.json_body["items"] if item["order_id"] == world.orders["bob-mug"]["order_id"])
    assert bob["address"] == BOB_ADDRESS
    assert (bob["status"], bob["title"], bob["openid"], bob["points"]) == ("awaiting_shipment", "+Mug", "bob", 300)


# --- one order, codes masked --------------------------------------------------------------------------


def test_an_operator_sees_an_order_in_full_but_cdk_codes_masked(world: World) -> None:
    # Given dave's CDK order with two codes
    order_id = world.orders["dave-cdk"]["order_id"]
    # When an operator (even a viewer) reads it, and lists its day
    detail = world.get(f"{world.orders_path()}/{order_id}", world.viewer)
    listed = world.get(f"{world.orders_path()}?day=2026-03-04", world.viewer)
    # Then the codes are masked in both; everything else is there
    assert detail.status_code == 200, detail.json_body
    assert detail.json_body["fulfilment"]["codes"] == ["ABCD****", "WXYZ****"]
    assert (detail.json_body["title"], detail.json_body["quantity"], detail.json_body["openid"]) == ("Game key", 2, "dave")
    assert listed.json_body["items"][0]["fulfilment"]["codes"] == ["ABCD****", "WXYZ****"]
    assert all(code not in json.dumps(body) for code in CODES for body in (detail.json_body, listed.json_body))
    # And dave himself still sees his codes
    own = call(world.api, "GET", f"/v1/me/orders/{order_id}", headers=bearer(world.orders["dave-token"]["token"]))
    assert own.status_code == 200, own.json_body
    assert own.json_body["fulfilment"]["codes"] == CODES


def test_an_order_reads_with_its_shipping_address(world: World) -> None:
    # Given carol's mug order
    order_id = world.orders["carol-mug"]["order_id"]
    # When it is read by id
    response = world.get(f"{world.orders_path()}/{order_id}")
    # Then it is the full order
    assert response.status_code == 200, response.json_body
    assert response.json_body["address"] == {**CAROL_ADDRESS, "postcode": None}
    assert response.json_body["status"] == "awaiting_shipment"


def test_orders_of_another_app_or_tenant_are_not_found(world: World) -> None:
    order_id = world.orders["carol-mug"]["order_id"]
    # Given acme's order, acme's second app, and another tenant's owner
    # When the order is read through the second app, and acme's app is read by the other tenant
    cases = [
        world.get(f"{world.orders_path(world.second_app)}/{order_id}"),
        world.get(f"{world.orders_path()}/{order_id}", world.other_owner),
        world.get(f"{world.orders_path()}?day=2026-03-02", world.other_owner),
        world.post(f"{world.orders_path()}/exports", {"day": "2026-03-02"}, world.other_owner),
        world.get(f"{world.orders_path()}/o_missing"),
    ]
    # Then every one is 404, and the second app's own list is empty
    assert [response.status_code for response in cases] == [404] * len(cases)
    assert all(response.json_body["error"]["code"] == "NOT_FOUND" for response in cases)
    own = world.get(f"{world.orders_path(world.second_app)}?day=2026-03-02")
    assert own.status_code == 200 and own.json_body["items"] == []


# --- bad input, crafted cursors ---------------------------------------------------------------------


def _craft(plain: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def _first_cursor(world: World, query: str) -> str:
    response = world.get(f"{world.orders_path()}?{query}&limit=1")
    assert response.status_code == 200 and response.json_body["cursor"], response.json_body
    return str(response.json_body["cursor"])


def _inner(cursor: str) -> tuple[str, dict[str, str]]:
    outer = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    inner = outer["k"]
    return outer["d"], json.loads(base64.urlsafe_b64decode(inner + "=" * (-len(inner) % 4)))


def _with_key(day: str, key: dict[str, str]) -> str:
    return _craft({"d": day, "k": _craft(key)})


@pytest.mark.parametrize(
    "case",
    [
        "not base64 !!",
        "garbage",
        "list",
        "unknown partition",
        "status cursor on the day list",
        "member cursor on the day list",
        "sort key outside the day",
        "another app's partition",
        "not an order",
        "extra key attribute",
        "inner not a string",
    ],
)
def test_crafted_cursors_are_refused_with_400(world: World, case: str) -> None:
    # Given real cursors of one list and others, and crafted ones
    day_cursor = _first_cursor(world, "day=2026-03-02")
    day, key = _inner(day_cursor)
    crafted = {
        "not base64 !!": "!!!",
        "garbage": _craft("x")[:-1] + "@",
        "list": _craft([1, 2]),
        "unknown partition": _craft({"d": "2026-04-01", "k": None}),
        "status cursor on the day list": _first_cursor(world, "day=2026-03-02&status=completed"),
        "member cursor on the day list": _first_cursor(world, "openid=alice"),
        "sort key outside the day": _with_key(day, {**key, "GSI1SK": "2026-03-05T00:00:00Z#o1"}),
        "another app's partition": _with_key(day, {**key, "GSI1PK": key["GSI1PK"].replace(world.acme.app_id, world.second_app)}),
        "not an order": _with_key(day, {**key, "SK": "PROFILE"}),
        "extra key attribute": _with_key(day, {**key, "GSI2PK": "x"}),
        "inner not a string": _craft({"d": day, "k": 7}),
    }[case]
    # When the day list is read with it
    response = world.get(f"{world.orders_path()}?day=2026-03-02&cursor={crafted}")
    # Then 400 VALIDATION_FAILED on the cursor, never a 500
    assert response.status_code == 400, response.json_body
    assert response.json_body["error"]["code"] == "VALIDATION_FAILED"
    assert response.json_body["error"]["details"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("day=2026-13-01", "day"),
        ("day=yesterday", "day"),
        ("day=0001-01-01", "day"),
        ("to_day=2026-03-02", "to_day"),
        ("day=2026-03-02&to_day=2026-03-01", "to_day"),
        ("day=2026-03-01&to_day=2026-04-01", "to_day"),
        ("status=lost", "status"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        (f"openid={'x' * 129}", "openid"),
    ],
)
def test_bad_filters_are_400(world: World, query: str, field: str) -> None:
    # Given a filter that is not a date, a range that is backwards or too long, an unknown status, a bad limit
    # When the list is read with it
    response = world.get(f"{world.orders_path()}?{query}")
    # Then 400 naming the problem
    assert response.status_code == 400, response.json_body
    assert response.json_body["error"]["code"] == "VALIDATION_FAILED"
    assert field in [detail["field"] for detail in response.json_body["error"]["details"]]


# --- export --------------------------------------------------------------------------------------------


def _download(url: str) -> requests.Response:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return response


def test_export_writes_the_filtered_csv_to_s3_and_returns_a_working_download_url(world: World) -> None:
    # Given bob's and carol's mug orders on local 03-02 (formula-like title, name, phone and address)
    mug = world.mug["listing_id"]
    bob, carol = world.orders["bob-mug"]["order_id"], world.orders["carol-mug"]["order_id"]
    # When a manager exports local 03-02 for the mug listing
    response = world.post(f"{world.orders_path()}/exports", {"day": "2026-03-02", "listing_id": mug})
    # Then 201 with the row count and a presigned URL that downloads exactly this CSV
    assert response.status_code == 201, response.json_body
    body = response.json_body
    assert body["rows"] == 2 and body["format"] == "csv"
    assert body["filename"] == f"orders-{world.acme.app_id}-2026-03-02.csv"
    download = _download(body["download_url"])
    expected = (
        "\ufefforder_id,created_at,status,category,listing_id,title,quantity,points,cash_fen,openid,recipient,phone,province,city,"
        "district,address,postcode,carrier,tracking_no,shipped_at,paid_at,completed_at\r\n"
        f"{carol},2026-03-02T02:00:00Z,awaiting_shipment,physical,{mug},'+Mug,1,300,0,carol,Carol,13900000000,,Shanghai,,"
        '"1 ""Bund"" Rd, Huangpu",,,,,,\r\n'
        f"{bob},2026-03-01T16:00:00Z,awaiting_shipment,physical,{mug},'+Mug,1,300,0,bob,'@Bob,'+86 138 0000 0000,Zhejiang,Hangzhou,"
        "Xihu,'=cmd|' /C calc'!A0,310000,,,,,\r\n"
    )
    assert download.content.decode("utf-8") == expected
    # And the object is under the tenant and app, named by the export id
    key = f"exports/{ACME}/{world.acme.app_id}/{body['export_id']}.csv"
    stored = world.s3.get_object(Bucket=get_settings().bucket, Key=key)
    assert stored["Body"].read().decode("utf-8") == expected
    assert stored["ContentType"] == "text/csv; charset=utf-8"
    assert "response-content-disposition=attachment" in body["download_url"]


def test_export_of_a_range_has_every_order_and_never_a_code(world: World) -> None:
    # Given local 03-01..03-04, which include dave's CDK order
    # When it is exported
    response = world.post(f"{world.orders_path()}/exports", {"day": "2026-03-01", "to_day": "2026-03-04"})
    # Then every order is a row, newest first, and no code appears anywhere
    assert response.status_code == 201, response.json_body
    text = _download(response.json_body["download_url"]).content.decode("utf-8")
    rows = text.removeprefix("\ufeff").split("\r\n")[1:-1]
    expected = world.ids("dave-cdk", "alice-mug-0303", "carol-0303") + _local_0302(world) + world.ids("alice-0301")
    assert [row.split(",")[0] for row in rows] == expected
    assert response.json_body["rows"] == len(expected) == 11
    assert all(code not in text and code[:4] not in text for code in CODES)
    assert response.json_body["filename"] == f"orders-{world.acme.app_id}-2026-03-01-2026-03-04.csv"


def test_export_of_a_member_or_an_empty_filter(world: World) -> None:
    # Given alice's six orders and a day without orders
    # When each is exported
    alice = world.post(f"{world.orders_path()}/exports", {"openid": "alice"})
    empty = world.post(f"{world.orders_path()}/exports", {"day": "2026-01-01", "status": "refunded"})
    # Then alice's file has her six rows; the empty one only the header
    assert alice.status_code == 201 and alice.json_body["rows"] == 6
    assert alice.json_body["filename"] == f"orders-{world.acme.app_id}-all.csv"
    assert empty.status_code == 201 and empty.json_body["rows"] == 0
    assert _download(empty.json_body["download_url"]).content.decode("utf-8").count("\r\n") == 1


def test_an_export_larger_than_a_file_continues_with_its_cursor(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given 3 rows a file, and 7 orders on local 03-02
    monkeypatch.setattr(records, "EXPORT_PART_ROWS", 3)
    # When the day is exported, then continued with each answer's cursor
    parts = [world.post(f"{world.orders_path()}/exports", {"day": "2026-03-02"})]
    while parts[-1].status_code == 201 and parts[-1].json_body["cursor"]:
        parts.append(world.post(f"{world.orders_path()}/exports", {"day": "2026-03-02", "cursor": parts[-1].json_body["cursor"]}))
    # Then three files (3, 3, 1 rows) hold the day's orders once each, newest first
    assert [part.status_code for part in parts] == [201, 201, 201]
    assert [part.json_body["rows"] for part in parts] == [3, 3, 1]
    texts = [_download(part.json_body["download_url"]).content.decode("utf-8") for part in parts]
    assert [row.split(",")[0] for text in texts for row in text.split("\r\n")[1:-1]] == _local_0302(world)
    assert all(part.json_body["filename"].endswith(f"-{part.json_body['export_id']}.csv") for part in parts)
    # And the cursor only continues the same filters: with another status, or crafted, it is 400
    cursor = parts[0].json_body["cursor"]
    other = world.post(f"{world.orders_path()}/exports", {"day": "2026-03-02", "status": "completed", "cursor": cursor})
    crafted = world.post(f"{world.orders_path()}/exports", {"day": "2026-03-02", "cursor": _craft({"d": "2026-03-02", "k": "x"})})
    assert (other.status_code, crafted.status_code) == (400, 400)
    assert other.json_body["error"]["details"][0]["field"] == "cursor"


def test_only_managers_export_and_bad_bodies_are_400(world: World) -> None:
    # Given a viewer, and bodies with an unknown field, a wrong type, a backwards range
    # When each exports
    viewer = world.post(f"{world.orders_path()}/exports", {"day": "2026-03-02"}, world.viewer)
    bad = [
        world.post(f"{world.orders_path()}/exports", body)
        for body in ({"day": "2026-03-02", "everything": True}, {"day": 20260302}, {"day": "2026-03-02", "to_day": "2026-03-01"})
    ]
    # Then the viewer is forbidden and the bodies are refused
    assert viewer.status_code == 403, viewer.json_body
    assert [response.status_code for response in bad] == [400, 400, 400]


# --- the S3 writer ---------------------------------------------------------------------------------------


def test_large_objects_are_written_in_parts_and_a_failure_leaves_nothing(world: World) -> None:
    from chalicelib.core import aws

    bucket = get_settings().bucket
    # Given 13 MiB of chunks (two 5 MiB parts and a last one)
    chunks = [bytes([65 + i]) * (1024 * 1024) for i in range(13)]
    # When they are written with 5 MiB parts
    size = aws.write_object("exports/test/big.csv", iter(chunks), content_type="text/csv", part_bytes=5 * 1024 * 1024)
    # Then the object is exactly the chunks, in order
    assert size == 13 * 1024 * 1024
    assert world.s3.get_object(Bucket=bucket, Key="exports/test/big.csv")["Body"].read() == b"".join(chunks)

    # Given chunks that fail after the first part was uploaded
    def failing() -> Iterator[bytes]:
        yield from chunks[:6]
        raise RuntimeError("reading the orders failed")

    # When they are written
    with pytest.raises(RuntimeError):
        aws.write_object("exports/test/broken.csv", failing(), content_type="text/csv", part_bytes=5 * 1024 * 1024)
    # Then no object and no pending upload remain
    assert "Contents" not in world.s3.list_objects_v2(Bucket=bucket, Prefix="exports/test/broken")
    assert not world.s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_export_timestamps_are_utc_iso(world: World) -> None:
    # Given "now" is 2026-03-02T02:00:00Z and download URLs last 900 s
    # When local 03-03 is exported
    response = world.post(f"{world.orders_path()}/exports", {"day": "2026-03-03"})
    # Then the download expires 900 s from now, and the rows' times are UTC ISO 8601
    assert response.status_code == 201, response.json_body
    assert response.json_body["expires_at"] == "2026-03-02T02:15:00Z"
    text = _download(response.json_body["download_url"]).content.decode("utf-8")
    assert ",2026-03-03T09:00:00Z," in text and ",2026-03-02T16:00:00Z," in text
