"""CDK code pools: code items, import records, the per-goods import lease, issued counters.

How an import stays exact without a transaction per code (or per chunk: moto copies the whole table
per transaction item, and a chunk's counts can be made idempotent without one):

- only the holder of the goods' lease writes codes of that goods (``acquire_lease``), and its lease
  outlives the process that holds it, so a code absent at ``existing_codes`` stays absent until
  ``write_codes`` puts it (nobody else can write, so nobody can have issued it);
- codes carry ``import_id`` and ``chunk``: a re-run of a chunk recognises what an earlier attempt wrote;
- ``commit_chunk`` adds a chunk's new codes to the goods' ``total`` / ``available`` in ONE conditional
  UpdateItem that also moves a per-import checkpoint kept on the goods item, so a chunk is counted once;
- ``save_progress`` then moves the import record's checkpoint (the report); a crash between the two
  re-runs the chunk, which is recognised as already counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError

from chalicelib.core.table import keys
from chalicelib.core.table.dynamo import condition_failed
from chalicelib.core.table.items import BaseItem
from chalicelib.core.txn.unit import Write
from chalicelib.mall.models.codes import CodeImport
from chalicelib.mall.store.items import CodeItem, GoodsItem


def import_checkpoint_attribute(import_id: str) -> str:
    """Name of the goods item's attribute that holds an import's next uncounted chunk."""
    return f"code_import_{import_id}"


class CodeImportItem(BaseItem):
    tenant_id = UnicodeAttribute()
    goods_id = UnicodeAttribute()
    import_id = UnicodeAttribute()
    s3_key = UnicodeAttribute()
    status = UnicodeAttribute()
    file_name = UnicodeAttribute(null=True)
    created_by = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    started_at = UnicodeAttribute(null=True)
    finished_at = UnicodeAttribute(null=True)
    lines_read = NumberAttribute(default=0)
    blank_lines = NumberAttribute(default=0)
    codes_added = NumberAttribute(default=0)
    duplicates_in_file = NumberAttribute(default=0)
    duplicates_in_pool = NumberAttribute(default=0)
    invalid_lines = NumberAttribute(default=0)
    invalid_line_numbers = UnicodeAttribute(default="[]")  # JSON list of the first few
    bytes_total = NumberAttribute(null=True)
    bytes_read = NumberAttribute(default=0)
    error = UnicodeAttribute(null=True)
    next_chunk = NumberAttribute(default=0)
    seq_base = NumberAttribute(null=True)
    etag = UnicodeAttribute(null=True)


class CodePoolItem(BaseItem):
    """Per goods: who may write its codes now (the lease) and the next free sequence number."""

    goods_id = UnicodeAttribute(null=True)
    holder = UnicodeAttribute(null=True)  # a random token per attempt, not the import id
    holder_import = UnicodeAttribute(null=True)
    lease_until = NumberAttribute(null=True)  # epoch seconds
    next_seq = NumberAttribute(null=True)


class CodesIssuedItem(BaseItem):
    issued = NumberAttribute(null=True)


class _GoodsCounts(BaseItem):
    """The goods item seen only through the numbers an import adds to (never saved whole)."""

    total = NumberAttribute(null=True)
    available = NumberAttribute(null=True)


@dataclass(frozen=True)
class GoodsStock:
    tenant_id: str
    goods_id: str
    category: str | None
    total: int
    available: int


@dataclass(frozen=True)
class NewCode:
    code: str
    digest: str
    seq: int


@dataclass(frozen=True)
class Lease:
    holder: str
    import_id: str
    until: int


class LeaseHeld(Exception):
    """Another attempt holds the goods' import lease."""

    def __init__(self, import_id: str | None, until: int) -> None:
        super().__init__(import_id)
        self.import_id = import_id
        self.until = until


class GoodsGone(Exception):
    """The goods item no longer exists."""


class ProgressConflict(Exception):
    """The import record's checkpoint is not where this attempt left it (should not happen under the lease)."""


