"""The payments API's bodies: the providers an app has configured."""

from __future__ import annotations

from typing import Any

from chalicelib.core.models import Model


class ProviderList(Model):
    items: list[dict[str, Any]]
