"""Step Functions really executing in-process: moto runs the ASL, its Lambda tasks call the Chalice functions.

In a test module: ``workflow_cloud = workflow_cloud_fixture`` and ``aws = workflows_aws`` (the conftest's
``api`` and ``tenant`` fixtures then run on it). Once per module it sets up:

- moto configured to execute state machines and to run Lambda without Docker, with invocations
  dispatched to the app's own handlers (jifen_local.cloud.dispatch_invoke, as the local server does);
- the workflow Lambdas and the named state machines (jifen_local.resources.provision, as the local
  server does), their ARNs in ``JIFEN_SFN_<NAME>``;
- one moto call at a time: executions run on moto's threads next to the test's own calls, and moto's
  backends are not thread-safe (DESIGN §7). The lock is re-entrant because a Lambda task's own AWS
  calls happen inside the Lambda invocation call, on the same thread.

Each test gets a fresh table (executions of earlier tests may still wait; they never wake up).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import boto3
import pytest
from moto import mock_aws

from chalicelib.core.table import schema

UPLOADS = "jifen-test-uploads"


def _serialized_stubber() -> Any:
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.__call__
    lock = threading.RLock()

    def call(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, event_name, request, **kwargs)

    return patch.object(BotocoreStubber, "__call__", call)


def _one_lambda_client() -> Any:
    """moto's interpreter builds a new boto3 Lambda client per task (~0.3 s each): build one per region."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    build = lambda_eval_utils.boto_client_for
    built: dict[tuple[str, str], Any] = {}

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if (region, service) not in built:
            built[(region, service)] = build(region=region, service=service, state_credentials=state_credentials)
        return built[(region, service)]

    return patch.object(lambda_eval_utils, "boto_client_for", client_for)


def workflow_cloud_fixture(machines: set[str]) -> Any:
    """A module-scoped fixture: moto with the named state machines executing (see the module doc)."""

    @pytest.fixture(scope="module")
    def workflow_cloud() -> Iterator[dict[str, str]]:
        from moto.awslambda_simple.models import LambdaSimpleBackend

        import app as app_module
        from chalicelib.core import aws as aws_adapter
        from chalicelib.core.config import get_settings
        from jifen_local import cloud, resources, server

        with (
            pytest.MonkeyPatch.context() as env,
            mock_aws(config=cloud.MOTO_CONFIG),
            patch.object(LambdaSimpleBackend, "invoke", cloud.dispatch_invoke),
            _serialized_stubber(),
            _one_lambda_client(),
        ):
            handlers = server.lambda_handlers(app_module)
            for name, handler in handlers.items():
                env.setitem(cloud.LAMBDA_HANDLERS, resources.function_name(name), handler)
            arns = resources.provision(None, os.environ["JIFEN_TABLE"], UPLOADS, list(handlers), only=machines)
            for name, arn in arns.items():
                env.setenv(f"JIFEN_SFN_{name.upper()}", arn)
            env.setenv("JIFEN_BUCKET", UPLOADS)
            get_settings.cache_clear()
            aws_adapter.client.cache_clear()
            try:
                yield arns
            finally:
                get_settings.cache_clear()
                aws_adapter.client.cache_clear()

    return workflow_cloud


@pytest.fixture
def workflows_aws(workflow_cloud: dict[str, str]) -> Iterator[Any]:
    """A fresh table in the module's workflow cloud."""
    from chalicelib.core.config import get_settings
    from chalicelib.core.table.cache import config_cache

    client = boto3.client("dynamodb")
    table = os.environ["JIFEN_TABLE"]
    if table in client.list_tables()["TableNames"]:
        client.delete_table(TableName=table)
    schema.create_table(client, table)
    get_settings.cache_clear()  # a test may have changed the environment (monkeypatch)
    config_cache().clear()
    yield client
    config_cache().clear()
    get_settings.cache_clear()
