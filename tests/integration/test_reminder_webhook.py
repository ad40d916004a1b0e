"""Expiry reminders are also POSTed, signed like generic webhooks, to an app's reminder_webhook_url."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from chalicelib.core.auth.signatures import verify_webhook
from chalicelib.core.clock import FixedClock, epoch
from chalicelib.points import engine as points
from chalicelib.points import expiry_jobs
from chalicelib.tenancy.store.apps import AppsRepo
from tests.conftest import bearer, call
from tests.support import login_token

EARNED = datetime(2026, 3, 1, 4, tzinfo=UTC)


class TenantBackend:
    """A tenant's HTTP endpoint on 127.0.0.1 that records what it receives."""

    def __init__(self, status: int = 200) -> None:
        received: list[tuple[dict[str, str], bytes]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jifen/reminders"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def backend() -> Iterator[TenantBackend]:
    server = TenantBackend()
    yield server
    server.close()


def app_with_reminders(api: Any, owner_token: str, url: str) -> dict[str, Any]:
    body = {"name": "Remind", "points_rate": 100, "expiry_policy": {"type": "rolling_days", "n": 10}, "reminder_webhook_url": url}
    created = call(api, "POST", "/v1/admin/apps", body, bearer(owner_token))
    assert created.status_code == 201, created.json_body
    app_id = created.json_body["app"]["app_id"]
    secrets = created.json_body["secrets"]
    login = {"app_id": app_id, "login_token": login_token(secrets["login_secret"], "frank"), "device_id": "d"}
    assert call(api, "POST", "/v1/auth/member", login).status_code == 200
    app = AppsRepo().get(app_id)
    assert app is not None
    points.grant(app, "frank", 70, "gift-1", "gift", clock=FixedClock(EARNED))
    return {"app_id": app_id, "webhook_secret": secrets["webhook_secret"]}


def test_a_reminder_is_posted_once_and_signed_with_the_webhook_secret(api: Any, tenant: Any, backend: TenantBackend) -> None:
    # Given an app with a reminder URL and a member whose 70 points expire on Mar 11
    app = app_with_reminders(api, tenant.owner_token, backend.url)
    soon = FixedClock(EARNED + timedelta(days=7))
    # When the reminder job runs twice
    first = expiry_jobs.run_reminders(clock=soon)
    second = expiry_jobs.run_reminders(clock=soon)
    # Then the tenant received exactly one reminder, which verifies with the app's webhook secret
    assert (first.notified, second.notified, len(backend.received)) == (1, 0, 1)
    headers, body = backend.received[0]
    verify_webhook([app["webhook_secret"]], headers["x-jifen-webhook-signature"], body, epoch(datetime.now(UTC)), 300)
    event = json.loads(body)
    assert {k: event[k] for k in ("type", "app_id", "openid", "points", "expires_on")} == {
        "type": "points.expiring",
        "app_id": app["app_id"],
        "openid": "frank",
        "points": 70,
        "expires_on": "2026-03-11",
    }


def test_a_failing_tenant_endpoint_still_leaves_the_reminder_in_the_outbox(api: Any, tenant: Any) -> None:
    # Given a tenant endpoint that answers 500
    failing = TenantBackend(status=500)
    try:
        app_with_reminders(api, tenant.owner_token, failing.url)
        # When the reminder job runs
        run = expiry_jobs.run_reminders(clock=FixedClock(EARNED + timedelta(days=7)))
    finally:
        failing.close()
    # Then the delivery is not counted, but the reminder was written for the tenant to poll
    assert (run.notified, run.members_changed, len(failing.received)) == (0, 1, 1)


def test_a_reminder_url_must_be_https_in_the_cloud(api: Any, tenant: Any) -> None:
    body = {"name": "Bad", "points_rate": 100, "reminder_webhook_url": "ftp://example.com/x"}
    response = call(api, "POST", "/v1/admin/apps", body, bearer(tenant.owner_token))
    assert response.status_code == 400
    assert response.json_body["error"]["details"][0]["field"] == "reminder_webhook_url"


class _ExplodingNotifier:
    """The tenant-push adapter, failing hard (not just answering 500) for one tenant's URL."""

    def __init__(self, broken_url: str) -> None:
        self.broken_url = broken_url
        self.sent: list[str] = []

    def send(self, url: str, secret: str, event: dict[str, Any]) -> bool:
        if url == self.broken_url:
            raise ConnectionResetError("tenant endpoint dropped the connection")
        self.sent.append(event["app_id"])
        return True


def test_one_tenant_failing_does_not_stop_the_reminders_of_the_others(api: Any, tenant: Any) -> None:
    # Given two apps with reminder URLs, and a push adapter that blows up for the first one's
    broken = app_with_reminders(api, tenant.owner_token, "https://broken.example/jifen")
    healthy = app_with_reminders(api, tenant.owner_token, "https://healthy.example/jifen")
    notifier = _ExplodingNotifier("https://broken.example/jifen")
    # When the reminder job runs
    run = expiry_jobs.run_reminders(clock=FixedClock(EARNED + timedelta(days=7)), notifier=notifier)
    # Then the healthy tenant got its reminder, both reminders are in the outbox, and the failure is reported
    assert notifier.sent == [healthy["app_id"]]
    assert run.members_changed == 2 and run.notified == 1
    assert len(run.errors) == 1 and run.errors[0].startswith(f"{broken['app_id']}/") and run.errors[0].endswith(": ConnectionResetError")
    assert run.finished


def test_the_reminder_job_stops_at_its_budget_and_the_next_run_goes_on(api: Any, tenant: Any) -> None:
    # Given a member with a reminder due
    app_with_reminders(api, tenant.owner_token, "https://quiet.example/jifen")
    notifier = _ExplodingNotifier("none")
    soon = FixedClock(EARNED + timedelta(days=7))
    # When a run has no time left, and then the next one has
    out_of_time = expiry_jobs.run_reminders(clock=soon, notifier=notifier, budget_seconds=-1)
    next_run = expiry_jobs.run_reminders(clock=soon, notifier=notifier, budget_seconds=60)
    # Then the first wrote nothing and says it did not finish; the next one did the work
    assert (out_of_time.finished, out_of_time.members_changed) == (False, 0)
    assert (next_run.finished, next_run.members_changed, next_run.notified) == (True, 1, 1)
