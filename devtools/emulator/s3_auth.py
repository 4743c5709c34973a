"""S3's request authentication for anonymous and presigned calls, in front of moto.

moto 5.2.5 serves a private bucket to anyone: an unsigned ListObjects, a presigned GET
whose signature is forged or whose `X-Amz-Expires` has passed, an unsigned PUT. S3 answers
those with 403 (AccessDenied, SignatureDoesNotMatch, "Request has expired"), so the
embedded emulator does too, before moto reads the request:

- no `Authorization` header and no signature in the query: 403 AccessDenied (S3's answer
  to an anonymous request on a bucket without a public policy), the body left unread and
  the connection closed, whatever the content type (an unsigned form PUT never reaches
  moto's form parser);
- a SigV4 presigned URL (`X-Amz-Signature`): the signature is computed again over the
  canonical request (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html)
  and compared; an expired one gets S3's AccessDenied "Request has expired".

Left to moto (documented gaps): requests signed in the `Authorization` header (the SDKs'),
whose signature is not checked; SigV2 presigned URLs (the project signs with s3v4); form
POSTs, which `s3_post_policy` checks. Only the one credential the emulator knows can sign.
The emulator's own endpoints (`/_aws/…`, `/_emulator/…`, `/moto-api/…`) and CORS
preflights (OPTIONS) need no signature, and calls to other services carry their own.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote
from xml.sax.saxutils import escape

from devtools.emulator.s3_post_policy import emulator_secret

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

OPEN_PREFIXES = ("/_aws/", "/_emulator/", "/moto-api/")
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # S3's limit for X-Amz-Expires


class Denied(Exception):
    """An S3 error answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _is_s3_call(environ: dict[str, Any]) -> bool:
    """A call the S3 protocol serves: not another service's (they sign a header or a form)."""
    path = str(environ.get("PATH_INFO") or "/")
    if path == "/" or path.startswith(OPEN_PREFIXES) or environ.get("REQUEST_METHOD") == "OPTIONS":
        return False
    return not environ.get("HTTP_X_AMZ_TARGET") and not path.startswith("/v2/email/")


def _is_form_post(environ: dict[str, Any]) -> bool:
    """A browser upload (POST Object): its signature is in the form (`s3_post_policy`)."""
    return environ.get("REQUEST_METHOD") == "POST" and str(environ.get("CONTENT_TYPE", "")).lower().startswith(
        "multipart/form-data"
    )


def _key(secret: str, date: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _uri(value: str) -> str:
    return quote(value, safe="-_.~")


def presigned_signature(
    secret: str, method: str, raw_path: str, query: list[tuple[str, str]], headers: dict[str, str]
) -> str:
    """The SigV4 query signature S3 expects for this request (`query` without X-Amz-Signature)."""
    params = dict(query)
    signed = params.get("X-Amz-SignedHeaders", "host").split(";")
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted((_uri(k), _uri(v)) for k, v in query))
    canonical_headers = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed)
    canonical = "\n".join(
        [method, raw_path or "/", canonical_query, canonical_headers, ";".join(signed), "UNSIGNED-PAYLOAD"]
    )
    _, date, region, service, _ = params["X-Amz-Credential"].split("/")
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    return hmac.new(_key(secret, date, region, service), to_sign.encode(), hashlib.sha256).hexdigest()


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    found = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            found[name.replace("_", "-").lower()] = str(environ[name])
    return found


def _raw_path(environ: dict[str, Any]) -> str:
    """The path as the client sent (and signed) it, still percent-encoded."""
    raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "")
    return raw.split("?", 1)[0] if raw else _uri(str(environ.get("PATH_INFO") or "/")).replace("%2F", "/")


def check_presigned(environ: dict[str, Any], now: datetime, secret_for: Callable[[str], str | None]) -> None:
    """Raise Denied unless the query signature is valid and current."""
    query = parse_qsl(str(environ.get("QUERY_STRING") or ""), keep_blank_values=True)
    params = dict(query)
    try:
        if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
            raise ValueError("X-Amz-Algorithm")
        access_key = params["X-Amz-Credential"].split("/")[0]
        signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(params["X-Amz-Expires"])
    except (KeyError, ValueError) as exc:
        raise Denied("AuthorizationQueryParametersError", f"invalid or missing query parameter: {exc}") from None
    if not 0 < expires <= MAX_PRESIGN_SECONDS:
        raise Denied("AuthorizationQueryParametersError", "X-Amz-Expires must be from 1 to 604800 seconds")
    secret = secret_for(access_key)
    if secret is None:
        raise Denied("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    unsigned = [(k, v) for k, v in query if k != "X-Amz-Signature"]
    method = str(environ.get("REQUEST_METHOD") or "GET")
    expected = presigned_signature(secret, method, _raw_path(environ), unsigned, _headers(environ))
    if not hmac.compare_digest(expected, params.get("X-Amz-Signature", "")):
        raise Denied(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        )
    if now > signed_at + timedelta(seconds=expires):
        raise Denied("AccessDenied", "Request has expired")


def _deny(error: Denied, start_response: StartResponse) -> Iterable[bytes]:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{error.code}</Code>'
        f"<Message>{escape(error.message)}</Message><RequestId>{uuid.uuid4().hex.upper()[:16]}</RequestId></Error>"
    ).encode()
    # The body is never read: closing the connection keeps its bytes from being taken for a next request.
    headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body))), ("Connection", "close")]
    start_response("403 Forbidden", headers)
    return [body]


def guard(app: WsgiApp, secret_for: Callable[[str], str | None] = emulator_secret) -> WsgiApp:
    """Wrap the emulator's WSGI app: anonymous and badly presigned S3 calls get S3's 403."""

    def wrapped(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not _is_s3_call(environ) or environ.get("HTTP_AUTHORIZATION") or _is_form_post(environ):
            return app(environ, start_response)
        try:
            if "X-Amz-Signature=" not in str(environ.get("QUERY_STRING") or ""):
                raise Denied("AccessDenied", "Access Denied")
            check_presigned(environ, datetime.now(UTC), secret_for)
        except Denied as error:
            return _deny(error, start_response)
        return app(environ, start_response)

    return wrapped
