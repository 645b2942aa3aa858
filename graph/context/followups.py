"""Follow-ups: is this turn about what the conversation was about, and what does it ask then?

The thread keeps a topic (`AgentState.context_topic`): the capabilities the last turns ran, each
with the clause of the request it ran for ("what time is it in Tokyo" for clock after "What is
12*7 and what time is it in Tokyo?"). A new message is read against it, offline and in general
(no per-example rules):

- a **candidate** follow-up has a topic to follow and one of: a continuation cue at its start
  ("and", "what about", "same for") on an elliptical turn (at most two content words, or a slot a
  topic clause has), a correction ("no, I meant Berlin", "sorry, C-1006 I mean"),
  anaphora ("it", "that one", "the other charge", "there"), a plain yes, or it is short (at most
  three content words) and carries a slot of a kind a topic clause has ("Berlin?", "C-1005?");
- the classifier's scores on the new words alone (`standalone`) still decide when they clearly
  name a need outside the topic ("ok, and what's 2+2?" after the time): a **switch**, routed on
  its own words;
- otherwise it is a **follow-up** of the topic entries it fits (the one whose clause has a slot of
  the same kind; else the one the new words score highest on; a correction looks at the last turn
  only), routed to those capabilities, and the task is rewritten so the capability sees the old
  inputs with the new slot in place: the slot of the same kind is replaced ("what time is it in
  Paris"), else the new words come first and the old clause after them as context (capabilities
  read the first match), which is how the inputs carry over.

Three classes are settled before that:

- an **arithmetic continuation** ("and minus 7?", "times 3?", "then divide that by 2", "plus tax
  of 8%?", "squared?"): an operator and its operand with nothing else to act on continues the
  latest topic clause that holds an expression: "(15 + 27) - 7";
- an **elliptical slot that fits** (its new words are only slots, one of which replaces a slot of
  the same kind in a topic clause: "sorry, C-1006 I mean", "C-1005?"): the words are too few to
  name another need, so the classifier's reading of them alone cannot make it a switch;
- **anaphora to an item** ("that one", "the last one", "the other one") whose new words the
  classifier gives to a capability with side effects: a question about the action ("can that one
  be refunded?") stays with the topic capability that listed the item; only words that ask for
  the action (`acts`, the router's side-effect intent: "refund that one") switch to it.

Round 2 (heldout3's classes): a yes that names an action ("ok, refund it then") goes to the capability
that acts, with the last clause; a yes after a question about an action ("go ahead with it" after "is
it refundable?") goes to that action; a personal pronoun ("they") binds the customer the topic named;
a definite description ("the retry charge") is an item of the topic's list; "all good?" fillers do
not lengthen an elliptical turn.

Slots are found by their shape: an e-mail address, an identifier (`C-1007`, `CH-2034`), an amount,
an arithmetic expression, a number (also one joined to its unit, "10-seat", or an operand of an
expression), an id given by its kind and digits ("customer 1005"), a capitalised name; lower-case words (a place typed in lower
case) replace the clause's name when there is one. Everything here is pure: the nodes call it.
"""

from __future__ import annotations

import functools
import math
import re
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from graph.intent import confirmation

FollowUpKind = Literal["follow_up", "correction", "confirmation", "switch", "lookup", "new"]

_REPLACE = (
    r"(?:make|change|switch|set|bump|move|update|turn)\s+(?:it|that|this)(?:\s+(?:up|down|over|back))?(?:\s+(?:to|into))?"
    r"|(?:switch|change|go|move)\s+(?:over\s+)?to"
)
"""A verb that puts a new value in the old one's place ("make it 120", "change that to 14", "bump it up
to 110", "switch to C-1008"): a cue, like "and", for an elliptical turn."""
_SOUND = r"hm+|oh|ah|uh|um+|er|right"
"""A sound or an acknowledgement before the new words ("hm, karachi as well", "right, helsinki too")."""
_THANKED = r"cheers|ta|thank you|thx|ty|lovely|perfect|nice|brilliant|awesome|sweet|grand|ace|excellent"
"""Thanks or praise before the new words ("Cheers. And the Faroe Islands?", "lovely, and Lima?")."""
_CUE = re.compile(
    r"^\W*(?:(?:(?:ok(?:ay)?|k+)|so|well|hmm|great|thanks|cool|" + _THANKED + r"|" + _SOUND + r")\W+)*"
    r"(and|n|an'|'n'?|also|plus|or|then|what about|how about|what of|(?:do )?(?:the )?same (?:for|with|but|again|thing for|"
    r"question for|deal for|thing with)|same|dit+o|"
    r"likewise|again|repeat (?:that|it|this)|(?:both(?: of (?:them|those|these))?|(?:the|those) two)(?=[\s,]+(?:again|for|with|in|at|but)\b|\W*$)"
    r"|" + _REPLACE + r")\b",
    re.I,
)
_TAIL_CUE = re.compile(
    r"[\s,]+(?:as well|too|also)(?:[\s,]+(?:please|pls|then|thanks))*[\W_]*$"
    # "the division again with 132 over 8": the same again, with new values
    r"|\bagain\s+(?:with|for|but\s+with|using)\b",
    re.I,
)
"""An additive cue said last ("karachi as well", "lagos too"): like "and" said first."""
_SLIP = r"whoops|oops|argh|ugh|d'?oh|err|erm|ah no|oh no|typo|(?:I\s+)?mis(?:typed|spoke|said)"
"""What a user says on seeing their own slip ("whoops, meant ...", "argh, should've said ...", "typo, ...",
"misspoke, ...")."""
_MEANT = r"(?:I )?meant|should(?:'ve| have) said|should (?:have )?been|(?:it )?should be"
"""A correction said without "I" ("meant the Team plan", "should've said Team")."""
_INTERJECTION = r"(?:(?:oh|ah|uh|um|er|hmm)\W+)?"
"""A sound before a correction ("oh sorry, 200 seats")."""
_CORRECTION = re.compile(
    r"^\W*"
    + _INTERJECTION
    + r"(?:no|nope|sorry|"
    + _SLIP
    + r"|actually|wait|correction|hang on|hold on|my bad|(?:my )?apologies|pardon|excuse me)\b|\bI (?:meant|mean)\b"
    r"|\b(?:he|she|they|we)\s+meant\b"
    r"|\bmeant to (?:say|ask)\b|^\W*(?:" + _MEANT + r")\b|\binstead\b|\brather\b"
    r"|\bwrong (?:one|id|customer|account|number|city|person)\b",
    re.I,
)
_CORRECTION_WORDS = re.compile(
    r"^\W*"
    + _INTERJECTION
    + r"(?:(?:no|nope|sorry|"
    + _SLIP
    + r"|actually|wait|correction|hang on|hold on|my bad|(?:my )?apologies|pardon|excuse me|I meant|I mean|"
    r"(?:he|she|they|we)\s+meant|"
    r"meant to (?:say|ask)|" + _MEANT + r"|rather|instead|not that|(?:that's |that was )?(?:the )?wrong "
    r"(?:one|id|customer|account|number|city|person))\W+)+",
    re.I,
)
_TRAILING_CORRECTION = re.compile(r"\W+(?:I mean|I meant|instead|rather|actually)\W*$", re.I)
_ANAPHORA = re.compile(
    r"\b(it|its|that|this|those|these|they|them|their|there|the other(?: one)?|that one|this one|"
    r"the last one|the same|same one|he|him|his|she|her|hers)\b",
    re.I,
)
_MORE_OF_IT = re.compile(
    r"\b(?:tell|telling|told|say|saying|hear|share|sharing|post|posting|give|giving)\s+(?:(?:us|me|them)\s+)?"
    r"(?:any\s*)?more\b(?!\s+(?:than|seats?|people|users|members))"
    r"|\bmore\s+(?:news|info|information|details|updates?)\b",
    re.I,
)
"""A request for more of what the last answer told ("when are you telling us more?", "any more news?"):
like "it", it points back at the topic."""
_PERSONAL = re.compile(
    r"\b(they|them|their|theirs|he|him|his|she|her|hers)\b|\b(?:that|this|the same)\s+(?:customer|client|user|"
    r"person|guy|company|workspace|org|organi[sz]ation|business|account holder)\b",
    re.I,
)
"""Pronouns for a person or a customer (not "it": a thing), and a demonstrative with the kind of thing
an identifier names ("that workspace", "this customer")."""
_ACK = (
    r"(?:(?:great|perfect|cool|nice|excellent|good|thanks|thank you|(?:ok(?:ay)?|k+)|right|"
    r"s[ií]|claro|vale|dale|adelante|oui|ja|sim|d'accord)\W+)*"
)
"""An acknowledgement of the answer before the yes itself ("great, do that for him", "perfect, go ahead"), also
one in the user's first language ("sí, adelante, go ahead", "oui, go ahead"): the yes itself is English."""
_YES = re.compile(
    r"^\W*"
    + _ACK
    + r"(yes+|yeah|yea|yeh|yah|ya|yh|yep|yup|aye|sure|ok(?:ay)?|alright|all right|go ahead|do (?:it|that|so)|please do|"
    r"confirm(?:ed)?|approved?|sounds good|let'?s do it)\b",
    re.I,
)
_GO_AHEAD = re.compile(
    r"\b(do (?:it|that|so)|go ahead|go for it|yes+|yeah|yea|yeh|yah|ya|yh|yep|yup|aye|sure|please do|proceed|confirm(?:ed)?)\b",
    re.I,
)
"""A yes that asks to carry on (not a bare "ok", which may only acknowledge an answer)."""
_WHO = r"(?:i|we|you|he|she|they|someone|somebody|one|(?:the\s+)?(?:user|customer|client|admin|owner)s?)"
"""Who does it: the user, or the person the conversation is about ("how would he swap the card himself?")."""
_HOW_TO = re.compile(
    r"\bhow\s+(?:do|does|can|could|should|would)\s+" + _WHO + r"\b|\bhow\s+to\b"
    # without its "do" ("how I download one of them as PDF?"): a verb in its base form after the person
    r"|\bhow\s+(?:i|we)\s+(?!(?:am|was|were|is|are|have|has|had|got|get\s+charged|did|feel|felt|know|knew"
    r"|think|thought|said|see|saw)\b)[a-z]+(?<!ed)\b"
    r"|\bwhere\s+(?:do|does|can|could|would|should)\s+" + _WHO + r"\b"
    r"|\bwhere\s+(?:is|are|'s|would\s+i\s+find)\b.*\b(?:settings?|menu|page|app|dashboard|console|screen|profile)\b"
    r"|\b(?:can|could|would|will|do|does|should)\s+"
    + _WHO
    + r"\b[^?.!;]*?\b(?:(?:my|our|him|her|them)sel(?:f|ves)|"
    r"themself|on\s+(?:my|our|his|her|their)\s+own|without\s+(?:us|support|help))\b",
    re.I,
)
"""A question how to do something oneself ("how do I do that myself?", "where is that in the settings?",
"can he sort it himself?", "could they change it on their own?")."""
_SAME = re.compile(
    r"^\W*(?:(?:(?:ok(?:ay)?|k+)|so|and|then|now|great|thanks|cool)\W+)*(?:(?:do )?(?:the )?same\b|dit+o\b|likewise\b)",
    re.I,
)
"""A cue that says the need is the same ("same for", "do the same for", "ditto", "likewise")."""
_OWN_QUESTION = re.compile(
    r"[,;:-]\s*(?:so\s+|and\s+)?(?:how|what|when|where|which|who|why|is|are|does|do|did|can|could|will|would)\b"
    r"(?:\W+\w+){2,}",
    re.I,
)
"""A question asked in full after the new words' subject ("..., how long do they keep trying?")."""
_LOOKUP = re.compile(
    r"^\W*(?:(?:please|pls|plz|(?:ok(?:ay)?|k+)|now|and|also|then|can you|could you|would you)\W+)*"
    r"(?:look\s*up|pull\s+up|bring\s+up|find|fetch|open|search(?:\s+for)?|show(?:\s+me)?|get\s+me)\b",
    re.I,
)
"""A request that only names a thing to look up ("look up C-1004", "pull up c-1008 for me")."""
_LOOKUP_REST = frozenset(["for", "me", "us", "as", "well", "too", "also", "the", "please", "real", "quick"])
_NEGATION_WORD = re.compile(r"\b(?:not|no|never|don'?t|do not|stop|cancel|hold off)\b|n't\b", re.I)
_LEAD = re.compile(
    r"^\W*(?:(?:(?:ok(?:ay)?|k+)|so|well|hmm|great|thanks|cool|"
    + _THANKED
    + r"|"
    + _SOUND
    + r"|and|n|an'|'n'?|also|plus|or|then|now|what about|how about|"
    r"what of|(?:do )?(?:the )?same (?:for|with|but|again|thing for|question for|deal for|thing with)|same|dit+o|"
    r"likewise|again|repeat (?:that|it|this)|(?:both(?: of (?:them|those|these))?|(?:the|those) two)(?=[\s,]+(?:again|for|with|in|at|but)\b|\W*$)|"
    r"(?:" + _REPLACE + r")|for|in|at|on|with|the)\W+)+",
    re.I,
)
_ITEM = re.compile(
    r"\b(?:that|this|the other|the (?:last|first|latest|most recent|previous|second|third|\w+ed)) ones?\b|"
    r"\bthe other\b",
    re.I,
)
"""Anaphora to one item of a list an answer gave ("the last one", "the declined one", "the other")."""
_ITEM_OF = (
    r"|\b(?:one|any|some|each|all|either|neither|none|which|both) of (?:them|those|these)\b|\bwhich one\b"
)
_ITEM_DESCRIBED = (
    r"|\bthe\s+(?!one\b)(?:[$\w.,'’-]+\s+){1,2}?ones?\b(?!\s+(?:of|more)\b)"
    r"|\b(?:that|this)\s+(?!(?:one|is|was|are|were|makes?|leaves?|takes?|gives?|has|had|costs?|means?|needs?"
    r"|would|will|could|should|can|must|may|might)\b)[$\w.,'’-]+\s+ones?\b(?!\s+(?:of|more)\b)"
    r"|\bthe\s+ones?\s+(?:from|on|in|of|for|with|at|dated|charged|billed|that|which|paid|made|taken|last|before|after)\b"
)
"""One of the things an answer listed, picked by a description ("the seat one", "the november one",
"the $36 one", also with a demonstrative: "that last one", "this small one") or by what it was ("the
one from last month", "the one on the 3rd", "the one for the seats"): "one" stands for an item of that
list, whichever capability the description's words suggest."""
_ITEM = re.compile(_ITEM.pattern + _ITEM_OF + _ITEM_DESCRIBED, re.I)
_NEGATED = re.compile(
    r"[,;]?\s*\b(?:not|rather than|instead of)\s+(?:the|my|a|an|their|our|your|his|her)\b[^,.;!?]*", re.I
)
"""What a correction rules out ("..., not the invoices"): dropped before the new words are read."""
_WITHDRAW = re.compile(
    r"^\W*(?:(?:no|nope|nah|ok(?:ay)?|actually|wait|sorry|oh|hmm)\W+)*"
    r"(?:never\s?mind|forget (?:it|that|about (?:it|that))|cancel that|scratch that|ignore that|disregard that)"
    r"\b[\W_]*",
    re.I,
)
"""The user withdraws the last request; what follows (if anything) is a request of its own."""
_ASIDE = re.compile(
    r"[\s,;-]*\b(?:while (?:you'?re|you are) at it|if you (?:can|could|don'?t mind)|if possible|"
    r"when you (?:get a chance|can|have a (?:sec|second|minute|moment))|if (?:that'?s|it'?s) (?:ok(?:ay)?|alright|possible))"
    r"\b[\s,;.!-]*",
    re.I,
)
"""An aside that asks for nothing ("while you're at it", "if you can"): its "it" is no anaphora."""
_SWITCH = re.compile(
    r"^\W*(?:(?:(?:ok(?:ay)?|k+)|so|and|also|now|right|alright|oh|thanks|great)\W+)*"
    r"(?:(?:a|one|on an?|and an?)\s+)?(?:(?:totally|completely|entirely)\s+)?"
    r"(?:(?:different|separate|unrelated|new|other)\s+(?:thing|question|topic|matter|subject|issue|note)"
    r"|separately|unrelated(?:ly)?|changing (?:the )?(?:subject|topic)|change of (?:subject|topic)|switching gears)"
    r"\b[\s:,;.!-]*(?:but\b[\s,]*)?",
    re.I,
)
"""The user says the turn is about something else ("different thing:", "separately,", "unrelated, but")."""
_PREFACE = re.compile(r"^[^:?!\d@]{3,80}:\s+")
"""Words before a colon that open the message ("Strike while the iron's hot: ...", "Same drill:")."""
_NUM = r"(\d+(?:\.\d+)?)"
_MORE = r"(?:(?:another|a further|an extra|an additional|further|extra)\s+)?"
""""minus another 53", "plus a further 23": the operand is added to what the total already holds."""
_CONT_LEAD = re.compile(
    r"^[\s,.;:!?]*(?:(?:(?:ok(?:ay)?|k+)\b|so|and|then|now|also|next|what about|how about)(?:[\s,.;:!?]+|(?=[-+*/x×^]))*)*",
    re.I,
)
"""The words before an operator ("and", "now"): never the operator itself ("now / 8", "then * 3")."""
_THAT = r"(?:(?:that|it|this|the result|the total|the answer)\s+)?"
_CONTINUATIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.I), template)
    for p, template in (
        (
            rf"^(?:plus|add|\+)\s+(?:an?\s+|the\s+)?(?:[a-z]+\s+){{0,2}}?(?:of\s+)?{_NUM}\s*(?:%|percent)",
            "* (1 + {0}/100)",
        ),
        (
            rf"^(?:minus|less|take off|subtract|-)\s+(?:an?\s+|the\s+)?(?:[a-z]+\s+){{0,2}}?(?:of\s+)?{_NUM}\s*(?:%|percent)",
            "* (1 - {0}/100)",
        ),
        (rf"^(?:plus|\+|add)\s*{_MORE}{_NUM}", "+ {0}"),
        (rf"^(?:minus|less|-|subtract|take away)\s*{_MORE}{_NUM}", "- {0}"),
        (rf"^(?:times|\*|×|multiplied by|multiply\s+{_THAT}by)\s*{_NUM}", "* {0}"),
        (rf"^(?:divided by|/|÷|over|divide\s+{_THAT}by)\s*{_NUM}", "/ {0}"),
        (
            rf"^(?:to the power of|\^|\*\*|raised to(?: the power of)?|raise\s+{_THAT}to(?: the power of)?)\s*{_NUM}",
            "** {0}",
        ),
        (r"^(?:squared|square\s+(?:that|it|the result))\b", "** 2"),
        (r"^(?:cubed)\b", "** 3"),
        (r"^(?:double|twice)\s+(?:that|it|the result)\b", "* 2"),
        (r"^half\s+(?:of\s+)?(?:that|it|the result)\b", "/ 2"),
    )
)
_BACK = (
    r"(?:to|from|onto|on|off|of)\s+(?:(?:that|it|this)(?:\s+(?:number|result|total|answer|figure|sum|amount|value))?"
    r"|the\s+(?:number|result|total|answer|figure|sum|amount|value))"
)
"""Where an operand goes: back onto the result ("plus 75 to that number", "subtract 44 from the result")."""
_UNIT = (
    r"(?:\s*(?!(?:then|now|please|instead|again|more|to|from|onto|on|off|of|and|or)\b)[a-z]{1,12}\b(?=\s+"
    + _BACK
    + r"))?"
)
"""The unit of the operand, said before where it goes ("add 64 km to that", "minus 3 boxes from the
total"): only with the place it goes after it, so a word that asks something else is never one."""
_CONT_REST = re.compile(
    r"^" + _UNIT + r"[\W_]*(?:(?:then|now|please|instead|again|more|on top|" + _BACK + r")[\W_]*)*$", re.I
)
_SYMBOLS = (
    (re.compile(rf"{_NUM}\s*(?:%|percent)\s+of\s+{_NUM}", re.I), r"(\1/100*\2)"),
    (re.compile(rf"(?:square root of|sqrt)\s*\(?\s*{_NUM}\s*\)?", re.I), r"sqrt(\1)"),
    (re.compile(r"\bmultiplied by\b|\btimes\b|×|(?<=\d)\s*x\s*(?=\d)", re.I), "*"),
    (re.compile(r"\bdivided by\b|÷", re.I), "/"),
    (re.compile(r"\bplus\b", re.I), "+"),
    (re.compile(r"\bminus\b", re.I), "-"),
    (re.compile(r"\bto the power of\b|\^", re.I), "**"),
    (re.compile(r"\bsquared\b", re.I), "**2"),
)
_ARITH_RUN = re.compile(r"(?<![\w-])(?:sqrt\(|[\d(])[\d\s.+\-*/%()sqrt]*")

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "so",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "about",
        "what",
        "whats",
        "what's",
        "how",
        "is",
        "are",
        "was",
        "were",
        "be",
        "do",
        "does",
        "did",
        "can",
        "could",
        "would",
        "should",
        "will",
        "i",
        "i'm",
        "im",
        "me",
        "my",
        "we",
        "our",
        "us",
        "you",
        "your",
        "it",
        "its",
        "that",
        "this",
        "those",
        "these",
        "they",
        "them",
        "their",
        "there",
        "here",
        "then",
        "also",
        "now",
        "please",
        "ok",
        "okay",
        "yes",
        "no",
        "not",
        "just",
        "same",
        "other",
        "one",
        "about",
        "again",
        "too",
        "thanks",
        "thank",
        "hi",
        "hello",
        "which",
        "who",
        "when",
        "where",
        "why",
        "any",
        "some",
        "much",
        "many",
        "more",
        "tell",
        "show",
        "give",
        "find",
        "get",
        "got",
        "check",
        "is",
        "it's",
        "isn't",
        "am",
        "how's",
        "hows",
        "doing",
        "going",
    ]
)

