"""Property (issue 9, item 0): for every admin write route, bodies drawn from the served OpenAPI request schema either
are accepted and read back with 200, or are refused with a 4xx envelope and leave the object readable and unchanged.

Bodies are a valid base body overlaid with properties drawn from the route's published schema (boundaries, one past
them, wrong types and null included), so both sides of the property are explored. Module-scoped moto, a few seconds
per route.
"""

from __future__ import annotations

import os
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.core.table import schema as table_schema
from chalicelib.core.table.cache import config_cache
from tests.conftest import bearer, call
from tests.support import login_token

EXAMPLES = int(os.environ.get("JIFEN_PROPERTY_EXAMPLES", "20"))
TIMES = ["2030-01-01T00:00:00Z", "2029-06-01T08:00:00+08:00", "2031-01-01T00:00:00", "2020-01-01T00:00:00Z", "not-a-time", ""]


# --- strategies from the published schema ----------------------------------------------------------


def _resolve(node: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = components[node["$ref"].rsplit("/", 1)[1]]
    return node


def _integers(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    low, high = node.get("minimum", -(2**31)), node.get("maximum", 2**31)
    edges = [low, high, low - 1, high + 1, 0, -1, 1, 10_000_001]
    return st.one_of(st.sampled_from(edges), st.integers(min_value=low, max_value=high))


def _strings(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "enum" in node:
        return st.sampled_from([*node["enum"], "bogus"])
    if node.get("format") == "date-time":
        return st.sampled_from(TIMES)
    longest = min(int(node.get("maxLength", 80)), 300)
    options: list[st.SearchStrategy[Any]] = [
        st.text(string.ascii_letters + string.digits + "_-./:", min_size=0, max_size=longest + 1),
        st.sampled_from(["https://tenant.example/x", "goods/acme/a.png", "Asia/Shanghai", "UTC", "Mars/Base", "#FFFFFF", "/pages/x"]),
    ]
    if "pattern" in node:
        options.append(st.from_regex(node["pattern"], fullmatch=True).filter(lambda s: len(s) <= longest + 1))
    return st.one_of(*options)


def from_schema(node: dict[str, Any], components: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    node = _resolve(node, components)
    if "const" in node:
        return st.just(node["const"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            return st.one_of(*[from_schema(option, components, depth) for option in node[key]])
    kind = node.get("type")
    if kind == "null":
        return st.none()
    if kind == "integer":
        return _integers(node)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)
    if kind == "boolean":
        return st.booleans()
    if kind == "string" or "enum" in node:
        return _strings(node)
    if kind == "array":
        most = min(int(node.get("maxItems", 4)) + 1, 4 if depth else 6)
        return st.lists(from_schema(node.get("items", {}), components, depth + 1), max_size=most)
    if kind == "object" or "properties" in node:
        return objects(node, components, depth + 1)
    return st.one_of(st.none(), st.integers(), st.text(max_size=4))


def objects(node: dict[str, Any], components: dict[str, Any], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with any subset of the properties (required ones usually present), each maybe null."""
    node = _resolve(node, components)
    properties = node.get("properties", {})
    required = set(node.get("required", []))
    if depth > 4:
        return st.just({})
    parts = {
        name: st.one_of(from_schema(sub, components, depth), st.none()) if name not in required else from_schema(sub, components, depth)
        for name, sub in properties.items()
    }
    return st.fixed_dictionaries({}, optional=parts)


# --- the routes ------------------------------------------------------------------------------------


@dataclass
class World:
    api: Any
    owner: str
    app_id: str
    member: str
    ids: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        return call(self.api, method, path.format(app=self.app_id, **self.ids), body, bearer(self.owner))


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    base: Callable[[World], dict[str, Any]]
    reads: tuple[str, ...]
    created: str | None = None  # a create route: the id field of what it returns, read at reads[0] with {new}

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def _version(world: World, path: str, key: str = "version") -> int:
    return int(world.call("GET", path).json_body[key])


APP, GOODS = "/v1/admin/apps/{app}", "/v1/admin/goods/{goods}"
ALLOC, LISTING = "/v1/admin/apps/{app}/allocations/{allocation}", "/v1/admin/apps/{app}/listings/{listing}"
TASK, DRAFT = "/v1/admin/apps/{app}/tasks/{task}", "/v1/admin/apps/{app}/pages/home/draft"
MALL = ("/v1/mall/listings", "/v1/mall/listings/{listing}")
PAGE = {"title": "Home", "components": [{"type": "listing_grid"}]}
ROUTES = [
    Route("PATCH", APP, lambda w: {"version": _version(w, APP)}, (APP, "/v1/admin/apps", *MALL)),
    Route("POST", "/v1/admin/apps", lambda w: {"name": "New", "points_rate": 10}, ("/v1/admin/apps/{new}", "/v1/admin/apps"), "app.app_id"),
    Route(
        "POST",
        "/v1/admin/goods",
        lambda w: {"name": "Cup", "category": "physical", "total": 5},
        ("/v1/admin/goods/{new}", "/v1/admin/goods"),
        "goods_id",
    ),
    Route("PATCH", GOODS, lambda w: {"expected_version": _version(w, GOODS)}, (GOODS, "/v1/admin/goods", *MALL)),
    Route("POST", GOODS + "/stock", lambda w: {"add": 1}, (GOODS, "/v1/admin/goods", *MALL)),
    Route(
        "POST",
        "/v1/admin/apps/{app}/allocations",
        lambda w: {"goods_id": w.ids["goods"], "quantity": 1},
        ("/v1/admin/apps/{app}/allocations/{new}", "/v1/admin/apps/{app}/allocations", GOODS),
        "allocation_id",
    ),
    Route("PATCH", ALLOC, lambda w: {"expected_version": _version(w, ALLOC)}, (ALLOC, "/v1/admin/apps/{app}/allocations", *MALL)),
    Route("POST", ALLOC + "/top-ups", lambda w: {"quantity": 1}, (ALLOC, GOODS, *MALL)),
    Route("POST", ALLOC + "/returns", lambda w: {"quantity": 1}, (ALLOC, GOODS, *MALL)),
    Route(
        "POST",
        "/v1/admin/apps/{app}/listings",
        lambda w: {"allocation_id": w.ids["allocation"], "price_points": 10},
        ("/v1/admin/apps/{app}/listings/{new}", "/v1/admin/apps/{app}/listings", MALL[0]),
        "listing_id",
    ),
    Route("PATCH", LISTING, lambda w: {"expected_version": _version(w, LISTING)}, (LISTING, *MALL)),
    Route("POST", LISTING + "/status", lambda w: {"status": "online"}, (LISTING, MALL[0])),
    Route(
        "POST",
        "/v1/admin/apps/{app}/tasks",
        lambda w: {"task": {"template": "daily_checkin", "title": "Check in", "points": 5}},
        ("/v1/admin/apps/{app}/tasks/{new}", "/v1/admin/apps/{app}/tasks", "/v1/tasks"),
        "task_id",
    ),
    Route(
        "PUT",
        TASK,
        lambda w: {"task": {"template": "daily_checkin", "title": "Check in", "points": 5}, "version": _version(w, TASK)},
        (TASK, "/v1/admin/apps/{app}/tasks", "/v1/tasks"),
    ),
    Route(
        "PUT",
        "/v1/admin/apps/{app}/levels",
        lambda w: {"levels": [], "version": _version(w, "/v1/admin/apps/{app}/levels")},
        ("/v1/admin/apps/{app}/levels",),
    ),
    Route(
        "POST",
        "/v1/admin/apps/{app}/levels",
        lambda w: {"level_id": "gold", "name": "Gold", "min_growth": 100},
        ("/v1/admin/apps/{app}/levels",),
    ),
    Route("PUT", DRAFT, lambda w: {"page": PAGE, "expected_version": _version(w, DRAFT)}, (DRAFT, "/v1/admin/apps/{app}/pages")),
    Route(
        "PUT",
        "/v1/admin/apps/{app}/providers/douyin",
        lambda w: {"provider": "douyin", "token": "t" * 16},
        ("/v1/admin/apps/{app}/providers",),
    ),
    Route(
        "PUT",
        "/v1/admin/apps/{app}/providers/wechatpay",
        lambda w: {"provider": "wechatpay"},
        ("/v1/admin/apps/{app}/providers",),
    ),
    Route("POST", "/v1/admin/stores", lambda w: {"name": "Store"}, ("/v1/admin/stores/{new}", "/v1/admin/stores"), "store_id"),
    Route(
        "POST", "/v1/admin/operators", lambda w: {"role": "viewer", "password": "operator-password-1"}, ("/v1/admin/operators",), "username"
    ),
    Route(
        "POST",
        "/v1/admin/stores/{store}/verifiers",
        lambda w: {"username": "verifier-1", "password": "verifier-password-1"},
        ("/v1/admin/stores/{store}",),
    ),
]


def _world(moto_api: tuple[Any, Any]) -> World:
    """Tenant acme with an owner, an app, a member, goods → allocation → online listing, a task, a draft, a store."""
    from chalicelib.tenancy import accounts

    api, client = moto_api
    table = os.environ["JIFEN_TABLE"]
    if table in client.list_tables()["TableNames"]:
        client.delete_table(TableName=table)
    table_schema.create_table(client, table)
    config_cache().clear()
    accounts.create_tenant("acme", "Acme", "owner", "owner-password-1")
    owner = call(api, "POST", "/v1/auth/operator", {"tenant_id": "acme", "username": "owner", "password": "owner-password-1"}).json_body[
        "token"
    ]
    created = call(api, "POST", "/v1/admin/apps", {"name": "Acme", "points_rate": 100}, bearer(owner)).json_body
    app_id = created["app"]["app_id"]
    login = {"app_id": app_id, "login_token": login_token(created["secrets"]["login_secret"], "alice"), "device_id": "d-1"}
    member = call(api, "POST", "/v1/auth/member", login).json_body["token"]
    world = World(api, owner, app_id, member)
    world.ids["goods"] = world.call("POST", "/v1/admin/goods", {"name": "Mug", "category": "physical", "total": 1000}).json_body["goods_id"]
    world.ids["allocation"] = world.call(
        "POST", "/v1/admin/apps/{app}/allocations", {"goods_id": world.ids["goods"], "quantity": 100}
    ).json_body["allocation_id"]
    world.ids["listing"] = world.call(
        "POST", "/v1/admin/apps/{app}/listings", {"allocation_id": world.ids["allocation"], "price_points": 10, "price_fen": 100}
    ).json_body["listing_id"]
    task = {"task": {"template": "daily_checkin", "title": "Check in", "points": 5}}
    world.ids["task"] = world.call("POST", "/v1/admin/apps/{app}/tasks", task).json_body["task_id"]
    assert world.call("PUT", DRAFT, {"page": PAGE}).status_code == 200
    world.ids["store"] = world.call("POST", "/v1/admin/stores", {"name": "Main"}).json_body["store_id"]
    return world


def _read(world: World, path: str, new: str | None = None) -> tuple[int, Any]:
    config_cache().clear()  # as after the config cache expired: what members and operators read from the table
    token = world.member if path.startswith(("/v1/mall", "/v1/tasks")) else world.owner
    ids = {**world.ids, "new": new or ""}
    response = call(world.api, "GET", path.format(app=world.app_id, **ids), None, bearer(token))
    return response.status_code, response.json_body


def _new_id(body: dict[str, Any], dotted: str) -> str:
    value: Any = body
    for part in dotted.split("."):
        value = value[part]
    return str(value)


@pytest.fixture(scope="module")
def world(moto_api: tuple[Any, Any]) -> World:
    return _world(moto_api)


def _schema(world: World, route: Route) -> tuple[dict[str, Any], dict[str, Any]]:
    document = call(world.api, "GET", "/v1/openapi.json").json_body
    operation = document["paths"][
        route.path.replace("{app}", "{app_id}")
        .replace("{goods}", "{goods_id}")
        .replace("{allocation}", "{allocation_id}")
        .replace("{listing}", "{listing_id}")
        .replace("{task}", "{task_id}")
        .replace("{store}", "{store_id}")
        .replace("/home/", "/{page_id}/")
    ][route.method.lower()]
    return operation["requestBody"]["content"]["application/json"]["schema"], document["components"]["schemas"]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_accepted_writes_read_back_and_refused_writes_change_nothing(world: World, route: Route) -> None:
    # Given the route's published request schema and a world where every object exists
    body_schema, components = _schema(world, route)
    seen: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(drawn=objects(body_schema, components, 0))
    def check(drawn: dict[str, Any]) -> None:
        # When an operator sends a valid base body overlaid with drawn properties
        body = {**route.base(world), **drawn}
        reads = [p for p in route.reads if "{new}" not in p]
        before = [_read(world, path) for path in reads]
        assert all(status == 200 for status, _ in before), (route.name, before)
        response = world.call(route.method, route.path, body)
        status = response.status_code
        seen.append(str(status))
        # Then it is never a 5xx: accepted → every read (the new object's too) answers 200; refused → the envelope, nothing changed
        assert status < 500, (route.name, body, response.json_body)
        if status < 300:
            new = _new_id(response.json_body, route.created) if route.created else None
            for path in route.reads:
                read_status, read_body = _read(world, path, new)
                assert read_status == 200, (route.name, body, path, read_body)
        else:
            assert set(response.json_body) == {"error"}, response.json_body
            after = [_read(world, path) for path in reads]
            assert after == before, (route.name, body, response.json_body)

    check()
    assert seen, route.name
