"""Pure logic of the input checks: text, ids, JSON depth, cursors, the API-key cache."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.api import auth
from chalicelib.platform import validation
from chalicelib.platform.errors import MalformedRequest, NotFound, ValidationFailed
from chalicelib.platform.pagination import listing_scope
from chalicelib.platform.schemas import MAX_JSON_DEPTH, parse_json

pytestmark = pytest.mark.unit  # pure logic: no AWS endpoint is started for these tests

# ---------------------------------------------------------------- text


@pytest.mark.parametrize(
    "text",
    [
        "Line1\r\nBcc: v@example.org",
        "a\nb",
        "a\rb",
        "tab\there",
        "nul\x00",
        "bell\x07",
        "del\x7f",
        "nel\x85",
        "c1\x9f",
        "rlo\u202e",
        "lre\u202a",
        "lri\u2066",
        "pdi\u2069",
        "ls\u2028",
        "lone \ud800 surrogate",
    ],
)
def test_single_line_text_refuses_controls_bidi_and_surrogates(text: str) -> None:
    assert validation.text_problem(text) is not None


@pytest.mark.parametrize(
    "text", ["Мастер и Маргарита 🐈‍⬛", "李白", "שלום", "mark\u200fok", "Ursula K. Le Guin", "a-b_c.d'e"]
)
def test_ordinary_text_in_any_script_is_clean(text: str) -> None:
    assert validation.text_problem(text) is None
    assert validation.text_problem(text, multiline=True) is None


def test_multi_line_text_keeps_newlines_and_tabs_only() -> None:
    assert validation.text_problem("para 1\n\tpara 2\n", multiline=True) is None
    for bad in ("a\r\nb", "a\x00", "a\x85b", "a\u202eb", "a\x0bb", "a\x0cb"):
        assert validation.text_problem(bad, multiline=True) is not None, repr(bad)


def test_problem_names_the_character() -> None:
    assert "U+202E" in (validation.text_problem("x\u202e") or "")
    assert "single line" in (validation.text_problem("x\ny") or "")
    assert "U+0000" in (validation.text_problem("x\x00y") or "")


# ---------------------------------------------------------------- ids


def test_book_ids_are_uuids_else_not_found() -> None:
    good = str(uuid.uuid4())
    assert validation.book_id(good) == good
    for bad in ("x" * 3000, "missing", good.upper(), good + "0", ""):
        with pytest.raises(NotFound):
            validation.book_id(bad)
    with pytest.raises(ValidationFailed) as raised:
        validation.book_id("x\x00y")
    assert raised.value.fields[0]["field"] == "book_id"


def test_task_ids_as_the_envelope_allows() -> None:
    assert validation.task_id("a" * 128) == "a" * 128
    assert validation.task_id("resize:abc-1.2_3") == "resize:abc-1.2_3"
    for bad in ("a" * 129, "a/b", "-leading", "sp ace", "é"):
        with pytest.raises(NotFound):
            validation.task_id(bad)
    with pytest.raises(ValidationFailed):
        validation.task_id("a\nb")


def test_author_and_email_bounds() -> None:
    assert validation.author("x" * 200) == "x" * 200
    assert validation.author("  Le   Guin  ") == "  Le   Guin  "  # folded for the key, kept as given
    for bad in ("x" * 201, "   ", "x\u0085y"):
        with pytest.raises(ValidationFailed):
            validation.author(bad)
    local = "a" * 64
    email = f"{local}@{'d' * (254 - 65 - 4)}.org"
    assert len(email) == 254 and validation.email(email) == email
    for bad in ("b" + email, "no-at-sign", "@example.org", "x@", "a b@example.org", "a\r\n@example.org"):
        with pytest.raises(ValidationFailed):
            validation.email(bad)


# ---------------------------------------------------------------- JSON depth


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,
        b"{" * 100_000,
        b'{"a":' * 100_000,
        _nested(MAX_JSON_DEPTH + 1),
        b'{"title": "t", "authors": ' + _nested(5_000) + b"}",
        b"[" * 50_000 + b"]",
    ],
    ids=["100k [", "100k {", "100k objects", "depth 33", "deep inside an object", "unbalanced"],
)
def test_hostile_nesting_is_a_400_before_parsing(raw: bytes) -> None:
    with pytest.raises(MalformedRequest) as raised:
        parse_json(raw, 10_000_000)
    assert raised.value.fields == [{"field": "body", "message": raised.value.fields[0]["message"]}]


def test_nesting_up_to_the_limit_parses() -> None:
    assert parse_json(_nested(MAX_JSON_DEPTH), 10_000) == json.loads(_nested(MAX_JSON_DEPTH))
    wide = json.dumps([[i, {"k": [i]}] for i in range(10_000)]).encode()
    assert len(parse_json(wide, 10_000_000)) == 10_000


def test_brackets_inside_strings_do_not_count() -> None:
    body = json.dumps({"title": "[" * 1000, "description": '\\"{' * 500 + "]" * 7}).encode()
    assert parse_json(body, 10_000_000)["title"] == "[" * 1000


# ---------------------------------------------------------------- cursors (signed ones: test_cursors.py)


def test_scope_ignores_absent_filters_and_their_order() -> None:
    assert listing_scope("tasks", status="FAILURE", name=None) == listing_scope("tasks", status="FAILURE")
    assert listing_scope("t", a="1", b="2") == listing_scope("t", b="2", a="1")
    assert listing_scope("tasks", status="X") != listing_scope("tasks", name="X")


# ---------------------------------------------------------------- API-key cache


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def key_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The authorizer's key cache over an in-memory key list and a hand-driven clock."""
    store: dict[str, Any] = {"keys": {auth.hash_key("old-key"): {"user": "alice"}}, "reads": 0}

    def load() -> dict[str, Any]:
        store["reads"] += 1
        return dict(store["keys"])

    clock = _Clock()

    def sleep(seconds: float) -> None:
        store["slept"].append(seconds)
        clock.now += seconds

    store["slept"] = []
    auth.configure_keys(load)
    monkeypatch.setattr(auth, "_clock", clock)
    monkeypatch.setattr(auth, "_sleep", sleep)
    monkeypatch.setitem(auth._cache, "at", float("-inf"))
    monkeypatch.setitem(auth._cache, "keys", {})
    store["clock"] = clock
    yield store
    auth.configure_keys(None)


