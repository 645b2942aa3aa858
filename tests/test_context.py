"""User context: follow-ups read against the thread's topic, profiles in the LangGraph store, answers
shaped by the profile. Graph tests run the real graph offline (lexical encoder, memory checkpointer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.store.memory import InMemoryStore

from capabilities.calculator import evaluate, extract_expression
from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.context import followups, profiles
from graph.context.followups import resolve, slots, substitute
from graph.errors import ConfigError
from graph.redact import Redactor
from nodes.task_extraction import asks_action, feeds, has_side_effects
from tests.conftest import answer

MULTI = [
    {"capability": "calculator", "task": "What is 12*7", "turn": 1},
    {"capability": "clock", "task": "what time is it in Tokyo?", "turn": 1},
]


def nothing(_: str) -> list[str]:
    return []


# --- follow-ups, pure ---------------------------------------------------------------------------


def test_slots_are_found_by_shape() -> None:
    kinds = {
        (s.kind, s.text) for s in slots("is the API down, and is C-1004 on 12*7 or jane@acme.io for 30?")
    }
    assert {
        ("name", "API"),
        ("ident", "C-1004"),
        ("expr", "12*7"),
        ("email", "jane@acme.io"),
        ("number", "30"),
    } <= kinds


def test_a_slot_replaces_the_one_of_its_kind() -> None:
    (paris,) = slots("Paris")
    assert substitute("what time is it in Tokyo?", paris) == "what time is it in Paris?"
    (cid,) = slots("C-1007")
    # An identifier of another sort replaces the clause's only identifier.
    assert (
        substitute("which plan am I on? my email is omar@brightpath.co", cid)
        == "which plan am I on? my email is C-1007"
    )
    assert substitute("What is 12*7", paris) is None


def test_a_follow_up_after_a_multi_intent_turn_goes_to_the_capability_its_slot_fits() -> None:
    follow = resolve("and in Paris?", MULTI, turn=2, standalone=nothing)
    assert (follow.kind, follow.capabilities, follow.task) == (
        "follow_up",
        ["clock"],
        "what time is it in Paris?",
    )
    fix = resolve("no, I meant 12*8", MULTI, turn=2, standalone=lambda t: ["calculator"])
    assert (fix.kind, fix.capabilities, fix.task) == ("correction", ["calculator"], "What is 12*8")


def test_new_slots_for_each_need_of_a_multi_intent_turn_continue_both() -> None:
    both = resolve("same for 8*8 and Helsinki", MULTI, turn=2, standalone=nothing)
    assert (both.kind, sorted(both.capabilities)) == ("follow_up", ["calculator", "clock"])
    assert both.task is not None and "8*8" in both.task and "Helsinki" in both.task
    assert "Tokyo" not in both.task and "12*7" not in both.task
    # Does not fire: one slot, or two slots that fit one need only, continue one need.
    assert resolve("and in Paris?", MULTI, turn=2, standalone=nothing).capabilities == ["clock"]
    one = resolve("and Paris or Rome?", MULTI, turn=2, standalone=nothing)
    assert one.capabilities == ["clock"]
    # "both" / "the two" before the new slots is a cue that the turn continues the needs.
    for text in ("both again, for 8*8 and Helsinki", "the two again with 8*8 and Helsinki"):
        assert sorted(resolve(text, MULTI, turn=2, standalone=nothing).capabilities) == [
            "calculator",
            "clock",
        ]
    assert resolve("both plans for 5 seats", MULTI, turn=2, standalone=nothing).kind == "new"
    # Nor when the last turn had one need: an earlier turn's capability is not continued with it.
    older = [MULTI[1], {**MULTI[0], "turn": 0}]
    assert len(resolve("same for 8*8 and Helsinki", older, turn=2, standalone=nothing).capabilities) == 1


def test_words_that_name_another_need_are_a_switch() -> None:
    clock = MULTI[1:]
    assert resolve("ok, and what's 2+2?", clock, turn=2, standalone=lambda t: ["calculator"]).kind == "switch"
    # A full request of its own is not a follow-up, cue or not.
    assert (
        resolve("and is the webhooks service healthy today?", clock, turn=2, standalone=nothing).kind == "new"
    )
    assert resolve("tell me a joke", clock, turn=2, standalone=nothing).kind == "new"


def test_anaphora_carries_the_clause_and_a_plain_yes_takes_the_offer() -> None:
    topic = [{"capability": "billing", "task": "I was charged twice, I'm jane@acme.io", "turn": 1}]
    follow = resolve("what about the other charge?", topic, turn=2, standalone=nothing)
    assert follow.capabilities == ["billing"]
    assert follow.task == "what about the other charge? (follow-up to: I was charged twice, I'm jane@acme.io)"
    yes = resolve("yes, do it", topic, turn=2, standalone=nothing, offer=["refund"])
    assert (yes.kind, yes.capabilities) == ("confirmation", ["refund"])
    assert followups.is_yes("go ahead") and not followups.is_yes("ok, now what's 3+4?")


def test_the_topic_keeps_recent_capabilities_first() -> None:
    topic = followups.topic_after(MULTI, {"clock": "what time is it in Paris?"}, turn=2)
    assert [e["capability"] for e in topic] == ["clock", "calculator"]
    assert followups.topic_after(topic, {"clock": "x"}, turn=9) == [
        {"capability": "clock", "task": "x", "turn": 9}
    ]


def test_an_arithmetic_continuation_continues_the_previous_expression() -> None:
    calc = [{"capability": "calculator", "task": "what's 15 plus 27", "turn": 1}]
    steps = [
        ("and minus 7?", "(15 + 27) - 7", 35),
        ("times 3?", "(18 + 24) * 3", 126),
        ("then divide that by 2?", "((18 + 24) * 3) / 2", 63),
        ("plus tax of 8%?", "(100 + 50) * (1 + 8/100)", 162),
        ("squared?", "(15/100*80) ** 2", 144),
    ]
    previous = {
        "times 3?": "what's 18 + 24",
        "then divide that by 2?": "(18 + 24) * 3",
        "plus tax of 8%?": "what is 100 + 50",
        "squared?": "what's 15% of 80",
    }
    for text, task, value in steps:
        topic = [{"capability": "calculator", "task": previous.get(text, calc[0]["task"]), "turn": 1}]
        follow = resolve(text, topic, turn=2, standalone=nothing)
        assert (follow.kind, follow.capabilities, follow.task) == ("follow_up", ["calculator"], task)
        # The calculator reads the rewritten task as one expression.
        assert evaluate(extract_expression(follow.task) or "") == pytest.approx(value)
    # After a multi-intent turn it continues the clause that holds the arithmetic, not the latest one.
    multi = [{"capability": "clock", "task": "what time is it in Tokyo?", "turn": 1}, MULTI[0]]
    assert resolve("and minus 4?", multi, turn=2, standalone=nothing).capabilities == ["calculator"]
    # No expression in the topic, or more than an operator and its operand: not a continuation.
    assert resolve("and minus 7?", MULTI[1:], turn=2, standalone=nothing).task != "(12*7) - 7"
    assert followups.continuation("times 3 apples for my kids please") is None
    assert followups.continuation("and in Paris?") is None
    assert followups.expression_of("look up C-1004 and CH-2034") is None


def test_a_correction_that_is_only_a_slot_replaces_the_slot_of_its_kind() -> None:
    account = [{"capability": "account", "task": "pull up customer C-1002", "turn": 1}]
    # The classifier reads "C-1006" alone as billing: too few words to name another need.
    billing = lambda t: ["billing"]  # noqa: E731
    fix = resolve("sorry, C-1006 I mean", account, turn=2, standalone=billing)
    assert (fix.kind, fix.capabilities, fix.task) == ("correction", ["account"], "pull up customer C-1006")
    by_mail = [{"capability": "account", "task": "look up the account for jane@acme.io", "turn": 1}]
    fix = resolve("no, I meant priya@nimbuslabs.dev", by_mail, turn=2, standalone=billing)
    assert (fix.capabilities, fix.task) == (["account"], "look up the account for priya@nimbuslabs.dev")
    # Words besides the slot that name another need still switch.
    assert (
        resolve("sorry, what are the charges on C-1006", account, turn=2, standalone=billing).kind == "switch"
    )


def test_a_question_about_a_listed_item_stays_with_the_capability_that_listed_it() -> None:
    registry = Registry.from_file(Path(__file__).resolve().parent.parent / "registry.yaml")
    topic = [
        {"capability": "billing", "task": "I think you billed us twice, I'm omar@brightpath.co", "turn": 1}
    ]

    def read(text: str) -> followups.FollowUp:
        return resolve(
            text,
            topic,
            turn=2,
            standalone=lambda t: ["refund"],
            acts=lambda t, name: asks_action(registry, t, name),
            side_effects=lambda name: has_side_effects(registry, name),
        )

    for question in ("can that one be refunded?", "is the last one refundable?"):
        follow = read(question)
        assert (follow.kind, follow.capabilities) == ("follow_up", ["billing"]), question
        assert follow.task and "omar@brightpath.co" in follow.task
    # Words that ask for the action go to the capability that acts.
    for request in ("refund that one please", "can you refund the other one?"):
        assert read(request).kind == "switch", request
    # Any item of the list is anaphora: the topic's capability with the customer carried over.
    for item in ("was the declined one retried?", "and the most recent one?", "what about the first ones"):
        follow = resolve(item, topic, turn=2, standalone=nothing)
        assert (follow.kind, follow.capabilities) == ("follow_up", ["billing"]), item
    # Without the registry's view the classifier's reading stands (no guess).
    assert (
        resolve("can that one be refunded?", topic, turn=2, standalone=lambda t: ["refund"]).kind == "switch"
    )


# --- follow-ups: the mechanisms added for conversations nobody tuned on (issue 22, item 1) --------

GUIDES = {
    "incidents": [
        "are webhooks delayed",
        "is SSO login failing",
        "data exports are empty",
        "is the API down",
    ],
    "sales": ["what does the Team plan cost for 10 seats", "price of Enterprise", "quote for Starter"],
    "clock": ["what time is it in Tokyo", "current time in London"],
    "billing": ["show my charges", "why was I charged twice", "list my invoices"],
    "account": ["which plan am I on", "how many seats do we have", "when does our subscription renew"],
    "knowledge_search": [
        "how do I reset my password",
        "what is your refund policy",
        "how do I set up SSO",
    ],
}
LEXICON = followups.guide_lexicon(GUIDES)
KNOWN = followups.vocabulary(GUIDES)


def scores(table: dict[str, float]) -> Any:
    return lambda _text, names: {n: table.get(n, 0.0) for n in names}


def test_a_place_replaces_a_place_and_never_a_plan_name() -> None:
    topic = [
        {"capability": "sales", "task": "how much is Team for 15 seats", "turn": 2},
        {"capability": "clock", "task": "what time is it in Oslo", "turn": 1},
    ]
    (helsinki,) = slots("Helsinki")
    assert helsinki.kind == "place" and substitute("how much is Team for 15 seats", helsinki) is None
    follow = resolve("and in Helsinki?", topic, turn=3, standalone=nothing)
    assert (follow.capabilities, follow.task) == (["clock"], "what time is it in Helsinki")
    # A name the time zone database does not know may still replace a place ("in Mumbai").
    (mumbai,) = slots("Mumbai")
    assert (
        mumbai.kind == "name"
        and substitute("what time is it in Dubai", mumbai) == "what time is it in Mumbai"
    )


def test_a_short_turn_in_the_topics_own_words_follows_it() -> None:
    topic = [{"capability": "incidents", "task": "are the webhooks delayed?", "turn": 1}]
    for text in ("is SSO ok?", "exports too?", "how's the API doing?"):
        follow = resolve(text, topic, turn=2, standalone=nothing, lexicon=LEXICON, known=KNOWN)
        assert (follow.kind, follow.capabilities) == ("follow_up", ["incidents"]), text
    # Without the lexicon the same words are read on their own (nothing ties them to the topic).
    assert resolve("is SSO ok?", topic, turn=2, standalone=nothing).kind == "new"
    # A weak reading elsewhere does not outweigh the topic's own words; a confident one does.
    weak = resolve(
        "how's the API doing?",
        topic,
        turn=2,
        standalone=lambda t: ["knowledge_search"],
        affinity=scores({"knowledge_search": 0.17}),
        lexicon=LEXICON,
    )
    assert weak.capabilities == ["incidents"]
    strong = resolve(
        "how's the API doing?",
        topic,
        turn=2,
        standalone=lambda t: ["knowledge_search"],
        affinity=scores({"knowledge_search": 0.99}),
        lexicon=LEXICON,
    )
    assert strong.kind == "switch"


def test_a_word_no_capability_knows_is_a_request_of_its_own() -> None:
    topic = [{"capability": "clock", "task": "what time is it in Tokyo", "turn": 1}]
    assert (
        resolve("what's the weather in Paris?", topic, turn=2, standalone=nothing, known=KNOWN).kind == "new"
    )
    assert resolve("and Paris?", topic, turn=2, standalone=nothing, known=KNOWN).capabilities == ["clock"]


def test_the_topics_own_words_choose_among_several_topic_capabilities() -> None:
    topic = [
        {"capability": "sales", "task": "what's the Team price for 8 seats", "turn": 1},
        {"capability": "incidents", "task": "is the dashboard down", "turn": 1},
    ]
    # "API" is a name, and only the sales clause has one: the incidents' own word decides.
    api = resolve("what about the API?", topic, turn=2, standalone=nothing, lexicon=LEXICON)
    assert api.capabilities == ["incidents"]
    # Two clauses fit a name equally: the classifier's reading of the new words breaks the tie.
    later = [
        {
            "capability": "incidents",
            "task": "what about the API? (follow-up to: is the dashboard down)",
            "turn": 2,
        }
    ]
    tie = resolve(
        "and Enterprise?", later + topic[:1], turn=3, standalone=nothing, affinity=scores({"sales": 0.04})
    )
    assert tie.capabilities == ["sales"]


def test_anaphora_stays_on_the_topic_when_the_topic_is_a_plausible_reading() -> None:
    topic = [{"capability": "account", "task": "which plan is lukas.becker@fjordsoft.de on?", "turn": 1}]
    kept = resolve(
        "when does it renew?",
        topic,
        turn=2,
        standalone=lambda t: ["knowledge_search"],
        plausible=lambda t, n: ["account"],
    )
    assert (kept.capabilities, kept.kind) == (["account"], "follow_up")
    gone = resolve(
        "when does it renew?",
        topic,
        turn=2,
        standalone=lambda t: ["knowledge_search"],
        plausible=lambda t, n: [],
    )
    assert gone.kind == "switch"


def test_one_of_them_is_an_item_of_the_list_the_topic_gave() -> None:
    topic = [{"capability": "billing", "task": "list my recent payments, account C-1006", "turn": 1}]
    follow = resolve(
        "why did one of them fail?",
        topic,
        turn=2,
        standalone=lambda t: ["incidents"],
        acts=lambda t, n: False,
        side_effects=lambda n: False,
    )
    assert follow.capabilities == ["billing"]


def test_an_introduction_belongs_to_the_clauses_of_its_turn_and_the_consumer_leads() -> None:
    topic = [
        {"capability": "account", "task": "I'm priya@nimbuslabs.dev", "turn": 1},
        {"capability": "billing", "task": "what have I been billed this month", "turn": 1},
    ]
    follow = resolve("and for C-1005?", topic, turn=2, standalone=nothing)
    assert (follow.capabilities, follow.task) == (
        ["billing"],
        "what have I been billed this month, I'm C-1005",
    )
    # A provider next to the capability it fed comes after it (`feeds`), whatever the plan's order.
    fed = [
        {"capability": "account", "task": "which plan and charges for C-1002", "turn": 1},
        {"capability": "billing", "task": "which plan and charges for C-1002", "turn": 1},
    ]
    order = resolve(
        "and C-1005?", fed, turn=2, standalone=nothing, feeds=lambda a, b: (a, b) == ("account", "billing")
    )
    assert order.capabilities == ["billing"]


def test_ditto_and_likewise_are_cues_even_though_no_guide_uses_them() -> None:
    topic = [{"capability": "account", "task": "how many seats does diego@solmarket.mx have", "turn": 2}]
    for text in ("ditto for C-1002", "likewise for C-1002"):
        follow = resolve(text, topic, turn=3, standalone=nothing, known=KNOWN)
        assert (follow.capabilities, follow.task) == (["account"], "how many seats does C-1002 have"), text


def test_a_withdrawn_request_is_not_followed_up() -> None:
    topic = [
        {
            "capability": "refund",
            "task": "could I get a refund for the double charge? omar@brightpath.co",
            "turn": 1,
        }
    ]
    follow = resolve("actually never mind, which plan am I on?", topic, turn=2, standalone=nothing)
    assert (follow.kind, follow.capabilities, follow.task) == ("switch", [], "which plan am I on?")
    assert resolve("forget that", topic, turn=2, standalone=nothing).task is None


def test_a_correction_that_rules_out_the_topic_goes_to_what_it_names() -> None:
    topic = [{"capability": "billing", "task": "can I see my invoices? tom@whitakerlegal.co.uk", "turn": 1}]
    follow = resolve(
        "sorry, I meant my plan, not the invoices",
        topic,
        turn=2,
        standalone=nothing,
        affinity=scores({"account": 0.01}),
        lexicon=LEXICON,
        routable=["billing", "account", "sales"],
    )
    assert (follow.kind, follow.capabilities) == ("correction", ["account"])
    assert follow.task is not None and "tom@whitakerlegal.co.uk" in follow.task and "invoices?" in follow.task


# --- profiles -----------------------------------------------------------------------------------


def test_profiles_round_trip_in_the_sqlite_store_and_forget_deletes_everything(tmp_path: Path) -> None:
    store = profiles.resolve_store("sqlite", Settings.offline(tmp_path))
    assert isinstance(store, profiles.ThreadedSqliteStore)
    profile = profiles.set_field(profiles.Profile(user_id="ann"), "expertise", "expert")
    profile = profiles.set_field(profile, "answer_length", "short")
    profile = profiles.set_field(profile, "preferred_instances.clock", "clock-eu")
    profiles.save(store, profile)
    store.put(("users", "ann", "notes"), "n1", {"x": 1})
    again = profiles.resolve_store("sqlite", Settings.offline(tmp_path))
    assert again is not None
    loaded = profiles.load(again, "ann")
    assert (loaded.expertise, loaded.expertise_source) == ("expert", "set")
    assert loaded.preferences.answer_length == "short" and loaded.preferred_instances == {"clock": "clock-eu"}
    assert profiles.forget(again, "ann") == 2
    assert not profiles.exists(again, "ann") and not again.search(("users", "ann"))


@pytest.mark.parametrize(
    ("key", "value"), [("expertise", "guru"), ("colour", "red"), ("answer_length", "medium")]
)
def test_bad_profile_values_are_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError):
        profiles.set_field(profiles.Profile(user_id="ann"), key, value)


def test_learning_infers_expertise_and_redacts() -> None:
    redactor = Redactor(secrets=["sk-verysecretvalue123"])
    profile = profiles.Profile(user_id="ann")
    for _ in range(2):
        profile = profiles.learn(
            profile,
            message="time in Europe/Berlin per IANA, and the API endpoint latency",
            task="key sk-verysecretvalue123 time in Europe/Berlin",
            capabilities=["clock"],
            stop_reason="success",
            turn=1,
            thread_id="t",
            topic=[],
            redactor=redactor,
        )
    assert profile.expertise == "expert" and profile.expertise_source == "inferred"
    assert profile.history.capability_counts == {"clock": 2}
    assert "sk-verysecretvalue123" not in profile.model_dump_json()


# --- the graph ----------------------------------------------------------------------------------


def turn(graph: Any, text: str, thread: str = "t", user: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"configurable": {"thread_id": thread}}
    if user:
        config["configurable"]["user_id"] = user
    return dict(graph.invoke({"messages": [HumanMessage(content=text)]}, config))


def selected(state: dict[str, Any]) -> list[str]:
    return [c["name"] for c in state["planning_capabilities"] if c["selected"] and c["source"] != "always"]


def test_and_in_paris_after_a_multi_intent_turn_does_not_repeat_the_arithmetic(make_graph: Any) -> None:
    graph = make_graph(store=InMemoryStore())
    first = turn(graph, "What is 12*7 and what time is it in Tokyo?")
    assert "84" in answer(first) and "Asia/Tokyo" in answer(first)
    second = turn(graph, "and in Paris?")
    assert selected(second) == ["clock"]
    assert "Europe/Paris" in answer(second) and "84" not in answer(second)
    assert second["context_followup"]["kind"] == "follow_up"
    third = turn(graph, "no, I meant Berlin")
    assert selected(third) == ["clock"] and "Europe/Berlin" in answer(third)
    switch = turn(graph, "ok, now what's 3+4?")
    assert selected(switch) == ["calculator"] and "7" in answer(switch) and "Berlin" not in answer(switch)
    more = turn(graph, "and times 10?")
    assert selected(more) == ["calculator"] and "70" in answer(more)


def test_the_profile_node_records_the_turn_in_the_store_and_shapes_answers(make_graph: Any) -> None:
    store = InMemoryStore()
    graph = make_graph(store=store)
    profiles.save(store, profiles.set_field(profiles.Profile(user_id="bea"), "expertise", "beginner"))
    state = turn(graph, "what is 6*7", user="bea")
    assert state["context_user_id"] == "bea" and state["context_profile"]["expertise"] == "beginner"
    assert "6*7 = 42." in answer(state) and "Next step" in answer(state)
    stored = profiles.load(store, "bea")
    assert stored.history.turns == 1 and stored.history.capability_counts == {"calculator": 1}
    assert stored.session["topic"][0]["capability"] == "calculator"
    profiles.save(store, profiles.set_field(stored, "expertise", "expert"))
    terse = turn(graph, "what time is it in Tokyo", user="bea")
    assert "Next step" not in answer(terse) and answer(terse).count(".") >= 1


@pytest.mark.parametrize("user", ["dee.ortiz@example.org", "100%.sure", "a%2Eb"])
def test_an_e_mail_address_as_user_id_keeps_its_profile(make_graph: Any, tmp_path: Path, user: str) -> None:
    # LangGraph's stores refuse "." in a namespace label: the id is encoded, reversibly.
    store = profiles.resolve_store("sqlite", Settings.offline(tmp_path))
    profiles.save(store, profiles.set_field(profiles.Profile(user_id=user), "expertise", "beginner"))
    graph = make_graph(store=store)
    state = turn(graph, "what is 6*7", user=user)
    assert state["context_profile"]["expertise"] == "beginner" and "Next step" in answer(state)
    stored = profiles.load(store, user)
    assert stored.user_id == user and stored.history.turns == 1
    assert profiles.namespace("a.b") != profiles.namespace("a%2Eb")  # no two ids meet
    assert profiles.forget(store, user) == 1 and not profiles.exists(store, user)


class BrokenStore(InMemoryStore):
    async def aput(self, *args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")


def test_a_failing_store_write_never_fails_the_turn(
    make_graph: Any, caplog: pytest.LogCaptureFixture
) -> None:
    graph = make_graph(store=BrokenStore())
    state = turn(graph, "what is 6*7", user="cy")
    assert state["control_stop_reason"] == "success" and "42" in answer(state)
    assert "could not update the profile of cy" in caplog.text


def test_the_server_brings_its_own_store(settings: Settings) -> None:
    from graph.builder import build_graph

    assert build_graph(settings=settings, checkpointer="none").store is None  # type: ignore[attr-defined]
    assert profiles.resolve_store("none", settings) is None


# --- follow-ups, round 2 (heldout3's classes; issue 22, item 1) -----------------------------------


def test_a_number_joined_to_its_unit_and_an_operand_of_an_expression_are_number_slots() -> None:
    (quote,) = [s for s in slots("what does a 12-user Team plan cost") if s.kind == "number"]
    assert quote.text == "12"
    # ...but never the digits of an id or a date.
    assert not [s for s in slots("C-1004 on 2026-12-01") if s.kind == "number"]
    (forty,) = slots("40")
    assert substitute("what does a 12-user Team plan cost", forty) == "what does a 40-user Team plan cost"
    topic = [{"capability": "calculator", "task": "what is 30% of 950", "turn": 1}]
    follow = resolve("what about of 1200?", topic, turn=2, standalone=nothing)
    assert (follow.capabilities, follow.task) == (["calculator"], "what is 30% of 1200")
    assert evaluate(extract_expression(follow.task) or "") == 360


def test_an_id_given_by_its_kind_and_digits_replaces_the_clauses_id_in_its_form() -> None:
    (client,) = slots("same for client 1009")
    assert (client.kind, client.subtype) == ("ident", followups.ANY_ID)
    topic = [{"capability": "billing", "task": "what has C-1003 been charged", "turn": 1}]
    follow = resolve("same for client 1009", topic, turn=2, standalone=lambda t: ["account"])
    assert (follow.capabilities, follow.task) == (["billing"], "what has C-1009 been charged")
    # A number of another length is not that id.
    assert substitute("what has C-1003 been charged", slots("account 12")[0]) is None


def billing_topic(task: str) -> list[dict[str, Any]]:
    return [{"capability": "billing", "task": task, "turn": 1}]


def support_reader(registry: Registry) -> dict[str, Any]:
    from nodes.task_extraction import asks_about_action

    return {
        "acts": lambda t, name: asks_action(registry, t, name),
        "side_effects": lambda name: has_side_effects(registry, name),
        "asks_about": lambda t, name: asks_about_action(registry, t, name),
        "routable": [c.name for c in registry.routable],
    }


def test_a_yes_with_an_action_is_that_action_on_the_last_request() -> None:
    registry = Registry.from_file(Path(__file__).resolve().parent.parent / "registry.yaml")
    topic = billing_topic("omar@brightpath.co: we seem to have paid for the same month twice")
    for text in ("right, please refund that", "sure, refund it please", "ok, refund it then"):
        follow = resolve(text, topic, turn=2, standalone=lambda t: ["billing"], **support_reader(registry))
        assert (follow.kind, follow.capabilities) == ("follow_up", ["refund"]), text
        assert follow.task and "omar@brightpath.co" in follow.task
    # Asking about the action is not asking for it, and a plain yes still continues the request.
    policy = resolve(
        "what is your refund policy?", topic, turn=2, standalone=nothing, **support_reader(registry)
    )
    assert "refund" not in policy.capabilities
    plain = resolve("yes please", topic, turn=2, standalone=nothing, **support_reader(registry))
    assert (plain.kind, plain.capabilities) == ("confirmation", ["billing"])


def test_a_yes_after_a_question_about_an_action_is_a_yes_to_that_action() -> None:
    registry = Registry.from_file(Path(__file__).resolve().parent.parent / "registry.yaml")
    for question in ("could the last charge on c1005 be refunded?", "is CH-2043 refundable?"):
        for yes in ("ok then, do it", "alright, go ahead with it"):
            follow = resolve(
                yes, billing_topic(question), turn=2, standalone=nothing, **support_reader(registry)
            )
            assert (follow.kind, follow.capabilities) == ("confirmation", ["refund"]), (question, yes)
            assert follow.task and question in follow.task
    # A question that rules the action out is not one a yes accepts.
    no = billing_topic("I don't want a refund, why was I charged twice?")
    follow = resolve("ok, go ahead", no, turn=2, standalone=nothing, **support_reader(registry))
    assert follow.capabilities == ["billing"]


def test_a_personal_pronoun_is_the_customer_the_topic_named() -> None:
    topic = [{"capability": "account", "task": "who is customer C-1009?", "turn": 1}]
    follow = resolve("how many seats do they have?", topic, turn=2, standalone=lambda t: ["sales"])
    assert (follow.capabilities, follow.task) == (
        ["account"],
        "how many seats do they have? (follow-up to: who is customer C-1009?)",
    )
    # A capability the topic feeds gets the question, with the clause that names the customer.
    fed = resolve(
        "what did they pay last month?",
        topic,
        turn=2,
        standalone=lambda t: ["billing"],
        feeds=lambda a, b: (a, b) == ("account", "billing"),
    )
    assert (fed.capabilities, fed.task) == (
        ["billing"],
        "what did they pay last month? (follow-up to: who is customer C-1009?)",
    )
    # No customer in the topic: the pronoun binds nothing, the classifier's reading stands.
    plans = [{"capability": "sales", "task": "what plans do you have", "turn": 1}]
    assert (
        resolve("how many seats do they have?", plans, turn=2, standalone=lambda t: ["account"]).kind
        == "switch"
    )


def test_a_definite_description_of_a_listed_item_stays_with_the_list() -> None:
    topic = billing_topic("show me the charges for c1006")
    for text in ("is the retry charge refundable?", "can the duplicate renewal still be refunded?"):
        follow = resolve(
            text,
            topic,
            turn=2,
            standalone=lambda t: ["knowledge_search"],
            acts=lambda t, n: False,
            side_effects=lambda n: n == "refund",
        )
        assert follow.capabilities == ["billing"], text
    # "the Team plan" after a question about one plan names no item of a list.
    plan = [{"capability": "account", "task": "which plan is C-1003 on?", "turn": 1}]
    switch = resolve(
        "what does the Team plan cost for 40 seats?",
        plan,
        turn=2,
        standalone=lambda t: ["sales"],
        acts=lambda t, n: False,
        side_effects=lambda n: False,
    )
    assert switch.kind in ("new", "switch") and not switch.capabilities


def test_words_that_only_ask_how_a_thing_is_keep_a_turn_elliptical() -> None:
    topic = [{"capability": "incidents", "task": "is the REST API having issues?", "turn": 1}]
    for text in ("and the web dashboard, all good?", "how about webhooks, still ok?"):
        follow = resolve(
            text, topic, turn=2, standalone=nothing, lexicon=LEXICON, known=KNOWN | {"web", "dashboard"}
        )
        assert follow.capabilities == ["incidents"], text


def test_an_address_does_not_make_a_charges_question_an_account_lookup() -> None:
    """A provider the identifiers alone chose (account, for the address) gives way to the capability
    it provides for that the rest of the request names (billing); the planner adds account back."""
    from graph.classifier.encoders import LexicalEncoder
    from graph.classifier.guides import LabelGuide
    from graph.classifier.scorer import FewShotScorer
    from nodes.classifier import _fed_by_who

    registry = Registry.from_file(Path(__file__).resolve().parent.parent / "registry.yaml")
    scorer = FewShotScorer(
        [
            LabelGuide(
                "account", ("look up jane@acme.io", "account of omar@brightpath.co", "which plan am I on")
            ),
            LabelGuide("billing", ("list the charges", "show my payments", "what was I charged")),
            LabelGuide("clock", ("what time is it in Tokyo", "current time in Paris")),
        ],
        LexicalEncoder(),
    )
    names = ["account", "billing", "clock"]
    assert _fed_by_who("list the charges for jane@acme.io", registry, scorer, names, {"account"}) == [
        ("account", ["billing"])
    ]
    # The rest asks for the account itself, or there is no identifier: nothing changes.
    assert _fed_by_who("which plan is jane@acme.io on", registry, scorer, names, {"account"}) == []
    assert _fed_by_who("list the charges", registry, scorer, names, {"account"}) == []
    # A capability the provider does not provide for is not a consumer (clock needs no customer).
    assert _fed_by_who("what time is it for jane@acme.io", registry, scorer, names, {"account"}) == []


def _open_profile_store(path: str, barrier: Any, results: Any) -> None:
    from graph.context.profiles import connect_sqlite

    barrier.wait()  # every process imported: now all open the fresh file at once
    try:
        connect_sqlite(Path(path)).conn.close()
        results.put("ok")
    except Exception as exc:  # reported to the test, which names it
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_fresh_profile_store_at_once_all_succeed(tmp_path: Path) -> None:
    """Two first asks at once both ran the SQLite store's migrations (CI: UNIQUE constraint
    failed: store_migrations.v); setup is serialised by a lock file beside the database."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    for attempt in range(4):
        path = str(tmp_path / f"store{attempt}.sqlite")
        barrier, results = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_open_profile_store, args=(path, barrier, results)) for _ in range(6)]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        assert outcomes == ["ok"] * 6


