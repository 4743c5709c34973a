"""The books table and the author index, declared with PynamoDB."""

from __future__ import annotations

from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.models import Model

from chalicelib.platform.dynamodb import TableMeta, utcnow


class Book(Model):
    """A book; `thumbnails` maps `<size>.<format>` to its S3 key once resized."""

    class Meta(TableMeta):
        table_setting = "books_table"

    id = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute()
    title = UnicodeAttribute()
    authors = ListAttribute(of=UnicodeAttribute)
    description = UnicodeAttribute(null=True)
    cover_key = UnicodeAttribute(null=True)
    cover_version = NumberAttribute(default=0)
    cover_status = UnicodeAttribute(default="none")
    cover_error = UnicodeAttribute(null=True)
    thumbnails: MapAttribute[str, str] = MapAttribute(null=True)  # size name -> S3 key
    # A direct upload asked for while the cover is ready waits beside it until it is ready
    # itself (covers/versions.py), so the ready cover is served meanwhile.
    upload_version = NumberAttribute(null=True)
    upload_status = UnicodeAttribute(null=True)
    upload_error = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(default_for_new=utcnow)
    updated_at = UTCDateTimeAttribute(default=utcnow)
    # Bumped by every API write; writes are conditioned on the revision they read, so two
    # concurrent updates cannot interleave (the loser gets 409). Absent on books written
    # before revisions existed, which count as revision 0.
    revision = NumberAttribute(null=True)


class BookAuthor(Model):
    """One row per (author, book): the index behind `GET /books?author=`."""

    class Meta(TableMeta):
        table_setting = "book_authors_table"

    author_key = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)
    book_id = UnicodeAttribute()
