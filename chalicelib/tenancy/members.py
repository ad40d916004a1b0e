"""Member login (tenant-signed JWT or login callback) and the member's own view of themselves."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.core import effects
from chalicelib.core.auth import tokens
from chalicelib.core.clock import Clock, epoch, iso, time_now
from chalicelib.core.config import get_settings
from chalicelib.core.errors import NotFound, Unauthorized, ValidationFailed
from chalicelib.core.hooks import MemberLoggedIn
from chalicelib.core.ids import invite_code_for, member_id_for
from chalicelib.tenancy.login_callback import FakeLoginCallback, HttpLoginCallback, LoginCallback
from chalicelib.tenancy.models import App, LoginMode, Member, MemberLoginRequest
from chalicelib.tenancy.store.apps import AppsRepo
from chalicelib.tenancy.store.members import MembersRepo


@dataclass(frozen=True)
class MemberSession:
    token: str
    expires_in: int
    member: Member
    created: bool


def default_login_callback() -> LoginCallback:
    settings = get_settings()
    if settings.login_callback_adapter == "fake":
        return FakeLoginCallback()
    return HttpLoginCallback(timeout=settings.login_callback_timeout_seconds)


def login(
    body: MemberLoginRequest,
    key: str,
    apps: AppsRepo | None = None,
    members: MembersRepo | None = None,
    callback: LoginCallback | None = None,
    clock: Clock | None = None,
) -> MemberSession:
    apps = apps or AppsRepo()
    now = time_now(clock)
    app = apps.get_cached(body.app_id)
    secrets = apps.get_secrets_cached(body.app_id) if app else None
    if app is None or secrets is None:
        raise Unauthorized("Unknown app or wrong credentials")
    nickname = birthday = invite_code = None
    if app.login_mode == LoginMode.JWT:
        if body.login_token is None:
            raise ValidationFailed("This app logs members in with login_token", details=[{"field": "login_token", "problem": "required"}])
        claims = tokens.verify_login_token(secrets.login_secret.accepted(epoch(now)), body.login_token, epoch(now))
        openid, nickname, birthday, invite_code = claims.sub, claims.nickname, claims.birthday, claims.invite_code
    else:
        if body.code is None or app.login_callback_url is None:
            raise ValidationFailed("This app logs members in with code", details=[{"field": "code", "problem": "required"}])
        openid = (callback or default_login_callback()).resolve(app.login_callback_url, app.app_id, body.code, secrets.server_key.current)
    members = members or MembersRepo()
    member_id = member_id_for(app.app_id, openid)
    code = invite_code_for(member_id)
    member, created = members.record_login(app.app_id, member_id, openid, iso(now), body.device_id, nickname, birthday, code)
    if created and not members.put_invite_code(app.app_id, code, member_id):
        # two members' short codes collided (40 bits): this one gets a longer code
        code = invite_code_for(member_id, length=16)
        members.put_invite_code(app.app_id, code, member_id)
        members.set_invite_code(app.app_id, member_id, code)
    inviter_id = members.member_for_invite_code(app.app_id, invite_code) if created and invite_code else None
    # post-commit: the login stands whatever a subscriber does (a failed credit is retried by the retry_effects job)
    effects.emit_after_commit(MemberLoggedIn(app, member_id, created, invite_code if created else None, inviter_id, birthday, clock))
    ttl = get_settings().member_token_ttl_seconds
    claims_out = {"sub": member.member_id, "ten": app.tenant_id, "app": app.app_id, "oid": openid, "dev": body.device_id}
    token = tokens.issue(key, "member", claims_out, epoch(now), ttl)
    return MemberSession(token=token, expires_in=ttl, member=member, created=created)


def profile(app_id: str, member_id: str, members: MembersRepo | None = None) -> Member:
    member = (members or MembersRepo()).get(app_id, member_id)
    if member is None:
        raise NotFound("Member not found")
    return member


def member_by_openid(app: App, openid: str, members: MembersRepo | None = None) -> Member:
    return profile(app.app_id, member_id_for(app.app_id, openid), members)
