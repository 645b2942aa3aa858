"""Approval: pauses the run with `interrupt()` until a human approves or denies pending steps.

Side effects happen after approval, never before: the runner executes an approved step only, and a
denied step is recorded as `denied` without running. Resume with `Command(resume=...)`:

* `True` / `False`, or yes/no words and short phrases in any case ("yes please", "Go ahead!",
  "ok", "approve"; "no thanks", "deny", "cancel", "don't") for all pending steps;
* a mapping of step id to any of those, or `{"approved": ...}` / `{"decision": ...}`;
* an Agent Inbox human response, alone or in a list: `{"type": "accept"}` approves,
  `{"type": "ignore"}` denies, `{"type": "response", "args": "yes please"}` is read as words;
  LangChain's HITL middleware shape `{"decisions": [{"type": "approve" | "reject"}]}` too.

Anything else is unclear, and unclear never approves and never denies: the node asks again (a new
interrupt saying the answer was not understood and what to answer). Not a denial, because the old
"unclear means no" ended runs as `success` with nothing done after the human said "yes please".

An `edit` response (Agent Inbox, or the HITL middleware's `edited_action`) is unclear too: the
human wants a different action than the one shown, and the step would run with the arguments the
router planned, not the edited ones. Asking again (and saying edits are not applied) is honest;
approving would run what the human just changed, denying would drop what they still want.

Each unclear answer costs one step of the turn's `max_steps`: a client that keeps resuming with
garbage ends the turn with stop_reason `max_steps` and nothing done, rather than looping for ever.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.errors import GraphInterrupt
from langgraph.types import interrupt

from graph.errors import StopError
from graph.progress import emit
from graph.redact import redact
from graph.state import AgentState, PlanStep, StepResult
from nodes.base import NodeCall, Update

RESUME_WITH = (
    "yes/no (true/false, 'approve'/'deny'), {step_id: yes/no}, or an Agent Inbox response "
    "[{'type': 'accept' | 'ignore' | 'response', 'args': ...}]"
)

_YES_TEXT = (
    "yes y yep yeah yup ya ok okay k sure approve approved accept accepted confirm confirmed "
    "allow allowed agree agreed true proceed affirmative absolutely definitely certainly correct "
    "granted lgtm go fine alright 👍 ✅ ✔️"
)
_YES = frozenset(_YES_TEXT.split())
_NO_TEXT = (
    "no n nope nah deny denied reject rejected decline declined cancel cancelled canceled stop "
    "abort false refuse refused disapprove disapproved negative halt 👎 ❌"
)
_NO = frozenset(_NO_TEXT.split())
_NEGATORS = frozenset({"not", "don't", "dont", "never"})
_FILLERS_TEXT = (
    "please pls plz thanks thank you ty thx sir maam madam it that this now then and do for the "
    "just i we indeed very much so ahead"
)
_FILLERS = frozenset(_FILLERS_TEXT.split())
# Whole phrases first (longest first), so "don't do it" is a no although it holds "do it".
_PHRASES: list[tuple[str, str]] = sorted(
    [
        *(
            (p, "_no_")
            for p in (
                "don't do it",
                "do not do it",
                "do not approve",
                "don't approve",
                "not approved",
                "no way",
                "not now",
                "hold off",
                "do not proceed",
                "don't proceed",
                "not this time",
                "no thank you",
                "no thanks",
                "no don't",
                "no do not",
                "no never",
            )
        ),
        *(
            (p, "_yes_")
            for p in (
                "go ahead",
                "do it",
                "sounds good",
                "go for it",
                "please do",
                "of course",
                "all good",
                "ship it",
                "make it so",
                "that's fine",
                "thats fine",
                "fine by me",
                "yes please",
                "ok to proceed",
                "all right",
            )
        ),
    ],
    key=lambda pair: -len(pair[0]),
)
_PHRASE_RE = re.compile("|".join(rf"(?<!\w){re.escape(p)}(?!\w)" for p, _ in _PHRASES))
_PHRASE_KIND = dict(_PHRASES)
_WHOLE_NO = frozenset({"don't", "dont", "do not", "never"})
_TOKEN = re.compile(r"[\w']+|[👍👎✅❌]|✔️")
_MAX_DEPTH = 6
_APOSTROPHES = str.maketrans("’‘", "''")


def parse_decision(value: Any, step_id: str, *, order: Sequence[str] = ()) -> bool | None:
    """A human's answer for one step: True, False, or None when unclear (the caller asks again).

    `order` is the pending step ids as the interrupt listed them: a list of answers with one per
    step (Agent Inbox, the HITL middleware) is matched by position; a single answer applies to all.
    Unclear never approves: a negated yes ("not yes", "not sure"), a question ("yes?"), a yes and a
    no together, unknown words, an edit, an unknown shape are all None.
    """
    return _parse(value, step_id, tuple(order), 0)


def _parse(value: Any, step_id: str, order: tuple[str, ...], depth: int) -> bool | None:
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return parse_words(value)
    if isinstance(value, Mapping):
        if step_id in value:
            return _parse(value[step_id], step_id, order, depth + 1)
        if "decisions" in value:  # LangChain HumanInTheLoopMiddleware
            return _parse(value["decisions"], step_id, order, depth + 1)
        if "type" in value:  # Agent Inbox HumanResponse / HITL decision
            return _human_response(value)
        for key in ("approved", "decision"):
            if key in value:
                return _parse(value[key], step_id, order, depth + 1)
        return None
    if isinstance(value, list | tuple):
        if len(value) == 1:
            return _parse(value[0], step_id, order, depth + 1)
        if order and len(value) == len(order) and step_id in order:
            return _parse(value[order.index(step_id)], step_id, order, depth + 1)
    return None


def _human_response(response: Mapping[str, Any]) -> bool | None:
    kind = str(response.get("type", "")).strip().lower()
    if kind in {"accept", "approve"}:
        return True
    if kind in {"ignore", "reject"}:
        return False
    if kind in {"response", "respond"}:
        text = response.get("args", response.get("message"))
        return parse_words(text) if isinstance(text, str) else None
    return None  # "edit" and anything unknown


def parse_words(text: str) -> bool | None:
    """Yes/no words and short phrases, any case and punctuation; None unless the answer is plain."""
    lowered = text.strip().lower().translate(_APOSTROPHES)
    if "?" in lowered or len(lowered) > 80:
        return None
    bare = re.sub(r"[\s!.,;:~*_\-()\"]+", " ", lowered).strip()
    if bare in _WHOLE_NO:
        return False
    marked = _PHRASE_RE.sub(lambda m: f" {_PHRASE_KIND[m.group(0)]} ", bare)
    yes = no = negated = False
    for token in _TOKEN.findall(marked):
        if token == "_yes_" or token in _YES:
            yes = True
        elif token == "_no_" or token in _NO:
            no = True
        elif token in _NEGATORS:
            negated = True
        elif token not in _FILLERS:
            return None
    if negated or yes == no:
        return None
    return yes


def unclear_reason(value: Any, steps: int = 1) -> str:
    """Why an answer was not understood (`steps` were asked about), for the question asked again."""
    if isinstance(value, Mapping) and isinstance(value.get("decisions"), list | tuple):
        value = value["decisions"]
    responses = value if isinstance(value, list | tuple) else [value]
    if any(isinstance(r, Mapping) and str(r.get("type", "")).lower() == "edit" for r in responses):
        return "edits are not applied: accept or deny the action as shown, or answer yes or no"
    if isinstance(value, list | tuple) and len(value) not in {1, steps}:
        return f"{len(value)} answers for {steps} steps: give one answer, or one per step"
    shown = redact(value if isinstance(value, str) else repr(value))
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{shown!r} is not a clear yes or no"


class ApprovalUnanswered(StopError):
    """The human kept answering unclearly until the turn's step budget was spent."""

    stop_reason = "max_steps"


