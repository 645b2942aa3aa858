"""Classifier: which capabilities does the task need?

Always-active capabilities are added without a model call. The others are scored:
- `embedding`: the offline few-shot scorer over the guide examples (graph/classifier/scorer.py);
- `llm`: ONE structured call that judges all candidates together;
- `cascade`: the scorer decides where it is confident; one LLM call judges only the uncertain ones.
A capability is selected when its confidence reaches the threshold; when none does, the plan is
`clarify` (never a guess). After a RECLASSIFICATION error the failing capability is excluded.
"""

from __future__ import annotations

import asyncio
import difflib
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from graph.classifier import FewShotScorer, near_threshold
from graph.classifier.clauses import (
    IDENTIFIER,
    another_need,
    asks_how_to,
    clause_spans,
    courtesy,
    introduces_only,
    mentions_identifier,
    named_subject,
    need_words,
    reads_as_request,
    sets_the_scene,
    without_courtesy,
    without_identifiers,
)
from graph.classifier.recognised import known_names, recognising, with_recognised, without_names
from graph.classifier.thresholds import SECONDARY_FLOOR, SECONDARY_MARGIN, logit
from graph.config.registry import CapabilityInfo, Registry
from graph.config.schema import ClassifierMode
from graph.context.turns import pin
from graph.intent import side_effect_intent, turns_down
from graph.models import LLMGateway, add_notes
from graph.state import AgentState, ScoredCapability
from nodes.base import NodeCall, Update
from nodes.planning import apply_reroutes


class CapabilityJudgement(BaseModel):
    name: str = Field(max_length=100)
    """A candidate's name, exactly as listed."""
    relevant: bool
    confidence: float = Field(ge=0.0, le=1.0)
    reason: str = Field(default="", max_length=500)


class Classification(BaseModel):
    """The model's judgement of every candidate capability in one answer."""

    judgements: list[CapabilityJudgement] = Field(max_length=200)


SYSTEM = (
    "You route a user's task to specialist capabilities. For EVERY candidate below, judge whether the "
    "task needs it (a task may need several, or none). Give a confidence in [0, 1] and a short reason. "
    "Use the examples: result true means the capability was needed, false that it was not."
)


def resolve_mode(call: NodeCall) -> ClassifierMode:
    mode = call.deps.registry.spec.classifier.mode
    if mode == "auto":
        return "cascade" if call.llm.available("classifier") else "embedding"
    return mode


def describe_candidates(candidates: Sequence[CapabilityInfo], examples_per_capability: int = 6) -> str:
    lines = []
    for cap in candidates:
        guide = cap.classifier_guide
        lines.append(f"- {cap.name}: {cap.description}")
        if guide.instructions:
            lines.append(f"  when: {guide.instructions}")
        for ex in guide.examples[:examples_per_capability]:
            lines.append(f"  example: {ex.query!r} -> {str(ex.result).lower()} ({ex.reason})")
    return "\n".join(lines)


async def judge(
    llm: LLMGateway, task: str, candidates: Sequence[CapabilityInfo], context: str
) -> dict[str, float]:
    """One model call for all candidates; names the model made up are ignored (untrusted output)."""
    prompt = f"Task: {task}\n{context}\nCandidates:\n{describe_candidates(candidates)}"
    result = await llm.structured(
        "classifier", [SystemMessage(content=SYSTEM), HumanMessage(content=prompt)], Classification
    )
    names = {c.name for c in candidates}
    scores = {name: 0.0 for name in names}
    for j in result.judgements:
        if j.name in names:
            scores[j.name] = j.confidence if j.relevant else min(j.confidence, 1.0 - j.confidence)
    return scores


def implied(registry: Registry, chosen: set[str], unasked: set[str]) -> set[str]:
    """Selected capabilities that only stand for an input of another selected one: not asked for
    (`Score.asked`) and providing what an asked one requires. "I was charged for a seat I never
    used, please refund it" names a charge, but asks for the refund; the planner still runs the
    lookup the refund requires (`requires`/`provides`), the classifier need not select it."""
    asked = chosen - unasked
    needed = {key for name in asked for key in registry.capabilities[name].requires}
    return {n for n in chosen & unasked if needed & set(registry.capabilities[n].provides)}


_SUBJECT_PREFIX = re.compile(r"^\s*(?:(?:re|fwd?|aw|sv|tr)\s*:\s*)+", re.I)
_HEADER = re.compile(r"^\s*(?:from|to|cc|bcc|date|sent)\s*:.*$", re.I)
_SUBJECT = re.compile(r"^\s*subject\s*:\s*", re.I)
_ATTRIBUTION = re.compile(
    r"^\s*(?:on\s.{1,100}\bwrote\s*:|(?:-+\s*)?(?:original|forwarded)\s+message\s*-*|begin\s+forwarded\s+message\s*:?)\s*$",
    re.I,
)
_SENT_FROM = re.compile(
    r"^\s*(?:sent|sent\s+from|get)\s+(?:from\s+)?(?:my\s+)?"
    r"(?:iphone|ipad|android|galaxy|samsung|mobile|phone|outlook|blackberry)\b.*$"
    r"|^\s*sent\s+from\s+my\s+\S+.*$",
    re.I,
)
_DISCLAIMER = re.compile(
    r"\b(?:confidential|privileged|intended\s+(?:solely\s+|only\s+)?for\s+the\s+(?:use|addressee|recipient)"
    r"|received\s+this\s+(?:e-?mail|message)\s+in\s+error|before\s+printing|think\s+before\s+you\s+print)\b",
    re.I,
)
_CLOSING = re.compile(
    r"^\s*(?:(?:kind|best|warm|warmest)\s+(?:regards|wishes)|regards|best|cheers|thanks|thank\s+you|many\s+thanks"
    r"|thanks\s+(?:again|in\s+advance)|sincerely|yours(?:\s+(?:sincerely|faithfully|truly))?|ta|rgds|br)\s*[,.!]?\s*$",
    re.I,
)
_SIGNATURE_LINE = 8
"""The most words a line of a signature block has ("Head of Ops, Nimbus Labs")."""


def without_mail_furniture(task: str) -> str:
    """A request pasted or forwarded as an e-mail, without what the mail program and the sender's
    habits put around the words that ask: "Re:"/"Fwd:" before a subject, header lines ("From:",
    "Sent:"; a "Subject:" keeps its words), the line that introduces a quote ("On Tue, Aisha Bello
    wrote:", "Forwarded message"), the quote marks ("> ") before quoted lines, "Sent from my iPhone",
    a confidentiality or "before printing" notice, and the signature: a "--" line and what follows,
    or a closing ("Kind regards", "Thanks,") and the short lines after it (a name, a title, a
    company). The e-mail addresses and customer ids of the signature stay, last, on a line of their
    own: they say who asks.
    A request of one line, or without any of it, is returned as it is."""
    if "\n" not in task and not _SUBJECT_PREFIX.match(task):
        return task
    lines = task.splitlines()
    furniture = [bool(_SENT_FROM.match(x) or _DISCLAIMER.search(x) or _HEADER.match(x)) for x in lines]
    kept: list[str] = []
    tail: list[str] = []  # identifiers of the signature
    signature = False
    changed = False
    for i, raw in enumerate(lines):
        line = raw
        quoted = re.match(r"^\s*(?:>\s*)+", line)
        if quoted:
            line, changed = line[quoted.end() :], True
        if signature:
            tail += [m.group() for m in IDENTIFIER.finditer(line)]
            changed = True
            continue
        stripped = line.strip()
        if i == 0 and _SUBJECT_PREFIX.match(line):
            line, changed = _SUBJECT_PREFIX.sub("", line), True
            stripped = line.strip()
        if _SUBJECT.match(line):
            line, changed = _SUBJECT.sub("", line), True
            stripped = line.strip()
        if re.fullmatch(r"--+\s*|_{3,}", stripped) or (
            _CLOSING.match(stripped)
            and all(
                len(rest.split()) <= _SIGNATURE_LINE and "?" not in rest
                for rest, other in zip(lines[i + 1 :], furniture[i + 1 :], strict=True)
                if not other
            )
        ):
            signature = changed = True
            continue
        if (
            _HEADER.match(line)
            or _ATTRIBUTION.match(line)
            or _SENT_FROM.match(line)
            or _DISCLAIMER.search(line)
        ):
            tail += [m.group() for m in IDENTIFIER.finditer(line)] if _HEADER.match(line) else []
            changed = True
            continue
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    block = len(kept) - next((j for j, x in enumerate(reversed(kept)) if not x.strip()), len(kept))
    if 0 < block < len(kept) and len(kept) - block <= 4 and _signed(kept[block:]):
        # "...\n\nMei Chen\nLantern HQ | mei@lanternhq.com": a name and who they are, last
        tail = [m.group() for x in kept[block:] for m in IDENTIFIER.finditer(x)] + tail
        kept, changed = kept[:block], True
    if not changed:
        return task
    body = "\n".join(kept).strip()
    if not re.search(r"[A-Za-z]{3,}", body):
        return task
    if tail:
        body = f"{body.rstrip()}\n\n{' '.join(dict.fromkeys(tail))}"  # a clause of its own: who asks
    return body


def _signed(block: Sequence[str]) -> bool:
    """Whether the last lines of a request are a signature: short (`_SIGNATURE_LINE` words or
    fewer, no question), the first a name only (capitalised words, at most four)."""
    if any(len(x.split()) > _SIGNATURE_LINE or "?" in x for x in block):
        return False
    words = [w.strip(",.;:") for w in block[0].split()]
    return 0 < len(words) <= 4 and all(
        w[:1].isupper() and w.replace("-", "").replace("'", "").isalpha() for w in words
    )