def _record(item: CodeImportItem) -> CodeImport:
    return CodeImport(
        import_id=item.import_id,
        tenant_id=item.tenant_id,
        goods_id=item.goods_id,
        key=item.s3_key,
        status=item.status,  # type: ignore[arg-type]
        file_name=item.file_name,
        created_by=item.created_by,
        created_at=item.created_at,
        updated_at=item.updated_at,
        started_at=item.started_at,
        finished_at=item.finished_at,
        lines_read=int(item.lines_read),
        blank_lines=int(item.blank_lines),
        codes_added=int(item.codes_added),
        duplicates_in_file=int(item.duplicates_in_file),
        duplicates_in_pool=int(item.duplicates_in_pool),
        invalid_lines=int(item.invalid_lines),
        invalid_line_numbers=json.loads(item.invalid_line_numbers),
        bytes_total=None if item.bytes_total is None else int(item.bytes_total),
        bytes_read=int(item.bytes_read),
        error=item.error,
        next_chunk=int(item.next_chunk),
        seq_base=None if item.seq_base is None else int(item.seq_base),
        etag=item.etag,
    )


_PROGRESS_FIELDS = (
    "lines_read",
    "blank_lines",
    "codes_added",
    "duplicates_in_file",
    "duplicates_in_pool",
    "invalid_lines",
    "bytes_read",
)


