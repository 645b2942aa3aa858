"""Specialist pools: instances with capacities, weights and health behind each capability; the
assignment policies; dynamic instances from templates; and the server's live registry reload.

    from graph.pools import Pools
    pools = Pools(registry)
    graph = build_graph(registry=registry, pools=pools)
    pools.create("billing_eu", "billing-eu-2", {"region": "eu"})
    pools.scale("billing", 3); pools.retire("billing-eu-2"); pools.list(); pools.advise()
"""

from graph.pools.pool import Instance, Lease, Overloaded, Pool, PoolError, Pools

__all__ = ["Instance", "Lease", "Overloaded", "Pool", "PoolError", "Pools"]
