"""CDK code pools (G1): an operator uploads a code file (one code a line); an import adds each new code once.

The file is read in chunks of ``CHUNK_LINES`` lines from a checkpoint, under the goods' import lease
(see dal/codes.py for why that is exact without a transaction per code). The S3 upload triggers the
job in the cloud; the start route runs the same ``run`` for a bounded time (locally, S3 sends no
events). Either may stop at any line and be continued: codes are never lost nor counted twice.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal

from chalicelib.core import aws
from chalicelib.core.clock import Clock, epoch, iso, process_clock, time_now
from chalicelib.core.errors import Conflict, NotFound, ValidationFailed
from chalicelib.core.observability import count, log_event
from chalicelib.core.table import keys
from chalicelib.mall.models.codes import CODE_FILE_PREFIX, CodeImport, CodePoolSummary, CreateCodeImport, ImportTarget
from chalicelib.mall.store.codes import CodesRepo, GoodsGone, LeaseHeld, NewCode

CHUNK_LINES = 1000  # a checkpoint per chunk: a resumed import re-reads at most this many lines
MAX_CODE_LENGTH = 128
MAX_LINE_BYTES = 1024  # longer lines are invalid whatever they hold (and are never kept whole in memory)
MAX_FILE_BYTES = 128 * 1024 * 1024
INVALID_SAMPLE = 20  # invalid line numbers kept in the report
BOM = b"\xef\xbb\xbf"
_CODE_BYTES = frozenset(range(0x21, 0x7F))  # printable ASCII, no space

# A lease outlives the process holding it by this much, so a write in flight when it died has landed.
LEASE_MARGIN_SECONDS = 60
# After an error the lease is kept this long (a write whose response was lost may still be applied).
FAILURE_GRACE_SECONDS = 15
API_BUDGET_SECONDS = 20.0  # API Gateway gives up after 29 s
JOB_BUDGET_SECONDS = 840.0  # the job's Lambda timeout is 900 s
POLL_SECONDS = 10.0
MAX_WAIT_SECONDS = 3600  # a job waits this long in all for another import of the same goods, then gives up


def pool_key(tenant_id: str, goods_id: str, import_id: str) -> str:
    return f"{CODE_FILE_PREFIX}{tenant_id}/{goods_id}/{import_id}.txt"


def target_of_key(key: str) -> ImportTarget | None:
    """``pools/{tenant}/{goods}/{import}.txt`` → what to import; None for any other key."""
    parts = key.split("/")
    if len(parts) != 4 or f"{parts[0]}/" != CODE_FILE_PREFIX or not parts[3].endswith(".txt"):
        return None
    try:
        return ImportTarget(tenant_id=parts[1], goods_id=parts[2], import_id=parts[3][: -len(".txt")])
    except ValueError:
        return None


# --- time ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """When to stop starting chunks, and when the process running them is surely gone (its timeout)."""

    stop_at: float  # time.monotonic()
    gone_at: float

    @classmethod
    def of(cls, lambda_context: Any, *, cap: float, margin: float) -> Budget:
        """At most ``cap`` seconds, ending ``margin`` seconds before the Lambda's timeout (if there is one)."""
        now = time.monotonic()
        remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
        if remaining is None:
            # No Lambda around (local server, benchmark): nothing kills the process; a chunk takes far less than the margin.
            return cls(stop_at=now + cap, gone_at=now + cap + margin)
        left = remaining() / 1000  # seconds (a time budget, not an amount)
        return cls(stop_at=now + max(0.0, min(cap, left - margin)), gone_at=now + left)

    def left(self) -> float:
        return self.stop_at - time.monotonic()

    def lease_until(self, now: int) -> int:
        return now + math.ceil(self.gone_at - time.monotonic()) + LEASE_MARGIN_SECONDS


# --- lines → codes (pure) ------------------------------------------------------------------------


def read_code(raw: bytes) -> tuple[Literal["blank", "invalid", "code"], str]:
    """One line: blank (only whitespace), a code (1–128 printable ASCII characters, no space) or invalid."""
    if len(raw) > MAX_LINE_BYTES:
        return "invalid", ""
    text = raw.strip(b" \t\r\n\v\f")
    if not text:
        return "blank", ""
    if len(text) > MAX_CODE_LENGTH or not _CODE_BYTES.issuperset(text):
        return "invalid", ""
    return "code", text.decode("ascii")


