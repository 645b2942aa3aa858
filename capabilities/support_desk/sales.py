"""Sales: the plans, their per-seat prices and volume discounts, and quotes for N seats.

Prices and discount tiers come from the `plans` and `plan_discounts` tables; a quote is the seat
price times the seats, less the highest volume discount the seat count reaches, in integer cents.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from typing import Any

from capabilities.support_desk.db import SupportDB, SupportDBs, money
from graph.capability import (
    Capability,
    CapabilityInputs,
    ClassifierGuide,
    GuideExample,
    OrchestratorGuide,
    RunContext,
)

_PLAN = re.compile(
    r"\b(starter|enterprise)\b"
    r"|\b(team)\b(?!\s+of\b)(?=\s+(?:plan|tier|subscription|edition|pricing|price|seats?|licen[cs]es?|cost|for|with)\b)"
    r"|(?:\bthe|\bon|\bto|\bvs\.?|\bversus|\band|\bor|\bfor)\s+(team)\b(?!\s+(?:of|is|are|will|has|have)\b)",
    re.I,
)
_SEATS = re.compile(
    r"(\d[\d,]*)[\s-]*(?:(?:starter|team|enterprise)\s+)?(?:seats?|users?|people|members|licen[cs]es|employees|persons|developers|engineers|"
    r"agents|accounts)\b|\bteam of (\d[\d,]*)\b",
    re.I,
)
_COUNT = r"(?<![$€£\w.,-])(\d[\d,]*)(?![\w.%-]|,\d|\s*(?:%|percent\b))"
_NOT_PEOPLE = (
    r"(?:seconds?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|yrs?|quarters?|times?|"
    r"dollars?|euros?|pounds?|cents?|bucks?|usd|eur|gbp|percent|gb|tb|mb|projects?|workspaces?|"
    r"invoices?|charges?|tickets?|calls?|requests?|integrations?|apps?|plans?|tiers?|steps?)"
)
_PEOPLE = re.compile(
    # "18 musicians", "40 staff", "22 full-time players": a number and a plural noun (words that
    # measure time, money or things are not people)
    rf"{_COUNT}\s+(?:[a-z]+[\s-]+){{0,2}}?(?!{_NOT_PEOPLE}\b)"
    r"(?:[a-z]{2,}[^s\W]s|staff|folks?|crew|personnel|people|men|women|children|kids|heads|ppl|peeps|volunteers)\b"
    # "the 9 of us", "a group of 12", "we're 7", "a 15-person studio", "there are 6 of them"
    rf"|\b(\d[\d,]*)\s+of\s+(?:us|them|you)\b"
    rf"|\b(?:team|group|company|crew|band|staff|office|squad|studio|firm|practice|class|choir|club|agency|"
    rf"orchestra|cast|shop|outfit|organi[sz]ation|org|startup|department|dept)\s+of\s+{_COUNT}"
    rf"|\b(?:we|they)(?:'re|’re|\s+are)\s+(?:about\s+|around\s+|roughly\s+|only\s+|just\s+)?{_COUNT}(?!\s+\w)"
    r"|(?<![$€£\w.,-])(\d[\d,]*)[\s-](?:person|people|strong|member|seat|user|head)\b",
    re.I,
)
_FOR_BARE = re.compile(
    rf"\b(?:for|with|to|make it|at)\s+{_COUNT}(?=\s*(?:[?!.,;)]|$|\s+(?:on|of|in|instead|then|please|pls|now)\b))",
    re.I,
)


def plans_named(text: str) -> list[str]:
    names = []
    for m in _PLAN.finditer(text):
        name = next(g for g in m.groups() if g).lower()
        if name not in names:
            names.append(name)
    return names


_UNITS = [
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_NUMBER_WORD = re.compile(
    r"\b(?:(?P<tens>" + "|".join(_TENS) + r")(?:[\s-](?P<unit>" + "|".join(_UNITS[:9]) + r"))?"
    r"|(?P<small>" + "|".join(_UNITS) + r")|(?P<dozen>a\s+dozen|a\s+hundred))\b(?![\s-](?:percent|%))",
    re.I,
)


def _in_digits(text: str) -> str:
    """Number words as digits ("the five of us", "twenty-two players", "a dozen people"), so that a
    head count in words is read like one in digits; "one" before a noun in the singular stays."""

    def digits(m: re.Match[str]) -> str:
        if m.group("dozen"):
            return "12" if "dozen" in m.group("dozen").lower() else "100"
        if m.group("small"):
            return str(_UNITS.index(m.group("small").lower()) + 1)
        unit = m.group("unit")
        return str(_TENS[m.group("tens").lower()] + (_UNITS.index(unit.lower()) + 1 if unit else 0))

    return _NUMBER_WORD.sub(digits, text)


def seats_named(text: str) -> int | None:
    """The seat count a price question names: seats, users or licences ("30 Team seats"), any number
    of people ("18 musicians", "the 9 of us", "a team of 7", "we're 12"), or a bare count after
    "for" ("what would Team cost for 14?"); None when it names none."""
    text = _in_digits(text)
    for pattern in (_SEATS, _PEOPLE, _FOR_BARE):
        m = pattern.search(text)
        if m:
            return int(next(g for g in m.groups() if g).replace(",", ""))
    return None


def load_plans(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every plan with its discount tiers (ascending), cheapest first."""
    plans = [dict(r) for r in conn.execute("SELECT * FROM plans ORDER BY seat_price_cents").fetchall()]
    for plan in plans:
        plan["discounts"] = [
            {"min_seats": r["min_seats"], "percent_off": r["percent_off"]}
            for r in conn.execute(
                "SELECT min_seats, percent_off FROM plan_discounts WHERE plan_id = ? ORDER BY min_seats",
                (plan["id"],),
            ).fetchall()
        ]
    return plans


