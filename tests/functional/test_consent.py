"""Double opt-in, unsubscribe links and header-safe mail, over HTTP with the workers running."""

from __future__ import annotations

import html
import re
import time
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from helpers import eventually, final_record, unique_author, unique_email
from mailtools import (
    FORM,
    book_mails,
    confirm,
    confirmation_mails,
    links,
    parsed,
    path_of,
    subscribe_confirmed,
    subscribers_path,
    text,
)

pytestmark = pytest.mark.usefixtures("workers")


def _post_book(api: Any, author: str, title: str = "A Book") -> tuple[str, str]:
    status, body = api.post("/books", {"title": title, "authors": [author]})
    assert status == 202, body
    return body["book"]["id"], body["tasks"][-1]


def _book_and_fanout_done(api: Any, author: str, title: str = "A Book") -> str:
    book_id, fanout = _post_book(api, author, title)
    record = final_record(api, fanout)
    assert record["status"] == "SUCCESS", record
    return book_id


def _settled(api: Any, book_id: str) -> None:
    """Wait until every mail task of a book's fan-out is final (so 'no mail' is meaningful)."""
    from chalicelib.tasks.models import TaskRecord

    def done() -> bool:
        rows = [r for r in TaskRecord.scan(TaskRecord.args.contains(book_id)) if r.name != "covers.resize"]
        return all(r.status in ("SUCCESS", "FAILURE") for r in rows)

    eventually(done, timeout=60, what=f"mail tasks of {book_id}")


