"""Answers to the common questions, matched deterministically and answered without a model.

    answer = match("what is your refund policy?")   # (topic, text) or None

A question matches a topic when it has one of the topic's key phrases and reads as a question
about it (no booking words such as seat numbers or "book two"); the engine counts each hit in
Redis (``<prefix>chat:faq`` hash, topic → hits).
"""

from __future__ import annotations

import re

FAQ: dict[str, tuple[tuple[str, ...], str]] = {
    "refund_policy": (
        (
            "refund policy",
            "get a refund",
            "get my money back",
            "refunds work",
            "cancellation policy",
        ),
        "You can cancel a booking until the show starts. The refund follows the policy: in full "
        "well ahead of the show, partly closer to it, and always in full when we cancel the "
        "show. Refunds go back to the card you paid with within a few days.",
    ),
    "holds": (
        (
            "how do holds work",
            "how long are seats held",
            "how long is a hold",
            "hold expire",
            "how long do i have to pay",
            "what is a hold",
        ),
        "When you pick seats we hold them for you for 5 minutes while you pay; if you do not "
        "pay in time they go back on sale by themselves. Once payment starts the hold can be "
        "extended a little.",
    ),
    "hours": (
        ("opening hours", "open hours", "when are you open", "service hours", "are you open"),
        "Booking online is open around the clock. Box offices keep each theater's own hours, "
        "shown on its page; a person answers chat from 9:00 to 23:00 every day.",
    ),
    "accessibility": (
        ("wheelchair", "accessible seat", "accessibility", "disabled access", "companion seat"),
        "Every screen has wheelchair spaces, each with a companion seat beside it; choose the "
        "wheelchair category when you pick seats. A companion seat is only sold together with "
        "its wheelchair space.",
    ),
    "payment_methods": (
        ("payment methods", "pay with", "which cards", "do you accept"),
        "We take the major credit and debit cards through our payment provider; your card "
        "details go straight to them and never pass through us or this chat.",
    ),
}
_BOOKING = re.compile(
    r"\b(book|hold|reserve|cancel)\b.*\b(\d+|two|three|four|seats?)\b|\b[a-z]\d{1,2}\b"
)
_SPACES = re.compile(r"\s+")


def match(text: str) -> tuple[str, str] | None:
    """The (topic, answer) a question asks for, or None."""
    lowered = _SPACES.sub(" ", text.lower().replace("\u2019", "'")).strip()
    if len(lowered) > 200 or _BOOKING.search(lowered):
        return None
    for topic, (phrases, answer) in FAQ.items():
        if any(p in lowered for p in phrases):
            return topic, answer
    return None


__all__ = ["FAQ", "match"]