_FILLERS = frozenset(
    [
        "all",
        "good",
        "fine",
        "alright",
        "right",
        "well",
        "still",
        "as",
        "ok?",
        "too",
        "either",
        "thing",
        "stuff",
        "exactly",
        "precisely",
        "really",
        "actually",
    ]
)
"""Words that ask how a thing is without naming anything ("and the dashboard, all good?"), and nouns that
name nothing ("the sso login thing"): they do not
make an elliptical turn a request of its own."""

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_IDENT = re.compile(r"\b([A-Za-z]{1,4})-?(\d{3,})\b")
_AMOUNT = re.compile(r"[$€£]\s?\d[\d,]*(?:\.\d+)?|\b\d[\d,]*(?:\.\d+)?\s?(?:dollars?|usd|eur)\b", re.I)
_OPS = r"(?:[-+*/x×^%]|\*\*|times|plus|minus|divided by|over|multiplied by|to the power of|% of|percent of)"
_EXPR = re.compile(rf"(?:sqrt\s*\(?\s*)?\d+(?:\.\d+)?\s*(?:{_OPS}\s*\(?\s*\d+(?:\.\d+)?\s*\)?\s*)+", re.I)
_NUMBER = re.compile(r"(?<![\w.-])\d+(?:\.\d+)?(?!\w|-\d|\.\d)")
_PERCENT = re.compile(r"\s*(?:%|percent\b)", re.I)
"""A number's unit when it is a percentage: "22%" replaces the "18%" of "18% of 250", not the 250."""
"""A number, also one joined to its unit ("a 10-seat plan"), never the digits of an id or a date."""
_LABELLED_ID = re.compile(
    r"\b(?:customer|client|account|charge|payment|invoice|ticket|order|case)\s+(?:id\s+|number\s+|no\.?\s*|#\s*)?(\d{3,})\b",
    re.I,
)
"""An identifier written as its kind and its digits ("customer 1005", "ticket #4012")."""
_NAME = re.compile(
    r"\b[A-Z][\w'’]*(?:(?:[ -](?:es|de|da|do|dos|das|del|della|di|du|des|la|le|el|al|am|upon|sur)(?=[ -][A-Z]))*"
    r"[ -][A-Z][\w'’]*)*"
)
"""A capitalised name, of several words with the small words place names keep between them ("Dar es
Salaam", "Rio de Janeiro", "Frankfurt am Main")."""
_ZONE = re.compile(
    r"\b(?:Africa|America|Antarctica|Asia|Atlantic|Australia|Europe|Indian|Pacific|Etc)/[A-Za-z_+-]+(?:/[A-Za-z_]+)?",
    re.I,
)
"""An IANA zone as written ("Asia/Karachi"): one place, not a region and a city."""
_COURTESY = frozenset(
    ["pls", "plz", "please", "thx", "thanks", "rn", "now", "then", "instead", "too", "today", "next"]
)
"""Words around a bare slot that ask for nothing ("reykjavik pls", "customer c-1003 then")."""
_THANKS = frozenset(
    [
        "cheers",
        "thanks",
        "thank",
        "thx",
        "ta",
        "ty",
        "great",
        "cool",
        "lovely",
        "perfect",
        "brilliant",
        "awesome",
        "sweet",
        "excellent",
        "fab",
        "fabulous",
        "super",
        "wonderful",
        "splendid",
        "fantastic",
        "gotcha",
        "noted",
        "okay",
        "ok",
        "alright",
        "right",
        "sure",
    ]
)
"""Acknowledgements written with a capital ("Cheers. And the Faroe Islands?"): not a name to put in
the old clause ("Nice" is a city, so it is not here)."""
_KIND_NOUNS = frozenset(["customer", "client", "account", "user", "id", "number", "no", "#"])
_PRO_FORMS = frozenset(["ones", "'s ones", "s", "'s", "’s"])
"""What stands for the topic's things beside a slot ("diego@...'s ones"): no request of its own."""
"""The kind an identifier is given as ("customer c-1003"): part of the slot, not a request."""

SlotKind = Literal["email", "ident", "amount", "expr", "number", "name", "place"]

_ZONE_REGIONS = (
    "Africa/",
    "America/",
    "Antarctica/",
    "Asia/",
    "Atlantic/",
    "Australia/",
    "Europe/",
    "Indian/",
    "Pacific/",
)
_NOT_PLACES = frozenset(
    [
        "north",
        "south",
        "west",
        "center",
        "act",
        "oral",
        "virgin",
        "wake",
        "christmas",
        "easter",
        "casey",
        "davis",
        "palmer",
        "troll",
        "regina",
        "stanley",
        "victoria",
        "sofia",
        "juba",
        "mahe",
        "yap",
        "truk",
        "knox",
    ]
)


@functools.cache
def places() -> frozenset[str]:
    """Place names (lower case) from the IANA time zone database (`zoneinfo`): the cities a zone is
    named after ("new york", "helsinki"), less a few that are common words or first names."""
    names = {
        zone.rsplit("/", 1)[-1].replace("_", " ").lower()
        for zone in zoneinfo.available_timezones()
        if zone.startswith(_ZONE_REGIONS)
    }
    return frozenset((names | _countries()) - _NOT_PLACES)


def _tz_table(name: str) -> list[list[str]]:
    """Rows of a table of the time zone database (`zone.tab`, `iso3166.tab`); empty without one."""
    for root in zoneinfo.TZPATH:
        try:
            with open(f"{root}/{name}", encoding="utf-8") as f:
                return [line.rstrip("\n").split("\t") for line in f if line[:1] not in "#\n"]
        except OSError:
            continue
    try:
        from importlib.resources import files

        text = files("tzdata.zoneinfo").joinpath(name).read_text(encoding="utf-8")
        return [line.split("\t") for line in text.splitlines() if line[:1] not in "#" and line.strip()]
    except (ImportError, OSError):
        return []


def _countries() -> set[str]:
    """Countries and territories of one time zone, in lower case ("faroe islands", "iceland"): a
    place as much as a city is (the clock names their zone)."""
    zones: dict[str, int] = {}
    for row in _tz_table("zone.tab"):
        zones[row[0]] = zones.get(row[0], 0) + 1
    out: set[str] = set()
    for row in _tz_table("iso3166.tab"):
        if len(row) > 1 and zones.get(row[0]) == 1:
            name = re.sub(r"\s*\(.*?\)", "", row[1]).replace("&", "and").lower()
            out.add(" ".join(re.sub(r"[^a-z ]+", " ", name).split()))
    return out - {"georgia", "jordan", "chad"}  # as often a US state or a first name


_KINDS: tuple[tuple[SlotKind, re.Pattern[str]], ...] = (
    ("email", _EMAIL),
    ("amount", _AMOUNT),
    ("expr", _EXPR),
    ("place", _ZONE),
    ("ident", _LABELLED_ID),
    ("ident", _IDENT),
    ("number", _NUMBER),
    ("name", _NAME),
)
IDENTIFIERS = frozenset({"email", "ident"})
ANY_ID = "#"
"""The subtype of an identifier given by its kind's name and digits: it fits any sort of id."""


@dataclass(frozen=True)
class Slot:
    kind: SlotKind
    text: str
    start: int
    end: int
    subtype: str = ""
    """For identifiers: `email` or the id's letter prefix (`C`, `CH`): what kind of thing it names."""


@dataclass(frozen=True)
class TopicEntry:
    capability: str
    task: str
    """The clause of the request this capability ran for (its inputs are read from it)."""
    turn: int


@dataclass
class FollowUp:
    """How a turn relates to the conversation (what the task extraction node records)."""

    kind: FollowUpKind
    capabilities: list[str] = field(default_factory=list)
    """Where the turn is routed (a follow-up or correction: the topic's; empty otherwise)."""
    task: str | None = None
    """The rewritten standalone task; None keeps the message as it is."""
    reason: str = ""
    ask_again: bool = False
    """A yes with a condition ("yep, but only the duplicate"): the action it goes to is asked about
    once more (the router's confirm gate), never done on these words."""

    def as_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "capabilities": list(self.capabilities),
            "task": self.task,
            "reason": self.reason,
            "ask_again": self.ask_again,
        }


def slots(text: str) -> list[Slot]:
    """Slots by shape, the most specific kind first; a span taken by one kind is not reused."""
    found: list[Slot] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _KINDS:
        for m in pattern.finditer(text):
            start, end = m.span()
            if any(start < e and s < end for s, e in taken):
                continue
            value = m.group(0).strip()
            if kind == "name":
                words = [
                    w
                    for w in re.split(r"[ -]", value)
                    if w.lower().strip("'’") not in STOPWORDS and w.lower().strip("'’") not in _THANKS
                ]
                if not words:
                    continue
                first = value.split()[0]
                if first.lower().strip("'’") in STOPWORDS:  # "What Tokyo" -> "Tokyo"
                    start += len(value) - len(value.lstrip()) + value.find(words[0])
                    value = text[start:end]
            if kind == "ident" and not re.search(r"\d", value):
                continue
            subtype = "email" if kind == "email" else (m.group(1).upper() if kind == "ident" else "")
            if kind == "number" and _PERCENT.match(text, end):
                subtype = "%"
            if pattern is _LABELLED_ID:
                subtype = ANY_ID
            shape: SlotKind = "place" if kind == "name" and value.lower() in places() else kind
            found.append(Slot(shape, value, start, end, subtype))
            taken.append((start, end))
    return sorted(found, key=lambda s: s.start)


