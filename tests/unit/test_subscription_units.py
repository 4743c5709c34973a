"""The subscription rules over the in-memory store: no AWS, no emulator.

Who owns a row, the resend slot, the confirm and unsubscribe transitions and the owner's
listing, as `service.py` and `consent.py` decide them. The same service runs over DynamoDB in
the deployed code (tests/functional/test_consent.py over HTTP), and the two stores are held to
one contract by tests/functional/test_subscription_store.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest

from chalicelib import app_tasks  # noqa: F401 - registers the tasks the service sends by name
from chalicelib.platform import mailer, signing, validation
from chalicelib.platform.errors import NotFound
from chalicelib.platform.schemas import Page
from chalicelib.subscriptions import consent, service, tokens
from chalicelib.subscriptions import store as subscriptions
from chalicelib.subscriptions.consent import CONFIRMATION_FAILED, CONFIRMED, PENDING, UNSUBSCRIBED
from chalicelib.subscriptions.store import Change, Guard, MemorySubscriptionStore, Subscription
from chalicelib.subscriptions.tokens import BadToken, GoneToken
from chalicelib.tasks.registry import Signature

pytestmark = pytest.mark.unit

KEY = "ursula le guin"


class Outbox:
    """What the service sent: confirmation tasks (by their arguments) and mails (to, text)."""

    def __init__(self) -> None:
        self.tasks: list[tuple[Any, ...]] = []
        self.mails: list[tuple[str, str]] = []
        self.fail_dispatch = False

    def dispatch(self, signatures: list[Signature], owner: str | None = None) -> list[str]:
        if self.fail_dispatch:
            raise ConnectionError("the task table is out")
        self.tasks += [sig.args for sig in signatures]
        return [sig.task_id for sig in signatures]

    def send_email(self, to: str, subject: str, text: str, headers: dict[str, str] | None = None) -> str:
        self.mails.append((to, text))
        return f"message-{len(self.mails)}"

    def link_token(self) -> str:
        """The token of the last confirmation link mailed."""
        text = self.mails[-1][1]
        return unquote(text.split("?token=")[1].split()[0])


@pytest.fixture
def store() -> Iterator[MemorySubscriptionStore]:
    memory = MemorySubscriptionStore()
    subscriptions.configure(memory)
    yield memory
    subscriptions.configure(None)


@pytest.fixture
def outbox(monkeypatch: pytest.MonkeyPatch) -> Outbox:
    box = Outbox()
    monkeypatch.setattr(service, "dispatch", box.dispatch)
    monkeypatch.setattr(mailer, "send_email", box.send_email)
    # The stage's signing secret, held as `signing` keeps it after reading it from Secrets Manager.
    monkeypatch.setitem(signing._cache, "key", b"unit-test-secret")
    monkeypatch.setitem(signing._cache, "at", time.monotonic())
    return box


def _row(store: MemorySubscriptionStore, email: str = "reader@example.org") -> dict[str, Any]:
    return store.items[(KEY, email)]


def _confirmation_token(store: MemorySubscriptionStore, outbox: Outbox, email: str = "reader@example.org") -> str:
    """Run the mail task the subscription queued and read the link it mailed."""
    consent.send_confirmation(KEY, email)
    token = outbox.link_token()
    assert tokens.read_confirmation(token)[2] == _row(store, email)["confirm_hash"]
    return token


def test_a_new_subscription_is_pending_owned_by_its_caller_and_sends_one_confirmation(
    store: MemorySubscriptionStore, outbox: Outbox
) -> None:
    answer = service.subscribe(" Ursula Le Guin ", "Reader@Example.org", "alice")
    assert answer == {"author": "Ursula Le Guin", "email": "reader@example.org", "status": PENDING}
    row = _row(store)
    assert (row["owner"], row["status"], row["author"]) == ("alice", PENDING, "Ursula Le Guin")
    assert outbox.tasks == [(KEY, "reader@example.org")]


def test_subscribing_again_within_the_resend_interval_sends_nothing_more(
    store: MemorySubscriptionStore, outbox: Outbox
) -> None:
    service.subscribe("Ursula Le Guin", "reader@example.org", "alice")
    service.subscribe("Ursula Le Guin", "reader@example.org", "alice")
    assert len(outbox.tasks) == 1
    _row(store)["confirm_sent_at"] -= 301  # the resend interval (CONFIRM_RESEND_SECONDS) has passed
    service.subscribe("Ursula Le Guin", "reader@example.org", "alice")
    assert len(outbox.tasks) == 2


def test_someone_else_subscribing_the_address_learns_nothing_and_owns_nothing(
    store: MemorySubscriptionStore, outbox: Outbox
) -> None:
    service.subscribe("Ursula Le Guin", "reader@example.org", "alice")
    token = _confirmation_token(store, outbox)
    consent.confirm(token)
    answer = service.subscribe("Ursula Le Guin", "reader@example.org", "mallory")
    assert answer["status"] == PENDING  # as for a new address: not "confirmed"
    assert _row(store)["owner"] == "alice" and _row(store)["status"] == CONFIRMED
    assert len(outbox.tasks) == 1  # a confirmed address is never mailed a new link
    with pytest.raises(NotFound) as theirs:
        service.unsubscribe("Ursula Le Guin", "reader@example.org", "mallory")
    with pytest.raises(NotFound) as nobodys:
        service.unsubscribe("Ursula Le Guin", "nobody@example.org", "mallory")
    assert (theirs.value.message, theirs.value.fields) == (nobodys.value.message, nobodys.value.fields)
    assert (KEY, "reader@example.org") in store.items


def test_the_owner_removes_the_row_by_either_spelling_of_the_address(
    store: MemorySubscriptionStore, outbox: Outbox
) -> None:
    service.subscribe("Ursula Le Guin", validation.mail_address("Reader@Bücher.example"), "alice")  # as the route
    assert [email for _, email in store.items] == ["reader@xn--bcher-kva.example"]
    with pytest.raises(NotFound):
        service.unsubscribe("ursula le guin", "reader@bücher.example", "bob")
    service.unsubscribe("ursula le guin", "Reader@Bücher.example", "alice")
    assert store.items == {}


def test_a_failed_dispatch_gives_the_resend_slot_back(store: MemorySubscriptionStore, outbox: Outbox) -> None:
    service.subscribe("Ursula Le Guin", "reader@example.org", "alice")
    _row(store)["confirm_sent_at"] -= 301
    outbox.fail_dispatch = True
    with pytest.raises(ConnectionError):
        service.subscribe("Ursula Le Guin", "reader@example.org", "alice")
    assert "confirm_sent_at" not in _row(store)
    outbox.fail_dispatch = False
    service.subscribe("Ursula Le Guin", "reader@example.org", "alice")  # the client's retry mails at once
    assert len(outbox.tasks) == 2


def test_a_link_confirms_once_and_only_while_live(store: MemorySubscriptionStore, outbox: Outbox) -> None:
    service.subscribe("Ursula Le Guin", "reader@example.org", "alice")
    token = _confirmation_token(store, outbox)
    assert consent.confirm_target(token)["status"] == PENDING  # the page a GET shows changes nothing
    assert _row(store)["status"] == PENDING
    _row(store)["confirm_expires"] = int(time.time()) - 1
    with pytest.raises(GoneToken, match="expired"):
        consent.confirm(token)
    _row(store)["confirm_expires"] = int(time.time()) + 600
    assert consent.confirm(token)["status"] == CONFIRMED
    row = _row(store)
    assert row["status"] == CONFIRMED and row["used_hash"] and "confirm_hash" not in row
    with pytest.raises(GoneToken, match="used already"):
        consent.confirm(token)
    with pytest.raises(BadToken):
        consent.confirm(token[:-2] + "xx")


def test_a_new_link_replaces_the_old_one(store: MemorySubscriptionStore, outbox: Outbox) -> None:
    service.subscribe("Ursula Le Guin", "reader@example.org", "alice")
    first = _confirmation_token(store, outbox)
    second = _confirmation_token(store, outbox)
    with pytest.raises(BadToken):
        consent.confirm(first)
    assert consent.confirm(second)["status"] == CONFIRMED
    assert consent.send_confirmation(KEY, "reader@example.org") == {"skipped": "nothing to confirm"}


def test_a_failed_confirmation_mail_is_shown_and_frees_the_resend_slot(
    store: MemorySubscriptionStore, outbox: Outbox
) -> None:
    service.subscribe("Ursula Le Guin", "reader@example.org", "alice")
    assert consent.confirmation_failed(KEY, "reader@example.org", "SES: address rejected")
    row = _row(store)
    assert (row["status"], row["confirm_error"]) == (CONFIRMATION_FAILED, "SES: address rejected")
    assert "confirm_sent_at" not in row
    assert service.list_subscribers("Ursula Le Guin", "alice", Page(limit=10))["items"][0]["status"] == (
        CONFIRMATION_FAILED
    )
    assert service.subscribe("Ursula Le Guin", "reader@example.org", "alice")["status"] == PENDING
    assert "confirm_error" not in _row(store) and len(outbox.tasks) == 2  # mailed again at once
    assert not consent.confirmation_failed(KEY, "nobody@example.org", "no row")
    assert (KEY, "nobody@example.org") not in store.items  # the guard never creates a row


def test_unsubscribing_by_link_is_idempotent_and_only_a_new_confirmation_turns_mail_back_on(
    store: MemorySubscriptionStore, outbox: Outbox
) -> None:
    service.subscribe("Ursula Le Guin", "reader@example.org", "alice")
    consent.confirm(_confirmation_token(store, outbox))
    link = tokens.unsubscribe_token(KEY, "reader@example.org")
    assert consent.unsubscribe_target(link)["status"] == CONFIRMED
    for _ in range(2):
        assert consent.unsubscribe(link)["status"] == UNSUBSCRIBED
    assert _row(store)["status"] == UNSUBSCRIBED and _row(store)["unsubscribed_at"]
    assert service.subscribe("Ursula Le Guin", "reader@example.org", "alice")["status"] == UNSUBSCRIBED
    assert _row(store)["status"] == UNSUBSCRIBED  # the API cannot turn mail back on
    assert len(outbox.tasks) == 2  # but a new link went out at once (the slot was freed)
    consent.confirm(_confirmation_token(store, outbox))
    assert _row(store)["status"] == CONFIRMED


def test_a_confirmation_mail_that_fails_after_unsubscribing_keeps_it_unsubscribed(
    store: MemorySubscriptionStore, outbox: Outbox
) -> None:
    service.subscribe("Ursula Le Guin", "reader@example.org", "alice")
    consent.unsubscribe(tokens.unsubscribe_token(KEY, "reader@example.org"))
    assert consent.confirmation_failed(KEY, "reader@example.org", "bounced")
    assert _row(store)["status"] == UNSUBSCRIBED and "confirm_error" not in _row(store)


def test_unsubscribing_an_unknown_or_deleted_address_creates_no_row(
    store: MemorySubscriptionStore, outbox: Outbox
) -> None:
    link = tokens.unsubscribe_token(KEY, "stranger@example.org")
    assert consent.unsubscribe(link) == {"status": UNSUBSCRIBED, "author": KEY, "email": "stranger@example.org"}
    assert store.items == {}
    with pytest.raises(BadToken):
        consent.unsubscribe(link[:-3] + "abc")


def test_the_listing_pages_through_the_owners_rows_only(store: MemorySubscriptionStore, outbox: Outbox) -> None:
    for n in range(7):
        owner = "alice" if n % 2 == 0 else "bob"
        store.create(Subscription(KEY, f"r{n}@example.org", author="Ursula Le Guin", owner=owner))
    seen: list[list[str]] = []
    cursor = None
    while True:
        page = service.list_subscribers("Ursula Le Guin", "alice", Page(limit=2, cursor=cursor))
        seen.append([item["email"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [["r0@example.org", "r2@example.org"], ["r4@example.org", "r6@example.org"]]
    bobs = service.list_subscribers("Ursula Le Guin", "bob", Page(limit=10))
    assert [item["email"] for item in bobs["items"]] == ["r1@example.org", "r3@example.org", "r5@example.org"]
    assert bobs["next_cursor"] is None


def test_the_memory_store_applies_the_same_preconditions(store: MemorySubscriptionStore) -> None:
    assert store.create(Subscription(KEY, "a@example.org", owner="alice"))
    assert not store.create(Subscription(KEY, "a@example.org", owner="mallory"))
    assert store.update(KEY, "a@example.org", Change(set={"status": CONFIRMED}), Guard(status=PENDING))
    assert store.update(KEY, "a@example.org", Change(set={"confirm_sent_at": 5}), Guard(status_not=CONFIRMED)) is None
    written = store.update(KEY, "b@example.org", Change(set={"confirm_sent_at": 5}), Guard(status_not=CONFIRMED))
    assert written is not None and written.status == PENDING  # an update creates a missing row, as DynamoDB's
    assert store.update(KEY, "b@example.org", Change(set={"confirm_sent_at": 9}), Guard(sent_before=5)) is None
    assert store.update(KEY, "b@example.org", Change(set={"confirm_sent_at": 9}), Guard(sent_before=6))
