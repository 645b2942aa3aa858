"""Who is the customer? Identify them from the conversation and look the account up.

The customer names themselves in the request: an email address, a customer id ("C-1003") or the
account holder's full name; values earlier steps or turns provided (`customer_id`, `email`) count
too. Without those, weaker clues identify the customer: a charge or invoice id the request names
("CH-2054", "INV-3034": the customer who owns it), or the company, alone or with the holder's first
name ("Priya from Nimbus", "Fjordsoft's admin"), when exactly one customer has it. Clues that
point at different customers identify nobody: the answer says which clue points where and asks (a
refund must never go to a customer the request did not clearly name). See `identify`. When nobody is identified the step still succeeds, without `customer_id`, and its summary
asks for the email or customer id: the answer then says what is missing, while the parallel steps
of the same request (service status, quotes) are still answered. (A `MissingInput` would send the
deterministic planner round the same plan until `max_replans`; `NotApplicable` would drop the
capability that needs the customer.) Steps that need the customer (billing, refund) say the same.

Naming an email in a chat is identification, not authentication: a production desk would take the
customer from the signed-in session instead.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from capabilities.support_desk.db import SupportDB, SupportDBs, day, migrate, seed
from graph.capability import (
    Capability,
    CapabilityInputs,
    ClassifierGuide,
    GuideExample,
    OrchestratorGuide,
    RunContext,
)

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
CUSTOMER_ID = re.compile(
    r"\bC[-\s]?(\d{4,})\b"
    r"|\b(?:customer|client|account|acct|cust)\.?\s*(?:id|number|num|no\.?)?(?:\s+is)?\s*[#:]?\s*(\d{4,})\b",
    re.I,
)
"""A customer id in the forms people write it: C-1003, c1003, c 1003, and the id's kind with its digits
("customer 1003", "client #1003", "account number 1003", "customer no. 1003", "our customer id is 1003")."""


def customer_ids(text: str) -> list[str]:
    """The digits of every customer id the text names, in order (see `CUSTOMER_ID`)."""
    return [a or b for a, b in CUSTOMER_ID.findall(text)]


CHARGE_REF = re.compile(r"\bCH-?(\d{3,})\b", re.I)
"""A charge id as billing reads it (`billing.CHARGE_ID`): CH-2054, ch2054."""
INVOICE_REF = re.compile(r"\bINV-?(\d{3,})\b", re.I)
"""An invoice id: INV-3053, inv3053."""
LEGAL_FORMS = frozenset(
    [
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "co",
        "company",
        "ltd",
        "limited",
        "llc",
        "llp",
        "plc",
        "gmbh",
        "ag",
        "kg",
        "spa",
        "srl",
        "sa",
        "sas",
        "sarl",
        "bv",
        "nv",
        "oy",
        "ab",
        "as",
        "aps",
        "pty",
    ]
)
"""Words of a company's registered name people leave out ("Fjordsoft" for Fjordsoft GmbH)."""
WEAK = ("charge", "invoice", "company", "name and company")
"""How a customer is found by a clue rather than named: the first word of `Identification.via`."""

NEED_IDENTITY = "please tell me the email address or the customer id (like C-1003) on your account"
NOBODY = "I could not tell who you are: the request names no email address, customer id or account holder"


@dataclass
class Identification:
    customer: dict[str, Any] | None
    via: str = ""
    """How the customer was found: email, customer id, name, context, or a clue: "charge CH-2054",
    "invoice INV-3034", "company Nimbus Labs", "name and company Priya at Nimbus Labs"."""
    problem: str = ""
    """Why nobody was identified, in words for the customer."""
    named: list[str] = field(default_factory=list)
    """Identifiers the text contained (found or not)."""

    @property
    def by_clue(self) -> bool:
        """Found from a charge, an invoice or the company, not named by email, id or full name."""
        return self.customer is not None and self.via.startswith(WEAK)

    @property
    def how(self) -> str:
        """' (identified by charge CH-2054)' when a clue identified the customer, else ''."""
        return f" (identified by {self.via})" if self.by_clue else ""


