"""A test-only Chalice app for the local gateway: slow, crashing and echoing views, and
authorizers whose answers a test controls. Never shipped (it lives under tests/)."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

from chalice.app import AuthRequest, AuthResponse, Chalice, Request, Response

from chalicelib.api import chalice_errors

app = Chalice(app_name="gateway-test")
app.api.binary_types.append("image/png")

VALID_TOKENS: set[str] = set()  # tokens `token_check` lets in; tests add and remove them
AUTHORIZER_CALLS: list[str] = []
SLOW_DONE = threading.Event()
SLOW_SECONDS = 3.0


@app.authorizer(ttl_seconds=1)
def token_check(auth_request: AuthRequest) -> AuthResponse:
    AUTHORIZER_CALLS.append(auth_request.token)
    if auth_request.token == "Bearer raise":
        raise RuntimeError("the key store is down")
    if auth_request.token == "Bearer unauthorized":
        raise Exception("Unauthorized")  # API Gateway's documented way to ask for a 401
    if auth_request.token in VALID_TOKENS:
        return AuthResponse(routes=["*"], principal_id="tester", context={"admin": "true"})
    return AuthResponse(routes=[], principal_id="nobody")


@app.middleware("http")
def malformed(request: Request, get_response: Any) -> Any:
    """/malformed makes the function return something that is not a proxy response (an
    exception escaping the function: API Gateway's 502)."""
    if request.path == "/malformed":
        return None
    return get_response(request)


chalice_errors.install(app)  # inside `malformed`, as the app's own errors are


@app.route("/slow")
def slow() -> dict[str, str]:
    SLOW_DONE.clear()
    time.sleep(SLOW_SECONDS)
    SLOW_DONE.set()
    return {"slept": "yes"}


@app.route("/crash")
def crash() -> dict[str, str]:
    raise ValueError("a bug in a view")


@app.route("/malformed")
def malformed_view() -> dict[str, str]:
    return {"never": "seen"}


@app.route("/echo/{value}", methods=["GET", "POST"])
def echo(value: str) -> dict[str, Any]:
    time.sleep(0.05)  # overlap concurrent requests, so shared request state would show
    request = cast("Request", app.current_request)
    return {
        "value": value,
        "seen": cast("dict[str, str]", request.uri_params)["value"],
        "query": dict(request.query_params or {}),
        "body": cast("bytes", request.raw_body).decode() if request.raw_body else None,
    }


@app.route("/private", authorizer=token_check)
def private() -> dict[str, Any]:
    return {"authorizer": cast("Request", app.current_request).context.get("authorizer")}


@app.route("/picture", methods=["PUT"], content_types=["image/png"])
def picture() -> Response:
    """Echoes the uploaded bytes back as an image."""
    return Response(body=cast("Request", app.current_request).raw_body, headers={"Content-Type": "image/png"})