def quote(plan: Mapping[str, Any], seats: int) -> dict[str, Any]:
    """The monthly price of `seats` on `plan`, or why the plan does not allow that many."""
    base: dict[str, Any] = {"plan": plan["name"], "seats": seats}
    if seats < plan["min_seats"]:
        return {**base, "available": False, "why": f"{plan['name']} starts at {plan['min_seats']} seats"}
    if plan["max_seats"] is not None and seats > plan["max_seats"]:
        return {**base, "available": False, "why": f"{plan['name']} allows at most {plan['max_seats']} seats"}
    tier = max(
        (d for d in plan["discounts"] if d["min_seats"] <= seats), key=lambda d: d["min_seats"], default=None
    )
    percent = tier["percent_off"] if tier else 0
    list_cents = plan["seat_price_cents"] * seats
    monthly_cents = list_cents * (100 - percent) // 100
    return {
        **base,
        "available": True,
        "seat_price": plan["seat_price_cents"] / 100,
        "list_monthly": list_cents / 100,
        "discount_percent": percent,
        "discount_from_seats": tier["min_seats"] if tier else None,
        "monthly": monthly_cents / 100,
        "yearly": monthly_cents * 12 / 100,
    }


def describe_quote(q: Mapping[str, Any]) -> str:
    if not q["available"]:
        return f"{q['plan']} for {q['seats']} seats is not possible: {q['why']}."
    cents = round(q["seat_price"] * 100)
    text = f"{q['plan']} plan, {q['seats']} seats: {q['seats']} × {money(cents)} = {money(round(q['list_monthly'] * 100))} a month"
    if q["discount_percent"]:
        text += (
            f", less the {q['discount_percent']}% volume discount (from {q['discount_from_seats']} seats)"
            f" = {money(round(q['monthly'] * 100))} a month"
        )
    return text + f" ({money(round(q['yearly'] * 100))} a year)."


def describe_plan(plan: Mapping[str, Any]) -> str:
    seats = (
        f"{plan['min_seats']} to {plan['max_seats']} seats"
        if plan["max_seats"]
        else f"from {plan['min_seats']} seats"
    )
    tiers = (
        "volume discounts: "
        + ", ".join(f"{d['percent_off']}% from {d['min_seats']} seats" for d in plan["discounts"])
        if plan["discounts"]
        else "no volume discount"
    )
    return f"{plan['name']}: {money(plan['seat_price_cents'])} per seat a month, {seats}; {tiers}. {plan['description']}"


class SalesInputs(CapabilityInputs):
    plan: str | None = None
    """starter, team or enterprise; else found in the query."""
    seats: int | None = None
    """Seats to quote for; else found in the query."""


