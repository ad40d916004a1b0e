"""Which app a request is about: from the credential, never from the body (public to every domain's routes)."""

from __future__ import annotations

from chalicelib.core.errors import NotFound
from chalicelib.core.http.api import current_member, current_operator
from chalicelib.tenancy import apps
from chalicelib.tenancy.models import App
from chalicelib.tenancy.store.apps import AppsRepo


def caller_app() -> App:
    """The calling member's app."""
    app = AppsRepo().get_cached(current_member().app_id)
    if app is None:
        raise NotFound("App not found")
    return app


def operator_app(app_id: str) -> App:
    """An app of the calling operator's tenant (404 for another tenant's app: no BOLA)."""
    return apps.get_app(current_operator().tenant_id, app_id)
