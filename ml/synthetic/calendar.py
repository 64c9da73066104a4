"""Exchange and regional business calendars: which days trade, which days count for deadlines.

Two kinds of calendar, both as lists of holidays for ``numpy.busday_offset``/``is_busday``
(Saturday and Sunday are never business days):

* the **exchange** calendar (``exchange_holidays``): the days energy exchanges (ICE Endex,
  ICE Futures Europe, EEX) do not trade although they are weekdays: New Year's Day, Good Friday,
  Easter Monday, Christmas Day and Boxing Day (26 December). No substitute days: a fixed-date
  holiday on a weekend is simply a weekend. The trades and the price history live on
  ``trading_days`` = weekdays minus these days.
* **regional** calendars (``regional_holidays``), the business days of a region's regulator,
  used for reporting deadlines:

  - ``europe``, ``nordics``: TARGET2 closing days: 1 January, Good Friday, Easter Monday,
    1 May, 25 and 26 December; no substitute days.
  - ``uk``: England & Wales bank holidays: New Year's Day, Good Friday, Easter Monday, early
    May (first Monday of May), spring (last Monday of May), summer (last Monday of August),
    Christmas Day, Boxing Day. New Year's Day, Christmas Day and Boxing Day falling on a weekend
    are substituted by the next weekday that is not already a holiday (25 Dec on Saturday:
    Monday 27 and Tuesday 28; on Sunday: Boxing Day Monday 26, Christmas Tuesday 27). The
    one-off changes of 2011-2023 (royal wedding, jubilees, VE day, the Queen's funeral, the
    coronation, and the bank holidays moved for them) are in ``UK_SPECIAL_CHANGES``.
  - ``north_america``: US federal holidays (5 U.S.C. 6103): New Year's Day, Martin Luther King
    Jr. Day (third Monday of January, from 1986), Washington's Birthday (third Monday of
    February), Memorial Day (last Monday of May), Juneteenth (19 June, from 2021),
    Independence Day, Labor Day (first Monday of September), Columbus Day (second Monday of
    October), Veterans Day (11 November), Thanksgiving (fourth Thursday of November),
    Christmas Day. Observed days: a holiday on Saturday is observed the Friday before (New
    Year's Day on Saturday: Friday 31 December of the previous year), on Sunday the Monday
    after.
  - ``asia_pacific``: a Singapore-like set of the holidays computable without a lunar
    calendar: New Year's Day, Good Friday, Labour Day (1 May), National Day (9 August),
    Christmas Day; a holiday on Sunday is substituted by the Monday after (none for
    Saturday). Lunar New Year, Hari Raya, Vesak and Deepavali are not modelled.
  - ``latin_america``: a Brazil (B3)-like set: New Year's Day, Carnival Monday and Tuesday
    (48 and 47 days before Easter), Good Friday, Tiradentes (21 April), Labour Day, Corpus
    Christi (60 days after Easter), Independence Day (7 September), 12 October, 2 November,
    15 November, Christmas Day; no substitute days.

Easter Sunday comes from ``dateutil.easter`` (Gregorian; python-dateutil is a pandas
dependency), with the anonymous Gregorian (Meeus/Jones/Butcher) algorithm as a fallback.

Dates in and out: ``first``/``last`` accept datetime, date, numpy datetime64 or ISO strings;
results are ``datetime64[D]`` arrays. Holiday lists are built per year (cached), everything
else is vectorised numpy.
"""
import datetime as _dt
from functools import lru_cache
from typing import Dict, Iterable, List, Tuple, Union

import numpy as np

try:  # python-dateutil ships with pandas; the fallback keeps the module standalone.
    from dateutil.easter import EASTER_WESTERN as _EASTER_WESTERN
    from dateutil.easter import easter as _dateutil_easter
except ImportError:  # pragma: no cover - the venv has python-dateutil
    _dateutil_easter = None

DayLike = Union[_dt.datetime, _dt.date, np.datetime64, str]

EXCHANGE = "exchange"
REGION_CALENDARS: Tuple[str, ...] = (
    "europe", "nordics", "uk", "north_america", "asia_pacific", "latin_america")
