"""Side-effect intent: does this request explicitly tell us to act, or only talk about acting?

A capability with side effects (a refund moves money) must act only on an explicit instruction.
"I'm omar@brightpath.co, do NOT refund anything, just tell me if I was charged twice" and "can I
get a refund for the duplicate charge?" both issued refunds once; `side_effect_intent` is the check
that would have stopped them.

    side_effect_intent("please refund CH-2033", REFUND_VERBS).kind          == "act"
    side_effect_intent("can I get a refund for CH-2033?", REFUND_VERBS).kind == "confirm"
    side_effect_intent("don't refund, just check", REFUND_VERBS).kind       == "refuse"

English only, deterministic, no model: a few word lists and rules, applied to each clause that
holds one of the capability's action `verbs`. Fail safe: `act` needs a positive sign of an
instruction; anything unrecognised is `confirm` (ask the human first) or `refuse` (answer, do
nothing). Another language, a typo in the verb: no verb found, `refuse`.

A correction's lead ("no, I meant ...", "sorry, I mean ...") is not a refusal: it goes before the
rules read what the user meant.

Rules, in order, per clause (a sentence cut at "but", "however", "instead", "although", "rather",
"except" and before "just/only tell me..."); quoted text ("...", '...', and reported speech after
"it says", "my colleague wrote:", "a message reads:", anyone's but the user's own) is removed first,
so a quoted instruction is not one:

1. negation or retraction anywhere in the clause ("don't", "do not", "never", "no need to",
   "without", "not asking", "cancel the refund", "hold off", "actually no", "jk", "scratch
   that"...) -> refuse. Scope is the whole clause, not the
   word after the cue: "I don't care about the fee, refund it" refuses too. A false refusal costs a
   rephrase; a false refund costs money. (A clause of its own, without the verb, that turns down
   another named thing is no refusal of the action: "do the refund, but no need for a ticket".)
2. restriction ("just/only tell me", "just check", "only want to know", "just curious") -> refuse.
3. status or history ("where is my refund", "did you refund", "already", "has it been",
   "refunded" as a past event) -> refuse: it asks about a refund, not for one. "get/have ...
   refunded" asks for one ("could I get the retry charge refunded?"): the rules below read it.
4. hypothetical or condition ("if", "what if", "would I", "suppose", "in case", "assuming",
   "when I cancel") -> confirm. Confirm rather than refuse: the person may well want the refund
   once the condition is settled, and a confirmation question costs one turn.
5. question ("?", "can I", "am I eligible", "is it refundable", "how do I", "whether", "possible")
   -> confirm. This includes polite requests phrased as questions ("could you please refund
   CH-2033", "can you refund the duplicate charge"): they usually mean "do it", but a literal
   question is the one place a yes/no confirmation is natural, and it keeps the rule simple:
   a question never acts.
6. explicit instruction -> act: the verb opens the clause after fillers ("please", "yes", "ok",
   "go ahead and", "kindly") and has an object or a please ("refund CH-2033", "refund me now",
   "please refund"); or a wish/demand before it ("I want a refund", "I'd like my money back",
   "I need you to refund"); or a directive verb with it as the object ("process the refund",
   "issue a refund", "go ahead with the refund").
7. anything else that mentions the verb -> confirm ("the refund for CH-2033", "refund?").

Across clauses: every clause that mentions the verb must say act for the request to act; a
refusal with no act refuses; act mixed with refuse (or with confirm) confirms. No clause mentions
the verb: refuse.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

IntentKind = Literal["act", "confirm", "refuse"]

REFUND_VERBS: tuple[str, ...] = (
    "refund",
    "money back",
    "reimburse",
    "credit back",
    "reverse the charge",
    "reverse that charge",
    "reverse this charge",
    "charge back",
    "chargeback",
    "pay back",
    "pay me back",
    "return my money",
    "give back my money",
)
"""Action words of a refund capability, for `side_effect_intent(text, REFUND_VERBS)`."""


@dataclass(frozen=True)
class Intent:
    """What to do with a side effect: act on it, confirm it first, or refuse (answer only)."""

    kind: IntentKind
    reason: str
    """One line a human can read: which rule decided and on which words."""

    @property
    def act(self) -> bool:
        return self.kind == "act"


# --- normalisation ------------------------------------------------------------------------------

_APOSTROPHES = str.maketrans("’‘`´", "''''")
_QUOTED = re.compile(
    r"\"[^\"\n]{0,2000}(?:\"|$)"  # "double", or unclosed to the end of the line
    r"|“[^”\n]{0,2000}(?:”|$)"
    r"|«[^»\n]{0,2000}(?:»|$)"
    r"|(?<![a-z0-9])'[^'\n]{0,2000}'(?![a-z0-9])",  # 'single', not an apostrophe (don't, customers')
)
# Reported speech: "the email says refund me now", "it said: ...", "my colleague wrote: ...", "a message
# in my inbox reads: ...", "my boss told me: ...", "the customer asked: ...", up to the end of the
# sentence. Anyone's words but the user's own ("I said"). Told/asked/wants count only before a colon:
# "my boss told me to refund it" is the user relaying a request, which is asked about, not dropped.
_REPORTED = re.compile(
    r"\b(?:it|that|which|email|message|text|note|ticket|subject|page|site|sign|bot|agent|he|she|they)"
    r"\s+(?:says|said|reads|read|stated|states|wrote|writes)\b:?[^.!?\n]{0,2000}"
    r"|\b(?!(?:i|we|you)\s)[a-z][\w'-]{0,40}\s+(?:says|said|reads|stated|states|wrote|writes)\b:?[^.!?\n]{0,2000}"
    r"|\b(?!(?:i|we|you)\s)[a-z][\w'-]{0,40}\s+(?:told|tells|asked|asks|instructed|wants)(?:\s+(?:me|us))?\s*:"
    r"[^.!?\n]{0,2000}"
)
_TYPOS = [
    (re.compile(r"\b(do|does|did|is|was|are|were|have|has|had|would|should|could|wo|ca)\s?nt\b"), r"\1n't"),
    (
        re.compile(
            r"\b(don|doesn|didn|isn|wasn|aren|weren|haven|hasn|hadn|wouldn|shouldn|couldn|won|can)\s+t\b"
        ),
        r"\1't",
    ),
    (re.compile(r"\bdont\b"), "don't"),
    (re.compile(r"\bcant\b"), "can't"),
    (re.compile(r"\bwont\b"), "won't"),
    (re.compile(r"\b(?:pls|plz|plez|pleas|pleeze|pleaze)\b"), "please"),
    (re.compile(r"\bu\b"), "you"),
    (re.compile(r"\bim\b"), "i'm"),
    (re.compile(r"\bid\s+like\b"), "i'd like"),
    (re.compile(r"\bwanna\b"), "want to"),
]


# A correction of what the assistant understood, not a refusal: "no, I meant refund it" (at the start of
# the message only: "refund it. no, I meant nothing" takes the refund back) says what was
# meant. Only this lead goes; what follows is read by the rules like any request ("no, I meant don't
# refund it" still refuses), and "no" alone, "no thanks", "no, don't" stay refusals.
_CORRECTION_LEAD = re.compile(
    r"^\s*(?:no|nope|sorry|oops)[\s,.!-]+i\s+(?:meant|mean)(?:\s+to\s+say)?\b[\s,:-]*"
)


def _normalise(text: str) -> str:
    text = text.translate(_APOSTROPHES).lower()
    text = _QUOTED.sub(" ", text)
    text = _REPORTED.sub(" ", text)
    for pattern, repl in _TYPOS:
        text = pattern.sub(repl, text)
    text = _CORRECTION_LEAD.sub(" ", text)
    return re.sub(r"[ \t]+", " ", text)


# --- clauses ------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?;\n])(?=\s|$)|\n")
_RESTRICTION = (
    r"(?:just|only|simply|merely)\s+(?:want\s+to\s+|wanted\s+to\s+|need\s+to\s+|'d\s+like\s+to\s+)?"
    r"(?:tell|check|show|let\s+me\s+know|confirm\s+(?:whether|if)|know|see|look|verify|ask|asking|"
    r"wondering|curious|looking|checking|info|information|a\s+question|explain|answer)\b"
)
_CONTRAST = re.compile(
    rf"\b(?:but|however|instead|although|though|rather|except|otherwise)\b|(?=\b{_RESTRICTION})"
    # an exclusion after the thing meant: "refund the successful one only, not the failed one" (the
    # "not" names what is left out; "refund it, not now" still holds its own "not now")
    r"|(?:[,;]|\s[-–—]|\bonly\b)\s*(?=not\s+(?:the|that|this|these|those|a|an|any|my|his|her|their|our|one)\b)"
)


def _clauses(text: str) -> list[str]:
    out: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        out += [c.strip(" ,-–—:") for c in _CONTRAST.split(sentence)]
    return [c for c in out if c]


# --- rules --------------------------------------------------------------------------------------

_NEGATION = re.compile(
    r"\b(?:not|no|never|nothing|none|nobody|neither|nor|without|cannot|n't|nah|nope)\b|n't\b"
    r"|\b(?:no\s+need|rather\s+not|hold\s+off|hold\s+on|refrain|never\s*mind)\b"
)
# "cancel the refund", "stop the refund": negation only when the action is what they stop.
_STOPPERS = (
    r"(?:stop|cancel|halt|abort|undo|revoke|avoid|reverse\s+the|call\s+off|skip|drop|scrap|ditch|forget)"
)
# A clause without the verb that still tells us not to act: "Can I get a refund? Don't do it yet."
_STOP_ANY = re.compile(
    r"\b(?:don't|do\s+not|never|please\s+don't)\s+(?:do|proceed|go\s+ahead|process|issue|touch|make|start)\b"
    r"|\b(?:not\s+yet|not\s+now|never\s*mind|hold\s+off)\b"
    r"|^(?:(?:actually|wait|oh|um|hmm|sorry|well|ok|okay)[\s,]+)*(?:no|nope|don't|do\s+not|stop)\b"
)
# A no aimed at another thing than the action, in a clause of its own: "do the refund, but no need
# for a ticket", "refund it, but no confirmation email needed". It declines that thing (a clause that
# names no thing, "but no need", "no, don't", still refuses). Never when the thing may be the action
# under another name than its verbs ("no need for the reversal", "no chargeback needed", "no money
# back necessary", "no credit needed"): a false refusal costs a rephrase, a false refund money.
_ACTION_LIKE = (
    r"(?:revers|reimburs|refund|repay|pay|charge|credit|money|cash|return|compensat|it\b|that\b|this\b)"
)
_OTHER_THING = re.compile(
    r"^(?:(?:ok|okay|and|so|but|though|just|also)[\s,]+)*"
    rf"(?:no\s+need\s+(?:for|of)\s+(?:a|an|the|any)\s+(?!of\b|thing\b|one\b|{_ACTION_LIKE})[a-z][\w-]*"
    rf"|no\s+(?!{_ACTION_LIKE})(?:[a-z][\w-]*\s+){{1,2}}(?:needed|necessary|required)\b)"
    r"[^,;]*$"
)
# Taking back what was just said: "refund CH-2033. Actually no.", "refund it lol jk", "scratch that".
_RETRACT = re.compile(
    r"\b(?:actually\s+no|no\s+wait|wait\s+no|nevermind|just\s+kidding|jk|kidding|scratch\s+that"
    r"|forget\s+(?:it|that|about\s+it)|on\s+second\s+thought|ignore\s+(?:that|this|my\s+last))\b"
)
_RESTRICTED = re.compile(rf"\b{_RESTRICTION}|\b(?:fyi|for\s+your\s+information|out\s+of\s+curiosity)\b")
_STATUS = re.compile(
    r"\b(?:status|track|tracking|where\s+is|where's|when\s+will|when\s+do\s+i\s+get|did\s+you"
    r"|have\s+you|has\s+(?:it|my|the|this|that)|was\s+i|were\s+you|already\s+(?:got|received|had|issued))\b"
)
_HYPOTHETICAL = re.compile(
    r"\b(?:if|what\s+if|suppose|supposing|assuming|hypothetically|in\s+case|in\s+the\s+event|let's\s+say"
    r"|lets\s+say|say\s+i|were\s+i|would\s+i|would\s+it|would\s+that|would\s+there|would\s+this"
    r"|in\s+theory|theoretically|imagine|provided|unless|once|when\s+i|whenever|should\s+i|might"
    # a deferred or hedged action is not an instruction to act now (the mutation check found
    # "refund CH-2033 next week" and "... maybe" acting): asked about instead
    r"|maybe|perhaps|later|tomorrow|next\s+(?:week|month|year)|as\s+soon\s+as|only\s+after"
    r"|after\s+(?:my|you|we|they|i)\s"
    # more of them, found by session 14's mutation check: "eventually", "on monday", "in two days",
    # "after the return arrives", "possibly", "i guess"
    r"|eventually|at\s+some\s+point|some\s?day|next\s+time|possibly|probably|i\s+guess|i\s+suppose"
    r"|next\s+(?:mon|tues|wednes|thurs|fri|satur|sun)day|on\s+(?:mon|tues|wednes|thurs|fri|satur|sun)day"
    r"|in\s+(?:a|an|one|two|three|four|five|six|seven|a\s+few|a\s+couple\s+of|\d+)\s+(?:minute|hour|day|week|month)s?"
    r"|after\s+(?:the|this|that|it)\s)\b"
)
_QUESTION = re.compile(
    r"\?"
    r"|^(?:so\s+|and\s+|hi\s+|hey\s+|hello\s+|please\s+|also\s+)?(?:can|could|may|might|am|is|are|do|does"
    r"|will|would|shall|should|how|what|when|why|where|which|who|whom|whose|is\s+there|isn't|aren't)\b"
    r"|\b(?:can\s+you|could\s+you|would\s+you|will\s+you|can\s+i|could\s+i|may\s+i|am\s+i|do\s+i"
    r"|whether|wonder|wondering|want\s+to\s+know|like\s+to\s+know|eligible|eligibility|qualify|entitled"
    r"|possible|allowed|able\s+to|any\s+chance|is\s+there\s+a\s+way|policy|how\s+do|how\s+can|how\s+long"
    r"|refundable)\b"
)
_FILLER = (
    r"(?:(?:please|kindly|yes+|yeah|yea|yeh|yah|ya|yh|yep|yup|aye|ok|okay|okey|okie|k|kk|sure|alright|right|so|then|and|now|just|hi|hello|hey"
    r"|thanks|thank\s+you|go\s+ahead\s+and|go\s+ahead(?!\s+with)|ahead\s+and|also|oh|well|great|perfect|fine"
    r"|actually|seriously|asap|immediately|today)\b[\s,!.:-]*)*"
)
_POLITE = re.compile(r"\b(?:please|kindly|go\s+ahead|yes|now|asap|immediately|today|right\s+away)\b")
_WISH = re.compile(
    r"\b(?:i|we)(?:\s+(?:really|just|still|do|definitely|urgently))?\s*(?:want|need|demand|request|require"
    r"|expect|insist\s+on|would\s+like|'d\s+like|'d\s+want|would\s+want|wish|am\s+requesting|'m\s+requesting"
    r"|am\s+asking\s+for|'m\s+asking\s+for|am\s+requesting|'m\s+demanding)\b"
    r"|\byou\s+(?:should|must|need\s+to|have\s+to|gotta)\b"
)
_DIRECTIVE = re.compile(
    r"(?:process|issue|give|send|do|make|start|initiate|complete|execute|proceed\s+with|go\s+ahead\s+with"
    r"|apply|grant|put\s+through|submit|file|authorize|authorise|approve|let\s+me\s+have|get\s+me|sort\s+out)\b"
)


# Between a wish and the verb, these make it a request for information: "I need help with a refund".
_ABOUT = re.compile(
    r"\b(?:help|info|information|know|advice|details|question|questions|about|regarding|understand|learn"
    r"|clarification|explanation|update|news|talk|speak|discuss|ask|check|see)\b"
)
# After the verb, these make it a topic: "refund policy", "refund status", "refund options".
_TOPIC = re.compile(
    r"(?:policy|policies|status|process|procedure|rules|terms|form|options?|eligibility|details|timeline"
    r"|time|times|period|window|question|questions|info|information|amount|request\s+status|page|faq|team"
    r"|department)\b"
)


@dataclass(frozen=True)
class _Verbs:
    any: re.Pattern[str]
    """The verb in any form: refund, refunds, refunded, refunding, refundable."""
    base: re.Pattern[str]
    """The bare verb or noun, as an instruction uses it."""
    past: re.Pattern[str]
    stop: re.Pattern[str]
    """A stopper aimed at the action: "cancel the refund"."""
    causative: re.Pattern[str]
    """The past participle asked for, not told of: "could I get the retry charge refunded?"."""


def _verbs(verbs: Sequence[str]) -> _Verbs:
    words = sorted({v.strip().lower() for v in verbs if v and v.strip()}, key=len, reverse=True)
    parts = [r"\s+".join(re.escape(w) for w in v.split()) for v in words] or [r"(?!x)x"]
    alt = "|".join(parts)
    return _Verbs(
        any=re.compile(rf"\b(?:{alt})(?:s|es|ed|d|ing|able|ability|ment|ments)?\b"),
        base=re.compile(rf"\b(?:{alt})s?\b(?!-)"),
        stop=re.compile(rf"\b{_STOPPERS}(?:\s+[\w'-]+){{0,2}}?\s+(?:{alt})"),
        past=re.compile(rf"\b(?:{alt})(?:ed|d)\b"),
        causative=re.compile(
            rf"\b(?:get|getting|have|having)\s+(?:[\w$.,'@-]+\s+){{1,8}}?(?:{alt})(?:ed|d)\b"
        ),
    )


def _clause_intent(clause: str, v: _Verbs) -> tuple[IntentKind | None, str]:
    """One clause's kind and reason; None when the clause does not mention the action."""
    found = v.any.search(clause)
    said = f"“{clause.strip()[:80]}”"
    if found is None:
        if _OTHER_THING.match(clause):
            return None, ""
        if m := _STOP_ANY.search(clause) or _RETRACT.search(clause):
            return "refuse", f"says not to act ({m.group(0).strip()!r}) in {said}"
        return None, ""
    if m := _NEGATION.search(clause) or v.stop.search(clause) or _RETRACT.search(clause):
        return "refuse", f"negated ({m.group(0).strip()!r}) in {said}"
    if m := _RESTRICTED.search(clause):
        return "refuse", f"only asks for information ({m.group(0).strip()!r}) in {said}"
    if m := _STATUS.search(clause):
        return "refuse", f"asks about an existing {found.group(0)} ({m.group(0).strip()!r}), not for one"
    if v.past.search(clause) and not _WISH.search(clause) and not v.causative.search(clause):
        return "refuse", f"tells of a past {found.group(0)} in {said}, asks for none"
    if m := _HYPOTHETICAL.search(clause):
        return "confirm", f"hypothetical or conditional ({m.group(0).strip()!r}) in {said}"
    if m := _QUESTION.search(clause):
        return "confirm", f"a question ({m.group(0).strip()!r}), not an instruction, in {said}"
    for segment in re.split(r"[,:]", clause):
        if _instruction(segment, v):
            return "act", f"an explicit instruction: {said}"
    return "confirm", f"mentions {found.group(0)!r} without a clear instruction in {said}"


