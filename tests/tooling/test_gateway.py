"""The local API Gateway over real HTTP: load, routing errors, authorizer answers and cache,
content types, payload limits, the integration timeout, crashes, binary bodies."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import gateway_app
import pytest
import requests
from helpers import b64, eventually, image_bytes, jpeg_bytes, unique_author

from devtools.gateway.auth import AuthorizerError, Policy, _policy
from devtools.gateway.invoke import function_limits

ROOT = Path(__file__).resolve().parents[2]


def _is_error(body: Any, code: str) -> bool:
    return isinstance(body, dict) and set(body) == {"error", "message", "fields"} and body["error"] == code


@pytest.fixture(scope="module")
def test_gateway() -> Iterator[tuple[Any, str]]:
    """The test-only app behind a gateway whose integration timeout is 1 s."""
    from devtools.gateway.server import Gateway, serving

    gateway = Gateway(gateway_app.app, "test", integration_timeout=1.0)
    with serving(gateway) as url:
        yield gateway, url


# ------------------------------------------------------------------ load, as `make run` serves it


@pytest.fixture(scope="module")
def make_run_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The API started exactly as `make run` starts it (the command of `api_command()`, a child
    process), on an emulator of its own: the load leaves no queue backlog or records behind for
    the other tests. Yields its URL and an API key."""
    from devtools.emulator.process import free_port, start_process
    from devtools.local import api_command

    logs = tmp_path_factory.mktemp("gateway")
    emulator_log = (logs / "emulator.log").open("wb")
    emulator, endpoint = start_process(log=emulator_log)
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
    setup = "from infra.local import create_all, create_api_key; create_all(); print(create_api_key('load'))"
    done = subprocess.run([sys.executable, "-c", setup], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    key = done.stdout.strip().splitlines()[-1]
    port = free_port()
    log = (logs / "api.log").open("wb")
    proc = subprocess.Popen(api_command(os.environ["STAGE"], port), cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/books?limit=1", timeout=2).status_code == 200
        except requests.RequestException:
            return proc.poll() is not None  # stop waiting if it died; the assertion below says so

    try:
        eventually(up, timeout=60, what="the API to answer")
        assert proc.poll() is None, (logs / "api.log").read_text()[-3000:]
        yield url, key
    finally:
        for child in (proc, emulator):
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=10)
        log.close()
        emulator_log.close()


def test_100_concurrent_posts_with_covers_all_answered(make_run_api: tuple[str, str]) -> None:
    url, key = make_run_api
    cover = b64(jpeg_bytes(64, 48))
    author = unique_author("Load")
    start = threading.Barrier(100, timeout=60)

    def post(i: int) -> int | str:
        body = {"title": f"Load {i}", "authors": [author], "cover": cover}
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        with requests.Session() as session:
            start.wait()
            try:
                return session.post(f"{url}/books", json=body, headers=headers, timeout=180).status_code
            except requests.RequestException as exc:
                return f"{type(exc).__name__}: {exc}"

    # Warm the sandboxes first (a `make run` that has served a few requests): ten cold starts at
    # once each build botocore clients, which on a loaded 2-core machine can pass the 29 s
    # integration timeout. The answers under test are the 100 below.
    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda _: requests.get(f"{url}/books?limit=1", timeout=180).status_code, range(20)))
    with ThreadPoolExecutor(max_workers=100) as pool:
        results = list(pool.map(post, range(100)))
    errors = [r for r in results if not isinstance(r, int)]
    assert errors == [], f"{len(errors)} connection errors, e.g. {errors[:3]}"
    assert results == [202] * 100, Counter(results)
    listed = requests.get(f"{url}/books?author={author}&limit=100", timeout=30).json()
    assert len(listed["items"]) == 100


# ------------------------------------------------------------------ routing


