"""The tenancy domain's public face: which app (and member) a call is about, for every other domain.

Apps and members come from the credential, never from the body: a member's app from the member token,
an operator's app only within the operator's tenant (404 otherwise: no BOLA), a signed caller's app
from its signature. Other domains use these functions and ``tenancy.models``, never tenancy's store.
"""

from __future__ import annotations

from chalicelib.core.errors import NotFound
from chalicelib.core.http.api import current_member, current_operator
from chalicelib.tenancy import apps, members
from chalicelib.tenancy.models import App, AppSecrets, Member
from chalicelib.tenancy.store.apps import AppsRepo


def app_by_id(app_id: str) -> App | None:
    """An app by id from the per-container config cache (None when there is none)."""
    return AppsRepo().get_cached(app_id) if app_id and len(app_id) <= 64 else None


def app_secrets(app_id: str) -> AppSecrets | None:
    """An app's secrets (to sign what Jifen sends the tenant), from the per-container cache."""
    return AppsRepo().get_secrets_cached(app_id) if app_id and len(app_id) <= 64 else None


def caller_app() -> App:
    """The calling member's app."""
    app = app_by_id(current_member().app_id)
    if app is None:
        raise NotFound("App not found")
    return app


def operator_app(app_id: str) -> App:
    """An app of the calling operator's tenant (404 for another tenant's app: no BOLA)."""
    return apps.get_app(current_operator().tenant_id, app_id)


def member_by_openid(app: App, openid: str) -> Member:
    """A member of ``app`` by openid (404 when there is none)."""
    return members.member_by_openid(app, openid)
