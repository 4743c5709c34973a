"""Issue 21 item 9: no state is left pending when a task dies. Every final failure (a permanent
error, retries exhausted, a message the redrive policy dead-lettered) reaches the task's
`on_failure` hook: a cover ends `failed` with a reason, a confirmation mail that cannot be
sent marks the subscription so the user can try again. Over HTTP, with the workers running."""

from __future__ import annotations

import json
from typing import Any, cast

import requests
from helpers import dead_lettered, eventually, final_record, jpeg_bytes, unique_author, unique_email
from mailtools import confirmation_mails, subscribers_path


def _book(api: Any, book_id: str) -> dict[str, Any]:
    return cast("dict[str, Any]", api.get(f"/books/{book_id}", user=None)[1])


def _book_with_new_cover(api: Any, data: bytes | None = None) -> tuple[str, str]:
    status, payload = api.post("/books", {"title": "Hooked", "authors": [unique_author()]})
    assert status == 202, payload
    book_id = payload["book"]["id"]
    status, replaced = api.put(f"/books/{book_id}/cover", raw=data or jpeg_bytes(), content_type="image/jpeg")
    assert status == 202, replaced
    return book_id, replaced["tasks"][0]


def _failed_book(api: Any, book_id: str) -> dict[str, Any]:
    """The book once its cover says failed: the on_failure hook runs after the record says FAILURE
    (Celery's order too), so a read right after the record may come before it."""
    return cast(
        "dict[str, Any]",
        eventually(
            lambda: (b := _book(api, book_id))["cover_status"] == "failed" and b, timeout=30, what="the hook's mark"
        ),
    )


def test_a_cover_that_s3_refuses_ends_failed_with_the_reason(
    api: Any, workers: Any, faults: Any, settings: Any
) -> None:
    faults.add(service="s3", action="GET", code="AccessDenied", status=403)
    book_id, task_id = _book_with_new_cover(api)
    record = final_record(api, task_id, timeout=90)
    faults.clear()
    assert record["status"] == "FAILURE" and record["attempts"] == 1, record
    book = _failed_book(api, book_id)
    assert "AccessDenied" in book["cover"]["error"], book


def test_a_cover_whose_retries_run_out_ends_failed_with_the_reason(api: Any, workers: Any, faults: Any) -> None:
    faults.add(service="s3", action="GET", code="ServiceUnavailable", status=503)
    book_id, task_id = _book_with_new_cover(api)
    record = final_record(api, task_id, timeout=120)
    faults.clear()
    assert record["status"] == "FAILURE" and "retries exhausted" in record["error"], record
    book = _failed_book(api, book_id)
    assert "retries exhausted after 4 attempts" in book["cover"]["error"], book


