"""What tenancy provides to core: the app directory that authenticates signed server calls and webhooks."""

from __future__ import annotations

from chalicelib.core import hooks
from chalicelib.tenancy.store.apps import AppsRepo

hooks.provide("apps", AppsRepo)
