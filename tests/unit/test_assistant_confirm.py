"""The assistant's deterministic readings: a yes or a no to a summary, a request for a person,
a refund dispute, the FAQ, and the conversation as Messages-API turns."""

from __future__ import annotations

import pytest

from gateway.assistant.claude import history
from gateway.assistant.confirm import is_no, is_yes
from gateway.assistant.faq import match
from gateway.assistant.handoff import refund_dispute, wants_human
from gateway.assistant.state import Conversation

YES = ["yes", "Yes, book it!", "yes please", "ok go ahead", "sure", "Confirm", "yep, that's right"]
NO = ["no", "nope, cancel it", "not yet", "don't book it", "no thanks", "wait"]
NEITHER = [
    "yes but not row A",
    "is it ok?",
    "what time does it start",
    "yes I would like to see a different movie tomorrow evening instead",
    "",
    "maybe",
]


@pytest.mark.parametrize("text", YES)
def test_yes(text: str) -> None:
    assert is_yes(text) and not is_no(text)


@pytest.mark.parametrize("text", NO)
def test_no(text: str) -> None:
    assert is_no(text) and not is_yes(text)


@pytest.mark.parametrize("text", NEITHER)
def test_neither_yes_nor_no(text: str) -> None:
    assert not is_yes(text) and not is_no(text)


def test_asking_for_a_person() -> None:
    for text in ("can I talk to a human", "human please", "I want to speak to someone"):
        assert wants_human(text), text
    for text in ("book two seats for humans", "talk about the movie", "someone else's seat"):
        assert not wants_human(text), text


def test_refund_dispute() -> None:
    for text in ("my refund was wrong, I only got 5 dollars", "why did you refuse my refund?"):
        assert refund_dispute(text), text
    for text in ("what is your refund policy?", "I'd like a refund for tonight", "wrong seats"):
        assert not refund_dispute(text), text


def test_faq() -> None:
    assert match("What is your refund policy?")[0] == "refund_policy"  # type: ignore[index]
    assert match("how long are seats held")[0] == "holds"  # type: ignore[index]
    assert match("Do you have wheelchair spaces?")[0] == "accessibility"  # type: ignore[index]
    assert match("hold two seats in row C") is None  # a booking, not a question
    assert match("action movies tonight") is None


def test_history_alternates_and_starts_with_the_customer() -> None:
    conv = Conversation(id="c_test0000000")
    conv.add("assistant", "Welcome!")
    conv.add("user", "hi")
    conv.add("user", "two seats")
    conv.add("agent", "A person here.")
    conv.add("assistant", "Anything else?")
    turns = history(conv, "yes")
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[0]["content"] == "hi\n\ntwo seats"
    assert "(a person from our team wrote:) A person here." in turns[1]["content"]
    assert turns[-1]["content"] == "yes"


def test_conversation_round_trips_and_trims() -> None:
    conv = Conversation(id="c_test0000000", user_id=7)
    for n in range(50):
        conv.add("user", str(n), limit=40)
    conv.record_usage("m", 10, 2)
    conv.record_usage("m", 5, 1)
    again = Conversation.from_json(conv.to_json())
    assert again == conv and len(again.messages) == 40 and again.messages[0]["content"] == "10"
    assert again.usage == {"m": {"input": 15, "output": 3, "calls": 2}}
