"""The in-process revocation state: what it refuses, and a feed cursor that never skips a row
that commits out of id order (PostgreSQL sequences) nor loops on a rolled-back id."""

from __future__ import annotations

import time
from typing import Any

import pytest

from paywall.entitlements.revocations import Cursor, Entry, InvalidCursor, RevocationState


def entry(i: int, sub: str = "acct", sid: str | None = None, nb: int = 1000) -> Entry:
    return Entry(i, sub, sid, nb, "signed_out" if sid else "canceled", time.time() + 600)


def state(settle: float = 60.0) -> RevocationState:
    s = RevocationState(engine=None, settle=settle)  # type: ignore[arg-type]
    s._refreshed = time.monotonic()  # noqa: SLF001 - no database in a unit test
    s._ensure_thread = lambda: None  # type: ignore[method-assign]
    return s


def settle(s: RevocationState, *entries: Entry) -> None:
    with s._lock:  # noqa: SLF001 - what refresh() does after its query
        s._add(entries)  # noqa: SLF001
        s._advance_low()  # noqa: SLF001


def test_session_revocations_refuse_every_token_of_the_session() -> None:
    s = state()
    settle(s, entry(1, sid="sess-1", nb=1000))
    assert s.is_revoked("acct", "sess-1", 999) == "signed_out"
    assert s.is_revoked("acct", "sess-1", 5000) == "signed_out"  # skewed clocks too
    assert s.is_revoked("acct", "sess-2", 999) is None
    assert s.is_revoked("other", "sess-1", 999) is None  # the sid must be the account's


def test_account_revocations_refuse_tokens_issued_before_not_before() -> None:
    s = state()
    settle(s, entry(1, nb=1000), entry(2, nb=900))  # an older one arriving later changes nothing
    assert s.is_revoked("acct", "any", 999) == "canceled"
    assert s.is_revoked("acct", "any", 1000) is None
    assert s.is_revoked("someone-else", "any", 1) is None


def test_cursor_waits_at_a_gap_then_delivers_the_late_row_once() -> None:
    s = state()
    settle(s, entry(1), entry(2), entry(4))  # 3 is still in an open transaction
    found, cursor = s.since(Cursor(0))
    assert [e.id for e in found] == [1, 2, 4]
    assert str(cursor) == "2.4"
    assert s.since(cursor)[0] == []
    settle(s, entry(3))
    found, cursor = s.since(cursor)
    assert [e.id for e in found] == [3]
    assert str(cursor) == "4"
    assert [e.id for e in s.since(Cursor.parse("2.4"))[0]] == [3]


def test_a_gap_older_than_the_settle_time_is_a_rolled_back_insert() -> None:
    s = state(settle=0)
    settle(s, entry(1), entry(3))
    found, cursor = s.since(Cursor(0))
    assert str(cursor) == "3" and [e.id for e in found] == [1, 3]


def test_a_cursor_from_an_instance_ahead_of_this_one_goes_no_backwards() -> None:
    s = state()
    settle(s, entry(1))
    found, cursor = s.since(Cursor.parse("5.7"))
    assert found == [] and str(cursor) == "5.7"


@pytest.mark.parametrize("text", ["x", "3.2", "3.3", "-1", "1..2", "1" * 20])
def test_malformed_cursors_are_refused(text: str) -> None:
    with pytest.raises(InvalidCursor):
        Cursor.parse(text)


def test_wait_returns_what_another_thread_applies() -> None:
    import threading

    s = state()
    results: list[Any] = []
    waiter = threading.Thread(target=lambda: results.append(s.wait(Cursor(0), 60)))
    waiter.start()
    time.sleep(0.2)
    s.apply([entry(1, sid="sess")])
    waiter.join(60)
    assert [e.id for e in results[0][0]] == [1]
    assert s.wait(Cursor(1), 0.05) == ([], Cursor(1))
