"""Refund: issue a full refund of one charge, after approval, exactly once.

Order of events for "refund my duplicate charge, I'm jane@acme.io": account (who) -> billing (which
charge, and may it be refunded: `refund_candidate`) -> the approval node asks a human when the
amount is above the registry's threshold -> this step writes the refund. Nothing is written before
approval: a denied step never runs.

Exactly once: a charge has at most one refund (UNIQUE(charge_id)), and each refund row records the
request that made it (`idempotency_key` = thread, step, turn and charge). A resumed or repeated run finds
the existing refund and says so instead of refunding again.

The approval check runs inside the router on every decision, so it must not touch the database:
it reads the amount from billing's candidate, and when there is no usable candidate (an earlier
turn's candidate for another charge, say) it asks for approval anyway, without an amount.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from pydantic import model_validator

from capabilities.support_desk.account import identity_request, resolve_customer
from capabilities.support_desk.billing import (
    charge_selector,
    citation,
    find_amount,
    find_duplicates,
    load_charges,
    pick_charge,
    refund_eligibility,
)
from capabilities.support_desk.db import SupportDB, SupportDBs, day, format_time, money, now_utc
from graph.capability import (
    Capability,
    CapabilityInputs,
    ClassifierGuide,
    GuideExample,
    OrchestratorGuide,
    RunContext,
)


class RefundInputs(CapabilityInputs):
    customer_id: str | None = None
    """From the account step."""
    refund_candidate: dict[str, Any] | None = None
    """From the billing step: the charge, its amount and whether the policy allows a refund."""
    charge_id: str | None = None
    """The charge to refund (from the plan, else from the candidate or the request)."""
    amount: float | None = None
    """Dollars. The approval policy compares it with its threshold; None means not known yet."""
    reason: str | None = None

    @model_validator(mode="after")
    def _from_candidate(self) -> RefundInputs:
        """Take charge and amount from billing's candidate when it is about this request."""
        if self.candidate is not None:
            self.charge_id = self.charge_id or self.candidate["charge_id"]
            if self.amount is None:
                self.amount = float(self.candidate["amount"])
        elif self.amount is None:
            self.amount = find_amount(self.query)
        return self

    @property
    def selector(self) -> str:
        return charge_selector(self.query, self.charge_id)

    @property
    def candidate(self) -> dict[str, Any] | None:
        """Billing's candidate if it was picked for the same charge request and customer, else None."""
        cand = self.refund_candidate
        if not cand or not cand.get("charge_id"):
            return None
        if cand.get("selector") != charge_selector(self.query, self.charge_id) and not (
            self.charge_id and self.charge_id.upper() == cand["charge_id"]
        ):
            return None
        if self.customer_id and cand.get("customer_id") != self.customer_id:
            return None
        return cand


class Refund(Capability):
    name = "refund"
    description = "Issue a full refund of a charge (a duplicate charge, or one named by id or amount)."
    provides = ("refund",)
    requires = ("customer_id", "refund_candidate")
    Inputs = RefundInputs
    classifier_guide = ClassifierGuide(
        instructions=(
            "The customer asks us to actually refund money for a charge. Not questions about charges "
            "or about the refund policy."
        ),
        examples=(
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
        """Ask before refunding more than the threshold; when the amount is not known yet, ask anyway.

        No question when the step will refund nothing: no customer known yet (it asks who they are)
        or a candidate the policy refuses.
        """
        assert isinstance(inputs, RefundInputs)
        mode = policy.get("mode", "never")
        if mode == "never" or not inputs.customer_id:
            return None
        cand = inputs.candidate
        if cand is not None and not cand["eligible"]:
            return None
        threshold = float(policy.get("threshold", 0))
        if mode == "above" and inputs.amount is not None and inputs.amount <= threshold:
            return None
        if cand is not None:
            what = "duplicate charge" if cand.get("duplicate_of") else "charge"
            return (
                f"Refund {money(cand['amount_cents'])} to {cand['customer_name']} ({cand['customer_id']}) "
                f"for {what} {cand['charge_id']} of {day(cand['charged_at'])}? Policy: {cand['reason']}."
            )
        amount = f"${inputs.amount:,.2f}" if inputs.amount is not None else "an amount not checked yet"
        return f"Refund {amount} to {inputs.customer_id} for {inputs.query!r}? The charge was not looked up before asking."

    async def execute(self, inputs: RefundInputs, ctx: RunContext) -> dict[str, Any]:
        return await self.blocking(self.refund, self.db.at(ctx.data_dir), inputs, ctx)

    def refund(self, db: SupportDB, inputs: RefundInputs, ctx: RunContext) -> dict[str, Any]:
        now = now_utc()
        # BEGIN IMMEDIATE: two refunds of the same charge at once are serialised, and the second
        # finds the first (the UNIQUE constraint would stop it anyway).
        with db.transaction() as conn:
            # Only the customer the approval question named (the account step's customer_id).
            found = resolve_customer(conn, inputs.query, inputs.customer_id)
            if found.customer is None or not inputs.customer_id:
                return _outcome(
                    "needs_identity", f"No refund made: {identity_request(found, 'find the charge')}"
                )
            customer = found.customer
            if customer["id"] != inputs.customer_id:
                return _outcome(
                    "customer_mismatch",
                    f"No refund made: this request names {customer['name']} ({customer['id']}), but the "
                    f"account in this conversation is {inputs.customer_id}. Ask again naming one account.",
                )
            charges = load_charges(conn, customer["id"])
            duplicates = find_duplicates(charges)
            charge = pick_charge(charges, duplicates, inputs.selector)
            if charge is None:
                recent = ", ".join(f"{c['id']} {money(c['amount_cents'])}" for c in charges[:3]) or "none"
                kind, _, value = inputs.selector.partition(":")
                missing = {
                    "charge": f"there is no charge {value} on this account",
                    "amount": f"there is no charge of ${value} on this account",
                }.get(kind, "no charge was named and there is no duplicate charge")
                return _outcome(
                    "no_charge",
                    f"No refund made for {customer['name']}: {missing}. Recent charges: {recent}. "
                    "Name the charge id or its amount.",
                )
            if inputs.amount is not None and round(inputs.amount * 100) != charge["amount_cents"]:
                return _outcome(
                    "amount_mismatch",
                    f"No refund made: {charge['id']} is {money(charge['amount_cents'])}, not the "
                    f"${inputs.amount:,.2f} that was checked for approval.",
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
