"""Demo data for `make run`: a tenant, its owner, an app, a store with a verifier, a few members."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from chalicelib.dal.members import MembersRepo
from chalicelib.logic import accounts, apps
from chalicelib.logic.ids import member_id_for
from chalicelib.models.api import CreateAppRequest, CreateStoreRequest, CreateVerifierRequest
from chalicelib.models.domain import ExpiryPolicy

DEMO_TENANT = "demo"
DEMO_APP = "app_demo"
DEMO_MEMBERS = ("alice", "bob", "carol")


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
    store = accounts.create_store(DEMO_TENANT, CreateStoreRequest(name="Demo Store", address="1 Demo Road"))
    verifier_password = secrets.token_urlsafe(12)
    accounts.create_verifier(DEMO_TENANT, store.store_id, CreateVerifierRequest(username="clerk", password=verifier_password))
    members = MembersRepo()
    for openid in DEMO_MEMBERS:
        members.record_login(DEMO_APP, member_id_for(DEMO_APP, openid), openid, created.app.created_at, "demo-device", openid.title(), None)
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
