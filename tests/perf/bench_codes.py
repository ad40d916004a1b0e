"""`make bench`: a CDK code file of 100,000 codes imported into an in-process moto table (G1).

Prints seconds, codes per second, DynamoDB round trips and items written / read, and S3 requests.
Round trips and items do not depend on moto's speed, so they are the numbers to compare; seconds on
moto are indicative only (moto is far slower than DynamoDB per request).
Run: python -m tests.perf.bench_codes [--codes N] [--again] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import tests.conftest  # noqa: E402,F401  (test environment: moto credentials, table name)


class Calls:
    """DynamoDB calls as PynamoDB makes them (operation, items read, items written), and S3 calls."""

    def __init__(self) -> None:
        self.dynamodb: list[tuple[str, int, int]] = []
        self.s3: Counter[str] = Counter()

    def record(self, operation: str, kwargs: dict[str, Any]) -> None:
        reads = writes = 0
        if operation == "BatchGetItem":
            reads = sum(len(table["Keys"]) for table in kwargs.get("RequestItems", {}).values())
        elif operation == "BatchWriteItem":
            writes = sum(len(requests) for requests in kwargs.get("RequestItems", {}).values())
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            writes = 1
        elif operation == "GetItem":
            reads = 1
        elif operation == "TransactWriteItems":
            writes = len(kwargs.get("TransactItems", []))
        self.dynamodb.append((operation, reads, writes))

    def summary(self) -> dict[str, Any]:
        return {
            "dynamodb_round_trips": len(self.dynamodb),
            "dynamodb_items_written": sum(w for _, _, w in self.dynamodb),
            "dynamodb_items_read": sum(r for _, r, _ in self.dynamodb),
            "dynamodb_operations": dict(Counter(op for op, _, _ in self.dynamodb)),
            "s3_requests": dict(self.s3),
        }


@contextmanager
def counting() -> Iterator[Calls]:
    from pynamodb.connection.base import Connection

    from chalicelib.core import aws

    calls = Calls()
    original = Connection._make_api_call

    def wrapped(self: Any, operation_name: str, operation_kwargs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        calls.record(operation_name, operation_kwargs)
        return original(self, operation_name, operation_kwargs, *args, **kwargs)

    def on_s3_call(model: Any, **_: Any) -> None:
        calls.s3[model.name] += 1

    s3_events = aws.client("s3").meta.events
    s3_events.register("before-call.s3", on_s3_call)
    Connection._make_api_call = wrapped  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        Connection._make_api_call = original  # type: ignore[method-assign]
        s3_events.unregister("before-call.s3", on_s3_call)


PASSES = ("import", "same file again (all duplicates)")


def code_file(n: int) -> bytes:
    return "".join(f"JF{secrets.token_hex(8).upper()}\n" for _ in range(n)).encode()


def run(n: int, again: bool = False) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from chalicelib.core.config import get_settings
    from chalicelib.core.table import keys, schema
    from chalicelib.mall import codes
    from chalicelib.mall.models.codes import CreateCodeImport
    from chalicelib.mall.store.items import GoodsItem

    results: dict[str, Any] = {"codes": n, "chunk_lines": codes.CHUNK_LINES}
    with mock_aws():
        schema.create_table(boto3.client("dynamodb"), os.environ["JIFEN_TABLE"])
        boto3.client("s3").create_bucket(Bucket=get_settings().bucket)
        GoodsItem(
            PK=keys.tenant_pk("bench"),
            SK=keys.goods_sk("g_bench"),
            kind="goods",
            tenant_id="bench",
            goods_id="g_bench",
            document=json.dumps({"name": "Bench CDK", "category": "cdk"}),
            total=0,
            available=0,
            created_at="2026-01-01T00:00:00Z",
            updated_at="2026-01-01T00:00:00Z",
        ).save()
        content = code_file(n)

        for label in PASSES[: 2 if again else 1]:
            record, _ = codes.create_import("bench", "g_bench", "bench", CreateCodeImport(file_name="bench.txt"))
            boto3.client("s3").put_object(Bucket=get_settings().bucket, Key=record.key, Body=content)
            budget = codes.Budget.of(None, cap=24 * 3600.0, margin=60.0)
            with counting() as calls:
                started = time.perf_counter()
                report = codes.start("bench", "g_bench", record.import_id, budget)
                seconds = time.perf_counter() - started
            goods = GoodsItem.get(keys.tenant_pk("bench"), keys.goods_sk("g_bench"), consistent_read=True)
            results[label] = {
                "seconds": round(seconds, 2),
                "codes_per_second": round(n / seconds),
                "status": report.status,
                "codes_added": report.codes_added,
                "duplicates_in_pool": report.duplicates_in_pool,
                "goods_total": int(goods.total),
                "file_bytes": len(content),
                **calls.summary(),
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--codes", type=int, default=100_000)
    parser.add_argument("--again", action="store_true", help="then import the same file again (every code a duplicate)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args()
    results = run(args.codes, args.again)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"CDK import of {results['codes']:,} codes (chunks of {results['chunk_lines']} lines), in-process moto")
    for label in PASSES:
        if label not in results:
            continue
        row = results[label]
        print(f"\n  {label}: {row['status']}, {row['codes_added']:,} added, {row['duplicates_in_pool']:,} already in the pool")
        print(f"    seconds            {row['seconds']:>12,.2f}   ({row['codes_per_second']:,} codes/s on moto)")
        print(f"    DynamoDB round trips {row['dynamodb_round_trips']:>10,}   {row['dynamodb_operations']}")
        print(f"    items written      {row['dynamodb_items_written']:>12,}")
        print(f"    items read         {row['dynamodb_items_read']:>12,}")
        print(f"    S3 requests        {sum(row['s3_requests'].values()):>12,}   {row['s3_requests']} ({row['file_bytes']:,} bytes)")
        print(f"    goods total after  {row['goods_total']:>12,}")


if __name__ == "__main__":
    main()
