"""The composition root for hooks: imports every domain's subscriptions once.

Core names this module only by string (``core.hooks``), so core imports no domain; app.py imports it so
a Lambda container is wired before its first request.
"""

from __future__ import annotations

from chalicelib.core import hooks
from chalicelib.core.effects import APPS
from chalicelib.mall import subscriptions as mall_subscriptions
from chalicelib.tasks import subscriptions as tasks_subscriptions
from chalicelib.tenancy import subscriptions as tenancy_subscriptions
from chalicelib.tenancy.access import app_by_id

WIRED = (tenancy_subscriptions, tasks_subscriptions, mall_subscriptions)

# the retry job of post-commit effects (core.effects) finds each recorded event's app by its id
hooks.provide(APPS, app_by_id)