def _instruction(segment: str, v: _Verbs) -> bool:
    """Rule 6 on one comma-separated segment: an imperative, a directive, or a wish for the action."""
    opening = re.match(rf"\s*{_FILLER}", segment)
    start = opening.end() if opening else 0
    rest = segment[start:]
    verb = v.base.match(rest)
    if verb is not None:
        after = rest[verb.end() :].strip(" !.")
        return _aimed(after, v) and bool(after or _POLITE.search(segment[:start]))
    leads: list[tuple[str, int]] = []
    if directive := _DIRECTIVE.match(rest):  # "process the refund", "issue a refund for CH-2033"
        leads.append((rest, directive.end()))
    if wish := _WISH.search(segment):  # "I want a refund", "I need you to refund it"
        leads.append((segment, wish.end()))
    for words, end in leads:
        between = re.match(rf"((?:\s+[\w$.'@-]+){{0,4}}?)\s+({v.base.pattern})", words[end:])
        if between and not _ABOUT.search(between.group(1)) and _aimed(words[end + between.end() :], v):
            return True
    return False


def _aimed(after: str, v: _Verbs) -> bool:
    """The words after the verb make it an action, not a topic ("refund policy") or a list of verbs."""
    after = after.strip()
    return not _TOPIC.match(after) and not v.any.match(after)