def customer_row(conn: sqlite3.Connection, customer_id: str) -> dict[str, Any] | None:
    """A customer with their current subscription (the latest one, cancelled or not)."""
    row = conn.execute(
        """
        SELECT c.id, c.name, c.email, c.company, s.id AS subscription_id, p.name AS plan, s.seats,
               s.status AS subscription_status, s.renews_at
        FROM customers c
        LEFT JOIN subscriptions s ON s.id = (
            SELECT id FROM subscriptions WHERE customer_id = c.id ORDER BY started_at DESC LIMIT 1)
        LEFT JOIN plans p ON p.id = s.plan_id
        WHERE c.id = ?
        """,
        (customer_id.upper(),),
    ).fetchone()
    return dict(row) if row else None


_SEED_NAMES: list[str] = []


def _seed_names() -> list[str]:
    """The customers' full names in the demo data (seed.sql), read once into memory."""
    if not _SEED_NAMES:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            migrate(conn)
            seed(conn)
            _SEED_NAMES.extend(str(r["name"]) for r in conn.execute("SELECT name FROM customers"))
        finally:
            conn.close()
    return _SEED_NAMES


def _names(name: str, text: str) -> bool:
    """Whether the text names `name` as whole words, in any case."""
    return bool(re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, flags=re.I))


def _by_email(conn: sqlite3.Connection, email: str) -> str | None:
    row = conn.execute("SELECT id FROM customers WHERE email = ? COLLATE NOCASE", (email,)).fetchone()
    return str(row["id"]) if row else None


def _by_name(conn: sqlite3.Connection, text: str) -> list[str]:
    """Customers whose full name appears in the text as whole words."""
    rows = conn.execute(
        "SELECT id, name FROM customers WHERE instr(lower(?), lower(name)) > 0", (text,)
    ).fetchall()
    return [
        str(r["id"])
        for r in rows
        if re.search(rf"(?<!\w){re.escape(str(r['name']))}(?!\w)", text, flags=re.I)
    ]


def _owners(conn: sqlite3.Connection, text: str) -> list[tuple[str, str]]:
    """(customer id, "charge CH-2054") for each existing charge or invoice the text names; an id
    that does not exist is no clue."""
    found: list[tuple[str, str]] = []
    for kind, pattern, table, prefix in (
        ("charge", CHARGE_REF, "charges", "CH"),
        ("invoice", INVOICE_REF, "invoices", "INV"),
    ):
        for number in dict.fromkeys(pattern.findall(text)):
            ref = f"{prefix}-{number}"
            # `table` is one of the two names above, never input.
            row = conn.execute(f"SELECT customer_id FROM {table} WHERE id = ?", (ref,)).fetchone()
            if row:
                found.append((str(row["customer_id"]), f"{kind} {ref}"))
    return found


def company_forms(company: str) -> tuple[list[str], str | None]:
    """(forms matched in any case, a short form matched only when capitalised) of a company name.

    "Fjordsoft GmbH": ["Fjordsoft GmbH", "Fjordsoft"], None. "Nimbus Labs": ["Nimbus Labs"],
    "Nimbus" (a first word of 4 letters or more: "Priya from Nimbus"; lowercase it is too often an
    ordinary word). "Via Lattea SpA": ["Via Lattea SpA", "Via Lattea"], None ("Via" is too short).
    """
    words = company.split()
    forms = [company]
    while len(words) > 1 and words[-1].strip(".,").lower() in LEGAL_FORMS:
        words = words[:-1]
        forms.append(" ".join(words))
    short = words[0] if len(words) > 1 and len(words[0]) >= 4 else None
    return forms, short


def _mentions(form: str, text: str, *, capitalised: bool = False) -> bool:
    flags = 0 if capitalised else re.I
    return re.search(rf"(?<!\w){re.escape(form)}(?!\w)", text, flags=flags) is not None


