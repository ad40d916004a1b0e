"""Apps of a tenant and their secrets (a separate item, never part of an app read)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError

from chalicelib.core.errors import AlreadyExists, Conflict
from chalicelib.core.models import Page
from chalicelib.core.table import keys
from chalicelib.core.table.cache import config_cache
from chalicelib.core.table.cursors import decode_cursor, encode_cursor
from chalicelib.core.table.dynamo import condition_failed, transaction
from chalicelib.tenancy.models import App, AppSecrets, ExpiryPolicy, LoginMode, Secret
from chalicelib.tenancy.store.items import AppItem, AppSecretsItem, ExpiryPolicyAttribute, SecretAttribute


def _app(item: AppItem) -> App:
    policy = item.expiry_policy
    return App(
        app_id=item.app_id,
        tenant_id=item.tenant_id,
        name=item.name,
        points_rate=int(item.points_rate),
        time_zone=item.time_zone,
        expiry_policy=ExpiryPolicy(type=policy.type, n=None if policy.n is None else int(policy.n)),  # type: ignore[arg-type]
        daily_earn_cap=None if item.daily_earn_cap is None else int(item.daily_earn_cap),
        login_mode=LoginMode(item.login_mode),
        login_callback_url=item.login_callback_url,
        reminder_webhook_url=item.reminder_webhook_url,
        created_at=item.created_at,
        updated_at=item.updated_at,
        version=int(item.version),
    )


def _secret(attr: SecretAttribute) -> Secret:
    return Secret(
        current=attr.current,
        previous=attr.previous,
        previous_until=None if attr.previous_until is None else int(attr.previous_until),
        rotated_at=attr.rotated_at,
    )


def _secret_attr(secret: Secret) -> SecretAttribute:
    return SecretAttribute(
        current=secret.current,
        previous=secret.previous,
        previous_until=secret.previous_until,
        rotated_at=secret.rotated_at,
    )


def _app_item(app: App) -> AppItem:
    return AppItem(
        PK=keys.app_pk(app.app_id),
        SK=keys.APP_SK,
        GSI1PK=keys.tenant_apps_gsi(app.tenant_id),
        GSI1SK=keys.app_pk(app.app_id),
        kind="app",
        app_id=app.app_id,
        tenant_id=app.tenant_id,
        name=app.name,
        points_rate=app.points_rate,
        time_zone=app.time_zone,
        expiry_policy=ExpiryPolicyAttribute(type=app.expiry_policy.type, n=app.expiry_policy.n),
        daily_earn_cap=app.daily_earn_cap,
        login_mode=app.login_mode.value,
        login_callback_url=app.login_callback_url,
        reminder_webhook_url=app.reminder_webhook_url,
        created_at=app.created_at,
        updated_at=app.updated_at,
        version=app.version,
    )


class AppsRepo:
    def create(self, app: App, secrets: AppSecrets) -> None:
        secrets_item = AppSecretsItem(
            PK=keys.app_pk(app.app_id),
            SK=keys.APP_SECRETS_SK,
            kind="app_secrets",
            tenant_id=app.tenant_id,
            login_secret=_secret_attr(secrets.login_secret),
            server_key=_secret_attr(secrets.server_key),
            webhook_secret=_secret_attr(secrets.webhook_secret),
        )
        try:
            with transaction() as tx:
                tx.save(_app_item(app), condition=AppItem.PK.does_not_exist())
                tx.save(secrets_item, condition=AppSecretsItem.PK.does_not_exist())
        except TransactWriteError as exc:
            raise AlreadyExists(f"App {app.app_id} already exists") from exc

    def get(self, app_id: str) -> App | None:
        try:
            return _app(AppItem.get(keys.app_pk(app_id), keys.APP_SK))
        except AppItem.DoesNotExist:
            return None

    def get_cached(self, app_id: str) -> App | None:
        result: App | None = config_cache().get(("app", app_id), lambda: self.get(app_id))
        return result

    def get_secrets(self, app_id: str) -> AppSecrets | None:
        try:
            item = AppSecretsItem.get(keys.app_pk(app_id), keys.APP_SECRETS_SK)
        except AppSecretsItem.DoesNotExist:
            return None
        return AppSecrets(
            app_id=app_id,
            tenant_id=item.tenant_id,
            login_secret=_secret(item.login_secret),
            server_key=_secret(item.server_key),
            webhook_secret=_secret(item.webhook_secret),
        )

    def get_secrets_cached(self, app_id: str) -> AppSecrets | None:
        result: AppSecrets | None = config_cache().get(("secrets", app_id), lambda: self.get_secrets(app_id))
        return result

    def apps_of_tenant(self, tenant_id: str, cursor: str | None, limit: int) -> Page[App]:
        gsi_pk = keys.tenant_apps_gsi(tenant_id)
        result = AppItem.gsi1.query(gsi_pk, limit=limit, last_evaluated_key=decode_cursor(cursor, expect={"GSI1PK": gsi_pk}))
        items = [_app(item) for item in result]  # type: ignore[arg-type]
        return Page[App](items=items, cursor=encode_cursor(result.last_evaluated_key))

    def update(self, app_id: str, tenant_id: str, changes: dict[str, Any], updated_at: str, expected_version: int) -> App:
        """Optimistic update: fails with Conflict when someone else changed the app in between."""
        actions: list[Any] = []
        for name, value in changes.items():
            attribute = getattr(AppItem, name)
            if value is None:
                actions.append(attribute.remove())
            elif name == "expiry_policy":
                actions.append(attribute.set(ExpiryPolicyAttribute(**value)))
            else:
                actions.append(attribute.set(value))
        actions += [AppItem.updated_at.set(updated_at), AppItem.version.add(1)]
        item = AppItem(PK=keys.app_pk(app_id), SK=keys.APP_SK)
        try:
            item.update(
                actions=actions,
                condition=(AppItem.version == expected_version) & (AppItem.tenant_id == tenant_id),
            )
        except UpdateError as exc:
            if condition_failed(exc):
                raise Conflict("The app was changed by someone else; read it again and retry") from exc
            raise
        config_cache().forget(("app", app_id))
        return _app(item)

    def replace_secrets(self, app_id: str, secrets: Mapping[str, Secret], expected: Mapping[str, str]) -> None:
        """Swap secrets only if their current values are still what the caller rotated from."""
        actions = [getattr(AppSecretsItem, name).set(_secret_attr(secret)) for name, secret in secrets.items()]
        condition = None
        for name, current in expected.items():
            clause = getattr(AppSecretsItem, name).current == current
            condition = clause if condition is None else condition & clause
        try:
            AppSecretsItem(PK=keys.app_pk(app_id), SK=keys.APP_SECRETS_SK).update(actions=actions, condition=condition)
        except UpdateError as exc:
            if condition_failed(exc):
                raise Conflict("The secrets were rotated at the same time; retry") from exc
            raise
        config_cache().forget(("secrets", app_id))
