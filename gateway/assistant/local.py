"""The local booking assistant: deterministic, no model, built on the search parser.

It answers when no Anthropic key is set or the API fails, and takes the common flows end to end:
find a show, pick one, hold seats, go to checkout after an explicit yes, booking status, cancel
(with the refund the policy gives), help; anything else twice running, a request for a person or
a refund dispute is handed over, plainly::

    local = LocalAssistant()
    reply = await local.respond(conversation, "action movies tonight", tools)
    reply.cards  # [{"type": "shows", "shows": [...]}]

Its dialogue lives in ``conversation.slots``: ``shows`` (the candidates it listed), ``show``
(the chosen one), ``hold``, ``bookings`` (listed for a cancellation), ``cancel`` (the booking
awaiting a yes), ``asked`` (what it asked: ``"count"``, ``"booking"``) and ``misses``.
Checkout happens only once the engine has recorded the customer's yes to the hold's summary
(``conversation.pending["confirmed"]``); the tools refuse it otherwise too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway import keys
from gateway.assistant import local_read as read
from gateway.assistant.base import Reply
from gateway.assistant.confirm import is_no, is_yes
from gateway.search.parse import ParseContext, ParsedQuery, Vocabulary, parse
from payments.policy import DEFAULT_POLICY, RefundPolicy

if TYPE_CHECKING:
    from gateway.assistant.state import Conversation
    from gateway.assistant.tools import Tools

MAX_LISTED = 5  # shows offered at once
MISSES_BEFORE_HANDOVER = 2
HELP_TEXT = (
    'I can find a show ("action movies tonight"), hold seats ("two seats for the 7pm one", '
    '"seats C7 C8"), take you to checkout, tell you your bookings\' status and cancel one. '
    "For anything else, ask for a person."
)
HANDOVER_TEXT = "I can't help with that myself; a person from our team will take over here."
_SEARCH_KINDS = {"genre", "movie", "time", "city", "theater", "near", "price", "language",
                 "format", "family", "date", "window"}  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC)


class LocalAssistant:
    """The ``Assistant`` without a model; see the module docstring.

    ``vocabulary`` gives the catalog words for the parser (default: the search service's, if
    the tools' application has one); ``time_zone`` is the zone times are read in when the
    service names none; ``clock`` and ``policy`` (the refund policy) are for tests.
    """

    def __init__(
        self,
        *,
        vocabulary: Callable[[], Vocabulary | None] | None = None,
        time_zone: str = "UTC",
        clock: Callable[[], datetime] = _now,
        policy: RefundPolicy | None = None,
    ) -> None:
        self._vocabulary = vocabulary
        self._time_zone = time_zone
        self._clock = clock
        self._policy = policy or RefundPolicy.parse(DEFAULT_POLICY)

    async def respond(self, conversation: Conversation, text: str, tools: Tools) -> Reply:
        query = await self.read(text, tools)
        return await _Turn(self, conversation, tools, text, query).run()

    async def read(self, text: str, tools: Tools) -> ParsedQuery:
        """The parser's reading of ``text``: through the search service when the application
        has one (its catalog, the zone of the city named), else on this assistant's words."""
        service = _search_service(tools)
        if self._vocabulary is None and service is not None:
            parsed: ParsedQuery = await service.parse(text, now=self._clock())
            return parsed
        return parse(text, self.context(tools))

    def context(self, tools: Tools) -> ParseContext:
        vocab = self._vocabulary() if self._vocabulary else None
        return ParseContext(self._clock(), self._time_zone, vocab or Vocabulary())

    def refund_cents(self, booking: dict[str, Any]) -> int | None:
        paid = booking.get("price_cents", booking.get("total_cents"))
        starts = read.as_datetime(booking.get("starts_at"))
        if not isinstance(paid, int) or starts is None:
            return None
        return self._policy.refund_cents(
            paid, seconds_before=(starts - self._clock()).total_seconds()
        )


def _search_service(tools: Any) -> Any:
    """The application's ``SearchService``, if the tools have an application with one."""
    app = getattr(tools, "app", None)
    return None if app is None else app.get(keys.SEARCH)


class _Turn:
    """One message of the customer, read and answered."""

    def __init__(
        self, owner: LocalAssistant, conv: Conversation, tools: Tools, text: str, query: ParsedQuery
    ) -> None:
        self.owner, self.conv, self.tools, self.text = owner, conv, tools, text.strip()
        self.slots = conv.slots
        self.query = query

    async def run(self) -> Reply:
        from gateway.assistant import local_flows as flows

        return await flows.answer(self)

    # ---- helpers the flows share

    def miss(self, text: str) -> Reply:
        """Not understood: say so, and hand over the second time running."""
        misses = int(self.slots.get("misses", 0)) + 1
        self.slots["misses"] = misses
        if misses >= MISSES_BEFORE_HANDOVER:
            return self.handover()
        return Reply(text, failed=True)

    def handover(self, text: str = HANDOVER_TEXT) -> Reply:
        self.slots["misses"] = 0
        self.slots.pop("asked", None)
        return Reply(text, escalated=True)

    def understood(self) -> None:
        self.slots["misses"] = 0

    def searchy(self) -> bool:
        q = self.query
        kinds = {str(u.get("kind")) for u in q.understood}
        return bool(
            q.genres or q.movies or q.starts_after or q.starts_before or q.city_id
            or q.theater_id or q.near or q.max_price_cents or q.language or q.format
            or q.family or kinds & _SEARCH_KINDS or read.SEARCH.search(read.norm(self.text))
        )  # fmt: skip


def is_confirmation(text: str) -> bool | None:
    """True for a yes, False for a no, None for anything else."""
    if is_yes(text):
        return True
    if is_no(text):
        return False
    return None


__all__ = ["LocalAssistant"]