def _by_company(conn: sqlite3.Connection, text: str) -> tuple[list[tuple[str, str]], set[str]]:
    """Customers the company (and maybe the first name) in the text identify, as (id, via), and the
    customers whose first name the text mentions (a first name alone is no identity).

    A company named alone identifies its customer when it has exactly one; a first name with the
    company picks that person among the company's customers. "Priya from Nimbus", "Diego at Sol
    Market", "Fjordsoft's admin".
    """
    rows = conn.execute("SELECT id, name, company FROM customers").fetchall()
    first_named = {
        str(r["id"])
        for r in rows
        if _mentions(str(r["name"]).split()[0], text) and len(r["name"].split()) > 1
    }
    companies: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        if r["company"]:
            companies.setdefault(str(r["company"]), []).append((str(r["id"]), str(r["name"])))
    found: list[tuple[str, str]] = []
    for company, people in companies.items():
        forms, short = company_forms(company)
        if not (
            any(_mentions(f, text) for f in forms)
            or (short is not None and (_mentions(short, text, capitalised=True)))
            or (short is not None and _mentions(short, text) and any(cid in first_named for cid, _ in people))
        ):
            continue
        named_here = [(cid, name) for cid, name in people if cid in first_named]
        if len(named_here) == 1:
            cid, name = named_here[0]
            found.append((cid, f"name and company {name.split()[0]} at {company}"))
        elif len(people) == 1 and not named_here:
            found.append((people[0][0], f"company {company}"))
    return found, first_named


def _who(conn: sqlite3.Connection, cid: str) -> str:
    row = customer_row(conn, cid)
    return f"{row['name']} ({cid})" if row else cid


def _disagree(conn: sqlite3.Connection, clues: list[tuple[str, str]], named: list[str]) -> Identification:
    """Clues that point at different customers: say which points where, pick nobody."""
    where: dict[str, list[str]] = {}
    for cid, label in clues:
        where.setdefault(cid, []).append(label)
    said = "; ".join(
        f"{' and '.join(dict.fromkeys(labels))} {'point' if len(set(labels)) > 1 else 'points'} to "
        f"{_who(conn, cid)}"
        for cid, labels in where.items()
    )
    return Identification(
        None,
        problem=f"the request points to more than one account ({said}), so I will not guess which one",
        named=named or [label for _, label in clues],
    )


def identify(conn: sqlite3.Connection, texts: Iterable[str]) -> Identification:
    """The customer the texts name: emails first, then customer ids, then full names; without any,
    the owner of a charge or invoice the texts name, then the company (with or without a first name).

    Two different customers named at once is ambiguous: nobody is picked. A charge or invoice whose
    owner is not the customer named (or the company named) is ambiguous too: nobody is picked and
    the problem says which clue points where. A company mentioned beside an email or id is no clue,
    and an email or id that names no account leaves the customer unknown whatever else is named.
    """
    texts = [t for t in texts if t]
    found: dict[str, str] = {}  # customer id -> how
    named: list[str] = []
    missing: list[str] = []
    refs: list[tuple[str, str]] = []  # (customer id, "charge CH-2054")
    labels: dict[str, str] = {}  # customer id -> the identifier that named them
    people: list[tuple[str, str]] = []
    first_named: set[str] = set()
    for text in texts:
        for email in EMAIL.findall(text):
            named.append(email)
            if cid := _by_email(conn, email):
                found.setdefault(cid, "email")
                labels.setdefault(cid, email)
            else:
                missing.append(email)
        for number in dict.fromkeys(customer_ids(text)):
            cid = f"C-{number}"
            named.append(cid)
            if customer_row(conn, cid):
                found.setdefault(cid, "customer id")
                labels.setdefault(cid, f"customer id {cid}")
            else:
                missing.append(cid)
        for cid in _by_name(conn, text):
            named.append(cid)
            found.setdefault(cid, "name")
            labels.setdefault(cid, "the name")
        refs += _owners(conn, text)
        by_company, firsts = _by_company(conn, text)
        people += by_company
        first_named |= firsts
    if len(found) > 1:
        ids = " and ".join(sorted(found))
        return Identification(None, problem=f"the request names more than one account ({ids})", named=named)
    if found:
        cid, via = next(iter(found.items()))
        if any(owner != cid for owner, _ in refs):
            return _disagree(conn, [(cid, labels[cid]), *refs], named)
        return Identification(customer_row(conn, cid), via=via, named=named)
    if missing:
        # An e-mail or customer id that names no account is a claim of who is asking: a charge,
        # invoice or company the request also names never stands in for it ("I'm
        # mallory@evil.example, refund CH-2013" must not find CH-2013's owner).
        return Identification(
            None,
            problem=f"I found no account for {', '.join(missing)}",
            named=named,
        )
    if refs:
        owners = {owner for owner, _ in refs}
        clues = list(refs)
        # The company or a first name the request gives must agree with the charge's owner.
        clues += [(cid, via.removeprefix("name and company ")) for cid, via in people if cid not in owners]
        if len(owners) == 1 and first_named and not (first_named & owners):
            pointed = {cid for cid, _ in clues}
            clues += [(cid, f"the name {_first(conn, cid)}") for cid in sorted(first_named - pointed)]
        if len({cid for cid, _ in clues}) > 1:
            return _disagree(conn, clues, named)
        cid, via = refs[0]
        return Identification(customer_row(conn, cid), via=via, named=[*named, via])
    if len({cid for cid, _ in people}) == 1:
        cid, via = people[0]
        return Identification(customer_row(conn, cid), via=via, named=[*named, via])
    return Identification(None, problem=NOBODY, named=named)


