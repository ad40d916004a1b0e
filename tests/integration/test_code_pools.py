"""G1 CDK pools: a code file uploaded to S3 is imported once, exactly, resumably; the report says what each line was."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import boto3
import pytest

from chalicelib.core import aws
from chalicelib.core.clock import FixedClock, epoch, use_clock
from chalicelib.core.config import get_settings
from chalicelib.core.table import keys, schema
from chalicelib.core.table.cache import config_cache
from chalicelib.core.table.dynamo import transaction
from chalicelib.mall import codes
from chalicelib.mall import jobs as job
from chalicelib.mall.models.codes import ImportTarget
from chalicelib.mall.store.codes import CodesRepo, issued_write
from chalicelib.mall.store.items import GoodsItem
from tests.conftest import bearer, call, table_items

OWNER = ("owner", "owner-password-1")


@dataclass
class World:
    api: Any
    client: Any
    s3: Any
    owner: str  # acme's owner token
    other: str  # another tenant's owner token

    def goods(self, category: str = "cdk", tenant_id: str = "acme") -> str:
        """Goods entered directly (as the goods admin does): CDK goods start at total 0."""
        goods_id = f"g_{secrets.token_hex(6)}"
        now = "2026-01-01T00:00:00Z"
        GoodsItem(
            PK=keys.tenant_pk(tenant_id),
            SK=keys.goods_sk(goods_id),
            kind="goods",
            tenant_id=tenant_id,
            goods_id=goods_id,
            document=json.dumps({"name": f"{category} goods", "category": category}),
            total=0 if category == "cdk" else 10,
            available=0 if category == "cdk" else 10,
            created_at=now,
            updated_at=now,
        ).save()
        return goods_id

    def stock(self, goods_id: str) -> tuple[int, int]:
        item = GoodsItem.get(keys.tenant_pk("acme"), keys.goods_sk(goods_id), consistent_read=True)
        return int(item.total), int(item.available)

    def new_import(self, goods_id: str, token: str | None = None) -> Any:
        return call(self.api, "POST", f"/v1/admin/goods/{goods_id}/code-imports", {"file_name": "codes.txt"}, bearer(token or self.owner))

    def upload(self, goods_id: str, content: bytes) -> str:
        created = self.new_import(goods_id)
        assert created.status_code == 201, created.json_body
        self.s3.put_object(Bucket=get_settings().bucket, Key=created.json_body["key"], Body=content, ContentType="text/plain")
        return str(created.json_body["import_id"])

    def start(self, goods_id: str, import_id: str, token: str | None = None) -> Any:
        return call(self.api, "POST", f"/v1/admin/goods/{goods_id}/code-imports/{import_id}/start", headers=bearer(token or self.owner))

    def report(self, goods_id: str, import_id: str) -> dict[str, Any]:
        response = call(self.api, "GET", f"/v1/admin/goods/{goods_id}/code-imports/{import_id}", headers=bearer(self.owner))
        assert response.status_code == 200, response.json_body
        return dict(response.json_body)

    def summary(self, goods_id: str) -> dict[str, Any]:
        response = call(self.api, "GET", f"/v1/admin/goods/{goods_id}/codes/summary", headers=bearer(self.owner))
        assert response.status_code == 200, response.json_body
        return dict(response.json_body)

    def code_items(self, goods_id: str) -> list[dict[str, Any]]:
        prefix = keys.code_pk(goods_id, "")
        return [item for item in table_items(self.client) if item["PK"]["S"].startswith(prefix)]

    def free_codes(self, goods_id: str) -> list[str]:
        found: list[str] = []
        for bucket in range(keys.CODE_BUCKETS):
            pages = self.client.get_paginator("query").paginate(
                TableName=os.environ["JIFEN_TABLE"],
                IndexName="GSI1",
                KeyConditionExpression="GSI1PK = :pk",
                ExpressionAttributeValues={":pk": {"S": keys.free_codes_gsi(goods_id, bucket)}},
            )
            found += [item["code"]["S"] for page in pages for item in page["Items"]]
        return found


def login(api: Any, tenant_id: str) -> str:
    from chalicelib.tenancy import accounts

    accounts.create_tenant(tenant_id, tenant_id.title(), *OWNER)
    response = call(api, "POST", "/v1/auth/operator", {"tenant_id": tenant_id, "username": OWNER[0], "password": OWNER[1]})
    assert response.status_code == 200, response.json_body
    return str(response.json_body["token"])


@pytest.fixture
def world(moto_api: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> World:
    """Given tenants acme and other, each with a logged-in owner, the table and the uploads bucket; chunks of 50 lines."""
    api, client = moto_api
    table = os.environ["JIFEN_TABLE"]
    if table in client.list_tables()["TableNames"]:
        client.delete_table(TableName=table)
    schema.create_table(client, table)
    config_cache().clear()
    s3 = boto3.client("s3")
    bucket = get_settings().bucket
    if any(b["Name"] == bucket for b in s3.list_buckets()["Buckets"]):
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
    else:
        s3.create_bucket(Bucket=bucket)
    # Small chunks and read blocks, so a few hundred codes cross many chunk and block boundaries.
    monkeypatch.setattr(codes, "CHUNK_LINES", 50)
    monkeypatch.setattr(aws, "READ_BLOCK_BYTES", 97)
    return World(api, client, s3, login(api, "acme"), login(api, "other"))


def lines(*parts: str) -> bytes:
    return ("\n".join(parts) + "\n").encode()


def generated(n: int, prefix: str = "CDK") -> list[str]:
    return [f"{prefix}-{i:05d}-{secrets.token_hex(4)}" for i in range(n)]


# --- the report ----------------------------------------------------------------------------------


def test_a_file_is_imported_with_exact_counts(world: World) -> None:
    # Given CDK goods whose pool already holds one code
    goods = world.goods()
    first = world.upload(goods, lines("ALREADY-IN-POOL"))
    assert world.start(goods, first).json_body["codes_added"] == 1
    # And a file of 230 good codes, blank lines, an in-file duplicate (in a later chunk), invalid lines and the pooled code
    good = generated(230)
    file_lines = [*good[:100], "", "   ", "has space", "x" * 129, "ünïcode", *good[100:], good[3], "ALREADY-IN-POOL", "\t"]
    content = "\ufeff" + "\r\n".join(file_lines) + "\r\n"
    second = world.upload(goods, content.encode())

    # When the operator starts the import
    response = world.start(goods, second)

    # Then every line is accounted for exactly
    assert response.status_code == 200, response.json_body
    report = response.json_body
    assert report["status"] == "done" and report["percent"] == 100
    assert report["lines_read"] == len(file_lines) == 238
    assert report["codes_added"] == 230
    assert (report["duplicates_in_file"], report["duplicates_in_pool"]) == (1, 1)
    assert (report["blank_lines"], report["invalid_lines"]) == (3, 3)
    assert report["invalid_line_numbers"] == [103, 104, 105]
    assert report["bytes_read"] == report["bytes_total"] == len(content.encode())
    assert report == world.report(goods, second)
    # And the goods' stock grew by the new codes only, each of them free in the pool once
    assert world.stock(goods) == (231, 231)
    assert world.summary(goods) == {"goods_id": goods, "total": 231, "issued": 0, "free": 231}
    assert sorted(world.free_codes(goods)) == sorted([*good, "ALREADY-IN-POOL"])
    items = world.code_items(goods)
    assert len(items) == 231
    # And free codes are ordered by sequence: the second file's after the first file's, in file order
    by_code = {item["code"]["S"]: item for item in items}
    seqs = [int(by_code[code]["GSI1SK"]["S"]) for code in good]
    assert seqs == sorted(seqs) and seqs[0] > int(by_code["ALREADY-IN-POOL"]["GSI1SK"]["S"])
    assert {by_code[code]["import_id"]["S"] for code in good} == {second}


def test_an_empty_file_and_a_file_without_final_newline(world: World) -> None:
    # Given CDK goods, an empty file and a file whose last line has no newline
    goods = world.goods()
    empty = world.upload(goods, b"")
    last = world.upload(goods, b"A1\nB2")
    # When both are imported
    done = [world.start(goods, import_id).json_body for import_id in (empty, last)]
    # Then the empty one is done with nothing, the other has both codes
    assert [(r["status"], r["lines_read"], r["codes_added"]) for r in done] == [("done", 0, 0), ("done", 2, 2)]
    assert sorted(world.free_codes(goods)) == ["A1", "B2"]


def test_summary_counts_issued_codes_from_the_sharded_counters(world: World) -> None:
    # Given 20 imported codes, 3 of them issued (the exchange adds to the issued shard of each code's bucket)
    goods = world.goods()
    world.start(goods, world.upload(goods, lines(*generated(20))))
    with transaction() as tx:
        for write in (issued_write(goods, 0), issued_write(goods, 5, delta=2)):
            tx.update(write.item, actions=list(write.actions))
    # When the operator reads the pool's summary
    summary = world.summary(goods)
    # Then issued and free come from the counters
    assert summary == {"goods_id": goods, "total": 20, "issued": 3, "free": 17}


# --- exactly once across crashes -------------------------------------------------------------------


def later(minutes: int) -> Any:
    """The logic's clock, moved on (past the lease a crashed attempt keeps for a few seconds)."""
    at = datetime.now(UTC) + timedelta(minutes=minutes)
    return use_clock(FixedClock(at))


