"""Every book and subscriber route through the API in this process, over the memory stores."""

from __future__ import annotations

from typing import Any, cast

from helpers import image_bytes, jpeg_bytes, unique_author, unique_email


def _create(api: Any, user: str = "alice", **fields: Any) -> dict[str, Any]:
    body = {"title": "The Left Hand of Darkness", "authors": [unique_author()], **fields}
    status, payload = api.post("/books", body, user=user)
    assert status == 202, payload
    return cast("dict[str, Any]", payload)


def test_create_book_without_cover_has_no_cover(api: Any) -> None:
    payload = _create(api)
    assert payload["book"]["cover_status"] == "none"
    assert len(payload["tasks"]) == 1


def test_get_book_and_404(api: Any) -> None:
    book = _create(api)["book"]
    status, fetched = api.get(f"/books/{book['id']}", user=None)
    assert status == 200 and fetched["id"] == book["id"] and fetched["authors"] == book["authors"]
    status, missing = api.get("/books/does-not-exist", user=None)
    assert status == 404 and missing["error"] == "NotFound"


def test_list_by_author_is_paginated_with_a_cursor(api: Any) -> None:
    author = unique_author("Paged")
    created = [_create(api, title=f"Volume {i}", authors=[author, unique_author()])["book"]["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = f"/books?author={author.replace(' ', '%20')}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page = api.get(query, user=None)
        assert status == 200, page
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(created)
    assert seen == list(reversed(created))  # newest first
    assert pages >= 3


def test_author_lookup_folds_case_and_spacing(api: Any) -> None:
    author = unique_author("Folded")
    book = _create(api, authors=[author])["book"]
    status, page = api.get(f"/books?author={author.upper().replace(' ', '%20%20')}", user=None)
    assert status == 200 and [b["id"] for b in page["items"]] == [book["id"]]


def test_update_book_reindexes_authors(api: Any) -> None:
    old, new = unique_author("Old"), unique_author("New")
    book = _create(api, authors=[old])["book"]
    status, updated = api.put(f"/books/{book['id']}", {"title": "Renamed", "authors": [new]})
    assert status == 200, updated
    assert updated["title"] == "Renamed" and updated["authors"] == [new]
    assert api.get(f"/books?author={old.replace(' ', '%20')}", user=None)[1]["items"] == []
    assert [b["id"] for b in api.get(f"/books?author={new.replace(' ', '%20')}", user=None)[1]["items"]] == [book["id"]]


def test_only_the_owner_may_change_a_book(api: Any) -> None:
    book = _create(api, user="alice")["book"]
    assert api.put(f"/books/{book['id']}", {"title": "Mine now"}, user="bob")[0] == 403
    assert api.delete(f"/books/{book['id']}", user="bob")[0] == 403
    assert api.put(f"/books/{book['id']}/cover", raw=jpeg_bytes(), content_type="image/jpeg", user="bob")[0] == 403


def test_replace_cover_rejects_mismatched_or_unknown_types(api: Any) -> None:
    book = _create(api)["book"]
    status, body = api.put(f"/books/{book['id']}/cover", raw=image_bytes("PNG"), content_type="image/jpeg")
    assert status == 415 and body["fields"][0]["field"] == "Content-Type"
    status, body = api.put(f"/books/{book['id']}/cover", raw=b"GIF89a....", content_type="image/gif")
    assert status == 415
    status, body = api.put(f"/books/{book['id']}/cover", raw=b"not an image at all", content_type="image/png")
    assert status == 415 and body["fields"][0]["field"] == "body"


def test_subscribers_add_list_remove(api: Any) -> None:
    author, email = unique_author("Subscribed"), unique_email()
    path = f"/authors/{author.replace(' ', '%20')}/subscribers"
    status, created = api.post(path, {"email": email})
    assert status == 201 and created["email"] == email and created["author"] == author
    assert api.post(path, {"email": email})[0] == 201  # idempotent
    status, listed = api.get(path)
    assert status == 200 and [s["email"] for s in listed["items"]] == [email]
    assert api.get(path, user="bob")[1]["items"] == []  # bob sees only his own subscriptions
    assert api.delete(f"{path}/{email}", user="bob")[0] == 404  # as if there were none (no oracle)
    assert api.delete(f"{path}/{email}")[0] == 204
    assert api.get(path)[1]["items"] == []
    assert api.delete(f"{path}/{email}")[0] == 404
