"""Access control decided by the API itself: API keys (malformed, wrong, unknown), the auth modes,
owners' writes, and no secrets in the repository. In this process over memory stores; what SSM
and S3 hold (hashes, private objects) is checked in tests/functional/test_security.py."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import unique_author

from chalicelib.platform.config import get_settings

ROOT = Path(__file__).resolve().parents[2]


def test_books_of_others_are_readable_but_not_writable(api: Any) -> None:
    status, payload = api.post("/books", {"title": "Alice's", "authors": [unique_author()]}, user="alice")
    assert status == 202
    book_id = payload["book"]["id"]
    assert api.get(f"/books/{book_id}", user="bob")[0] == 200
    assert api.put(f"/books/{book_id}", {"title": "Bob's now"}, user="bob")[0] == 403
    assert api.get(f"/books/{book_id}", user=None)[1]["title"] == "Alice's"


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Basic YWxpY2U6cGFzcw==", "Bearer " + "x" * 600, "Bearer wrong", "bearer  "]
)
def test_malformed_or_wrong_credentials_are_refused(api: Any, header: str) -> None:
    headers = {"Content-Type": "application/json", "Authorization": header}
    response = api.request("post", "/books", headers=headers, data=b'{"title": "t", "authors": ["a"]}')
    assert response.status_code in (401, 403)


def test_local_auth_mode_trusts_the_user_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.api import auth

    monkeypatch.setenv("AUTH_MODE", "local")
    get_settings.cache_clear()
    try:
        assert auth.authenticate("Bearer alice") == auth.Principal("alice", admin=False)
        assert auth.authenticate("Bearer admin") == auth.Principal("admin", admin=True)
        assert auth.authenticate("Bearer not valid!") is None
        assert auth.authenticate(None) is None
    finally:
        monkeypatch.delenv("AUTH_MODE")
        get_settings.cache_clear()


def test_unknown_auth_mode_refuses_everyone(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.api import auth

    monkeypatch.setenv("AUTH_MODE", "none")
    get_settings.cache_clear()
    try:
        assert auth.authenticate("Bearer anything") is None
    finally:
        monkeypatch.delenv("AUTH_MODE")
        get_settings.cache_clear()


SECRET_PATTERNS = [
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"aws_secret_access_key\s*=\s*\S{20,}", re.I),
    re.compile(r"-----BEGIN (RSA |EC )?PRIVATE KEY-----"),
    re.compile(r"\"(password|secret|api_key|token)\"\s*:\s*\"[^\"]{8,}\"", re.I),
]


def test_no_secrets_in_the_repository() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert ".chalice/config.json" in files
    offenders = []
    for name in files:
        path = ROOT / name
        if not path.is_file() or path.suffix in {".png", ".jpg", ".webp"}:
            continue
        text = path.read_text(errors="ignore")
        offenders += [f"{name}: {p.pattern}" for p in SECRET_PATTERNS if p.search(text)]
    assert offenders == []
