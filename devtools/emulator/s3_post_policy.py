"""S3's browser-upload (POST Object) policy check, in front of moto.

moto 5.2.5 stores a multipart form POST without looking at its policy: no signature,
expiry, `content-length-range`, Content-Type or key condition. S3 and LocalStack enforce
them, so the embedded emulator does too, here, before moto sees the request; an upload
that passes goes to moto byte for byte. The answers are S3's: 403 AccessDenied
"Invalid according to Policy: …", 400 EntityTooLarge/EntityTooSmall with the sizes,
403 SignatureDoesNotMatch, 400 InvalidArgument/InvalidPolicyDocument, as S3 XML.

What S3 checks (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html):
the signature over the base64 policy (SigV4, or SigV2 with AWSAccessKeyId), the
expiration, every condition (exact match, `eq`, `starts-with`, `content-length-range`,
the bucket), and that every form field is covered by a condition, except
`x-amz-signature`, `signature`, `AWSAccessKeyId`, `file`, `policy` and `x-ignore-*`.
Field names are case-insensitive, values are not.

Known gaps (documented, not hidden): the emulator knows the secret of one credential, the
one it was started with (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, `test`/`test` by
default, which LocalStack also assumes); the scope's region is not compared with the
bucket's; fields after `file`, which S3 ignores, are treated like the others.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any
from xml.sax.saxutils import escape

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

EXEMPT_FIELDS = frozenset({"x-amz-signature", "signature", "awsaccesskeyid", "file", "policy"})
SIGV4 = "AWS4-HMAC-SHA256"
_SPOOL_BYTES = 1024 * 1024


@dataclass
class PolicyError(Exception):
    """An S3 error answer to a form POST."""

    status: int
    code: str
    message: str
    extra: dict[str, str] = field(default_factory=dict)

    def xml(self, request_id: str) -> bytes:
        """The body S3 sends."""
        extra = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in self.extra.items())
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{escape(self.message)}</Message>{extra}"
            f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
        ).encode()


def _denied(reason: str) -> PolicyError:
    return PolicyError(403, "AccessDenied", f"Invalid according to Policy: {reason}")


def _missing(name: str) -> PolicyError:
    return PolicyError(
        400,
        "InvalidArgument",
        f"Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields.",
        {"ArgumentName": name, "ArgumentValue": ""},
    )


def _invalid_policy(reason: str) -> PolicyError:
    return PolicyError(400, "InvalidPolicyDocument", f"Invalid Policy: {reason}")


def _hmac(key: bytes, message: str, digest: Any = hashlib.sha256) -> bytes:
    return hmac.new(key, message.encode(), digest).digest()


def sigv4_signature(secret: str, credential: str, policy_b64: str) -> str:
    """The SigV4 POST signature: the scope's signing key over the base64 policy."""
    _, date, region, service, _terminator = credential.split("/", 4)
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, policy_b64.encode(), hashlib.sha256).hexdigest()


def sigv2_signature(secret: str, policy_b64: str) -> str:
    """The SigV2 POST signature (AWSAccessKeyId + signature fields)."""
    return base64.b64encode(_hmac(secret.encode(), policy_b64, hashlib.sha1)).decode()


def _check_signature(fields: Mapping[str, str], policy_b64: str, secret_for: Callable[[str], str | None]) -> None:
    mismatch = PolicyError(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    )
    if "awsaccesskeyid" in fields:
        if "signature" not in fields:
            raise _missing("Signature")
        secret = secret_for(fields["awsaccesskeyid"])
        if secret is None:
            raise PolicyError(
                403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
            )
        if not hmac.compare_digest(sigv2_signature(secret, policy_b64), fields["signature"]):
            raise mismatch
        return
    for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"):
        if name not in fields:
            raise _missing(name)
    if fields["x-amz-algorithm"] != SIGV4:
        raise PolicyError(400, "InvalidArgument", f"Invalid x-amz-algorithm: {fields['x-amz-algorithm']}")
    credential = fields["x-amz-credential"]
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or parts[3] != "s3":
        raise PolicyError(400, "InvalidArgument", f"Error parsing the X-Amz-Credential parameter: {credential}")
    if not fields["x-amz-date"].startswith(parts[1]):
        raise PolicyError(400, "InvalidArgument", "X-Amz-Date does not match the date of X-Amz-Credential")
    secret = secret_for(parts[0])
    if secret is None:
        raise PolicyError(
            403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
        )
    if not hmac.compare_digest(sigv4_signature(secret, credential, policy_b64), fields["x-amz-signature"]):
        raise mismatch


