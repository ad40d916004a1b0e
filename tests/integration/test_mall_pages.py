"""G7 mall decoration: typed components, draft → preview → publish, versions, rollback, the resolved page, promotion QR."""

from __future__ import annotations

import base64
import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from chalicelib.core.clock import FixedClock
from chalicelib.core.config import get_settings
from chalicelib.core.errors import Conflict
from chalicelib.core.table import schema
from chalicelib.core.table.cache import config_cache
from chalicelib.mall import pages
from chalicelib.mall.models.pages import PageVersion
from chalicelib.mall.store.pages import PagesRepo
from chalicelib.tenancy import accounts
from chalicelib.tenancy.store.apps import AppsRepo
from tests.conftest import Tenant, bearer, call, table_items
from tests.support_mall import listing_for, member_token

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOME = "home"


@dataclass
class World:
    api: Any
    client: Any
    tenant: Tenant

    @property
    def app_id(self) -> str:
        return self.tenant.app_id

    @property
    def owner(self) -> str:
        return self.tenant.owner_token

    def page(self, page_id: str = HOME) -> str:
        return f"/v1/admin/apps/{self.app_id}/pages/{page_id}"


def operator_login(api: Any, tenant_id: str, username: str, password: str) -> str:
    login = call(api, "POST", "/v1/auth/operator", {"tenant_id": tenant_id, "username": username, "password": password})
    assert login.status_code == 200, login.json_body
    return str(login.json_body["token"])


@pytest.fixture
def world(moto_api: tuple[Any, Any]) -> Iterator[World]:
    """Given tenant acme, its owner logged in, and one app (a fresh table per test)."""
    api, client = moto_api
    table = os.environ["JIFEN_TABLE"]
    if table in client.list_tables()["TableNames"]:
        client.delete_table(TableName=table)
    schema.create_table(client, table)
    config_cache().clear()
    accounts.create_tenant("acme", "Acme", "owner", "owner-password-1")
    owner = operator_login(api, "acme", "owner", "owner-password-1")
    created = call(api, "POST", "/v1/admin/apps", {"name": "Acme", "points_rate": 100}, bearer(owner))
    assert created.status_code == 201, created.json_body
    secrets = created.json_body["secrets"]
    tenant = Tenant(
        "acme", owner, created.json_body["app"]["app_id"], secrets["login_secret"], secrets["server_key"], secrets["webhook_secret"]
    )
    yield World(api, client, tenant)
    config_cache().clear()


def assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.json_body
    error = response.json_body["error"]
    assert (error["code"], bool(error["message"]), error["request_id"]) == (code, True, response.headers["X-Request-Id"])
    return dict(error)


