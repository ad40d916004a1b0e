"""The key registry: every key Jifen writes is declared once here, and built only by the functions below.

``SHAPES`` names each key with the attribute it goes in and its template: parts separated by ``#``;
a part in braces is filled in — ``{name}`` is one id (ids never contain ``#``), ``{name*}`` is the rest
of the key (it may contain ``#``: client references, config ids with versions); any other part is literal. A sort key says which
partition it sorts in (``within``). tests/unit/test_keys.py proves from this table that no two
partitions, and no two sort keys of one partition, can ever be the same string — so a new domain that
adds its keys here cannot overwrite another's items by accident.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    attribute: str  # PK | SK | GSI1PK | GSI1SK | GSI2PK | GSI2SK
    template: str
    within: str = ""  # a sort key: the name of the partition shape it sorts in


_PK, _SK = "PK", "SK"
SHAPES: dict[str, Shape] = {
    # --- tenancy (T1–T3) -----------------------------------------------------------------------
    "tenant": Shape(_PK, "TENANT#{tenant}"),
    "tenant.sk": Shape(_SK, "TENANT", "tenant"),
    "operator.sk": Shape(_SK, "OP#{username}", "tenant"),
    "app": Shape(_PK, "APP#{app}"),
    "app.sk": Shape(_SK, "APP", "app"),
    "app.secrets.sk": Shape(_SK, "SECRETS", "app"),
    "tenant.apps.gsi1": Shape("GSI1PK", "TENANT#{tenant}#APPS"),
    "tenant.apps.gsi1.sk": Shape("GSI1SK", "APP#{app}", "tenant.apps.gsi1"),
    "member": Shape(_PK, "APP#{app}#M#{member}"),
    "member.profile.sk": Shape(_SK, "PROFILE", "member"),
    "store": Shape(_PK, "STORE#{store}"),
    "store.sk": Shape(_SK, "STORE", "store"),
    "verifier.sk": Shape(_SK, "VERIFIER#{username}", "store"),
    "tenant.stores.gsi1": Shape("GSI1PK", "TENANT#{tenant}#STORES"),
    "tenant.stores.gsi1.sk": Shape("GSI1SK", "STORE#{store}", "tenant.stores.gsi1"),
    "invite": Shape(_PK, "APP#{app}#INVITE#{code}"),
    "invite.sk": Shape(_SK, "INDEX", "invite"),
    # --- core: signed requests, webhooks, guards, limits, configuration, stock -----------------
    "nonce": Shape(_PK, "APP#{app}#NONCE#{nonce}"),
    "nonce.sk": Shape(_SK, "NONCE", "nonce"),
    "webhook.event": Shape(_PK, "APP#{app}#WH#{provider}#{event*}"),
    "webhook.event.sk": Shape(_SK, "EVENT", "webhook.event"),
    "guard": Shape(_PK, "APP#{app}#REF#{kind}#{reference*}"),
    "guard.sk": Shape(_SK, "GUARD", "guard"),
    "member.limit.sk": Shape(_SK, "LIMIT#{subject*}", "member"),
    "device": Shape(_PK, "APP#{app}#DEV#{device}"),
    "device.limit.sk": Shape(_SK, "LIMIT#{subject*}", "device"),
    # failed-login counters live with the account's tenant (operators) or store (verifiers)
    "tenant.limit.sk": Shape(_SK, "LIMIT#{subject*}", "tenant"),
    "store.limit.sk": Shape(_SK, "LIMIT#{subject*}", "store"),
    "stock": Shape(_PK, "APP#{app}#STOCK#{pool}#{shard}"),
    "stock.sk": Shape(_SK, "STOCK", "stock"),
    # post-commit effects whose subscriber failed (core.effects): all apps, by day and shard, for the retry job
    "effects.pending": Shape(_PK, "EFFECTS#{day}#{shard}"),
    "effects.pending.sk": Shape(_SK, "{at}#{effect}", "effects.pending"),
    # configuration documents under the app, one literal kind each (core.table.config.ConfigRepo)
    "config.task.sk": Shape(_SK, "TASK#{config}", "app"),
    "config.levels.sk": Shape(_SK, "LEVELS#{config}", "app"),
    "config.provider.sk": Shape(_SK, "PROVIDER#{config}", "app"),
    "config.listing.sk": Shape(_SK, "LISTING#{config}", "app"),
    "config.pagedraft.sk": Shape(_SK, "PAGEDRAFT#{config}", "app"),
    "config.pagever.sk": Shape(_SK, "PAGEVER#{config*}", "app"),
    "config.pagepub.sk": Shape(_SK, "PAGEPUB#{config}", "app"),
    "config.pagepreview.sk": Shape(_SK, "PAGEPREVIEW#{config*}", "app"),
    # --- points (P, M) -------------------------------------------------------------------------
    "ledger.sk": Shape(_SK, "LEDGER#{entry}", "member"),
    "expiry.gsi1": Shape("GSI1PK", "EXP#{shard}"),
    "expiry.gsi1.sk": Shape("GSI1SK", "{day}#{app}#{member}", "expiry.gsi1"),
    "outbox": Shape(_PK, "APP#{app}#OUTBOX#{day}"),
    "outbox.sk": Shape(_SK, "{at}#{member}", "outbox"),
    # --- tasks (K) -----------------------------------------------------------------------------
    "receipt": Shape(_PK, "APP#{app}#RECEIPT#{receipt}"),
    "receipt.sk": Shape(_SK, "RECEIPT", "receipt"),
    "receipts.queue.gsi2": Shape("GSI2PK", "APP#{app}#RECEIPTS#{status}"),
    # --- mall (G1–G8, E1–E2) -------------------------------------------------------------------
    "goods.sk": Shape(_SK, "GOODS#{goods}", "tenant"),
    "code.import.sk": Shape(_SK, "CODEIMPORT#{import}", "tenant"),
    "code.pool.sk": Shape(_SK, "CODEPOOL#{goods}", "tenant"),
    "allocation.sk": Shape(_SK, "ALLOC#{allocation}", "app"),
    "allocation.out": Shape(_PK, "APP#{app}#ALLOCOUT#{allocation}"),
    "allocation.out.sk": Shape(_SK, "OUT", "allocation.out"),
    "order.sk": Shape(_SK, "ORDER#{order}", "member"),
    "order.index": Shape(_PK, "APP#{app}#ORDERID#{order}"),
    "order.index.sk": Shape(_SK, "INDEX", "order.index"),
    "orders.day.gsi1": Shape("GSI1PK", "APP#{app}#ORD#{day}"),
    "orders.status.gsi2": Shape("GSI2PK", "APP#{app}#ORDS#{status}#{day}"),
    # the order reconciler's watch list: orders waiting on a workflow, all apps, by day and shard
    "orders.watch.gsi2": Shape("GSI2PK", "WATCH#{day}#{shard}"),
    "orders.watch.gsi2.sk": Shape("GSI2SK", "{at}#{app}#{order}", "orders.watch.gsi2"),
    "code": Shape(_PK, "GOODS#{goods}#CODE#{digest}"),
    "code.sk": Shape(_SK, "CODE", "code"),
    "codes.free.gsi1": Shape("GSI1PK", "POOL#{goods}#{bucket}"),
    "codes.free.gsi1.sk": Shape("GSI1SK", "{seq}", "codes.free.gsi1"),
    "codes.issued": Shape(_PK, "GOODS#{goods}#ISSUED#{bucket}"),
    "codes.issued.sk": Shape(_SK, "COUNTER", "codes.issued"),
    "refund.review": Shape(_PK, "APP#{app}#REFUND#{order}"),
    "refund.review.sk": Shape(_SK, "REVIEW#{attempt}", "refund.review"),
    "refunds.queue.gsi2": Shape("GSI2PK", "APP#{app}#REFUNDS#pending"),
    # --- payments ------------------------------------------------------------------------------
    "fake.refund": Shape(_PK, "APP#{app}#FAKEREFUND#{reference*}"),
    "fake.refund.sk": Shape(_SK, "REFUND", "fake.refund"),
}


def key(name: str, **parts: object) -> str:
    """The key ``name`` with its parts filled in (the only way a key is spelled)."""
    return SHAPES[name].template.replace("*}", "}").format(**parts)


def prefix(name: str) -> str:
    """The literal start of ``name``, up to its first part (for begins_with queries)."""
    return SHAPES[name].template.split("{", 1)[0]


# --- tenancy ---------------------------------------------------------------------------------------


def tenant_pk(tenant_id: str) -> str:
    return key("tenant", tenant=tenant_id)


TENANT_SK = key("tenant.sk")


def operator_sk(username: str) -> str:
    return key("operator.sk", username=username)


def app_pk(app_id: str) -> str:
    return key("app", app=app_id)


APP_SK = key("app.sk")
APP_SECRETS_SK = key("app.secrets.sk")


def tenant_apps_gsi(tenant_id: str) -> str:
    return key("tenant.apps.gsi1", tenant=tenant_id)


def member_pk(app_id: str, member_id: str) -> str:
    return key("member", app=app_id, member=member_id)


PROFILE_SK = key("member.profile.sk")


def store_pk(store_id: str) -> str:
    return key("store", store=store_id)


STORE_SK = key("store.sk")


def verifier_sk(username: str) -> str:
    return key("verifier.sk", username=username)


def tenant_stores_gsi(tenant_id: str) -> str:
    return key("tenant.stores.gsi1", tenant=tenant_id)


def invite_pk(app_id: str, code: str) -> str:
    return key("invite", app=app_id, code=code)


INDEX_SK = key("invite.sk")


# --- core ------------------------------------------------------------------------------------------


def nonce_pk(app_id: str, nonce: str) -> str:
    return key("nonce", app=app_id, nonce=nonce)


NONCE_SK = key("nonce.sk")


def webhook_event_pk(app_id: str, provider: str, event_id: str) -> str:
    return key("webhook.event", app=app_id, provider=provider, event=event_id)


WEBHOOK_EVENT_SK = key("webhook.event.sk")


def app_guard_pk(app_id: str, kind: str, reference: str) -> str:
    """A guard scoped to the app: one business reference applies once across all its members."""
    return key("guard", app=app_id, kind=kind, reference=reference)


GUARD_SK = key("guard.sk")


EFFECT_SHARDS = 4  # a burst of failing effects (a throttled table) must not make one partition hot


def pending_effects_pk(day: str, shard: int) -> str:
    """One shard of the pending post-commit effects recorded on ``day`` (UTC)."""
    return key("effects.pending", day=day, shard=shard)


def pending_effect_sk(at: str, effect_id: str) -> str:
    return key("effects.pending.sk", at=at, effect=effect_id)


def counter_sk(scope: str, period: str) -> str:
    """A limit counter in a member's or device's partition: what it limits, then the period it counts in."""
    return key("member.limit.sk", subject=f"{scope}#{period}")


def device_pk(app_id: str, device_id: str) -> str:
    """Per-device limit counters of one app."""
    return key("device", app=app_id, device=device_id)


def stock_pk(app_id: str, pool_id: str, shard: int) -> str:
    """One stock shard per partition, so a flash sale is not capped by one item's write rate."""
    return key("stock", app=app_id, pool=pool_id, shard=shard)


