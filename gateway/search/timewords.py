"""Time phrases of a query, read in the theater's zone: a day ("today", "tonight", "tomorrow",
"saturday", "this weekend"), a part of it ("morning", "afternoon", "evening", "night"), a bound
("after 8", "before 6pm") and a time ("at 7pm", "the 7:30 show").

A day is [00:00, 24:00) local; "tonight" is [17:00, 02:00 next day); the weekend is Saturday
00:00 to Monday 00:00. Parts: morning 06–12, afternoon 12–17, evening 17–22, night 20–02.
A bare hour from 1 to 11 is read as pm (people go to the movies in the evening) unless it says
am or the part of day is the morning. The window never starts before ``now``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from gateway.search.parse import ParseContext, _Text

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PARTS = {
    "morning": (6, 12),
    "afternoon": (12, 17),
    "matinee": (10, 17),
    "evening": (17, 22),
    "night": (20, 26),
}
CLOCK = r"(\d{1,2})(?:[:.](\d{2}))? ?(am|pm|a\.m\.?|p\.m\.?)?"
_DAY = (
    r" (?:(?:for |on |this |next |coming )?(tonight|tomorrow night|tomorrow|today|"
    r"(?:this |next )?weekend|" + "|".join(WEEKDAYS) + r")s?)(?= )"
)
_PART = (
    r" (?:this |in the |on |during the )?(morning|afternoon|evening|night|matinee)s?"
    r"(?= )(?! ?shifts?)"  # "the night shift" is no time
)


def extract(t: _Text, ctx: ParseContext, out: dict[str, Any], seen: list[dict[str, Any]]) -> None:
    tz = ZoneInfo(ctx.time_zone)
    now = ctx.now.astimezone(tz)
    phrases: list[str] = []
    after = _clock(t, r" (?:after|later than|from|past|not before) " + CLOCK + r"(?= )", phrases)
    before = _clock(
        t, r" (?:before|earlier than|by|until|no later than) " + CLOCK + r"(?= )", phrases
    )
    at = _clock(t, r" (?:at |around )?" + CLOCK + r" (?:show|showing|screening)(?= )", phrases)
    if at is None:
        at = _clock(t, r" (?:at|around) " + CLOCK + r"(?= )", phrases)
    if at is None:
        at = _clock(t, r" (\d{1,2})(?::(\d{2}))? ?(am|pm)(?= )", phrases)
    day_m = t.find(_DAY)
    day = day_m.group(1) if day_m else None
    if day_m:
        phrases.append(t.take(day_m))
    part_m = t.find(_PART)
    part = part_m.group(1) if part_m else None
    if part_m:
        phrases.append(t.take(part_m))
    if not phrases:
        return
    start, end = _day_window(day, part, now, tz)
    morning = part == "morning"
    if after is not None:
        start = max(start, _at(start.date(), _hour(after, morning), tz, now, end))
    if before is not None:
        end = min(end, _at(start.date(), _hour(before, morning), tz, now, end))
    start = max(start, now)
    text = " ".join(phrases)
    if at is not None:
        at_time = _hour(at, morning)
        out["at_time"] = at_time
        seen.append({"kind": "at_time", "text": text, "value": at_time.isoformat("minutes")})
    if day is None and part is None and after is None and before is None:
        return
    out["starts_after"], out["starts_before"] = start, end
    value = {"after": start.isoformat(), "before": end.isoformat()}
    seen.append({"kind": "time", "text": text, "value": value})


def _clock(t: _Text, pattern: str, phrases: list[str]) -> tuple[int, int, str | None] | None:
    m = t.find(pattern)
    if m is None or int(m.group(1)) > 23 or int(m.group(2) or 0) > 59:
        return None
    phrases.append(t.take(m))
    suffix = (m.group(3) or "").replace(".", "") or None
    return int(m.group(1)), int(m.group(2) or 0), suffix


def _hour(clock: tuple[int, int, str | None], morning: bool) -> time:
    hour, minute, suffix = clock
    if suffix == "pm" and hour < 12:
        hour += 12
    elif suffix == "am" and hour == 12:
        hour = 0
    elif suffix is None and 1 <= hour <= 11 and not morning:
        hour += 12
    return time(hour, minute)


def _at(day: date, at: time, tz: ZoneInfo, now: datetime, end: datetime) -> datetime:
    moment = datetime.combine(day, at, tzinfo=tz)
    if moment < now - timedelta(hours=12) and moment + timedelta(days=1) <= end:
        moment += timedelta(days=1)
    return moment


def _day_window(
    day: str | None, part: str | None, now: datetime, tz: ZoneInfo
) -> tuple[datetime, datetime]:
    today, weekday = now.date(), now.weekday()
    first, days = today, 1
    if day is not None and day.startswith("tomorrow"):
        first = today + timedelta(days=1)
    elif day is not None and day.endswith("weekend"):
        first = today if weekday >= 5 else today + timedelta(days=5 - weekday)
        days = 7 - weekday if weekday >= 5 else 2
    elif day in WEEKDAYS:
        first = today + timedelta(days=(WEEKDAYS.index(day) - weekday) % 7)
    if day in ("tonight", "tomorrow night"):
        part = part or "night"
    lo, hi = (17, 26) if day == "tonight" else PARTS[part] if part else (0, 24)
    start = datetime.combine(first, time(0), tzinfo=tz) + timedelta(hours=lo)
    last = first + timedelta(days=days - 1)
    end = datetime.combine(last, time(0), tzinfo=tz) + timedelta(hours=hi)
    if end <= now and day is not None and (day in WEEKDAYS or day.endswith("weekend")):
        start, end = start + timedelta(days=7), end + timedelta(days=7)  # "saturday" is next
    return start, end
