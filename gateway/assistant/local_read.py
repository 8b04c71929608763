"""What the local assistant reads in a customer's message, beyond what the search parser takes:
the intent words, a pick among listed shows ("the second", "the 7pm one"), seat labels, a bare
number, booking ids, and the short texts it answers with (money, show times).

Pure: no I/O, no clock. ``intent("cancel my booking")`` is ``"cancel"``;
``ordinal("the second one")`` is ``1`` (an index); ``seat_labels("seats c7 and C8")`` is
``("C7", "C8")``.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any

_WORDS = re.compile(r"[a-z0-9']+")

HANDOVER = re.compile(
    r"\b(human|agent|person|people|someone real|representative|operator|staff|supervisor|manager)\b"
)
DISPUTE = re.compile(
    r"\b(dispute|chargeback|complain|complaint|unfair|never (got|received)|didn'?t (get|receive)|"
    r"not (got|received)|wrong|where is my|still waiting|owe me|scam|stole)\b"
)
HELP = re.compile(r"^(help|\?|what can you do|how does (this|it) work|menu|options)\b")
GREETING = re.compile(r"^(hi|hello|hey|good (morning|afternoon|evening)|hiya|yo)\b[ !.]*$")
THANKS = re.compile(r"^(thanks|thank you|cheers|great|ok thanks|perfect)\b[ !.]*$")
STATUS = re.compile(
    r"\b(my bookings?|my tickets?|booking status|status|my orders?|what did i book)\b"
)
CANCEL = re.compile(r"\b(cancel|refund me|give back|return (my )?tickets?)\b")
RELEASE = re.compile(r"\b(release|let go|drop|don'?t want (them|the seats))\b")
CHECKOUT = re.compile(r"\b(check ?out|pay|payment|book (it|them|those)|buy (it|them|those))\b")
BEST = re.compile(r"\b(best( available)?|any seats?|you (pick|choose)|good seats?)\b")
HOLD = re.compile(r"\b(hold|seats?|tickets?|book|reserve|for \d+|for (one|two|three|four|five))\b")
SEARCH = re.compile(
    r"\b(movies?|films?|shows?|showing|playing|on at|what'?s on|tonight|tomorrow|today|"
    r"weekend|near me|cinema|theaters?|theatres?|find|looking for|watch|showtimes?)\b"
)
BOOKING_ID = re.compile(r"\b([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b")
SHOW_ID = re.compile(r"\(show (\d{1,18})\)")
SEAT = re.compile(r"(?<![a-z0-9])([a-z]{1,2})-?(\d{1,3})(?![a-z0-9])", re.IGNORECASE)
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "a pair": 2, "a couple": 2, "couple": 2, "pair": 2, "single": 1,
}  # fmt: skip
ORDINALS = {
    "first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3,
    "fifth": 4, "5th": 4, "sixth": 5, "6th": 5, "last": -1,
}  # fmt: skip
# Words that look like a seat label but are not one ("at 7", "a 2", "to 9", "pm 8").
_NOT_SEATS = {"at", "a", "to", "pm", "am", "in", "on", "no", "by", "of", "or", "is", "it", "x"}


def norm(text: str) -> str:
    """Lower case, one space between words, without the punctuation at the ends."""
    return " ".join(text.lower().split()).strip(" .!?,;")


def intent(text: str) -> str | None:
    """The first intent the words name, in priority order, or None.

    >>> intent("I want to talk to a human")
    'handover'
    """
    t = norm(text)
    if HANDOVER.search(t):
        return "handover"
    if "refund" in t and DISPUTE.search(t):
        return "dispute"
    for name, pattern in (
        ("help", HELP), ("greeting", GREETING), ("thanks", THANKS), ("cancel", CANCEL),
        ("status", STATUS), ("release", RELEASE), ("checkout", CHECKOUT),
    ):  # fmt: skip
        if pattern.search(t):
            return name
    return None


def ordinal(text: str) -> int | None:
    """An index into a listed choice: "the second", "number 3", "#2", "option 1"."""
    t = norm(text)
    for word, index in ORDINALS.items():
        if re.search(rf"\b{word}\b", t):
            return index
    m = re.search(r"(?:number|no\.?|option|#)\s*(\d{1,2})\b", t) or re.fullmatch(r"(\d{1,2})", t)
    return int(m.group(1)) - 1 if m else None


def seat_labels(text: str) -> tuple[str, ...]:
    """Seat labels the customer named ("C7 C8", "seats c7, c8"), upper case, in order."""
    found: list[str] = []
    for m in SEAT.finditer(text):
        row, number = m.group(1), m.group(2)
        if row.lower() in _NOT_SEATS or (len(row) == 2 and not row.isupper()):
            continue
        label = f"{row.upper()}{int(number)}"
        if label not in found:
            found.append(label)
    return tuple(found)


def bare_count(text: str) -> int | None:
    """A number of seats given on its own ("2", "two", "two please", "a pair")."""
    t = norm(text)
    m = re.fullmatch(r"(?:just )?(\d{1,2})(?: (?:seats?|tickets?|please|people))*", t)
    if m:
        return int(m.group(1))
    for word, n in NUMBER_WORDS.items():
        if re.fullmatch(rf"(?:just )?{word}(?: (?:seats?|tickets?|please|people|of us))*", t):
            return n
    return None


def count_in(text: str) -> int | None:
    """A seat count with a word between ("3 premium seats", "two good tickets")."""
    words = "|".join(w for w in NUMBER_WORDS if " " not in w)
    m = re.search(rf"\b(\d{{1,2}}|{words})(?: [a-z]+)? (?:seats?|tickets?)\b", norm(text))
    if m is None:
        return None
    word = m.group(1)
    return int(word) if word.isdigit() else NUMBER_WORDS[word]


def booking_id(text: str) -> str | None:
    m = BOOKING_ID.search(text.lower())
    return m.group(1) if m else None


def as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def local_time(value: Any) -> time | None:
    """A show's start in its own zone (its timestamp carries the theater's offset)."""
    moment = as_datetime(value)
    return moment.timetz().replace(tzinfo=None) if moment else None


def when(value: Any) -> str:
    """ "Sat 12 Dec 19:30" for a show's start, in its own zone."""
    moment = as_datetime(value)
    return moment.strftime("%a %d %b %H:%M") if moment else "?"


def money(cents: Any, currency: Any) -> str:
    if not isinstance(cents, int):
        return ""
    code = str(currency or "").upper()
    return f"{cents / 100:.2f} {code}".strip()


def seats_text(seats: Any) -> str:
    return ", ".join(str(s) for s in seats or ())
