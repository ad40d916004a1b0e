"""The uploads bucket (receipts, images): members PUT and operators GET through presigned URLs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from jifen_infra.nag import acknowledge
from jifen_infra.settings import StageSettings

# A presigned URL is signed with the function's role, so the role needs what the URL does.
OBJECT_ACTIONS = ["s3:PutObject", "s3:GetObject"]


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
            # Browser clients (H5 pages, the admin console) PUT/GET with presigned URLs; the
            # signature is the credential, so any origin may carry one.
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.GET, s3.HttpMethods.HEAD],
                    allowed_origins=list(settings.upload_cors_origins),
                    allowed_headers=["*"],
                    max_age=3000,
                )
            ],
            lifecycle_rules=[s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(1))],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def statements(self) -> list[iam.PolicyStatement]:
        return [iam.PolicyStatement(sid="ReadWriteUploads", actions=OBJECT_ACTIONS, resources=[self.bucket.arn_for_objects("*")])]
