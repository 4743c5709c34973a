"""README.md and docs/ as a newcomer meets them: what the examples need exists, the helpers they
name work, every link lands, and the README stays a few screens long."""

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

from devtools.doc_contents import anchored, headings, slug

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = {path: path.read_text(encoding="utf-8") for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
DOCS = {path.name: text for path, text in PAGES.items() if path.parent.name == "docs"}
SHELL_BLOCKS = "\n".join(re.findall(r"```sh\n(.*?)```", "\n".join(PAGES.values()), flags=re.S))
README_MAX_LINES = 250


def _anchors(page: Path) -> set[str]:
    return {anchor for _, _, anchor in anchored(page.read_text(encoding="utf-8"))}


def _links(text: str) -> list[str]:
    """Targets of the Markdown links and images outside fenced code blocks and inline code."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    return re.findall(r"\]\(([^)\s]+)\)", prose)


@pytest.mark.unit
def test_examples_need_no_tool_or_file_the_project_does_not_supply() -> None:
    """GIVEN the shell examples of README and docs/ THEN no `uuidgen`, no fixed port, only sample files."""
    from devtools.samples import SAMPLES

    for path, text in PAGES.items():
        assert "uuidgen" not in text, path.name
    assert "127.0.0.1:4566" not in SHELL_BLOCKS and "127.0.0.1:8000" not in SHELL_BLOCKS
    sent = set(re.findall(r"(?:@|base64 -w0 |stat -c%s )([\w.-]+\.(?:jpg|png|webp))", SHELL_BLOCKS))
    assert sent and sent <= set(SAMPLES), sent - set(SAMPLES)
    readme_shell = "\n".join(re.findall(r"```sh\n(.*?)```", README, flags=re.S))
    assert "make sample-images" in readme_shell and "make sample-images" in DOCS["API.md"]
    assert "sample-images:" in (ROOT / "Makefile").read_text()


@pytest.mark.unit
def test_docs_document_what_a_newcomer_asked_for() -> None:
    """GIVEN README and docs/ THEN the emulator extras, the missing errors, the order and the expiry task are there."""
    assert "python -m devtools.mail" in README  # the tour reads the captured mail
    for page, needed in (
        ("LOCAL.md", "/_emulator/faults"),
        ("LOCAL.md", "/_emulator/snapshot"),
        ("LOCAL.md", "python -m devtools.mail"),
        ("COVERS.md", "covers.expire_upload"),
        ("API.md", "**Order of `GET /books`.**"),
    ):
        assert needed in DOCS[page], (page, needed)
    for status, code in (
        ("410", "Gone"),
        ("400", "InvalidToken"),
        ("414", "RequestURITooLong"),
        ("431", "RequestHeaderFieldsTooLarge"),
    ):
        assert re.search(rf"^\| {status} \| `{code}` \|", DOCS["API.md"], flags=re.M), code


@pytest.mark.unit
def test_readme_fits_on_a_few_screens_and_points_to_every_docs_page() -> None:
    """GIVEN README.md THEN at most 250 lines, the two commands, and a link to every docs/ page."""
    assert len(README.splitlines()) <= README_MAX_LINES, f"README.md has {len(README.splitlines())} lines"
    assert re.search(r"^make run\b", README, flags=re.M) and re.search(r"^make test\b", README, flags=re.M)
    linked = {link.split("#")[0] for link in _links(README)}
    assert set(DOCS) <= {Path(link).name for link in linked if link.startswith("docs/")}, set(DOCS) - linked


@pytest.mark.unit
def test_every_relative_link_lands_on_a_file_and_an_anchor() -> None:
    """GIVEN every link in README.md and docs/*.md THEN its file exists and its #anchor is a heading there."""
    broken = []
    for path, text in PAGES.items():
        for link in _links(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", link):  # https:, mailto:
                continue
            target, _, anchor = link.partition("#")
            file = (path.parent / target).resolve() if target else path
            if not file.exists():
                broken.append(f"{path.name}: {link} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                broken.append(f"{path.name}: {link} (no such heading)")
    assert not broken, "\n".join(broken)


@pytest.mark.unit
def test_every_docs_page_has_a_contents_list_naming_its_sections() -> None:
    """GIVEN each docs/*.md page THEN a `## Contents` list links every `##` section of the page."""
    for name, text in DOCS.items():
        assert "\n## Contents\n" in text, f"{name} has no '## Contents'"
        listed = set(re.findall(r"^\s*- \[.*?\]\(#([^)]+)\)", text, flags=re.M))
        missing = [h for level, h in headings(text) if level == 2 and h != "Contents" and slug(h) not in listed]
        assert not missing, f"{name}: sections missing from its Contents (python -m devtools.doc_contents): {missing}"


@pytest.mark.unit
def test_contents_lists_are_rebuilt_with_githubs_anchors() -> None:
    """GIVEN a page with a stale contents block WHEN rebuilt THEN it lists ## and ### with GitHub's anchors."""
    from devtools.doc_contents import contents

    page = (
        "# T\n\n## Contents\n\n<!-- toc -->\n- stale\n<!-- /toc -->\n\n## The contract: `GET /openapi.json`\n"
        "```sh\n## not a heading\n```\n### Task options (Celery names)\n## Tests\n## Tests\n"
    )
    block = contents(page).split("<!-- toc -->\n")[1].split("\n<!-- /toc -->")[0]
    assert block.splitlines() == [
        "- [The contract: `GET /openapi.json`](#the-contract-get-openapijson)",
        "  - [Task options (Celery names)](#task-options-celery-names)",
        "- [Tests](#tests)",
        "- [Tests](#tests-1)",
    ]


@pytest.mark.unit
def test_figures_come_from_the_bench_summary_not_from_the_prose() -> None:
    """GIVEN the README and the performance page THEN no measured time or ratio; a link to the bench summary."""
    measured = re.compile(r"\d\s?(?:ms|\u00d7)(?!\w)|\d+(?:\.\d+)?x\b|p50 \d")  # 12 ms, 3.6 times (sign), 37.2x, p50 60
    for path in (ROOT / "README.md", ROOT / "docs" / "PERFORMANCE.md"):
        text = PAGES[path]
        assert not measured.findall(text), (path.name, measured.findall(text))
        assert "bench/README.md#summary-of-the-last-make-bench" in text, path.name


@pytest.mark.unit
def test_the_skips_docs_list_are_the_skips_the_tests_make() -> None:
    """GIVEN docs/LOCAL.md's list of what skips under LocalStack THEN each named skip is in the tests."""
    local = " ".join(DOCS["LOCAL.md"].split())
    tests = ROOT / "tests"
    for said, file, code in (
        ("the fault-injection tests skip", "conftest.py", "fault injection for {service} needs the embedded emulator"),
        (
            "the emulator's own S3 signature checks",
            "functional/test_security.py",
            "S3 is not served by the embedded emulator",
        ),
        ("one upload-form check", "functional/test_uploads.py", "skips signature checks by default"),
        ("`test_queue_ages`' visible-age test", "functional/test_queue_ages.py", "order-dependent under LocalStack"),
    ):
        assert said in local, said
        assert code in (tests / file).read_text(encoding="utf-8"), (file, code)


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
