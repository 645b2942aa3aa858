"""The pools' HTTP endpoints: a Starlette app the LangGraph server mounts (langgraph.json `http.app`),
so `routegraph pools ...` can act on a running server's pools.

    GET    /pools                   every pool: queue, instances (in flight, capacity, p50/p95, success, health)
    GET    /pools/advise            which instances to retire, which pools to scale up
    POST   /pools/instances         {"template", "name"?, "options"?, "capacity"?, "weight"?}: create one
    POST   /pools/scale             {"name", "replicas"}: a template's or a capability's live instances
    DELETE /pools/instances/{name}  retire one (it finishes its steps, takes no new one)
    POST   /pools/reload            read registry.yaml again now (it is also checked at each run)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from graph.capability.base import jsonable
from graph.pools.pool import PoolError
from graph.pools.serving import Served


def pools_app(served: Callable[[], Served]) -> Starlette:
    """The endpoints above, over the `Served` that `served()` returns."""

    async def listing(request: Request) -> JSONResponse:
        current = served()
        current.current()  # a changed registry is applied before it is shown
        return _reply({"pools": current.pools.list(), **current.status()})

    async def advise(request: Request) -> JSONResponse:
        return _reply({"advice": served().pools.advise()})

    async def create(request: Request) -> JSONResponse:
        body = await _body(request)
        if isinstance(body, JSONResponse):
            return body
        options = body.get("options") or {}
        if not isinstance(body.get("template"), str) or not isinstance(options, dict):
            return _reply({"error": "give a template name, and options as an object"}, 400)
        pools = served().pools
        made = pools.create(
            body["template"],
            body.get("name"),
            options,
            capacity=body.get("capacity"),
            weight=body.get("weight"),
        )
        return _reply({"instance": made}, 201)

    async def scale(request: Request) -> JSONResponse:
        body = await _body(request)
        if isinstance(body, JSONResponse):
            return body
        replicas = body.get("replicas")
        if not isinstance(body.get("name"), str) or not isinstance(replicas, int) or isinstance(replicas, bool):
            return _reply({"error": "give a name (template or capability) and replicas (a whole number)"}, 400)
        return _reply({"instances": served().pools.scale(body["name"], replicas)})

    async def retire(request: Request) -> JSONResponse:
        return _reply({"instance": served().pools.retire(request.path_params["name"])})

    async def reload(request: Request) -> JSONResponse:
        result = served().reload()
        return _reply(result, 200 if result["reloaded"] else 422)

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def run(request: Request) -> JSONResponse:
            try:
                return await handler(request)
            except (PoolError, ValueError) as exc:
                return _reply({"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}, 400)

        return run

    return Starlette(
        routes=[
            Route("/pools", guarded(listing), methods=["GET"]),
            Route("/pools/advise", guarded(advise), methods=["GET"]),
            Route("/pools/instances", guarded(create), methods=["POST"]),
            Route("/pools/instances/{name}", guarded(retire), methods=["DELETE"]),
            Route("/pools/scale", guarded(scale), methods=["POST"]),
            Route("/pools/reload", guarded(reload), methods=["POST"]),
        ]
    )


BODY_LIMIT = 64 * 1024
"""The largest request body read: more is refused with 413 before it is parsed (an instance's
options are a few values)."""


async def _body(request: Request) -> dict[str, Any] | JSONResponse:
    """The JSON object sent (`{}` for no body), or the 4xx reply: too large (413), not JSON, JSON
    nested past the parser's recursion limit, or not an object (400)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > BODY_LIMIT:
        return _reply({"error": f"the body is larger than {BODY_LIMIT} bytes"}, 413)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > BODY_LIMIT:
            return _reply({"error": f"the body is larger than {BODY_LIMIT} bytes"}, 413)
    try:
        body = json.loads(bytes(raw) if raw.strip() else b"{}")
    except (ValueError, RecursionError):
        return _reply({"error": "the body is not JSON"}, 400)
    if not isinstance(body, dict):
        return _reply({"error": "the body must be a JSON object"}, 400)
    return body


def _reply(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(jsonable(value), status_code=status)
