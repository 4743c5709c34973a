"""Books through the deployed API Gateway and api_handler: create, read, update, list, delete."""

from __future__ import annotations

from urllib.parse import quote

from support import Api, unique


def test_book_create_read_update_list_delete(api: Api) -> None:
    author = unique("Deployed Author")
    status, created = api.post("/books", {"title": "First", "authors": [author], "description": "d"})
    assert status == 202, created
    book_id = created["book"]["id"]
    assert api.book(book_id)["title"] == "First"

    status, updated = api.put(f"/books/{book_id}", {"title": "Second", "description": None})
    assert status == 200, updated
    assert (updated["title"], updated["description"]) == ("Second", None)
    assert api.book(book_id)["title"] == "Second"

    status, second = api.post("/books", {"title": "Third", "authors": [author]})
    assert status == 202, second
    status, page = api.get(f"/books?author={quote(author.upper())}&limit=1", user=None)
    assert status == 200, page
    assert [b["id"] for b in page["items"]] == [second["book"]["id"]]  # newest first
    status, rest = api.get(f"/books?author={quote(author)}&limit=1&cursor={quote(page['next_cursor'])}", user=None)
    assert status == 200, rest
    assert [b["id"] for b in rest["items"]] == [book_id]

    assert api.delete(f"/books/{book_id}")[0] == 204
    assert api.get(f"/books/{book_id}", user=None)[0] == 404


def test_bad_input_and_missing_key_answer_in_the_error_shape(api: Api) -> None:
    status, answer = api.post("/books", {"title": "", "authors": []})
    assert status in (400, 422), answer
    assert {"error", "message", "fields"} <= set(answer), answer
    status, answer = api.post("/books", {"title": "x", "authors": ["y"]}, user=None)
    assert status in (401, 403), answer
