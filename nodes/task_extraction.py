"""Task extraction: turn the conversation into one standalone task for this turn.

With a model: one structured call over the recent turns, told what the conversation is about
(the thread's topic) and who the user is (their profile). Offline: the last user message, read
against the thread's topic (graph/context/followups.py): a follow-up or a correction ("and in
Paris?", "no, I meant Berlin") becomes the topic clause with the new slot in place ("what time is
it in Paris?"), or the new words followed by that clause, and is routed to the topic's capability
(`context_followup`, which the classifier pins); a topic switch is read on its own words.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from graph.capability.guides import GuideExample
from graph.config.registry import Registry
from graph.context.followups import (
    FollowUp,
    appended,
    asks_how_it_goes,
    count_askers,
    guide_lexicon,
    guide_names,
    how_to_owner,
    is_yes,
    resolve,
    slot_kinds,
    vocabulary,
)
from graph.context.offers import accepts, asked_last_turn, go_ahead, narrowed, open_offer, verbs_of
from graph.errors import CriticalError
from graph.intent import side_effect_intent
from graph.models import add_notes
from graph.state import AgentState
from nodes.base import NodeCall, Update
from nodes.intake import clean_request, message_text

_FOLLOW_UP_START = re.compile(r"^\s*(and|also|what about|how about|same|then|or|ok(ay)?,? and)\b", re.I)
_ANAPHORA = re.compile(r"\b(it|that|this|there|them|same|again)\W*$", re.I)
HISTORY_MESSAGES = 6


class ExtractedTask(BaseModel):
    """The model's reading of the latest request."""

    task: str = Field(min_length=1, max_length=2000)
    """The latest request rewritten to stand on its own."""
    depends_on_history: bool = False
    """True when earlier turns were needed to understand it."""


def last_user_text(messages: Sequence[BaseMessage]) -> str:
    """The latest user message, cleaned as intake checked it (content blocks are not rewritten in
    the state, so they are cleaned here again)."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return clean_request(message_text(message))
    raise CriticalError("there is no user message to extract a task from")


def is_follow_up(text: str) -> bool:
    words = text.split()
    return len(words) <= 6 and bool(_FOLLOW_UP_START.search(text) or _ANAPHORA.search(text))


NO_TEXT = "(a message without text)"
"""The task of a message with no words (an image, when the model that could read it fell back)."""


def offline_task(text: str, previous: str | None) -> ExtractedTask:
    """The request itself as the task (a follow-up with the previous task appended).

    Not validated against the model's bounds: intake already refused an empty or too long request,
    and the limit there (`limits.max_request_chars`) is the user's, not the model's.
    """
    text = " ".join(text.split()) or NO_TEXT
    if previous and is_follow_up(text):
        return ExtractedTask.model_construct(
            task=f"{text} (follow-up to: {previous})", depends_on_history=True
        )
    return ExtractedTask.model_construct(task=without_tail(text), depends_on_history=False)


_TAIL = re.compile(
    r"(?:[\s,]+(?:pls|plz|thx))+\s*([?!.]*)\s*$",
    re.I,
)
"""Chat shorthand that ends a request and asks for nothing ("time in denver pls"): no guide example
is written so, and the scorer reads the unknown token as noise that sinks the request below its
threshold. Full words ("please", "right now") are kept: guide examples use them, and removing them
was measured to lose "what's the time over in Manila right now" and "REST API status check please"."""


def without_tail(text: str) -> str:
    """The request without a shorthand courtesy tail; the request itself when nothing else is left."""
    cut = _TAIL.sub(lambda m: m.group(1), text)
    return cut if re.search(r"\w", cut) else text


SYSTEM = (
    "You read a conversation between a user and an assistant. Rewrite the user's LATEST message as "
    "one standalone task: resolve references to earlier turns, keep every number, name and place, "
    "add nothing the user did not ask. Set depends_on_history when earlier turns were needed."
)


def context_prompt(state: AgentState) -> str:
    """What the model is told about the conversation's topic and the user (no secrets: the
    profile holds none)."""
    lines = []
    for entry in state.get("context_topic") or []:
        lines.append(f"- earlier, {entry['capability']} answered: {entry['task']!r}")
    if lines:
        lines.insert(0, "The conversation is about (most recent first):")
    profile = state.get("context_profile") or {}
    prefs = profile.get("preferences") or {}
    if profile.get("expertise") or prefs.get("language"):
        lines.append(
            f"The user: expertise {profile.get('expertise') or 'unknown'}, language {prefs.get('language') or 'any'}."
        )
    return "\n".join(lines)


def standalone_selection(call: NodeCall, text: str) -> list[str]:
    """The capabilities the few-shot scorer selects for the new words alone."""
    registry = call.deps.registry
    settings = registry.spec.classifier
    scorer = call.deps.scorer
    names = [c.name for c in registry.routable if registry.allowed(c.name)]
    return [
        s.name
        for s in scorer.score(text, names)
        if s.wins and s.confidence >= scorer.threshold_for(s.name, settings.threshold)
    ]


def affinity(call: NodeCall, text: str, names: Sequence[str]) -> dict[str, float]:
    return {s.name: s.confidence for s in call.deps.scorer.score(text, list(names))}


def plausible(call: NodeCall, text: str, names: Sequence[str]) -> list[str]:
    """Those of `names` whose confidence on the words reaches their threshold, winning or not."""
    scorer = call.deps.scorer
    default = call.deps.registry.spec.classifier.threshold
    return [
        s.name
        for s in scorer.score(text, list(names))
        if s.confidence >= scorer.threshold_for(s.name, default)
    ]


LABELLED_REASON = "labelled:"
"""How the registry marks a guide example that came from `classifier.labelled_examples`
(graph/config/registry.py: `reason="labelled: <where>"`), not from the capability's author."""


