"""MiniStack 1.5.33 with the project's fixes for its gaps, started by devtools/backends/ministack.py.

Runs inside MiniStack's own virtualenv (`python devtools/backends/ministack_patches.py`), never in the
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


def main() -> None:
    from importlib.metadata import version

    installed = version("ministack")
    if installed != PINNED:
        raise SystemExit(f"devtools/backends/ministack_patches.py is for ministack {PINNED}, found {installed}")
    # MINISTACK_UNPATCHED=ses,apigateway leaves those gaps open, to see what each patch covers.
    unpatched = set(os.environ.get("MINISTACK_UNPATCHED", "").split(","))
    for name, patch in (("apigateway", patch_apigateway), ("cloudformation", patch_cloudformation), ("ses", patch_ses)):
        if name not in unpatched:
            patch()
    from ministack.app import main as serve

    serve()


if __name__ == "__main__":
    # Run as a script, its directory (devtools/, with devtools/backends/ministack.py) heads sys.path and
    # would shadow the `ministack` package.
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    main()
