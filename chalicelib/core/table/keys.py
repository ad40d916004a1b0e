"""Key builders: one function per entity, so keys are never spelled out anywhere else."""

from __future__ import annotations

import hashlib


def tenant_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


TENANT_SK = "TENANT"


def operator_sk(username: str) -> str:
    return f"OP#{username}"


def app_pk(app_id: str) -> str:
    return f"APP#{app_id}"


APP_SK = "APP"
APP_SECRETS_SK = "SECRETS"


def tenant_apps_gsi(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}#APPS"


def member_pk(app_id: str, member_id: str) -> str:
    return f"APP#{app_id}#M#{member_id}"


PROFILE_SK = "PROFILE"


def store_pk(store_id: str) -> str:
    return f"STORE#{store_id}"


STORE_SK = "STORE"


def verifier_sk(username: str) -> str:
    return f"VERIFIER#{username}"


def tenant_stores_gsi(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}#STORES"


def nonce_pk(app_id: str, nonce: str) -> str:
    return f"APP#{app_id}#NONCE#{nonce}"


NONCE_SK = "NONCE"


def webhook_event_pk(app_id: str, provider: str, event_id: str) -> str:
    return f"APP#{app_id}#WH#{provider}#{event_id}"


WEBHOOK_EVENT_SK = "EVENT"


def ledger_sk(entry_id: str) -> str:
    return f"LEDGER#{entry_id}"


LEDGER_PREFIX = "LEDGER#"


def app_guard_pk(app_id: str, kind: str, reference: str) -> str:
    """A guard scoped to the app: one business reference applies once across all its members."""
    return f"APP#{app_id}#REF#{kind}#{reference}"


GUARD_SK = "GUARD"


def counter_sk(scope: str, period: str) -> str:
    return f"LIMIT#{scope}#{period}"


def expiry_gsi(shard: int) -> str:
    """The expiry index: a few shards (by member), sorted by next expiry date, so any overdue date is found."""
    return f"EXP#{shard}"


def expiry_gsi_sk(day: str, app_id: str, member_id: str) -> str:
    return f"{day}#{app_id}#{member_id}"


EXPIRY_SHARDS = 16


def config_sk(kind: str, config_id: str) -> str:
    return f"{kind.upper()}#{config_id}"


def invite_pk(app_id: str, code: str) -> str:
    return f"APP#{app_id}#INVITE#{code}"


INDEX_SK = "INDEX"


def outbox_pk(app_id: str, day: str) -> str:
    return f"APP#{app_id}#OUTBOX#{day}"


def receipt_pk(app_id: str, receipt_id: str) -> str:
    return f"APP#{app_id}#RECEIPT#{receipt_id}"


RECEIPT_SK = "RECEIPT"


def review_queue_gsi(app_id: str, status: str) -> str:
    return f"APP#{app_id}#RECEIPTS#{status}"


# --- mall (G1–G8, E1–E2) ---------------------------------------------------------------------------


def goods_sk(goods_id: str) -> str:
    """Enterprise stock lives under the tenant: ``TENANT#{t}`` / ``GOODS#{id}``."""
    return f"GOODS#{goods_id}"


GOODS_PREFIX = "GOODS#"


def allocation_sk(allocation_id: str) -> str:
    """An app's sub-stock: ``APP#{app}`` / ``ALLOC#{id}``."""
    return f"ALLOC#{allocation_id}"


ALLOCATION_PREFIX = "ALLOC#"


def stock_pk(app_id: str, allocation_id: str, shard: int) -> str:
    """One stock shard per partition, so a flash sale is not capped by one item's write rate."""
    return f"APP#{app_id}#STOCK#{allocation_id}#{shard}"


STOCK_SK = "STOCK"


def allocation_out_pk(app_id: str, allocation_id: str) -> str:
    """The total-out counter of an allocation (only written when it has a total-out limit)."""
    return f"APP#{app_id}#ALLOCOUT#{allocation_id}"


def device_pk(app_id: str, device_id: str) -> str:
    """Per-device limit counters of one app."""
    return f"APP#{app_id}#DEV#{device_id}"


def order_sk(order_id: str) -> str:
    """Orders live in the member's partition (one query shows a member's orders)."""
    return f"ORDER#{order_id}"


ORDER_PREFIX = "ORDER#"


def order_index_pk(app_id: str, order_id: str) -> str:
    """order id -> member, for admin routes and payment webhooks that only know the order id."""
    return f"APP#{app_id}#ORDERID#{order_id}"


def orders_by_day_gsi(app_id: str, day: str) -> str:
    return f"APP#{app_id}#ORD#{day}"


def orders_by_status_gsi(app_id: str, status: str, day: str) -> str:
    return f"APP#{app_id}#ORDS#{status}#{day}"


def code_pk(goods_id: str, digest: str) -> str:
    """One CDK code: keyed by a digest of the code, so a duplicate line cannot become a second code."""
    return f"GOODS#{goods_id}#CODE#{digest}"


CODE_SK = "CODE"
CODE_BUCKETS = 16


def code_digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()[:32]


def code_bucket(digest: str) -> int:
    """Which free-code index partition (and issued counter) a code belongs to."""
    return int(digest, 16) % CODE_BUCKETS


def free_codes_gsi(goods_id: str, bucket: int) -> str:
    """Sparse index of codes not yet issued (removed from the index when issued)."""
    return f"POOL#{goods_id}#{bucket}"


# --- after-sales (E2 / G8) -------------------------------------------------------------------------


def refund_review_pk(app_id: str, order_id: str) -> str:
    """An order's refund reviews (one item per request: ``REVIEW#{attempt}``)."""
    return f"APP#{app_id}#REFUND#{order_id}"


def refund_review_sk(attempt: int) -> str:
    return f"REVIEW#{attempt:03d}"


def refund_queue_gsi(app_id: str) -> str:
    """Sparse GSI2 of the refund requests waiting for a reviewer (an item leaves it when decided)."""
    return f"APP#{app_id}#REFUNDS#pending"


def fake_refund_pk(app_id: str, reference: str) -> str:
    """What the local fake refund adapter refunded, per reference (so tests in another process can read it)."""
    return f"APP#{app_id}#FAKEREFUND#{reference}"


FAKE_REFUND_SK = "REFUND"