def _first(conn: sqlite3.Connection, cid: str) -> str:
    row = customer_row(conn, cid)
    return str(row["name"]).split()[0] if row else cid


def context_texts(context: Mapping[str, Any]) -> list[str]:
    """Identity hints earlier steps or turns left in the context."""
    return [str(context[k]) for k in ("email", "customer_email") if isinstance(context.get(k), str)]


def with_context(
    conn: sqlite3.Connection,
    found: Identification,
    earlier: dict[str, Any] | None,
    *,
    earlier_by_company: bool = False,
) -> Identification:
    """Who the request identifies, weighed against the customer earlier steps or turns identified.

    Someone the request names (email, id, full name) wins: the user may have switched accounts. A
    charge or invoice of another customer than the earlier one is not a switch to guess: nobody,
    and the problem says which points where. A company mentioned in a conversation about another
    customer is no switch either (the earlier customer stays), unless the conversation found that
    customer by their company too (`earlier_by_company`: "the seat count for Via Lattea?" then "sorry,
    I meant Nimbus Labs", "and Kola Works?"): the user names customers by company, and another one is
    another customer. Nobody named: the earlier customer.
    """
    if earlier is None:
        return found
    if found.customer is None:
        return found if found.named else Identification(earlier, via="context")
    if not found.by_clue or found.customer["id"] == earlier["id"]:
        return found
    if found.via.startswith(("charge", "invoice")):
        return Identification(
            None,
            problem=(
                f"the request points to more than one account ({found.via} belongs to "
                f"{found.customer['name']} ({found.customer['id']}), but this conversation is about "
                f"{earlier['name']} ({earlier['id']})), so I will not guess which one"
            ),
            named=found.named,
        )
    if earlier_by_company and found.via.startswith(BY_COMPANY):
        return found
    return Identification(earlier, via="context")


BY_COMPANY = ("company", "name and company")
"""How a customer found by their company is found (the first words of `Identification.via`)."""


def found_by_company(context: Mapping[str, Any], customer_id: str | None) -> bool:
    """Whether the context's customer (`customer_id`) was found by their company: how the account
    step found them (`identified_by` in the context's `customer`), carried over turns that took them
    from the context."""
    known = context.get("customer")
    return (
        customer_id is not None
        and isinstance(known, Mapping)
        and known.get("id") == customer_id
        and str(known.get("identified_by") or "").startswith(BY_COMPANY)
    )


def resolve_customer(
    conn: sqlite3.Connection,
    query: str,
    customer_id: str | None,
    context: Mapping[str, Any] | None = None,
) -> Identification:
    """The customer a step acts for: someone the request names wins over the context's `customer_id`
    (the user may have switched accounts); else the context's customer (see `with_context`; the
    `context` says whether it was found by company)."""
    found = identify(conn, [query])
    earlier = customer_row(conn, customer_id) if customer_id else None
    return with_context(conn, found, earlier, earlier_by_company=found_by_company(context or {}, customer_id))


def identity_request(found: Identification, purpose: str) -> str:
    """Ask for the identity a step needs, saying what went wrong when the user did name someone."""
    ask = f"to {purpose}, {NEED_IDENTITY}."
    return f"{found.problem}; {ask}" if found.named and found.problem else ask


