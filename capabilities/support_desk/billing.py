"""Billing: a customer's charges and invoices, duplicate charges, and refund eligibility by policy.

The refund rules are written for people in `data/knowledge/refund-policy.md` and encoded
here as `refund_eligibility` (a test checks that the two agree on the window):
duplicates are always eligible, any other charge within REFUND_WINDOW_DAYS of its date, a charge
is refunded at most once, failed charges never.

Billing also picks the charge a refund would be for (`refund_candidate`): the charge the request
names (id or currency amount), else the most recent duplicate, else, for "my last charge", the latest
one. The refund step runs after billing in the same turn, so the approval question can show the
amount and charge before anything is written; the candidate names the request it was picked for.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
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
    r"\b(twice|duplicate[sd]?|double[- ]?(?:charged|billed|charge)|charged two times|two charges|"
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
    """Which charge a request is about, as a comparable string: `charge:CH-2003`, `amount:125.00`,
    `latest` or `auto` (the duplicate, if any). Pure text work, no database: the refund's approval
    check uses it too."""
    if charge_id and (m := CHARGE_ID.search(charge_id)):
        return f"charge:CH-{m.group(1)}"
    if m := CHARGE_ID.search(text):
        return f"charge:CH-{m.group(1)}"
    if amount := find_amount(text):
        return f"amount:{amount:.2f}"
    if _LATEST_WORDS.search(text) and not _DUPLICATE_WORDS.search(text):
        return "latest"
    return "auto"


def find_amounts(text: str) -> list[float]:
    """Every currency amount in the text, in order, in dollars (negative when a minus sign leads)."""
    return [_amount(m) for m in AMOUNT.finditer(text)]


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


def pick_charge(
    charges: Sequence[Mapping[str, Any]], duplicates: Mapping[str, str], selector: str
) -> Mapping[str, Any] | None:
    """The charge a refund request is about (see `charge_selector`)."""
    kind, _, value = selector.partition(":")
    if kind == "charge":
        return next((c for c in charges if c["id"] == value), None)
    if kind == "amount":
        cents = round(float(value) * 100)
        same = [c for c in charges if c["amount_cents"] == cents and c["status"] == "succeeded"]
        # Prefer a duplicate, then one not refunded yet, then the newest.
        same.sort(key=lambda c: (c["id"] not in duplicates, bool(c["refund_id"])))
        return same[0] if same else None
    if kind == "latest":
        return next((c for c in charges if c["status"] == "succeeded"), None)
    # The newest duplicate not refunded yet; else the newest refunded one (the answer: "already refunded").
    ranked = sorted((c for c in charges if c["id"] in duplicates), key=lambda c: bool(c["refund_id"]))
    return ranked[0] if ranked else None


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
    charge = pick_charge(charges, duplicates, selector)
    if charge is None:
        what = {
            "charge": f"no charge {selector.partition(':')[2]} on this account",
            "amount": f"no charge of ${selector.partition(':')[2]} on this account",
            "latest": "no successful charge on this account",
        }.get(selector.partition(":")[0], "no duplicate charge on this account")
        return {**base, "charge_id": None, "amount": None, "eligible": False, "reason": what, "citation": ""}
    eligible, reason, cite = refund_eligibility(charge, duplicates.get(charge["id"]), now)
    return {
        **base,
        "charge_id": charge["id"],
        "amount": charge["amount_cents"] / 100,
        "amount_cents": charge["amount_cents"],
        "charged_at": charge["created_at"],
        "invoice_id": charge["invoice_id"],
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
        return await self.blocking(self.report, self.db.at(ctx.data_dir), inputs)

    def report(self, db: SupportDB, inputs: BillingInputs) -> dict[str, Any]:
        now = now_utc()
        selector = charge_selector(inputs.query, inputs.charge_id)
        with db.connect() as conn:
            found = resolve_customer(conn, inputs.query, inputs.customer_id)
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
        summary = self._summary(inputs.query, customer, charges, invoices, duplicates, candidate)
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
        if _REFUND_WORDS.search(query) and candidate.get("charge_id") not in shown:
            if candidate.get("charge_id"):
                verdict = "eligible" if candidate["eligible"] else "not eligible"
                parts.append(
                    f"Refund eligibility of {candidate['charge_id']} ({money(candidate['amount_cents'])} on "
                    f"{day(candidate['charged_at'])}): {verdict}, {candidate['reason']} {candidate['citation']}."
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
    "charge_selector",
    "find_amount",
    "find_amounts",
    "find_duplicates",
    "load_charges",
    "pick_charge",
    "refund_eligibility",
]
