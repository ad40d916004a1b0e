"""Member routes: the member comes from the bearer token, never from the request."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.api.http import Api, current_member, ok
from chalicelib.auth import MEMBER
from chalicelib.logic import members
from chalicelib.models.api import ProfileOut

member = Api(__name__, tag="member")


@member.endpoint("/v1/me", auth=MEMBER, response=ProfileOut, summary="The member's profile", errors=(401, 404))
def get_me() -> Response:
    caller = current_member()
    profile = members.profile(caller.app_id, caller.member_id)
    return ok(ProfileOut(**profile.model_dump(include=set(ProfileOut.model_fields))))
