"""Clauses: the pieces of a request that are scored on their own, so one message can select several
capabilities ("play some jazz and set a timer")."""

from __future__ import annotations

import re
from collections.abc import Sequence

_CLAUSE_SPLIT = re.compile(
    r"[?!;.]+\s+|[?!;]+$|[()]|:\s+|\s+[-\u2013\u2014+&]+\s+"
    r"|(?<!\bi'd)(?<!\bwe'd)(?<!\bi)(?<!\bwe)(?<!\byou)(?<!\bwould)(?<!\bcould)(?<!\bcan)(?<!\bwill)"
    r"\s+(?:and also|also|and then|and|plus|as well as)\s+|,\s+(?=[\w']+\s+\w+|[\w.%+-]+@[\w-]+\.)",
    re.I,
)

CLAUSES = 6
"""Part of the tune fingerprint when clauses are split: bumped when the splitting changes (2: a
single word followed by punctuation is a clause, other lone words join a neighbour; 3: a leading
"and", "also", "then" is dropped from a clause; 4: a comma splits before a contraction too, ",
I'm jane@acme.io"; 5: a dash, "+" or "&" between spaces splits, "jane@acme.io here - the app is
down", and a leading "btw", "by the way", "separately" is dropped; 6: an e-mail address or customer
id standing alone after a clause is a clause of its own, "How does that even happen?? jane@acme.io",
and a comma before an e-mail address splits), so curves fitted on the old clauses are set aside."""

IDENTIFIER = re.compile(
    r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+|\bc-?\d{3,}\b"
    r"|\b(?P<lead>(?:customer|client|account|acct)\.?(?:\s+(?:number|no\.?|num|id))?(?:\s+is)?)"
    r"\s*[:#]?\s*#?\d{3,}\b",
    re.I,
)
"""An e-mail address or a customer id, in the forms people write it: C-1004, c1004, "customer 1007",
"customer no. 1003", "acct #1005", "Account number 1008", "our customer number is 1009" (the word
before the number goes with it). Not an invoice or charge id (INV-3033, CH-2034), which names what a
request is about."""
_IDENTIFIER = IDENTIFIER


def without_identifiers(text: str) -> str:
    """The text without its e-mail addresses and customer ids; the word that introduced an id stays
    ("when account #1001 renews" -> "when account renews": the account is still what is asked about,
    the number only which one)."""
    return " ".join(IDENTIFIER.sub(lambda m: f" {m.group('lead') or ''} ", text).split())


_INTRODUCTION = re.compile(
    r"^(?:(?:hi|hello|hey|dear \w+)\W+)?(?:i'm|i am|im|this is|it's|my name is|we're|we are)\s", re.I
)
_JOINERS = (
    r"and|also|then|plus|so|but|ok|okay|oh|btw|by\s+the\s+way|separately|additionally|besides|anyway"
    r"|lastly|finally|one\s+more\s+thing|(?:and\s+)?while\s+(?:you'?re|you\s+are)\s+at\s+it|p\.?s\.?"
)
"""Discourse markers that join a clause to what came before ("..., and", "Also,", "btw", "by the way",
"separately", "while you're at it"): they say a second need follows, not what it is."""
_LEADING_JOINER = re.compile(rf"(?:(?:{_JOINERS})\b[\s,:]*)+", re.I)
"""Words that join a clause to the one before it (after a comma or a full stop): not part of its need."""
_SELF_WORDS = frozenset(
    {"i", "i'm", "im", "am", "this", "is", "it's", "my", "our", "email", "e-mail", "address"}
    | {"customer", "account", "client", "id", "number", "we", "we're", "are", "from", "here", "name"}
    | {"me", "at", "of", "the", "hi", "hello", "hey", "dear", "thanks", "regards"}
)
"""Words an introduction is made of, besides the e-mail, id or name it gives."""