def test_a_new_key_works_within_a_second(key_store: Any) -> None:
    assert auth.authenticate("Bearer old-key") == auth.Principal("alice")
    key_store["keys"][auth.hash_key("new-key")] = {"user": "carol", "admin": True}
    key_store["clock"].now += auth.UNKNOWN_KEY_REFRESH_SECONDS + 0.1
    assert auth.authenticate("Bearer new-key") == auth.Principal("carol", admin=True)
    assert key_store["reads"] == 2


def test_a_key_stored_a_moment_after_a_read_works_on_its_first_use(key_store: Any) -> None:
    """The gateway caches a refusal for 300 s: refusing a new key from a list read before it
    existed would lock the key out for five minutes."""
    assert auth.authenticate("Bearer old-key") == auth.Principal("alice")  # the list is read now
    key_store["keys"][auth.hash_key("new-key")] = {"user": "carol"}
    key_store["clock"].now += 0.1
    assert auth.authenticate("Bearer new-key") == auth.Principal("carol")
    assert key_store["reads"] == 2
    assert key_store["slept"] == [pytest.approx(auth.UNKNOWN_KEY_REFRESH_SECONDS - 0.1)]


def test_unknown_keys_read_the_store_at_most_once_a_second(key_store: Any) -> None:
    assert auth.authenticate("Bearer old-key") is not None
    started = key_store["clock"].now
    for i in range(1000):
        key_store["clock"].now += 0.0009
        assert auth.authenticate(f"Bearer random-{i}") is None
    elapsed = key_store["clock"].now - started
    assert key_store["reads"] - 1 <= elapsed / auth.UNKNOWN_KEY_REFRESH_SECONDS + 1
    assert all(0 <= s <= auth.UNKNOWN_KEY_REFRESH_SECONDS for s in key_store["slept"])