# --- a reply to an offer: yes, no, or something else -------------------------------------------

_YES_PHRASES = re.compile(
    r"\b(?:yes+|yeah|yea|yeh|yah|ya|yh|yep|yup|aye|sure|ok|okay|okey|okie|k|kk|alright|all\s+right|go\s+ahead|go\s+for\s+it|proceed"
    r"|go\s+on(?=\s*(?:then\b|[,.!]|$))"
    r"|do\s+it|please\s+do|confirm|confirmed|approve|approved|affirmative|agreed|absolutely|definitely"
    r"|certainly|of\s+course|sounds\s+good|that\s+works|works\s+for\s+me|fine\s+by\s+me|let'?s\s+do\s+it"
    r"|let'?s\s+go|make\s+it\s+so|why\s+not)\b"
)
_REPLY_FILLERS = frozenset(
    [
        "please",
        "thing",
        "with",
        "that",
        "it",
        "this",
        "that's",
        "thats",
        "then",
        "now",
        "so",
        "and",
        "just",
        "right",
        "away",
        "ahead",
        "thanks",
        "thank",
        "you",
        "for",
        "me",
        "the",
        "one",
        "go",
        "do",
        "great",
        "perfect",
        "cool",
        "fine",
        "good",
        "lovely",
        "sounds",
        "works",
        "sure",
        "yes",
        "go",
        "on",
        "kindly",
    ]
)
"""Words a yes may carry and still be only a yes ("sure thing, please proceed with that", "yes, that's
right, go ahead")."""