STOCK_SK = key("stock.sk")
CONFIG_KINDS = frozenset(name.split(".")[1] for name in SHAPES if name.startswith("config."))


def config_sk(kind: str, config_id: str) -> str:
    """A configuration document of a declared kind under the app (``TASK#…``, ``LISTING#…``, ``PAGEVER#…``)."""
    if kind not in CONFIG_KINDS:
        raise ValueError(f"undeclared config kind {kind!r}: add it to keys.SHAPES")
    return key(f"config.{kind}.sk", config=config_id)


# --- points ----------------------------------------------------------------------------------------


def ledger_sk(entry_id: str) -> str:
    return key("ledger.sk", entry=entry_id)


LEDGER_PREFIX = prefix("ledger.sk")
EXPIRY_SHARDS = 16


def expiry_gsi(shard: int) -> str:
    """The expiry index: a few shards (by member), sorted by next expiry date, so any overdue date is found."""
    return key("expiry.gsi1", shard=shard)


def expiry_gsi_sk(day: str, app_id: str, member_id: str) -> str:
    return key("expiry.gsi1.sk", day=day, app=app_id, member=member_id)


def outbox_pk(app_id: str, day: str) -> str:
    return key("outbox", app=app_id, day=day)


def outbox_sk(at: str, member_id: str) -> str:
    return key("outbox.sk", at=at, member=member_id)


