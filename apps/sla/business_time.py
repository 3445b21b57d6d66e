"""Business time: adding N seconds of opening hours to an instant, in a team's time zone.

Pure functions, no database. A business second is a real elapsed second inside an opening
interval, so the day the clocks go forward an 09:00-18:00 day still has 9 hours, and an
interval spanning the change is as long as the wall clock says it is, less or more the hour.
Intervals are laid out on local dates and measured in UTC: two aware datetimes in the same
zone subtract as wall-clock times in Python, which is wrong across a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# A year of holidays and closed days in a row means a misconfiguration: count around the clock
# rather than loop forever.
_MAX_DAYS = 3 * 366
_MIDNIGHT = time(0)


@dataclass(frozen=True)
class Calendar:
    """When a team works. `hours`: weekday (0 = Monday) -> (opens, closes) local times; a
    `closes` of 00:00 means the end of the day. No hours at all: open around the clock."""

    time_zone: str = "UTC"
    hours: Mapping[int, Sequence[tuple[time, time]]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()

    @property
    def always_open(self) -> bool:
        return not any(self.hours.values())


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    # fold=0: a wall time that happens twice counts from its first occurrence, one that never
    # happens (skipped forward) maps past the gap.
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _intervals(day: date, calendar: Calendar, zone: ZoneInfo) -> Iterable[tuple[datetime, datetime]]:
    if day in calendar.holidays:
        return
    for opens, closes in sorted(calendar.hours.get(day.weekday(), ())):
        end_day = day + timedelta(days=1) if closes == _MIDNIGHT else day
        yield _local(day, opens, zone), _local(end_day, closes, zone)


def business_add(*, start: datetime, seconds: float, calendar: Calendar) -> datetime:
    """The instant at which `seconds` of business time have passed since `start` (aware).
    Time outside opening hours, on closed weekdays and on holidays does not count."""
    if start.tzinfo is None:
        raise ValueError("start must be an aware datetime")
    start = start.astimezone(UTC)
    if calendar.always_open or seconds <= 0:
        return start + timedelta(seconds=max(seconds, 0))
    zone = ZoneInfo(calendar.time_zone)
    remaining = timedelta(seconds=seconds)
    # From the day before: an interval of the previous local day may still be open at `start`.
    day = start.astimezone(zone).date() - timedelta(days=1)
    for _ in range(_MAX_DAYS):
        for opens, closes in _intervals(day, calendar, zone):
            begin = max(opens, start)
            if begin >= closes:
                continue
            if closes - begin >= remaining:
                return begin + remaining
            remaining -= closes - begin
        day += timedelta(days=1)
    return start + timedelta(seconds=seconds)


def business_seconds_between(*, start: datetime, end: datetime, calendar: Calendar) -> float:
    """Business seconds from `start` to `end` (0 if end is not later): what a report measures."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return 0.0
    if calendar.always_open:
        return (end - start).total_seconds()
    zone = ZoneInfo(calendar.time_zone)
    total = timedelta()
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    while day <= last:
        for opens, closes in _intervals(day, calendar, zone):
            overlap = min(closes, end) - max(opens, start)
            if overlap > timedelta():
                total += overlap
        day += timedelta(days=1)
    return total.total_seconds()
