"""Deployment settings, read from CDK context (cdk.json or ``-c key=value``), never from AWS lookups."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from constructs import Node

from jifen_infra.paths import CDK_JSON

STACK_ID = "JifenStack"
APP_NAME = "jifen"

_STAGE_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,15}$")


@dataclass(frozen=True)
class StageSettings:
    stage: str
    alarm_email: str | None
    log_retention_days: int
    # API Gateway's CloudWatch role is one per account and region: only one stack should own it.
    manage_api_gateway_account_role: bool
    # Origins allowed to use presigned upload/download URLs from a browser.
    upload_cors_origins: tuple[str, ...] = ("*",)

    @property
    def stack_name(self) -> str:
        return f"{APP_NAME}-{self.stage}"

    @property
    def resource_prefix(self) -> str:
        """Prefix for the few resources that need a fixed name (state machines, the REST API)."""
        return f"{APP_NAME}-{self.stage}"

    @classmethod
    def from_node(cls, node: Node) -> StageSettings:
        stage = str(node.try_get_context("jifen:stage") or "dev")
        if not _STAGE_PATTERN.match(stage):
            raise ValueError(f"jifen:stage must match {_STAGE_PATTERN.pattern}, got {stage!r}")
        email = node.try_get_context("jifen:alarmEmail") or None
        return cls(
            stage=stage,
            alarm_email=str(email) if email else None,
            log_retention_days=int(node.try_get_context("jifen:logRetentionDays") or 90),
            manage_api_gateway_account_role=_as_bool(node.try_get_context("jifen:manageApiGatewayAccountRole"), default=True),
            upload_cors_origins=_as_list(node.try_get_context("jifen:uploadCorsOrigins"), default=("*",)),
        )


def _as_bool(value: Any, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _as_list(value: Any, *, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None or value == "":
        return default
    if isinstance(value, str):  # from the command line: -c jifen:uploadCorsOrigins=https://a,https://b
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(str(v) for v in value)


def cdk_json_context() -> dict[str, Any]:
    """The context the CDK CLI would pass (feature flags + Jifen defaults), for in-process synthesis."""
    with CDK_JSON.open(encoding="utf-8") as f:
        context: dict[str, Any] = json.load(f)["context"]
    return context