def is_labelled(example: GuideExample) -> bool:
    return (example.reason or "").startswith(LABELLED_REASON)


def guide_texts(registry: Registry, *, labelled: bool = False) -> dict[str, list[str]]:
    """Each routable capability's description and positive guide examples: those its author wrote,
    and with `labelled` also the labelled requests the registry added (`classifier.labelled_examples`).

    The follow-up tables that say what a capability reads (its own words, the slot kinds it reads,
    the names it knows, who answers how-to questions) come from the author's examples only: a few
    dozen written to show exactly that. Labelled requests are written by users who mention a city,
    an e-mail or a customer in passing (an outage report from "our team in Lagos"); read as a
    description they would say every support capability reads places and identifiers, and with a
    hundred rows per capability few words stay one capability's own ("charges", "customer", "time"
    were lost). They do widen the vocabulary (every word some capability is asked about), and they
    teach the scorer, whose ranking the follow-up rules consult."""
    return {
        c.name: [
            c.description,
            *(
                ex.query
                for ex in c.classifier_guide.examples
                if ex.result and (labelled or not is_labelled(ex))
            ),
        ]
        for c in registry.routable
    }


def feeds(registry: Registry, provider: str, consumer: str) -> bool:
    """Whether `provider` provides something `consumer` requires (account's customer for billing)."""
    if provider not in registry or consumer not in registry:
        return False
    return bool(set(registry[provider].provides) & set(registry[consumer].requires))


def asks_action(registry: Registry, text: str, name: str) -> bool:
    """Whether the words ask a capability with side effects to act ("refund that one", "can you
    refund it?"), not only about its action ("can that one be refunded?", "is it refundable?"):
    the router's intent check says act, or says confirm with one of its action verbs as written."""
    verbs = registry[name].action_verbs if name in registry else ()
    if not verbs:
        return False
    intent = side_effect_intent(text, verbs).kind
    if intent == "act":
        return True
    # "refund" as written, not "refunded" / "refundable" (those ask about the action).
    return intent == "confirm" and any(re.search(rf"\b{re.escape(v)}\b", text, re.I) for v in verbs)


_NOT = re.compile(r"\b(?:not|no|never|without)\b|n't\b|\bnever\s?mind\b", re.I)


def asks_about_action(registry: Registry, text: str, name: str) -> bool:
    """Whether the words ask about a capability's action without asking for it ("is this charge
    refundable?", "could the last charge be refunded?"): the router's intent check says confirm, or
    a question names the action in any form and negates nothing."""
    verbs = registry[name].action_verbs if name in registry else ()
    if not verbs:
        return False
    if side_effect_intent(text, verbs).kind == "confirm":
        return True
    forms = "|".join(re.escape(v) for v in verbs)
    return (
        "?" in text
        and re.search(rf"\b(?:{forms})(?:s|es|ed|d|ing|able)?\b", text, re.I) is not None
        and _NOT.search(text) is None
    )


def has_side_effects(registry: Registry, name: str) -> bool:
    return name in registry and bool(registry[name].side_effects)


def read_follow_up(state: AgentState, call: NodeCall, text: str) -> FollowUp:
    """How this message relates to the thread's topic (offline; see graph/context/followups.py)."""
    turn = state.get("task_turn", 0)
    if (standing := standing_offer(state, call, text)) is not None:
        return standing
    if (process := offer_process_question(state, call, text)) is not None:
        return process
    offer = state.get("approval_offer")
    offered = (
        offer["capabilities"]
        if offer and offer.get("turn") == turn - 1 and offer.get("source") != "suggested"
        else []
    )
    texts = guide_texts(call.deps.registry)  # a few hundred short texts: cheap to read each time
    topic = state.get("context_topic") or []
    return resolve(
        text,
        topic,
        turn=turn,
        standalone=lambda t: standalone_selection(call, t),
        affinity=lambda t, names: affinity(call, t, names),
        offer=offered,
        acts=lambda t, name: asks_action(call.deps.registry, t, name),
        side_effects=lambda name: has_side_effects(call.deps.registry, name),
        plausible=lambda t, names: plausible(call, t, names),
        lexicon=guide_lexicon(texts),
        known=vocabulary(guide_texts(call.deps.registry, labelled=True)),
        routable=list(texts),
        feeds=lambda a, b: feeds(call.deps.registry, a, b),
        asks_about=lambda t, name: asks_about_action(call.deps.registry, t, name),
        how_to=how_to_owner(texts),
        kinds=slot_kinds(texts),
        unanswered=unanswered_request(state, topic, turn),
        known_names=guide_names(texts),
        counters=count_askers(texts),
    )