# --- round 3 (issue 22, session 13): heldout4's classes, in other words -----------------------------


def support_guides() -> dict[str, list[str]]:
    from nodes.task_extraction import guide_texts

    return guide_texts(Registry.from_file(Path(__file__).resolve().parent.parent / "registry.yaml"))


def test_a_lower_case_place_alone_and_an_iana_zone_are_places() -> None:
    denver = [{"capability": "clock", "task": "time in denver pls", "turn": 1}]
    follow = resolve("manila", denver, turn=2, standalone=nothing)
    assert (follow.kind, follow.capabilities, follow.task) == ("follow_up", ["clock"], "time in manila pls")
    assert resolve("new york please", denver, turn=2, standalone=nothing).task == "time in new york pls"
    # A lower-case word that is no place is not a slot.
    assert resolve("invoices", denver, turn=2, standalone=nothing).kind == "new"
    zone = [{"capability": "clock", "task": "current time in Europe/Lisbon", "turn": 1}]
    assert [(s.kind, s.text) for s in slots("Asia/Manila too")] == [("place", "Asia/Manila")]
    assert resolve("Asia/Manila too", zone, turn=2, standalone=nothing).task == "current time in Asia/Manila"


def test_an_id_with_its_kind_and_courtesy_words_keeps_the_topics_need() -> None:
    # billing ran for the clause, and account ran to provide its customer.
    topic = [
        {"capability": "billing", "task": "show the invoices for C-1002", "turn": 1},
        {"capability": "account", "task": "show the invoices for C-1002", "turn": 1},
    ]
    feeds = lambda a, b: (a, b) == ("account", "billing")  # noqa: E731
    for text in ("now client c1006 plz", "same thing for customer c-1006 pls", "ditto for user C-1006 thx"):
        follow = resolve(text, topic, turn=2, standalone=lambda t: ["account"], feeds=feeds)
        assert follow.capabilities == ["billing"], text
        assert follow.task is not None and "1006" in follow.task and "invoices" in follow.task
    # A bare name is still read by the classifier: plan names are sales's.
    multi = [
        {"capability": "incidents", "task": "what about the API?", "turn": 2},
        {"capability": "sales", "task": "what's the Team price for 8 seats", "turn": 1},
    ]
    enterprise = resolve("and Enterprise?", multi, turn=3, standalone=lambda t: ["sales"])
    assert enterprise.capabilities == ["sales"]


