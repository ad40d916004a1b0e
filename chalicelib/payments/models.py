"""Request and response bodies of the HTTP API. Strict: unknown fields and wrong types are refused."""

from __future__ import annotations

from typing import Any

from chalicelib.core.models import Model


class ProviderList(Model):
    items: list[dict[str, Any]]
