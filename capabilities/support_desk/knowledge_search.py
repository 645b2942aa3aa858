"""Knowledge search: the policy and product documents, full-text indexed with SQLite FTS5.

Every `knowledge/*.md` section (a `##` heading and its text) is one passage. The index lives in the
support database (migration 0002) and is brought up to date before each search: a file whose
SHA-256 changed is indexed again, a removed file is dropped, an unchanged one is left alone.
Answers cite their passages as `[file.md § Heading]`.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capabilities.support_desk.db import KNOWLEDGE_DIR, SupportDB, SupportDBs, format_time, now_utc
from graph.capability import Capability, CapabilityInputs, ClassifierGuide, GuideExample, RunContext

_STOPWORDS = """
a about above after again all am an and any are as at be been before being below between both but
by can could did do does doing down during each few for from further had has have having he her
here hers how i if in into is it its itself just me more most my myself no nor not now of off on
once only or other our ours out over own same she should so some such than that the their them then
there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours tandem please tell know want need get got us let
hi hello thanks
"""
STOPWORDS = frozenset(re.findall(r"\w+", _STOPWORDS))
"""Words too common to search for (and the product's own name, which is everywhere)."""


@dataclass(frozen=True)
class Section:
    title: str
    heading: str
    body: str


def sections(markdown: str, fallback_title: str) -> list[Section]:
    """The document split at its `##`/`###` headings; text before the first one is under the title."""
    title = fallback_title
    heading: str | None = None
    lines: list[str] = []
    out: list[Section] = []

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body:
            out.append(Section(title, heading or title, body))

    for line in markdown.splitlines():
        m = re.match(r"^(#{1,3})\s+(.*?)\s*#*\s*$", line)
        if m and len(m.group(1)) == 1:
            flush()
            title, heading, lines = m.group(2), None, []
        elif m:
            flush()
            heading, lines = m.group(2), []
        else:
            lines.append(line)
    flush()
    return out


def sync_index(conn: sqlite3.Connection, directory: Path) -> dict[str, list[str]]:
    """Bring the FTS index in line with the documents on disk; returns what it (re)indexed and dropped."""
    contents = {p.name: p.read_bytes() for p in sorted(directory.glob("*.md"))}
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}

    def stale() -> tuple[list[str], list[str]]:
        stored = {r["path"]: r["sha256"] for r in conn.execute("SELECT path, sha256 FROM kb_documents")}
        return [n for n in hashes if stored.get(n) != hashes[n]], [n for n in stored if n not in hashes]

    changed, removed = stale()
    if not changed and not removed:
        return {"indexed": [], "removed": []}
    conn.execute("BEGIN IMMEDIATE")
    try:
        changed, removed = stale()  # again under the write lock: another step may have done it
        for name in [*changed, *removed]:
            conn.execute("DELETE FROM kb_passages WHERE path = ?", (name,))
            conn.execute("DELETE FROM kb_documents WHERE path = ?", (name,))
        for name in changed:
            parts = sections(contents[name].decode("utf-8"), fallback_title=name)
            conn.executemany(
                "INSERT INTO kb_passages (path, title, heading, body) VALUES (?, ?, ?, ?)",
                [(name, s.title, s.heading, s.body) for s in parts],
            )
            conn.execute(
                "INSERT INTO kb_documents (path, sha256, title, indexed_at) VALUES (?, ?, ?, ?)",
                (name, hashes[name], parts[0].title if parts else name, format_time(now_utc())),
            )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return {"indexed": changed, "removed": removed}


def terms(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS and (len(w) > 2 or w.isdigit())))


