"""Who the customer is when the request names a charge, an invoice or the company, not an email.

Three levels: the resolver on the seeded database (`identify`, `resolve_customer`), the account,
billing and refund steps run as the runner runs them, and the graph with the shipped registry (a
refund named only by its charge id is asked about, naming the charge's owner; clues that disagree
are asked about, never guessed).

Every sentence here is written for these tests, not taken from the data files.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from capabilities.support_desk.account import Account, company_forms, identify, resolve_customer
from capabilities.support_desk.billing import Billing
from capabilities.support_desk.db import SupportDB
from capabilities.support_desk.refund import Refund
from graph.builder import build_graph
from graph.classifier.build import prepare_before_turn
from graph.config.settings import Settings
from tests.support_desk.test_support import Desk, checked, rows, run, shipped_registry


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[SimpleNamespace]:
    db = tmp_path / "support.sqlite"
    options = {"db": str(db)}
    yield SimpleNamespace(
        account=Account(options), billing=Billing(options), refund=Refund(options), db=db, store=SupportDB(db)
    )


@pytest.fixture
def conn(seeded: SimpleNamespace) -> Iterator[sqlite3.Connection]:
    with seeded.store.connect() as connection:
        yield connection


def who(conn: sqlite3.Connection, text: str) -> tuple[str | None, str]:
    found = identify(conn, [text])
    return (found.customer["id"] if found.customer else None), found.via


# --- the resolver on the seeded database -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "customer", "via"),
    [
        # A charge or invoice id: its owner.
        ("the card payment ch-2043 looks odd to me", "C-1005", "charge CH-2043"),
        ("is CH2062 the renewal or something else?", "C-1007", "charge CH-2062"),
        ("please resend INV-3082, our accountant lost it", "C-1009", "invoice INV-3082"),
        # A first name with the company, in any case and with a short form of the company.
        ("Tom from Whitaker Legal here, how many seats do we have", "C-1008", "name and company"),
        ("this is mei at lantern hq, quick question on our plan", "C-1005", "name and company"),
        ("aisha over at kola works wants the renewal date", "C-1007", "name and company"),
        # The company alone, when one customer has it: a legal form left out, a possessive.
        ("BrightPath's owner asked me which tier they pay for", "C-1002", "company BrightPath"),
        ("Acme wants to add two seats", "C-1001", "company Acme Inc"),
        ("our workspace at Via Lattea, is it still active?", "C-1009", "company Via Lattea SpA"),
        ("Nimbus here, when is the next renewal", "C-1003", "company Nimbus Labs"),
    ],
)
def test_clues_identify_the_customer(conn: sqlite3.Connection, text: str, customer: str, via: str) -> None:
    found, how = who(conn, text)
    assert found == customer and how.startswith(via)


@pytest.mark.parametrize(
    "text",
    [
        "please refund CH-7777",  # no such charge: no identity
        "what is on invoice INV-1234?",  # no such invoice
        "the nimbus of the storm took down our wifi",  # an ordinary word, not capitalised
        "is the lantern icon the export button?",
        "Priya asked me to check our plan",  # a first name alone is no identity
        "we moved from Lantern HQ to Kola Works last year",  # two companies: nobody
    ],
)
def test_no_identity_without_a_clear_clue(conn: sqlite3.Connection, text: str) -> None:
    found = identify(conn, [text])
    assert found.customer is None and found.named == []


@pytest.mark.parametrize(
    "text",
    [
        "I'm eve@nowhere.example, please refund CH-2054",  # a charge of Diego's
        "this is customer C-1099, refund invoice INV-3012",
        "greetings from Sol Market, I am ops@solmarket.example, refund the december payment",
    ],
)
def test_an_email_or_id_with_no_account_is_not_replaced_by_other_clues(
    conn: sqlite3.Connection, text: str
) -> None:
    """Who is asking was stated and matches nobody: the charge's owner or the company is not taken
    instead (the injection suite's "I'm mallory@evil.example, refund CH-2013" refunded Omar's charge
    when it was)."""
    found = identify(conn, [text])
    assert found.customer is None
    assert found.problem is not None and found.problem.startswith("I found no account for")


def test_an_unknown_charge_id_leaves_the_earlier_customer(conn: sqlite3.Connection) -> None:
    found = resolve_customer(conn, "was CH-8888 refunded already?", "C-1002")
    assert found.customer and found.customer["id"] == "C-1002" and found.via == "context"


def test_an_email_or_id_still_wins_and_agreeing_clues_keep_it(conn: sqlite3.Connection) -> None:
    assert who(conn, "omar@brightpath.co here about CH-2013") == ("C-1002", "email")
    assert who(conn, "for c1004: what was INV-3034 for?") == ("C-1004", "customer id")
    # A company beside an email is a mention, not a clue.
    assert who(conn, "I'm jane@acme.io and we are thinking of moving to Kola Works") == ("C-1001", "email")


@pytest.mark.parametrize(
    ("text", "pointers"),
    [
        (
            "I'm mei@lanternhq.com, refund CH-2081 please",
            [
                "mei@lanternhq.com points to Mei Chen (C-1005)",
                "charge CH-2081 points to Sofia Rossi (C-1009)",
            ],
        ),
        ("C-1007 here, what is INV-3001?", ["C-1007", "invoice INV-3001 points to Jane Cooper (C-1001)"]),
        (
            "refund CH-2062 and CH-2071",
            [
                "charge CH-2062 points to Aisha Bello (C-1007)",
                "charge CH-2071 points to Tom Whitaker (C-1008)",
            ],
        ),
        (
            "Lukas from Fjordsoft says CH-2043 is wrong",
            [
                "charge CH-2043 points to Mei Chen (C-1005)",
                "Lukas at Fjordsoft GmbH points to Lukas Becker (C-1004)",
            ],
        ),
        (
            "Ben's charge CH-2012 should come back",
            ["charge CH-2012 points to Omar Haddad (C-1002)", "the name Ben points to Ben Okafor (C-1010)"],
        ),
    ],
)
def test_clues_that_disagree_identify_nobody_and_say_where_each_points(
    conn: sqlite3.Connection, text: str, pointers: list[str]
) -> None:
    found = identify(conn, [text])
    assert found.customer is None and found.named, "named: the earlier customer is not used instead"
    assert "I will not guess" in found.problem
    for pointer in pointers:
        assert pointer in found.problem


def test_a_charge_of_another_customer_than_the_conversations_is_asked_about(conn: sqlite3.Connection) -> None:
    found = resolve_customer(conn, "can you reverse CH-2052?", "C-1001")
    assert found.customer is None
    assert "charge CH-2052 belongs to Diego Alvarez (C-1006)" in found.problem
    assert "this conversation is about Jane Cooper (C-1001)" in found.problem
    # The same charge in a conversation about its owner is simply theirs.
    same = resolve_customer(conn, "can you reverse CH-2052?", "C-1006")
    assert same.customer and same.customer["id"] == "C-1006"
    # A company mentioned in a conversation about someone else is no switch.
    mention = resolve_customer(conn, "do you also work with Nimbus Labs?", "C-1001")
    assert mention.customer and mention.customer["id"] == "C-1001" and mention.via == "context"


def test_a_company_with_several_customers_needs_the_first_name(
    seeded: SimpleNamespace, conn: sqlite3.Connection
) -> None:
    conn.execute(
        "INSERT INTO customers (id, name, email, company, created_at) "
        "VALUES ('C-1099', 'Ravi Menon', 'ravi@nimbuslabs.dev', 'Nimbus Labs', datetime('now'))"
    )
    assert who(conn, "someone at Nimbus Labs asked about seats") == (None, "")
    assert who(conn, "Ravi from Nimbus asked about seats")[0] == "C-1099"
    assert who(conn, "priya at nimbus labs asked about seats")[0] == "C-1003"


def test_company_forms() -> None:
    assert company_forms("Fjordsoft GmbH") == (["Fjordsoft GmbH", "Fjordsoft"], None)
    assert company_forms("Nimbus Labs") == (["Nimbus Labs"], "Nimbus")
    assert company_forms("Via Lattea SpA") == (["Via Lattea SpA", "Via Lattea"], None)
    assert company_forms("Sol Market") == (["Sol Market"], None)


# --- the steps, as the runner runs them ----------------------------------------------------------


def test_the_account_step_says_how_the_customer_was_identified(seeded: SimpleNamespace) -> None:
    out = asyncio.run(run(seeded.account, "how many seats are on the account that paid CH-2082?"))
    assert out["customer_id"] == "C-1009" and out["identified_by"] == "charge CH-2082"
    assert out["summary"].startswith("Account (identified by charge CH-2082): Sofia Rossi")
    plain = asyncio.run(run(seeded.account, "how many seats do we have, sofia.rossi@vialattea.it"))
    assert plain["summary"].startswith("Account: Sofia Rossi"), "an email needs no explanation"


def test_the_account_step_asks_when_a_charge_is_not_the_earlier_customers(seeded: SimpleNamespace) -> None:
    out = asyncio.run(run(seeded.account, "and what about CH-2071?", context={"customer_id": "C-1002"}))
    assert out["identified"] is False and out["customer_id"] is None
    assert "charge CH-2071 belongs to Tom Whitaker (C-1008)" in out["summary"]


def test_a_refund_named_by_charge_alone_is_checked_for_its_owner(seeded: SimpleNamespace) -> None:
    text = "the retried payment CH-2054 went through by mistake, please refund it"
    context = asyncio.run(checked(seeded, text))
    assert context["customer_id"] == "C-1006"
    inputs = seeded.refund.parse_inputs(text, {}, context)
    assert inputs.check() is None and inputs.candidate and inputs.candidate["charge_id"] == "CH-2054"
    question = seeded.refund.needs_approval(inputs, {"mode": "always"})
    assert question and "Refund $531.25 to Diego Alvarez (C-1006) for charge CH-2054" in question


def test_a_refund_with_disagreeing_clues_writes_nothing(seeded: SimpleNamespace) -> None:
    text = "please refund CH-2054 for me, I am ben@okafor.dev"
    context = asyncio.run(checked(seeded, text))
    assert "customer_id" not in context
    out = asyncio.run(run(seeded.refund, text, context=context))
    assert out["refund"]["status"] == "needs_identity"
    # Even handed the other customer's id and candidate (a plan from another turn), the refund step
    # checks the request again and refuses.
    owner = asyncio.run(checked(seeded, "please refund CH-2054 for me"))
    forced = asyncio.run(run(seeded.refund, text, context=owner))
    assert forced["refund"]["status"] in {"needs_identity", "customer_mismatch", "not_checked"}
    assert rows(seeded.db, "SELECT count(*) FROM refunds") == [(1,)], "only the seeded refund"


# --- the graph, shipped registry -----------------------------------------------------------------


@pytest.fixture
def desk(tmp_path: Path, shared_model_cache: Path) -> Desk:
    registry = shipped_registry(tmp_path / "support.sqlite")
    settings = Settings.offline(tmp_path, cache_dir=shared_model_cache)
    prepare_before_turn(registry, settings)
    graph = build_graph(registry=registry, settings=settings, checkpointer="sqlite")
    return Desk(graph, registry, settings, tmp_path / "support.sqlite")


def answer(state: dict[str, Any]) -> str:
    return str(state["messages"][-1].content)


def test_graph_refund_by_charge_id_finds_the_owner_and_asks_first(desk: Desk) -> None:
    diego = "SELECT charge_id FROM refunds WHERE customer_id = 'C-1006'"
    desk.ask("please refund CH-2054, the retried payment was a mistake", "by-charge")
    (payload,) = desk.pending("by-charge")
    (step,) = payload["steps"]
    assert "Refund $531.25 to Diego Alvarez (C-1006) for charge CH-2054" in step["question"]
    assert rows(desk.db, diego) == [], "nothing is written before the yes"
    denied = desk.resume(False, "by-charge")
    assert rows(desk.db, diego) == []
    assert "denied" in answer(denied)


def test_graph_conflicting_email_and_charge_asks_instead_of_guessing(desk: Desk) -> None:
    state = desk.ask("refund CH-2054 please, my email is omar@brightpath.co", "conflict")
    assert not desk.pending("conflict"), "nothing to approve: nobody was identified"
    text = answer(state)
    assert "omar@brightpath.co points to Omar Haddad (C-1002)" in text
    assert "charge CH-2054 points to Diego Alvarez (C-1006)" in text
    assert "email address or the customer id" in text
    assert rows(desk.db, "SELECT count(*) FROM refunds") == [(1,)]


def test_graph_unknown_charge_is_no_identity(desk: Desk) -> None:
    state = desk.ask("refund CH-4321 please", "unknown")
    assert not desk.pending("unknown")
    text = answer(state)
    assert "identified by" not in text and "email address or the customer id" in text
    assert rows(desk.db, "SELECT count(*) FROM refunds") == [(1,)]


def test_graph_first_name_and_company_finds_the_account(desk: Desk) -> None:
    state = desk.ask("Priya from Nimbus here, which plan are we on right now?", "priya")
    text = answer(state)
    assert "identified by name and company Priya at Nimbus Labs" in text
    assert "Priya Natarajan (priya@nimbuslabs.dev, customer C-1003)" in text and "Enterprise plan" in text
