"""Payment providers an app has configured (WeChat Pay v3, Douyin): stored as app config, secrets masked on read."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.models import readable
from chalicelib.core.table.config import ConfigRepo
from chalicelib.payments.adapter import DouyinConfig, WechatPayConfig
from chalicelib.tenancy.models import App

ProviderConfig = WechatPayConfig | DouyinConfig
_config: TypeAdapter[ProviderConfig] = TypeAdapter(ProviderConfig)
SECRET_FIELDS = ("api_v3_key", "token")


def providers_repo() -> ConfigRepo:
    return ConfigRepo("provider")


def configure(app: App, config: ProviderConfig, repo: ConfigRepo | None = None, clock: Clock | None = None) -> int:
    """Create or replace the app's configuration of one provider."""
    repo = repo or providers_repo()
    current = repo.get(app.app_id, config.provider)
    now, document = iso(time_now(clock)), config.model_dump_json()
    readable(lambda: _config.validate_json(document), "provider configuration")  # written only if the reader accepts it
    return repo.put(app.app_id, config.provider, document, now, current.version if current else None)


def cached(app: App, provider: str) -> ProviderConfig | None:
    doc = next((d for d in providers_repo().all_cached(app.app_id) if d.config_id == provider), None)
    return _config.validate_json(doc.document) if doc else None


def masked(app: App, repo: ConfigRepo | None = None) -> list[dict[str, Any]]:
    """What an operator sees: everything but the secrets, which show their last 4 characters."""
    out = []
    for doc in (repo or providers_repo()).all(app.app_id):
        data = _config.validate_json(doc.document).model_dump()
        for name in SECRET_FIELDS:
            if data.get(name):
                data[name] = f"…{data[name][-4:]}"
        out.append({**data, "version": doc.version, "updated_at": doc.updated_at})
    return out
