"""README.md as a newcomer meets it: what its examples need exists, and the helpers they name work."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from helpers import unique_email

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SHELL_BLOCKS = "\n".join(re.findall(r"```sh\n(.*?)```", README, flags=re.S))


@pytest.mark.unit
def test_examples_need_no_tool_or_file_the_project_does_not_supply() -> None:
    """GIVEN the shell examples THEN no `uuidgen`, no fixed port, only files `make sample-images` makes."""
    from devtools.samples import SAMPLES

    assert "uuidgen" not in README
    assert "127.0.0.1:4566" not in SHELL_BLOCKS and "127.0.0.1:8000" not in SHELL_BLOCKS
    sent = set(re.findall(r"(?:@|base64 -w0 |stat -c%s )([\w.-]+\.(?:jpg|png|webp))", SHELL_BLOCKS))
    assert sent and sent <= set(SAMPLES), sent - set(SAMPLES)
    assert "make sample-images" in SHELL_BLOCKS and "sample-images:" in (ROOT / "Makefile").read_text()


@pytest.mark.unit
def test_readme_documents_what_a_newcomer_asked_for() -> None:
    """GIVEN the README THEN the emulator extras, the missing errors, the order and the expiry task are in it."""
    for needed in ("/_emulator/faults", "/_emulator/snapshot", "python -m devtools.mail", "covers.expire_upload"):
        assert needed in README, needed
    for status, code in (
        ("410", "Gone"),
        ("400", "InvalidToken"),
        ("414", "RequestURITooLong"),
        ("431", "RequestHeaderFieldsTooLarge"),
    ):
        assert re.search(rf"^\| {status} \| `{code}` \|", README, flags=re.M), code
    assert "**Order of `GET /books`.**" in README


@pytest.mark.unit
def test_sample_images_are_real_images_of_each_kind(tmp_path: Path) -> None:
    """GIVEN `python -m devtools.samples DIR` WHEN run THEN cover.jpg, photo.jpg and new.png decode as named."""
    from PIL import Image

    done = subprocess.run(
        [sys.executable, "-m", "devtools.samples", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    kinds = {"cover.jpg": "JPEG", "photo.jpg": "JPEG", "new.png": "PNG"}
    for name, kind in kinds.items():
        with Image.open(tmp_path / name) as image:
            assert image.format == kind
    # The inline example passes the cover's base64 as one shell argument (Linux: at most 128 KiB).
    assert len(base64.b64encode((tmp_path / "cover.jpg").read_bytes())) < 128 * 1024
    assert (tmp_path / "photo.jpg").stat().st_size > 1024 * 1024  # large enough to show why uploads go to S3


def test_mail_command_prints_each_mail_decoded_with_its_links(aws: Any, settings: Any, mailbox: Any) -> None:
    """GIVEN a quoted-printable mail WHEN `python -m devtools.mail` runs THEN its text is decoded, its link whole."""
    to = unique_email("newcomer")
    link = (
        "http://127.0.0.1:8000/subscriptions/confirm?token=" + "Ab=cD" * 30
    )  # long, with '=': QP breaks and escapes it
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = settings.mail_sender, to, "Confirm your subscription"
    mail.set_content(f"Bonjour, déjà:\n{link}\n", cte="quoted-printable")
    raw = mail.as_bytes()
    assert link.encode() not in raw  # what /_aws/ses holds is not copyable as it is
    aws("ses").send_raw_email(RawMessage={"Data": raw})
    env = {**os.environ, "AWS_ENDPOINT_URL_SES": mailbox.url.removesuffix("/_aws/ses")}
    done = subprocess.run(
        [sys.executable, "-m", "devtools.mail", "--to", to],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"To:      {to}" in done.stdout and "Bonjour, déjà:" in done.stdout
    assert f"Links:\n  {link}" in done.stdout and "=3D" not in done.stdout
    only = subprocess.run(
        [sys.executable, "-m", "devtools.mail", "--to", to, "--links"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert only.stdout.splitlines() == [link]
