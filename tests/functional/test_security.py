"""Access control, private storage and secrets."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from helpers import b64, eventually, is_emulator, jpeg_bytes, unique_author


def test_bucket_blocks_public_access_and_encrypts(aws: Any, settings: Any) -> None:
    block = aws("s3").get_public_access_block(Bucket=settings.media_bucket)["PublicAccessBlockConfiguration"]
    assert all(block[k] for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"))
    rules = aws("s3").get_bucket_encryption(Bucket=settings.media_bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_covers_are_served_by_short_lived_presigned_urls(api: Any, workers: Any, settings: Any) -> None:
    status, payload = api.post("/books", {"title": "Signed", "authors": [unique_author()], "cover": b64(jpeg_bytes())})
    assert status == 202
    book_id = payload["book"]["id"]
    book = eventually(
        lambda: (b := api.get(f"/books/{book_id}", user=None)[1])["cover_status"] == "ready" and b, what="ready"
    )
    url = book["cover"]["thumbnails"]["100.jpg"]["url"]
    query = parse_qs(urlparse(url).query)
    if "X-Amz-Expires" in query:
        assert int(query["X-Amz-Expires"][0]) == settings.presign_ttl_seconds
    else:
        assert "Expires" in query and "Signature" in query
    assert settings.presign_ttl_seconds <= 3600
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.content[:3] == b"\xff\xd8\xff"
    assert "original" not in {k.rsplit("/", 1)[-1] for k in book["cover"]["thumbnails"]}


def test_api_keys_are_stored_only_as_hashes(aws: Any, settings: Any, keys: dict[str, str]) -> None:
    stored = aws("ssm").get_parameter(Name=settings.api_keys_parameter, WithDecryption=True)["Parameter"]
    assert stored["Type"] == "SecureString"
    assert all(key not in stored["Value"] for key in keys.values())


def _emulator_s3(endpoint: str) -> str:
    """The S3 endpoint when the embedded emulator serves S3 (its request authentication is ours)."""
    import os

    s3 = os.environ.get("AWS_ENDPOINT_URL_S3") or endpoint
    if is_emulator(s3):
        return s3
    pytest.skip("S3 is not served by the embedded emulator here")


def _s3_error(response: requests.Response) -> str:
    match = re.search(r"<Code>([^<]+)</Code>", response.text)
    return match.group(1) if match else ""


def test_s3_refuses_forged_expired_and_anonymous_calls_as_aws_does(
    endpoint: str, aws: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN a private bucket WHEN a presigned GET is forged or expired, or a call is unsigned THEN 403."""
    s3_url = _emulator_s3(endpoint)
    s3, bucket, key = aws("s3"), settings.media_bucket, "security-tests/a b+é.jpg"
    s3.put_object(Bucket=bucket, Key=key, Body=jpeg_bytes())
    good = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60)
    assert requests.get(good, timeout=10).status_code == 200

    signature = parse_qs(urlparse(good).query)["X-Amz-Signature"][0]
    forged = good.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    response = requests.get(forged, timeout=10)
    assert (response.status_code, _s3_error(response)) == (403, "SignatureDoesNotMatch")
    other_key = good.replace("security-tests/", "security-tests/other-")
    assert _s3_error(requests.get(other_key, timeout=10)) == "SignatureDoesNotMatch"

    # Signed correctly by botocore, but two hours ago for one hour.
    from datetime import datetime, timedelta

    import botocore.auth

    two_hours_ago = datetime.utcnow() - timedelta(hours=2)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: two_hours_ago)
    expired = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)
    monkeypatch.undo()
    response = requests.get(expired, timeout=10)
    assert (response.status_code, _s3_error(response)) == (403, "AccessDenied") and "expired" in response.text

    listing = requests.get(f"{s3_url}/{bucket}?list-type=2", timeout=10)
    assert (listing.status_code, _s3_error(listing)) == (403, "AccessDenied") and key not in listing.text
    assert requests.get(f"{s3_url}/{bucket}/{key}", timeout=10).status_code == 403


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary=x"]
)
def test_an_unsigned_form_put_is_refused_at_once(endpoint: str, aws: Any, settings: Any, content_type: str) -> None:
    """GIVEN an unsigned PUT with a form content type WHEN sent (length or chunked) THEN 403 at once, no write."""
    s3_url = _emulator_s3(endpoint)
    key = f"security-tests/unsigned-{abs(hash(content_type))}"
    url = f"{s3_url}/{settings.media_bucket}/{key}"
    with requests.Session() as session:
        for body in (b"a=b", iter([b"a=", b"b"])):  # Content-Length, then chunked
            response = session.put(url, data=body, headers={"Content-Type": content_type}, timeout=10)
            assert (response.status_code, _s3_error(response)) == (403, "AccessDenied")
    listed = aws("s3").list_objects_v2(Bucket=settings.media_bucket, Prefix=key).get("KeyCount", 0)
    assert listed == 0
