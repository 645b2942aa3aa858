"""`routegraph demo reset` puts the support desk's demo data back, and touches nothing else.

The command runs as a user runs it (a subprocess of `python -m graph.cli`, with the shipped
registry and a data directory of its own); the database is the support desk's real one.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from capabilities.support_desk.db import SupportDB

ROOT = Path(__file__).resolve().parent.parent


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ROUTEGRAPH"))},
        "ROUTEGRAPH_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "graph.cli", "demo", *args],
        env=env,
        cwd=data_dir.parent,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def refund_everything(path: Path) -> int:
    """What a demo leaves behind: every succeeded charge refunded, a customer renamed."""
    with SupportDB(path).transaction() as conn:
        charges = conn.execute(
            "SELECT id, customer_id, amount_cents FROM charges WHERE status = 'succeeded'"
            " AND id NOT IN (SELECT charge_id FROM refunds)"
        ).fetchall()
        for i, (charge, customer, cents) in enumerate(charges):
            conn.execute(
                "INSERT INTO refunds (charge_id, customer_id, amount_cents, reason, idempotency_key, created_at)"
                " VALUES (?, ?, ?, 'demo', ?, datetime('now'))",
                (charge, customer, cents, f"key-{i}"),
            )
        conn.execute("UPDATE customers SET name = 'Someone Else' WHERE id = 'C-1001'")
    return len(charges)


def snapshot(path: Path) -> tuple[int, int, str]:
    with sqlite3.connect(path) as conn:
        refunds = conn.execute("SELECT count(*) FROM refunds").fetchone()[0]
        charges = conn.execute("SELECT count(*) FROM charges").fetchone()[0]
        name = conn.execute("SELECT name FROM customers WHERE id = 'C-1001'").fetchone()[0]
    return refunds, charges, name


def test_demo_reset_restores_the_demo_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    db = data_dir / "support.sqlite"
    SupportDB(db).ensure()
    fresh = snapshot(db)
    assert fresh[2] == "Jane Cooper"
    assert refund_everything(db) > 0
    assert snapshot(db)[0] > fresh[0]

    shown = cli(data_dir)
    assert shown.returncode == 0, shown.stderr
    assert f"data directory {data_dir.resolve()}" in shown.stdout
    assert str(db.resolve()) in shown.stdout
    assert snapshot(db)[0] > fresh[0], "`routegraph demo` alone changes nothing"

    unconfirmed = cli(data_dir, "reset")
    assert unconfirmed.returncode == 2
    assert "--yes" in unconfirmed.stderr
    assert snapshot(db)[0] > fresh[0], "no terminal and no --yes: nothing is reset"

    done = cli(data_dir, "reset", "--yes")
    assert done.returncode == 0, done.stderr
    assert "demo data restored" in done.stdout
    assert snapshot(db) == fresh


def test_demo_reset_leaves_a_database_outside_the_data_directory_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    outside = tmp_path / "production.sqlite"
    registry = (ROOT / "registry.yaml").read_text(encoding="utf-8").replace("db: null", f"db: {outside}")
    (tmp_path / "registry.yaml").write_text(registry, encoding="utf-8")
    SupportDB(outside).ensure()
    seeded = snapshot(outside)
    refund_everything(outside)
    before = snapshot(outside)

    result = cli(data_dir, "reset", "--yes", "--registry", str(tmp_path / "registry.yaml"))
    assert result.returncode == 2
    assert "outside the data directory, left alone" in result.stdout
    assert snapshot(outside) == before

    named = cli(
        data_dir, "reset", "--yes", "--registry", str(tmp_path / "registry.yaml"), "--db", str(outside)
    )
    assert named.returncode == 0, named.stderr
    assert snapshot(outside) == seeded
