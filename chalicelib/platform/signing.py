"""HMAC signatures with the stage's one server secret (cursors, dashboard sessions, links).

The secret is a Secrets Manager secret that CloudFormation generates (`SigningSecret` in
the packaged template) and `infra/local.py` creates locally; nothing secret is in
the repository. It is read once per container and kept for SECRET_CACHE_SECONDS, so a
rotation reaches every container within that time. Each use signs under its own
`purpose`, so a signature made for one thing (a cursor) is never valid for another (a
session).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings

SECRET_CACHE_SECONDS = 3600
_cache: dict[str, object] = {"at": 0.0, "key": b""}


def _secret() -> bytes:
    if time.monotonic() - float(_cache["at"]) > SECRET_CACHE_SECONDS or not _cache["key"]:  # type: ignore[arg-type]
        value = client("secretsmanager").get_secret_value(SecretId=get_settings().signing_secret_name)["SecretString"]
        _cache["key"] = value.encode()
        _cache["at"] = time.monotonic()
    return _cache["key"]  # type: ignore[return-value]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sign(message: bytes, purpose: str) -> str:
    """A URL-safe signature of `message` for `purpose`."""
    key = hmac.new(_secret(), purpose.encode(), hashlib.sha256).digest()
    return _b64(hmac.new(key, message, hashlib.sha256).digest())


def verify(message: bytes, signature: str, purpose: str) -> bool:
    """True when `signature` was made by `sign(message, purpose)` with this stage's secret."""
    return hmac.compare_digest(sign(message, purpose), signature)
