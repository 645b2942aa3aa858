"""Incidents: service status, open incidents for a service, and support tickets.

A request that names a service ("the API keeps returning 500s") gets that service's status and its
open (and recently resolved) incidents; one that names none gets every service. Asking to open,
file or raise a ticket writes one ticket row, linked to the service's open incident, once per
request: the same request (thread, step and text) never opens a second ticket.

Where the status comes from: the embedded database when the `status_url` option is null (the
default: offline, no server), else the status page service at that URL (status_page.py serves
one), through `graph.capability.http.ExternalService` (timeouts, retries, a TTL cache, a circuit
breaker; options under `status_service`). When the page cannot answer, the last good answer is
served marked stale; with none, the embedded database's copy (`degrade_to_db: true`, the default),
else the step fails and the registry's `fallback` chain answers. A degraded answer says so first.
Tickets are always written to the database.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from capabilities.support_desk.account import resolve_customer
from capabilities.support_desk.db import SupportDB, SupportDBs, format_time, now_utc, parse_time
from graph.capability import (
    Capability,
    CapabilityInputs,
    ClassifierGuide,
    GuideExample,
    OrchestratorGuide,
    RunContext,
)
from graph.capability.http import ExternalService, Fetched, ServicePolicy, ServiceUnavailable

SERVICE_WORDS: dict[str, re.Pattern[str]] = {
    "api": re.compile(
        r"\bapi\b|\brest\b|endpoints?\b|\b5\d\d\b|\b5\d\ds\b|\bsdk\b|\bhttp\b|\brequests? (?:fail|time)", re.I
    ),
    "dashboard": re.compile(r"dashboard|web ?app|\bui\b|website|\bcharts?\b|\bweb interface\b", re.I),
    "webhooks": re.compile(r"web ?hooks?", re.I),
    "sso": re.compile(r"\bsso\b|\bsaml\b|\bokta\b|single sign|\boidc\b|\bentra\b", re.I),
    "notifications": re.compile(r"notification|\bdigests?\b|\bemails? (?:are|is|aren't|isn't|not)\b", re.I),
    "exports": re.compile(r"\bexports?\b|\bexporting\b", re.I),
}
_TICKET = re.compile(
    r"\b(?:open|create|file|raise|log|submit|start|make)\b[^.?!]{0,30}\b(?:ticket|case|support request)s?\b"
    r"|\bticket\b[^.?!]{0,20}\b(?:for|about)\b|\bescalate\b|\breport (?:this|it|an? (?:issue|problem|bug|outage))\b",
    re.I,
)
_URGENT = re.compile(r"\b(urgent|asap|down|outage|production|all requests|nothing works)\b", re.I)
STATUS_BY_SEVERITY = {"minor": "degraded performance", "major": "partial outage", "critical": "major outage"}
RECENT = timedelta(days=7)
SUMMARY_PATH = "/api/v2/summary.json"
"""The status page's summary (status_page.py): `components`, each as `service_overview` gives it."""


def services_named(text: str) -> list[str]:
    return [service for service, words in SERVICE_WORDS.items() if words.search(text)]


def wants_ticket(text: str) -> bool:
    return bool(_TICKET.search(text))


def service_overview(conn: sqlite3.Connection, services: list[str]) -> list[dict[str, Any]]:
    """Each service with its status, open incidents and incidents resolved in the last week."""
    since = format_time(now_utc() - RECENT)
    rows = conn.execute("SELECT id, name FROM services ORDER BY rowid").fetchall()
    out = []
    for row in rows:
        if services and row["id"] not in services:
            continue
        incidents = [
            dict(r)
            for r in conn.execute(
                "SELECT id, title, severity, status, latest_update, started_at, resolved_at FROM incidents"
                " WHERE service_id = ? AND (status != 'resolved' OR resolved_at >= ?)"
                " ORDER BY started_at DESC",
                (row["id"], since),
            ).fetchall()
        ]
        open_ = [i for i in incidents if i["status"] != "resolved"]
        worst = max((i["severity"] for i in open_), key=["minor", "major", "critical"].index, default=None)
        out.append(
            {
                "service": row["id"],
                "name": row["name"],
                "status": STATUS_BY_SEVERITY[worst] if worst else "operational",
                "open_incidents": open_,
                "recently_resolved": [i for i in incidents if i["status"] == "resolved"],
            }
        )
    return out


def _components(fetched: Fetched, services: list[str]) -> list[dict[str, Any]]:
    """The status page's components for these services (all when none is named), checked: the
    service's answer is input, and a malformed one raises ValueError (the step then degrades)."""
    data = fetched.data
    components = data.get("components") if isinstance(data, dict) else None
    if not isinstance(components, list):
        raise ValueError("no components list")
    out = []
    for c in components:
        if not isinstance(c, dict) or not all(
            isinstance(c.get(k), t)
            for k, t in (("service", str), ("name", str), ("status", str), ("open_incidents", list))
        ):
            raise ValueError("a component without service, name, status and open_incidents")
        if not services or c["service"] in services:
            out.append({**c, "recently_resolved": list(c.get("recently_resolved") or [])})
    return out


