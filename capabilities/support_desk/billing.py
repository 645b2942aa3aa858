"""Billing: a customer's charges and invoices, duplicate charges, and refund eligibility by policy.

The refund rules are written for people in `data/knowledge/refund-policy.md` and encoded
here as `refund_eligibility` (a test checks that the two agree on the window):
duplicates are always eligible, any other charge within REFUND_WINDOW_DAYS of its date, a charge
is refunded at most once, failed charges never.

Billing also picks the charge a refund would be for (`refund_candidate`). People name charges by
what they were for and when far more than by id, so the request's words become a selector
(`charge_selector`, pure text: the refund's approval check derives it again and compares): an id;
a duplicate ("the double charge", "the extra one", or nothing said); else what the words state: an
amount, a description ("the extra seats", "the renewal", "the onboarding fee"), a time ("in
October", "last month", "on the 1st", "3 days ago"), a position ("the latest", "the previous one",
"the second October payment"), charges set aside ("not this month's"). `match_charges` resolves it
against the customer's charges (month names against the charges' own dates): one that fits is
taken; of several, the only one the policy still refunds, else the only duplicate among those; when
several refundable charges fit and nothing tells them apart, none is picked and the answer lists
them and asks which. The answer says how a charge was chosen among several. The refund step runs
after billing in the same turn, so the approval question can show the amount and charge before
anything is written; the candidate names the request it was picked for.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from capabilities.support_desk.account import identity_request, resolve_customer
from capabilities.support_desk.db import SupportDB, SupportDBs, day, money, now_utc, parse_time
from graph.capability import (
    Capability,
    CapabilityInputs,
    ClassifierGuide,
    GuideExample,
    OrchestratorGuide,
    RunContext,
    SuggestedAction,
)

REFUND_WINDOW_DAYS = 30
"""Days after a charge during which it can be refunded (duplicates: always). See the policy file."""
POLICY = "refund-policy.md"

CHARGE_ID = re.compile(r"\bCH-?(\d{3,})\b", re.I)
# A currency amount: "$36", "$ 1,250.50", "USD 36", "€36", "36 dollars", "36$", "-$30", "$-30".
# Never digits inside an identifier (CH-2033, R-7002, C-1004, INV-3034, order #1234, 1e3) or a
# malformed number ("$1.2.3", "$12,34", "$36abc"): "refund CH-2033 $36" once read as $2,033.
_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)(\.\d{1,2})?(?![\d.,]*\d)(?![\w-])"
_BEFORE = r"(?<![\w#$.,-])(-\s?)?"
AMOUNT = re.compile(
    _BEFORE
    + r"(?:\$|\busd\s?|\bus\$\s?|€)\s?(-\s?)?"
    + _NUMBER
    + r"|"
    + _BEFORE
    + _NUMBER
    + r"\s?(?:\$(?![\w.,-])|usd\b|dollars?\b|bucks\b)",
    re.I,
)
_DUPLICATE_WORDS = re.compile(
    r"\b(twice|duplicate[sd]?|double[- ]?(?:charged|billed|charges?|payments?|billing)|charged two times|two charges|"
    r"billed two times|charged me two|same (?:invoice|charge) (?:twice|two))\b",
    re.I,
)
_LATEST_WORDS = re.compile(
    r"\b(last|latest|most recent|this month'?s)\s+(charge|payment|invoice|bill)\b", re.I
)
_REFUND_WORDS = re.compile(r"\b(refund\w*|money back|reimburse\w*|eligible|charge ?back)\b", re.I)
_INVOICE_WORDS = re.compile(r"\b(invoices?|receipts?|statements?)\b", re.I)


def citation(section: str) -> str:
    return f"[{POLICY} § {section}]"


def charge_selector(text: str, charge_id: str | None = None) -> str:
    """Which charge a request is about, as a comparable string. Pure text work, no database: the
    refund's approval check derives it again from the same request and compares.

    `charge:CH-2003` (an id, which names one charge whatever else is said); `auto` (a duplicate:
    "double charge", "the extra one", or nothing said at all); `latest` ("my last charge"); an
    amount alone, `amount:125.00`; else the parts the words state, joined by `|` in a fixed order
    (`SELECTOR_KEYS`): `amount:36.00`, `desc:seats` (what the charge was for: seats, renewal,
    onboarding, retry, failed), `month:10` (a month by name), `months_ago:1` ("last month"),
    `day:1` ("on the 1st"), `days_ago:2-4` ("3 days ago"), `weeks_ago:1` ("last week"),
    `pos:latest|previous|first`, `nth:2` ("the second October payment"). `billing.match_charges`
    resolves them against the customer's charges (months by name against the charges' own dates).
    A charge set aside ("the renewal, but not this month's") adds its parts marked `-`.

    A follow-up's text carries the earlier request after the new words ("what about the seat one?
    (follow-up to: is the renewal refundable?)"): each kind of part the new words state replaces
    the earlier one, and the earlier request's other parts are kept as soft parts, marked `~`, which
    give way when together they match no charge. An id said earlier gives way to any new words that
    describe a charge.
    """
    if charge_id and (m := CHARGE_ID.search(charge_id)):
        return f"charge:CH-{m.group(1)}"
    new, _, earlier = text.partition(FOLLOW_UP_MARK)
    if m := CHARGE_ID.search(new):
        return f"charge:CH-{m.group(1)}"
    parts = _selector_parts(new)
    soft: dict[str, str] = {}
    if earlier and parts == {}:
        # New words that describe no charge ("yes, go ahead", "and for her?"): the earlier request's.
        return charge_selector(earlier)
    if earlier and parts and (earlier_parts := _selector_parts(earlier)):
        soft = {k: v for k, v in earlier_parts.items() if k not in parts and not _clashes(k, parts)}
    if not parts:
        return "auto"
    if set(parts) == {"amount"} and not soft:
        return f"amount:{parts['amount']}"
    if set(parts) == {"pos"} and parts["pos"] == "latest" and not soft:
        return "latest"
    items = [f"{k}:{parts[k]}" for k in SELECTOR_KEYS if k in parts]
    items += [f"-{k}:{parts['-' + k]}" for k in SELECTOR_KEYS if "-" + k in parts]
    items += [f"~{k}:{soft[k]}" for k in SELECTOR_KEYS if k in soft]
    return "|".join(items)


FOLLOW_UP_MARK = " (follow-up to: "
"""How a follow-up's task carries the request it continues (`graph.context.followups.appended`)."""
SELECTOR_KEYS = ("amount", "desc", "month", "months_ago", "day", "days_ago", "weeks_ago", "pos", "nth")
_TIME_KEYS = frozenset({"month", "months_ago", "day", "days_ago", "weeks_ago"})


