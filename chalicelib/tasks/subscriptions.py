"""What tasks do when other domains' events happen (invites and birthdays on login, "exchange in the mall"),
and the payment-webhook verifier it provides to authentication.

These events are emitted after their action committed (``core.effects.emit_after_commit``): each subscriber here is
one post-commit effect, retried on its own by the ``retry_effects`` job if it fails, and idempotent — an invite
is credited once per invitee, a birthday once per member and year, an exchange once per order."""

from __future__ import annotations

from chalicelib.core import hooks
from chalicelib.core.hooks import MallExchanged, MemberLoggedIn
from chalicelib.tasks import tasks
from chalicelib.tasks.webhook_auth import verify_payment_webhook


@hooks.subscribe(MemberLoggedIn)
def member_invited(event: MemberLoggedIn) -> None:
    if event.created and event.invite_code:
        tasks.on_invited(event.app, event.member_id, event.invite_code, event.inviter_id, clock=event.clock)


@hooks.subscribe(MemberLoggedIn)
def member_birthday(event: MemberLoggedIn) -> None:
    if event.birthday:
        tasks.birthday_bonus(event.app, event.member_id, event.birthday, clock=event.clock)


@hooks.subscribe(MallExchanged)
def mall_exchanged(event: MallExchanged) -> None:
    tasks.on_mall_exchanged(event.app, event.member_id, event.listing_id, event.order_id, clock=event.clock)


hooks.provide("payment_webhooks", verify_payment_webhook)