@pytest.mark.parametrize(
    "path", ["/nope", "/", "/authors/a/b/subscribers", "/authors//subscribers", "/books/x/cover/extra"]
)
def test_unknown_route_is_404_in_the_error_shape(api: Any, path: str) -> None:
    response = api.request("get", path, headers={"Authorization": f"Bearer {api.keys['alice']}"})
    assert response.status_code == 404
    assert _is_error(response.json(), "NotFound") and response.json()["fields"] == []
    assert response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("TRACE", "/books", "GET, POST"), ("PATCH", "/books/123", "DELETE, GET, PUT"), ("HEAD", "/queues", "GET")],
)
def test_undeclared_method_is_405_with_allow(api: Any, method: str, path: str, allowed: str) -> None:
    response = api.request(method, path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    if method != "HEAD":  # a HEAD answer has no body
        assert _is_error(response.json(), "MethodNotAllowed")


def test_most_specific_resource_and_trailing_slash(test_gateway: tuple[Any, str]) -> None:
    gateway, _ = test_gateway
    assert gateway.match("/echo/x/") == ("/echo/{value}", {"value": "x"})
    assert gateway.match("/echo/") is None  # an empty path parameter never matches
    assert gateway.match("/slow") == ("/slow", {})


# ------------------------------------------------------------------ authorizer


def test_missing_credentials_are_401_in_the_error_shape(api: Any) -> None:
    for headers in ({}, {"Authorization": ""}):
        response = api.request("post", "/books", headers={"Content-Type": "application/json", **headers}, data=b"{}")
        assert response.status_code == 401, headers
        assert _is_error(response.json(), "Unauthorized") and response.headers["WWW-Authenticate"] == "Bearer"


def test_wrong_key_is_403_in_the_error_shape(api: Any) -> None:
    headers = {"Authorization": f"Bearer wrong-{uuid.uuid4().hex}", "Content-Type": "application/json"}
    response = api.request("post", "/books", headers=headers, data=b"{}")
    assert response.status_code == 403
    assert _is_error(response.json(), "Forbidden")


def test_authorizer_raising_unauthorized_is_401(test_gateway: tuple[Any, str]) -> None:
    _, url = test_gateway
    response = requests.get(f"{url}/private", headers={"Authorization": "Bearer unauthorized"}, timeout=30)
    assert response.status_code == 401 and _is_error(response.json(), "Unauthorized")


def test_authorizer_raising_is_503_with_retry_after(test_gateway: tuple[Any, str]) -> None:
    _, url = test_gateway
    response = requests.get(f"{url}/private", headers={"Authorization": "Bearer raise"}, timeout=30)
    assert response.status_code == 503 and _is_error(response.json(), "ServiceUnavailable")
    assert int(response.headers["Retry-After"]) > 0


def test_ssm_outage_in_the_authorizer_is_503_with_retry_after(api: Any, faults: Any) -> None:
    from chalicelib.api import auth

    auth.forget_cached_keys()  # the authorizer must read SSM for this never-seen key
    faults.add(service="ssm", action="GetParameter", code="ServiceUnavailable", status=503)
    headers = {"Authorization": f"Bearer never-seen-{uuid.uuid4().hex}", "Content-Type": "application/json"}
    response = api.request("post", "/books", headers=headers, data=json.dumps({"title": "t", "authors": ["a"]}))
    assert response.status_code == 503
    assert _is_error(response.json(), "ServiceUnavailable")
    assert int(response.headers["Retry-After"]) > 0
    faults.clear()
    auth.forget_cached_keys()
    assert api.post("/books", {"title": "After the outage", "authors": [unique_author()]})[0] == 202


def test_authorizer_context_reaches_the_view(test_gateway: tuple[Any, str]) -> None:
    _, url = test_gateway
    token = f"Bearer {uuid.uuid4().hex}"
    gateway_app.VALID_TOKENS.add(token)
    response = requests.get(f"{url}/private", headers={"authorization": token}, timeout=30)  # any header case
    assert response.status_code == 200
    assert response.json()["authorizer"] == {"principalId": "tester", "admin": "true"}


def test_authorizer_result_is_cached_per_token_for_its_ttl() -> None:
    from devtools.gateway.server import Gateway, serving

    now = [1000.0]
    with serving(Gateway(gateway_app.app, "test", clock=lambda: now[0])) as url:
        token = f"Bearer {uuid.uuid4().hex}"

        def status() -> int:
            return requests.get(f"{url}/private", headers={"Authorization": token}, timeout=30).status_code

        assert status() == 403
        gateway_app.VALID_TOKENS.add(token)
        assert status() == 403  # the refusal is cached for the TTL (1 s) too
        assert gateway_app.AUTHORIZER_CALLS.count(token) == 1
        now[0] += 1.01
        assert status() == 200
        gateway_app.VALID_TOKENS.discard(token)  # revoked: API Gateway keeps allowing it until the TTL ends
        now[0] += 0.9
        assert status() == 200
        assert gateway_app.AUTHORIZER_CALLS.count(token) == 2
        now[0] += 0.2
        assert status() == 403
        fresh = f"Bearer {uuid.uuid4().hex}"
        gateway_app.VALID_TOKENS.add(fresh)  # a token never seen is never in the cache: it works at once
        assert requests.get(f"{url}/private", headers={"Authorization": fresh}, timeout=30).status_code == 200


def test_revoked_api_key_keeps_working_until_the_cache_ends_and_a_new_key_works_at_once(
    api: Any, gateway: Any, aws: Any, settings: Any
) -> None:
    from chalicelib.api import auth
    from infra.local import create_api_key

    key = create_api_key("carol")  # new: never in the gateway's cache, works at once
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    book = json.dumps({"title": "Carol's", "authors": [unique_author()]})
    assert api.request("post", "/books", headers=headers, data=book).status_code == 202
    ssm = aws("ssm")
    stored = json.loads(ssm.get_parameter(Name=settings.api_keys_parameter, WithDecryption=True)["Parameter"]["Value"])
    del stored[auth.hash_key(key)]
    ssm.put_parameter(Name=settings.api_keys_parameter, Value=json.dumps(stored), Type="SecureString", Overwrite=True)
    auth.forget_cached_keys()
    assert api.request("post", "/books", headers=headers, data=book).status_code == 202  # the gateway's cache (300 s)
    gateway.authorizers.forget()  # what the TTL's end does
    assert api.request("post", "/books", headers=headers, data=book).status_code == 403


# ------------------------------------------------------------------ content types


def test_wrong_content_type_is_415_naming_the_accepted_types(api: Any) -> None:
    status, body = api.post("/books", raw=b'{"title": "t", "authors": ["a"]}', content_type="text/plain")
    assert status == 415 and _is_error(body, "UnsupportedMediaType")
    assert body["fields"][0]["field"] == "Content-Type" and body["fields"][0]["accepted"] == ["application/json"]
    assert "text/plain" in body["message"]


def test_cover_without_content_type_is_415_without_mentioning_json(api: Any) -> None:
    status, created = api.post("/books", {"title": "No type", "authors": [unique_author()]})
    status, body = api.put(f"/books/{created['book']['id']}/cover", raw=jpeg_bytes(20, 20), content_type=None)
    assert status == 415 and _is_error(body, "UnsupportedMediaType")
    assert "application/json" not in json.dumps(body)
    assert set(body["fields"][0]["accepted"]) == {"image/jpeg", "image/png", "image/webp"}


def test_header_names_are_case_insensitive(api: Any) -> None:
    headers = {"AUTHORIZATION": f"Bearer {api.keys['alice']}", "content-TYPE": "application/json"}
    data = json.dumps({"title": "Case", "authors": [unique_author()]})
    assert api.request("post", "/books", headers=headers, data=data).status_code == 202


def test_binary_bodies_pass_through_byte_for_byte(test_gateway: tuple[Any, str]) -> None:
    _, url = test_gateway
    data = image_bytes("PNG", (40, 30)) + bytes(range(256))  # every byte value
    headers = {"Content-Type": "image/png", "Accept": "image/png"}
    response = requests.put(f"{url}/picture", data=data, headers=headers, timeout=30)
    assert response.status_code == 200 and response.content == data
    assert response.headers["Content-Type"] == "image/png"


# ------------------------------------------------------------------ payload limits


def test_body_over_api_gateways_10_mib_is_413(api: Any) -> None:
    response = api.request("post", "/books", headers=api.headers("alice"), data=b" " * (10 * 1024 * 1024 + 1))
    assert response.status_code == 413 and _is_error(response.json(), "PayloadTooLarge")
    assert response.json()["fields"][0]["field"] == "body"


def test_event_over_lambdas_6_mib_is_413(api: Any) -> None:
    status, body = api.post("/books", raw=b" " * (6 * 1024 * 1024 - 100))  # the event around it passes 6 MiB
    assert status == 413 and _is_error(body, "PayloadTooLarge") and "Lambda" in body["message"]


def test_binary_body_counts_base64_against_lambdas_limit(api: Any) -> None:
    status, created = api.post("/books", {"title": "Big cover", "authors": [unique_author()]})
    raw = jpeg_bytes(10, 10) + b"\x00" * (5 * 1024 * 1024)  # 5 MiB: under 6 MiB raw, over it as base64
    status, body = api.put(f"/books/{created['book']['id']}/cover", raw=raw, content_type="image/jpeg")
    assert status == 413 and "Lambda" in body["message"]


def test_oversize_body_is_refused_before_it_is_sent(gateway_url: str) -> None:
    """`Expect: 100-continue` (curl sends it for large bodies) gets the 413 instead of a 100."""
    host, port = gateway_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50000000\r\nExpect: 100-continue\r\n\r\n"
        )
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert _is_error(json.loads(answer.split(b"\r\n\r\n", 1)[1]), "PayloadTooLarge")


