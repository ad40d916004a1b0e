"""Which app a request is about: from the credential, never from the body."""

from __future__ import annotations

from chalicelib.core.errors import NotFound
from chalicelib.core.http.api import current_member
from chalicelib.tenancy.models import App
from chalicelib.tenancy.store.apps import AppsRepo


def caller_app() -> App:
    app = AppsRepo().get_cached(current_member().app_id)
    if app is None:
        raise NotFound("App not found")
    return app