class CodesRepo:
    # --- goods ---------------------------------------------------------------------------------

    def goods(self, tenant_id: str, goods_id: str) -> GoodsStock | None:
        try:
            item = GoodsItem.get(keys.tenant_pk(tenant_id), keys.goods_sk(goods_id), consistent_read=True)
        except GoodsItem.DoesNotExist:
            return None
        try:
            document = json.loads(item.document)
        except ValueError:
            document = {}
        category = document.get("category") if isinstance(document, dict) else None
        return GoodsStock(tenant_id, goods_id, category, int(item.total), int(item.available))

    def commit_chunk(self, tenant_id: str, goods_id: str, import_id: str, chunk: int, added: int) -> bool:
        """Add a chunk's new codes to the goods' total and available, once: False if it was counted before."""
        checkpoint = NumberAttribute(attr_name=import_checkpoint_attribute(import_id))
        item = _GoodsCounts(PK=keys.tenant_pk(tenant_id), SK=keys.goods_sk(goods_id))
        condition = _GoodsCounts.PK.exists() & (checkpoint.does_not_exist() | (checkpoint <= chunk))
        actions: list[Any] = [_GoodsCounts.total.add(added), _GoodsCounts.available.add(added), checkpoint.set(chunk + 1)]
        try:
            item.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            if self.goods(tenant_id, goods_id) is None:
                raise GoodsGone(goods_id) from exc
            return False
        return True

    def forget_checkpoint(self, tenant_id: str, goods_id: str, import_id: str) -> None:
        """A finished import's checkpoint is not needed any more (no chunk of it runs again)."""
        checkpoint = UnicodeAttribute(attr_name=import_checkpoint_attribute(import_id))
        item = _GoodsCounts(PK=keys.tenant_pk(tenant_id), SK=keys.goods_sk(goods_id))
        try:
            item.update(actions=[checkpoint.remove()], condition=_GoodsCounts.PK.exists())
        except UpdateError as exc:
            if not condition_failed(exc):
                raise

    # --- import records ------------------------------------------------------------------------

    def create_import(self, record: CodeImport) -> None:
        CodeImportItem(
            PK=keys.tenant_pk(record.tenant_id),
            SK=keys.code_import_sk(record.import_id),
            kind="code_import",
            tenant_id=record.tenant_id,
            goods_id=record.goods_id,
            import_id=record.import_id,
            s3_key=record.key,
            status=record.status,
            file_name=record.file_name,
            created_by=record.created_by,
            created_at=record.created_at,
            updated_at=record.updated_at,
        ).save(condition=CodeImportItem.PK.does_not_exist())

    def get_import(self, tenant_id: str, import_id: str) -> CodeImport | None:
        try:
            return _record(CodeImportItem.get(keys.tenant_pk(tenant_id), keys.code_import_sk(import_id), consistent_read=True))
        except CodeImportItem.DoesNotExist:
            return None

    def mark_importing(self, record: CodeImport, *, size: int, etag: str, seq_base: int, at: str) -> CodeImport | None:
        """uploading → importing, with the file's size and version; None if it was not uploading any more."""
        item = CodeImportItem(PK=keys.tenant_pk(record.tenant_id), SK=keys.code_import_sk(record.import_id))
        actions: list[Any] = [
            CodeImportItem.status.set("importing"),
            CodeImportItem.bytes_total.set(size),
            CodeImportItem.etag.set(etag),
            CodeImportItem.seq_base.set(seq_base),
            CodeImportItem.started_at.set(at),
            CodeImportItem.updated_at.set(at),
        ]
        try:
            item.update(actions=actions, condition=CodeImportItem.status == "uploading")
        except UpdateError as exc:
            if condition_failed(exc):
                return None
            raise
        return _record(item)

    def save_progress(self, record: CodeImport, *, expected_chunk: int) -> None:
        """The report and checkpoint after a chunk, moved only from where this attempt found it."""
        item = CodeImportItem(PK=keys.tenant_pk(record.tenant_id), SK=keys.code_import_sk(record.import_id))
        actions: list[Any] = [getattr(CodeImportItem, name).set(getattr(record, name)) for name in _PROGRESS_FIELDS]
        actions += [
            CodeImportItem.invalid_line_numbers.set(json.dumps(record.invalid_line_numbers)),
            CodeImportItem.next_chunk.set(record.next_chunk),
            CodeImportItem.updated_at.set(record.updated_at),
        ]
        condition = (CodeImportItem.status == "importing") & (CodeImportItem.next_chunk == expected_chunk)
        try:
            item.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if condition_failed(exc):
                raise ProgressConflict(record.import_id) from exc
            raise

    def finish(self, record: CodeImport) -> None:
        """importing (or uploading, for a file refused before any line) → done / failed."""
        item = CodeImportItem(PK=keys.tenant_pk(record.tenant_id), SK=keys.code_import_sk(record.import_id))
        actions: list[Any] = [
            CodeImportItem.status.set(record.status),
            CodeImportItem.updated_at.set(record.updated_at),
            CodeImportItem.finished_at.set(record.finished_at or record.updated_at),
        ]
        if record.error is not None:
            actions.append(CodeImportItem.error.set(record.error))
        try:
            item.update(actions=actions, condition=CodeImportItem.status.is_in("uploading", "importing"))
        except UpdateError as exc:
            if not condition_failed(exc):
                raise

    # --- the lease -----------------------------------------------------------------------------

    def acquire_lease(self, tenant_id: str, goods_id: str, import_id: str, holder: str, *, until: int, now: int) -> Lease:
        """Take the goods' import lease if it is free or expired; raises LeaseHeld otherwise."""
        pk, sk = keys.tenant_pk(tenant_id), keys.code_pool_sk(goods_id)
        item = CodePoolItem(PK=pk, SK=sk)
        actions: list[Any] = [
            CodePoolItem.kind.set("code_pool"),
            CodePoolItem.goods_id.set(goods_id),
            CodePoolItem.holder.set(holder),
            CodePoolItem.holder_import.set(import_id),
            CodePoolItem.lease_until.set(until),
        ]
        condition = CodePoolItem.holder.does_not_exist() | (CodePoolItem.lease_until < now)
        try:
            item.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            try:
                current = CodePoolItem.get(pk, sk, consistent_read=True)
            except CodePoolItem.DoesNotExist:
                raise LeaseHeld(None, now) from exc
            raise LeaseHeld(current.holder_import, int(current.lease_until or now)) from exc
        return Lease(holder=holder, import_id=import_id, until=until)

    def reserve_seq(self, tenant_id: str, goods_id: str, holder: str, count: int) -> int:
        """Reserve ``count`` sequence numbers (the order codes are issued in); returns the first."""
        item = CodePoolItem(PK=keys.tenant_pk(tenant_id), SK=keys.code_pool_sk(goods_id))
        try:
            item.update(actions=[CodePoolItem.next_seq.add(count)], condition=CodePoolItem.holder == holder)
        except UpdateError as exc:
            if condition_failed(exc):
                raise LeaseHeld(None, 0) from exc
            raise
        return int(item.next_seq or count) - count

    def release_lease(self, tenant_id: str, goods_id: str, holder: str, *, keep_until: int | None = None) -> None:
        """Give the lease up; ``keep_until`` keeps it a little longer (writes in flight may still land)."""
        item = CodePoolItem(PK=keys.tenant_pk(tenant_id), SK=keys.code_pool_sk(goods_id))
        if keep_until is None:
            actions: list[Any] = [CodePoolItem.holder.remove(), CodePoolItem.holder_import.remove(), CodePoolItem.lease_until.remove()]
        else:
            actions = [CodePoolItem.lease_until.set(keep_until)]
        try:
            item.update(actions=actions, condition=CodePoolItem.holder == holder)
        except UpdateError as exc:
            if not condition_failed(exc):
                raise

    # --- codes ---------------------------------------------------------------------------------

    def existing_codes(self, goods_id: str, digests: Iterable[str]) -> dict[str, tuple[str, int]]:
        """digest → (import id, chunk) of the codes of this pool that exist already (consistent reads)."""
        wanted = [(keys.code_pk(goods_id, digest), keys.CODE_SK) for digest in digests]
        found: dict[str, tuple[str, int]] = {}
        prefix = len(keys.code_pk(goods_id, ""))
        for item in CodeItem.batch_get(wanted, consistent_read=True, attributes_to_get=["PK", "import_id", "chunk"]):
            found[item.PK[prefix:]] = (item.import_id, int(item.chunk))
        return found

    def write_codes(self, goods_id: str, import_id: str, chunk: int, codes: Iterable[NewCode]) -> int:
        """Put free codes (in the sparse free-code index); BatchWriteItem, 25 a request. Returns how many."""
        written = 0
        with CodeItem.batch_write() as batch:
            for new in codes:
                batch.save(
                    CodeItem(
                        PK=keys.code_pk(goods_id, new.digest),
                        SK=keys.CODE_SK,
                        GSI1PK=keys.free_codes_gsi(goods_id, keys.code_bucket(new.digest)),
                        GSI1SK=keys.free_codes_gsi_sk(new.seq),
                        kind="code",
                        goods_id=goods_id,
                        code=new.code,
                        import_id=import_id,
                        chunk=chunk,
                        seq=new.seq,
                    )
                )
                written += 1
        return written

    # --- issued counters -----------------------------------------------------------------------

    def issued(self, goods_id: str) -> int:
        """Codes issued so far: the sum of the shards (one BatchGetItem)."""
        wanted = [(keys.codes_issued_pk(goods_id, bucket), keys.CODES_ISSUED_SK) for bucket in range(keys.CODE_BUCKETS)]
        return sum(int(item.issued or 0) for item in CodesIssuedItem.batch_get(wanted))


def issued_write(goods_id: str, bucket: int, delta: int = 1) -> Write:
    """For the exchange's transaction: ``delta`` codes of ``bucket`` issued (−1 when a cancelled order gives one back)."""
    counter = CodesIssuedItem(PK=keys.codes_issued_pk(goods_id, bucket), SK=keys.CODES_ISSUED_SK)
    return Write("update", counter, None, "codes_issued", (CodesIssuedItem.kind.set("codes_issued"), CodesIssuedItem.issued.add(delta)))
