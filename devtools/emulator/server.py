"""The embedded AWS emulator: moto's server, fixes of moto's gaps, and LocalStack-style extras.

- `GET /_aws/ses` lists the emails SES "sent" (LocalStack's endpoint, same shape), and
  `DELETE /_aws/ses` forgets them.
- `POST /_emulator/faults` makes matching AWS calls fail with a real AWS error response:
  {"service": "ses", "action": "SendEmail", "code": "Throttling", "status": 400,
   "pattern": [true, true, true, false], "times": 20}. `pattern` repeats (true = fail);
  `times` bounds how many calls the rule sees. `DELETE /_emulator/faults` clears them,
  `GET /_emulator/faults` lists them with their hit counts (`faults.py`).
- S3 refuses anonymous calls and forged or expired presigned URLs (`devtools/emulator/s3_auth.py`)
  and checks browser uploads' POST policies (`devtools/emulator/s3_post_policy.py`), as AWS does.
- With `--state FILE` the state of the app's services is restored from FILE at start and
  saved to it every `--snapshot-seconds` and on stop (`devtools/emulator/state.py`);
  `POST /_emulator/snapshot` saves it at once.
- `GET /_emulator/health` answers `{"status": "running"}` once the server is up.
- SES v2 `SendBulkEmail`, which moto lacks (`devtools/emulator/ses_v2.py`).
- DynamoDB writes are serialised: moto checks a condition and writes without a lock.
- moto's costs that grow with the data are made constant (`transactions`, `sqs`, `query`,
  `serialize`), CloudWatch answers percentiles (`cloudwatch`), and chalice's Swagger 2.0 is
  accepted by API Gateway's import (`patch_moto`).

Run: `python -m devtools.emulator.server --port 4566 [--state .local/emulator-state.pickle]`;
other tools start it with `process.start_process`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from devtools.emulator import ses_v2
from devtools.emulator.faults import FaultTable, StartResponse, fault_response
from devtools.emulator.state import may_change

_SERVICE_RE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")


def _json(start_response: StartResponse, status: str, body: Any) -> Iterable[bytes]:
    data = json.dumps(body, default=str).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _sent_emails(to: str | None = None) -> list[dict[str, Any]]:
    """LocalStack's `/_aws/ses` list; `?to=` (ours, not LocalStack's) keeps the mail whose
    `Destination.ToAddresses` holds the address, as the clients read it (tests' `Mailbox`,
    `devtools.mail`).

    A test polls for its own recipient's mail while a worker's emulator holds every mail the
    session sent (thousands after the fan-out tests): filtered here, a poll is not a copy of all
    of it. Clients filter again, so a server without `to` gives them the same answer."""
    from moto.ses.models import RawMessage, ses_backends

    messages: list[dict[str, Any]] = []
    for account_id, regions in ses_backends.items():
        for region, backend in regions.items():
            for msg in backend.sent_messages:
                entry: dict[str, Any] = {"Id": msg.id, "Region": region, "AccountId": account_id, "Source": msg.source}
                if hasattr(msg, "timestamp"):  # stamped by devtools/emulator/ses_v2.py
                    entry["Timestamp"] = msg.timestamp
                if isinstance(msg, RawMessage):
                    entry.update({"Destination": {"ToAddresses": list(msg.destinations)}, "RawData": msg.raw_data})
                else:
                    body = msg.body
                    entry.update(
                        {
                            "Destination": msg.destinations,
                            "Subject": msg.subject,
                            "Body": {"text_part": body if isinstance(body, str) else None, "html_part": None},
                        }
                    )
                if to is None or to in entry["Destination"].get("ToAddresses", []):
                    messages.append(entry)
    return messages


def _clear_emails() -> None:
    from moto.ses.models import ses_backends

    for _, regions in ses_backends.items():
        for _, backend in regions.items():
            backend.sent_messages.clear()


def _as_openapi3(api_doc: dict[str, Any]) -> dict[str, Any]:
    """Chalice's Swagger 2.0 document in the shape moto's OpenAPI 3 importer reads.

    moto only takes paths, methods, responses and integrations from the document, which
    Swagger 2.0 and OpenAPI 3 spell alike; `info.description` is optional in both.
    """
    doc = dict(api_doc)
    if doc.pop("swagger", None) is not None:
        doc["openapi"] = "3.0.1"
    doc["info"] = {"description": "", **doc.get("info", {})}
    return doc


def patch_moto() -> None:
    """Let moto import the REST API that `chalice deploy` sends (moto gaps, not features).

    moto's `ImportRestApi`/`PutRestApi` accept OpenAPI 3 only and require
    `info.description`; chalice sends Swagger 2.0 without it, as AWS accepts.
    """
    from moto.apigateway.models import APIGatewayBackend

    if getattr(APIGatewayBackend.import_rest_api, "_patched", False):
        return
    import_original, put_original = APIGatewayBackend.import_rest_api, APIGatewayBackend.put_rest_api

    def import_rest_api(self: Any, api_doc: dict[str, Any], fail_on_warnings: bool) -> Any:
        return import_original(self, _as_openapi3(api_doc), fail_on_warnings)

    def put_rest_api(
        self: Any, function_id: str, api_doc: dict[str, Any], fail_on_warnings: bool, mode: str = "merge"
    ) -> Any:
        return put_original(self, function_id, _as_openapi3(api_doc), fail_on_warnings, mode)

    import_rest_api._patched = True  # type: ignore[attr-defined]
    APIGatewayBackend.import_rest_api = import_rest_api  # type: ignore[method-assign]
    APIGatewayBackend.put_rest_api = put_rest_api  # type: ignore[method-assign]


def _list_moto_modules_once() -> None:
    """moto's dispatcher lists its own package directory (a listdir and ~60 stats) on every
    request to match the Host header; the listing cannot change while the server runs, so it is
    read once (the saving per AWS call: bench/README.md § 9)."""
    from moto import backends

    listing = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: listing


_DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "ExecuteStatement"}
)
_dynamodb_writes = threading.Lock()


def make_app(
    faults: FaultTable | None = None, state: Path | None = None, changed: threading.Event | None = None
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI application: moto, the SES mailbox, the fault table (and snapshots when `state` is set).

    `changed` is set by every request that may change the state (see `state.may_change`).
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    patch_moto()
    from devtools.emulator import cloudwatch, query, s3_auth, s3_post_policy, serialize, sqs, transactions

    transactions.patch()  # TransactWriteItems without a copy of the whole table
    sqs.patch()  # sends and receives without counting the whole queue per message
    query.patch()  # a table Query walks its partition from the start key, not the sorted table
    serialize.patch()  # Query and Scan answers by json.dumps, not moto's per-value serializer
    cloudwatch.patch()  # GetMetricData answers percentiles (p50, p95) instead of a 500
    _list_moto_modules_once()

    # S3's request authentication and POST policy check, which moto lacks.
    moto_app = s3_auth.guard(s3_post_policy.guard(DomainDispatcherApplication(create_backend_app)))
    table = faults or FaultTable()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if changed is not None and may_change(method, path, environ.get("HTTP_X_AMZ_TARGET")):
            changed.set()
        if path.rstrip("/") == "/_aws/ses":
            if method == "DELETE":
                _clear_emails()
                return _json(start_response, "200 OK", {"deleted": True})
            to = (parse_qs(environ.get("QUERY_STRING", "")).get("to") or [None])[0]
            return _json(start_response, "200 OK", {"messages": _sent_emails(to)})
        if path.rstrip("/") == "/_emulator/faults":
            if method == "POST":
                size = int(environ.get("CONTENT_LENGTH") or 0)
                spec = json.loads(environ["wsgi.input"].read(size) or b"{}")
                return _json(start_response, "201 Created", table.add(spec).as_dict())
            if method == "DELETE":
                table.clear()
            return _json(start_response, "200 OK", {"faults": table.listing()})
        if path.rstrip("/") == "/_emulator/snapshot" and method == "POST" and state is not None:
            from devtools.emulator.state import save

            return _json(start_response, "200 OK", {"bytes": save(state)})
        if path.rstrip("/") == "/_emulator/health":
            return _json(start_response, "200 OK", {"status": "running"})
        match = _SERVICE_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = match.group(1) if match else None
        if service and table.wants(service):
            target = environ.get("HTTP_X_AMZ_TARGET")
            action = target.rsplit(".", 1)[-1] if target else None
            if action is None and service != "s3":
                size = int(environ.get("CONTENT_LENGTH") or 0)
                raw = environ["wsgi.input"].read(size)
                environ["wsgi.input"] = io.BytesIO(raw)
                action = (parse_qs(raw.decode(errors="replace")).get("Action") or [None])[0]
            elif service == "s3":
                action = method
            if ses_v2.action_for(method, path):  # SES v2 is REST-JSON: the action is in the path
                action, target = ses_v2.action_for(method, path), target or "sesv2"
            fault = table.check(service, action)
            if fault is not None:
                return fault_response(fault, target, service, start_response)
        if ses_v2.action_for(method, path) == "SendBulkEmail":  # not in moto 5.2.5
            return ses_v2.send_bulk_email(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET") or ""
        if target.startswith("DynamoDB_") and target.rsplit(".", 1)[-1] in _DYNAMODB_WRITES:
            with _dynamodb_writes:  # moto evaluates a condition and writes without a lock; DynamoDB is atomic
                return list(moto_app(environ, start_response))
        answer: Iterable[bytes] = moto_app(environ, start_response)
        return answer

    return app


def serve(host: str, port: int, state: Path | None = None, snapshot_seconds: float = 5.0) -> None:
    """Serve until interrupted (SIGINT or SIGTERM); with `state`, restore it first and keep it saved."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    from devtools.emulator.state import Snapshotter, restore

    snapshots, changed = None, threading.Event()
    if state is not None:
        started = time.perf_counter()
        try:
            if restore(state):
                print(f"state restored from {state} in {time.perf_counter() - started:.2f} s", flush=True)
        except Exception as exc:  # noqa: BLE001 - e.g. a snapshot of another moto version: keep it, start empty
            aside = state.with_suffix(".unreadable")
            state.replace(aside)
            print(f"could not restore {state} ({exc!r}); moved to {aside}, starting empty", flush=True)
        snapshots = Snapshotter(state, snapshot_seconds, changed).start()
    if snapshots is not None:  # SIGTERM saves the state; without one it ends the process at once, as before
        signal.signal(signal.SIGTERM, _interrupt)
    server = make_server(
        host, port, make_app(state=state, changed=changed), threaded=True, request_handler=MotoRequestHandler
    )
    print(f"AWS emulator listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if snapshots is not None:
            snapshots.stop()
            print(f"state saved to {state}", flush=True)
            os._exit(0)  # the state is on disk: skip tearing down moto's objects, seconds on a busy machine


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--state", type=Path, help="restore from and save to this file (default: in memory only)")
    parser.add_argument("--snapshot-seconds", type=float, default=5.0, help="how often the state is saved")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.state, args.snapshot_seconds)


if __name__ == "__main__":
    main()
