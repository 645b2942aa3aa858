"""Intake: the first node of every run. A new user message starts a new turn: per-turn state resets.

Intake is also where a request is checked before any work is done on it, so every caller (the CLI,
Python, Studio) gets the same answer to bad input instead of an exception further on:

- the text is cleaned (`clean_request`): lone surrogates (what invalid UTF-8 becomes) are replaced
  by U+FFFD and control characters other than tab and newline are removed; the stored message is
  replaced by the cleaned one, so later turns (and a model reading the history) see it too;
- an empty or whitespace-only request ends the turn with stop_reason `clarify` and one line asking
  what the user wants (content blocks without text, e.g. an image, count as empty unless a chat
  model extracts tasks);
- a request longer than `limits.max_request_chars` (default 8,000) ends it with stop_reason
  `input_too_long` and one line saying so; the stored message keeps the first that many characters.

Both go through the error node (the router's one way to end a turn from intake), which answers
with the line intake wrote.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.types import Overwrite

from graph.errors import ErrorRecord

if TYPE_CHECKING:  # `clean_request` is imported by the CLI before it builds any graph: kept light
    from langchain_core.runnables import RunnableConfig, RunnableLambda

    from graph.config.registry import Registry
    from graph.state import AgentState
    from nodes.base import Deps

log = logging.getLogger("routegraph")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 and C1 controls but tab and newline
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200d\u2060\ufeff]")
"""Characters that show nothing on their own (zero-width spaces and joiners, a soft hyphen, a byte
order mark): kept in a request (a joiner holds an emoji or a Persian word together), but a
request of nothing else is as empty as one of spaces."""


def clean_request(text: str) -> str:
    """The request as routegraph reads it: lone surrogates replaced by U+FFFD, line ends as `\\n`,
    other control characters removed (they carry no meaning and break terminals, JSON and models)."""
    text = _SURROGATE.sub("\ufffd", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def is_blank(text: str) -> bool:
    """Whether the request says nothing: only whitespace and characters that show nothing."""
    return not _INVISIBLE.sub("", text).strip()


def message_text(message: BaseMessage) -> str:
    """The text of a message, whether its content is a string or a list of content blocks."""
    return str(message.text)


def _has_other_content(message: BaseMessage) -> bool:
    """Whether the message carries content blocks other than text (an image with no words is not
    an empty request)."""
    content = message.content
    return isinstance(content, list) and any(
        not (isinstance(block, str) or (isinstance(block, dict) and block.get("type") == "text"))
        for block in content
    )


def _reads_blocks(deps: Deps) -> bool:
    """Whether a chat model extracts tasks (and may make one of an image); offline, words are all."""
    try:
        return deps.models.get("task_extraction") is not None
    except Exception:  # a model that cannot be built is not one that reads
        return False


def _refusal(message: str, stop_reason: str) -> ErrorRecord:
    """A CRITICAL error that ends the turn at once with `stop_reason`; the error node answers with
    `message` alone."""
    return ErrorRecord(
        node="intake",
        severity="critical",
        message=message,
        step_id=None,
        capability=None,
        attempt=1,
        stop_reason=stop_reason,
    )


def empty_request_reply(registry: Registry) -> str:
    names = [c.name for c in registry.routable if registry.allowed(c.name)]
    offer = f" I can help with: {', '.join(names)}." if names else ""
    return f"Your message is empty: what would you like me to do?{offer}"


def too_long_reply(length: int, limit: int) -> str:
    return (
        f"Your message is too long for me: {length:,} characters, and I read at most {limit:,} "
        "(limits.max_request_chars). Please shorten it and ask again."
    )


async def _context(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
    """The thread's user (the run's `configurable.user_id`, else the one the thread had) and their
    profile from the store; a store that cannot be read leaves the turn without a profile."""
    from graph.context import profiles

    user_id = profiles.user_id_from(config) or state.get("context_user_id")
    found: dict[str, Any] = {"context_user_id": user_id, "context_profile": None}
    store = profiles.store_of(config)
    if user_id and store is not None:
        try:
            found["context_profile"] = (await profiles.aload(store, user_id)).model_dump(mode="json")
        except Exception as exc:
            log.warning("intake: could not read the profile of %s (%s: %s)", user_id, type(exc).__name__, exc)
    return found


def make_intake(deps: Deps) -> RunnableLambda:
    from nodes.base import correlation, dual

    async def intake(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        messages = state.get("messages", [])
        turn = sum(isinstance(m, HumanMessage) for m in messages)
        if turn == 0 or turn == state.get("task_turn", 0):
            # Nothing new to answer: a finished turn is not run again; the router sends the
            # run to the error node with an explanation.
            return {
                "control_errors": [
                    {
                        "node": "intake",
                        "severity": "critical",
                        "message": "there is no new user message to answer",
                        "step_id": None,
                        "capability": None,
                        "attempt": 1,
                    }
                ],
                "control_stop_reason": None,
                # A run of its own (its trace must not replace the finished turn's).
                "control_run_id": correlation(config)["run_id"] or uuid.uuid4().hex,
            }
        update: dict[str, Any] = {
            "task_previous": state.get("task_current"),
            "task_current": None,
            "task_depends_on_history": False,
            "task_turn": turn,
            "planning_capabilities": None,
            "planning_excluded": [],
            "planning_plan": None,
            "planning_notes": [],
            "execution_results": Overwrite({}),
            "control_errors": [],
            "control_reclassifications": 0,
            "control_replans": 0,
            "control_steps": Overwrite(1),  # this node is the turn's first step
            "control_llm_calls": Overwrite(0),
            "control_tokens": Overwrite(0),
            "control_started_at": deps.clock(),
            "control_timings_ms": Overwrite({}),
            "control_stop_reason": None,
            "control_run_id": correlation(config)["run_id"] or uuid.uuid4().hex,
            "approval_decisions": Overwrite({}),
            # Waits for a human belong to their turn (the router ignores stale ones too).
            "control_paused_seconds": 0.0,
            "control_paused_turn": turn,
            "approval_asked_at": None,
            "context_followup": None,
        }
        update.update(await _context(state, config))
        last = next(m for m in reversed(messages) if isinstance(m, HumanMessage))
        raw = message_text(last)
        text = clean_request(raw)
        limit = deps.limits.max_request_chars
        if is_blank(text) and not (_has_other_content(last) and _reads_blocks(deps)):
            update["control_errors"] = [_refusal(empty_request_reply(deps.registry), "clarify")]
        elif len(text) > limit:
            update["control_errors"] = [_refusal(too_long_reply(len(text), limit), "input_too_long")]
            text = text[:limit] + " […]"
        if text != raw and isinstance(last.content, str) and last.id:
            # Same id: the messages reducer replaces the stored message instead of adding one.
            update["messages"] = [last.model_copy(update={"content": text})]
        return update

    return dual("intake", intake, deps)
