"""A customer id is recognised in the forms people write it, and nothing else is taken for one.

Found by a blind conversation set (session 14): "pull up the account for customer 1005" was routed to
the account lookup, which then answered that the request named nobody: only C-1005 / c1005 were read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from capabilities.support_desk.account import Account, customer_ids
from graph.capability import RunContext


async def lookup(tmp_path: Path, text: str) -> dict[str, Any]:
    account = Account({"db": str(tmp_path / "support.sqlite")})
    inputs = account.parse_inputs(text, {}, {})
    return await account.execute(inputs, RunContext(task=text, context={}, step_id="step:1", thread_id="t1"))


def ids(text: str) -> list[str]:
    return customer_ids(text)


@pytest.mark.parametrize(
    "text",
    [
        "can you pull up the account for customer 1005 please",
        "account details, client #1005",
        "our account number is 1005",
        "Account no. 1005: what plan are we on?",
        "customer id: 1005, which plan?",
        "this is c 1005",
        "C1005 plan please",
        "customer number 1005",
    ],
)
async def test_every_written_form_of_an_id_finds_the_customer(tmp_path: Path, text: str) -> None:
    found = await lookup(tmp_path, text)
    assert found["customer_id"] == "C-1005", found["summary"]
    assert "Mei Chen" in found["summary"]


@pytest.mark.parametrize(
    "text",
    [
        "we have 1500 customers and need more seats",
        "our account has been with you since 2019",
        "customers 2024 report",
        "10 accounts, 1200 seats",
    ],
)
def test_numbers_that_are_not_ids_are_not_taken_for_one(text: str) -> None:
    assert ids(text) == []


async def test_an_id_with_no_customer_is_named_as_not_found(tmp_path: Path) -> None:
    found = await lookup(tmp_path, "look up customer 4321")
    assert found["customer_id"] is None
    assert "no account for C-4321" in found["summary"]


async def test_the_same_id_in_two_forms_is_one_customer(tmp_path: Path) -> None:
    assert ids("customer 1005 (C-1005)") == ["1005", "1005"]
    found = await lookup(tmp_path, "customer 1005 (C-1005): which plan?")
    assert found["customer_id"] == "C-1005", found["summary"]
