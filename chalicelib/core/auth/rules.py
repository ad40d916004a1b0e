"""Who is calling: every route declares an AuthRule and is authenticated before its view runs.

Tenant, app and member always come from the credential, never from the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from chalicelib.core import hooks
from chalicelib.core.auth import nonce as request_guard
from chalicelib.core.auth import signatures, tokens
from chalicelib.core.auth.signing_key import signing_key
from chalicelib.core.clock import Clock, epoch, time_now
from chalicelib.core.config import get_settings
from chalicelib.core.errors import Forbidden, NotFound, Unauthorized
from chalicelib.core.models import Role
from chalicelib.core.table.requests import RequestsRepo


class AppDirectory(Protocol):
    """What authentication needs to know of apps (tenancy provides it as the "apps" service)."""

    def get_cached(self, app_id: str) -> Any: ...

    def get_secrets_cached(self, app_id: str) -> Any: ...


def _apps() -> AppDirectory:
    directory: AppDirectory = hooks.provided("apps")()
    return directory


class AuthKind(Enum):
    PUBLIC = "public"
    MEMBER = "member"
    OPERATOR = "operator"
    VERIFIER = "verifier"
    SERVER = "server"
    WEBHOOK = "webhook"


@dataclass(frozen=True)
class AuthRule:
    kind: AuthKind
    roles: frozenset[Role] = frozenset()


PUBLIC = AuthRule(AuthKind.PUBLIC)
MEMBER = AuthRule(AuthKind.MEMBER)
VERIFIER = AuthRule(AuthKind.VERIFIER)
SERVER = AuthRule(AuthKind.SERVER)
WEBHOOK = AuthRule(AuthKind.WEBHOOK)


def operator(*roles: Role) -> AuthRule:
    """Operators with one of these roles (all roles when none are named)."""
    return AuthRule(AuthKind.OPERATOR, frozenset(roles or Role))


ANY_OPERATOR = operator()
OWNER = operator(Role.OWNER)
MANAGERS = operator(Role.OWNER, Role.OPERATOR)


@dataclass(frozen=True)
class MemberPrincipal:
    tenant_id: str
    app_id: str
    member_id: str
    openid: str
    device_id: str


@dataclass(frozen=True)
class OperatorPrincipal:
    tenant_id: str
    username: str
    role: Role


@dataclass(frozen=True)
class VerifierPrincipal:
    tenant_id: str
    store_id: str
    username: str


@dataclass(frozen=True)
class AppPrincipal:
    """A tenant backend (server-to-server) or a provider's webhook, acting for one app.

    For providers with their own format, verifying the signature yields the event (``event``), or
    ``ignored`` for a genuine callback that carries nothing to apply.
    """

    tenant_id: str
    app: Any  # the tenancy domain's App
    event: Any = None
    ignored: bool = False


Principal = MemberPrincipal | OperatorPrincipal | VerifierPrincipal | AppPrincipal | None


@dataclass(frozen=True)
class Credentials:
    """What authentication looks at, extracted from the HTTP request by the API layer."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    path_params: Mapping[str, str]


def _bearer(headers: Mapping[str, str]) -> str:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Missing bearer token")
    return token.strip()


def authenticate(
    rule: AuthRule,
    creds: Credentials,
    apps: AppDirectory | None = None,
    requests: RequestsRepo | None = None,
    clock: Clock | None = None,
) -> Principal:
    now = epoch(time_now(clock))
    if rule.kind is AuthKind.PUBLIC:
        return None
    if rule.kind is AuthKind.MEMBER:
        claims = tokens.verify(signing_key(), "member", _bearer(creds.headers), now)
        return MemberPrincipal(
            tenant_id=claims["ten"], app_id=claims["app"], member_id=claims["sub"], openid=claims["oid"], device_id=claims["dev"]
        )
    if rule.kind is AuthKind.OPERATOR:
        claims = tokens.verify(signing_key(), "operator", _bearer(creds.headers), now)
        principal = OperatorPrincipal(tenant_id=claims["ten"], username=claims["sub"], role=Role(claims["role"]))
        if principal.role not in rule.roles:
            raise Forbidden(f"Role '{principal.role.value}' may not do this")
        return principal
    if rule.kind is AuthKind.VERIFIER:
        claims = tokens.verify(signing_key(), "verifier", _bearer(creds.headers), now)
        return VerifierPrincipal(tenant_id=claims["ten"], store_id=claims["store"], username=claims["sub"])
    if rule.kind is AuthKind.SERVER:
        return _authenticate_server(creds, apps or _apps(), requests or RequestsRepo(), now)
    return _authenticate_webhook(creds, apps or _apps(), now)


