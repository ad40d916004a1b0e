"""Bootstrap a deployment: create a tenant and its owner, create an app, rotate an app's secrets.

Against the local server's table (``--local``, reads .local/jifen.json) or a real one (``--table``,
with the AWS credentials of your environment):

    python -m chalicelib.tenancy.cli --local tenant create acme --name "Acme" --owner admin
    python -m chalicelib.tenancy.cli --table jifen-prod-Table --region ap-east-1 app create acme --name "Acme App" --points-rate 100
    python -m chalicelib.tenancy.cli --table jifen-prod-Table app rotate app_123 --secret server_key
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

LOCAL_DETAILS = Path(__file__).resolve().parent.parent / ".local" / "jifen.json"


def _target(args: argparse.Namespace) -> None:
    """Point the data layer at the chosen table before anything reads settings."""
    if args.local:
        if not LOCAL_DETAILS.exists():
            sys.exit(f"{LOCAL_DETAILS} not found: start the local server first (make run)")
        details = json.loads(LOCAL_DETAILS.read_text())
        os.environ.update(
            {
                "JIFEN_TABLE": "jifen-local",
                "JIFEN_DYNAMODB_ENDPOINT": details["moto_endpoint"],
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        )
    elif args.table:
        os.environ["JIFEN_TABLE"] = args.table
        if args.region:
            os.environ["AWS_DEFAULT_REGION"] = args.region
    else:
        sys.exit("choose --local or --table NAME")


def _print(data: dict[str, Any]) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def tenant_create(args: argparse.Namespace) -> None:
    from chalicelib.tenancy import accounts

    password = args.password or (getpass.getpass("owner password (empty = generate): ") if sys.stdin.isatty() else "")
    generated = not password
    password = password or secrets.token_urlsafe(16)
    if len(password) < 10:
        sys.exit("password must be at least 10 characters")
    tenant = accounts.create_tenant(args.tenant_id, args.name, args.owner, password)
    _print({"tenant_id": tenant.tenant_id, "owner": args.owner, **({"generated_password": password} if generated else {})})


def app_create(args: argparse.Namespace) -> None:
    from chalicelib.tenancy import accounts, apps
    from chalicelib.tenancy.models import CreateAppRequest

    accounts.get_tenant(args.tenant_id)
    body = CreateAppRequest(name=args.name, points_rate=args.points_rate, time_zone=args.time_zone)
    created = apps.create_app(args.tenant_id, body)
    _print(
        {
            "app_id": created.app.app_id,
            "tenant_id": created.app.tenant_id,
            "secrets (shown once)": {name: created.secrets.get(name).current for name in ("login_secret", "server_key", "webhook_secret")},
        }
    )


def app_rotate(args: argparse.Namespace) -> None:
    from chalicelib.core.errors import NotFound
    from chalicelib.tenancy import apps
    from chalicelib.tenancy.store.apps import AppsRepo

    secrets_item = AppsRepo().get_secrets(args.app_id)
    if secrets_item is None:
        raise NotFound("App not found")
    rotated = apps.rotate_secrets(secrets_item.tenant_id, args.app_id, args.secret)
    _print(
        {"app_id": args.app_id, "new secrets (shown once)": rotated.values, "previous valid until (epoch)": rotated.previous_valid_until}
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m chalicelib.tenancy.cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = root.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="the table of the running local server")
    where.add_argument("--table", help="a real DynamoDB table name")
    root.add_argument("--region")
    areas = root.add_subparsers(dest="area", required=True)

    tenant = areas.add_parser("tenant").add_subparsers(dest="action", required=True)
    create = tenant.add_parser("create", help="a tenant and its owner")
    create.add_argument("tenant_id")
    create.add_argument("--name", required=True)
    create.add_argument("--owner", default="owner")
    create.add_argument("--password", help="omit to be prompted (or get a generated one)")
    create.set_defaults(run=tenant_create)

    app = areas.add_parser("app").add_subparsers(dest="action", required=True)
    app_new = app.add_parser("create", help="an app of a tenant; prints its secrets once")
    app_new.add_argument("tenant_id")
    app_new.add_argument("--name", required=True)
    app_new.add_argument("--points-rate", type=int, default=100)
    app_new.add_argument("--time-zone", default="Asia/Shanghai")
    app_new.set_defaults(run=app_create)
    rotate = app.add_parser("rotate", help="new values for an app's secrets; old ones work for the grace period")
    rotate.add_argument("app_id")
    rotate.add_argument("--secret", action="append", choices=["login_secret", "server_key", "webhook_secret"], required=True)
    rotate.set_defaults(run=app_rotate)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _target(args)
    from chalicelib.core.errors import JifenError

    try:
        args.run(args)
    except JifenError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