def test_a_slot_fits_only_a_clause_of_a_capability_that_reads_its_kind() -> None:
    guides = support_guides()
    kinds = followups.slot_kinds(guides)
    assert "expr" in kinds["calculator"] and "expr" not in kinds["clock"] and "email" in kinds["account"]
    clock = [{"capability": "clock", "task": "time in Nairobi + 250*4?", "turn": 1}]
    follow = resolve("and 250*3", clock, turn=2, standalone=lambda t: ["calculator"], kinds=kinds)
    assert follow.kind == "switch"
    # Without the kinds, the expression replaces the one in the clock's clause (the old reading).
    assert resolve("and 250*3", clock, turn=2, standalone=lambda t: ["calculator"]).capabilities == ["clock"]
    help_center = [{"capability": "knowledge_search", "task": "how do refunds get paid out", "turn": 1}]
    charges = resolve(
        "how about omar@brightpath.co's charges?",
        help_center,
        turn=2,
        standalone=nothing,
        kinds=kinds,
        lexicon=followups.guide_lexicon(guides),
        routable=list(guides),
    )
    assert (charges.kind, charges.capabilities) == ("switch", ["billing"])


def test_a_how_to_question_goes_to_the_capability_the_guides_give_how_to_questions() -> None:
    guides = support_guides()
    owner = followups.how_to_owner(guides)
    assert owner == "knowledge_search"
    assert followups.how_to_owner({"a": ["how do I x"], "b": ["how do I y"]}) is None
    account = [{"capability": "account", "task": "what plan is omar@brightpath.co on?", "turn": 1}]
    kw: dict[str, Any] = {"standalone": nothing, "how_to": owner, "routable": list(guides)}
    mine = resolve("how would I upgrade it myself?", account, turn=2, **kw)
    assert (mine.kind, mine.capabilities) == ("follow_up", ["knowledge_search"])
    assert mine.task == "how would I upgrade it myself? (follow-up to: what plan is omar@brightpath.co on?)"
    where = resolve("where can I download those in the app?", account, turn=2, **kw)
    assert where.capabilities == ["knowledge_search"]
    teammate = resolve("ok, and how can we add a new teammate to our workspace?", account, turn=2, **kw)
    assert (teammate.kind, teammate.capabilities, teammate.task) == ("switch", ["knowledge_search"], None)
    # Words that name another need on their own are left to the classifier.
    refund = resolve(
        "how do I get a refund for C-1002?", account, turn=2, **{**kw, "standalone": lambda t: ["refund"]}
    )
    assert refund.capabilities != ["knowledge_search"]
    # Not a how-to question: the topic keeps it.
    assert resolve("how many seats do they have?", account, turn=2, **kw).capabilities == ["account"]


