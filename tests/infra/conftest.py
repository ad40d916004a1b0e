"""Synthesize JifenStack once per session (it runs `chalice package`) and share the template."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"
# The root first (chalicelib, and the Chalice app.py); infra appended so infra/app.py never shadows it.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
if str(INFRA_DIR) not in sys.path:
    sys.path.append(str(INFRA_DIR))
# jsii's node runtime nags about node 20 on every start; set before aws_cdk is first imported.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@dataclass
class Synthesized:
    app: Any  # aws_cdk.App
    stack: Any  # jifen_infra.stack.JifenStack
    template: Any  # aws_cdk.assertions.Template
    # The template as plain JSON, read once (each to_json() is a round trip to the jsii runtime).
    json: dict[str, Any] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.json["Resources"]
        return resources

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.get_logical_id(construct.node.default_child))


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template
    from jifen_infra.settings import STACK_ID, StageSettings, cdk_json_context
    from jifen_infra.stack import JifenStack

    workdir = tmp_path_factory.mktemp("cdk")
    previous = os.getcwd()
    os.chdir(workdir)  # the Chalice construct writes its package to ./chalice.out
    try:
        # CDK's built-in CloudFormation validator adds ~15 s per session; scripts/synth.sh runs it
        # (inside `cdk synth`) together with cfn-lint, so the unit of test here is our own assertions.
        app = cdk.App(context=cdk_json_context(), outdir=str(workdir / "cdk.out"), builtin_cloud_formation_validation=False)
        stack = JifenStack(app, STACK_ID, settings=StageSettings.from_node(app.node))
        template = Template.from_stack(stack)
    finally:
        os.chdir(previous)
    return Synthesized(app=app, stack=stack, template=template, json=template.to_json())