def every_component(listing_ids: list[str], task_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """One component of every type."""
    return [
        {
            "type": "banner_carousel",
            "slides": [
                {"image": "https://cdn.example.com/b1.png", "link": "/pages/mall/listing?listing_id=x", "title": "Spring sale"},
                {"image": "goods/acme/0123456789abcdef0123.png", "link": "https://example.com/promo"},
            ],
            "interval_seconds": 4,
        },
        {"type": "showcase", "title": "Picks", "listing_ids": listing_ids},
        {"type": "listing_grid", "title": "Everything", "columns": 3, "limit": 50},
        {"type": "task_list", "title": "Earn points", "task_ids": task_ids, "limit": 5},
        {
            "type": "activity_entry",
            "activity_id": "act_1",
            "title": "Lucky draw",
            "image": "https://cdn.example.com/d.png",
            "link": "/pages/draw",
        },
        {
            "type": "bottom_nav",
            "items": [
                {"label": "Home", "icon": "https://cdn.example.com/home.png", "link": "/pages/home"},
                {"label": "Me", "icon": "https://cdn.example.com/me.png", "link": "/pages/me"},
            ],
        },
        {"type": "customer_service", "phone": "+86 400-800-8888", "wechat": "acme_help", "hours": "09:00-21:00"},
    ]


def page_body(title: str = "Home", components: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "title": title,
        "background_color": "#FFF8E1",
        "components": every_component(["l1"]) if components is None else components,
        **extra,
    }


def save_draft(world: World, page: dict[str, Any], version: int | None = None, page_id: str = HOME) -> dict[str, Any]:
    body: dict[str, Any] = {"page": page} | ({"expected_version": version} if version else {})
    response = call(world.api, "PUT", f"{world.page(page_id)}/draft", body, bearer(world.owner))
    assert response.status_code == 200, response.json_body
    return dict(response.json_body)


def publish(world: World, page_id: str = HOME, **body: Any) -> dict[str, Any]:
    response = call(world.api, "POST", f"{world.page(page_id)}/publish", body, bearer(world.owner))
    assert response.status_code == 200, response.json_body
    return dict(response.json_body)


def preview(world: World, page_id: str = HOME) -> dict[str, Any]:
    response = call(world.api, "POST", f"{world.page(page_id)}/preview", None, bearer(world.owner))
    assert response.status_code == 201, response.json_body
    return dict(response.json_body)


def member_page(world: World, token: str, page_id: str | None = None) -> Any:
    return call(world.api, "GET", "/v1/mall/page" + (f"?page_id={page_id}" if page_id else ""), headers=bearer(token))


def open_preview(world: World, token: str) -> Any:
    return call(world.api, "GET", f"/v1/mall/page/preview?token={token}")


def versions(world: World, query: str = "") -> dict[str, Any]:
    response = call(world.api, "GET", f"{world.page()}/versions{query}", headers=bearer(world.owner))
    assert response.status_code == 200, response.json_body
    return dict(response.json_body)


# --- components ------------------------------------------------------------------------------------


def test_every_component_type_validates_and_reads_back(world: World) -> None:
    # Given a page with one component of every type
    sent = page_body(components=every_component(["l1", "l2"], ["task_a"]))
    # When the owner saves it as the draft
    draft = save_draft(world, sent)
    # Then it is draft version 1, as sent (defaults filled in), and reads back the same
    assert draft["version"] == 1 and draft["updated_by"] == "owner"
    assert [c["type"] for c in draft["page"]["components"]] == [c["type"] for c in sent["components"]]
    assert draft["page"]["components"][0]["slides"][1] == {
        "image": "goods/acme/0123456789abcdef0123.png",
        "link": "https://example.com/promo",
        "title": None,
    }
    grid = draft["page"]["components"][2]
    assert (grid["listing_ids"], grid["columns"], grid["limit"]) == (None, 3, 50)
    read = call(world.api, "GET", f"{world.page()}/draft", headers=bearer(world.owner))
    assert read.status_code == 200 and read.json_body == draft


def _replace(index: int, **fields: Any) -> list[dict[str, Any]]:
    components = every_component(["l1"])
    components[index] = {**components[index], **fields}
    return components


BAD_PAGES = [
    ("unknown component type", page_body(components=[{"type": "marquee", "text": "hi"}]), "page.components.0"),
    ("javascript: link", page_body(components=_replace(4, link="javascript:alert(1)")), "page.components.4.activity_entry.link"),
    (
        "JavaScript: link in a slide",
        page_body(components=_replace(0, slides=[{"image": "https://a.b/c.png", "link": "JavaScript:x"}])),
        None,
    ),
    ("http link", page_body(components=_replace(4, link="http://example.com")), "page.components.4.activity_entry.link"),
    ("protocol-relative link", page_body(components=_replace(4, link="//evil.example.com/x")), "page.components.4.activity_entry.link"),
    ("link with a space", page_body(components=_replace(4, link="/pages/a b")), "page.components.4.activity_entry.link"),
    ("data: image", page_body(components=_replace(4, image="data:image/png;base64,AAAA")), "page.components.4.activity_entry.image"),
    ("image key outside uploads", page_body(components=_replace(4, image="../secrets/key.png")), "page.components.4.activity_entry.image"),
    ("51 components", page_body(components=[{"type": "showcase", "title": "S", "listing_ids": ["l1"]}] * 51), "page.components"),
    ("no components", page_body(components=[]), None),
    ("colour is not hex", page_body(background_color="red"), "page.background_color"),
    ("colour without #", page_body(background_color="FFFFFF"), "page.background_color"),
    (
        "11 slides",
        page_body(components=_replace(0, slides=[{"image": "https://a.b/c.png"}] * 11)),
        "page.components.0.banner_carousel.slides",
    ),
    ("showcase with 21 listings", page_body(components=_replace(1, listing_ids=[f"l{i}" for i in range(21)])), None),
    ("showcase repeats a listing", page_body(components=_replace(1, listing_ids=["l1", "l1"])), None),
    ("grid of 5 columns", page_body(components=_replace(2, columns=5)), "page.components.2.listing_grid.columns"),
    ("bottom nav of one item", page_body(components=_replace(5, items=[{"label": "A", "icon": "https://a.b/i.png", "link": "/a"}])), None),
    ("two bottom navs", page_body(components=[*every_component(["l1"]), every_component(["l1"])[5]]), "page"),
    ("unreachable customer service", page_body(components=_replace(6, phone=None, wechat=None)), None),
    ("unknown field", page_body(components=_replace(1, colour="red")), "page.components.1.showcase.colour"),
    ("columns as a string", page_body(components=_replace(2, columns="2")), "page.components.2.listing_grid.columns"),
    ("title too long", page_body(title="x" * 65), "page.title"),
]


@pytest.mark.parametrize(("case", "page", "field"), BAD_PAGES, ids=[case for case, _, _ in BAD_PAGES])
def test_bad_components_are_400_with_details_and_nothing_is_saved(world: World, case: str, page: dict[str, Any], field: str | None) -> None:
    # When the owner saves a page that breaks a rule
    response = call(world.api, "PUT", f"{world.page()}/draft", {"page": page}, bearer(world.owner))
    # Then it is refused with the fields that are wrong, and there is still no draft
    error = assert_envelope(response, 400, "VALIDATION_FAILED")
    assert error["details"] and all(set(d) == {"field", "problem"} for d in error["details"]), error
    if field is not None:
        assert any(d["field"].startswith(field) for d in error["details"]), (case, error["details"])
    assert_envelope(call(world.api, "GET", f"{world.page()}/draft", headers=bearer(world.owner)), 404, "NOT_FOUND")


def test_an_image_uploaded_by_another_tenant_is_refused(world: World) -> None:
    # Given a page whose banner uses an upload key of tenant "beta"
    components = _replace(0, slides=[{"image": "goods/beta/0123456789abcdef0123.png"}])
    # When the owner of acme saves it
    response = call(world.api, "PUT", f"{world.page()}/draft", {"page": page_body(components=components)}, bearer(world.owner))
    # Then it is refused: members would get a signed URL to beta's image
    error = assert_envelope(response, 400, "VALIDATION_FAILED")
    assert error["details"][0]["field"] == "page.components.0.slides.0.image"


def test_bad_page_ids_and_bodies_are_400(world: World) -> None:
    for page_id in ("Home", "a" * 33, "home%23x", "-x"):
        response = call(world.api, "PUT", f"{world.page(page_id)}/draft", {"page": page_body()}, bearer(world.owner))
        assert_envelope(response, 400, "VALIDATION_FAILED")
    for raw in (b"{", b"[]", b'{"page": 1}'):
        response = call(world.api, "PUT", f"{world.page()}/draft", raw=raw, headers=bearer(world.owner))
        assert_envelope(response, 400, "VALIDATION_FAILED")
    assert_envelope(call(world.api, "POST", f"{world.page()}/rollback", {"version": 0}, bearer(world.owner)), 400, "VALIDATION_FAILED")
    assert_envelope(
        call(world.api, "POST", f"{world.page()}/publish", {"draft_version": "1"}, bearer(world.owner)), 400, "VALIDATION_FAILED"
    )


def test_the_draft_is_saved_with_optimistic_versions(world: World) -> None:
    # Given a draft at version 1
    save_draft(world, page_body("One"))
    path = f"{world.page()}/draft"
    # When it is created again, or replaced with a version that is not the current one
    again = call(world.api, "PUT", path, {"page": page_body("Two")}, bearer(world.owner))
    stale = call(world.api, "PUT", path, {"page": page_body("Two"), "expected_version": 7}, bearer(world.owner))
    # Then both are 409 and the draft is unchanged; with the version read it becomes version 2
    assert_envelope(again, 409, "CONFLICT")
    assert_envelope(stale, 409, "CONFLICT")
    assert save_draft(world, page_body("Two"), version=1)["version"] == 2
    assert call(world.api, "GET", path, headers=bearer(world.owner)).json_body["page"]["title"] == "Two"


def test_an_app_has_several_pages(world: World) -> None:
    save_draft(world, page_body("Home"))
    save_draft(world, page_body("Promo"), page_id="promo-618")
    publish(world, "promo-618")
    listed = call(world.api, "GET", f"/v1/admin/apps/{world.app_id}/pages", headers=bearer(world.owner))
    assert listed.status_code == 200
    summaries = {p["page_id"]: (p["title"], p["draft_version"], p["live_version"]) for p in listed.json_body["items"]}
    assert summaries == {"home": ("Home", 1, None), "promo-618": ("Promo", 1, 1)}


# --- preview ---------------------------------------------------------------------------------------


def test_a_preview_shows_the_draft_as_it_was_when_previewed(world: World) -> None:
    # Given a draft with a listing on sale and nothing published
    listing = listing_for(world.api, world.tenant, quantity=5)
    save_draft(world, page_body("Draft one", every_component([listing["listing_id"], "gone"])))
    # When the owner previews it
    made = preview(world)
    # Then the token opens the draft, resolved, marked as a preview, for about 30 minutes
    expires = datetime.fromisoformat(made["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=29) < expires - datetime.now(UTC) <= timedelta(minutes=30)
    assert made["path"] == f"/v1/mall/page/preview?token={made['preview_token']}"
    shown = call(world.api, "GET", made["path"])
    assert shown.status_code == 200, shown.json_body
    body = shown.json_body
    assert (body["page_id"], body["title"], body["preview"], body["version"], body["published_at"]) == (HOME, "Draft one", True, None, None)
    showcase = body["components"][1]
    assert [view["listing_id"] for view in showcase["listings"]] == [listing["listing_id"]]
    # And members still see nothing published
    assert_envelope(member_page(world, member_token(world.api, world.tenant, "o-1")), 404, "NOT_FOUND")
    # When the draft changes after the preview
    save_draft(world, page_body("Draft two"), version=1)
    # Then the old token still shows the draft as previewed; a new preview shows the new draft
    assert open_preview(world, made["preview_token"]).json_body["title"] == "Draft one"
    assert open_preview(world, preview(world)["preview_token"]).json_body["title"] == "Draft two"


def test_a_preview_token_opens_only_its_own_app_and_page(world: World) -> None:
    # Given two pages of the app, each with a draft, and a preview token of "home"
    save_draft(world, page_body("Home"))
    save_draft(world, page_body("Promo"), page_id="promo")
    token = preview(world)["preview_token"]
    # Then the token shows "home" (the token names what it opens; nothing in the request can change that)
    assert open_preview(world, token).json_body["page_id"] == HOME
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["app"], claims["page"], claims["aud"]) == (world.app_id, HOME, "jifen:preview")
    # And the same snapshot id under another app (even correctly signed) is not found
    key = get_settings().signing_key
    assert key is not None
    other = jwt.encode({**claims, "app": "app_other"}, key, algorithm="HS256")
    assert_envelope(open_preview(world, other), 404, "NOT_FOUND")
    # And another page of the same app with this snapshot id is not found either
    assert_envelope(open_preview(world, jwt.encode({**claims, "page": "promo"}, key, algorithm="HS256")), 404, "NOT_FOUND")
    # And a token naming the app under another tenant is not found
    assert_envelope(open_preview(world, jwt.encode({**claims, "ten": "beta"}, key, algorithm="HS256")), 404, "NOT_FOUND")


def test_an_expired_forged_or_tampered_preview_token_is_401(world: World) -> None:
    save_draft(world, page_body())
    app = AppsRepo().get(world.app_id)
    assert app is not None
    key = get_settings().signing_key
    assert key is not None
    # Given a token issued 31 minutes ago (30-minute lifetime), and one issued 29 minutes ago
    expired = pages.preview(app, HOME, "owner", key, clock=FixedClock(datetime.now(UTC) - timedelta(minutes=31))).token
    fresh = pages.preview(app, HOME, "owner", key, clock=FixedClock(datetime.now(UTC) - timedelta(minutes=29))).token
    # Then the old one is refused and the other still works
    assert_envelope(open_preview(world, expired), 401, "UNAUTHORIZED")
    assert open_preview(world, fresh).status_code == 200
    # And a token whose payload was changed, one signed with another key, or one of another type is refused
    header, payload, signature = fresh.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    changed = base64.urlsafe_b64encode(json.dumps({**claims, "page": "promo"}).encode()).decode().rstrip("=")
    member = member_token(world.api, world.tenant, "o-1")
    for bad in (
        f"{header}.{changed}.{signature}",
        f"{header}.{payload}.{signature[:-2]}xx",
        jwt.encode(claims, "another-key-" + "y" * 32, algorithm="HS256"),
        jwt.encode({**claims, "aud": "jifen:member"}, key, algorithm="HS256"),
        jwt.encode({**claims, "alg": "none"}, key, algorithm="HS256").rsplit(".", 1)[0] + ".",
        member,
        world.owner,
        "not-a-token",
    ):
        assert_envelope(open_preview(world, bad), 401, "UNAUTHORIZED")
    assert_envelope(call(world.api, "GET", "/v1/mall/page/preview"), 401, "UNAUTHORIZED")
    # And the preview token is no member or operator token
    assert_envelope(member_page(world, fresh), 401, "UNAUTHORIZED")
    assert_envelope(call(world.api, "GET", f"{world.page()}/draft", headers=bearer(fresh)), 401, "UNAUTHORIZED")


def test_previewing_needs_a_draft(world: World) -> None:
    assert_envelope(call(world.api, "POST", f"{world.page()}/preview", None, bearer(world.owner)), 404, "NOT_FOUND")


# --- publish, members ------------------------------------------------------------------------------


def test_members_see_the_published_page_with_listings_and_tasks_resolved(world: World) -> None:
    # Given three listings on sale (one then taken offline), two tasks, and a page naming some of them
    first, second, third = (listing_for(world.api, world.tenant, quantity=q, title=t) for q, t in ((5, "Mug"), (7, "Pen"), (3, "Cap")))
    checkin = call(
        world.api,
        "POST",
        f"/v1/admin/apps/{world.app_id}/tasks",
        {"task": {"template": "daily_checkin", "title": "Check in", "points": 5}},
        bearer(world.owner),
    ).json_body
    browse = call(
        world.api,
        "POST",
        f"/v1/admin/apps/{world.app_id}/tasks",
        {"task": {"template": "browse_page", "title": "Browse", "points": 1, "url": "https://example.com"}},
        bearer(world.owner),
    ).json_body
    showcase_ids = [third["listing_id"], "no_such_listing", first["listing_id"]]
    components = every_component(showcase_ids, ["no_such_task", browse["task_id"]])
    components.insert(3, {"type": "listing_grid", "listing_ids": [second["listing_id"], third["listing_id"]], "limit": 1})
    components.insert(4, {"type": "task_list"})
    save_draft(world, page_body("Mall", components))
    version = publish(world)
    assert (version["version"], version["action"], version["draft_version"], version["live"]) == (1, "publish", 1, True)
    status = call(
        world.api,
        "POST",
        f"/v1/admin/apps/{world.app_id}/listings/{third['listing_id']}/status",
        {"status": "offline"},
        bearer(world.owner),
    )
    assert status.status_code == 200, status.json_body
    config_cache().clear()
    # And a member who did the browse task once
    token = member_token(world.api, world.tenant, "o-1")
    assert call(world.api, "POST", f"/v1/tasks/{browse['task_id']}/completions", None, bearer(token)).status_code == 200
    # When the member reads the mall page
    response = member_page(world, token)
    # Then it is version 1 with every component, its data resolved in the one response
    assert response.status_code == 200, response.json_body
    body = response.json_body
    assert (body["page_id"], body["version"], body["preview"], body["title"], body["background_color"]) == (
        HOME,
        1,
        False,
        "Mall",
        "#FFF8E1",
    )
    kinds = [c["type"] for c in body["components"]]
    assert kinds == [
        "banner_carousel",
        "showcase",
        "listing_grid",
        "listing_grid",
        "task_list",
        "task_list",
        "activity_entry",
        "bottom_nav",
        "customer_service",
    ]
    showcase, all_grid, named_grid = body["components"][1], body["components"][2], body["components"][3]
    # unknown and offline listings are dropped silently; the order is the operator's
    assert [v["listing_id"] for v in showcase["listings"]] == [first["listing_id"]]
    assert (
        showcase["listings"][0]["title"] == "Mug" and showcase["listings"][0]["stock"] == 5 and showcase["listings"][0]["on_sale"] is True
    )
    assert sorted(v["listing_id"] for v in all_grid["listings"]) == sorted([first["listing_id"], second["listing_id"]])
    assert [v["listing_id"] for v in named_grid["listings"]] == [second["listing_id"]]
    # tasks carry my progress, in the shape of GET /v1/tasks; unknown task ids are dropped
    all_tasks, named_tasks = body["components"][4], body["components"][5]
    assert [(t["task_id"], t["done"], t["completions_per_cycle"]) for t in named_tasks["tasks"]] == [(browse["task_id"], 1, 1)]
    listed = call(world.api, "GET", "/v1/tasks", headers=bearer(token)).json_body["items"]
    assert all_tasks["tasks"] == listed and {t["task_id"] for t in listed} == {checkin["task_id"], browse["task_id"]}
    assert body["components"][6]["activity_id"] == "act_1"
    # And an uploaded banner image is a download URL, an https one is as given
    slides = body["components"][0]["slides"]
    assert slides[0]["image"] == "https://cdn.example.com/b1.png"
    assert slides[1]["image"].startswith("https://") and "goods/acme/0123456789abcdef0123.png" in slides[1]["image"]


def test_nothing_published_is_404_and_a_bad_page_id_is_400(world: World) -> None:
    token = member_token(world.api, world.tenant, "o-1")
    save_draft(world, page_body())
    assert_envelope(member_page(world, token), 404, "NOT_FOUND")
    assert_envelope(member_page(world, token, "promo"), 404, "NOT_FOUND")
    assert_envelope(member_page(world, token, "BAD!"), 400, "VALIDATION_FAILED")
    assert_envelope(call(world.api, "POST", f"{world.page('promo')}/publish", {}, bearer(world.owner)), 404, "NOT_FOUND")


def test_editing_the_draft_after_publishing_changes_nothing_for_members_until_the_next_publish(world: World) -> None:
    token = member_token(world.api, world.tenant, "o-1")
    # Given version 1 published from draft 1
    save_draft(world, page_body("First"))
    publish(world)
    # When the draft is edited
    save_draft(world, page_body("Second"), version=1)
    config_cache().clear()
    # Then members still see version 1
    assert (member_page(world, token).json_body["title"], member_page(world, token).json_body["version"]) == ("First", 1)
    # When the draft is published (naming the draft version reviewed)
    assert publish(world, draft_version=2)["version"] == 2
    # Then members see version 2 at once (this container's cache is refreshed by the publish)
    assert (member_page(world, token).json_body["title"], member_page(world, token).json_body["version"]) == ("Second", 2)


def test_publishing_is_optimistic_and_a_retry_publishes_nothing_new(world: World) -> None:
    save_draft(world, page_body("First"))
    first = publish(world)
    # When the same draft is published again (a retry)
    again = publish(world)
    # Then it is the same version and the history has one entry
    assert again == first
    assert [v["version"] for v in versions(world)["items"]] == [1]
    # When a publish names a draft version that is not the current one
    save_draft(world, page_body("Second"), version=1)
    stale = call(world.api, "POST", f"{world.page()}/publish", {"draft_version": 1}, bearer(world.owner))
    # Then it is 409 and nothing is published
    assert_envelope(stale, 409, "CONFLICT")
    assert [v["version"] for v in versions(world)["items"]] == [1]


def test_a_publish_that_loses_a_race_writes_nothing(world: World) -> None:
    # Given version 1 live, and a draft edited since a publisher read it
    save_draft(world, page_body("First"))
    publish(world)
    save_draft(world, page_body("Second"), version=1)
    app = AppsRepo().get(world.app_id)
    assert app is not None
    draft = PagesRepo().get_draft(world.app_id, HOME)
    assert draft is not None
    before = sorted(json.dumps(i, sort_keys=True) for i in table_items(world.client))
    stale = PageVersion(page_id=HOME, version=2, action="publish", draft_version=1, published_at="2026-01-01T00:00:00Z", published_by="x")
    racing = PageVersion(page_id=HOME, version=1, action="publish", draft_version=2, published_at="2026-01-01T00:00:00Z", published_by="x")
    # When the transaction runs with a stale draft version, or for a version number already taken
    with pytest.raises(Conflict):
        PagesRepo().make_live(world.app_id, stale, draft.page, draft_version=1)
    with pytest.raises(Conflict):
        PagesRepo().make_live(world.app_id, racing, draft.page, draft_version=2)
    # Then no version, no live copy and no draft changed: the publish is all or nothing
    assert sorted(json.dumps(i, sort_keys=True) for i in table_items(world.client)) == before


def test_versions_are_listed_newest_first_and_rollback_makes_an_old_one_live(world: World) -> None:
    token = member_token(world.api, world.tenant, "o-1")
    # Given versions 1, 2 and 3 published from three drafts
    for n, title in enumerate(("One", "Two", "Three"), start=1):
        save_draft(world, page_body(title), version=n - 1 or None)
        publish(world)
    # Then the history is newest first, the newest live, with a cursor for the next page
    first_page = versions(world, "?limit=2")
    assert [(v["version"], v["live"], v["published_by"]) for v in first_page["items"]] == [(3, True, "owner"), (2, False, "owner")]
    rest = versions(world, f"?limit=2&cursor={first_page['cursor']}")
    assert [v["version"] for v in rest["items"]] == [1] and rest["cursor"] is None
    # When the owner rolls back to version 1
    rolled = call(world.api, "POST", f"{world.page()}/rollback", {"version": 1}, bearer(world.owner))
    # Then version 4 records the rollback and members see version 1's page
    assert rolled.status_code == 200, rolled.json_body
    assert {k: rolled.json_body[k] for k in ("version", "action", "source_version", "live")} == {
        "version": 4,
        "action": "rollback",
        "source_version": 1,
        "live": True,
    }
    shown = member_page(world, token).json_body
    assert (shown["title"], shown["version"]) == ("One", 4)
    assert [(v["version"], v["action"], v["live"]) for v in versions(world)["items"]] == [
        (4, "rollback", True),
        (3, "publish", False),
        (2, "publish", False),
        (1, "publish", False),
    ]
    # And the draft is left alone
    assert call(world.api, "GET", f"{world.page()}/draft", headers=bearer(world.owner)).json_body["page"]["title"] == "Three"
    # And one version can be read with its page
    one = call(world.api, "GET", f"{world.page()}/versions/2", headers=bearer(world.owner))
    assert one.status_code == 200 and one.json_body["page"]["title"] == "Two" and one.json_body["live"] is False
    # And a repeated rollback changes nothing; unknown versions are 404
    again = call(world.api, "POST", f"{world.page()}/rollback", {"version": 1}, bearer(world.owner))
    assert again.json_body["version"] == 4
    assert_envelope(call(world.api, "POST", f"{world.page()}/rollback", {"version": 9}, bearer(world.owner)), 404, "NOT_FOUND")
    for bad in ("9", "x", "0", "1234567"):
        assert_envelope(call(world.api, "GET", f"{world.page()}/versions/{bad}", headers=bearer(world.owner)), 404, "NOT_FOUND")
    # And publishing the draft again makes version 5 (a rollback does not count as the draft being live)
    assert publish(world)["version"] == 5
    assert member_page(world, token).json_body["title"] == "Three"


def test_rollback_of_a_page_never_published_is_404(world: World) -> None:
    assert_envelope(call(world.api, "POST", f"{world.page()}/rollback", {"version": 1}, bearer(world.owner)), 404, "NOT_FOUND")


# --- who may do what -------------------------------------------------------------------------------


def test_another_tenants_operator_cannot_touch_the_app(world: World) -> None:
    # Given acme's page published and a listing, and the owner of tenant beta
    listing = listing_for(world.api, world.tenant, quantity=2)
    save_draft(world, page_body())
    publish(world)
    accounts.create_tenant("beta", "Beta", "owner", "owner-password-2")
    beta = bearer(operator_login(world.api, "beta", "owner", "owner-password-2"))
    base = world.page()
    promotion = f"/v1/admin/apps/{world.app_id}/listings/{listing['listing_id']}/promotion"
    before = sorted(json.dumps(i, sort_keys=True) for i in table_items(world.client))
    # When beta's owner calls every page route of acme's app
    attempts = [
        ("GET", f"/v1/admin/apps/{world.app_id}/pages", None),
        ("PUT", f"{base}/draft", {"page": page_body("Hijacked")}),
        ("GET", f"{base}/draft", None),
        ("POST", f"{base}/preview", None),
        ("POST", f"{base}/publish", {}),
        ("GET", f"{base}/versions", None),
        ("GET", f"{base}/versions/1", None),
        ("POST", f"{base}/rollback", {"version": 1}),
        ("GET", promotion, None),
    ]
    # Then each is 404 (the app's existence is not revealed) and nothing changed
    for method, path, body in attempts:
        assert_envelope(call(world.api, method, path, body, beta), 404, "NOT_FOUND")
    png = call(world.api, "GET", f"{promotion}.png", headers=beta | {"accept": "image/png"})
    assert_envelope(png, 404, "NOT_FOUND")
    assert sorted(json.dumps(i, sort_keys=True) for i in table_items(world.client)) == before


def test_a_viewer_reads_and_previews_but_cannot_change_pages(world: World) -> None:
    created = call(
        world.api,
        "POST",
        "/v1/admin/operators",
        {"username": "vera", "password": "viewer-password-1", "role": "viewer"},
        bearer(world.owner),
    )
    assert created.status_code == 201, created.json_body
    viewer = bearer(operator_login(world.api, "acme", "vera", "viewer-password-1"))
    save_draft(world, page_body())
    publish(world)
    base = world.page()
    for path in (f"{base}/draft", f"{base}/versions", f"{base}/versions/1", f"/v1/admin/apps/{world.app_id}/pages"):
        assert call(world.api, "GET", path, headers=viewer).status_code == 200, path
    assert call(world.api, "POST", f"{base}/preview", None, viewer).status_code == 201
    for method, path, body in (
        ("PUT", f"{base}/draft", {"page": page_body(), "expected_version": 1}),
        ("POST", f"{base}/publish", {}),
        ("POST", f"{base}/rollback", {"version": 1}),
    ):
        assert_envelope(call(world.api, method, path, body, viewer), 403, "FORBIDDEN")
    assert_envelope(call(world.api, "GET", f"{base}/draft"), 401, "UNAUTHORIZED")


# --- promotion link + QR ---------------------------------------------------------------------------


def _png_pixels(png: bytes) -> tuple[int, int, list[list[int]]]:
    """Width, height and 1-bit greyscale pixels of a PNG (the filters segno writes: None and Up)."""
    assert png[:8] == PNG_MAGIC
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        assert zlib.crc32(kind + data) == struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])[0]
        if kind == b"IHDR":
            header = data
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, colour, interlace) == (1, 0, 0)
    stride = (width + 7) // 8
    raw, rows, previous = zlib.decompress(idat), [], bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind, row = line[0], bytearray(line[1:])
        assert kind in (0, 2)
        if kind == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, previous, strict=True))
        rows.append([(row[x // 8] >> (7 - x % 8)) & 1 for x in range(width)])
        previous = row
    return width, height, rows


def _qr_modules(png: bytes, size: int, border: int) -> list[list[int]]:
    """The module matrix a scanner would read (1 = dark), sampled at each module's centre."""
    width, height, pixels = _png_pixels(png)
    assert width == height and width % (size + 2 * border) == 0
    scale = width // (size + 2 * border)
    return [[1 - pixels[(border + r) * scale + scale // 2][(border + c) * scale + scale // 2] for c in range(size)] for r in range(size)]


def test_a_listing_has_a_promotion_link_and_a_qr_code_that_encodes_it(world: World) -> None:
    import segno

    listing = listing_for(world.api, world.tenant, quantity=2)
    path = f"/v1/admin/apps/{world.app_id}/listings/{listing['listing_id']}/promotion"
    # When the owner asks for the listing's promotion
    response = call(world.api, "GET", path, headers=bearer(world.owner))
    # Then the link is the listing's in-app path
    assert response.status_code == 200, response.json_body
    body = response.json_body
    expected = f"/pages/mall/listing?listing_id={listing['listing_id']}&app_id={world.app_id}"
    assert (body["path"], body["link"], body["qr_png_path"]) == (expected, expected, path + ".png")
    # And the QR code is a PNG whose modules are exactly segno's encoding of that link
    png = base64.b64decode(body["qr_png_base64"])
    reference = segno.make_qr(expected, error="m")
    size = reference.symbol_size(scale=1, border=0)[0]
    assert _qr_modules(png, size, border=4) == [list(row) for row in reference.matrix]
    assert _qr_modules(png, size, border=4) != [list(row) for row in segno.make_qr(expected + "x", error="m").matrix]
    # And the .png route serves the same image as image/png
    image = call(world.api, "GET", path + ".png", headers=bearer(world.owner) | {"accept": "image/png"})
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
    assert image.body == png and image.body[:8] == PNG_MAGIC
    # And without an Accept header for it the answer is the error envelope, not a 500
    refused = call(world.api, "GET", path + ".png", headers=bearer(world.owner) | {"accept": "application/json"})
    assert refused.status_code == 400 and refused.json_body["error"]["request_id"] == refused.headers["X-Request-Id"]
    # And an unknown listing is 404 on both routes
    unknown = f"/v1/admin/apps/{world.app_id}/listings/no_such/promotion"
    assert_envelope(call(world.api, "GET", unknown, headers=bearer(world.owner)), 404, "NOT_FOUND")
    assert_envelope(call(world.api, "GET", unknown + ".png", headers=bearer(world.owner) | {"accept": "image/png"}), 404, "NOT_FOUND")


def test_with_an_h5_base_url_the_promotion_link_opens_in_a_browser(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import segno

    listing = listing_for(world.api, world.tenant, quantity=2)
    monkeypatch.setenv("JIFEN_MALL_LINK_BASE", "https://h5.acme.example/")
    get_settings.cache_clear()
    try:
        body = call(
            world.api, "GET", f"/v1/admin/apps/{world.app_id}/listings/{listing['listing_id']}/promotion", headers=bearer(world.owner)
        ).json_body
    finally:
        monkeypatch.delenv("JIFEN_MALL_LINK_BASE")
        get_settings.cache_clear()
    assert body["link"] == "https://h5.acme.example" + body["path"]
    reference = segno.make_qr(body["link"], error="m")
    assert _qr_modules(base64.b64decode(body["qr_png_base64"]), reference.symbol_size(scale=1, border=0)[0], 4) == [
        list(row) for row in reference.matrix
    ]


def test_the_qr_library_is_not_imported_with_the_app() -> None:
    import subprocess
    import sys

    # cold start: segno is imported by the promotion routes only
    code = "import sys, app; print('segno' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": os.getcwd()}
    )
    assert result.stdout.strip() == "False"
