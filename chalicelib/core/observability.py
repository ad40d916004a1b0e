"""The one place that builds Powertools' Logger, Metrics and Tracer (lazily: cold start is product)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics, Tracer


@lru_cache(maxsize=1)
def logger() -> Logger:
    from aws_lambda_powertools import Logger

    return Logger(service="jifen")


@lru_cache(maxsize=1)
def metrics() -> Metrics:
    import warnings

    from aws_lambda_powertools import Metrics

    # Reads have no business metric; an empty flush is normal, not worth a warning per request.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    return Metrics(namespace="Jifen", service="jifen")


@lru_cache(maxsize=1)
def tracer() -> Tracer:
    from aws_lambda_powertools import Tracer

    return Tracer(service="jifen")


def count(name: str, value: int = 1) -> None:
    """One business metric per action (EMF, flushed at the end of the invocation)."""
    from aws_lambda_powertools.metrics import MetricUnit

    metrics().add_metric(name=name, unit=MetricUnit.Count, value=value)


def log_event(event: str, **fields: Any) -> None:
    logger().info(event, extra=fields)
