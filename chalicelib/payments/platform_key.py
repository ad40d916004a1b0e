"""The WeChat Pay platform key an app configures: loaded (and checked) once, by the config and the verifier."""

from __future__ import annotations

import functools
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MIN_KEY_BITS: Final = 2048


@functools.lru_cache(maxsize=64)
def load_platform_key(pem: str) -> rsa.RSAPublicKey:
    """A platform public key or certificate (PEM) → its RSA key. ValueError when it is neither, or too weak."""
    data = pem.strip().encode()
    try:
        key = x509.load_pem_x509_certificate(data).public_key() if b"BEGIN CERTIFICATE" in data else serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("the WeChat Pay platform key is not a PEM public key or certificate") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_KEY_BITS:
        raise ValueError(f"the WeChat Pay platform key must be RSA, {MIN_KEY_BITS} bits or more")
    return key