def _since(started_at: str) -> str:
    minutes = int((now_utc() - parse_time(started_at)).total_seconds() // 60)
    if minutes < 90:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    return f"{minutes // (24 * 60)} days ago"


class IncidentsInputs(CapabilityInputs):
    service: str | None = None
    """api, dashboard, webhooks, sso, notifications or exports; else found in the query."""
    create_ticket: bool | None = None
    """Open a ticket; else decided from the query ("open a ticket ...")."""
    customer_id: str | None = None
    """Links a new ticket to the customer when known."""


class Incidents(Capability):
    name = "incidents"
    description = (
        "Service status and incidents (API errors, outages, slow or failing features) and opening "
        "support tickets about a problem."
    )
    provides = ("service_status", "ticket_id")
    Inputs = IncidentsInputs
    classifier_guide = ClassifierGuide(
        instructions=(
            "Something in the product is broken, down, failing or slow, questions about service "
            "status or incidents, or a request to open a support ticket."
        ),
        examples=(
            GuideExample(
                query="is there a delay on webhook deliveries at the moment", reason="status of a service"
            ),
            GuideExample(query="are emails from you running late today", reason="status of a service"),
            GuideExample(query="can you create a support ticket for this", reason="a ticket"),
            GuideExample(query="open a case with your engineers please", reason="a ticket"),
            GuideExample(query="escalate this problem to your tech team", reason="a ticket"),
            GuideExample(query="raise a ticket about the login problem", reason="a ticket"),
            GuideExample(
                query="log an issue with support for us, the API rejects valid keys", reason="a ticket"
            ),
            GuideExample(query="create a support case: reports are not loading", reason="a ticket"),
            GuideExample(query="is anything broken on your side right now", reason="status"),
            GuideExample(query="are notification emails going out normally", reason="status of a service"),
            GuideExample(query="is the web app healthy at the moment", reason="health of a service"),
            GuideExample(query="everything ok with data exports today?", reason="status, terse"),
            GuideExample(query="is single sign-on up", reason="status of a service"),
            GuideExample(query="the web app shows an error page for everyone", reason="outage"),
            GuideExample(query="the API answers 504 gateway timeouts since this morning", reason="errors"),
            GuideExample(query="current system status", reason="status"),
            GuideExample(query="api slow today?", reason="terse"),
            GuideExample(
                query="I want to report a problem: the dashboard freezes when I open reports",
                reason="a bug report",
            ),
            GuideExample(query="our users get an error when they sign in through SAML", reason="SSO failing"),
            GuideExample(query="file a bug for us please, CSV downloads are empty", reason="a ticket"),
            GuideExample(query="is there a known issue with webhooks", reason="known issue"),
            GuideExample(
                query="it doesn't work!!! we can't get anything done", reason="venting about an outage"
            ),
            GuideExample(query="the API keeps returning 500s", reason="API errors"),
            GuideExample(query="is Tandem down right now?", reason="status"),
            GuideExample(query="webhooks haven't been delivered for an hour", reason="failing feature"),
            GuideExample(query="are there any open incidents?", reason="incidents"),
            GuideExample(query="our SSO login through Okta stopped working", reason="failing feature"),
            GuideExample(query="the dashboard is extremely slow today", reason="degraded service"),
            GuideExample(query="please open a ticket about the failing exports", reason="create a ticket"),
            GuideExample(query="what's the current status of the API outage", reason="incident status"),
            GuideExample(query="requests to your endpoint time out with 502 errors", reason="API errors"),
            GuideExample(query="I'd like to report a bug in the web app", reason="create a ticket"),
            GuideExample(query="how do I handle 429 rate limit errors", result=False, reason="documentation"),
            GuideExample(query="I was charged twice", result=False, reason="billing"),
            GuideExample(query="what's your uptime SLA", result=False, reason="a policy question"),
            GuideExample(query="how do I set up SSO with Okta", result=False, reason="a how-to question"),
            GuideExample(query="what does Enterprise cost", result=False, reason="pricing"),
        ),
    )
    orchestrator_guide = OrchestratorGuide(
        instructions="Give `service` when the user names one and `create_ticket: true` when they ask for a ticket."
    )

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.db = SupportDBs(self.options.get("db"), seed=bool(self.options.get("seed", True)))
        url = self.options.get("status_url")
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            raise ValueError(f"status_url must be null or an http(s) URL, not {url!r}")
        self.degrade_to_db = bool(self.options.get("degrade_to_db", True))
        self.status_page = (
            ExternalService(
                "status page", url, ServicePolicy.from_options(self.options.get("status_service"))
            )
            if url
            else None
        )

    async def execute(self, inputs: IncidentsInputs, ctx: RunContext) -> dict[str, Any]:
        services = [inputs.service] if inputs.service else services_named(inputs.query)
        overview: list[dict[str, Any]] | None = None
        external: dict[str, Any] | None = None
        if self.status_page is not None:
            try:
                fetched = await self.status_page.get_json(SUMMARY_PATH)
                overview = _components(fetched, services)
                external = fetched.report()
            except (ServiceUnavailable, ValueError) as exc:
                if not self.degrade_to_db:
                    raise
                reason = exc.reason if isinstance(exc, ServiceUnavailable) else f"malformed answer: {exc}"
                external = {
                    "source": "embedded_db",
                    "degraded": True,
                    "note": f"status page unreachable ({reason}), showing the embedded database's copy",
                    "breaker": self.status_page.breaker_report(),
                }
        return await self.blocking(self.status, self.db.at(ctx.data_dir), inputs, ctx, overview, external)

    def status(
        self,
        db: SupportDB,
        inputs: IncidentsInputs,
        ctx: RunContext,
        overview: list[dict[str, Any]] | None = None,
        external: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        services = [inputs.service] if inputs.service else services_named(inputs.query)
        ticket_wanted = (
            inputs.create_ticket if inputs.create_ticket is not None else wants_ticket(inputs.query)
        )
        if overview is None:
            with db.connect() as conn:
                overview = service_overview(conn, services)
        ticket = self.open_ticket(db, inputs, ctx, overview) if ticket_wanted else None
        summary = self._summary(overview, bool(services), ticket)
        if external and external.get("note"):
            summary = f"Note: {external['note']}. {summary}"
        output: dict[str, Any] = {
            "service_status": {s["service"]: s["status"] for s in overview},
            "incidents": [i | {"service": s["service"]} for s in overview for i in s["open_incidents"]],
            "summary": summary,
        }
        if external is not None:
            output["external"] = {"status_page": external}
            output["degraded"] = external.get("note") if external.get("degraded") else None
        if ticket:
            output["ticket_id"] = ticket["id"]
            output["ticket"] = ticket
        return output

    def open_ticket(
        self, db: SupportDB, inputs: IncidentsInputs, ctx: RunContext, overview: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Write one ticket per request; a repeated or resumed request finds the ticket it opened."""
        digest = hashlib.sha256(" ".join(inputs.query.split()).lower().encode()).hexdigest()[:12]
        key = f"{ctx.thread_id}:{ctx.step_id}:{digest}" if ctx.thread_id else None
        service = overview[0]["service"] if len(overview) == 1 else None
        incident = next((i for s in overview for i in s["open_incidents"]), None) if service else None
        priority = (
            "high"
            if (incident and incident["severity"] != "minor") or _URGENT.search(inputs.query)
            else "normal"
        )
        subject = re.split(r"(?<=[.?!])\s", inputs.query.strip(), maxsplit=1)[0][:80]
        with db.transaction() as conn:
            found = resolve_customer(conn, inputs.query, inputs.customer_id, ctx.context)
            customer_id = found.customer["id"] if found.customer else None
            existing = (
                conn.execute("SELECT * FROM tickets WHERE idempotency_key = ?", (key,)).fetchone()
                if key
                else None
            )
            if existing is None:
                cursor = conn.execute(
                    "INSERT INTO tickets (customer_id, service_id, incident_id, subject, body, priority, status,"
                    " idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                    (
                        customer_id,
                        service,
                        incident["id"] if incident else None,
                        subject,
                        inputs.query,
                        priority,
                        key,
                        format_time(now_utc()),
                    ),
                )
                row = conn.execute("SELECT * FROM tickets WHERE id = ?", (cursor.lastrowid,)).fetchone()
                created = True
            else:
                row, created = existing, False
        return {
            "id": f"T-{row['id']}",
            "created": created,
            "priority": row["priority"],
            "service": row["service_id"],
            "incident_id": row["incident_id"],
            "customer_id": row["customer_id"],
        }

    @staticmethod
    def _summary(overview: list[dict[str, Any]], named: bool, ticket: Mapping[str, Any] | None) -> str:
        parts = []
        for s in overview:
            if not named and s["status"] == "operational":
                continue
            text = f"{s['name']}: {s['status']}"
            for i in s["open_incidents"]:
                text += (
                    f". {i['id']} {i['title']} ({i['severity']}, {i['status']}, started {_since(i['started_at'])}):"
                    f" {i['latest_update']}"
                )
            if named and not s["open_incidents"]:
                text += ", no open incident"
                for i in s["recently_resolved"][:1]:
                    text += f" ({i['id']} {i['title']} was resolved {_since(i['resolved_at'])})"
            parts.append(text.rstrip(".") + ".")
        if not named:
            healthy = [s["name"] for s in overview if s["status"] == "operational"]
            parts.append(
                "All services are operational."
                if len(healthy) == len(overview)
                else f"Operational: {', '.join(healthy)}."
            )
        if ticket:
            link = f", linked to {ticket['incident_id']}" if ticket["incident_id"] else ""
            verb = "Opened" if ticket["created"] else "This request already opened"
            parts.append(f"{verb} ticket {ticket['id']} ({ticket['priority']} priority{link}).")
        return " ".join(parts)


__all__ = ["Incidents", "service_overview", "services_named", "wants_ticket"]