_PARAPHRASES = (
    # "hand the workspace over to me", "pass it on to her", "take over the account", "make him the
    # owner": giving a workspace to someone else is transferring its ownership.
    (
        re.compile(
            r"\bhand(?:s|ed|ing)?\s+(?:\w+\s+){0,3}?(?:over|on)\b|\bpass(?:es|ed|ing)?\s+(?:\w+\s+){0,3}?(?:over|on)\s+to\b"
            r"|\btak(?:e|es|ing)\s+over\b|\btook\s+over\b|\bmake\s+(?:me|him|her|them|someone|\w+)\s+(?:the\s+)?(?:new\s+)?owner\b"
            r"|\bgive\s+(?:\w+\s+){0,2}?(?:the\s+)?(?:workspace|account)\s+to\b",
            re.I,
        ),
        "transfer ownership owner",
    ),
)
"""Everyday wordings of what the documents say in their own terms: their terms are searched too."""


def search(conn: sqlite3.Connection, query: str, limit: int = 3) -> list[dict[str, Any]]:
    """The best passages for a query (any of its terms; BM25, a heading match weighs 4x)."""
    query += "".join(f" {extra}" for pattern, extra in _PARAPHRASES if pattern.search(query))
    words = terms(query)
    if not words:
        return []
    match = " OR ".join(f'"{w}"' for w in words)  # quoted terms: FTS5 syntax in the text is inert
    rows = conn.execute(
        "SELECT path, title, heading, body, bm25(kb_passages, 0.0, 1.0, 4.0, 1.0) AS rank"
        " FROM kb_passages WHERE kb_passages MATCH ? ORDER BY rank LIMIT ?",
        (match, limit),
    ).fetchall()
    return [
        {
            "source": r["path"],
            "heading": r["heading"],
            "citation": f"[{r['path']} § {r['heading']}]",
            "excerpt": excerpt(r["body"], words),
            "text": r["body"],
            "score": round(-float(r["rank"]), 4),
        }
        for r in rows
    ]


def excerpt(body: str, words: list[str], sentences: int = 2) -> str:
    """The sentences of a passage that share the most terms with the query, in their order."""
    units = [
        s.strip()
        for block in re.split(r"\n\s*\n|\n(?=- )", body)
        for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", " ".join(block.split()))
        if s.strip()
    ]
    stems = {w[:5] for w in words}

    def overlap(sentence: str) -> int:
        return len(stems & {w[:5] for w in terms(sentence)})

    best = sorted(range(len(units)), key=lambda i: (-overlap(units[i]), i))[:sentences]
    return " ".join(units[i].lstrip("- ") for i in sorted(best))