def test_a_lookup_verb_and_identifiers_are_read_on_the_identifiers_alone() -> None:
    asked: list[str] = []

    def reader(text: str) -> list[str]:
        asked.append(text)
        return ["account"] if text.lower().startswith(("c-", "c1", "jane@")) else []

    for text in (
        "pull up C-1008",
        "look up c-1002 as well",
        "find jane@acme.io for me",
        "fetch c-1009 please",
    ):
        follow = resolve(text, [], turn=1, standalone=reader)
        assert (follow.kind, follow.capabilities, follow.task) == ("lookup", ["account"], None), text
    assert asked == ["C-1008", "c-1002", "jane@acme.io", "c-1009"]
    # Anything more than a lookup is a request of its own; an id no capability reads is not guessed.
    assert resolve("look up C-1004 and refund the duplicate", [], turn=1, standalone=reader).kind == "new"
    assert resolve("look up the refund policy", [], turn=1, standalone=reader).kind == "new"
    assert resolve("look up CH-2034", [], turn=1, standalone=reader).kind == "new"


def test_do_the_same_and_same_question_keep_the_need() -> None:
    sso = [{"capability": "incidents", "task": "status of single sign-on?", "turn": 1}]
    for text in ("do the same for email notifications", "same question for exports"):
        follow = resolve(text, sso, turn=2, standalone=lambda t: ["knowledge_search"])
        assert (follow.kind, follow.capabilities) == ("follow_up", ["incidents"]), text
    # A cue that does not say "same" leaves a confident other reading as a switch.
    assert resolve(
        "and how do refunds work?", sso, turn=2, standalone=lambda t: ["knowledge_search"]
    ).kind in (
        "switch",
        "new",
    )


