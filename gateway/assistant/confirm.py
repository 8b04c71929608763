"""Whether the customer's message is a yes or a no to the summary awaiting them.

Deterministic and strict: a yes is a short message made of agreeing words ("yes", "yes
please", "ok go ahead", "confirm"); anything with a negation, a question or other words is not
a yes (the assistant then asks again). ``is_no`` is the mirror.

    is_yes("Yes, book it!")   # True
    is_yes("yes but not row A")  # False: more than agreement
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z']+")
YES = frozenset(
    {
        "yes", "y", "yeah", "yep", "yup", "sure", "ok", "okay", "confirm", "confirmed",
        "correct", "right", "absolutely", "definitely", "go", "ahead", "book", "it",
        "please", "do", "that", "sounds", "good", "great", "perfect", "proceed", "checkout",
        "pay", "lets", "let's", "fine", "that's", "thats", "alright", "all", "them",
    }
)  # fmt: skip
# Words that must be there for a yes (the rest only pad it).
_ASSENT = frozenset(
    {
        "yes", "y", "yeah", "yep", "yup", "sure", "ok", "okay", "confirm", "confirmed",
        "correct", "absolutely", "definitely", "proceed", "perfect", "alright", "fine",
    }
) | {"go", "book", "pay", "checkout"}  # fmt: skip
NO = frozenset(
    {
        "no", "n", "nope", "nah", "cancel", "stop", "don't", "dont", "not", "never", "wait",
        "hold", "on", "please", "thanks", "thank", "you", "it", "that", "abort", "forget",
        "changed", "my", "mind", "i've", "ive", "yet", "book", "now", "later", "do", "want",
        "i", "to",
    }
)  # fmt: skip
_DENY = frozenset(
    {"no", "n", "nope", "nah", "cancel", "stop", "don't", "dont", "not", "never", "abort"}
) | {"forget", "wait"}  # fmt: skip
MAX_WORDS = 8


def _words(text: str) -> list[str] | None:
    lowered = text.strip().lower().replace("\u2019", "'")
    if "?" in lowered or len(lowered) > 80:
        return None
    words = _WORD.findall(lowered)
    return words if 0 < len(words) <= MAX_WORDS else None


def is_yes(text: str) -> bool:
    """An explicit yes: only agreeing words, at least one of them a real assent, no negation."""
    words = _words(text)
    if words is None or any(w in _DENY for w in words):
        return False
    return all(w in YES for w in words) and any(w in _ASSENT for w in words)


def is_no(text: str) -> bool:
    """An explicit no: only refusing words, at least one of them a real refusal."""
    words = _words(text)
    if words is None:
        return False
    return all(w in NO for w in words) and any(w in _DENY for w in words)


__all__ = ["is_no", "is_yes"]
