"""Support routing, round 12 (issue 19; session 19): requests nobody tuned on.

- another vendor's product named before what is bought of it ("Microsoft 365 renewal", "Amazon
  Business order", "Adobe Creative Cloud - £56.98/mo") is out of scope, not our billing or refund;
  an id of ours in the same words keeps them ours ("Our co-op's account is c1004");
- so is a charge someone else made ("The servo charged my card twice ..., how do I get that sorted?");
- a clause that refers back to a foreign one ("why has this gone up?") speaks of the same thing;
- a bare action verb coordinated with "+", "&" or "then" asks for the action ("confirm + refund");
- a record id's prefix abbreviates the capability it belongs to when no guide names ids of its kind
  ("INC-301 eta?");
- arithmetic on an amount that names nobody's records is the calculator's ("Total due: $X x 3 = ?");
- "the refund window" asks about a rule, and "refundable?" about a charge, not for a refund;
- a clause a "+" or "Also" joins on, and the story before an "Also", name a need of their own at a
  lower margin;
- what a plan includes or supports is the documents' question ("does Team include the audit log");
- whether a charge "could still be returned" asks about the charge, for a customer named in full;
- arithmetic in one clause of several is the calculator's beside the other picks;
- the customer lookup that only a statement chose, naming nobody, is no need ("... Our new finance
  lead is based there.").

New sentences, not copies of the development rows; the real registry and its scorer (no mocks).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from graph.classifier.build import build_scorer, prepare_before_turn
from graph.classifier.recognised import with_recognised
from graph.classifier.scorer import FewShotScorer
from graph.config.registry import Registry
from graph.config.settings import Settings
from nodes.classifier import (
    asks_what_is_included,
    classify,
    coordinated_actions,
    foreign_clauses,
    id_owners,
    joined_as_need,
    lookup_of_nobody,
    named_kind,
    other_charger,
    other_product,
)
from tests.support_desk.test_support import shipped_registry


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_file(Path(__file__).resolve().parents[2] / "registry.yaml")


@pytest.fixture(scope="module")
def desk(
    tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path
) -> tuple[Registry, FewShotScorer]:
    base = tmp_path_factory.mktemp("round12-desk")
    registry = shipped_registry(base / "support.sqlite")
    settings = Settings.offline(base, cache_dir=shared_model_cache)
    prepare_before_turn(registry, settings)
    return registry, build_scorer(registry, settings)


def route(desk: tuple[Registry, FewShotScorer], text: str) -> set[str]:
    registry, scorer = desk
    out = asyncio.run(classify(text, registry, scorer, None, mode="embedding"))  # type: ignore[arg-type]
    return {c["name"] for c in out if c["selected"] and c["source"] != "always"}


# --- the text rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("piece", "name"),
    [
        ("Our Notion Plus renewal went through twice", ["Notion", "Plus"]),
        ("Asana Business subscription - why is it dearer", ["Asana", "Business"]),
        ("Figma Professional - £12/mo since March", ["Figma", "Professional"]),
        ("my office365 subscription renewed", ["office365"]),
        ("the Shopify order #55-1200 was taken twice", ["Shopify"]),
        # ours: our plans, an ordinary word first in a sentence, a customer's organisation
        ("the Team plan renewal went through twice", []),
        ("our Enterprise renewal is next week", []),
        ("Renewal charge looks wrong", []),
        ("Nimbus Labs subscription renewed", []),
        ("Ledger plan for us, please", []),  # one capitalised word first in a sentence: any word
    ],
)
def test_another_vendors_product(registry: Registry, piece: str, name: list[str]) -> None:
    assert other_product(piece, registry) == name


@pytest.mark.parametrize(
    ("piece", "who"),
    [
        ("The launderette charged my card twice for one wash", ["launderette"]),
        ("Zalando have billed us twice for one return", ["Zalando"]),
        ("my gas supplier charged a double fee", ["gas", "supplier"]),
        # ours, or nobody named
        ("the renewal charged us twice", []),
        ("you charged me twice", []),
        ("we got charged twice", []),
        ("my cousin got charged twice for one renewal", []),  # someone was charged, by nobody named
        ("my aunt jane cooper was billed twice", []),
        ("the card was billed twice", []),
    ],
)
def test_someone_else_charged(registry: Registry, piece: str, who: list[str]) -> None:
    assert other_charger(piece, registry) == who


def test_a_name_the_guides_only_capitalise_is_not_ours(registry: Registry) -> None:
    # "Microsoft" is in the guides ("SAML with Microsoft Entra ID"), but never as something we sell
    assert other_product("My Microsoft 365 renewal came out twice", registry) == ["Microsoft"]


def test_an_id_of_ours_keeps_an_owned_name_ours(registry: Registry) -> None:
    assert foreign_clauses("Our Hulu subscription renewed twice this month", registry)
    assert not foreign_clauses("The parish trust's account is c1006. Which plan is it on?", registry)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("double charge on INV-5120? verify + refund", {"refund"}),
        ("CH-7781 came out twice - look & refund it", {"refund"}),
        ("check the second charge on INV-5120 and then refund the extra one", {"refund"}),
        ("is CH-7781 refundable?", set()),
        ("double charge on INV-5120? check it but don't refund", set()),
        ("refund + ", set()),
    ],
)
def test_a_bare_action_verb_coordinated_asks(registry: Registry, text: str, want: set[str]) -> None:
    assert coordinated_actions(text, registry, [("billing", 0.9), ("refund", 0.03)]) == want


def test_an_id_prefix_abbreviates_its_capability(registry: Registry) -> None:
    assert named_kind("INC", registry) == "incidents"
    assert named_kind("S", registry) is None  # too short to tell
    assert named_kind("XQZ", registry) is None
    assert id_owners("INC-410 news?", registry, np.zeros(1)) == {"incidents"}


def test_a_clause_joined_on_is_a_need_of_its_own() -> None:
    task = "The kiosks lost sync again. Also, when do we renew?"
    rows = [("The kiosks lost sync again", np.zeros(1)), ("when do we renew", np.zeros(1))]
    assert joined_as_need(task, "when do we renew", rows)  # marked by "Also"
    assert joined_as_need(task, "The kiosks lost sync again", rows)  # the story before it
    assert joined_as_need("c1004 seats + is sso fine", "is sso fine", [])
    earlier = "Printer hire is 40 per day for 3 days - what's 40 * 3? Also, is the API down?"
    rows2 = [("Printer hire is 40 per day for 3 days", np.zeros(1)), ("what's 40 * 3", np.zeros(1))]
    rows2.append(("is the API down", np.zeros(1)))
    assert joined_as_need(earlier, "what's 40 * 3", rows2)
    assert not joined_as_need(earlier, "Printer hire is 40 per day for 3 days", rows2)  # not right before
    plain = "The kiosks lost sync again, when do we renew?"
    assert not joined_as_need(plain, "The kiosks lost sync again", [("when do we renew", np.zeros(1))])


@pytest.mark.parametrize(
    ("piece", "want"),
    [
        ("does Team include the audit log", True),
        ("and does the Starter plan come with SSO", True),
        ("is phone support included in Enterprise", True),
        ("do we have SSO", False),
        ("does it include tax", False),
        ("how much is Team", False),
    ],
)
def test_asks_what_is_included(piece: str, want: bool) -> None:
    assert asks_what_is_included(piece) is want


def test_a_statement_after_the_question_asks_nothing_of_the_help_centre_or_lookup(registry: Registry) -> None:
    labels = ["sales", "knowledge_search", "account", "clock"]
    task = "Can we have a quote for 25 Team seats? The board wants it in writing by Monday."
    rows = [
        ("Can we have a quote for 25 Team seats", np.array([0.9, 0.01, 0.01, 0.0])),
        ("The board wants it in writing by Monday.", np.array([0.01, 0.5, 0.01, 0.0])),
    ]
    chosen = {"sales", "knowledge_search"}
    assert lookup_of_nobody(task, rows, labels, labels, registry, chosen) == {"knowledge_search"}
    before = "The board wants it in writing by Monday. Can we have a quote for 25 Team seats?"
    assert lookup_of_nobody(before, rows[::-1], labels, labels, registry, chosen) == set()
    task = "What time is it in Lagos? Our new finance lead is based there."
    rows = [
        ("What time is it in Lagos", np.array([0.0, 0.0, 0.01, 0.99])),
        ("Our new finance lead is based there.", np.array([0.0, 0.0, 0.6, 0.01])),
    ]
    assert lookup_of_nobody(task, rows, labels, labels, registry, {"clock", "account"}) == {"account"}
    # a story after the question names no need, whatever it resembles (not the request's best)
    story = "What time is it in Oslo? The board call moved again and nobody kept up."
    rows3 = [
        ("What time is it in Oslo", np.array([0.0, 0.0, 0.0, 0.99])),
        ("The board call moved again and nobody kept up.", np.array([0.6, 0.0, 0.0, 0.01])),
    ]
    assert lookup_of_nobody(story, rows3, labels, labels, registry, {"clock", "sales"}, "clock") == {"sales"}
    assert lookup_of_nobody(story, rows3, labels, labels, registry, {"clock", "sales"}, "sales") == set()
    named = "What time is it in Lagos? Our new finance lead, jane@acme.io, is based there."
    assert lookup_of_nobody(named, rows, labels, labels, registry, {"clock", "account"}) == set()


def test_arithmetic_in_one_clause_is_recognised_beside_the_picks(registry: Registry) -> None:
    text = "Calc: 365*7. Time: Oslo."
    # The whole request hid it until session 20 read "365*7." without its full stop; either way both.
    assert registry["calculator"].instance.recognises(text)
    names = [c.name for c in registry.routable]
    assert with_recognised(registry, text, names, {"clock"}, 4) == {"clock", "calculator"}
    assert with_recognised(registry, "Time: Oslo. Is the API down?", names, {"clock"}, 4) == {"clock"}


# --- the real scorer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        # another vendor's product, whatever it resembles
        ("My Notion Plus renewal was taken twice from our card; can you get that money back for me?", set()),
        ("Shopify Plus order #55-1200 billed twice, please refund", set()),
        ("Figma Professional - £14.40/mo - why is it dearer now? it was £12 in spring", set()),
        # someone else took the money: how to get it back is not ours to answer
        ("The launderette charged my card twice for one wash, how do I get that sorted?", set()),
        # ours, the same words
        ("Our Team plan renewal was taken twice from the card, please refund the second one", {"refund"}),
        (
            "The parish trust's account is c1006. There's a charge on the card from last week nobody here knows.",
            {"billing"},
        ),
        # a coordinated action verb
        ("double charge on INV-3002? verify + refund", {"billing", "refund"}),
        # an id's prefix
        ("INC-302 eta?", {"incidents"}),
        # arithmetic on an amount of nobody's
        ("Balance owing: $1,240.50 / 4 instalments = ?", {"calculator"}),
        # a rule about the refund, a question whether a charge can be refunded
        ("is last month's renewal for omar@brightpath.co still inside the refund window?", {"billing"}),
        ("c-1003 last renewal: refundable? we cut seats", {"billing"}),
        ("c1002 wants the duplicate refunded asap", {"refund"}),  # asked for, not asked about
        # a clause a "+" joins on is a need of its own, however weakly it scores
        ("c-1005 plan + is the api alright", {"account", "incidents"}),
        # what a plan includes is the documents' answer, however few its words
        (
            "What would Enterprise cost for 40 people, and does Enterprise come with phone support?",
            {"knowledge_search", "sales"},
        ),
        ("which plan is c1004 on, and does the Starter plan support SSO?", {"account", "knowledge_search"}),
        # whether a charge could still be given back asks about the charge
        (
            "Aisha Bello from Kola Works asks whether the duplicate charge could still be returned to the company card.",
            {"billing"},
        ),
        (
            "Omar Haddad would like to know if the second renewal payment could be paid back to us.",
            {"billing"},
        ),
        # a statement that names nobody to look up
        ("What time is it in Lagos? Our new finance lead is based there.", {"clock"}),
    ],
)
def test_routes(desk: tuple[Registry, FewShotScorer], text: str, want: set[str]) -> None:
    assert route(desk, text) == want, text