def _decode_policy(policy_b64: str) -> dict[str, Any]:
    try:
        policy = json.loads(base64.b64decode(policy_b64, validate=True))
    except (binascii.Error, ValueError):
        raise _invalid_policy("Invalid JSON.") from None
    if not isinstance(policy, dict):
        raise _invalid_policy("Invalid JSON.")
    if "expiration" not in policy:
        raise _invalid_policy("Policy missing expiration.")
    if not isinstance(policy.get("conditions"), list):
        raise _invalid_policy("Policy missing conditions.")
    return policy


def _expiration(value: Any) -> datetime:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise _invalid_policy(f"Invalid 'expiration' value: '{value}'") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Condition:
    op: str  # "eq" | "starts-with" | "range"
    name: str  # lower-case field name, without "$"
    value: str = ""
    low: int = 0
    high: int = 0
    text: str = ""  # as S3 prints it in "Policy Condition failed: …"


def _conditions(raw: list[Any]) -> list[_Condition]:
    parsed: list[_Condition] = []
    for item in raw:
        if isinstance(item, dict) and len(item) == 1:
            ((name, value),) = item.items()
            if not isinstance(value, str):
                raise _invalid_policy("Invalid Condition: value must be a string")
            lower = name.lower()
            parsed.append(_Condition("eq", lower, value, text=json.dumps(["eq", f"${lower}", value])))
        elif isinstance(item, list) and len(item) == 3 and item[0] == "content-length-range":
            low, high = item[1], item[2]
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (low, high)):
                raise _invalid_policy("Invalid content-length-range: bounds must be non-negative integers")
            parsed.append(_Condition("range", "content-length", low=low, high=high))
        elif isinstance(item, list) and len(item) == 3 and item[0] in ("eq", "starts-with"):
            name, value = item[1], item[2]
            if not isinstance(name, str) or not name.startswith("$") or not isinstance(value, str):
                raise _invalid_policy(f"Invalid Condition: {json.dumps(item)}")
            lower = name[1:].lower()
            parsed.append(_Condition(item[0], lower, value, text=json.dumps([item[0], f"${lower}", value])))
        else:  # operators are case-sensitive in S3: "StArTs-WiTh" is invalid
            raise _invalid_policy(f"Invalid Condition: {json.dumps(item)}")
    return parsed


def _satisfied(condition: _Condition, actual: str | None) -> bool:
    if actual is None:
        return False
    if condition.op == "eq":
        return actual == condition.value
    if condition.name == "content-type":  # S3 checks each type of a comma-separated list
        return all(part.strip().startswith(condition.value) for part in actual.split(","))
    return actual.startswith(condition.value)


def check(
    fields: Mapping[str, str],
    file_size: int | None,
    bucket: str,
    now: datetime,
    secret_for: Callable[[str], str | None],
) -> None:
    """Raise the PolicyError S3 answers to this form POST, if any.

    `fields` are the form fields other than `file`, names in lower case; `file_size` is the
    size of the `file` part (None when there is none).
    """
    if "key" not in fields:
        raise _missing("key")
    if file_size is None:
        raise PolicyError(
            400,
            "InvalidArgument",
            "POST requires exactly one file upload per request.",
            {"ArgumentName": "file", "ArgumentValue": "0"},
        )
    if "policy" not in fields:  # an anonymous POST: our buckets grant no public write
        raise PolicyError(403, "AccessDenied", "Access Denied")
    policy_b64 = fields["policy"]
    policy = _decode_policy(policy_b64)
    _check_signature(fields, policy_b64, secret_for)
    if now >= _expiration(policy["expiration"]):
        raise _denied("Policy expired.")
    covered = {"bucket"}
    size_range: _Condition | None = None
    for condition in _conditions(policy["conditions"]):
        covered.add(condition.name)
        if condition.op == "range":
            size_range = condition
            continue
        actual = bucket if condition.name == "bucket" else fields.get(condition.name)
        if not _satisfied(condition, actual):
            raise _denied(f"Policy Condition failed: {condition.text}")
    extra = sorted(
        name
        for name in fields
        if name not in covered and name not in EXEMPT_FIELDS and not name.startswith("x-ignore-")
    )
    if extra:
        raise _denied(f"Extra input fields: {', '.join(extra)}")
    if size_range is not None:
        if file_size > size_range.high:
            raise PolicyError(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                {"ProposedSize": str(file_size), "MaxSizeAllowed": str(size_range.high)},
            )
        if file_size < size_range.low:
            raise PolicyError(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
                {"ProposedSize": str(file_size), "MinSizeAllowed": str(size_range.low)},
            )


