"""Creates, on the local moto server, what CDK creates in the cloud: table, buckets, workflow Lambdas, state machines."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from chalicelib.core.table import schema

ROOT = Path(__file__).resolve().parent.parent
STATE_MACHINES = ROOT / "infra" / "statemachines"
ACCOUNT = "123456789012"
REGION = "us-east-1"


def _client(service: str, endpoint: str | None) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION)


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def function_name(name: str) -> str:
    return f"jifen-local-{name}"


def state_machine_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:jifen-local-{name}"


def provision(endpoint: str | None, table: str, bucket: str, lambda_names: list[str], only: set[str] | None = None) -> dict[str, str]:
    """Returns state machine name -> ARN for every ASL file in infra/statemachines (or those named in ``only``)."""
    schema.create_table(_client("dynamodb", endpoint), table)
    _client("s3", endpoint).create_bucket(Bucket=bucket)
    role = _client("iam", endpoint).create_role(
        RoleName="jifen-local",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
            }
        ),
    )["Role"]["Arn"]
    lambdas = _client("lambda", endpoint)
    code = _placeholder_zip()
    arns = {}
    for name in lambda_names:
        created = lambdas.create_function(
            FunctionName=function_name(name), Runtime="python3.11", Role=role, Handler="handler.handler", Code={"ZipFile": code}
        )
        arns[name] = created["FunctionArn"]
    machines = {}
    sfn = _client("stepfunctions", endpoint)
    for path in sorted(STATE_MACHINES.glob("*.asl.json")):
        name = path.name.removesuffix(".asl.json")
        if only is not None and name not in only:
            continue
        definition = path.read_text()
        for fn, arn in arns.items():
            definition = definition.replace("${" + fn + "}", arn)
        machines[name] = sfn.create_state_machine(name=f"jifen-local-{name}", definition=definition, roleArn=role, type="STANDARD")[
            "stateMachineArn"
        ]
    return machines
