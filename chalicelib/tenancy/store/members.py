"""Members: one profile item per (app, member) in the member's own partition."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError

from chalicelib.core.table import keys
from chalicelib.core.table.dynamo import condition_failed
from chalicelib.core.table.items import IndexItem, MemberItem
from chalicelib.tenancy.models import Member


def _member(item: MemberItem) -> Member:
    return Member(
        app_id=item.app_id,
        member_id=item.member_id,
        openid=item.openid,
        nickname=item.nickname,
        birthday=item.birthday,
        device_id=item.device_id,
        created_at=item.created_at,
        last_login_at=item.last_login_at,
        logins=int(item.logins or 0),
    )


class MembersRepo:
    def record_login(
        self,
        app_id: str,
        member_id: str,
        openid: str,
        at: str,
        device_id: str | None,
        nickname: str | None,
        birthday: str | None,
        invite_code: str | None = None,
    ) -> tuple[Member, bool]:
        """Create the member on first login or refresh it: one UpdateItem, no read first.

        Returns the member and whether this login created it.
        """
        item = MemberItem(PK=keys.member_pk(app_id, member_id), SK=keys.PROFILE_SK)
        actions: list[Any] = [
            MemberItem.kind.set("member"),
            MemberItem.app_id.set(app_id),
            MemberItem.member_id.set(member_id),
            MemberItem.openid.set(openid),
            MemberItem.created_at.set(MemberItem.created_at | at),
            MemberItem.last_login_at.set(at),
            MemberItem.logins.add(1),
        ]
        if device_id is not None:
            actions.append(MemberItem.device_id.set(device_id))
        if nickname is not None:
            actions.append(MemberItem.nickname.set(nickname))
        if birthday is not None:
            actions.append(MemberItem.birthday.set(birthday))
        if invite_code is not None:
            actions.append(MemberItem.invite_code.set(MemberItem.invite_code | invite_code))
        item.update(actions=actions)  # type: ignore[arg-type]
        return _member(item), int(item.logins) == 1

    def get(self, app_id: str, member_id: str) -> Member | None:
        try:
            return _member(MemberItem.get(keys.member_pk(app_id, member_id), keys.PROFILE_SK))
        except MemberItem.DoesNotExist:
            return None

    def put_invite_code(self, app_id: str, code: str, member_id: str) -> bool:
        """The lookup from a member's invite code to the member; False if the code belongs to someone else."""
        try:
            IndexItem(PK=keys.invite_pk(app_id, code), SK=keys.INDEX_SK, kind="invite", target=member_id).save(
                condition=IndexItem.PK.does_not_exist() | (IndexItem.target == member_id)
            )
        except PutError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def set_invite_code(self, app_id: str, member_id: str, code: str) -> None:
        MemberItem(PK=keys.member_pk(app_id, member_id), SK=keys.PROFILE_SK).update(actions=[MemberItem.invite_code.set(code)])

    def member_for_invite_code(self, app_id: str, code: str) -> str | None:
        try:
            return IndexItem.get(keys.invite_pk(app_id, code), keys.INDEX_SK).target
        except IndexItem.DoesNotExist:
            return None
