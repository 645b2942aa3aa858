"""Mutation-check cases for the refund (capabilities/support_desk/refund.py): the decisions a
mutant flipped with no test failing (`./scripts/mutants refund`, session 14). Real capabilities on
the seeded support database; each case names the mutant it kills."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from capabilities.support_desk.account import Account
from capabilities.support_desk.billing import Billing
from capabilities.support_desk.refund import Refund
from tests.support_desk.test_support import checked, rows, run

POLICY = {"mode": "above", "field": "amount", "threshold": 50}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "support.sqlite"


@pytest.fixture
def caps(db_path: Path) -> SimpleNamespace:
    options = {"db": str(db_path)}
    return SimpleNamespace(account=Account(options), billing=Billing(options), refund=Refund(options))


async def _duplicate(caps: SimpleNamespace, **candidate: Any) -> tuple[str, dict[str, Any]]:
    """Jane's duplicate charge CH-2003 ($125.00), checked by account and billing, its candidate
    changed by `candidate`; the request states no amount, so only the candidate's counts."""
    text = "refund my duplicate charge"
    context = await checked(caps, text, {"customer_id": "C-1001"})
    assert context["refund_candidate"]["charge_id"] == "CH-2003"
    return text, {**context, "refund_candidate": {**context["refund_candidate"], **candidate}}


@pytest.mark.parametrize(
    ("cents", "asked"),
    [
        (1, False),  # `0 < cents` -> `1 < cents`: a 1-cent refund under the threshold would be asked about
        (0, True),  # `0 < cents` -> `0 <= cents`: a $0.00 "refund" would go through unasked
        (5000, False),  # at the threshold: not asked
        (5001, True),  # a cent over: asked
    ],
)
async def test_the_approval_threshold_bounds(caps: SimpleNamespace, cents: int, asked: bool) -> None:
    text, context = await _duplicate(caps, amount_cents=cents)
    inputs = caps.refund.parse_inputs(text, {}, context)
    assert inputs.check() is None
    question = caps.refund.needs_approval(inputs, POLICY)
    assert (question is not None) is asked, question


async def test_a_checked_charge_gone_from_the_account_refunds_nothing(
    caps: SimpleNamespace, db_path: Path
) -> None:
    """At write time the candidate's charge is not among the account's charges (here: Omar's
    CH-2013 in Jane's candidate): `no_charge`, nothing written. Kills `next(..., None)` ->
    `next(...)`, which raised StopIteration out of the capability instead."""
    text, context = await _duplicate(caps, charge_id="CH-2013")
    before = rows(db_path, "SELECT count(*) FROM refunds")
    async with asyncio.timeout(60):  # the mutant's StopIteration, raised into a Future, hung the await
        out = await run(caps.refund, text, context=context, thread="t1", step="refund:x")
    assert out["refund"]["status"] == "no_charge", out
    assert out["summary"] == "No refund made: there is no charge CH-2013 on this account."
    assert rows(db_path, "SELECT count(*) FROM refunds") == before


async def test_a_request_naming_another_account_refunds_nothing(caps: SimpleNamespace, db_path: Path) -> None:
    """Jane's duplicate checked for this conversation (C-1001); the request to refund names Omar's
    address: `customer_mismatch`, nothing written. Kills the mutants of that status."""
    _, context = await _duplicate(caps)
    other = "refund my duplicate charge, I'm omar@brightpath.co"
    context = {**context, "refund_candidate": {**context["refund_candidate"], "query": other}}
    before = rows(db_path, "SELECT count(*) FROM refunds")
    out = await run(caps.refund, other, context=context, thread="t2", step="refund:y")
    assert out == {
        "refund": {"status": "customer_mismatch"},
        "summary": "No refund made: this request names Omar Haddad (C-1002), but the account in this "
        "conversation is C-1001. Ask again naming one account.",
    }
    assert rows(db_path, "SELECT count(*) FROM refunds") == before