@dataclass
class ChunkTally:
    """What a chunk's lines hold before the pool is asked: codes seen first in this chunk, by digest."""

    lines: int = 0
    blank: int = 0
    invalid: int = 0
    invalid_numbers: list[int] = field(default_factory=list)
    duplicates_in_file: int = 0
    codes: dict[str, tuple[str, int]] = field(default_factory=dict)  # digest → (code, line number)


def tally(lines: Iterable[tuple[int, bytes]]) -> ChunkTally:
    """Parse numbered lines; a code met again in the same chunk is a duplicate in the file."""
    result = ChunkTally()
    for number, raw in lines:
        result.lines += 1
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        kind, code = read_code(raw)
        if kind == "blank":
            result.blank += 1
        elif kind == "invalid":
            result.invalid += 1
            result.invalid_numbers.append(number)
        else:
            digest = keys.code_digest(code)
            if digest in result.codes:
                result.duplicates_in_file += 1
            else:
                result.codes[digest] = (code, number)
    return result


@dataclass(frozen=True)
class ChunkPlan:
    write: list[NewCode]
    added: int
    duplicates_in_file: int
    duplicates_in_pool: int


def plan(chunk: ChunkTally, existing: dict[str, tuple[str, int]], import_id: str, chunk_number: int, seq_base: int) -> ChunkPlan:
    """Which codes to write, and how to count each, given what the pool already holds.

    A code found with this import and this chunk was written by an earlier attempt at this chunk
    (which never got counted, or is recognised as counted by the goods' checkpoint): it is new.
    Found with this import and an earlier chunk: it was earlier in this file. Anything else: in the pool.
    """
    write: list[NewCode] = []
    added = in_file = in_pool = 0
    for digest, (code, number) in chunk.codes.items():
        found = existing.get(digest)
        if found is None:
            write.append(NewCode(code=code, digest=digest, seq=seq_base + number))
            added += 1
        elif found == (import_id, chunk_number):
            added += 1
        elif found[0] == import_id:
            in_file += 1
        else:
            in_pool += 1
    return ChunkPlan(write, added, chunk.duplicates_in_file + in_file, in_pool)


# --- the import ----------------------------------------------------------------------------------


def _cdk_goods(repo: CodesRepo, tenant_id: str, goods_id: str) -> None:
    goods = repo.goods(tenant_id, goods_id)
    if goods is None:
        raise NotFound("Goods not found")
    if goods.category != "cdk":
        raise ValidationFailed("Only CDK goods have a code pool", details=[{"field": "goods_id", "problem": "not CDK goods"}])


def _own_import(repo: CodesRepo, tenant_id: str, goods_id: str, import_id: str) -> CodeImport:
    record = repo.get_import(tenant_id, import_id)
    if record is None or record.goods_id != goods_id:
        raise NotFound("Code import not found")
    return record


def create_import(
    tenant_id: str, goods_id: str, operator: str, body: CreateCodeImport, repo: CodesRepo | None = None, clock: Clock | None = None
) -> tuple[CodeImport, str]:
    """A new import waiting for its file, and the presigned URL to PUT the file to."""
    repo = repo or CodesRepo()
    _cdk_goods(repo, tenant_id, goods_id)
    now = iso(time_now(clock))
    import_id = f"ci_{secrets.token_hex(8)}"
    record = CodeImport(
        import_id=import_id,
        tenant_id=tenant_id,
        goods_id=goods_id,
        key=pool_key(tenant_id, goods_id, import_id),
        status="uploading",
        file_name=body.file_name,
        created_by=operator,
        created_at=now,
        updated_at=now,
    )
    repo.create_import(record)
    return record, aws.upload_url(record.key, "text/plain")


def get_import(tenant_id: str, goods_id: str, import_id: str, repo: CodesRepo | None = None) -> CodeImport:
    repo = repo or CodesRepo()
    _cdk_goods(repo, tenant_id, goods_id)
    return _own_import(repo, tenant_id, goods_id, import_id)