@pytest.mark.parametrize("crash_in", ["write_codes", "commit_chunk", "save_progress"])
def test_a_crashed_import_resumes_and_adds_each_code_once(world: World, crash_in: str) -> None:
    # Given 300 codes (with in-file duplicates across chunks) and an import that dies in chunk 3,
    # after writing the chunk's codes / after counting them on the goods / before moving the report
    goods = world.goods()
    good = generated(300)
    content = lines(*good[:120], *good[:10], *good[120:])
    import_id = world.upload(goods, content)
    original = getattr(CodesRepo, crash_in)
    calls = {"n": 0}

    def crashing(self: CodesRepo, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the Lambda died here")
        return result

    with patch.object(CodesRepo, crash_in, crashing):
        crashed = world.start(goods, import_id)
    assert crashed.status_code == 500
    report = world.report(goods, import_id)
    assert report["status"] == "importing" and report["lines_read"] < len(good) + 10
    # And right after the crash, the lease is still held for a moment (writes in flight may still land)
    assert world.start(goods, import_id).json_body["lines_read"] == report["lines_read"]

    # When the import is started again a minute later
    with later(minutes=1):
        resumed = world.start(goods, import_id)

    # Then it completes, and every code was added exactly once
    assert resumed.status_code == 200, resumed.json_body
    assert resumed.json_body["status"] == "done"
    assert (resumed.json_body["codes_added"], resumed.json_body["duplicates_in_file"]) == (300, 10)
    assert resumed.json_body["lines_read"] == 310
    assert world.stock(goods) == (300, 300)
    assert sorted(world.free_codes(goods)) == sorted(good)
    assert len(world.code_items(goods)) == 300


def test_a_resumed_chunk_never_frees_a_code_issued_meanwhile(world: World) -> None:
    # Given an import that died after writing chunk 1's codes, before counting them
    goods = world.goods()
    good = generated(80)
    import_id = world.upload(goods, lines(*good))
    original = CodesRepo.commit_chunk

    def dying(self: CodesRepo, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the Lambda died here")

    with patch.object(CodesRepo, "commit_chunk", dying):
        assert world.start(goods, import_id).status_code == 500
    assert CodesRepo.commit_chunk is original
    # And one of its codes was issued meanwhile (it was free in the index)
    issued = world.code_items(goods)[0]
    world.client.update_item(
        TableName=os.environ["JIFEN_TABLE"],
        Key={"PK": issued["PK"], "SK": issued["SK"]},
        UpdateExpression="SET order_id = :o REMOVE GSI1PK, GSI1SK",
        ExpressionAttributeValues={":o": {"S": "o_1"}},
    )
    # When the import resumes
    with later(minutes=1):
        report = world.start(goods, import_id).json_body
    # Then the issued code is counted once and stays issued
    assert (report["status"], report["codes_added"]) == ("done", 80)
    assert world.stock(goods) == (80, 80)
    assert len(world.free_codes(goods)) == 79
    again = world.client.get_item(TableName=os.environ["JIFEN_TABLE"], Key={"PK": issued["PK"], "SK": issued["SK"]})["Item"]
    assert again["order_id"]["S"] == "o_1" and "GSI1PK" not in again


def test_a_long_import_continues_where_it_stopped(world: World) -> None:
    # Given an import whose run has no time left after two chunks
    goods = world.goods()
    good = generated(260)
    import_id = world.upload(goods, lines(*good))
    budgets = iter([10.0, 10.0, 0.0])
    with patch.object(codes.Budget, "left", lambda self: next(budgets)):
        first = world.start(goods, import_id).json_body
    # Then it reports its progress
    assert (first["status"], first["lines_read"], first["codes_added"]) == ("importing", 100, 100)
    assert 0 < first["percent"] < 100
    # When it is started again, it goes on from its checkpoint to the end
    final = world.start(goods, import_id).json_body
    assert (final["status"], final["lines_read"], final["codes_added"]) == ("done", 260, 260)
    assert world.stock(goods) == (260, 260)


# --- one import per goods at a time ----------------------------------------------------------------


def test_a_second_import_of_the_same_goods_waits_for_the_lease(world: World) -> None:
    # Given two uploaded imports of the same goods, the first one being run elsewhere (it holds the lease)
    goods = world.goods()
    first = world.upload(goods, lines("A", "B"))
    second = world.upload(goods, lines("B", "C"))
    now = epoch(datetime.now(UTC))
    CodesRepo().acquire_lease("acme", goods, first, "another-attempt", until=now + 600, now=now)

    # When the second is started, it is refused
    refused = world.start(goods, second)
    assert refused.status_code == 409, refused.json_body
    assert refused.json_body["error"]["code"] == "CONFLICT"
    # And starting the first one again shows its progress instead of running it twice
    running = world.start(goods, first)
    assert (running.status_code, running.json_body["status"]) == (200, "uploading")

    # When the lease is given back, both run one after the other
    CodesRepo().release_lease("acme", goods, "another-attempt")
    assert world.start(goods, first).json_body["codes_added"] == 2
    report = world.start(goods, second).json_body
    assert (report["codes_added"], report["duplicates_in_pool"]) == (1, 1)
    assert world.stock(goods) == (3, 3)


def test_an_expired_lease_of_a_dead_import_is_taken_over(world: World) -> None:
    # Given another import's lease that ran out (its process died long ago)
    goods = world.goods()
    import_id = world.upload(goods, lines("A"))
    past = epoch(datetime.now(UTC)) - 3600
    CodesRepo().acquire_lease("acme", goods, "ci_dead", "dead-attempt", until=past, now=past)
    # When an import of the same goods starts, it runs
    assert world.start(goods, import_id).json_body["status"] == "done"


# --- refusals --------------------------------------------------------------------------------------


def test_refusals(world: World) -> None:
    goods = world.goods()
    mug = world.goods(category="physical")
    theirs = world.goods(tenant_id="other")
    uploaded = world.upload(goods, lines("A"))
    base = f"/v1/admin/goods/{goods}/code-imports"

    # Another tenant's goods: 404 on every route
    for method, path in [
        ("POST", f"/v1/admin/goods/{theirs}/code-imports"),
        ("POST", f"/v1/admin/goods/{theirs}/code-imports/{uploaded}/start"),
        ("GET", f"/v1/admin/goods/{theirs}/code-imports/{uploaded}"),
        ("GET", f"/v1/admin/goods/{theirs}/codes/summary"),
        ("GET", f"/v1/admin/goods/{goods}/code-imports/{uploaded}x"),
        ("POST", f"/v1/admin/goods/{goods}/code-imports/ci_nope/start"),
    ]:
        response = call(world.api, method, path, headers=bearer(world.owner))
        assert response.status_code == 404, (path, response.json_body)
    # ... and this tenant's import seen by the other tenant (same path, their token): 404
    assert call(world.api, "GET", f"{base}/{uploaded}", headers=bearer(world.other)).status_code == 404

    # Goods that are not CDK: 400
    for method, path in [("POST", f"/v1/admin/goods/{mug}/code-imports"), ("GET", f"/v1/admin/goods/{mug}/codes/summary")]:
        response = call(world.api, method, path, headers=bearer(world.owner))
        assert response.status_code == 400, response.json_body

    # An import of other goods under these goods' path: 404
    other_goods = world.goods()
    assert call(world.api, "GET", f"/v1/admin/goods/{other_goods}/code-imports/{uploaded}", headers=bearer(world.owner)).status_code == 404

    # Not uploaded: 400, and the import stays startable
    created = world.new_import(goods).json_body
    response = world.start(goods, created["import_id"])
    assert response.status_code == 400 and response.json_body["error"]["code"] == "VALIDATION_FAILED"
    assert world.report(goods, created["import_id"])["status"] == "uploading"

    # Bad bodies: 400, never 500
    for raw in (b"[1]", b"{", b'{"file_name": 5}', b'{"unknown": 1}'):
        response = call(world.api, "POST", base, headers=bearer(world.owner), raw=raw)
        assert response.status_code == 400, (raw, response.json_body)
    # No token: 401
    assert call(world.api, "POST", base, {}).status_code == 401


def test_the_upload_slot_is_a_presigned_text_put(world: World) -> None:
    goods = world.goods()
    created = world.new_import(goods).json_body
    assert created["key"] == f"pools/acme/{goods}/{created['import_id']}.txt"
    assert created["status"] == "uploading" and created["method"] == "PUT"
    assert created["headers"] == {"Content-Type": "text/plain"}
    assert created["key"] in created["upload_url"] and "X-Amz-Signature" in created["upload_url"]
    assert created["start_path"] == f"/v1/admin/goods/{goods}/code-imports/{created['import_id']}/start"


# --- the job -------------------------------------------------------------------------------------


def test_the_s3_event_runs_the_import(world: World) -> None:
    # Given an uploaded file
    goods = world.goods()
    import_id = world.upload(goods, lines(*generated(120)))
    key = f"pools/acme/{goods}/{import_id}.txt"
    # When S3 notifies the job (with another bucket's stray object in the same event)
    event = {"Records": [{"s3": {"object": {"key": key}}}, {"s3": {"object": {"key": "receipts/x/y.jpg"}}}]}
    result = job.import_codes(event, None)
    # Then the import is done, the stray object ignored; a repeated delivery changes nothing
    assert result == {import_id: "done"}
    assert job.import_codes(event, None) == {import_id: "done"}
    assert world.stock(goods) == (120, 120)
    assert world.report(goods, import_id)["codes_added"] == 120


def test_the_job_accepts_a_direct_payload_and_ignores_garbage(world: World) -> None:
    goods = world.goods()
    import_id = world.upload(goods, lines("A", "B"))
    assert job.import_codes({"tenant_id": "acme", "goods_id": goods, "import_id": import_id}) == {import_id: "done"}
    assert job.import_codes({"tenant_id": "acme", "goods_id": goods, "import_id": "ci_none"}) == {"ci_none": "missing"}
    for garbage in (
        None,
        [],
        {"Records": None},
        {"Records": [{"s3": None}]},
        {"tenant_id": "a/b"},
        {"Records": [{"s3": {"object": {"key": "pools/x.txt"}}}]},
    ):
        assert job.import_codes(garbage) == {}


def test_a_job_continues_itself_when_its_time_is_up(world: World) -> None:
    # Given a Lambda context with no time left for a chunk
    goods = world.goods()
    import_id = world.upload(goods, lines(*generated(10)))

    class Context:
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:import_codes"

        def get_remaining_time_in_millis(self) -> int:
            return 20_000  # less than the job's margin

    # When the job runs, it re-invokes itself with the same import
    with patch.object(aws, "invoke_async") as invoke:
        assert job.import_codes({"tenant_id": "acme", "goods_id": goods, "import_id": import_id}, Context()) == {import_id: "importing"}
    invoke.assert_called_once_with(
        Context.invoked_function_arn, {"tenant_id": "acme", "goods_id": goods, "import_id": import_id, "waited_seconds": 0}
    )


def test_a_job_waits_for_another_import_of_the_same_goods(world: World) -> None:
    # Given an uploaded import, and another import of the same goods holding the lease
    goods = world.goods()
    import_id = world.upload(goods, lines("A", "B", "C"))
    now = epoch(datetime.now(UTC))
    CodesRepo().acquire_lease("acme", goods, "ci_other", "other-attempt", until=now + 600, now=now)
    target = ImportTarget(tenant_id="acme", goods_id=goods, import_id=import_id)
    pauses: list[float] = []

    def other_import_ends(seconds: float) -> None:
        pauses.append(seconds)
        CodesRepo().release_lease("acme", goods, "other-attempt")

    # When the job runs, it waits (polls) until the lease is free, then imports
    budget = codes.Budget.of(None, cap=60.0, margin=5.0)
    outcome = codes.run_job(target, budget, sleep=other_import_ends)
    assert (outcome.status, pauses) == ("done", [codes.POLL_SECONDS])
    assert world.stock(goods) == (3, 3)

    # And a job that has waited an hour in all gives up (no more continuations), leaving the import to be started by hand
    second = world.upload(goods, lines("D"))
    CodesRepo().acquire_lease("acme", goods, "ci_other", "other-attempt", until=now + 600, now=now)
    patient = ImportTarget(tenant_id="acme", goods_id=goods, import_id=second, waited_seconds=codes.MAX_WAIT_SECONDS)
    outcome = codes.run_job(patient, budget, sleep=other_import_ends)
    assert (outcome.status, outcome.more) == ("gave_up", False)
    assert world.report(goods, second)["status"] == "uploading"


# --- pure rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"ABC-123", "code"),
        (b"  padded\t\r", "code"),
        (b"", "blank"),
        (b" \t\r", "blank"),
        (b"two words", "invalid"),
        (b"x" * 128, "code"),
        (b"x" * 129, "invalid"),
        ("caf\u00e9".encode(), "invalid"),
        (b"tab\tinside", "invalid"),
        (b"\x00nul", "invalid"),
        (b" " * 2000 + b"A", "invalid"),  # longer than any line is read
    ],
)
def test_what_a_line_is(raw: bytes, kind: str) -> None:
    assert codes.read_code(raw)[0] == kind