# --- tasks -----------------------------------------------------------------------------------------


def receipt_pk(app_id: str, receipt_id: str) -> str:
    return key("receipt", app=app_id, receipt=receipt_id)


RECEIPT_SK = key("receipt.sk")


def review_queue_gsi(app_id: str, status: str) -> str:
    return key("receipts.queue.gsi2", app=app_id, status=status)


# --- mall ------------------------------------------------------------------------------------------


def goods_sk(goods_id: str) -> str:
    """Enterprise stock lives under the tenant: ``TENANT#{t}`` / ``GOODS#{id}``."""
    return key("goods.sk", goods=goods_id)


GOODS_PREFIX = prefix("goods.sk")


def allocation_sk(allocation_id: str) -> str:
    """An app's sub-stock: ``APP#{app}`` / ``ALLOC#{id}``."""
    return key("allocation.sk", allocation=allocation_id)


ALLOCATION_PREFIX = prefix("allocation.sk")


def allocation_out_pk(app_id: str, allocation_id: str) -> str:
    """The total-out counter of an allocation (only written when it has a total-out limit)."""
    return key("allocation.out", app=app_id, allocation=allocation_id)


TOTAL_OUT_SK = key("allocation.out.sk")


def order_sk(order_id: str) -> str:
    """Orders live in the member's partition (one query shows a member's orders)."""
    return key("order.sk", order=order_id)


