"""When a temporary allow entry stops allowing: its `expires` value, read and normalized.

`expires` is a date (`2027-03-31`) or a date and time (`2027-03-31T18:00:00Z`):

- a date means "through that day, in UTC": the entry allows until the end of the day and no
  longer from 00:00:00 UTC the next day (`2027-03-31` stops allowing at
  `2027-04-01T00:00:00Z`);
- a date and time is the first instant at which the entry no longer allows; without an
  offset it is UTC, with one it is converted to UTC (`2027-03-31T18:00:00+02:00` is
  `2027-03-31T16:00:00Z`).

An entry allows at instant `now` when `now < expiry_instant(expires)`. Pure: no clock is read
here; callers pass the time in.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

__all__ = ["Expires", "expiry_instant", "format_expires", "parse_expires"]

Expires = date | datetime  # a datetime is always aware, in UTC, once parsed

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_HINT = "use a date (2027-03-31) or a date and time (2027-03-31T18:00:00Z)"


def parse_expires(value: object) -> Expires:
    """The `expires` of an allow entry from YAML or JSON: a date, a datetime (naive: UTC),
    or their ISO 8601 text. Raises ValueError saying what is wrong."""
    if isinstance(value, datetime):
        return _in_utc(value)
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or isinstance(value, bool):
        raise ValueError(f"{_HINT}; got {value!r}")
    text = value.strip()
    try:
        if _DATE.match(text):
            return date.fromisoformat(text)
        return _in_utc(datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(f"not a valid date or date and time: {value!r}; {_HINT}") from None


def _in_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def expiry_instant(expires: Expires) -> datetime:
    """The first instant (UTC) at which an entry with this `expires` no longer allows."""
    if isinstance(expires, datetime):
        return _in_utc(expires)
    return datetime.combine(expires + timedelta(days=1), time(), tzinfo=UTC)


def format_expires(expires: Expires) -> str:
    """`2027-03-31` for a date, `2027-03-31T18:00:00Z` for a date and time."""
    if isinstance(expires, datetime):
        return _in_utc(expires).isoformat().replace("+00:00", "Z")
    return expires.isoformat()
