"""Fault injection: the rules behind `/_emulator/faults`, the AWS error a matching call gets, and
a client for tests.

A rule names a service (and optionally an action); `pattern` repeats (true = fail) and `times`
bounds how many calls the rule sees. The answer has the service protocol's error shape, so the
SDK raises what AWS would make it raise.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import requests

StartResponse = Callable[..., Any]


@dataclass
class Fault:
    """One fault rule."""

    service: str
    action: str | None = None
    code: str = "ServiceUnavailable"
    status: int = 503
    message: str = "injected fault"
    pattern: list[bool] = field(default_factory=lambda: [True])
    times: int | None = None
    seen: int = 0
    failed: int = 0

    def matches(self, service: str, action: str | None) -> bool:
        return self.service == service and (self.action is None or self.action == action)

    def should_fail(self) -> bool:
        if self.times is not None and self.seen >= self.times:
            return False
        fail = self.pattern[self.seen % len(self.pattern)]
        self.seen += 1
        self.failed += int(fail)
        return fail

    def as_dict(self) -> dict[str, Any]:
        return {
            k: getattr(self, k) for k in ("service", "action", "code", "status", "pattern", "times", "seen", "failed")
        }


class FaultTable:
    """Fault rules, shared by the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, spec: dict[str, Any]) -> Fault:
        fault = Fault(
            service=str(spec["service"]),
            action=spec.get("action"),
            code=str(spec.get("code", "ServiceUnavailable")),
            status=int(spec.get("status", 503)),
            message=str(spec.get("message", "injected fault")),
            pattern=[bool(x) for x in spec.get("pattern", [True])] or [True],
            times=spec.get("times"),
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def wants(self, service: str) -> bool:
        with self._lock:
            return any(f.service == service for f in self._faults)

    def check(self, service: str, action: str | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(service, action) and fault.should_fail():
                    return fault
        return None


def fault_response(fault: Fault, target: str | None, service: str, start_response: StartResponse) -> Iterable[bytes]:
    request_id = str(uuid.uuid4())
    reason = {
        400: "Bad Request",
        403: "Forbidden",
        429: "Too Many Requests",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }
    status = f"{fault.status} {reason.get(fault.status, 'Error')}"
    if target:  # JSON protocols (DynamoDB, SQS)
        body = json.dumps({"__type": fault.code, "message": fault.message}).encode()
        headers = [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-ErrorType", fault.code),
            ("x-amzn-RequestId", request_id),
        ]
    elif service == "s3":
        body = (
            f"<Error><Code>{fault.code}</Code><Message>{fault.message}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml")]
    else:  # query protocol (SES, SSM is JSON and handled above)
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{fault.code}</Code><Message>{fault.message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]


class FaultClient:
    """Talks to `/_emulator/faults` of a running emulator."""

    def __init__(self, endpoint: str) -> None:
        self.url = f"{endpoint}/_emulator/faults"

    def add(self, **spec: Any) -> dict[str, Any]:
        response = requests.post(self.url, json=spec, timeout=5)
        response.raise_for_status()
        added: dict[str, Any] = response.json()
        return added

    def clear(self) -> None:
        requests.delete(self.url, timeout=5).raise_for_status()

    def listing(self) -> list[dict[str, Any]]:
        faults: list[dict[str, Any]] = requests.get(self.url, timeout=5).json()["faults"]
        return faults