async def classify(
    task: str,
    registry: Registry,
    scorer: FewShotScorer,
    llm: LLMGateway,
    *,
    mode: ClassifierMode,
    excluded: Sequence[str] = (),
    context: str = "",
) -> list[ScoredCapability]:
    """Score and select capabilities for a task: the classifier node's work, reusable by `routegraph eval`."""
    settings = registry.spec.classifier
    # "Re: Re: duplicate?\n...\nKind regards\nPriya ...": route on the words that ask
    task = without_mail_furniture(task)
    candidates = [c for c in registry.routable if c.name not in excluded and registry.allowed(c.name)]
    source: dict[str, str] = {}
    scores: dict[str, float] = {}
    eligible: set[str] | None = None  # None: any capability above its threshold
    clause_rows: list[tuple[str, np.ndarray]] = []  # clauses that name a need, for `clause_needs`
    unasked: set[str] = set()  # best match of statements only, not of a request
    names = [c.name for c in candidates]
    if mode == "llm" and candidates:
        scores = await judge(llm, task, candidates, context)
        source = dict.fromkeys(scores, "llm")
    elif candidates:
        # Encoding (and, the first time, loading and fine-tuning the encoder) is CPU and file work:
        # off the event loop, which stays free for other runs (LangGraph server).
        scored, clause_rows = await asyncio.to_thread(scorer.score_clauses, task, names)
        scores = {s.name: s.confidence for s in scored}
        if settings.selection == "per_clause":
            eligible = {s.name for s in scored if s.wins}
            unasked = {s.name for s in scored if not s.asked} - asked_in_clauses(
                task, clause_rows, scorer.labels, names
            )
        else:
            clause_rows = []
        source = dict.fromkeys(scores, "scorer")
        if mode == "cascade":
            band = settings.cascade_band
            uncertain = [
                c
                for c in candidates
                if near_threshold(scores[c.name], scorer.threshold_for(c.name, settings.threshold), band)
            ]
            if uncertain:
                judged = await judge(llm, task, uncertain, context)
                scores.update(judged)
                source.update(dict.fromkeys(judged, "llm"))

    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    chosen = {
        n
        for n, s in ranked[: settings.max_capabilities]
        if s >= (settings.threshold if source[n] == "llm" else scorer.threshold_for(n, settings.threshold))
        and (eligible is None or source[n] == "llm" or n in eligible)
    }
    if chosen and clause_rows and mode != "llm":
        # "Good morning, hope all is well. My gym charged me twice": incidents, for the courtesy.
        suspects = chosen & courtesy_winners(clause_rows, scorer.labels, names, courteous(registry))
        if suspects:
            chosen -= await asyncio.to_thread(
                _courtesy_alone, task, scorer, names, settings.threshold, suspects
            )
    if not chosen and clause_rows and mode != "llm":
        # A long polite request: its need, diluted by the courtesy around it, reached no threshold.
        chosen, clause_rows = await asyncio.to_thread(
            _without_the_courtesy, task, scorer, names, settings.threshold, clause_rows
        )
        if (
            not chosen
            and (lead := clear_request(task, clause_rows, scorer.labels, names)) is not None
            and not names_other(task, registry)  # "a refund for my train ticket from Milan to Rome"
        ):
            chosen = {lead}
    if (  # "where can I find the webhook signing secret": a how-to about what the guides talk of, its
        # best the help centre or within HOW_TO_CLOSE of it ("how do I remove a user": account ahead)
        not chosen
        and mode != "llm"
        and candidates
        and scorer.split_clauses
        and settings.selection == "per_clause"
        and (owner := how_to_owner(registry)) in names
        and float(logit(ranked[0][1]) - logit(scores[owner])) < HOW_TO_CLOSE
        and our_how_to(task, registry, advice=ranked[0][0] == owner)
    ):
        chosen = {owner}
    if (  # "team plan for 9 ppl, how much": in the guides' words, and clearly one need, below its threshold
        not chosen
        and mode != "llm"
        and len(ranked) > 1
        and scorer.split_clauses
        and settings.selection == "per_clause"
        and plainly_ours(task, registry, ranked)
    ):
        chosen = {ranked[0][0]}
    if (  # "wait how many ppl is he even paying for": a count question, the counting capability's
        not chosen
        and mode != "llm"
        and ranked
        and settings.selection == "per_clause"
        and (counted := count_asked(task, registry, ranked))
    ):
        chosen = {counted}
    if (  # "INV-3002 paid?", "c1003 plan + seats": a terse request about records, each id's owner;
        # also when only the customer lookup took it without a customer id ("INC-302 eta?": the
        # record id resembled a customer's)
        (not chosen or (not IDENTIFIER.search(task) and lookups_only(registry, chosen)))
        and mode != "llm"
        and candidates
        and _RECORD_ID.search(task)
        and (
            owners := id_owners(
                task,
                registry,
                scorer.score(" ".join(m.group() for m in IDENTIFIER.finditer(task)), names)[0].name
                if IDENTIFIER.search(task)
                else None,
            )
        )
    ):
        chosen = owners & set(names)
    if (  # "can I get a refund for my duplicate charge? I'm omar@brightpath.co": asked of our customer
        not chosen and mode != "llm" and candidates and (asked := asked_of_ours(task, registry, ranked))
    ):
        chosen = asked
    if not chosen and mode != "llm" and candidates and _ADDRESSED.search(task):
        # "Our rota app keeps getting HTTP 401 from your API. Why?": the code's owner, asked of us
        chosen = coded_request(task, registry, ranked)
    if not chosen and mode != "llm" and candidates and IDENTIFIER.search(task):
        # "charges for jane@acme.io pls": the address pulled a terse request below every threshold
        chosen = await asyncio.to_thread(_without_the_who, task, registry, scorer, names)
    # Whatever the fallbacks above took, a capability the model judged (cascade) and found below the
    # threshold stays out: "tell me the joke of the day" is not the clock's because the model said so.
    chosen -= {n for n in chosen if source[n] == "llm" and scores[n] < settings.threshold}
    secondary: set[str] = set()
    if chosen:  # a request's secondary needs, next to what it selected by the thresholds
        secondary = set(
            clause_needs(
                task,
                clause_rows,
                scorer.labels,
                names,
                chosen,
                how_to=how_to_owner(registry),
                counters=form_users(registry, _COUNT),
                shapes=shaped(registry, names),
            )
        )
        extra = [n for n, _ in ranked if n in secondary and n not in chosen and source[n] == "scorer"]
        added = set(extra[: max(0, settings.max_capabilities - len(chosen))])
        # "..., and can you take back the extra renewal charge?": the help centre, a hair ahead of
        # the refund in that clause alone, gives the clause up to the refund read from it.
        chosen -= read_as_other(task, clause_rows, scorer.labels, names, chosen, added, ranked)
        chosen |= added
        chosen -= implied(registry, chosen, unasked)
        # "I was charged twice in November and would like the duplicate returned": the charge is
        # what the refund is about; the planner runs billing for the refund's input anyway.
        chosen -= grounds_of_ask(task, clause_rows, scorer.labels, names, registry, chosen)
        chosen -= context_of_how_to(task, clause_rows, registry, chosen, unasked, scorer.labels, names)
        # "We were told the first month would be free, yet there's a charge on the card": the help
        # centre won the story, not a question; the charge is the need.
        chosen -= told_not_asked(
            task, clause_rows, scorer.labels, names, chosen - set(extra), ranked, how_to_owner(registry)
        )
        # "which plan are we on and until when is it valid? sofia@...": her dates, on file
        chosen -= own_record_asked(
            task, clause_rows, scorer.labels, names, registry, chosen, how_to_owner(registry)
        )
        # "... the crews log every job through your app ... how many seats are we paying for?":
        # the help centre answers questions; a story it resembles is no question to it
        chosen -= told_to_help_centre(
            task, clause_rows, scorer.labels, names, chosen, ranked, how_to_owner(registry)
        )
        # "..., and how many seats we're paying for": the seats on file, not a quote
        drop, add = count_readings(clause_rows, scorer.labels, names, chosen, form_users(registry, _COUNT))
        chosen = (chosen - drop) | add
    if chosen and mode != "llm":
        # "dup charge on INV-3002? confirm + refund": the action's bare verb joined on as an instruction
        chosen |= coordinated_actions(task, registry, ranked) - chosen
        # "check if CH-2003 can still be refunded and if so just do it": the action, on a condition
        conditional = conditional_actions(task, registry, ranked) - chosen
        chosen |= conditional
        secondary |= conditional  # no clause's best: the condition names it, not its words
        # "Check whether it really is a duplicate, and if it is, give the extra back": the check too
        checked = checked_first(task, registry, chosen, ranked) - chosen
        chosen |= checked
        secondary |= checked
    if mode != "llm" and (policy := how_to_owner(registry)) in names:
        # "would we get our money back if we cancelled now?": the refund policy, not a refund
        if chosen and (hypothetical := side_effect_hypothetical(task, registry, chosen)):
            chosen = (chosen - hypothetical) or {policy}
        elif (
            not chosen
            and ranked
            and ranked[0][1] >= SECONDARY_FLOOR
            and side_effect_hypothetical(task, registry, {ranked[0][0]})
            and not names_other(task, registry)
        ):
            chosen = {policy}
        if policy in chosen and hypothetical_refund(task, registry):
            # "If we decrease seats mid-month, is the rest refunded?": nobody's charges to look at
            chosen -= money_back_providers(registry)
        elif (
            len(chosen) > 1
            and (records := chosen & money_back_providers(registry))
            and chosen - records
            and would_hypothetically(task, registry)
        ):
            # "If we were 14 people on Team, what would that come to a month?": nobody's charges
            chosen -= records
        elif policy in chosen and len(chosen) > 1:
            # "Aisha Bello ... whether this month's renewal can still come back": her charge's eligibility
            chosen -= eligibility_of_named(task, clause_rows, scorer.labels, names, registry, chosen, policy)
        if chosen and (
            unnamed := how_to_of_action(task, clause_rows, scorer.labels, names, registry, chosen)
        ):
            # "How do we get her back in?": a how-to that resembles getting money back
            chosen = (chosen - unnamed) | {policy}
    kept = set(chosen)  # what the rules above chose, before the lookup swaps below
    if mode != "llm" and candidates:
        for provider, consumers in await asyncio.to_thread(
            _fed_by_who, task, registry, scorer, [c.name for c in candidates], chosen
        ):
            # "list the charges for jane@acme.io": the address made it an account request; the need is
            # billing's, and the planner adds account back as billing's provider.
            chosen.discard(provider)
            chosen |= set(consumers)
            for n in consumers:
                source[n] = "scorer"
        if chosen:
            drop, add = await asyncio.to_thread(who_only, task, registry, scorer, names, chosen)
            if add and add <= {how_to_owner(registry)} and not documents_asked(task):
                # "ben@okafor.dev - how many days have i got left before the trial flips to paid":
                # a question about the customer named, their record's, not a how-to
                drop, add = set(), set()
            # "sofia@vialattea.it here - the dashboard won't load": the address chose the lookup,
            # the rest of the request names what it needs.
            chosen = (chosen - drop) | add
            for n in add:
                source[n] = "scorer"
    if chosen and mode != "llm":
        # "Es posible to know the status of the API, and also the price of Enterprise per user?": the
        # help centre, which no clause chose. Not what the secondary-need and lookup rules added.
        chosen -= unclaimed(clause_rows, scorer.labels, names, chosen & kept - secondary, ranked)
        # "when is our next renewal, and what is the status?": the status page, for a status whose
        # subject is the subscription; "..., since 09:10 UTC": the clock, for when it started.
        chosen -= borrowed(task, clause_rows, scorer.labels, names, chosen)
    if len(chosen) > 1 and mode != "llm":
        # "What's the local time in Mexico City? Our guest director is there this week.": no lookup
        chosen -= lookup_of_nobody(task, clause_rows, scorer.labels, names, registry, chosen, ranked[0][0])
    if chosen and mode != "llm" and (about := eligibility_asked(task, registry, ranked, chosen)):
        # "c-1004 renewal this month - refundable?": the charge's eligibility, not the account
        chosen = about
    if chosen and mode != "llm" and (foreign := foreign_clauses(task, registry)):
        # "github keeps timing out, are they having an outage?": someone else's service is down.
        chosen -= _of_foreign(task, foreign, clause_rows, scorer.labels, names, ranked)
        if not _RECORD_ID.search(task) and not IDENTIFIER.search(task):
            # "Our Zoom subscription renewed yesterday ... Can you help me get that money back?": the
            # money is the other company's; a refund of ours names our customer or charge.
            chosen -= {n for n in chosen if n in registry and registry[n].side_effects}
    if chosen and mode != "llm" and clause_rows:
        # "Our integration gets 'HTTP 403' when it writes notes": a refused request, the documents'
        drop, add = coded_elsewhere(clause_rows, scorer.labels, names, registry, chosen)
        chosen = (chosen - drop) | add
        for n in add:
            source[n] = "scorer"
    if len(chosen) > 1 and mode != "llm" and clause_rows:
        # "Tell me, in plain numbers if you must, what a seat costs": no arithmetic, no calculator
        chosen -= shapeless(task, clause_rows, scorer.labels, names, chosen, ranked, shaped(registry, names))
    if chosen and mode != "llm":
        # "Total due: $2,700.00 x 3 months = ?": arithmetic on an amount, nobody's records
        chosen -= records_of_nobody(task, registry, names, chosen)
    # "1380 - 275 - 415?": arithmetic by its shape, which the scorer cannot see (graph/classifier/recognised.py).
    chosen = with_recognised(registry, task, names, chosen, settings.max_capabilities)
    out = [
        ScoredCapability(name=c.name, score=1.0, selected=True, source="always")
        for c in registry
        if c.always_active
    ]
    out += [
        ScoredCapability(name=n, score=round(s, 4), selected=n in chosen, source=source[n])  # type: ignore[typeddict-item]
        for n, s in ranked
    ]
    return out


def records_of_nobody(task: str, registry: Registry, names: Sequence[str], chosen: set[str]) -> set[str]:
    """Selected capabilities that work on a customer's records (they require an input another
    capability provides, or provide one another requires: the customer lookup, the charges, the
    refund) in a request a capability recognises by its shape (`recognising`: the calculator's
    arithmetic) that names no one's records: no e-mail, customer or record id, customer name or
    holder ("I", "we", "our", `_HOLDER`). "Total due: $2,700.00 x 3 months = ?" multiplies an amount;
    "what we paid in March x 12 = ?" asks for our charges."""
    if (
        _HOLDER.search(task)
        or IDENTIFIER.search(task)
        or _RECORD_ID.search(task)
        or known_names(registry, task)
        or not recognising(registry, task, names)
    ):
        return set()
    required = {key for cap in registry.capabilities.values() for key in cap.requires}
    provided = {key for cap in registry.capabilities.values() for key in cap.provides}
    return {
        n
        for n in chosen
        if n in registry and (set(registry[n].requires) & provided or set(registry[n].provides) & required)
    }


_WHO = IDENTIFIER
"""Who the request is about (an e-mail address, a customer id in any of its forms): not what it needs."""


def _without_the_who(task: str, registry: Registry, scorer: FewShotScorer, names: Sequence[str]) -> set[str]:
    """What a terse request no threshold took selects without its e-mail addresses and customer ids
    (`without_identifiers`), when the rest names a need in at most `TERSE_WORDS` words (`need_words`,
    none a name the guides do not use: `names_other`): "charges for jane@acme.io pls" is billing's,
    the address only pulled its few words toward no guide. Nothing when the rest selects nothing."""
    rest = without_identifiers(task)
    words = need_words(rest)
    if rest == " ".join(task.split()) or not words or len(words) > TERSE_WORDS or names_other(rest, registry):
        return set()
    default = registry.spec.classifier.threshold
    return {
        s.name
        for s in scorer.score(rest, list(names))
        if s.wins and s.confidence >= scorer.threshold_for(s.name, default)
    }


def _fed_by_who(
    task: str, registry: Registry, scorer: FewShotScorer, names: Sequence[str], chosen: set[str]
) -> list[tuple[str, list[str]]]:
    """Selected providers that only the identifiers chose: the request without its identifiers does
    not select them, but selects capabilities they provide for (registry `provides`/`requires`)."""
    rest = without_identifiers(task)
    if rest == " ".join(task.split()) or not re.search(r"[A-Za-z]{3,}", rest):
        return []
    default = registry.spec.classifier.threshold
    won = {
        s.name
        for s in scorer.score(rest, list(names))
        if s.wins and s.confidence >= scorer.threshold_for(s.name, default)
    }
    out = []
    for provider in sorted(chosen - won):
        if provider not in registry:
            continue
        given = set(registry[provider].provides)
        consumers = [n for n in sorted(won - chosen) if n in registry and given & set(registry[n].requires)]
        if consumers:
            out.append((provider, consumers))
    return out


STATEMENT_WORDS = 3
"""The fewest `need_words` a clause that does not ask (`reads_as_request`) needs to name a secondary
need by its lead (`clause_needs`): "only checking", "Three emails", "Kola Works here" name none."""


_RECORD_ID = re.compile(r"\b(?P<kind>[A-Za-z]{1,4})-?(?P<digits>\d{3,})\b")
"""A record's id, a short letter prefix and digits: a charge CH-2034, an invoice INV-3002, an
incident INC-301, a subscription S-4003, a customer c1003. Not a name: an id says which record, and
the prefix which kind of record (`id_owners`)."""


OWNER_SHARE = 2 / 3
"""The share of the guide examples naming a kind of record id that one capability must hold to own it
(`record_kinds`)."""

_KINDS: dict[int, tuple[Registry, dict[str, str]]] = {}


def record_kinds(registry: Registry) -> dict[str, str]:
    """Which capability owns each kind of record id (its prefix, upper case: "INV", "CH"): the one
    whose positive guide examples name ids of that kind at least twice and hold `OWNER_SHARE` of the
    examples that do, among capabilities without side effects (an id alone never asks for an action).
    Customer ids (`IDENTIFIER`) are not a kind: they say who asks (`id_owners`)."""
    held = _KINDS.get(id(registry))
    if held is not None and held[0] is registry:
        return held[1]
    counts: dict[str, dict[str, int]] = {}
    for cap in registry.routable:
        if cap.side_effects:
            continue
        for query in cap.classifier_guide.positives:
            kinds = {
                m["kind"].upper() for m in _RECORD_ID.finditer(query) if not IDENTIFIER.fullmatch(m.group())
            }
            for kind in kinds:
                counts.setdefault(kind, {}).setdefault(cap.name, 0)
                counts[kind][cap.name] += 1
    owners = {}
    for kind, by in counts.items():
        name, most = max(by.items(), key=lambda kv: kv[1])
        if most >= 2 and most >= OWNER_SHARE * sum(by.values()):
            owners[kind] = name
    _KINDS[id(registry)] = (registry, owners)
    return owners


TERSE_WORDS = 3
"""The most `need_words` besides its ids a terse request has ("INV-3002 paid?", "c1003 plan + seats")."""


def lookups_only(registry: Registry, chosen: set[str]) -> bool:
    """Whether every selected capability is a lookup that feeds others and needs nothing itself (it
    provides what another requires and requires nothing: the customer lookup)."""
    required = {key for cap in registry.capabilities.values() for key in cap.requires}
    return bool(chosen) and all(
        n in registry and set(registry[n].provides) & required and not registry[n].requires for n in chosen
    )


def id_owners(task: str, registry: Registry, who: str | None) -> set[str]:
    """What a terse request (at most `TERSE_WORDS` words besides its ids, none of them a name the
    guides do not use) asks of the records it names by id: each id's owner (`record_kinds`; a customer
    id's is `who`, the capability the ids alone score best, when it provides what another requires).
    Nothing when an id has no owner."""
    ids = list(_RECORD_ID.finditer(task))
    if not ids or len(need_words(without_record_ids(task))) > TERSE_WORDS or names_other(task, registry):
        return set()
    kinds = record_kinds(registry)
    required = {key for cap in registry.capabilities.values() for key in cap.requires}
    out = set()
    for m in ids:
        if IDENTIFIER.fullmatch(m.group()):
            if who is None or who not in registry or not required & set(registry[who].provides):
                return set()
            out.add(who)
        elif (owner := kinds.get(m["kind"].upper()) or named_kind(m["kind"], registry)) is not None:
            out.add(owner)
        else:
            return set()
    return out


_STATUS_CODE = re.compile(
    r"(?:\b(?:https?|error|status|code|response)\s*[:'\"(#]?\s*(?P<a>[1-5]\d\d)\b"
    r"|\b(?P<b>[1-5]\d\d)(?:s\b|['\"]?\s*(?:errors?|responses?|status|codes?|too\s+many|forbidden"
    r"|unauthori[sz]ed|not\s+found|bad\s+request|internal|gateway|service\s+unavailable)\b))",
    re.I,
)
"""An HTTP status code as people write it ("HTTP 403", "error 500", "a 429 response", "502s",
"'401 Unauthorized'"): not any number ("100 seats", "$450")."""


def status_classes(text: str) -> set[str]:
    """The classes (first digits: "4", "5") of the HTTP status codes a text names (`_STATUS_CODE`)."""
    return {(m["a"] or m["b"])[0] for m in _STATUS_CODE.finditer(text)}


_CODES: dict[int, tuple[Registry, dict[str, str]]] = {}


