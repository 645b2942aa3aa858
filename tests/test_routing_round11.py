"""Routing, round 11 (issues 19, 22; session 18): customers named by full name, count questions.

- a request that names one of our customers by full name, in any case, is addressed to us like one
  that gives an e-mail or a customer id (`Capability.known_names`, `classifier.asked_of_ours`); a
  name we do not know is still someone else's;
- getting "it" back after a charge asks about a refund;
- a count question no threshold took, about someone's things, goes to the counting capability;
- a question about "him"/"her" after a request the customer lookup fed goes to the lookup.

New sentences, not copies of the development rows; the real registry, scorer and graph (no mocks).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from graph.builder import build_graph
from graph.classifier.build import build_scorer, prepare_before_turn
from graph.classifier.recognised import known_names, without_names
from graph.config.settings import Settings
from graph.context.turns import routed_capabilities
from nodes.classifier import _GET_IT_BACK, classify
from tests.conftest import answer
from tests.support_desk.test_support import Desk, shipped_registry


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, shared_model_cache: Path) -> Desk:
    base = tmp_path_factory.mktemp("round11-desk")
    registry = shipped_registry(base / "support.sqlite")
    settings = Settings.offline(base, cache_dir=shared_model_cache)
    prepare_before_turn(registry, settings)
    graph = build_graph(registry=registry, settings=settings, checkpointer="memory")
    return Desk(graph, registry, settings, base / "support.sqlite")


def route(desk: Desk, text: str) -> set[str]:
    scorer = build_scorer(desk.registry, desk.settings)
    out = asyncio.run(classify(text, desk.registry, scorer, None, mode="embedding"))  # type: ignore[arg-type]
    return {c["name"] for c in out if c["selected"] and c["source"] != "always"}


def test_our_customers_are_known_by_full_name_in_any_case(desk: Desk) -> None:
    assert known_names(desk.registry, "my aunt MEI CHEN was billed twice") == ["Mei Chen"]
    assert known_names(desk.registry, "Diego Alvarez asks about his renewal") == ["Diego Alvarez"]
    assert known_names(desk.registry, "Mei wants to know") == []  # a first name alone names nobody
    assert known_names(desk.registry, "John Smith wants a refund") == []
    assert without_names("Tom Whitaker asks", ["Tom Whitaker"]).strip() == "asks"


@pytest.mark.parametrize(
    "text",
    [
        "Diego Alvarez asks whether his renewal from last week can still be refunded",
        "could lukas becker's december renewal be refunded? he cut the team down",
    ],
)
def test_a_refund_question_naming_our_customer_checks_the_charge(desk: Desk, text: str) -> None:
    assert route(desk, text) == {"billing"}


@pytest.mark.parametrize(
    "text",
    [
        "John Smith wants to know if his renewal could be refunded",
        "could Maria Gonzalez's renewal be refunded?",
    ],
)
def test_a_name_we_do_not_know_is_not_ours(desk: Desk, text: str) -> None:
    assert "refund" not in route(desk, text) and "billing" not in route(desk, text)


def test_getting_it_back_after_our_customers_charge_is_about_a_refund(desk: Desk) -> None:
    # the scorer alone selects nothing; a question, so a refund would still be asked about first
    assert route(desk, "my sister mei chen was charged for the renewal on the 1st, can she get it back?") & {
        "billing",
        "refund",
    }


def test_getting_it_back_after_a_charge() -> None:
    assert _GET_IT_BACK.search("we paid for the renewal yesterday, could we have that back?")
    assert _GET_IT_BACK.search("she got charged twice, can she get it all back")
    assert not _GET_IT_BACK.search("can I get it back up and running?")  # no charge named


@pytest.mark.parametrize(
    "text",
    [
        "how many people is she paying for",
        "so how many users does he have",
    ],
)
def test_someones_count_goes_to_the_lookup(desk: Desk, text: str) -> None:
    assert route(desk, text) == {"account"}


def test_a_count_of_nobodys_is_not_a_lookup(desk: Desk) -> None:
    assert "account" not in route(desk, "how many days until new year")


def test_the_customer_named_by_name_carries_to_a_question_about_him(desk: Desk) -> None:
    first = desk.ask(
        "tom whitaker was charged on the 1st, could that be refunded? he is closing the office", "r11-a"
    )
    assert routed_capabilities(first, desk.registry) == ["billing"]
    assert "Tom Whitaker" in answer(first)
    second = desk.ask("wait, how many people is he paying for", "r11-a")
    assert routed_capabilities(second, desk.registry) == ["account"]
    assert "Tom Whitaker" in answer(second) and "seat" in answer(second)
    assert "refunded" not in answer(second).lower()  # no side effect on a question


@pytest.mark.parametrize(
    "text",
    [
        "your api keeps timing out for our rota app, anything going on?",
        "your servers are rejecting calls from our booking app - is something down?",
    ],
)
def test_our_service_failing_the_users_own_app_is_ours(desk: Desk, text: str) -> None:
    assert route(desk, text) == {"incidents"}
