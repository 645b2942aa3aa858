"""Follow-ups with the labelled examples on (session 15): the follow-up rules read the structure of a
turn (cue words, what the last turn asked, which slot the words fill) and the capabilities' authored
guides, with the scorer's selection as evidence, so the labelled requests (831 in session 15, 1,151 since session 19) joining the guides do not
move them. Pure: `resolve` with stand-in scorer readings, the shipped registry's guides. New
wordings, not copies of the development rows."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from graph.config.registry import Registry
from graph.context import followups
from graph.context.followups import resolve
from nodes.task_extraction import asks_about_action, asks_action, feeds, guide_texts, has_side_effects

REGISTRY = Path(__file__).resolve().parent.parent / "registry.yaml"


@cache
def registry() -> Registry:
    return Registry.from_file(REGISTRY)


def nothing(_: str) -> list[str]:
    return []


def reads(*names: str):  # the scorer's selection for any words, as a stand-in
    return lambda _text, *_: list(names)


def context(**overrides: object) -> dict[str, object]:
    """What `read_follow_up` passes to `resolve`, from the shipped registry (labelled examples on)."""
    reg = registry()
    texts = guide_texts(reg)
    out: dict[str, object] = {
        "standalone": nothing,
        "acts": lambda t, name: asks_action(reg, t, name),
        "side_effects": lambda name: has_side_effects(reg, name),
        "plausible": lambda _t, _names: [],
        "lexicon": followups.guide_lexicon(texts),
        "known": followups.vocabulary(guide_texts(reg, labelled=True)),
        "routable": list(texts),
        "feeds": lambda a, b: feeds(reg, a, b),
        "asks_about": lambda t, name: asks_about_action(reg, t, name),
        "how_to": followups.how_to_owner(texts),
        "kinds": followups.slot_kinds(texts),
        "known_names": followups.guide_names(texts),
    }
    out.update(overrides)
    return out


def topic(*entries: tuple[str, str], turn: int = 1) -> list[dict[str, object]]:
    return [{"capability": c, "task": t, "turn": turn} for c, t in entries]


# --- the follow-up tables come from the authored guide examples -------------------------------------


def test_the_labelled_requests_join_the_scorer_not_the_follow_up_tables() -> None:
    reg = registry().with_overlay(  # the shipped file, turned on (the shipped registry has it off)
        {"classifier": {"labelled_examples": ["capabilities.support_desk:data/labelled_examples.jsonl"]}}
    )
    assert reg.spec.classifier.labelled_examples
    authored, everything = guide_texts(reg), guide_texts(reg, labelled=True)
    assert all(len(everything[n]) >= len(authored[n]) for n in authored)
    assert len(everything["billing"]) > 2 * len(authored["billing"])
    kinds = followups.slot_kinds(authored)
    # An outage report mentions a city or a customer in passing: the status capability reads neither.
    assert not kinds["incidents"] & {"place", "email", "ident"}
    assert "place" in kinds["clock"] and "place" not in kinds["account"]
    lexicon = followups.guide_lexicon(authored)
    # A hundred rows per capability share their words; the authored ones keep each capability's own.
    assert "charg" in lexicon["billing"] and "customer" in lexicon["account"] and "time" in lexicon["clock"]
    assert followups.vocabulary(everything) > followups.vocabulary(authored)


def test_a_courtesy_word_is_no_capabilitys_own_word() -> None:
    # "next" is a word of a help-center guide; after a turn that looked a customer up and searched the
    # help center, "<address> next" is the next customer to look up.
    last = topic(
        ("account", "who is behind omar@brightpath.co"), ("knowledge_search", "which plan do they pay for")
    )
    follow = resolve("ben@okafor.dev next", last, turn=2, **context(standalone=reads("knowledge_search")))
    assert (follow.kind, follow.capabilities, follow.task) == (
        "follow_up",
        ["account"],
        "who is behind ben@okafor.dev",
    )


# --- the user says it is another matter ---------------------------------------------------------------


def test_a_switch_cue_leaves_the_topic_and_drops_the_cue() -> None:
    charges = topic(("billing", "list the charges of C-1004"))
    follow = resolve("separate question: how long do those invite links last?", charges, turn=2, **context())
    assert (follow.kind, follow.capabilities, follow.task) == (
        "switch",
        [],
        "how long do those invite links last?",
    )
    follow = resolve("totally unrelated, but is the dashboard up?", charges, turn=2, **context())
    assert (follow.kind, follow.task) == ("switch", "is the dashboard up?")
    # Without a topic there is nothing to leave: the message is read as it is.
    assert resolve("separately, what is 12*12?", [], turn=1, **context()).kind == "new"


def test_an_aside_is_no_anaphora() -> None:
    # "while you are at it" says nothing about the arithmetic: the city is read by the one capability
    # whose guides hold places.
    sums = topic(("calculator", "what is 45*3"))
    follow = resolve("and Helsinki, while you are at it", sums, turn=2, **context())
    assert (follow.kind, follow.capabilities) == ("switch", ["clock"])
    follow = resolve("Perth as well if you can", sums, turn=2, **context())
    assert (follow.kind, follow.capabilities) == ("switch", ["clock"])


def test_a_place_no_topic_capability_reads_leaves_the_topic_whatever_its_it() -> None:
    # The "it" of "how late is it" points at nothing the topic said.
    charges = topic(("billing", "what did jane@acme.io pay in november"))
    follow = resolve("and how late is it over in Perth?", charges, turn=2, **context())
    assert (follow.kind, follow.capabilities) == ("switch", ["clock"])


# --- a no, with its reason ----------------------------------------------------------------------------


def test_a_no_with_a_reason_reads_only_the_no() -> None:
    asked = topic(("billing", "is the duplicate charge on C-1006 refundable?"))
    follow = resolve("not yet, we're still checking with finance", asked, turn=2, **context())
    assert (follow.kind, follow.capabilities, follow.task) == ("switch", [], "not yet")
    # After a turn that acted, a withdrawal still reads so; a plain no goes to the action (its
    # intent check refuses it), as before.
    acted = topic(("refund", "refund the duplicate charge of C-1006"))
    follow = resolve("forget it, he already sorted it out with his bank", acted, turn=2, **context())
    assert (follow.kind, follow.task) == ("switch", "forget it")
    assert resolve("nope, hold off for now", acted, turn=2, **context()).task != "nope"


def test_a_no_then_a_request_is_not_a_reason() -> None:
    asked = topic(("billing", "is the duplicate charge on C-1006 refundable?"))
    # A question, a correction, a slot or words the classifier reads: a request of its own.
    for text in (
        "never mind, what is the time in Perth?",
        "no, I meant the renewal",
        "never mind, C-1007 instead",
        "nah, check the API status",
    ):
        follow = resolve(text, asked, turn=2, **context(standalone=reads("incidents")))
        assert follow.task not in ("never mind", "no", "nah"), (text, follow)


# --- a yes after an acknowledgement -------------------------------------------------------------------


def test_an_acknowledged_do_that_is_a_yes_to_the_action_asked_about() -> None:
    asked = topic(("billing", "mei@lanternhq.com says she paid twice in october, could that be refunded?"))
    follow = resolve("perfect, do that for her", asked, turn=2, **context())
    assert (follow.kind, follow.capabilities) == ("confirmation", ["refund"])
    assert followups.is_yes("great, do so please") and not followups.is_yes("great, and Perth?")


# --- a cue or a pronoun binds the topic unless the words are another capability's -------------------


def test_a_cue_on_a_short_turn_stays_with_a_topic_its_words_plausibly_read_as() -> None:
    outage = topic(("incidents", "are exports failing on your side right now?"))
    words = "and the webhook piece?"
    # The scorer ranks the help center first, the status capability is a plausible reading too.
    plausible = context(standalone=reads("knowledge_search"), plausible=lambda _t, names: list(names))
    assert resolve(words, outage, turn=2, **plausible).capabilities == ["incidents"]
    # When the topic is no plausible reading, the scorer's reading switches.
    assert resolve(words, outage, turn=2, **context(standalone=reads("knowledge_search"))).kind == "switch"


def test_a_short_question_about_it_binds_the_topic_unless_its_words_are_anothers() -> None:
    outage = topic(("incidents", "is the REST API degraded?"))
    follow = resolve("how long has it lasted?", outage, turn=2, **context(standalone=reads("account")))
    assert (follow.kind, follow.capabilities) == ("follow_up", ["incidents"])
    # "renew" is the account's own word: the question is the account's, not the outage's.
    follow = resolve("when does it renew?", outage, turn=2, **context(standalone=reads("account")))
    assert follow.kind == "switch"


# --- a new slot for a request that was not understood -------------------------------------------------


def test_a_place_for_a_request_that_was_not_understood_goes_to_the_one_capability_that_reads_places() -> None:
    # The scorer read nothing in the first request ("whats the hour in ..." ended in a question back);
    # the new city takes the old one's place, and only the clock's guides hold places.
    follow = resolve(
        "and Bogota?", [], turn=2, unanswered="whats the hour looking like in lima rn", **context()
    )
    assert (follow.kind, follow.capabilities, follow.task) == (
        "follow_up",
        ["clock"],
        "whats the hour looking like in Bogota rn",
    )
    # An identifier is read by several capabilities: the request with the new one in place is read
    # by the classifier, whatever it makes of the bare identifier ("who it is").
    follow = resolve(
        "sorry, C-1006",
        [],
        turn=2,
        unanswered="what did C-1002 get billed",
        **context(standalone=reads("account")),
    )
    assert (follow.capabilities, follow.task) == ([], "what did C-1006 get billed")
