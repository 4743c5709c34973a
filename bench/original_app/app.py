"""The original design's book creation, for comparison: the cover is resized inside the request.

A faithful port of the Flask view: decode the upload, store the original, resize with
`Image.open(...).resize((100, 100))`, store the thumbnail, save the book, then answer.
"""

from __future__ import annotations

import base64
import io
import json
import os
import uuid

import boto3
from chalice import Chalice, Response
from PIL import Image

app = Chalice(app_name="bookshelf-original")
_s3 = boto3.client("s3")
_ddb = boto3.client("dynamodb")


@app.route("/", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.route("/books", methods=["POST"], content_types=["application/json"])
def create_book() -> Response:
    data = json.loads(app.current_request.raw_body)
    if not isinstance(data.get("title"), str) or not isinstance(data.get("authors"), list):
        return Response({"error": "title and authors are required"}, status_code=400)
    book_id = str(uuid.uuid4())
    bucket = os.environ["MEDIA_BUCKET"]
    item = {"id": {"S": book_id}, "title": {"S": data["title"]}, "authors": {"SS": data["authors"]}}
    if data.get("cover"):
        original = base64.b64decode(data["cover"])
        _s3.put_object(Bucket=bucket, Key=f"covers/{book_id}/original", Body=original)
        thumb = io.BytesIO()
        Image.open(io.BytesIO(original)).convert("RGB").resize((100, 100), Image.Resampling.LANCZOS).save(
            thumb, "JPEG", quality=85
        )
        _s3.put_object(Bucket=bucket, Key=f"covers/{book_id}/100.jpg", Body=thumb.getvalue())
        item["cover"] = {"S": f"covers/{book_id}/100.jpg"}
    _ddb.put_item(TableName=os.environ["BOOKS_TABLE"], Item=item)
    return Response({"id": book_id, "cover_status": "ready" if data.get("cover") else "none"}, status_code=201)