def describe(customer: Mapping[str, Any]) -> str:
    who = f"{customer['name']} ({customer['email']}, customer {customer['id']})"
    if customer.get("company"):
        who += f" at {customer['company']}"
    if not customer.get("plan"):
        return f"{who}: no subscription."
    status = customer["subscription_status"]
    seats = f"{customer['seats']} seat{'s' if customer['seats'] != 1 else ''}"
    text = f"{who}: {customer['plan']} plan, {seats}, {status}"
    if customer.get("renews_at") and status in ("active", "trialing"):
        verb = "trial ends" if status == "trialing" else "renews"
        text += f", {verb} {day(customer['renews_at'])}"
    return text + "."


class AccountInputs(CapabilityInputs):
    customer_id: str | None = None
    """A customer already known from an earlier step or turn."""
    email: str | None = None
    """An email address the plan gives (the LLM orchestrator may extract it)."""


class Account(Capability):
    name = "account"
    description = (
        "Identify the customer (email, customer id or full name) and look up their account: "
        "plan, seats, subscription status, renewal date."
    )
    provides = ("customer_id", "customer")
    Inputs = AccountInputs
    classifier_guide = ClassifierGuide(
        instructions=(
            "Questions about the customer's own account or subscription: which plan, how many seats, "
            "status, renewal, the details on file. Not billing, refunds or prices."
        ),
        examples=(
            GuideExample(
                query="which plan would suit a team of 20", reason="a recommendation is sales", result=False
            ),
            GuideExample(
                query="we cancelled just after the renewal, please refund it",
                reason="a refund; renewal is only context",
                result=False,
            ),
            GuideExample(
                query="can you look into it? omar@brightpath.co",
                reason="the email only identifies the customer",
                result=False,
            ),
            GuideExample(query="what plan do we have at the moment", reason="own plan"),
            GuideExample(query="are we on Team or Enterprise right now", reason="own plan"),
            GuideExample(
                query="we are a team of 12 people",
                reason="a team size is for a quote, not a lookup",
                result=False,
            ),
            GuideExample(query="I'm jane@acme.io", reason="an introduction names no need", result=False),
            GuideExample(query="what tier is our company subscribed to", reason="own plan, said another way"),
            GuideExample(
                query="how many user licences are on our subscription? C-1003", reason="seats called licences"
            ),
            GuideExample(query="c1007 seat count", reason="terse, id without a dash"),
            GuideExample(
                query="my manager wants to know when we get renewed, lukas.becker@fjordsoft.de",
                reason="asked for someone else",
            ),
            GuideExample(
                query="has our subscription been cancelled? We're Sol Market", reason="status, company name"
            ),
            GuideExample(
                query="please can you tell me what plan is having my company", reason="non-native wording"
            ),
            GuideExample(query="whats our plan rn", reason="lowercase shorthand"),
            GuideExample(query="which package did Lantern HQ sign up for", reason="plan called a package"),
            GuideExample(query="account info for aisha@kolaworks.ng", reason="lookup by email"),
            GuideExample(
                query="why does our account still show Starter when we upgraded?!",
                reason="a complaint about the plan on file",
            ),
            GuideExample(
                query="number of seats and renewal date for customer c-1001", reason="two account facts"
            ),
            GuideExample(query="look up the account for jane@acme.io", reason="account lookup"),
            GuideExample(query="which plan am I on? my email is omar@brightpath.co", reason="own plan"),
            GuideExample(query="how many seats do we have right now, customer C-1004", reason="own seats"),
            GuideExample(query="can you check my account details, I'm Priya Natarajan", reason="details"),
            GuideExample(query="when does our subscription renew? account C-1009", reason="renewal date"),
            GuideExample(query="is my workspace still on the free trial? ben@okafor.dev", reason="status"),
            GuideExample(query="what email address do you have on file for C-1006", reason="contact on file"),
            GuideExample(query="I'm mei@lanternhq.com, is my subscription still active?", reason="status"),
            GuideExample(query="pull up customer C-1002 please", reason="account lookup"),
            GuideExample(query="who is the account owner of our workspace", reason="account details"),
            GuideExample(query="find the customer record for Sofia Rossi", reason="lookup by name"),
            GuideExample(query="how many days are left on our trial", reason="trial status"),
            GuideExample(query="are we on the monthly Team subscription or Starter?", reason="own plan"),
            GuideExample(query="show me the account of Aisha Bello", reason="lookup by name"),
            GuideExample(query="what plan are we currently subscribed to", reason="own plan"),
            GuideExample(query="check the status of customer account C-1008", reason="status"),
            GuideExample(
                query="what subscription does tom@whitakerlegal.co.uk have",
                reason="a customer's plan by email",
            ),
            GuideExample(query="which tier is customer C-1005 on these days", reason="a customer's plan"),
            GuideExample(
                query="when does my current subscription run out", reason="the end of the subscription"
            ),
            GuideExample(
                query="I was charged twice last month, I'm jane@acme.io",
                result=False,
                reason="a billing question; the email only identifies the customer",
            ),
            GuideExample(
                query="what would the Team plan cost for 12 seats", result=False, reason="a price quote"
            ),
            GuideExample(query="how do I reset my password", result=False, reason="a how-to question"),
            GuideExample(
                query="refund my duplicate charge, my email is omar@brightpath.co",
                result=False,
                reason="a refund",
            ),
            GuideExample(query="is the API down right now", result=False, reason="service status"),
            GuideExample(query="how do I transfer ownership to another admin", result=False, reason="how-to"),
        ),
    )
    orchestrator_guide = OrchestratorGuide(
        instructions="Run first when a later step requires customer_id; pass `email` if the user gave one."
    )

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.db = SupportDBs(self.options.get("db"), seed=bool(self.options.get("seed", True)))

    def known_names(self, text: str) -> list[str]:
        """The full names of our customers the text names as whole words, in any case ("my uncle
        omar haddad", "Sofia Rossi wants to know ..."): the customers of the databases this
        capability has opened, and of the demo data it seeds (the classifier runs before any step
        has opened one). A first name alone names nobody."""
        return [n for n in sorted(self._customer_names()) if _names(n, text)]

    def _customer_names(self) -> set[str]:
        names = set(_seed_names()) if self.db.seed else set()
        for db in list(getattr(self.db, "_dbs", {}).values()):
            try:
                with db.connect() as conn:
                    names |= {str(r["name"]) for r in conn.execute("SELECT name FROM customers")}
            except sqlite3.Error:
                continue
        return {n for n in names if len(n.split()) > 1}

    async def execute(self, inputs: AccountInputs, ctx: RunContext) -> dict[str, Any]:
        return await self.blocking(self.lookup, self.db.at(ctx.data_dir), inputs, ctx)

    def lookup(self, db: SupportDB, inputs: AccountInputs, ctx: RunContext) -> dict[str, Any]:
        # A plan's email counts only when the request says it: a model may extract it, not invent it
        # (an invented one would point the steps after this one, a refund say, at another account).
        email = inputs.email if inputs.email and inputs.email.lower() in inputs.query.lower() else ""
        with db.connect() as conn:
            # Who the request names wins; else who earlier steps or turns identified.
            found = identify(conn, [inputs.query, email])
            if found.customer is None and found.named:
                earlier = None  # they named someone we cannot find, or clues that disagree
            elif (hinted := identify(conn, context_texts(ctx.context))).customer is not None:
                earlier = hinted.customer
            else:
                earlier = customer_row(conn, inputs.customer_id) if inputs.customer_id else None
            by_company = earlier is not None and found_by_company(ctx.context, str(earlier["id"]))
            found = with_context(conn, found, earlier, earlier_by_company=by_company)
        if found.customer is None:
            out: dict[str, Any] = {"identified": False, "summary": f"Account: {found.problem}."}
            if found.named:  # they named someone we cannot find: the earlier turns' customer is not them
                out.update(customer_id=None, customer=None)
            return out
        customer = found.customer
        # how the customer was found, kept with them for later turns (`found_by_company`)
        via = found.via if found.via != "context" or not by_company else BY_COMPANY[0]
        return {
            "customer_id": customer["id"],
            "customer": {**customer, "identified_by": via},
            "identified_by": found.via,
            "summary": f"Account{found.how}: {describe(customer)}",
        }


__all__ = [
    "NEED_IDENTITY",
    "Account",
    "Identification",
    "company_forms",
    "identify",
    "identity_request",
    "resolve_customer",
    "with_context",
]