def content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[\w@.%+*/'’-]+", text.lower()) if w.strip(".'’") not in STOPWORDS]


def fragment(text: str) -> str:
    """The new words of a follow-up: the message without its cue or correction words."""
    text = " ".join(text.split())
    text = _CORRECTION_WORDS.sub("", text)
    text = _TRAILING_CORRECTION.sub("", text)
    text = _LEAD.sub("", text)
    text = _TAIL_CUE.sub("", text)
    return text.strip(" ?!.,")


def _fit(new: Slot, old: Slot) -> int:
    """How well a new slot replaces an old one: 3 the same kind (an identifier of the same sort),
    2 a name in place of a place (a city the time zone database does not know), 0 not at all (a
    place never replaces another kind of name: "Helsinki" is not a plan)."""
    if new.kind in IDENTIFIERS and old.kind in IDENTIFIERS:
        if new.subtype == ANY_ID and old.kind == "ident":
            return 3 if _digits(new.text) and len(_digits(new.text)) == len(_digits(old.text)) else 0
        return 3 if new.subtype == old.subtype else 0
    if new.kind == old.kind:
        return 3
    return 2 if new.kind == "name" and old.kind == "place" else 0


def _target(clause: str, new: Slot) -> tuple[Slot, int] | None:
    """The slot of `clause` the new slot replaces (its last best fit) and how well it fits."""
    old = slots(clause)
    if new.kind == "place" and not any(s.kind == "place" for s in old):
        old = sorted([*old, *_lower_places(clause, old)], key=lambda s: s.start)
    best = max((_fit(new, s) for s in old), default=0)
    if best:
        return [s for s in old if _fit(new, s) == best][-1], best
    ids = [s for s in old if s.kind in IDENTIFIERS]
    if new.kind in IDENTIFIERS and len(ids) == 1:
        return ids[0], 1
    if new.kind == "number":
        # "and of 3150?" after "17% of 2400": a number in place of an operand of the expression.
        operands = [
            Slot(
                "number",
                m.group(0),
                e.start + m.start(),
                e.start + m.end(),
                "%" if _PERCENT.match(e.text, m.end()) else "",
            )
            for e in old
            if e.kind == "expr"
            for m in _NUMBER.finditer(e.text)
        ]
        if operands:
            # A percentage in place of the percentage ("and 22%?" after "18% of 250"), else the last.
            same = [o for o in operands if o.subtype == new.subtype] or operands
            # A rate in place of a rate, an amount in place of an amount ("also for the 112.30 bill"
            # after "86.50 * 0.18" is 112.30 * 0.18): a number below 1 replaces an operand below 1.
            side = [o for o in same if _below_one(o.text) == _below_one(new.text)]
            return _nearest_in_size(new, side or same), 2
    return None


_SIZE_APART = 1.0
"""How many orders of magnitude closer to the new number another operand must be than the last one to
be the one it replaces."""


def _nearest_in_size(new: Slot, operands: Sequence[Slot]) -> Slot:
    """The operand a new number replaces: the last, unless another is of the new number's size and the
    last is not ("repeat that with 1720, the bigger van" after "1450 / 8": 1720 is a van's price, as
    1450 was, not a head count) by `_SIZE_APART` orders of magnitude."""
    last = operands[-1]

    def apart(slot: Slot) -> float:
        try:
            a, b = abs(float(slot.text)), abs(float(new.text))
        except ValueError:
            return math.inf
        return abs(math.log10(a) - math.log10(b)) if a > 0 and b > 0 else math.inf

    nearest = min(operands, key=apart)
    return nearest if apart(nearest) + _SIZE_APART <= apart(last) else last


def _below_one(number: str) -> bool:
    try:
        return float(number) < 1
    except ValueError:
        return False


def _lower_places(clause: str, found: Sequence[Slot]) -> list[Slot]:
    """Places a clause typed in lower case ("time in denver pls"), longest first at a position, for
    a new place to replace: the shape alone finds none there."""
    out: list[Slot] = []
    words = [(m.start(), m.end()) for m in re.finditer(r"[a-z][a-z'’]*", clause)]
    i = 0
    while i < len(words):
        for size in (3, 2, 1):
            span = words[i : i + size]
            if len(span) < size:
                continue
            start, end = span[0][0], span[-1][1]
            text = clause[start:end]
            if (
                " ".join(text.split()) in places()
                and not any(start < s.end and s.start < end for s in found)
                and re.fullmatch(r"[a-z'’ ]+", text)
            ):
                out.append(Slot("place", text, start, end))
                i += size - 1
                break
        i += 1
    return out


def _digits(text: str) -> str:
    return "".join(re.findall(r"\d", text))


def fit_quality(clause: str, new: Slot, text: str = "") -> int:
    """How well `new` fits a slot of `clause` (0: none); one more when the message puts the same
    preposition before it as the clause does ("in Helsinki" for "in Oslo", "for 40 seats")."""
    found = _target(clause, new)
    if found is None:
        return 0
    old, quality = found
    before_old = re.search(r"(\w+)\W*$", clause[: old.start])
    before_new = re.search(rf"(\w+)\W+{re.escape(new.text)}", text) if text else None
    if before_old and before_new and before_old.group(1).lower() == before_new.group(1).lower():
        quality += 1
    return quality


def substitute(clause: str, new: Slot) -> str | None:
    """`clause` with its last slot of the new slot's kind replaced by it; None when it has none.

    An identifier of another sort replaces the clause's only identifier ("same for C-1007" after a
    request that named the customer by e-mail); an expression replaces an expression, a number a
    number (not a digit of an id), a place a place.
    """
    found = _target(clause, new)
    if found is None:
        return None
    target = found[0]
    text = new.text
    if new.kind == "expr":
        # "132 over 8": a fraction said in words, in the symbols the clause's reader takes
        text = re.sub(r"(?<=\d)\s+over\s+(?=\d)", " / ", text, flags=re.I)
    if new.subtype == ANY_ID and target.kind == "ident":
        # "customer 1005" in place of "c1001": the clause's way of writing the id, the new digits.
        old_digits = _digits(target.text)
        text = target.text[: len(target.text) - len(old_digits)] + _digits(new.text)
    # The same value said twice is one slot ("the time in Vienna, please; the Vienna saleroom opens
    # shortly" -> "Zurich."): every place it is said takes the new value.
    again = [
        s
        for s in slots(clause)
        if s.kind == target.kind
        and s.text.lower() == target.text.lower()
        and s.start != target.start
        and new.kind not in ("expr", "number", "amount")
    ]
    for slot in sorted([target, *again], key=lambda s: s.start, reverse=True):
        clause = clause[: slot.start] + text + clause[slot.end :]
    return clause


def _words_substitute(clause: str, words: str, known_names: frozenset[str] = frozenset()) -> str | None:
    """Lower-case new words ("new york") in place of the clause's last capitalised name; a name the
    guides know ("team": they write "Team") in place of another the clause typed in lower case
    ("same but team" after "enterprise for 60 seats")."""
    found = slots(clause)
    names = [s for s in found if s.kind == "place"] if words.lower() in places() else []
    names = names or [s for s in found if s.kind in ("name", "place")]
    if not names and " ".join(words.lower().split()) in known_names:
        names = [
            Slot("name", m.group(0), m.start(), m.end())
            for m in re.finditer(r"[a-z][\w'’-]*", clause)
            if m.group(0) in known_names and m.group(0) != words.lower()
        ]
    if not names:
        return None
    target = names[-1]
    return clause[: target.start] + words + clause[target.end :]


def guide_names(guides: Mapping[str, Sequence[str]]) -> dict[str, frozenset[str]]:
    """Per capability, the names its guides write with a capital inside a sentence ("Team",
    "Enterprise" for sales), in lower case: a user who types them in lower case still names them."""
    return {
        name: frozenset(
            m.group(0).lower()
            for text in texts
            for m in re.finditer(r"(?<=[\w,;:] )[A-Z][a-z][\w'’-]*", text)
            if m.group(0).lower() not in STOPWORDS
        )
        for name, texts in guides.items()
    }


def appended(text: str, clause: str) -> str:
    """The new words first, then the clause they continue (capabilities take the first match)."""
    return f"{text} (follow-up to: {clause})"


def is_yes(text: str) -> bool:
    """A plain yes: a yes in any of its usual words (`graph.intent.confirmation`: "yeah ok", "sure
    thing, please proceed"), or a yes word and nothing to act on of its own (no slot, at most two
    other words); never one with a negation in it ("yes, but don't")."""
    reply = confirmation(text)
    if reply is not None:
        return reply
    if not _YES.search(text) or slots(text) or _NEGATION_WORD.search(text):
        return False
    rest = text
    while (m := _YES.match(rest)) is not None:  # "alright, go ahead with it": two yes words
        rest = rest[m.end() :]
    return len(content_words(rest)) <= 2


_DECLINE_WORDS = frozenset(
    re.findall(
        r"\S+",
        "no nah nope not now thanks thank you leave it that this hold off for skip pass don't dont do bother "
        "then ok okay please later yet really i'm im good fine all right alright that's thats is need needed",
    )
)


_WORD_BEFORE_NO = re.compile(r"^\W*[^\W\d_]+[,.!]+\s+(?=(?:no+|nah|nope)\b)", re.I)
"""A word said on its own before the no ("Aydelem, no. Leave it", "Honestly, no", "Nein, no thanks"):
an interjection, or the no in the user's first language, said again in English. Not a correction's
lead ("sorry, no, the other one")."""


def _without_word_before_no(text: str) -> str:
    if _CORRECTION_WORDS.match(text):
        return text
    return _WORD_BEFORE_NO.sub("", text, count=1)


def declines(text: str) -> bool:
    """A plain no ("nah, leave it", "not now, thanks", "hold off for now", "no, that's fine"): a no by
    `graph.intent.confirmation` made of refusal words only (not "no, I meant Berlin", "no, the other
    one": those correct)."""
    text = _without_word_before_no(text)
    # "No. Leave it.": a refusal word capitalised as a sentence's first is no name.
    if confirmation(text) is not False or any(
        s.kind != "name" or s.text.lower() not in _DECLINE_WORDS for s in slots(text)
    ):
        return False
    words = re.findall(r"[a-z']+", text.lower().replace("’", "'"))
    return bool(words) and all(w in _DECLINE_WORDS for w in words)


def continuation(text: str) -> str | None:
    """The operator and operand an arithmetic continuation adds ("and minus 7?" -> "- 7"; "plus
    tax of 8%" -> "* (1 + 8/100)"); None when the message is anything more than that."""
    body = _CONT_LEAD.sub("", " ".join(text.split()))
    for pattern, template in _CONTINUATIONS:
        m = pattern.match(body)
        if m and _CONT_REST.match(body[m.end() :]):
            return template.format(*m.groups())
    return None


def expression_of(clause: str) -> str | None:
    """The arithmetic a clause holds, in symbols ("what's 15 plus 27" -> "15 + 27"); None if none."""
    text = clause
    for pattern, symbol in _SYMBOLS:
        text = pattern.sub(symbol, text)
    for m in _ARITH_RUN.finditer(text):
        run = m.group(0).strip().rstrip("+-*/% ")
        while run.count("(") > run.count(")") and run.startswith("("):
            run = run[1:].strip()
        while run.count(")") > run.count("(") and run.endswith(")"):
            run = run[:-1].strip()
        if run.count("(") == run.count(")") and re.search(
            r"\d\s*\)?\s*(?:[-+*/%]|\*\*)\s*\(?\s*(?:sqrt\()?\d|sqrt\(", run
        ):
            return " ".join(run.split())
    return None


def _grouped(expression: str) -> str:
    """The expression in parentheses, unless one pair already encloses all of it."""
    depth = 0
    for i, ch in enumerate(expression):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and i < len(expression) - 1:
            return f"({expression})"
    return expression if expression.startswith("(") else f"({expression})"


def resolve(
    text: str,
    topic: Sequence[Mapping[str, Any]],
    *,
    turn: int,
    standalone: Callable[[str], Sequence[str]],
    affinity: Callable[[str, Sequence[str]], Mapping[str, float]] | None = None,
    offer: Sequence[str] = (),
    acts: Callable[[str, str], bool] | None = None,
    side_effects: Callable[[str], bool] | None = None,
    plausible: Callable[[str, Sequence[str]], Sequence[str]] | None = None,
    lexicon: Mapping[str, frozenset[str]] | None = None,
    feeds: Callable[[str, str], bool] | None = None,
    known: frozenset[str] = frozenset(),
    routable: Sequence[str] = (),
    asks_about: Callable[[str, str], bool] | None = None,
    how_to: str | None = None,
    kinds: Mapping[str, frozenset[str]] | None = None,
    unanswered: str | None = None,
    known_names: Mapping[str, frozenset[str]] | None = None,
    counters: frozenset[str] = frozenset(),
) -> FollowUp:
    """How the message `text` relates to the thread's `topic` (entries, most recent first).

    `standalone(text)`: the capabilities the classifier selects for the new words alone (only
    called for a candidate follow-up). `affinity(text, names)`: their confidences per topic
    capability, to pick among topic entries when the slot's kind does not. `offer`: the
    capabilities a previous turn offered and did not run (a plain yes accepts them).
    `side_effects(name)`: whether a capability acts (moves money, writes); `acts(text, name)`:
    whether the words ask for that action rather than about it (both: the registry's and the
    router's view; without them anaphora never overrides the classifier). `plausible(text, names)`:
    those of `names` the classifier finds a plausible reading of the words (at or above their
    threshold, winning or not). `lexicon`: each capability's own words (`guide_lexicon`); `known`:
    every word the guides use (`vocabulary`). `routable`: every capability the router may pick.
    `feeds(a, b)`: whether capability `a` provides what `b` requires (then `b`, not `a`, is what
    a turn that ran both was about). `asks_about(clause, name)`: whether a clause asks about a
    capability's action without asking for it ("is this charge refundable?": the router's
    side-effect intent says confirm). `how_to`: the capability that answers how-to questions
    (`how_to_owner`). `kinds`: the slot kinds each capability reads (`slot_kinds`); a new slot fits
    only a clause of a capability that reads its kind. `unanswered`: the last request, when the last
    turn ran nothing (it ended in a question back); a yes then answers that request, not the topic.
    `known_names`: per capability, the names its guides write capitalised (`guide_names`), in lower case.
    `counters`: the capabilities whose guides ask counts ("how many seats do we have": `count_askers`).
    """
    # "and Anchorage, while you're at it": an aside asks for nothing and its "it" points at nothing.
    text = " ".join((_ASIDE.sub(" ", text) if _ASIDE.search(text) else text).split()) or " ".join(
        text.split()
    )
    # "Strike while the iron's hot: and Casablanca?": a saying before a colon, then the follow-up
    # itself with its cue; the saying asks for nothing.
    if (preface := _PREFACE.match(text)) is not None and _CUE.match(text[preface.end() :]):
        text = text[preface.end() :]
    # "different thing: a user says the reset link expired, how long do those last": the user says
    # the turn is another matter (read below, once there is a topic to leave).
    switch_cue = _SWITCH.match(text)
    switched = switch_cue is not None and bool(content_words(text[switch_cue.end() :]))
    entries = _heads_first(
        _fold_introductions(
            [TopicEntry(str(e["capability"]), str(e["task"]), int(e.get("turn", 0))) for e in topic], feeds
        ),
        feeds,
    )
    # The actions the words ask for ("yes please refund it", "ok, refund it then"): not a plain yes.
    asked = (
        [
            n
            for n in routable
            if side_effects(n) and acts(text, n) and (asks_about is None or not asks_about(text, n))
        ]
        if acts is not None and side_effects is not None
        else []
    )
    if is_yes(text) and (not asked or (offer and set(asked) <= set(offer))):
        if offer:
            return FollowUp("confirmation", list(offer), None, "a plain yes to the offer the last turn made")
        if unanswered is not None:
            # The last request ran nothing (it ended in a question back): a yes can only be to the
            # action it asked about ("could the last charge be refunded?" -> "please do"), which the
            # router asks about once more before anything is done; otherwise there is nothing to go on.
            about = (
                [n for n in routable if side_effects(n) and asks_about(unanswered, n)]
                if asks_about is not None and side_effects is not None and _GO_AHEAD.search(text)
                else []
            )
            if about:
                return FollowUp(
                    "confirmation",
                    about,
                    appended(text, unanswered),
                    f"a yes to the action the last request asked about ({', '.join(about)}); it was not answered",
                )
            return FollowUp("new", [], None, "a yes to a request that was not understood")
        if entries and _GO_AHEAD.search(text):
            last = _last_turn(entries)
            clause = last[0].task
            about = (
                [n for n in routable if side_effects(n) and asks_about(clause, n)]
                if asks_about is not None and side_effects is not None
                else []
            )
            if about:
                # "alright, go ahead with it" after "is this charge refundable?": the yes is to the
                # action the last request asked about, on what it was about.
                return FollowUp(
                    "confirmation",
                    about,
                    appended(text, clause),
                    f"a yes to the action the last request asked about ({', '.join(about)})",
                )
            return FollowUp(
                "confirmation",
                [e.capability for e in last],
                clause,
                "a plain yes continues the last request",
            )
    if (
        entries
        and not asked
        and _YES.match(text)
        and not is_yes(text)
        and side_effects is not None
        and asks_about is not None
        and (narrowed := _narrowed_yes(text, entries, routable, standalone, side_effects, asks_about))
    ):
        return narrowed
    if (looked := _lookup(text, standalone)) is not None:
        return looked
    if unanswered is not None and (
        joined := _with_unanswered(
            text,
            unanswered,
            entries,
            standalone,
            known,
            kinds=kinds,
            routable=routable,
            affinity=affinity,
            side_effects=side_effects,
        )
    ):
        return joined
    if not entries:
        return FollowUp("new")
    if switched and switch_cue is not None:
        # Not about the topic, whatever its pronouns or slots: its own words are read, without the cue.
        return FollowUp("switch", [], text[switch_cue.end() :].strip(), "the user says it is another matter")
    if (back := _back_to(text, entries, lexicon or {})) is not None:
        # "ok, back to the quote - what if we end up at 70": the user names which earlier need the
        # turn continues (a word of its capability or its clause); the rest is read against it alone,
        # a slot it reads replacing its slot of that kind.
        rest, entry = back
        read = (kinds or {}).get(entry.capability) if kinds else None
        rest_words = fragment(rest)
        new = [s for s in (slots(rest_words) or _bare_place(rest_words)) if _takes(read, s)]
        return FollowUp(
            "follow_up",
            [entry.capability],
            _rewrite(
                rest,
                rest_words,
                new,
                entry.task,
                anaphora=bool(_ANAPHORA.search(rest)),
                known_names=(known_names or {}).get(entry.capability, frozenset()),
            )
            if content_words(rest_words)
            else entry.task,
            f"back to an earlier need, {entry.capability}: {entry.task!r}",
        )
    if (dropped := _drop_part(text, entries)) is not None:
        # "forget the errors, for the seats thing redo it with 45" after a turn with two needs: the
        # part the words name (a content word of its clause) is withdrawn; the rest is read against
        # the needs that are left, a slot that fits one of them replacing its slot of that kind.
        rest, left = dropped
        rest_words = fragment(rest)
        for entry in _last_turn(left):
            read = (kinds or {}).get(entry.capability) if kinds else None
            new = [s for s in (slots(rest_words) or _bare_place(rest_words)) if _takes(read, s)]
            if any(substitute(entry.task, s) is not None for s in new):
                return FollowUp(
                    "follow_up",
                    [entry.capability],
                    _rewrite(rest, rest_words, new, entry.task, anaphora=False),
                    f"one need of the last turn withdrawn; a follow-up to {entry.capability}: {entry.task!r}",
                )
        return resolve(
            rest,
            [{"capability": e.capability, "task": e.task, "turn": e.turn} for e in left],
            turn=turn,
            standalone=standalone,
            affinity=affinity,
            acts=acts,
            side_effects=side_effects,
            plausible=plausible,
            lexicon=lexicon,
            feeds=feeds,
            known=known,
            routable=routable,
            asks_about=asks_about,
            how_to=how_to,
            kinds=kinds,
            known_names=known_names,
            counters=counters,
        )
    if (
        declines(text)
        and not offer
        and not any(side_effects is not None and side_effects(e.capability) for e in _last_turn(entries))
    ):
        # "nah, leave it" after an answer: nothing of the last request is asked for again. (After a
        # pending action the no goes to that action, whose intent check refuses it.)
        return FollowUp("switch", [], None, "a no: nothing of the last request to run again")
    acted = any(side_effects is not None and side_effects(e.capability) for e in _last_turn(entries))
    if not offer and (reason := _no_with_reason(text, standalone, acted=acted)) is not None:
        # "hold off for now, I need to talk to Diego first", "nah, never mind, she's keeping the
        # seat": a no and why; the reason asks for nothing, so only the no is read.
        return FollowUp(
            "switch", [], reason, "a no with its reason: nothing of the last request to run again"
        )
    if (withdrawn := _WITHDRAW.match(text)) is not None:
        rest = text[withdrawn.end() :].strip()
        return FollowUp(
            "switch",
            [],
            rest if content_words(rest) else None,
            "the last request is withdrawn, not followed up",
        )
    if asked and not any(s.kind in IDENTIFIERS for s in slots(text)):
        # "ok, refund it then" after a turn about a double charge: the action, on what the last turn
        # was about (its clause names the customer and the charge the action needs).
        clause = _last_turn(entries)[0].task
        return FollowUp(
            "follow_up",
            asked,
            appended(text, clause),
            f"asks for {', '.join(asked)} on the last request: {clause!r}",
        )
    if how_to is not None and how_to in routable and _HOW_TO.search(text) and not asked:
        # "how do I do that myself?", "where is that in the settings?" after an account or billing
        # turn: instructions, not the topic's lookup again. Unless the words alone name a need.
        alone = [n for n in standalone(text) if n]
        # "and how do I delete the account?" after instructions: the user goes on asking how to do
        # things, whatever other capability a word of the question names (unless it names an id).
        instructed = how_to in {e.capability for e in _last_turn(entries)} and not any(
            s.kind in IDENTIFIERS for s in slots(text)
        )
        # The topic's own capability read again is no other need: "how do they add seats?" after a
        # seat count asks for instructions, whatever the classifier makes of "seats".
        topics = {e.capability for e in entries}
        if not [n for n in alone if n != how_to and n not in topics] or instructed:
            # A person ("how would he swap the card himself?") is not what the instructions are
            # about: only a thing the last turn named ("do that", "download those") takes its clause.
            clause = _last_turn(entries)[0].task
            things = _points_at_things(text, clause)
            anaphoric = things and len(content_words(fragment(text))) <= _ITEM_WORDS
            return FollowUp(
                "follow_up" if anaphoric else "switch",
                [how_to],
                appended(_with_counted_noun(text, clause), _how_to_clause(clause)) if anaphoric else None,
                f"a how-to question: instructions ({how_to}), not the topic's capability again",
            )
    if (op := continuation(text)) is not None:
        for entry in entries:  # most recent first
            if (previous := expression_of(entry.task)) is not None:
                power = re.fullmatch(r"\(?\s*(\d+(?:\.\d+)?)\s*\*\*\s*\d+(?:\.\d+)?\s*\)?", previous)
                if not (
                    op.startswith("** ")
                    and re.search(r"power|\^|\*\*", text, re.I)
                    and not re.search(r"\b(?:that|it|this|result)\b", text, re.I)
                ):
                    power = None
                if power:
                    # "and to the power of 6?" after "3 to the power of 5": another exponent, not a
                    # power of the power ("raise that to the power of 2", "squared?" still continue).
                    previous = power.group(1)
                # "time in Cairo and 1000 - 347" that the clock alone answered: the expression's
                # continuation goes to the one capability whose guides hold expressions.
                readers = [n for n in routable if "expr" in (kinds or {}).get(n, frozenset())]
                reads = kinds is None or "expr" in kinds.get(entry.capability, frozenset(["expr"]))
                return FollowUp(
                    "follow_up",
                    [entry.capability] if reads or len(readers) != 1 else readers,
                    f"{previous if power else _grouped(previous)} {op}",
                    f"an arithmetic continuation of {entry.capability}: {entry.task!r}",
                )
    if (replaced := _number_replaced(text, entries)) is not None:
        # "caterer just said 9 tables not 6, redo the sum", "wait no its 4.5 not 3.5": the old number
        # is named, so is the clause it is in; every place it has there takes the new one.
        return replaced
    if (swapped := _swapped(text, entries, known_names or {})) is not None:
        # "sorry, wrong plan: Enterprise", "I meant Enterprise not Team", "make that Enterprise": one
        # value in place of one of the last request's; the need is the same, whatever capability the
        # new value's words suggest on their own ("plan", "Enterprise": account or sales words).
        return swapped
    cue = bool(_CUE.search(text) or _TAIL_CUE.search(text))
    correction = bool(_CORRECTION.search(text))
    # "I meant my plan, not the invoices": what is ruled out is not what is asked.
    reading = _NEGATED.sub("", text).strip() if correction else text
    item = bool(_ITEM.search(reading)) or _names_an_item(reading, entries)
    anaphora = bool(_ANAPHORA.search(reading) or _MORE_OF_IT.search(reading)) or item
    new_words = fragment(reading)
    if correction and (meant := _meant_words(new_words)) is not None:
        # "no sorry I said vienna I meant vientiane": what the user means comes after "I meant".
        new_words = meant
    new_slots = (
        slots(new_words)
        or _bare_place(new_words)
        or (_inner_places(new_words) if correction or _CUE.search(text) else [])
    )
    new_slots = _without_opening_words(
        new_words, new_slots, known, frozenset().union(*(known_names or {}).values())
    )
    if correction or _bare_number_for_id(new_words, new_slots, [e.task for e in _last_turn(entries)]):
        new_slots = [_as_identifier(n, [e.task for e in _last_turn(entries)]) for n in new_slots]
    if correction and len(new_slots) > 1:
        # "sorry, not Denver, Phoenix": the value said after "not" is the old one, ruled out; the
        # new one is the other.
        new_slots = [n for n in new_slots if not _NOT_BEFORE.search(new_words[: n.start])] or new_slots
    every_name = frozenset().union(*(known_names or {}).values())
    fit = {
        e: max(
            (
                fit_quality(e.task, s, reading)
                for s in new_slots
                if _takes((kinds or {}).get(e.capability) if kinds else None, s)
                and not _names_another_thing(s, e.capability, kinds, known_names or {}, every_name)
            ),
            default=0,
        )
        for e in entries
    }
    fitting = [e for e in entries if fit[e]]
    size = len([w for w in content_words(new_words) if w.strip(",.?!") not in _FILLERS])
    own = _own_words(new_words, new_slots, [e.capability for e in entries], lexicon or {})
    # A cue alone makes a follow-up of an elliptical turn only ("and the dashboard?"); "and is the
    # webhooks service healthy?" is a request of its own that happens to start with "and". A short
    # turn in a topic capability's own words ("is SSO ok?" after a service's status) is one too.
    elliptical = size <= 2 or bool(fitting)
    # A slot that fits, or a word of the topic, is not enough when the other words ask for
    # something no capability knows ("what's the weather in Paris?" after the time in Tokyo).
    unknown = bool(known) and any(
        stem(w) not in known and w not in " ".join(e.task for e in entries).lower()
        for w in _words_besides_slots(new_words, new_slots)
        if w.strip(",.?!") not in _FILLERS
    )
    topical = size <= 2 and any(own.values()) and not unknown
    slotted = size <= 3 and bool(fitting) and not unknown
    if not (correction or anaphora or (cue and elliptical) or slotted or topical) and not _supplies(
        reading, size, [e for e in _last_turn(entries) if fit[e] >= 3], standalone
    ):
        if (unanswered_part := _left_unanswered(text, new_words, entries, standalone, lexicon)) is not None:
            return unanswered_part
        return FollowUp("new")
    if (
        operand := _operand_of_unread_expression(new_slots, entries, kinds, routable, correction)
    ) is not None:
        return operand
    if (
        kinds
        and new_slots
        and not correction
        and (not anaphora or all(s.kind == "place" for s in new_slots))
        and not any(_takes(kinds.get(e.capability), s) for e in entries for s in new_slots)
    ):
        # "how about omar@...'s charges?" after a help-center answer: no topic capability reads an
        # address, so the turn is not about the topic. The one capability that reads the slot and
        # whose own words the turn uses ("charges": billing) takes it; else its words are read.
        takers = [n for n in routable if all(_takes(kinds.get(n), s) for s in new_slots)]
        mine = _own_words(new_words, new_slots, takers, lexicon or {})
        most = max(mine.values(), default=0)
        readers = [n for n, k in mine.items() if k == most] if most else []
        if not readers and len(takers) == 1 and not unknown and takers[0] in (standalone(reading) or takers):
            # "also, could you tell me the hour in Winnipeg" after an outage question: one capability
            # reads a place, and the classifier reads the words as nothing else.
            readers = takers
        if not readers and (
            misread := _misread_last(new_words, new_slots, entries, takers, affinity, side_effects)
        ):
            return misread
        return FollowUp(
            "switch",
            readers if len(readers) == 1 else [],
            None,
            "the new slot is of a kind no topic capability reads"
            + (f"; {readers[0]} reads it, in its own words" if len(readers) == 1 else ""),
        )
    alone = [n for n in standalone(reading) if n]
    names = {e.capability for e in entries}
    foreign = [n for n in alone if n not in names]
    only_slots = bool(new_slots) and not _words_besides_slots(new_words, new_slots)
    if (
        fed_to := _fed_by_person(
            reading, new_words, new_slots, entries, own, routable, feeds, side_effects, lexicon, kinds
        )
    ) and (not correction):
        # "what about their charges?" after "look up C-1001" (or "check the account for Sol Market"):
        # the person is the customer the topic named, and the words are those of a capability the
        # topic's capability feeds (billing).
        clause = _customer_clause(entries, kinds) or _last_turn(entries)[0].task
        return FollowUp(
            "follow_up",
            [fed_to],
            appended(reading, clause),
            f"asks {fed_to} (in its own words) about the customer of {clause!r}",
        )
    if (
        not correction
        and anaphora
        and not item
        and size <= _BOUND_WORDS
        and (
            supplier := _supplier_in_own_words(
                new_words, new_slots, entries, own, alone, routable, feeds, side_effects, lexicon
            )
        )
        is not None
    ):
        # "when does it run out" after "is ben@... paying yet or still on the free thing" (billing, fed
        # the customer's account by account): "it" is a thing the account answered (the trial), in the
        # account's own words, none of billing's.
        clause = _last_turn(entries)[0].task
        return FollowUp(
            "follow_up",
            [supplier],
            appended(reading, clause),
            f"asks {supplier}, which fed the topic, in its own words about {clause!r}",
        )
    if (
        not correction
        and (anaphora or cue)
        and (fed_slot := _fed_by_slot(new_slots, entries, routable, feeds, side_effects, kinds)) is not None
    ):
        # "and that 36 dollar thing on their card, what was it for" after a customer's lookup: an
        # amount no topic capability reads, and the one capability the topic feeds that reads it
        # (billing, fed the customer by account) gets it with the clause that names the customer.
        clause = next(e.task for e in entries if any(s.kind in IDENTIFIERS for s in slots(e.task)))
        return FollowUp(
            "follow_up",
            [fed_slot],
            appended(reading, clause),
            f"a slot only {fed_slot} reads, about the customer of {clause!r}",
        )
    if (
        foreign
        and cue
        and topical
        and all(s.kind == "name" for s in new_slots)
        and not correction
        and not any(
            side_effects is not None and acts is not None and side_effects(n) and acts(reading, n)
            for n in foreign
        )
        and any(own.get(n, 0) for n in names)
    ):
        # "what about the API?" after "is the dashboard working?": a cue and a word or two that are
        # a topic capability's own (a service it reports on) ask the same need of another thing; the
        # other capability that also owns the word ("API" in the help centre's articles) is no switch.
        alone = [n for n in alone if n in names]
    elif foreign and elliptical and not unknown and _SAME.match(reading):
        # "do the same for email notifications", "same question for exports": the user says it is the
        # same need; the classifier's reading of the new words ("email" as help-center words) does
        # not make it another.
        alone = [n for n in alone if n in names]
    elif (
        foreign
        and fitting
        and only_slots
        and (not correction or any(e in fitting for e in _last_turn(entries)))
    ):
        # "sorry, C-1006 I mean", "C-1005?": nothing but a slot that fits the topic.
        alone = [n for n in alone if n in names]
    elif (
        foreign
        and cue
        and elliptical
        and fitting
        and kinds
        and new_slots
        and not any(_takes(kinds.get(n), s) for n in foreign for s in new_slots)
    ):
        # "also for the 112.30 bill" after "86.50 * 0.18": a cue and a slot that fits the topic, which
        # the other capability the words suggest ("bill": billing) does not even read.
        alone = [n for n in alone if n in names]
    elif (
        foreign
        and correction
        and any(e in fitting for e in _last_turn(entries))
        and _says_what_it_replaces(reading, [e.task for e in _last_turn(entries)])
    ):
        # "sorry not sydney, Perth, that's where the client is", "wrong one, I need omar@...'s": the
        # correction names the old value (or says it was the wrong one) and gives a new one of its
        # kind; the rest of its words are a reason, not another need.
        alone = [n for n in alone if n in names]
    elif (
        foreign
        and correction
        and "?" not in reading
        and lexicon
        and any(s.kind in IDENTIFIERS for s in new_slots)
        and any(e in fitting for e in _last_turn(entries))
        and not any(_own_words(new_words, new_slots, foreign, lexicon).values())
    ):
        # "sorry, misread the referral form, it's C-1006" after "who is customer C-1005?": a
        # correction whose identifier fits the last request; the rest says how the slip happened, in
        # none of the other capability's own words (the classifier's reading of "form" is no need).
        alone = [n for n in alone if n in names]
    elif (
        foreign
        and side_effects is not None
        and acts is not None
        and (item or (anaphora and "?" in reading and any(side_effects(n) for n in foreign)))
        and not any(side_effects(n) and acts(reading, n) for n in foreign)
    ):
        # "can that one be refunded?", "why did one of them fail?": a question about an item the
        # topic listed, not a request for another capability's action; so is any question about "it"
        # when the other reading is an action the words do not ask for ("is it possible to get this
        # back?" after a charge was explained: whether it can be, not do it).
        alone = [n for n in alone if n in names]
    elif (
        _PERSONAL.search(reading)
        and not (_YES.match(text) or _GO_AHEAD.search(text) or _NEGATION_WORD.search(text))  # a reply
        and not new_slots
        and len(content_words(reading)) <= _ITEM_WORDS
        and (
            suppliers := _suppliers(
                foreign or _best_reading(reading, routable, affinity), entries, feeds, side_effects
            )
            or _counted_by_supplier(reading, entries, routable, counters, affinity, feeds, side_effects)
        )
        and not set(suppliers) & names
    ):
        # "wait how many people is he paying for" after "can jane cooper's renewal be refunded?"
        # (billing): the person is the customer the topic's capability was fed, however the request
        # named them (a full name is no slot); the capability that fed it is what the words ask.
        return FollowUp(
            "follow_up",
            suppliers,
            appended(reading, _last_turn(entries)[0].task),
            f"asks {', '.join(suppliers)}, which fed the topic, about its customer",
        )
    elif (
        foreign
        and _PERSONAL.search(reading)
        and not new_slots
        and len(content_words(reading)) <= _ITEM_WORDS
        and any(s.kind in IDENTIFIERS for e in entries for s in slots(e.task))
    ):
        # "how many seats do they have?" after "who is customer C-1009?": the pronoun is the customer
        # the topic named. A capability the topic's feeds (billing, fed the customer by account) gets
        # the question with the clause that names the customer; any other reading stays on the topic.
        fed = [n for n in foreign if feeds is not None and any(feeds(e.capability, n) for e in entries)]
        clause = _last_turn(entries)[0].task
        if not fed and kinds and not any(kinds.get(e.capability, frozenset()) & IDENTIFIERS for e in entries):
            # "so how many seats is that workspace paying for?" after an outage answer whose clause
            # named the user: no topic capability reads customers, so the person is not the topic's;
            # the capabilities the words name that do read customers get the clause that names them.
            fed = [n for n in foreign if kinds.get(n, frozenset()) & IDENTIFIERS]
            clause = next(e.task for e in entries if any(s.kind in IDENTIFIERS for s in slots(e.task)))
        if fed:
            return FollowUp(
                "follow_up",
                fed,
                appended(reading, clause),
                f"asks {', '.join(fed)} about the customer of {clause!r}",
            )
        alone = [n for n in alone if n in names]
    elif (
        foreign
        and (anaphora or (cue and elliptical))
        and plausible is not None
        and plausible(reading, sorted(names))
    ):
        # "when does it renew?" after a plan lookup, "and the sso login thing?" after an outage: the
        # pronoun or the cue binds the topic, and the topic's capability is a plausible reading of the
        # words (at or above its threshold), whichever the classifier ranks first.
        alone = [n for n in alone if n in names]
    elif (
        foreign
        and anaphora
        and not correction
        and not new_slots
        and lexicon
        and size <= _BOUND_WORDS
        and not any(_own_words(_AUXILIARY.sub(" ", new_words), new_slots, foreign, lexicon).values())
    ):
        # "how long has it been going on?" after an outage: a short question about "it" whose words
        # are none of the other capability's own; the pronoun binds the topic, whatever the
        # classifier makes of the words alone.
        alone = [n for n in alone if n in names]
    elif (
        foreign
        and topical
        and not correction
        and affinity is not None
        and max(affinity(reading, foreign).values(), default=0.0) < WEAK_SWITCH
    ):
        # "how's the API doing?" after a service's status: a weak reading elsewhere does not
        # outweigh the topic's own words.
        alone = [n for n in alone if n in names]
    if alone and not set(alone) <= names:
        return FollowUp(
            "switch", [], None, f"the new words name another need ({', '.join(alone)}), not a follow-up"
        )
    if not correction and (both := _each_its_own(new_slots, _last_turn(entries), kinds)) is not None:
        return FollowUp(
            "follow_up",
            [e.capability for e, _ in both],
            " and ".join(clause for _, clause in both),
            "new slots for each need of the last turn: "
            + ", ".join(f"{e.capability}: {e.task!r}" for e, _ in both),
        )
    pool = _last_turn(entries) if correction else entries
    ruled_out = _ruled_out(text, names, lexicon or {}) if correction else set()
    if (
        ruled_out
        and not alone
        and affinity is not None
        and (others := [n for n in routable if n not in ruled_out])
    ):
        # "I meant my plan, not the invoices": the words the user rules out are the topic's own;
        # the rest is read against every other capability, the old clause kept as context.
        scores = affinity(new_words or reading, others)
        instead = max(others, key=lambda n: scores.get(n, 0.0))
        if scores.get(instead, 0.0) > 0.0:
            clause = _last_turn(entries)[0].task
            return FollowUp(
                "correction",
                [instead],
                appended(reading, clause),
                f"a correction away from {', '.join(sorted(ruled_out))}",
            )
    # Nothing but an identifier that fits ("same thing for customer c-1003 pls"): the classifier's
    # reading of a bare id is who it is (the provider), not what was asked about it; the topic's
    # order decides. (A bare name, "and Enterprise?", is read: the classifier knows plan names.)
    bare = only_slots and bool(fitting) and all(s.kind in IDENTIFIERS for s in new_slots)
    if alone and not bare:
        pool = [e for e in pool if e.capability in alone] or pool
    elif kinds and not new_slots and _PERSONAL.search(reading) and len(content_words(reading)) <= _ITEM_WORDS:
        # "is his trial over yet?" after "who is ben@... and Enterprise for 20 seats": the person is
        # the customer a clause named, so the need is one of a capability that reads customers.
        pool = [
            e
            for e in pool
            if kinds.get(e.capability, frozenset()) & IDENTIFIERS
            and any(s.kind in IDENTIFIERS for s in slots(e.task))
        ] or pool
    replies = bool(
        _YES.match(text)
        or _GO_AHEAD.search(text)
        or confirmation(text) is not None
        or _NEGATION_WORD.search(text)
    )
    if side_effects is not None and acts is not None and not replies:
        # "so is his subscription actually over?" after a turn that ran a refund on "check who c-1008
        # is": words that ask for no action go to what the action was fed by (the customer's
        # account), never to the action on their own. A yes or a no is a reply to the action (its
        # own checks answer it: "please do, and ...", "nah, leave it for now").
        calm: list[TopicEntry] = []
        for e in pool:
            if not side_effects(e.capability) or acts(reading, e.capability):
                calm.append(e)
                continue
            providers = [
                n for n in routable if not side_effects(n) and feeds is not None and feeds(n, e.capability)
            ]
            calm += [TopicEntry(n, e.task, e.turn) for n in providers]
        if calm:
            fit.update({e: fit.get(e, 0) or fit_quality_any(e.task, new_slots, reading) for e in calm})
            pool = calm
    # The topic's own words first ("the API" is a service, whatever clause has a name), then how
    # well a slot fits, then the classifier's reading of the new words, then recency.
    best = max((own.get(e.capability, 0), fit[e]) for e in pool)
    chosen = [e for e in pool if (own.get(e.capability, 0), fit[e]) == best] if best > (0, 0) else list(pool)
    if affinity is not None and not bare and len({e.capability for e in chosen}) > 1:
        scores = affinity(new_words or reading, [e.capability for e in chosen])
        top = max(chosen, key=lambda e: scores.get(e.capability, 0.0))
        chosen = [top] if scores.get(top.capability, 0.0) > 0.0 else chosen
    if chosen == pool:
        chosen = _last_turn(pool)
    entry = chosen[0]
    kind: FollowUpKind = "correction" if correction else "follow_up"
    if alone and not (cue or correction or anaphora or bare):
        # A complete request to the same capability: its own words are the task.
        return FollowUp(kind, [entry.capability], None, f"a new request to {entry.capability}, the topic")
    if _SAME.match(reading) and _OWN_QUESTION.search(new_words):
        # "same question for webhooks, how long do they keep retrying?": the need is the topic's, and
        # the question is asked in full; the old clause would only pull the answer back to its subject.
        return FollowUp(
            kind, [entry.capability], new_words, f"the same need as {entry.capability}, asked in full"
        )
    read = (kinds or {}).get(entry.capability) if kinds else None
    rewritten = _rewrite(
        reading,
        new_words,
        [s for s in new_slots if _takes(read, s)],
        entry.task,
        anaphora=anaphora,
        known_names=(known_names or {}).get(entry.capability, frozenset()),
    )
    why = "a correction of" if correction else "a follow-up to"
    return FollowUp(kind, [entry.capability], rewritten, f"{why} {entry.capability}: {entry.task!r}")


WEAK_SWITCH = 0.5
"""A classifier confidence below which another capability's reading of a short turn in the topic's
own words is not taken as a topic switch."""


_ITEM_WORDS = 6
"""At most this many content words in a turn that refers to an item by a description."""
_BOUND_WORDS = 3
_AUXILIARY = re.compile(r"\b(?:has|have|had|been|being|having|gets|got|gotten|going)\b", re.I)
"""Auxiliaries: words of every request, no capability's own however often a guide uses them."""
"""At most this many content words in a question about "it" that stays with the topic unless its
words are another capability's own ("how long has it been going on?")."""
_PICKING = frozenset(
    [
        "first",
        "second",
        "third",
        "fourth",
        "last",
        "latest",
        "previous",
        "earlier",
        "later",
        "older",
        "newer",
        "duplicate",
        "double",
        "extra",
        "failed",
        "declined",
        "retried",
        "retry",
        "refunded",
        "biggest",
        "largest",
        "smallest",
    ]
)
"""Modifiers that pick one item of several ("the duplicate renewal", "the second invoice")."""
_DEFINITE = re.compile(r"\bthe\s+((?:[\w-]+\s+){1,2}?)([\w-]+)\b", re.I)


_WRONG = re.compile(
    r"\bwrong\s+(?:one|id|customer|client|account|number|city|place|person|e-?mail|address|company)\b|\bthe other one\b",
    re.I,
)
_NOT_THIS = re.compile(r"\bnot\s+(?:the\s+|in\s+|for\s+)?([\w@.+-]+)", re.I)


_NOT_BEFORE = re.compile(r"\bnot\s+(?:the\s+|in\s+|for\s+)?$", re.I)
"""What says the value after it is ruled out ("not Denver, Phoenix", "Phoenix, not in Denver")."""


def _names_another_thing(
    new: Slot,
    capability: str,
    kinds: Mapping[str, frozenset[str]] | None,
    known_names: Mapping[str, frozenset[str]],
    every_name: frozenset[str],
) -> bool:
    """A name that is no place for a capability that reads places: one the guides of another
    capability write ("Team", "Enterprise": plans) and this one's do not ("What would Team come to
    for 8 of us?" after the time in Toronto asks no time in "Team")."""
    if new.kind != "name" or not kinds or "place" not in kinds.get(capability, frozenset()):
        return False
    words = [w for w in re.findall(r"[a-z]+", new.text.lower()) if w not in STOPWORDS]
    own = known_names.get(capability, frozenset())
    return bool(words) and all(w in every_name and w not in own for w in words)


def _says_what_it_replaces(text: str, clauses: Sequence[str]) -> bool:
    """Whether a correction says which old value it replaces: "not sydney" (a word of the last
    clause, any case), "wrong one", "the other one"."""
    if _WRONG.search(text):
        return True
    said = " ".join(clauses).lower()
    return any(
        m.group(1).lower().strip(".") not in STOPWORDS
        and re.search(rf"\b{re.escape(m.group(1).lower().strip('.'))}\b", said)
        for m in _NOT_THIS.finditer(text)
    )


def _as_identifier(new: Slot, clauses: Sequence[str]) -> Slot:
    """A bare number in a correction with as many digits as an identifier of the last clause
    ("the other one - 1009" after "customer number 1006"), or that completes one that was cut off
    ("sorry, it got cut off, 1006" after "customer C-100"), is that kind of identifier."""
    if new.kind != "number" or not new.text.isdigit() or len(new.text) < 3:
        return new
    for clause in clauses:
        for old in slots(clause):
            digits = _digits(old.text)
            if old.kind == "ident" and (
                len(digits) == len(new.text) or (len(new.text) > len(digits) and new.text.startswith(digits))
            ):
                return Slot("ident", new.text, new.start, new.end, ANY_ID)
    return new


def _bare_number_for_id(words: str, found: Sequence[Slot], clauses: Sequence[str]) -> bool:
    """Nothing but a number ("now 1003", "and 1009?") after a clause whose only values are
    identifiers: the digits are another identifier of that kind (`_as_identifier`), not a count."""
    if len(found) != 1 or found[0].kind != "number" or words.strip(" ?!.,") != found[0].text:
        return False
    olds = [s for c in clauses for s in slots(c)]
    return any(s.kind == "ident" for s in olds) and not any(
        s.kind in ("number", "expr", "amount") for s in olds
    )


_CONDITION = re.compile(
    r"\b(?:if|unless|provided|as long as|assuming|in case|depending|once|after|when)\b", re.I
)
"""A yes on a condition the user states ("yes if it's under $50"): a hedge, not a choice of item."""


_FILLER_LEAD = re.compile(
    r"^\W*(?:(?:" + _SOUND + r"|uh+|um+|erm|well|so|ok(?:ay)?|k|alright|actually|wait|ah+)(?:\W+|$))+", re.I
)
"""Sounds and fillers before what the user says ("hmm,", "uh", "ok so", "actually,")."""
_OWN_NEXT_STEP = re.compile(
    r"^\W*(?:(?:and|but|so|because|cause|cos|as)\W+)?(?:let\s+me|lemme|let\s+us|let'?s|I'?ll|I\s+will|we'?ll|we\s+will|"
    r"I'?m\s+(?:going\s+to|gonna)|we'?re\s+(?:going\s+to|gonna)|I\s+(?:need|have|want|got)\s+to|I'?ve\s+got\s+to|"
    r"I\s+gotta|we\s+(?:need|have|want)\s+to|I\s+should|we\s+should|I\s+must)\s+"
    r"(?!(?:know|see|have|get|ask\s+you|find\s+out\s+from\s+you)\b)\w+",
    re.I,
)
"""The user's own next step ("let me confirm the count with her", "I'll check with Diego", "I need to
ask the owner first"): not a request to a capability. ("let me see the charges", "I need to know
the plan" ask for something.)"""


_CLAUSE_BREAK = re.compile(r"\s*(?:[,;:.!]|\s-+|\s—)\s*")


def _no_with_reason(
    text: str, standalone: Callable[[str], Sequence[str]], *, acted: bool = False
) -> str | None:
    """The no of "hold off for now, I need to talk to Diego first" or "nah, never mind, she's keeping
    the seat": a first part that declines (`declines`) or withdraws (`_WITHDRAW`) and a rest that
    is a reason, not a request: a statement (no question mark), no slot but a person's name, and
    words the classifier reads as no capability's. None otherwise ("never mind, what time is it in
    Oslo?" withdraws and asks anew). After a turn that acted (`acted`: a capability with side effects
    ran), only a withdrawal counts: a plain no ("nah, leave it for now") goes to that action, whose
    intent check refuses it."""
    # "hmm, hold off, ...", "ok so hold off, ...": a sound or a filler first says nothing yet; so
    # does a word said on its own before the no ("Aydelem, no. Leave it, they will stay.").
    if (filler := _FILLER_LEAD.match(text)) is not None:
        text = text[filler.end() :]
    text = _without_word_before_no(text)
    m = _CLAUSE_BREAK.search(text)
    if m is None or m.start() == 0:
        return None
    head = text[: m.start()]
    rest = text[m.end() :]
    while (withdraw := _WITHDRAW.match(rest)) is not None and withdraw.end() > 0:  # "nah, never mind, ..."
        head, rest = text[: len(text) - len(rest) + withdraw.end()].rstrip(" ,;:.!-"), rest[withdraw.end() :]
    withdraws = (w := _WITHDRAW.match(head)) is not None and not content_words(head[w.end() :])
    if not (withdraws or (declines(head) and not acted)):
        return None
    rest = rest.strip()
    said = re.findall(r"[a-z']+", rest.lower().replace("’", "'"))
    if (
        not content_words(rest)
        or "?" in rest
        or all(w in _DECLINE_WORDS for w in said)
        or _CORRECTION.search(rest)
    ):
        return None
    if any(s.kind != "name" for s in slots(rest)) or _bare_place(fragment(rest)):
        return None
    if _OWN_NEXT_STEP.match(rest) is None and [n for n in standalone(rest) if n]:
        # What the user will do themselves ("let me confirm the seat count with her first", "I'll
        # check the plan with Diego") asks for nothing, whatever capability its words suggest.
        return None
    return head


def _narrowed_yes(
    text: str,
    entries: Sequence[TopicEntry],
    routable: Sequence[str],
    standalone: Callable[[str], Sequence[str]],
    side_effects: Callable[[str], bool],
    asks_about: Callable[[str, str], bool],
) -> FollowUp | None:
    """ "yep, but only the duplicate, leave the renewal alone" after "is the double charge eligible
    for a refund?": a yes that narrows what the last request asked about goes to that action, with
    the words first and the request after them, and is asked about once more (`ask_again`: the
    router's confirm gate), never done on these words. None when the last turn acted or asked about
    no action, when the words hold a negation or a question ("sure, but not yet", "yes, what would
    it cost?"), a condition ("yes if it's under $50": `_CONDITION`), or when they name another need
    of their own ("sure, and what time is it in Oslo")."""
    if "?" in text or _NEGATION_WORD.search(text) or _CONDITION.search(text):
        return None
    last = _last_turn(entries)
    clause = last[0].task
    if any(side_effects(e.capability) for e in last):
        return None
    about = [n for n in routable if side_effects(n) and asks_about(clause, n)]
    if not about:
        return None
    rest = text
    while (m := _YES.match(rest)) is not None:
        rest = rest[m.end() :]
    if not content_words(rest):
        return None
    names = {e.capability for e in last} | set(about)
    if [n for n in standalone(rest) if n and n not in names]:
        return None
    return FollowUp(
        "confirmation",
        about,
        appended(text, clause),
        f"a yes with a condition to the action the last request asked about ({', '.join(about)}); asked again",
        ask_again=True,
    )


_DROP = re.compile(
    r"^\W*(?:(?:ok(?:ay)?|so|and|actually|alright|right|hmm)\W+)*"
    r"(?:never\s?mind|forget(?:\s+about)?|skip|drop|leave|ignore|scratch)\s+(?:the\s+)?"
    r"(?P<part>[^,;:.!?-]+?)\s*[,;:.!-]+\s*(?P<rest>\w.*)$",
    re.I,
)


def _drop_part(text: str, entries: Sequence[TopicEntry]) -> tuple[str, list[TopicEntry]] | None:
    """ "never mind the API, redo the seats with 35" after a turn with two needs: the words after the
    withdrawn part, and the topic without the entries whose clause holds the part's words; None when
    the words withdraw no one need of several (or all of them)."""
    m = _DROP.match(text)
    last = _last_turn(entries)
    if m is None or len({e.capability for e in last}) < 2:
        return None
    words = {stem(w) for w in content_words(m.group("part"))}
    if not words:
        return None
    named = [e for e in last if words & {stem(w.strip(",.?!'’")) for w in content_words(e.task)}]
    if not named or len({e.capability for e in named}) == len({e.capability for e in last}):
        return None
    return m.group("rest"), [e for e in entries if e not in named]


def _names_an_item(text: str, entries: Sequence[TopicEntry]) -> bool:
    """A definite description of one of the things the topic was about: "the retry charge", "the
    declined payment" after "show me the charges": a modifier and a noun the topic's clauses use in
    the plural (the topic asked for several; "the Team plan" after "which plan" names no item)."""
    if len(content_words(text)) > _ITEM_WORDS:  # a request of its own that happens to say "the ..."
        return False
    used = {
        stem(w).rstrip("e") for e in entries for w in content_words(e.task) if re.fullmatch(r"\w+[^s]s", w)
    }
    for m in _DEFINITE.finditer(text):
        modifiers = [w for w in m.group(1).split() if w.lower() not in STOPWORDS]
        if modifiers and (
            stem(m.group(2)).rstrip("e") in used or any(w.lower() in _PICKING for w in modifiers)
        ):
            return True
    return False


def _fed_by_person(
    reading: str,
    new_words: str,
    new_slots: Sequence[Slot],
    entries: Sequence[TopicEntry],
    own: Mapping[str, int],
    routable: Sequence[str],
    feeds: Callable[[str, str], bool] | None,
    side_effects: Callable[[str], bool] | None,
    lexicon: Mapping[str, frozenset[str]] | None,
    kinds: Mapping[str, frozenset[str]] | None = None,
) -> str | None:
    """The one capability without side effects that a topic capability feeds (billing, fed the
    customer by account) whose own words a short turn about a person uses more than any topic
    capability's ("and their charges?"); None when the turn names no person, has a slot of its own,
    or no topic clause names a customer (`_customer_clause`)."""
    if (
        feeds is None
        or side_effects is None
        or not lexicon
        or new_slots
        or not _PERSONAL.search(reading)
        or _person_question_words(reading) > _ITEM_WORDS
        or _customer_clause(entries, kinds) is None
    ):
        return None
    names = {e.capability for e in entries}
    fed = [
        n
        for n in routable
        if n not in names and not side_effects(n) and any(feeds(e.capability, n) for e in entries)
    ]
    theirs = _own_words(new_words, new_slots, fed, lexicon)
    most = max(theirs.values(), default=0)
    winners = [n for n, k in theirs.items() if k == most]
    return winners[0] if most > max((own.get(n, 0) for n in names), default=0) and len(winners) == 1 else None


def _person_question_words(text: str) -> int:
    """How long the shortest sentence about a person is, in words besides fillers ("And his last
    renewal, did that go through alright in the end?": 6; "So they're still active, correct? And did
    their last payment go through?": 3, each sentence a short question of its own)."""
    return min(
        (
            len([w for w in content_words(part) if w.strip(",.?!") not in _FILLERS])
            for part in re.split(r"(?<=[.?!])\s+", text)
            if _PERSONAL.search(part)
        ),
        default=len(content_words(text)),
    )


def _customer_clause(entries: Sequence[TopicEntry], kinds: Mapping[str, frozenset[str]] | None) -> str | None:
    """The topic clause that names the customer (most recent first): one with an identifier ("look up
    C-1001", "omar@..."), else one that a capability reading customers ran on with a name in it ("check
    the account for Sol Market": the company or the person is who it found). None without either."""
    for e in entries:
        if any(s.kind in IDENTIFIERS for s in slots(e.task)):
            return e.task
    for e in entries:
        if (
            kinds
            and kinds.get(e.capability, frozenset()) & IDENTIFIERS
            and any(s.kind == "name" for s in slots(e.task))
        ):
            return e.task
    return None


def _supplier_in_own_words(
    new_words: str,
    new_slots: Sequence[Slot],
    entries: Sequence[TopicEntry],
    own: Mapping[str, int],
    alone: Sequence[str],
    routable: Sequence[str],
    feeds: Callable[[str, str], bool] | None,
    side_effects: Callable[[str], bool] | None,
    lexicon: Mapping[str, frozenset[str]] | None,
) -> str | None:
    """The one capability without side effects that fed a capability of the last turn (account, which
    gave billing its customer) whose own words a short turn about "it" uses, when it uses none of a
    topic capability's ("when does it run out" after billing answered whether someone pays yet): the
    thing is one that capability's answer told of. None with a slot of its own, or when the classifier
    reads the words as another capability's."""
    if feeds is None or side_effects is None or not lexicon or new_slots:
        return None
    names = {e.capability for e in entries}
    if any(own.get(n, 0) for n in names):
        return None
    last = [e.capability for e in _last_turn(entries)]
    suppliers = [
        n for n in routable if n not in names and not side_effects(n) and any(feeds(n, c) for c in last)
    ]
    theirs = _own_words(new_words, new_slots, suppliers, lexicon)
    most = max(theirs.values(), default=0)
    winners = [n for n, k in theirs.items() if k == most]
    if most == 0 or len(winners) != 1 or any(n not in names and n != winners[0] for n in alone):
        return None
    return winners[0]


_PARTS = re.compile(r"\s*(?:[+&;?!]|,|\s-+\s|\b(?:and|also|plus)\b)\s*", re.I)


def _left_unanswered(
    text: str,
    new_words: str,
    entries: Sequence[TopicEntry],
    standalone: Callable[[str], Sequence[str]],
    lexicon: Mapping[str, frozenset[str]] | None,
) -> FollowUp | None:
    """A turn that goes on with a part of the last request no capability answered ("whens the next
    update on the api thing" after "c-1003 acct + is the api ok" ran the account alone): it repeats a
    word of that part, a part in no last-turn capability's own words, and read together with the part
    the classifier gives it to a capability the last turn did not run. None otherwise."""
    if not lexicon:
        return None
    last = _last_turn(entries)
    ran = {e.capability for e in last}
    said = {stem(w.strip(",.?!").lower()) for w in content_words(new_words)} - {""}
    for part in [p for p in _PARTS.split(last[0].task) if p and content_words(p)]:
        owners = _own_words(part, slots(part), list(lexicon), lexicon)
        if any(owners.get(n, 0) for n in ran) or not any(owners.values()):
            continue
        shared = said & {stem(w.strip(",.?!").lower()) for w in content_words(part)}
        if not shared:
            continue
        readers = [n for n in standalone(appended(text, part)) if n]
        if readers and not set(readers) & ran:
            return FollowUp(
                "follow_up",
                readers,
                appended(text, part),
                f"goes on with a part of the last request no capability answered: {part!r}",
            )
    return None


def _best_reading(
    text: str, routable: Sequence[str], affinity: Callable[[str, Sequence[str]], Mapping[str, float]] | None
) -> list[str]:
    """The capability the classifier ranks first for the words, at any confidence above nothing."""
    if affinity is None or not routable:
        return []
    scores = affinity(text, list(routable))
    best = max(routable, key=lambda n: scores.get(n, 0.0))
    return [best] if scores.get(best, 0.0) > 0.0 else []


def _suppliers(
    foreign: Sequence[str],
    entries: Sequence[TopicEntry],
    feeds: Callable[[str, str], bool] | None,
    side_effects: Callable[[str], bool] | None,
) -> list[str]:
    """The readings of the new words (not the topic's) that feed a capability of the last turn,
    without side effects: the customer lookup a billing topic ran on, asked about the customer."""
    if feeds is None:
        return []
    last = [e.capability for e in _last_turn(entries)]
    return [
        n
        for n in foreign
        if any(feeds(n, c) for c in last) and not (side_effects is not None and side_effects(n))
    ]


_HOW_MANY = re.compile(
    r"^\W*(?:(?:wait|so|ok|okay|hm+|oh|ah|actually|um+|but|and|also|btw|sorry|hang on|hold on)\b\W*)*"
    r"(?:(?:can|could|would)\s+you\s+(?:tell\s+me\s+)?)?how\s+many\b",
    re.I,
)
"""A count question, after words that ask nothing ("wait, how many people is he paying for")."""
COUNT_CLOSE = 5.0
"""How far (log-odds) under the best reading of a count question about a person the capability that
fed the topic may score and still be what it asks (`_counted_by_supplier`)."""


def count_askers(guides: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """The capabilities whose guide texts ask counts ("how many seats do we have right now")."""
    return frozenset(n for n, texts in guides.items() if any(_HOW_MANY.match(t) for t in texts))


def _counted_by_supplier(
    text: str,
    entries: Sequence[TopicEntry],
    routable: Sequence[str],
    counters: frozenset[str],
    affinity: Callable[[str, Sequence[str]], Mapping[str, float]] | None,
    feeds: Callable[[str, str], bool] | None,
    side_effects: Callable[[str], bool] | None,
) -> list[str]:
    """ "wait, how many people is he paying for" after a billing turn about a customer: a count
    question about the person is asked of the capability that fed the last turn its customer when
    that one asks counts (`counters`) and the last turn's do not, and it scores within `COUNT_CLOSE`
    log-odds of the best reading ("paying for" resembles the charges a little more than the seats on
    file; the count is still of the customer's seats)."""
    if not counters or affinity is None or feeds is None or not _HOW_MANY.match(text):
        return []
    last = [e.capability for e in _last_turn(entries)]
    if any(c in counters for c in last):
        return []
    fed = [
        n
        for n in routable
        if n in counters
        and n not in last
        and any(feeds(n, c) for c in last)
        and not (side_effects is not None and side_effects(n))
    ]
    if not fed:
        return []
    scores = affinity(text, list(routable))
    top = max(scores.values(), default=0.0)
    best = max(fed, key=lambda n: scores.get(n, 0.0))

    def logit(p: float) -> float:
        p = min(max(p, 1e-9), 1 - 1e-9)
        return math.log(p / (1 - p))

    if scores.get(best, 0.0) <= 0.0 or logit(top) - logit(scores[best]) >= COUNT_CLOSE:
        return []
    return [best]


def _with_unanswered(
    text: str,
    unanswered: str,
    entries: Sequence[TopicEntry],
    standalone: Callable[[str], Sequence[str]],
    known: frozenset[str],
    *,
    kinds: Mapping[str, frozenset[str]] | None = None,
    routable: Sequence[str] = (),
    affinity: Callable[[str, Sequence[str]], Mapping[str, float]] | None = None,
    side_effects: Callable[[str], bool] | None = None,
) -> FollowUp | None:
    """A follow-up to a request that was not understood ("vancouver?" after "whats the clock saying in
    lisbon right now", which ended in a question back): the two are read together, by the classifier,
    as one request. Only for a turn that reads as a follow-up (a cue on an elliptical turn, anaphora,
    a correction, a bare slot), whose words alone name nothing and no guide lacks, and whose slot no
    earlier topic clause takes; a yes, a no or a withdrawal are answered elsewhere."""
    if is_yes(text) or declines(text) or _WITHDRAW.match(text):
        return None
    new_words = fragment(text)
    new_slots = slots(new_words) or _bare_place(new_words)
    size = len([w for w in content_words(new_words) if w.strip(",.?!") not in _FILLERS])
    candidate = (
        bool(_CORRECTION.search(text) or _ANAPHORA.search(text) or _ITEM.search(text))
        or (bool(_CUE.search(text)) and size <= 2)
        or (bool(new_slots) and size <= 2)
    )
    if not candidate or any(fit_quality(e.task, s, text) for e in entries for s in new_slots):
        return None
    if known and any(
        stem(w) not in known and w not in unanswered.lower()
        for w in _words_besides_slots(new_words, new_slots)
        if w.strip(",.?!") not in _FILLERS
    ):
        return None
    # The classifier's reading of a bare slot is what it is ("aisha@..." is a customer), not what was
    # asked about it: words that are only slots are not read alone.
    only_slots = bool(new_slots) and not _words_besides_slots(new_words, new_slots)
    if not only_slots and [n for n in standalone(text) if n]:
        return None
    for slot in new_slots:
        # "vancouver?" after "whats the clock saying in lisbon right now", "my bad, it's aisha@..."
        # after "what has mei@... been charged": the new slot takes the place of one of its kind in
        # that request, which is read again with it; when one capability alone reads slots of that
        # kind (a place: the clock), the request is that capability's.
        found = _target(unanswered, slot)
        if found is None or found[1] < 3:
            continue
        done = _unit_substitute(unanswered, slot, text) or substitute(unanswered, slot)
        if done is None:
            continue
        readers = [n for n in routable if kinds and slot.kind in kinds.get(n, frozenset())]
        # Several capabilities read the kind (a number: the calculator, sales, ...): the one the
        # classifier ranks clearly first on the old request, below its threshold as it was; the user
        # goes on with it, which says the request was meant.
        leading = readers if len(readers) == 1 else _leading(unanswered, readers, affinity, side_effects)
        return FollowUp(
            "follow_up",
            leading,
            done,
            f"a new {slot.kind} for the last request, which was not understood: {unanswered!r}"
            + (f"; only {readers[0]} reads one" if len(readers) == 1 else "")
            + (f"; {leading[0]} ranks first on it" if len(readers) > 1 and leading else ""),
        )
    return FollowUp(
        "follow_up",
        [],
        appended(text, unanswered),
        f"read together with the last request, which was not understood: {unanswered!r}",
    )


def _heads_first(entries: list[TopicEntry], feeds: Callable[[str, str], bool] | None) -> list[TopicEntry]:
    """Within each turn, an entry that only provided another's inputs (account for billing) after
    the entries it fed: the turn was about those."""
    if feeds is None:
        return entries

    def fed_others(e: TopicEntry) -> bool:
        return any(
            o.turn == e.turn and o.capability != e.capability and feeds(e.capability, o.capability)
            for o in entries
        )

    return sorted(entries, key=lambda e: (-e.turn, fed_others(e)))


def _is_introduction(clause: str) -> bool:
    """A clause that only says who the user is ("I'm priya@nimbuslabs.dev", "C-1004 here")."""
    found = slots(clause)
    return (
        bool(found) and all(s.kind in IDENTIFIERS for s in found) and not _words_besides_slots(clause, found)
    )


def _fold_introductions(
    entries: list[TopicEntry], feeds: Callable[[str, str], bool] | None = None
) -> list[TopicEntry]:
    """An entry whose clause only says who the user is, next to others of its turn, named no need
    of its own: its identifier belongs to the others' clauses, and it goes. With `feeds`, only when
    its capability provided another's inputs there ("what was I billed? I'm priya@..."); a lookup
    next to an unrelated need ("who is ben@okafor.dev and the time in Lima") stays an entry."""

    def folds(e: TopicEntry) -> bool:
        if not _is_introduction(e.task):
            return False
        others = [o for o in entries if o.turn == e.turn and o.capability != e.capability]
        return bool(others) and (feeds is None or any(feeds(e.capability, o.capability) for o in others))

    out: list[TopicEntry] = []
    for e in entries:
        if folds(e):
            continue
        others = [o for o in entries if o.turn == e.turn and o.capability != e.capability]
        intros = [o.task for o in others if folds(o) and o.task not in e.task]
        out.append(TopicEntry(e.capability, ", ".join([e.task, *intros]), e.turn) if intros else e)
    return out


def _ruled_out(text: str, names: set[str], lexicon: Mapping[str, frozenset[str]]) -> set[str]:
    """The topic capabilities whose own words a correction rules out ("..., not the invoices")."""
    negated = " ".join(m.group(0) for m in _NEGATED.finditer(text))
    words = {stem(w) for w in content_words(negated)}
    return {n for n in names if words & lexicon.get(n, frozenset())}


def _own_words(
    text: str, found: Sequence[Slot], names: Sequence[str], lexicon: Mapping[str, frozenset[str]]
) -> dict[str, int]:
    """Per capability, how many of the new words (not their ids, numbers or addresses) are its own."""
    keep = [s for s in found if s.kind in ("name", "place")]
    rest = text
    for slot in sorted((s for s in found if s not in keep), key=lambda s: -s.start):
        rest = rest[: slot.start] + " " + rest[slot.end :]
    words = {stem(w) for w in content_words(rest) if w.strip(",.?!") not in _COURTESY}
    return {n: len(words & lexicon[n]) for n in names if n in lexicon}


def stem(word: str) -> str:
    """A crude stem that makes "exports" and "export", "failing" and "fail" one word."""
    word = word.lower().strip(".,'’?!")
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def vocabulary(guides: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """Every (stemmed) content word the guides use: what the capabilities know to ask about."""
    return frozenset(stem(w) for texts in guides.values() for text in texts for w in content_words(text))


def guide_lexicon(guides: Mapping[str, Sequence[str]], *, max_owners: int = 2) -> dict[str, frozenset[str]]:
    """Each capability's own words: those of its guide's positive examples (and description) that
    at most `max_owners` capabilities use ("webhooks", "sso" for a status service; not "plan")."""
    words = {name: {stem(w) for text in texts for w in content_words(text)} for name, texts in guides.items()}
    owners: dict[str, int] = {}
    for vocab in words.values():
        for w in vocab:
            owners[w] = owners.get(w, 0) + 1
    return {
        name: frozenset(w for w in vocab if owners[w] <= max_owners and len(w) > 2 and not w.isdigit())
        for name, vocab in words.items()
    }


def slot_kinds(guides: Mapping[str, Sequence[str]]) -> dict[str, frozenset[str]]:
    """The kinds of slot each capability's guide texts hold (clock: places; calculator: expressions
    and numbers; account: identifiers): what a new slot may replace in that capability's clause."""
    return {name: frozenset(s.kind for text in texts for s in slots(text)) for name, texts in guides.items()}


def _takes(kinds: frozenset[str] | None, new: Slot) -> bool:
    """Whether a capability whose guides hold slots of `kinds` reads a slot like `new` (unknown:
    yes). "250*3" does not fit the clock clause "time in Nairobi + 250*4": the clock reads places."""
    if kinds is None:
        return True
    if new.kind in IDENTIFIERS:
        return bool(kinds & IDENTIFIERS)
    if new.kind == "number":
        return bool(kinds & {"number", "expr"})
    if new.kind == "place":
        # A city the time zone database knows is read by a capability whose guides hold places; a
        # place never replaces another kind of name (`_fit`).
        return "place" in kinds
    if new.kind == "name":
        return bool(kinds & {"name", "place"})
    return new.kind in kinds


def _lookup(text: str, standalone: Callable[[str], Sequence[str]]) -> FollowUp | None:
    """ "look up C-1004", "pull up c-1008 for me": a lookup verb and identifiers, nothing else. The
    verb names no need, so the classifier reads the identifiers alone (the capability that resolves
    that kind of id: a customer's account); None when the message is anything more."""
    lead = _LOOKUP.match(text)
    if lead is None:
        return None
    rest = text[lead.end() :]
    found = slots(rest)
    if not found or any(s.kind not in IDENTIFIERS for s in found):
        return None
    if [w for w in _words_besides_slots(rest, found) if w.strip(",.?!") not in _LOOKUP_REST]:
        return None
    names = [n for n in standalone(" ".join(s.text for s in found)) if n]
    if not names:
        return None
    return FollowUp(
        "lookup", names, None, f"a lookup of {', '.join(s.text for s in found)}: read as {', '.join(names)}"
    )


_WHO_OR_WHAT = (
    r"(?:i|we|you|he|she|they|it|that|this|the\s+(?:money|refund|credit|customer|client|payment)"
    r"|(?:my|our|his|her|their)\s+\w+)"
)
_TAKES = re.compile(
    # how long it takes: "how long would it take", "how long until the money is back", "how soon will
    # she see it" (not "how long ago", "how long has she been a customer", "how long is the trial")
    r"\bhow\s+(?:long|soon|quickly|fast)\b(?!\s+ago\b|\s+(?:has|have|had|is|are|was|were)\b)"
    r"|\bhow\s+many\s+(?:business\s+|working\s+|bank\s+)?days\b"
    # when it arrives: "when would it show up", "when will she see the money back"
    r"|\bwhen\s+(?:will|would|does|do|should|can|could|might)\s+" + _WHO_OR_WHAT + r"\s+(?:\w+\s+){0,3}?"
    r"(?:see|get|receive|show|shows|appear|arrive|land|hit|reach|come|be\s+back|go\s+through|clear)\b",
    re.I,
)
_PROCESS = (
    (_TAKES, "how long a {} takes"),
    (
        # who is told: "does she get an email once it's done", "will they be notified"
        re.compile(
            r"\b(?:get|gets|receive|receives|be\s+sent)\s+(?:[\w-]+\s+){0,3}?(?:email|e-mail|notification|notice"
            r"|receipt|confirmation)\b|\b(?:is|are|was|be|get|gets)\s+(?:[\w-]+\s+){0,2}?(?:notified|emailed|told)\b",
            re.I,
        ),
        "is an email sent for a {}",
    ),
    (
        # where it goes: "would it go back to the card", "show up back on her card"
        re.compile(
            r"\b(?:go|goes|going|come|comes|coming|paid|land|lands|show\s+up|shows\s+up|appear|appears)\s+back\s+"
            r"(?:to|on|in|into|onto)\b|\bback\s+(?:on|to|into|onto)\s+(?:\w+\s+)?(?:card|account|bank|statement)\b",
            re.I,
        ),
        "how a {} is paid back",
    ),
    (
        # how it works, who approves: "how does the approval part work", "who has to approve it"
        re.compile(
            r"\bhow\s+(?:does|do|will|would)\s+(?:it|that|this|the)(?:\s+[\w-]+){0,2}?\s+work\b"
            r"|\bwho\s+(?:approves|has\s+to\s+approve|needs\s+to\s+approve|signs\s+(?:it\s+)?off)\b",
            re.I,
        ),
        "the {}",
    ),
)
"""Questions how an action goes once done, and the standalone question each stands for
(`asks_how_it_goes`)."""


def asks_how_it_goes(text: str, action: str) -> str | None:
    """The question the words ask about how `action` goes once it is done, made to stand on its own
    ("how long would it take to show up back on her card?" -> "how long a refund takes", "does she get
    an email once it's done?" -> "is an email sent for a refund", "would it go back to the card they
    paid with?" -> "how a refund is paid back"); None when they ask no such question. A question
    about the process is the help centre's, not a request for the action nor a question about the
    customer's records: never with an identifier or an amount ("how long ago was CH-2004 charged?"
    asks about records)."""
    said = " ".join(text.replace("’", "'").split())
    if not said or not ("?" in said or _QUESTION_START.match(said)):
        return None
    if any(s.kind in ("email", "ident", "amount", "expr") for s in slots(said)):
        return None
    return next((clause.format(action) for pattern, clause in _PROCESS if pattern.search(said)), None)


def how_to_owner(guides: Mapping[str, Sequence[str]], *, least: int = 3) -> str | None:
    """The capability the guides give how-to questions to ("how do I reset my password"): the one
    with the most such positive examples, at least `least` and twice as many as any other."""
    counts = sorted(
        ((sum(bool(_HOW_TO.search(t)) for t in texts), name) for name, texts in guides.items()), reverse=True
    )
    if not counts or counts[0][0] < least or (len(counts) > 1 and counts[0][0] < 2 * counts[1][0]):
        return None
    return counts[0][1]


def _words_besides_slots(text: str, found: Sequence[Slot]) -> list[str]:
    """The content words that are not slots, courtesy ("pls") or an identifier's kind ("customer")."""
    rest = text
    for slot in sorted(found, key=lambda s: -s.start):
        rest = rest[: slot.start] + " " + rest[slot.end :]
    ids = any(s.kind in IDENTIFIERS for s in found)
    return [
        w
        for w in content_words(rest)
        if w.strip(",.?!") not in _COURTESY
        and not (ids and w.strip(",.?!:#") in _KIND_NOUNS)
        and w.strip(",.?!'’") not in _PRO_FORMS
    ]


def _interjection(words: str, slot: Slot, names: frozenset[str]) -> bool:
    """A capitalised word said as a sentence of its own before the message goes on ("Tidy. Do it now
    then - ...", "Sababa. How do I ..."): a word of assent or thanks, not a name, unless it is a place
    or a name the guides write ("Berlin. And the time there?", "Enterprise. What would 30 seats be?")."""
    text = slot.text.strip()
    return (
        slot.kind == "name"
        and " " not in text
        and re.fullmatch(r"\W*", words[: slot.start]) is not None
        and re.match(r"[.!]+\s+\S", words[slot.end :]) is not None
        and text.lower() not in places()
        and text.lower() not in names
    )


def _without_opening_words(
    words: str, found: list[Slot], known: frozenset[str], names: frozenset[str] = frozenset()
) -> list[Slot]:
    """The slots without a capitalised word that opens a sentence and is a word the guides use ("Next
    leg: Apia.", "Time: Chatham instead of Auckland."): a sentence's first word, not a name, when the
    words hold another slot. Not a name the guides write with a capital inside a sentence (`names`:
    "correction: Team, not Starter")."""
    found = [s for s in found if not _interjection(words, s, names)]
    if len(found) < 2 or not known:
        return found
    kept = [
        s
        for s in found
        if not (
            s.kind == "name"
            and " " not in s.text.strip()
            and re.search(r"(?:^|[.:;!?]|\s-)\W*$", words[: s.start]) is not None
            and stem(s.text.lower().strip("'’")) in known
            and s.text.lower().strip("'’") not in names
        )
    ]
    return kept or found


def _bare_place(words: str) -> list[Slot]:
    """A place typed in lower case as the whole of the new words ("reykjavik", "sao paulo pls"): the
    shape finds no capitalised name, the time zone database knows the city."""
    kept = [w for w in words.split() if w.lower().strip(",.?!") not in _COURTESY]
    name = " ".join(kept).strip(" ,.?!")
    if not name or name.lower() not in places():
        return []
    start = words.find(name)
    return [Slot("place", name, start, start + len(name))]


_BACK_TO = re.compile(
    r"^\W*(?:(?:(?:ok(?:ay)?|k+)|so|and|now|right|alright|anyway|also|then)\W+)*"
    r"(?:(?:going|coming|getting|go|come|get|jumping)\s+)?back\s+to\s+"
    r"(?:(?:the|my|our|that|this|his|her|their|your)\s+)?(?P<what>[^,;:.!?]+?)"
    r"(?:\s*[,;:.!?]+|\s+-+|\s*—|$)\s*",
    re.I,
)


_ABOUT_LEAD = re.compile(
    r"^\W*(?:(?:(?:ok(?:ay)?|k+)|so|and|now|right|alright|anyway|also|then|oh|um+|hm+)\W+)*"
    r"(?:as\s+for|as\s+to|for|on|about|re|regarding)\s+"
    r"(?:the|my|our|that|this|his|her|their|your)\s+(?P<what>[^,;:.!?]+?)(?:\s*[,;:]+|\s+-+|\s*—)\s*",
    re.I,
)
"""A turn that first says which need it is about ("ok so for the quote, make it 16", "on the
pricing, what if it's 25 seats"), like "back to the quote": the rest is read against that need."""


def _back_to(
    text: str, entries: Sequence[TopicEntry], lexicon: Mapping[str, frozenset[str]]
) -> tuple[str, TopicEntry] | None:
    """ "back to the quote - 12 seats now", "going back to the failed payment stuff, ...": the words
    after the cue and the most recent topic entry the named thing belongs to (a word of its
    capability's own, or of its clause); None when the words name no entry, or entries of more than
    one capability."""
    m = _BACK_TO.match(text)
    if m is None and (m := _ABOUT_LEAD.match(text)) is not None:
        rest = text[m.end() :]
        if not content_words(rest) or _HOW_TO.search(rest):  # "about the seats, how do I add one myself?"
            return None
    if m is None:
        return None
    words = {stem(w) for w in content_words(m.group("what")) if w.strip(",.?!") not in _FILLERS}
    if not words:
        return None
    named = [
        e
        for e in entries
        if words & lexicon.get(e.capability, frozenset()) or words & {stem(w) for w in content_words(e.task)}
    ]
    if not named or len({e.capability for e in named}) > 1:
        return None
    return text[m.end() :].strip(), named[0]


_STATEMENT_WORDS = 6
"""At most this many content words in a statement that gives the topic a new slot."""
_QUESTION_START = re.compile(
    r"^\W*(?:(?:(?:ok(?:ay)?|k+)|so|and|hmm|well|now|then)\W+)*(?:how|what|what's|whats|when|where|which|who|why|is|are|"
    r"was|were|do|does|did|can|could|will|would|should|has|have)\b",
    re.I,
)


def _supplies(
    text: str, size: int, fitting: Sequence[TopicEntry], standalone: Callable[[str], Sequence[str]]
) -> bool:
    """A statement that gives the last request a new slot ("next supplier is based in Montevideo",
    "the other office is in Perth"): no question, a slot of the same kind as one of the last turn's
    clause (`fitting`: those it fits fully), a few words, which the classifier reads as no
    capability's on their own. The user supplies a value; the need is the one just asked."""
    if not fitting or size > _STATEMENT_WORDS or "?" in text or _QUESTION_START.match(text):
        return False
    return not [n for n in standalone(text) if n]


def _fed_by_slot(
    new_slots: Sequence[Slot],
    entries: Sequence[TopicEntry],
    routable: Sequence[str],
    feeds: Callable[[str, str], bool] | None,
    side_effects: Callable[[str], bool] | None,
    kinds: Mapping[str, frozenset[str]] | None,
) -> str | None:
    """The one capability without side effects, fed by a topic capability, that reads a new slot no
    topic capability reads ("36 dollar" after a customer's lookup: billing reads amounts, account
    does not); None when every slot is the topic's, when no topic clause names a customer, or when
    none or several capabilities would read it."""
    if not kinds or feeds is None or side_effects is None or not new_slots:
        return None
    names = {e.capability for e in entries}
    unread = [s for s in new_slots if not any(_takes(kinds.get(n), s) for n in names)]
    if not unread or not any(s.kind in IDENTIFIERS for e in entries for s in slots(e.task)):
        return None
    fed = [
        n
        for n in routable
        if n not in names
        and not side_effects(n)
        and any(feeds(e.capability, n) for e in entries)
        and all(_takes(kinds.get(n), s) for s in unread)
    ]
    return fed[0] if len(fed) == 1 else None


_COUNT_WITHOUT_NOUN = re.compile(
    r"\b(?:\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|a few|a couple(?: of)?|some)\s+"
    r"(?:more|extra|additional|fewer|less)\b(?=\s*(?:$|[,.;:!?]|(?:on|in|at|for|to|by|from|with|than|of|next|this|"
    r"then|now|please|later|soon|(?:my|our|your|him|her|them)sel(?:f|ves)|themself)\b))",
    re.I,
)
"""A count whose noun is the last request's ("add two more on their own", "drop three fewer"): like "it",
it points back at what the last turn counted."""


_COUNTED = re.compile(r"\bhow\s+many\s+([a-z]+)|\b\d+\s+([a-z]+)", re.I)


def _with_counted_noun(text: str, clause: str) -> str:
    """A count without its noun with the noun the clause counted, and without the count ("add two more"
    after "how many seats are they on" -> "add more seats"): what the instructions are about, in the
    words they use; how many is not (instructions are the same for two or for ten)."""
    m = _COUNT_WITHOUT_NOUN.search(text)
    counted = _COUNTED.search(clause)
    if m is None or counted is None:
        return text
    noun = counted.group(1) or counted.group(2)
    if noun.lower() in STOPWORDS:
        return text
    more = m.group(0).split()[-1]
    return f"{text[: m.start()]}{more} {noun}{text[m.end() :]}"


_DATA_QUESTION = re.compile(r"\bhow\s+(?:many|much|often)\b\s*", re.I)
"""How a request asks for a figure ("how many seats are they on"): the figure is asked of the records,
not a subject instructions are about."""
_PLURAL_THING = re.compile(
    r"\b(?!(?:users|customers|clients|people|members|admins|owners|folks|staff|employees|guys|colleagues"
    r"|teammates|always|sometimes|thanks|yes|plus|status|business|access)\b)[a-z]{2,}[^su's]s\b",
    re.I,
)
"""A plural noun for things ("invoices", "charges", "seats", "exports"), not for people."""


def _how_to_clause(clause: str) -> str:
    """The last request as the subject of a how-to question: without the words that asked it for a
    figure ("c-1001, how many seats are they on" -> "c-1001, seats are they on")."""
    return " ".join(_DATA_QUESTION.sub("", clause).split()) or clause


def _points_at_things(text: str, clause: str) -> bool:
    """Whether the how-to question's words point at a thing the last request named: "it", "that",
    "those", a count without its noun, one of a list ("the missed ones"), and "them" when the request named things in the plural ("how
    can I grab a copy of them?" after "show me the invoices for c-1007"); a person ("how would he
    swap the card himself?") is no thing."""
    if _ANAPHORA.search(_PERSONAL.sub(" ", text)) or _COUNT_WITHOUT_NOUN.search(text) or _ITEM.search(text):
        return True
    them = re.search(r"\bthem\b", text, re.I) is not None
    people = re.search(r"\b(?:he|him|his|she|her|hers)\b", text, re.I) is not None
    return them and not people and _PLURAL_THING.search(_DATA_QUESTION.sub("", clause)) is not None


LEAD = 2.0
"""How many times the next capability's confidence the first must have to lead on its own."""


def _leading(
    text: str,
    names: Sequence[str],
    affinity: Callable[[str, Sequence[str]], Mapping[str, float]] | None,
    side_effects: Callable[[str], bool] | None,
) -> list[str]:
    """The one of `names` the classifier ranks clearly first on `text` (a confidence above 0 and at
    least `LEAD` times the next one's), when it has no side effects; empty otherwise."""
    if affinity is None or side_effects is None or not names:
        return []
    scores = affinity(text, list(names))
    ranked = sorted(names, key=lambda n: -scores.get(n, 0.0))
    top = scores.get(ranked[0], 0.0)
    second = scores.get(ranked[1], 0.0) if len(ranked) > 1 else 0.0
    if top <= 0.0 or top < LEAD * second or side_effects(ranked[0]):
        return []
    return [ranked[0]]


_UNIT_NOUN = re.compile(r"\s+([a-z][a-z'’-]*)", re.I)


def _unit_substitute(clause: str, new: Slot, text: str) -> str | None:
    """The clause with the count of the same thing replaced ("it's 4 boxes" after "3 boxes of 144
    screws, 3*144 total?" -> "4 boxes of 144 screws, 4*144 total?"): the number the new one's noun
    follows in the clause, and the same value where the clause's expression uses it. None when the
    new number has no noun after it, or the clause counts no such thing."""
    if new.kind != "number":
        return None
    after = _UNIT_NOUN.match(text, text.find(new.text) + len(new.text)) if new.text in text else None
    if after is None or after.group(1).lower() in STOPWORDS:
        return None
    noun = stem(after.group(1))
    for old in slots(clause):
        if old.kind != "number":
            continue
        follows = _UNIT_NOUN.match(clause, old.end)
        if follows is None or stem(follows.group(1)) != noun:
            continue
        out = clause[: old.start] + new.text + clause[old.end :]
        exprs = [e for e in slots(out) if e.kind == "expr"]
        for e in sorted(exprs, key=lambda e: -e.start):
            operands = re.sub(rf"(?<![\w.]){re.escape(old.text)}(?![\w.])", new.text, out[e.start : e.end])
            out = out[: e.start] + operands + out[e.end :]
        return out
    return None


def fit_quality_any(clause: str, new_slots: Sequence[Slot], text: str) -> int:
    """The best `fit_quality` of any new slot in `clause` (0: none fits)."""
    return max((fit_quality(clause, s, text) for s in new_slots), default=0)


def _operand_of_unread_expression(
    new_slots: Sequence[Slot],
    entries: Sequence[TopicEntry],
    kinds: Mapping[str, frozenset[str]] | None,
    routable: Sequence[str],
    correction: bool,
) -> FollowUp | None:
    """ "for the division, split it by 12 instead" after "time in Singapore + 2400/16" that the clock
    alone answered: new numbers that no capability of the last turn reads, for a last clause that
    holds an expression, go to the one capability whose guides hold expressions, with the expression
    and the new operand in place (a rate for a rate, else the last one). None otherwise."""
    if not kinds or not new_slots or any(s.kind != "number" for s in new_slots):
        return None
    last = _last_turn(entries)
    if any(_takes(kinds.get(e.capability), s) for e in last for s in new_slots):
        return None
    readers = [n for n in routable if "expr" in kinds.get(n, frozenset())]
    if len(readers) != 1:
        return None
    for entry in last:
        if (expression := expression_of(entry.task)) is None:
            continue
        if (done := substitute(expression, new_slots[-1])) is not None:
            return FollowUp(
                "correction" if correction else "follow_up",
                readers,
                done,
                f"a new operand for the expression of {entry.task!r}, which only {readers[0]} reads",
            )
    return None


def _misread_last(
    new_words: str,
    new_slots: Sequence[Slot],
    entries: Sequence[TopicEntry],
    takers: Sequence[str],
    affinity: Callable[[str, Sequence[str]], Mapping[str, float]] | None,
    side_effects: Callable[[str], bool] | None,
) -> FollowUp | None:
    """ "what about 300" after "Enterprise numbers for 120 seats" was read as a customer lookup: the
    new slot is of a kind no topic capability reads, yet it takes the place of a slot of that kind in
    the last request, so that request was read by a capability that does not read what it holds.
    The request with the new slot in place goes to the capability, of those that read the kind
    (`takers`), on which the classifier ranks the old request highest, when one leads and has no
    side effects. Only for an elliptical turn (the new slot and at most one other word); None
    otherwise."""
    if affinity is None or side_effects is None or not takers:
        return None
    if len(_words_besides_slots(new_words, new_slots)) > 1:
        return None
    clause = _last_turn(entries)[0].task
    replaced = next((done for s in new_slots if (done := substitute(clause, s)) is not None), None)
    if replaced is None:
        return None
    leading = _leading(clause, takers, affinity, side_effects)
    if not leading:
        return None
    return FollowUp(
        "follow_up",
        leading,
        replaced,
        f"a new slot for the last request {clause!r}, which holds one of its kind: read as {leading[0]}'s",
    )


_INNER_PLACE_WORDS = 4
"""At most this many content words around a place typed in lower case for it to be read as the new slot
("and in santiago question mark"); a longer turn is a request of its own that happens to name a city."""


def _inner_places(words: str) -> list[Slot]:
    """The places a short fragment typed in lower case names among other words ("santiago question
    mark", "vientiane the one in laos"): the shape finds no capitalised name, the time zone database
    knows the city. None in a longer fragment (`_INNER_PLACE_WORDS`). Read only after a cue or in a
    correction ("and in santiago ...", "I meant vientiane ..."): "is lagos too far?" asks about Lagos."""
    if len(content_words(words)) > _INNER_PLACE_WORDS:
        return []
    return _lower_places(words, [])


_MEANT_MID = re.compile(
    r"\b(?:I\s+)?(?:meant|mean)\b(?:\s+to\s+(?:say|ask))?|\bshould(?:'ve| have) said\b", re.I
)


def _meant_words(words: str) -> str | None:
    """What a correction means when it first repeats what it said ("I said vienna I meant vientiane",
    "it's not 18, I mean 81"): the words after the last "I meant" inside the new words; None when
    "meant" is not said after other words (the lead of a correction is already cut by `fragment`)."""
    found = [m for m in _MEANT_MID.finditer(words) if m.start() > 0]
    if not found:
        return None
    rest = words[found[-1].end() :].strip(" ,;:.!?-")
    return rest if content_words(rest) else None


def _each_its_own(
    new_slots: Sequence[Slot], last: Sequence[TopicEntry], kinds: Mapping[str, frozenset[str]] | None
) -> list[tuple[TopicEntry, str]] | None:
    """A slot for each of several needs of the last turn ("same for 8*8 and Helsinki" after "what's
    9*9 and the time in Oslo?"): each entry's clause with the one new slot that fits it (of a kind its
    capability reads), when every new slot fits exactly one entry and at least two entries get one.
    None otherwise: one slot, or slots that fit one need only, are the usual follow-up of one need."""
    if len(new_slots) < 2 or len({e.capability for e in last}) < 2:
        return None
    done: dict[str, tuple[TopicEntry, str]] = {}
    for slot in new_slots:
        fits = [
            (e, clause)
            for e in last
            if _takes((kinds or {}).get(e.capability) if kinds else None, slot)
            and (clause := substitute(e.task, slot)) is not None
        ]
        if len(fits) != 1 or fits[0][0].capability in done:
            return None
        done[fits[0][0].capability] = fits[0]
    return list(done.values()) if len(done) >= 2 else None


def _slot_fits_clause(new: Slot, clause: str) -> bool:
    return substitute(clause, new) is not None


def _rewrite(
    text: str,
    new_words: str,
    new_slots: Sequence[Slot],
    clause: str,
    *,
    anaphora: bool,
    known_names: frozenset[str] = frozenset(),
) -> str:
    ordered = sorted(new_slots, key=lambda s: _precedence(text, s, clause))
    for i, slot in enumerate(ordered):
        added = _added(text, slot, clause)
        unit = _unit_substitute(clause, slot, text) if added is slot else None
        if (done := unit or substitute(clause, added)) is not None:
            done = _also(done, [added], ordered[i + 1 :], known_names)
            return _other_customer(done, clause, added, ordered, known_names)
    words = content_words(new_words)
    if (
        not anaphora
        and not new_slots
        and 0 < len(words) <= 3
        and (done := _words_substitute(clause, new_words, known_names))
    ):
        return done
    return appended(text, clause)


_CUSTOMER_IDS = frozenset({"email", "C", ANY_ID})
"""The subtypes of identifier that name a customer (an address, "C-1007", "customer 1004"), not a thing
of theirs ("CH-2034")."""


def _other_customer(
    done: str, clause: str, new: Slot, used: Sequence[Slot], known_names: frozenset[str]
) -> str:
    """ "do the same for Whitaker Legal" after "check Kola Works's account? it's aisha@...": a name put
    in place of the customer's name leaves the old customer's address or id in the clause, which the
    capability would read first; they are the new customer's name too. Not when both names are ones the
    capability's guides write (a plan for a plan: "Enterprise" for "Team"), nor when the message gives
    an identifier itself."""
    found = _target(clause, new)
    if (
        new.kind != "name"
        or found is None
        or found[0].kind != "name"
        or any(s.kind in IDENTIFIERS for s in used)
        or all(
            w in known_names
            for name in (new.text, found[0].text)
            for w in re.findall(r"[a-z]+", name.lower())
        )
    ):
        return done
    for old in sorted(slots(done), key=lambda s: -s.start):
        if old.kind in IDENTIFIERS and old.subtype in _CUSTOMER_IDS:
            done = done[: old.start] + new.text + done[old.end :]
    return done


_MORE_OF = r"(?:more|extra|additional|further)"

_SLOT_GROUPS = {
    "number": "n",
    "expr": "n",
    "amount": "a",
    "ident": "i",
    "email": "i",
    "name": "p",
    "place": "p",
}


def _also(clause: str, used: list[Slot], rest: Sequence[Slot], known_names: frozenset[str]) -> str:
    """The rewritten clause with the other new values in place too, one of each sort ("and do the 30
    again but on Enterprise" after "Team for 18 people": the count and the plan): a count, an
    identifier, a place, or a name the capability's guides know ("Enterprise"); another sort of
    value than those already put in, replacing a value of exactly its kind that is not one of them."""
    for slot in rest:
        group = _SLOT_GROUPS.get(slot.kind)
        if group is None or any(_SLOT_GROUPS.get(u.kind) == group for u in used):
            continue
        if slot.kind == "name" and slot.text.lower() not in known_names:
            continue
        found = _target(clause, slot)
        if found is None or found[1] < 3 or any(found[0].text == u.text for u in used):
            continue
        if (done := substitute(clause, slot)) is not None:
            clause = done
            used.append(slot)
    return clause


def _precedence(text: str, new: Slot, clause: str) -> int:
    """Which new slot goes into the old clause first: a count said as an addition ("12 seats plus the
    Berlin team, that's 7 more": the sum is the count asked for), then an identifier (it names what
    the request is about more exactly than a name beside it: "the Kola Works lady, aisha@..."), then
    the rest in the order said (the sort is stable)."""
    if _added(text, new, clause) is not new:
        return 0
    return 1 if new.kind in IDENTIFIERS else 2


def _added(text: str, new: Slot, clause: str) -> Slot:
    """A count said as an addition ("4 more people", "another 10 seats", "3 extra seats") in place of
    the clause's count: the sum of the two ("for 12 seats" -> 16). Not an operand of an expression
    (arithmetic continues by `continuation`)."""
    if new.kind != "number" or not re.fullmatch(r"\d+", new.text):
        return new
    n = re.escape(new.text)
    if not re.search(rf"\b{n}\s+{_MORE_OF}\b|\b(?:another|an? {_MORE_OF})\s+{n}\b", text, re.I):
        return new
    found = _target(clause, new)
    if found is None or not any(s.kind == "number" and s.start == found[0].start for s in slots(clause)):
        return new
    old = found[0].text
    if not re.fullmatch(r"\d+", old):
        return new
    return Slot("number", str(int(old) + int(new.text)), new.start, new.end, new.subtype)


def _last_turn(entries: Sequence[TopicEntry]) -> list[TopicEntry]:
    last = max(e.turn for e in entries)
    return [e for e in entries if e.turn == last]


def topic_after(
    previous: Sequence[Mapping[str, Any]],
    ran: Mapping[str, str],
    *,
    turn: int,
    keep_turns: int = 3,
    limit: int = 4,
) -> list[dict[str, Any]]:
    """The thread's topic after a turn that ran `ran` (capability -> the clause it ran for): those
    first, then earlier entries of other capabilities from the last `keep_turns` turns."""
    entries = [{"capability": name, "task": task, "turn": turn} for name, task in ran.items()]
    for old in previous:
        if old["capability"] not in ran and turn - int(old.get("turn", 0)) < keep_turns:
            entries.append(dict(old))
    return entries[:limit]


__all__ = [
    "FollowUp",
    "FollowUpKind",
    "Slot",
    "TopicEntry",
    "appended",
    "asks_how_it_goes",
    "content_words",
    "continuation",
    "declines",
    "expression_of",
    "fit_quality",
    "fragment",
    "guide_lexicon",
    "guide_names",
    "how_to_owner",
    "is_yes",
    "places",
    "resolve",
    "slot_kinds",
    "slots",
    "stem",
    "substitute",
    "topic_after",
    "vocabulary",
]


_SWAP_LEAD = re.compile(
    r"^\W*(?:(?:"
    + _SOUND
    + r"|uh+|um+|erm|well|so|ok(?:ay)?|no|nope|sorry|"
    + _SLIP
    + r"|actually|wait|correction|"
    r"hang on|hold on|my bad|my mistake)\W+)*"
    r"(?:(?:that'?s|that was|it'?s|it was)\s+)?(?:the\s+)?wrong\s+[a-z-]+(?:\s+[a-z-]+)?\s*(?:[:,;-]+|—)\s*"
    r"|^\W*(?:(?:"
    + _SOUND
    + r"|uh+|um+|erm|well|so|ok(?:ay)?|no|nope|sorry|"
    + _SLIP
    + r"|actually|wait|correction|"
    r"hang on|hold on|my bad|my mistake)\W+)*(?:I\s+meant|I\s+mean|meant|should(?:'ve| have) (?:said|been)|"
    r"(?:it\s+)?should\s+(?:be|say)|make\s+(?:it|that)|change\s+(?:it|that)\s+to)\s+"
    r"|^\W*(?:(?:" + _SOUND + r"|uh+|um+|erm|no|nope|sorry|" + _SLIP + r"|my bad|my mistake)\W+)+",
    re.I,
)
"""How a turn says it puts a value in place of one it gave: "sorry, wrong plan:", "I meant", "make that",
"oops,"."""
_SWAP_OLD = re.compile(
    r"^(?P<new>.+?)\s*,?\s+(?:not|rather than|instead of)\s+(?:the\s+)?(?P<old>[\w@.+'’-]+(?:\s+[\w@.+'’-]+)?)$"
    r"|^(?:not\s+(?:the\s+)?(?P<old2>[\w@.+'’-]+(?:\s+[\w@.+'’-]+)?)\s*[,;:-]+\s*(?:but\s+|I\s+meant\s+)?)(?P<new2>.+)$",
    re.I,
)
"""A swap that says the old value too: "Enterprise, not Team", "not Team, Enterprise"."""
_SWAP_TAIL = re.compile(
    r"[\s,;:.!?-]*(?:\b(?:instead|please|pls|then|sorry|I mean|I meant|thanks)\b[\s,;:.!?-]*)*$", re.I
)


_N = r"(\d+(?:\.\d+)?)"
_NUMBER_FOR_NUMBER = (
    re.compile(
        rf"(?<![\w.,$€£-]){_N}(?:\s+[a-z]+)?\s*,?\s+(?:not|rather than|instead of)\s+(?:the\s+)?{_N}(?![\w.,]\d|\w)",
        re.I,
    ),
    re.compile(
        r"\bnot\s+(?:the\s+)?(?P<old>\d+(?:\.\d+)?)(?:\s+[a-z]+)?\s*[,;:-]*\s*(?:but\s+|it'?s\s+|I\s+meant\s+)?"
        r"(?P<new>\d+(?:\.\d+)?)(?![\w.,]\d|\w)",
        re.I,
    ),
    re.compile(
        r"(?<![\w.,$€£-])(?P<old>\d+(?:\.\d+)?)\s*(?:->|→|=>)\s*(?P<new>\d+(?:\.\d+)?)(?![\w.,]\d|\w)"
    ),
)
"""A number said in place of a number the user names: "9 tables not 6", "4.5 rather than 3.5", "not 6
but 9", "6 -> 9"."""
_NUMBER_FOR_NUMBER_WORDS = 8


def _number_replaced(text: str, entries: Sequence[TopicEntry]) -> FollowUp | None:
    """The most recent clause that holds the old number a turn names, with the new one in each place
    it has there ("Caterer charges 95 per table for 6 tables - what's 95 * 6?" -> 9 tables, 95 * 9);
    None when the turn says no such pair, says much more, or no clause holds the old number."""
    for pattern in _NUMBER_FOR_NUMBER:
        m = pattern.search(text)
        if m is None:
            continue
        new, old = (m.group("new"), m.group("old")) if "new" in pattern.groupindex else m.groups()
        if new == old or len(content_words(text)) > _NUMBER_FOR_NUMBER_WORDS + 2:
            return None
        at = re.compile(rf"(?<![\w.,$€£-]){re.escape(old)}(?![\w]|[.,]\d)")
        for entry in entries:  # most recent first
            if at.search(entry.task) is None:
                continue
            rewritten = at.sub(new, entry.task)
            return FollowUp(
                "correction",
                [entry.capability],
                rewritten,
                f"{new} in place of the {old} of {entry.capability}'s request: {entry.task!r}",
            )
        return None
    return None


def _swapped(
    text: str, entries: Sequence[TopicEntry], known_names: Mapping[str, frozenset[str]]
) -> FollowUp | None:
    """A turn that only swaps one value of the last request ("sorry, wrong plan: Enterprise", "I meant
    Enterprise not Team", "make that Enterprise", "oops, Enterprise, not Team"): the last request with
    the new value in place of the old, to the capability that ran it. The new value is one slot (a
    name, an id, a number, a place) or a name the guides know, and it takes the place of the old value
    the turn names, else of a slot of its kind in the clause, else of a name the guides know typed in
    lower case. None when the turn says anything more, or no clause of the last turn takes the value."""
    lead = _SWAP_LEAD.match(text)
    start = lead.end() if lead is not None else 0
    if not start and not re.match(r"^\W*not\s", text, re.I):  # "not starter, Team" says it itself
        return None
    body = _SWAP_TAIL.sub("", text[start:]).strip(" ,;:.!?-")
    old_value: str | None = None
    if (said := _SWAP_OLD.match(body)) is not None:
        body = (said.group("new") or said.group("new2") or "").strip(" ,;:.!?-")
        old_value = (said.group("old") or said.group("old2") or "").strip(" ,;:.!?-")
    if not body or len(body.split()) > 3:
        return None
    names = frozenset().union(*known_names.values()) if known_names else frozenset()
    found = slots(body) or _bare_place(body)
    lowered = " ".join(body.lower().split())
    if len(found) == 1 and body[: found[0].start].strip() == "" and body[found[0].end :].strip(" .!?") == "":
        new: Slot | None = found[0]
    elif lowered in names:
        new = None
    else:
        return None
    for entry in _last_turn(entries):
        clause = entry.task
        rewritten: str | None = None
        if old_value:
            m = re.search(rf"(?<![\w@.-]){re.escape(old_value)}(?![\w@-])", clause, re.I)
            if m is None:
                continue
            rewritten = clause[: m.start()] + body + clause[m.end() :]
        elif new is not None and new.kind != "number":
            target = _target(clause, new)
            # A name the guides know ("Team": a plan) never takes the place of a place ("Oslo").
            if target is not None and not (lowered in names and target[0].kind != new.kind):
                rewritten = substitute(clause, new)
        if rewritten is None and not old_value and lowered in names:
            # "wrong plan: Enterprise" after "team plan uptime ...": the name the guides know that the
            # clause typed (in any case) gives way to the new one.
            known = [
                m
                for m in re.finditer(r"[A-Za-z][\w'’-]*", clause)
                if m.group(0).lower() in names and m.group(0).lower() != lowered
            ]
            if known:
                rewritten = clause[: known[-1].start()] + body + clause[known[-1].end() :]
        if rewritten is not None and rewritten.lower() != clause.lower():
            return FollowUp(
                "correction",
                [entry.capability],
                rewritten,
                f"a value in place of one of {entry.capability}'s last request: {clause!r}",
            )
    return None
