"""Times as the person looking at a page reads them: in their browser's time zone, named.

The store keeps UTC ISO strings; the browser tells Streamlit its zone (`st.context.timezone`, an
IANA name, and `timezone_offset`, minutes west of UTC as JavaScript counts them). Both come from
the browser, so both are checked; the first run of a session may have neither, and a page run
without a browser (AppTest) never has them: then the times are UTC and say so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import streamlit as st

_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}")  # an IANA name, no path tricks
_OFFSET_MAX_MIN = 18 * 60  # what any zone is off UTC, with room


@dataclass(frozen=True)
class Zone:
    """Where times are shown: `tz`, and `name` when the zone has one for every date (a browser's IANA
    zone), else None and each time names its own offset."""

    tz: tzinfo
    name: str | None = None

    @property
    def is_utc(self) -> bool:
        return self.tz is timezone.utc


UTC = Zone(timezone.utc, "UTC")


def zone_of(name: object, offset_minutes: object = None) -> Zone:
    """The zone a browser reported: its IANA name if this machine knows it, else its offset, else UTC."""
    if isinstance(name, str) and _ZONE_NAME.fullmatch(name) and ".." not in name:
        try:
            return Zone(ZoneInfo(name), name)
        except (ValueError, OSError, KeyError):  # unknown to this machine's zone database
            pass
    if isinstance(offset_minutes, int) and not isinstance(offset_minutes, bool) \
            and abs(offset_minutes) <= _OFFSET_MAX_MIN:
        return UTC if offset_minutes == 0 else Zone(timezone(-timedelta(minutes=offset_minutes)))
    return UTC


def viewer_zone() -> Zone:
    """The zone of the browser this page is drawn for (UTC until the browser has said)."""
    try:
        return zone_of(st.context.timezone, st.context.timezone_offset)
    except Exception:  # no browser context at all (a page run outside a server)
        return UTC


def parse(iso: str | None) -> datetime | None:
    """A stored time (`2026-12-01T20:40:05.123Z`), aware; None if there is none or it is no time."""
    if not isinstance(iso, str) or not iso:
        return None
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def zone_label(moment: datetime) -> str:
    """A time's zone in short: its abbreviation (CET, JST), else its offset (UTC+05:30)."""
    abbreviation = moment.tzname() or ""
    if re.fullmatch(r"[A-Z]{2,5}", abbreviation):
        return abbreviation
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "−"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local(iso: str | None, zone: Zone = UTC, *, with_zone: bool = True) -> str:
    """`1 Dec 2026, 21:40:05 (CET)`: a stored time in `zone`; the text given if it is no time."""
    moment = parse(iso)
    if moment is None:
        return iso or ""
    moment = moment.astimezone(zone.tz)
    shown = f"{moment.day} {moment:%b %Y, %H:%M:%S}"
    return f"{shown} ({zone_label(moment)})" if with_zone else shown


def zone_caption(zone: Zone) -> str:
    """What a page says of its times."""
    if zone.is_utc:
        return "Times are UTC: the browser has not said its time zone."
    return f"Times are in your browser's time zone ({zone.name or 'offset shown with each time'})."