def _clashes(key: str, parts: Mapping[str, str]) -> bool:
    """An earlier part that the new words' time or position replaces ("and the november one?" after
    "last month's renewal": the month, not both; "the latest one" after "the october renewal")."""
    if key in _TIME_KEYS and (_TIME_KEYS & set(parts) or "pos" in parts):
        return True
    return key in ("pos", "nth") and bool({"pos", "nth"} & set(parts))


_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "couple of": 2, "a couple of": 2, "couple": 2,
}  # fmt: skip
_ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "fifth": 5, "5th": 5,
}  # fmt: skip
_MONTHS = {
    name: i + 1
    for i, names in enumerate(
        (
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
            ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sept", "sep"),
            ("october", "oct"), ("november", "nov"), ("december", "dec"),
        )
    )
    for name in names
}  # fmt: skip
_CHARGE_NOUN = (
    r"(?:charges?|payments?|invoices?|bills?|renewals?|transactions?|debits?|fees?|ones?|amounts?|"
    r"subscriptions?|thing)"
)
_TIME_UNIT = r"(?:month|week|year|time|night|day|quarter)s?\b"
# Months said as a date: "in october", "october's", "the december renewal", "Oct 1st", "1 october".
# "may" and "march" (words too) only after a preposition or before a charge word or a day.
_MONTH_WORDS = (
    r"(?:january|february|april|june|july|august|september|october|november|december|"
    r"jan|feb|apr|jun|jul|aug|sept|sep|oct|nov|dec)\b\.?"
)
_MONTH_NAME = re.compile(
    r"\b(" + _MONTH_WORDS + r")"
    r"|(?:(?<=\bin )|(?<=\bfrom )|(?<=\bof )|(?<=\bfor )|(?<=\bsince )|(?<=\bduring )|(?<=\bon ))"
    r"(may|march)\b"
    r"|\b(may|march)(?='s\b|\s+(?:\d|" + _CHARGE_NOUN + r"))",
    re.I,
)
_DAY_OF_MONTH = re.compile(
    # "on the 1st", "the 3rd of", "on the first (of the month)", "1st of October", "Oct 1", "december 3rd"
    r"\bon the (\d{1,2})(?:st|nd|rd|th)?\b(?!\s+" + _CHARGE_NOUN + r")"
    r"|\b(?:on|from) the (first|second|third|fourth|fifth)\b(?!\s+(?:\w+\s+)?" + _CHARGE_NOUN + r")"
    r"|\bthe (\d{1,2})(?:st|nd|rd|th) of\b"
    r"|\bthe (first|second|third) of (?:the|this|last) month\b"
    r"|\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(?:" + _MONTH_WORDS + r"|may\b|march\b)"
    r"|\b(?:"
    + _MONTH_WORDS
    + r"|may|march)\s+(\d{1,2})(?:st|nd|rd|th)?\b(?!\s*(?:%|seats?|users?|days?|months?))",
    re.I,
)
_MONTHS_AGO = re.compile(
    # "this month's", and the same typed without its apostrophe before what it names ("this months one")
    r"\b(this|current|last|previous|prior)\s+month(?:\b|s(?=\s+(?:[\w-]+\s+)?" + _CHARGE_NOUN + r"\b))"
    r"|\b(?:start|beginning) of (?:the |this )?month\b"
    r"|\b(\d|a|one|two|three|four|five|six)\s+months?\s+(?:ago|back)\b|\bthe month before (?:last|that)\b",
    re.I,
)
_DAYS_AGO = re.compile(
    r"\b(\d{1,2}|a|one|two|three|four|five|six|seven|eight|nine|ten|(?:a )?couple(?: of)?|few|a few|several)"
    r"\s+days?\s+(?:ago|back|before)\b|\b(yesterday|today|this morning|(?:a|one|two|three|\d) weeks? ago)\b",
    re.I,
)
_WEEKS = re.compile(r"\b(this|last|previous|past)\s+week\b", re.I)
_POSITION = re.compile(
    r"\b(?:(last|latest|most recent|newest)|(previous|prior|penultimate|second[- ]to[- ]last)"
    r"|(first|earliest|oldest)|(second|third|fourth|fifth|2nd|3rd|4th|5th))\b"
    # Not a time ("last month"), a possessive ("last month's"), "the first of", a count ("the last 3").
    r"(?!\s+" + _TIME_UNIT + r"|\s+\w+'s\b|\s+of\b|\s+(?:few|couple|several|\d+|two|three|four|five)\b)"
    # ... and a charge word within a few words ("the last seat charge", "the second october payment").
    r"(?=(?:\s+[\w$.,'-]+){0,3}?\s+" + _CHARGE_NOUN + r"\b)"
    r"|\bthe (?:one|charge|payment) before (?:that|it|the last(?: one)?)\b",
    re.I,
)
_DESCRIPTIONS = (
    # What a charge was for, strongest first: "the extra seats" over "the renewal" said with it.
    ("retry", re.compile(r"\b(?:retry|retried|re-?tried|re-?charged|second attempt)\b", re.I)),
    ("failed", re.compile(r"\b(?:declined|failed|bounced|rejected)\b", re.I)),
    ("onboarding", re.compile(r"\bonboarding\b", re.I)),
    (
        "seats",
        re.compile(
            r"\b(?:extra|added|additional|new|more|bought|purchased|\d+|two|three|four|five|those)"
            r"\s+(?:\w+\s+)?seats?\b(?!\s+(?:plan|renewal|subscription))|\bseats?\s+(?:charge|payment|purchase|"
            r"one|fee|add-?on|upgrade|top-?up)\b|\bseat (?:charge|payment|one)\b",
            re.I,
        ),
    ),
    ("seats", re.compile(r"\bthe\s+(?:\w+\s+)?seats?\b(?!\s+(?:plan|renewal|subscription))", re.I)),
    (
        "renewal",
        re.compile(
            r"\b(?:renewal|renewed|renew|subscription|monthly (?:fee|charge|payment|bill|plan)|plan (?:charge|"
            r"payment|fee))\b",
            re.I,
        ),
    ),
    ("seats", re.compile(r"\bseats?\b", re.I)),
)
_OTHER_ONE = re.compile(
    r"\b(?:the|that|this)\s+(?:extra|other|second|additional|surplus)\s+(?:one|charge|payment|debit)\b", re.I
)