def test_hang_on_wrong_one_is_a_correction() -> None:
    account = [{"capability": "account", "task": "fetch c-1009 please", "turn": 1}]
    for text in ("my bad, wrong customer: C-1001", "hang on, wrong one - C-1001", "hold on, C-1001 I mean"):
        follow = resolve(text, account, turn=2, standalone=lambda t: ["account"])
        assert (follow.kind, follow.capabilities, follow.task) == (
            "correction",
            ["account"],
            "fetch C-1001 please",
        )


@pytest.mark.parametrize(
    "text",
    [
        "yeah ok",
        "sure thing, please proceed",
        "yep, sounds good",
        "absolutely, please proceed with that",
        "yes, that's right, go ahead",
    ],
)
def test_a_yes_in_other_words_accepts_the_offer(text: str) -> None:
    topic = [{"capability": "refund", "task": "could I have the extra seats charge refunded?", "turn": 1}]
    follow = resolve(text, topic, turn=2, standalone=nothing, offer=["refund"])
    assert (follow.kind, follow.capabilities) == ("confirmation", ["refund"])


@pytest.mark.parametrize(
    "text", ["no", "no thanks", "nah, leave it for now", "yes, but don't", "ok, not yet"]
)
def test_a_no_or_a_yes_with_a_negation_is_not_a_yes(text: str) -> None:
    assert not followups.is_yes(text)
    topic = [{"capability": "refund", "task": "can I get CH-2003 refunded?", "turn": 1}]
    assert resolve(text, topic, turn=2, standalone=nothing, offer=["refund"]).kind != "confirmation"


def test_a_yes_to_an_action_no_turn_offered_is_asked_about_never_done_on_the_yes() -> None:
    from graph.router import Router

    registry = Registry.from_file(Path(__file__).resolve().parent.parent / "registry.yaml")
    router = Router(registry)
    step: Any = {"id": "refund:1", "capability": "refund", "inputs": {}, "depends_on": []}
    follow = {"kind": "confirmation", "capabilities": ["refund"], "task": "...", "reason": "..."}

    def intent(text: str, followup: dict[str, Any] | None) -> str:
        state: Any = {"messages": [HumanMessage(content=text)], "context_followup": followup, "task_turn": 2}
        found = router.intent(state, step)
        assert found is not None
        return found.kind

    # "alright, go ahead with it" after "is this charge refundable?": asked first (confirm), not done.
    assert intent("alright, go ahead with it", follow) == "confirm"
    assert intent("sure thing, please proceed", follow) == "confirm"
    # The same words without the follow-up's reading name no refund: nothing to do.
    assert intent("alright, go ahead with it", None) == "refuse"
    # A no is a no whatever the follow-up says; the user's own instruction still acts.
    assert intent("no thanks", follow) == "refuse"
    assert intent("yes, refund it now", follow) == "act"


def test_a_shorthand_courtesy_tail_is_not_part_of_a_first_turns_task() -> None:
    from nodes.task_extraction import offline_task

    assert offline_task("time in denver pls", None).task == "time in denver"
    assert offline_task("who is C-1003, thx?", None).task == "who is C-1003?"
    # Does not fire: full words the guides use, a message of nothing else, a follow-up's own form.
    assert offline_task("REST API status check please", None).task == "REST API status check please"
    assert offline_task("what's the time over in Manila right now", None).task.endswith("right now")
    assert offline_task("pls", None).task == "pls"
    assert offline_task("great, thanks!", None).task == "great, thanks!"


# --- round 5 (issue 22, session 14): heldout5's classes, in other words -----------------------------


def sales_topic(task: str) -> list[dict[str, Any]]:
    return [{"capability": "sales", "task": task, "turn": 1}]


def test_a_verb_that_puts_a_new_value_in_place_is_a_cue() -> None:
    quote = sales_topic("quote Team for 8 seats")
    for text, task in (
        ("change it to 14", "quote Team for 14 seats"),
        ("make it 120", "quote Team for 120 seats"),
        ("bump it up to 30", "quote Team for 30 seats"),
        ("switch that to Enterprise", "quote Enterprise for 8 seats"),
    ):
        # The classifier reads "make it 120" as arithmetic: a bare slot that fits stays with the topic.
        follow = resolve(text, quote, turn=2, standalone=lambda t: ["calculator"])
        assert (follow.kind, follow.capabilities, follow.task) == ("follow_up", ["sales"], task), text
    account = [{"capability": "account", "task": "who's customer C-1002?", "turn": 1}]
    assert resolve("switch to C-1008", account, turn=2, standalone=nothing).task == "who's customer C-1008?"
    # Does not fire: a request of its own that changes something ("change the card on file").
    card = resolve(
        "how do I change the card on file to a new one?",
        quote,
        turn=2,
        standalone=lambda t: ["knowledge_search"],
    )
    assert card.kind in ("new", "switch")


