"""The ASL files in infra/statemachines/ and the constructs that turn them (and schedules) into resources.

These build small stacks of their own: no `chalice package`, so they run in about a second.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jifen_infra.paths import STATEMACHINES_DIR
from jifen_infra.workflows import asl_files, asl_problems, env_var_for, placeholders, workflow_name

pytestmark = pytest.mark.infra

ASL_FILES = asl_files()


@pytest.mark.parametrize("asl_file", ASL_FILES or [None], ids=lambda p: p.name if p else "no-asl-files-yet")
def test_every_asl_file_is_a_runnable_state_machine(asl_file: Path | None) -> None:
    if asl_file is None:
        # Given no workflows yet: the glob really finds nothing, so nothing escaped validation
        assert sorted(STATEMACHINES_DIR.glob("*.asl.json")) == []
        return
    # Given one ASL file
    text = asl_file.read_text(encoding="utf-8")
    # When it is parsed
    definition = json.loads(text)
    # Then it has StartAt/States, every transition lands on a state and something ends
    assert isinstance(definition.get("States"), dict) and definition["StartAt"] in definition["States"]
    assert asl_problems(definition) == []
    # And its name becomes a settings field (JIFEN_SFN_<NAME>) and it calls at least one function by name
    assert re.fullmatch(r"[a-z][a-z0-9_]*", workflow_name(asl_file)), asl_file.name
    assert placeholders(text), f"{asl_file.name} names no Chalice function (${{function_name}})"
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", p) for p in placeholders(text)), placeholders(text)


def test_statemachines_dir_holds_only_asl_files() -> None:
    # Given the state machine directory
    names = sorted(p.name for p in STATEMACHINES_DIR.iterdir() if not p.name.startswith("."))
    # Then every file is *.asl.json (a misnamed file would silently not be deployed)
    assert [n for n in names if not n.endswith(".asl.json")] == []


BROKEN_ASL: list[tuple[str, Any, str]] = [
    ("not an object", [], "not a JSON object"),
    ("no states", {"StartAt": "A", "States": {}}, "States: missing or empty"),
    ("bad start", {"StartAt": "B", "States": {"A": {"Type": "Succeed"}}}, "StartAt: 'B' is not a state"),
    ("bad type", {"StartAt": "A", "States": {"A": {"Type": "Sleep", "End": True}}}, "Type 'Sleep'"),
    (
        "dangling next",
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}},
        "unknown state 'Nowhere'",
    ),
    ("no end", {"StartAt": "A", "States": {"A": {"Type": "Pass"}}}, "neither Next nor End"),
    (
        "hard-coded lambda",
        {
            "StartAt": "A",
            "States": {"A": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "End": True}},
        },
        "Lambda ARN written in Resource",
    ),
    (
        "broken branch",
        {
            "StartAt": "P",
            "States": {"P": {"Type": "Parallel", "End": True, "Branches": [{"StartAt": "X", "States": {}}]}},
        },
        "Branches[0].States: missing or empty",
    ),
]


@pytest.mark.parametrize(("case", "definition", "problem"), BROKEN_ASL, ids=[c[0] for c in BROKEN_ASL])
def test_asl_validation_catches_broken_definitions(case: str, definition: Any, problem: str) -> None:
    # Given a broken definition
    # When it is validated
    problems = asl_problems(definition)
    # Then the problem is named
    assert any(problem in p for p in problems), problems


# --- WorkflowsConstruct / SchedulesConstruct in a stack of their own ----------------------------

FULFILMENT_ASL = {
    "Comment": "wait for shipping",
    "StartAt": "Ship",
    "States": {
        "Ship": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "${ship_order}", "Payload": {"token.$": "$$.Task.Token"}},
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}


def small_stack() -> tuple[Any, Any, Any]:
    import aws_cdk as cdk
    from jifen_infra.alarms import AlarmsConstruct
    from jifen_infra.settings import StageSettings

    # CDK's built-in template validation is for the real stack (test_stack.py); it costs seconds here.
    app = cdk.App(builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "Small")
    settings = StageSettings(stage="dev", alarm_email=None, log_retention_days=30, manage_api_gateway_account_role=False)
    return stack, settings, AlarmsConstruct(stack, "Alarms", settings=settings)


def test_an_asl_file_becomes_a_standard_state_machine_calling_chalice_functions(tmp_path: Path) -> None:
    from aws_cdk.assertions import Template
    from jifen_infra.workflows import WorkflowsConstruct

    # Given an ASL file whose task calls ${ship_order}, a Chalice @app.lambda_function name
    (tmp_path / "fulfilment.asl.json").write_text(json.dumps(FULFILMENT_ASL))
    stack, settings, alarms = small_stack()
    fake_arn = "arn:aws:lambda:region:123456789012:function:ship"
    # When the construct loads the directory
    workflows = WorkflowsConstruct(
        stack,
        "Workflows",
        settings=settings,
        function_arn=lambda name: {"ship_order": fake_arn}[name],
        alarms=alarms,
        asl_dir=tmp_path,
    )
    template = Template.from_stack(stack).to_json()
    # Then one Standard, traced, logged state machine exists with the variable substituted
    (machine,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["StateMachineName"] == "jifen-dev-fulfilment"
    assert props["DefinitionSubstitutions"] == {"ship_order": fake_arn}
    assert json.loads(props["DefinitionString"]) == FULFILMENT_ASL
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    # And its role may invoke exactly the bound function
    invoke = [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "lambda:InvokeFunction"
    ]
    assert [s["Resource"] for s in invoke] == [fake_arn]
    # And failed / timed-out / throttled executions alarm
    alarms_metrics = sorted(r["Properties"]["MetricName"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm")
    assert alarms_metrics == ["ExecutionThrottled", "ExecutionsFailed", "ExecutionsTimedOut"]
    # And the functions get start + task-token rights and the ARN in their environment
    sids = {s.sid: s.to_json() for s in workflows.function_statements()}
    assert sids["StartWorkflows"]["Action"] == "states:StartExecution"
    assert sorted(sids["AnswerWorkflowTasks"]["Action"]) == [
        "states:SendTaskFailure",
        "states:SendTaskHeartbeat",
        "states:SendTaskSuccess",
    ]
    assert list(workflows.environment_variables()) == ["JIFEN_SFN_FULFILMENT"]
    assert env_var_for("receipt_review") == "JIFEN_SFN_RECEIPT_REVIEW"


@pytest.mark.parametrize(
    ("file_name", "message"),
    [
        ("fulfilment.asl.json", "no Chalice function 'ship_order'"),
        ("Fulfilment-Flow.asl.json", "workflow names are snake_case"),
    ],
    ids=["unknown function", "bad name"],
)
def test_mismatched_workflows_fail_synthesis(tmp_path: Path, file_name: str, message: str) -> None:
    from jifen_infra.workflows import WorkflowsConstruct

    # Given an ASL file the app cannot honour
    (tmp_path / file_name).write_text(json.dumps(FULFILMENT_ASL))
    stack, settings, alarms = small_stack()

    def no_such_function(name: str) -> str:
        raise KeyError(f"no Chalice function {name!r}")

    # When the construct loads it / Then synthesis stops, naming the file and the problem
    with pytest.raises(ValueError, match=message):
        WorkflowsConstruct(stack, "Workflows", settings=settings, function_arn=no_such_function, alarms=alarms, asl_dir=tmp_path)


def test_scheduled_jobs_retry_then_land_in_an_alarmed_dead_letter_queue() -> None:
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_sam as sam
    from aws_cdk.assertions import Template
    from jifen_infra.schedules import MAX_RETRY_ATTEMPTS, SchedulesConstruct

    # Given two Chalice-style functions, one triggered by a schedule
    stack, _, alarms = small_stack()
    code = sam.CfnFunction.S3LocationProperty(bucket="b", key="k")
    job = sam.CfnFunction(
        stack,
        "ExpirePoints",
        code_uri=code,
        handler="app.expire_points",
        runtime="python3.11",
        events={
            "Hourly": sam.CfnFunction.EventSourceProperty(
                type="Schedule", properties=sam.CfnFunction.ScheduleEventProperty(schedule="rate(1 hour)")
            )
        },
    )
    api = sam.CfnFunction(stack, "APIHandler", code_uri=code, handler="app.app", runtime="python3.11")
    granted: list[iam.PolicyStatement] = []
    # When the schedules construct sees them
    schedules = SchedulesConstruct(
        stack, "Schedules", functions={"ExpirePoints": job, "APIHandler": api}, allow=lambda *s: granted.extend(s), alarms=alarms
    )
    resources = Template.from_stack(stack).to_json()["Resources"]
    # Then only the job gets retries and an on-failure destination
    assert list(schedules.jobs) == ["ExpirePoints"]
    invoke_config = resources["ExpirePoints"]["Properties"]["EventInvokeConfig"]
    assert invoke_config["MaximumRetryAttempts"] == MAX_RETRY_ATTEMPTS
    assert invoke_config["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
    assert "EventInvokeConfig" not in resources["APIHandler"]["Properties"]
    # And the functions' role may send there, and a message there raises an alarm
    assert [s.to_json()["Action"] for s in granted] == ["sqs:SendMessage"]
    metrics = [r["Properties"]["MetricName"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert metrics == ["ApproximateNumberOfMessagesVisible"]


def test_every_order_fulfilment_step_has_a_failure_path_to_an_operator() -> None:
    """Issue 9, item 7: no task error past its retries fails the execution silently, leaving the order waiting."""
    # Given the order fulfilment state machine
    definition = json.loads((Path(__file__).parents[2] / "infra/statemachines/order_fulfilment.asl.json").read_text())
    states = definition["States"]
    tasks = {name: state for name, state in states.items() if state["Type"] == "Task" and name != "RecordFailure"}

    # Then every task but the failure recorder catches States.ALL (after its own catches) into RecordFailure
    for name, state in tasks.items():
        catches = state.get("Catch", [])
        assert catches and catches[-1]["ErrorEquals"] == ["States.ALL"], name
        assert catches[-1]["Next"] == "RecordFailure" and catches[-1]["ResultPath"] == "$.error", name
    # And the payment timeout still cancels, a failed payout still compensates (before the catch-all)
    assert states["AwaitPayment"]["Catch"][0] == {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "CancelUnpaid"}
    assert states["PayOut"]["Catch"][0]["Next"] == "CompensatePayout"
    # And the recorder calls order_needs_attention with the order and the error, then the execution fails (alarmed)
    record = states["RecordFailure"]
    assert record["Parameters"]["FunctionName"] == "${order_needs_attention}"
    assert record["Parameters"]["Payload"]["error.$"] == "$.error"
    assert record["Next"] == "NeedsOperator" and states["NeedsOperator"]["Type"] == "Fail"
    assert asl_problems(definition) == []
