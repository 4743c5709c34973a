"""Email through Amazon SES."""

from __future__ import annotations

from chalicelib.aws import client
from chalicelib.config import get_settings


def send_email(to: str, subject: str, text: str) -> str:
    """Send a plain-text email; returns the SES message id."""
    response = client("ses").send_email(
        Source=get_settings().mail_sender,
        Destination={"ToAddresses": [to]},
        Message={
            "Subject": {"Data": subject, "Charset": "UTF-8"},
            "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
        },
    )
    return response["MessageId"]
