"""core.review, the task-token review skeleton: deciding resumes a real (moto) execution; applying and timing out
settle a review once; a caught failure reads as one line."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.core import aws
from chalicelib.core.errors import Conflict, JifenError, UpstreamFailed, ValidationFailed
from chalicelib.core.review import (
    DECIDING,
    PENDING,
    TIMEOUT_REASON,
    Decision,
    apply_once,
    claim_and_resume,
    expire_once,
    failure_note,
    failure_text,
)

NOT_WAITING = "not waiting"
TAKEN = "someone else decided"


@dataclass
class Item:
    """A review item as a domain's store reads it."""

    status: str
    task_token: str | None


@dataclass
class Store:
    """Stands in for a domain's store: the item moves only from the expected state, as a conditional write does."""

    status: str = PENDING
    writes: list[str] = field(default_factory=list)

    def move(self, from_status: str, to_status: str) -> Callable[[], bool]:
        def write() -> bool:
            if self.status != from_status:
                return False
            self.status = to_status
            self.writes.append(to_status)
            return True

        return write


@dataclass
class Cloud:
    """moto executing a state machine that waits like the reviews do: token out (here via SQS), decision at $.decision."""

    sfn: Any
    sqs: Any
    queue: str
    machine: str

    def waiting_execution(self) -> tuple[str, str]:
        """(execution arn, task token) of a new execution waiting for a decision."""
        execution = self.sfn.start_execution(stateMachineArn=self.machine, input=json.dumps({"timeout_seconds": 60}))["executionArn"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for message in self.sqs.receive_message(QueueUrl=self.queue).get("Messages", []):
                return execution, str(json.loads(message["Body"])["token"])
            time.sleep(0.05)
        raise AssertionError("the execution never handed out its token")

    def resumed_with(self, execution: str) -> Any:
        """The decision the execution was resumed with (None if it is still waiting after a few seconds)."""
        deadline = time.monotonic() + 10
        while (described := self.sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
        assert described["status"] == "SUCCEEDED", described
        return json.loads(described["output"])["decision"]


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        aws.client.cache_clear()  # core.aws builds its clients once: build them inside the mock
        sqs, sfn = boto3.client("sqs"), boto3.client("stepfunctions")
        queue = sqs.create_queue(QueueName="review-tokens")["QueueUrl"]
        wait = {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
            "TimeoutSecondsPath": "$.timeout_seconds",
            "ResultPath": "$.decision",
            "End": True,
        }
        definition = json.dumps({"StartAt": "AwaitReview", "States": {"AwaitReview": wait}})
        machine = sfn.create_state_machine(name="review", definition=definition, roleArn="arn:aws:iam::123456789012:role/sfn")
        yield Cloud(sfn, sqs, queue, machine["stateMachineArn"])
    aws.client.cache_clear()


def _decide(item: Item, decision: Decision, store: Store, **hooks: Any) -> None:
    claim_and_resume(item, decision, claim=store.move(PENDING, DECIDING), not_waiting=NOT_WAITING, taken=TAKEN, **hooks)


# --- deciding ----------------------------------------------------------------------------------------


def test_a_decision_claims_the_review_then_resumes_the_waiting_execution_with_it(cloud: Cloud) -> None:
    # Given an execution waiting for a review whose item holds its token
    execution, token = cloud.waiting_execution()
    store = Store()

    # When a reviewer approves
    _decide(Item(PENDING, token), Decision(approve=True, reason="fine", reviewer="ann"), store)

    # Then the item was claimed (pending → deciding) and the execution resumed with the whole decision
    assert store.writes == [DECIDING]
    assert cloud.resumed_with(execution) == {"approve": True, "reason": "fine", "reviewer": "ann"}


def test_of_two_decisions_read_at_once_only_the_first_gets_through(cloud: Cloud) -> None:
    # Given two reviewers who both read the item while it was pending with the token
    execution, token = cloud.waiting_execution()
    store = Store()
    seen_by_ann, seen_by_bob = Item(PENDING, token), Item(PENDING, token)

    # When both decide, one after the other
    _decide(seen_by_ann, Decision(approve=True, reviewer="ann"), store)
    with pytest.raises(Conflict) as second:
        _decide(seen_by_bob, Decision(approve=False, reason="blurry", reviewer="bob"), store)

    # Then bob is told someone else decided, and the execution only ever got ann's decision
    assert second.value.message == TAKEN
    assert store.writes == [DECIDING]
    assert cloud.resumed_with(execution) == {"approve": True, "reason": None, "reviewer": "ann"}


def test_a_token_the_execution_no_longer_waits_on_is_a_conflict_after_the_domain_settles_the_item(cloud: Cloud) -> None:
    # Given an item still showing the token of an execution that has stopped waiting (it was resumed already)
    execution, token = cloud.waiting_execution()
    _decide(Item(PENDING, token), Decision(approve=True), Store())
    assert cloud.resumed_with(execution) is not None
    store = Store()
    expired: list[str] = []
    unreachable: list[str] = []

    # When a reviewer decides on it
    with pytest.raises(Conflict) as refused:
        _decide(
            Item(PENDING, token),
            Decision(approve=True),
            store,
            on_expired=lambda: expired.append("rejected"),
            on_unreachable=lambda: unreachable.append("released"),
        )

    # Then the domain's expiry ran (e.g. the item is rejected now) and the reviewer gets a 409
    assert refused.value.status == 409
    assert expired == ["rejected"] and unreachable == []
    assert store.status == DECIDING


def test_when_step_functions_cannot_be_reached_the_domain_may_put_the_review_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given Step Functions failing (not a stale token: an outage)
    def outage(token: str, output: dict[str, Any]) -> None:
        raise UpstreamFailed("The workflow could not be resumed")

    monkeypatch.setattr(aws, "send_task_success", outage)
    store = Store()

    # When a reviewer decides, with a domain that releases the claim on an outage
    with pytest.raises(UpstreamFailed):
        _decide(Item(PENDING, "token"), Decision(approve=True), store, on_unreachable=store.move(DECIDING, PENDING))

    # Then the review is back in the queue, ready to be decided again
    assert store.writes == [DECIDING, PENDING] and store.status == PENDING


def _refuse(message: str) -> None:
    raise Conflict(message)


@pytest.mark.parametrize(
    ("item", "decision", "rules", "error", "message"),
    [
        (Item("rejected", "token"), Decision(approve=True), None, Conflict, NOT_WAITING),
        (Item(DECIDING, "token"), Decision(approve=True), None, Conflict, NOT_WAITING),
        (Item(PENDING, None), Decision(approve=True), None, Conflict, NOT_WAITING),  # between two waits: no token yet
        (Item(PENDING, "token"), Decision(approve=False), None, ValidationFailed, "A rejection needs a reason"),
        (Item(PENDING, "token"), Decision(approve=False, reason="no"), lambda: _refuse("paid already"), Conflict, "paid already"),
    ],
    ids=["settled", "deciding", "no-token", "reject-without-reason", "domain-rule"],
)
def test_what_cannot_be_decided_is_refused_before_anything_is_written_or_sent(
    monkeypatch: pytest.MonkeyPatch,
    item: Item,
    decision: Decision,
    rules: Callable[[], None] | None,
    error: type[JifenError],
    message: str,
) -> None:
    # Given a store and a Step Functions that record what they are asked
    sent: list[str] = []
    monkeypatch.setattr(aws, "send_task_success", lambda token, output: sent.append(token))
    store = Store()

    # When the decision is made
    with pytest.raises(error) as refused:
        _decide(item, decision, store, rules=rules)

    # Then it is refused with the domain's words, nothing was claimed and no execution resumed
    assert refused.value.message == message
    assert store.writes == [] and sent == []


# --- applying and timing out -------------------------------------------------------------------------


@dataclass
class Review:
    """Stands in for a domain's workflow side (core.review.Steps): settling closes it; calls are recorded."""

    status: str = DECIDING
    calls: list[str] = field(default_factory=list)

    def is_open(self) -> bool:
        return self.status in (PENDING, DECIDING)

    def settled(self) -> str:
        self.calls.append("settled")
        return self.status

    def approve(self, decision: Decision) -> str:
        self.calls.append(f"approve by {decision.reviewer}")
        self.status = "approved"
        return self.status

    def reject(self, decision: Decision) -> str:
        self.calls.append(f"reject: {decision.reason}")
        self.status = "rejected"
        return self.status

    def expire(self, reason: str) -> str:
        self.calls.append(f"expire: {reason}")
        self.status = "rejected"
        return self.status


def test_a_decision_is_applied_once_however_often_the_step_runs() -> None:
    # Given an open review and the decision its execution was resumed with
    review = Review()
    decision = Decision.from_output({"approve": True, "reason": None, "reviewer": "ann"})

    # When the apply step runs, then runs again (a Lambda retry)
    first = apply_once(review, decision)
    again = apply_once(review, decision)

    # Then the approval happened once; the second run only reported the settlement
    assert (first, again) == ("approved", "approved")
    assert review.calls == ["approve by ann", "settled"]


def test_anything_short_of_an_approval_rejects_with_the_reviewers_reason() -> None:
    # Given open reviews resumed with a rejection, and with no decision at all
    rejected, empty = Review(), Review()

    # When the apply step runs
    apply_once(rejected, Decision.from_output({"approve": False, "reason": "blurry", "reviewer": "bob"}))
    apply_once(empty, Decision.from_output(None))

    # Then both are rejected (with the reason given, if any) and nothing was approved
    assert rejected.calls == ["reject: blurry"]
    assert empty.calls == ["reject: None"]


def test_an_unreviewed_review_expires_with_the_timeout_reason_unless_the_workflow_gives_one() -> None:
    # Given two open reviews and one already approved
    unreviewed, failed, approved = Review(PENDING), Review(DECIDING), Review("approved")

    # When the timeout step runs for each
    expire_once(unreviewed)
    expire_once(failed, "the decision could not be applied")
    outcome = expire_once(approved)

    # Then the open ones expire with their reason; the approved one stays approved
    assert unreviewed.calls == [f"expire: {TIMEOUT_REASON}"]
    assert failed.calls == ["expire: the decision could not be applied"]
    assert outcome == "approved" and approved.calls == ["settled"]


def test_the_decision_travels_through_the_execution_unchanged() -> None:
    # Given a decision
    decision = Decision(approve=False, reason="used item", reviewer="carol")
    # When it is sent as the execution's output and read back by the apply step
    # Then it is the same decision
    assert Decision.from_output(json.loads(json.dumps(decision.output()))) == decision


# --- reopening ---------------------------------------------------------------------------------------


def test_a_failed_decision_reads_as_who_decided_and_the_errors_message_not_its_trace() -> None:
    # Given what a Step Functions Catch hands over when the apply step failed
    cause = json.dumps({"errorType": "UpstreamFailed", "errorMessage": "The provider refused", "stackTrace": ["  File ..."]})
    error = {"Error": "UpstreamFailed", "Cause": cause}

    # Then the next reviewer reads whose decision failed and why, in one bounded line
    assert failure_note(error, "ann") == "the decision by ann could not be applied: UpstreamFailed: The provider refused"
    assert failure_note({"Error": "States.Timeout"}, None) == "the decision could not be applied: States.Timeout"
    assert len(failure_text({"Error": "X", "Cause": "y" * 999})) == 300