def code_owners(registry: Registry) -> dict[str, str]:
    """Which capability owns each class of HTTP status codes: the one without side effects whose
    positive guide examples name codes of that class at least twice and hold `OWNER_SHARE` of the
    examples that do. The support desk's help centre owns the client errors ("how should I handle
    429 Too Many Requests", "what does a 401 from your API mean": the documents explain a refused
    request), its status page the server errors ("the API returns 500 errors", an outage)."""
    held = _CODES.get(id(registry))
    if held is not None and held[0] is registry:
        return held[1]
    counts: dict[str, dict[str, int]] = {}
    for cap in registry.routable:
        if cap.side_effects:
            continue
        for query in cap.classifier_guide.positives:
            for kind in status_classes(query):
                counts.setdefault(kind, {}).setdefault(cap.name, 0)
                counts[kind][cap.name] += 1
    owners = {}
    for kind, by in counts.items():
        name, most = max(by.items(), key=lambda kv: kv[1])
        if most >= 2 and most >= OWNER_SHARE * sum(by.values()):
            owners[kind] = name
    _CODES[id(registry)] = (registry, owners)
    return owners


def coded_elsewhere(
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    registry: Registry,
    chosen: set[str],
) -> tuple[set[str], set[str]]:
    """Selected capabilities whose every clause (scored at least `SECONDARY_FLOOR`) names an HTTP
    status code of a class another capability owns (`code_owners`), and those owners: "Our
    integration gets 'HTTP 403' when it writes notes. What does that mean?" resembles an outage, and
    a refused request is what the documents explain; "the API returns 502s since noon" stays the
    status page's. (drop, add)."""
    owners = code_owners(registry)
    if not owners:
        return set(), set()
    won: dict[str, list[str | None]] = {}
    for piece, conf in clause_rows:
        order = _top(conf, labels, names, set())
        if not order or courtesy(piece) or float(conf[order[0]]) < SECONDARY_FLOOR:
            continue
        best = labels[order[0]]
        if best not in chosen:
            continue
        others = {owners[k] for k in status_classes(piece) if k in owners} - {best}
        won.setdefault(best, []).append(next(iter(others)) if len(others) == 1 else None)
    drop, add = set(), set()
    for name, owned in won.items():
        if owned and all(o is not None and o in names for o in owned):
            drop.add(name)
            add |= {o for o in owned if o is not None}
    return drop, add


def coded_request(task: str, registry: Registry, ranked: Sequence[tuple[str, float]]) -> set[str]:
    """The owner (`code_owners`) of the one class of HTTP status codes a request no threshold took
    names, when it scores at least `SECONDARY_FLOOR` and the request names nothing the guides do not
    (`names_other`). The caller asks it only of a request addressed to our service (`_ADDRESSED`:
    "your API"): someone's own website answering 500 is not ours."""
    classes = status_classes(task)
    owners = code_owners(registry)
    if len(classes) != 1 or (kind := next(iter(classes))) not in owners or names_other(task, registry):
        return set()
    owner = owners[kind]
    return {owner} if dict(ranked).get(owner, 0.0) >= SECONDARY_FLOOR else set()


def named_kind(prefix: str, registry: Registry) -> str | None:
    """The capability a record id's prefix abbreviates when no guide names ids of its kind: the one
    without side effects whose name begins with the prefix of three letters or more ("INC-301": the
    incidents). A shorter prefix ("S-4003", "CH") abbreviates too little to tell."""
    if len(prefix) < 3:
        return None
    found = [
        c.name for c in registry.routable if not c.side_effects and c.name.lower().startswith(prefix.lower())
    ]
    return found[0] if len(found) == 1 else None


def without_record_ids(text: str) -> str:
    """The text without its record ids (`_RECORD_ID`) and e-mail addresses (`IDENTIFIER`)."""
    return " ".join(_RECORD_ID.sub(" ", without_identifiers(text)).split())


_RELATIVE = re.compile(
    r"^\W*(?:which|who|whom|whose)\s+(?:the|a|an|this|that|i|we|you|they|he|she|it|my|our|your|their|his|her"
    r"|is|was|are|were|has|had|have|means|meant|makes|made|took|came|helped|used|left)\b"
    r"|^\W*where\s+(?:the|a|an|this|that|i|we|you|they|he|she|my|our|your|their|his|her|most)\b",
    re.I,
)
"""A relative clause after a comma ("..., which I only realised when the charge appeared", "...,
which the committee are pleased with", "..., who left last week", "the time in Montevideo, where my
co-author lives"): it says more about a noun of the clause before it. A question starts a sentence
("Which plan are we on?", "where is the invoice page") or ends in a question mark."""

_POLITE = re.compile(
    r"^\W*(?:(?:i|we)(?:'d|\s+would)\s+(?:be\s+(?:\w+\s+)?(?:grateful|thankful|glad|obliged|pleased)"
    r"|(?:really\s+|greatly\s+)?appreciate|love)\b"
    r"|it\s+would\s+be\s+(?:\w+\s+)?(?:great|helpful|lovely|good|nice|kind)\s+(?:if|to)\b"
    r"|would\s+you\s+mind\b|(?:might|may)\s+i\s+ask\b)",
    re.I,
)
"""A request in polite form ("I would be grateful if you could confirm ...", "we'd appreciate it if
...", "it would be great if you could ...")."""


def relative_clause(piece: str, before: str, following: str = "") -> bool:
    """Whether a clause is a relative clause (`_RELATIVE`) after a comma, with no question mark after it."""
    return bool(_RELATIVE.match(piece)) and before.rstrip().endswith(",") and following.lstrip()[:1] != "?"


def asks_in(task: str, piece: str) -> bool:
    """Whether a clause of `task` asks for something: `reads_as_request`, or a polite request
    (`_POLITE`: "I would be grateful if you could confirm which plan we are on"); not a relative
    clause (`relative_clause`: "..., which I only realised when the charge appeared")."""
    at = task.find(piece)
    before, following = (task[:at], task[at + len(piece) :]) if at >= 0 else ("", "")
    if relative_clause(piece, before, following):
        return False
    return (
        reads_as_request(piece, following)
        or bool(_POLITE.match(piece))
        or (bool(_PLEASE.search(piece)) and not _NARRATOR.match(piece.strip()))
    )


_PLEASE = re.compile(r"\b(?:please|pls|plz|kindly)\b", re.I)
"""The word that makes an instruction of a clause ("Put the second one back on the card please",
"Please check the reason"): it asks, whatever its form."""

_ATTRIBUTES = frozenset({"status", "state", "eta", "progress", "update", "updates", "news", "situation"})
"""What a question asks of a thing it does not name ("what is the status", "any update?", "eta?")."""
_GENERIC = frozenset(
    {"fix", "fixed", "solve", "resolve", "sort", "sorted", "handle", "deal", "mean", "means", "happen"}
    | {"happened", "happening", "work", "works"}
)
"""Verbs that name no need of their own: "how do we fix it", "what does that mean"."""
_ASKING = frozenset(
    {"can", "could", "would", "will", "you", "your", "ye", "tell", "give", "let", "know", "fill", "check"}
    | {"confirm", "share", "send", "get", "find", "look", "say", "see", "show", "when", "where", "which"}
    | {"who", "why", "does", "did", "was", "were", "has", "had", "have", "now", "currently", "current"}
    | {"its", "their", "any", "latest", "right", "moment", "today", "possible", "kindly", "just"}
)
"""Words of asking, not of what is asked ("can you tell me", "fill in", "right now")."""
_FILLER = frozenset(
    {"the", "and", "also", "then", "plus", "what", "what's", "whats", "how", "for", "with", "please"}
    | {"pls", "our", "your", "are", "i'm", "this", "that", "these", "those", "there", "about", "too"}
    | {"again", "one", "them", "it's", "is", "us", "me", "btw", "ok", "okay", "so", "but", "and"}
)
"""Words that join, point or fill in ("and", "the", "please", "that")."""
_ANAPHORA = re.compile(r"\b(?:it|this|that|these|those|them)\b", re.I)


def elliptical(piece: str) -> bool:
    """Whether a clause asks about something it does not name: only an attribute (`_ATTRIBUTES`: "what
    is the status", "Status: ?", "can you fill in the status for us", "INC-301 eta?") or a generic verb
    of something named before (`_GENERIC` with a pronoun: "how do we fix it", "what does that mean").
    Its subject is another clause's: "when is our next renewal, and what is the status" asks the
    subscription's status, not the service status page's."""
    words = re.findall(r"[a-z][\w'-]*", without_record_ids(piece).lower())
    content = [w for w in words if len(w) >= 3 and w not in _ASKING and w not in _FILLER]
    if any(w in _ATTRIBUTES for w in content):
        return all(w in _ATTRIBUTES for w in content)
    return bool(_ANAPHORA.search(piece)) and all(w in _GENERIC for w in content)


_CIRCUMSTANCE = re.compile(
    r"^\W*(?:since|from|until|till|after|before|at|around|as\s+of|starting|during|between)\s+"
    r"(?:about\s+|around\s+|roughly\s+)?\d{1,2}(?:[:.h]\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.|utc|gmt|[a-z]{2,4}t)?\b",
    re.I,
)
"""A clause that only says when something happened ("since 09:10 UTC", "from 2pm", "at 14:30"): the
circumstance of a need named elsewhere, not a question about the time."""
_TIME = r"\d{1,2}(?:[:.h]\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.|utc|gmt|[a-z]{2,4}t)?"
_RANGE_END = (
    re.compile(
        rf"\b(?:between|from)\s+(?:about\s+|around\s+|roughly\s+)?{_TIME}\s*(?:and|to|till|until|-)\s*$", re.I
    ),
    re.compile(
        rf"^\W*{_TIME}(?:\s+(?:today|yesterday|tonight|last\s+night|this\s+(?:morning|afternoon|evening)))?\W*$",
        re.I,
    ),
)
"""The end of a time range split off as a clause of its own ("between 09:00 | and | 11:00 UTC"): a
time after "between/from <time> and/to", nothing else but the day ("9:40 this morning")."""


_ID_TOKEN = r"\b[A-Za-z]{1,4}-?\d{3,}\b"
_LEADING_RECORD = re.compile(rf"^[\W_]*{_ID_TOKEN}(?:[\s\W]+(?:{_ID_TOKEN}|[$€£]?\d[\d,.]*))*[\s\W]*")
"""A record's id first, and the ids and amounts right after it ("CH-2013   $30.00   ")."""


def quotes_a_record(piece: str) -> bool:
    """Whether a clause is a record pasted by its id: it starts with the id (`_RECORD_ID`, not a
    customer's), and what follows neither asks (`reads_as_request`) nor tells with a subject
    (`_NARRATOR`): "CH-2003 $125.00 Team plan", "CH-2053 Card declined". What the record holds (a
    plan, seats, an amount) describes it; the request says what to do about it. "INV-3082 please
    confirm it was paid" asks; "I think we paid INV-3033 twice" tells."""
    lead = _LEADING_RECORD.match(piece)
    if lead is None or IDENTIFIER.match(piece.strip(" \t-#:([")):
        return False
    rest = piece[lead.end() :]
    return not reads_as_request(rest) and not _POLITE.match(rest) and not _NARRATOR.search(rest)


def no_need_of_its_own(task: str, piece: str) -> bool:
    """Whether a clause names no need of its own whatever it resembles: a relative clause
    (`relative_clause`), an elliptical question (`elliptical`), a time it happened at (`_CIRCUMSTANCE`,
    and the end of its range, `_RANGE_END`), a statement that quotes a record (`quotes_a_record`), or
    a prepositional phrase cut off the clause before it (`continues`)."""
    at = task.find(piece)
    before, following = (task[:at], task[at + len(piece) :]) if at >= 0 else ("", "")
    if relative_clause(piece, before, following) or elliptical(piece):
        return True
    asks = asks_in(task, piece)
    ends_range = bool(_RANGE_END[1].match(piece) and _RANGE_END[0].search(before))  # "... and | 11:00 UTC"
    return not asks and (
        bool(_CIRCUMSTANCE.match(piece))
        or ends_range
        or quotes_a_record(piece)
        or continues(piece, before, following)
    )


_PREPOSITION = re.compile(r"^\W*(?:to|of|into|onto|towards)\s+\w", re.I)


def continues(piece: str, before: str, following: str = "") -> bool:
    """Whether a clause is a prepositional phrase the punctuation cut off the clause before it: after
    a comma or a bracket, opened by "to", "of" or "into", with no verb or subject of its own and no
    question mark after it. "Kindly return the sum charged in error (...) | to the original payment
    method", "I request the reversal, in full, | of charge CH-2003": where the money goes, which
    charge is meant, not a need of its own however much it resembles one."""
    return (
        bool(_PREPOSITION.match(piece))
        and bool(re.search(r"[,(\[)\]\u2013\u2014-]\s*$", before))
        and not _FINITE.search(piece)
        and not _NARRATOR.search(piece)
        and following.lstrip()[:1] != "?"
    )


def borrowed(
    task: str,
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    chosen: set[str],
) -> set[str]:
    """Selected capabilities that only clauses with no need of their own chose (`no_need_of_its_own`),
    next to another selected capability that a clause with a need of its own chose: "Can you say me
    when is the next renewal of our subscription and what is the status?" (the status page, for "what
    is the status": the subscription's), "..., since 09:10 UTC" (the clock), "CH-2003 $125.00 Team
    plan, 5 seats <- the second one this month, please refund it" (sales, for the plan on the charge)."""
    if len(chosen) < 2:
        return set()
    won: dict[str, list[bool]] = {}
    for piece, conf in clause_rows:
        order = _top(conf, labels, names, set())
        if order and not courtesy(piece) and labels[order[0]] in chosen:
            won.setdefault(labels[order[0]], []).append(no_need_of_its_own(task, piece))
    real = {n for n, flags in won.items() if not all(flags)}
    if not real:
        return set()
    return {n for n, flags in won.items() if all(flags)}


CLOSE_TO_SELECTED = 1.0
"""Log-odds within which a request clause's best capability, already selected, leaves the clause to
the best one not selected yet (`clause_needs`): e^1, under 3 times as likely."""


_VOCABULARY: dict[int, tuple[Registry, frozenset[str]]] = {}


def vocabulary(registry: Registry) -> frozenset[str]:
    """The words of the registry's guides (examples, descriptions, instructions), lower case: what
    its capabilities are about. Not its `out_of_scope_examples` (names of other companies' services)."""
    held = _VOCABULARY.get(id(registry))
    if held is not None and held[0] is registry:
        return held[1]
    texts = [
        t
        for c in registry.routable
        for t in (*c.classifier_guide.positives, *c.classifier_guide.negatives, c.description)
    ] + [c.classifier_guide.instructions or "" for c in registry.routable]
    words = frozenset(w.lower() for t in texts for w in re.findall(r"[A-Za-z][\w'-]*", t))
    _VOCABULARY[id(registry)] = (registry, words)
    return words


def known_word(word: str, words: frozenset[str]) -> bool:
    """Whether a word is one of the guides' (`vocabulary`), a typo of one ("dashbord": five letters or
    more) or too short to tell ("BT")."""
    w = word.lower()
    if w in words or len(w) < 3:
        return True
    return len(w) >= 5 and bool(difflib.get_close_matches(w, words, n=1, cutoff=0.8))  # "aws" is not "as"


_ORGANISATION = frozenset(
    {"labs", "inc", "gmbh", "ltd", "llc", "hq", "legal", "works", "group", "corp", "co", "company"}
    | {"solutions", "consulting", "studio", "studios", "partners", "agency", "ag", "sa", "bv", "team"}
)
"""Last words of an organisation's name ("Nimbus Labs", "Whitaker Legal", "Acme Inc"): a customer
telling what fails for them, not another company's service."""