def test_s3_keys_of_code_files() -> None:
    target = codes.target_of_key("pools/acme/g_1/ci_2.txt")
    assert target is not None and (target.tenant_id, target.goods_id, target.import_id) == ("acme", "g_1", "ci_2")
    for key in (
        "pools/acme/g_1/ci_2.csv",
        "pools/acme/ci_2.txt",
        "other/acme/g_1/ci_2.txt",
        "pools/a b/g/c.txt",
        "pools/acme/g_1/x/ci.txt",
    ):
        assert codes.target_of_key(key) is None


def test_read_lines_keeps_offsets_across_blocks(world: World) -> None:
    # Given a file with CRLF lines, a line much longer than the limit, and no final newline
    content = b"one\r\n" + b"L" * 500 + b"\n\ntwo\nthree"
    key = "pools/acme/g/ci_lines.txt"
    world.s3.put_object(Bucket=get_settings().bucket, Key=key, Body=content)
    size, etag = aws.object_info(key) or (0, "")
    # When it is read in 97-byte blocks from the start, and again from the middle
    read = list(aws.read_lines(key, start=0, end=size, etag=etag, max_line=100))
    tail = list(aws.read_lines(key, start=read[1][1], end=size, etag=etag, max_line=100))
    # Then each line comes with the offset after it, long lines cut to the limit + 1
    assert read == [(b"one\r", 5), (b"L" * 101, 506), (b"", 507), (b"two", 511), (b"three", 516)]
    assert tail == read[2:]
    # And a changed file is noticed
    world.s3.put_object(Bucket=get_settings().bucket, Key=key, Body=b"other")
    with pytest.raises(aws.ObjectChanged):
        list(aws.read_lines(key, start=0, end=size, etag=etag, max_line=100))