def _payload(state: AgentState, asking: list[tuple[PlanStep, str]], problem: str | None) -> dict[str, Any]:
    steps = [
        {"step_id": s["id"], "capability": s["capability"], "inputs": s["inputs"], "question": q}
        for s, q in asking
    ]
    question = " ".join(q for _, q in asking) + " Approve? (yes/no)"
    payload: dict[str, Any] = {
        "type": "approval",
        "task": state.get("task_current"),
        "steps": steps,
        "question": question,
        "resume_with": RESUME_WITH,
        # Agent Inbox's HumanInterrupt per step; Agent Inbox shows a value that is this list.
        "agent_inbox": [
            {
                "action_request": {"action": s["capability"], "args": dict(s["inputs"])},
                "config": {
                    "allow_accept": True,
                    "allow_ignore": True,
                    "allow_respond": True,
                    "allow_edit": False,
                },
                "description": q,
            }
            for s, q in asking
        ],
    }
    if problem is not None:
        payload["not_understood"] = problem
        payload["question"] = f"I did not understand the answer ({problem}). {question}"
    return payload


def _ask(payload: dict[str, Any]) -> Any:
    try:
        return interrupt(payload)
    except GraphInterrupt:
        # Only a real pause is announced. On resume LangGraph runs this node again from the start and
        # each interrupt() already answered returns its answer instead of raising.
        emit("approval_waiting", steps=[s["step_id"] for s in payload["steps"]])
        raise


async def approval(state: AgentState, call: NodeCall) -> Update:
    router = call.deps.router
    pending = router.pending_approvals(state, router.ready_steps(state))
    if not pending:
        return {}
    # Steps left after this node's own: each unclear answer spends one.
    spare = call.deps.limits.max_steps - state.get("control_steps", 0) - 1
    decisions: dict[str, bool] = {}
    asking, problem, unclear = pending, None, 0
    while True:
        answer = _ask(_payload(state, asking, problem))
        order = [s["id"] for s, _ in asking]
        for sid in order:
            if (decision := parse_decision(answer, sid, order=order)) is not None:
                decisions[sid] = decision
        asking = [(s, q) for s, q in asking if s["id"] not in decisions]
        if not asking:
            break
        unclear += 1
        problem = unclear_reason(answer, len(order))
        if unclear > spare:
            raise ApprovalUnanswered(
                f"no clear yes or no to the approval question after {unclear} answers ({problem}); "
                f"each unclear answer uses a step of max_steps={call.deps.limits.max_steps}; nothing was done"
            )
    denied = {
        sid: StepResult(
            step_id=sid,
            capability=s["capability"],
            status="denied",
            output={},
            error="denied by a human",
            severity=None,
            stop_reason=None,
            attempts=0,
            duration_ms=0.0,
        )
        for s, _ in pending
        if not decisions[(sid := s["id"])]
    }
    return {"approval_decisions": decisions, "execution_results": denied}
