"""The graph served by `langgraph dev` / the LangGraph server (see langgraph.json).

The server brings its own persistence, so this graph is compiled without a checkpointer.
"""

from graph.builder import build_graph

graph = build_graph(checkpointer="none")
