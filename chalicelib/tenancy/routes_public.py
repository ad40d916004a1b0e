"""Login routes anyone may call: members, operators, verifiers get Jifen tokens."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.core.auth.rules import PUBLIC
from chalicelib.core.auth.signing_key import signing_key
from chalicelib.core.http.api import Api, ok, parse_body
from chalicelib.tenancy import accounts, members
from chalicelib.tenancy.models import (
    MemberLoginRequest,
    MemberLoginResponse,
    MemberOut,
    OperatorLoginRequest,
    TokenResponse,
    VerifierLoginRequest,
)

public = Api(__name__, tag="auth")


@public.endpoint(
    "/v1/auth/member",
    methods=("POST",),
    auth=PUBLIC,
    body=MemberLoginRequest,
    response=MemberLoginResponse,
    summary="Log a member in with a tenant-signed JWT or a login-callback code",
    metric="MemberLogin",
    errors=(400, 401, 502),
)
def member_login() -> Response:
    session = members.login(parse_body(MemberLoginRequest), signing_key())
    return ok(MemberLoginResponse(token=session.token, expires_in=session.expires_in, member=MemberOut.from_domain(session.member)))


@public.endpoint(
    "/v1/auth/operator",
    methods=("POST",),
    auth=PUBLIC,
    body=OperatorLoginRequest,
    response=TokenResponse,
    summary="Log an operator in",
    errors=(400, 401, 429),
)
def operator_login() -> Response:
    body = parse_body(OperatorLoginRequest)
    issued = accounts.login_operator(body.tenant_id, body.username, body.password, signing_key())
    return ok(TokenResponse(token=issued.token, expires_in=issued.expires_in, role=issued.role, tenant_id=issued.tenant_id))


@public.endpoint(
    "/v1/auth/verifier",
    methods=("POST",),
    auth=PUBLIC,
    body=VerifierLoginRequest,
    response=TokenResponse,
    summary="Log a store verifier in",
    errors=(400, 401, 429),
)
def verifier_login() -> Response:
    body = parse_body(VerifierLoginRequest)
    issued = accounts.login_verifier(body.store_id, body.username, body.password, signing_key())
    return ok(TokenResponse(token=issued.token, expires_in=issued.expires_in, tenant_id=issued.tenant_id, store_id=issued.store_id))