_EXCLUDED = re.compile(
    # A charge set aside: "but not this month's", "leave the renewal alone", "except the one from
    # October", "other than the seats" (a determiner, a time or an amount must follow: "did not need
    # the seats" sets nothing aside).
    r"\b(?:not|except(?: for)?|other than|apart from|besides|leave)\s+"
    r"(?=(?:the|this|that|those|these|my|our|his|her|their|last|in|from|on|any|\$|\d)\b|\$)"
    r"[^,.;:!?()]*",
    re.I,
)


_WEAK_DESCRIPTIONS = frozenset(
    p.pattern
    for kind, p in _DESCRIPTIONS
    if kind == "seats" and p.pattern.startswith((r"\bthe", r"\bseats?\b"))
)
"""The descriptions read from a word alone ("the seats", "seat"), not from words that describe a
charge ("extra seats", "the seats charge")."""
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _describing(text: str, pattern: re.Pattern[str]) -> list[str]:
    """Where a description is read: the whole text; for a word alone (`_WEAK_DESCRIPTIONS`) in a text
    of several sentences, only those that speak of a charge or state an amount ("Is this month's $80
    charge still refundable? We've stopped using most of the seats.": the seats are why, the charge
    is the renewal)."""
    sentences = [s for s in _SENTENCE.split(text) if s.strip()]
    if pattern.pattern not in _WEAK_DESCRIPTIONS or len(sentences) < 2:
        return [text]
    return [
        s for s in sentences if re.search(rf"\b{_CHARGE_NOUN}\b", s, re.I) or find_amount(s) is not None
    ] or [text]


def _selector_parts(text: str) -> dict[str, str] | None:
    """The parts the words state, by key (see `charge_selector`); {} when they state none; None when
    they name a duplicate ("the double charge", "the extra one"), which decides alone. Words that
    set a charge aside ("not this month's") state nothing about the one meant."""
    aside = [m.group(0).split(None, 1)[1] for m in _EXCLUDED.finditer(text)]
    text = _EXCLUDED.sub(" ", text)
    if _DUPLICATE_WORDS.search(text) or _OTHER_ONE.search(text):
        return None
    parts: dict[str, str] = {}
    for words in aside:
        # What is set aside, as parts marked "-": "not this month's" -> -months_ago:0.
        for key, value in (_selector_parts(words) or {}).items():
            if key in SELECTOR_KEYS and key not in ("pos", "nth"):
                parts[f"-{key}"] = value
    if (amount := find_amount(text)) is not None:
        parts["amount"] = f"{amount:.2f}"
    for kind, pattern in _DESCRIPTIONS:
        if any(pattern.search(sentence) for sentence in _describing(text, pattern)):
            parts["desc"] = kind
            break
    if m := _MONTH_NAME.search(text):
        parts["month"] = str(_MONTHS[next(g for g in m.groups() if g).lower().rstrip(".")])
    elif m := _MONTHS_AGO.search(text):
        which, count = m.group(1), m.group(2)
        if which:
            parts["months_ago"] = "0" if which.lower() in ("this", "current") else "1"
        elif count:
            parts["months_ago"] = str(int(count) if count.isdigit() else _NUMBER_WORDS[count.lower()])
        elif "before" in m.group(0).lower():
            parts["months_ago"] = "2"
        else:
            parts["months_ago"] = "0"
    if m := _DAY_OF_MONTH.search(text):
        said = next(g for g in m.groups() if g)
        number = int(said) if said.isdigit() else _ORDINALS[said.lower()]
        if 1 <= number <= 31:
            parts["day"] = str(number)
    if m := _DAYS_AGO.search(text):
        parts["days_ago"] = _days_ago(m)
    elif m := _WEEKS.search(text):
        parts["weeks_ago"] = "0" if m.group(1).lower() == "this" else "1"
    if m := _POSITION.search(text):
        latest, previous, first, nth = m.group(1), m.group(2), m.group(3), m.group(4)
        if latest:
            parts["pos"] = "latest"
        elif first:
            parts["pos"] = "first"
        elif nth:
            if not _TIME_KEYS & set(parts):
                # "the second charge" with no day or month to count in: the charge that came again.
                return None
            parts["nth"] = str(_ORDINALS[nth.lower()])
        elif previous or m.group(0):
            parts["pos"] = "previous"
    return parts


