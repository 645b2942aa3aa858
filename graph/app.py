"""The graph served by `langgraph dev` / the LangGraph server (see langgraph.json).

The server brings its own persistence, so this graph is compiled without a checkpointer.
`ROUTEGRAPH_REGISTRY` selects another registry.yaml.
"""

import os

from graph.builder import build_graph

graph = build_graph(registry=os.environ.get("ROUTEGRAPH_REGISTRY") or None, checkpointer="none")
