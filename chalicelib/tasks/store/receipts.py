"""Receipts and the review queue (GSI2: receipts of an app by status, oldest first)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.core.models import Page
from chalicelib.core.table import keys
from chalicelib.core.table.cursors import decode_cursor, encode_cursor
from chalicelib.core.table.dynamo import condition_failed
from chalicelib.core.txn import unit
from chalicelib.core.txn.unit import ConditionRefused, CounterSpec, DuplicateEffect, GuardSpec, Write
from chalicelib.tasks.receipt_models import Receipt
from chalicelib.tasks.store.items import ReceiptItem


def _receipt(item: ReceiptItem) -> Receipt:
    return Receipt(
        receipt_id=item.receipt_id,
        app_id=item.app_id,
        member_id=item.member_id,
        openid=item.openid,
        task_id=item.task_id,
        status=item.status,  # type: ignore[arg-type]
        image_keys=json.loads(item.image_keys),
        created_at=item.created_at,
        submitted_at=item.submitted_at,
        decided_at=item.decided_at,
        reviewer=item.reviewer,
        reason=item.reason,
        task_token=item.task_token,
        points=None if item.points is None else int(item.points),
    )


class ReceiptsRepo:
    def create(self, receipt: Receipt, *, counters: Sequence[CounterSpec] = (), ttl: int | None = None) -> None:
        """The new receipt (``ttl``: when it may go while still uploading) with its limit ``counters``, in one
        transaction: a full counter refuses it (``LimitReached``) and nothing is written."""
        item = ReceiptItem(
            PK=keys.receipt_pk(receipt.app_id, receipt.receipt_id),
            SK=keys.RECEIPT_SK,
            kind="receipt",
            receipt_id=receipt.receipt_id,
            app_id=receipt.app_id,
            member_id=receipt.member_id,
            openid=receipt.openid,
            task_id=receipt.task_id,
            status=receipt.status,
            image_keys=json.dumps(receipt.image_keys),
            created_at=receipt.created_at,
            ttl=ttl,
        )
        write = Write(op="put", item=item, condition=ReceiptItem.PK.does_not_exist(), label="receipt")
        unit.commit(unit.UnitOfWork(counters=list(counters), writes=[write]))

    def get(self, app_id: str, receipt_id: str) -> Receipt | None:
        try:
            return _receipt(ReceiptItem.get(keys.receipt_pk(app_id, receipt_id), keys.RECEIPT_SK, consistent_read=True))
        except ReceiptItem.DoesNotExist:
            return None

    def transition(self, app_id: str, receipt_id: str, from_status: tuple[str, ...], to_status: str, **fields: Any) -> bool:
        """Move a receipt between states only from the expected ones; False if it is elsewhere already."""
        item = ReceiptItem(PK=keys.receipt_pk(app_id, receipt_id), SK=keys.RECEIPT_SK)
        condition = ReceiptItem.PK.exists() & ReceiptItem.status.is_in(*from_status)
        try:
            item.update(actions=_transition_actions(app_id, receipt_id, to_status, fields), condition=condition)  # type: ignore[arg-type]
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def close_unless_credited(
        self, app_id: str, receipt_id: str, from_status: tuple[str, ...], to_status: str, credit: GuardSpec, **fields: Any
    ) -> str:
        """Close a receipt (e.g. rejected on timeout) only while its credit guard does not exist, in one transaction.

        "closed"; "credited" when the points went in first (the receipt is left alone); "moved" when it is
        no longer in ``from_status``. The approval's credit checks the receipt is open in its own transaction
        (:meth:`open_check`), so a credit and a rejection can never both land.
        """
        write = Write(
            op="update",
            item=ReceiptItem(PK=keys.receipt_pk(app_id, receipt_id), SK=keys.RECEIPT_SK),
            actions=tuple(_transition_actions(app_id, receipt_id, to_status, fields)),
            condition=ReceiptItem.PK.exists() & ReceiptItem.status.is_in(*from_status),
            label="receipt",
        )
        try:
            unit.commit(unit.UnitOfWork(absent=[credit], writes=[write]))
        except DuplicateEffect:
            return "credited"
        except ConditionRefused:
            return "moved"
        return "closed"

    @staticmethod
    def open_check(app_id: str, receipt_id: str, statuses: tuple[str, ...]) -> Write:
        """A condition for a transaction: the receipt is still in one of ``statuses`` (refused as "receipt")."""
        item = (ReceiptItem, keys.receipt_pk(app_id, receipt_id), keys.RECEIPT_SK)
        return Write(op="check", item=item, condition=ReceiptItem.status.is_in(*statuses), label="receipt")

    def hold_token(self, app_id: str, receipt_id: str, token: str, submitted_at: str | None) -> bool:
        """The waiting execution's task token, kept while the receipt waits (submitted or pending) for review.

        It joins the review queue, ordered by ``submitted_at``; a repeated wait step replaces the token.
        A receipt back in "uploading" takes it too: its submit started this execution but could not tell
        (a timeout after Step Functions accepted it) and put it back; the review goes on rather than wait unheld.
        """
        waiting = ("submitted", "pending", "uploading")
        return self.transition(app_id, receipt_id, waiting, "pending", task_token=token, submitted_at=submitted_at, ttl=None)

    def pending(self, app_id: str, cursor: str | None, limit: int) -> Page[Receipt]:
        gsi_pk = keys.review_queue_gsi(app_id, "pending")
        result = ReceiptItem.gsi2.query(gsi_pk, limit=limit, last_evaluated_key=decode_cursor(cursor, expect={"GSI2PK": gsi_pk}))
        items = [_receipt(item) for item in result]  # type: ignore[arg-type]
        return Page[Receipt](items=items, cursor=encode_cursor(result.last_evaluated_key))


def _transition_actions(app_id: str, receipt_id: str, to_status: str, fields: dict[str, Any]) -> list[Any]:
    actions: list[Any] = [ReceiptItem.status.set(to_status)]
    for name, value in fields.items():
        attribute = getattr(ReceiptItem, name)
        actions.append(attribute.remove() if value is None else attribute.set(value))
    if to_status in ("pending", "deciding"):
        actions += [
            ReceiptItem.GSI2PK.set(keys.review_queue_gsi(app_id, "pending")),
            ReceiptItem.GSI2SK.set(f"{fields.get('submitted_at') or ''}{receipt_id}"),
        ]
    else:
        actions += [ReceiptItem.GSI2PK.remove(), ReceiptItem.GSI2SK.remove()]
    return actions
