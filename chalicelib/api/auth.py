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

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings
from chalicelib.platform.errors import ServiceUnavailable
from chalicelib.platform.observability import logger

# A revoked key keeps working in a warm container for up to CACHE_SECONDS (and in API
# Gateway's authorizer cache for the authorizer's TTL). A key nobody has seen is looked up
# again once the cached list is UNKNOWN_KEY_REFRESH_SECONDS old, so a key created a moment
# ago works at once, while random keys cost each container at most one SSM read a second.
CACHE_SECONDS = 60
UNKNOWN_KEY_REFRESH_SECONDS = 1.0
_cache: dict[str, Any] = {"at": float("-inf"), "keys": {}}
_clock = time.monotonic


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


def _load_keys() -> dict[str, Any]:
    try:
        value = client("ssm").get_parameter(Name=get_settings().api_keys_parameter, WithDecryption=True)
    except (BotoCoreError, ClientError) as exc:
        # Raised, never a deny: on AWS an authorizer exception is API Gateway's
        # AUTHORIZER_FAILURE, which the template's gateway response turns into a 503 JSON with
        # Retry-After (a deny would tell a valid caller that their key is wrong).
        logger.exception("cannot read the API keys", extra={"error": str(exc)})
        raise ServiceUnavailable("the API key store is unavailable; try again") from exc
    keys = json.loads(value["Parameter"]["Value"])
    return keys if isinstance(keys, dict) else {}


def _stored_keys(max_age: float) -> dict[str, Any]:
    if _clock() - _cache["at"] > max_age:
        _cache["keys"] = _load_keys()
        _cache["at"] = _clock()
    keys: dict[str, Any] = _cache["keys"]
    return keys


def _find(keys: dict[str, Any], digest: str) -> Principal | None:
    for stored, entry in keys.items():
        if hmac.compare_digest(stored, digest):
            return Principal(str(entry["user"]), admin=bool(entry.get("admin", False)))
    return None


def forget_cached_keys() -> None:
    """Drop the key cache (after keys were added or revoked)."""
    _cache["at"] = float("-inf")


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
    found = _find(_stored_keys(CACHE_SECONDS), digest)
    if found is None:
        found = _find(_stored_keys(UNKNOWN_KEY_REFRESH_SECONDS), digest)
    return found