CALENDARS: Tuple[str, ...] = (EXCHANGE,) + REGION_CALENDARS

# England & Wales one-off changes: (day, True = extra holiday / False = regular day cancelled).
UK_SPECIAL_CHANGES: Tuple[Tuple[str, bool], ...] = (
    ("2011-04-29", True),                                            # royal wedding
    ("2012-05-28", False), ("2012-06-04", True), ("2012-06-05", True),  # diamond jubilee
    ("2020-05-04", False), ("2020-05-08", True),                     # VE day 75th anniversary
    ("2022-05-30", False), ("2022-06-02", True), ("2022-06-03", True),  # platinum jubilee
    ("2022-09-19", True),                                            # state funeral
    ("2023-05-08", True),                                            # coronation
)


def easter_sunday(year: int) -> _dt.date:
    """Western (Gregorian) Easter Sunday of a year."""
    if _dateutil_easter is not None:
        return _dateutil_easter(year, _EASTER_WESTERN)
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 - the algorithm's own name
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return _dt.date(year, month, day + 1)


def as_day(value: DayLike) -> np.datetime64:
    """A calendar day as datetime64[D] (time of day ignored)."""
    if isinstance(value, _dt.datetime):
        value = value.date()
    return np.datetime64(value, "D")


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> _dt.date:
    """n-th (1-based; -1 = last) weekday (Monday 0) of a month."""
    if n > 0:
        first = _dt.date(year, month, 1)
        return first + _dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = _dt.date(year + month // 12, month % 12 + 1, 1) - _dt.timedelta(days=1)
    return last - _dt.timedelta(days=(last.weekday() - weekday) % 7)


def _substitute_next_free_weekday(days: List[_dt.date], movable: Iterable[_dt.date]
                                  ) -> List[_dt.date]:
    """Move each weekend day of ``movable`` to the next weekday that is not yet a holiday."""
    taken = {d for d in days if d.weekday() < 5}
    for day in sorted(movable):
        if day.weekday() < 5:
            continue
        substitute = day + _dt.timedelta(days=1)
        while substitute.weekday() >= 5 or substitute in taken:
            substitute += _dt.timedelta(days=1)
        taken.add(substitute)
    return sorted(taken)


def _us_observed(day: _dt.date) -> _dt.date:
    if day.weekday() == 5:
        return day - _dt.timedelta(days=1)
    if day.weekday() == 6:
        return day + _dt.timedelta(days=1)
    return day


@lru_cache(maxsize=None)
def _year_holidays(calendar: str, year: int) -> Tuple[_dt.date, ...]:
    """Weekday holidays of one calendar attributed to one year (may spill into the next)."""
    date = _dt.date
    easter = easter_sunday(year)
    good_friday, easter_monday = easter - _dt.timedelta(days=2), easter + _dt.timedelta(days=1)
    if calendar == EXCHANGE:
        days = [date(year, 1, 1), good_friday, easter_monday, date(year, 12, 25),
                date(year, 12, 26)]
    elif calendar in ("europe", "nordics"):
        days = [date(year, 1, 1), good_friday, easter_monday, date(year, 5, 1),
                date(year, 12, 25), date(year, 12, 26)]
    elif calendar == "uk":
        fixed = [date(year, 1, 1), date(year, 12, 25), date(year, 12, 26)]
        regular = [good_friday, easter_monday, _nth_weekday(year, 5, 0, 1),
                   _nth_weekday(year, 5, 0, -1), _nth_weekday(year, 8, 0, -1)]
        days = _substitute_next_free_weekday(regular + fixed, fixed)
        for text, added in UK_SPECIAL_CHANGES:
            special = date.fromisoformat(text)
            if special.year == year:
                days = sorted(set(days) | {special}) if added else [
                    d for d in days if d != special]
    elif calendar == "north_america":
        days = [_us_observed(date(year, 1, 1)), _nth_weekday(year, 2, 0, 3),
                _nth_weekday(year, 5, 0, -1), _us_observed(date(year, 7, 4)),
                _nth_weekday(year, 9, 0, 1), _nth_weekday(year, 10, 0, 2),
                _us_observed(date(year, 11, 11)), _nth_weekday(year, 11, 3, 4),
                _us_observed(date(year, 12, 25))]
        if year >= 1986:
            days.append(_nth_weekday(year, 1, 0, 3))
        if year >= 2021:
            days.append(_us_observed(date(year, 6, 19)))
    elif calendar == "asia_pacific":
        fixed = [date(year, 1, 1), date(year, 5, 1), date(year, 8, 9), date(year, 12, 25)]
        days = [good_friday] + [d + _dt.timedelta(days=1) if d.weekday() == 6 else d
                                for d in fixed]
    elif calendar == "latin_america":
        days = [date(year, 1, 1), easter - _dt.timedelta(days=48),
                easter - _dt.timedelta(days=47), good_friday, date(year, 4, 21),
                date(year, 5, 1), easter + _dt.timedelta(days=60), date(year, 9, 7),
                date(year, 10, 12), date(year, 11, 2), date(year, 11, 15), date(year, 12, 25)]
    else:
        raise ValueError(f"calendar: unknown calendar {calendar!r}; allowed: "
                         f"{', '.join(CALENDARS)}")
    return tuple(sorted({d for d in days if d.weekday() < 5}))


def _holidays(calendar: str, first: np.datetime64, last: np.datetime64) -> np.ndarray:
    if last < first:
        return np.array([], dtype="datetime64[D]")
    first_year = int(str(first)[:4])
    last_year = int(str(last)[:4])
    # One year either side: observed/substitute days spill across the year boundary.
    days = [d for year in range(first_year - 1, last_year + 2)
            for d in _year_holidays(calendar, year)]
    out = np.unique(np.array(days, dtype="datetime64[D]"))
    return out[(out >= first) & (out <= last)]


def _check_region(region: str) -> None:
    if region not in REGION_CALENDARS:
        raise ValueError(f"region: unknown region calendar {region!r}; allowed: "
                         f"{', '.join(REGION_CALENDARS)}")


def exchange_holidays(first: DayLike, last: DayLike) -> np.ndarray:
    """Weekdays from first to last (inclusive) on which energy exchanges do not trade."""
    return _holidays(EXCHANGE, as_day(first), as_day(last))


def regional_holidays(region: str, first: DayLike, last: DayLike) -> np.ndarray:
    """Weekday public holidays of a region's regulator calendar from first to last inclusive."""
    _check_region(region)
    return _holidays(region, as_day(first), as_day(last))


def trading_days(first: DayLike, last: DayLike) -> np.ndarray:
    """Exchange trading days from first to last inclusive: weekdays minus exchange holidays."""
    first_day, last_day = as_day(first), as_day(last)
    days = np.arange(first_day, last_day + 1, dtype="datetime64[D]")
    return days[np.is_busday(days, holidays=_holidays(EXCHANGE, first_day, last_day))]


@lru_cache(maxsize=64)
def _busdaycalendar(calendar: str, first_year: int, last_year: int) -> np.busdaycalendar:
    first, last = np.datetime64(f"{first_year}-01-01"), np.datetime64(f"{last_year}-12-31")
    return np.busdaycalendar(holidays=_holidays(calendar, first, last))


def _calendar_for(calendar: str, days: np.ndarray, n_max: int) -> np.busdaycalendar:
    """A busdaycalendar covering days and up to n_max business days either side of them."""
    low, high = days.min(), days.max()
    margin = np.timedelta64(2 * n_max + 31, "D")
    first_year = int(str(low - margin)[:4])
    last_year = int(str(high + margin)[:4])
    # Round to decades so repeated calls reuse the cached calendar.
    return _busdaycalendar(calendar, first_year - first_year % 10, last_year - last_year % 10 + 9)


def _per_calendar(function, calendars, days: np.ndarray, *arrays,
                  empty_dtype="datetime64[D]") -> np.ndarray:
    """Apply function(calendar, days, *arrays) per distinct calendar of a per-element array
    (or once for a single calendar name)."""
    if np.ndim(calendars) == 0:
        return function(str(calendars), days, *arrays)
    names = np.broadcast_to(np.asarray(calendars, dtype=object), days.shape)
    out = None
    for name in dict.fromkeys(names.ravel().tolist()):
        chosen = names == name
        result = function(name, days[chosen], *(a[chosen] for a in arrays))
        if out is None:
            out = np.empty(days.shape, dtype=result.dtype)
        out[chosen] = result
    return out if out is not None else np.empty(days.shape, dtype=empty_dtype)


def _offset(calendar: str, days: np.ndarray, n: np.ndarray, roll: str) -> np.ndarray:
    if len(days) == 0:
        return days.astype("datetime64[D]")
    busdaycal = _calendar_for(calendar, days, int(np.abs(n).max(initial=0)))
    return np.busday_offset(days, n, roll=roll, busdaycal=busdaycal)


def _days_array(days) -> np.ndarray:
    array = np.asarray(days)
    if array.dtype.kind in "OUS":
        array = array.astype("datetime64[D]")
    return array.astype("datetime64[D]")


def business_day_offset(days, n, region, roll: str = "forward") -> np.ndarray:
    """``np.busday_offset(days, n, roll=roll)`` on a region's business calendar.

    ``region`` is one calendar name (a region, or "exchange" for exchange trading days) or an
    array of names, one per element of ``days``; ``n`` is an int or an array like ``days``.
    ``roll`` as in numpy: how a non-business start day is first moved ("forward",
    "backward", "following", "preceding", ...).
    """
    days = _days_array(days)
    scalar = days.ndim == 0 and np.ndim(n) == 0 and np.ndim(region) == 0
    days, n = np.broadcast_arrays(np.atleast_1d(days), np.atleast_1d(np.asarray(n, np.int64)))
    for name in set(np.asarray(region, dtype=object).ravel().tolist()):
        if name != EXCHANGE:
            _check_region(name)
    out = _per_calendar(lambda name, d, k: _offset(name, d, k, roll), region, days, n)
    return out[0] if scalar else out


def business_day_count(start, end, region) -> np.ndarray:
    """Business days d of the region's calendar with start <= d < end (np.busday_count)."""
    start, end = _days_array(start), _days_array(end)
    scalar = start.ndim == 0 and end.ndim == 0 and np.ndim(region) == 0
    start, end = np.broadcast_arrays(np.atleast_1d(start), np.atleast_1d(end))
    for name in set(np.asarray(region, dtype=object).ravel().tolist()):
        if name != EXCHANGE:
            _check_region(name)

    def count(name, s, e):
        if len(s) == 0:
            return np.empty(0, dtype=np.int64)
        both = np.concatenate([s, e])
        busdaycal = _calendar_for(name, both, 0)
        return np.busday_count(s, e, busdaycal=busdaycal).astype(np.int64)

    out = _per_calendar(count, region, start, end, empty_dtype=np.int64)
    return out[0] if scalar else out


def is_business_day(days, region) -> np.ndarray:
    """True where a day is a business day of the region's calendar ("exchange" allowed)."""
    days = _days_array(days)
    scalar = days.ndim == 0 and np.ndim(region) == 0
    days = np.atleast_1d(days)
    for name in set(np.asarray(region, dtype=object).ravel().tolist()):
        if name != EXCHANGE:
            _check_region(name)

    def check(name, d):
        if len(d) == 0:
            return np.empty(0, dtype=bool)
        return np.is_busday(d, busdaycal=_calendar_for(name, d, 0))

    out = _per_calendar(check, region, days, empty_dtype=bool)
    return out[0] if scalar else out


def holiday_names() -> Dict[str, str]:
    """One-line description of each calendar (for metadata and docs)."""
    return {
        EXCHANGE: "New Year's Day, Good Friday, Easter Monday, 25 and 26 December",
        "europe": "TARGET2 closing days", "nordics": "TARGET2 closing days",
        "uk": "England & Wales bank holidays (substitute days)",
        "north_america": "US federal holidays (observed days)",
        "asia_pacific": "Singapore-like fixed-date holidays and Good Friday",
        "latin_america": "Brazil (B3)-like holidays",
    }
