"""`make run`: moto + demo data + the Chalice local server, in one process. Ctrl-C stops everything.

python -m jifen_local.server [--port 8000] [--out .local/jifen.json]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = ROOT / ".local"
TABLE = "jifen-local"
BUCKET = "jifen-local-uploads"


def _signing_key() -> str:
    """Kept in .local/secrets.json (outside git) so tokens survive a restart of the local server."""
    path = LOCAL_DIR / "secrets.json"
    if path.exists():
        return str(json.loads(path.read_text())["signing_key"])
    LOCAL_DIR.mkdir(exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(json.dumps({"signing_key": key}))
    path.chmod(0o600)
    return key


def configure_environment(endpoint: str, machines: dict[str, str] | None = None) -> None:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "JIFEN_STAGE": "local",
            "JIFEN_TABLE": TABLE,
            "JIFEN_BUCKET": BUCKET,
            "JIFEN_DYNAMODB_ENDPOINT": endpoint,
            "JIFEN_AWS_ENDPOINT": endpoint,
            "JIFEN_SIGNING_KEY": os.environ.get("JIFEN_SIGNING_KEY") or _signing_key(),
            "JIFEN_LOGIN_CALLBACK_ADAPTER": "fake",
            # requests wait their turn for the one-at-a-time moto (a flash sale queues hundreds)
            "JIFEN_DYNAMODB_TIMEOUT_SECONDS": "300",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        }
    )
    for name, arn in (machines or {}).items():
        os.environ[f"JIFEN_SFN_{name.upper()}"] = arn


# what http.server refuses before Chalice sees the request → (status, (code, message)) of the envelope
_SERVER_REFUSALS: dict[int, tuple[int, tuple[str, str]]] = {
    501: (405, ("METHOD_NOT_ALLOWED", "This method is not allowed")),
    400: (400, ("VALIDATION_FAILED", "Malformed HTTP request")),
    414: (414, ("URI_TOO_LONG", "The request line is too long")),
    431: (431, ("HEADERS_TOO_LARGE", "The request headers are too large")),
}


def _envelope_handler() -> Any:
    """Chalice local answers unknown paths itself (as API Gateway would); give those the envelope too."""
    from chalice.local import ChaliceRequestHandler, LocalGatewayException

    class EnvelopeRequestHandler(ChaliceRequestHandler):
        def _send_error_response(self, error: LocalGatewayException) -> None:
            request_id = error.headers.get("x-amzn-RequestId", "-")
            status, code, message = (
                (404, "NOT_FOUND", "No such route") if error.CODE == 403 else (error.CODE, "UNAUTHORIZED", "Unauthorized")
            )
            body = json.dumps({"error": {"code": code, "message": message, "request_id": request_id}})
            self._send_http_response(status, {"X-Request-Id": request_id}, body)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """http.server's own refusals (a method the server has no handler for: 501; a malformed request
            line or headers) as the JSON envelope, not an HTML page; an undeclared method is 405 as API.md says."""
            status, error = _SERVER_REFUSALS.get(code, (code, ("ERROR", message or "The request was refused")))
            request_id = uuid.uuid4().hex
            body = json.dumps({"error": {"code": error[0], "message": error[1], "request_id": request_id}})
            self.close_connection = True  # the request's body (if any) was not read
            if self.request_version == "HTTP/0.9":  # not parsed (http.server's default): answer with a status line
                self.request_version = "HTTP/1.0"
            self._send_http_response(status, {"X-Request-Id": request_id, "Connection": "close"}, body)

        def log_message(self, format: str, *args: Any) -> None:
            if os.environ.get("JIFEN_ACCESS_LOG"):
                super().log_message(format, *args)

    return EnvelopeRequestHandler


def _burst_server() -> Any:
    from chalice.local import ThreadedHTTPServer

    class BurstHTTPServer(ThreadedHTTPServer):
        request_queue_size = 1024  # the default 5 resets connections when 20+ clients arrive at once (flash sales: 400)

    return BurstHTTPServer


def lambda_handlers(app_module: Any) -> dict[str, Any]:
    """Chalice's pure Lambda functions (workflow tasks), by name: the same handlers Lambda would call."""
    handlers: dict[str, Any] = {}
    for function in app_module.app.pure_lambda_functions:
        handler = getattr(app_module, function.name)
        handlers[function.name] = (lambda h: lambda event: h(event, None))(handler)
    return handlers