def test_known_keys_never_wait_for_a_read(key_store: Any) -> None:
    assert auth.authenticate("Bearer old-key") is not None
    for _ in range(100):
        key_store["clock"].now += 0.01
        assert auth.authenticate("Bearer old-key") is not None
    assert key_store["reads"] == 1 and key_store["slept"] == []


def test_known_keys_use_the_cache_until_it_expires(key_store: Any) -> None:
    assert auth.authenticate("Bearer old-key") is not None
    key_store["keys"].clear()  # revoked
    key_store["clock"].now += auth.CACHE_SECONDS - 1
    assert auth.authenticate("Bearer old-key") is not None
    assert key_store["reads"] == 1
    key_store["clock"].now += 2
    assert auth.authenticate("Bearer old-key") is None


# ---------------------------------------------------------------- outages


@pytest.mark.parametrize(
    ("code", "status", "outage"),
    [
        ("ThrottlingException", 400, True),
        ("InternalServiceError", 500, True),  # Secrets Manager's own name for it
        ("SomethingNew", 503, True),  # any 5xx from AWS
        ("RequestThrottled", 403, True),
        ("ValidationException", 400, False),
        ("AccessDeniedException", 400, False),
    ],
)
def test_which_aws_errors_are_outages(code: str, status: int, outage: bool) -> None:
    from botocore.exceptions import ClientError

    from chalicelib.platform.aws_errors import is_transient

    error = ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")
    assert is_transient(error) is outage


def test_one_classifier_serves_the_api_the_tasks_the_transactions_and_the_mailer() -> None:
    """The four callers ask one table (issue 25, item 5), so they cannot disagree about a code."""
    from botocore.exceptions import ClientError, EndpointConnectionError
    from pynamodb.exceptions import PutError

    from chalicelib.platform.aws_errors import Fault, classify, classify_code
    from chalicelib.tasks.errors import is_permanent

    def error(code: str, status: int = 400) -> ClientError:
        answer = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return ClientError(answer, "Op")

    assert classify(EndpointConnectionError(endpoint_url="http://127.0.0.1:9")) is Fault.TRANSIENT
    assert classify(error("NotImplemented", 501)) is Fault.UNSUPPORTED  # the mailer's fallback, not an outage
    assert classify_code("TransactionConflict") is Fault.TRANSIENT  # a transaction's "busy" reason
    assert classify_code("ConditionalCheckFailed") is Fault.OTHER  # a "no" the caller must read
    wrapped = PutError("put failed", cause=error("ProvisionedThroughputExceededException"))
    assert classify(wrapped) is Fault.TRANSIENT
    assert is_permanent(error("AccessDeniedException")) and not is_permanent(error("ThrottlingException"))
    assert is_permanent(PutError("put failed", cause=error("ValidationException")))


# ---------------------------------------------------------------- bounded error bodies (issue 21, item 1)


def test_error_body_lists_twenty_fields_cut_and_counts_the_rest() -> None:
    from chalicelib.platform.errors import error_body

    fields = [{"field": f"k{i}" * 100, "message": "x" * 5000, "accepted": ["a"]} for i in range(1000)]
    body = error_body("ValidationError", "m" * 50_000, fields)
    assert set(body) == {"error", "message", "fields"} and len(body["fields"]) == 20
    assert all(len(f["field"]) <= 200 and len(f["message"]) == 200 and f["accepted"] == ["a"] for f in body["fields"])
    assert len(body["message"]) == 1000 and body["message"].endswith("(980 more fields not listed)")
    assert error_body("NotFound", "short", [{"field": "a", "message": "b"}]) == {
        "error": "NotFound",
        "message": "short",
        "fields": [{"field": "a", "message": "b"}],
    }


# ---------------------------------------------------------------- mail addresses (issue 21, item 6)


def test_the_message_names_the_ascii_domain_and_refuses_a_non_ascii_local_part() -> None:
    from chalicelib.platform.mailer import UnmailableAddress, build_message
    from chalicelib.tasks.errors import is_permanent

    raw = build_message("a@bücher.example", "s", "t")
    assert b"To: a@xn--bcher-kva.example\r\n" in raw and b"=?" not in raw.split(b"Subject")[0]
    with pytest.raises(UnmailableAddress) as refused:
        build_message("jörg@example.org", "s", "t")
    assert is_permanent(refused.value)


