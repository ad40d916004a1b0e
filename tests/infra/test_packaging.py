"""`chalice package` runs inside the test process: it must leave the process as it found it."""

from __future__ import annotations

import json
import os
import sys

import pytest
from jifen_infra.chalice_app import DEFAULT_STAGE_CONFIG, chalice_packaging, chalice_stage_config
from jifen_infra.paths import CHALICE_CONFIG

pytestmark = pytest.mark.infra


def test_packaging_leaves_environment_path_and_settings_as_they_were(monkeypatch: pytest.MonkeyPatch) -> None:
    import chalicelib.core.config as config

    # Given a process whose settings are not cached yet and whose table is "before"
    monkeypatch.setenv("JIFEN_TABLE", "before")
    config.get_settings.cache_clear()
    path_before = list(sys.path)
    # When packaging puts CDK tokens in the environment and something reads settings meanwhile
    with chalice_packaging(region="eu-west-1"):
        os.environ["JIFEN_TABLE"] = "${Token[TOKEN.1]}"
        assert config.get_settings().table == "${Token[TOKEN.1]}"
        assert os.environ["AWS_DEFAULT_REGION"]
    # Then the environment, sys.path and the settings cache are back to what they were
    assert os.environ["JIFEN_TABLE"] == "before"
    assert sys.path == path_before
    assert config.get_settings().table == "before"
    config.get_settings.cache_clear()


def test_stage_config_layers_infra_needs_over_the_chalice_stage() -> None:
    # Given the repository's .chalice/config.json and its "dev" stage
    dev = json.loads(CHALICE_CONFIG.read_text())["stages"]["dev"]
    # When infra builds the construct's stage config
    config = chalice_stage_config("dev", iam_role_arn="arn:role", environment_variables={"JIFEN_STAGE": "dev"})
    # Then Chalice's own stage settings stay, and infra's role, layer and variables are added
    for key in ("lambda_memory_size", "lambda_timeout", "xray", "api_gateway_stage"):
        assert config[key] == dev.get(key, DEFAULT_STAGE_CONFIG[key]), key
    assert config["manage_iam_role"] is False and config["iam_role_arn"] == "arn:role"
    assert config["automatic_layer"] is True
    assert config["environment_variables"]["JIFEN_STAGE"] == "dev"
    # And a stage .chalice/config.json does not know still gets sane defaults
    assert chalice_stage_config("prod", iam_role_arn="r", environment_variables={})["api_gateway_stage"] == "api"
