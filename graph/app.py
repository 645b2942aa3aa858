"""The graph served by `langgraph dev` / the LangGraph server (see langgraph.json, or the one
`routegraph serve` writes when routegraph is installed as a package).

The one module besides the CLI that reads the environment, through `Settings.from_env()`: the
server imports it with nothing else to go by. `ROUTEGRAPH_REGISTRY` selects another registry.yaml.
The server brings its own persistence, so this graph is compiled without a checkpointer.
"""

from graph.builder import build_graph
from graph.config.registry import Registry
from graph.config.settings import Settings
from graph.ops.logs import set_level

settings = Settings.from_env()
set_level(settings.log_level)  # the server brings its own handlers; routegraph's lines at our level
registry = Registry.from_file(settings.registry)
graph = build_graph(registry=registry, settings=settings, checkpointer="none")