def _days_ago(m: re.Match[str]) -> str:
    """ "3 days ago" -> "2-4": how many days ago, as a range (people round)."""
    said = (m.group(1) or m.group(2) or "").lower()
    if said in ("today", "this morning"):
        return "0-0"
    if said == "yesterday":
        return "1-1"
    if "week" in said:
        count = said.split()[0]
        weeks = int(count) if count.isdigit() else _NUMBER_WORDS.get(count, 1)
        return f"{7 * weeks - 3}-{7 * weeks + 3}"
    if said in ("few", "a few", "several"):
        return "1-10"
    days = int(said) if said.isdigit() else _NUMBER_WORDS.get(said.replace("  ", " "), 2)
    slack = max(1, days // 5)
    return f"{max(0, days - slack)}-{days + slack}"


def find_amounts(text: str) -> list[float]:
    """Every currency amount in the text, in order, in dollars (negative when a minus sign leads)."""
    return [_amount(m) for m in AMOUNT.finditer(text)]


def request_amounts(text: str) -> list[float]:
    """The amounts a request states, read as `charge_selector` reads them: a follow-up's own words
    first ("and the $36 one? (follow-up to: ...the $270 renewal...)": $36), else the request it
    continues."""
    new, _, earlier = text.partition(FOLLOW_UP_MARK)
    return find_amounts(new) or find_amounts(earlier)


def find_amount(text: str) -> float | None:
    """The first currency amount in the text (see `AMOUNT`); None when it states none."""
    m = AMOUNT.search(text)
    return _amount(m) if m else None


def _amount(m: re.Match[str]) -> float:
    groups = [g for g in m.groups() if g is not None]
    negative = any(g.strip() == "-" for g in groups)
    digits = "".join(g for g in groups if g.strip() != "-").replace(",", "")
    return -float(digits) if negative else float(digits)


def load_charges(conn: sqlite3.Connection, customer_id: str) -> list[dict[str, Any]]:
    """The customer's charges, newest first, with the refund of each (if any)."""
    rows = conn.execute(
        """
        SELECT ch.id, ch.invoice_id, ch.amount_cents, ch.status, ch.description, ch.created_at,
               r.id AS refund_id, r.created_at AS refunded_at, r.idempotency_key AS refund_key
        FROM charges ch LEFT JOIN refunds r ON r.charge_id = ch.id
        WHERE ch.customer_id = ?
        ORDER BY ch.created_at DESC, ch.id DESC
        """,
        (customer_id,),
    ).fetchall()
    return [dict(r) for r in rows]


def load_invoices(conn: sqlite3.Connection, customer_id: str, limit: int = 4) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, description, amount_cents, status, issued_at FROM invoices"
        " WHERE customer_id = ? ORDER BY issued_at DESC, id DESC LIMIT ?",
        (customer_id, limit),
    ).fetchall()
    return [dict(r) for r in rows]


def find_duplicates(charges: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Duplicate charge id -> the first charge of the same invoice (succeeded charges only)."""
    first: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    for charge in sorted(charges, key=lambda c: (c["created_at"], c["id"])):
        if charge["status"] != "succeeded" or not charge["invoice_id"]:
            continue
        original = first.setdefault(charge["invoice_id"], charge["id"])
        if original != charge["id"]:
            duplicates[charge["id"]] = original
    return duplicates


def refund_eligibility(
    charge: Mapping[str, Any], duplicate_of: str | None, now: datetime
) -> tuple[bool, str, str]:
    """(eligible, why, policy citation), by the written refund policy."""
    if charge.get("refund_id"):
        return (
            False,
            f"it was already refunded (R-{charge['refund_id']} on {day(charge['refunded_at'])})",
            citation("Already refunded charges"),
        )
    if charge["status"] != "succeeded":
        return False, "the charge failed, so no money was taken", citation("What is not refundable")
    if duplicate_of:
        return (
            True,
            f"it is a duplicate of {duplicate_of}, and duplicate charges are always refundable",
            citation("Duplicate charges"),
        )
    age = (now.date() - parse_time(charge["created_at"]).date()).days
    if age <= REFUND_WINDOW_DAYS:
        return (
            True,
            f"it is {age} days old, within the {REFUND_WINDOW_DAYS}-day refund window",
            citation("Refund window"),
        )
    return (
        False,
        f"it is {age} days old, past the {REFUND_WINDOW_DAYS}-day refund window, and not a duplicate",
        citation("Refund window"),
    )


@dataclass(frozen=True)
class ChargeMatch:
    """What a selector found: the charge (None when none, or when it cannot tell which), how it was
    chosen among several (`note`), and the charges to ask about when it cannot tell (`choices`)."""

    charge: Mapping[str, Any] | None
    wanted: str = ""
    """The charge the request describes, in words ("renewal charge from last month")."""
    note: str = ""
    """Why this one, when more than one matched ("the only one of 3 renewal charges still refundable")."""
    choices: tuple[Mapping[str, Any], ...] = ()
    """When the request does not say which of several refundable charges: those charges; when nothing
    fits it, the charges that could be refunded."""
    ambiguous: bool = False
    fits: tuple[Mapping[str, Any], ...] = ()
    """When a position word finds nothing ("the second October payment" of a month with one): the
    charges that fit the rest of the words."""


def parse_selector(selector: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """A selector's parts (see `charge_selector`): (the parts the request states, the soft parts an
    earlier request carried, the parts of a charge it sets aside). `charge:`, `auto` and `latest`
    are read by `match_charges` itself."""
    hard: dict[str, str] = {}
    soft: dict[str, str] = {}
    aside: dict[str, str] = {}
    for item in selector.split("|"):
        key, _, value = item.partition(":")
        if key.startswith("~"):
            soft[key[1:]] = value
        elif key.startswith("-"):
            aside[key[1:]] = value
        elif key:
            hard[key] = value
    return hard, soft, aside


def charge_tags(charge: Mapping[str, Any]) -> set[str]:
    """What a charge was for, from its description and status: renewal, seats (a seat purchase),
    onboarding, retry, failed (the `desc` words of a selector)."""
    text = str(charge.get("description") or "").lower()
    tags = set()
    if re.search(r"\b(renewal|monthly|subscription|annual|yearly)\b", text):
        tags.add("renewal")
    elif re.search(r"\bseats?\b", text):
        tags.add("seats")
    if "onboarding" in text:
        tags.add("onboarding")
    if re.search(r"\bretr(y|ied)\b", text):
        tags.add("retry")
    if charge.get("status") == "failed" or "declined" in text:
        tags.add("failed")
    return tags


def _month_back(now: datetime, months: int) -> tuple[int, int]:
    index = now.year * 12 + now.month - 1 - months
    return index // 12, index % 12 + 1


def _newest_month(found: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Of charges said by month or day without a year, those of the most recent such month."""
    if not found:
        return found
    latest = max((t.year, t.month) for t in (parse_time(c["created_at"]) for c in found))
    return [c for c in found if (lambda t: (t.year, t.month))(parse_time(c["created_at"])) == latest]


