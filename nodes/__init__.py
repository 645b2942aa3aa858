"""The graph's nodes, wired by `graph.build_graph`: internal, with no public names.

Applications extend routegraph with capabilities (`graph.Capability`), not nodes.
"""

__all__: list[str] = []
