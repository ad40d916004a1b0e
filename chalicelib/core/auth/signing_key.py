"""Jifen's token signing key: Secrets Manager in the cloud (cached), a local value when run locally."""

from __future__ import annotations

from chalicelib.core.config import get_settings

_MAX_AGE_SECONDS = 300


def signing_key() -> str:
    settings = get_settings()
    if settings.signing_key_secret_arn:
        from aws_lambda_powertools.utilities import parameters  # lazy: only Lambda in the cloud needs it

        value = parameters.get_secret(settings.signing_key_secret_arn, max_age=_MAX_AGE_SECONDS)
        return str(value)
    if not settings.signing_key or len(settings.signing_key) < 32:
        raise RuntimeError("JIFEN_SIGNING_KEY (32+ chars) or JIFEN_SIGNING_KEY_SECRET_ARN must be set")
    return settings.signing_key
