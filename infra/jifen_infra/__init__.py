"""Jifen's CDK app: one stack (JifenStack) made of domain constructs.

Importing this package puts the repository root on ``sys.path`` so the infra can use the
same ``chalicelib.core.table.schema`` as the local server and the tests (one table shape, no drift).
"""

from jifen_infra.paths import ensure_repo_root_on_path

ensure_repo_root_on_path()
