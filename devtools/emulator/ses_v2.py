"""SES v2 pieces the embedded emulator adds to moto 5.2.5: action names and `SendBulkEmail`.

SES v2 is a REST-JSON API, so the action is in the path; `action_for` names it for the
fault table. moto implements v2 `SendEmail` but not `SendBulkEmail`, which the app uses
because it is the one bulk call that carries per-destination headers (List-Unsubscribe).
`send_bulk_email` implements it as AWS documents it (up to 50 entries, a stored or inline
template with `{{name}}` substitution, per-entry replacement data and headers, per-entry
results) and records one rendered raw message per destination in moto's SES backend, so
`GET /_aws/ses` lists each recipient's mail as it would be delivered.

`EMULATOR_SES_LATENCY_MS` (read per call) delays each `SendBulkEmail` answer, as SES from
Lambda takes ~150 ms: without it the emulator answers at once and hides how many calls one
sender can make a second (`python -m bench.fanout --ses-latency-ms`).

Rendered values go into the message verbatim, as a naive mail server would write them:
the app must clean what it puts in a header (the tests check that it does).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable
from email.utils import formatdate, make_msgid
from typing import Any

StartResponse = Callable[..., Any]
MAX_ENTRIES = 50
_ACTIONS = {
    ("POST", "/v2/email/outbound-emails"): "SendEmail",
    ("POST", "/v2/email/outbound-bulk-emails"): "SendBulkEmail",
}
_REGION = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/")
_HEADER_NAME = re.compile(r"^[!-9;-@A-~]{1,126}$")
_HEADER_VALUE = re.compile(r"^[ -~]{1,995}$")
_TAG = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


class _BadRequest(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def action_for(method: str, path: str) -> str | None:
    """The SES v2 action a request path stands for (None for anything else)."""
    return _ACTIONS.get((method, path.rstrip("/")))


def _respond(start_response: StartResponse, status: int, body: dict[str, Any], code: str | None = None) -> list[bytes]:
    data = json.dumps(body).encode()
    headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", str(uuid.uuid4()))]
    if code:
        headers.append(("x-amzn-ErrorType", code))
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(data)))])
    return [data]


def _render(text: str | None, data: dict[str, Any]) -> str:
    return _TAG.sub(lambda m: str(data.get(m.group(1), "")), text or "")


def _headers(raw: list[dict[str, Any]] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in raw or []:
        name, value = str(item.get("Name", "")), str(item.get("Value", ""))
        if not _HEADER_NAME.match(name) or not _HEADER_VALUE.match(value):
            raise _BadRequest("BadRequestException", f"invalid message header {name!r}")
        headers[name] = value
    return headers


def _template(backend: Any, template: dict[str, Any]) -> dict[str, str]:
    if "TemplateContent" in template:
        return dict(template["TemplateContent"])
    name = template.get("TemplateName")
    stored = getattr(backend, "templates", {}).get(name)
    if stored is None:
        raise _BadRequest("NotFoundException", f"Template {name} does not exist", 404)
    return {"Subject": stored.get("subject_part"), "Text": stored.get("text_part"), "Html": stored.get("html_part")}


def _data(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        raise _BadRequest("BadRequestException", "template data is not valid JSON") from None
    if not isinstance(value, dict):
        raise _BadRequest("BadRequestException", "template data must be a JSON object")
    return value


def _raw_message(
    source: str, to: list[str], content: dict[str, str], data: dict[str, Any], headers: dict[str, str]
) -> str:
    lines = [
        f"From: {source}",
        f"To: {', '.join(to)}",
        f"Subject: {_render(content.get('Subject'), data)}",
        f"Date: {formatdate(usegmt=True)}",
        f"Message-ID: {make_msgid(domain='amazonses.com')}",
        "MIME-Version: 1.0",
        *(f"{name}: {value}" for name, value in headers.items()),
        'Content-Type: text/plain; charset="UTF-8"',
        "Content-Transfer-Encoding: 8bit",
    ]
    return "\r\n".join(lines) + "\r\n\r\n" + _render(content.get("Text"), data).replace("\n", "\r\n")


def _send(environ: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.ses.models import RawMessage, ses_backends

    match = _REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
    backend = ses_backends[DEFAULT_ACCOUNT_ID][match.group(1) if match else "us-east-1"]
    entries = body.get("BulkEmailEntries") or []
    if not 1 <= len(entries) <= MAX_ENTRIES:
        raise _BadRequest("BadRequestException", f"BulkEmailEntries must hold 1 to {MAX_ENTRIES} entries")
    source = str(body.get("FromEmailAddress") or "")
    if not backend._is_verified_address(source):
        raise _BadRequest("MessageRejected", f"Email address not verified {source}")
    template = (body.get("DefaultContent") or {}).get("Template") or {}
    content = _template(backend, template)
    default_data, default_headers = _data(template.get("TemplateData")), _headers(template.get("Headers"))
    planned = []
    for entry in entries:
        to = list((entry.get("Destination") or {}).get("ToAddresses") or [])
        replacement = ((entry.get("ReplacementEmailContent") or {}).get("ReplacementTemplate") or {}).get(
            "ReplacementTemplateData"
        )
        data = _data(replacement) if replacement is not None else default_data
        planned.append((to, data, {**default_headers, **_headers(entry.get("ReplacementHeaders"))}))
    results = []
    for to, data, headers in planned:
        if not to:
            results.append({"Status": "INVALID_PARAMETER", "Error": "no destination"})
            continue
        message = RawMessage(str(uuid.uuid4()), source, to, _raw_message(source, to, content, data, headers))
        message.timestamp = time.time()  # type: ignore[attr-defined]  # for rate checks at /_aws/ses
        backend.sent_messages.append(message)
        backend.sent_message_count += len(to)
        results.append({"Status": "SUCCESS", "MessageId": message.id})
    return {"BulkEmailEntryResults": results}


def send_bulk_email(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI answer to `POST /v2/email/outbound-bulk-emails`."""
    size = int(environ.get("CONTENT_LENGTH") or 0)
    latency = float(os.environ.get("EMULATOR_SES_LATENCY_MS") or 0)
    if latency > 0:  # the server is threaded: concurrent calls overlap, as they do at SES
        time.sleep(latency / 1000)
    try:
        body = json.loads(environ["wsgi.input"].read(size) or b"{}")
        return _respond(start_response, 200, _send(environ, body))
    except _BadRequest as exc:
        return _respond(start_response, exc.status, {"message": exc.message}, exc.code)
    except ValueError:
        return _respond(start_response, 400, {"message": "body is not JSON"}, "BadRequestException")
