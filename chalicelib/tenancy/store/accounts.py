"""Tenants, operators, stores and verifiers."""

from __future__ import annotations

from pynamodb.exceptions import PutError, TransactWriteError

from chalicelib.core.errors import AlreadyExists, LimitReached
from chalicelib.core.models import Page, Role
from chalicelib.core.table import keys
from chalicelib.core.table.cursors import decode_cursor, encode_cursor
from chalicelib.core.table.dynamo import condition_failed, transaction
from chalicelib.core.txn import unit
from chalicelib.core.txn.unit import CounterSpec
from chalicelib.tenancy.models import Operator, Store, Tenant, Verifier
from chalicelib.tenancy.store.items import OperatorItem, StoreItem, TenantItem, VerifierItem


def _tenant(item: TenantItem) -> Tenant:
    return Tenant(tenant_id=item.tenant_id, name=item.name, created_at=item.created_at)


def _operator(item: OperatorItem) -> Operator:
    return Operator(
        tenant_id=item.tenant_id,
        username=item.username,
        role=Role(item.role),
        created_at=item.created_at,
        disabled=bool(item.disabled),
        password_hash=item.password_hash,
    )


def _store(item: StoreItem) -> Store:
    return Store(store_id=item.store_id, tenant_id=item.tenant_id, name=item.name, address=item.address, created_at=item.created_at)


def _verifier(item: VerifierItem) -> Verifier:
    return Verifier(
        store_id=item.store_id,
        tenant_id=item.tenant_id,
        username=item.username,
        created_at=item.created_at,
        password_hash=item.password_hash,
    )


def _operator_item(operator: Operator) -> OperatorItem:
    return OperatorItem(
        PK=keys.tenant_pk(operator.tenant_id),
        SK=keys.operator_sk(operator.username),
        kind="operator",
        tenant_id=operator.tenant_id,
        username=operator.username,
        role=operator.role.value,
        password_hash=operator.password_hash,
        created_at=operator.created_at,
        disabled=operator.disabled,
    )


class AccountsRepo:
    def create_tenant_with_owner(self, tenant: Tenant, owner: Operator) -> None:
        """The tenant and its first owner appear together or not at all."""
        item = TenantItem(
            PK=keys.tenant_pk(tenant.tenant_id),
            SK=keys.TENANT_SK,
            kind="tenant",
            tenant_id=tenant.tenant_id,
            name=tenant.name,
            created_at=tenant.created_at,
        )
        try:
            with transaction() as tx:
                tx.save(item, condition=TenantItem.PK.does_not_exist())
                tx.save(_operator_item(owner), condition=OperatorItem.PK.does_not_exist())
        except TransactWriteError as exc:
            raise AlreadyExists(f"Tenant {tenant.tenant_id} already exists") from exc

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        try:
            return _tenant(TenantItem.get(keys.tenant_pk(tenant_id), keys.TENANT_SK))
        except TenantItem.DoesNotExist:
            return None

    def create_operator(self, operator: Operator) -> None:
        try:
            _operator_item(operator).save(condition=OperatorItem.PK.does_not_exist())
        except PutError as exc:
            if condition_failed(exc):
                raise AlreadyExists(f"Operator {operator.username} already exists") from exc
            raise

    def get_operator(self, tenant_id: str, username: str) -> Operator | None:
        try:
            return _operator(OperatorItem.get(keys.tenant_pk(tenant_id), keys.operator_sk(username)))
        except OperatorItem.DoesNotExist:
            return None

    def operators_of_tenant(self, tenant_id: str, cursor: str | None, limit: int) -> Page[Operator]:
        pk = keys.tenant_pk(tenant_id)
        result = OperatorItem.query(
            pk,
            OperatorItem.SK.startswith("OP#"),
            limit=limit,
            last_evaluated_key=decode_cursor(cursor, expect={"PK": pk}, sk_prefix="OP#"),
        )
        items = [_operator(item) for item in result]
        return Page[Operator](items=items, cursor=encode_cursor(result.last_evaluated_key))

    def create_store(self, store: Store) -> None:
        StoreItem(
            PK=keys.store_pk(store.store_id),
            SK=keys.STORE_SK,
            GSI1PK=keys.tenant_stores_gsi(store.tenant_id),
            GSI1SK=keys.store_pk(store.store_id),
            kind="store",
            store_id=store.store_id,
            tenant_id=store.tenant_id,
            name=store.name,
            address=store.address,
            created_at=store.created_at,
        ).save(condition=StoreItem.PK.does_not_exist())

    def get_store(self, store_id: str) -> Store | None:
        try:
            return _store(StoreItem.get(keys.store_pk(store_id), keys.STORE_SK))
        except StoreItem.DoesNotExist:
            return None

    def stores_of_tenant(self, tenant_id: str, cursor: str | None, limit: int) -> Page[Store]:
        gsi_pk = keys.tenant_stores_gsi(tenant_id)
        result = StoreItem.gsi1.query(gsi_pk, limit=limit, last_evaluated_key=decode_cursor(cursor, expect={"GSI1PK": gsi_pk}))
        items = [_store(item) for item in result]  # type: ignore[arg-type]
        return Page[Store](items=items, cursor=encode_cursor(result.last_evaluated_key))

    def create_verifier(self, verifier: Verifier) -> None:
        try:
            VerifierItem(
                PK=keys.store_pk(verifier.store_id),
                SK=keys.verifier_sk(verifier.username),
                kind="verifier",
                store_id=verifier.store_id,
                tenant_id=verifier.tenant_id,
                username=verifier.username,
                password_hash=verifier.password_hash,
                created_at=verifier.created_at,
            ).save(condition=VerifierItem.PK.does_not_exist())
        except PutError as exc:
            if condition_failed(exc):
                raise AlreadyExists(f"Verifier {verifier.username} already exists") from exc
            raise

    def get_verifier(self, store_id: str, username: str) -> Verifier | None:
        try:
            return _verifier(VerifierItem.get(keys.store_pk(store_id), keys.verifier_sk(username)))
        except VerifierItem.DoesNotExist:
            return None

    # --- the login brake: failed (or in-flight) password checks per account and window ------------------

    def reserve_login_attempt(self, kind: str, scope_id: str, username: str, window: str, limit: int, expires_at: int) -> bool:
        """Count one password check of an account (``kind`` "operator" in tenant ``scope_id``, "verifier" in store
        ``scope_id``) in ``window``: a conditional ADD (count + 1 <= limit), so concurrent attempts cannot pass
        the brake together. False when the window's limit is reached. The counter goes by TTL after ``expires_at``.
        """
        try:
            unit.commit(unit.UnitOfWork(counters=[_login_counter(kind, scope_id, username, window, limit, expires_at, 1)]))
        except LimitReached:
            return False
        return True

    def release_login_attempt(self, kind: str, scope_id: str, username: str, window: str, expires_at: int) -> None:
        """Take back one's own counted attempt (it succeeded): ADD -1, never a reset of others' failures."""
        unit.commit(unit.UnitOfWork(counters=[_login_counter(kind, scope_id, username, window, None, expires_at, -1)]))


def _login_counter(kind: str, scope_id: str, username: str, window: str, limit: int | None, expires_at: int, by: int) -> CounterSpec:
    # the account's own partition (tenant for operators, store for verifiers), whether or not the account exists
    pk = keys.tenant_pk(scope_id) if kind == "operator" else keys.store_pk(scope_id)
    sk = keys.counter_sk(f"login#{kind}#{username}", window)
    return CounterSpec(pk=pk, sk=sk, limit=limit, ttl=expires_at, by=by, reason="too many failed logins")