def test_subscription_is_pending_until_the_link_is_followed(api: Any, mailbox: Any) -> None:
    author, email = unique_author("OptIn"), unique_email("optin")
    status, body = api.post(subscribers_path(author), {"email": email})
    assert status == 201 and body["status"] == "pending"
    (mail,) = eventually(lambda: confirmation_mails(mailbox, email), what="confirmation mail")
    assert str(parsed(mail)["Subject"]).startswith("Confirm your subscription to OptIn")

    book_id = _book_and_fanout_done(api, author, "Before Confirming")
    _settled(api, book_id)
    assert book_mails(mailbox, email) == []  # a pending address gets no book mail

    link = path_of(links(mail, "confirm")[0])
    status, page = api.get(link, user=None)  # opening the link only shows a button (scanners GET)
    assert status == 200 and '<form method="post"' in page
    assert api.get(subscribers_path(author))[1]["items"][0]["status"] == "pending"
    status, _ = api.post(link, user=None, raw=b"confirm=yes", content_type=FORM)  # the button
    assert status == 200
    assert api.get(subscribers_path(author))[1]["items"][0]["status"] == "confirmed"

    _book_and_fanout_done(api, author, "After Confirming")
    (book_mail,) = eventually(lambda: book_mails(mailbox, email), what="book mail after confirming")
    message = parsed(book_mail)
    assert message["Subject"] == "New book: After Confirming"
    (unsubscribe,) = links(book_mail, "unsubscribe")
    assert message["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_second_user_never_takes_over_an_address(api: Any, mailbox: Any) -> None:
    author, email = unique_author("Takeover"), unique_email("victim")
    path = subscribers_path(author)
    subscribe_confirmed(api, mailbox, author, email, user="alice")

    status, answer = api.post(path, {"email": email}, user="bob")
    fresh_status, fresh = api.post(path, {"email": unique_email("fresh")}, user="bob")
    assert (status, set(answer)) == (fresh_status, set(fresh)) == (201, {"author", "email", "status"})
    assert answer["status"] == fresh["status"] == "pending"  # nothing tells bob the address was taken

    assert [s["email"] for s in api.get(path)[1]["items"]] == [email]  # still alice's, still confirmed
    assert api.get(path)[1]["items"][0]["status"] == "confirmed"
    assert email not in [s["email"] for s in api.get(path, user="bob")[1]["items"]]
    assert len(confirmation_mails(mailbox, email)) == 1  # a confirmed address gets no new confirmation
    assert api.delete(f"{path}/{email}")[0] == 204  # alice can still remove it


def test_unsubscribe_link_stops_mail_and_wins_over_a_later_subscribe(api: Any, mailbox: Any) -> None:
    author, email = unique_author("Unsub"), unique_email("unsub")
    subscribe_confirmed(api, mailbox, author, email)
    _book_and_fanout_done(api, author, "First")
    (first,) = eventually(lambda: book_mails(mailbox, email), what="first book mail")
    target = path_of(links(first, "unsubscribe")[0])

    status, page = api.get(target, user=None)  # GET only shows the page: link scanners must not unsubscribe
    assert (
        status == 200 and "<form" in page and api.get(subscribers_path(author))[1]["items"][0]["status"] == "confirmed"
    )
    status, _ = api.post(
        target, user=None, raw=b"List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert status == 200
    assert api.get(subscribers_path(author))[1]["items"][0]["status"] == "unsubscribed"

    book_id = _book_and_fanout_done(api, author, "Second")
    _settled(api, book_id)
    assert len(book_mails(mailbox, email)) == 1  # nothing after unsubscribing

    status, body = api.post(subscribers_path(author), {"email": email})  # the API cannot turn mail back on
    assert status == 201 and body["status"] == "unsubscribed"
    book_id = _book_and_fanout_done(api, author, "Third")
    _settled(api, book_id)
    assert len(book_mails(mailbox, email)) == 1

    confirm(api, mailbox, email, count=2)  # only the address confirming again does
    _book_and_fanout_done(api, author, "Fourth")
    eventually(lambda: len(book_mails(mailbox, email)) == 2, what="book mail after confirming again")


def test_bad_expired_and_used_tokens_are_json_errors(api: Any, mailbox: Any) -> None:
    from chalicelib.platform.authors import author_key
    from chalicelib.subscriptions.models import Subscriber

    author, email = unique_author("Tokens"), unique_email("tokens")
    api.post(subscribers_path(author), {"email": email})
    (mail,) = eventually(lambda: confirmation_mails(mailbox, email), what="confirmation mail")
    link = path_of(links(mail, "confirm")[0])

    for bad in ("", "?token=nonsense", "?token=" + "A" * 900, link[:-3] + "xyz"):
        status, body = api.get(f"/subscriptions/confirm{bad}" if not bad.startswith("/") else bad, user=None)
        assert status == 400 and body["error"] == "InvalidToken" and body["fields"][0]["field"] == "token"
    status, body = api.get("/subscriptions/confirm?token=" + "A" * 5000, user=None)  # over the parameter limit
    assert status == 422 and body["fields"][0]["field"] == "token"
    status, body = api.get("/subscriptions/unsubscribe?token=" + link.split("token=")[1], user=None)
    assert status == 400 and set(body) == {"error", "message", "fields"}  # a confirm token is not an unsubscribe one

    for bad in ("?token=nonsense", link[:-3] + "xyz"):  # the button of a forged page confirms nothing either
        status, body = api.post(bad if bad.startswith("/") else f"/subscriptions/confirm{bad}", user=None, raw=b"")
        assert status == 400 and body["error"] == "InvalidToken"

    sub = Subscriber.get(author_key(author), email)
    sub.update(actions=[Subscriber.confirm_expires.set(int(time.time()) - 1)])
    for call in (api.get, api.post):  # an expired link shows no button, and its POST confirms nothing
        status, body = call(link, user=None)
        assert status == 410 and "expired" in body["message"]

    sub.update(actions=[Subscriber.confirm_expires.set(int(time.time()) + 600)])
    assert api.get(link, user=None)[0] == 200
    assert api.post(link, user=None)[0] == 200
    for call in (api.get, api.post):
        status, body = call(link, user=None)
        assert status == 410 and "used" in body["message"]


def test_no_header_injection_from_a_title_in_the_table(api: Any, mailbox: Any) -> None:
    """The title is written past the API's validation: the mail layer must be safe on its own."""
    from chalicelib import app_tasks
    from chalicelib.books.models import Book

    author, email = unique_author("Inject"), unique_email("inject")
    subscribe_confirmed(api, mailbox, author, email)
    book = Book(str(uuid.uuid4()), owner="alice", title="Line1\r\nBcc: v@example.org", authors=[author])
    book.save()
    app_tasks.notify_subscribers.delay(book.id)
    (mail,) = eventually(lambda: book_mails(mailbox, email), what="book mail")
    raw = mail["RawData"]
    head = raw.split("\r\n\r\n", 1)[0] if "\r\n\r\n" in raw else raw.split("\n\n", 1)[0]
    assert [line for line in head.splitlines() if line.lower().startswith("subject:")] == [
        "Subject: New book: Line1 Bcc: v@example.org"
    ]
    assert not any(line.lower().startswith("bcc:") for line in head.splitlines())
    assert parsed(mail)["Bcc"] is None and set(mail["Destination"]["ToAddresses"]) == {email}
    assert mailbox.messages(to="v@example.org") == []


def test_owner_reads_the_task_records_of_their_books_mails(api: Any, mailbox: Any) -> None:
    from chalicelib.mail.fanout import FANOUT_TASKS
    from chalicelib.tasks.models import TaskRecord

    author, email = unique_author("Records"), unique_email("records")
    subscribe_confirmed(api, mailbox, author, email)
    book_id = _book_and_fanout_done(api, author)
    _settled(api, book_id)
    mail_tasks = [r.id for r in TaskRecord.scan(TaskRecord.args.contains(book_id)) if r.name in FANOUT_TASKS]
    assert mail_tasks
    for task_id in mail_tasks:
        status, record = api.get(f"/tasks/{task_id}")  # alice owns the book
        assert status == 200 and record["mail"]["mailed"] == 1 and record["mail"]["complete"]
        assert api.get(f"/tasks/{task_id}", user="bob")[0] == 403


def test_header_text_removes_every_line_break_and_override() -> None:
    from chalicelib.platform.mailer import build_message, header_text

    for evil in ("a\r\nb", "a\nb", "a\u0085b", "a\u2028b", "a\u2029b", "a\x00b", "a\u202eb", "a\x1bb"):
        assert header_text(evil) == "a b"
    raw = build_message("x@example.org", "Caf\u00e9\r\nBcc: v@example.org", "body", {"X-Test": "1\r\nBcc: y"})
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head and b"\nBcc:" not in head
    assert b"Subject: =?utf-8?" in head  # non-ASCII is RFC 2047-encoded


def test_a_subscribe_that_could_not_dispatch_its_mail_can_be_retried_at_once(
    api: Any, mailbox: Any, faults: Any
) -> None:
    """Issue 21 item 10: when the confirmation task cannot be written (DynamoDB down), the
    subscribe is a 503 and gives back its resend slot, so the client's retry mails the link."""
    author, email = unique_author("Retry"), unique_email("retry")
    # The subscription's own PutItem passes; the task record's PutItem fails on every try
    # (botocore's and PynamoDB's retries included).
    faults.add(
        service="dynamodb",
        action="PutItem",
        code="ThrottlingException",
        status=400,
        pattern=[False] + [True] * 10,
        times=11,
    )
    status, body = api.post(subscribers_path(author), {"email": email})
    faults.clear()
    assert status == 503 and body["error"] == "ServiceUnavailable", body
    status, body = api.post(subscribers_path(author), {"email": email})
    assert status == 201 and body["status"] == "pending", body
    assert len(eventually(lambda: confirmation_mails(mailbox, email), what="the confirmation mail of the retry")) == 1
    confirm(api, mailbox, email)


# ---------------------------------------------------------------- issue 21, item 6: addresses that can be mailed


@pytest.mark.parametrize("email", ["jörg@example.org", "用户@例子.example", '"quoted"@example.org', "a@[127.0.0.1]"])
def test_an_address_no_mail_can_reach_is_refused(api: Any, email: str) -> None:
    status, body = api.post(subscribers_path(unique_author("Unmailable")), {"email": email})
    assert status == 422 and [f["field"] for f in body["fields"]] == ["email"], body


def test_an_internationalised_domain_is_stored_and_mailed_in_its_ascii_form(api: Any, mailbox: Any) -> None:
    author, local = unique_author("Idna"), f"Reader-{uuid.uuid4().hex[:8]}"
    path = subscribers_path(author)
    status, body = api.post(path, {"email": f"{local}@Bücher.example"})
    ascii_form = f"{local.lower()}@xn--bcher-kva.example"
    assert (status, body["email"]) == (201, ascii_form)
    assert api.post(path, {"email": ascii_form})[0] == 201  # the same address spelt in ASCII: the same row
    assert [s["email"] for s in api.get(path)[1]["items"]] == [ascii_form]

    (mail,) = eventually(lambda: confirmation_mails(mailbox, ascii_form), what="confirmation mail")
    head = mail["RawData"].replace("\r\n", "\n").split("\n\n", 1)[0]
    (to,) = [line for line in head.splitlines() if line.lower().startswith("to:")]
    assert to == f"To: {ascii_form}"  # never an RFC 2047 encoded word inside an address
    assert set(mail["Destination"]["ToAddresses"]) == {ascii_form}  # the emulator may list it twice
    assert api.delete(f"{path}/{quote(local + '@bücher.example', safe='@')}")[0] == 204  # either spelling


def test_a_stored_address_that_cannot_be_mailed_fails_at_once_not_in_a_loop(api: Any) -> None:
    """A row written before the API refused such addresses: the mail task fails for good, once."""
    from chalicelib import app_tasks
    from chalicelib.platform.authors import author_key
    from chalicelib.subscriptions.models import Subscriber

    author, email = unique_author("Legacy"), f"jörg-{uuid.uuid4().hex[:8]}@example.org"
    Subscriber(author_key(author), email, author=author, owner="alice", status="pending").save()
    record = final_record(api, app_tasks.send_confirmation.delay(author_key(author), email))
    assert record["status"] == "FAILURE" and record["attempts"] == 1, record
    assert "cannot mail" in record["error"], record["error"]


# ---------------------------------------------------------------- issue 21, item 8: confirmation needs a POST

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _browser(api: Any, method: str, path: str, body: bytes = b"") -> Any:
    headers = {"Accept": BROWSER, **({"Content-Type": FORM} if method == "POST" else {})}
    return api.request(method, path, headers, body)


def test_fetching_the_confirmation_link_does_not_confirm(api: Any, mailbox: Any) -> None:
    """Mail scanners and link previews fetch every link in a mail, as a browser would."""
    from chalicelib.platform.authors import author_key
    from chalicelib.subscriptions.models import Subscriber

    author, email = unique_author("Scanner"), unique_email("scanned")
    assert api.post(subscribers_path(author), {"email": email})[0] == 201
    (mail,) = eventually(lambda: confirmation_mails(mailbox, email), what="confirmation mail")
    assert "press the button" in text(mail)
    link = path_of(links(mail, "confirm")[0])

    for _ in range(3):  # a scanner, a preview, the reader opening it
        page = _browser(api, "GET", link)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert Subscriber.get(author_key(author), email).status == "pending"
    assert page.headers["X-Frame-Options"] == "DENY" and "form-action 'self'" in page.headers["Content-Security-Policy"]
    form = re.search(r'<form method="post" action="([^"]+)">', page.text)
    assert form is not None and html.unescape(form.group(1)) == link[link.index("?") :]  # POSTs back to the link

    done = _browser(api, "POST", link, b"confirm=yes")  # the button
    assert done.status_code == 200 and "Subscription confirmed" in done.text
    assert Subscriber.get(author_key(author), email).status == "confirmed"


@pytest.mark.parametrize("route", ["confirm", "unsubscribe"])
def test_a_failed_link_shows_a_page_to_a_browser_and_json_to_a_client(api: Any, route: str) -> None:
    for method in ("GET", "POST"):
        for token, status in (("nonsense", 400), ("A" * 5000, 422), ("eyJ4Ijp9.Zm9v", 400)):
            path = f"/subscriptions/{route}?token={token}"
            page = _browser(api, method, path)
            assert page.status_code == status and page.headers["Content-Type"].startswith("text/html"), page.text
            assert "<h1>This link is not valid</h1>" in page.text and '{"error"' not in page.text
            status_json, body = api.call(method.lower(), path, user=None)
            assert status_json == status and set(body) == {"error", "message", "fields"}


def test_an_expired_confirmation_link_shows_a_page_saying_so(api: Any, mailbox: Any) -> None:
    from chalicelib.platform.authors import author_key
    from chalicelib.subscriptions.models import Subscriber

    author, email = unique_author("Expired"), unique_email("expired")
    api.post(subscribers_path(author), {"email": email})
    (mail,) = eventually(lambda: confirmation_mails(mailbox, email), what="confirmation mail")
    Subscriber.get(author_key(author), email).update(actions=[Subscriber.confirm_expires.set(int(time.time()) - 1)])
    for method in ("GET", "POST"):
        page = _browser(api, method, path_of(links(mail, "confirm")[0]))
        assert page.status_code == 410 and "<h1>This link can no longer be used</h1>" in page.text
        assert "expired" in page.text and Subscriber.get(author_key(author), email).status == "pending"
