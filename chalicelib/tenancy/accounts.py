"""Tenants, operators, stores and verifiers: bootstrap, creation, and login."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.core.auth import tokens
from chalicelib.core.auth.passwords import hash_password, verify_password
from chalicelib.core.clock import Clock, epoch, iso, time_now
from chalicelib.core.config import get_settings
from chalicelib.core.errors import NotFound, TooManyAttempts, Unauthorized
from chalicelib.core.ids import new_id
from chalicelib.core.models import Page, Role
from chalicelib.core.observability import logger
from chalicelib.tenancy.models import CreateOperatorRequest, CreateStoreRequest, CreateVerifierRequest, Operator, Store, Tenant, Verifier
from chalicelib.tenancy.store.accounts import AccountsRepo


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    tenant_id: str
    role: Role | None = None
    store_id: str | None = None


LOGIN_FAILURES_ALLOWED = 5  # failed password checks of one account per window; then 429 until the window ends
LOGIN_WINDOW_SECONDS = 15 * 60
LOGIN_COUNTER_GRACE_SECONDS = 3600  # the counter item outlives its window by this much, then TTL removes it


@dataclass(frozen=True)
class _LoginBrake:
    """Per-account brake on password guessing: each check is counted before it runs (a conditional ADD);
    a success takes its own count back, a failure keeps it. Unknown accounts are counted the same way."""

    repo: AccountsRepo
    kind: str
    scope_id: str
    username: str
    now: datetime

    @property
    def _index(self) -> int:
        return int(epoch(self.now)) // LOGIN_WINDOW_SECONDS

    @property
    def _ends(self) -> int:
        return (self._index + 1) * LOGIN_WINDOW_SECONDS

    def reserve(self) -> None:
        window, expires = f"w{self._index}", self._ends + LOGIN_COUNTER_GRACE_SECONDS
        if not self.repo.reserve_login_attempt(self.kind, self.scope_id, self.username, window, LOGIN_FAILURES_ALLOWED, expires):
            raise TooManyAttempts("Too many failed logins; try again later", retry_after=self._ends - int(epoch(self.now)))

    def release(self) -> None:
        try:
            self.repo.release_login_attempt(
                self.kind, self.scope_id, self.username, f"w{self._index}", self._ends + LOGIN_COUNTER_GRACE_SECONDS
            )
        except Exception:
            logger().warning("login attempt not released", extra={"kind": self.kind})


def _hash(password: str) -> str:
    return hash_password(password, n=get_settings().password_hash_n)


def create_tenant(
    tenant_id: str,
    name: str,
    owner_username: str,
    owner_password: str,
    repo: AccountsRepo | None = None,
    clock: Clock | None = None,
) -> Tenant:
    repo = repo or AccountsRepo()
    now = iso(time_now(clock))
    tenant = Tenant(tenant_id=tenant_id, name=name, created_at=now)
    owner = Operator(tenant_id=tenant_id, username=owner_username, role=Role.OWNER, created_at=now, password_hash=_hash(owner_password))
    repo.create_tenant_with_owner(tenant, owner)
    return tenant


def get_tenant(tenant_id: str, repo: AccountsRepo | None = None) -> Tenant:
    tenant = (repo or AccountsRepo()).get_tenant(tenant_id)
    if tenant is None:
        raise NotFound("Tenant not found")
    return tenant


def create_operator(tenant_id: str, body: CreateOperatorRequest, repo: AccountsRepo | None = None, clock: Clock | None = None) -> Operator:
    operator = Operator(
        tenant_id=tenant_id,
        username=body.username,
        role=body.role,
        created_at=iso(time_now(clock)),
        password_hash=_hash(body.password),
    )
    (repo or AccountsRepo()).create_operator(operator)
    return operator


def list_operators(tenant_id: str, cursor: str | None, limit: int = 50, repo: AccountsRepo | None = None) -> Page[Operator]:
    return (repo or AccountsRepo()).operators_of_tenant(tenant_id, cursor, limit)


def _password_passes(brake: _LoginBrake, password: str, password_hash: str | None, usable: bool) -> bool:
    """Count the attempt first (refused while braked: 429), then check the password; only a success takes its count back.

    An unknown account is checked against no hash and counted the same (no enumeration, same time).
    """
    brake.reserve()
    passed = verify_password(password, password_hash, n=get_settings().password_hash_n) and usable
    if passed:
        brake.release()
    return passed


def login_operator(
    tenant_id: str, username: str, password: str, key: str, repo: AccountsRepo | None = None, clock: Clock | None = None
) -> IssuedToken:
    settings = get_settings()
    repo = repo or AccountsRepo()
    operator = repo.get_operator(tenant_id, username)
    brake = _LoginBrake(repo, "operator", tenant_id, username, time_now(clock))
    usable = operator is not None and not operator.disabled
    if not _password_passes(brake, password, operator.password_hash if operator else None, usable) or operator is None:
        raise Unauthorized("Wrong tenant, username or password")
    ttl = settings.operator_token_ttl_seconds
    claims = {"sub": operator.username, "ten": tenant_id, "role": operator.role.value}
    token = tokens.issue(key, "operator", claims, epoch(time_now(clock)), ttl)
    return IssuedToken(token=token, expires_in=ttl, tenant_id=tenant_id, role=operator.role)


def create_store(tenant_id: str, body: CreateStoreRequest, repo: AccountsRepo | None = None, clock: Clock | None = None) -> Store:
    store = Store(
        store_id=new_id("st"),
        tenant_id=tenant_id,
        name=body.name,
        address=body.address,
        created_at=iso(time_now(clock)),
    )
    (repo or AccountsRepo()).create_store(store)
    return store


def get_store(tenant_id: str, store_id: str, repo: AccountsRepo | None = None) -> Store:
    store = (repo or AccountsRepo()).get_store(store_id)
    if store is None or store.tenant_id != tenant_id:
        raise NotFound("Store not found")
    return store


def list_stores(tenant_id: str, cursor: str | None, limit: int = 50, repo: AccountsRepo | None = None) -> Page[Store]:
    return (repo or AccountsRepo()).stores_of_tenant(tenant_id, cursor, limit)


def create_verifier(
    tenant_id: str, store_id: str, body: CreateVerifierRequest, repo: AccountsRepo | None = None, clock: Clock | None = None
) -> Verifier:
    repo = repo or AccountsRepo()
    get_store(tenant_id, store_id, repo)
    verifier = Verifier(
        store_id=store_id,
        tenant_id=tenant_id,
        username=body.username,
        created_at=iso(time_now(clock)),
        password_hash=_hash(body.password),
    )
    repo.create_verifier(verifier)
    return verifier


def login_verifier(
    store_id: str, username: str, password: str, key: str, repo: AccountsRepo | None = None, clock: Clock | None = None
) -> IssuedToken:
    settings = get_settings()
    repo = repo or AccountsRepo()
    verifier = repo.get_verifier(store_id, username)
    brake = _LoginBrake(repo, "verifier", store_id, username, time_now(clock))
    if not _password_passes(brake, password, verifier.password_hash if verifier else None, verifier is not None) or verifier is None:
        raise Unauthorized("Wrong store, username or password")
    ttl = settings.verifier_token_ttl_seconds
    claims = {"sub": verifier.username, "ten": verifier.tenant_id, "store": store_id}
    token = tokens.issue(key, "verifier", claims, epoch(time_now(clock)), ttl)
    return IssuedToken(token=token, expires_in=ttl, tenant_id=verifier.tenant_id, store_id=store_id)
