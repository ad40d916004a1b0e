"""Server-to-server tasks routes, HMAC-signed: growth for a completed member task (M2)."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.core.auth.rules import SERVER
from chalicelib.core.http.api import Api, current_app_caller, ok, parse_body
from chalicelib.points import levels
from chalicelib.points.models import (
    GrowthRequest,
    GrowthResult,
    LevelOut,
)
from chalicelib.tasks import growth as member_growth

server = Api(__name__, tag="server")


@server.endpoint(
    "/v1/server/growth",
    metric="GrowthAdded",
    methods=("POST",),
    auth=SERVER,
    body=GrowthRequest,
    response=GrowthResult,
    summary="Add a member task's growth value once per reference; the level follows",
    errors=(404, 409),
)
def add_growth() -> Response:
    body = parse_body(GrowthRequest)
    app = current_app_caller().app
    outcome, growth = member_growth.add_growth(app, body.openid, body.task_id, body.reference)
    level = levels.level_for(levels.cached_ladder(app), growth)
    return ok(
        GrowthResult(
            applied=outcome.applied, balance=outcome.balance, growth=growth, level=LevelOut(**level.model_dump()) if level else None
        )
    )
