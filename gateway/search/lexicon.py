"""Words the parser knows: genres and their synonyms, languages, formats, seat categories,
kids/family, numbers, and the filler words that are nobody's filter."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.search.parse import Vocabulary, _Text

NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a couple": 2, "a pair": 2,
}  # fmt: skip

# Phrase (a regex over lower-case words) -> genre, longest phrases first.
GENRE_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"science[ -]fiction|sci[ -]?fi|scifi", ("Science Fiction",)),
    (r"rom[ -]?coms?|romantic comed(?:y|ies)", ("Romance", "Comedy")),
    (r"love stor(?:y|ies)|romantic|romances?", ("Romance",)),
    (r"scary|horrors?|spooky|frightening|terrifying|slashers?", ("Horror",)),
    (r"funny|comed(?:y|ies)|hilarious|laughs?", ("Comedy",)),
    (r"action|explosions?|shoot[ -]?em[ -]?ups?", ("Action",)),
    (r"cartoons?|animated|animations?|anime", ("Animation",)),
    (r"thrillers?|suspense|suspenseful|edge of (?:my|your) seat", ("Thriller",)),
    (r"documentar(?:y|ies)|docs?|true stor(?:y|ies)", ("Documentary",)),
    (r"dramas?|dramatic|tear ?jerkers?", ("Drama",)),
    (r"musicals?", ("Musical",)),
    (r"myster(?:y|ies)|whodunn?its?|detective", ("Mystery",)),
    (r"crime|heists?|gangsters?", ("Crime",)),
    (r"fantasy|fantasies", ("Fantasy",)),
    (r"adventures?|adventurous", ("Adventure",)),
)

FAMILY = r"for (?:the )?(?:kids|children|little ones|family)|kid[ -]?friendly|family[ -]friendly|kids|children|family|child|toddlers?"  # noqa: E501
FAMILY_CERTIFICATES = ("G", "PG")

LANGUAGE_WORDS = {"mandarin": "Mandarin", "chinese": "Mandarin", "bollywood": "Hindi"}

FORMAT_WORDS: tuple[tuple[str, str], ...] = (
    (r"imax", "IMAX"),
    (r"3 ?d", "3D"),
    (r"4 ?dx", "4DX"),
    (r"dolby(?: cinema| atmos)?", "Dolby"),
    (r"70 ?mm", "70mm"),
)

CATEGORY_WORDS: tuple[tuple[str, str], ...] = (
    (r"recliners?|reclining(?: seats?)?", "recliner"),
    (r"premium(?: seats?)?|vip", "premium"),
    (r"wheelchair(?:[ -]accessible)?(?: seats?| spaces?)?|accessible(?: seats?)?", "wheelchair"),
    (r"companion(?: seats?)?", "companion"),
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _words(
    """
    a an the and or of to me my i we us our some any something anything find show shows
    showing showings movie movies film films flick flicks cinema cinemas theater theaters
    theatre theatres want wanna would like love see watch watching book get buy reserve
    please for in on at with about what whats what's is are there playing play plays tickets
    ticket seats seat can you could look looking search good great best new latest go going
    lets let's near around this that time times session sessions screening screenings - --
    """
)


def _bounded(pattern: str) -> str:
    return rf" (?:{pattern})(?= )"


def extract(t: _Text, vocab: Vocabulary, out: dict[str, Any], seen: list[dict[str, Any]]) -> None:
    _family(t, out, seen)  # "family" means kids' certificates before it means the genre
    _genres(t, vocab, out, seen)
    _language(t, vocab, out, seen)
    _format(t, vocab, out, seen)
    _category(t, vocab, out, seen)


def _genres(t: _Text, vocab: Vocabulary, out: dict[str, Any], seen: list[dict[str, Any]]) -> None:
    known = {g.lower(): g for g in vocab.genres}
    found: list[str] = []
    for pattern, genres in GENRE_WORDS:
        while (m := t.find(_bounded(pattern))) is not None:
            phrase = t.take(m)
            for genre in genres:
                name = known.get(genre.lower(), genre)
                if name not in found:
                    found.append(name)
                    entry = {"kind": "genre", "text": phrase, "value": name}
                    if known and genre.lower() not in known:
                        entry["note"] = "no movie in the catalog has this genre"
                    seen.append(entry)
    for lower, name in known.items():  # any other genre of the catalog, by its own name
        m = t.find(_bounded(re.escape(lower)))
        if m and name not in found:
            found.append(name)
            seen.append({"kind": "genre", "text": t.take(m), "value": name})
    if found:
        out["genres"] = tuple(found)


def _family(t: _Text, out: dict[str, Any], seen: list[dict[str, Any]]) -> None:
    m = t.find(_bounded(FAMILY))
    if m is None:
        return
    phrase = t.take(m)
    out["family"] = True
    seen.append({"kind": "family", "text": phrase, "value": list(FAMILY_CERTIFICATES)})


def _language(t: _Text, vocab: Vocabulary, out: dict[str, Any], seen: list[dict[str, Any]]) -> None:
    names = {lang.lower(): lang for lang in vocab.languages}
    names.update({k: v for k, v in LANGUAGE_WORDS.items() if not names or v.lower() in names})
    for word in sorted(names, key=len, reverse=True):
        m = t.find(rf" (?:in |spoken in )?{re.escape(word)}(?: language| speaking)?(?= )")
        if m:
            out["language"] = names[word]
            seen.append({"kind": "language", "text": t.take(m), "value": names[word]})
            return


def _format(t: _Text, vocab: Vocabulary, out: dict[str, Any], seen: list[dict[str, Any]]) -> None:
    carried = {f.lower(): f for f in vocab.formats}
    for pattern, name in FORMAT_WORDS:
        m = t.find(rf" (?:in )?(?:{pattern})(?= )")
        if m is None:
            continue
        phrase = t.take(m)
        if name.lower() in carried:
            out["format"] = carried[name.lower()]
            seen.append({"kind": "format", "text": phrase, "value": out["format"]})
        else:
            note = "no show in the catalog carries a format; not applied"
            seen.append({"kind": "format", "text": phrase, "value": name, "note": note})
        return


def _category(t: _Text, vocab: Vocabulary, out: dict[str, Any], seen: list[dict[str, Any]]) -> None:
    known = set(vocab.seat_categories)
    for pattern, name in CATEGORY_WORDS:
        m = t.find(_bounded(pattern))
        if m is None or (known and name not in known):
            continue
        out["seat_category"] = name
        seen.append({"kind": "seat_category", "text": t.take(m), "value": name})
        return