ORDER_PREFIX = prefix("order.sk")


def order_index_pk(app_id: str, order_id: str) -> str:
    """order id -> member, for admin routes and payment webhooks that only know the order id."""
    return key("order.index", app=app_id, order=order_id)


ORDER_INDEX_SK = key("order.index.sk")


def orders_by_day_gsi(app_id: str, day: str) -> str:
    return key("orders.day.gsi1", app=app_id, day=day)


def orders_by_status_gsi(app_id: str, status: str, day: str) -> str:
    return key("orders.status.gsi2", app=app_id, status=status, day=day)


WATCH_SHARDS = 8  # a flash sale of cash orders must not make one index partition hot


def watched_orders_gsi(day: str, order_id: str | None = None, shard: int | None = None) -> str:
    """The reconciler's watch list of ``day``: one of a few shards, the order's own when ``order_id`` is given."""
    if shard is None:
        shard = int(hashlib.sha256((order_id or "").encode()).hexdigest(), 16) % WATCH_SHARDS
    return key("orders.watch.gsi2", day=day, shard=shard)


def watched_order_gsi_sk(at: str, app_id: str, order_id: str) -> str:
    return key("orders.watch.gsi2.sk", at=at, app=app_id, order=order_id)


def code_pk(goods_id: str, digest: str) -> str:
    """One CDK code: keyed by a digest of the code, so a duplicate line cannot become a second code."""
    return key("code", goods=goods_id, digest=digest)


CODE_SK = key("code.sk")
CODE_BUCKETS = 16


def code_digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()[:32]


def code_bucket(digest: str) -> int:
    """Which free-code index partition (and issued counter) a code belongs to."""
    return int(digest, 16) % CODE_BUCKETS


def free_codes_gsi(goods_id: str, bucket: int) -> str:
    """Sparse index of codes not yet issued (removed from the index when issued)."""
    return key("codes.free.gsi1", goods=goods_id, bucket=bucket)


def free_codes_gsi_sk(seq: int) -> str:
    return key("codes.free.gsi1.sk", seq=f"{seq:010d}")


def code_import_sk(import_id: str) -> str:
    """An import record lives under the tenant: ``TENANT#{t}`` / ``CODEIMPORT#{id}``."""
    return key("code.import.sk", **{"import": import_id})


def code_pool_sk(goods_id: str) -> str:
    """The goods' pool item (import lease, code sequence) under the tenant: ``CODEPOOL#{goods}``."""
    return key("code.pool.sk", goods=goods_id)


def codes_issued_pk(goods_id: str, bucket: int) -> str:
    """Issued-code counter, one shard per pool bucket, so exchanges never contend on one item."""
    return key("codes.issued", goods=goods_id, bucket=bucket)


CODES_ISSUED_SK = key("codes.issued.sk")


def refund_review_pk(app_id: str, order_id: str) -> str:
    """An order's refund reviews (one item per request: ``REVIEW#{attempt}``)."""
    return key("refund.review", app=app_id, order=order_id)


def refund_review_sk(attempt: int) -> str:
    return key("refund.review.sk", attempt=f"{attempt:03d}")


def refund_queue_gsi(app_id: str) -> str:
    """Sparse GSI2 of the refund requests waiting for a reviewer (an item leaves it when decided)."""
    return key("refunds.queue.gsi2", app=app_id)


# --- payments --------------------------------------------------------------------------------------


def fake_refund_pk(app_id: str, reference: str) -> str:
    """What the local fake refund adapter refunded, per reference (so tests in another process can read it)."""
    return key("fake.refund", app=app_id, reference=reference)


FAKE_REFUND_SK = key("fake.refund.sk")
