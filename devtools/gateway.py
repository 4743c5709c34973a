"""A local API Gateway (REST API, Lambda proxy integration) serving the Chalice app.

  python -m devtools.gateway --stage local --port 8000

`chalice local` listens with a backlog of 5 (connection resets under load), answers in API
Gateway's own error bodies and drops the connection when the authorizer raises. This server
is what `make run` and the tests use instead. Faithful to API Gateway + Lambda:

- routing: the most specific resource wins; unknown path → 404 NotFound; a method the
  resource does not declare → 405 MethodNotAllowed with `Allow` (deployed, API Gateway answers
  that with its MISSING_AUTHENTICATION_TOKEN response: see docs/LOCAL.md);
- the TOKEN authorizer with its result cache (`devtools/gateway_auth.py`): 401, 403, and 503
  with Retry-After when it raises;
- limits: request bodies over 10 MiB → 413 (API Gateway), an invocation event or a response
  over 6 MiB → 413 / 502 (Lambda), a view past the 29 s integration timeout → 504 while it
  keeps running, an exception escaping the function → 502;
- binary media types: request bodies base64 in the event, base64 responses decoded;
- slow clients: a keep-alive connection idle for IDLE_TIMEOUT_SECONDS is closed, and a
  request whose line, headers and body have not all arrived REQUEST_TIMEOUT_SECONDS after
  its first byte is dropped (a half-sent or trickled request never holds a thread for long).
  AWS documents no such value for REST APIs; 60 s is the idle timeout its HTTP front ends
  default to (Application Load Balancer's `idle_timeout.timeout_seconds`).

Every error the gateway itself produces is `chalicelib.platform.errors.error_body` JSON.

The server is the standard library's threading HTTP server with the listen backlog raised:
one thread per connection keeps request bodies and every early answer (413 before reading a
body, JSON for malformed requests) under our control. waitress was considered and not used
because it answers oversize bodies and malformed requests itself, in plain text.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import logging
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chalice.app import Chalice, ChaliceAuthorizer, RouteEntry
from chalice.local import LocalChalice

from chalicelib.platform.errors import RETRY_AFTER_SECONDS, error_body
from devtools.gateway_auth import AuthorizerError, TokenAuthorizers
from devtools.gateway_invoke import (
    LAMBDA_PAYLOAD_LIMIT,
    HttpRequest,
    InvocationTimeout,
    Invoker,
    Throttled,
    function_limits,
    lambda_context,
    payload_size,
    proxy_event,
)
from devtools.stage import ROOT, stage_environment

API_GATEWAY_PAYLOAD_LIMIT = 10 * 1024 * 1024  # request payload
INTEGRATION_TIMEOUT_SECONDS = 29.0
SANDBOXES = 10  # invocations at once; more wait in line (see gateway_invoke.Invoker)
LISTEN_BACKLOG = 1024  # the kernel caps it at net.core.somaxconn
DRAIN_LIMIT = 32 * 1024 * 1024  # an oversize body up to this is read and dropped, so the client sees the 413
IDLE_TIMEOUT_SECONDS = 60.0  # a connection with nothing arriving is closed
REQUEST_TIMEOUT_SECONDS = 60.0  # a whole request (line, headers, body) must arrive within this
API_FUNCTION = "api_handler"  # Chalice's name for the function behind every route

log = logging.getLogger("bookshelf.gateway")


@dataclass
class GatewayResponse:
    """What goes back to the client."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    close: bool = False


def gateway_error(status: int, code: str, message: str, fields: list[dict[str, Any]] | None = None) -> GatewayResponse:
    """An answer of the gateway itself, in the one error shape."""
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    if status in (429, 503):  # as the template's gateway responses (infra/gateway_responses.py)
        headers.append(("Retry-After", str(RETRY_AFTER_SECONDS)))
    if status == 401:  # as the template's UNAUTHORIZED gateway response
        headers.append(("WWW-Authenticate", "Bearer"))
    return GatewayResponse(status, headers, json.dumps(error_body(code, message, fields)).encode())


def too_large(size: int, limit: int, who: str) -> GatewayResponse:
    message = f"the request is {size} bytes; {who} accepts at most {limit}"
    return gateway_error(413, "PayloadTooLarge", message, [{"field": "body", "message": message}])


