"""Demo data for `make run`: a tenant, its owner, an app with one task of every template, three levels,
an expiry policy, a store with a verifier, a few members with points, and a mall with a published home page."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter

from chalicelib.core.ids import invite_code_for, member_id_for
from chalicelib.mall import allocations, listings, pages
from chalicelib.mall import goods as mall_goods
from chalicelib.mall.models.catalog import AllocationIn, GoodsIn, ListingIn, PeriodLimits
from chalicelib.mall.models.pages import PageLayout
from chalicelib.points import engine as points
from chalicelib.points import levels
from chalicelib.points.models import LevelLadder
from chalicelib.tasks import tasks
from chalicelib.tasks.models import TaskDefinition
from chalicelib.tenancy import accounts, apps
from chalicelib.tenancy.models import App, CreateAppRequest, CreateStoreRequest, CreateVerifierRequest, ExpiryPolicy
from chalicelib.tenancy.store.members import MembersRepo

DEMO_TENANT = "demo"
DEMO_APP = "app_demo"
DEMO_MEMBERS = ("alice", "bob", "carol")


def demo_tasks(now: datetime) -> list[dict[str, object]]:
    soon, later = now - timedelta(days=1), now + timedelta(days=30)
    return [
        {
            "template": "daily_checkin",
            "title": "Daily check-in",
            "points": 10,
            "sort_weight": 100,
            "bonuses": [{"streak": 3, "points": 10}, {"streak": 7, "points": 30}],
        },
        {
            "template": "consumption",
            "title": "Shop and earn",
            "step_fen": 100,
            "points_per_step": 1,
            "per_order_cap": 99,
            "completions_per_cycle": 20,
        },
        {"template": "upload_receipt", "title": "Upload a receipt", "points": 50, "review_timeout_seconds": 86400},
        {"template": "join_draw", "title": "Join the lucky draw", "points": 5, "activity_id": "act_demo"},
        {"template": "mall_exchange", "title": "Exchange anything in the mall", "points": 5},
        {"template": "browse_page", "title": "Browse the new arrivals", "points": 5, "url": "https://example.com/new", "min_seconds": 15},
        {"template": "watch_ad", "title": "Watch an ad", "points": 3, "completions_per_cycle": 5},
        {"template": "birthday", "title": "Birthday gift", "points": 100},
        {"template": "festival", "title": "Festival bonus", "points": 20, "starts_at": soon.isoformat(), "ends_at": later.isoformat()},
        {
            "template": "add_friend",
            "title": "Add our assistant",
            "points": 5,
            "config_id": "wx_assistant",
            "cycle": {"unit": "once", "n": 1},
            "growth": 10,
        },
        {
            "template": "join_group",
            "title": "Join the fan group",
            "points": 5,
            "config_id": "fan_group",
            "cycle": {"unit": "once", "n": 1},
            "growth": 10,
        },
        {"template": "invite", "title": "Invite a friend", "points": 50, "growth": 20},
    ]


@dataclass
class Demo:
    tenant_id: str
    app_id: str
    login_secret: str
    server_key: str
    webhook_secret: str
    operator_username: str
    operator_password: str
    store_id: str
    verifier_username: str
    verifier_password: str
    member_openids: tuple[str, ...]


DEMO_GOODS: tuple[dict[str, object], ...] = (
    {"name": "Jifen mug", "category": "physical", "total": 200, "description": "Ceramic, 350 ml", "tags": ["kitchen"]},
    {"name": "Coffee voucher", "category": "coupon_link", "total": 500, "coupon_url": "https://coffee.example/redeem"},
    {"name": "5 yuan red packet", "category": "red_packet", "total": 100, "amount_fen": 500},
    {"name": "Tote bag", "category": "physical", "use": "ecommerce", "total": 50},
)
DEMO_PRICES: tuple[dict[str, object], ...] = (
    {"price_points": 800, "strike_points": 1000, "delivery_days": 3},
    {"price_points": 300},
    {"price_points": 600, "sale_starts_at": None},
    {"price_points": 0, "price_fen": 2990, "strike_fen": 3990, "delivery_days": 5},
)


def seed_mall(app: App) -> None:
    """Goods of several categories, allocated to the app (4 shards, 2 per member a day), listed, and a home page."""
    listing_ids = []
    for goods_fields, price in zip(DEMO_GOODS, DEMO_PRICES, strict=True):
        goods = mall_goods.create_goods(DEMO_TENANT, GoodsIn.model_validate(goods_fields))
        allocation = allocations.create_allocation(
            app,
            AllocationIn(goods_id=goods.goods_id, quantity=goods.total // 2, shards=4, member_limits=PeriodLimits(day=2)),
        )
        listing = listings.create_listing(app, ListingIn.model_validate({"allocation_id": allocation.allocation_id, **price}))
        listing_ids.append(listing.listing_id)
    layout = PageLayout.model_validate(
        {
            "title": "Points mall",
            "components": [
                {"type": "showcase", "title": "Featured", "listing_ids": listing_ids[:2]},
                {"type": "listing_grid", "title": "Everything", "columns": 2},
                {"type": "task_list", "title": "Earn more points", "limit": 5},
                {"type": "customer_service", "title": "Help", "phone": "400-000-0000", "hours": "09:00-21:00"},
            ],
        }
    )
    pages.save_draft(app, "home", layout, None, "seed")
    pages.publish(app, "home", "seed")


def seed() -> Demo:
    owner_password = secrets.token_urlsafe(12)
    accounts.create_tenant(DEMO_TENANT, "Demo Tenant", "owner", owner_password)
    created = apps.create_app(
        DEMO_TENANT,
        CreateAppRequest(
            name="Demo Mini-Program",
            points_rate=100,
            time_zone="Asia/Shanghai",
            expiry_policy=ExpiryPolicy(type="end_of_nth_year", n=1),
            daily_earn_cap=5000,
        ),
        app_id=DEMO_APP,
    )
    app = created.app
    definition: TypeAdapter[TaskDefinition] = TypeAdapter(TaskDefinition)
    for task in demo_tasks(datetime.now(UTC)):
        tasks.create_task(app, definition.validate_python(task, strict=False))
    ladder = LevelLadder.model_validate(
        {
            "levels": [
                {"level_id": "bronze", "name": "Bronze", "min_growth": 0},
                {"level_id": "silver", "name": "Silver", "min_growth": 100},
                {"level_id": "gold", "name": "Gold", "min_growth": 500},
            ]
        }
    )
    levels.put_ladder(app, ladder, 0)
    store = accounts.create_store(DEMO_TENANT, CreateStoreRequest(name="Demo Store", address="1 Demo Road"))
    verifier_password = secrets.token_urlsafe(12)
    accounts.create_verifier(DEMO_TENANT, store.store_id, CreateVerifierRequest(username="clerk", password=verifier_password))
    members = MembersRepo()
    for openid in DEMO_MEMBERS:
        member_id = member_id_for(DEMO_APP, openid)
        code = invite_code_for(member_id)
        members.record_login(DEMO_APP, member_id, openid, app.created_at, "demo-device", openid.title(), None, code)
        members.put_invite_code(DEMO_APP, code, member_id)
        points.grant(app, openid, 2000, f"demo-welcome-{openid}", "Welcome to the demo")
    seed_mall(app)
    return Demo(
        tenant_id=DEMO_TENANT,
        app_id=DEMO_APP,
        login_secret=created.secrets.login_secret.current,
        server_key=created.secrets.server_key.current,
        webhook_secret=created.secrets.webhook_secret.current,
        operator_username="owner",
        operator_password=owner_password,
        store_id=store.store_id,
        verifier_username="clerk",
        verifier_password=verifier_password,
        member_openids=DEMO_MEMBERS,
    )
