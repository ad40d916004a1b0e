"""Member routes of points: my profile (balance, growth, level, what expires when) and my ledger."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.core.auth.rules import MEMBER
from chalicelib.core.http.api import Api, current_member, ok, query, query_int
from chalicelib.points import engine as points
from chalicelib.points import expiry, levels
from chalicelib.points.models import Expiring, LedgerEntryOut, LedgerPage, LevelOut, MeOut
from chalicelib.tenancy.access import caller_app

member = Api(__name__, tag="member")


@member.endpoint("/v1/me", auth=MEMBER, response=MeOut, summary="Profile: balance, growth, level, what expires when", errors=(404,))
def get_me() -> Response:
    app, caller = caller_app(), current_member()
    profile = points.profile(app, caller.member_id)
    ladder = levels.cached_ladder(app)
    level = levels.level_for(ladder, profile.growth)
    upcoming = next((lv for lv in ladder.levels if lv.min_growth > profile.growth), None)
    return ok(
        MeOut(
            member_id=profile.member_id,
            openid=profile.openid,
            app_id=app.app_id,
            nickname=profile.nickname,
            balance=profile.balance,
            earned_total=profile.earned_total,
            spent_total=profile.spent_total,
            expired_total=profile.expired_total,
            growth=profile.growth,
            level=LevelOut(**level.model_dump()) if level else None,
            next_level=LevelOut(**upcoming.model_dump()) if upcoming else None,
            expiring=[Expiring(date=day, points=n) for day, n in expiry.expiring(profile)],
            streak=profile.streak,
            checked_in_on=profile.checkin_day,
            invite_code=profile.invite_code,
            created_at=profile.created_at,
        )
    )


@member.endpoint("/v1/me/ledger", auth=MEMBER, response=LedgerPage, query=("cursor", "limit"), summary="Ledger, newest first")
def get_ledger() -> Response:
    caller = current_member()
    page = points.ledger(caller.app_id, caller.member_id, query("cursor"), query_int("limit", 20, low=1, high=100))
    return ok(LedgerPage(items=[LedgerEntryOut(**entry.model_dump()) for entry in page.items], cursor=page.cursor))