class _ThreadLocalChalice(LocalChalice):
    """`current_request` and `lambda_context` per thread: concurrent invocations are separate sandboxes."""

    @property
    def lambda_context(self) -> Any:
        return getattr(self._THREAD_LOCAL, "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._THREAD_LOCAL.lambda_context = value


def _thread_safe(app: Chalice) -> Chalice:
    """Chalice keeps the current request on the app object; make it per thread (as `chalice local` does)."""
    if not isinstance(app, _ThreadLocalChalice):
        app.__class__ = type(f"Gateway{type(app).__name__}", (_ThreadLocalChalice, type(app)), {})
    return app


class Gateway:
    """API Gateway's request pipeline for one Chalice app: route, authorize, invoke, answer."""

    def __init__(
        self,
        app: Chalice,
        stage: str,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
        sandboxes: int = SANDBOXES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock` times the authorizer cache (a test moves it to pass a TTL)."""
        self.app = _thread_safe(app)
        self.stage = stage
        self.integration_timeout = integration_timeout
        self.function = function_limits(stage, API_FUNCTION)
        self._invoker = Invoker(sandboxes, API_FUNCTION)
        self._authorizer_invoker = Invoker(sandboxes, "authorizer")
        self.authorizers = TokenAuthorizers(self._invoke_authorizer, clock)
        # Concrete segments before captures, as API Gateway prefers the most specific resource.
        self._resources = sorted(app.routes, key=lambda r: [(s.startswith("{"), s) for s in r.split("/")])

    def close(self) -> None:
        """Stop the invocation threads once their running calls end."""
        self._invoker.close()
        self._authorizer_invoker.close()

    # ------------------------------------------------------------------ pipeline

    def handle(self, request: HttpRequest) -> GatewayResponse:
        """The answer to one request; never raises."""
        try:
            return self._handle(request)
        except Exception:  # a bug of the gateway itself must still answer in the shape
            log.exception("local gateway error")
            return gateway_error(500, "InternalServerError", "Internal server error")

    def _handle(self, request: HttpRequest) -> GatewayResponse:
        if len(request.body) > API_GATEWAY_PAYLOAD_LIMIT:
            return too_large(len(request.body), API_GATEWAY_PAYLOAD_LIMIT, "API Gateway")
        matched = self.match(request.path)
        if matched is None:
            return gateway_error(404, "NotFound", f"no route matches {request.path[:200]}")
        resource, params = matched
        methods = self.app.routes[resource]
        entry = methods.get(request.method)
        if entry is None:
            return self._undeclared_method(request.method, methods)
        authorizer_context = None
        if isinstance(entry.authorizer, ChaliceAuthorizer):
            try:
                authorizer_context = self.authorizers.authorize(
                    entry.authorizer, _header(request, entry.authorizer.config.header), request.method, request.path
                )
            except AuthorizerError as refused:
                code = {401: "Unauthorized", 403: "Forbidden"}.get(refused.status, "ServiceUnavailable")
                return gateway_error(refused.status, code, refused.message)
        binary = _is_binary(_header(request, "Content-Type"), self.app.api.binary_types)
        event = proxy_event(request, resource, params, authorizer_context, binary, self.stage)
        size = payload_size(event)
        if size > LAMBDA_PAYLOAD_LIMIT:
            return too_large(size, LAMBDA_PAYLOAD_LIMIT, "a Lambda invocation (the event, body base64 if binary)")
        return self._invoke(event)

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        """The resource serving `path` and its path parameters (API Gateway drops one trailing slash)."""
        if path != "/" and path.endswith("/"):
            path = path[:-1]
        parts = path.split("/")
        for resource in self._resources:
            pattern = resource.split("/")
            if len(pattern) != len(parts):
                continue
            params: dict[str, str] = {}
            for want, got in zip(pattern, parts, strict=True):
                if want.startswith("{") and want.endswith("}"):
                    if not got:  # API Gateway never matches an empty path parameter
                        break
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return resource, params
        return None

    def _undeclared_method(self, method: str, methods: dict[str, RouteEntry]) -> GatewayResponse:
        with_cors = [name for name, entry in methods.items() if entry.cors is not None]
        if method == "OPTIONS" and with_cors:  # Chalice deploys a preflight method for CORS routes
            cors = methods[with_cors[0]].cors
            headers = dict(cors.get_access_control_headers()) if cors is not None else {}
            headers["Access-Control-Allow-Methods"] = ",".join([*with_cors, "OPTIONS"])
            return GatewayResponse(200, list(headers.items()))
        allowed = ", ".join(sorted(methods))
        response = gateway_error(405, "MethodNotAllowed", f"{method[:20]} is not allowed here; allowed: {allowed}")
        response.headers.append(("Allow", allowed))
        return response

    def _invoke(self, event: dict[str, Any]) -> GatewayResponse:
        limits = self.function
        wait = min(self.integration_timeout, limits.timeout_seconds)
        try:
            result = self._invoker.run(lambda: self.app(event, lambda_context(limits)), wait)
        except Throttled:
            return gateway_error(429, "TooManyRequests", "every local sandbox stayed busy; try again")
        except InvocationTimeout:
            if wait >= self.integration_timeout:
                message = f"the integration did not answer within {self.integration_timeout:g} s"
                return gateway_error(504, "GatewayTimeout", message)
            log.error("Task timed out after %d seconds (%s)", limits.timeout_seconds, limits.name)
            return gateway_error(502, "InternalServerError", "Internal server error")
        except Exception:  # noqa: BLE001 - whatever escapes the function, API Gateway answers 502
            log.error("the function raised; API Gateway answers 502\n%s", traceback.format_exc())
            return gateway_error(502, "InternalServerError", "Internal server error")
        return self._proxy_response(result)

    def _invoke_authorizer(self, authorizer: ChaliceAuthorizer, event: dict[str, Any]) -> Any:
        limits = function_limits(self.stage, authorizer.name)
        context = lambda_context(limits)
        try:
            return self._authorizer_invoker.run(lambda: authorizer(event, context), limits.timeout_seconds)  # type: ignore[arg-type]
        except Exception:
            log.error("the authorizer %s failed\n%s", authorizer.name, traceback.format_exc())
            raise

    def _proxy_response(self, result: Any) -> GatewayResponse:
        """Lambda's answer as API Gateway relays it (malformed or over 6 MiB → 502)."""
        if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
            log.error("malformed Lambda proxy response: %.200r", result)
            return gateway_error(502, "InternalServerError", "Internal server error")
        if payload_size(result) > LAMBDA_PAYLOAD_LIMIT:
            log.error("the function's response is over Lambda's %d bytes", LAMBDA_PAYLOAD_LIMIT)
            return gateway_error(502, "InternalServerError", "Internal server error")
        headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((str(name), str(v)) for v in values)
        headers = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        return GatewayResponse(result["statusCode"], headers, data)


_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


def _header(request: HttpRequest, name: str) -> str | None:
    wanted = name.lower()
    found = [value for key, value in request.headers if key.lower() == wanted]
    return found[-1] if found else None


def _is_binary(content_type: str | None, binary_types: list[str]) -> bool:
    """API Gateway's binaryMediaTypes match on the media type (wildcards such as image/* allowed)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if not media:
        return False
    kind = media.split("/")[0]
    for candidate in (t.lower() for t in binary_types):
        if candidate in (media, "*/*") or candidate == f"{kind}/*":
            return True
    return False


# ---------------------------------------------------------------------- HTTP


class _TimedReader:
    """The request stream with the gateway's timeouts: idle between requests, one deadline per request.

    A socket timeout alone bounds each read, so a client sending a byte now and then would
    hold its thread forever; here every read also stops at the request's deadline.
    """

    def __init__(self, raw: Any, sock: socket.socket, idle: float, whole: float) -> None:
        self.raw, self.sock, self.idle, self.whole = raw, sock, idle, whole
        self.deadline: float | None = None

    def next_request(self) -> None:
        self.deadline = None

    def _arm(self) -> None:
        if self.deadline is None:  # idle: wait for the first byte of the next request
            self.sock.settimeout(self.idle)
            self.raw.peek(1)
            self.deadline = time.monotonic() + self.whole
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        self.sock.settimeout(min(self.idle, left))

    def readline(self, limit: int = -1) -> bytes:
        line = bytearray()
        while limit < 0 or len(line) < limit:
            self._arm()
            chunk = self.raw.peek(1)
            if not chunk:
                break
            want = len(chunk) if limit < 0 else min(len(chunk), limit - len(line))
            end = chunk.find(b"\n", 0, want)
            line += self.raw.read(want if end < 0 else end + 1)
            if end >= 0:
                break
        return bytes(line)

    def read(self, size: int = -1) -> bytes:
        data = bytearray()
        while size < 0 or len(data) < size:
            self._arm()
            chunk = self.raw.read1(65536 if size < 0 else min(size - len(data), 65536))
            if not chunk:
                break
            data += chunk
        return bytes(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; every method reaches the gateway (TRACE included)."""

    protocol_version = "HTTP/1.1"
    server_version = "bookshelf-local-gateway"
    server: GatewayServer

    def setup(self) -> None:
        super().setup()
        self.rfile = _TimedReader(self.rfile, self.connection, self.server.idle_timeout, self.server.request_timeout)  # type: ignore[assignment]

    def handle_one_request(self) -> None:
        self.rfile.next_request()  # type: ignore[attr-defined]
        super().handle_one_request()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        url = urlsplit(self.path)
        request = HttpRequest(
            method=self.command,
            path=url.path or "/",
            query=parse_qs(url.query, keep_blank_values=True),
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
        )
        self._send(self.server.gateway.handle(request))

    def _read_body(self) -> bytes | None:
        """The request body, or None when an answer was already sent (413, 400)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        if not raw.strip().isdigit():
            self._send(gateway_error(400, "BadRequest", "invalid Content-Length"), close=True)
            return None
        length = int(raw)
        if length > API_GATEWAY_PAYLOAD_LIMIT:
            drained = length <= DRAIN_LIMIT and self._drain(length)
            self._send(too_large(length, API_GATEWAY_PAYLOAD_LIMIT, "API Gateway"), close=not drained)
            return None
        body = self.rfile.read(length)
        if len(body) < length:  # the client went away mid-body
            self.close_connection = True
            return None
        return body

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self._send(gateway_error(400, "BadRequest", "malformed chunked body"), close=True)
                return None
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > API_GATEWAY_PAYLOAD_LIMIT:
                self._send(too_large(total, API_GATEWAY_PAYLOAD_LIMIT, "API Gateway"), close=True)
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(8)

    def _drain(self, length: int) -> bool:
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1024 * 1024))
            if not chunk:
                return False
            left -= len(chunk)
        return True

    def handle_expect_100(self) -> bool:
        """Refuse an oversize body before the client sends it (curl asks for large uploads)."""
        raw = self.headers.get("Content-Length") or ""
        if raw.strip().isdigit() and int(raw) > API_GATEWAY_PAYLOAD_LIMIT:
            self._send(too_large(int(raw), API_GATEWAY_PAYLOAD_LIMIT, "API Gateway"), close=True)
            return False
        return super().handle_expect_100()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed requests (bad request line, oversize headers) answered in the JSON shape too."""
        if not str(getattr(self, "request_version", "")).startswith("HTTP/1."):
            self.request_version = self.protocol_version  # else garbage gets an HTTP/0.9 answer: no status line
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        self._send(gateway_error(code, phrase.replace(" ", "").replace("-", ""), message or phrase), close=True)

    def _send(self, response: GatewayResponse, close: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if close or response.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.access_log:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


class GatewayServer(ThreadingHTTPServer):
    """One thread per connection, a deep listen backlog (socketserver's default is 5)."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        gateway: Gateway,
        host: str,
        port: int,
        access_log: bool = False,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self.gateway, self.access_log = gateway, access_log
        self.idle_timeout, self.request_timeout = idle_timeout, request_timeout
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # HTTPServer's would do a reverse DNS lookup
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        kind = sys.exc_info()[0]
        if kind is not None and issubclass(kind, ConnectionError | socket.timeout):
            return  # the client went away; nothing to answer
        super().handle_error(request, client_address)


@contextmanager
def serving(
    gateway: Gateway,
    host: str = "127.0.0.1",
    port: int = 0,
    idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    request_timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> Iterator[str]:
    """Serve `gateway` from a thread of this process; yields its base URL (port 0: any free port)."""
    server = GatewayServer(gateway, host, port, idle_timeout=idle_timeout, request_timeout=request_timeout)
    thread = threading.Thread(target=server.serve_forever, name="local-gateway", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        gateway.close()


def load_app(spec: str) -> Chalice:
    """`module:attribute` → the Chalice app (the project root is importable)."""
    module_name, _, attribute = spec.partition(":")
    sys.path.insert(0, str(ROOT))
    app = getattr(importlib.import_module(module_name), attribute or "app")
    if not isinstance(app, Chalice):
        raise SystemExit(f"{spec} is not a Chalice app")
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the Chalice app as API Gateway + Lambda would.")
    parser.add_argument("--stage", default="local")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--app", default="app:app", help="module:attribute of the Chalice app")
    parser.add_argument("--integration-timeout", type=float, default=INTEGRATION_TIMEOUT_SECONDS)
    parser.add_argument("--sandboxes", type=int, default=SANDBOXES, help="invocations at once; more wait in line")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)
    for key, value in stage_environment(args.stage).items():  # as `chalice local --stage` does
        os.environ.setdefault(key, value)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = load_app(args.app)
    gateway = Gateway(app, args.stage, integration_timeout=args.integration_timeout, sandboxes=args.sandboxes)
    server = GatewayServer(gateway, args.host, args.port, access_log=not args.quiet)
    signal.signal(signal.SIGTERM, lambda signum, frame: threading.Thread(target=server.shutdown).start())
    print(f"Serving on http://{args.host}:{server.server_port} (local API Gateway, stage {args.stage})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        gateway.close()


if __name__ == "__main__":
    main()
