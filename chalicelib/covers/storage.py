"""S3 objects of covers: originals, thumbnails, direct uploads and presigned URLs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from botocore.exceptions import ClientError

from chalicelib.platform.aws import client
from chalicelib.platform.config import get_settings

IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
SNIFF_BYTES = 32  # enough for every signature sniff_image_type knows
_OBJECT_OPTIONS = {"ServerSideEncryption": "AES256", "CacheControl": "private, max-age=31536000, immutable"}


def sniff_image_type(data: bytes) -> str | None:
    """The MIME type named by the file's magic bytes, if it is one we accept."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def original_key(book_id: str, version: int) -> str:
    """Where the uploaded cover of this version is kept."""
    return f"covers/{book_id}/v{version}/original"


def thumbnail_key(book_id: str, version: int, name: str) -> str:
    """Where a thumbnail (`100.jpg`, `200.webp`, …) of this version is kept."""
    return f"covers/{book_id}/v{version}/{name}"


def put(key: str, data: bytes, content_type: str) -> None:
    """Store an object, encrypted at rest."""
    client("s3").put_object(
        Bucket=get_settings().media_bucket,
        Key=key,
        Body=data,
        ContentType=content_type,
        **_OBJECT_OPTIONS,
    )


def get(key: str, max_bytes: int) -> bytes:
    """Read an object, refusing one larger than `max_bytes`."""
    obj = client("s3").get_object(Bucket=get_settings().media_bucket, Key=key)
    if obj["ContentLength"] > max_bytes:
        obj["Body"].close()
        raise ValueError(f"object {key} has {obj['ContentLength']} bytes, more than {max_bytes}")
    return bytes(obj["Body"].read())


def delete_prefix(prefix: str) -> int:
    """Delete every object under `prefix`; returns how many."""
    s3, bucket, deleted = client("s3"), get_settings().media_bucket, 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    return deleted


def presigned_url(key: str) -> str:
    """A short-lived GET URL for a private object."""
    settings = get_settings()
    return str(
        client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": settings.media_bucket, "Key": key}, ExpiresIn=settings.presign_ttl_seconds
        )
    )


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD of an object says."""

    size: int
    content_type: str


def head(key: str) -> ObjectInfo | None:
    """Size and stored Content-Type of an object, or None when there is none."""
    try:
        obj = client("s3").head_object(Bucket=get_settings().media_bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return ObjectInfo(size=int(obj["ContentLength"]), content_type=str(obj.get("ContentType", "")))


def first_bytes(key: str, count: int = SNIFF_BYTES) -> bytes:
    """The first `count` bytes of an object (a ranged GET: the rest is never transferred)."""
    obj = client("s3").get_object(Bucket=get_settings().media_bucket, Key=key, Range=f"bytes=0-{count - 1}")
    return bytes(obj["Body"].read(count))


def copy(source: str, destination: str, content_type: str) -> None:
    """Server-side copy within the bucket, with the given Content-Type (S3 never sends us the bytes)."""
    bucket = get_settings().media_bucket
    client("s3").copy_object(
        Bucket=bucket,
        Key=destination,
        CopySource={"Bucket": bucket, "Key": source},
        MetadataDirective="REPLACE",
        ContentType=content_type,
        **_OBJECT_OPTIONS,
    )


def delete(key: str) -> None:
    """Delete one object (no error when it is gone already)."""
    client("s3").delete_object(Bucket=get_settings().media_bucket, Key=key)


class UploadForm(TypedDict):
    """A presigned S3 POST as the API answers it (`UploadForm` of `api/responses.py`)."""

    url: str
    fields: dict[str, str]
    expires_at: str
    max_bytes: int


def presigned_post(key: str, content_type: str, max_bytes: int, ttl_seconds: int) -> UploadForm:
    """A browser/curl form upload of exactly this key: S3 checks the policy, not our API.

    The policy pins the key, the Content-Type and 1..max_bytes bytes; the URL and fields
    are signed here, with no call to S3.
    """
    post = client("s3").generate_presigned_post(
        Bucket=get_settings().media_bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
        ExpiresIn=ttl_seconds,
    )
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl_seconds)
    return {
        "url": post["url"],
        "fields": post["fields"],
        "expires_at": expires_at.isoformat(timespec="seconds"),
        "max_bytes": max_bytes,
    }
