"""Server-to-server routes (tenant backend → Jifen), HMAC-signed with the app's server key."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.api.http import Api, current_app_caller, ok
from chalicelib.auth import SERVER
from chalicelib.logic import members
from chalicelib.models.api import ProfileOut

server = Api(__name__, tag="server")


@server.endpoint(
    "/v1/server/members/{openid}",
    auth=SERVER,
    response=ProfileOut,
    summary="A member of the signing app, by openid",
    errors=(401, 404),
)
def get_member(openid: str) -> Response:
    caller = current_app_caller()
    profile = members.member_by_openid(caller.app, openid)
    return ok(ProfileOut(**profile.model_dump(include=set(ProfileOut.model_fields))))