def confirmation(text: str) -> bool | None:
    """A reply to an offer, read as the user wrote it: True a yes in any of its usual words ("yeah
    ok", "sure thing, please proceed", "ok go ahead with that", "confirmed, do it"), False a no
    ("no", "no thanks", "don't", "not now", "hold off"), None anything else: a question, a request of
    its own ("yes, and what time is it in Oslo"), or a yes with a negation in it ("yes, but don't").

    Fail safe like `side_effect_intent`: only a message made of yes words and fillers is a yes.
    """
    if not isinstance(text, str):
        return None
    said = _normalise(text).strip()
    if not said or len(said) > 80:
        return None
    negated = _NEGATION.search(said) or _STOP_ANY.search(said) or _RETRACT.search(said)
    yes = _YES_PHRASES.search(said)
    if negated:
        return False if yes is None and "?" not in said else None
    if yes is None or "?" in said:
        return None
    rest = _YES_PHRASES.sub(" ", said)
    words = re.findall(r"[a-z']+", rest)
    return True if all(w in _REPLY_FILLERS for w in words) else None


def turns_down(text: str, verbs: Sequence[str]) -> bool:
    """Whether `text` turns the action down: a clause that names it negates, stops or retracts it, or
    asks only for information ("no need to send money back", "don't refund, just check", "just tell
    me if I was charged twice"), or a clause says not to act ("don't do anything yet"). Rules 1 and 2
    of `side_effect_intent`; a status question or a past action ("can CH-2004 be refunded?", "was it
    refunded?") turns nothing down. Never raises: on failure, True."""
    try:
        v = _verbs(verbs)
        for clause in _clauses(_normalise(text if isinstance(text, str) else str(text))):
            if v.any.search(clause) is None:
                if not _OTHER_THING.match(clause) and (_STOP_ANY.search(clause) or _RETRACT.search(clause)):
                    return True
            elif (
                _NEGATION.search(clause)
                or v.stop.search(clause)
                or _RETRACT.search(clause)
                or _RESTRICTED.search(clause)
            ):
                return True
    except Exception:  # fail safe: a bug here must never become a side effect
        return True
    return False


