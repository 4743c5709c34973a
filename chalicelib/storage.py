"""S3 objects of covers: originals, thumbnails and presigned URLs."""

from __future__ import annotations

from chalicelib.aws import client
from chalicelib.config import get_settings

IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


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
        ServerSideEncryption="AES256",
        CacheControl="private, max-age=31536000, immutable",
    )


def get(key: str, max_bytes: int) -> bytes:
    """Read an object, refusing one larger than `max_bytes`."""
    obj = client("s3").get_object(Bucket=get_settings().media_bucket, Key=key)
    if obj["ContentLength"] > max_bytes:
        obj["Body"].close()
        raise ValueError(f"object {key} has {obj['ContentLength']} bytes, more than {max_bytes}")
    return obj["Body"].read()


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
    return client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": settings.media_bucket, "Key": key}, ExpiresIn=settings.presign_ttl_seconds
    )