def foreign_clauses(task: str, registry: Registry) -> list[str]:
    """The pieces of a request (the whole of it, or its clauses) whose `named_subject`, what they
    say is down, failing or charging, is a name no guide of the registry uses ("is AWS having an
    outage", "github keeps timing out", "Netflix charged me twice"): someone else's service or
    charge, however much it sounds like an outage or a refund. A name the guides use ("is Tandem
    down", "webhooks are slow", "Okta") or a typo of one is ours; a pronoun or "the/our/my ..." is
    not a name. Every word of the name must be unknown ("mobile app keeps crashing": the app is ours).
    Also (session 16), when the registry's out-of-scope examples name one (`owns_others`), what the
    customer owns of a service whose name, its first word, no guide uses (`owned_name`: "my Uber Eats
    order", "our Zoom subscription", "my Spotify family plan"), and (session 19) a product named
    before what is bought of it that is not ours (`other_product`: "Microsoft 365 renewal"); neither
    in a piece that gives an id of ours ("Our co-op's account is c1004": the account is ours)."""
    words = vocabulary(registry)
    pieces = [task, *(task[a:b] for a, b in clause_spans(task))]
    out = []
    for piece in pieces:
        name = named_subject(piece)
        if name and name[-1].lower().strip(".") in _ORGANISATION:  # "Nimbus Labs can't connect": a customer
            continue
        if name and not any(known_word(w, words) for w in name):
            out.append(piece)
        elif mentions_identifier(piece) or _RECORD_ID.search(piece):
            continue  # "Our co-op's account is c1004": what an id of ours names is ours
        elif (
            not name
            and not _ADDRESSED.search(piece)  # "your api is throwing 500s at our timesheet app": ours
            and (owned := owned_name(piece))
            and not known_word(owned[0], words)
            and owns_others(registry)
        ):
            out.append(piece)  # "My Spotify family plan went up": the brand comes first
        elif owns_others(registry) and not _ADDRESSED.search(piece) and other_product(piece, registry):
            out.append(piece)  # "My Microsoft 365 renewal was taken twice": a product of another vendor
        elif owns_others(registry) and other_charger(piece, registry):
            out.append(piece)  # "The servo charged my card twice": someone else took the money
    return out


_PRODUCT = re.compile(
    r"(?:\b(?P<owner>my|our|his|her|their)\s+(?P<owned>[a-z][\w.&'+-]*)"
    r"|(?<![\w@.-])(?P<name>[A-Z][\w&.+'-]*(?:\s+(?:[A-Z][\w&.+'-]*|\d{1,4}))*))"
    r"\s*(?:(?:renewals?|subscriptions?|orders?|plans?|licen[cs]es?|memberships?|editions?|bills?)\b"
    r"|[-\u2013\u2014:]\s*[$\u20ac\u00a3\u00a5]\s?\d)"
)
"""A product named before what a customer buys of it ("Microsoft 365 renewal", "Amazon Business
order", "my office365 subscription") or before its price ("Adobe Creative Cloud All Apps - £56.98"):
capitalised words (and edition numbers), or a word after my/our/their."""

_DETERMINERS = frozenset({"my", "our", "his", "her", "their", "the", "this", "that", "a", "an", "your"})

_COMMON: dict[int, tuple[Registry, frozenset[str], frozenset[str]]] = {}


def common_words(registry: Registry) -> tuple[frozenset[str], frozenset[str]]:
    """(the words the guides write in lower case, the names they write before what is bought of
    them): "team", "renewal", "okta" are common words of ours; "Team", "Tandem", "Nimbus Labs" name
    what is ours. A name the guides write only capitalised and never sell ("Microsoft", in "SAML with
    Microsoft Entra ID") is another vendor's."""
    held = _COMMON.get(id(registry))
    if held is not None and held[0] is registry:
        return held[1], held[2]
    texts = [
        t
        for c in registry.routable
        for t in (*c.classifier_guide.positives, *c.classifier_guide.negatives, c.description)
    ] + [c.classifier_guide.instructions or "" for c in registry.routable]
    lower = frozenset(w for t in texts for w in re.findall(r"[A-Za-z][\w'-]*", t) if w.islower())
    names = frozenset(
        w.lower()
        for c in registry.routable
        for q in c.classifier_guide.positives
        for m in _PRODUCT.finditer(q)
        if m["name"]
        for w in m["name"].split()
    )
    _COMMON[id(registry)] = (registry, lower, names)
    return lower, names


_CHARGER = re.compile(
    r"^\W*(?:(?:and|but|so|also)\s+)?(?:(?P<det>my|our|the|a|an|this|that|some)\s+)?"
    r"(?P<name>[\w'&.-]+(?:\s+[\w'&.-]+){0,3}?)\s+(?:(?:have|has|had|just|already)\s+)?"
    r"(?:charged|billed|debited|overcharged|double[- ]charged)\b",
    re.I,
)
"""Who took the money, as the subject of an active charge ("The servo charged my card", "Rightmove
have billed us twice", "My mobile phone company charged double fee")."""


def other_charger(piece: str, registry: Registry) -> list[str]:
    """The words naming someone else who charged the user (`_CHARGER`): a subject with a word the
    guides do not write in lower case (`common_words`: "servo", "mobile phone", "Rightmove"). Not
    "you", a pronoun, or what is ours ("the renewal charged us twice", "Tandem billed us")."""
    match = _CHARGER.search(without_names(piece, known_names(registry, piece)))
    if match is None:
        return []
    words = [w.strip(".'\u2019") for w in match["name"].split()]
    if not words or re.split(r"['\u2019]", words[0].lower())[0] in _NOT_A_CHARGER:
        return []
    if any(w.lower() in _PASSIVE for w in words):  # "my uncle got charged": someone was charged
        return []
    lower, ours = common_words(registry)
    unknown = [
        w
        for w in words
        if (low := re.split(r"['\u2019]", w.lower())[0])
        and low not in lower
        and low not in ours
        and len(low) >= 3
        and not (len(low) >= 5 and difflib.get_close_matches(low, lower, n=1, cutoff=0.85))
    ]
    return words if unknown else []


_PASSIVE = frozenset({"got", "get", "gets", "getting", "was", "were", "is", "are", "been", "be", "being"})

_NOT_A_CHARGER = frozenset(
    {"you", "your", "ya", "u", "it", "they", "we", "i", "he", "she", "someone", "somebody", "who", "which"}
    | {"that", "this", "there", "what", "nobody", "everyone"}
)


def other_product(piece: str, registry: Registry) -> list[str]:
    """The name of another vendor's product a clause speaks of (`_PRODUCT`): a word of the name the
    guides neither write in lower case nor name anything of ours with (`common_words`): "Microsoft 365
    renewal", "Amazon Business order", "Adobe Creative Cloud All Apps - £56.98/mo", "my office365
    subscription". Not "the Team plan", "our Enterprise renewal", "Renewal" first in a sentence,
    a customer's organisation ("Nimbus Labs subscription") or one of our customers by name."""
    lower, ours = common_words(registry)
    text = without_names(without_record_ids(piece), known_names(registry, piece))
    for m in _PRODUCT.finditer(text):
        words = [w.strip(".'\u2019") for w in (m["name"] or m["owned"]).split()]
        while words and words[0].lower() in _DETERMINERS:
            words = words[1:]
        words = [w for w in words if w and not w.isdigit()]
        if not words or re.split(r"['\u2019]", words[-1].lower())[0] in _ORGANISATION:
            continue  # "Nimbus Labs subscription", "Whitaker Legal's subscription": a customer's
        if m["name"] and len(m["name"].split()) == 1 and re.search(r"(?:^|[.!?]\s)\W*$", text[: m.start()]):
            continue  # "Whit plan are we on?": one capitalised word first in a sentence may be any word
        if m["owned"] and words[0].lower() in ours:
            continue

        def common(w: str) -> bool:
            low = re.split(r"['\u2019]", w.lower())[0]
            if low in lower or low in ours or len(low) < 3:
                return True
            return len(low) >= 5 and bool(difflib.get_close_matches(low, lower, n=1, cutoff=0.85))

        if not all(common(w) for w in words):
            return words
    return []


_OWNED = re.compile(
    r"\b(?:my|our)\s+(?P<name>[\w.&'+-]+(?:\s+[\w.&'+-]+){0,2}?)\s+"
    r"(?:orders?|packages?|parcels?|deliver(?:y|ies)|subscriptions?|plans?|memberships?|accounts?|apps?"
    r"|bills?|bookings?|tickets?|providers?|contracts?)\b",
    re.I,
)
"""What a customer owns of some service, named before the kind of thing it is ("my Uber Eats order",
"our Zoom subscription", "my gym membership", "our electricity provider")."""


_ADDRESSED = re.compile(
    r"\byour\s+(?:api|service|platform|app|servers?|system|status|dashboard|site)\b", re.I
)
"""Our own service named as the user's counterpart ("your api is failing our timesheet app"): what the
user owns beside it is their own software, not another company's service."""


def owned_name(piece: str) -> list[str]:
    """The words naming whose order, subscription, plan or provider a clause speaks of (`_OWNED`):
    ["Spotify", "family"] in "My Spotify family plan went up". Whether the name is one the
    registry's guides use ("our Team plan", "my Tandem account") is `foreign_clauses`' question."""
    match = _OWNED.search(piece)
    return [w.strip(".'") for w in match.group("name").split()] if match else []


def owns_others(registry: Registry) -> bool:
    """Whether the registry's `out_of_scope_examples` say that what a customer owns of another
    service is not its business: one of them names it (`owned_name`, a first word no guide uses:
    "how do I cancel my gym membership", "my FedEx delivery is late"). A support desk's do; a
    personal assistant's, whose user's "wells fargo account" is what it serves, do not, and there
    `foreign_clauses` reads no owned name."""
    words = vocabulary(registry)
    return any(
        (owned := owned_name(text)) and not known_word(owned[0], words)
        for text in registry.spec.classifier.out_of_scope_examples
    )


def _of_foreign(
    task: str,
    foreign: Sequence[str],
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    ranked: Sequence[tuple[str, float]],
) -> set[str]:
    """What a request that names someone else's service (`foreign_clauses`) loses: all it selected
    when it has at most two clauses that name a need ("Netflix charged me twice this month, can you
    refund it?": "it" is the other company's charge), else the best capability of each foreign clause
    ("... zoom keeps dropping calls, and which plan are we on?": the lookup stays). A clause that
    refers back (`_ANAPHORA`) right after a foreign one speaks of the same thing and is no need of
    its own ("Adobe Creative Cloud - £56.98/mo - why has this gone up? it was £51 last year")."""
    parts = [f for f in foreign if f != task]

    def of_foreign_piece(piece: str) -> bool:
        # a clause of the rows, or a part of a foreign clause when the rows split it further
        # ("Figma Professional" of "Figma Professional - £14.40/mo")
        return piece in foreign or any(piece.strip() and piece.strip() in f for f in parts)

    linked: list[bool] = []  # each clause: foreign, or referring back to a foreign one before it
    previous = False
    for piece, _ in clause_rows:
        if courtesy(piece):
            linked.append(False)
            continue
        previous = of_foreign_piece(piece) or (previous and bool(_ANAPHORA.search(piece)))
        linked.append(previous)
    needs = [
        p
        for (p, _), f in zip(clause_rows, linked, strict=True)
        if not courtesy(p) and (of_foreign_piece(p) or not f)
    ]
    if len(needs) <= 2:
        # "Is anything wrong with webhooks today? Our watering-rota app has stopped getting updates.":
        # a question about ours first, the customer's own software after it
        first = next((i for i, f in enumerate(linked) if f), len(linked))
        ours = {
            labels[order[0]]
            for i, (p, conf) in enumerate(clause_rows)
            if i < first
            and not courtesy(p)
            and asks_in(task, p)
            and (order := _top(conf, labels, names, set()))
        }
        if not ours or first == len(linked):  # no clause of the rows is the foreign piece: all of it
            return {n for n, _ in ranked}
        return {
            labels[order[0]]
            for (_p, conf), f in zip(clause_rows, linked, strict=True)
            if f and (order := _top(conf, labels, names, set()))
        } - ours
    out = set()
    for (_piece, conf), f in zip(clause_rows, linked, strict=True):
        if f and (order := _top(conf, labels, names, set())):
            out.add(labels[order[0]])
    return out


HOW_TO_CLOSE = 5.0
"""Log-odds within which the help centre must follow a how-to clause's best capability to be its
need (`clause_needs`)."""

PLAIN_SHARE = 0.75
"""The share of a request's words the guides must use for `plainly_ours`."""
PLAIN_LEAD = 1.5
"""Log-odds by which `plainly_ours` wants the best capability ahead of the next."""
_HYPOTHETICAL = re.compile(
    r"\b(?:if\s+(?:i|we)|suppose|supposing|hypothetically|what\s+happens\s+if|in\s+case)\b"
    r"|^\W*(?:let'?s\s+)?say\s+(?:i|we)\b",  # "Say we cancel before the month is over: ..."
    re.I,
)


def plainly_ours(task: str, registry: Registry, ranked: Sequence[tuple[str, float]]) -> bool:
    """Whether a request no threshold took is still plainly the best capability's: at least
    `PLAIN_SHARE` of its words are the guides' (`vocabulary`), it names nothing they do not (a
    capitalised word not first), its best leads the next by `PLAIN_LEAD` and reaches
    `SECONDARY_FLOOR`. Not a how-to whose best is not the help centre ("how do I remove a user":
    the help centre's, whatever resembles it), nor a hypothetical ("if I cancelled tomorrow, would
    I get money back": a policy question)."""
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < SECONDARY_FLOOR or float(logit(top) - logit(second)) < PLAIN_LEAD or _HYPOTHETICAL.search(task):
        return False
    pieces = [task, *(task[a:b] for a, b in clause_spans(task))]
    if any(asks_how_to(p) for p in pieces) and best != how_to_owner(registry):
        return False
    words = need_words(without_record_ids(task))  # "renewal date S-4003": an id is no name
    vocab = vocabulary(registry)
    known = [known_word(w, vocab) for w in words]
    if not words or sum(known) < PLAIN_SHARE * len(words):
        return False
    return not _foreign_capitals(task, words, known)


_GET_IT_BACK = re.compile(
    r"\b(?:charg(?:ed|e|es)|renewal|renewed|paid|payment|billed)\b.*\b(?:get|have|got)\s+(?:it|that|this|them|those)"
    r"\s+(?:\w+\s+)?back\b",
    re.I | re.S,
)
"""Getting a charge back, the money named by a pronoun after it ("he got charged on the 1st ... can he
still get it back?", "we paid for the renewal, can we have that back"): a question about a refund."""


_MODIFIED = (
    r"(?:window|policy|policies|period|deadline|rules?|terms|eligibility|limits?|cut-?off|time\s*frame"
    r"|days|rights?)\b"
)
"""Nouns an action word modifies ("the refund window", "your refund policy", "the refund period"): the
action named as what a rule is about, not asked for."""


