"""The Lambda side of the local gateway: proxy events, the function's limits, invocations.

An invocation runs in a thread other than the connection's, so the gateway can answer 504 at
API Gateway's integration timeout while the view keeps running, as the Lambda function would
until its own timeout. Python cannot stop a thread: a view that never returns keeps its
thread for good, which a Lambda sandbox would not (it is killed at its timeout).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

from chalice.local import LambdaContext

from infra.stage import ROOT

LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024  # synchronous invocation request and response, each
CHALICE_DEFAULT_TIMEOUT = 60  # seconds, when the stage's config names none
CHALICE_DEFAULT_MEMORY = 128  # MB
LINE_LIMIT_SECONDS = 300.0  # a call waiting this long for a free sandbox is throttled

T = TypeVar("T")


class InvocationTimeout(Exception):
    """The caller stopped waiting; the invocation goes on in its thread."""


class Throttled(Exception):
    """No sandbox became free in time (Lambda's throttling, TooManyRequestsException)."""


@dataclass(frozen=True)
class FunctionLimits:
    """A function's configured timeout and memory, as Lambda would apply them."""

    name: str
    timeout_seconds: int
    memory_mb: int


def function_limits(stage: str, function: str) -> FunctionLimits:
    """`lambda_timeout`/`lambda_memory_size` of `function` in `stage` (then global, then Chalice's defaults)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage_config = config.get("stages", {}).get(stage, {})
    per_function = stage_config.get("lambda_functions", {}).get(function, {})

    def pick(key: str, default: int) -> int:
        for source in (per_function, stage_config, config):
            if source.get(key) is not None:
                return int(source[key])
        return default

    return FunctionLimits(
        function, pick("lambda_timeout", CHALICE_DEFAULT_TIMEOUT), pick("lambda_memory_size", CHALICE_DEFAULT_MEMORY)
    )


def lambda_context(limits: FunctionLimits) -> LambdaContext:
    """A context whose remaining time counts down from the function's timeout."""
    return LambdaContext(limits.name, limits.memory_mb, max_runtime_ms=limits.timeout_seconds * 1000)


class Invoker:
    """A fixed set of reused threads, the local stand-in for warm Lambda sandboxes.

    Reused, because module state lives on in a warm sandbox (PynamoDB keeps its botocore
    client per thread: a fresh thread per request would be a cold start every time). Few,
    because this machine has few cores: Lambda would run every concurrent request in a
    sandbox of its own at once; here the ones beyond `sandboxes` wait in line first. The
    timeout counts from the moment a call starts, as Lambda's does, so the line (an artefact
    of the local machine) never turns into a 504.
    """

    def __init__(self, sandboxes: int, name: str, line_limit_seconds: float = LINE_LIMIT_SECONDS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=sandboxes, thread_name_prefix=name)
        self._line_limit = line_limit_seconds

    def run(self, call: Callable[[], T], wait_seconds: float) -> T:
        """`call()`'s result; InvocationTimeout `wait_seconds` after it started (it runs on), Throttled
        if it waited in line past the line limit (it never starts)."""
        started = threading.Event()

        def invocation() -> T:
            started.set()
            return call()

        future = self._pool.submit(invocation)
        if not started.wait(self._line_limit) and future.cancel():
            raise Throttled(f"waited {self._line_limit:g} s for a free sandbox")
        try:
            return future.result(timeout=wait_seconds)
        except FutureTimeout:
            raise InvocationTimeout(f"no answer within {wait_seconds:g} s") from None

    def close(self) -> None:
        """Stop taking calls; the running ones finish in their threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class HttpRequest:
    """What the gateway read from the client."""

    method: str
    path: str  # without the query string, still percent-encoded
    query: dict[str, list[str]]
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str


def proxy_event(
    request: HttpRequest,
    resource: str,
    path_parameters: dict[str, str],
    authorizer: dict[str, str] | None,
    binary: bool,
    stage: str,
) -> dict[str, Any]:
    """The Lambda proxy integration event API Gateway (REST API) would send for `request`.

    Header names keep the client's spelling (Chalice looks them up case-insensitively); a body
    of a binary media type is base64, any other body is text (bytes that are not UTF-8 become
    U+FFFD, as API Gateway's text passthrough does).
    """
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    body: str | None
    if not request.body:
        body = None
    elif binary:
        body = base64.b64encode(request.body).decode("ascii")
    else:
        body = request.body.decode("utf-8", errors="replace")
    request_context: dict[str, Any] = {
        "resourcePath": resource,
        "httpMethod": request.method,
        "path": f"/{stage}{request.path}",
        "stage": stage,
        "requestId": str(uuid.uuid4()),
        "requestTimeEpoch": int(time.time() * 1000),
        "protocol": "HTTP/1.1",
        "identity": {"sourceIp": request.source_ip, "userAgent": headers.get("User-Agent")},
    }
    if authorizer is not None:
        request_context["authorizer"] = authorizer
    return {
        "resource": resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in request.query.items()} or None,
        "multiValueQueryStringParameters": request.query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": request_context,
        "body": body,
        "isBase64Encoded": bool(binary and body is not None),
    }


def payload_size(payload: Any) -> int:
    """Bytes of `payload` serialised as Lambda receives or returns it."""
    return len(json.dumps(payload, separators=(",", ":")).encode())