def test_a_correction_said_without_i_replaces_the_slot() -> None:
    clock = [{"capability": "clock", "task": "current time in Dublin?", "turn": 1}]
    oops = resolve("oops, meant Dubai", clock, turn=2, standalone=nothing)
    assert (oops.kind, oops.task) == ("correction", "current time in Dubai?")
    said = resolve(
        "argh, should've said Team", sales_topic("Starter for 4 seats, how much?"), turn=2, standalone=nothing
    )
    assert (said.kind, said.task) == ("correction", "Team for 4 seats, how much?")
    account = [{"capability": "account", "task": "look up mei@lanternhq.com", "turn": 1}]
    it_is = resolve("oops, it's c-1007 actually", account, turn=2, standalone=lambda t: ["account"])
    assert (it_is.kind, it_is.task) == ("correction", "look up c-1007")
    # A sound before the correction words is part of them.
    oh = resolve(
        "oh sorry, 200 seats", sales_topic("what's the Team price for 20 seats"), turn=2, standalone=nothing
    )
    assert (oh.kind, oh.task) == ("correction", "what's the Team price for 200 seats")
    # Does not fire: "should be" or "actually" inside a question of its own.
    assert resolve(
        "what should be my plan for 40 people?", clock, turn=2, standalone=lambda t: ["sales"]
    ).kind != ("correction")
    assert resolve("is the API down actually?", clock, turn=2, standalone=lambda t: ["incidents"]).kind != (
        "correction"
    )


def test_a_plain_no_after_an_answer_runs_nothing_again() -> None:
    registry = Registry.from_file(Path(__file__).resolve().parent.parent / "registry.yaml")
    topic = billing_topic("would the latest charge for c-1006 qualify for a refund?")
    for text in ("nah, leave it", "not now, thanks", "no, that's fine", "hold off for now"):
        assert followups.declines(text), text
        follow = resolve(text, topic, turn=2, standalone=nothing, **support_reader(registry))
        assert (follow.kind, follow.capabilities, follow.task) == ("switch", [], None), text
    # Does not fire: a correction that starts with "no", a no to a pending action (the action's own
    # intent check refuses it), a no to an offer.
    assert not followups.declines("no, I meant C-1005") and not followups.declines("no, the other one")
    assert resolve("no, I meant C-1005", topic, turn=2, standalone=nothing).kind == "correction"
    pending = [{"capability": "refund", "task": "can I get CH-2003 refunded?", "turn": 1}]
    kept = resolve("nah, leave it", pending, turn=2, standalone=nothing, **support_reader(registry))
    assert kept.capabilities == ["refund"]
    offered = resolve(
        "nah, leave it", topic, turn=2, standalone=nothing, offer=["refund"], **support_reader(registry)
    )
    assert offered.kind != "switch"


def test_a_yes_after_a_request_that_was_not_answered_is_to_the_action_it_asked_about() -> None:
    registry = Registry.from_file(Path(__file__).resolve().parent.parent / "registry.yaml")
    question = "could customer 1007's last charge be refunded?"
    for yes in ("please do", "sounds good, go for it", "ok do it"):
        follow = resolve(yes, [], turn=2, standalone=nothing, unanswered=question, **support_reader(registry))
        assert (follow.kind, follow.capabilities) == ("confirmation", ["refund"]), yes
        assert follow.task == f"{yes} (follow-up to: {question})"
    # Does not fire: a yes to a request that asked about no action, a hedged or questioning reply,
    # and no unanswered request at all.
    other = resolve(
        "please do",
        [],
        turn=2,
        standalone=nothing,
        unanswered="whats the clock in lisbon",
        **support_reader(registry),
    )
    assert (other.kind, other.capabilities) == ("new", [])
    for hedged in ("yes if it's under $50", "what would that cost first?", "sure, but not yet"):
        follow = resolve(
            hedged, [], turn=2, standalone=nothing, unanswered=question, **support_reader(registry)
        )
        assert follow.kind != "confirmation", hedged
    assert resolve("please do", [], turn=2, standalone=nothing, **support_reader(registry)).kind == "new"


def test_a_yes_after_a_question_about_a_refund_never_refunds_on_the_yes_alone(make_graph: Any) -> None:
    graph = make_graph(Registry.from_file(Path(__file__).resolve().parent.parent / "registry.yaml"))
    first = turn(graph, "could the last charge of customer 1007 come back as a refund?", thread="unanswered")
    second = turn(graph, "please do", thread="unanswered")
    # A question about a refund: nothing refunded. (Until session 15 the scorer read nothing here and
    # the turn ended in clarify; with balanced guides it reads billing, which answers the question.
    # Either way the yes that follows must not refund on its own: tests/test_context.py's
    # `..._is_to_the_action_it_asked_about` holds the unanswered case itself.)
    assert "refund" not in [s["capability"] for s in first["planning_plan"]]
    follow = second["context_followup"]
    assert (follow["kind"], follow["capabilities"]) == ("confirmation", ["refund"])
    assert "refund" in [s["capability"] for s in second["planning_plan"]]
    # Routed to the action it asked about, never done on the yes alone. Since session 17 billing's
    # answer offers the refund it found eligible ("I can refund $80.00 ... Reply “yes” to go ahead",
    # graph/context/offers.py), so the yes accepts that offer; $80 is above the approval threshold, and
    # the turn pauses on the approval policy's question, which names the charge and the customer.
    assert "Reply “yes” to go ahead" in answer(first) and "CH-2063" in answer(first)
    assert "Refunded $" not in answer(second)
    (paused,) = second["__interrupt__"]
    (step,) = paused.value["steps"]
    assert (step["capability"], step["kind"]) == ("refund", "approve")
    assert "CH-2063" in step["question"] and "(C-1007)" in step["question"]


def test_an_arithmetic_continuation_adds_more_and_goes_to_the_capability_that_reads_expressions() -> None:
    calc = [{"capability": "calculator", "task": "what is 7 * 11", "turn": 1}]
    for text, task in (
        ("plus a further 23", "(7 * 11) + 23"),
        ("now subtract another 30", "(7 * 11) - 30"),
        ("and add 12 more?", "(7 * 11) + 12"),
        ("now / 8", "(7 * 11) / 8"),  # the words before an operator symbol never take the symbol
        ("then * 3", "(7 * 11) * 3"),
    ):
        assert resolve(text, calc, turn=2, standalone=nothing).task == task, text
    # The clock alone answered "time in Cairo and 1000 - 347": the continuation is the calculator's.
    kinds = followups.slot_kinds(support_guides())
    clock = [{"capability": "clock", "task": "time in Cairo and 1000 - 347", "turn": 1}]
    follow = resolve(
        "and minus another 53?", clock, turn=2, standalone=nothing, kinds=kinds, routable=list(kinds)
    )
    assert (follow.capabilities, follow.task) == (["calculator"], "(1000 - 347) - 53")
    # Does not fire: a capability that reads expressions keeps its own continuation; "another" with
    # anything more is not a continuation.
    assert resolve(
        "and minus another 53?", calc, turn=2, standalone=nothing, kinds=kinds, routable=list(kinds)
    ).capabilities == ["calculator"]
    assert followups.continuation("minus another 53 and the time in Oslo") is None


def test_a_person_or_that_customer_binds_the_capability_that_reads_customers() -> None:
    kinds = followups.slot_kinds(support_guides())
    feeds = lambda a, b: (a, b) == ("account", "billing")  # noqa: E731
    topic = [
        {"capability": "sales", "task": "how much would enterprise cost for 20 seats", "turn": 1},
        {"capability": "account", "task": "who is ben@okafor.dev", "turn": 1},
    ]
    for text in (
        "is his trial over yet?",
        "how many seats does that workspace have?",
        "is she still active?",
    ):
        follow = resolve(text, topic, turn=2, standalone=nothing, kinds=kinds, feeds=feeds)
        assert follow.capabilities == ["account"], text
    # Does not fire: the words name the other topic need ("that plan", a seat count), or no clause
    # names a customer.
    plan = resolve(
        "and for 30 seats?", topic, turn=2, standalone=lambda t: ["sales"], kinds=kinds, feeds=feeds
    )
    assert plan.capabilities == ["sales"]
    no_id = [
        {"capability": "sales", "task": "Team for 20 seats", "turn": 1},
        {"capability": "incidents", "task": "is the API down", "turn": 1},
    ]
    assert resolve(
        "is his trial over yet?", no_id, turn=2, standalone=nothing, kinds=kinds, feeds=feeds
    ).capabilities != ["account"]


def test_a_lookup_next_to_an_unrelated_need_stays_an_entry_of_its_own() -> None:
    feeds = lambda a, b: (a, b) == ("account", "billing")  # noqa: E731
    topic = [
        {"capability": "clock", "task": "what time is it in London", "turn": 1},
        {"capability": "account", "task": "who is tom@whitakerlegal.co.uk", "turn": 1},
    ]
    follow = resolve("and C-1005?", topic, turn=2, standalone=nothing, feeds=feeds)
    assert (follow.capabilities, follow.task) == (["account"], "who is C-1005")
    # Still folded where it only provided another's inputs.
    billed = [
        {"capability": "account", "task": "I'm priya@nimbuslabs.dev", "turn": 1},
        {"capability": "billing", "task": "what have I been billed this month", "turn": 1},
    ]
    fed = resolve("and for C-1005?", billed, turn=2, standalone=nothing, feeds=feeds)
    assert (fed.capabilities, fed.task) == (["billing"], "what have I been billed this month, I'm C-1005")


