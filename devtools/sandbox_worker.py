"""The process inside one local Lambda sandbox (an execution environment).

Started by `devtools.sandbox.Sandbox` as a fresh interpreter: it imports the app module
(the cold start), says it is ready, then serves invocations one at a time over the
connection it inherited, like Lambda's runtime loop. Prints and logs of the handler go to
this process's stdout/stderr: a pipe the runner reads and sends to CloudWatch Logs
(devtools/lambda_logs.py), as Lambda does, or the runner's own when it keeps no logs.

Protocol: length-prefixed JSON messages (`multiprocessing.connection`) on an inherited
socket. The parent sends {"event", "request_id", "remaining_ms"}; the child answers
{"type": "result"|"error", ...} and its peak RSS. Handler output is JSON-encoded here, so a
handler that returns something Lambda could not serialize fails as it would there.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from chalice.local import LambdaContext

from devtools.lambda_logs import END_MARKER


def _max_rss_kb() -> int:
    """Peak resident set size of this process so far (Lambda's "Max Memory Used").

    VmHWM, not ru_maxrss: ru_maxrss survives exec, so a sandbox started by a big runner
    would report the runner's peak as its own.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "type": "error",
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def _invoke(handler: Any, function_name: str, memory_mb: int, request: dict[str, Any]) -> dict[str, Any]:
    context = LambdaContext(function_name, memory_mb, max_runtime_ms=int(request["remaining_ms"]))
    context.aws_request_id = str(request["request_id"])
    # Lambda's context names the invocation's log group and stream (the runner sets both per sandbox).
    context.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{function_name}")
    context.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
    context.invoked_function_arn = (
        f"arn:aws:lambda:{os.environ.get('AWS_REGION', 'us-east-1')}:000000000000:function:{function_name}"
    )
    try:
        result = handler(request["event"], context)
    except Exception as exc:  # noqa: BLE001 - reported to the runner as the invocation's error, like Lambda
        print(f"[ERROR] {type(exc).__name__}: {exc}\n{''.join(traceback.format_exception(exc))}", file=sys.stderr)
        return _error(exc)
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        return _error(exc, "Runtime.MarshalError")
    return {"type": "result", "result": result}


def _mark_end(request_id: str) -> None:
    """Tell the runner's log reader that this invocation's output is complete (before the answer,
    so its END and REPORT lines follow the last line the handler wrote)."""
    if not os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME"):
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os.write(1, f"{END_MARKER}{request_id}\n".encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One local Lambda sandbox (started by the runner).")
    parser.add_argument("--fd", type=int, required=True, help="inherited socket to the runner")
    parser.add_argument("--app", required=True, help="module holding the Chalice app")
    parser.add_argument("--handler", required=True, help="attribute of that module to invoke")
    parser.add_argument("--function-name", required=True)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--address-space-mb", type=int, default=0, help="RLIMIT_AS backstop (0: none)")
    args = parser.parse_args(argv)
    if args.address_space_mb:
        limit = args.address_space_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn = Connection(args.fd)
    started = time.perf_counter()
    try:
        handler = getattr(importlib.import_module(args.app), args.handler)
    except Exception as exc:  # noqa: BLE001 - an init error fails the invocation, as Lambda's does
        traceback.print_exc()
        conn.send_bytes(json.dumps(_error(exc, "Runtime.ImportModuleError") | {"max_rss_kb": _max_rss_kb()}).encode())
        return 1
    init_ms = (time.perf_counter() - started) * 1000
    conn.send_bytes(json.dumps({"type": "ready", "init_ms": init_ms, "max_rss_kb": _max_rss_kb()}).encode())
    while True:
        try:
            request = json.loads(conn.recv_bytes())
        except EOFError:
            return 0
        answer = _invoke(handler, args.function_name, args.memory_mb, request)
        answer["max_rss_kb"] = _max_rss_kb()
        _mark_end(str(request["request_id"]))
        conn.send_bytes(json.dumps(answer).encode())


if __name__ == "__main__":
    sys.exit(main())
