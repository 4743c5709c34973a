"""Unit tests of the emulator's S3 POST-policy check (the HTTP side is in test_uploads.py)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from devtools.emulator.s3_post_policy import PolicyError, check, sigv2_signature, sigv4_signature

pytestmark = pytest.mark.unit  # pure logic: no AWS endpoint is started for these tests

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CREDENTIAL = "AKIDEXAMPLE/20261130/us-east-1/s3/aws4_request"
SECRET = "s3cr3t"


def _secret(access_key: str) -> str | None:
    return SECRET if access_key == "AKIDEXAMPLE" else None


def _form(conditions: list[Any] | None = None, expires: datetime | None = None, **fields: str) -> dict[str, str]:
    base = [
        {"bucket": "media"},
        {"key": "uploads/b/v1"},
        {"content-type": "image/jpeg"},
        ["content-length-range", 1, 1000],
        {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
        {"x-amz-credential": CREDENTIAL},
        {"x-amz-date": "20261130T115900Z"},
    ]
    policy = {"expiration": (expires or NOW + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    policy["conditions"] = base if conditions is None else conditions  # type: ignore[assignment]
    encoded = base64.b64encode(json.dumps(policy).encode()).decode()
    form = {
        "key": "uploads/b/v1",
        "content-type": "image/jpeg",
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": CREDENTIAL,
        "x-amz-date": "20261130T115900Z",
        "policy": encoded,
        "x-amz-signature": sigv4_signature(SECRET, CREDENTIAL, encoded),
    }
    form.update(fields)
    return form


def _refusal(form: dict[str, str], size: int | None = 100, bucket: str = "media") -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        check(form, size, bucket, NOW, _secret)
    return caught.value


def test_a_form_that_keeps_the_policy_passes() -> None:
    check(_form(), 100, "media", NOW, _secret)
    check(_form(), 1000, "media", NOW, _secret)
    check(_form(**cast("dict[str, Any]", {"x-ignore-note": "anything"})), 1, "media", NOW, _secret)


def test_sigv4_signature_matches_the_aws_documented_example() -> None:
    # The example of "Example: Browser-Based Upload using HTTP POST (Using AWS Signature Version 4)".
    # The access key id is not part of the signing key, so a neutral one stands in for AWS's.
    policy = (
        "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6"
        "ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFj"
        "bCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tl"
        "dC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5"
        "cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZl"
        "ci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoN"
        "CiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVx"
        "dWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAx"
        "NTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9"
    )
    signature = sigv4_signature(
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "EXAMPLEKEYID/20151229/us-east-1/s3/aws4_request", policy
    )
    assert signature == "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e"


def test_sigv2_forms_are_checked_too() -> None:
    form = _form()
    for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"):
        form.pop(name)
    policy = json.loads(base64.b64decode(form["policy"]))
    policy["conditions"] = [c for c in policy["conditions"] if not (isinstance(c, dict) and "x-amz-date" in str(c))]
    policy["conditions"] = [c for c in policy["conditions"] if not str(c).startswith("{'x-amz")]
    form["policy"] = base64.b64encode(json.dumps(policy).encode()).decode()
    form["awsaccesskeyid"] = "AKIDEXAMPLE"
    form["signature"] = sigv2_signature(SECRET, form["policy"])
    check(form, 10, "media", NOW, _secret)
    form["signature"] = sigv2_signature("wrong", form["policy"])
    assert _refusal(form).code == "SignatureDoesNotMatch"


@pytest.mark.parametrize(
    ("change", "status", "code", "message"),
    [
        (
            {"content-type": "image/png"},
            403,
            "AccessDenied",
            'Policy Condition failed: ["eq", "$content-type", "image/jpeg"]',
        ),
        ({"key": "uploads/b/v2"}, 403, "AccessDenied", 'Policy Condition failed: ["eq", "$key", "uploads/b/v1"]'),
        ({"x-amz-meta-a": "1"}, 403, "AccessDenied", "Extra input fields: x-amz-meta-a"),
        ({"acl": "public-read"}, 403, "AccessDenied", "Extra input fields: acl"),
        ({"x-amz-signature": "0" * 64}, 403, "SignatureDoesNotMatch", "does not match"),
        ({"x-amz-date": "20261130T120000Z"}, 403, "AccessDenied", 'failed: ["eq", "$x-amz-date", "20261130T115900Z"]'),
    ],
)
def test_each_broken_rule_gets_s3s_answer(change: dict[str, Any], status: int, code: str, message: str) -> None:
    error = _refusal(_form(**change))
    assert (error.status, error.code) == (status, code)
    assert message in error.message


def test_unknown_access_key_is_refused() -> None:
    conditions = [{"bucket": "media"}, {"key": "uploads/b/v1"}, {"content-type": "image/jpeg"}]
    form = _form(
        conditions, **cast("dict[str, Any]", {"x-amz-credential": "NOBODY/20261130/us-east-1/s3/aws4_request"})
    )
    form.pop("x-amz-algorithm")
    assert _refusal(form).code == "InvalidArgument"  # x-amz-algorithm is required with a SigV4 policy
    form = _form(
        [*conditions, {"x-amz-algorithm": "AWS4-HMAC-SHA256"}, {"x-amz-date": "20261130T115900Z"}],
        **cast("dict[str, Any]", {"x-amz-credential": "NOBODY/20261130/us-east-1/s3/aws4_request"}),
    )
    assert _refusal(form).code == "InvalidAccessKeyId"


def test_expired_policy_is_refused_even_when_all_else_is_right() -> None:
    error = _refusal(_form(expires=NOW - timedelta(seconds=1)))
    assert (error.status, error.code, error.message) == (
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy expired.",
    )


def test_size_outside_content_length_range() -> None:
    large = _refusal(_form(), size=1001)
    assert (large.status, large.code, large.extra) == (
        400,
        "EntityTooLarge",
        {"ProposedSize": "1001", "MaxSizeAllowed": "1000"},
    )
    small = _refusal(_form(), size=0)
    assert (small.status, small.code, small.extra) == (
        400,
        "EntityTooSmall",
        {"ProposedSize": "0", "MinSizeAllowed": "1"},
    )
    assert b"<MaxSizeAllowed>1000</MaxSizeAllowed>" in large.xml("REQ")


def test_wrong_bucket_and_starts_with_conditions() -> None:
    assert "$bucket" in _refusal(_form(), bucket="other").message
    conditions = [
        {"bucket": "media"},
        ["starts-with", "$key", "uploads/"],
        ["starts-with", "$Content-Type", "image/"],
        {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
        {"x-amz-credential": CREDENTIAL},
        {"x-amz-date": "20261130T115900Z"},
    ]
    check(
        _form(conditions, **cast("dict[str, Any]", {"content-type": "image/png, image/webp"})), 5, "media", NOW, _secret
    )
    error = _refusal(_form(conditions, **cast("dict[str, Any]", {"content-type": "image/png, text/html"})))
    assert 'Policy Condition failed: ["starts-with", "$content-type", "image/"]' in error.message
    assert "$key" in _refusal(_form(conditions, key="covers/b/v1/original")).message


@pytest.mark.parametrize(
    ("form_change", "code"),
    [("no-key", "InvalidArgument"), ("no-policy", "AccessDenied"), ("bad-policy", "InvalidPolicyDocument")],
)
def test_malformed_forms(form_change: str, code: str) -> None:
    form = _form()
    if form_change == "no-key":
        form.pop("key")
    elif form_change == "no-policy":
        form.pop("policy")
    else:
        form["policy"] = base64.b64encode(b"{not json").decode()
    assert _refusal(form).code == code


def test_no_file_part_is_refused() -> None:
    assert _refusal(_form(), size=None).extra == {"ArgumentName": "file", "ArgumentValue": "0"}


def test_invalid_conditions_are_policy_errors() -> None:
    for bad in ([["StArTs-WiTh", "$key", "u"]], [["content-length-range", -1, 10]], [{"key": 5}], ["nonsense"]):
        assert _refusal(_form(bad)).code == "InvalidPolicyDocument"
    missing = _form()
    policy = json.loads(base64.b64decode(missing["policy"]))
    del policy["expiration"]
    missing["policy"] = base64.b64encode(json.dumps(policy).encode()).decode()
    assert _refusal(missing).message == "Invalid Policy: Policy missing expiration."
