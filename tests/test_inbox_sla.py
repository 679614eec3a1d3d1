"""Business hours and SLA arithmetic of the inbox (parvis.workflows.inbox), on hand-computed cases.

Every expected value below was worked out by hand from a calendar (weekdays noted in comments);
naive datetimes are UTC, as in the store.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from parvis.store import open_store
from parvis.workflows.inbox import BusinessHours, InboxError, configure, load_config, parse_days

OFFICE = BusinessHours()  # UTC, Monday to Friday, 09:00-17:00, 4 business hours
PARIS = BusinessHours(timezone="Europe/Paris")


def test_defaults_are_office_hours() -> None:
    assert OFFICE.to_json() == {
        "timezone": "UTC",
        "days": "mon,tue,wed,thu,fri",
        "hours": "09:00-17:00",
        "target_hours": 4.0,
        "holidays": [],
    }
    assert BusinessHours.from_json(OFFICE.to_json()) == OFFICE


@pytest.mark.parametrize(
    ("asked", "due"),
    [
        # Friday 15:00: two hours left on Friday, two more on Monday from 09:00.
        (datetime(2026, 11, 20, 15, 0), datetime(2026, 11, 23, 11, 0)),
        # Saturday: the clock starts on Monday 09:00.
        (datetime(2026, 11, 21, 10, 0), datetime(2026, 11, 23, 13, 0)),
        # Monday 07:00, before opening: Monday 13:00.
        (datetime(2026, 11, 23, 7, 0), datetime(2026, 11, 23, 13, 0)),
        # Monday 18:00, after closing: Tuesday 13:00.
        (datetime(2026, 11, 23, 18, 0), datetime(2026, 11, 24, 13, 0)),
        # Monday 10:30, inside hours: 14:30 the same day.
        (datetime(2026, 11, 23, 10, 30), datetime(2026, 11, 23, 14, 30)),
        # Friday 16:59:30: 30 seconds on Friday, 3 h 59 min 30 s on Monday.
        (datetime(2026, 11, 20, 16, 59, 30), datetime(2026, 11, 23, 12, 59, 30)),
    ],
)
def test_due_time_in_utc_office_hours(asked: datetime, due: datetime) -> None:
    assert OFFICE.due(asked) == due


def test_elapsed_business_time_skips_nights_and_weekends() -> None:
    # Friday 16:00 → Monday 10:00: one hour on Friday, one on Monday.
    assert OFFICE.seconds_between(datetime(2026, 11, 20, 16), datetime(2026, 11, 23, 10)) == 7200
    # Saturday to Sunday: nothing.
    assert OFFICE.seconds_between(datetime(2026, 11, 21, 8), datetime(2026, 11, 22, 20)) == 0
    # Backwards: nothing.
    assert OFFICE.seconds_between(datetime(2026, 11, 23, 12), datetime(2026, 11, 23, 11)) == 0
    # Monday 08:00 → Monday 20:00: the whole business day.
    assert OFFICE.seconds_between(datetime(2026, 11, 23, 8), datetime(2026, 11, 23, 20)) == 8 * 3600


def test_time_zone_winter_and_summer() -> None:
    # Paris is UTC+1 in November: 09:00-17:00 there is 08:00-16:00 UTC.  Asked at 07:30 UTC (08:30 Paris):
    # the clock starts at 08:00 UTC, due 12:00 UTC.
    assert PARIS.due(datetime(2026, 11, 23, 7, 30)) == datetime(2026, 11, 23, 12, 0)
    # In July (UTC+2) business hours are 07:00-15:00 UTC: asked at 06:00 UTC, due 11:00 UTC.
    assert PARIS.due(datetime(2026, 7, 6, 6, 0)) == datetime(2026, 7, 6, 11, 0)
    # Friday 15:30 UTC in November is 16:30 Paris: 30 minutes on Friday, 3.5 h on Monday from 08:00 UTC.
    assert PARIS.due(datetime(2026, 11, 20, 15, 30)) == datetime(2026, 11, 23, 11, 30)
    # Monday 23:30 UTC is already Tuesday 00:30 in Paris: the due time is Tuesday 12:00 UTC.
    assert PARIS.due(datetime(2026, 11, 23, 23, 30)) == datetime(2026, 11, 24, 12, 0)


def test_daylight_saving_day_is_23_hours_long() -> None:
    every_hour = BusinessHours(timezone="Europe/Paris", days=parse_days("mon-sun"), start=0, end=24 * 60)
    # Sunday 29 March 2026: Paris goes from UTC+1 to UTC+2 at 02:00; that local day lasts 23 hours.
    sunday_start = datetime(2026, 3, 28, 23, 0)  # 00:00 Paris (UTC+1)
    monday_start = datetime(2026, 3, 29, 22, 0)  # 00:00 Paris (UTC+2)
    assert every_hour.seconds_between(sunday_start, monday_start) == 23 * 3600
    assert every_hour.window(date(2026, 3, 29)) == (sunday_start, monday_start)


def test_holidays_are_days_off() -> None:
    christmas = BusinessHours(holidays=(date(2026, 12, 25),))
    # Thursday 24 December 16:00: one hour on Thursday, Friday 25 off, three hours on Monday 28.
    assert christmas.due(datetime(2026, 12, 24, 16, 0)) == datetime(2026, 12, 28, 12, 0)
    assert OFFICE.due(datetime(2026, 12, 24, 16, 0)) == datetime(2026, 12, 25, 12, 0)


def test_long_spans_count_whole_weeks() -> None:
    # Monday 5 January to Monday 16 March 2026, 09:00 UTC: ten weeks of five 8-hour days.
    start, end = datetime(2026, 1, 5, 9), datetime(2026, 3, 16, 9)
    assert OFFICE.seconds_between(start, end) == 10 * 5 * 8 * 3600
    # The same with Tuesday 10 February off: one business day less.
    assert BusinessHours(holidays=(date(2026, 2, 10),)).seconds_between(start, end) == (10 * 5 - 1) * 8 * 3600
    # A year in Paris across both DST changes (at night, outside business hours): the shortcut agrees
    # with counting every day.
    long_start, long_end = datetime(2025, 11, 3, 10, 17), datetime(2026, 11, 18, 14, 2)
    days = (long_end - long_start).days + 2
    brute = PARIS._exact((PARIS.local_date(long_start) + timedelta(days=n) for n in range(days)), long_start, long_end)
    assert PARIS.seconds_between(long_start, long_end) == brute


def test_parsing_and_validation() -> None:
    assert parse_days("mon-fri") == (0, 1, 2, 3, 4)
    assert parse_days("sun-tue") == (0, 1, 6)
    assert parse_days("Mon, WED,fri") == (0, 2, 4)
    for bad in ("", "funday", "mon-xyz"):
        with pytest.raises(InboxError):
            parse_days(bad)
    with pytest.raises(InboxError):
        BusinessHours(timezone="Mars/Olympus_Mons")
    with pytest.raises(InboxError):
        BusinessHours(start=17 * 60, end=9 * 60)
    with pytest.raises(InboxError):
        BusinessHours(target_hours=0)
    with pytest.raises(InboxError):
        BusinessHours.from_json({"hours": "9-17"})


def test_settings_are_stored_in_the_store(tmp_path: object) -> None:
    store = open_store(f"sqlite:///{tmp_path}/inbox.db")
    try:
        assert load_config(store) == OFFICE
        saved = configure(store, by="ada", timezone="Europe/Paris", days="sun-thu", hours="08:30-16:30", target_hours=2)
        assert saved == BusinessHours("Europe/Paris", (0, 1, 2, 3, 6), 8 * 60 + 30, 16 * 60 + 30, 2.0)
        assert load_config(store) == saved
        with pytest.raises(InboxError):
            configure(store, by="ada", hours="16:00-08:00")
        assert load_config(store) == saved  # a refused change saves nothing
        assert configure(store, by="ada", holidays=["2026-12-25"]).holidays == (date(2026, 12, 25),)
    finally:
        store.close()
