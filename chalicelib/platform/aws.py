"""boto3 clients shared by the process.

No `endpoint_url` is passed: botocore itself reads `AWS_ENDPOINT_URL_<SERVICE>` (e.g.
`AWS_ENDPOINT_URL_DYNAMODB`) and then `AWS_ENDPOINT_URL`, so each service can have its own
endpoint (DynamoDB on the embedded emulator, the rest on LocalStack) and, on Lambda, none
is set and the regional endpoints are used. An explicit endpoint_url would override both.
"""

from __future__ import annotations

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


@cache
def client(service: str) -> Any:
    """A cached low-level client for `service` in the configured region."""
    import boto3  # here: a function whose path makes no client never loads boto3's session machinery

    settings = get_settings()
    return boto3.session.Session().client(
        service,
        region_name=settings.region,
        config=_OVERRIDES.get(service, _CONFIG),
    )