def summary(tenant_id: str, goods_id: str, repo: CodesRepo | None = None) -> CodePoolSummary:
    """Counters, not a count: total = codes imported (the goods' total), issued = the sharded counters."""
    repo = repo or CodesRepo()
    goods = repo.goods(tenant_id, goods_id)
    if goods is None:
        raise NotFound("Goods not found")
    if goods.category != "cdk":
        raise ValidationFailed("Only CDK goods have a code pool", details=[{"field": "goods_id", "problem": "not CDK goods"}])
    issued = repo.issued(goods_id)
    return CodePoolSummary(goods_id=goods_id, total=goods.total, issued=issued, free=max(0, goods.total - issued))


def start(
    tenant_id: str, goods_id: str, import_id: str, budget: Budget, repo: CodesRepo | None = None, clock: Clock | None = None
) -> CodeImport:
    """Run (or continue) an import for a while: the start route. Not uploaded → 400; another import of the goods running → 409.

    If this very import is being run elsewhere (the S3-triggered job), its progress is returned.
    """
    repo = repo or CodesRepo()
    _cdk_goods(repo, tenant_id, goods_id)
    record = _own_import(repo, tenant_id, goods_id, import_id)
    if record.status in ("done", "failed"):
        return record
    if record.status == "uploading" and aws.object_info(record.key) is None:
        raise ValidationFailed("Upload the code file first", details=[{"field": "file", "problem": "not uploaded"}])
    try:
        return run(record, budget, repo, clock)
    except LeaseHeld as held:
        if held.import_id == import_id:
            return _own_import(repo, tenant_id, goods_id, import_id)
        raise Conflict("Another code import of these goods is running; start this one when it is done") from None


@dataclass(frozen=True)
class JobOutcome:
    # the import's status, "missing", "waiting" (another attempt holds the goods' lease) or "gave_up" (waited too long)
    status: str
    waited_seconds: int = 0

    @property
    def more(self) -> bool:
        """Whether the job should continue in a fresh invocation."""
        return self.status in ("importing", "waiting")


