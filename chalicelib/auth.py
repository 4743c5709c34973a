"""Who is calling: API keys checked against hashes kept in SSM Parameter Store.

AUTH_MODE=api_key (every AWS stage): `Authorization: Bearer <key>`; the SecureString
parameter API_KEYS_PARAMETER holds {"<sha256 of key>": {"user": "...", "admin": bool}}.
AUTH_MODE=local (development only): `Authorization: Bearer <user>` is trusted as is,
and a user named `admin` is an admin.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from chalicelib.aws import client
from chalicelib.config import get_settings
from chalicelib.observability import logger

CACHE_SECONDS = 60
_cache: dict[str, Any] = {"at": 0.0, "keys": {}}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    user: str
    admin: bool = False


def hash_key(key: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        return None
    return token


def _stored_keys() -> dict[str, Any]:
    if time.monotonic() - _cache["at"] > CACHE_SECONDS:
        value = client("ssm").get_parameter(Name=get_settings().api_keys_parameter, WithDecryption=True)
        _cache["keys"] = json.loads(value["Parameter"]["Value"])
        _cache["at"] = time.monotonic()
    return _cache["keys"]


def forget_cached_keys() -> None:
    """Drop the key cache (after keys were added or revoked)."""
    _cache["at"] = 0.0


def authenticate(header: str | None) -> Principal | None:
    """The caller named by an Authorization header, or None."""
    token = _bearer(header)
    if token is None:
        return None
    mode = get_settings().auth_mode
    if mode == "local":
        user = token if token.replace("-", "").replace("_", "").isalnum() and len(token) <= 64 else None
        return Principal(user, admin=user == "admin") if user else None
    if mode != "api_key":
        logger.error("unknown AUTH_MODE; refusing every request", extra={"auth_mode": mode})
        return None
    digest = hash_key(token)
    for stored, entry in _stored_keys().items():
        if hmac.compare_digest(stored, digest):
            return Principal(str(entry["user"]), admin=bool(entry.get("admin", False)))
    return None
