"""A tenant's apps: configuration and secrets."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from chalicelib.core.clock import Clock, epoch, iso, time_now
from chalicelib.core.config import get_settings
from chalicelib.core.errors import Conflict, Forbidden, NotFound
from chalicelib.core.ids import new_id, new_secret
from chalicelib.core.models import Page, Role, checked
from chalicelib.core.observability import log_event
from chalicelib.tenancy.models import (
    INTEGRATION_FIELDS,
    SECRET_NAMES,
    App,
    AppSecrets,
    CreateAppRequest,
    LoginMode,
    Secret,
    SecretName,
    UpdateAppRequest,
    secret_hint,
)
from chalicelib.tenancy.store.apps import AppsRepo


@dataclass(frozen=True)
class CreatedApp:
    app: App
    secrets: AppSecrets


@dataclass(frozen=True)
class RotatedSecrets:
    values: dict[str, str]
    previous_valid_until: int | None


def create_app(
    tenant_id: str, body: CreateAppRequest, repo: AppsRepo | None = None, clock: Clock | None = None, app_id: str | None = None
) -> CreatedApp:
    now = iso(time_now(clock))
    app = App(
        app_id=app_id or new_id("app"),
        tenant_id=tenant_id,
        name=body.name,
        points_rate=body.points_rate,
        time_zone=body.time_zone,
        expiry_policy=body.expiry_policy,
        daily_earn_cap=body.daily_earn_cap,
        login_mode=body.login_mode,
        login_callback_url=body.login_callback_url,
        reminder_webhook_url=body.reminder_webhook_url,
        created_at=now,
        updated_at=now,
    )
    secrets = AppSecrets(
        app_id=app.app_id,
        tenant_id=tenant_id,
        **{name: Secret(current=new_secret(), rotated_at=now) for name in SECRET_NAMES},
    )
    (repo or AppsRepo()).create(app, secrets)
    return CreatedApp(app=app, secrets=secrets)


def get_app(tenant_id: str, app_id: str, repo: AppsRepo | None = None) -> App:
    """An app of this tenant; another tenant's app is 'not found' (its existence is not revealed)."""
    app = (repo or AppsRepo()).get(app_id)
    if app is None or app.tenant_id != tenant_id:
        raise NotFound("App not found")
    return app


def secret_hints(tenant_id: str, app_id: str, repo: AppsRepo | None = None) -> dict[str, str]:
    secrets = (repo or AppsRepo()).get_secrets(app_id)
    if secrets is None or secrets.tenant_id != tenant_id:
        raise NotFound("App not found")
    return hints_of(secrets)


def hints_of(secrets: AppSecrets) -> dict[str, str]:
    """What an operator sees of an app's secrets after creation: their last 4 characters."""
    return {name: secret_hint(secrets.get(name).current) for name in SECRET_NAMES}


def list_apps(tenant_id: str, cursor: str | None, limit: int = 50, repo: AppsRepo | None = None) -> Page[App]:
    return (repo or AppsRepo()).apps_of_tenant(tenant_id, cursor, limit)


def update_app(
    tenant_id: str,
    app_id: str,
    body: UpdateAppRequest,
    repo: AppsRepo | None = None,
    clock: Clock | None = None,
    *,
    by: str = "",
    role: Role = Role.OWNER,
) -> App:
    """Only the fields sent change (JSON merge patch); the resulting app is validated as its reader reads it, before it is written.

    Where the app sends its members' logins and reminders (login_callback_url, reminder_webhook_url) only the
    owner may change: whoever controls the login callback mints member sessions. Every such change is audited.
    """
    repo = repo or AppsRepo()
    current = get_app(tenant_id, app_id, repo)
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    if "login_mode" in changes and changes["login_mode"] != current.login_mode:
        raise Conflict("An app's login mode is fixed once chosen")
    changes.pop("login_mode", None)
    moved = [name for name in INTEGRATION_FIELDS if name in changes and changes[name] != getattr(current, name)]
    if moved and role != Role.OWNER:
        raise Forbidden(f"Only the tenant's owner may change {' and '.join(moved)}")
    if current.login_mode == LoginMode.CALLBACK and "login_callback_url" in changes and not changes["login_callback_url"]:
        raise Conflict("A callback-mode app needs its login_callback_url")
    updated_at = iso(time_now(clock))
    checked(App, {**current.model_dump(), **changes, "updated_at": updated_at, "version": current.version + 1}, "app")
    if "expiry_policy" in changes:
        changes["expiry_policy"] = {"type": body.expiry_policy.type, "n": body.expiry_policy.n}
    updated = repo.update(app_id, tenant_id, changes, updated_at, expected_version=body.version)
    for name in moved:
        log_event(
            "app_integration_changed",
            audit=True,
            tenant_id=tenant_id,
            app_id=app_id,
            field=name,
            by=by,
            role=role.value,
            old_host=_host(getattr(current, name)),
            new_host=_host(getattr(updated, name)),
        )
    return updated


def _host(url: str | None) -> str | None:
    return urlsplit(url).hostname if url else None


def rotate_secrets(
    tenant_id: str, app_id: str, names: list[SecretName], repo: AppsRepo | None = None, clock: Clock | None = None
) -> RotatedSecrets:
    """New values, shown once; the old ones keep working for the grace period so tenants can roll over."""
    repo = repo or AppsRepo()
    current = repo.get_secrets(app_id)
    if current is None or current.tenant_id != tenant_id:
        raise NotFound("App not found")
    now = time_now(clock)
    grace = get_settings().secret_rotation_grace_seconds
    until = epoch(now) + grace if grace > 0 else None
    rotated: dict[str, Secret] = {
        name: Secret(current=new_secret(), previous=current.get(name).current, previous_until=until, rotated_at=iso(now)) for name in names
    }
    repo.replace_secrets(app_id, rotated, expected={name: current.get(name).current for name in names})
    return RotatedSecrets(values={name: secret.current for name, secret in rotated.items()}, previous_valid_until=until)
