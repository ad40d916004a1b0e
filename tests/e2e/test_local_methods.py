"""The local server answers methods no route declares with the JSON envelope (issue 9, item 17b), over real HTTP."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

TIMEOUT = 10


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "PROPFIND", "CONNECT", "BREW"])
def test_an_undeclared_method_is_a_405_envelope(local_api: dict[str, Any], method: str) -> None:
    # Given a route of the local server
    # When it is called with a method http.server has no handler for
    response = requests.request(method, local_api["base_url"] + "/v1/auth/operator", timeout=TIMEOUT)
    # Then a 405 METHOD_NOT_ALLOWED envelope in JSON, not an HTML 501
    assert response.status_code == 405, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "METHOD_NOT_ALLOWED" and error["message"]
    assert error["request_id"] == response.headers["X-Request-Id"]


def test_an_undeclared_method_with_a_body_leaves_the_server_answering(local_api: dict[str, Any]) -> None:
    # Given a QUERY request with a body (which the server does not read)
    response = requests.request("QUERY", local_api["base_url"] + "/v1/me", data=b'{"x": 1}', timeout=TIMEOUT)
    assert response.status_code == 405, response.text
    # When the next request comes
    after = requests.delete(local_api["base_url"] + "/v1/auth/operator", timeout=TIMEOUT)
    # Then it is answered as usual (declared methods still reach Chalice: 405 for a route's other method)
    assert after.status_code == 405 and after.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_a_malformed_request_line_is_a_400_envelope(local_api: dict[str, Any]) -> None:
    # Given a raw connection to the local server
    address = urlsplit(local_api["base_url"])
    with socket.create_connection((address.hostname, address.port), timeout=TIMEOUT) as raw:
        # When it sends a request line that is not HTTP
        raw.sendall(b"GET /v1/me HTTP/9.x\r\n\r\n")
        answer = raw.recv(65536).decode(errors="replace")
    # Then the answer is the JSON envelope, not an HTML page
    head, _, body = answer.partition("\r\n\r\n")
    assert " 400 " in head.splitlines()[0], answer
    assert '"code": "VALIDATION_FAILED"' in body
