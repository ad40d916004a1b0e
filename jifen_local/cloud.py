"""An embedded moto server on 127.0.0.1 that admits one request at a time.

moto's server is not thread-safe (measured: conditional decrements oversold under 8 threads), so a
lock serializes requests; then DynamoDB's per-request atomicity holds and concurrency tests mean
something. Lambda invocations are exempt: Step Functions tasks are dispatched in-process to the
Chalice functions, whose own DynamoDB calls take the lock.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")

# Lambda function name -> handler(event) -> result, filled by the runtime.
LAMBDA_HANDLERS: dict[str, Callable[[Any], Any]] = {}


class FairLock:
    """A first-come, first-served lock.

    ``threading.Lock`` lets whichever thread the OS wakes win: with 400 requests queued (a flash
    sale), some waited over two minutes while others went through many times. Tickets keep the
    queue in arrival order, so the slowest request waits for the queue ahead of it and no longer.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: deque[threading.Event] = deque()
        self._held = False

    def __enter__(self) -> FairLock:
        with self._mutex:
            if not self._held:
                self._held = True
                return self
            turn = threading.Event()
            self._waiting.append(turn)
        turn.wait()  # the holder hands the lock over to the first in line: it stays held
        return self

    def __exit__(self, *exc: object) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().set()
            else:
                self._held = False


class SerializedApp:
    """WSGI wrapper: one moto request at a time (Lambda invokes excepted, see module doc)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = FairLock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if _INVOKE_PATH.match(environ.get("PATH_INFO", "")):
            return self.app(environ, start_response)
        with self.lock:
            # Materialize the body inside the lock: moto builds it lazily from shared state.
            return list(self.app(environ, start_response))


# moto's Step Functions and Lambda settings for running workflows (also used by in-process tests).
MOTO_CONFIG: dict[str, Any] = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


def dispatch_invoke(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any) -> bytes:
    """``LambdaSimpleBackend.invoke`` replaced: the function's Python handler from LAMBDA_HANDLERS, in-process."""
    name = function_name.split(":function:")[-1].split(":")[0]
    handler = LAMBDA_HANDLERS.get(name)
    if handler is None:
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": "ResourceNotFound", "errorMessage": f"no local handler for {name}"}).encode()
    try:
        event = json.loads(body) if body else {}
        return json.dumps(handler(event)).encode()
    except Exception as exc:  # a task failure is data for the state machine (Retry / Catch)
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(
            {"errorType": type(exc).__name__, "errorMessage": str(exc), "trace": traceback.format_exc().splitlines()[-3:]}
        ).encode()


def configure_moto() -> None:
    """Real state machine execution and Lambda without Docker; invocations go to LAMBDA_HANDLERS."""
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core.config import default_user_config

    from jifen_local import transactions

    default_user_config.update({service: dict(values) for service, values in MOTO_CONFIG.items()})
    LambdaSimpleBackend.invoke = dispatch_invoke  # type: ignore[method-assign]
    transactions.install()


class LocalCloud:
    """Starts moto on 127.0.0.1:<port> (0 = any free port) in a background thread."""

    def __init__(self, port: int = 0) -> None:
        from moto.moto_server.threaded_moto_server import MotoRequestHandler
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        configure_moto()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app = SerializedApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
        self.port = int(self._server.server_address[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        # moto's Step Functions interpreter reaches Lambda through this port.
        os.environ["MOTO_PORT"] = str(self.port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)

    def start(self) -> LocalCloud:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
