"""Synthetic capabilities and registries for benchmarks: many capabilities, no I/O, deterministic.

One real `Capability` subclass, `SyntheticCapability`, serves every synthetic entry: the registry
gives each entry its own name, description, guide and `options.topic`, and the class returns a
deterministic dict computed from its inputs (a digest of the topic, item and query). So a registry
of 5, 10 or 20 capabilities costs nothing to run, and the same inputs always give the same output.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graph.capability import Capability, CapabilityInputs, RunContext
from graph.config.registry import Registry


class SyntheticInputs(CapabilityInputs):
    item: str | None = None
    """What the request is about (a city, a word, a ticker...); the query when not given."""


class SyntheticCapability(Capability):
    """A capability that answers with a deterministic digest of its topic and inputs."""

    description = "A synthetic capability for benchmarks."
    Inputs = SyntheticInputs

    @property
    def topic(self) -> str:
        return str(self.options.get("topic", "synthetic"))

    async def execute(self, inputs: SyntheticInputs, ctx: RunContext) -> dict[str, Any]:
        item = inputs.item or inputs.query
        digest = hashlib.sha1(f"{self.topic}|{item}|{inputs.query}".encode()).hexdigest()[:12]
        key = f"{self.topic}_result"
        return {key: digest, "item": item, "summary": f"{self.topic} for {item!r}: {digest}"}


@dataclass(frozen=True)
class Topic:
    name: str
    description: str
    examples: tuple[str, str, str]
    """Three positive guide examples."""
    negative: str
    """A near miss: a request that does NOT need the capability."""


TOPICS: tuple[Topic, ...] = (
    Topic(
        "weather",
        "Weather forecasts and current conditions for a place.",
        (
            "what's the weather in Berlin",
            "will it rain tomorrow in Seattle",
            "forecast for Rome this weekend",
        ),
        "what time is it in Berlin",
    ),
    Topic(
        "currency",
        "Convert amounts between currencies at today's rate.",
        ("convert 100 dollars to euros", "how many yen is 50 pounds", "exchange rate USD to CHF"),
        "what is 100 times 3",
    ),
    Topic(
        "translator",
        "Translate text between languages.",
        ("translate 'good morning' to Spanish", "how do you say thank you in German", "French for cheese"),
        "what does 'serendipity' mean",
    ),
    Topic(
        "stocks",
        "Stock quotes and share prices.",
        ("what's the Apple stock price", "quote for MSFT shares", "how is Tesla stock doing today"),
        "convert 100 dollars to euros",
    ),
    Topic(
        "news",
        "Latest news headlines on a topic.",
        ("latest news about climate", "headlines today", "what's in the news about elections"),
        "what's the weather today",
    ),
    Topic(
        "calendar",
        "Read and create events in the user's calendar.",
        ("what's on my calendar tomorrow", "schedule a meeting with Ana at 3pm", "am I free on Friday"),
        "set a reminder to call mom",
    ),
    Topic(
        "email",
        "Send and search the user's email.",
        ("send an email to Bob about the report", "did I get mail from Alice", "draft an email to the team"),
        "schedule a meeting with Bob",
    ),
    Topic(
        "reminders",
        "Set reminders and to-dos.",
        ("remind me to buy milk at 6", "set a reminder to call mom", "add 'pay rent' to my to-do list"),
        "what's on my calendar",
    ),
    Topic(
        "dictionary",
        "Definitions and synonyms of words.",
        ("what does 'serendipity' mean", "define ephemeral", "synonyms for happy"),
        "translate 'happy' to Italian",
    ),
    Topic(
        "encyclopedia",
        "Facts about people, places and things.",
        ("who was Ada Lovelace", "tell me about the Eiffel Tower", "how tall is Mount Everest"),
        "latest news about the Eiffel Tower",
    ),
    Topic(
        "flights",
        "Flight status and departures.",
        ("is flight LH 400 on time", "status of flight BA 117", "when does my flight to Lisbon leave"),
        "how far is Lisbon from Madrid",
    ),
    Topic(
        "restaurants",
        "Find restaurants and book tables.",
        ("find a sushi restaurant nearby", "book a table for two tonight", "best pizza place in Naples"),
        "recipe for pizza dough",
    ),
    Topic(
        "recipes",
        "Recipes and cooking instructions.",
        ("recipe for pizza dough", "how do I make pancakes", "vegetarian lasagna recipe"),
        "find a pizza restaurant",
    ),
    Topic(
        "sports",
        "Sports scores and fixtures.",
        ("who won the football match last night", "Lakers score", "when is the next Formula 1 race"),
        "latest news about elections",
    ),
    Topic(
        "packages",
        "Track parcels and deliveries.",
        ("where is my package", "track parcel 1Z999AA1", "when will my delivery arrive"),
        "send an email about the delivery",
    ),
    Topic(
        "spelling",
        "Check spelling and grammar of a text.",
        ("check the spelling of this sentence", "is 'recieve' spelled right", "fix the grammar in my text"),
        "what does 'receive' mean",
    ),
    Topic(
        "music",
        "Play music and control playback.",
        ("play some jazz", "next song please", "play the latest Taylor Swift album"),
        "latest news about Taylor Swift",
    ),
    Topic(
        "movies",
        "Movie showtimes and cinema listings.",
        ("what movies are playing tonight", "showtimes for Dune", "cinema listings near me"),
        "who directed Dune",
    ),
    Topic(
        "distance",
        "Distances and travel times between places.",
        (
            "how far is Lisbon from Madrid",
            "driving time from Boston to NYC",
            "distance between Paris and Lyon",
        ),
        "is flight LH 400 on time",
    ),
    Topic(
        "notes",
        "Save and search the user's notes.",
        ("save a note: buy new tires", "find my note about the garden", "show my notes from Monday"),
        "remind me to buy new tires",
    ),
)
"""Twenty synthetic topics; the first k make a registry of k capabilities."""


def capability_entry(topic: Topic) -> dict[str, Any]:
    return {
        "name": topic.name,
        "class": "benchmarks.synthetic:SyntheticCapability",
        "description": topic.description,
        "provides": [f"{topic.name}_result"],
        "options": {"topic": topic.name},
        "classifier_guide": {
            "instructions": topic.description,
            "examples": [{"query": q, "result": True, "reason": topic.name} for q in topic.examples]
            + [{"query": topic.negative, "result": False, "reason": f"not {topic.name}"}],
        },
    }


def registry_dict(
    count: int,
    *,
    classifier_mode: str = "llm",
    orchestrator_mode: str = "llm",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A registry as Python data: respond, clarify and the first `count` synthetic capabilities."""
    if not 1 <= count <= len(TOPICS):
        raise ValueError(f"count must be between 1 and {len(TOPICS)}, got {count}")
    data: dict[str, Any] = {
        "version": 1,
        "models": {"enabled": "never"},
        "classifier": {"mode": classifier_mode, "threshold": 0.5, "max_capabilities": 4},
        "orchestrator": {"mode": orchestrator_mode},
        "capabilities": [
            {"name": "respond", "class": "capabilities.respond:Respond", "always_active": True},
            {"name": "clarify", "class": "capabilities.clarify:Clarify", "always_active": True},
            *(capability_entry(t) for t in TOPICS[:count]),
        ],
    }
    data.update(extra or {})
    return data


def synthetic_registry(
    count: int, *, classifier_mode: str = "llm", orchestrator_mode: str = "llm"
) -> Registry:
    return Registry.from_dict(
        registry_dict(count, classifier_mode=classifier_mode, orchestrator_mode=orchestrator_mode),
        source=f"<synthetic {count}>",
    )