def asked_of_ours(task: str, registry: Registry, ranked: Sequence[tuple[str, float]]) -> set[str]:
    """What a request no threshold took asks of a capability with side effects, when it names one of
    our customers (an e-mail address or a customer id, `IDENTIFIER`): "can I get a refund for my
    duplicate charge? I'm omar@brightpath.co". The identifier says the request is addressed to us,
    whatever other companies' refunds the out-of-scope examples hold ("my Uber Eats order was charged
    twice, please refund it"), which pull a request in their words below every threshold.

    The action's word as written ("a refund", "refund it"), in words the side-effect policy does not
    refuse, asks for the action: that capability (a question still asks a human to confirm before
    anything is done). Another form of it ("can it be refunded?", "is it refundable?"), or a status
    question ("where is my refund"), asks about it: the best-ranked capability that provides what the
    action needs and feeds no other such provider (billing, which checks the charge, not the customer
    lookup that feeds it). Either must score at least `SECONDARY_FLOOR`.
    Nothing when the words turn the action down (`turns_down`) or the request names something the
    guides do not (`names_other`: "a refund for my Netflix charge, I'm jane@acme.io")."""
    named = known_names(registry, task)  # "my uncle omar haddad": one of our customers by full name
    if not (IDENTIFIER.search(task) or named) or names_other(without_names(task, named), registry):
        return set()
    for name, score in ranked:
        info = registry.capabilities.get(name)
        if (
            info is None
            or not info.side_effects
            or not info.action_verbs
            or turns_down(task, info.action_verbs)
        ):
            continue
        forms = "|".join(re.escape(v) for v in info.action_verbs)
        asks = side_effect_intent(task, info.action_verbs).kind != "refuse"  # not "where is my refund"
        if asks and re.search(rf"\b(?:{forms})\b(?!\s+{_MODIFIED})", task, re.I):
            if score >= SECONDARY_FLOOR:
                return {name}
        elif (
            re.search(rf"\b(?:{forms})\w*", task, re.I)
            or _GET_IT_BACK.search(task)
            or _COULD_BE_DONE.search(task)
        ):
            return last_provider(registry, info, ranked)
    return set()


def last_provider(registry: Registry, info: CapabilityInfo, ranked: Sequence[tuple[str, float]]) -> set[str]:
    """The best-ranked of the last providers before an action (billing, which finds the charge), not
    one that feeds them (the customer lookup), when it scores at least `SECONDARY_FLOOR`."""
    providers = {p for key in info.requires for p in registry.providers(key)}
    last = {
        p
        for p in providers
        if not any(set(registry[p].provides) & set(registry[q].requires) for q in providers - {p})
    }
    best = next(((n, s) for n, s in ranked if n in last), None)
    return {best[0]} if best is not None and best[1] >= SECONDARY_FLOOR else set()


def lookup_of_nobody(
    task: str,
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    registry: Registry,
    chosen: set[str],
    best: str | None = None,
) -> set[str]:
    """Selected lookups (`lookups_only`: the customer lookup) next to another need, in a request that
    names no one to look up (no e-mail, customer id or customer name), whose every clause they are
    the best of is a statement (`asks_in` false), a sentence of its own after a question ("...,
    and the API rate limit on Team" goes on with the request): "What's the time in Lagos? Our
    new finance lead is based there." tells who the time is for; there is nobody to look up and
    nothing asked of it. A statement before the question ("We're on Starter (Kola Works). Can you
    confirm that ...?") is what the question is about. The same for the help centre (`how_to_owner`),
    which answers questions, whoever the request names ("Can we have a quote for 25 Team seats? The
    board wants it in writing by Monday."), and for any capability without side effects that is not
    the request's `best` ("What's the time in Oslo? The board call moved again and nobody kept
    up.": the story after the question resembled an incident)."""
    nobody = not (IDENTIFIER.search(task) or known_names(registry, task))
    won: dict[str, list[bool]] = {}
    asked = False  # a clause before this one asks
    for piece, conf in clause_rows:
        order = _top(conf, labels, names, set())
        asks = asks_in(task, piece)
        sentence = bool(re.search(r"[.?!]\s*$", task[: max(0, task.find(piece))]))  # not "..., and X"
        if order and not courtesy(piece) and labels[order[0]] in chosen:
            won.setdefault(labels[order[0]], []).append(asked and sentence and not asks)
        asked = asked or asks
    return {
        n
        for n, told in won.items()
        if all(told)
        and (
            (nobody and lookups_only(registry, {n}))
            or n == how_to_owner(registry)
            or (n != best and n in registry and not registry[n].side_effects)
        )
        and any(m not in won or not all(won[m]) for m in chosen - {n})
    }


_COULD_BE_DONE = re.compile(
    r"\b(?:whether|if)\b[^.!?]*?\b(?:can|could|would|might|may)\s+(?:still\s+)?"
    r"(?:be\s+(?:(?:returned|refunded|reimbursed|credited|paid)(?:\s+back)?|(?:given|sent|put)\s+back)"
    r"|come\s+back)\b"
    # a direct question ("Can this charge be returned or not anymore?", "it is possible to return it?")
    r"|(?P<direct>\b(?:can|could|may)\s+(?:it|this|that|they|these|those|(?:the|this|that|our|my|his|her|their)\s+(?:[\w-]+\s+){0,2}?[\w-]+)"
    r"\s+(?:still\s+)?be\s+(?:returned|refunded|reimbursed|credited|(?:paid|given|sent|put)\s+back)\b"
    r"|\b(?:is\s+it|it\s+is|is)\s+(?:still\s+)?possible\s+to\s+(?:return|refund|reimburse|get\s+(?:it|them|that)\s+back)\b)",
    re.I,
)
"""Asking whether money could still be given back ("whether it could still be returned to us", "if it
can still come back", "if the payment can be given back"), or, group `direct`, asking it directly
("Can this charge be returned or not anymore?", "it is possible to return it?"): a question about a
charge's eligibility, not the instruction."""


def asked_directly(task: str) -> bool:
    """Whether a request asks directly whether money can be given back (`_COULD_BE_DONE`'s `direct`),
    without a word that makes it an instruction ("please", "kindly")."""
    return any(m["direct"] for m in _COULD_BE_DONE.finditer(task)) and not _PLEASE.search(task)


def eligibility_asked(
    task: str, registry: Registry, ranked: Sequence[tuple[str, float]], chosen: set[str]
) -> set[str]:
    """What a request that selected only the customer lookup (a capability providing what another
    requires, for the customer id or e-mail it gives) or the action itself asks when it names the
    action only in another form, whether it can be or was done ("c-1005 last renewal - refundable?",
    "is ana@x.io's charge from May refunded yet", `_COULD_BE_DONE`: "whether it could still be
    returned"): the record the action would take, `asked_of_ours`' reading of a question about the
    action (the charges), never the action itself. The request names the customer (an id, an e-mail
    or a customer's full name)."""
    # the help centre may have taken the question for the policy ("Can that retry be refunded?"),
    # and, asked directly, the charges are what it asks about anyway
    plain = {n for n in chosen if n not in registry or not registry[n].side_effects}
    plain -= {how_to_owner(registry), *(money_back_providers(registry) if asked_directly(task) else ())}
    charge = any(not IDENTIFIER.fullmatch(m.group()) for m in _RECORD_ID.finditer(task))  # "CH-2052"
    if not (IDENTIFIER.search(task) or known_names(registry, task) or charge) or (
        plain and not lookups_only(registry, plain)
    ):
        return set()
    forms = "|".join(
        re.escape(v) for n in registry.capabilities.values() if n.side_effects for v in n.action_verbs or ()
    )
    if (
        not forms
        or not (
            re.search(rf"\b(?:{forms})(?:able\b|ed\b[^.!?]*\?)", task, re.I)  # "refundable", "refunded?"
            or _COULD_BE_DONE.search(task)  # "whether it could still be returned"
        )
        or re.search(rf"\b(?:want|need|like|get|have)\b[^.!?]*\b(?:{forms})ed\b", task, re.I)
        or re.search(rf"\b(?:{forms})\b(?!\s+{_MODIFIED})", task, re.I)  # "refund it if it is refundable"
        or conditional_actions(task, registry, ranked)  # "... can still be refunded, and if so do it"
    ):
        return set()
    found = asked_of_ours(task, registry, ranked)
    if not found and _COULD_BE_DONE.search(task):  # "whether it could still be returned to us"
        found = {p for n in registry.routable if n.side_effects for p in last_provider(registry, n, ranked)}
    return found if found and not any(registry[n].side_effects for n in found if n in registry) else set()


def names_other(task: str, registry: Registry) -> bool:
    """Whether a request names something the guides do not (`_foreign_capitals`): a fallback that
    takes a request no threshold took does not take it ("I need a refund for my train ticket from
    Milan to Rome")."""
    words = need_words(without_record_ids(task))  # "renewal date S-4003": an id is no name
    vocab = vocabulary(registry)
    return _foreign_capitals(task, words, [known_word(w, vocab) for w in words])


def _foreign_capitals(task: str, words: Sequence[str], known: Sequence[bool]) -> bool:
    """Whether a word the guides do not use is capitalised and not the request's first: a name."""
    first = re.match(r"\W*([A-Za-z][\w'-]*)", task)
    return any(
        not k and w[:1].isupper() and not (first and first.group(1) == w and task.find(w) == first.start(1))
        for w, k in zip(words, known, strict=True)
    )


_ADVICE = re.compile(
    r"^\W*(?:(?:so|and|but|ok|okay)\b[\s,]*)*(?:what\s+(?:should|shall|can|do|must)\s+(?:i|we)\s+do"
    r"|what\s+are\s+(?:my|our)\s+options|what\s+(?:is|'s)\s+the\s+(?:best\s+)?(?:fix|workaround|way\s+forward))\b",
    re.I,
)
"""Asking for advice on what to do ("What should I do?", "what can we do", "what are my options"): a
how-to question without the "how" (`our_how_to`)."""

KNOWN_SHARE = 2 / 3
"""The share of a how-to question's words (`clauses.need_words`) the guides must use for
`our_how_to`."""


def our_how_to(task: str, registry: Registry, *, advice: bool = False) -> bool:
    """Whether a request is a how-to question (`asks_how_to`, the whole of it or a clause) about the
    registry's own product: at least `KNOWN_SHARE` of its words are the guides' (`vocabulary`,
    `known_word`) and no name they do not use is in it (a capitalised word not first in the request:
    "How do I cancel my Netflix subscription?"). "how do I remove a user who left the company": all
    five; "how do I bake sourdough bread": none; "how do I get a refund from Uber": Uber. A greeting
    in the form ("hi, how are you today?") asks nothing (`courtesy`). With `advice`, a request for
    advice counts too (`_ADVICE`: "the reset link has expired, what should I do?")."""
    pieces = [task, *(task[a:b] for a, b in clause_spans(task))]
    if not any((asks_how_to(p) or (advice and _ADVICE.match(p))) and not courtesy(p) for p in pieces):
        return False
    words = need_words(without_record_ids(task))  # "renewal date S-4003": an id is no name
    vocab = vocabulary(registry)
    known = [known_word(w, vocab) for w in words]
    if not words or sum(known) < KNOWN_SHARE * len(words):
        return False
    return not _foreign_capitals(task, words, known)


_COUNT = re.compile(
    r"^\W*(?:(?:and|also|plus|btw)\b\W*)*(?:(?:can|could|would|will)\s+(?:you|ye|u)\s+(?:please\s+)?)?"
    r"(?:(?:tell|let|remind|show)\s+(?:me|us)\s+(?:know\s+)?)?how\s+many\b",
    re.I,
)
"""A clause that asks for a count ("how many seats do we have", "and how many seats", "could you
tell me how many seats we're paying for")."""


def count_readings(
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    chosen: set[str],
    counters: set[str] | None,
    floor: float = SECONDARY_FLOOR,
) -> tuple[set[str], set[str]]:
    """A count question read as a count (`_COUNT`): selected capabilities without a count question in
    their guide (`form_users`) that only count clauses chose, and the capabilities with one that are
    those clauses' best instead (at least `floor`), when that one is selected already or within
    `HOW_TO_CLOSE` of the clause's best. "how many seats are we paying for" asks for the seats on
    file; resembling the price examples ("paying for") makes it no quote."""
    if not counters:
        return set(), set()
    won: dict[str, list[bool]] = {}
    readings: dict[str, set[str]] = {}
    for piece, conf in clause_rows:
        order = _top(conf, labels, names, set())
        if not order or courtesy(piece) or labels[order[0]] not in chosen:
            continue
        best = labels[order[0]]
        counting = bool(_COUNT.match(piece)) and best not in counters
        won.setdefault(best, []).append(counting)
        if counting:
            read = [j for j in order if labels[j] in counters and float(conf[j]) >= floor][:1]
            if not read or (labels[read[0]] not in chosen and _lead(conf, order[0], read) >= HOW_TO_CLOSE):
                won[best][-1] = False  # "how many seats were on our last invoice": the invoice's, clearly
            readings.setdefault(best, set()).update(labels[j] for j in read)
    drop = {n for n, flags in won.items() if all(flags)}
    add = {r for n in drop for r in readings.get(n, set())}
    return drop, add


_LEAD_IN = re.compile(
    r"^\W*(?:(?:wait|so|ok|okay|hm+|oh|ah|actually|um+|but|and|also|btw|sorry)\b\W*)*", re.I
)
"""Words before a question that ask nothing ("wait, ...", "ok so ...", "hmm and ...")."""
_HOLDER = re.compile(r"\b(?:i|we|he|she|they|my|our|his|her|their|us|me|him|them)\b", re.I)
"""Whose count a question asks ("how many users do they have"): someone's, on file."""


COUNT_FLOOR = SECONDARY_FLOOR / 2
"""The least a count question's capability scores (`count_asked`): half the secondary floor, as the
question's shape (one clause, a count, someone's) says more than its score ("how many people is she
paying for" scored 0.0018 for the account once support set 13 joined the labelled examples)."""


def count_asked(task: str, registry: Registry, ranked: Sequence[tuple[str, float]]) -> str | None:
    """The best-ranked capability whose guide asks counts (`form_users`), when a request no threshold
    took is one count question (`_COUNT`, after words that ask nothing: "wait how many ppl is he even
    paying for", "so how many users do they have"), it reaches `COUNT_FLOOR` and it is within
    `HOW_TO_CLOSE` log-odds of the best (which is not the help centre). Nothing when the request
    names something the guides do not (`names_other`)."""
    counters = form_users(registry, _COUNT)
    body = _LEAD_IN.sub("", task, count=1)
    if not counters or not ranked or not _COUNT.match(body) or len(clause_spans(body)) > 1:
        return None
    owner = how_to_owner(registry)
    top = ranked[0][1]
    # The best-ranked capability whose guide asks counts, within HOW_TO_CLOSE of the best: "how many
    # people is she paying for" resembles the price examples ("paying for") a little more than the
    # seats on file, and is still a count of someone's seats.
    best, score = next(((n, s) for n, s in ranked if n in counters and n != owner), ("", 0.0))
    if (
        not best
        or ranked[0][0] == owner  # "how many days until the trial ends" is the help centre's at most
        or score < COUNT_FLOOR
        or logit(top) - logit(score) >= HOW_TO_CLOSE
        or not _HOLDER.search(body)  # "how many days until christmas": nobody's count
        or names_other(task, registry)
    ):
        return None
    return best


_OBJECT = (
    r"(?:\s+(?:it|that|this|them|one|both|all|too|please|pls|asap|now|as\s+well"
    r"|the\s+(?:\w+\s+)?(?:one|charge|charges|duplicate|extra|payment|difference)))*"
)


