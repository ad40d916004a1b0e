"""Outbound HTTP to tenants' endpoints: no redirects (they would carry signed headers to another host)."""

from __future__ import annotations

import urllib.request
from functools import lru_cache


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@lru_cache(maxsize=1)
def opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_RefuseRedirects)
