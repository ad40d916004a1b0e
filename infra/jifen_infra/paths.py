"""Where things are, relative to this file (the CDK CLI runs the app from infra/, pytest from the root)."""

from __future__ import annotations

import sys
from pathlib import Path

INFRA_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = INFRA_DIR.parent
STATEMACHINES_DIR = INFRA_DIR / "statemachines"
STATEMACHINE_BINDINGS_FILE = STATEMACHINES_DIR / "bindings.json"
CDK_JSON = INFRA_DIR / "cdk.json"
CHALICE_CONFIG = REPO_ROOT / ".chalice" / "config.json"


def ensure_repo_root_on_path() -> None:
    """Make ``chalicelib`` importable whatever the working directory is."""
    root = str(REPO_ROOT)
    if root not in sys.path:
        sys.path.insert(0, root)
