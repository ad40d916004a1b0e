"""Assertions on the synthesized JifenStack template (one synthesis per session, see conftest.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jifen_infra.workflows import asl_files, env_var_for, placeholders, workflow_name

from chalicelib.core.table import schema

pytestmark = pytest.mark.infra

# The session fixture's type lives in conftest.py, which is not importable by name in a multi-dir suite.
Synthesized = Any

TABLE = "AWS::DynamoDB::Table"
FUNCTION = "AWS::Serverless::Function"
ALARM = "AWS::CloudWatch::Alarm"


def the_table(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    tables = synthesized.of_type(TABLE)
    assert len(tables) == 1, f"expected one table, got {sorted(tables)}"
    return next(iter(tables.items()))


def functions(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    found = synthesized.of_type(FUNCTION)
    assert found, "the Chalice app produced no functions"
    return found


def policy_statements(synthesized: Synthesized) -> list[tuple[str, dict[str, Any]]]:
    """Every statement of every identity policy: role inline policies, policies, managed policies."""
    statements: list[tuple[str, dict[str, Any]]] = []
    for logical_id, resource in synthesized.resources.items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [props["PolicyDocument"]]
        for document in documents:
            statements += [(logical_id, s) for s in document["Statement"]]
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function_role_statements(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    role_id = synthesized.logical_id(synthesized.stack.api.role)
    role = synthesized.resources[role_id]
    (policy,) = role["Properties"]["Policies"]
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


# --- the table -------------------------------------------------------------------------------


def test_table_keys_are_pk_and_sk_strings(synthesized: Synthesized) -> None:
    # Given the synthesized stack
    # When we read the table's key schema
    _, table = the_table(synthesized)
    props = table["Properties"]
    # Then it is PK (hash) / SK (range), every key attribute a string
    assert props["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert {a["AttributeType"] for a in props["AttributeDefinitions"]} == {"S"}


def test_table_has_exactly_gsi1_and_gsi2_with_the_schema_keys(synthesized: Synthesized) -> None:
    # Given the synthesized table
    _, table = the_table(synthesized)
    # When we list its global secondary indexes
    indexes = {i["IndexName"]: i for i in table["Properties"]["GlobalSecondaryIndexes"]}
    # Then there are exactly GSI1 and GSI2, keyed as the schema says, projecting everything
    assert sorted(indexes) == ["GSI1", "GSI2"]
    assert indexes["GSI1"]["KeySchema"] == [
        {"AttributeName": "GSI1PK", "KeyType": "HASH"},
        {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
    ]
    assert indexes["GSI2"]["KeySchema"] == [
        {"AttributeName": "GSI2PK", "KeyType": "HASH"},
        {"AttributeName": "GSI2SK", "KeyType": "RANGE"},
    ]
    assert {i["Projection"]["ProjectionType"] for i in indexes.values()} == {"ALL"}


def test_table_ttl_stream_pitr_billing_and_retention(synthesized: Synthesized) -> None:
    # Given the synthesized table
    _, table = the_table(synthesized)
    props = table["Properties"]
    # Then TTL is on `ttl`, the stream carries new images, PITR is on, billing is on demand,
    # and neither stack deletion nor replacement can drop the data
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_table_is_encrypted_with_a_rotating_retained_customer_key(synthesized: Synthesized) -> None:
    # Given the synthesized table
    _, table = the_table(synthesized)
    sse = table["Properties"]["SSESpecification"]
    # When we follow its KMS key reference
    assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS"
    key_id = sse["KMSMasterKeyId"]["Fn::GetAtt"][0]
    key = synthesized.resources[key_id]
    # Then it is a customer-managed key in this stack, rotated, and kept with the table
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


def test_cdk_table_and_local_table_have_the_same_keys_and_indexes(synthesized: Synthesized) -> None:
    # Given the table the local server and the tests create from chalicelib.core.table.schema
    local = schema.create_table_kwargs("x")
    # When we compare it with the table CDK synthesized
    _, table = the_table(synthesized)
    cloud = table["Properties"]

    def by_name(items: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
        return sorted(items, key=lambda item: item[key])

    # Then keys, attribute types, indexes, billing and stream view are identical
    assert cloud["KeySchema"] == local["KeySchema"]
    assert by_name(cloud["AttributeDefinitions"], "AttributeName") == by_name(local["AttributeDefinitions"], "AttributeName")
    assert by_name(cloud["GlobalSecondaryIndexes"], "IndexName") == by_name(local["GlobalSecondaryIndexes"], "IndexName")
    assert cloud["BillingMode"] == local["BillingMode"]
    assert cloud["StreamSpecification"]["StreamViewType"] == local["StreamSpecification"]["StreamViewType"]
    assert cloud["TimeToLiveSpecification"]["AttributeName"] == schema.TTL_ATTRIBUTE


# --- the Chalice functions ---------------------------------------------------------------------


def test_api_handler_exists_with_stage_table_and_signing_key_env(synthesized: Synthesized) -> None:
    # Given the synthesized Chalice functions
    table_id, _ = the_table(synthesized)
    secret_id = synthesized.logical_id(synthesized.stack.api.signing_key)
    found = functions(synthesized)
    # Then the REST handler is among them
    assert "APIHandler" in found
    # And every function knows the stage, the table and the signing key secret, and the Powertools service
    for logical_id, function in found.items():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["JIFEN_STAGE"] == "dev", logical_id
        assert env["JIFEN_TABLE"] == {"Ref": table_id}, logical_id
        assert env["JIFEN_SIGNING_KEY_SECRET_ARN"] == {"Ref": secret_id}, logical_id
        assert env["POWERTOOLS_SERVICE_NAME"] == "jifen", logical_id
        assert env["JIFEN_BUCKET"] == {"Ref": synthesized.logical_id(synthesized.stack.uploads.bucket)}, logical_id
        assert "JIFEN_SIGNING_KEY" not in env, f"{logical_id}: the key itself must never be in the environment"


def test_functions_use_our_role_tracing_and_own_log_group(synthesized: Synthesized) -> None:
    # Given the synthesized Chalice functions
    role_id = synthesized.logical_id(synthesized.stack.api.role)
    log_groups = synthesized.of_type("AWS::Logs::LogGroup")
    for logical_id, function in functions(synthesized).items():
        props = function["Properties"]
        # Then each runs with the role this stack defines (Chalice made none), traced,
        # logging to a log group with a retention
        assert props["Role"] == {"Fn::GetAtt": [role_id, "Arn"]}, logical_id
        assert props["Tracing"] == "Active", logical_id
        log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert log_groups[log_group_id]["Properties"]["RetentionInDays"] == 90, logical_id
    assert not synthesized.of_type("AWS::IAM::Role").keys() & {"DefaultRole"}, "Chalice's own role leaked in"


def test_dependencies_ship_in_a_validly_named_layer(synthesized: Synthesized) -> None:
    # Given the synthesized layers (Chalice's automatic layer holds requirements.txt)
    layers = synthesized.of_type("AWS::Serverless::LayerVersion")
    # Then there is one, its name is one Lambda accepts, and every function uses it
    assert len(layers) == 1
    ((layer_id, layer),) = layers.items()
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", layer["Properties"]["LayerName"]), layer["Properties"]["LayerName"]
    for logical_id, function in functions(synthesized).items():
        assert {"Ref": layer_id} in function["Properties"]["Layers"], logical_id


# --- least privilege ---------------------------------------------------------------------------


def test_no_policy_statement_grants_wildcard_actions(synthesized: Synthesized) -> None:
    # Given every IAM policy statement in the stack
    statements = policy_statements(synthesized)
    assert statements
    for owner, statement in statements:
        for action in as_list(statement.get("Action", [])):
            # Then no statement grants "*" or a whole service ("dynamodb:*")
            assert action != "*", f"{owner}: {statement}"
            assert not action.endswith(":*"), f"{owner}: {statement}"
            # And DynamoDB actions are spelled out, never patterns
            if action.startswith("dynamodb:"):
                assert "*" not in action, f"{owner}: {statement}"


def test_no_dynamodb_statement_uses_wildcard_resources(synthesized: Synthesized) -> None:
    # Given the statements that grant DynamoDB actions
    dynamodb = [(owner, s) for owner, s in policy_statements(synthesized) if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert dynamodb
    # Then their resources are the table and its named indexes: no "*", no "index/*"
    for owner, statement in dynamodb:
        assert "*" not in json.dumps(statement["Resource"]), f"{owner}: {statement}"


def test_function_role_gets_exactly_the_item_actions_it_needs(synthesized: Synthesized) -> None:
    # Given the functions' role
    table_id, _ = the_table(synthesized)
    statements = function_role_statements(synthesized)
    # Then items: read, query, write, conditional checks (what TransactWriteItems is authorized as); no Scan
    assert sorted(as_list(statements["UseTableItems"]["Action"])) == [
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ]
    assert statements["UseTableItems"]["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}
    # And the indexes may only be queried, each named
    assert statements["QueryIndexes"]["Action"] == "dynamodb:Query"
    index_suffixes = sorted(r["Fn::Join"][1][1] for r in statements["QueryIndexes"]["Resource"])
    assert index_suffixes == ["/index/GSI1", "/index/GSI2"]


def test_function_role_uses_the_table_key_only_through_dynamodb(synthesized: Synthesized) -> None:
    # Given the functions' KMS statement
    statement = function_role_statements(synthesized)["UseTableKeyThroughDynamoDB"]
    table_key_id = synthesized.logical_id(synthesized.stack.table.key)
    # Then it covers the table's key only, only via DynamoDB, with no re-encrypt or key admin
    assert statement["Resource"] == {"Fn::GetAtt": [table_key_id, "Arn"]}
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
    assert "kms:ViaService" in statement["Condition"]["StringEquals"]


def test_function_role_reads_only_the_signing_key_secret(synthesized: Synthesized) -> None:
    # Given the functions' role
    statements = function_role_statements(synthesized)
    secret_id = synthesized.logical_id(synthesized.stack.api.signing_key)
    # Then the only Secrets Manager access is reading that one secret
    secrets = [s for s in statements.values() if any(a.startswith("secretsmanager:") for a in as_list(s["Action"]))]
    assert secrets == [statements["ReadSigningKey"]]
    assert statements["ReadSigningKey"]["Action"] == "secretsmanager:GetSecretValue"
    assert statements["ReadSigningKey"]["Resource"] == {"Ref": secret_id}
    # And "*" resources are only where AWS offers nothing narrower (X-Ray)
    star = sorted(sid for sid, s in statements.items() if "*" in as_list(s["Resource"]))
    assert star == ["WriteTraces"]


def test_function_role_has_no_statement_beyond_the_known_ones(synthesized: Synthesized) -> None:
    # Given the functions' role
    statements = function_role_statements(synthesized)
    # Then every statement is one this stack means to grant (a new grant must be added here on purpose)
    expected = {
        "UseTableItems",
        "QueryIndexes",
        "UseTableKeyThroughDynamoDB",
        "ReadSigningKey",
        "WriteTraces",
        "WriteOwnLogs",
        "ReadWriteUploads",
    }
    if asl_files():
        expected |= {"StartWorkflows", "AnswerWorkflowTasks", "ReadWorkflowExecutions"}
    if synthesized.stack.schedules.jobs:
        expected |= {"ReportFailedJobRuns"}
    assert set(statements) == expected
    assert sorted(statements["ReadWriteUploads"]["Action"]) == ["s3:GetObject", "s3:PutObject"]


def test_signing_key_is_generated_not_written_in_the_template(synthesized: Synthesized) -> None:
    # Given the signing key secret
    secret = synthesized.resources[synthesized.logical_id(synthesized.stack.api.signing_key)]
    # Then Secrets Manager generates it (64 chars), the template holds no value, and it is kept
    generator = secret["Properties"]["GenerateSecretString"]
    assert generator["PasswordLength"] == 64
    assert "SecretString" not in secret["Properties"]
    assert secret["DeletionPolicy"] == "Retain"


# --- uploads, workflows, schedules -------------------------------------------------------------


def test_uploads_bucket_is_private_encrypted_tls_only_and_logged(synthesized: Synthesized) -> None:
    # Given the uploads bucket
    bucket_id = synthesized.logical_id(synthesized.stack.uploads.bucket)
    bucket = synthesized.resources[bucket_id]
    props = bucket["Properties"]
    # Then it blocks public access, encrypts at rest, logs access and is kept with the data
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert "DestinationBucketName" in props["LoggingConfiguration"]
    assert bucket["DeletionPolicy"] == "Retain"
    # And its policy denies every request not made over TLS
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in synthesized.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    denials = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert [s["Condition"] for s in denials] == [{"Bool": {"aws:SecureTransport": "false"}}]


def test_each_asl_file_is_a_state_machine_calling_chalice_functions(synthesized: Synthesized) -> None:
    # Given the ASL files and the synthesized state machines
    machines = {
        m["Properties"]["StateMachineName"]: m["Properties"] for m in synthesized.of_type("AWS::StepFunctions::StateMachine").values()
    }
    found = functions(synthesized)
    # Then each file is one Standard machine named per stage
    assert sorted(machines) == sorted(f"jifen-dev-{workflow_name(f)}" for f in asl_files())
    for asl_file in asl_files():
        props = machines[f"jifen-dev-{workflow_name(asl_file)}"]
        assert props["StateMachineType"] == "STANDARD"
        # And every ${function_name} is substituted by that Chalice function's ARN
        substitutions = props["DefinitionSubstitutions"]
        assert set(substitutions) == placeholders(asl_file.read_text(encoding="utf-8"))
        for value in substitutions.values():
            assert value["Fn::GetAtt"][0] in found and value["Fn::GetAtt"][1] == "Arn"
        # And every function knows where the machine is (JIFEN_SFN_<NAME>)
        for logical_id, function in found.items():
            assert env_var_for(workflow_name(asl_file)) in function["Properties"]["Environment"]["Variables"], logical_id


def test_scheduled_jobs_retry_then_dead_letter(synthesized: Synthesized) -> None:
    # Given the Chalice functions triggered by a schedule (@app.schedule)
    jobs = {
        logical_id: function
        for logical_id, function in functions(synthesized).items()
        if any(e["Type"] == "Schedule" for e in function["Properties"].get("Events", {}).values())
    }
    # Then exactly those get bounded retries and an on-failure queue
    assert sorted(jobs) == sorted(synthesized.stack.schedules.jobs)
    for logical_id, function in functions(synthesized).items():
        config = function["Properties"].get("EventInvokeConfig")
        if logical_id in jobs:
            assert config["MaximumRetryAttempts"] == 2, logical_id
            assert config["DestinationConfig"]["OnFailure"]["Type"] == "SQS", logical_id
        else:
            assert config is None, logical_id


def test_every_scheduled_job_has_time_for_its_budget(synthesized: Synthesized) -> None:
    # Given each scheduled job's own time budget (what it does before leaving the rest to its next run)
    from chalice.utils import to_cfn_resource_name

    from chalicelib.core import effects
    from chalicelib.mall import jobs as mall_jobs
    from chalicelib.points import jobs as points_jobs

    budgets = {
        "expire_points": points_jobs.BUDGET_SECONDS,
        "remind_expiring_points": points_jobs.REMINDER_BUDGET_SECONDS,
        "reconcile_orders": mall_jobs.RECONCILE_BUDGET_SECONDS,
        "retry_effects": effects.RETRY_BUDGET_SECONDS,
    }
    jobs = synthesized.stack.schedules.jobs
    # Then every scheduled function is one of them (a new job must declare its budget here)
    assert sorted(jobs) == sorted(to_cfn_resource_name(name) for name in budgets)
    # And its Lambda timeout leaves at least a minute over the budget (the API's 30 s would cut a run short)
    for name, budget in budgets.items():
        timeout = functions(synthesized)[to_cfn_resource_name(name)]["Properties"]["Timeout"]
        assert timeout >= budget + 60, (name, timeout, budget)


# --- API Gateway -------------------------------------------------------------------------------


def gateway_responses(synthesized: Synthesized) -> dict[str, Any]:
    api = synthesized.resources["RestAPI"]
    responses: dict[str, Any] = api["Properties"]["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]
    return responses


def rendered(response: dict[str, Any]) -> dict[str, Any]:
    """What API Gateway would send: substitute the $context variables, then parse."""
    body = response["responseTemplates"]["application/json"]
    body = body.replace("$context.error.messageString", '"Gateway said no"').replace("$context.requestId", "r-1")
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def test_gateway_errors_use_the_jifen_envelope(synthesized: Synthesized) -> None:
    # Given the REST API's gateway responses
    responses = gateway_responses(synthesized)
    expected = {
        "MISSING_AUTHENTICATION_TOKEN": ("404", "NOT_FOUND"),
        "REQUEST_TOO_LARGE": ("413", "PAYLOAD_TOO_LARGE"),
        "THROTTLED": ("429", "THROTTLED"),
        "UNAUTHORIZED": ("401", "UNAUTHORIZED"),
        "ACCESS_DENIED": ("403", "FORBIDDEN"),
        "DEFAULT_4XX": (None, "BAD_REQUEST"),
        "DEFAULT_5XX": (None, "INTERNAL_ERROR"),
    }
    for response_type, (status, code) in expected.items():
        response = responses[response_type]
        # Then each answers with the mapped status (the DEFAULT_* keep API Gateway's own)
        assert response.get("statusCode") == status, response_type
        # And a body shaped {"error": {"code", "message", "request_id"}}
        body = rendered(response)
        assert body == {"error": {"code": code, "message": body["error"]["message"], "request_id": "r-1"}}
        assert body["error"]["message"], response_type


def test_unknown_routes_do_not_leak_api_gateway_wording(synthesized: Synthesized) -> None:
    # Given the response API Gateway sends for an unknown path ("Missing Authentication Token")
    body = rendered(gateway_responses(synthesized)["MISSING_AUTHENTICATION_TOKEN"])
    # Then the client sees a plain not-found
    assert body["error"]["message"] == "No such route"


def test_rest_api_is_named_traced_and_access_logged(synthesized: Synthesized) -> None:
    # Given the REST API
    props = synthesized.resources["RestAPI"]["Properties"]
    # Then it has a per-stage name (alarm dimensions), X-Ray, JSON access logs and no payload logging
    assert props["Name"] == "jifen-dev-api"
    assert props["TracingEnabled"] is True
    log_format = json.loads(props["AccessLogSetting"]["Format"])
    assert log_format["request_id"] == "$context.requestId"
    assert log_format["status"] == "$context.status"
    assert props["MethodSettings"][0]["DataTraceEnabled"] is False


# --- alarms ------------------------------------------------------------------------------------


def alarms_by_metric(synthesized: Synthesized) -> list[tuple[str, dict[str, Any]]]:
    """(metric name, alarm properties), including metrics inside math-expression alarms."""
    found = []
    for alarm in synthesized.of_type(ALARM).values():
        props = alarm["Properties"]
        if "MetricName" in props:
            found.append((props["MetricName"], props))
        for query in props.get("Metrics", []):
            if "MetricStat" in query:
                found.append((query["MetricStat"]["Metric"]["MetricName"], props))
    return found


def test_every_function_alarms_on_errors_and_throttles(synthesized: Synthesized) -> None:
    # Given the alarms on Lambda metrics
    lambda_alarms = {
        (props["MetricName"], props["Dimensions"][0]["Value"]["Ref"])
        for _, props in alarms_by_metric(synthesized)
        if props.get("Namespace") == "AWS/Lambda"
    }
    # Then every Chalice function has an Errors and a Throttles alarm
    for logical_id in functions(synthesized):
        assert ("Errors", logical_id) in lambda_alarms
        assert ("Throttles", logical_id) in lambda_alarms


def test_api_and_table_alarms_exist(synthesized: Synthesized) -> None:
    # Given all alarms
    found = alarms_by_metric(synthesized)
    metric_names = {name for name, _ in found}
    # Then API 5XX, DynamoDB throttles and DynamoDB system errors are watched
    assert {"5XXError", "ThrottledRequests", "SystemErrors"} <= metric_names
    api_5xx = next(props for name, props in found if name == "5XXError")
    assert {d["Name"]: d["Value"] for d in api_5xx["Dimensions"]} == {"ApiName": "jifen-dev-api", "Stage": "api"}


def test_every_alarm_notifies_the_encrypted_topic(synthesized: Synthesized) -> None:
    # Given the alarm topic
    topics = synthesized.of_type("AWS::SNS::Topic")
    assert len(topics) == 1
    ((topic_id, topic),) = topics.items()
    assert "KmsMasterKeyId" in topic["Properties"]
    # Then every alarm, raised or cleared, goes to it
    alarms = synthesized.of_type(ALARM)
    assert len(alarms) >= 5
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}], logical_id
        assert alarm["Properties"]["OKActions"] == [{"Ref": topic_id}], logical_id


# --- the stack as a whole ----------------------------------------------------------------------


def test_cdk_nag_has_no_unacknowledged_findings(synthesized: Synthesized) -> None:
    # Given the AWS Solutions rule pack
    from cdk_nag import AwsSolutionsChecks

    # When it checks the synthesized app
    report = AwsSolutionsChecks(synthesized.app).validate_scope(synthesized.app)
    findings = [f"{v.rule_name}: {v.description}" for v in report.violations]
    # Then nothing is left that has not been acknowledged with a reason
    assert findings == []
    assert report.success is True


def test_stack_is_environment_agnostic(synthesized: Synthesized) -> None:
    # Given the template as text
    text = json.dumps(synthesized.json)
    # Then no account id or region is baked in (synth needs no credentials; deploy goes anywhere)
    assert "000000000000" not in text
    assert not re.search(r"\b(us|eu|ap|cn|sa|ca|me|af)-[a-z]+-\d\b", text)


def test_code_files_start_the_import_job(synthesized: Synthesized) -> None:
    # Given the uploads bucket and the code import job (@app.lambda_function(name="import_codes"))
    from chalice.utils import to_cfn_resource_name

    from chalicelib.mall.models.codes import CODE_FILE_PREFIX, IMPORT_JOB

    bucket_id = synthesized.logical_id(synthesized.stack.uploads.bucket)
    job_id = to_cfn_resource_name(IMPORT_JOB)
    job = functions(synthesized)[job_id]
    # Then objects created under pools/ (and only there) invoke the job
    (notifications,) = synthesized.of_type("Custom::S3BucketNotifications").values()
    assert notifications["Properties"]["BucketName"] == {"Ref": bucket_id}
    (configuration,) = notifications["Properties"]["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    assert configuration["Events"] == ["s3:ObjectCreated:*"]
    assert configuration["Filter"] == {"Key": {"FilterRules": [{"Name": "prefix", "Value": CODE_FILE_PREFIX}]}}
    assert configuration["LambdaFunctionArn"] == {"Fn::GetAtt": [job_id, "Arn"]}
    # And S3 may invoke it for this bucket only; the job's own role may invoke it to continue a long file
    permissions = [p["Properties"] for p in synthesized.of_type("AWS::Lambda::Permission").values()]
    by_principal = {
        json.dumps(p["Principal"], sort_keys=True): p
        for p in permissions
        if p["FunctionName"] in ({"Ref": job_id}, {"Fn::GetAtt": [job_id, "Arn"]})
    }
    s3_permission = by_principal[json.dumps("s3.amazonaws.com")]
    assert s3_permission["SourceArn"] == {"Fn::GetAtt": [bucket_id, "Arn"]}
    role_id = synthesized.logical_id(synthesized.stack.api.role)
    assert by_principal[json.dumps({"Fn::GetAtt": [role_id, "Arn"]}, sort_keys=True)]["Action"] == "lambda:InvokeFunction"
    assert len(by_principal) == 2
    # And it may run for Lambda's full 15 minutes (it stops starting chunks before, and continues itself)
    assert job["Properties"]["Timeout"] == 900
    # And it reads the file with the functions' role, which already may get the bucket's objects
    assert "s3:GetObject" in function_role_statements(synthesized)["ReadWriteUploads"]["Action"]


def test_order_exports_expire_from_the_uploads_bucket(synthesized: Synthesized) -> None:
    from chalicelib.mall.models.records import EXPORT_PREFIX, EXPORT_RETENTION_DAYS

    # Given the uploads bucket, where order exports (names, phones, addresses) are written
    bucket = synthesized.resources[synthesized.logical_id(synthesized.stack.uploads.bucket)]
    rules = {rule.get("Id"): rule for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    # Then a lifecycle rule deletes them after the retention, and incomplete multipart uploads are still aborted
    assert rules["ExpireOrderExports"] == {
        "Id": "ExpireOrderExports",
        "Prefix": EXPORT_PREFIX,
        "ExpirationInDays": EXPORT_RETENTION_DAYS,
        "Status": "Enabled",
    }
    assert any(rule.get("AbortIncompleteMultipartUpload") == {"DaysAfterInitiation": 1} for rule in rules.values())


def test_order_fulfilment_invokes_only_its_own_functions_and_the_api_may_start_and_resume_it(synthesized: Synthesized) -> None:
    # Given the order fulfilment state machine (infra/statemachines/order_fulfilment.asl.json)
    from chalice.utils import to_cfn_resource_name

    (machine,) = [
        m
        for m in synthesized.of_type("AWS::StepFunctions::StateMachine").values()
        if m["Properties"]["StateMachineName"] == "jifen-dev-order_fulfilment"
    ]
    steps = ["order_cancel", "order_confirm_shipment", "order_needs_attention", "order_pay_out", "order_settle_payment", "order_wait"]
    assert sorted(machine["Properties"]["DefinitionSubstitutions"]) == steps
    # Then its role may invoke exactly those six Chalice functions, nothing else
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    invokes = [
        statement
        for resource in synthesized.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if "lambda:InvokeFunction" in as_list(statement["Action"])
    ]
    assert len(invokes) == 1 and as_list(invokes[0]["Action"]) == ["lambda:InvokeFunction"]
    assert sorted(r["Fn::GetAtt"][0] for r in invokes[0]["Resource"]) == sorted(to_cfn_resource_name(step) for step in steps)
    # And the Chalice functions may start it and answer its task tokens (payment webhook, shipping API, waits)
    statements = function_role_statements(synthesized)
    for sid in ("StartWorkflows", "AnswerWorkflowTasks"):
        arns = [json.dumps(arn) for arn in as_list(statements[sid]["Resource"])]
        assert sum(":stateMachine:jifen-dev-order_fulfilment" in arn for arn in arns) == 1, sid
    assert "states:SendTaskSuccess" in statements["AnswerWorkflowTasks"]["Action"]


def test_the_order_reconciler_runs_on_a_schedule_with_a_dead_letter_queue_and_may_read_executions(synthesized: Synthesized) -> None:
    # Given the synthesized stack
    from chalice.utils import to_cfn_resource_name

    # Then the reconciler is a scheduled function (EventBridge), its failed runs go to the dead-letter queue
    reconciler = functions(synthesized)[to_cfn_resource_name("reconcile_orders")]
    events = reconciler["Properties"]["Events"]
    assert any(event["Type"] in ("Schedule", "CloudWatchEvent", "EventBridgeRule") for event in events.values())
    assert reconciler["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
    # And the functions' role may describe executions of the workflows (is an order's execution still running?)
    statement = function_role_statements(synthesized)["ReadWorkflowExecutions"]
    assert as_list(statement["Action"]) == ["states:DescribeExecution"]
    resources = json.dumps(statement["Resource"])
    assert ":execution:" in resources and "order_fulfilment:*" in resources


def test_the_api_stage_is_throttled_and_password_logins_more_tightly(synthesized: Synthesized) -> None:
    # Given the REST API's stage method settings
    settings = synthesized.resources["RestAPI"]["Properties"]["MethodSettings"]
    by_path = {(s["ResourcePath"], s["HttpMethod"]): s for s in settings}
    # Then every method has a stage-wide rate and burst (not just the account's 10,000 rps default)
    stage = by_path[("/*", "*")]
    assert (stage["ThrottlingRateLimit"], stage["ThrottlingBurstLimit"]) == (1000.0, 2000)
    # And the operator and verifier logins a tighter one, still without payload logging
    for path in ("/~1v1~1auth~1operator", "/~1v1~1auth~1verifier"):
        login = by_path[(path, "POST")]
        assert (login["ThrottlingRateLimit"], login["ThrottlingBurstLimit"]) == (20.0, 40)
        assert login["DataTraceEnabled"] is False


def test_receipt_images_expire_from_the_uploads_bucket_and_browsers_may_post_them(synthesized: Synthesized) -> None:
    from chalicelib.tasks.receipt_models import RECEIPT_IMAGE_RETENTION_DAYS, RECEIPT_PREFIX
    from chalicelib.tasks.receipts import ABANDONED_AFTER_SECONDS

    # Given the uploads bucket, where members POST receipt images (some never submitted: abandoned)
    bucket = synthesized.resources[synthesized.logical_id(synthesized.stack.uploads.bucket)]
    rules = {rule.get("Id"): rule for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    # Then a lifecycle rule deletes the objects under the receipts prefix after the retention
    assert rules["ExpireReceiptImages"] == {
        "Id": "ExpireReceiptImages",
        "Prefix": RECEIPT_PREFIX,
        "ExpirationInDays": RECEIPT_IMAGE_RETENTION_DAYS,
        "Status": "Enabled",
    }
    # And only after any review could end (30 days at most) and an abandoned receipt's item is gone
    assert RECEIPT_IMAGE_RETENTION_DAYS * 86_400 > 30 * 86_400 + ABANDONED_AFTER_SECONDS
    # And incomplete multipart uploads, under any prefix, are aborted after a day
    assert any(rule.get("AbortIncompleteMultipartUpload") == {"DaysAfterInitiation": 1} and "Prefix" not in rule for rule in rules.values())
    # And a browser may send the presigned POST (CORS)
    (cors,) = bucket["Properties"]["CorsConfiguration"]["CorsRules"]
    assert "POST" in cors["AllowedMethods"]