class KnowledgeSearch(Capability):
    name = "knowledge_search"
    description = (
        "Answer how-to, policy and product questions from the help-center documents (refund policy, "
        "billing FAQ, plans, SLA, API troubleshooting, account security), with citations."
    )
    provides = ("knowledge",)
    classifier_guide = ClassifierGuide(
        instructions=(
            "General questions about how the product works or what the policies say, answered from "
            "documentation. Not the customer's own charges, live service status, or price quotes."
        ),
        examples=(
            GuideExample(query="what's the process for adding a colleague", reason="how-to"),
            GuideExample(query="what's included in the Enterprise SLA", reason="SLA terms"),
            GuideExample(query="how do roles and permissions work in a workspace", reason="how-to"),
            GuideExample(
                query="how does the refund show up on my statement and when", reason="refund timing is policy"
            ),
            GuideExample(query="how do I change my login email", reason="how-to"),
            GuideExample(
                query="would we be refunded if we left mid-month",
                reason="a hypothetical refund is a policy question",
            ),
            GuideExample(query="where in the dashboard can I download my invoices", reason="how-to"),
            GuideExample(query="how do I make someone an admin", reason="how-to"),
            GuideExample(query="how many days do I have to request a refund", reason="policy"),
            GuideExample(query="what uptime do you promise on Enterprise", reason="SLA"),
            GuideExample(query="how do I update the card we pay with", reason="how-to"),
            GuideExample(query="is there a limit on API calls", reason="rate limits"),
            GuideExample(
                query="please explain me how the webhooks retries work", reason="non-native wording"
            ),
            GuideExample(
                query="in theory, if you charged me twice, what would happen?",
                reason="hypothetical: the policy",
            ),
            GuideExample(query="how do I invite a new teammate to the workspace", reason="how-to"),
            GuideExample(query="what is your refund policy", reason="policy"),
            GuideExample(query="how long does a refund take to reach my card", reason="policy"),
            GuideExample(query="how do I reset my password", reason="how-to"),
            GuideExample(query="what's the uptime SLA on the Team plan", reason="policy"),
            GuideExample(query="how should I handle 429 Too Many Requests responses", reason="API docs"),
            GuideExample(query="does the Team plan include single sign-on", reason="product question"),
            GuideExample(query="how do I turn on two-factor authentication", reason="how-to"),
            GuideExample(query="what happens when a card payment fails", reason="billing FAQ"),
            GuideExample(query="can I get service credits after an outage", reason="SLA policy"),
            GuideExample(query="how are webhook deliveries retried", reason="API docs"),
            GuideExample(query="how do I export all our workspace data", reason="how-to"),
            GuideExample(query="where do I create a new API key", reason="how-to"),
            GuideExample(query="how many requests per minute does the API allow", reason="API docs"),
            GuideExample(query="how can I change the company name on future invoices", reason="billing FAQ"),
            GuideExample(
                query="what does the policy say about refunding a charge after 30 days", reason="policy"
            ),
            GuideExample(query="can support move the workspace to a new owner", reason="account how-to"),
            GuideExample(query="how long is a password reset link valid", reason="how-to"),
            GuideExample(query="are prices shown with or without VAT", reason="billing FAQ"),
            GuideExample(query="which charges does the refund policy exclude", reason="policy"),
            GuideExample(query="where do I update the billing address for invoices", reason="billing FAQ"),
            GuideExample(query="how do I take a member out of our workspace", reason="how-to"),
            GuideExample(query="can we pay by wire or invoice rather than by card", reason="payment methods"),
            GuideExample(
                query="our engineer asks what to do when the API says we're rate limited",
                reason="a how-to asked for someone else",
            ),
            GuideExample(query="how do I configure single sign-on with SAML", reason="how-to"),
            GuideExample(query="how can I stop the weekly summary emails", reason="how-to: settings"),
            GuideExample(
                query="say we downgraded next week, would any money come back to us",
                reason="a hypothetical refund is a policy question",
            ),
            GuideExample(query="what do your terms count as an overcharge", reason="policy"),
            GuideExample(
                query="do you have a policy on cancelling in the middle of a contract", reason="policy"
            ),
            GuideExample(
                query="how do I get my money back from Airbnb",
                result=False,
                reason="another company's refund",
            ),
            GuideExample(
                query="refund my duplicate charge", result=False, reason="an action on the customer's account"
            ),
            GuideExample(query="is the API down right now", result=False, reason="live service status"),
            GuideExample(query="what would 12 Team seats cost", result=False, reason="a quote"),
            GuideExample(
                query="was I charged twice last month", result=False, reason="the customer's charges"
            ),
            GuideExample(
                query="recommend a good science fiction novel", result=False, reason="not about the product"
            ),
        ),
    )

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.db = SupportDBs(self.options.get("db"), seed=bool(self.options.get("seed", True)))
        directory = self.options.get("knowledge_dir")
        self.directory = Path(str(directory)).expanduser() if directory else KNOWLEDGE_DIR
        self.limit = int(self.options.get("top_k", 3))

    async def execute(self, inputs: CapabilityInputs, ctx: RunContext) -> dict[str, Any]:
        return await self.blocking(self.lookup, self.db.at(ctx.data_dir), inputs.query)

    def lookup(self, db: SupportDB, query: str) -> dict[str, Any]:
        with db.connect() as conn:
            sync_index(conn, self.directory)
            passages = search(conn, query, self.limit)
        if not passages:
            return {"knowledge": [], "summary": "I found nothing about that in the help-center documents."}
        best, *others = passages
        summary = f"From the help center: {best['excerpt']} {best['citation']}"
        if others:
            summary += " See also " + ", ".join(p["citation"] for p in others) + "."
        return {"knowledge": passages, "summary": summary}


__all__ = ["KnowledgeSearch", "search", "sections", "sync_index"]
