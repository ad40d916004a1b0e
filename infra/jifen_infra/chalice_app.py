"""Packaging the Chalice app inside CDK: stage configuration and a clean process around ``chalice package``."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jifen_infra.paths import CHALICE_CONFIG, REPO_ROOT

# Used only when .chalice/config.json has no block for the stage being deployed.
DEFAULT_STAGE_CONFIG: dict[str, Any] = {
    "api_gateway_stage": "api",
    "lambda_memory_size": 512,
    "lambda_timeout": 30,
    "xray": True,
}

# Dependencies go in a Chalice-managed layer: chalice caches it by requirements.txt alone
# (.chalice/deployments/managed-layer-*.zip), so a code change re-zips ~50 KB of app code
# instead of pip-downloading every wheel again.
INFRA_STAGE_OVERRIDES: dict[str, Any] = {"automatic_layer": True, "manage_iam_role": False}

_PACKAGING_LOCK = Path(tempfile.gettempdir()) / "jifen-chalice-package.lock"


def chalice_stage_config(stage: str, *, iam_role_arn: str, environment_variables: Mapping[str, str]) -> dict[str, Any]:
    """Chalice stage config for the construct: defaults < .chalice/config.json's stage < infra's needs.

    Top-level ``environment_variables`` in .chalice/config.json (Powertools names) are merged by
    Chalice itself; the ones given here are added on top.
    """
    with CHALICE_CONFIG.open(encoding="utf-8") as f:
        stage_block = json.load(f).get("stages", {}).get(stage, {})
    config: dict[str, Any] = {**DEFAULT_STAGE_CONFIG, **stage_block, **INFRA_STAGE_OVERRIDES}
    config["iam_role_arn"] = iam_role_arn
    config["environment_variables"] = {**stage_block.get("environment_variables", {}), **environment_variables}
    return config


@contextmanager
def chalice_packaging(region: str) -> Iterator[None]:
    """Run ``chalice package`` in-process without leaking into the rest of the process.

    - it needs a region (for service principals) even though nothing calls AWS;
    - it imports the project's ``app`` module (infra/app.py must not shadow it);
    - it copies the stage's environment variables (CDK tokens) into ``os.environ``, where the
      app's cached settings could pick them up;
    - concurrent synths (pytest-xdist, synth.sh) share .chalice/deployments: one at a time.
    """
    saved_environ = dict(os.environ)
    saved_path = list(sys.path)
    saved_app = sys.modules.get("app")
    saved_dont_write_bytecode = sys.dont_write_bytecode
    settings_was_cached = _settings_cached()
    repo_app = REPO_ROOT / "app.py"
    if saved_app is not None and Path(getattr(saved_app, "__file__", "") or "").resolve() != repo_app:
        del sys.modules["app"]
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    # Keeps this process from adding __pycache__ to chalicelib/, which chalice would zip and hash.
    sys.dont_write_bytecode = True
    with _PACKAGING_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            os.environ.clear()
            os.environ.update(saved_environ)
            sys.path[:] = saved_path
            sys.dont_write_bytecode = saved_dont_write_bytecode
            if saved_app is not None:
                sys.modules["app"] = saved_app
            if not settings_was_cached and _settings_cached():
                # Importing the app may read settings while os.environ holds CDK tokens: forget them.
                sys.modules["chalicelib.core.config"].get_settings.cache_clear()


def _settings_cached() -> bool:
    """Whether the app's cached settings (chalicelib.core.config.get_settings) hold a value in this process."""
    config = sys.modules.get("chalicelib.core.config")
    get_settings = getattr(config, "get_settings", None)
    cache_info = getattr(get_settings, "cache_info", None)
    return bool(cache_info and cache_info().currsize)