class Sales(Capability):
    name = "sales"
    description = (
        "Plans (Starter, Team, Enterprise), per-seat prices, volume discounts and price quotes for N seats."
    )
    provides = ("quote",)
    Inputs = SalesInputs
    classifier_guide = ClassifierGuide(
        instructions="Questions about plans, prices, discounts, or what a number of seats would cost.",
        examples=(
            GuideExample(
                query="which plan suits a company of our size, we're 7",
                reason="a recommendation with a price",
            ),
            GuideExample(query="price of 30 seats on Team", reason="a quote"),
            GuideExample(query="how much is Enterprise for 200 users", reason="a quote"),
            GuideExample(query="I need a quote for 60 licences", reason="licences are seats"),
            GuideExample(
                query="my boss asks what Enterprise would cost us per year", reason="for someone else"
            ),
            GuideExample(query="what do your plans cost per seat", reason="per-seat prices"),
            GuideExample(query="how much pour 10 users on starter plan", reason="typo, non-native"),
            GuideExample(query="starter vs team price for 9 people", reason="compare prices"),
            GuideExample(
                query="thinking of upgrading, what would Team run us for 18 seats", reason="upgrade price"
            ),
            GuideExample(query="what would the Team plan cost for 12 seats?", reason="a quote"),
            GuideExample(query="how much is Enterprise per user", reason="a plan price"),
            GuideExample(query="which plans do you offer", reason="plans"),
            GuideExample(query="do you give discounts for larger teams", reason="volume discounts"),
            GuideExample(query="we're 40 people, what would that cost us per month", reason="a quote"),
            GuideExample(query="quote for 150 Enterprise seats please", reason="a quote"),
            GuideExample(query="what's the difference between Starter and Team", reason="plan comparison"),
            GuideExample(query="pricing for 8 users on Starter", reason="a quote"),
            GuideExample(query="is there a cheaper plan for a small team of 3", reason="plans"),
            GuideExample(query="how much would upgrading to Enterprise cost for 25 seats", reason="a quote"),
            GuideExample(
                query="compare the Team and Enterprise plans side by side", reason="plan comparison"
            ),
            GuideExample(query="what are your prices", reason="pricing"),
            GuideExample(query="how much does one seat cost", reason="pricing"),
            GuideExample(query="what plans do you have and how do they differ", reason="plan comparison"),
            GuideExample(query="tell me about your pricing tiers", reason="pricing"),
            GuideExample(
                query="which plan would you recommend for 15 people, and at what price", reason="a quote"
            ),
            GuideExample(query="what is 12 times 25", result=False, reason="plain arithmetic"),
            GuideExample(query="why was I charged $125 this month", result=False, reason="billing"),
            GuideExample(query="refund my last payment", result=False, reason="a refund"),
            GuideExample(
                query="does the Team plan include SSO",
                result=False,
                reason="a product documentation question",
            ),
        ),
    )
    orchestrator_guide = OrchestratorGuide(instructions="Give `plan` and `seats` when the user names them.")

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.db = SupportDBs(self.options.get("db"), seed=bool(self.options.get("seed", True)))

    async def execute(self, inputs: SalesInputs, ctx: RunContext) -> dict[str, Any]:
        return await self.blocking(self.answer, self.db.at(ctx.data_dir), inputs)

    def answer(self, db: SupportDB, inputs: SalesInputs) -> dict[str, Any]:
        with db.connect() as conn:
            plans = load_plans(conn)
        own, earlier = _own_and_earlier(inputs.query)
        wanted = [inputs.plan.lower()] if inputs.plan else (plans_named(own) or plans_named(earlier))
        chosen = [p for p in plans if p["id"] in wanted] or plans
        seats = inputs.seats if inputs.seats is not None else _first_seats(own, earlier)
        if seats is not None and seats > 0:
            quotes = [quote(p, seats) for p in chosen]
            if not wanted:  # no plan named: quote the plans that allow that many seats
                possible = [q for q in quotes if q["available"]]
                summary = " ".join(describe_quote(q) for q in possible) + "".join(
                    f" {q['why']}." for q in quotes if not q["available"]
                )
            else:
                summary = " ".join(describe_quote(q) for q in quotes)
            return {"quote": quotes, "summary": summary.strip()}
        return {
            "quote": [],
            "plans": [_public(p) for p in chosen],
            "summary": " ".join(describe_plan(p) for p in chosen),
        }


_CONTEXT = re.compile(r"\s*\(follow-up to:\s*(?P<clause>.*)\)\s*$", re.I | re.S)
"""The earlier request a follow-up task carries after the user's words ("and Enterprise? (follow-up
to: Team for 12 seats)"): what the new words do not say is taken from it."""


def _own_and_earlier(query: str) -> tuple[str, str]:
    m = _CONTEXT.search(query)
    return (query, "") if m is None else (query[: m.start()], m.group("clause"))


def _first_seats(own: str, earlier: str) -> int | None:
    seats = seats_named(own)
    return seats if seats is not None else seats_named(earlier)


def _public(plan: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "plan": plan["name"],
        "seat_price": plan["seat_price_cents"] / 100,
        "min_seats": plan["min_seats"],
        "max_seats": plan["max_seats"],
        "discounts": plan["discounts"],
    }


__all__ = ["Sales", "describe_quote", "load_plans", "plans_named", "quote", "seats_named"]
