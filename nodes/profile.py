"""Profile: the last node of every turn. It records what the turn was about and what it taught us
about the user, and never fails the run (a store that cannot be written is logged, not raised).

- the thread's topic (`context_topic`): the capabilities this turn was routed to, each with the
  clause of the task it ran for (the clause its few-shot score is highest on, when there are
  several), which the next turn's follow-ups continue;
- what stays on offer (`approval_offer`, graph/context/offers.py): a side effect a result of this
  turn suggested, or the open offer, unless this turn withdrew it (a no, a side effect done, another
  customer or charge looked up) or it is too old;
- the thread's user (`context_user_id`): when the run named none, the customer a capability
  identified (`customer_id` in the context) becomes the thread's user;
- the user's profile in the store (graph/context/profiles.py): history, capability counts,
  expertise signals, the session's topic; redacted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from graph.classifier.clauses import clause_spans
from graph.context import profiles
from graph.context.followups import topic_after
from graph.context.offers import after_turn
from graph.context.turns import routed_capabilities
from graph.router import latest_request
from graph.state import AgentState
from nodes.base import Deps, Update, entry_points

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig, RunnableLambda

log = logging.getLogger("routegraph")


def _clauses_for(deps: Deps, task: str, names: list[str]) -> dict[str, str]:
    """Each capability's clause of a multi-part task (the one it scores highest on)."""
    if len(names) == 1:
        return {names[0]: task}
    pieces = [task[s:e].strip(" ,.;") for s, e in clause_spans(task)] or [task]
    pieces = [p for p in pieces if p] or [task]
    scorer = deps.scorer
    best: dict[str, tuple[float, str]] = {}
    for piece in pieces:
        for score in scorer.score(piece, names):
            if score.name not in best or score.confidence > best[score.name][0]:
                best[score.name] = (score.confidence, piece)
    return {name: best[name][1] if name in best else task for name in names}


def make_profile(deps: Deps) -> RunnableLambda:
    """The node. Not a `make_node` node: it runs after the terminal node, counts no step of the
    turn and leaves the turn's errors and stop_reason as the terminal node left them."""

    async def profile(state: AgentState, config: RunnableConfig) -> Update:
        update: Update = {}
        try:
            offer = after_turn(state, deps.registry)
            if offer != state.get("approval_offer"):
                update["approval_offer"] = offer
        except Exception as exc:  # the answer is given already: nothing here may fail the turn
            log.warning("profile: could not update the offer (%s: %s)", type(exc).__name__, exc)
        try:
            return {**update, **await _remember(state, deps, config)}
        except Exception as exc:
            log.warning("profile: could not record the turn (%s: %s)", type(exc).__name__, exc)
            return update

    return entry_points("profile", profile)


async def _remember(state: AgentState, deps: Deps, config: RunnableConfig) -> Update:
    registry = deps.registry
    update: Update = {}
    names = [n for n in routed_capabilities(state, registry) if n != "clarify"]
    task = state.get("task_current") or ""
    turn = state.get("task_turn", 0)
    if names and task:
        ran = await asyncio.to_thread(_clauses_for, deps, task, names)
        update["context_topic"] = topic_after(state.get("context_topic") or [], ran, turn=turn)
    user_id = state.get("context_user_id")
    customer = (state.get("execution_context") or {}).get("customer_id")
    if not user_id and isinstance(customer, str) and customer:
        user_id = customer
        update["context_user_id"] = customer
    store = profiles.store_of(config)
    if not user_id or store is None:
        return update
    try:
        profile = await profiles.aload(store, user_id)
        thread_id = (config.get("configurable") or {}).get("thread_id")
        learned = profiles.learn(
            profile,
            message=latest_request(state.get("messages") or []),
            task=task,
            capabilities=names,
            stop_reason=state.get("control_stop_reason"),
            turn=turn,
            thread_id=str(thread_id) if thread_id else None,
            topic=update.get("context_topic") or state.get("context_topic") or [],
            redactor=deps.settings.redactor(),
            instances=served_by(state),
        )
        await profiles.asave(store, learned)
    except Exception as exc:
        log.warning("profile: could not update the profile of %s (%s: %s)", user_id, type(exc).__name__, exc)
    return update


def served_by(state: AgentState) -> dict[str, str]:
    """The pool instance of each capability whose step succeeded this turn."""
    results = (state.get("execution_results") or {}).values()
    return {r["capability"]: r["instance"] for r in results if r["status"] == "ok" and r.get("instance")}


__all__ = ["make_profile"]
