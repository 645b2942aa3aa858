"""The graph served by `langgraph dev` / the LangGraph server (see langgraph.json, or the one
`routegraph serve` writes when routegraph is installed as a package), and its HTTP extras.

One of the entry points that read the environment (with the CLI and graph/ops/http.py), through
`Settings.from_env()`: the server imports it with nothing else to go by. `ROUTEGRAPH_REGISTRY` selects another registry.yaml.
The server brings its own persistence, so this graph is compiled without a checkpointer.

`graph` is a `Served` (graph/pools/serving.py): the server asks it for the graph at each run, and a
changed registry.yaml is applied then (runs in flight keep theirs); it also behaves as the compiled
graph itself (`graph.invoke(...)`). `app` (langgraph.json's `http.app`) serves the operations
endpoints (graph/ops/http.py: `/health`, `/metrics`, `/feedback`) and the pools' (`/pools`).
"""

from typing import Any

from graph.builder import build_graph
from graph.config.registry import Registry, default_registry
from graph.config.settings import Settings
from graph.ops.http import create_app
from graph.ops.logs import set_level
from graph.pools import Pools
from graph.pools.http import pools_app
from graph.pools.serving import shared

settings = Settings.from_env().for_serving()  # no fine-tune cached: answer now, tune in the background
set_level(settings.log_level)  # the server brings its own handlers; routegraph's lines at our level


def _build(registry: Registry, pools: Pools) -> Any:
    return build_graph(registry=registry, settings=settings, checkpointer="none", pools=pools)


graph = shared(settings.registry or default_registry(), _build, key=settings.model_dump_json())
registry = graph.registry
app = create_app(settings)  # /health, /metrics, /feedback (graph/ops/http.py)
app.router.routes.extend(pools_app(lambda: graph).routes)  # /pools (graph/pools/http.py)
