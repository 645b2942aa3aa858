"""Current time in a named time zone, read from the system clock and the IANA time zone database."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from functools import lru_cache
from typing import Any

from graph.capability import Capability, CapabilityInputs, ClassifierGuide, GuideExample, RunContext

_ALIASES = {
    "utc": "UTC",
    "gmt": "UTC",
    "zulu": "UTC",
    "uk": "Europe/London",
    "england": "Europe/London",
    "britain": "Europe/London",
    "japan": "Asia/Tokyo",
    "france": "Europe/Paris",
    "germany": "Europe/Berlin",
    "india": "Asia/Kolkata",
    "china": "Asia/Shanghai",
    "beijing": "Asia/Shanghai",
    "new york": "America/New_York",
    "nyc": "America/New_York",
    "san francisco": "America/Los_Angeles",
    "california": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "boston": "America/New_York",
    "washington": "America/New_York",
    "miami": "America/New_York",
    "texas": "America/Chicago",
    "pst": "America/Los_Angeles",
    "pacific": "America/Los_Angeles",
    "est": "America/New_York",
    "eastern": "America/New_York",
    "cet": "Europe/Paris",
    "ist": "Asia/Kolkata",
    "brazil": "America/Sao_Paulo",
    "australia": "Australia/Sydney",
    "korea": "Asia/Seoul",
    "spain": "Europe/Madrid",
    "italy": "Europe/Rome",
    "netherlands": "Europe/Amsterdam",
    "singapore": "Asia/Singapore",
    "dubai": "Asia/Dubai",
    "mumbai": "Asia/Kolkata",
    "delhi": "Asia/Kolkata",
    "hong kong": "Asia/Hong_Kong",
    "mexico city": "America/Mexico_City",
}


def _table(name: str) -> list[list[str]]:
    """The rows of a table of the time zone database (`zone.tab`, `iso3166.tab`), from the system's
    copy or the tzdata package's; empty without one."""
    for root in zoneinfo.TZPATH:
        try:
            with open(f"{root}/{name}", encoding="utf-8") as f:
                return [line.rstrip("\n").split("\t") for line in f if line[:1] not in "#\n"]
        except OSError:
            continue
    try:
        from importlib.resources import files

        text = files("tzdata.zoneinfo").joinpath(name).read_text(encoding="utf-8")
        return [line.split("\t") for line in text.splitlines() if line[:1] not in "#" and line.strip()]
    except (ImportError, OSError):
        return []


def _canonical_zones() -> frozenset[str]:
    """The zones `zone.tab` lists (Europe/Istanbul, not its link Asia/Istanbul); empty without it."""
    return frozenset(row[2].strip() for row in _table("zone.tab") if len(row) > 2)


_STATE_NAMES = frozenset(["georgia"])
"""Country names that are as often a state of a country of several zones (Georgia, US)."""


def _countries() -> dict[str, str]:
    """Lower-case country or territory name -> its zone, for those with one zone ("faroe islands" ->
    Atlantic/Faroe, "iceland", "the bahamas"): a country of several zones names none of them."""
    zones: dict[str, list[str]] = {}
    for row in _table("zone.tab"):
        if len(row) > 2:
            zones.setdefault(row[0], []).append(row[2].strip())
    out: dict[str, str] = {}
    for row in _table("iso3166.tab"):
        if len(row) < 2 or len(zones.get(row[0], [])) != 1:
            continue
        name = re.sub(r"\s*\(.*?\)", "", row[1]).replace("&", "and").lower()
        name = " ".join(re.sub(r"[^a-z ]+", " ", name).split())
        if name in _STATE_NAMES:
            continue
        out[name] = zones[row[0]][0]
        if name.startswith("the "):
            out[name[4:]] = zones[row[0]][0]
    return out


@lru_cache(maxsize=1)
def _place_index() -> dict[str, str]:
    """Lower-case place name (city part of each IANA zone, a country of one zone, plus aliases) -> zone name. A city two
    zones are named after gets the canonical one, the same in every process (the set of zones has
    no order)."""
    index: dict[str, str] = {}
    canonical = _canonical_zones()
    for zone in sorted(zoneinfo.available_timezones(), key=lambda z: (z not in canonical, z)):
        if "/" in zone and not zone.startswith(("Etc/", "SystemV/", "US/")):
            index.setdefault(zone.rsplit("/", 1)[1].replace("_", " ").lower(), zone)
    for country, zone in _countries().items():
        index.setdefault(country, zone)
    index.update(_ALIASES)
    return index


def find_zone(text: str) -> str | None:
    """The time zone a sentence names: an IANA name, a city, a country alias or an abbreviation."""
    explicit = re.search(r"\b[A-Z][a-z]+/[A-Za-z_]+(?:/[A-Za-z_]+)?\b", text)
    if explicit and explicit.group(0) in zoneinfo.available_timezones():
        return explicit.group(0)
    lowered = re.sub(r"[^a-z ]+", " ", text.lower())
    words = lowered.split()
    index = _place_index()
    # The earliest place named wins (a follow-up task puts the newest words first);
    # at one position the longest name wins ("new york" over "york").
    for start in range(len(words)):
        for size in (4, 3, 2, 1):
            phrase = " ".join(words[start : start + size])
            if len(phrase) > 2 and phrase in index:
                return index[phrase]
    return None


