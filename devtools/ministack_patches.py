"""MiniStack 1.5.33 with the project's fixes for its gaps, started by devtools/ministack.py.

Runs inside MiniStack's own virtualenv (`python devtools/ministack_patches.py`), never in the
project's: it wraps a few functions of the pinned release, then starts MiniStack's server.
Each wrapper is the text of a fix proposed upstream (docs/DEPLOY.md § MiniStack lists them);
each checks that the function it wraps still exists, so a MiniStack upgrade that moves it fails
at start, loudly, instead of deploying an API without routes.

Wrappers, not edits of the installed files: the venv stays as pip left it and is shared.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

PINNED = "1.5.33"


def _query(params: dict[str, Any], name: str) -> str:
    """One query parameter as MiniStack passes them (a string or a list of strings)."""
    value = params.get(name, "")
    return str(value[0] if isinstance(value, list) and value else value or "")


def patch_apigateway() -> None:
    """ImportRestApi / PutRestApi read the Swagger body; UpdateRestApi keeps compression an int.

    Gap: POST /restapis?mode=import went to CreateRestApi (an empty API named "unnamed") and
    PUT /restapis/{id} was not routed, so chalice's API answered 404 on every route; and
    `minimumCompressionSize` was stored as chalice sends it, a string ("" to switch it off).
    """
    from ministack.services import apigateway_v1 as gw

    original_handle: Callable[..., Any] = gw.handle_request
    original_update: Callable[..., Any] = gw._update_rest_api

    def _binary_types(api_id: str, spec: dict[str, Any]) -> None:
        types = spec.get("x-amazon-apigateway-binary-media-types")
        if isinstance(types, list):
            gw._rest_apis[api_id]["binaryMediaTypes"] = [str(t) for t in types]

    def _import(spec: dict[str, Any]) -> Any:
        api_id = gw._import_rest_api(spec)
        _binary_types(api_id, spec)
        return gw._v1_response(gw._rest_api_view(gw._rest_apis[api_id]), 201)

    def _put(api_id: str, spec: dict[str, Any], mode: str) -> Any:
        if api_id not in gw._rest_apis:
            return gw._v1_error("NotFoundException", "Invalid API identifier specified", 404)
        resources = gw._resources.setdefault(api_id, {})
        if mode != "merge":  # overwrite (the default): the API becomes exactly the document
            root = next(r for r in resources.values() if r.get("path") == "/")
            root["resourceMethods"] = {}
            gw._resources[api_id] = {root["id"]: root}
            gw._authorizers_v1[api_id] = {}
        scheme_map = gw._import_security_schemes(api_id, spec)
        for path, item in (spec.get("paths") or {}).items():
            gw._import_path_item(api_id, path, item, scheme_map, spec.get("security"))
        _binary_types(api_id, spec)
        return gw._v1_response(gw._rest_api_view(gw._rest_apis[api_id]))

    async def handle_request(
        method: str, path: str, headers: dict[str, Any], body: bytes, query_params: dict[str, Any]
    ) -> Any:
        parts = [p for p in path.strip("/").split("/") if p]
        if parts[:1] == ["restapis"] and len(parts) <= 2 and body:
            mode = _query(query_params, "mode")
            try:
                spec = json.loads(body)
            except ValueError:
                spec = None
            if isinstance(spec, dict) and "paths" in spec:
                if len(parts) == 1 and method == "POST" and mode == "import":
                    return _import(spec)
                if len(parts) == 2 and method == "PUT":
                    return _put(parts[1], spec, mode or "overwrite")
        return await original_handle(method, path, headers, body, query_params)

    def update_rest_api(api_id: str, data: dict[str, Any]) -> Any:
        result = original_update(api_id, data)
        api = gw._rest_apis.get(api_id)
        if api is not None:
            size = api.get("minimumCompressionSize")
            if isinstance(size, str):  # patch values are strings; "" switches compression off
                api["minimumCompressionSize"] = int(size) if size.strip().isdigit() else None
            if api.get("minimumCompressionSize") is None:
                api.pop("minimumCompressionSize", None)
            return gw._v1_response(gw._rest_api_view(api))
        return result

    gw.handle_request = handle_request
    gw._update_rest_api = update_rest_api


_VIRTUAL_HOST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]*?)\.s3[.-]")


def patch_cloudformation() -> None:
    """A virtual-hosted TemplateURL (https://bucket.s3.region.amazonaws.com/key) names its bucket.

    Gap: the bucket was taken from the URL's first path segment only, so the URL that
    `aws cloudformation deploy --s3-bucket` and the S3 console give was refused.
    """
    from ministack.services.cloudformation import helpers

    original: Callable[..., Any] = helpers._resolve_document

    def resolve_document(params: dict[str, Any], body_key: str, url_key: str, label: str) -> Any:
        url = helpers._p(params, url_key)
        if url and not helpers._p(params, body_key):
            parsed = urlparse(url)
            match = _VIRTUAL_HOST.match(parsed.hostname or "")
            if match:
                path_style = f"{parsed.scheme}://s3.amazonaws.com/{match['bucket']}{parsed.path}"
                params = {**params, url_key: path_style if not isinstance(params.get(url_key), list) else [path_style]}
        return original(params, body_key, url_key, label)

    helpers._resolve_document = resolve_document


def patch_ses() -> None:
    """SendBulkEmail keeps each entry's ReplacementHeaders (and the default headers) with the mail.

    Gap: they were dropped, so a List-Unsubscribe header could not be checked in
    /_ministack/ses/messages. The headers are recorded on each message as `Headers`.
    """
    from ministack.services import ses_v2

    original_handle: Callable[..., Any] = ses_v2.handle_request
    sent: Callable[[], list[dict[str, Any]]] = ses_v2._sent_emails_list

    async def handle_request(
        method: str, path: str, headers: dict[str, Any], body: bytes, query_params: dict[str, Any]
    ) -> Any:
        if not (method == "POST" and path.rstrip("/").endswith("/outbound-bulk-emails")):
            return await original_handle(method, path, headers, body, query_params)
        before = len(sent())
        result = await original_handle(method, path, headers, body, query_params)
        try:
            data = json.loads(body or b"{}")
            status, _h, answer = result
            if status >= 400:
                return result
            outcomes = json.loads(answer)["BulkEmailEntryResults"]
        except (ValueError, KeyError, TypeError):
            return result
        default = ((data.get("DefaultContent") or {}).get("Template") or {}).get("Headers") or []
        records = {r.get("MessageId"): r for r in sent()[before:]}
        for entry, outcome in zip(data.get("BulkEmailEntries") or [], outcomes, strict=False):
            record = records.get(outcome.get("MessageId"))
            if record is not None:
                replacement = (entry.get("ReplacementHeaders") or []) if isinstance(entry, dict) else []
                merged = {h["Name"]: h["Value"] for h in [*default, *replacement] if "Name" in h}
                record["Headers"] = [{"Name": k, "Value": v} for k, v in merged.items()]
        return result

    ses_v2.handle_request = handle_request

    from ministack import app
    from ministack.services import ses

    original_view: Callable[..., Any] = app._handle_ses_messages_request

    async def messages_view(method: str, path: str, headers: dict[str, Any], query_params: dict[str, Any]) -> Any:
        result = await original_view(method, path, headers, query_params)
        if result is None or result[0] != 200:
            return result
        recorded = {
            rec.get("MessageId"): rec.get("Headers")
            for value in ses._sent_emails.to_dict().values()
            if isinstance(value, list)
            for rec in value
            if isinstance(rec, dict) and rec.get("Headers")
        }
        answer = json.loads(result[2])
        for messages in answer.get("messages", {}).values():
            for message in messages:
                if message.get("MessageId") in recorded:
                    message["Headers"] = recorded[message["MessageId"]]
        return 200, result[1], json.dumps(answer).encode()

    app._handle_ses_messages_request = messages_view


def _emf_metrics(line: str) -> list[tuple[str, str, float, str, dict[str, str]]]:
    """(namespace, metric, value, unit, dimensions) of one Embedded Metric Format log line, or []."""
    if '"_aws"' not in line:
        return []
    try:
        record = json.loads(line[line.index("{") :])
        directives = record["_aws"]["CloudWatchMetrics"]
    except (ValueError, KeyError, TypeError):
        return []
    found = []
    for directive in directives if isinstance(directives, list) else []:
        namespace = str(directive.get("Namespace", ""))
        for metric in directive.get("Metrics") or []:
            name = metric.get("Name") if isinstance(metric, dict) else None
            values = record.get(name)
            for value in values if isinstance(values, list) else [values]:
                if not isinstance(value, int | float) or isinstance(value, bool):
                    continue
                for names in directive.get("Dimensions") or [[]]:
                    dims = {str(d): str(record.get(d, "")) for d in names}
                    found.append((namespace, str(name), float(value), str(metric.get("Unit", "None")), dims))
    return found


def patch_lambda_metrics() -> None:
    """Every invocation publishes Lambda's metrics, and EMF log lines become metrics, as on AWS.

    Gaps: AWS/Lambda Invocations, Errors and Duration were recorded only for the Invoke API
    (not for invocations by an SQS event source mapping, API Gateway or S3), ConcurrentExecutions
    never, and the Embedded Metric Format lines a function logs were stored as log lines only.
    Now the one place every executed invocation passes (`_emit_lambda_logs`, called once per
    invocation with its duration and error) records Invocations, Errors and Duration and
    extracts the EMF metrics of its log; `_execute_function_dispatch` records
    ConcurrentExecutions (the function's running invocations as each starts). The Invoke API's
    own Invocations/Errors/Duration are dropped so nothing counts twice; Throttles stay where
    the slot is refused.
    """
    import threading

    from ministack.services import cloudwatch as cw
    from ministack.services import lambda_svc as lam

    for name in ("_emit_lambda_logs", "_execute_function_dispatch", "_emit_lambda_metrics"):
        if not callable(getattr(lam, name, None)):
            raise SystemExit(f"ministack.services.lambda_svc.{name} is gone: see devtools/ministack_patches.py")
    original_logs: Callable[..., Any] = lam._emit_lambda_logs
    original_dispatch: Callable[..., Any] = lam._execute_function_dispatch
    running: dict[str, int] = {}
    lock = threading.Lock()

    def emit_lambda_logs(
        func: dict[str, Any], request_id: str, log_text: str, error: bool, duration_ms: int, **kw: Any
    ) -> None:
        original_logs(func, request_id, log_text, error, duration_ms, **kw)
        name = (func.get("config") or func).get("FunctionName", "unknown")
        dims = {"FunctionName": name}
        cw.record_metric("AWS/Lambda", "Invocations", 1, "Count", dims)
        cw.record_metric("AWS/Lambda", "Errors", 1 if error else 0, "Count", dims)
        cw.record_metric("AWS/Lambda", "Duration", max(float(duration_ms), 0.0), "Milliseconds", dims)
        for line in (log_text or "").splitlines():
            for namespace, metric, value, unit, metric_dims in _emf_metrics(line):
                cw.record_metric(namespace, metric, value, unit, metric_dims)

    def execute_function_dispatch(func: dict[str, Any], config: dict[str, Any], *args: Any, **kw: Any) -> Any:
        name = config.get("FunctionName", "unknown")
        with lock:
            running[name] = running.get(name, 0) + 1
            now = running[name]
        cw.record_metric("AWS/Lambda", "ConcurrentExecutions", now, "Count", {"FunctionName": name})
        try:
            return original_dispatch(func, config, *args, **kw)
        finally:
            with lock:
                running[name] -= 1

    def emit_lambda_metrics(function_name: str, duration_ms: float, error: bool, throttle: bool) -> None:
        # The refused slot (_execute_function) passes 0 ms; the Invoke API's second report of the
        # same throttle carries its measured time.
        if throttle and not duration_ms:
            cw.record_metric("AWS/Lambda", "Throttles", 1, "Count", {"FunctionName": function_name})

    lam._emit_lambda_logs = emit_lambda_logs
    lam._execute_function_dispatch = execute_function_dispatch
    lam._emit_lambda_metrics = emit_lambda_metrics


def patch_sqs_metrics() -> None:
    """Every queue publishes its AWS/SQS depth metrics each minute, as SQS does.

    Gap: MiniStack records no AWS/SQS metric at all, so a dashboard reading
    ApproximateNumberOfMessagesVisible and its kin from CloudWatch saw no data. Now a daemon
    thread, every MINISTACK_SQS_METRICS_SECONDS (60, SQS's own period), refreshes each queue's
    counters (`_refresh_counts`, what GetQueueAttributes does) and records, per queue
    (dimension QueueName, in the queue's own account and region), ApproximateNumberOfMessagesVisible,
    -NotVisible, -Delayed and ApproximateAgeOfOldestMessage (seconds since the oldest message
    was sent; 0 when empty). AWS skips queues inactive for six hours; this does not.
    """
    import threading
    import time

    from ministack.core import responses
    from ministack.services import cloudwatch as cw
    from ministack.services import sqs

    for name in ("_refresh_counts", "_queues", "_queues_lock"):
        if getattr(sqs, name, None) is None:
            raise SystemExit(f"ministack.services.sqs.{name} is gone: see devtools/ministack_patches.py")
    for name in ("_request_account_id", "_request_region"):
        if getattr(responses, name, None) is None:
            raise SystemExit(f"ministack.core.responses.{name} is gone: see devtools/ministack_patches.py")
    interval = max(1.0, float(os.environ.get("MINISTACK_SQS_METRICS_SECONDS", "60")))

    def publish() -> None:
        with sqs._queues_lock:
            scoped = list(sqs._queues._data.items())
        for (account, region, _url), queue in scoped:
            responses._request_account_id.set(account)
            responses._request_region.set(region)
            with sqs._queues_lock:
                sqs._refresh_counts(queue)
                attributes = dict(queue["attributes"])
                sent = [float(m.get("sent_at") or 0) for m in queue["messages"]]
            dims = {"QueueName": str(queue["name"])}
            for metric, attribute in (
                ("ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessages"),
                ("ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesNotVisible"),
                ("ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesDelayed"),
            ):
                cw.record_metric("AWS/SQS", metric, float(attributes.get(attribute) or 0), "Count", dims)
            age = time.time() - min(sent) if sent else 0.0
            cw.record_metric("AWS/SQS", "ApproximateAgeOfOldestMessage", max(age, 0.0), "Seconds", dims)

    def loop() -> None:
        while True:
            time.sleep(interval)
            try:
                publish()
            except Exception as exc:  # noqa: BLE001 - a metric sweep must never stop the emulator
                print(f"ministack_patches: AWS/SQS metrics sweep failed: {exc}", flush=True)

    threading.Thread(target=loop, name="sqs-metrics", daemon=True).start()


def main() -> None:
    from importlib.metadata import version

    installed = version("ministack")
    if installed != PINNED:
        raise SystemExit(f"devtools/ministack_patches.py is for ministack {PINNED}, found {installed}")
    # MINISTACK_UNPATCHED=ses,apigateway,lambda-metrics,sqs-metrics leaves those gaps open (to see what each covers).
    unpatched = set(os.environ.get("MINISTACK_UNPATCHED", "").split(","))
    patches = (
        ("apigateway", patch_apigateway),
        ("cloudformation", patch_cloudformation),
        ("ses", patch_ses),
        ("lambda-metrics", patch_lambda_metrics),
        ("sqs-metrics", patch_sqs_metrics),
    )
    for name, patch in patches:
        if name not in unpatched:
            patch()
    from ministack.app import main as serve

    serve()


if __name__ == "__main__":
    # Run as a script, its directory (devtools/, with devtools/ministack.py) heads sys.path and
    # would shadow the `ministack` package.
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    main()
