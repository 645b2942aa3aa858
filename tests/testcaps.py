"""Capabilities for tests: each does real (small) work and fails in a controlled way."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

from graph.capability import Capability, CapabilityInputs, NotApplicable, RunContext


class Flaky(Capability):
    """Fails with a connection error `fail_times` times, then echoes the query."""

    name = "flaky"
    description = "Echo the request back (flaky network)."
    provides = ("echo",)

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.calls = 0

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= int(self.options.get("fail_times", 0)):
            raise ConnectionError(f"upstream unavailable (call {self.calls})")
        return {"echo": inputs.query.upper(), "summary": f"echo: {inputs.query.upper()}"}


class Broken(Capability):
    """Always raises an unexpected error (CRITICAL)."""

    name = "broken"
    description = "Parse a spreadsheet."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        raise ValueError("spreadsheet parser crashed")


class WrongRoute(Capability):
    """Always decides the request is not for it (RECLASSIFICATION)."""

    name = "wrong_route"
    description = "Translate text."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        raise NotApplicable("this is not a translation request")


class Slow(Capability):
    name = "slow"
    description = "Think for a long time."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        started = time.perf_counter()
        await asyncio.sleep(float(self.options.get("seconds", 5)))
        return {"summary": "done", "started": started, "ended": time.perf_counter()}


class Lookup(Capability):
    """Finds a customer id in a real SQLite table."""

    name = "lookup"
    description = "Find the customer account."
    provides = ("customer_id",)

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        return await self.blocking(self.find, inputs)

    def find(self, inputs: Any) -> dict[str, Any]:
        db = sqlite3.connect(self.options["db"])
        try:
            row = db.execute(
                "SELECT id FROM customers WHERE ? LIKE '%' || name || '%'", (inputs.query,)
            ).fetchone()
        finally:
            db.close()
        if row is None:
            raise NotApplicable("no customer named in the request")
        return {"customer_id": row[0], "summary": f"customer {row[0]}"}


class PayoutInputs(CapabilityInputs):
    customer_id: int
    amount: float = 0.0


class Payout(Capability):
    """Writes a payout row: a side effect that must wait for approval above the threshold."""

    name = "payout"
    description = "Pay money to a customer."
    requires = ("customer_id",)
    provides = ("payout_id",)
    Inputs = PayoutInputs

    def parse_inputs(self, task: str, args: Any, context: Any) -> CapabilityInputs:
        import re

        amount = re.search(r"\$?(\d+(?:\.\d+)?)", task)
        merged = {"amount": float(amount.group(1)) if amount else 0.0, **dict(args)}
        return super().parse_inputs(task, merged, context)

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        return await self.blocking(self.pay, inputs, ctx)

    def pay(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        db = sqlite3.connect(self.options["db"])
        try:
            with db:
                cur = db.execute(
                    "INSERT INTO payouts (customer_id, amount, step_id) VALUES (?, ?, ?)",
                    (inputs.customer_id, inputs.amount, ctx.step_id),
                )
            return {
                "payout_id": cur.lastrowid,
                "summary": f"paid {inputs.amount:g} to customer {inputs.customer_id}",
            }
        finally:
            db.close()


def make_db(path: Path) -> Path:
    db = sqlite3.connect(path)
    with db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute(
            "CREATE TABLE payouts (id INTEGER PRIMARY KEY, customer_id INT, amount REAL, step_id TEXT)"
        )
        db.executemany("INSERT INTO customers (id, name) VALUES (?, ?)", [(7, "alice"), (8, "bob")])
    db.close()
    return path


class Recorder(Capability):
    """Records each execution in a SQLite table (to count runs across processes)."""

    name = "recorder"
    description = "Open a case file."
    provides = ("case_id",)

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        return await self.blocking(self.record, ctx)

    def record(self, ctx: RunContext) -> dict[str, Any]:
        db = sqlite3.connect(self.options["db"])
        try:
            with db:
                db.execute("CREATE TABLE IF NOT EXISTS runs (step TEXT)")
                cur = db.execute("INSERT INTO runs (step) VALUES (?)", (ctx.step_id,))
            return {"case_id": cur.lastrowid, "summary": f"case {cur.lastrowid} opened"}
        finally:
            db.close()


class Waiter(Capability):
    """Waits while a marker file exists, then finishes: lets a test kill a run mid-plan."""

    name = "waiter"
    description = "File the case with the court."
    requires = ("case_id",)

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        marker = Path(self.options["marker"])
        while marker.exists():
            await asyncio.sleep(0.05)
        return {"summary": f"case {ctx.context.get('case_id')} filed"}
