"""Standard state machines from infra/statemachines/*.asl.json, wired to Chalice functions.

Adding a workflow = add ``<name>.asl.json`` (snake_case name) whose Lambda tasks name a Chalice
function as a substitution variable: ``"FunctionName": "${receipt_review_apply}"`` where
``receipt_review_apply`` is the name given to ``@app.lambda_function``. CDK substitutes the deployed
function's ARN; the local runner (jifen_local/resources.py) substitutes the local one the same way.
The functions find the state machine in ``JIFEN_SFN_<NAME>`` (``Settings.sfn_<name>``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from jifen_infra.alarms import ALARM_PERIOD, AlarmsConstruct
from jifen_infra.nag import acknowledge
from jifen_infra.paths import STATEMACHINES_DIR
from jifen_infra.settings import StageSettings

ASL_SUFFIX = ".asl.json"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

# What the functions may do with the workflows: start them, and resume .waitForTaskToken steps.
START_ACTIONS = ["states:StartExecution"]
READ_EXECUTION_ACTIONS = ["states:DescribeExecution"]
RECONCILED_WORKFLOW = "order_fulfilment"  # app.reconcile_orders asks whether an order's execution still runs
TASK_RESPONSE_ACTIONS = ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]


def asl_files(asl_dir: Path = STATEMACHINES_DIR) -> list[Path]:
    return sorted(asl_dir.glob(f"*{ASL_SUFFIX}"))


def workflow_name(asl_file: Path) -> str:
    return asl_file.name[: -len(ASL_SUFFIX)]


def placeholders(definition: str) -> set[str]:
    return set(_PLACEHOLDER.findall(definition))


STATE_TYPES = {"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"}
_TERMINAL_TYPES = {"Succeed", "Fail"}
_LAMBDA_ARN = re.compile(r"^arn:[a-z-]+:lambda:")


def asl_problems(definition: Any, where: str = "") -> list[str]:
    """Structural problems of an ASL document (empty when it looks runnable); recurses into branches."""
    if not isinstance(definition, dict):
        return [f"{where or 'definition'}: not a JSON object"]
    states = definition.get("States")
    start = definition.get("StartAt")
    if not isinstance(states, dict) or not states:
        return [f"{where}States: missing or empty"]
    problems = []
    if start not in states:
        problems.append(f"{where}StartAt: {start!r} is not a state")
    ends = 0
    for name, state in states.items():
        path = f"{where}States.{name}"
        state_type = state.get("Type") if isinstance(state, dict) else None
        if state_type not in STATE_TYPES:
            problems.append(f"{path}: Type {state_type!r} is not one of {sorted(STATE_TYPES)}")
            continue
        targets = [state.get("Next"), state.get("Default")]
        targets += [choice.get("Next") for choice in state.get("Choices", [])]
        targets += [catch.get("Next") for catch in state.get("Catch", [])]
        problems += [f"{path}: goes to unknown state {t!r}" for t in targets if t is not None and t not in states]
        if state.get("End") is True or state_type in _TERMINAL_TYPES:
            ends += 1
        elif state_type != "Choice" and state.get("Next") is None:
            problems.append(f"{path}: neither Next nor End")
        for key in ("Parameters", "Arguments"):
            function_name = (state.get(key) or {}).get("FunctionName")
            if isinstance(function_name, str) and _LAMBDA_ARN.match(function_name):
                problems.append(f"{path}: Lambda ARN written in {key}; use a ${{...}} binding")
        if isinstance(state.get("Resource"), str) and _LAMBDA_ARN.match(state["Resource"]):
            problems.append(f"{path}: Lambda ARN written in Resource; use a ${{...}} binding")
        for i, branch in enumerate(state.get("Branches", [])):
            problems += asl_problems(branch, f"{path}.Branches[{i}].")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor is not None:
            problems += asl_problems(processor, f"{path}.ItemProcessor.")
    if ends == 0:
        problems.append(f"{where}States: no terminal state (End, Succeed or Fail)")
    return problems


def env_var_for(name: str) -> str:
    """Environment variable holding a workflow's ARN: JIFEN_SFN_RECEIPT_REVIEW (``Settings.sfn_receipt_review``)."""
    return f"JIFEN_SFN_{name.upper()}"