def standing_offer(state: AgentState, call: NodeCall, text: str) -> FollowUp | None:
    """How the message answers the thread's open offer (graph/context/offers.py): a yes to it goes to
    the offered capabilities ("ok fine, go ahead with CH-2004" two turns after the offer); a go-ahead
    with a condition ("go for it, but only the duplicate") too, asked about once more; None when it
    is neither, or the condition names another need ("sure, and what time is it in Oslo")."""
    offer = open_offer(state)
    if offer is None:
        return None
    registry = call.deps.registry
    verbs = verbs_of(registry, offer)
    if accepts(offer, text, verbs, asked=asked_last_turn(state, offer)):
        return FollowUp(
            "confirmation", list(offer["capabilities"]), None, f"a yes to the offer of turn {offer['turn']}"
        )
    found = narrowed(offer, text, verbs)
    if found is None:
        return None
    offered = set(offer["capabilities"])
    related = offered | {n for n in registry.capabilities if any(feeds(registry, n, o) for o in offered)}
    if set(standalone_selection(call, text)) - related:
        return None
    return found


def offer_process_question(state: AgentState, call: NodeCall, text: str) -> FollowUp | None:
    """A question how the thread's open offer would go ("how long would it take to show up back on her
    card?", "does she get an email once it's done?" while a refund is on offer): the help centre's
    (`how_to_owner`), searched with the offered action's word, and the offer stays open; it neither
    takes the offer, turns it down nor runs the lookup that made it again. None when no offer is open,
    the words are no such question (`asks_how_it_goes`), they say yes or ask for the action ("yes, how
    long will it take?": the yes is read as usual), or they name a need of another capability's."""
    offer = open_offer(state)
    if offer is None:
        return None
    registry = call.deps.registry
    verbs = verbs_of(registry, offer)
    action = verbs[0] if verbs else " ".join(offer["capabilities"])
    if (standalone := asks_how_it_goes(text, action)) is None:
        return None
    how = how_to_owner(guide_texts(registry))
    if how is None or how not in registry or not registry.allowed(how):
        return None
    if (
        go_ahead(text, verbs)
        or is_yes(text)
        or any(asks_action(registry, text, n) for n in offer["capabilities"])
    ):
        return None
    offered = set(offer["capabilities"])
    related = (
        {how} | offered | {n for n in registry.capabilities if any(feeds(registry, n, o) for o in offered)}
    )
    if set(standalone_selection(call, text)) - related:
        return None
    return FollowUp(
        "follow_up",
        [how],
        appended(text, standalone),
        f"a question how the offered {action} goes ({how}); the offer of turn {offer['turn']} stays open",
    )


def unanswered_request(state: AgentState, topic: Sequence[dict], turn: int) -> str | None:
    """The previous request, when the previous turn ran nothing the topic kept (it ended in a
    question back: the request was not understood); None otherwise."""
    if turn < 2 or any(int(e.get("turn", 0)) == turn - 1 for e in topic):
        return None
    humans = [m for m in state.get("messages", []) if isinstance(m, HumanMessage)]
    return clean_request(message_text(humans[-2])) if len(humans) >= 2 else None


async def task_extraction(state: AgentState, call: NodeCall) -> Update:
    messages = list(state.get("messages", []))
    text = last_user_text(messages)
    extracted: ExtractedTask | None = None
    follow: FollowUp | None = None
    note = call.llm.offline_note("task_extraction")
    if call.llm.available("task_extraction"):
        recent = messages[-HISTORY_MESSAGES:]
        context = context_prompt(state)
        system = [SystemMessage(content=SYSTEM + (f"\n{context}" if context else ""))]
        try:
            extracted = await call.llm.structured("task_extraction", [*system, *recent], ExtractedTask)
        except Exception as exc:
            # Malformed output or no answer: retried by the router, until the role goes offline
            # or this is the last attempt; then the offline extraction takes over.
            last = call.attempt > call.deps.limits.max_retries
            note = call.llm.fallback_note("task_extraction", exc, last_attempt=last)
            if note is None:
                raise
    if extracted is None:
        follow = await asyncio.to_thread(read_follow_up, state, call, " ".join(text.split()) or NO_TEXT)
        if follow.task:
            extracted = ExtractedTask.model_construct(task=follow.task, depends_on_history=True)
        else:
            extracted = offline_task(text, None)
            extracted.depends_on_history = follow.kind in ("follow_up", "correction", "confirmation")
    update: Update = {"task_current": extracted.task, "task_depends_on_history": extracted.depends_on_history}
    if follow is not None and follow.kind != "new":
        update["context_followup"] = follow.as_state()
        update["planning_notes"] = add_notes(state.get("planning_notes"), f"{follow.kind}: {follow.reason}")
    if note:
        update["planning_notes"] = add_notes(
            update.get("planning_notes") or state.get("planning_notes"), note
        )
    return update