def test_the_same_question_asked_in_full_is_its_own_task() -> None:
    search = [{"capability": "knowledge_search", "task": "where do I change the card on file?", "turn": 1}]
    follow = resolve(
        "same question for single sign-on, where is that configured?",
        search,
        turn=2,
        standalone=lambda t: ["knowledge_search"],
    )
    assert (follow.capabilities, follow.task) == (
        ["knowledge_search"],
        "single sign-on, where is that configured",
    )
    # Does not fire: "same question for X" alone carries the old clause.
    short = resolve("same question for exports", search, turn=2, standalone=nothing)
    assert short.task is not None and "card on file" in short.task


def test_a_follow_up_to_a_request_that_was_not_understood_is_read_together_with_it() -> None:
    asked: list[str] = []

    def reader(text: str) -> list[str]:
        asked.append(text)
        return ["refund"] if text.startswith("refund") else []

    known = followups.vocabulary(support_guides())
    question = "whats the clock saying in lisbon right now"
    for text in (
        "and the dashboard?",
        "is it still going on?",
        "which of those got charged twice?",
    ):
        follow = resolve(text, [], turn=2, standalone=reader, unanswered=question, known=known)
        assert (follow.kind, follow.capabilities, follow.task) == (
            "follow_up",
            [],
            f"{text} (follow-up to: {question})",
        ), text
    # A slot of a kind the request holds takes that slot's place (session 15; the classifier reads
    # the request with it, or the one capability whose guides read places: tests/test_followups_labelled.py).
    follow = resolve("vancouver?", [], turn=2, standalone=reader, unanswered=question, known=known)
    assert (follow.kind, follow.capabilities, follow.task) == (
        "follow_up",
        [],
        "whats the clock saying in vancouver right now",
    )
    # Does not fire: words that name a need alone ("refund it"), a request of its own, words no guide
    # knows, a yes or a no, a slot an earlier topic clause takes, and no unanswered request.
    assert resolve("refund it", [], turn=2, standalone=reader, unanswered=question, known=known).task is None
    assert resolve(
        "what plans do you sell for big teams", [], turn=2, standalone=reader, unanswered=question
    ).kind == ("new")
    assert (
        resolve("and the weather?", [], turn=2, standalone=reader, unanswered=question, known=known).kind
        == "new"
    )
    assert (
        resolve("nah, leave it", [], turn=2, standalone=reader, unanswered=question, known=known).task is None
    )
    paris = [{"capability": "clock", "task": "what time is it in Paris", "turn": 1}]
    older = resolve("and Berlin?", paris, turn=3, standalone=reader, unanswered="blah blah", known=known)
    assert (older.capabilities, older.task) == (["clock"], "what time is it in Berlin")
    assert resolve("vancouver?", [], turn=2, standalone=reader, known=known).kind == "new"


def test_a_percentage_replaces_the_percentage_and_a_stated_exponent_the_exponent() -> None:
    percent = [{"capability": "calculator", "task": "18% of 250", "turn": 1}]
    assert resolve("and 22%?", percent, turn=2, standalone=nothing).task == "22% of 250"
    # Does not fire: a bare number still replaces the last operand.
    assert resolve("and of 300?", percent, turn=2, standalone=nothing).task == "18% of 300"
    power = [{"capability": "calculator", "task": "what's 3 to the power of 5", "turn": 1}]
    assert resolve("and to the power of 6?", power, turn=2, standalone=nothing).task == "3 ** 6"
    # Does not fire: the result raised again, in words that point at it or that state no exponent.
    assert (
        resolve("then raise that to the power of 2", power, turn=2, standalone=nothing).task
        == "(3 ** 5) ** 2"
    )
    assert resolve("squared?", power, turn=2, standalone=nothing).task == "(3 ** 5) ** 2"


def test_a_person_asked_about_in_the_words_of_a_capability_the_topic_feeds_goes_there() -> None:
    registry = Registry.from_file(Path(__file__).resolve().parent.parent / "registry.yaml")
    guides = support_guides()
    kw: dict[str, Any] = {
        "standalone": nothing,
        "lexicon": followups.guide_lexicon(guides),
        "feeds": lambda a, b: feeds(registry, a, b),
        **support_reader(registry),
    }
    account = [{"capability": "account", "task": "look up C-1001", "turn": 1}]
    for text in ("what about their charges?", "and his invoices?", "what does she pay each month?"):
        follow = resolve(text, account, turn=2, **kw)
        assert (follow.capabilities, follow.task) == (
            ["billing"],
            f"{text} (follow-up to: look up C-1001)",
        ), text
    # Does not fire: the topic's own words ("their subscription"), no person, a slot of its own, no
    # customer in the topic, and never a capability with side effects ("their money back").
    assert resolve("is their subscription active?", account, turn=2, **kw).capabilities == ["account"]
    assert resolve("and their charges for C-1005?", account, turn=2, **kw).task != (
        "and their charges for C-1005? (follow-up to: look up C-1001)"
    )
    plans = [{"capability": "sales", "task": "what plans do you have", "turn": 1}]
    assert resolve("what about their charges?", plans, turn=2, **kw).capabilities != ["billing"]
    assert "refund" not in resolve("can they get their money back?", account, turn=2, **kw).capabilities


def test_a_name_the_guides_know_replaces_another_typed_in_lower_case() -> None:
    names = followups.guide_names(support_guides())
    assert {"team", "enterprise", "starter"} <= names["sales"]
    quote = sales_topic("enterprise for 60 seats")
    follow = resolve("same but team", quote, turn=2, standalone=nothing, known_names=names)
    assert (follow.capabilities, follow.task) == (["sales"], "team for 60 seats")
    # Does not fire: without the names the words are appended; a word that is no name of the topic's
    # capability ("tokyo" is the clock's) is not put in a sales clause.
    assert resolve("same but team", quote, turn=2, standalone=nothing).task == (
        "same but team (follow-up to: enterprise for 60 seats)"
    )
    assert "tokyo for 60" not in (
        resolve("same but tokyo", quote, turn=2, standalone=nothing, known_names=names).task or ""
    )


# --- round 6 (issue 22, session 14): heldout6's classes, in other words -----------------------------


def test_a_continuation_may_say_it_goes_onto_the_result() -> None:
    calc = [{"capability": "calculator", "task": "what's 64 / 4?", "turn": 1}]
    for text, task in (
        ("now add 9 to that", "(64 / 4) + 9"),
        ("subtract 44 from the result", "(64 / 4) - 44"),
        ("take away 25 from that total", "(64 / 4) - 25"),
        ("plus 3 onto it", "(64 / 4) + 3"),
    ):
        assert resolve(text, calc, turn=2, standalone=nothing).task == task, text
    # Does not fire: anything else after the operand is a request of its own.
    assert followups.continuation("add 9 to the invoice for C-1001") is None
    assert followups.continuation("add 9 to the") is None


def test_a_how_to_asked_for_another_person_gets_instructions() -> None:
    guides = support_guides()
    kw: dict[str, Any] = {"standalone": nothing, "how_to": "knowledge_search", "routable": list(guides)}
    account = [{"capability": "account", "task": "is aisha@kolaworks.ng active?", "turn": 1}]
    he = resolve("how would he change the card himself?", account, turn=2, **kw)
    # A person is not what the instructions are about: the customer's clause is not appended.
    assert (he.kind, he.capabilities, he.task) == ("switch", ["knowledge_search"], None)
    billing = [{"capability": "billing", "task": "list the invoices of customer 1005", "turn": 1}]
    where = resolve("where can they download those?", billing, turn=2, **kw)
    assert (where.capabilities, where.task) == (
        ["knowledge_search"],
        "where can they download those? (follow-up to: list the invoices of customer 1005)",
    )
    assert resolve("how does the owner reset it?", account, turn=2, **kw).capabilities == ["knowledge_search"]
    # Does not fire: "how many/how much" asks for data, and words another capability reads alone stay theirs.
    assert resolve("how many seats does she have?", account, turn=2, **kw).capabilities == ["account"]
    refund = resolve(
        "how can she get a refund?", account, turn=2, **{**kw, "standalone": lambda t: ["refund"]}
    )
    assert refund.capabilities != ["knowledge_search"]


def test_an_additive_cue_said_last_is_a_cue() -> None:
    clock = [{"capability": "clock", "task": "what's the time in Nairobi?", "turn": 1}]
    for text, place in (
        ("hm ok, lagos too", "lagos"),
        ("oh, Bangkok as well", "Bangkok"),
        ("right, helsinki too please", "helsinki"),
    ):
        follow = resolve(text, clock, turn=2, standalone=nothing)
        assert (follow.kind, follow.capabilities, follow.task) == (
            "follow_up",
            ["clock"],
            f"what's the time in {place}?",
        ), text
    # Does not fire: a request of its own that ends in "too" is not elliptical.
    own = resolve(
        "please refund the duplicate charge on my card too", clock, turn=2, standalone=lambda t: ["refund"]
    )
    assert own.capabilities != ["clock"]
    assert resolve("hm ok, invoices too", clock, turn=2, standalone=lambda t: ["billing"]).kind == "switch"
    assert resolve("is lagos too far?", clock, turn=2, standalone=nothing).kind == "new"


