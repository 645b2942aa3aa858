"""Shared fixtures: offline settings, registries built from dicts, scripted fake chat models."""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import Field

from graph.builder import build_graph
from graph.classifier.build import prepare_before_turn
from graph.config.registry import Registry
from graph.config.settings import Settings

BASE: dict[str, Any] = {
    "version": 1,
    "limits": {"retry_initial_delay": 0.0, "retry_max_delay": 0.0},
    # The lexical encoder needs no weights: fast graph tests. The MiniLM path has its own tests.
    "classifier": {"encoder": "lexical"},
    "capabilities": [
        {"name": "respond", "class": "capabilities.respond:Respond"},
        {"name": "clarify", "class": "capabilities.clarify:Clarify"},
        {"name": "calculator", "class": "capabilities.calculator:Calculator"},
        {"name": "clock", "class": "capabilities.clock:Clock"},
    ],
}


def guide(*queries: str, negatives: Iterable[str] = ()) -> dict[str, Any]:
    examples = [{"query": q, "result": True} for q in queries]
    examples += [{"query": q, "result": False} for q in negatives]
    return {"instructions": "", "examples": examples}


def registry_with(*extra: dict[str, Any], **sections: Any) -> Registry:
    """The base registry plus extra capabilities, with top-level sections merged in."""
    data = copy.deepcopy(BASE)
    data["capabilities"] += list(extra)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return Registry.from_dict(data, source="<test>")


class CountingFake(GenericFakeChatModel):
    """A scripted fake chat model that counts its calls and records the prompts it saw."""

    calls: int = 0
    prompts: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.prompts = [*self.prompts, list(messages)]
        return super()._generate(messages, *args, **kwargs)


def fake(*replies: str | dict[str, Any], repeat: bool = False) -> CountingFake:
    """A fake model answering with the given replies in order (dicts are sent as JSON text)."""
    messages = [AIMessage(content=r if isinstance(r, str) else json.dumps(r)) for r in replies]
    return CountingFake(messages=itertools.cycle(messages) if repeat else iter(messages))


class SleepRecorder:
    """Stands in for asyncio.sleep: records backoff delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


_RUN_MARK = "RG_TEST_RUN"
"""Set to a token of this test run in its environment, which the processes it starts inherit (the
`ask`s and the fine-tune workers they start): how the clean-up below tells this run's workers."""


def _background_workers(cache: Path, token: str) -> set[int]:
    """The pids of this run's running background fine-tune workers (graph.classifier.deferred_worker):
    its token in their environment, or its cache's job file on their command line. Only this run's:
    a test run next to it on the machine (another checkout, mutmut's) stopped the workers this
    run's tests were waiting for, which then never wrote a line or a state."""
    found: set[int] = set()
    mark = f"{_RUN_MARK}={token}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            cmdline = (entry / "cmdline").read_bytes()
            if b"graph.classifier.deferred_worker" not in cmdline:
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if mark in environ or bytes(cache) + b"/" in cmdline:
            found.add(int(entry.name))
    return found


@pytest.fixture(autouse=True, scope="session")
def shared_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One embedding / fine-tune cache for the whole run: the same guides are not trained twice."""
    import os

    path = tmp_path_factory.mktemp("model-cache")
    before = os.environ.get("ROUTEGRAPH_CACHE_DIR")
    os.environ["ROUTEGRAPH_CACHE_DIR"] = str(path)
    # `routegraph ask` run by a test fine-tunes before answering, as the tests expect (the
    # background fine-tune has its own tests: tests/test_background_finetune.py).
    mode = os.environ.setdefault("ROUTEGRAPH_FINETUNE", "foreground")
    outer = os.environ.get(_RUN_MARK)  # a test run started by a test (its own token, restored after)
    token = os.environ[_RUN_MARK] = f"{os.getpid()}-{time.time_ns()}"
    workers_before = _background_workers(path, token)
    yield path
    # A test that clears ROUTEGRAPH_* runs `ask` in its default (background) mode and may leave a
    # detached fine-tune worker behind: stop the ones this run started, so none outlives the suite.
    for pid in _background_workers(path, token) - workers_before:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    if outer is None:
        os.environ.pop(_RUN_MARK, None)
    else:
        os.environ[_RUN_MARK] = outer
    if mode == "foreground":
        os.environ.pop("ROUTEGRAPH_FINETUNE", None)
    if before is None:
        os.environ.pop("ROUTEGRAPH_CACHE_DIR", None)
    else:
        os.environ["ROUTEGRAPH_CACHE_DIR"] = before


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.offline(tmp_path)


@pytest.fixture
def make_graph(settings: Settings) -> Callable[..., Any]:
    def make(registry: Registry | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("checkpointer", "memory")
        registry = registry or registry_with()
        # The fine-tune runs here, not inside the first turn's `limits.max_seconds` (as `ask` does).
        prepare_before_turn(registry, settings)
        return build_graph(registry=registry, settings=settings, **kwargs)

    return make


def ask(graph: Any, text: str, thread: str = "t") -> dict[str, Any]:
    return dict(
        graph.invoke({"messages": [HumanMessage(content=text)]}, {"configurable": {"thread_id": thread}})
    )


def answer(state: dict[str, Any]) -> str:
    return str(state["messages"][-1].content)
