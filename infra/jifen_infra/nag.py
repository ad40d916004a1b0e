"""cdk-nag (v3: a CDK policy-validation plugin) and the one way Jifen acknowledges a finding: with a reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stage, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_nag_checks(stage: Stage) -> AwsSolutionsChecks:
    """Run AWS Solutions checks at synthesis; any unacknowledged finding fails ``cdk synth``."""
    checks = AwsSolutionsChecks(stage, verbose=True)
    Validations.of(stage).add_plugins(checks)
    return checks


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Suppress one finding (e.g. ``AwsSolutions-IAM5[Resource::*]``) on a construct and its children."""
    if not reason.strip():
        raise ValueError(f"{finding}: an acknowledgment needs a reason")
    Validations.of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))