def test_a_correction_that_says_what_it_replaces_keeps_the_need() -> None:
    billing = [{"capability": "billing", "task": "recent charges for jane@acme.io please", "turn": 1}]
    # The classifier reads the words alone as an account lookup; the correction says which value it replaces.
    wrong = resolve(
        "oops, wrong customer, I wanted mei@lanternhq.com's",
        billing,
        turn=2,
        standalone=lambda t: ["account"],
    )
    assert (wrong.kind, wrong.capabilities, wrong.task) == (
        "correction",
        ["billing"],
        "recent charges for mei@lanternhq.com please",
    )
    clock = [{"capability": "clock", "task": "client in Oslo wants a call, what's the time there", "turn": 1}]
    city = resolve(
        "sorry not oslo, Bergen, that's where the client is",
        clock,
        turn=2,
        standalone=lambda t: ["knowledge_search"],
    )
    assert (city.capabilities, city.task) == (
        ["clock"],
        "client in Bergen wants a call, what's the time there",
    )
    # Does not fire: a correction that does not say what it replaces is left to the classifier's reading.
    other = resolve(
        "sorry, I need mei@lanternhq.com's plan", billing, turn=2, standalone=lambda t: ["account"]
    )
    assert other.capabilities != ["billing"]


def test_a_bare_number_in_a_correction_replaces_an_identifier_with_as_many_digits() -> None:
    account = [{"capability": "account", "task": "who's behind customer number 1003?", "turn": 1}]
    fix = resolve("sorry, I mean the other one, 1007", account, turn=2, standalone=lambda t: ["account"])
    assert (fix.kind, fix.task) == ("correction", "who's behind customer number 1007?")
    charge = [{"capability": "account", "task": "who is C-1003?", "turn": 1}]
    assert resolve("no wait, 1009", charge, turn=2, standalone=nothing).task == "who is C-1009?"
    # Does not fire: digits of another length.
    assert "1003" in (resolve("no wait, 45", account, turn=2, standalone=nothing).task or "1003")
    # Outside a correction, a bare number after a clause whose only values are identifiers is another
    # of them (round 10: "now 1009"); after a clause that also counts something it is the count.
    assert (
        resolve("and 1009?", account, turn=2, standalone=nothing).task == "who's behind customer number 1009?"
    )
    counted = [{"capability": "sales", "task": "price 1500 seats for customer number 1003", "turn": 1}]
    assert resolve("and 2000?", counted, turn=2, standalone=nothing).task == (
        "price 2000 seats for customer number 1003"
    )


def test_withdrawing_one_need_of_several_by_its_words_follows_up_the_other() -> None:
    kinds = followups.slot_kinds(support_guides())
    two = [
        {"capability": "incidents", "task": "is the REST API down", "turn": 1},
        {"capability": "sales", "task": "what would 30 seats on Team cost?", "turn": 1},
    ]
    for text in (
        "never mind the API, redo the seats with 35",
        "ok forget the outage on the api - 35 seats then",
    ):
        follow = resolve(text, two, turn=2, standalone=nothing, kinds=kinds)
        assert (follow.kind, follow.capabilities, follow.task) == (
            "follow_up",
            ["sales"],
            "what would 35 seats on Team cost?",
        ), text
    clock = [
        {"capability": "clock", "task": "time in Cairo", "turn": 1},
        {"capability": "incidents", "task": "the status of webhooks", "turn": 1},
    ]
    lima = resolve(
        "forget the webhooks, for the time do Lima instead", clock, turn=2, standalone=nothing, kinds=kinds
    )
    assert (lima.capabilities, lima.task) == (["clock"], "time in Lima")
    # Does not fire: one need only, words no clause holds, or every need named.
    one = [{"capability": "sales", "task": "what would 30 seats on Team cost?", "turn": 1}]
    assert (
        resolve("never mind the API, redo the seats with 35", one, turn=2, standalone=nothing).kind
        == "switch"
    )
    assert (
        followups._drop_part("forget the invoices, 35 seats", [followups.TopicEntry(**e) for e in two])
        is None
    )
    assert (
        followups._drop_part(
            "forget the api and seats, what time is it", [followups.TopicEntry(**e) for e in two]
        )
        is None
    )


def test_a_place_goes_to_the_one_capability_that_reads_places() -> None:
    guides = support_guides()
    kinds = followups.slot_kinds(guides)
    kw: dict[str, Any] = {
        "kinds": kinds,
        "routable": list(guides),
        "lexicon": followups.guide_lexicon(guides),
    }
    outage = [
        {
            "capability": "incidents",
            "task": "the web dashboard won't load, are you having an outage?",
            "turn": 1,
        }
    ]
    follow = resolve("also, could you tell me the hour in Winnipeg", outage, turn=2, standalone=nothing, **kw)
    assert (follow.kind, follow.capabilities) == ("switch", ["clock"])
    # Does not fire: the classifier reads the words as another need, or words no guide knows.
    other = resolve(
        "also, what's the weather in Winnipeg",
        outage,
        turn=2,
        standalone=nothing,
        known=followups.vocabulary(guides),
        **kw,
    )
    assert other.capabilities != ["clock"]
    sales = resolve("also, the Team price in Winnipeg?", outage, turn=2, standalone=lambda t: ["sales"], **kw)
    assert sales.capabilities != ["clock"]


def test_a_yes_that_narrows_the_item_goes_to_the_action_and_is_asked_again() -> None:
    registry = Registry.from_file(Path(__file__).resolve().parent.parent / "registry.yaml")
    billing = [
        {
            "capability": "billing",
            "task": "is jane@acme.io's double charge from november refundable?",
            "turn": 1,
        }
    ]
    for text in ("ok yes, only the duplicate though", "yep, only the november duplicate please"):
        follow = resolve(text, billing, turn=2, standalone=nothing, **support_reader(registry))
        assert (follow.kind, follow.capabilities, follow.ask_again) == ("confirmation", ["refund"], True), (
            text
        )
        assert follow.task == f"{text} (follow-up to: {billing[0]['task']})"
    # Does not fire: a condition, a negation, a question, another need, or a last request that asked
    # about no action.
    for text in ("yes if it's under $50", "yes, but not before I talk to him", "sure, which one is it?"):
        assert not resolve(text, billing, turn=2, standalone=nothing, **support_reader(registry)).ask_again, (
            text
        )
    other = resolve(
        "sure, and the time in Oslo",
        billing,
        turn=2,
        standalone=lambda t: ["clock"],
        **support_reader(registry),
    )
    assert not other.ask_again
    plan = [{"capability": "account", "task": "which plan is jane@acme.io on?", "turn": 1}]
    assert not resolve(
        "yes, only the plan", plan, turn=2, standalone=nothing, **support_reader(registry)
    ).ask_again


def test_a_yes_that_narrows_the_item_never_refunds_on_its_words(make_graph: Any) -> None:
    graph = make_graph(Registry.from_file(Path(__file__).resolve().parent.parent / "registry.yaml"))
    turn(graph, "is jane@acme.io's double charge from november refundable?", thread="narrowed")
    second = turn(graph, "ok yes, only the duplicate though", thread="narrowed")
    follow = second["context_followup"]
    assert (follow["kind"], follow["capabilities"], follow["ask_again"]) == ("confirmation", ["refund"], True)
    # Routed to the action and asked about again: the turn pauses on a confirmation, nothing refunded.
    assert "Refunded $" not in answer(second)
    (paused,) = second["__interrupt__"]
    (step,) = paused.value["steps"]
    assert (step["capability"], step["kind"]) == ("refund", "confirm")
    assert "nothing is done unless you approve" in step["question"]


def test_a_count_said_as_more_adds_to_the_clauses_count() -> None:
    quote = sales_topic("how much is Team for 12 seats monthly?")
    for text in ("and if we hire 4 more people?", "right, and another 4 seats", "ok, with 4 extra seats"):
        follow = resolve(text, quote, turn=2, standalone=nothing)
        assert (follow.capabilities, follow.task) == (["sales"], "how much is Team for 16 seats monthly?"), (
            text
        )
    # Does not fire: a plain count replaces the count; an operand of an expression is not a count.
    assert (
        resolve("and 4 seats?", quote, turn=2, standalone=nothing).task
        == "how much is Team for 4 seats monthly?"
    )
    calc = [{"capability": "calculator", "task": "what's 12*7", "turn": 1}]
    assert "19" not in (resolve("and 7 more?", calc, turn=2, standalone=nothing).task or "")