def run_job(
    target: ImportTarget,
    budget: Budget,
    repo: CodesRepo | None = None,
    clock: Clock | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> JobOutcome:
    """The job's run: as ``start``, but a lease held by another attempt is waited for while the budget lasts."""
    repo = repo or CodesRepo()
    waited = 0.0
    while True:
        record = repo.get_import(target.tenant_id, target.import_id)
        if record is None or record.goods_id != target.goods_id:
            return JobOutcome("missing")
        if record.status in ("done", "failed"):
            return JobOutcome(record.status, int(waited))
        try:
            return JobOutcome(run(record, budget, repo, clock).status, int(waited))
        except LeaseHeld:
            if target.waited_seconds + waited >= MAX_WAIT_SECONDS:
                log_event("code_import_gave_up", import_id=target.import_id, waited_seconds=target.waited_seconds + int(waited))
                return JobOutcome("gave_up", int(waited))
            pause = min(POLL_SECONDS, budget.left())
            if pause <= 1:
                return JobOutcome("waiting", int(waited))
            sleep(pause)
            waited += pause


def run(record: CodeImport, budget: Budget, repo: CodesRepo | None = None, clock: Clock | None = None) -> CodeImport:
    """Continue one import from its checkpoint under the goods' lease until it ends or the budget is spent.

    Raises LeaseHeld when another attempt holds the lease.
    """
    repo = repo or CodesRepo()
    clock = clock or process_clock()
    tenant_id, goods_id, import_id = record.tenant_id, record.goods_id, record.import_id
    holder = secrets.token_hex(16)
    now = epoch(clock.now())
    repo.acquire_lease(tenant_id, goods_id, import_id, holder, until=budget.lease_until(now), now=now)
    try:
        current = repo.get_import(tenant_id, import_id)  # read again under the lease
        if current is None:
            raise NotFound("Code import not found")
        if current.status == "uploading":
            current = _begin(current, holder, repo, clock)
        if current.status == "importing":
            current = _import(current, budget, repo, clock)
    except BaseException:
        repo.release_lease(tenant_id, goods_id, holder, keep_until=epoch(clock.now()) + FAILURE_GRACE_SECONDS)
        raise
    repo.release_lease(tenant_id, goods_id, holder)
    return current


def _begin(record: CodeImport, holder: str, repo: CodesRepo, clock: Clock) -> CodeImport:
    """uploading → importing: the file's size and version are fixed, its codes get sequence numbers."""
    info = aws.object_info(record.key)
    if info is None:
        raise ValidationFailed("Upload the code file first", details=[{"field": "file", "problem": "not uploaded"}])
    size, etag = info
    if size > MAX_FILE_BYTES:
        return _end(record, repo, clock, error=f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    # A line has at least one byte: size + 1 numbers are enough for every line (gaps are harmless).
    seq_base = repo.reserve_seq(record.tenant_id, record.goods_id, holder, size + 1)
    marked = repo.mark_importing(record, size=size, etag=etag, seq_base=seq_base, at=iso(clock.now()))
    if marked is None:
        found = repo.get_import(record.tenant_id, record.import_id)
        return found or record
    log_event("code_import_started", import_id=record.import_id, goods_id=record.goods_id, bytes=size)
    return marked


def _import(record: CodeImport, budget: Budget, repo: CodesRepo, clock: Clock) -> CodeImport:
    assert record.bytes_total is not None and record.etag is not None and record.seq_base is not None
    lines: Iterator[tuple[bytes, int]] = aws.read_lines(
        record.key, start=record.bytes_read, end=record.bytes_total, etag=record.etag, max_line=MAX_LINE_BYTES
    )
    try:
        while budget.left() > 0:
            batch = list(islice(lines, CHUNK_LINES))
            if batch:
                record = _chunk(record, batch, repo, clock)
            if len(batch) < CHUNK_LINES:
                return _end(record, repo, clock)
    except aws.ObjectChanged:
        return _end(record, repo, clock, error="the file changed during the import: upload it again as a new import")
    except GoodsGone:
        return _end(record, repo, clock, error="the goods were deleted")
    return record


def _chunk(record: CodeImport, batch: list[tuple[bytes, int]], repo: CodesRepo, clock: Clock) -> CodeImport:
    """One chunk: look the codes up, write the new ones, count them once, then move the report's checkpoint."""
    assert record.seq_base is not None
    number = record.next_chunk
    first = record.lines_read + 1
    counted = tally((first + i, raw) for i, (raw, _) in enumerate(batch))
    existing = repo.existing_codes(record.goods_id, counted.codes)
    chunk_plan = plan(counted, existing, record.import_id, number, record.seq_base)
    repo.write_codes(record.goods_id, record.import_id, number, chunk_plan.write)
    if chunk_plan.added:
        repo.commit_chunk(record.tenant_id, record.goods_id, record.import_id, number, chunk_plan.added)
    sample = (record.invalid_line_numbers + counted.invalid_numbers)[:INVALID_SAMPLE]
    progressed = record.model_copy(
        update={
            "lines_read": record.lines_read + counted.lines,
            "blank_lines": record.blank_lines + counted.blank,
            "invalid_lines": record.invalid_lines + counted.invalid,
            "invalid_line_numbers": sample,
            "codes_added": record.codes_added + chunk_plan.added,
            "duplicates_in_file": record.duplicates_in_file + chunk_plan.duplicates_in_file,
            "duplicates_in_pool": record.duplicates_in_pool + chunk_plan.duplicates_in_pool,
            "bytes_read": batch[-1][1],
            "next_chunk": number + 1,
            "updated_at": iso(clock.now()),
        }
    )
    repo.save_progress(progressed, expected_chunk=number)
    return progressed


def _end(record: CodeImport, repo: CodesRepo, clock: Clock, error: str | None = None) -> CodeImport:
    now = iso(clock.now())
    ended = record.model_copy(update={"status": "failed" if error else "done", "error": error, "updated_at": now, "finished_at": now})
    repo.finish(ended)
    if error is None:
        repo.forget_checkpoint(record.tenant_id, record.goods_id, record.import_id)
        count("CodesImported", record.codes_added)
    log_event(
        "code_import_ended",
        import_id=record.import_id,
        goods_id=record.goods_id,
        status=ended.status,
        error=error,
        lines=record.lines_read,
        added=record.codes_added,
        duplicates_in_file=record.duplicates_in_file,
        duplicates_in_pool=record.duplicates_in_pool,
        invalid=record.invalid_lines,
    )
    return ended
