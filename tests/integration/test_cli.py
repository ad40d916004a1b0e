"""The bootstrap command line against a real (moto) table: tenant + owner, app, secret rotation."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from chalicelib.tenancy import cli
from tests.conftest import call


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any] | None, str]:
    code = cli.main(["--table", os.environ["JIFEN_TABLE"], *args])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else None), out.err


def test_bootstrap_a_tenant_an_app_and_rotate_its_secrets(api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # When an operator bootstraps a tenant with its owner, then an app
    code, tenant, _ = run(capsys, "tenant", "create", "globex", "--name", "Globex", "--owner", "boss", "--password", "boss-password-1")
    assert (code, tenant) == (0, {"tenant_id": "globex", "owner": "boss"})
    code, app, _ = run(capsys, "app", "create", "globex", "--name", "Globex App", "--points-rate", "10")
    assert code == 0 and app is not None
    secrets = app["secrets (shown once)"]

    # Then the owner can log in through the API and sees the app, without its secrets
    login = call(api, "POST", "/v1/auth/operator", {"tenant_id": "globex", "username": "boss", "password": "boss-password-1"})
    assert login.status_code == 200
    listed = call(api, "GET", "/v1/admin/apps", None, {"authorization": f"Bearer {login.json_body['token']}"}).json_body
    assert [item["app_id"] for item in listed["items"]] == [app["app_id"]]
    assert secrets["server_key"] not in json.dumps(listed)

    # When the server key is rotated, the new value differs and is printed once
    code, rotated, _ = run(capsys, "app", "rotate", app["app_id"], "--secret", "server_key")
    assert code == 0 and rotated is not None
    assert rotated["new secrets (shown once)"]["server_key"] not in (secrets["server_key"], "")


def test_a_second_tenant_with_the_same_id_is_refused(api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "tenant", "create", "initech", "--name", "Initech", "--password", "owner-password-1")[0] == 0
    code, out, err = run(capsys, "tenant", "create", "initech", "--name", "Other", "--password", "owner-password-2")
    assert (code, out) == (1, None)
    assert "ALREADY_EXISTS" in err


def test_an_app_for_an_unknown_tenant_is_refused(api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "app", "create", "nobody", "--name", "X")
    assert (code, out) == (1, None)
    assert "NOT_FOUND" in err
