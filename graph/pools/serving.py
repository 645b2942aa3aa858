"""The server's graph, rebuilt when its registry.yaml changes, and the pools that outlive rebuilds.

`Served` is what graph/app.py hands the LangGraph server: a callable the server treats as a graph
factory (it asks for the graph at the start of each run). Each time, the registry file's stamp
(mtime and size) is compared with the last one seen; when it changed, the file is validated and a
new graph compiled; runs that started keep the compiled graph they were given, new runs get the
new one. A registry that fails validation is refused with a log line, and the running one is
kept. The pools are shared by every graph `Served` builds (`Pools.reload` applies the new
registry to them), so instances, their statistics and the queue live on across reloads.

Pool state lives in the process that serves: `langgraph dev` (and `routegraph serve`) run the
graph and the custom HTTP app (graph/pools/http.py) in one process. Several server processes
would each have their own pools: there is no distributed scheduler.

The LangGraph server imports graph/app.py twice (once for the graph, once for the HTTP app, as
two modules); `shared` gives both the same `Served`, the one piece of process-wide state here.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graph.config.registry import Registry
from graph.errors import RegistryError
from graph.pools.pool import Pools

log = logging.getLogger("routegraph")

Build = Callable[[Registry, Pools], Any]
"""(registry, pools) -> a compiled graph using those pools."""


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


class Served:
    """A registry file, the graph compiled from it, and the pools every such graph shares.

    Calling it (or reading an attribute of the compiled graph through it: `served.invoke(...)`)
    checks the file first and reloads it when it changed.
    """

    def __init__(self, path: Path, build: Build) -> None:
        self.path = path
        self._build = build
        self._lock = threading.Lock()
        self._stamp = _stamp(path)
        self.registry = Registry.from_file(path)
        self.pools = Pools(self.registry)
        self._graph = build(self.registry, self.pools)
        self.reloads = 0
        """Registries applied since the first."""
        self.refused: str | None = None
        """Why the last changed registry was refused (None when the latest change was applied)."""

    def current(self) -> Any:
        """The graph for a run that starts now (the file is checked first)."""
        if _stamp(self.path) != self._stamp:
            self.reload()
        return self._graph

    def __call__(self, config: Any = None) -> Any:
        return self.current()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.current(), name)

    def reload(self) -> dict[str, Any]:
        """Read the registry file again: apply it when it is valid, else keep the running one.
        Returns what happened (`reloaded`, `problems`)."""
        with self._lock:
            stamp = _stamp(self.path)
            try:
                registry = Registry.from_file(self.path)
                graph = self._build(registry, self.pools)
            except RegistryError as exc:
                self._stamp = stamp  # not again until the file changes again
                self.refused = f"{len(exc.problems)} problem(s): " + "; ".join(str(p) for p in exc.problems)
                log.warning("registry %s changed but is invalid; keeping the running one: %s", self.path, self.refused)
                return {"reloaded": False, "problems": [str(p) for p in exc.problems]}
            self.pools.reload(registry)
            self.registry, self._graph, self._stamp = registry, graph, stamp
            self.reloads += 1
            self.refused = None
            log.info("registry %s reloaded (reload %d)", self.path, self.reloads)
            return {"reloaded": True, "problems": []}

    def status(self) -> dict[str, Any]:
        return {"registry": str(self.path), "reloads": self.reloads, "refused": self.refused}


_SHARED: dict[tuple[str, str], Served] = {}
_SHARED_LOCK = threading.Lock()


def shared(path: Path, build: Build, *, key: str = "") -> Served:
    """The process's `Served` for this registry file (and `key`, e.g. the settings), made once."""
    ident = (str(path.resolve()), key)
    with _SHARED_LOCK:
        if ident not in _SHARED:
            _SHARED[ident] = Served(path, build)
        return _SHARED[ident]
