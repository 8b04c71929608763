"""The query parser: pure, so every case is a plain call with a fixed clock and catalog."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from gateway.search.parse import ParseContext, ParsedQuery, Vocabulary, parse
from gateway.search.tfidf import TfIdf

CHICAGO = ZoneInfo("America/Chicago")
VOCAB = Vocabulary(
    genres=("Action", "Animation", "Comedy", "Family", "Horror", "Romance", "Science Fiction"),
    movies={
        1: "Frozen Hearts",
        2: "Frozen Hearts 2",
        3: "The Last Lighthouse",
        4: "Escape from Lisbon",
    },
    cities={1: "Chicago", 2: "New York"},
    theaters={7: ("Bijou Riverside", 1)},
    languages=("English", "Spanish"),
    seat_categories=("standard", "premium", "recliner", "wheelchair"),
)  # fmt: skip
# Thursday 2026-12-03, 14:30 in Chicago.
NOW = datetime(2026, 12, 3, 20, 30, tzinfo=UTC)
CTX = ParseContext(NOW, "America/Chicago", VOCAB, location=(41.88, -87.63))


def p(text: str, ctx: ParseContext = CTX) -> ParsedQuery:
    return parse(text, ctx)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=CHICAGO)


@pytest.mark.parametrize(
    ("text", "genres"),
    [
        ("scary movies", ("Horror",)),
        ("cartoons", ("Animation",)),
        ("animated", ("Animation",)),
        ("sci-fi", ("Science Fiction",)),
        ("rom-com", ("Romance", "Comedy")),
        ("action comedy", ("Comedy", "Action")),
        ("something good", ()),
    ],
)
def test_genres_and_their_synonyms(text: str, genres: tuple[str, ...]) -> None:
    assert p(text).genres == genres


def test_a_genre_the_catalog_lacks_is_read_and_said() -> None:
    q = p("thrillers")
    assert q.genres == ("Thriller",)
    assert q.understood[0]["note"] == "no movie in the catalog has this genre"


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("frozen hearts", {1}),
        ("frozn harts", {1}),
        ("the last lighthose", {3}),
        ("escape from lisbn tonight", {4}),
        ("frozen", set()),  # too little of a title to be sure
        ("a haunted lighthouse", set()),
    ],
)
def test_titles_with_typos_only_when_confident(text: str, ids: set[int]) -> None:
    assert {movie_id for movie_id, _ in p(text).movies} == ids


def test_a_sequel_comes_along_with_its_title() -> None:
    assert {m for m, _ in p("frozen hearts 2").movies} == {2}
    found = dict(p("frozen hearts").movies)
    assert found[1] == 1.0


@pytest.mark.parametrize(
    ("text", "after", "before"),
    [
        ("tonight", local(3, 17), local(4, 2)),
        ("today", local(3, 14, 30), local(4, 0)),
        ("tomorrow afternoon", local(4, 12), local(4, 17)),
        ("saturday morning", local(5, 6), local(5, 12)),
        ("this weekend", local(5, 0), local(7, 0)),
        ("after 8", local(3, 20), local(4, 0)),
        ("before 6pm", local(3, 14, 30), local(3, 18)),
        ("tomorrow after 9:30pm", local(4, 21, 30), local(5, 0)),
        ("thursday morning", local(10, 6), local(10, 12)),  # this morning is over: next week
        ("friday evening", local(4, 17), local(4, 22)),
    ],
)
def test_time_windows_in_the_city_zone(text: str, after: datetime, before: datetime) -> None:
    q = p(text)
    assert (q.starts_after, q.starts_before) == (after, before)
    assert q.free_text == ""


def test_a_window_never_starts_in_the_past() -> None:
    q = p(
        "tonight", ParseContext(datetime(2026, 12, 4, 2, 0, tzinfo=UTC), "America/Chicago", VOCAB)
    )
    assert q.starts_after == local(3, 20)


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("the 7pm show", time(19)),
        ("at 7:30", time(19, 30)),
        ("at 10am", time(10)),
        ("9pm", time(21)),
    ],
)
def test_a_time_of_day(text: str, at: time) -> None:
    assert p(text).at_time == at


@pytest.mark.parametrize(
    ("text", "count"),
    [("two seats", 2), ("for 3", 3), ("4 tickets", 4), ("for two at 7pm", 2), ("for 7pm", None)],
)
def test_seat_counts(text: str, count: int | None) -> None:
    assert p(text).seat_count == count


@pytest.mark.parametrize(
    ("text", "cents"),
    [("under $15", 1500), ("cheaper than 12", 1200), ("less than 9.50 dollars", 950), ("15", None)],
)
def test_price_ceiling(text: str, cents: int | None) -> None:
    assert p(text).max_price_cents == cents


def test_places_language_category_family() -> None:
    q = p("spanish cartoons for kids with recliners at Bijou Riverside in New York")
    assert q.language == "Spanish"
    assert q.family is True
    assert q.seat_category == "recliner"
    assert q.theater_id == 7
    assert q.city_id == 2
    assert q.genres == ("Animation",)
    assert q.free_text == ""


def test_near_me_uses_the_location_given() -> None:
    q = p("comedy near me within 5 km")
    assert q.near == (41.88, -87.63)
    assert q.radius_km == 5.0
    lost = p("comedy near me", ParseContext(NOW, "America/Chicago", VOCAB))
    assert lost.near is None
    assert lost.understood[0]["note"] == "no location given"


def test_a_format_the_catalog_does_not_carry_is_said_not_applied() -> None:
    q = p("sci-fi in imax")
    assert q.format is None
    assert any(u["kind"] == "format" and "not applied" in u["note"] for u in q.understood)


def test_what_nothing_took_is_free_text() -> None:
    q = p("movies about a haunted lighthouse tonight")
    assert q.free_text == "haunted lighthouse"
    assert q.understood[-1] == {
        "kind": "free_text",
        "text": "haunted lighthouse",
        "value": "haunted lighthouse",
    }
    assert p("a nurse on the night shift").starts_after is None


def test_tfidf_ranks_the_matching_text_first() -> None:
    index = TfIdf({1: "A keeper of a haunted lighthouse", 2: "A heist in Paris", 3: "Lighthouse"})
    scores = index.scores("haunting lighthouses", [1, 2, 3])
    assert scores[0] > scores[2] > 0 and scores[1] == 0  # both words beat one