def coordinated_actions(task: str, registry: Registry, ranked: Sequence[tuple[str, float]]) -> set[str]:
    """Capabilities with side effects whose action verb stands bare as an instruction coordinated
    with the rest of a request, last or before another instruction ("dup charge on CH-2041? check +
    refund", "look at INV-3120 & refund it", "verify the duplicate and then refund the extra one"):
    a terse request's "+", "&" or "(and) then" joins the action on, however little of the request's
    vector it moved. Scored at least `SECONDARY_FLOOR`; not when the words turn the action down."""
    out = set()
    for name, score in ranked:
        info = registry.capabilities.get(name)
        if info is None or not info.side_effects or not info.action_verbs or score < SECONDARY_FLOOR:
            continue
        verbs = "|".join(re.escape(v) for v in info.action_verbs if re.fullmatch(r"[a-z]+", v))
        if not verbs or turns_down(task, info.action_verbs):
            continue
        bare = re.compile(
            rf"(?:\s[+&]\s*|[+&]|\b(?:and\s+)?then\s+)(?:please\s+|pls\s+)?(?:{verbs}){_OBJECT}"
            r"\s*(?=$|[.!;]|\s[+&]\s)",
            re.I,
        )
        if bare.search(task.strip()):
            out.add(name)
    return out


_MONEY_BACK = re.compile(
    r"\b(?:get|gets|getting|got|have|give|receive)\s+(?:[\w'$\u00a3\u20ac.,]+\s+){0,4}?back\b|\bmoney\b[^.?!]{0,40}?\bback\b"
    r"|\b(?:paid|given|sent|put|come|coming|credited)\s+back\b",
    re.I,
)
"""Money coming back, whatever is named between ("do we get this month back", "have the rest back",
"our money back", "would any of the money find its way back", "is the unused part paid back")."""


def money_back_providers(registry: Registry) -> set[str]:
    """The last providers before an action with side effects (`last_provider`'s set: billing, which
    finds the charge a refund takes), whatever they scored."""
    out: set[str] = set()
    for info in registry.routable:
        if not info.side_effects:
            continue
        providers = {p for key in info.requires for p in registry.providers(key)}
        out |= {
            p
            for p in providers
            if not any(set(registry[p].provides) & set(registry[q].requires) for q in providers - {p})
        }
    return out


def hypothetical_refund(task: str, registry: Registry) -> bool:
    """Whether a request is a hypothetical question about money coming back (`_HYPOTHETICAL` and a
    question mark, with an action word of a capability with side effects in any form or
    `_MONEY_BACK`) that names no one and no record (no e-mail, customer or record id, customer
    name) and is in the guides' words (`KNOWN_SHARE` of `need_words`, no name they do not use):
    "If we take their seats off now, do we get this month back?", "if we drop seats mid-month, is the
    rest refunded?" ask the policy; nobody's charges are there to check."""
    if "?" not in task or not _HYPOTHETICAL.search(task):
        return False
    if IDENTIFIER.search(task) or _RECORD_ID.search(task) or known_names(registry, task):
        return False
    forms = "|".join(re.escape(v) for n in registry.routable if n.side_effects for v in n.action_verbs or ())
    if not (_MONEY_BACK.search(task) or (forms and re.search(rf"\b(?:{forms})\w*", task, re.I))):
        return False
    words = need_words(without_record_ids(task))
    vocab = vocabulary(registry)
    known = [known_word(w, vocab) for w in words]
    return (
        bool(words) and sum(known) >= KNOWN_SHARE * len(words) and not _foreign_capitals(task, words, known)
    )


def eligibility_of_named(
    task: str,
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    registry: Registry,
    chosen: set[str],
    policy: str,
) -> set[str]:
    """The help centre (`policy`) when every clause it is the best of asks whether money can still
    come back (`_COULD_BE_DONE`), next to the provider of the money's record (`money_back_providers`:
    billing), in a request that names the customer (an e-mail, customer id or full name): "check
    whether Aisha Bello's renewal went through and whether it can still come back" asks about her
    charge's eligibility, which the charges answer, not the policy."""
    if not (chosen & money_back_providers(registry)) or not (
        IDENTIFIER.search(task) or known_names(registry, task)
    ):
        return set()
    won = [
        bool(_COULD_BE_DONE.search(piece))
        for piece, conf in clause_rows
        if not courtesy(piece)
        and (order := _top(conf, labels, names, set()))
        and labels[order[0]] == policy
        and float(conf[order[0]]) >= SECONDARY_FLOOR
    ]
    return {policy} if won and all(won) else set()


_WOULD = re.compile(r"\b(?:would|wud|'d)\b", re.I)


def would_hypothetically(task: str, registry: Registry) -> bool:
    """Whether a request asks what would be, on a supposition (`_HYPOTHETICAL`, "would", a question
    mark), and names no one and no record (no e-mail, customer or record id, customer name): "If we
    were 14 people on Team for the summer, what would that come to a month?" asks a price, not
    anyone's charges."""
    return (
        "?" in task
        and bool(_HYPOTHETICAL.search(task))
        and bool(_WOULD.search(task))
        and not (IDENTIFIER.search(task) or _RECORD_ID.search(task) or known_names(registry, task))
    )


_IF_SO = (
    r"\bif\s+(?:so|yes|it\s+(?:is|was|can|does|did|qualifies)|they\s+(?:are|were|can|do|did)"
    r"|that'?s\s+(?:the\s+case|right|true)|(?:it'?s\s+)?(?:eligible|possible|allowed)|twice|doubled?|duplicated?)\b"
    r"[\s,:-]*(?:then\s+)?(?:(?:please|pls|plz|just|kindly|go\s+ahead\s+and|can\s+you|could\s+you)\s+)*"
)


def conditional_actions(task: str, registry: Registry, ranked: Sequence[tuple[str, float]]) -> set[str]:
    """Capabilities with side effects that a conditional instruction asks for ("... and if so just do
    it", "If so get it refunded", "And if twice, send the extra back please"): "if so" (or "if it
    is", "if eligible", ...) and then the action's verb, "get it <verb>ed", "send/put ... back", or,
    when the request names the action in any form elsewhere, "do it" / "go ahead". Scored at least
    `SECONDARY_FLOOR`; not when the words turn the action down."""
    out = set()
    for name, score in ranked:
        info = registry.capabilities.get(name)
        if info is None or not info.side_effects or not info.action_verbs or score < SECONDARY_FLOOR:
            continue
        if turns_down(task, info.action_verbs):
            continue
        verbs = "|".join(re.escape(v) for v in info.action_verbs if re.fullmatch(r"[a-z]+", v))
        if not verbs:
            continue
        act = (
            rf"(?:(?:{verbs})\b|(?:get|have)\s+(?:it|them|that|this|those)\s+(?:{verbs})(?:ed|d)\b"
            r"|(?:send|put|pay|give)\s+(?:it|them|that|this|those|the\s+(?:\w+\s+){0,2}?\w+)\s+back\b)"
        )
        named = re.search(rf"\b(?:{verbs})\w*", task, re.I)
        generic = r"(?:do\s+(?:it|that|so)|go\s+ahead|proceed)\b" if named else r"(?!x)x"
        if re.search(rf"{_IF_SO}(?:{act}|{generic})", task, re.I):
            out.add(name)
    return out


_CHECK_FIRST = re.compile(
    r"\b(?:check|see|look\s+(?:at|into|over)|verify|confirm|find\s+out|make\s+sure|investigate)\b", re.I
)
"""An instruction to look something up first ("check whether ...", "see if ...", "look at INV-3012")."""


def checked_first(
    task: str, registry: Registry, chosen: set[str], ranked: Sequence[tuple[str, float]]
) -> set[str]:
    """The record an instruction asks to check before a selected action that depends on what the
    check finds: "Check whether it really is a duplicate, and if it is, give the extra back", "Look
    at INV-3012 - if there are two charges against it, refund the extra one", "see if they got
    charged twice, and if so give it back". A check verb (`_CHECK_FIRST`), later an "if" and, in the
    clause after the condition ("if so", or after a comma, a dash or "then"), the action's verb (or
    "give/send/put ... back"): the check is a need of its own (billing) beside the action, not only
    the action's input, whatever its words scored (the best-ranked of the action's last providers,
    `last_provider`'s set). Not when the words turn the action down ("check if I was charged twice,
    if so don't refund yet")."""
    out: set[str] = set()
    for name in chosen:
        info = registry.capabilities.get(name)
        if (
            info is None
            or not info.side_effects
            or not info.action_verbs
            or turns_down(task, info.action_verbs)
        ):
            continue
        verbs = "|".join(re.escape(v) for v in info.action_verbs if re.fullmatch(r"[a-z]+", v))
        if not verbs:
            continue
        act = (
            rf"(?:(?:{verbs})\b|(?:get|have)\s+(?:it|them|that|this|those)\s+(?:{verbs})(?:ed|d)\b"
            r"|(?:send|put|pay|give)\s+(?:it|them|that|this|those|the\s+(?:\w+\s+){0,2}?\w+)\s+back\b)"
        )
        condition = (
            rf"{_CHECK_FIRST.pattern}[^?]*?\bif\b(?:\s+(?:so|yes)\b|[^.!?;]{{0,80}}?(?:[,:\u2013\u2014-]|\s+then\b))"
            rf"\s*(?:then\s+)?(?:(?:please|pls|plz|just|kindly|go\s+ahead\s+and)\s+)*{act}"
        )
        if not re.search(condition, task, re.I):
            continue
        providers = {p for key in info.requires for p in registry.providers(key)}
        last = {
            p
            for p in providers
            if not any(set(registry[p].provides) & set(registry[q].requires) for q in providers - {p})
        }
        best = next((n for n, _ in ranked if n in last), None)
        if best is not None:
            out.add(best)
    return out


def side_effect_hypothetical(task: str, registry: Registry, chosen: set[str]) -> set[str]:
    """Selected capabilities with side effects that a hypothetical question only asks about
    (`_HYPOTHETICAL` in a question, or with no explicit instruction, `side_effect_intent`): "would
    we get our money back if we cancelled now?" asks the refund policy, not for a refund."""
    if not _HYPOTHETICAL.search(task):
        return set()
    out = set()
    for name in chosen:
        info = registry.capabilities.get(name)
        if info is None or not info.side_effects or not info.action_verbs:
            continue
        if "?" in task or side_effect_intent(task, info.action_verbs).kind != "act":
            out.add(name)
    return out


def asked_in_clauses(
    task: str, clause_rows: Sequence[tuple[str, np.ndarray]], labels: Sequence[str], names: Sequence[str]
) -> set[str]:
    """The best capabilities of the clauses that ask in a form the scorer's `asked` does not read
    (`asks_in`: "I would be grateful if you could confirm which plan we are on")."""
    out = set()
    for piece, conf in clause_rows:
        if not courtesy(piece) and asks_in(task, piece) and (order := _top(conf, labels, names, set())):
            out.add(labels[order[0]])
    return out


def how_to_of_action(
    task: str,
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    registry: Registry,
    chosen: set[str],
) -> set[str]:
    """Selected capabilities with side effects that only how-to clauses chose (`how_to_in`), in a
    request that names none of their action words in any form (`side_effect_intent` refuses: "no
    request"): "she lost her phone and can't pass the two-factor code. How do we get her back in?"
    resembles getting money back; it asks how to do something, the help centre's."""
    out = set()
    for name in chosen:
        info = registry.capabilities.get(name)
        if info is None or not info.side_effects or not info.action_verbs:
            continue
        if not side_effect_intent(task, info.action_verbs).reason.startswith("no request"):
            continue
        won = [
            how_to_in(piece)
            for piece, conf in clause_rows
            if not courtesy(piece)
            and (order := _top(conf, labels, names, set()))
            and labels[order[0]] == name
            and float(conf[order[0]]) >= SECONDARY_FLOOR  # below it a clause matches nothing at all
        ]
        if won and all(won):
            out.add(name)
    return out


_SHAPED: dict[int, tuple[Registry, frozenset[str]]] = {}


def shaped(registry: Registry, names: Sequence[str]) -> dict[str, Callable[[str], bool]]:
    """The capabilities of `names` that recognise requests by their shape (`recognising` one of their
    own positive guide examples: the calculator's arithmetic), with what tells whether a text has it."""
    held = _SHAPED.get(id(registry))
    if held is None or held[0] is not registry:
        found = frozenset(
            c.name
            for c in registry.routable
            if any(recognising(registry, q, [c.name]) for q in c.classifier_guide.positives)
        )
        held = _SHAPED[id(registry)] = (registry, found)

    def tells(name: str) -> Callable[[str], bool]:
        return lambda text: bool(recognising(registry, text, [name]))

    return {n: tells(n) for n in names if n in held[1]}


def form_users(registry: Registry, form: re.Pattern[str]) -> set[str] | None:
    """The capabilities with a positive guide example of this form (a count question: the account's
    "how many seats do we have right now"); None when no guide has one."""
    users = {c.name for c in registry.routable if any(form.search(q) for q in c.classifier_guide.positives)}
    return users or None


HOW_TO_SHARE = 2.0
"""How many times more how-to questions (`clauses.asks_how_to`) the owner's guide must have among its
positive examples than any other guide's (`how_to_owner`)."""


def how_to_owner(registry: Registry) -> str | None:
    """The capability whose guide is made of how-to questions ("how do I change my login email",
    "where in the dashboard can I download my invoices"): the most such positive examples, at least
    three and `HOW_TO_SHARE` times the next guide's. None when no guide stands out (a registry without
    a help centre)."""
    counts = sorted(
        ((sum(asks_how_to(q) for q in c.classifier_guide.positives), c.name) for c in registry.routable),
        reverse=True,
    )
    if not counts or counts[0][0] < 3:
        return None
    if len(counts) > 1 and counts[0][0] < HOW_TO_SHARE * counts[1][0]:
        return None
    return counts[0][1]


def context_of_how_to(
    task: str,
    clause_rows: Sequence[tuple[str, np.ndarray]],
    registry: Registry,
    chosen: set[str],
    unasked: set[str],
    labels: Sequence[str] = (),
    names: Sequence[str] = (),
) -> set[str]:
    """Selected capabilities that win only statements, in a request whose only question is a how-to
    (`asks_how_to`) the help centre answers: the statement is the situation the how-to is about
    ("The VAT number on our invoices is wrong; where do I change it?": billing wins the statement,
    the request is the how-to). Not when a marker joins the how-to as another need ("I think we paid
    INV-3033 twice. While you're at it, how long ...": the charge is a need of its own).

    Besides `unasked` (`Score.asked` false), with `labels` and `names` (the columns of the clause
    rows, the candidates) a capability every clause of whose best is a statement counts as winning
    only statements, also when it is the whole request's best ("The invoices still carry our old
    company name; where do I change that?": billing is the best of the request and of the statement,
    the request is the how-to; session 16)."""
    owner = how_to_owner(registry)
    told: dict[str, list[bool]] = {}
    for piece, conf in clause_rows:
        order = _top(conf, labels, names, set()) if labels else []
        if order and not courtesy(piece):
            told.setdefault(labels[order[0]], []).append(not asks_in(task, piece))
    unasked = unasked | {n for n, t in told.items() if all(t)}
    if owner is None or owner not in chosen or not (chosen & unasked):
        return set()
    asking = [p for p, _ in clause_rows if not courtesy(p) and asks_in(task, p)]
    if not asking or not all(asks_how_to(p) and not another_need(task, p) for p in asking):
        return set()
    return (chosen & unasked) - {owner}


_NARRATOR = re.compile(
    r"\b(?:i|we|they|he|she|someone|somebody|nobody|i'[a-z]+|we'[a-z]+|they'[a-z]+)(?![\w'])", re.I
)
"""A subject telling what happened or what is so ("we run payroll syncs", "I took over the job",
"they can plan the payment"): a clause with one and no question tells a story."""

_INDIRECT = re.compile(
    r"\b(?:i|we|they|he|she)\s+(?:\w+\s+)?(?:want|need|wonder|wondering|would\s+like|'d\s+like)\b"
    r"|\b(?:wants?|needs?|like)\s+to\s+know\b|\bwhether\b",
    re.I,
)
"""A request inside a statement: "I wonder if you could look up ...", "we want the money back",
"they would like to know what 5 seats cost", "... asking whether the errors are yours"."""

