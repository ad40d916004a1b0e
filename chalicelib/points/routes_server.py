"""Server-to-server points routes (tenant backend → Jifen), HMAC-signed: members, grants, deductions,
transfers, outbox.
"""

from __future__ import annotations

from chalice.app import Response

from chalicelib.core.auth.rules import SERVER
from chalicelib.core.errors import NotFound
from chalicelib.core.http.api import Api, current_app_caller, ok, parse_body, query, query_day, query_int
from chalicelib.points import engine as points
from chalicelib.points import expiry_jobs
from chalicelib.points.engine import Outcome
from chalicelib.points.models import (
    LedgerEntryOut,
    OutboxEntry,
    OutboxPage,
    PointsRequest,
    PointsResult,
    ProfileOut,
    TransferRequest,
    TransferResult,
)
from chalicelib.tenancy.access import app_by_id, member_by_openid

server = Api(__name__, tag="server")


def _result(outcome: Outcome) -> PointsResult:
    entry = LedgerEntryOut(**outcome.entry.model_dump()) if outcome.entry else None
    return PointsResult(applied=outcome.applied, entry=entry, balance=outcome.balance)


@server.endpoint(
    "/v1/server/members/{openid}", auth=SERVER, response=ProfileOut, summary="A member of the signing app, by openid", errors=(404,)
)
def get_member(openid: str) -> Response:
    caller = current_app_caller()
    profile = member_by_openid(caller.app, openid)
    return ok(ProfileOut(**profile.model_dump(include=set(ProfileOut.model_fields))))


@server.endpoint(
    "/v1/server/points/grants",
    metric="PointsGranted",
    methods=("POST",),
    auth=SERVER,
    body=PointsRequest,
    response=PointsResult,
    summary="Credit points once per reference (caps apply); a repeated reference → applied false, same entry",
    errors=(404, 409),
)
def grant_points() -> Response:
    body = parse_body(PointsRequest)
    outcome = points.grant(current_app_caller().app, body.openid, body.points, body.reference, body.reason)
    return ok(_result(outcome))


@server.endpoint(
    "/v1/server/points/deductions",
    metric="PointsDeducted",
    methods=("POST",),
    auth=SERVER,
    body=PointsRequest,
    response=PointsResult,
    summary="Debit points once per reference; never below zero (409 INSUFFICIENT_POINTS)",
    errors=(404, 409),
)
def deduct_points() -> Response:
    body = parse_body(PointsRequest)
    outcome = points.deduct(current_app_caller().app, body.openid, body.points, body.reference, body.reason)
    return ok(_result(outcome))


@server.endpoint(
    "/v1/server/points/transfers",
    metric="PointsTransferred",
    methods=("POST",),
    auth=SERVER,
    body=TransferRequest,
    response=TransferResult,
    summary="Move points to another app of the tenant at the two apps' points rates (one transaction)",
    errors=(404, 409),
)
def transfer_points() -> Response:
    body = parse_body(TransferRequest)
    source = current_app_caller().app
    target = app_by_id(body.to_app_id)
    if target is None or target.tenant_id != source.tenant_id:
        raise NotFound("Target app not found")
    outcome = points.transfer(source, body.openid, target, body.to_openid, body.points, body.reference, body.reason)
    result = _result(outcome)
    return ok(TransferResult(**result.model_dump(), credited=outcome.extra.get("credited")))


@server.endpoint(
    "/v1/server/outbox",
    auth=SERVER,
    response=OutboxPage,
    query=("day", "cursor", "limit"),
    summary="Expiry reminders written on a day (app-local; today when absent), for the tenant to deliver",
)
def get_outbox() -> Response:
    day = query_day(default=expiry_jobs.app_today(current_app_caller().app))
    items, cursor = expiry_jobs.outbox(current_app_caller().app, day, query("cursor"), query_int("limit", 100, low=1, high=500))
    return ok(OutboxPage(day=day, items=[OutboxEntry.model_validate(item) for item in items], cursor=cursor))
