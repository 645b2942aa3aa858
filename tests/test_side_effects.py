"""The side-effect policy: a capability with `side_effects` acts only on an explicit instruction.

The policy is the framework's (`Router.gates`), so it is tested here on a capability that knows
nothing about it: the test `Payout`, declared `side_effects: true` in the registry only. Each test
says which safety decision it pins: if that decision flipped (acting on a question, skipping the
threshold, reading the rewritten task instead of the user's words), the test fails.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.types import Command

from graph.capability import REFUND_VERBS, Capability, ClassifierGuide, GuideExample, RunContext
from graph.config.registry import Registry
from graph.errors import RegistryError
from tests.conftest import answer, fake, guide, registry_with
from tests.testcaps import make_db

ROOT = Path(__file__).resolve().parents[1]


class Sender(Capability):
    """Sends a message: side effects declared by the class."""

    name = "sender"
    description = "Send a message to a customer."
    side_effects = True
    action_verbs = ("send",)
    classifier_guide = ClassifierGuide(examples=(GuideExample(query="send bob a message"),))

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        return {"summary": "sent"}


def shop(db: Path, *, threshold: float = 100, mode: str = "above", **sections: Any) -> Registry:
    lookup = {
        "name": "lookup",
        "class": "tests.testcaps:Lookup",
        "options": {"db": str(db)},
        "classifier_guide": guide("find the account of alice", "look up customer bob"),
    }
    payout = {
        "name": "payout",
        "class": "tests.testcaps:Payout",
        "options": {"db": str(db)},
        "classifier_guide": guide(
            "pay alice 20 dollars",
            "send a payout of 50 to bob",
            "can I pay alice 20 dollars?",
            "don't pay alice 20 dollars, just look her up",
        ),
        "approval": {"mode": mode, "threshold": threshold},
        # Declared here only: the class knows nothing of the policy.
        "side_effects": True,
        "action_verbs": ["pay", "payout", "send money"],
    }
    return registry_with(lookup, payout, **sections)


class Thread:
    def __init__(self, graph: Any, db: Path, thread: str = "t") -> None:
        self.graph, self.db = graph, db
        self.config = {"configurable": {"thread_id": thread}}

    def ask(self, text: str) -> dict[str, Any]:
        return dict(self.graph.invoke({"messages": [HumanMessage(content=text)]}, self.config))

    def resume(self, value: Any) -> dict[str, Any]:
        return dict(self.graph.invoke(Command(resume=value), self.config))

    def pending(self) -> list[dict[str, Any]]:
        snapshot = self.graph.get_state(self.config)
        return [i.value for task in snapshot.tasks for i in task.interrupts]

    def paid(self) -> int:
        conn = sqlite3.connect(self.db)
        try:
            return int(conn.execute("SELECT count(*) FROM payouts").fetchone()[0])
        finally:
            conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "shop.sqlite")


@pytest.fixture
def thread(make_graph: Any, db: Path) -> Thread:
    return Thread(make_graph(shop(db)), db)


def planned(state: dict[str, Any]) -> list[str]:
    return [s["capability"] for s in state.get("planning_plan") or []]


def payout_result(state: dict[str, Any]) -> dict[str, Any]:
    (result,) = [r for r in state["execution_results"].values() if r["capability"] == "payout"]
    return dict(result)


# --- the registry ---------------------------------------------------------------------------------


def test_side_effects_and_verbs_resolve_from_class_and_yaml(db: Path) -> None:
    shipped = Registry.from_file(ROOT / "registry.yaml")
    assert shipped["refund"].side_effects and shipped["refund"].action_verbs == REFUND_VERBS
    assert not any(c.side_effects for c in shipped if c.name != "refund")
    yaml_declared = shop(db)["payout"]
    assert yaml_declared.side_effects and yaml_declared.action_verbs == ("pay", "payout", "send money")
    by_class = registry_with({"name": "sender", "class": "tests.test_side_effects:Sender"})
    assert by_class["sender"].side_effects and by_class["sender"].action_verbs == ("send",)
    renamed = registry_with(
        {"name": "sender", "class": "tests.test_side_effects:Sender", "action_verbs": ["dispatch"]}
    )
    assert renamed["sender"].action_verbs == ("dispatch",)


def test_side_effects_without_verbs_or_switched_off_are_registry_errors() -> None:
    no_verbs = {"name": "calc2", "class": "capabilities.calculator:Calculator", "side_effects": True}
    with pytest.raises(RegistryError, match="needs action_verbs"):
        registry_with(no_verbs)
    with pytest.raises(RegistryError, match="cannot turn the side-effect policy off"):
        registry_with({"name": "sender", "class": "tests.test_side_effects:Sender", "side_effects": False})
    with pytest.raises(RegistryError, match="action_verbs"):
        registry_with({"name": "sender", "class": "tests.test_side_effects:Sender", "action_verbs": [""]})


# --- the policy in the graph ------------------------------------------------------------------------


def test_an_explicit_instruction_under_the_threshold_runs(thread: Thread) -> None:
    state = thread.ask("pay alice 20 dollars")
    assert thread.paid() == 1 and "paid 20" in answer(state)
    assert not thread.pending()


def test_an_explicit_instruction_above_the_threshold_waits_for_a_human(thread: Thread) -> None:
    """Pins the threshold: skipping it would pay 500 here."""
    thread.ask("pay alice 500 dollars")
    (payload,) = thread.pending()
    assert payload["steps"][0]["kind"] == "approve"
    assert thread.paid() == 0
    state = thread.resume(False)
    assert thread.paid() == 0 and payout_result(state)["status"] == "denied"


def test_a_negated_request_skips_the_step_and_answers_the_rest(thread: Thread) -> None:
    """Pins `refuse`: nothing is asked, nothing is paid, the lookup still answers."""
    state = thread.ask("don't pay alice 20 dollars, just look her up")
    assert "payout" in planned(state), "the planner did plan it: the policy stopped it"
    assert not thread.pending() and thread.paid() == 0
    result = payout_result(state)
    assert result["status"] == "skipped" and "does not ask for it" in answer(state)
    assert "customer 7" in answer(state), "the lookup (what the user asked) is answered"
    assert any(n.startswith("side_effect_not_requested:") for n in state["planning_notes"])


def test_a_question_under_the_threshold_asks_to_confirm_and_no_answer_does_nothing(thread: Thread) -> None:
    """Pins `confirm`: acting on a question would pay 20 here without asking."""
    thread.ask("can I pay alice 20 dollars?")
    (payload,) = thread.pending()
    (step,) = payload["steps"]
    assert step["kind"] == "confirm" and step["capability"] == "payout"
    assert "only asks" in step["question"] and "nothing is done unless you approve" in step["question"]
    assert thread.paid() == 0, "no answer: nothing"
    state = thread.resume(False)
    assert thread.paid() == 0 and payout_result(state)["status"] == "denied"
    assert "Reply “yes” to go ahead" in answer(state)


def test_a_confirmed_question_runs(thread: Thread) -> None:
    thread.ask("could you pay alice 20 dollars?")
    assert thread.pending()[0]["steps"][0]["kind"] == "confirm"
    thread.resume("yes")
    assert thread.paid() == 1


def test_a_plain_yes_next_turn_accepts_the_offer(thread: Thread) -> None:
    thread.ask("can I pay alice 20 dollars?")
    thread.resume(False)
    state = thread.ask("yes, do it")
    assert thread.paid() == 1, answer(state)
    assert state["task_current"] == "can I pay alice 20 dollars?", "the offered task is the one run"
    assert any(n.startswith("side_effect_confirmed:") for n in state["planning_notes"])


def test_a_yes_after_a_lookup_of_the_same_customer_accepts_the_offer(thread: Thread) -> None:
    # An offer survives a turn that only looks something up (graph/context/offers.py) ...
    thread.ask("can I pay alice 20 dollars?")
    thread.resume(False)
    thread.ask("find the account of alice")
    state = thread.ask("yes")
    assert thread.paid() == 1, answer(state)


def test_a_yes_after_another_customer_accepts_nothing(thread: Thread) -> None:
    # ... but not one that looked up someone else: the yes is not to what was offered.
    thread.ask("can I pay alice 20 dollars?")
    thread.resume(False)
    thread.ask("find the account of bob")
    state = thread.ask("yes")
    assert thread.paid() == 0, answer(state)


def test_a_yes_four_turns_later_accepts_nothing(thread: Thread) -> None:
    thread.ask("can I pay alice 20 dollars?")
    thread.resume(False)
    for _ in range(3):
        thread.ask("find the account of alice")
    state = thread.ask("yes")
    assert thread.paid() == 0, answer(state)


def test_a_no_next_turn_accepts_nothing(thread: Thread) -> None:
    thread.ask("can I pay alice 20 dollars?")
    thread.resume(False)
    thread.ask("no thanks")
    assert thread.paid() == 0


def test_a_hypothetical_never_pays(thread: Thread) -> None:
    state = thread.ask("if I asked you to pay alice 20 dollars, would that work?")
    assert "payout" in planned(state)
    (payload,) = thread.pending()
    assert payload["steps"][0]["kind"] == "confirm" and thread.paid() == 0
    thread.resume(False)
    assert thread.paid() == 0


def test_the_users_words_decide_not_the_rewritten_task(make_graph: Any, db: Path) -> None:
    """A task-extraction model that rewrites a question into an instruction must not make it act.

    Pins reading the raw human message: with the extracted task the question would pay 20 at once.
    """
    rewritten = {"task": "pay alice 20 dollars", "depends_on_history": False}
    graph = make_graph(shop(db), models={"task_extraction": fake(rewritten, repeat=True)})
    thread = Thread(graph, db)
    thread.ask("can I pay alice 20 dollars?")
    assert thread.pending()[0]["steps"][0]["kind"] == "confirm"
    assert thread.paid() == 0
    thread.resume(False)
    assert thread.paid() == 0


def test_mode_never_still_needs_an_explicit_instruction(make_graph: Any, db: Path) -> None:
    thread = Thread(make_graph(shop(db, mode="never")), db)
    thread.ask("pay alice 500 dollars")
    assert thread.paid() == 1 and not thread.pending()
    thread.ask("can I pay bob 20 dollars?")
    assert thread.pending()[0]["steps"][0]["kind"] == "confirm"
    thread.resume(False)
    assert thread.paid() == 1


def test_content_blocks_are_read_line_by_line(thread: Thread) -> None:
    """ "don't" and "pay alice 20 dollars" in two blocks: not an instruction (they must not fuse)."""
    blocks = [{"type": "text", "text": "don't"}, {"type": "text", "text": "pay alice 20 dollars"}]
    thread.graph.invoke({"messages": [HumanMessage(content=blocks)]}, thread.config)  # type: ignore[arg-type]
    (payload,) = thread.pending()
    assert payload["steps"][0]["kind"] == "confirm"
    thread.resume(False)
    assert thread.paid() == 0
