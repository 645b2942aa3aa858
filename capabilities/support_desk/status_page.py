"""The support desk's status page: a small HTTP service the `incidents` capability reads.

    python -m capabilities.support_desk.status_page --port 8025 [--db PATH] [--fault-control]

`GET /api/v2/summary.json` answers the page status and every component (service) with its status,
open incidents and incidents resolved in the last week, from the demo database (the same data the
capability reads directly when its `status_url` is null). `GET /healthz` answers `ok`.

It can also fail on purpose, for the tests and `python -m benchmarks.external`: a `Faults` value
(given in Python, or set with `POST /_faults` when started with `--fault-control`) adds latency,
answers 5xx, or drops the connection without a reply, steadily or flapping (failing and healthy in
turns of `flap_seconds`). A plain standard-library `ThreadingHTTPServer`: a dropped connection is
one `shutdown` of the socket, which an ASGI server does not let a handler do.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from capabilities.support_desk.db import SupportDB, format_time, now_utc
from capabilities.support_desk.incidents import SUMMARY_PATH, service_overview

FaultMode = Literal["healthy", "error", "drop"]
_INDICATOR = {"operational": "none", "degraded performance": "minor", "partial outage": "major"}


@dataclass
class Faults:
    """What the server does to each request (changed in place while it runs)."""

    mode: FaultMode = "healthy"
    """`error`: answer `status` with no data; `drop`: close the connection without a reply."""
    latency: float = 0.0
    """Seconds added before every answer (a slow service), whatever the mode."""
    status: int = 503
    """The status of an `error` answer."""
    flap_seconds: float = 0.0
    """> 0: `mode` holds only every other period of this many seconds; the periods between are healthy."""
    fail_next: int = 0
    """The next this many requests fail (with `status`) whatever the mode, then the mode applies."""
    received: int = 0
    """Summary requests that reached the server (counted on arrival)."""
    served: int = 0
    """Requests answered with data (counted by the server)."""
    failed: int = 0
    """Requests answered with an error or dropped."""

    def now_mode(self, clock: float) -> FaultMode:
        if self.flap_seconds > 0 and int(clock / self.flap_seconds) % 2 == 1:
            return "healthy"
        return self.mode

    def update(self, values: dict[str, Any]) -> None:
        for key in ("mode", "latency", "status", "flap_seconds", "fail_next"):
            if key in values:
                setattr(self, key, values[key])
        if self.mode not in ("healthy", "error", "drop"):
            raise ValueError(f"unknown mode {self.mode!r}: healthy, error or drop")


def summary(db: SupportDB) -> dict[str, Any]:
    """The status page's answer: the page indicator and every component (see the module docstring)."""
    with db.connect() as conn:
        components = service_overview(conn, [])
    worst = max((_INDICATOR.get(c["status"], "critical") for c in components), key=_rank, default="none")
    return {
        "page": {"name": "Tandem status", "updated_at": format_time(now_utc())},
        "status": {
            "indicator": worst,
            "description": "All Systems Operational" if worst == "none" else "Some services are affected",
        },
        "components": components,
    }


def _rank(indicator: str) -> int:
    return ["none", "minor", "major", "critical"].index(indicator)


class StatusPage(ThreadingHTTPServer):
    """The server; `faults` may be changed while it runs. `serve_in_thread` for tests."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        db: SupportDB,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        faults: Faults | None = None,
        fault_control: bool = False,
    ) -> None:
        self.db = db
        self.faults = faults or Faults()
        self.fault_control = fault_control
        self.started = time.monotonic()
        self.lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (its timeout) leaves a broken pipe: expected here, not worth a traceback."""

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="status-page", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: StatusPage
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would drown a benchmark's output."""

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        faults = self.server.faults
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(200, {"ok": True})
            return
        if path != SUMMARY_PATH:
            self._send(404, {"error": f"no such page: {path}"})
            return
        with self.server.lock:
            faults.received += 1
        if faults.latency > 0:
            time.sleep(faults.latency)
        mode = faults.now_mode(time.monotonic() - self.server.started)
        with self.server.lock:
            if faults.fail_next > 0:
                faults.fail_next -= 1
                mode = "error"
        if mode == "drop":
            faults.failed += 1
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "error":
            faults.failed += 1
            self._send(faults.status, {"error": "injected failure"})
            return
        try:
            body = summary(self.server.db)
        except Exception as exc:  # a broken database is the service's own 500, not a crash
            faults.failed += 1
            self._send(500, {"error": type(exc).__name__})
            return
        faults.served += 1
        self._send(200, body)

    def do_POST(self) -> None:
        if self.path != "/_faults" or not self.server.fault_control:
            self._send(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            self.server.faults.update(json.loads(self.rfile.read(length) or b"{}"))
        except (ValueError, TypeError) as exc:
            self._send(400, {"error": str(exc)})
            return
        self._send(200, asdict(self.server.faults))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m capabilities.support_desk.status_page")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--db", default="support.sqlite", help="database file (created and seeded if new)")
    parser.add_argument(
        "--fault-control", action="store_true", help="accept POST /_faults (tests, benchmarks)"
    )
    args = parser.parse_args(argv)
    server = StatusPage(
        SupportDB(Path(args.db).resolve()), args.port, host=args.host, fault_control=args.fault_control
    )
    print(f"status page on {server.url}{SUMMARY_PATH}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
