"""Offers: a side effect the conversation put on the table and did not do, and the yes that takes it.

An offer (`AgentState.approval_offer`, a `SideEffectOffer`) comes from one of two places:

- the approval node: a side effect the user only asked about ("can I get a refund for CH-2013?"),
  whose confirmation question got no yes (`source` "confirm");
- a capability's result that suggests the next step (`Capability.suggested_action`: billing found
  that the charge asked about is refundable), when the turn did not run it and the user's words did
  not turn it down (`source` "suggested"). The answer ends with the question and how to accept it.

A later message accepts it (`accepts`) when it is a yes to it: a plain yes ("yes", "go ahead"), or a
yes with the offer's own object ("ok fine, go ahead with CH-2004", "yes please refund it"). A
suggestion, which asked nothing, wants a go-ahead: a yes that says to carry on ("yes", "do it", "go
for it", "sí, hazlo") or asks for the action ("ok, do the refund"); "ok", "great, thanks" only
acknowledge an answer. The orchestrator then runs the offered capabilities for the offered task,
under the same side-effect policy and approval as any step (`nodes/orchestrator.py`).

An offer stays open for `MAX_AGE` turns, across turns that only ask or look things up ("would they
keep access if we do that?") and turns that put it off ("hold on, checking with her first", "not yet":
`declined` says "hold"). It is withdrawn (`after_turn`, at the end of every turn) by a no ("no, leave
it", "scratch that, no refund": `declined` says "withdraw"), by a side effect done in the meantime,
by a newer offer, and when a context value the
offered capability reads changed since (another customer looked up, another charge checked): a yes
then is not to what was offered. An accepted offer is spent: a side effect happens once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from graph.config.registry import Registry
from graph.context.followups import FollowUp, appended, asks_how_it_goes, content_words, slots
from graph.intent import confirmation, side_effect_intent, turns_down
from graph.router import latest_request
from graph.state import AgentState, SideEffectOffer

MAX_AGE = 3
"""Turns after the one that made it during which an offer can still be accepted."""

_APOSTROPHES = str.maketrans("’‘`´", "''''")
_GO = re.compile(
    r"\b(?:yes+|yeah|yea|yeh|yah|yep|yup|ya|yh|aye|sure|go\s+ahead|go\s+for\s+it|do\s+(?:it|that|so)|please\s+do|proceed"
    r"|go\s+on(?=\s*(?:then\b|[,.!]|$))"
    r"|confirm(?:ed)?|approved?|let'?s\s+do\s+(?:it|that)|let'?s\s+go|make\s+it\s+so"
    # the same in a few of the users' first languages ("sí, hazlo", "oui, vas-y", "ja, mach das")
    r"|s[ií]|hazlo|h[aá]galo|adelante|dale|procede|oui|vas-y|allez-y|ja|mach\s+(?:das|es)|sim|pode)(?!\w)"
)
"""A yes that says to carry on."""
_ACK = re.compile(
    r"\b(?:ok(?:ay)?|okey|okie|k|kk|alright|all\s+right|fine|sounds\s+good|great|perfect|cool|good|right|agreed"
    r"|lovely|brilliant"
    r"|absolutely|definitely|certainly|of\s+course|correct|that\s+works|works\s+for\s+me|claro|vale"
    r"|d'accord|bitte|por\s+favor|s'il\s+vous\s+pla[iî]t)\b"
)
"""Words of assent that may only acknowledge an answer ("ok", "great"): with a go-ahead they are part
of the yes, alone they accept only an offer that asked a question."""
_THANKS = re.compile(r"\b(?:thanks|thank\s+you|thx|ty|cheers|gracias|merci|danke)\b")
_REFERENCE = frozenset(
    re.findall(
        r"\S+",
        "it that this them those these one ones the a an with on for to of please pls then now just and "
        "go ahead do same thats thing",
    )
)
"""Words a yes uses to point at what was offered ("go ahead with that one")."""
_PICKING = frozenset(
    re.findall(
        r"\S+", "first second last latest previous earlier duplicate double extra other charge payment amount"
    )
)
"""Words that pick the offered item out ("refund the extra one", "the duplicate charge")."""
_DEFER = re.compile(
    r"\?|\b(?:not\s+(?:yet|now)|hold\s+(?:off|on)|wait|later|tomorrow|until|before|after|if|unless"
    r"|once|when|maybe|perhaps|don'?t|do\s+not|never|cancel|stop)\b"
)
"""A yes that is not one yet ("sure, but not yet", "yes if it's under $50", "ok but wait")."""
_NEGATIVE = re.compile(r"no|not|nope|nah|none|nothing|neither|without|\w*n't")
"""Words of a no: never one of the offer's own words in a yes ("ok, no" after a request that said
"no idea why I was charged twice")."""


_HOLD = re.compile(
    r"^\W*(?:(?:ok(?:ay)?|k|so|well|hmm+|um+|uh+|right|alright|actually|sorry|oh)\W+)*"
    r"(?:hold\s+(?:on|off|it|up|fire)|hang\s+on|not\s+(?:just\s+)?yet|not\s+for\s+now|wait(?:\s+a\s+(?:sec(?:ond)?|minute|moment|bit))?"
    r"|(?:give|gimme)(?:\s+(?:me|us))?\s+a\s+(?:sec(?:ond)?|minute|moment|bit|day|tick|mo)"
    r"|(?:one|just\s+a|half\s+a)\s+(?:sec(?:ond)?|moment|minute|mo|tick)|bear\s+with\s+(?:me|us)|hold\s+that\s+thought"
    r"|let\s+me\s+(?:check|ask|confirm|talk|speak|double[\s-]check|think|get\s+back)"
    r"|(?:i'?ll|i\s+will|we'?ll|we\s+will)\s+(?:wait|check|ask|confirm|get\s+back|come\s+back|let\s+you\s+know))"
    # "wait, how many seats is he paying for" is a question, not a delay
    r"(?!\W*(?:what|how|why|who|when|where|which|is|are|was|were|does|do|did|can|could)\b)\b"
)
"""A delay to the offer ("hold on, checking with her first", "not yet, I'll wait until she confirms",
"let me ask the owner"): nothing done now, and the offer stays open for a later go-ahead."""
_NO = re.compile(
    r"\b(?:no|nope|nah|never\s?mind|forget\s+(?:it|that|about\s+it)|scratch\s+that"
    r"|cancel(?:\s+(?:it|that))?|leave\s+it|keep\s+(?:it|them|the)|not\s+(?:now|needed|necessary)"
    r"|call\s+it\s+off|changed\s+(?:her|his|their|my|our)\s+mind|decided\s+(?:to\s+keep|against)"
    # a no made stronger ("absolutely not", "of course not", "not at all"), and dropping the action
    # ("skip the refund", "drop it", "I'll pass on that")
    r"|(?:absolutely|definitely|certainly|surely|of\s+course|hell|god)\s+(?:not|no)|not\s+at\s+all"
    r"|(?:skip|drop|scrap|ditch)\s+(?:it|that|this|the\b)|(?:i'?ll|we'?ll|i\s+will|we\s+will)\s+pass|pass\s+on)\b"
)
"""A no to the offer ("no, leave it", "scratch that, she's keeping the seats", "nah, not needed"): it is
withdrawn."""
_DONT = re.compile(r"\b(?:don'?t|do\s+not)\b")
_NOT_YET = re.compile(r"\b(?:yet|until|till|before|first)\b")
"""A "don't" with a delay ("don't do it yet", "don't refund it until she confirms") holds; without one
it withdraws."""
_ASKS = re.compile(
    r"^\W*(?:please\s+|pls\s+|kindly\s+|just\s+|only\s+|then\s+|now\s+|and\s+|but\s+|instead\s+)*"
    r"(?:tell|show|check|look|give|send|find|list|explain|pull|get|fetch|quote|calculate|compute|what"
    r"|what's|how|when|where|which|who|why|is|are|was|were|does|did|can|could|should|would)\b"
    r"|\b(?:i|we)\s+(?:want|need|would\s+like|'d\s+like)\s+(?!to\s+(?:talk|speak|check|ask|confirm|wait|think))"
    r"|\b(?:meant|instead|the\s+other\s+(?:one|ones|charge|payment|invoice|account|customer))\b"
)
"""A clause that asks for something ("just tell me the plan", "what about the invoices"), or corrects
what was offered ("no, the other one", "I meant the October charge"): not only a no."""


_YES_LEAD = re.compile(
    r"^\W*(?:(?:ok(?:ay)?|k|alright|fine|great)\W+)?(?:yes+|yeah|yea|yeh|yah|yep|yup|ya|yh|aye|sure|go\s+ahead|go\s+for\s+it|do\s+it"
    r"|please\s+do|proceed)\b"
)
"""A message that opens with a yes: never a decline, whatever it keeps ("yes, and keep the seats")."""
_PARTICLE = r"(?:yes+|yeah|yea|yeh|yah|yep|yup|ya|aye|sure|ok(?:ay)?|no+|nah|nope|naw)"
_STACK = re.compile(rf"^\W*((?:{_PARTICLE}[\s,.!-]+)+{_PARTICLE})(?![\w'])")
"""Yes and no words stacked at the start of a reply ("yeah, no", "yeah nah", "nah yeah", "yeah nah
yeah, go for it"): the last one is the answer, the ones before it only soften it."""


def stacked(text: str) -> bool | None:
    """The answer of a stack of yes and no words that opens `text` (`_STACK`) with a no among them:
    False when its last word is a no ("yeah, no"), True when a yes ("nah yeah"); None without such a
    stack (a plain "no", "ok yes")."""
    m = _STACK.match(_said(text))
    if m is None:
        return None
    words = re.findall(r"[a-z]+", m.group(1))
    noes = [bool(re.fullmatch(r"no+|nah|nope|naw", w)) for w in words]
    return None if not any(noes) else not noes[-1]


def declined(text: str, verbs: Sequence[str] = ()) -> Literal["hold", "withdraw"] | None:
    """Whether `text` answers an offer (or a question about an action) with a no and asks nothing
    else: "withdraw" for a no ("no, leave it for now", "scratch that, she's keeping the seats. No
    refund."), "hold" for a delay ("hold on, checking with the customer first", "ok, not yet - I'll
    wait until she puts it in writing"), None otherwise: a question, an identifier or an amount (a
    request of its own), a correction ("no, the other one"), a clause that asks for something
    ("no refund, just tell me the plan"), or no sign of a no at all. A no wins over a delay ("no,
    hold off on that" withdraws)."""
    said = _said(text)
    if not said or "?" in said or len(said) > 240:
        return None
    if any(s.kind in ("email", "ident", "amount", "number", "expr") for s in slots(text)):
        return None
    stack = stacked(said)
    if stack is False:
        # "yeah, no", "yeah nah, leave it": the last word of the stack is the answer
        said = _STACK.sub("no", said, count=1)
    elif stack is True or _YES_LEAD.match(said) or (verbs and side_effect_intent(text, verbs).kind == "act"):
        return None  # "yes, refund it and keep the seats", "refund it, but keep the seats": a yes
    clauses = [c for c in re.split(r"\s*(?:[,;:.!]|\s-+\s|\s—\s|\bbut\b)\s*", said) if c.strip()]
    if any(_ASKS.search(c) and not _HOLD.match(c) for c in clauses):
        return None  # a request of its own; "give me a minute" is a delay, not a request
    if _NO.search(said):
        return "withdraw"
    hold = any(_HOLD.match(c) for c in clauses[:2]) or bool(_DONT.search(said) and _NOT_YET.search(said))
    if hold:
        return "hold"
    if confirmation(text) is False or (bool(verbs) and turns_down(text, verbs)):
        return "withdraw"
    return None


def _said(text: str) -> str:
    return " ".join(text.translate(_APOSTROPHES).lower().split())


def open_offer(state: Mapping[str, Any]) -> SideEffectOffer | None:
    """The thread's offer when this turn may still accept it (made 1 to `MAX_AGE` turns ago, not
    accepted by another turn); None otherwise."""
    offer = state.get("approval_offer")
    turn = int(state.get("task_turn") or 0)
    if not offer or offer.get("accepted_turn") not in (None, turn):
        return None
    return offer if 1 <= turn - int(offer.get("turn", 0)) <= MAX_AGE else None


def asked_last_turn(state: Mapping[str, Any], offer: Mapping[str, Any]) -> bool:
    """Whether the offer is a question the previous turn asked (not a suggestion, not older): the one
    case where an assent that may only acknowledge ("ok", "sounds good") is a yes."""
    return (
        offer.get("source") != "suggested"
        and int(offer.get("turn", 0)) == int(state.get("task_turn") or 0) - 1
    )


def about(offer: Mapping[str, Any]) -> str:
    """What the offer is about, as words: its task and its question."""
    return f"{offer.get('task') or ''} {offer.get('question') or ''}"


def _slots_agree(text: str, offered: str) -> tuple[str, bool]:
    """The text without its identifiers, amounts and numbers, and whether each of them is one the
    offer names ("go ahead with CH-2004" after an offer about CH-2004)."""
    plain = _said(offered)
    digits = set(re.findall(r"\d+(?:[.,]\d+)*", plain))
    rest, agree = text, True
    for slot in reversed(slots(text)):
        if slot.kind in ("email", "ident", "amount", "number"):
            value = _said(slot.text)
            numbers = re.findall(r"\d+(?:[.,]\d+)*", value)
            if value not in plain and not (numbers and all(n in digits for n in numbers)):
                agree = False
            rest = rest[: slot.start] + " " + rest[slot.end :]
    return rest, agree


_POLITE_LEAD = r"(?:(?:please|kindly|pls|then|so|well|right|and|that'?s|that\s+is)\W+)*"
"""Courtesy before a yes ("please proceed, but ...", "that's fine, go ahead with only ..."): the yes
still leads."""


def go_ahead(text: str, verbs: Sequence[str] = ()) -> bool:
    """Whether the words tell us to carry on: a go-ahead word ("yes", "do it", "go for it", "sí,
    hazlo") or an instruction to do the action (`side_effect_intent` act: "ok, do the refund"),
    and no thanks (a "yep, thanks" acknowledges)."""
    said = _said(text)
    if _THANKS.search(said):
        return False
    return bool(_GO.search(said)) or (bool(verbs) and side_effect_intent(text, verbs).kind == "act")


def _only_the_offer(text: str, offer: Mapping[str, Any], verbs: Sequence[str]) -> bool:
    """Whether the words besides the yes name nothing but the offer: its identifiers and amounts, its
    action, words of its task or question, and words that point at it."""
    rest, agree = _slots_agree(text, about(offer))
    if not agree:
        return False
    said = _said(rest)
    said = _GO.sub(" ", said)
    said = _ACK.sub(" ", said)
    for verb in sorted(verbs, key=len, reverse=True):
        said = re.sub(rf"\b{re.escape(verb.lower())}\w*", " ", said)
    own = {w for w in re.findall(r"[a-z0-9']+", _said(about(offer))) if not _NEGATIVE.fullmatch(w)}
    words = re.findall(r"[a-zà-ÿ']+", said)
    return all(w in _REFERENCE or w in _PICKING or w in own for w in words)


_QUESTION_AFTER = re.compile(r"(?:[,;.!]|\s-+|\s—|\s–)\s+")
_ASKS_HOW = re.compile(
    r"(?:(?:and|so|also|btw|just|roughly|out\s+of\s+interest)\W+)*"
    r"(?:how|when|what|where|which|who|will|does|do|is|are|can|any\s+idea)\b"
)
_WEIGHS = re.compile(
    r"\b(?:should|shall|would|could|might|sure|wise|safe|ok(?:ay)?|alright|right|instead|rather|first"
    r"|wait|hold|later|if|unless|until|till|before|not|no|n't|\w+n't|cancel|stop|risk|other|another)\b"
    r"|\d|@"
)
"""Words of a question that weighs the action or names something else ("go ahead - or should we wait?",
"do it, unless she's already paid?", "yes - the other charge?"): then the yes is not one yet."""
_AFTERWARDS = re.compile(
    r"\bafter(?:wards)?\b(?=\s*(?:[,?.!]|$|or\b|and\b))|\bafter\s+(?:that|this|it)\b"
    r"|\bonce\s+(?:it|that|this)(?:'s|\s+is|\s+has)?\s+(?:done|through|gone\s+through|processed)\b"
)
"""A question about what follows the action ("will the workspace stay open after, or go read-only?",
"does she keep access once it's done?")."""
_INTERJECTION = re.compile(r"^\W*([a-z]+)[.!]+\s+(?=\S)")
"""A word said as a sentence of its own before the reply ("Tidy. Do it now then", "Lovely! go ahead")."""


def _yes_then_question(said: str, verbs: Sequence[str] = ()) -> tuple[str, str] | None:
    """A yes, then a question how the action goes once done ("go for it - how long till it's back on
    the card?", "yes please, will she get an email?": `asks_how_it_goes`): (the yes, the question).
    None unless the message ends in its only question, the question opens with a question word and
    weighs nothing (`_WEIGHS`; "how long until/before" asks when, it sets no condition). A question
    about anything else ("yes, and what time is it in Oslo?") is a request of its own."""
    if not said.endswith("?") or said.count("?") != 1:
        return None
    action = verbs[0] if verbs else "it"
    for m in _QUESTION_AFTER.finditer(said):
        lead, question = said[: m.start()].strip(), said[m.end() :]
        if not lead:
            continue
        if not _ASKS_HOW.match(question) or (
            asks_how_it_goes(question, action) is None and not _AFTERWARDS.search(question)
        ):
            continue
        timing = re.sub(
            r"\bhow\s+(?:long|soon|many\s+days)\s+(?:until|till|til|before)\b", "how long", question
        )
        if _WEIGHS.search(timing):
            return None
        return lead, question
    return None


def accepts(offer: Mapping[str, Any], text: str, verbs: Sequence[str] = (), *, asked: bool = False) -> bool:
    """Whether `text` says yes to `offer` (see the module docstring). `asked`: the offer is the
    question the last turn asked (`asked_last_turn`), which a plain assent answers ("ok"); otherwise
    the yes must be a go-ahead (`go_ahead`). Never a question, a no or a yes with a condition or a delay."""
    stack = stacked(text)
    if stack is not None:
        # "yeah, no": the last word of the stack is the answer; a stack that ends in a yes ("yeah nah
        # yeah, go for it") is one only with a go-ahead after it ("no, ok" is unclear)
        rest = re.sub(_STACK.pattern, " ", text, count=1, flags=re.I)
        if stack is False or not _GO.search(_said(rest)):
            return False
        text = f"yes {rest}"
    said = _said(text)
    if (
        (word := _INTERJECTION.match(said))
        and not _NEGATIVE.fullmatch(word.group(1))
        and not _DEFER.search(word.group(1))
        and stacked(word.group(1)) is None
    ):
        said = text = said[word.end() :]  # "Tidy. Do it now then": the word only acknowledges
    if (pair := _yes_then_question(said, verbs)) is not None:
        # "go for it - how long till it's back on the card?": the yes decides; the question is about
        # the action once done, and the action's answer says what it did
        text, said = pair[0], pair[0]
        if not go_ahead(text, verbs):
            return False
    if confirmation(text) is False or _DEFER.search(said):
        return False
    if asked and confirmation(text) is True:
        return True
    if not (go_ahead(text, verbs) or (asked and _ACK.search(said))):
        return False
    return _only_the_offer(text, offer, verbs)


def narrowed(offer: Mapping[str, Any], text: str, verbs: Sequence[str] = ()) -> FollowUp | None:
    """ "go for it, but only the duplicate, not this month's": a go-ahead to the offer that says more
    than the offer did. The offered action, with the words first and the offered task after them, asked
    about once more (`ask_again`: the router's confirm gate); never done on these words. None for a
    question, a delay or a condition (`_DEFER`), or without words besides the yes."""
    said = _said(text)
    if _DEFER.search(said) or not go_ahead(text, verbs) or confirmation(text) is False:
        return None
    if not re.match(rf"{_POLITE_LEAD}(?:(?:{_ACK.pattern})\W+)?(?:{_GO.pattern})", said):
        return None  # the yes must lead: "refund CH-2001, yes" is a request of its own
    rest = _ACK.sub(" ", _GO.sub(" ", said))
    if not content_words(rest):
        return None
    return FollowUp(
        "confirmation",
        list(offer["capabilities"]),
        appended(text, str(offer["task"])),
        f"a go-ahead with a condition to the offer of turn {offer['turn']}; asked again",
        ask_again=True,
    )


def verbs_of(registry: Registry, offer: Mapping[str, Any]) -> list[str]:
    """The action words of the offered capabilities."""
    return [
        v for name in offer.get("capabilities") or [] if name in registry for v in registry[name].action_verbs
    ]


def fingerprint(registry: Registry, names: Sequence[str], context: Mapping[str, Any]) -> dict[str, str]:
    """A digest of each context value the capabilities `names` read (`requires`)."""
    keys = sorted({k for n in names if n in registry for k in registry[n].requires})
    return {
        k: hashlib.sha256(json.dumps(context.get(k), sort_keys=True, default=str).encode()).hexdigest()[:16]
        for k in keys
    }


def suggestion(state: AgentState, registry: Registry) -> SideEffectOffer | None:
    """The offer a result of this turn suggests (`Capability.suggested_action`), or None: none; the
    turn ended otherwise than in an answer; a side effect ran or was planned this turn (the approval
    node's offer and the step's own answer speak for it); the suggested capability is unknown, not
    allowed or has no side effects; the user's words turned the action down ("don't refund it, just
    check")."""
    plan = state.get("planning_plan") or []
    planned = {s["capability"] for s in plan}
    if any(name in registry and registry[name].side_effects for name in planned):
        return None
    said = latest_request(state.get("messages") or [])
    results = state.get("execution_results") or {}
    for step in plan:
        result = results.get(step["id"])
        if not result or result["status"] != "ok" or step["capability"] not in registry:
            continue
        found = registry[step["capability"]].instance.suggested_action(result["output"])
        if found is None or found["capability"] not in registry:
            continue
        info = registry[found["capability"]]
        if not info.side_effects or not registry.allowed(info.name):
            continue
        if turns_down(said, info.action_verbs):
            continue
        return SideEffectOffer(
            turn=int(state.get("task_turn") or 0),
            task=state.get("task_current") or "",
            capabilities=[info.name],
            question=found["question"],
            accepted_turn=None,
            source="suggested",
            context=fingerprint(registry, [info.name], state.get("execution_context") or {}),
        )
    return None


def after_turn(state: AgentState, registry: Registry) -> SideEffectOffer | None:
    """The thread's offer once this turn is over (see the module docstring)."""
    offer = state.get("approval_offer")
    turn = int(state.get("task_turn") or 0)
    context = state.get("execution_context") or {}
    if offer and offer.get("accepted_turn") == turn:
        return offer  # spent: kept so that no later yes takes it again
    if offer and int(offer.get("turn", 0)) == turn:  # the approval node's, this turn
        if "context" not in offer:
            offer = {**offer, "context": fingerprint(registry, offer["capabilities"], context)}
        return offer
    if state.get("control_stop_reason") == "success" and (new := suggestion(state, registry)) is not None:
        return new
    if not offer or offer.get("accepted_turn") is not None:
        return None
    said = latest_request(state.get("messages") or [])
    results = (state.get("execution_results") or {}).values()
    acted = any(
        r["status"] == "ok" and r["capability"] in registry and registry[r["capability"]].side_effects
        for r in results
    )
    # A no withdraws the offer ("no, leave it", "scratch that, she's keeping the seats"); a delay keeps
    # it for a later go-ahead ("hold on, checking with the customer first", "not yet").
    reply = declined(said, verbs_of(registry, offer))
    no = reply == "withdraw" or (confirmation(said) is False and reply != "hold")
    if acted or no or turn - int(offer.get("turn", 0)) >= MAX_AGE:
        return None
    if "context" in offer and offer["context"] != fingerprint(registry, offer["capabilities"], context):
        return None
    return offer


__all__ = [
    "MAX_AGE",
    "about",
    "accepts",
    "after_turn",
    "asked_last_turn",
    "declined",
    "fingerprint",
    "go_ahead",
    "narrowed",
    "open_offer",
    "suggestion",
    "verbs_of",
]
