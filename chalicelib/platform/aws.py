"""boto3 clients shared by the process.

No `endpoint_url` is passed: botocore itself reads `AWS_ENDPOINT_URL_<SERVICE>` (e.g.
`AWS_ENDPOINT_URL_DYNAMODB`) and then `AWS_ENDPOINT_URL`, so each service can have its own
endpoint (DynamoDB on the embedded emulator, the rest on LocalStack) and, on Lambda, none
is set and the regional endpoints are used. An explicit endpoint_url would override both.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from botocore.config import Config

from chalicelib.platform.config import get_settings

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=5,
    read_timeout=20,
    max_pool_connections=32,
)
# SES calls run only inside tasks, whose queue-level backoff owns the retries: each attempt
# is recorded, and a throttled send frees the Lambda instead of sleeping in botocore.
_SES = _CONFIG.merge(Config(retries={"mode": "standard", "max_attempts": 1}))
# S3 signs everything with SigV4: boto3 still presigns POST forms with the deprecated SigV2
# by default, which regions opened since 2014 refuse.
_OVERRIDES = {"ses": _SES, "sesv2": _SES, "s3": _CONFIG.merge(Config(signature_version="s3v4"))}


_SESSION_LOCK = threading.Lock()


@cache
def _session() -> Any:
    """One boto3 session for every client: each new session parses botocore's endpoint,
    retry and defaults data again, which made every client after the first ~50 ms (CPU)
    dearer at a cold start (bench/README.md §5)."""
    import boto3  # here: a function whose path makes no client never loads boto3's session machinery

    return boto3.session.Session()


@cache
def client(service: str) -> Any:
    """A cached low-level client for `service` in the configured region."""
    settings = get_settings()
    with _SESSION_LOCK:  # a session is not thread-safe (boto3's docs); the clients it makes are
        return _session().client(
            service,
            region_name=settings.region,
            config=_OVERRIDES.get(service, _CONFIG),
        )


def reset() -> None:
    """Forget the clients and the session (with the credentials it resolved): the next use makes new ones."""
    with _SESSION_LOCK:
        client.cache_clear()
        _session.cache_clear()
