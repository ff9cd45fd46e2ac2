"""Working-day arithmetic on China's statutory calendar.

Why this module exists: government-service cases have legal time limits counted in
*working days* (工作日), not calendar days. On the Chinese statutory calendar a working
day is not simply Monday to Friday:

* public holidays are off, even on weekdays;
* some Saturdays and Sundays are adjusted working days (调休上班), added to bridge long
  breaks such as Spring Festival and National Day.

Nobody can compute these from a formula: the State Council publishes the next year's
schedule each November/December. So the calendar ships one TOML file per known year in
``node/domain/data/holidays/`` and also accepts an operator-supplied override directory, so a
node can pick up next year's schedule (or a correction) without a software release.

Years that no file covers fall back to plain Monday–Friday. That is a deliberate,
documented fallback rather than an error: a deadline far in the future is still better
estimated than refused. But such a date is *provisional* (``is_provisional``): the official
schedule may move it, so every view of a case says so, and an ops team is warned from
1 November of the year before (``missing_next_year``).

A year's schedule also reaches a node without a release: the city publishes it once
(``govnet calendar publish FILE``, the same file format) and it travels down the tree like
the catalog (``node.app.calendar_years``). Such a published year is added to the calendar
while the node runs (``learn``); the years already known are never taken away, so readers
see either the old or the new schedule of a year, never a mix.

The module never reads the clock. Every date comes in as an argument, which keeps
deadline computation reproducible in tests, replays and audits.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "CHINA_TZ",
    "BUILTIN_DIR",
    "CalendarError",
    "WorkCalendar",
    "YearSchedule",
    "local_date",
    "missing_next_year",
]

# China has a single time zone and no daylight saving, so a fixed offset is exact and
# avoids depending on the system tz database being installed.
CHINA_TZ = timezone(timedelta(hours=8), "UTC+08:00")

# Resolved relative to this file so it works from a source checkout and from an installed
# package alike (pyproject ships data/holidays/*.toml as package data).
BUILTIN_DIR = Path(__file__).parent / "data" / "holidays"

_ALLOWED_KEYS = ("year", "holidays", "workdays", "names")

# date.fromisoformat also accepts forms such as "20260101" and "2026-W01-4"; the data
# files promise YYYY-MM-DD, so insist on exactly that shape before parsing.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_YEAR_FILE = re.compile(r"\d{4}")

# Spelled out rather than taken from the stdlib calendar module, whose names follow the
# process locale; error messages should read the same on every node.
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SATURDAY = 5


class CalendarError(ValueError):
    """A holiday file or override directory is unusable; the message says what to fix."""


def local_date(ts: datetime) -> date:
    """Return the calendar date of ``ts`` in China (UTC+8).

    Case events are stored as aware timestamps; a case accepted at 23:30 Beijing time is
    accepted *that* day, even though it is still the afternoon in UTC. A naive datetime
    is rejected because guessing its zone would silently shift deadlines by a day.
    """
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(
            f"local_date() needs a timezone-aware datetime, got naive {ts.isoformat()} "
            "— attach a tzinfo (e.g. timezone.utc) first"
        )
    return ts.astimezone(CHINA_TZ).date()


def _require_date(value: object, arg: str) -> date:
    # datetime is a subclass of date, but a datetime never compares equal to a date, so
    # it would silently miss every holiday lookup. Refuse it loudly instead.
    if isinstance(value, datetime):
        raise TypeError(f"{arg} must be a date, not a datetime — convert it with local_date() first")
    if not isinstance(value, date):
        raise TypeError(f"{arg} must be a date, got {type(value).__name__}")
    return value


def _require_count(value: object, arg: str) -> int:
    # bool is an int subclass; True as a day count is always a bug at the call site.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{arg} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{arg} must be >= 0, got {value}")
    return value


@dataclass(frozen=True)
class YearSchedule:
    """The official off-days and adjusted working days of one calendar year.

    ``holidays`` may include weekend days inside a break; that is redundant but harmless
    and lets a data file list each break as one contiguous run. ``source`` is the path of
    the file the schedule came from, so an operator can tell a built-in year from an
    override when a deadline looks wrong.
    """

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]
    source: str
    # Display only; never consulted for arithmetic. Excluded from the hash because a
    # mapping is not hashable (equality still takes it into account, which is consistent).
    names: Mapping[date, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @classmethod
    def from_toml(cls, path: Path) -> YearSchedule:
        """Load and validate one ``YYYY.toml`` file; raise CalendarError on any problem.

        Validation is strict because a typo here silently moves legal deadlines: an
        unknown key (``workday`` for ``workdays``) would otherwise drop every adjusted
        working day of the year without a trace.
        """
        where = str(path)
        try:
            with open(path, "rb") as fh:
                text = fh.read().decode("utf-8")
        except OSError as exc:
            raise CalendarError(f"{where}: cannot read file ({exc.strerror}) — check the path and permissions") from exc
        except UnicodeDecodeError:
            raise CalendarError(f"{where}: not UTF-8 text — save the file as UTF-8") from None
        schedule = cls.from_text(text, where)
        if _YEAR_FILE.fullmatch(path.stem) and int(path.stem) != schedule.year:
            raise CalendarError(
                f"{where}: year = {schedule.year} but the file is named {path.name} — rename the file or fix the year key"
            )
        return schedule

    @classmethod
    def from_text(cls, text: str, where: str) -> YearSchedule:
        """Parse and validate one year's schedule in the data files' TOML format (a file's
        contents, or a published year as it travels); ``where`` names it in errors."""
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            detail = " ".join(str(exc).split())
            raise CalendarError(f"{where}: not valid TOML ({detail}) — fix the syntax") from exc

        unknown = sorted(set(doc) - set(_ALLOWED_KEYS))
        if unknown:
            raise CalendarError(
                f"{where}: unknown key '{unknown[0]}' — allowed keys are {', '.join(_ALLOWED_KEYS)}"
            )

        year = _parse_year(doc, where)

        if "holidays" not in doc:
            raise CalendarError(f"{where}: missing key 'holidays' — add a list of \"YYYY-MM-DD\" dates that are off")
        holidays = _parse_dates(doc["holidays"], "holidays", year, where)
        workdays = _parse_dates(doc.get("workdays", []), "workdays", year, where)

        for i, d in enumerate(workdays):
            if d.weekday() < _SATURDAY:
                raise CalendarError(
                    f"{where}: workdays[{i}] '{d.isoformat()}' is a {_WEEKDAY_NAMES[d.weekday()]} "
                    "— only a Saturday or Sunday can be an adjusted working day"
                )
        both = sorted(set(holidays) & set(workdays))
        if both:
            raise CalendarError(
                f"{where}: '{both[0].isoformat()}' is listed in both holidays and workdays "
                "— a date is either off or an adjusted working day, remove it from one list"
            )

        names = _parse_names(doc.get("names", {}), year, set(holidays) | set(workdays), where)
        return cls(
            year=year,
            holidays=frozenset(holidays),
            workdays=frozenset(workdays),
            source=where,
            names=MappingProxyType(names),
        )


def _parse_year(doc: Mapping[str, Any], where: str) -> int:
    if "year" not in doc:
        raise CalendarError(f"{where}: missing key 'year' — add e.g. year = 2027")
    year = doc["year"]
    if isinstance(year, bool) or not isinstance(year, int):
        raise CalendarError(f"{where}: year must be an integer like 2026, got {year!r} ({type(year).__name__})")
    # Bounded by what datetime.date can represent; anything else cannot hold dates at all.
    if not date.min.year <= year <= date.max.year:
        raise CalendarError(f"{where}: year = {year} is out of range — use a four-digit year")
    return year


def _parse_one_date(raw: object, label: str, year: int, where: str) -> date:
    # TOML also has a native local-date literal (unquoted 2026-01-01); accept it as well,
    # since an operator writing it that way clearly means the same thing.
    if isinstance(raw, datetime):
        raise CalendarError(f"{where}: {label} {raw.isoformat()} has a time part — write just the date as \"YYYY-MM-DD\"")
    if isinstance(raw, date):
        d = raw
    elif isinstance(raw, str):
        if not _ISO_DATE.fullmatch(raw):
            raise CalendarError(f"{where}: {label} '{raw}' is not a date — write it as \"YYYY-MM-DD\"")
        try:
            d = date.fromisoformat(raw)
        except ValueError:
            raise CalendarError(
                f"{where}: {label} '{raw}' is not a valid calendar date — check the month and day (YYYY-MM-DD)"
            ) from None
    else:
        raise CalendarError(f"{where}: {label} must be a \"YYYY-MM-DD\" string, got {type(raw).__name__}")
    if d.year != year:
        raise CalendarError(
            f"{where}: {label} '{d.isoformat()}' is not in {year} — every date in this file must lie in {year}; "
            f"move it to {d.year}.toml"
        )
    return d


def _parse_dates(raw: object, key: str, year: int, where: str) -> list[date]:
    if not isinstance(raw, list):
        raise CalendarError(f"{where}: {key} must be a list of \"YYYY-MM-DD\" strings, got {type(raw).__name__}")
    dates = [_parse_one_date(item, f"{key}[{i}]", year, where) for i, item in enumerate(raw)]
    seen: dict[date, int] = {}
    for i, d in enumerate(dates):
        # A date listed twice is harmless to the arithmetic but usually a typo for a
        # neighbouring day that is then missing; say so rather than guess.
        if d in seen:
            raise CalendarError(
                f"{where}: {key}[{i}] '{d.isoformat()}' is listed twice (also {key}[{seen[d]}]) — remove one, "
                "or fix the date you meant"
            )
        seen[d] = i
    return dates


def _parse_names(raw: object, year: int, listed: set[date], where: str) -> dict[date, str]:
    if not isinstance(raw, dict):
        raise CalendarError(f"{where}: names must be a table of \"YYYY-MM-DD\" = \"festival name\" entries")
    names: dict[date, str] = {}
    for key, value in raw.items():
        d = _parse_one_date(key, "names key", year, where)
        # A name for a date that is neither off nor an adjusted working day is almost
        # certainly a typo in the date, which would also hint at a typo in the lists.
        if d not in listed:
            raise CalendarError(
                f"{where}: names key '{key}' is in neither holidays nor workdays — only name dates listed there"
            )
        if not isinstance(value, str) or not value.strip():
            raise CalendarError(f"{where}: names['{key}'] must be a non-empty string")
        names[d] = value
    return names


def _schedule_files(directory: Path, what: str) -> list[Path]:
    if not directory.is_dir():
        raise CalendarError(f"{directory}: {what} directory does not exist or is not a directory — fix the path")
    files = sorted(directory.glob("*.toml"))
    for p in files:
        # Requiring YYYY.toml makes "which file defines 2027?" answerable with ls, and
        # makes it impossible for two files in one directory to define the same year.
        if not _YEAR_FILE.fullmatch(p.stem):
            raise CalendarError(f"{p}: holiday files must be named YYYY.toml (e.g. 2027.toml) — rename or remove it")
    return files


class WorkCalendar:
    """Answers "is this a working day?" and counts working days for deadlines.

    Build it with :meth:`load` (built-in years plus overrides) or directly from
    :class:`YearSchedule` objects. It changes only by :meth:`learn` (a published year), which
    adds a year or replaces one whole.
    """

    def __init__(self, schedules: Iterable[YearSchedule]) -> None:
        by_year: dict[int, YearSchedule] = {}
        for s in schedules:
            if s.year in by_year:
                # Silently picking one would make the result depend on iteration order.
                raise CalendarError(
                    f"{s.source}: year {s.year} is already defined by {by_year[s.year].source} — keep only one"
                )
            by_year[s.year] = s
        self._by_year: Mapping[int, YearSchedule] = MappingProxyType(by_year)

    @classmethod
    def load(cls, override_dir: Path | None = None) -> WorkCalendar:
        """Built-in years from ``node/domain/data/holidays``, each replaced by ``override_dir/YYYY.toml`` if present.

        An override replaces the whole year rather than merging into it, so an override
        file is always a complete, self-explanatory statement of that year's schedule.
        """
        by_year = {s.year: s for s in map(YearSchedule.from_toml, _schedule_files(BUILTIN_DIR, "built-in holiday"))}
        if override_dir is not None:
            for p in _schedule_files(Path(override_dir), "holiday override"):
                s = YearSchedule.from_toml(p)
                by_year[s.year] = s
        return cls(by_year.values())

    def learn(self, schedule: YearSchedule) -> None:
        """Take ``schedule`` as its year's (a year published down the tree): it is added, or
        replaces the shipped one. The mapping is swapped whole, so a reader on another thread
        sees the calendar before or after, never half of it."""
        self._by_year = MappingProxyType({**self._by_year, schedule.year: schedule})

    def is_provisional(self, d: date) -> bool:
        """True if ``d`` lies in a year without an official schedule: a deadline that falls
        there was counted Monday–Friday and may move when the year is published."""
        _require_date(d, "d")
        return d.year not in self._by_year

    @property
    def covered_years(self) -> frozenset[int]:
        """Years with an official schedule; other years use the Monday–Friday fallback."""
        return frozenset(self._by_year)

    def schedule(self, year: int) -> YearSchedule | None:
        """The schedule in force for ``year`` (to see which file it came from), or None."""
        return self._by_year.get(year)

    def holiday_name(self, d: date) -> str | None:
        """Display name for a holiday or adjusted working day, if the data file gives one."""
        _require_date(d, "d")
        s = self._by_year.get(d.year)
        return None if s is None else s.names.get(d)

    def is_working_day(self, d: date) -> bool:
        """True if ``d`` is a working day.

        For a covered year the official lists win over the weekday; for any other year
        Monday–Friday are working days (the documented fallback).
        """
        _require_date(d, "d")
        s = self._by_year.get(d.year)
        if s is not None:
            if d in s.workdays:
                return True
            if d in s.holidays:
                return False
        return d.weekday() < _SATURDAY

    def add_working_days(self, start: date, n: int) -> date:
        """The date on which the ``n``-th working day after ``start`` falls.

        ``start`` itself never counts (the day a case is accepted is day 0, whether or not
        it is a working day), and ``n == 0`` returns ``start`` unchanged.
        """
        _require_date(start, "start")
        _require_count(n, "n")
        d = start
        # A day-by-day walk is bounded by roughly 1.5 * n + the longest break, which is
        # trivially fast for statutory limits (at most a few dozen working days).
        while n:
            d += timedelta(days=1)
            if self.is_working_day(d):
                n -= 1
        return d

    def working_days_between(self, start: date, end: date) -> int:
        """Number of working days ``d`` with ``start < d <= end``; 0 if ``end <= start``.

        The half-open interval matches :meth:`add_working_days`, so
        ``working_days_between(s, add_working_days(s, n)) == n`` for any n.
        """
        _require_date(start, "start")
        _require_date(end, "end")
        count = 0
        d = start + timedelta(days=1)
        while d <= end:
            count += self.is_working_day(d)
            d += timedelta(days=1)
        return count

    def due_date(self, start: date, limit_days: int, paused_working_days: int = 0) -> date:
        """Deadline for a case accepted on ``start`` with a limit of ``limit_days`` working days.

        While the clock is stopped (waiting for the applicant's supplementary materials, a
        hearing, an expert assessment) those working days do not count against the limit,
        so the deadline moves out by exactly the paused working days.
        """
        _require_count(limit_days, "limit_days")
        _require_count(paused_working_days, "paused_working_days")
        return self.add_working_days(start, limit_days + paused_working_days)

    def __repr__(self) -> str:
        return f"WorkCalendar(covered_years={sorted(self._by_year)})"


def missing_next_year(calendar: WorkCalendar, today: date) -> int | None:
    """The coming year, if it is 1 November or later and its schedule is not loaded yet:
    the State Council usually publishes it in November, so from then on a node warns."""
    following = today.year + 1
    if (today.month, today.day) >= (11, 1) and following not in calendar.covered_years:
        return following
    return None