def clause_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the text's clauses (not the whole text itself): pieces of at least two
    words, and single words followed by punctuation ("Yes, ...", "Hi, ...", "No. ...", "Thanks!").

    A dialogue act often takes one word in front of the request ("Yes, refund the £27"): as a
    clause of its own it is scored on its own, so `affirm` or `greet` can be selected next to the
    request. Any other lone word ("cats and dogs", "cancel my order and refund", an e-mail address
    after the question) stays with the clause next to it, so the clauses cover every word: MiniLM
    pools the request's own vector from them, and a word in no clause would be dropped from it.
    """
    spans: list[list[int]] = []
    start = 0
    lone: int | None = None  # where a leading lone word starts, until the next clause takes it
    for sep in [*_CLAUSE_SPLIT.finditer(text), None]:
        end = sep.start() if sep is not None else len(text)
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip())
        left, right = start + lead, start + len(piece.rstrip())
        punctuated = sep is not None and sep.group()[:1] in ",.!?;:"
        if right > left:
            alone = (
                bool(spans) and lone is None and bool(IDENTIFIER.fullmatch(text[left:right].strip(" .,!?;:")))
            )
            if len(text[left:right].split()) >= 2 or punctuated or alone:
                # "How does that even happen?? jane@acme.io": the address only says who asks
                spans.append([left if lone is None else lone, right])
                lone = None
            elif spans:
                spans[-1][1] = right  # a lone word stays with the clause before it
            elif lone is None:
                lone = left
        if sep is not None:
            start = sep.end()
    if lone is not None:
        spans.append([lone, len(text.rstrip())])
    for span in spans:  # "..., and is the dashboard down?" / "... . Also, how do I ...": the need alone
        if (joiner := _LEADING_JOINER.match(text, span[0], span[1])) and joiner.end() < span[1]:
            span[0] = joiner.end()
    return [(a, b) for a, b in spans if text[a:b] != text.strip()]


_REQUEST = re.compile(
    rf"^\W*(?:\d{{1,2}}[.)]\s*)?(?:(?:{_JOINERS})\b[\s,:]*)*(?:"
    r"please|pls|kindly|can|could|would|will|may|shall|should|is|are|was|were|am|did|do|does|have|has"
    r"|what|what's|whats|why|how|when|where|which|who|whose"
    r"|check|show|list|tell|give|send|explain|find|look|pull|fetch|confirm|verify|let|help|walk|go"
    r"|refund|open|file|raise|log|create|escalate|cancel|return|reverse|process|issue|resend|remind"
    r"|update|change|reset|upgrade|downgrade|add|remove|quote|price|compare|recommend|describe|clarify"
    r"|(?:i|we)(?:'d|\s+would)\s+(?:also\s+|really\s+)?like"
    r"|(?:i|we)\s+(?:also\s+|just\s+|only\s+|\w+ly\s+)?(?:want|need|wish)"
    r")\b",
    re.I,
)


_HOW_TO = re.compile(
    rf"^\W*(?:(?:{_JOINERS})\b[\s,:]*)*(?:(?:can|could|would)\s+you\s+(?:please\s+)?(?:tell|show|explain)\s+(?:me|us)\s+)?"
    r"(?:(?:[\w']+\s+){0,4}?(?:wants?|needs?|would\s+like|'d\s+like|wondering|wonder)\s+(?:to\s+know\s+)?(?=how\b))?"
    r"(?:"
    r"how\s+(?:do|can|could|should|would|does|is|are)\s+(?:i|we|you|one|someone|somebody|people|a\s+\w+|an\s+\w+)\b"
    r"|how\s+long\s+(?:does|do|will|would|should)\b"
    r"|(?:tell|show|explain\s+to|teach)\s+(?:me|us)\s+how\b|how\s+to\b"
    r"|(?:what\s+are|what's|whats|what\s+is)\s+the\s+(?:steps|process|procedure|way)\b"
    r"|(?:is|are)\s+there\s+(?:an?\s+|any\s+)?(?:\w+\s+)?(?:article|guide|doc|docs|documentation|tutorial|help\s+page|walkthrough)s?\b"
    r"|(?:point|link|direct|send)\s+(?:me|us)\s+to\s+(?:the|a|an|your)\s+(?:\w+\s+)?"
    r"(?:article|guide|doc|docs|documentation|tutorial|help|page)"
    r"|where\s+(?:in\s+[\w\s]{1,20}?\s+)?(?:do|can|could|should)\s+(?:i|we)\b"
    r"|(?:what(?:'s|\s+is)|whats)\s+(?:your|ur|the)\s+policy\b"
    r")",
    re.I,
)


def asks_how_to(piece: str) -> bool:
    """Whether a clause asks how to do something or where it is written down: "how do I ...", "how
    can we ...", "tell me how to ...", "what are the steps ...", "is there an article on ...",
    "point me to the guide on ...", "where (in the settings) can I ...", "what's your policy on ...".
    The form, not the topic: the help centre answers it whatever it is about (`classifier.how_to_owner`
    finds which capability's guide is made of such questions), also asked for someone ("my developer
    wants to know how to ...") or how long a process takes ("how long does a refund take"). Not "how
    much", "how many", "how long has it been down" or "how does that happen" (a price, a count, an
    outage, a complaint)."""
    return bool(_HOW_TO.match(piece))


_NAME = r"(?P<name>[\w.&'+-]+(?:\s+[\w.&'+-]+){0,2}?)"
_TROUBLE = (
    r"(?:down|out|offline|broken|not\s+working|having|experiencing|failing|slow|timing\s+out|acting\s+up"
    r"|been\s+down|had\s+(?:an?\s+)?(?:outage|issues?|problems?|trouble))"
)
_LEAD = rf"^\W*(?:(?:{_JOINERS})\b[\s,:]*)*"
_SUBJECTS = (
    re.compile(rf"{_LEAD}(?:is|are|has|have|was|were)\s+{_NAME}\s+{_TROUBLE}\b", re.I),
    re.compile(
        rf"{_LEAD}{_NAME}\s+(?:(?:is|are|was|were|has|have)\s+(?:been\s+)?{_TROUBLE}|keeps?\s+\w+ing"
        r"|kept\s+\w+ing|(?:won'?t|wont|isn'?t|aren'?t|can'?t|cannot|doesn'?t|does\s+not)\s+"
        r"(?:load|work|open|connect|sync|start|respond)|charged|billed|took|cancell?ed|crashed|went\s+down)\b",
        re.I,
    ),
)
_NOT_A_NAME = frozenset(
    {"the", "a", "an", "my", "our", "your", "his", "her", "their", "its", "this", "that", "these", "those"}
    | {"it", "they", "we", "you", "i", "he", "she", "everything", "anything", "something", "nothing"}
    | {"someone", "everyone", "nobody", "all", "some", "any", "no", "there", "what", "which", "who"}
    | {"was", "were", "is", "are", "be", "been", "being", "got", "get", "gets", "just", "still", "then"}
)

_SUBORDINATORS = frozenset(
    {"while", "when", "whenever", "since", "after", "because", "as", "once", "before", "if"}
)
"""Words that open a subordinate clause before its subject ("While you were out", "If Slack is down"):
no part of a name."""


def named_subject(piece: str) -> list[str]:
    """The words of what a clause says is down, failing or charging ("is AWS having an outage",
    "github keeps timing out", "Netflix charged me twice", "has Outlook had an outage"): a name in the
    subject slot of trouble or a charge, not a pronoun or a determined noun ("the API is down", "it
    keeps failing", "our exports are slow"). [] when the clause has no such form. Whether the name is
    one the registry knows is the classifier node's question (`classifier.foreign_subject`)."""
    match = next((m for m in (p.match(piece) for p in _SUBJECTS) if m), None)
    if match is None:
        return []
    words = [w.strip(".'") for w in match.group("name").split()]
    if words and words[0].lower() in _SUBORDINATORS:  # "While you were out: ...", "When AWS is down"
        words = words[1:]
    if not words or re.split(r"['\u2019]", words[0].lower())[0] in _NOT_A_NAME:  # "you've charged us"
        return []
    return [w for w in words if w]


_MARKED = re.compile(rf"(?:^|\W)(?:{_JOINERS})\W*$", re.I)


def another_need(text: str, piece: str) -> bool:
    """Whether a discourse marker ("also", "btw", "while you're at it", "separately") joins the clause
    `piece` of `text` to what came before: it says a need of its own follows, not more of the same."""
    at = text.find(piece)
    return at > 0 and bool(_MARKED.search(text[:at]))


def reads_as_request(piece: str, following: str = "") -> bool:
    """Whether a clause asks for something: a question (a question word or an auxiliary first, or a
    "?" after it, `following` being the text after the clause), an imperative ("check ...", "show me
    ...", "please ..."), or "I want/need/would like ...". Not: a statement of what happened ("I was
    charged for a seat I never used", "we cancelled the day after renewal"), which gives a reason
    for a request rather than a need of its own."""
    return bool(_REQUEST.match(piece)) or following.lstrip()[:1] == "?"


_SUBORDINATE = re.compile(
    r"^\W*(?:(?:and|but|so)\s+)?(?:when|whenever|since|after|because|as|although|though|once|while|before)\b",
    re.I,
)


_WHEN_ASKED = re.compile(
    r"^\W*(?:(?:and|but|so)\s+)?(?:(?:since|until|till)\s+)?when\s+"
    r"(?:does|do|did|is|are|was|were|will|would|can|could|has|have|had|should|shall)\b",
    re.I,
)
""""when" before an auxiliary, the order of a question ("when does the subscription renew, and ..."),
not of a subordinate clause ("when I checked the card ...")."""


def sets_the_scene(piece: str, following: str = "") -> bool:
    """Whether a clause says what happened rather than asks: a statement (`reads_as_request` false),
    or one opened by a subordinating word and not followed by a question mark ("When I checked the
    card there were two payments.", "since the renewal went through"). "when does it renew?" asks,
    and so does "when does it renew, and ..." without its question mark (`_WHEN_ASKED`)."""
    if not reads_as_request(piece, following):
        return True
    return bool(_SUBORDINATE.match(piece)) and following.lstrip()[:1] != "?" and not _WHEN_ASKED.match(piece)


def mentions_identifier(piece: str) -> bool:
    """Whether a clause gives an e-mail address or a customer id (`_IDENTIFIER`)."""
    return bool(_IDENTIFIER.search(piece))


def introduces_only(piece: str) -> bool:
    """Whether a clause only says who is asking: "I'm jane@acme.io", "customer C-1004", "my email is
    omar@brightpath.co", "Hi, I'm Sofia Rossi", "this is Priya from Nimbus Labs".

    Such a clause names no need: scored on its own, an id or a name resembles the examples of the
    capability that looks customers up, and selects it next to the one the request needs."""
    words = [w.strip(",.!?:;()'\"") for w in _IDENTIFIER.sub(" ", piece).split()]
    rest = [w for w in words if w and w.lower() not in _SELF_WORDS]
    names = len(rest) <= 4 and all(w[:1].isupper() for w in rest)
    if _IDENTIFIER.search(piece):
        return names
    return bool(_INTRODUCTION.match(piece.strip())) and bool(rest) and names


_FUNCTION_WORDS = (
    _SELF_WORDS
    | {"and", "also", "then", "plus", "what", "what's", "whats", "about", "how"}
    | {
        "for",
        "same",
        "with",
        "please",
        "pls",
        "too",
        "again",
        "that",
        "one",
        "there",
    }
)


def need_words(text: str) -> list[str]:
    """The words of a text that can name a need: three letters or more, not an introduction's
    ("I'm", "my email is") nor a follow-up's ("and", "what about", "same for"). "and C-1009?" without
    its id has none; "sofia@x.it here - the dashboard wont load" has four."""
    return [
        w for w in re.findall(r"[A-Za-z][\w'-]*", text) if len(w) >= 3 and w.lower() not in _FUNCTION_WORDS
    ]


def _signature(piece: str) -> bool:
    """A request's last clause made of a name only ("..., Mei Chen", ". Omar, BrightPath.")."""
    words = [w.strip(",.!?:;()'\"") for w in piece.split()]
    rest = [w for w in words if w and w.lower() not in _SELF_WORDS]
    return 0 < len(rest) <= 4 and all(w[:1].isupper() and w[1:].isalpha() for w in rest)


_DECLINED = re.compile(
    r"^\W*(?:(?:but|and|so)\s+)?(?:"
    r"(?:i'?m|i\s+am|we'?re|we\s+are)\s+not\s+(?:asking|looking|after|requesting|interested)"
    r"|(?:i|we)\s+(?:do\s+not|don'?t|dont)\s+(?:want|need|expect|ask)"
    r"|no\s+need|not\s+(?:asking|looking))\b",
    re.I,
)


def declines(piece: str) -> bool:
    """Whether a clause says what the asker does not want ("I don't want a refund", "I'm not
    asking for money back", "no need to ..."): it names a capability only to rule it out, so it is
    never scored as a need of its own (it stays in the request's own vector)."""
    return bool(_DECLINED.match(piece))


_COURTESY_PART = (
    r"(?:hi|hello|hey|hiya|greetings|good\s+(?:morning|afternoon|evening|day)"
    r"|dear\s+(?:[\w-]+\s+){0,2}(?:team|support|sir|madam|all|colleagues|friends|folks)"
    r"|(?:i\s+)?hope\s+(?:you(?:'re|\s+are)?|your\s+[\w\s]{1,20}?(?:is|has\s+been)|all\s+is|everything\s+is"
    r"|this\s+(?:message|email|note)\s+finds\s+you)\b[\w\s']{0,30}?"
    r"(?:well|good|great|fine|nicely|ok|okay|safe|going\s+well)(?:\s+(?:day|week|weekend|time|one))?"
    r"(?:\s+(?:with|for|to)\s+(?:you|yours|everyone|the\s+team))?"
    r"|how\s+are\s+you(?:\s+doing)?(?:\s+today)?|nice\s+to\s+meet\s+you"
    r"|(?:(?:i'?m|i\s+am|we'?re|we\s+are)\s+)?(?:so\s+|very\s+|really\s+)?sorry\s+(?:to|for)\s+"
    r"(?:bother|trouble|disturb|bug|pester)\w*(?:\s+you)?(?:\s+again)?(?:\s+with\s+this)?"
    r"|(?:my\s+)?apologies(?:\s+in\s+advance|\s+for\s+(?:bothering|troubling|disturbing"
    r"|the\s+(?:trouble|bother|delay|long\s+\w+))(?:\s+you)?(?:\s+again)?)?"
    r"|(?:many\s+|thanks?\s+)?thanks?(?:\s+you)?(?:\s+(?:so|very)\s+much|\s+a\s+lot|\s+a\s+million)?"
    r"(?:\s+in\s+advance|\s+for\s+(?:your|the)\s+help(?:\s+[\w\s]{1,20}?)?)?"
    r"|thank\s+you(?:\s+(?:so|very)\s+much)?(?:\s+in\s+advance|\s+for\s+(?:your|the)\s+help(?:\s+[\w\s]{1,20}?)?)?"
    r"|cheers|much\s+appreciated|(?:kind|best|warm|warmest|many)\s+(?:regards|wishes|thanks)|regards|sincerely"
    r"|have\s+a\s+(?:nice|good|great|lovely)\s+(?:day|week|weekend|one)|take\s+care|all\s+the\s+best"
    # "if it's not too much trouble (for your lovely system)", "if you don't mind"
    r"|if\s+(?:it'?s|it\s+is|that'?s|that\s+is)\s+not\s+(?:too\s+much\s+(?:trouble|bother|work)|a\s+(?:problem|bother))"
    r"(?:\s+for\s+(?:you|your\s+[\w\s]{1,25}?))?|if\s+it\s+isn'?t\s+too\s+much\s+(?:trouble|bother)"
    r"|if\s+you\s+(?:don'?t|do\s+not)\s+mind"
    # a phone message's "Please ring back", "call me back when you can": a reply, not money back
    r"|(?:please\s+|pls\s+|can\s+you\s+|could\s+you\s+)?(?:ring|call|phone)\s+(?:(?:me|us|him|her|them)\s+)?back"
    r"(?:\s+(?:asap|today|tomorrow|soon|when\s+you\s+can))?)"
)
_COURTESY = re.compile(
    rf"(?:{_COURTESY_PART})(?:[\s,!.]+(?:{_COURTESY_PART}))*(?:\s+(?:there|all|team))?", re.I
)


def courtesy(piece: str) -> bool:
    """Whether a clause is only courtesy: a greeting, "hope you're well", "sorry to bother you
    again", thanks, a closing ("Kind regards", "Thank you, Lukas"). A long polite request is made
    of such clauses around its need: scored alone, "I am sorry to trouble you with this" resembles
    the examples of reporting trouble and "Hope your week is going well" those of asking how a
    service is going. Still scored (a registry may have a `greet` or `thank` capability); not read
    as a secondary need by the classifier node, nor kept by `without_courtesy`."""
    words = piece.strip(" ,.;:!?-").split()
    while len(words) > 1 and words[-1].strip(",.!")[:1].isupper():  # "Thank you, Lukas", "Thanks, Mei Chen"
        if _COURTESY.fullmatch(" ".join(words)):
            return True
        words.pop()
    return bool(_COURTESY.fullmatch(" ".join(words).strip(" ,.;:!?-")))


def names_a_need(text: str, spans: Sequence[tuple[int, int]]) -> list[bool]:
    """For each clause of `text` (its `clause_spans`), whether it is scored as a need of its own.

    Not: a clause that only says who is asking (`introduces_only`), a name signing the request off
    (its last clause), one that `declines` something, or a lone joining word ("Also, ..."). They
    stay in the request's own vector (MiniLM pools it from the clauses), but scored alone an id or a
    name resembles the customer-lookup examples, and "I don't want a refund" the refund ones.
    """
    out = []
    for i, (a, b) in enumerate(spans):
        piece = text[a:b]
        joiner = _LEADING_JOINER.fullmatch(piece.strip(" ,.;:!?"))
        signs_off = i == len(spans) - 1 and i > 0 and _signature(piece)
        out.append(not (joiner or introduces_only(piece) or signs_off or declines(piece)))
    return out


def without_courtesy(text: str) -> str:
    """The request without its `courtesy` clauses, introductions and signature: what a long polite
    request asks, scored again when the whole of it, diluted by the courtesy, reached no threshold.
    "" when it is nothing else or has no clauses."""
    spans = clause_spans(text)
    kept = [
        text[a:b]
        for (a, b), need in zip(spans, names_a_need(text, spans), strict=True)
        if (need and not courtesy(text[a:b])) or declines(text[a:b])
    ]
    return ". ".join(p for p in (k.strip(" ,.;:") for k in kept) if p)


def clauses(text: str) -> list[str]:
    """The whole text, then its clauses (`clause_spans`)."""
    return [text, *(text[a:b] for a, b in clause_spans(text))]
