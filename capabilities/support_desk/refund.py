"""Refund: issue a full refund of one charge, after approval, exactly once.

Order of events for "refund my duplicate charge, I'm jane@acme.io": account (who) -> billing (which
charge, and may it be refunded: `refund_candidate`) -> the router's side-effect policy (the user's
message must ask for the refund: `side_effects` and `action_verbs` below) -> the approval node asks a
human when the amount is above the registry's threshold -> this step writes the refund. Nothing is
written before approval: a denied step never runs.

What a human approves is what happens. The question and the execution use the same candidate:
billing's pick for this very request (same task text, same customer), and the execution refunds that
charge only, checking again that it is the customer's, of the same amount, and still refundable.
When the request cannot be resolved to one checked charge (no candidate for it, a charge or amount
the request does not name, an amount that is not the charge's), nothing is asked and nothing is
written: the answer says why. No blanket "refund something to C-1004?" question exists.

Exactly once: a charge has at most one refund (UNIQUE(charge_id)), and each refund row records the
request that made it (`idempotency_key` = thread, step, turn and charge). A resumed or repeated run finds
the existing refund and says so instead of refunding again.

The approval check runs inside the router on every decision, so it must not touch the database:
it reads billing's candidate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from capabilities.support_desk.account import NEED_IDENTITY, identity_request, resolve_customer
from capabilities.support_desk.billing import (
    CHARGE_ID,
    charge_selector,
    citation,
    find_duplicates,
    load_charges,
    refund_eligibility,
    request_amounts,
)
from capabilities.support_desk.db import SupportDB, SupportDBs, day, format_time, money, now_utc
from graph.capability import (
    REFUND_VERBS,
    Capability,
    CapabilityInputs,
    ClassifierGuide,
    GuideExample,
    OrchestratorGuide,
    RunContext,
)


class RefundInputs(CapabilityInputs):
    customer_id: str | None = None
    """From the account step of this turn."""
    refund_candidate: dict[str, Any] | None = None
    """From the billing step of this turn: the charge, its amount and whether the policy allows a refund."""
    charge_id: str | None = None
    """A charge the plan names; taken only when the request names it too."""
    amount: float | None = None
    """Dollars the plan names; taken only when the request states that amount too."""
    reason: str | None = None

    @property
    def selector(self) -> str:
        return charge_selector(self.query, self.charge_id)

    @property
    def stated_amounts(self) -> list[float]:
        """Currency amounts the request states (never digits of an id such as CH-2033); a follow-up's
        own amount before the one of the request it continues, as the selector reads them."""
        return request_amounts(self.query)

    @property
    def candidate(self) -> dict[str, Any] | None:
        """Billing's candidate if it was picked for this request (same task, charge and customer)."""
        cand = self.refund_candidate
        if not cand or cand.get("query") != self.query or cand.get("selector") != self.selector:
            return None
        if not self.customer_id or cand.get("customer_id") != self.customer_id:
            return None
        return cand

    def check(self) -> tuple[str, str] | None:
        """(status, why) when this request cannot refund anything, known without the database; None
        when it can refund exactly `candidate`."""
        if not self.customer_id:
            return "needs_identity", f"to find the charge, {NEED_IDENTITY}"
        named = {f"CH-{n}" for n in CHARGE_ID.findall(self.query)}
        if self.charge_id and charge_selector("", self.charge_id).partition(":")[2] not in named:
            return "not_named", f"the plan names charge {self.charge_id!r}, which the request does not name"
        stated = self.stated_amounts
        if self.amount is not None and round(self.amount * 100) not in {round(a * 100) for a in stated}:
            return "not_named", f"the plan names ${self.amount:,.2f}, an amount the request does not state"
        cand = self.candidate
        if cand is None:
            return (
                "not_checked",
                "the charge was not looked up for this request, so there is nothing checked to refund; "
                "ask again naming the charge id or its amount",
            )
        if not cand.get("charge_id"):
            return "no_charge", f"{cand['reason']}. Name the charge id or its amount"
        if not cand["eligible"]:
            return (
                "not_eligible",
                f"{cand['charge_id']} ({money(cand['amount_cents'])} on {day(cand['charged_at'])}) is not "
                f"refundable: {cand['reason']} {cand['citation']}",
            )
        asked = {round(a * 100) for a in ([self.amount] if self.amount is not None else stated)}
        if asked and asked != {cand["amount_cents"]}:
            said = ", ".join(f"${c / 100:,.2f}" for c in sorted(asked))
            return (
                "amount_mismatch",
                f"{cand['charge_id']} is {money(cand['amount_cents'])}, not the {said} the request names; "
                "ask again with the charge's amount or id",
            )
        return None