def side_effect_intent(text: str, verbs: Sequence[str]) -> Intent:
    """Whether `text` explicitly asks for the action named by `verbs` (see the module docstring).

    `act` only on an explicit instruction; `confirm` for questions, hypotheticals, polite
    questions and anything unclear; `refuse` for negations, information-only requests, status
    questions and requests that do not mention the action. Never raises: on failure, `refuse`.
    """
    try:
        v = _verbs(verbs)
        kinds: list[tuple[IntentKind, str]] = []
        for clause in _clauses(_normalise(text if isinstance(text, str) else str(text))):
            kind, reason = _clause_intent(clause, v)
            if kind is not None:
                kinds.append((kind, reason))
    except Exception as exc:  # fail safe: a bug here must never become a side effect
        return Intent("refuse", f"could not read the request ({type(exc).__name__})")
    name = verbs[0] if verbs else "act"
    if not kinds:
        return Intent("refuse", f"no request to {name}")
    acts = [r for k, r in kinds if k == "act"]
    refusals = [r for k, r in kinds if k == "refuse"]
    if len(acts) == len(kinds):
        return Intent("act", acts[0])
    if refusals and not acts:
        return Intent("refuse", refusals[0])
    if refusals:
        return Intent("confirm", f"conflicting: {acts[0]}; but {refusals[0]}")
    confirm = next(r for k, r in kinds if k == "confirm")
    return Intent("confirm", confirm)