def _filter(
    charges: Sequence[Mapping[str, Any]], parts: Mapping[str, str], now: datetime
) -> list[Mapping[str, Any]]:
    """The charges every part fits (position and ordinal words are applied after)."""
    found = list(charges)
    if "amount" in parts:
        cents = round(float(parts["amount"]) * 100)
        found = [c for c in found if c["amount_cents"] == cents]
    if "desc" in parts:
        found = [c for c in found if parts["desc"] in charge_tags(c)]
    if "months_ago" in parts:
        target = _month_back(now, int(parts["months_ago"]))
        found = [
            c
            for c in found
            if (parse_time(c["created_at"]).year, parse_time(c["created_at"]).month) == target
        ]
    if "month" in parts:
        # A month by name is the latest one of that name the charges have (never a future one).
        found = [c for c in found if parse_time(c["created_at"]).month == int(parts["month"])]
        found = _newest_month([c for c in found if parse_time(c["created_at"]) <= now] or found)
    if "day" in parts:
        found = [c for c in found if parse_time(c["created_at"]).day == int(parts["day"])]
        if "month" not in parts and "months_ago" not in parts:
            found = _newest_month(found)  # "on the 1st": the latest 1st with a charge
    if "days_ago" in parts:
        low, _, high = parts["days_ago"].partition("-")
        found = [
            c
            for c in found
            if int(low) <= (now.date() - parse_time(c["created_at"]).date()).days <= int(high)
        ]
    if "weeks_ago" in parts:
        week = (now - timedelta(days=7 * int(parts["weeks_ago"]))).isocalendar()[:2]
        found = [c for c in found if parse_time(c["created_at"]).isocalendar()[:2] == week]
    return found


_DESC_WORDS = {
    "seats": "seat purchase",
    "renewal": "renewal",
    "onboarding": "onboarding fee",
    "retry": "retried",
    "failed": "failed",
}