_SEVERAL = re.compile(
    r"\b(?:two|three|four|five|[2-9]|a\s+few|several|a\s+couple\s+of|couple\s+of|a\s+(?:bundle|bunch|handful|list)\s+of)"
    r"\s+(?:(?:quick|short|small|little|separate|different)\s+)?"
    r"(?:things|questions|q'?s|qns|queries|issues|requests|points|items|problems|asks)\b",
    re.I,
)
"""A request that says it has several needs ("Two things: ...", "three questions"): each of its
clauses is one, told or asked."""


def narrates(piece: str, following: str = "", before: str = "") -> bool:
    """Whether a clause tells rather than asks: a statement (`reads_as_request` false) with a subject
    (`_NARRATOR`: "We were told the first month would be free"), that is no how-to (`asks_how_to`),
    no hypothetical ("Say we cancel before the month is over", "If we downgraded ...") and asks for
    nothing inside it (`_INDIRECT`: "I wonder if you could look up our renewal date"). A bare noun
    phrase in a list ("plus instructions to reset my password") names a need: it does not."""
    return (
        not (reads_as_request(piece, following) and not relative_clause(piece, before, following))
        and not asks_how_to(piece)
        and not _HYPOTHETICAL.search(piece)
        and not _INDIRECT.search(piece)
        and not _POLITE.match(piece)
        and bool(_NARRATOR.search(piece))
    )


def told_not_asked(
    task: str,
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    chosen: set[str],
    ranked: Sequence[tuple[str, float]],
    how_to: str | None = None,
) -> set[str]:
    """Selected capabilities, next to another need and not the request's best, that every clause
    they are the best of `narrates`: a story told around a request asks nothing of them ("Context:
    we run payroll syncs through your API every Friday, and today one call in ten fails": incidents,
    not the help centre; "We'll be eleven people next month and I read that Starter caps out. What
    will the next tier cost?": sales, not the account). Kept: one that wins no clause (the whole
    request chose it), all of them when the request says it has several needs (`_SEVERAL`: "Two
    things: we were charged twice, and ..."), and a story before a question that a marker joins as
    another need (`another_need`: "I was charged twice last month. Also, what would Team cost?").
    A request that asks nothing at all is its stories ("I was billed twice this month and your
    dashboard is down too"): then only the help centre (`how_to`, `how_to_owner`), which answers
    questions, goes."""
    if len(chosen) < 2 or not ranked or _SEVERAL.search(task):
        return set()
    at = [max(0, task.find(piece)) for piece, _ in clause_rows]
    # "I was charged twice last month and the API keeps failing. Also, what would Team cost?": a
    # question a marker joins as another need makes what came before it needs too.
    marked = max(
        (
            a
            for a, (piece, _) in zip(at, clause_rows, strict=True)
            if another_need(task, piece) and asks_in(task, piece)
        ),
        default=-1,
    )
    won: dict[str, list[bool]] = {}
    for a, (piece, conf) in zip(at, clause_rows, strict=True):
        order = _top(conf, labels, names, set())
        if order and labels[order[0]] in chosen:
            told = a >= marked and narrates(piece, task[a + len(piece) :], task[:a])
            won.setdefault(labels[order[0]], []).append(told)
    asks = any(
        asks_in(task, piece) or asks_how_to(piece) for a, (piece, _) in zip(at, clause_rows, strict=True)
    )
    return {n for n, told in won.items() if n != ranked[0][0] and all(told) and (asks or n == how_to)}


def unclaimed(
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    chosen: set[str],
    ranked: Sequence[tuple[str, float]],
) -> set[str]:
    """Selected capabilities, not the request's best, that are the best of none of its clauses: the
    whole request's vector, a blend of its clauses, leaned their way ("Es posible to know the status
    of the API, and also the price of Enterprise per user?": the help centre, next to incidents and
    sales that the two clauses chose; "not looking for a refund or anything, I simply need to know
    when account #1001 renews": billing, for the refusal the clauses leave out). A request without
    scored clauses keeps what it selected."""
    if len(chosen) < 2 or not clause_rows or not ranked:
        return set()
    bests = set()
    for piece, conf in clause_rows:
        order = _top(conf, labels, names, set())
        if order and not courtesy(piece):
            bests.add(labels[order[0]])
    return {n for n in chosen if n != ranked[0][0] and n not in bests}


def courteous(registry: Registry) -> set[str]:
    """Capabilities made for courtesy: a positive guide example of theirs is only `courtesy` (a
    `greet` or `thank` intent). Only they are selected by a courtesy clause."""
    return {c.name for c in registry.routable if any(courtesy(q) for q in c.classifier_guide.positives)}


def courtesy_winners(
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    courteous: set[str],
) -> set[str]:
    """Capabilities not made for courtesy that are the best match of a `courtesy` clause: "hope all
    is well" resembles the service-status examples and, scored alone, reached their threshold
    (incidents 1.0 next to "My gym charged me twice"). `_courtesy_alone` checks them."""
    out = set()
    for piece, conf in clause_rows:
        order = _top(conf, labels, names, set())
        if order and courtesy(piece) and labels[order[0]] not in courteous:
            out.add(labels[order[0]])
    return out


def _courtesy_alone(
    task: str, scorer: FewShotScorer, names: Sequence[str], default: float, suspects: set[str]
) -> set[str]:
    """Of the selected `suspects` (`courtesy_winners`), those the request without its courtesy
    (`without_courtesy`) does not score at their threshold: the courtesy alone chose them. None when
    the request is nothing but courtesy (its own score is all there is)."""
    core = without_courtesy(task)
    if not suspects or not core or not re.search(r"[A-Za-z]{3,}", core):
        return set()
    kept = {
        s.name for s in scorer.score(core, names) if s.confidence >= scorer.threshold_for(s.name, default)
    }
    return suspects - kept


def _top(conf: np.ndarray, labels: Sequence[str], names: Sequence[str], skip: set[str]) -> list[int]:
    """Columns of the candidate capabilities not in `skip`, best first."""
    allowed = set(names) - skip
    return sorted((j for j, n in enumerate(labels) if n in allowed), key=lambda j: -float(conf[j]))


def _lead(conf: np.ndarray, best: int, rivals: Sequence[int]) -> float:
    runner_up = float(conf[rivals[0]]) if rivals else 0.0
    return float(logit(float(conf[best])) - logit(runner_up))


_ARROW = re.compile(r"\s*(?:<-+|-+>|<=+|=+>|\||\s--+\s|\u2190|\u2192)\s*")
"""A pointer or a column bar inside a clause ("CH-2053 Card declined <- how do I swap the card?")."""


def how_to_in(piece: str) -> bool:
    """Whether a clause, or a part of it after a pointer or bar (`_ARROW`: a note beside a pasted
    line), asks how to do something (`asks_how_to`)."""
    return asks_how_to(piece) or any(asks_how_to(part) for part in _ARROW.split(piece)[1:])


_INCLUDED = re.compile(
    r"^\W*(?:(?:and|also|but|so|plus|btw)\b\W*)*(?:does|do|will|would|can|is|are)\s+"
    r"(?!(?:i|we|you|u|they|he|she|it|there|this|that)\b)(?:[\w'-]+\s+){1,3}?"
    r"(?:include|includes|included|come\s+with|support|supports|offer|cover|covered|allow)\b",
    re.I,
)


def asks_what_is_included(piece: str) -> bool:
    """Whether a clause asks what something includes or supports ("does Team include the audit log",
    "and does the Starter plan come with SSO", "is phone support included in Enterprise"): a question
    the documents answer, like a how-to, whatever the scorer made of its few words. Not a question
    about someone ("do we have SSO", "does it include tax": what the thing is, the clause does not say)."""
    return bool(_INCLUDED.match(piece))


def clause_needs(
    task: str,
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    chosen: set[str],
    *,
    margin: float = SECONDARY_MARGIN,
    floor: float = SECONDARY_FLOOR,
    how_to: str | None = None,
    counters: set[str] | None = None,
    shapes: Mapping[str, Callable[[str], bool]] | None = None,
) -> list[str]:
    """Secondary needs of a request that selected `chosen`: capabilities a clause of its own names
    clearly though, scored alone and short, it stays below the threshold a whole request needs
    (`thresholds.secondary_need`). A clause that asks for something ("... and explain which payment
    methods you accept") leads by `margin` the capabilities not selected yet: the request's own need
    (billing) resembling it takes nothing from the lead of the one it names besides, and when that
    selected need is the clause's best by less than `CLOSE_TO_SELECTED` the clause is read as the
    other; a statement must lead every capability. Never from a clause that gives an e-mail or id
    (it pulls toward the customer lookup) or is only `courtesy` ("I am sorry to trouble you with
    this").

    A clause that `asks_how_to` ("also, how do I resend the events that never arrived?") names the
    `how_to` capability (`how_to_owner`: the help centre) when that capability is its best or within
    `CLOSE_TO_SELECTED` of it, at any confidence: the form says which need it is even when the
    topic, scored short and alone, resembles nothing (0.0002). "how do I get a refund for the double
    charge" stays the refund's: its best leads the help centre by far more."""
    out: list[str] = []
    owner = labels.index(how_to) if how_to in labels and how_to in names and how_to not in chosen else None
    for piece, conf in clause_rows:
        if courtesy(piece):
            continue
        if owner is not None and how_to not in out and (how_to_in(piece) or asks_what_is_included(piece)):
            order = _top(conf, labels, names, set())
            if order and _lead(conf, order[0], [owner]) < HOW_TO_CLOSE:
                out.append(labels[owner])
                continue
        if mentions_identifier(piece):
            continue
        if no_need_of_its_own(task, piece):
            continue  # "..., which the committee are pleased with", "and what is the status"
        asks = asks_in(task, piece)
        order = _top(conf, labels, names, set())
        if counters is not None and _COUNT.match(piece):
            # "and how many seats": a count on file; a guide with no count question is not its reading
            order = [j for j in order if labels[j] in counters]
        if asks and order and labels[order[0]] in chosen:
            # "..., and explain how I can pay by bank transfer": billing, selected, a little ahead
            # of the help centre; read as the need not selected yet when it is that close.
            rest = [j for j in order if labels[j] not in chosen]
            if rest and _lead(conf, order[0], rest) < CLOSE_TO_SELECTED:
                order = rest
        if not order or labels[order[0]] in chosen or float(conf[order[0]]) < floor:
            continue
        if not asks and len(need_words(piece)) < STATEMENT_WORDS:
            continue  # "only checking", "Three emails": too few words to name a need they do not ask
        rivals = [j for j in order[1:] if not asks or labels[j] not in chosen]
        need = margin
        if joined_as_need(task, piece, clause_rows) and (
            labels[order[0]] not in (shapes or {}) or (shapes or {})[labels[order[0]]](piece)
        ):  # "..., and how much is it": no arithmetic, not the calculator's on weaker evidence
            need = min(margin, JOINED_MARGIN)
        if _lead(conf, order[0], rivals) >= need:
            out.append(labels[order[0]])
    return out


JOINED_MARGIN = 2.0
"""Log-odds by which a clause's best capability must lead its rivals to be a secondary need when the
request joins the clause on as a need of its own (`joined_as_need`): e^2, about 7 times as likely."""

_JOINED_BEFORE = re.compile(r"\s[+&]\s*$")
"""A "+" or "&" before a clause: a terse request's "and" ("c1003 plan + is the api ok")."""


def joined_as_need(task: str, piece: str, clause_rows: Sequence[tuple[str, np.ndarray]]) -> bool:
    """Whether the request says a clause is a need of its own: a marker or a "+" / "&" joins it to
    what came before (`another_need`, `_JOINED_BEFORE`: "c1003 plan + is the api ok", "... . Also,
    is the dashboard down?"), or it is a question before a question a marker joins ("Was I billed
    twice? Is SSO down? And what would Team cost?"), or the story right before one ("The tills
    won't sync again. Also, when do we renew?"): what came before is a need too."""
    at = task.find(piece)
    if at < 0:
        return False
    if another_need(task, piece) or _JOINED_BEFORE.search(task[:at]):
        return True
    if _SEVERAL.search(task[:at]) and asks_in(task, piece):
        return True  # "three q's - is the dashboard down, how many seats we got, ...": each one a need
    later = sorted((there, other) for other, _ in clause_rows if (there := task.find(other)) > at)
    asks = asks_in(task, piece)
    return any(
        (asks or i == 0)  # a question in the list, or the story right before the marked question
        and (another_need(task, other) or bool(_JOINED_BEFORE.search(task[:there])))
        and asks_in(task, other)
        for i, (there, other) in enumerate(later)
    )


def read_as_other(
    task: str,
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    chosen: set[str],
    added: set[str],
    ranked: Sequence[tuple[str, float]],
) -> set[str]:
    """Selected capabilities that only a clause read as another need chose: `clause_needs` reads a
    request clause whose best, already selected, leads a capability not selected yet by less than
    `CLOSE_TO_SELECTED` as that other one (`added`); when that best is not the request's own best
    and is the best of no other clause, the clause was all that chose it, and it goes ("what plan is
    Acme on, and can you take back the extra renewal charge?": the help centre 0.992 and the refund
    0.991 in the second clause; the refund is the need)."""
    if not added or not ranked:
        return set()
    bests: list[str] = []
    yielded: set[str] = set()
    for piece, conf in clause_rows:
        if courtesy(piece):
            continue
        order = _top(conf, labels, names, set())
        if not order:
            continue
        bests.append(labels[order[0]])
        if labels[order[0]] not in chosen or mentions_identifier(piece):
            continue
        if not asks_in(task, piece):
            continue
        rest = [j for j in order if labels[j] not in chosen]
        if rest and labels[rest[0]] in added and _lead(conf, order[0], rest) < CLOSE_TO_SELECTED:
            yielded.add(labels[order[0]])
    return {n for n in yielded if n != ranked[0][0] and bests.count(n) == 1}


def grounds_of_ask(
    task: str,
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    registry: Registry,
    chosen: set[str],
) -> set[str]:
    """Selected providers that only set the scene for a need they feed: the context before the ask.
    A provider (its `provides` meets the `requires` of another selected capability, the consumer) is
    dropped when it is the best of a clause that gives no e-mail or id, no clause whose best it is
    asks for anything (each `sets_the_scene`: "I was charged twice for the same invoice", "When I
    checked the card there were two payments") and a later clause is the consumer's ("... Please send the second one back"). The planner still runs the
    provider for the consumer's input (`requires`/`provides`), as for `implied`. Nothing when the
    request says it has several needs (`_SEVERAL`: "Circling back on two points: (1) when our
    subscription renews and (2) whether ..."): each clause is one (session 20). Kept: a provider
    whose clause asks ("Was I charged twice? If so, refund it"), or whose clause follows the
    consumer's ("refund the duplicate, and list this year's invoices")."""
    if len(clause_rows) < 2 or len(chosen) < 2 or _SEVERAL.search(task):
        return set()  # "Two points: (1) when we renew and (2) whether ...": each clause is a need
    best: list[tuple[str, bool, bool]] = []  # each clause's best capability, whether it asks, gives an id
    apposed: list[bool] = []  # each clause: a noun phrase after a comma (`appositive`)
    for piece, conf in clause_rows:
        order = _top(conf, labels, names, set())
        if not order or courtesy(piece):
            continue
        at = task.find(piece)
        following = task[at + len(piece) :] if at >= 0 else ""
        scene = not asks_in(task, piece) or (
            reads_as_request(piece, following) and sets_the_scene(piece, following)
        )
        best.append((labels[order[0]], not scene, mentions_identifier(piece)))
        apposed.append(appositive(task, piece))
    out = set()
    for provider in sorted(chosen):
        if provider not in registry:
            continue
        given = set(registry[provider].provides)
        consumers = {n for n in chosen - {provider} if n in registry and given & set(registry[n].requires)}
        mine = [i for i, (n, _, _) in enumerate(best) if n == provider]
        own = [i for i in mine if not best[i][2]]  # an id alone says who asks, not what happened
        fed = [i for i, (n, _, _) in enumerate(best) if n in consumers]
        if not consumers or not fed or not own or any(best[i][1] for i in mine):
            continue
        if all(i < max(fed) for i in own) or all(apposed[i] and i - 1 in fed for i in own):
            # "Please give the extra 30 dollars back, the double payment from last month": what
            # the consumer's clause just named, said again
            out.add(provider)
    return out


