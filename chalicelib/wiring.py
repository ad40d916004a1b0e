"""The composition root for hooks: imports every domain's subscriptions once.

Core names this module only by string (``core.hooks``), so core imports no domain; app.py imports it so
a Lambda container is wired before its first request.
"""

from __future__ import annotations

from chalicelib.mall import subscriptions as mall_subscriptions
from chalicelib.tasks import subscriptions as tasks_subscriptions
from chalicelib.tenancy import subscriptions as tenancy_subscriptions

WIRED = (tenancy_subscriptions, tasks_subscriptions, mall_subscriptions)
