"""Jifen's own bearer tokens (HS256 JWTs) and the tenant-signed member login JWT."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chalicelib.core.errors import Unauthorized

ISSUER = "jifen"
TokenType = Literal["member", "operator", "verifier", "preview"]
LOGIN_AUDIENCE = "jifen"
MAX_LOGIN_TOKEN_LIFETIME = 600
LEEWAY_SECONDS = 30


def issue(key: str, typ: TokenType, claims: dict[str, Any], now_epoch: int, ttl: int) -> str:
    import jwt  # lazy: PyJWT pulls in cryptography (~100 ms) and only token routes need it

    payload = {**claims, "iss": ISSUER, "aud": f"jifen:{typ}", "iat": now_epoch, "exp": now_epoch + ttl}
    return jwt.encode(payload, key, algorithm="HS256")


def verify(key: str, typ: TokenType, token: str, now_epoch: int) -> dict[str, Any]:
    """Claims of a valid, unexpired token of this type; Unauthorized otherwise (forged, expired, wrong type)."""
    import jwt

    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["HS256"],
            audience=f"jifen:{typ}",
            issuer=ISSUER,
            options={"require": ["exp", "iat", "iss", "aud"], "verify_iat": False, "verify_exp": False},
        )
    except jwt.PyJWTError:
        raise Unauthorized("Token is not valid") from None
    if not isinstance(claims["exp"], int) or claims["exp"] <= now_epoch:  # Jifen's clock decides, not PyJWT's wall clock
        raise Unauthorized("Token has expired")
    return claims


class LoginClaims(BaseModel):
    """What a tenant's backend vouches for when a member logs in."""

    model_config = ConfigDict(extra="ignore")

    sub: str = Field(min_length=1, max_length=128)
    iat: int
    exp: int
    nickname: str | None = Field(default=None, max_length=64)
    birthday: str | None = None
    invite_code: str | None = Field(default=None, max_length=32)

    @field_validator("birthday")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if value is not None:
            date.fromisoformat(value)
            if len(value) != 10:
                raise ValueError("birthday must be YYYY-MM-DD")
        return value


def verify_login_token(secrets: list[str], token: str, now_epoch: int) -> LoginClaims:
    """The tenant-signed HS256 JWT of API.md: aud "jifen", exp at most 10 minutes after iat."""
    import jwt

    last_error: Exception | None = None
    for secret in secrets:
        try:
            raw = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                audience=LOGIN_AUDIENCE,
                leeway=LEEWAY_SECONDS,
                options={"require": ["sub", "aud", "iat", "exp"], "verify_exp": False, "verify_iat": False},
            )
            break
        except jwt.PyJWTError as exc:
            last_error = exc
    else:
        raise Unauthorized("Login token is not valid") from last_error
    try:
        claims = LoginClaims.model_validate(raw)
    except ValidationError:
        raise Unauthorized("Login token claims are malformed") from None
    if claims.exp + LEEWAY_SECONDS < now_epoch:
        raise Unauthorized("Login token has expired")
    if claims.iat - LEEWAY_SECONDS > now_epoch:
        raise Unauthorized("Login token is issued in the future")
    if claims.exp - claims.iat > MAX_LOGIN_TOKEN_LIFETIME:
        raise Unauthorized("Login token lives longer than 10 minutes")
    return claims
