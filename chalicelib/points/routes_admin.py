"""Operator routes of points: the level ladder and the expiry reminders outbox. Tenant from the operator token."""

from __future__ import annotations

from chalice.app import Response
from pydantic import ValidationError as PydanticValidationError

from chalicelib.core.auth.rules import ANY_OPERATOR, MANAGERS
from chalicelib.core.errors import ValidationFailed
from chalicelib.core.http.api import Api, ok, parse_body, pydantic_details, query, query_day, query_int
from chalicelib.points import expiry_jobs, levels
from chalicelib.points.models import LadderIn, LadderOut, Level, LevelLadder, LevelOut, OutboxEntry, OutboxPage
from chalicelib.tenancy.access import operator_app

admin = Api(__name__, tag="admin")
PAGE = ("cursor", "limit")


# --- levels (M1) -----------------------------------------------------------------------------------


def _ladder_out(ladder: LevelLadder, version: int) -> LadderOut:
    return LadderOut(levels=[LevelOut(**level.model_dump()) for level in ladder.levels], version=version)


@admin.endpoint("/v1/admin/apps/{app_id}/levels", auth=ANY_OPERATOR, response=LadderOut, summary="The level ladder", errors=(404,))
def get_levels(app_id: str) -> Response:
    app = operator_app(app_id)
    return ok(_ladder_out(*levels.get_ladder(app)))


@admin.endpoint(
    "/v1/admin/apps/{app_id}/levels",
    methods=("PUT",),
    auth=MANAGERS,
    body=LadderIn,
    response=LadderOut,
    summary="Replace the ladder (strictly increasing min_growth; optimistic version)",
    errors=(400, 404, 409),
)
def put_levels(app_id: str) -> Response:
    app = operator_app(app_id)
    body = parse_body(LadderIn)
    try:
        ladder = LevelLadder(levels=body.levels)
    except PydanticValidationError as exc:
        raise ValidationFailed("Invalid level ladder", details=pydantic_details(exc)) from None
    return ok(_ladder_out(ladder, levels.put_ladder(app, ladder, body.version)))


@admin.endpoint(
    "/v1/admin/apps/{app_id}/levels",
    methods=("POST",),
    auth=MANAGERS,
    body=Level,
    response=LadderOut,
    status=201,
    summary="Add one level",
    errors=(400, 404, 409),
)
def add_level(app_id: str) -> Response:
    app = operator_app(app_id)
    body = parse_body(Level)
    try:
        return ok(_ladder_out(*levels.add_level(app, body)), status=201)
    except PydanticValidationError as exc:
        raise ValidationFailed("Invalid level ladder", details=pydantic_details(exc)) from None


@admin.endpoint(
    "/v1/admin/apps/{app_id}/levels/{level_id}",
    methods=("DELETE",),
    auth=MANAGERS,
    response=LadderOut,
    summary="Remove a level",
    errors=(404, 409),
)
def delete_level(app_id: str, level_id: str) -> Response:
    app = operator_app(app_id)
    return ok(_ladder_out(*levels.remove_level(app, level_id)))


@admin.endpoint(
    "/v1/admin/apps/{app_id}/outbox",
    auth=ANY_OPERATOR,
    response=OutboxPage,
    query=("day", "cursor", "limit"),
    summary="Expiry reminders written on a day",
    errors=(404,),
)
def get_outbox(app_id: str) -> Response:
    app = operator_app(app_id)
    day = query_day(default=expiry_jobs.app_today(app))
    items, cursor = expiry_jobs.outbox(app, day, query("cursor"), query_int("limit", 100, low=1, high=500))
    return ok(OutboxPage(day=day, items=[OutboxEntry.model_validate(item) for item in items], cursor=cursor))