def describe_selector(parts: Mapping[str, str], *, plural: bool = False) -> str:
    """The charge a selector's parts describe, in words: "latest renewal charge of $80.00 this month"
    (`plural`: "renewal charges this month")."""
    words = []
    if parts.get("pos"):
        words.append({"latest": "latest", "previous": "second latest", "first": "first"}[parts["pos"]])
    if parts.get("nth"):
        n = int(parts["nth"])
        words.append({1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th"))
    if parts.get("desc"):
        words.append(_DESC_WORDS.get(parts["desc"], parts["desc"]))
    if parts.get("desc") == "onboarding":
        words[-1] += "s" if plural else ""
    else:
        words.append("charges" if plural else "charge")
    if "amount" in parts:
        words.append(f"of ${float(parts['amount']):,.2f}")
    if "month" in parts:
        words.append(f"in {datetime(2000, int(parts['month']), 1).strftime('%B')}")
    if "months_ago" in parts:
        ago = int(parts["months_ago"])
        words.append({0: "this month", 1: "last month"}.get(ago, f"{ago} months ago"))
    if "day" in parts:
        d = int(parts["day"])
        suffix = "th" if 10 <= d % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
        words.append(f"on the {d}{suffix}")
    if "days_ago" in parts:
        low, _, high = parts["days_ago"].partition("-")
        words.append(
            {"0": "today", "1": "yesterday"}.get(low, f"{low} to {high} days ago")
            if low == high
            else f"{low} to {high} days ago"
        )
    if "weeks_ago" in parts:
        words.append("this week" if parts["weeks_ago"] == "0" else "last week")
    return " ".join(words)


def _refundable(
    charges: Sequence[Mapping[str, Any]], duplicates: Mapping[str, str], now: datetime
) -> list[Mapping[str, Any]]:
    """The charges the policy would refund now (as `refund_eligibility` decides)."""
    return [
        c
        for c in charges
        if not c.get("refund_id")
        and c["status"] == "succeeded"
        and (
            c["id"] in duplicates
            or (now.date() - parse_time(c["created_at"]).date()).days <= REFUND_WINDOW_DAYS
        )
    ]


def match_charges(
    charges: Sequence[Mapping[str, Any]],
    duplicates: Mapping[str, str],
    selector: str,
    now: datetime | None = None,
) -> ChargeMatch:
    """The charge a request is about (see `charge_selector`), from the customer's charges (newest
    first), as a careful agent would read it:

    - the charges every stated part fits (soft parts from an earlier request too, unless with them
      nothing fits), successful ones only unless only failed ones fit;
    - a position word picks among them ("the latest", "the first", "the second October payment",
      counted from the oldest);
    - else one fits: that one; several: the only one the policy still refunds, else the only
      duplicate among those it refunds; several it refunds and nothing to tell them apart: none,
      with the choices to ask about; none it refunds: a duplicate, one not refunded, the newest
      (the answer then says why not);
    - `auto` (a duplicate, or nothing said): the newest duplicate not refunded yet; with no duplicate,
      none, and the charges that could be refunded are the choices.
    """
    now = now or now_utc()
    kind, _, value = selector.partition(":")
    if kind == "charge":
        return ChargeMatch(next((c for c in charges if c["id"] == value), None), f"charge {value}")
    if selector == "latest":
        return ChargeMatch(next((c for c in charges if c["status"] == "succeeded"), None), "latest charge")
    if selector == "auto":
        # The newest duplicate not refunded yet; else the newest refunded one (the answer: "already refunded").
        ranked = sorted((c for c in charges if c["id"] in duplicates), key=lambda c: bool(c["refund_id"]))
        if ranked:
            return ChargeMatch(ranked[0], "duplicate charge")
        return ChargeMatch(None, "duplicate charge", choices=tuple(_refundable(charges, duplicates, now)))
    hard, soft, aside = parse_selector(selector)
    found = _filter(charges, hard, now)
    if aside:
        set_aside = {c["id"] for c in _filter(found, aside, now)}
        found = [c for c in found if c["id"] not in set_aside]
    if soft and (narrowed := _filter(found, soft, now)):
        found, hard = narrowed, {**soft, **hard}
    wanted = describe_selector(hard)
    succeeded = [c for c in found if c["status"] == "succeeded"]
    found = succeeded or found
    if not found:
        return ChargeMatch(None, wanted, choices=tuple(_refundable(charges, duplicates, now)))
    if "pos" in hard or "nth" in hard:
        oldest_first = found[::-1]
        pick: Mapping[str, Any] | None
        if hard.get("pos") == "latest":
            pick = found[0]
        elif hard.get("pos") == "previous":
            pick = found[1] if len(found) > 1 else None
        elif hard.get("pos") == "first":
            pick = oldest_first[0]
        else:
            n = int(hard["nth"])
            pick = oldest_first[n - 1] if len(oldest_first) >= n else None
        rest = {k: v for k, v in hard.items() if k not in ("pos", "nth")}
        if pick is None:
            return ChargeMatch(None, wanted, fits=tuple(found))
        position = describe_selector({k: v for k, v in hard.items() if k in ("pos", "nth")}).removesuffix(
            " charge"
        )
        note = (
            f"the {position} of {len(found)} {describe_selector(rest, plural=True)}" if len(found) > 1 else ""
        )
        return ChargeMatch(pick, wanted, note)
    if len(found) == 1:
        return ChargeMatch(found[0], wanted)
    refundable = _refundable(found, duplicates, now)
    if len(refundable) == 1:
        return ChargeMatch(
            refundable[0],
            wanted,
            f"the only one of {len(found)} {describe_selector(hard, plural=True)} that can still be refunded",
        )
    if refundable:
        dups = [c for c in refundable if c["id"] in duplicates]
        if len(dups) == 1:
            return ChargeMatch(
                dups[0], wanted, f"the duplicate among {len(found)} {describe_selector(hard, plural=True)}"
            )
        return ChargeMatch(
            None, describe_selector(hard, plural=True), choices=tuple(refundable), ambiguous=True
        )
    ranked = sorted(found, key=lambda c: (c["id"] not in duplicates, bool(c["refund_id"])))
    return ChargeMatch(
        ranked[0],
        wanted,
        f"the newest of {len(found)} {describe_selector(hard, plural=True)}, none of which can be refunded",
    )


def described_charges(
    charges: Sequence[Mapping[str, Any]], selector: str, now: datetime | None = None
) -> tuple[list[Mapping[str, Any]], str] | None:
    """The charges a request describes ("the 36 dollar thing three days ago", "this month's
    charges", "CH-2034") and the description in words; None when it describes none (`auto`)."""
    now = now or now_utc()
    kind, _, value = selector.partition(":")
    if selector == "auto":
        return None
    if kind == "charge":
        return [c for c in charges if c["id"] == value], f"charge {value}"
    if selector == "latest":
        return [c for c in charges if c["status"] == "succeeded"][:1], "latest charge"
    hard, soft, aside = parse_selector(selector)
    found = _filter(charges, hard, now)
    if aside:
        set_aside = {c["id"] for c in _filter(found, aside, now)}
        found = [c for c in found if c["id"] not in set_aside]
    if soft and (narrowed := _filter(found, soft, now)):
        found, hard = narrowed, {**soft, **hard}
    if "pos" in hard or "nth" in hard:
        pick = match_charges(charges, {}, selector, now).charge
        found = [pick] if pick else []
    return found, describe_selector(hard)


def pick_charge(
    charges: Sequence[Mapping[str, Any]],
    duplicates: Mapping[str, str],
    selector: str,
    now: datetime | None = None,
) -> Mapping[str, Any] | None:
    """The charge a refund request is about (see `charge_selector` and `match_charges`)."""
    return match_charges(charges, duplicates, selector, now).charge


def charge_label(charge: Mapping[str, Any]) -> str:
    """ "CH-2034 ($36.00 on 04 Dec 2026, 2 extra Team seats, prorated)": a charge as a choice."""
    what = f", {charge['description']}" if charge.get("description") else ""
    return f"{charge['id']} ({money(charge['amount_cents'])} on {day(charge['created_at'])}{what})"


def _listed(charges: Sequence[Mapping[str, Any]]) -> str:
    labels = [charge_label(c) for c in charges]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _no_pick_reason(kind: str, value: str, match: ChargeMatch) -> str:
    """Why no charge was picked, with the charges to choose from when some could be refunded."""
    if match.ambiguous:
        return f"{len(match.choices)} {match.wanted} could each be refunded: {_listed(match.choices)}; which one do you mean"
    what = {
        "charge": f"no charge {value} on this account",
        "latest": "no successful charge on this account",
    }.get(kind) or (
        "no duplicate charge on this account" if kind == "auto" else f"no {match.wanted} on this account"
    )
    if match.fits:
        one = len(match.fits) == 1
        return f"{what}: the {'only one' if one else 'ones'} that {'fits' if one else 'fit'} the rest {'is' if one else 'are'} {_listed(match.fits)}"
    if kind == "charge" or not match.choices:
        return what
    if len(match.choices) == 1:
        return f"{what}; the charge that could still be refunded is {_listed(match.choices)}: is that the one you mean"
    return f"{what}; the charges that could still be refunded are {_listed(match.choices)}; which one do you mean"


def refund_candidate(
    customer: Mapping[str, Any],
    charges: Sequence[Mapping[str, Any]],
    duplicates: Mapping[str, str],
    selector: str,
    now: datetime,
) -> dict[str, Any]:
    """What a refund would be for, and whether the policy allows it: plain data for the context."""
    base: dict[str, Any] = {
        "selector": selector,
        "customer_id": customer["id"],
        "customer_name": customer["name"],
    }
    match = match_charges(charges, duplicates, selector, now)
    charge = match.charge
    if charge is None:
        kind, _, value = selector.partition(":")
        kind = kind if selector in ("auto", "latest") or kind == "charge" else "parts"
        if selector.startswith("amount:") and "|" not in selector and not match.choices:
            what = f"no charge of ${value} on this account"
        else:
            what = _no_pick_reason(kind, value, match)
        return {
            **base,
            "charge_id": None,
            "amount": None,
            "eligible": False,
            "reason": what,
            "citation": "",
            "choices": [c["id"] for c in match.choices],
        }
    eligible, reason, cite = refund_eligibility(charge, duplicates.get(charge["id"]), now)
    return {
        **base,
        "charge_id": charge["id"],
        "amount": charge["amount_cents"] / 100,
        "amount_cents": charge["amount_cents"],
        "charged_at": charge["created_at"],
        "invoice_id": charge["invoice_id"],
        "description": charge.get("description"),
        "picked": match.note,
        "duplicate_of": duplicates.get(charge["id"]),
        "eligible": eligible,
        "reason": reason,
        "citation": cite,
    }


def suggested_refund(query: str, candidate: Mapping[str, Any]) -> SuggestedAction | None:
    """The refund this answer offers (`Capability.suggested_action`): the candidate, when the policy
    allows it and the answer says so (a duplicate it lists as eligible, or a request that asked about
    refunds). The refund itself runs only on a go-ahead from the user, for the same request."""
    if not candidate.get("charge_id") or not candidate.get("eligible"):
        return None
    if not candidate.get("duplicate_of") and not _REFUND_WORDS.search(query):
        return None
    what = "duplicate charge" if candidate.get("duplicate_of") else "charge"
    return SuggestedAction(
        capability="refund",
        question=(
            f"I can refund {money(candidate['amount_cents'])} to {candidate['customer_name']} "
            f"({candidate['customer_id']}) for {what} {candidate['charge_id']} of {day(candidate['charged_at'])}."
        ),
    )


def _charge_line(charge: Mapping[str, Any]) -> str:
    text = f"{charge['id']} {money(charge['amount_cents'])} on {day(charge['created_at'])}"
    if charge["status"] != "succeeded":
        text += f" ({charge['status']})"
    elif charge.get("refund_id"):
        text += f" (refunded, R-{charge['refund_id']})"
    return text


class BillingInputs(CapabilityInputs):
    customer_id: str | None = None
    """From the account step (or an earlier turn)."""
    charge_id: str | None = None
    """A charge the plan names; else found in the query."""


class Billing(Capability):
    name = "billing"
    description = (
        "A customer's charges and invoices: what they paid and when, duplicate charges, and whether "
        "a charge can be refunded under the refund policy."
    )
    provides = ("billing", "refund_candidate")
    requires = ("customer_id",)
    Inputs = BillingInputs
    classifier_guide = ClassifierGuide(
        instructions=(
            "Questions about what the customer was charged or invoiced: charges, invoices, double "
            "charges, unexpected amounts, whether a charge can be refunded. Not issuing the refund."
        ),
        examples=(
            GuideExample(
                query="why do you keep taking money from our account", reason="a complaint about charges"
            ),
            GuideExample(query="how much was our last payment", reason="the amount billed"),
            GuideExample(
                query="has my card been debited for the new seats yet? C-1002",
                reason="whether a charge went through",
            ),
            GuideExample(
                query="which payments went through on our account this quarter", reason="a list of charges"
            ),
            GuideExample(
                query="did you take a payment from my card this week", reason="whether a charge was made"
            ),
            GuideExample(
                query="what is this payment of $125 on my bank statement", reason="an unexplained charge"
            ),
            GuideExample(
                query="you charged my card two times, seriously??", reason="a complaint about a duplicate"
            ),
            GuideExample(
                query="i need our invoices for the accountant, C-1006", reason="invoices for someone else"
            ),
            GuideExample(query="copy of invoice INV-3022 please", reason="one invoice by id"),
            GuideExample(
                query="did the renewal payment for Kola Works go through",
                reason="payment status, company name",
            ),
            GuideExample(
                query="Kindly send me the list of payments of my company.", reason="non-native wording"
            ),
            GuideExample(query="double charged again, c-1001", reason="terse duplicate"),
            GuideExample(
                query="no need to send money back, I only want to understand the two payments",
                reason="negated refund: only the charges",
            ),
            GuideExample(
                query="would last month's duplicate still be eligible for a refund",
                reason="eligibility, not the refund itself",
            ),
            GuideExample(query="receipt for the latest charge", reason="a receipt is an invoice"),
            GuideExample(query="charges on account C-1005", reason="list charges"),
            GuideExample(query="what am I paying you every month", reason="the amount billed"),
            GuideExample(query="I was charged twice last month", reason="duplicate charge"),
            GuideExample(query="why is there a second payment on my card from you", reason="duplicate"),
            GuideExample(query="show me my invoices from the last few months", reason="invoices"),
            GuideExample(query="how much did you bill me in October?", reason="charges"),
            GuideExample(query="can I get a refund for the charge from last week?", reason="eligibility"),
            GuideExample(
                query="my card statement has two identical Tandem payments", reason="duplicate charge"
            ),
            GuideExample(query="what was I charged for on the 1st", reason="a charge explained"),
            GuideExample(query="is charge CH-2034 refundable?", reason="eligibility of a named charge"),
            GuideExample(query="I think you billed us the wrong amount this month", reason="a charge"),
            GuideExample(query="list the payments we made this year, I'm jane@acme.io", reason="charges"),
            GuideExample(query="did my last payment go through?", reason="charge status"),
            GuideExample(
                query="our card was declined, have you charged it again since?", reason="charge status"
            ),
            GuideExample(query="send me a copy of the invoice for September", reason="an invoice"),
            GuideExample(
                query="there's a $36 charge from you I don't understand", reason="a charge explained"
            ),
            GuideExample(
                query="my renewal charge failed last week, is the invoice paid now?", reason="charge status"
            ),
            GuideExample(
                query="refund my duplicate charge",
                result=False,
                reason="issuing a refund: the refund capability",
            ),
            GuideExample(query="what does the Team plan cost for 12 seats", result=False, reason="a quote"),
            GuideExample(
                query="what is your refund policy",
                result=False,
                reason="a policy question for the knowledge base",
            ),
            GuideExample(query="how do I change the card on file", result=False, reason="a how-to question"),
            GuideExample(query="which plan am I on", result=False, reason="account details"),
            GuideExample(
                query="what does your policy say about refunds for old payments",
                result=False,
                reason="a policy question",
            ),
            GuideExample(query="how do I download invoices as PDF", result=False, reason="a how-to question"),
        ),
    )
    orchestrator_guide = OrchestratorGuide(
        instructions="Needs customer_id (run account first). Give `charge_id` when the user names one."
    )

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.db = SupportDBs(self.options.get("db"), seed=bool(self.options.get("seed", True)))

    async def execute(self, inputs: BillingInputs, ctx: RunContext) -> dict[str, Any]:
        return await self.blocking(self.report, self.db.at(ctx.data_dir), inputs, ctx.context)

    def report(
        self, db: SupportDB, inputs: BillingInputs, context: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        now = now_utc()
        selector = charge_selector(inputs.query, inputs.charge_id)
        with db.connect() as conn:
            found = resolve_customer(conn, inputs.query, inputs.customer_id, context)
            if found.customer is None:
                # None clears an earlier turn's values: a refund must never act on another request's charge.
                return {
                    "billing": None,
                    "refund_candidate": None,
                    "summary": f"Billing: {identity_request(found, 'look at your charges')}",
                }
            customer = found.customer
            charges = load_charges(conn, customer["id"])
            invoices = load_invoices(conn, customer["id"]) if _INVOICE_WORDS.search(inputs.query) else []
        duplicates = find_duplicates(charges)
        # `query` ties the candidate to this request: the refund step uses it only for the same task.
        candidate = {**refund_candidate(customer, charges, duplicates, selector, now), "query": inputs.query}
        described = described_charges(charges, selector, now)
        summary = self._summary(inputs.query, customer, charges, invoices, duplicates, candidate, described)
        output: dict[str, Any] = {
            "billing": {
                "customer_id": customer["id"],
                "charges": [_public(c) for c in charges[:6]],
                "invoices": [{**i, "amount": i["amount_cents"] / 100} for i in invoices],
                "duplicates": duplicates,
            },
            "refund_candidate": candidate,
            "summary": summary,
        }
        if (suggests := suggested_refund(inputs.query, candidate)) is not None:
            output["suggests"] = suggests
        return output

    @staticmethod
    def _summary(
        query: str,
        customer: Mapping[str, Any],
        charges: Sequence[Mapping[str, Any]],
        invoices: Sequence[Mapping[str, Any]],
        duplicates: Mapping[str, str],
        candidate: Mapping[str, Any],
        described: tuple[Sequence[Mapping[str, Any]], str] | None = None,
    ) -> str:
        who = f"{customer['name']} ({customer['id']})"
        parts = []
        if invoices:
            listed = "; ".join(
                f"{i['id']} {money(i['amount_cents'])} {i['status']} ({day(i['issued_at'])}, {i['description']})"
                for i in invoices
            )
            parts.append(f"Invoices for {who}: {listed}.")
        elif charges:
            parts.append(f"Recent charges for {who}: {'; '.join(_charge_line(c) for c in charges[:4])}.")
        else:
            parts.append(f"{who} has no charges yet.")
        duplicate_charges = [c for c in charges if c["id"] in duplicates]
        for charge in duplicate_charges[:2]:
            status = (
                f"already refunded (R-{charge['refund_id']})"
                if charge["refund_id"]
                else f"eligible for a full refund, as duplicate charges always are {citation('Duplicate charges')}"
            )
            parts.append(
                f"Duplicate charge: {charge['id']} ({money(charge['amount_cents'])} on {day(charge['created_at'])}) "
                f"charged invoice {charge['invoice_id']} a second time (first charge {duplicates[charge['id']]}); "
                f"{status}."
            )
        if not duplicates and _DUPLICATE_WORDS.search(query):
            parts.append("I found no duplicate charge: every invoice was charged once.")
        shown = {c["id"] for c in duplicate_charges[:2]}
        if described is not None and not _REFUND_WORDS.search(query):
            # "what was the 36 dollar thing three days ago for?": the charges the words describe.
            found, wanted = described
            if found:
                parts.append(
                    " ".join(
                        f"{c['id']} ({money(c['amount_cents'])} on {day(c['created_at'])}) was for: "
                        f"{c['description']}."
                        for c in found[:3]
                    )
                )
            else:
                parts.append(f"I found no {wanted} on this account.")
        if _REFUND_WORDS.search(query) and candidate.get("charge_id") not in shown:
            if candidate.get("charge_id"):
                verdict = "eligible" if candidate["eligible"] else "not eligible"
                what = f", {candidate['description']}" if candidate.get("description") else ""
                picked = f"; {candidate['picked']}" if candidate.get("picked") else ""
                parts.append(
                    f"Refund eligibility of {candidate['charge_id']} ({money(candidate['amount_cents'])} on "
                    f"{day(candidate['charged_at'])}{what}{picked}): {verdict}, {candidate['reason']} "
                    f"{candidate['citation']}."
                )
            else:
                parts.append(f"Nothing to refund: {candidate['reason']}.")
        return " ".join(parts)


def _public(charge: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": charge["id"],
        "invoice_id": charge["invoice_id"],
        "amount": charge["amount_cents"] / 100,
        "status": "refunded" if charge["refund_id"] else charge["status"],
        "description": charge["description"],
        "created_at": charge["created_at"],
        "refund_id": f"R-{charge['refund_id']}" if charge["refund_id"] else None,
    }


__all__ = [
    "AMOUNT",
    "REFUND_WINDOW_DAYS",
    "Billing",
    "ChargeMatch",
    "charge_selector",
    "charge_tags",
    "describe_selector",
    "find_amount",
    "find_amounts",
    "find_duplicates",
    "load_charges",
    "match_charges",
    "parse_selector",
    "pick_charge",
    "refund_eligibility",
    "request_amounts",
]