def test_malformed_http_gets_a_json_answer(gateway_url: str) -> None:
    host, port = gateway_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert _is_error(json.loads(answer.split(b"\r\n\r\n", 1)[1]), "BadRequest")


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before a complete answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    length = int(lengths[0])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed mid-body"
        body += chunk
    return head + b"\r\n\r\n" + body


# ------------------------------------------------------------------ timeouts and crashes


def test_view_past_the_integration_timeout_is_504_and_keeps_running(test_gateway: tuple[Any, str]) -> None:
    _, url = test_gateway
    started = time.monotonic()
    response = requests.get(f"{url}/slow", timeout=60)
    answered = time.monotonic() - started
    assert response.status_code == 504 and _is_error(response.json(), "GatewayTimeout")
    assert answered < gateway_app.SLOW_SECONDS  # answered at the timeout, not when the view ended
    assert gateway_app.SLOW_DONE.wait(30), "the view went on running to its end, as the Lambda would"


def test_exception_in_a_view_is_500_in_the_error_shape(test_gateway: tuple[Any, str]) -> None:
    _, url = test_gateway
    response = requests.get(f"{url}/crash", timeout=30)
    assert response.status_code == 500 and _is_error(response.json(), "InternalServerError")
    assert "a bug in a view" not in response.text  # no internals leak