_ASKS_THE_TIME = re.compile(
    r"\bwhat(?:'s|s|\s+is)?\s+(?:the\s+)?(?:current\s+|local\s+|exact\s+)?(?:time|hour)\b"
    r"(?!\s+(?:did|does|do|was|were|will|would|should|can|could|zone|difference|slot|frame|limit)\b"
    r"|\s+is\s+(?:the|your|our|my|their|his|her|it\s+(?:going|scheduled|planned|due))\b)"
    r"|\b(?:current|local)\s+(?:time|date)\b|(?<!\bat\s)\bthe\s+time\s+(?:now\s+)?in\b"
    r"|\btime\s+(?:is\s+it|now|right\s+now|rn|atm|there|over\s+there)\b"
    r"|\bwhat(?:'s|s|\s+is)?\s+(?:the\s+)?date\s+(?:today|now|there|in)\b"
    r"|\bwhat\s+day\s+is\s+it\b"
    r"|\bis\s+it\s+(?:still\s+)?(?:morning|night|evening|afternoon|daytime|dark|light)\s+(?:in|there|over)\b",
    re.I,
)
"""A request for the current time or date ("what's the time now for ...", "local time in ...",
"is it still night in ..."), not for when something happens ("what time does ... open", "what
time did the outage start", "what time is the call")."""


def asks_the_time(text: str) -> bool:
    """Whether the text asks the current time or date of a place it names."""
    return bool(_ASKS_THE_TIME.search(text)) and find_zone(text) is not None


class ClockInputs(CapabilityInputs):
    timezone: str | None = None
    """IANA zone name or a place; found in the query when the plan does not give it."""


class Clock(Capability):
    name = "clock"
    description = "The current date and time in a named time zone or city."
    provides = ("current_time",)
    Inputs = ClockInputs
    classifier_guide = ClassifierGuide(
        instructions="Questions about the current time or date somewhere.",
        examples=(
            GuideExample(query="what time is it in Tokyo", reason="time in a city"),
            GuideExample(query="current time in New York", reason="time in a city"),
            GuideExample(query="what's the date today in Sydney", reason="date in a city"),
            GuideExample(query="what time is it now in UTC", reason="time in a zone"),
            GuideExample(query="tell me the local time in Paris", reason="time in a city"),
            GuideExample(query="is it morning in London right now", reason="time of day"),
            GuideExample(query="what day is it in Auckland", reason="date in a city"),
            GuideExample(query="clock time in Europe/Berlin", reason="explicit zone"),
            # How people really ask: casual, lower case, a reason first, the city last.
            GuideExample(query="whats the time in rome rn", reason="casual"),
            GuideExample(query="what hour is it over in Manila", reason="time in a city"),
            GuideExample(query="local time in Mumbai please", reason="time in a city"),
            GuideExample(query="do you know what time it is in Chicago", reason="indirect"),
            GuideExample(query="is it still night in Seoul", reason="time of day"),
            GuideExample(query="our client is in Toronto, what's the time there", reason="context first"),
            GuideExample(query="hey what time is it in dubai atm", reason="casual"),
            GuideExample(query="what's the clock showing in Madrid", reason="time in a city"),
            GuideExample(query="whats todays date in berlin", reason="date in a city"),
            GuideExample(query="Jakarta local time?", reason="city first"),
            GuideExample(
                query="when does our plan renew", result=False, reason="a date of the account, not a clock"
            ),
            GuideExample(
                query="what time did the outage start", result=False, reason="an incident, not a clock"
            ),
            GuideExample(query="what is 12 times 7", result=False, reason="arithmetic"),
            GuideExample(query="how long is a flight to Tokyo", result=False, reason="travel, not time"),
        ),
    )

    def recognises(self, text: str) -> bool:
        """A question for the current time or date that names a place ("What is the time now for
        our tutor in Kathmandu?"), whatever else the words are about (`asks_the_time`)."""
        return asks_the_time(text)

    async def execute(self, inputs: ClockInputs, ctx: RunContext) -> dict[str, Any]:
        # Finding the zone reads the time zone database from disk: a blocking call.
        return await self.blocking(self.read_clock, inputs)

    def read_clock(self, inputs: ClockInputs) -> dict[str, Any]:
        zone_name = (inputs.timezone and find_zone(inputs.timezone)) or find_zone(inputs.query) or "UTC"
        now = datetime.now(zoneinfo.ZoneInfo(zone_name))
        offset = now.strftime("%z")
        return {
            "current_time": now.isoformat(timespec="seconds"),
            "timezone": zone_name,
            "utc_offset": f"{offset[:3]}:{offset[3:]}",
            "summary": f"It is {now:%H:%M} on {now:%A %d %B %Y} in {zone_name} (UTC{offset[:3]}:{offset[3:]}).",
        }

    def summarize(self, output: Any) -> str:
        return str(output["summary"])