def test_a_cover_dead_lettered_by_the_redrive_policy_ends_failed(
    api: Any, paused_workers: Any, aws: Any, settings: Any, chalice_client: Any
) -> None:
    """A timeout or crash on every attempt: SQS moves the message, no code of ours runs then; the
    reconciler finds it and the hook marks the cover."""
    from dashboard_support import drop_dead_letter

    from chalicelib.platform.sqs import queue_url

    book_id, task_id = _book_with_new_cover(api)
    sqs, url = aws("sqs"), queue_url(settings.media.name)

    def take_message() -> dict[str, Any] | None:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            if json.loads(message["Body"]).get("id") == task_id:
                return cast("dict[str, Any] | None", message)
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        return None

    message = eventually(take_message, what="the resize message")
    # What the redrive policy does: the same body in the DLQ, with no attribute of ours.
    sqs.send_message(QueueUrl=queue_url(settings.media.dlq_name), MessageBody=message["Body"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert _book(api, book_id)["cover_status"] == "pending"

    event = chalice_client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    chalice_client.lambda_.invoke("dead_letter_reconciler", event)
    record = api.get(f"/tasks/{task_id}", user="admin")[1]
    assert record["status"] == "FAILURE" and "redrive policy" in record["error"], record
    book = _book(api, book_id)
    assert book["cover_status"] == "failed" and "redrive policy" in book["cover"]["error"], book
    drop_dead_letter(settings.media, task_id)


def test_a_superseded_cover_that_fails_is_skipped_not_dead_lettered(
    api: Any, workers: Any, settings: Any, monkeypatch: Any
) -> None:
    """The cover is replaced while its resize runs, and then the old version turns out unreadable:
    that failure does not matter (the task ends skipped, as when the replacement came first)."""
    from chalicelib.covers import storage

    status, payload = api.post("/books", {"title": "Raced", "authors": [unique_author()]})
    book_id = payload["book"]["id"]
    real_get = storage.get
    replaced: list[str] = []

    def get_after_a_replacement(key: str, max_bytes: int) -> bytes:
        if key.startswith(f"covers/{book_id}/v1/") and not replaced:
            # The owner replaces the cover while version 1 is being resized (over HTTP).
            response = requests.put(
                f"{api.url}/books/{book_id}/cover",
                data=jpeg_bytes(),
                headers=api.headers("alice", "image/jpeg"),
                timeout=60,
            )
            assert response.status_code == 202, response.text
            replaced.append(response.json()["tasks"][0])
        return real_get(key, max_bytes)

    monkeypatch.setattr(storage, "get", get_after_a_replacement)
    unreadable = b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 50  # passes the type check, fails to decode
    status, first = api.put(f"/books/{book_id}/cover", raw=unreadable, content_type="image/jpeg")
    assert status == 202, first
    record = final_record(api, first["tasks"][0], timeout=90)
    assert record["status"] == "SUCCESS" and "skipped" in record["result"], record
    assert final_record(api, replaced[0], timeout=90)["status"] == "SUCCESS"
    book = _book(api, book_id)
    assert book["cover_status"] == "ready" and book["cover"]["version"] == 2, book
    assert first["tasks"][0] not in dead_lettered(settings.media.dlq_name)


def _subscribers(api: Any, author: str, user: str = "alice") -> dict[str, dict[str, Any]]:
    status, body = api.get(subscribers_path(author), user=user)
    assert status == 200, body
    return {item["email"]: item for item in body["items"]}


def _confirmation_task(api: Any, author_key: str, email: str) -> dict[str, Any] | None:
    status, body = api.get("/tasks?name=subscriptions.send_confirmation&limit=100", user="admin")
    assert status == 200, body
    return next((t for t in body["items"] if t["args"] == [author_key, email]), None)


def test_a_confirmation_mail_that_cannot_be_sent_can_be_asked_for_again(
    api: Any, workers: Any, faults: Any, mailbox: Any
) -> None:
    from chalicelib.platform.authors import author_key

    author, email = unique_author("Refused"), unique_email("refused")
    faults.add(service="ses", action="SendEmail", code="MessageRejected", status=400)
    status, body = api.post(subscribers_path(author), {"email": email})
    assert status == 201 and body["status"] == "pending", body
    task = eventually(lambda: _confirmation_task(api, author_key(author), email), what="the confirmation task")
    record = final_record(api, task["id"], timeout=60)
    faults.clear()
    assert record["status"] == "FAILURE" and "MessageRejected" in record["error"], record
    # The subscriber's owner sees why, and may read the task record; another user may not.
    failed = eventually(
        lambda: (s := _subscribers(api, author).get(email)) and s["status"] == "confirmation_failed" and s,
        what="the subscription marked",
    )
    assert failed["status"] == "confirmation_failed"
    assert api.get(f"/tasks/{task['id']}", user="alice")[0] == 200
    assert api.get(f"/tasks/{task['id']}", user="bob")[0] == 403
    # Subscribing again sends a new mail at once (no resend interval to wait for).
    status, body = api.post(subscribers_path(author), {"email": email})
    assert status == 201 and body["status"] == "pending", body
    assert len(eventually(lambda: confirmation_mails(mailbox, email), what="the new confirmation mail")) == 1
    assert _subscribers(api, author)[email]["status"] == "pending"