def start(port: int, out: Path, moto_port: int = 0) -> tuple[Any, Any, dict[str, Any]]:
    from jifen_local import cloud, resources

    local_cloud = cloud.LocalCloud(moto_port).start()
    # Import the app only after the environment points it at the local cloud.
    configure_environment(local_cloud.endpoint)
    sys.path.insert(0, str(ROOT))
    import app as app_module

    chalice_app = app_module.app
    handlers = lambda_handlers(app_module)
    machines = resources.provision(local_cloud.endpoint, TABLE, BUCKET, list(handlers))
    configure_environment(local_cloud.endpoint, machines)
    from chalicelib.core.config import get_settings

    get_settings.cache_clear()  # the state machine ARNs exist only now
    for name, handler in handlers.items():
        cloud.LAMBDA_HANDLERS[resources.function_name(name)] = handler

    from chalice.config import Config
    from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer

    from jifen_local.seed import seed

    demo = seed()
    config = Config.create(chalice_stage="local")
    # As chalice.local.create_local_server: a thread-local current_request for the threaded server ...
    CustomLocalChalice.__bases__ = (LocalChalice, chalice_app.__class__)
    chalice_app.__class__ = CustomLocalChalice
    # ... with the envelope for unknown paths and a listen backlog that takes a burst of clients.
    server = LocalDevServer(chalice_app, config, "127.0.0.1", port, handler_cls=_envelope_handler(), server_cls=_burst_server())
    actual_port = int(server.server.server_address[1])
    base_url = f"http://127.0.0.1:{actual_port}"
    details = {
        "base_url": base_url,
        "tenant_id": demo.tenant_id,
        "app_id": demo.app_id,
        "login_secret": demo.login_secret,
        "server_key": demo.server_key,
        "webhook_secret": demo.webhook_secret,
        "operator": {"username": demo.operator_username, "password": demo.operator_password},
        "verifier": {"store_id": demo.store_id, "username": demo.verifier_username, "password": demo.verifier_password},
        "members": list(demo.member_openids),
        "moto_endpoint": local_cloud.endpoint,
        "state_machines": machines,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(details, indent=2))
    out.chmod(0o600)
    return server, local_cloud, details


def _examples(details: dict[str, Any], out: Path) -> str:
    base = details["base_url"]
    return f"""
Jifen is running at {base}   (moto at {details["moto_endpoint"]}; connection details in {out})

  # operator login (demo tenant owner)
  curl -s -X POST {base}/v1/auth/operator -H 'content-type: application/json' \\
    -d '{{"tenant_id": "{details["tenant_id"]}", "username": "owner", "password": "{details["operator"]["password"]}"}}'

  # member login: make a tenant-signed login JWT, then exchange it for a member token
  TOKEN=$(.venv/bin/python -m jifen_local.login_token alice)
  curl -s -X POST {base}/v1/auth/member -H 'content-type: application/json' \\
    -d "{{\\"app_id\\": \\"{details["app_id"]}\\", \\"login_token\\": \\"$TOKEN\\", \\"device_id\\": \\"dev-1\\"}}"

  # the mall: the published home page (listings and tasks resolved), then exchange a listing
  curl -s {base}/v1/mall/page -H "authorization: Bearer <member token>"
  curl -s -X POST {base}/v1/mall/exchanges -H "authorization: Bearer <member token>" -H 'Idempotency-Key: try-1' \\
    -H 'content-type: application/json' -d '{{"listing_id": "<listing id from the page>", "quantity": 1}}'

  # the API's OpenAPI document
  curl -s {base}/v1/openapi.json | head -c 300

Ctrl-C stops everything.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run Jifen locally on embedded moto.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("JIFEN_PORT", "8000")))
    parser.add_argument("--moto-port", type=int, default=0)
    parser.add_argument("--out", type=Path, default=LOCAL_DIR / "jifen.json")
    args = parser.parse_args(argv)
    started = time.monotonic()
    server, local_cloud, details = start(args.port, args.out, args.moto_port)
    print(_examples(details, args.out), flush=True)
    print(f"ready in {time.monotonic() - started:.1f}s", flush=True)
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()
        local_cloud.stop()
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
