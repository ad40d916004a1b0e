#!/usr/bin/env python3
"""CDK entry point: ``npx cdk synth`` / ``cdk deploy`` from infra/ (see infra/README.md).

The stack is environment-agnostic (no account/region baked in, no lookups), so synthesis needs
neither credentials nor network; ``cdk deploy`` uses whatever account the CLI is pointed at.
"""

import aws_cdk as cdk
from jifen_infra.nag import add_nag_checks
from jifen_infra.settings import STACK_ID, StageSettings
from jifen_infra.stack import JifenStack

app = cdk.App()
JifenStack(app, STACK_ID, settings=StageSettings.from_node(app.node))
add_nag_checks(app)
app.synth()
