"""Login "callback" mode: Jifen asks the tenant's login-state endpoint which openid a code belongs to."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from typing import Protocol
from urllib.parse import urlsplit

from chalicelib.core import outbound
from chalicelib.core.auth.signatures import sign_server_request
from chalicelib.core.errors import Unauthorized, UpstreamFailed


class LoginCallback(Protocol):
    def resolve(self, url: str, app_id: str, code: str, server_key: str) -> str:
        """The openid for ``code``; Unauthorized if the tenant rejects it, UpstreamFailed if unreachable."""


class HttpLoginCallback:
    """POSTs ``{"app_id", "code"}`` signed like a server call (so the tenant can trust it), reads ``{"openid"}``."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def resolve(self, url: str, app_id: str, code: str, server_key: str) -> str:
        body = json.dumps({"app_id": app_id, "code": code}).encode()
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        path = urlsplit(url).path or "/"
        request = urllib.request.Request(  # noqa: S310 (the app's callback URL must be https)
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Jifen-App": app_id,
                "X-Jifen-Timestamp": timestamp,
                "X-Jifen-Nonce": nonce,
                "X-Jifen-Signature": sign_server_request(server_key, "POST", path, timestamp, nonce, body),
            },
        )
        try:
            with outbound.opener().open(request, timeout=self.timeout) as response:
                payload = json.loads(response.read(65536))
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500:
                raise Unauthorized("The login code was rejected by the app's login service") from None
            raise UpstreamFailed(f"The app's login service answered {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            if outbound.was_refused(exc):
                raise UpstreamFailed("The app's login service URL does not resolve to a public address") from exc
            raise UpstreamFailed("The app's login service could not be reached") from exc
        openid = payload.get("openid") if isinstance(payload, dict) else None
        if not isinstance(openid, str) or not 0 < len(openid) <= 128:
            raise UpstreamFailed("The app's login service did not return an openid")
        return openid


class FakeLoginCallback:
    """Local stand-in: the code ``ok:<openid>`` resolves to that openid; anything else is rejected."""

    def resolve(self, url: str, app_id: str, code: str, server_key: str) -> str:
        prefix, _, openid = code.partition(":")
        if prefix != "ok" or not openid:
            raise Unauthorized("The login code was rejected by the app's login service")
        return openid
