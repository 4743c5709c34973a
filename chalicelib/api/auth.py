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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings
from chalicelib.platform.errors import ServiceUnavailable
from chalicelib.platform.observability import logger
from chalicelib.platform.seam import Seam

# A revoked key keeps working in a warm container for up to CACHE_SECONDS (and in API
# Gateway's authorizer cache for the authorizer's TTL). A key the cached list lacks is
# looked up in a list read after the request arrived, so a key created before its first
# use always works: API Gateway caches the authorizer's refusal for the TTL (300 s), so a
# refusal from a list that was a moment too old would lock a brand-new key out for five
# minutes. Reads stay at most one per UNKNOWN_KEY_REFRESH_SECONDS per container: a miss
# that comes sooner waits out the rest of that second (which also slows guessing).
CACHE_SECONDS = 60
UNKNOWN_KEY_REFRESH_SECONDS = 1.0
_cache: dict[str, Any] = {"at": float("-inf"), "keys": {}}
_clock = time.monotonic
_sleep = time.sleep


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


KeyReader = Callable[[], dict[str, Any]]
_READER: Seam[KeyReader] = Seam(lambda: _load_keys)


def configure_keys(reader: KeyReader | None) -> None:
    """Read the key list from `reader` from now on (a test's keys in memory); None: from SSM again."""
    _READER.configure(reader)
    forget_cached_keys()


def _stored_keys(max_age: float) -> dict[str, Any]:
    if _clock() - _cache["at"] > max_age:
        _reload()
    keys: dict[str, Any] = _cache["keys"]
    return keys


def _reload() -> None:
    # `at` is taken before the read: a key stored while the read is under way may be missing
    # from it, so the list counts as no newer than the moment the read began.
    at = _clock()
    _cache["keys"] = _READER.current()()
    _cache["at"] = at


def _keys_read_since(arrived: float) -> dict[str, Any]:
    """A key list read no earlier than `arrived`, reading at most once a refresh interval."""
    if _cache["at"] < arrived:
        _sleep(max(0.0, _cache["at"] + UNKNOWN_KEY_REFRESH_SECONDS - _clock()))
        if _cache["at"] < arrived:  # nobody (another thread of this process) read it meanwhile
            _reload()
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
    arrived, digest = _clock(), hash_key(token)
    found = _find(_stored_keys(CACHE_SECONDS), digest)
    if found is None:
        found = _find(_keys_read_since(arrived), digest)
    return found
