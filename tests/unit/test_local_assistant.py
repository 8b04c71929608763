"""The local assistant's dialogue over a fake ``Tools``: each intent, the confirmation rule (no
checkout without the engine's recorded yes), cancellations refunded by policy, and the handover.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.assistant import local_read as read
from gateway.assistant.confirm import is_no, is_yes
from gateway.assistant.local import LocalAssistant
from gateway.assistant.state import Conversation
from gateway.assistant.tools import ToolError
from gateway.search.parse import Vocabulary

NOW = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)  # 10:00 in New York
EVENING = "2026-12-06T19:00:00-05:00"
LATE = "2026-12-06T21:30:00-05:00"
VOCAB = Vocabulary(
    genres=("Action", "Comedy", "Horror"),
    movies={1: "Fast Lane", 2: "Slow Burn"},
    seat_categories=("standard", "premium"),
)


def booking(booking_id: str, hours_ahead: float, price: int = 2400) -> dict[str, Any]:
    starts = (NOW + timedelta(hours=hours_ahead)).isoformat()
    return {
        "booking_id": booking_id, "show_id": 11, "seats": ["C7", "C8"], "price_cents": price,
        "currency": "USD", "status": "confirmed", "movie_title": "Fast Lane",
        "theater_name": "Odeon", "starts_at": starts,
    }  # fmt: skip


class FakeTools:
    """Answers like ``gateway.assistant.tools.Tools``, recording each call."""

    def __init__(self, conversation: Conversation, *, logged_in: bool = True) -> None:
        self.conversation = conversation
        self.logged_in = logged_in
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.bookings = [booking("b0000000-0000-4000-8000-000000000001", 5)]

    def _call(self, name: str, **args: Any) -> None:
        self.calls.append((name, args))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    async def search_movies(self, query: str, city_id: int | None = None) -> dict[str, Any]:
        self._call("search_movies", query=query, city_id=city_id)
        show = {"theater_name": "Odeon", "prices": {"standard": 1200}, "currency": "USD"}
        return {
            "movies": [
                {"id": 1, "title": "Fast Lane", "shows": [
                    {**show, "show_id": 11, "starts_at": EVENING},
                    {**show, "show_id": 12, "starts_at": LATE},
                ]},
                {"id": 2, "title": "Slow Burn", "shows": [
                    {**show, "show_id": 21, "starts_at": LATE},
                ]},
            ],
            "understood": [{"kind": "genre", "text": "action", "value": "Action"}],
        }  # fmt: skip

    async def hold_seats(
        self,
        show_id: int,
        seats: list[str] | None = None,
        count: int | None = None,
        category: str | None = None,
    ) -> dict[str, Any]:
        self._call("hold_seats", show_id=show_id, seats=seats, count=count, category=category)
        if not self.logged_in:
            raise ToolError("login_required", "log in first")
        taken = seats or ["D5", "D6", "D7", "D8"][: count or 1]
        summary = f"{len(taken)} seat(s) {', '.join(taken)} for Fast Lane: 24.00 USD"
        self.conversation.pending = {
            "kind": "checkout", "show_id": show_id, "hold_id": "h1", "summary": summary,
            "confirmed": False,
        }  # fmt: skip
        return {
            "hold_id": "h1", "show_id": show_id, "seats": taken, "price_cents": 2400,
            "currency": "USD", "expires_at": "2026-12-06T15:05:00+00:00", "summary": summary,
        }  # fmt: skip

    async def start_checkout(self, show_id: int, hold_id: str) -> dict[str, Any]:
        self._call("start_checkout", show_id=show_id, hold_id=hold_id)
        pending = self.conversation.pending or {}
        if not pending.get("confirmed"):
            raise ToolError("confirmation_required", "ask first")
        self.conversation.pending = None
        return {"type": "checkout", "show_id": show_id, "hold_id": hold_id, "payment_id": "p1"}

    async def booking_status(self, booking_id: str | None = None) -> dict[str, Any]:
        self._call("booking_status", booking_id=booking_id)
        if booking_id is None:
            return {"bookings": self.bookings}
        found = [b for b in self.bookings if b["booking_id"] == booking_id]
        if not found:
            raise ToolError("not_found", "you have no booking with this id")
        return {"bookings": found}

    async def cancel_booking(self, booking_id: str) -> dict[str, Any]:
        self._call("cancel_booking", booking_id=booking_id)
        (b,) = [b for b in self.bookings if b["booking_id"] == booking_id]
        refund = {"amount_cents": 1200, "currency": "USD", "status": "succeeded"}
        return {"booking": {**b, "status": "cancelled"}, "refund": refund}


class Chat:
    """A conversation with the local assistant; ``yes()`` plays the engine's part of recording a
    yes to the pending summary before the turn."""

    def __init__(self, logged_in: bool = True) -> None:
        self.conv = Conversation(id="c_test", user_id=7 if logged_in else None)
        self.tools = FakeTools(self.conv, logged_in=logged_in)
        self.assistant = LocalAssistant(
            vocabulary=lambda: VOCAB, time_zone="America/New_York", clock=lambda: NOW
        )

    async def say(self, text: str, *, engine: bool = True) -> Any:
        """One turn; ``engine`` first records a yes or no to the pending summary as the engine
        does (a no drops the summary: the engine gives the seats back)."""
        pending = self.conv.pending
        if engine and pending is not None and not pending.get("confirmed"):
            if is_yes(text):
                pending["confirmed"] = True
            elif is_no(text):
                self.conv.pending = None
        return await self.assistant.respond(self.conv, text, self.tools)  # type: ignore[arg-type]


async def test_a_search_lists_shows_to_pick_one_per_movie_first() -> None:
    chat = Chat()
    reply = await chat.say("action movies near me tonight")
    assert chat.tools.names() == ["search_movies"]
    (card,) = reply.cards
    assert card["type"] == "shows"
    assert [s["show_id"] for s in card["shows"]] == [11, 21, 12]
    assert "Which one" in reply.text and "1. Fast Lane" in reply.text
    assert not reply.escalated


async def test_pick_by_position_then_a_count_holds_best_available() -> None:
    chat = Chat()
    await chat.say("comedy tonight")
    asked = await chat.say("the second")
    assert "How many seats" in asked.text and "Slow Burn" in asked.text
    held = await chat.say("two")
    assert chat.tools.calls[-1] == (
        "hold_seats", {"show_id": 21, "seats": None, "count": 2, "category": None}
    )  # fmt: skip
    (card,) = held.cards
    assert card == {
        "type": "hold", "show_id": 21, "hold_id": "h1", "seats": ["D5", "D6"],
        "total_cents": 2400, "currency": "USD", "expires_at": "2026-12-06T15:05:00+00:00",
    }  # fmt: skip
    assert "Say yes" in held.text and "15:05" in held.text


async def test_book_two_seats_for_the_7pm_show_picks_by_time_and_holds() -> None:
    chat = Chat()
    await chat.say("action tonight")
    reply = await chat.say("book two seats for the 7pm show")
    assert chat.tools.calls[-1][1]["show_id"] == 11
    assert chat.tools.calls[-1][1]["count"] == 2
    assert reply.cards[0]["type"] == "hold"


async def test_a_count_given_with_the_search_holds_on_the_pick() -> None:
    chat = Chat()
    await chat.say("three seats for a comedy tonight")
    reply = await chat.say("the first")
    assert chat.tools.calls[-1][1] == {"show_id": 11, "seats": None, "count": 3, "category": None}
    assert reply.cards[0]["type"] == "hold"


async def test_a_time_none_of_the_listed_shows_has_is_said_plainly() -> None:
    chat = Chat()
    await chat.say("action tonight")
    reply = await chat.say("the 8pm one")
    assert "None of the shows I listed starts at 20:00" in reply.text
    assert chat.tools.names() == ["search_movies"]


async def test_named_seats_and_a_category_reach_the_hold() -> None:
    chat = Chat()
    await chat.say("action tonight")
    await chat.say("the first one")
    await chat.say("seats c7 and C8")
    assert chat.tools.calls[-1][1]["seats"] == ["C7", "C8"]
    chat2 = Chat()
    await chat2.say("action tonight")
    await chat2.say("number 1")
    await chat2.say("3 premium seats")
    assert chat2.tools.calls[-1][1] | {} == {
        "show_id": 11, "seats": None, "count": 3, "category": "premium"
    }  # fmt: skip


async def test_no_checkout_without_the_recorded_yes() -> None:
    chat = Chat()
    await chat.say("action tonight")
    await chat.say("book two seats for the 7pm show")
    asked = await chat.say("take me to checkout")
    assert "start_checkout" not in chat.tools.names()
    assert "Say yes" in asked.text and "D5, D6" in asked.text
    # A yes the engine did not record (no pending confirmation) still checks out nothing.
    again = await chat.say("yes", engine=False)
    assert "start_checkout" not in chat.tools.names()
    assert not again.cards and "Say yes" in again.text
    done = await chat.say("yes please")
    assert chat.tools.calls[-1] == ("start_checkout", {"show_id": 11, "hold_id": "h1"})
    assert done.cards == [{"type": "checkout", "show_id": 11, "hold_id": "h1", "payment_id": "p1"}]
    assert chat.conv.pending is None


async def test_a_no_to_the_summary_checks_out_nothing() -> None:
    chat = Chat()
    await chat.say("action tonight")
    await chat.say("book two seats for the 7pm show")
    reply = await chat.say("no")
    assert "no checkout" in reply.text and "let those seats go" in reply.text
    assert chat.conv.pending is None and "hold" not in chat.conv.slots
    later = await chat.say("pay")
    assert "no seats held" in later.text
    assert "start_checkout" not in chat.tools.names()
    # Without the engine's part, the summary is dropped and the seats stay held till they expire.
    alone = Chat()
    await alone.say("action tonight")
    await alone.say("book two seats for the 7pm show")
    kept = await alone.say("no thanks", engine=False)
    assert "stay held until 15:05" in kept.text and alone.conv.pending is None


async def test_a_show_card_button_picks_that_show() -> None:
    chat = Chat()
    await chat.say("action tonight")
    reply = await chat.say("Slow Burn at Sun, Dec 6, 9:30 PM (show 21)")
    assert "How many seats" in reply.text and chat.conv.slots["show"]["show_id"] == 21


async def test_a_visitor_is_asked_to_log_in_to_hold() -> None:
    chat = Chat(logged_in=False)
    await chat.say("action tonight")
    reply = await chat.say("two seats for the 7pm one")
    assert "log in" in reply.text
    assert not reply.escalated and not reply.cards


async def test_booking_status_lists_bookings_as_cards() -> None:
    chat = Chat()
    reply = await chat.say("what's the status of my bookings?")
    assert chat.tools.calls == [("booking_status", {"booking_id": None})]
    assert [c["type"] for c in reply.cards] == ["booking"]
    assert "Fast Lane" in reply.text and "C7, C8" in reply.text


@pytest.mark.parametrize(("hours", "back"), [(5, "24.00 USD of 24.00"), (1, "12.00 USD of 24.00")])
async def test_cancel_summarises_the_refund_by_policy_then_cancels_on_yes(
    hours: float, back: str
) -> None:
    chat = Chat()
    chat.tools.bookings = [booking("b0000000-0000-4000-8000-000000000001", hours)]
    summary = await chat.say("cancel my booking")
    assert back in summary.text and "Say yes" in summary.text
    assert "cancel_booking" not in chat.tools.names()
    done = await chat.say("yes")
    assert chat.tools.calls[-1] == (
        "cancel_booking", {"booking_id": "b0000000-0000-4000-8000-000000000001"}
    )  # fmt: skip
    assert "Cancelled" in done.text and "12.00 USD" in done.text


async def test_cancel_asks_which_booking_and_a_no_keeps_it() -> None:
    chat = Chat()
    chat.tools.bookings = [
        booking("b0000000-0000-4000-8000-000000000001", 5),
        booking("b0000000-0000-4000-8000-000000000002", 30, price=1000),
    ]
    which = await chat.say("I want to cancel")
    assert "Which booking" in which.text and len(which.cards) == 2
    summary = await chat.say("the second")
    assert "10.00 USD of 10.00" in summary.text
    kept = await chat.say("no")
    assert "stays" in kept.text
    assert "cancel_booking" not in chat.tools.names()


async def test_someone_elses_booking_reads_as_not_found() -> None:
    chat = Chat()
    reply = await chat.say("cancel booking a0000000-0000-4000-8000-00000000dead")
    assert reply.text == 'I can\'t find that. Check the number, or say "my bookings".'
    assert "cancel_booking" not in chat.tools.names()


@pytest.mark.parametrize(
    "text",
    ["I want to talk to a human", "can a person help me", "I never got my refund, this is wrong"],
)
async def test_a_person_is_asked_for_or_a_refund_disputed_hands_over(text: str) -> None:
    reply = await Chat().say(text)
    assert reply.escalated
    assert "person" in reply.text
    assert reply.source == "local"


async def test_not_understanding_twice_hands_over_plainly() -> None:
    chat = Chat()
    first = await chat.say("purple elephants dance")
    assert not first.escalated and first.failed
    assert "didn't get that" in first.text
    second = await chat.say("zxqv blorp")
    assert second.escalated
    assert (
        second.text == "I can't help with that myself; a person from our team will take over here."
    )


async def test_an_understood_turn_between_misses_resets_the_count() -> None:
    chat = Chat()
    await chat.say("purple elephants dance")
    await chat.say("help")
    assert not (await chat.say("zxqv blorp")).escalated


async def test_help_says_what_it_can_do() -> None:
    reply = await Chat().say("help")
    assert "find a show" in reply.text and "cancel" in reply.text
    assert not reply.cards


def test_reading_seat_labels_ordinals_and_counts() -> None:
    assert read.seat_labels("seats C7, c8 and AA12 at 7pm for 2") == ("C7", "C8", "AA12")
    assert read.seat_labels("a 7 o'clock show at 9") == ()
    assert read.ordinal("the second one") == 1
    assert read.ordinal("number 3") == 2
    assert read.ordinal("last") == -1
    assert read.ordinal("action tonight") is None
    assert read.bare_count("two please") == 2
    assert read.bare_count("4") == 4
    assert read.bare_count("two movies tonight") is None
    assert read.intent("cancel my booking") == "cancel"
    assert read.intent("talk to an agent") == "handover"