def emulator_secret(access_key: str) -> str | None:
    """The secret of the one credential the emulator knows (see the module docstring)."""
    if access_key == os.environ.get("AWS_ACCESS_KEY_ID", "test"):
        return os.environ.get("AWS_SECRET_ACCESS_KEY", "test")
    return "test" if access_key == "test" else None


def _bucket(environ: Mapping[str, Any]) -> str | None:
    """The bucket of a path-style (`/bucket`) or virtual-hosted (`bucket.s3.…`) POST."""
    path = str(environ.get("PATH_INFO", "")).strip("/")
    if path and "/" not in path:
        return path
    host = str(environ.get("HTTP_HOST", "")).split(":")[0]
    if not path and ".s3." in f"{host}.":
        return host.split(".s3.")[0] or None
    return None


def _is_form_post(environ: Mapping[str, Any]) -> bool:
    return (
        environ.get("REQUEST_METHOD") == "POST"
        and str(environ.get("CONTENT_TYPE", "")).lower().startswith("multipart/form-data")
        and not environ.get("HTTP_AUTHORIZATION")  # SDK calls sign the header; a form signs its fields
        and not environ.get("QUERY_STRING")
    )


def _spool(environ: dict[str, Any]) -> IO[bytes]:
    """The request body in a temporary file (memory up to 1 MiB), so it can be read twice."""
    body = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # handed on to moto, which reads it
    length = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    if length:
        remaining = length
        while remaining > 0:
            chunk = stream.read(min(remaining, 1024 * 1024))
            if not chunk:
                break
            body.write(chunk)
            remaining -= len(chunk)
    else:
        shutil.copyfileobj(stream, body)
    body.seek(0)
    return body


def _form(environ: dict[str, Any], body: IO[bytes]) -> tuple[dict[str, str], int | None]:
    from werkzeug.formparser import parse_form_data

    copy = {**environ, "wsgi.input": body}
    _, form, files = parse_form_data(copy)
    fields = {name.lower(): value for name, value in form.items() if name.lower() != "file"}
    size: int | None = None
    upload = files.get("file")
    if upload is not None:
        upload.stream.seek(0, os.SEEK_END)
        size = upload.stream.tell()
    elif "file" in {name.lower() for name in form}:  # a file part sent without a filename
        size = len(next(v for k, v in form.items() if k.lower() == "file").encode())
    body.seek(0)
    return fields, size


def guard(app: WsgiApp, secret_for: Callable[[str], str | None] = emulator_secret) -> WsgiApp:
    """Wrap the emulator's WSGI app: form POSTs to a bucket are checked as S3 checks them."""

    def wrapped(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        bucket = _bucket(environ) if _is_form_post(environ) else None
        if bucket is None:
            return app(environ, start_response)
        body = _spool(environ)
        try:
            fields, size = _form(environ, body)
            check(fields, size, bucket, datetime.now(UTC), secret_for)
        except PolicyError as error:
            body.close()
            data = error.xml(uuid.uuid4().hex.upper()[:16])
            reason = {400: "Bad Request", 403: "Forbidden"}.get(error.status, "Error")
            start_response(
                f"{error.status} {reason}", [("Content-Type", "application/xml"), ("Content-Length", str(len(data)))]
            )
            return [data]
        environ["wsgi.input"] = body
        return app(environ, start_response)

    return wrapped