class WorkflowsConstruct(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        function_arn: Callable[[str], str],
        alarms: AlarmsConstruct,
        asl_dir: Path = STATEMACHINES_DIR,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.state_machines: dict[str, sfn.StateMachine] = {}
        for asl_file in asl_files(asl_dir):
            name = workflow_name(asl_file)
            if not _NAME.match(name):
                raise ValueError(f"{asl_file.name}: workflow names are snake_case (they become JIFEN_SFN_<NAME>)")
            definition = asl_file.read_text(encoding="utf-8")
            problems = asl_problems(json.loads(definition))
            if problems:
                raise ValueError(f"{asl_file.name}: " + "; ".join(problems))
            try:
                function_arns = {fn: function_arn(fn) for fn in sorted(placeholders(definition))}
            except KeyError as exc:
                raise ValueError(f"{asl_file.name}: {exc.args[0]}") from exc
            self.state_machines[name] = self._state_machine(name, definition, function_arns, alarms)

    def _state_machine(self, name: str, definition: str, function_arns: dict[str, str], alarms: AlarmsConstruct) -> sfn.StateMachine:
        scope = Construct(self, name)
        log_group = logs.LogGroup(scope, "Logs", removal_policy=RemovalPolicy.DESTROY)
        cfn_log_group = log_group.node.default_child
        assert isinstance(cfn_log_group, logs.CfnLogGroup)
        cfn_log_group.retention_in_days = self.settings.log_retention_days
        machine = sfn.StateMachine(
            scope,
            "StateMachine",
            state_machine_name=self.state_machine_name(name),
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(definition),
            definition_substitutions=function_arns,
            tracing_enabled=True,
            # Execution data can hold member ids and amounts: log events, not payloads.
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        # CDK adds DependsOn on the role next to the GetAtt of its ARN: redundant, harmless, CDK's own.
        cfn_machine = machine.node.default_child
        assert isinstance(cfn_machine, sfn.CfnStateMachine)
        cfn_machine.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        if function_arns:
            machine.add_to_role_policy(
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=sorted(set(function_arns.values())))
            )
        acknowledge(
            machine,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions log delivery (logs:CreateLogDelivery, PutResourcePolicy, ...) and X-Ray "
            "writes have no resource-level permissions; CDK grants exactly those on '*'.",
        )
        for metric, what in (
            (machine.metric_failed(period=ALARM_PERIOD), "failed"),
            (machine.metric_timed_out(period=ALARM_PERIOD), "timed out"),
            (machine.metric_throttled(period=ALARM_PERIOD), "throttled"),
        ):
            alarms.alarm(
                scope,
                f"{what.title().replace(' ', '')}Alarm",
                metric=metric,
                description=f"workflow {name}: executions {what}",
            )
        return machine

    def state_machine_name(self, name: str) -> str:
        return f"{self.settings.resource_prefix}-{name}"

    def state_machine_arn(self, name: str) -> str:
        """Built from the fixed name, so functions can hold it without a dependency cycle."""
        return Stack.of(self).format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.state_machine_name(name),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def executions_arn(self, name: str) -> str:
        """Every execution of one state machine (``arn:…:execution:{machine}:*``)."""
        return Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine_name(name)}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def function_statements(self) -> list[iam.PolicyStatement]:
        """What the Chalice functions need: start executions and answer task tokens."""
        if not self.state_machines:
            return []
        arns = [self.state_machine_arn(name) for name in self.state_machines]
        # the order reconciler (app.reconcile_orders) reads whether an order's execution still runs
        executions = [self.executions_arn(name) for name in self.state_machines if name == RECONCILED_WORKFLOW]
        statements = [
            iam.PolicyStatement(sid="StartWorkflows", actions=START_ACTIONS, resources=arns),
            iam.PolicyStatement(sid="AnswerWorkflowTasks", actions=TASK_RESPONSE_ACTIONS, resources=arns),
        ]
        if executions:
            statements.append(iam.PolicyStatement(sid="ReadWorkflowExecutions", actions=READ_EXECUTION_ACTIONS, resources=executions))
        return statements

    def environment_variables(self) -> dict[str, str]:
        return {env_var_for(name): self.state_machine_arn(name) for name in self.state_machines}
