"""The HTTP extras, one Starlette app mounted through langgraph.json's `http.app`, so `langgraph
dev`, `routegraph serve` and the Agent Server serve the same routes next to the graph's API:

    GET  /health    the doctor's checks (encoder excepted) as JSON: 200 when all pass, else 503
    GET  /metrics   Prometheus text format: turns by stop_reason, step and turn latency, model use
    POST /feedback  {"run_id": ..., "verdict": "good"|"bad"|"correct"|"out_of_scope",
                     "correct": [capabilities], "note": ...}: stored with the run's trace
    GET  /dashboard  the operations dashboard, its data and assets (graph/ops/dashboard.py)

An entry point like graph/app.py: it reads the environment once (`Settings.from_env()`).
`create_app(settings)` builds one for other settings (tests, embedding in another server).
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.ops.dashboard import routes as dashboard_routes
from graph.ops.doctor import as_dict, doctor
from graph.ops.feedback import FeedbackError, give_feedback
from graph.ops.store import open_store


def create_app(settings: Settings) -> Starlette:
    store = open_store(settings)
    redactor = settings.redactor()

    @functools.cache
    def capability_names() -> frozenset[str]:
        return frozenset(Registry.from_file(settings.registry).capabilities)

    async def health(_: Request) -> JSONResponse:
        checks = await asyncio.to_thread(doctor, settings, encoder=False)
        body = as_dict(checks)
        return JSONResponse(body, status_code=200 if body["ok"] else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def feedback(request: Request) -> JSONResponse:
        body: Any = await read_json(request)
        if isinstance(body, JSONResponse):
            return body
        if not isinstance(body, dict) or not isinstance(body.get("run_id"), str):
            return JSONResponse({"error": "a JSON object with a string run_id is required"}, status_code=400)
        correct = body.get("correct") or []
        if isinstance(correct, str):
            correct = correct.split(",")
        note = body.get("note")
        if not isinstance(correct, list) or not all(isinstance(c, str) for c in correct):
            return JSONResponse({"error": "correct must be a list of capability names"}, status_code=400)
        if note is not None and not isinstance(note, str):
            return JSONResponse({"error": "note must be a string"}, status_code=400)
        try:
            stored = await asyncio.to_thread(
                give_feedback,
                store,
                body["run_id"],
                verdict=body.get("verdict"),
                correct=correct,
                note=note,
                source="http",
                capabilities=capability_names(),
                redactor=redactor,
            )
        except FeedbackError as exc:
            status = 404 if str(exc).startswith("no trace") else 400
            return JSONResponse({"error": redactor.redact(str(exc))}, status_code=status)
        return JSONResponse(stored)

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/feedback", feedback, methods=["POST"]),
            *dashboard_routes(settings, store),
        ]
    )


BODY_LIMIT = 64 * 1024
"""The largest request body read (a feedback note is at most 2,000 characters): a bigger one is
refused with 413 before it is parsed."""


async def read_json(request: Request, limit: int = BODY_LIMIT) -> Any:
    """The request's JSON body, or the 4xx response that says why there is none: over `limit`
    bytes (413), not UTF-8 JSON, or nested past the parser's recursion limit (400)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _too_large(limit)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            return _too_large(limit)
    try:
        return json.loads(bytes(raw))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return JSONResponse({"error": "the body is not a JSON object"}, status_code=400)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"error": f"the body is larger than {limit} bytes"}, status_code=413)


app = create_app(Settings.from_env())
