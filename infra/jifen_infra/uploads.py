"""The uploads bucket (receipts, images, CDK code files): clients PUT (receipt images: POST) and GET through
presigned URLs.

Code files (``pools/...``) start the code import job as soon as they are uploaded.
"""

from __future__ import annotations

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sam as sam
from constructs import Construct

from chalicelib.mall.models.codes import CODE_FILE_PREFIX
from chalicelib.mall.models.records import EXPORT_PREFIX, EXPORT_RETENTION_DAYS
from chalicelib.tasks.receipt_models import RECEIPT_IMAGE_RETENTION_DAYS, RECEIPT_PREFIX
from jifen_infra.nag import acknowledge
from jifen_infra.settings import StageSettings

# A presigned URL is signed with the function's role, so the role needs what the URL does.
OBJECT_ACTIONS = ["s3:PutObject", "s3:GetObject"]
# The import job runs for up to Lambda's limit, then continues in a fresh invocation of itself.
IMPORT_JOB_TIMEOUT_SECONDS = 900


class UploadsConstruct(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: StageSettings) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(settings.log_retention_days))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(self.access_logs, "AwsSolutions-S1", "This is the access-log bucket of the uploads bucket.")
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="uploads/",
            # Browser clients (H5 pages, the admin console) PUT/POST/GET with presigned URLs (receipt images are
            # POSTed, so S3 can bound their size); the signature is the credential, so any origin may carry one.
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.POST, s3.HttpMethods.GET, s3.HttpMethods.HEAD],
                    allowed_origins=list(settings.upload_cors_origins),
                    allowed_headers=["*"],
                    max_age=3000,
                )
            ],
            lifecycle_rules=[
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(1)),
                # Order exports carry names, phones and addresses: gone after a week (a new export is one call away).
                s3.LifecycleRule(id="ExpireOrderExports", prefix=EXPORT_PREFIX, expiration=Duration.days(EXPORT_RETENTION_DAYS)),
                # Receipt images (abandoned uploads among them, whose receipt the table's TTL already removed) go after
                # the retention, longer than any upload and review (incomplete multipart uploads: the rule above).
                s3.LifecycleRule(id="ExpireReceiptImages", prefix=RECEIPT_PREFIX, expiration=Duration.days(RECEIPT_IMAGE_RETENTION_DAYS)),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def statements(self) -> list[iam.PolicyStatement]:
        return [iam.PolicyStatement(sid="ReadWriteUploads", actions=OBJECT_ACTIONS, resources=[self.bucket.arn_for_objects("*")])]

    def send_code_files_to(self, function: sam.CfnFunction, *, role: iam.IRole) -> None:
        """Every object created under ``pools/`` invokes the code import job (``role`` is the job's own role).

        The job reads the file with the functions' role (GetObject on the bucket's objects, above), and
        re-invokes itself when a file takes longer than one run: a resource-based permission for its role,
        since an identity policy naming the function would make the role and the function depend on each other.
        """
        function.add_property_override("Timeout", IMPORT_JOB_TIMEOUT_SECONDS)
        job = lambda_.Function.from_function_attributes(
            self, "ImportJob", function_arn=function.get_att("Arn").to_string(), same_environment=True
        )
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(job), s3.NotificationKeyFilter(prefix=CODE_FILE_PREFIX)
        )
        lambda_.CfnPermission(
            self, "ImportJobContinues", action="lambda:InvokeFunction", function_name=function.ref, principal=role.role_arn
        )
        # CDK configures bucket notifications with a custom resource (a singleton Lambda of the stack).
        for handler in Stack.of(self).node.children:
            if handler.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    handler,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                    "CDK's own bucket-notifications custom resource (it runs only while deploying, to set the uploads "
                    "bucket's notifications) writes its logs with the AWS-maintained basic execution policy.",
                )
                function_resource = handler.node.try_find_child("Resource")
                if isinstance(function_resource, CfnResource):
                    # CDK adds a DependsOn on the role next to the GetAtt that already orders them.
                    function_resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