def test_malformed_function_answer_is_502(test_gateway: tuple[Any, str]) -> None:
    _, url = test_gateway
    response = requests.get(f"{url}/malformed", timeout=30)
    assert response.status_code == 502 and _is_error(response.json(), "InternalServerError")


def test_concurrent_requests_each_see_their_own_request(test_gateway: tuple[Any, str]) -> None:
    _, url = test_gateway

    def echo(i: int) -> dict[str, Any]:
        return cast("dict[str, Any]", requests.post(f"{url}/echo/{i}?n={i}", data=str(i), timeout=60).json())

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(echo, range(40)))
    assert answers == [{"value": str(i), "seen": str(i), "query": {"n": str(i)}, "body": str(i)} for i in range(40)]


# ------------------------------------------------------------------ pure logic


def test_policy_explicit_deny_wins_and_actions_must_match() -> None:
    arn = "arn:aws:execute-api:r:1:api/api/GET/books"
    allow = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": ["arn:aws:execute-api:r:1:api/api/*"]}
    deny = {"Effect": "Deny", "Action": ["execute-api:Invoke"], "Resource": "arn:aws:execute-api:r:1:api/api/GET/*"}
    other = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    assert Policy("p", {}, (allow,)).allows(arn)
    assert not Policy("p", {}, (allow, deny)).allows(arn)
    assert not Policy("p", {}, (other,)).allows(arn)
    assert not Policy("p", {}, ()).allows(arn)


@pytest.mark.parametrize(
    "answer",
    [
        None,
        {"policyDocument": {"Statement": []}},
        {"principalId": "p", "policyDocument": "allow"},
        {"principalId": "p", "policyDocument": {"Statement": []}, "context": {"nested": {"a": 1}}},
    ],
)
def test_invalid_authorizer_answers_are_a_503(answer: Any) -> None:
    with pytest.raises(AuthorizerError) as refused:
        _policy(answer)
    assert refused.value.status == 503


def test_context_values_become_strings_as_api_gateway_passes_them() -> None:
    policy = _policy({"principalId": "p", "policyDocument": {"Statement": []}, "context": {"a": True, "n": 3}})
    assert policy.context == {"a": "true", "n": "3"}


def test_function_limits_come_from_the_stage_config() -> None:
    dev = function_limits("dev", "api_handler")
    assert (dev.timeout_seconds, dev.memory_mb) == (29, 512)
    assert function_limits("nonexistent", "api_handler").timeout_seconds == 60  # Chalice's default


def test_gateway_module_runs_as_a_script() -> None:
    command = [sys.executable, "-m", "devtools.gateway.server", "--help"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--integration-timeout" in done.stdout


def test_half_sent_and_trickled_requests_are_dropped_and_normal_clients_are_not() -> None:
    """GIVEN short timeouts WHEN a client stops mid-request or trickles it THEN the gateway drops it;
    a keep-alive client that sends whole requests is served throughout."""
    import socket
    import time

    from devtools.gateway.server import Gateway, serving

    def dropped(sock: socket.socket, within: float) -> bool:
        """The server closed the connection (EOF or reset) before `within` seconds."""
        sock.settimeout(within)
        try:
            return sock.recv(65536) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    with serving(Gateway(gateway_app.app, "test"), idle_timeout=1.0, request_timeout=2.0) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as half_headers:
            half_headers.sendall(b"GET /echo/x HTTP/1.1\r\nHost: x\r\n")
            assert dropped(half_headers, within=10)
        with socket.create_connection(("127.0.0.1", port)) as half_body:
            half_body.sendall(b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            assert dropped(half_body, within=10)
        with socket.create_connection(("127.0.0.1", port)) as trickle:
            trickle.sendall(b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
            started = time.monotonic()
            try:
                while time.monotonic() - started < 10:  # a byte every 0.5 s: never idle for 1 s
                    trickle.sendall(b" ")
                    time.sleep(0.5)
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert time.monotonic() - started < 10 and dropped(trickle, within=5)
        with requests.Session() as client:  # keep-alive: requests 0.5 s apart on one connection
            for _ in range(4):
                assert client.get(f"{url}/echo/x", timeout=10).status_code == 200
                time.sleep(0.5)