class Refund(Capability):
    name = "refund"
    description = "Issue a full refund of a charge (a duplicate charge, or one named by id or amount)."
    provides = ("refund",)
    requires = ("customer_id", "refund_candidate")
    side_effects = True
    action_verbs = REFUND_VERBS
    Inputs = RefundInputs
    classifier_guide = ClassifierGuide(
        instructions=(
            "The customer asks us to actually refund money for a charge. Not questions about charges "
            "or about the refund policy."
        ),
        examples=(
            GuideExample(
                query="I don't need a refund, just explain the charge",
                reason="negated: the charges, not a refund",
                result=False,
            ),
            GuideExample(
                query="would I get a refund if we cancelled", reason="hypothetical: the policy", result=False
            ),
            GuideExample(query="pls refund the duplicate on c1001", reason="shorthand"),
            GuideExample(
                query="I want this month's payment back, we never used the product", reason="money back"
            ),
            GuideExample(
                query="give back the money you took twice, this is unacceptable",
                reason="an angry refund request",
            ),
            GuideExample(query="refund CH-2013", reason="terse, by charge id"),
            GuideExample(
                query="cancel the payment and refund it to my card, Mei Chen", reason="refund by name"
            ),
            GuideExample(
                query="my boss says we should get that overcharge back from you",
                reason="asked for someone else",
            ),
            GuideExample(query="please to reimburse the wrong payment", reason="non-native wording"),
            GuideExample(query="I'd like to be reimbursed for the second charge", reason="reimbursed"),
            GuideExample(query="refund my duplicate charge", reason="issue a refund"),
            GuideExample(query="please refund the extra $125 you took, I'm jane@acme.io", reason="refund"),
            GuideExample(query="I want my money back for the double payment", reason="refund"),
            GuideExample(query="give me a refund for charge CH-2034", reason="refund a named charge"),
            GuideExample(query="reverse the second charge on my card", reason="refund"),
            GuideExample(
                query="we cancelled right after renewal, please refund this month's payment",
                reason="refund within the window",
            ),
            GuideExample(query="go ahead and process the refund", reason="refund"),
            GuideExample(query="can you send back the 30 dollars I was overcharged", reason="refund"),
            GuideExample(query="issue a refund to omar@brightpath.co for the duplicate", reason="refund"),
            GuideExample(query="refund last month's invoice please", reason="refund"),
            GuideExample(query="I need the duplicate payment returned to my card", reason="refund"),
            GuideExample(query="credit the double charge back to us", reason="refund"),
            GuideExample(query="what is your refund policy", result=False, reason="policy question"),
            GuideExample(query="was I charged twice last month?", result=False, reason="a billing question"),
            GuideExample(query="how long do refunds take to arrive", result=False, reason="policy question"),
            GuideExample(query="how much is the Team plan", result=False, reason="pricing"),
        ),
    )
    orchestrator_guide = OrchestratorGuide(
        instructions=(
            "Needs customer_id (account) and refund_candidate (billing, which picks the charge and checks "
            "the policy). Give `charge_id` or `amount` when the user names one."
        )
    )

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.db = SupportDBs(self.options.get("db"), seed=bool(self.options.get("seed", True)))

    def needs_approval(self, inputs: CapabilityInputs, policy: Mapping[str, Any]) -> str | None:
        """Ask before refunding more than the threshold, naming exactly what will be refunded.

        The amount compared is the checked charge's (what would be refunded), never one the request
        or a plan states. No question when the step will refund nothing (`RefundInputs.check`): the
        execution then writes nothing and the answer says why.
        """
        assert isinstance(inputs, RefundInputs)
        mode = policy.get("mode", "never")
        if mode == "never" or inputs.check() is not None:
            return None
        cand = inputs.candidate
        assert cand is not None  # check() passed
        threshold_cents = round(float(policy.get("threshold", 0)) * 100)
        if mode == "above" and 0 < cand["amount_cents"] <= threshold_cents:
            return None
        what = "duplicate charge" if cand.get("duplicate_of") else "charge"
        # What the charge was for: the request may have named it only that way ("the extra seats").
        described = f" ({cand['description']})" if cand.get("description") else ""
        return (
            f"Refund {money(cand['amount_cents'])} to {cand['customer_name']} ({cand['customer_id']}) "
            f"for {what} {cand['charge_id']} of {day(cand['charged_at'])}{described}? Policy: {cand['reason']}."
        )

    async def execute(self, inputs: RefundInputs, ctx: RunContext) -> dict[str, Any]:
        return await self.blocking(self.refund, self.db.at(ctx.data_dir), inputs, ctx)

    def refund(self, db: SupportDB, inputs: RefundInputs, ctx: RunContext) -> dict[str, Any]:
        """Refund the checked candidate's charge, after checking it again in the write transaction."""
        if (problem := inputs.check()) is not None:
            status, why = problem
            return _outcome(status, f"No refund made: {why}.")
        cand = inputs.candidate
        assert cand is not None
        now = now_utc()
        # BEGIN IMMEDIATE: two refunds of the same charge at once are serialised, and the second
        # finds the first (the UNIQUE constraint would stop it anyway).
        with db.transaction() as conn:
            # Only the customer the approval question named (this turn's account step).
            found = resolve_customer(conn, inputs.query, inputs.customer_id, ctx.context)
            if found.customer is None:
                return _outcome(
                    "needs_identity", f"No refund made: {identity_request(found, 'find the charge')}"
                )
            customer = found.customer
            if customer["id"] != inputs.customer_id or customer["id"] != cand["customer_id"]:
                return _outcome(
                    "customer_mismatch",
                    f"No refund made: this request names {customer['name']} ({customer['id']}), but the "
                    f"account in this conversation is {inputs.customer_id}. Ask again naming one account.",
                )
            charges = load_charges(conn, customer["id"])
            duplicates = find_duplicates(charges)
            charge = next((c for c in charges if c["id"] == cand["charge_id"]), None)
            if charge is None:
                return _outcome(
                    "no_charge", f"No refund made: there is no charge {cand['charge_id']} on this account."
                )
            if charge["amount_cents"] != cand["amount_cents"]:
                return _outcome(
                    "amount_mismatch",
                    f"No refund made: {charge['id']} is {money(charge['amount_cents'])}, not the "
                    f"{money(cand['amount_cents'])} that was checked for approval.",
                    charge_id=charge["id"],
                )
            key = request_key(ctx, charge["id"])
            existing = conn.execute(
                "SELECT id, amount_cents, idempotency_key, created_at FROM refunds WHERE charge_id = ?",
                (charge["id"],),
            ).fetchone()
            if existing is not None:
                by_this = " by this same request" if existing["idempotency_key"] == key else ""
                return _outcome(
                    "already_refunded",
                    f"{charge['id']} ({money(existing['amount_cents'])}) was already refunded{by_this}: "
                    f"refund R-{existing['id']} on {day(existing['created_at'])}. No second refund was made "
                    f"{citation('Already refunded charges')}.",
                    charge_id=charge["id"],
                    refund_id=f"R-{existing['id']}",
                    amount=existing["amount_cents"] / 100,
                )
            eligible, why, cite = refund_eligibility(charge, duplicates.get(charge["id"]), now)
            if not eligible:
                return _outcome(
                    "not_eligible",
                    f"No refund made for {charge['id']} ({money(charge['amount_cents'])} on "
                    f"{day(charge['created_at'])}): {why} {cite}.",
                    charge_id=charge["id"],
                )
            reason = inputs.reason or (
                f"duplicate of {duplicates[charge['id']]}" if charge["id"] in duplicates else why
            )
            cursor = conn.execute(
                "INSERT INTO refunds (charge_id, customer_id, amount_cents, reason, idempotency_key, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (charge["id"], customer["id"], charge["amount_cents"], reason, key, format_time(now)),
            )
            refund_id = f"R-{cursor.lastrowid}"
        approved = " (approved)" if ctx.approved else ""
        return _outcome(
            "refunded",
            f"Refunded {money(charge['amount_cents'])}{approved} to {customer['name']} for "
            f"{'duplicate charge ' if charge['id'] in duplicates else 'charge '}{charge['id']} of "
            f"{day(charge['created_at'])}: refund {refund_id}. It reaches the original payment method in "
            f"5 to 10 business days {citation('How refunds are paid')}.",
            charge_id=charge["id"],
            refund_id=refund_id,
            amount=charge["amount_cents"] / 100,
        )


def request_key(ctx: RunContext, charge_id: str) -> str:
    """Names one request: thread, plan step and turn (step ids repeat across turns, task texts
    rarely do). A resumed or repeated run of the same turn gets the same key."""
    turn = hashlib.sha256(" ".join(ctx.task.split()).lower().encode()).hexdigest()[:8]
    return f"{ctx.thread_id or '-'}:{ctx.step_id or '-'}:{turn}:{charge_id}"


def _outcome(status: str, summary: str, **details: Any) -> dict[str, Any]:
    return {"refund": {"status": status, **details}, "summary": summary}


__all__ = ["Refund", "RefundInputs"]
