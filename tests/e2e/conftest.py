"""The local server (`make run`'s entry point) started in a subprocess, reached over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def local_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    out = tmp_path_factory.mktemp("local") / "jifen.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JIFEN_", "AWS_", "POWERTOOLS_", "MOTO_"))}
    env["JIFEN_SIGNING_KEY"] = "e2e-signing-key-" + "y" * 32
    process = subprocess.Popen(
        [sys.executable, "-m", "jifen_local.server", "--port", "0", "--out", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 90
    while not out.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("local server did not start:\n" + (process.stdout.read() if process.stdout else ""))
        time.sleep(0.2)
    details: dict[str, Any] = json.loads(out.read_text())
    while True:
        try:
            requests.get(details["base_url"] + "/v1/health", timeout=2)
            break
        except requests.ConnectionError:
            time.sleep(0.2)
    yield details
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def operator_token(local_api: dict[str, Any]) -> str:
    response = requests.post(
        local_api["base_url"] + "/v1/auth/operator",
        json={"tenant_id": local_api["tenant_id"], **local_api["operator"]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["token"])
