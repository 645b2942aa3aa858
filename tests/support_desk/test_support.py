"""The support-desk domain: database, capabilities, approval, idempotency, parallel steps, routing.

Everything runs against real SQLite files under tmp_path. Graph-level tests use the shipped
registry.yaml (MiniLM, fine-tuned on the guides once per module) with the capabilities' `db`
option pointed at a temporary file.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from langchain_core.messages import HumanMessage
from langgraph.types import Command

from capabilities.support_desk.account import Account
from capabilities.support_desk.billing import (
    REFUND_WINDOW_DAYS,
    Billing,
    charge_selector,
    find_duplicates,
    load_charges,
)
from capabilities.support_desk.db import KNOWLEDGE_DIR, SupportDB, migrate, migrations, resolve_path, seed
from capabilities.support_desk.incidents import Incidents
from capabilities.support_desk.knowledge_search import KnowledgeSearch, sync_index
from capabilities.support_desk.refund import Refund
from capabilities.support_desk.sales import Sales, plans_named, seats_named
from graph.builder import build_graph
from graph.capability import Capability, RunContext
from graph.classifier.build import prepare_before_turn
from graph.config.registry import Registry
from graph.config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ("account", "billing", "refund", "incidents", "sales", "knowledge_search")
SUITE = ROOT / "tests" / "support_desk" / "data" / "support_routing.jsonl"
HELD_OUT = ROOT / "tests" / "support_desk" / "data" / "support_heldout.jsonl"
"""Written to a checklist of phrasings before the guides were revised, never developed against
(tests/support_desk/data/HELDOUT.md)."""
MULTI = (
    "I was charged twice last month and the API keeps returning 500s. "
    "Also, what would the Team plan cost for 12 seats?"
)


def shipped_registry(db: Path, knowledge_dir: Path | None = None) -> Registry:
    """registry.yaml as shipped, with the support capabilities on a test database."""
    data = yaml.safe_load((ROOT / "registry.yaml").read_text(encoding="utf-8"))
    for cap in data["capabilities"]:
        if cap["name"] in SUPPORT:
            cap["options"] = {**(cap.get("options") or {}), "db": str(db)}
            if knowledge_dir and cap["name"] == "knowledge_search":
                cap["options"]["knowledge_dir"] = str(knowledge_dir)
    return Registry.from_dict(data, source="registry.yaml (test database)")


def rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


async def run(
    cap: Capability,
    text: str,
    *,
    context: dict[str, Any] | None = None,
    thread: str | None = "t1",
    step: str = "step:1",
    approved: bool | None = None,
    **args: Any,
) -> dict[str, Any]:
    """Execute a capability the way the runner does: parse inputs, then execute with a RunContext."""
    context = context or {}
    inputs = cap.parse_inputs(text, args, context)
    ctx = RunContext(task=text, context=context, step_id=step, thread_id=thread, approved=approved)
    return await cap.execute(inputs, ctx)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "support.sqlite"


@pytest.fixture
def caps(db_path: Path) -> SimpleNamespace:
    options = {"db": str(db_path)}
    return SimpleNamespace(
        account=Account(options),
        billing=Billing(options),
        refund=Refund(options),
        incidents=Incidents(options),
        sales=Sales(options),
        knowledge=KnowledgeSearch(options),
    )


# --- the database ------------------------------------------------------------------------------


def test_migrations_are_versioned_and_idempotent(db_path: Path) -> None:
    db = SupportDB(db_path)
    assert not db_path.exists(), "constructing touches nothing"
    assert db.ensure() == [1, 2]
    assert db.ensure() == []
    assert SupportDB(db_path).ensure() == [], "a second process finds everything applied"
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        assert migrate(conn) == [], "applying the migrations again is a no-op"
        assert seed(conn) is False, "the demo data goes in once"
        versions = conn.execute("SELECT version, name FROM schema_version ORDER BY version").fetchall()
    finally:
        conn.close()
    assert versions == [(m.version, m.name) for m in migrations()] == [(1, "init"), (2, "knowledge_index")]
    assert rows(db_path, "SELECT count(*) FROM customers") == [(10,)]


def test_concurrent_first_use_migrates_once(tmp_path: Path) -> None:
    path = tmp_path / "race.sqlite"
    dbs = [SupportDB(path) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        applied = list(pool.map(lambda d: d.ensure(), dbs))
    assert sorted(v for a in applied for v in a) == [1, 2]
    assert rows(path, "SELECT count(*) FROM schema_version") == [(2,)]
    assert rows(path, "SELECT count(*) FROM plans") == [(3,)]


def test_seed_data_has_what_the_demo_needs(db_path: Path) -> None:
    db = SupportDB(db_path)
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 10
        assert [r[0] for r in conn.execute("SELECT name FROM plans ORDER BY seat_price_cents")] == [
            "Starter",
            "Team",
            "Enterprise",
        ]
        jane = load_charges(conn, "C-1001")
        open_incidents = conn.execute("SELECT count(*) FROM incidents WHERE status != 'resolved'").fetchone()
        assert conn.execute("SELECT count(*) FROM tickets").fetchone()[0] >= 3
        diego = load_charges(conn, "C-1006")
    assert find_duplicates(jane) == {"CH-2003": "CH-2002"}
    assert open_incidents[0] >= 2
    assert find_duplicates(diego) == {}, "a failed charge and its successful retry are not a duplicate"


def test_db_path_defaults_to_the_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert resolve_path(None, data) == data / "support.sqlite"
    assert resolve_path("desk.sqlite", data) == data / "desk.sqlite"
    assert resolve_path(str(tmp_path / "x.sqlite")) == tmp_path / "x.sqlite"
    with pytest.raises(ValueError, match="data directory"):
        resolve_path("desk.sqlite")
    registry = Registry.from_file()  # db: null everywhere
    assert {name for name in SUPPORT if name in registry} == set(SUPPORT)
    assert not data.exists(), "building the registry creates no database"


async def test_the_database_is_in_the_run_data_dir_not_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path / "from-environment"))
    sales = Sales({"db": None})
    for name in ("one", "two"):
        ctx = RunContext(task="what does the Team plan cost?", data_dir=tmp_path / name)
        out = await sales.execute(sales.parse_inputs(ctx.task, {}, {}), ctx)
        assert "Team" in out["summary"]
        assert (tmp_path / name / "support.sqlite").exists()
    assert sales.db.at(tmp_path / "one") is sales.db.at(tmp_path / "one"), "migrated once per file"
    assert not (tmp_path / "from-environment").exists()


# --- capabilities ------------------------------------------------------------------------------


async def test_account_identifies_by_email_id_name_or_context(caps: SimpleNamespace) -> None:
    by_email = await run(caps.account, "which plan am I on? I'm JANE@acme.io")
    assert by_email["customer_id"] == "C-1001" and by_email["identified_by"] == "email"
    assert "Team plan, 5 seats" in by_email["summary"]
    assert (await run(caps.account, "pull up customer c-1004"))["customer_id"] == "C-1004"
    assert (await run(caps.account, "this is Priya Natarajan"))["customer_id"] == "C-1003"
    from_context = await run(caps.account, "what plan am I on", context={"email": "ben@okafor.dev"})
    assert from_context["customer_id"] == "C-1010" and "trial" in from_context["summary"]
    switched = await run(caps.account, "now look up C-1005", context={"customer_id": "C-1001"})
    assert switched["customer_id"] == "C-1005", "who the request names wins over the context"
    assert (await run(caps.account, "my plan?", context={"customer_id": "C-1009"}))["customer_id"] == "C-1009"

    nobody = await run(caps.account, "what plan am I on")
    assert "customer_id" not in nobody and nobody["identified"] is False
    assert "no email address, customer id or account holder" in nobody["summary"]
    unknown = await run(caps.account, "I'm nobody@example.com")
    # Named but not found: the earlier turns' customer is cleared from the context (None deletes it).
    assert unknown["customer_id"] is None and "no account for nobody@example.com" in unknown["summary"]
    two = await run(caps.account, "I'm jane@acme.io or maybe C-1002")
    assert two["customer_id"] is None and "more than one account" in two["summary"]


async def test_billing_finds_the_duplicate_and_applies_the_policy(caps: SimpleNamespace) -> None:
    out = await run(caps.billing, "I was charged twice last month", context={"customer_id": "C-1001"})
    cand = out["refund_candidate"]
    assert cand["charge_id"] == "CH-2003" and cand["duplicate_of"] == "CH-2002"
    assert cand["eligible"] and cand["amount"] == 125.0 and cand["selector"] == "auto"
    assert "Duplicate charge: CH-2003" in out["summary"]
    assert "[refund-policy.md § Duplicate charges]" in out["summary"]

    old = await run(caps.billing, "is CH-2001 refundable?", context={"customer_id": "C-1001"})
    assert old["refund_candidate"]["eligible"] is False
    assert (
        "past the 30-day refund window" in old["summary"]
        and "[refund-policy.md § Refund window]" in old["summary"]
    )
    recent = await run(
        caps.billing, "can I get a refund for the $36 charge?", context={"customer_id": "C-1004"}
    )
    assert recent["refund_candidate"]["charge_id"] == "CH-2034" and recent["refund_candidate"]["eligible"]
    refunded = await run(caps.billing, "refund status of CH-2031?", context={"customer_id": "C-1004"})
    assert "already refunded (R-7001" in refunded["refund_candidate"]["reason"]

    invoices = await run(caps.billing, "show my invoices, I'm omar@brightpath.co")
    assert invoices["billing"]["customer_id"] == "C-1002" and "INV-3013" in invoices["summary"]
    anonymous = await run(caps.billing, "I was charged twice")
    assert anonymous["billing"] is None and anonymous["refund_candidate"] is None
    assert "email address or the customer id" in anonymous["summary"]


def test_the_written_policy_and_the_code_agree() -> None:
    policy = (KNOWLEDGE_DIR / "refund-policy.md").read_text(encoding="utf-8")
    assert f"within {REFUND_WINDOW_DAYS} days" in policy
    assert "Duplicate charges are always eligible" in policy
    refund_spec = next(
        c
        for c in yaml.safe_load((ROOT / "registry.yaml").read_text())["capabilities"]
        if c["name"] == "refund"
    )
    threshold = refund_spec["approval"]["threshold"]
    assert {k: refund_spec["approval"][k] for k in ("mode", "field")} == {"mode": "above", "field": "amount"}
    assert refund_spec["side_effects"] is True
    assert f"Refunds above ${threshold}" in policy


async def checked(
    caps: SimpleNamespace, text: str, context: dict[str, Any] | None = None, **refund_args: Any
) -> dict[str, Any]:
    """The context after account and billing ran for `text`, as the plan runs them before a refund."""
    context = dict(context or {})
    account = await run(caps.account, text, context=context)
    context.update({k: account[k] for k in ("customer_id",) if k in account})
    billing = await run(caps.billing, text, context=context)
    context["refund_candidate"] = billing["refund_candidate"]
    return {k: v for k, v in context.items() if v is not None}


async def test_refund_writes_once_and_refuses_what_the_policy_refuses(
    caps: SimpleNamespace, db_path: Path
) -> None:
    text = "refund my duplicate payment"
    context = await checked(caps, text, {"customer_id": "C-1002"})
    first = await run(caps.refund, text, context=context, thread="t9", step="refund:abc")
    assert first["refund"]["status"] == "refunded" and first["refund"]["charge_id"] == "CH-2013"
    assert "Refunded $30.00" in first["summary"]
    again = await run(caps.refund, text, context=context, thread="t9", step="refund:abc")
    assert again["refund"]["status"] == "already_refunded"
    assert "already refunded by this same request" in again["summary"]
    other = await run(caps.refund, text, context=context, thread="t10", step="refund:abc")
    assert other["refund"]["status"] == "already_refunded" and "same request" not in other["summary"]
    ((charge, key),) = rows(
        db_path, "SELECT charge_id, idempotency_key FROM refunds WHERE customer_id = 'C-1002'"
    )
    assert charge == "CH-2013" and key.startswith("t9:refund:abc:") and key.endswith(":CH-2013")
    now = "refund my duplicate payment now"
    next_turn = await run(
        caps.refund, now, context=await checked(caps, now, context), thread="t9", step="refund:abc"
    )
    # The next turn's billing sees the refund: the candidate is not refundable, nothing is asked or written.
    assert next_turn["refund"]["status"] == "not_eligible" and "already refunded" in next_turn["summary"]

    jane = {"customer_id": "C-1001"}
    too_old = await run(caps.refund, "refund CH-2001", context=await checked(caps, "refund CH-2001", jane))
    assert too_old["refund"]["status"] == "not_eligible" and "No refund made" in too_old["summary"]
    diego = "refund CH-2053, I'm diego@solmarket.mx"
    failed = await run(caps.refund, diego, context=await checked(caps, diego))
    assert failed["refund"]["status"] == "not_eligible" and "no money was taken" in failed["summary"]
    mei = {"customer_id": "C-1005"}
    unknown = await run(caps.refund, "refund CH-9999", context=await checked(caps, "refund CH-9999", mei))
    assert unknown["refund"]["status"] == "no_charge" and "no charge CH-9999" in unknown["summary"]
    nobody = await run(caps.refund, "refund my duplicate charge")
    assert nobody["refund"]["status"] == "needs_identity"
    # Only this request's checked candidate, for the conversation's customer, is ever refunded.
    unplanned = await run(caps.refund, "refund the duplicate, I'm jane@acme.io")
    assert unplanned["refund"]["status"] == "needs_identity"
    unchecked = await run(caps.refund, "refund CH-2004", context=jane)
    assert unchecked["refund"]["status"] == "not_checked" and "No refund made" in unchecked["summary"]
    stale = await run(caps.refund, "refund CH-2004", context=await checked(caps, "refund CH-2003", jane))
    assert stale["refund"]["status"] == "not_checked", "a candidate picked for another request"
    switched = await run(
        caps.refund,
        "refund CH-2003, I'm jane@acme.io",
        context={**await checked(caps, "refund CH-2003, I'm jane@acme.io"), "customer_id": "C-1002"},
    )
    assert switched["refund"]["status"] == "not_checked", "the candidate is Jane's, the account Omar's"
    assert rows(db_path, "SELECT count(*) FROM refunds") == [(2,)], "only the seeded refund and CH-2013"


async def test_refund_approval_question_needs_no_database(caps: SimpleNamespace) -> None:
    policy = {"mode": "above", "field": "amount", "threshold": 50}
    context = await checked(caps, "refund my duplicate charge", {"customer_id": "C-1001"})
    inputs = caps.refund.parse_inputs("refund my duplicate charge", {}, context)
    question = caps.refund.needs_approval(inputs, policy)
    assert question and "Refund $125.00 to Jane Cooper (C-1001)" in question and "CH-2003" in question
    assert inputs.candidate["charge_id"] == "CH-2003" and inputs.check() is None
    # A candidate picked for another request (an earlier turn) is not used: nothing to ask, nothing done.
    stale = caps.refund.parse_inputs("refund CH-2004", {}, context)
    assert stale.candidate is None and stale.check()[0] == "not_checked"
    assert caps.refund.needs_approval(stale, policy) is None
    small = await checked(caps, "refund $30", {"customer_id": "C-1002"})
    assert caps.refund.needs_approval(caps.refund.parse_inputs("refund $30", {}, small), policy) is None
    anonymous = caps.refund.parse_inputs("refund my duplicate charge", {}, {})
    assert caps.refund.needs_approval(anonymous, policy) is None, "no customer: nothing will be written"
    assert caps.refund.needs_approval(inputs, {"mode": "never"}) is None
    assert caps.refund.needs_approval(inputs, {"mode": "always"}) == question
    refused = {**context, "refund_candidate": {**context["refund_candidate"], "eligible": False}}
    assert (
        caps.refund.needs_approval(
            caps.refund.parse_inputs("refund my duplicate charge", {}, refused), policy
        )
        is None
    )
    assert charge_selector("refund ch-2004 please") == "charge:CH-2004"
    assert charge_selector("give me back the 1,250.50 dollars") == "amount:1250.50"


async def test_incidents_status_and_tickets(caps: SimpleNamespace, db_path: Path) -> None:
    api = await run(caps.incidents, "the API keeps returning 500s")
    assert api["service_status"] == {"api": "partial outage"}
    assert "INC-301" in api["summary"] and "ticket_id" not in api
    overview = await run(caps.incidents, "is anything broken right now?")
    assert overview["service_status"]["webhooks"] == "degraded performance"
    assert "Operational:" in overview["summary"] and "INC-302" in overview["summary"]
    sso = await run(caps.incidents, "is SSO working again?")
    assert sso["service_status"] == {"sso": "operational"} and "INC-297" in sso["summary"]

    before = rows(db_path, "SELECT count(*) FROM tickets")[0][0]
    text = "please open a ticket, the API returns 500 on every request. I'm priya@nimbuslabs.dev"
    ticket = await run(caps.incidents, text, thread="t7", step="incidents:1")
    assert ticket["ticket"]["created"] and ticket["ticket_id"] == ticket["ticket"]["id"]
    assert ticket["ticket"]["incident_id"] == "INC-301" and ticket["ticket"]["priority"] == "high"
    assert ticket["ticket"]["customer_id"] == "C-1003"
    repeat = await run(caps.incidents, text, thread="t7", step="incidents:1")
    assert repeat["ticket_id"] == ticket["ticket_id"] and not repeat["ticket"]["created"]
    assert "already opened ticket" in repeat["summary"]
    assert rows(db_path, "SELECT count(*) FROM tickets")[0][0] == before + 1


async def test_sales_quotes_from_the_plans_table(caps: SimpleNamespace) -> None:
    team = await run(caps.sales, "what would the Team plan cost for 12 seats?")
    (quote,) = team["quote"]
    assert (quote["plan"], quote["seats"], quote["discount_percent"], quote["monthly"]) == (
        "Team",
        12,
        10,
        270.0,
    )
    assert "$270.00 a month" in team["summary"] and "$3,240.00 a year" in team["summary"]
    big = await run(caps.sales, "quote for 300 enterprise seats")
    assert big["quote"][0]["discount_percent"] == 20 and big["quote"][0]["monthly"] == 10800.0
    small = await run(caps.sales, "Enterprise for 10 users")
    assert small["quote"][0]["available"] is False and "starts at 20 seats" in small["summary"]
    anyplan = await run(caps.sales, "we are 12 people, what would it cost")
    assert {q["plan"] for q in anyplan["quote"] if q["available"]} == {"Team"}
    assert "Starter allows at most 10 seats" in anyplan["summary"]
    plans = await run(caps.sales, "which plans do you offer")
    assert [p["plan"] for p in plans["plans"]] == ["Starter", "Team", "Enterprise"]
    assert plans_named("our team of 12 wants Enterprise") == ["enterprise"]
    assert seats_named("a team of 40") == 40 and seats_named("the Team plan") is None
    assert (await run(caps.sales, "price", plan="starter", seats=3))["quote"][0]["monthly"] == 30.0


async def test_knowledge_search_returns_cited_passages(caps: SimpleNamespace) -> None:
    out = await run(caps.knowledge, "are duplicate charges refunded?")
    best = out["knowledge"][0]
    assert (best["source"], best["heading"]) == ("refund-policy.md", "Duplicate charges")
    assert best["citation"] == "[refund-policy.md § Duplicate charges]"
    assert best["citation"] in out["summary"] and "always eligible" in out["summary"]
    api = await run(caps.knowledge, "how should we handle 429 Too Many Requests?")
    assert api["knowledge"][0]["citation"] == "[api-troubleshooting.md § HTTP 429 Too Many Requests]"
    assert "Retry-After" in api["summary"]
    nothing = await run(caps.knowledge, "zeppelin quantum banana")
    assert nothing["knowledge"] == [] and "found nothing" in nothing["summary"]
    hostile = await run(caps.knowledge, 'refund" OR body:* NEAR(')  # FTS syntax in the text is inert
    assert isinstance(hostile["knowledge"], list)


async def test_the_index_follows_document_changes(tmp_path: Path, db_path: Path) -> None:
    docs = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, docs)
    search = KnowledgeSearch({"db": str(db_path), "knowledge_dir": str(docs)})
    assert (await run(search, "zeppelin mooring"))["knowledge"] == []
    with (docs / "billing-faq.md").open("a", encoding="utf-8") as f:
        f.write("\n## Zeppelin mooring\n\nZeppelin mooring fees are billed per hour at the airfield.\n")
    found = await run(search, "zeppelin mooring")
    assert found["knowledge"][0]["citation"] == "[billing-faq.md § Zeppelin mooring]"
    db = SupportDB(db_path)
    with db.connect() as conn:
        assert sync_index(conn, docs) == {"indexed": [], "removed": []}, "unchanged files are not reindexed"
        (docs / "billing-faq.md").write_text("# Billing FAQ\n\n## Gone\n\nNothing here.\n", encoding="utf-8")
        (docs / "account-security.md").unlink()
        assert sync_index(conn, docs) == {"indexed": ["billing-faq.md"], "removed": ["account-security.md"]}
    assert (await run(search, "zeppelin mooring"))["knowledge"] == []
    assert all(
        p["source"] != "account-security.md" for p in (await run(search, "password reset"))["knowledge"]
    )


# --- the graph with the shipped registry (MiniLM) --------------------------------------------------


@dataclass
class Desk:
    graph: Any
    registry: Registry
    settings: Settings
    db: Path

    def ask(self, text: str, thread: str, graph: Any = None) -> dict[str, Any]:
        config = {"configurable": {"thread_id": thread}}
        return dict((graph or self.graph).invoke({"messages": [HumanMessage(content=text)]}, config))

    def resume(self, decision: Any, thread: str, graph: Any = None) -> dict[str, Any]:
        config = {"configurable": {"thread_id": thread}}
        return dict((graph or self.graph).invoke(Command(resume=decision), config))

    def pending(self, thread: str, graph: Any = None) -> list[Any]:
        snapshot = (graph or self.graph).get_state({"configurable": {"thread_id": thread}})
        return [i.value for task in snapshot.tasks for i in task.interrupts]


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path) -> Desk:
    base = tmp_path_factory.mktemp("desk")
    registry = shipped_registry(base / "support.sqlite")
    settings = Settings.offline(base, cache_dir=shared_model_cache)
    # The fine-tune runs now, not inside the first turn's `limits.max_seconds` (as `ask` does: on a
    # loaded machine it took longer than the turn may, and the first refund test ended max_seconds).
    prepare_before_turn(registry, settings)
    # SQLite checkpoints, so a second graph on the same file can pick a thread up.
    graph = build_graph(registry=registry, settings=settings, checkpointer="sqlite")
    return Desk(graph, registry, settings, base / "support.sqlite")


def selected(state: dict[str, Any]) -> set[str]:
    return {c["name"] for c in state["planning_capabilities"] if c["selected"] and c["source"] != "always"}


def answer(state: dict[str, Any]) -> str:
    return str(state["messages"][-1].content)


def test_refund_denied_then_approved(desk: Desk) -> None:
    text = "refund my duplicate charge, I'm jane@acme.io"
    jane_refunds = "SELECT charge_id FROM refunds WHERE customer_id = 'C-1001'"

    desk.ask(text, "deny")
    (payload,) = desk.pending("deny")
    (step,) = payload["steps"]
    assert step["capability"] == "refund" and "Refund $125.00 to Jane Cooper (C-1001)" in step["question"]
    assert rows(desk.db, jane_refunds) == [], "nothing is written before approval"
    denied = desk.resume(False, "deny")
    assert denied["control_stop_reason"] == "success"
    assert "denied, so nothing was changed" in answer(denied)
    assert denied["execution_results"][step["step_id"]]["status"] == "denied"
    assert rows(desk.db, jane_refunds) == [], "a denied step never runs"

    desk.ask(text, "approve")
    assert desk.pending("approve")
    approved = desk.resume(True, "approve")
    assert "Refunded $125.00 (approved) to Jane Cooper for duplicate charge CH-2003" in answer(approved)
    assert rows(desk.db, jane_refunds) == [("CH-2003",)]
    plan = [s["capability"] for s in approved["planning_plan"]]
    assert plan.index("account") < plan.index("billing") < plan.index("refund")


def test_resumed_run_refunds_exactly_once(desk: Desk) -> None:
    """Interrupted at approval, resumed by a second graph on the same checkpoint file."""
    refunds_of = "SELECT idempotency_key FROM refunds WHERE charge_id = ?"
    desk.ask("please refund charge CH-2023, I'm priya@nimbuslabs.dev", "resume-a")
    assert desk.pending("resume-a")
    second = build_graph(registry=desk.registry, settings=desk.settings, checkpointer="sqlite")
    done = desk.resume(True, "resume-a", graph=second)
    assert "Refunded $2,700.00 (approved)" in answer(done)
    assert len(rows(desk.db, refunds_of, "CH-2023")) == 1
    # Re-running the same step (a replay after a crash) writes nothing and says so.
    (step,) = [s for s in done["planning_plan"] if s["capability"] == "refund"]
    refund = desk.registry["refund"].instance
    replay = asyncio.run(
        run(
            refund,
            done["task_current"],
            context=done["execution_context"],
            thread="resume-a",
            step=step["id"],
        )
    )
    assert replay["refund"]["status"] == "already_refunded" and "by this same request" in replay["summary"]
    assert len(rows(desk.db, refunds_of, "CH-2023")) == 1

    # The step ran (and wrote) but the process died before the checkpoint: the resumed run finds it.
    desk.ask("please refund charge CH-2083, I'm sofia.rossi@vialattea.it", "resume-b")
    (payload,) = desk.pending("resume-b")
    state = desk.graph.get_state({"configurable": {"thread_id": "resume-b"}}).values
    sid = payload["steps"][0]["step_id"]
    asyncio.run(
        run(refund, state["task_current"], context=state["execution_context"], thread="resume-b", step=sid)
    )
    resumed = desk.resume(True, "resume-b", graph=second)
    assert "already refunded by this same request" in answer(resumed)
    assert len(rows(desk.db, refunds_of, "CH-2083")) == 1


@pytest.fixture
def slow_steps(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[float]]]:
    """Each support step takes 0.3 s longer and records when it ran."""
    intervals: dict[str, list[float]] = {}
    lock = threading.Lock()
    for name, method in (
        ("account", "lookup"),
        ("billing", "report"),
        ("incidents", "status"),
        ("sales", "answer"),
    ):
        instance = desk.registry[name].instance
        original = getattr(instance, method)

        def slow(*args: Any, _name: str = name, _original: Any = original) -> Any:
            start = time.perf_counter()
            time.sleep(0.3)
            result = _original(*args)
            with lock:
                intervals[_name] = [start, time.perf_counter()]
            return result

        monkeypatch.setattr(instance, method, slow)
    yield intervals


def dispatched(desk: Desk, text: str, thread: str) -> tuple[dict[int, set[str]], dict[str, Any]]:
    """Capability steps by superstep, from the debug stream."""
    supersteps: dict[int, set[str]] = {}
    config = {"configurable": {"thread_id": thread}}
    for event in desk.graph.stream({"messages": [HumanMessage(content=text)]}, config, stream_mode="debug"):
        if event["type"] == "task" and event["payload"]["name"] == "execute":
            supersteps.setdefault(event["step"], set()).add(event["payload"]["input"]["step"]["capability"])
    return supersteps, desk.graph.get_state(config).values


def test_multi_capability_request_runs_in_parallel(desk: Desk, slow_steps: dict[str, list[float]]) -> None:
    steps, state = dispatched(desk, f"I'm jane@acme.io. {MULTI}", "parallel")
    assert {"billing", "incidents", "sales"} <= selected(state)
    assert state["control_stop_reason"] == "success"
    # account must finish before billing; incidents and sales need nothing and start with it.
    assert list(steps.values()) == [{"account", "incidents", "sales"}, {"billing"}]
    overlap = min(slow_steps[n][1] for n in ("account", "incidents", "sales")) - max(
        slow_steps[n][0] for n in ("account", "incidents", "sales")
    )
    assert overlap > 0.2, f"the three steps ran one after another ({slow_steps})"
    billing = next(s for s in state["planning_plan"] if s["capability"] == "billing")
    account = next(s for s in state["planning_plan"] if s["capability"] == "account")
    assert billing["depends_on"] == [account["id"]]
    text = answer(state)
    assert "CH-2003" in text and "INC-301" in text and "$270.00 a month" in text

    # Next turn: the customer is known from the context, so billing, incidents and sales are
    # dispatched together in one superstep.
    steps, state = dispatched(desk, MULTI, "parallel")
    assert list(steps.values()) == [{"billing", "incidents", "sales"}]
    overlap = min(slow_steps[n][1] for n in ("billing", "incidents", "sales")) - max(
        slow_steps[n][0] for n in ("billing", "incidents", "sales")
    )
    assert overlap > 0.2


def test_without_a_name_the_answer_asks_for_the_email(desk: Desk) -> None:
    state = desk.ask(MULTI, "anonymous")
    assert state["control_stop_reason"] == "success"
    text = answer(state)
    assert "email address or the customer id" in text
    assert "INC-301" in text and "$270.00 a month" in text, "the rest of the request is still answered"
    assert "customer_id" not in state["execution_context"]
    assert {r["status"] for r in state["execution_results"].values()} == {"ok"}


def refunds_of(desk: Desk, customer: str) -> list[tuple[Any, ...]]:
    return rows(desk.db, "SELECT charge_id FROM refunds WHERE customer_id = ? ORDER BY id", customer)


def deny_all(desk: Desk, thread: str) -> dict[str, Any]:
    """Answer every pending question no (the CLI's --deny); the final state."""
    state = desk.graph.get_state({"configurable": {"thread_id": thread}}).values
    while desk.pending(thread):
        state = desk.resume(False, thread)
    return dict(state)


def test_the_issue_requests_refund_nothing_and_answer_what_was_asked(desk: Desk) -> None:
    """The issue's three reports through the shipped classifier and planner, with --deny."""
    omar: list[tuple[Any, ...]] = []
    state = desk.ask(
        "I'm omar@brightpath.co, do NOT refund anything, just tell me if I was charged twice", "issue-1"
    )
    assert not desk.pending("issue-1"), "a refusal asks nobody"
    assert refunds_of(desk, "C-1002") == omar
    assert "Duplicate charge: CH-2013" in answer(state), "billing answers the question"
    if "refund" in [s["capability"] for s in state["planning_plan"]]:
        assert "I did not refund anything: the request does not ask for it" in answer(state)

    desk.ask("I'm omar@brightpath.co, can I get a refund for the duplicate charge?", "issue-2")
    (payload,) = desk.pending("issue-2")
    (step,) = payload["steps"]
    assert step["kind"] == "confirm" and "Refund $30.00 to Omar Haddad (C-1002)" in step["question"]
    assert "CH-2013" in step["question"] and "only asks" in step["question"]
    state = deny_all(desk, "issue-2")
    assert refunds_of(desk, "C-1002") == omar
    assert "eligible for a full refund" in answer(state) and "Reply “yes” to go ahead" in answer(state)

    desk.ask("I'm lukas.becker@fjordsoft.de, can I get a refund for the $36 charge?", "issue-3")
    (payload,) = desk.pending("issue-3")
    assert "Refund $36.00 to Lukas Becker (C-1004) for charge CH-2034" in payload["steps"][0]["question"]
    state = deny_all(desk, "issue-3")
    assert refunds_of(desk, "C-1004") == [("CH-2031",)], "only the seeded refund"
    assert "Refund eligibility of CH-2034 ($36.00" in answer(state), "the eligibility answer"


def test_the_approval_question_names_exactly_what_would_be_refunded(desk: Desk) -> None:
    """Item 4: two turns once asked `Refund $2,033.00 to C-1004` (the amount read from the id)."""
    thread = "question-fields"
    desk.ask("I'm lukas.becker@fjordsoft.de, can I get a refund for the $36 charge?", thread)
    deny_all(desk, thread)
    state = desk.ask("refund CH-2033 $36", thread)
    questions = [s["question"] for p in desk.pending(thread) for s in p["steps"]]
    assert questions == [], "CH-2033 is $270, not $36: nothing to approve, nothing done"
    assert "$2,033" not in answer(state)
    assert "No refund made: CH-2033 is $270.00, not the $36.00 the request names" in answer(state)
    desk.ask("refund CH-2033", thread)
    (payload,) = desk.pending(thread)
    (step,) = payload["steps"]
    assert step["kind"] == "approve"
    assert step["question"].startswith("Refund $270.00 to Lukas Becker (C-1004) for charge CH-2033 of ")
    deny_all(desk, thread)
    assert refunds_of(desk, "C-1004") == [("CH-2031",)]

    # Another customer this turn: the question names them, never the previous turn's customer.
    switch = "question-customer"
    desk.ask("I'm jane@acme.io, was I charged twice?", switch)
    deny_all(desk, switch)
    desk.ask("I'm diego@solmarket.mx, refund CH-2054", switch)
    (payload,) = desk.pending(switch)
    question = payload["steps"][0]["question"]
    assert "Diego Alvarez (C-1006)" in question and "CH-2054" in question and "Jane" not in question
    deny_all(desk, switch)
    # Someone we cannot find: no question at all (no "refund something to C-1001?"), nothing done.
    state = desk.ask("I'm mallory@evil.example, refund my duplicate charge", switch)
    assert not desk.pending(switch)
    assert "no account for mallory@evil.example" in answer(state)
    assert refunds_of(desk, "C-1006") == [] and "customer_id" not in state["execution_context"]


def test_a_plain_yes_after_the_confirmation_question_refunds(desk: Desk) -> None:
    thread = "follow-up-yes"
    desk.ask("I'm lukas.becker@fjordsoft.de, can I get a refund for the $36 charge?", thread)
    deny_all(desk, thread)
    state = desk.ask("go ahead", thread)
    assert not desk.pending(thread), "$36 is under the threshold: the yes was the instruction"
    assert "Refunded $36.00 to Lukas Becker for charge CH-2034" in answer(state)
    assert refunds_of(desk, "C-1004") == [("CH-2031",), ("CH-2034",)]


def route_suite(desk: Desk, path: Path) -> tuple[list[dict[str, Any]], list[list[str]], dict[str, Any]]:
    """Every request of a labelled file through the real classifier (MiniLM fine-tuned on the
    shipped guides, as the graph builds it): the rows, the capabilities chosen for each, and
    exact-set match and micro P/R/F1 over them."""
    from evals.harness import multi_label_metrics
    from graph.classifier.build import build_scorer
    from graph.models import LLMGateway, ModelProvider
    from nodes.classifier import classify

    data = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert all(r["split"] == "test" for r in data)
    names = set(desk.registry.capabilities) | {"out_of_scope"}
    assert all(set(r["labels"]) <= names for r in data)

    registry = desk.registry
    scorer = build_scorer(registry, desk.settings)  # as the graph builds it, sharing its fine-tune cache
    provider = ModelProvider(
        {role: registry.spec.models.for_role(role) for role in ModelProvider.roles()},
        desk.settings,
        enabled=False,
    )

    async def predict(text: str) -> list[str]:
        scored = await classify(
            text, registry, scorer, LLMGateway(provider, used=0, budget=1), mode="embedding"
        )
        return sorted(c["name"] for c in scored if c["selected"] and c["source"] != "always")

    truth = [sorted(label for label in r["labels"] if label != "out_of_scope") for r in data]
    predicted = [asyncio.run(predict(r["text"])) for r in data]
    labels = sorted({x for row in truth + predicted for x in row})
    metrics = multi_label_metrics(truth, predicted, labels)
    print(path.name, json.dumps(metrics))
    return data, predicted, metrics


def test_the_labelled_support_suite(desk: Desk) -> None:
    """The 95 support requests the guides were first written against.

    Measured when the suite was written: exact-set match 0.853, micro-F1 0.926 (75 requests used while
    revising the guides, 20 written afterwards and untouched: 0.95 / 0.974); with the guides of
    issue 19 (more phrasings, introductions and declined clauses not scored alone, threshold 0.1):
    0.968 / 0.985; with round 4's clause rules (session 14): 1.0 / 1.0. The floors leave room for
    numeric differences between machines.
    """
    data, predicted, metrics = route_suite(desk, SUITE)
    assert len(data) >= 60
    assert (
        sum(len(r["labels"]) > 1 for r in data) >= 10
        and sum(r["labels"] == ["out_of_scope"] for r in data) >= 8
    )
    assert metrics["exact_match"] >= 0.95, metrics
    assert metrics["micro_f1"] >= 0.97, metrics
    # The flagship request routes to exactly its three capabilities.
    assert predicted[next(i for i, r in enumerate(data) if r["text"] == MULTI)] == [
        "billing",
        "incidents",
        "sales",
    ]


def test_the_held_out_support_requests(desk: Desk) -> None:
    """130 requests written to a checklist of phrasings (questions, complaints, indirect requests,
    customer ids in every form, typos, non-native English, 2- and 3-capability requests, negated and
    hypothetical refunds, out of scope) before the guides were revised, and never developed against:
    how the shipped guides do on wording no guide was written from.

    Measured (`routegraph eval --data tests/support_desk/data/support_heldout.jsonl --registry
    registry.yaml`): 0.669 exact-set, micro-F1 0.795 (precision 0.902, recall 0.711) with the
    guides before issue 19; 0.815 / 0.895 (0.925, 0.866) after. Through this test (the classifier
    node): 0.800 / 0.885 with every layer fine-tuned, 0.800 / 0.881 (0.904, 0.859) with the top two
    layers, the shipped recipe; 0.915 / 0.946 (0.964, 0.930) with round 4's rules (session 14; a
    development set since session 12). The floors sit a little below, so a regression of a few
    requests fails here.
    """
    data, predicted, metrics = route_suite(desk, HELD_OUT)
    assert len(data) >= 120
    assert sum(len(r["labels"]) > 2 for r in data) >= 5
    assert sum(len(r["labels"]) == 2 for r in data) >= 15
    assert sum(r["labels"] == ["out_of_scope"] for r in data) >= 15
    assert metrics["micro_f1"] >= 0.92, metrics
    assert metrics["micro_precision"] >= 0.93, metrics
    assert metrics["exact_match"] >= 0.87, metrics
    # Out of scope stays out: at most two of the 18 are routed anywhere (2 with every layer
    # fine-tuned, 3 with the top two: README "Latency", first run; 1 with round 4's rules).
    routed = [p for r, p in zip(data, predicted, strict=True) if r["labels"] == ["out_of_scope"] and p]
    assert len(routed) <= 2, routed


def test_the_third_held_out_set_now_a_development_set(desk: Desk) -> None:
    """support_heldout3 (142 requests written blind in session 13; a development set since session
    14): micro-F1 0.874 (P 0.863, R 0.884), exact 0.746 at the start of round 4, 0.929 (0.938,
    0.921), exact 0.873 after it. Floors a little below, and out of scope stays out."""
    data, predicted, metrics = route_suite(
        desk, ROOT / "tests" / "support_desk" / "data" / "support_heldout3.jsonl"
    )
    assert len(data) >= 140
    assert metrics["micro_f1"] >= 0.90, metrics
    assert metrics["micro_precision"] >= 0.90, metrics
    assert metrics["exact_match"] >= 0.83, metrics
    routed = [p for r, p in zip(data, predicted, strict=True) if r["labels"] == ["out_of_scope"] and p]
    assert len(routed) <= 2, routed


def test_secondary_needs_and_implied_lookups_through_the_classifier(desk: Desk) -> None:
    """Issue 19 item 5, through the classifier node with the shipped guides: a how-to clause next
    to an account need is selected as a secondary need (`thresholds.secondary_need`); a statement
    of a charge next to a refund request does not select `billing` (`nodes.classifier.implied`),
    while an explicit request to check the charges does; a single how-to selects nothing extra."""
    from graph.classifier.build import build_scorer
    from graph.models import LLMGateway, ModelProvider
    from nodes.classifier import classify

    registry = desk.registry
    scorer = build_scorer(registry, desk.settings)
    provider = ModelProvider(
        {role: registry.spec.models.for_role(role) for role in ModelProvider.roles()},
        desk.settings,
        enabled=False,
    )

    def route(text: str) -> set[str]:
        scored = asyncio.run(
            classify(text, registry, scorer, LLMGateway(provider, used=0, budget=1), mode="embedding")
        )
        return {c["name"] for c in scored if c["selected"] and c["source"] != "always"}

    assert route("List my charges. Also how do I update the card on file?") == {"billing", "knowledge_search"}
    assert route("how much would Starter be for 6 people, and how do I invite them?") == {
        "sales",
        "knowledge_search",
    }
    assert route("I was charged for a seat I never used, please refund it") == {"refund"}
    assert route("Check whether I was charged twice, then refund the duplicate if so") == {
        "billing",
        "refund",
    }
    assert route("how do I reset my password") == {"knowledge_search"}


def test_round3_rules_through_the_classifier(desk: Desk) -> None:
    """Issue 19 item 5, round 3, through the classifier node with the shipped guides, on phrasings
    of no data set: a how-to asked next to an account or billing need is kept (a request clause
    leads the capabilities not selected yet; "separately" is no part of the need); an address that
    only says who asks adds no account lookup (`who_only`); courtesy around a request selects
    nothing of its own (`courtesy_winners`, `clause_needs`); a request of two clauses that no
    threshold took keeps its clear one (`clear_request`)."""
    from graph.classifier.build import build_scorer
    from graph.models import LLMGateway, ModelProvider
    from nodes.classifier import classify

    registry = desk.registry
    scorer = build_scorer(registry, desk.settings)
    provider = ModelProvider(
        {role: registry.spec.models.for_role(role) for role in ModelProvider.roles()},
        desk.settings,
        enabled=False,
    )

    def route(text: str) -> set[str]:
        scored = asyncio.run(
            classify(text, registry, scorer, LLMGateway(provider, used=0, budget=1), mode="embedding")
        )
        return {c["name"] for c in scored if c["selected"] and c["source"] != "always"}

    assert route("which plan is Acme Inc on? separately, how do I turn on single sign-on") == {
        "account",
        "knowledge_search",
    }
    assert route("jane@acme.io here - the REST API keeps timing out for us") == {"incidents"}
    assert route("is the dashboard down right now? my address is omar@brightpath.co") == {"incidents"}
    assert route(
        "Hi! Hope your week is going well. I have been trying to work out how to invite a new teammate "
        "to our workspace, could you tell me the steps? Thanks so much, Priya"
    ) == {"knowledge_search"}
    # Still an account lookup when the rest asks for the account itself.
    assert route("which plan is omar@brightpath.co on") == {"account"}


def test_round4_rules_through_the_classifier(desk: Desk) -> None:
    """Issue 19 item 5, round 4, through the classifier node with the shipped guides, on phrasings
    of no data set (each was routed wrongly before the round): an account number in words only says
    who asks (`clauses.IDENTIFIER`, `who_only`); a how-to clause next to a billing need names the help
    centre (`asks_how_to`, `how_to_owner`); another company's outage or charge is nobody's here
    (`foreign_clauses`). And where they must not fire: the product's own name, a plan question that
    gives a customer number. Round 5's `grounds_of_ask` too, firing and not."""
    from graph.classifier.build import build_scorer
    from graph.models import LLMGateway, ModelProvider
    from nodes.classifier import classify

    registry = desk.registry
    scorer = build_scorer(registry, desk.settings)
    provider = ModelProvider(
        {role: registry.spec.models.for_role(role) for role in ModelProvider.roles()},
        desk.settings,
        enabled=False,
    )

    def route(text: str) -> set[str]:
        scored = asyncio.run(
            classify(text, registry, scorer, LLMGateway(provider, used=0, budget=1), mode="embedding")
        )
        return {c["name"] for c in scored if c["selected"] and c["source"] != "always"}

    assert route(
        "acct #1009 - the webhooks have not fired since this morning, is something wrong on your end?"
    ) == {"incidents"}
    assert route("show me the charges for April, then tell me how to download a receipt as PDF") == {
        "billing",
        "knowledge_search",
    }
    assert route("Is Dropbox having an outage? my files won't sync") == set()
    assert route("Hulu billed me twice this month, can you get my money back?") == set()
    # A how-to in the guides' words that no threshold took (`our_how_to`); one in other words is not.
    assert route("what is the policy on refunds for unused seats on annual plans") == {"knowledge_search"}
    assert route("how do I knit a woollen scarf") == set()
    # The clause that gives the id asks for a ticket, not for the lookup (`who_only`).
    assert route("please file a ticket for C-1006, our data exports keep timing out halfway") == {"incidents"}
    # Not fired: our own product's name, and an id given with a question about the account itself.
    assert route("is the API down, and which plan is C-1009 on?") == {"account", "incidents"}
    assert route("is Tandem down right now?") == {"incidents"}
    assert route("which plan are we on, customer 1003") == {"account"}
    # Round 5: a charge or renewal stated before the refund it grounds selects only the refund
    # (`grounds_of_ask`; the planner runs the lookups the refund requires); one asked about stays.
    assert route(
        "I see two identical payments for the Team plan this month; I'd like the second one returned."
    ) == {"refund"}
    assert route(
        "The Starter renewal went out after we had already moved to the free tier. We'd like it reversed."
    ) == {"refund"}
    assert route("Was our card charged twice in September? If it was, refund the second one.") == {
        "billing",
        "refund",
    }


def test_eval_with_a_registry_measures_its_own_guides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`routegraph eval --data FILE --registry PATH`: every row through that registry's classifier
    (here the shipped guides on the lexical encoder, which needs no fine-tuning), labels checked
    against its capabilities."""
    from graph.cli import main

    data = yaml.safe_load((ROOT / "registry.yaml").read_text(encoding="utf-8"))
    data["classifier"] = {**data["classifier"], "encoder": "lexical", "finetune": False}
    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump(data), encoding="utf-8")
    rows = [
        ("what is 12 times 7", ["calculator"]),
        ("what would the Team plan cost for 12 seats", ["sales"]),
        ("write me a sonnet about the sea", ["out_of_scope"]),
    ]
    labelled = tmp_path / "rows.jsonl"
    labelled.write_text(
        "".join(json.dumps({"text": t, "labels": labels, "split": "test"}) + "\n" for t, labels in rows),
        encoding="utf-8",
    )
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path / "data"))
    assert main(["eval", "--data", str(labelled), "--registry", str(registry), "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"] == 3 and result["out_of_scope_rows"] == 1
    assert set(result["metrics"]) >= {"exact_match", "micro_f1", "micro_precision", "micro_recall"}
    assert all(r["text"] in {t for t, _ in rows} for r in result["misrouted"])

    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(
        json.dumps({"text": "hello", "labels": ["weather"], "split": "test"}) + "\n", encoding="utf-8"
    )
    assert main(["eval", "--data", str(wrong), "--registry", str(registry), "--quiet"]) == 2
    assert "weather" in capsys.readouterr().err


def test_the_account_lookup_reads_a_customer_number_in_words() -> None:
    """Round 4: the lookup reads the id forms the classifier treats as identifiers (customer 1007,
    acct #1005, our customer number is 1009), not only C-1004; an invoice or charge id is none."""
    from capabilities.support_desk.account import customer_ids

    assert customer_ids("look up customer 1007 please") == ["1007"]
    assert customer_ids("acct #1005: the invoice is wrong") == ["1005"]
    assert customer_ids("Our customer number is 1009.") == ["1009"]
    assert customer_ids("account details for client 1009") == ["1009"]
    assert customer_ids("which plan is C-1004 on, and c1002?") == ["1004", "1002"]
    assert customer_ids("refund CH-2034 from invoice INV-3033 for 1200 seats") == []