def _authenticate_server(creds: Credentials, apps: AppDirectory, requests: RequestsRepo, now: int) -> AppPrincipal:
    headers = creds.headers
    app_id = headers.get("x-jifen-app") or ""
    timestamp = headers.get("x-jifen-timestamp") or ""
    nonce = headers.get("x-jifen-nonce") or ""
    signature = headers.get("x-jifen-signature") or ""
    if not (app_id and timestamp and nonce and signature):
        raise Unauthorized("Missing X-Jifen-App, X-Jifen-Timestamp, X-Jifen-Nonce or X-Jifen-Signature")
    secrets = apps.get_secrets_cached(app_id) if len(app_id) <= 64 else None
    app = apps.get_cached(app_id) if secrets else None
    if secrets is None or app is None:
        raise Unauthorized("Signature does not match")
    window = get_settings().signature_window_seconds
    signatures.verify_server_request(
        secrets.server_key.accepted(now), creds.method, creds.path, timestamp, nonce, signature, creds.body, now, window
    )
    # Only a correctly signed request spends a nonce, so nobody can burn a tenant's nonces. It is spent
    # with the request's own transaction (or right after the view): see dal/request_guard.py.
    request_guard.hold(request_guard.PendingNonce(app_id=app_id, nonce=nonce, expires_at=now + 2 * window))
    return AppPrincipal(tenant_id=app.tenant_id, app=app)


def spend_pending_nonce(requests: RequestsRepo | None = None) -> None:
    """After the view: a signed request that wrote nothing still spends its nonce; a replay is refused."""
    nonce = request_guard.pending()
    if nonce is None:
        return
    nonce.spent = True
    if not (requests or RequestsRepo()).use_nonce(nonce.app_id, nonce.nonce, expires_at=nonce.expires_at):
        raise Unauthorized("Nonce was already used")


PAYMENT_PROVIDERS = frozenset({"wechatpay", "douyin"})


def _authenticate_webhook(creds: Credentials, apps: AppDirectory, now: int) -> AppPrincipal:
    app_id = creds.path_params.get("app_id", "")
    provider = creds.path_params.get("provider", "")
    if provider in PAYMENT_PROVIDERS and creds.path.startswith("/v1/webhooks/payments/"):
        return _authenticate_provider(creds, apps, app_id, provider, now)
    if provider != "generic":
        raise NotFound(f"Unknown webhook provider '{provider[:32]}'")
    header = creds.headers.get("x-jifen-webhook-signature") or ""
    if not header:
        raise Unauthorized("Missing X-Jifen-Webhook-Signature")
    secrets = apps.get_secrets_cached(app_id) if len(app_id) <= 64 else None
    app = apps.get_cached(app_id) if secrets else None
    if secrets is None or app is None:
        raise Unauthorized("Webhook signature does not match")
    signatures.verify_webhook(secrets.webhook_secret.accepted(now), header, creds.body, now, get_settings().signature_window_seconds)
    return AppPrincipal(tenant_id=app.tenant_id, app=app)


def _authenticate_provider(creds: Credentials, apps: AppDirectory, app_id: str, provider: str, now: int) -> AppPrincipal:
    """WeChat Pay / Douyin: the provider's adapter verifies its signature before anything is parsed.

    The verifier is the "payment_webhooks" service (the tasks domain provides it: it knows the app's
    provider configuration and how to find who paid for an order).
    """
    app = apps.get_cached(app_id) if len(app_id) <= 64 else None
    if app is None:
        raise NotFound(f"Webhook provider '{provider}' is not configured for this app")
    verified = hooks.provided("payment_webhooks")(app, provider, creds.headers, creds.body, now, get_settings().signature_window_seconds)
    if verified is None:
        raise NotFound(f"Webhook provider '{provider}' is not configured for this app")
    event, ignored = verified
    return AppPrincipal(tenant_id=app.tenant_id, app=app, event=event, ignored=ignored)
