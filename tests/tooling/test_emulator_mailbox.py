"""The emulator's mailbox (`GET /_aws/ses`, LocalStack's shape) and its `?to=` filter (ours)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
from helpers import is_emulator, unique_email


def test_to_keeps_one_recipients_mail_of_both_apis(aws: Any, mailbox: Any) -> None:
    """GIVEN mail to two addresses, sent with SES v1 (formatted) and v2 (raw) WHEN the mailbox is
    read with `?to=` THEN only that recipient's mail, in both shapes; without it, all of it."""
    if not is_emulator(mailbox.url.removesuffix("/_aws/ses")):
        pytest.skip("`?to=` is the embedded emulator's; LocalStack's /_aws/ses has no such filter")
    mine, theirs, tag = unique_email("mine"), unique_email("theirs"), uuid.uuid4().hex[:8]
    sender = "books@example.org"
    aws("ses").verify_email_identity(EmailAddress=sender)
    for to in (mine, theirs):
        aws("ses").send_email(
            Source=sender,
            Destination={"ToAddresses": [to]},
            Message={"Subject": {"Data": f"v1 {tag}"}, "Body": {"Text": {"Data": "hello"}}},
        )
        raw = f"From: {sender}\r\nTo: {to}\r\nSubject: v2 {tag}\r\n\r\nhello\r\n".encode()
        aws("sesv2").send_email(
            FromEmailAddress=sender, Destination={"ToAddresses": [to]}, Content={"Raw": {"Data": raw}}
        )
    answer = requests.get(mailbox.url, params={"to": mine}, timeout=10).json()["messages"]
    assert len(answer) == 2 and all(mine in m["Destination"]["ToAddresses"] for m in answer), answer
    everything = requests.get(mailbox.url, timeout=10).json()["messages"]
    assert sum(theirs in m["Destination"]["ToAddresses"] for m in everything) == 2
    assert mailbox.messages(to=theirs) == [m for m in everything if theirs in m["Destination"]["ToAddresses"]]
