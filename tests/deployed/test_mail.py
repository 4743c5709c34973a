"""Mail on the deployed stack: subscribe, the confirmation mail (MiniStack's SES), confirm, then a
new book's fan-out through SES v2 SendBulkEmail with its List-Unsubscribe headers."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from support import Api, Mailbox, eventually, links, unique


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_subscribe_confirm_then_a_new_book_is_mailed_in_bulk(api: Api, mailbox: Mailbox) -> None:
    author, email = unique("Mail Author"), f"reader-{unique('x').split()[1]}@example.org"
    status, answer = api.post(f"/authors/{quote(author, safe='')}/subscribers", {"email": email})
    assert status == 201, answer
    assert answer["status"] == "pending"

    confirmation = eventually(
        lambda: [m for m in mailbox.messages(email) if links(m, "confirm")], timeout=90, what="confirmation mail"
    )[0]
    # As a reader confirms: the link opens a page with one button (nothing confirmed yet), the button POSTs.
    link = _path(links(confirmation, "confirm")[0])
    status, page = api.get(link, user=None)
    assert status == 200 and '<form method="post"' in page, page
    status, page = api.post(link, user=None, data=b"confirm=yes", content_type="application/x-www-form-urlencoded")
    assert status == 200 and "Subscription confirmed" in page, page
    status, mine = api.get(f"/authors/{quote(author, safe='')}/subscribers")
    assert status == 200, mine
    assert [s["status"] for s in mine["items"] if s["email"] == email] == ["confirmed"], mine

    status, created = api.post("/books", {"title": "News", "authors": [author]})
    assert status == 202, created
    mail = eventually(
        lambda: [m for m in mailbox.messages(email) if links(m, "unsubscribe")], timeout=120, what="new-book mail"
    )[0]
    assert mail["Type"] == "v2.SendBulkEmail", mail
    assert "News" in (mail["Subject"] + mail["BodyText"]), mail
    headers = {h["Name"]: h["Value"] for h in mail.get("Headers", [])}
    assert headers.get("List-Unsubscribe", "").startswith("<http"), mail
    assert headers.get("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click", mail
