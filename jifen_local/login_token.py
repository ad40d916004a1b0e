"""Prints a tenant-signed member login JWT for the local demo app: what a tenant's backend would make.

python -m jifen_local.login_token alice [--birthday 2000-01-31] [--invite CODE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jwt

DETAILS = Path(__file__).resolve().parent.parent / ".local" / "jifen.json"


def make(login_secret: str, openid: str, **claims: str) -> str:
    now = int(time.time())
    payload = {"sub": openid, "aud": "jifen", "iat": now, "exp": now + 300, **{k: v for k, v in claims.items() if v}}
    return jwt.encode(payload, login_secret, algorithm="HS256")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("openid")
    parser.add_argument("--birthday")
    parser.add_argument("--invite", dest="invite_code")
    parser.add_argument("--details", type=Path, default=DETAILS)
    args = parser.parse_args()
    secret = json.loads(args.details.read_text())["login_secret"]
    print(make(secret, args.openid, birthday=args.birthday, invite_code=args.invite_code))


if __name__ == "__main__":
    main()
