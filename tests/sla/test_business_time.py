"""Business time arithmetic: known answers across weekends, DST, holidays and far time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from apps.sla.business_time import Calendar, business_add, business_seconds_between

NINE_TO_SIX = (time(9), time(18))
WEEKDAYS = {d: [NINE_TO_SIX] for d in range(5)}
HOUR = 3600


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_no_business_hours_counts_around_the_clock():
    start = utc(2025, 1, 11, 23, 30)  # a Saturday night
    assert business_add(start=start, seconds=90, calendar=Calendar()) == utc(2025, 1, 11, 23, 31, 30)


def test_inside_opening_hours_time_runs_as_on_the_wall_clock():
    calendar = Calendar(hours=WEEKDAYS)
    due = business_add(start=utc(2025, 1, 8, 10, 0), seconds=300, calendar=calendar)
    assert due == utc(2025, 1, 8, 10, 5)


def test_the_weekend_does_not_count():
    calendar = Calendar(hours=WEEKDAYS)
    friday_5pm = utc(2025, 1, 10, 17, 0)
    # One hour on Friday, the second from Monday 09:00.
    assert business_add(start=friday_5pm, seconds=2 * HOUR, calendar=calendar) == utc(2025, 1, 13, 10, 0)


def test_before_opening_the_clock_waits_for_nine():
    calendar = Calendar(hours=WEEKDAYS)
    assert business_add(start=utc(2025, 1, 8, 3, 0), seconds=60, calendar=calendar) == utc(2025, 1, 8, 9, 1)


def test_a_holiday_does_not_count():
    calendar = Calendar(hours=WEEKDAYS, holidays=frozenset({date(2025, 1, 13)}))
    friday_5pm = utc(2025, 1, 10, 17, 0)
    assert business_add(start=friday_5pm, seconds=2 * HOUR, calendar=calendar) == utc(2025, 1, 14, 10, 0)


def test_monday_after_the_spring_change_in_berlin_opens_at_nine_summer_time():
    # 30 March 2025, the last Sunday of March: Berlin moves from UTC+1 to UTC+2.
    calendar = Calendar(time_zone="Europe/Berlin", hours=WEEKDAYS)
    friday_5pm_cet = utc(2025, 3, 28, 16, 0)
    # One hour on Friday (until 18:00 CET = 17:00 UTC); Monday 09:00 CEST is 07:00 UTC.
    due = business_add(start=friday_5pm_cet, seconds=2 * HOUR, calendar=calendar)
    assert due == utc(2025, 3, 31, 8, 0)


def test_a_day_open_around_the_clock_has_23_hours_when_the_clocks_go_forward():
    every_day = {d: [(time(0), time(0))] for d in range(7)}  # 00:00 closing: the end of the day
    calendar = Calendar(time_zone="Europe/Berlin", hours=every_day)
    saturday_noon = utc(2025, 3, 29, 11, 0)  # 12:00 CET
    # 24 real hours later it is 13:00 CEST on the wall clock, not 12:00.
    assert business_add(start=saturday_noon, seconds=24 * HOUR, calendar=calendar) == utc(2025, 3, 30, 11, 0)
    sunday = business_seconds_between(
        start=utc(2025, 3, 29, 23, 0), end=utc(2025, 3, 30, 22, 0), calendar=calendar
    )
    assert sunday == 23 * HOUR


def test_hours_that_span_the_skipped_hour_are_an_hour_shorter():
    sunday_night = {6: [(time(1), time(4))]}  # 01:00-04:00 local; 02:00-03:00 never happens on 30 March
    calendar = Calendar(time_zone="Europe/Berlin", hours=sunday_night)
    assert business_seconds_between(
        start=utc(2025, 3, 29, 0, 0), end=utc(2025, 3, 31, 0, 0), calendar=calendar
    ) == 2 * HOUR
    # Half an hour after opening (01:30 CET = 00:30 UTC) plus 1 h 30 min: 04:00 CEST = 02:00 UTC.
    assert business_add(start=utc(2025, 3, 30, 0, 30), seconds=1.5 * HOUR, calendar=calendar) == utc(
        2025, 3, 30, 2, 0
    )


def test_autumn_change_gives_the_day_an_extra_hour():
    every_day = {d: [(time(0), time(0))] for d in range(7)}
    calendar = Calendar(time_zone="Europe/Berlin", hours=every_day)
    # 26 October 2025: back from UTC+2 to UTC+1; the local day lasts 25 hours.
    assert business_seconds_between(
        start=utc(2025, 10, 25, 22, 0), end=utc(2025, 10, 26, 23, 0), calendar=calendar
    ) == 25 * HOUR


def test_tokyo_friday_evening_waits_for_monday_morning_in_tokyo():
    calendar = Calendar(time_zone="Asia/Tokyo", hours=WEEKDAYS)
    friday_7pm_jst = utc(2025, 1, 10, 10, 0)
    # Monday 13 January 10:00 JST is 01:00 UTC.
    assert business_add(start=friday_7pm_jst, seconds=HOUR, calendar=calendar) == utc(2025, 1, 13, 1, 0)


def test_kiritimati_is_already_monday_when_utc_is_still_sunday():
    calendar = Calendar(time_zone="Pacific/Kiritimati", hours=WEEKDAYS)  # UTC+14
    sunday_8pm_utc = utc(2025, 1, 12, 20, 0)  # Monday 10:00 local: open
    assert business_add(start=sunday_8pm_utc, seconds=HOUR, calendar=calendar) == utc(2025, 1, 12, 21, 0)


def test_hours_closing_at_midnight_run_to_the_end_of_the_day():
    calendar = Calendar(hours={0: [(time(22), time(0))]})  # Monday 22:00 to midnight
    monday_1130pm = utc(2025, 1, 13, 23, 30)
    # 30 min on Monday night, the other 30 min the next Monday night.
    assert business_add(start=monday_1130pm, seconds=HOUR, calendar=calendar) == utc(2025, 1, 20, 22, 30)


def test_a_naive_start_is_refused():
    with pytest.raises(ValueError, match="aware"):
        business_add(start=datetime(2025, 1, 8, 10), seconds=60, calendar=Calendar())