# ---------------------------------------------------------------- one text rule (issue 21, item 7)


def test_multi_line_text_refuses_separators_and_replacement_characters() -> None:
    for bad in ("a\u2028b", "a\u2029b", "caf\ufffd"):
        assert validation.text_problem(bad, multiline=True) is not None, repr(bad)
        assert validation.text_problem(bad) is not None, repr(bad)
    assert "UTF-8" in (validation.text_problem("caf\ufffd") or "")
    assert "U+2028" in (validation.text_problem("a\u2028b", multiline=True) or "")


_TEXT_CHECKS = {validation.single_line, validation.multi_line, validation.mail_address}
# str fields that are not text: checked whole by their own rule, never stored as text.
_NOT_TEXT = {("BookCreate", "cover"), ("Page", "cursor")}  # base64 (decoded strictly); an opaque cursor (400)


def _str_leaves(annotation: Any, metadata: list[Any]) -> list[list[Any]]:
    """The metadata of every `str` inside an annotation (list items, optional values, nested Annotated)."""
    from typing import Annotated, Literal, get_args, get_origin

    if get_origin(annotation) is Annotated:
        base, *extra = get_args(annotation)
        return _str_leaves(base, [*metadata, *extra])
    if annotation is str:
        return [metadata]
    if get_origin(annotation) is Literal:
        return []
    return [leaf for arg in get_args(annotation) for leaf in _str_leaves(arg, [])]


def _unchecked_text(models: list[type[Any]]) -> list[str]:
    found = []
    for model in models:
        for name, info in model.model_fields.items():
            for leaf in _str_leaves(info.annotation, list(info.metadata)):
                if not any((base.__name__, name) in _NOT_TEXT for base in model.__mro__) and not any(
                    getattr(m, "func", None) in _TEXT_CHECKS for m in leaf
                ):
                    found.append(f"{model.__name__}.{name}")
    return found


def _strict_models() -> list[type[Any]]:
    import chalicelib.api.contract  # the documented query and dashboard models: imported here, so the
    import chalicelib.books.schemas  # check sees the same set alone as in a whole run
    import chalicelib.subscriptions.schemas  # noqa: F401 - every request body is a StrictModel
    from chalicelib.platform.schemas import StrictModel

    models, todo = [], [StrictModel]
    while todo:
        models += (found := todo.pop().__subclasses__())
        todo += found
    return models


def test_every_text_field_of_every_request_body_uses_the_one_text_rule() -> None:
    models = _strict_models()
    assert {"BookCreate", "BookUpdate", "CoverUpload", "SubscriberCreate", "Page"} <= {m.__name__ for m in models}
    assert _unchecked_text(models) == []


def test_the_text_rule_check_sees_a_plain_str_field() -> None:
    from pydantic import BaseModel

    class Loose(BaseModel):
        name: str
        tags: list[str] | None = None

    assert _unchecked_text([Loose]) == ["Loose.name", "Loose.tags"]


def test_services_raise_no_http_only_the_api_maps_errors_to_statuses() -> None:
    """Domain errors carry no status (issue 25, item 5); api/http.py's table is the one mapping."""
    from chalicelib.api.http import HTTP_STATUS, headers_of, status_of
    from chalicelib.platform import errors
    from chalicelib.subscriptions.tokens import BadToken, GoneToken

    kinds = [kind for kind in vars(errors).values() if isinstance(kind, type) and issubclass(kind, errors.DomainError)]
    assert all("status" not in vars(kind) and "headers" not in vars(kind) for kind in kinds)
    assert set(kinds) - {errors.DomainError} == set(HTTP_STATUS)  # every kind is mapped, once
    assert (status_of(BadToken()), status_of(GoneToken("used")), status_of(errors.Conflict("c"))) == (400, 410, 409)
    assert headers_of(errors.ServiceUnavailable("down"))["Retry-After"] and status_of(errors.DomainError("x")) == 400
    assert BadToken().body()["error"] == "InvalidToken"
