"""Key builders: one function per entity, so keys are never spelled out anywhere else."""

from __future__ import annotations


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


def guard_sk(kind: str, reference: str) -> str:
    return f"GUARD#{kind}#{reference}"


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
