"""Checks of untrusted text and ids, made before any AWS call.

Every text field, query parameter and path parameter goes through here, so one rule holds
everywhere: no C0/C1 control characters (a CR/LF in a title ends up in a mail header, a NUL
in a key confuses every tool downstream), no bidirectional overrides or isolates (they make
text read differently from what it is: "Trojan Source"), no Unicode line or paragraph
separators (U+2028/U+2029: JavaScript and many viewers break lines on them), no lone
surrogates (not encodable as UTF-8, so they would fail later, at DynamoDB or at the JSON
encoder), and no U+FFFD. Multi-line fields may keep `\\n` and `\\t`, nothing else.

U+FFFD, the replacement character, is what bytes that are not UTF-8 become before the app
sees them: API Gateway (and the local gateway, as it) hands a non-binary body to the Lambda
as text, decoding invalid bytes to U+FFFD, and a query string's `%FF` decodes the same way.
The app cannot see the bytes, so it refuses their trace: a title sent as Latin-1 is a 422
naming the field instead of a title that silently reads "caf\ufffd". A body that reaches the
app as bytes is decoded strictly (`schemas.parse_json`).

Ids are checked against what this API ever creates before they reach DynamoDB: a key over
2,048 bytes is a ValidationException there (a 500), not a 404.
"""

from __future__ import annotations

import re

from chalicelib.platform.authors import author_key
from chalicelib.platform.errors import NotFound, ValidationFailed

MAX_AUTHOR = 200
MAX_EMAIL = 254  # RFC 5321's limit on a forward path, minus the angle brackets
MAX_TASK_ID = 128  # what the task envelope accepts
MAX_PARAMETER = 1024  # any other path or query parameter

_BIDI = "\u202a-\u202e\u2066-\u2069"
_SURROGATES = "\ud800-\udfff"
# Single-line: every C0 control (tab and newlines included), DEL, every C1 control (NEL
# U+0085 among them), the Unicode line and paragraph separators.
_SINGLE_LINE_BAD = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}{_SURROGATES}\ufffd]")
# Multi-line: the same, but a line feed and a tab may stay. CR is refused: one line ending;
# U+2028/U+2029 too: a line break is `\\n`.
_MULTI_LINE_BAD = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{_BIDI}{_SURROGATES}\ufffd]")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


def text_problem(value: str, multiline: bool = False) -> str | None:
    """What is wrong with `value` as user text, or None when it is clean."""
    found = (_MULTI_LINE_BAD if multiline else _SINGLE_LINE_BAD).search(value)
    if found is None:
        return None
    char = found.group()
    code = f"U+{ord(char):04X}"
    if "\ud800" <= char <= "\udfff":
        return f"must be valid Unicode (lone surrogate {code})"
    if char == "\ufffd":
        return "must be valid UTF-8 (found U+FFFD, which bytes that are not UTF-8 become)"
    if "\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069":
        return f"must not contain bidirectional control characters ({code})"
    if multiline and char == "\r":
        return "must not contain carriage returns (U+000D); use \\n for line breaks"
    if char in "\u2028\u2029" and multiline:
        return f"must not contain Unicode line or paragraph separators ({code}); use \\n for line breaks"
    if char in "\n\r\u0085\u2028\u2029":
        return f"must be a single line (found {code})"
    return f"must not contain control characters ({code})"


def single_line(value: str) -> str:
    """A pydantic after-validator: `value` unchanged, or ValueError saying what is wrong."""
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def multi_line(value: str) -> str:
    """A pydantic after-validator for text that may span lines (`\\n`, `\\t`)."""
    problem = text_problem(value, multiline=True)
    if problem:
        raise ValueError(problem)
    return value


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"invalid {field}", [{"field": field, "message": message}])


def clean_text(value: str, field: str, max_length: int | None = MAX_PARAMETER) -> str:
    """A single-line parameter, or 422 naming `field`."""
    problem = text_problem(value)
    if problem:
        raise _invalid(field, problem)
    if max_length is not None and len(value) > max_length:
        raise _invalid(field, f"must be at most {max_length} characters")
    return value


def book_id(value: str, field: str = "book_id") -> str:
    """A book id: 422 for hostile text, 404 for anything that is not a UUID (no book has it)."""
    clean_text(value, field, max_length=None)
    if not _UUID.fullmatch(value):
        raise NotFound("book not found", [{"field": field, "message": "no book has this id"}])
    return value


def task_id(value: str, field: str = "task_id") -> str:
    """A task id as the envelope allows it (at most 128 characters of a safe charset), else 404."""
    clean_text(value, field, max_length=None)
    if len(value) > MAX_TASK_ID or not _TASK_ID.fullmatch(value):
        raise NotFound("task not found", [{"field": field, "message": "no task has this id"}])
    return value


def author(value: str, field: str = "name") -> str:
    """An author name: clean, and 1 to 200 characters once case and spacing are folded."""
    clean_text(value, field, max_length=MAX_PARAMETER)
    key = author_key(value)
    if not key or len(key) > MAX_AUTHOR:
        raise _invalid(field, f"must be 1 to {MAX_AUTHOR} characters")
    return value


def email(value: str, field: str = "email") -> str:
    """An e-mail address in a path: clean, at most 254 characters, one `@` between two parts."""
    clean_text(value, field, max_length=MAX_PARAMETER)
    local, at, domain = value.rpartition("@")
    if len(value) > MAX_EMAIL or not at or not local or not domain or " " in value:
        raise _invalid(field, f"must be an e-mail address of at most {MAX_EMAIL} characters")
    return value


def mail_address(value: str) -> str:
    """An address mail can be sent to, in the one form it is stored and mailed in; ValueError if none.

    email-validator (pydantic's EmailStr uses it too) with SMTPUTF8 refused: SES and most
    mail servers cannot deliver to a non-ASCII local part, so "jörg@example.org" is refused
    here rather than accepted and never mailed. An internationalised domain is kept in its
    ASCII (IDNA) form, the form a `To:` header and SES need, so "a@bücher.example" and
    "a@xn--bcher-kva.example" are one subscription. Lower case, as the table always kept it.
    """
    # Imported here: its IDNA and Unicode tables cost init time that only the subscriber routes use.
    from email_validator import EmailNotValidError, validate_email

    single_line(value)
    try:
        found = validate_email(value, allow_smtputf8=False, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"must be an e-mail address that can be mailed: {exc}") from None
    if found.ascii_email is None:  # only with SMTPUTF8 allowed; kept for the type checker
        raise ValueError("must be an e-mail address with an ASCII form")
    return found.ascii_email.lower()