_APPOSED = re.compile(r"^\W*(?:the|that|this|those|these)\s+\w", re.I)
_FINITE = re.compile(
    r"\b(?:is|isn't|was|wasn't|were|are|be|been|being|has|have|had|did|didn't|does|doesn't|do|don't|can|can't"
    r"|could|will|won't|would|should|shows?|showed|looks?|seems?|went|came|got|took|needs?|wants?|keeps?)\b",
    re.I,
)


def appositive(task: str, piece: str) -> bool:
    """Whether a clause is a noun phrase after a comma that names again what the clause before it
    spoke of ("..., the double payment from last month", "..., that second charge"): it starts with
    a determiner, has at most eight words, no verb that makes it a sentence (`_FINITE`), no subject
    (`_NARRATOR`) and asks nothing."""
    at = task.find(piece)
    if at <= 0 or not task[:at].rstrip().endswith(","):
        return False
    return (
        bool(_APPOSED.match(piece))
        and len(piece.split()) <= 8
        and not _FINITE.search(piece)
        and not _NARRATOR.search(piece)
        and not reads_as_request(piece, task[at + len(piece) :])
    )


def shapeless(
    task: str,
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    chosen: set[str],
    ranked: Sequence[tuple[str, float]],
    shapes: Mapping[str, Callable[[str], bool]],
) -> set[str]:
    """Selected capabilities that recognise requests by their shape (`shaped`: the calculator's
    arithmetic), beside another need and not the request's best, when neither the request nor any
    clause has the shape and every clause they are the best of holds no digit and no word of
    arithmetic (`_WORKED_OUT`: "work out what that is per seat"): "Tell me, in plain
    numbers if you must, what a single seat costs", "Could I get the numbers?", "a sum of one
    hundred and twenty-five dollars appeared twice" name numbers, they do no arithmetic."""
    if len(chosen) < 2 or not ranked:
        return set()
    out = set()
    for name in chosen & set(shapes):
        if name == ranked[0][0] or shapes[name](task):
            continue
        won = [
            piece
            for piece, conf in clause_rows
            if (order := _top(conf, labels, names, set())) and labels[order[0]] == name
        ]
        if all(not re.search(r"\d", p) and not shapes[name](p) and not _WORKED_OUT.search(p) for p in won):
            out.add(name)
    return out


_WORKED_OUT = re.compile(
    r"\b(?:work(?:ed|ing)?\s+out|calculat\w*|comput\w*|per|divid\w*|multipl\w*|times|add(?:ed)?\s+up|totals?)\b",
    re.I,
)
"""Words that ask for arithmetic without its symbols ("work out what that is per seat")."""


_THEIRS = re.compile(r"\b(?:i|we|our|my|us|it|they|their|he|she|his|her|i'm|we're|it's)\b", re.I)
_DOCUMENT_WORDS = re.compile(
    r"\b(?:your|policy|policies|docs?|documentation|instructions?|steps?|guide|explain\w*|sla|terms|rules?)\b",
    re.I,
)
_WHEN = re.compile(r"^\W*(?:(?:and|also|plus)\s+)?(?:(?:until|till)\s+)?when\b", re.I)


def own_record_asked(
    task: str,
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    registry: Registry,
    chosen: set[str],
    owner: str | None,
) -> set[str]:
    """The help centre (`owner`) beside the customer lookup (`lookups_only`) in a request that names
    the customer (an e-mail, customer id or full name), when every clause it is the best of speaks
    of the customer (`_THEIRS`: "it", "we", "our") and either tells (not `asks_in`) or asks when
    (`_WHEN`), with no how-to, no question what something includes, no supposition and no word
    that asks the documents (`_DOCUMENT_WORDS`: "your", "policy", "instructions"): "which plan are
    we on and until when is it valid? sofia@..." asks her renewal date on file; "WHEN DOES OUR RENEWAL
    HIT. I NEED TO KNOW BEFORE I CANCEL THE CARD. C-1004" says why."""
    if owner is None or owner not in chosen or not any(lookups_only(registry, {n}) for n in chosen - {owner}):
        return set()
    if not (IDENTIFIER.search(task) or known_names(registry, task)):
        return set()
    own: list[bool] = []
    for piece, conf in clause_rows:
        order = _top(conf, labels, names, set())
        if (
            not order
            or courtesy(piece)
            or labels[order[0]] != owner
            or float(conf[order[0]]) < SECONDARY_FLOOR
        ):
            continue
        own.append(
            bool(_THEIRS.search(piece))
            and (not asks_in(task, piece) or bool(_WHEN.match(piece)))
            and not how_to_in(piece)
            and not asks_what_is_included(piece)
            and not _HYPOTHETICAL.search(piece)
            and not _DOCUMENT_WORDS.search(piece)
        )
    return {owner} if own and all(own) else set()


def documents_asked(task: str) -> bool:
    """Whether the request, or a clause of it, asks how to do something (`how_to_in`) or what
    something includes (`asks_what_is_included`): a question the documents answer whoever asks."""
    pieces = [task, *(task[a:b] for a, b in clause_spans(task))]
    return any(how_to_in(p) or asks_what_is_included(p) for p in pieces)


_ASIDE = re.compile(
    r"^\W*(?:with|if|as|when|while|because|since|though|although|unless|whatever|however)\b", re.I
)
"""A clause set aside in a sentence ("with whatever gentleness your system permits", "if you must"):
no item of a list the request asks for."""


def told_to_help_centre(
    task: str,
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    chosen: set[str],
    ranked: Sequence[tuple[str, float]],
    owner: str | None,
) -> set[str]:
    """The help centre (`owner`, `how_to_owner`), selected beside another need and not the request's
    best, when every clause it is the best of (at least `SECONDARY_FLOOR`) tells rather than asks
    (not `asks_in`, no how-to, no question what something includes, no supposition, no request
    inside it) and a clause that asks chose another selected capability: "we're a removals outfit
    and the crews log every job through your app. how many seats are we paying for? c1007"
    resembles the documents in its story; the documents answer questions. The request's best too
    when each such clause follows a colon after a clause that asks: "I'd like to open a ticket: the
    API gives us a 401 every time the app syncs" tells what the ticket is about."""
    if owner is None or owner not in chosen or len(chosen) < 2 or not ranked:
        return set()
    told: list[bool] = []
    introduced: list[bool] = []  # each told clause: what the asking clause before its colon asks for
    other_asked = False
    before_asks = False  # the clause before asks, and this one goes on in the same sentence
    for piece, conf in clause_rows:
        order = _top(conf, labels, names, set())
        if not order or courtesy(piece):
            continue
        best = labels[order[0]]
        at = max(0, task.find(piece))
        # "Tell me the Team price for 10 people, the API rate limit on Team, and ...": a list the
        # request before it asks for
        listed = (
            before_asks
            and not re.search(r"[.?!:;]\s*$", task[:at])
            and not _ASIDE.match(piece)  # "could you tell me, with whatever gentleness ..., which plan"
        )
        asks = asks_in(task, piece) or listed
        colon = before_asks and task[:at].rstrip().endswith(":")
        # a noun phrase goes on with the list; a clause with a subject or verb of its own ends it
        before_asks = asks_in(task, piece) or (
            listed and not _NARRATOR.search(piece) and not _FINITE.search(piece)
        )
        if best == owner and float(conf[order[0]]) >= SECONDARY_FLOOR:
            told.append(
                not asks
                and not how_to_in(piece)
                and not asks_what_is_included(piece)
                and not _HYPOTHETICAL.search(piece)
                and not _INDIRECT.search(piece)
                and "?" not in task[at : at + len(piece) + 2]
            )
            introduced.append(colon)
        elif best in chosen and asks:
            other_asked = True
    # the request's best too when every such clause follows a colon after a clause that asks: "I'd
    # like to open a ticket: the API gives us a 401 every time ...", the ticket's subject
    lead = ranked[0][0] != owner or all(introduced)
    return {owner} if told and all(told) and other_asked and lead else set()


def clear_request(
    task: str,
    clause_rows: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    names: Sequence[str],
    *,
    margin: float = SECONDARY_MARGIN,
    floor: float = SECONDARY_FLOOR,
) -> str | None:
    """The capability a request of several clauses asks for when none reached its threshold: the
    best of a clause that reads as a request and leads every other capability by `margin`, the
    highest such confidence. A request of one clause (or whose other clauses are courtesy, an id
    or a refusal) has no such fallback: its one score is the whole evidence ("Is Slack down?")."""
    pieces = [(p, c) for p, c in clause_rows if not courtesy(p) and not mentions_identifier(p)]
    if len(pieces) < 2:
        return None
    best: tuple[float, str] | None = None
    for piece, conf in pieces:
        if not asks_in(task, piece):
            continue
        order = _top(conf, labels, names, set())
        if not order or float(conf[order[0]]) < floor or _lead(conf, order[0], order[1:]) < margin:
            continue
        if best is None or float(conf[order[0]]) > best[0]:
            best = (float(conf[order[0]]), labels[order[0]])
    return None if best is None else best[1]


def _without_the_courtesy(
    task: str,
    scorer: FewShotScorer,
    names: Sequence[str],
    default: float,
    clause_rows: list[tuple[str, np.ndarray]],
) -> tuple[set[str], list[tuple[str, np.ndarray]]]:
    """What the request without its courtesy, introduction and signature (`without_courtesy`)
    selects by the thresholds, and its clause rows; nothing (and the old rows) when it is no
    shorter or empty."""
    core = without_courtesy(task)
    if not core or len(core.split()) >= len(task.split()) or not re.search(r"[A-Za-z]{3,}", core):
        return set(), clause_rows
    scored, rows = scorer.score_clauses(core, names)
    chosen = {s.name for s in scored if s.wins and s.confidence >= scorer.threshold_for(s.name, default)}
    return chosen, (rows if chosen else clause_rows)


def who_only(
    task: str, registry: Registry, scorer: FewShotScorer, names: Sequence[str], chosen: set[str]
) -> tuple[set[str], set[str]]:
    """Providers (a capability whose `provides` another capability `requires`: the customer lookup)
    that only the request's identifiers selected, when the rest of the request selects other needs
    by itself: (those providers, the needs the rest selects). The rest is the request without its
    identifiers and the clauses that only introduce the asker (`introduces_only`); it must not
    select the provider nor score it at its threshold ("what plan is jane@acme.io on" stays an
    account lookup), and must name a need in two words or more (`need_words`: "and C-1009?", a
    follow-up, names none) and select something ("look up jane@acme.io": the lookup stays).
    Not when a clause that asks for something gives the identifier and, without it, still points
    to the provider ("is the API down, and which plan is C-1009 on?": the lookup is asked for; "please
    file a ticket for account #1006, exports time out" asks for the ticket). `_fed_by_who` is the case where the rest's need
    consumes the provider's output; this one covers needs that do not ("jane@acme.io here - the
    dashboard won't load")."""
    if not chosen or not names or not _WHO.search(task):
        return set(), set()
    spans = clause_spans(task) or [(0, len(task))]
    asking = [  # "is the API down, and which plan is C-1009 on?": the id may be the question's
        task[a:b]
        for a, b in spans
        if _WHO.search(task[a:b]) and not introduces_only(task[a:b]) and reads_as_request(task[a:b], task[b:])
    ]
    intro = [(a, b) for a, b in spans if introduces_only(task[a:b])]
    kept = "".join(
        task[end:start]
        for (_, end), (start, _) in zip([(0, 0), *intro], [*intro, (len(task), 0)], strict=True)
    )
    rest = without_identifiers(kept)  # "my address is omar@x.co": the whole clause goes
    if rest == " ".join(task.split()) or len(need_words(rest)) < 2:  # "and C-1009?": a follow-up
        return set(), set()
    required = {key for cap in registry.capabilities.values() for key in cap.requires}
    default = registry.spec.classifier.threshold
    who = scorer.score(" ".join(m.group() for m in _WHO.finditer(task)), list(names))  # the ids alone
    providers = {n for n in chosen & {who[0].name} if n in registry and required & set(registry[n].provides)}
    if not providers:
        return set(), set()
    for piece in asking:
        # The clause that gives the id asks for the lookup when, without the id, it still points to
        # it ("which plan is on"); "please file a ticket for account #1006" points to the ticket.
        bare = " ".join(_WHO.sub(" ", piece).split())  # the word before the number goes too
        if not need_words(bare) or scorer.score(bare, list(names))[0].name in providers:
            return set(), set()
    scored = scorer.score(rest, list(names))
    won = {s.name for s in scored if s.wins and s.confidence >= scorer.threshold_for(s.name, default)}
    reached = {s.name for s in scored if s.confidence >= scorer.threshold_for(s.name, default)}
    drop = {p for p in providers if p not in reached}
    if not drop or not (won - drop):
        return set(), set()
    return drop, won - chosen


async def classifier(state: AgentState, call: NodeCall) -> Update:
    excluded = list(state.get("planning_excluded") or [])
    failures = [e for e in state.get("control_errors") or [] if e["severity"] == "reclassification"]
    if failures:
        call.keep["control_reclassifications"] = state.get("control_reclassifications", 0) + 1
        excluded += [e["capability"] for e in failures if e["capability"] and e["capability"] not in excluded]
        call.keep["planning_excluded"] = excluded
    scorer = await asyncio.to_thread(lambda: call.deps.scorer)
    mode = resolve_mode(call)
    note = call.llm.offline_note("classifier")
    if note and mode != "embedding":
        mode = "embedding"  # the model is offline: the few-shot scorer decides alone
    task = state.get("task_current") or ""
    context = "".join(f"\nEarlier attempt failed: {e['message']}" for e in failures)
    try:
        selected = await classify(
            task, call.deps.registry, scorer, call.llm, mode=mode, excluded=excluded, context=context
        )
    except Exception as exc:
        # Malformed judgements or no answer: retried by the router until the role goes offline
        # or this is the last attempt; then the embedding scorer classifies alone.
        note = call.llm.fallback_note(
            "classifier", exc, last_attempt=call.attempt > call.deps.limits.max_retries
        )
        if note is None:
            raise
        selected = await classify(
            task, call.deps.registry, scorer, call.llm, mode="embedding", excluded=excluded, context=context
        )
    selected, rerouted = apply_reroutes(call.deps.registry, selected, state, excluded)  # a specialist's say
    follow = state.get("context_followup") or {}
    if follow.get("capabilities") and not failures and not rerouted:
        # A follow-up goes to the capability the conversation is about (graph/context/followups.py).
        selected, _pinned = pin(selected, follow["capabilities"], call.deps.registry, excluded)
    update: Update = {"planning_plan": None, "planning_capabilities": selected}
    if note or rerouted:
        update["planning_notes"] = add_notes(state.get("planning_notes"), note, *rerouted)
    return update
