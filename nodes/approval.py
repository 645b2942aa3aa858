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

What the node acts on are the router's gates (`Router.gates`): a side effect the request does not ask
for is recorded as `skipped` without asking anyone (the answer says what the user asked instead); a
side effect the user only asked about is a confirmation question (`"kind": "confirm"` in the
payload) whose no, or no answer, does nothing and leaves an offer a plain "yes" next turn accepts
(`approval_offer`); the approval policy's questions are `"kind": "approve"`.

The clock: waiting for a human is not work. A first pass records when the question is put
(`approval_asked_at`; an interrupt raises, so the pass that interrupts could record nothing), the
next pass interrupts; on resume the wait is added to `control_paused_seconds`, which the router's
`max_seconds` check leaves out. An answer later than the step's `approval.timeout_seconds` resolves
as `approval.on_timeout` (deny unless configured; a confirmation always denies), whatever it says,
with a note `approval_timeout: ...` in the turn's notes and the reason in the answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.errors import GraphInterrupt
from langgraph.types import interrupt

from graph.errors import (
    ApprovalUnanswered,
)
from graph.models import add_notes
from graph.progress import emit
from graph.redact import redact
from graph.router import Gate
from graph.state import AgentState, PlanStep, SideEffectOffer, StepResult
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


def _payload(state: AgentState, asking: list[Gate], problem: str | None) -> dict[str, Any]:
    steps = [
        {
            "step_id": g.step["id"],
            "capability": g.step["capability"],
            "inputs": g.step["inputs"],
            "kind": g.kind,
            "question": g.text,
            "timeout_seconds": g.timeout,
        }
        for g in asking
    ]
    question = " ".join(g.text for g in asking) + " Approve? (yes/no)"
    payload: dict[str, Any] = {
        "type": "approval",
        "task": state.get("task_current"),
        "steps": steps,
        "question": question,
        "resume_with": RESUME_WITH,
        # Agent Inbox's HumanInterrupt per step; Agent Inbox shows a value that is this list.
        "agent_inbox": [
            {
                "action_request": {"action": g.step["capability"], "args": dict(g.step["inputs"])},
                "config": {
                    "allow_accept": True,
                    "allow_ignore": True,
                    "allow_respond": True,
                    "allow_edit": False,
                },
                "description": g.text,
            }
            for g in asking
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


def _not_run(step: PlanStep, status: str, why: str) -> StepResult:
    """A step that will not run: `why` is the sentence the answer shows."""
    return StepResult(
        step_id=step["id"],
        capability=step["capability"],
        status=status,  # type: ignore[typeddict-item]
        output={"summary": why},
        error=why,
        severity=None,
        stop_reason=None,
        attempts=0,
        duration_ms=0.0,
    )


def _offer(state: AgentState, gates: list[Gate]) -> SideEffectOffer | None:
    """The confirmations among `gates` as an offer a plain yes next turn accepts; None if none."""
    confirm = [g for g in gates if g.kind == "confirm"]
    if not confirm:
        return None
    return SideEffectOffer(
        turn=state.get("task_turn", 0),
        task=state.get("task_current") or "",
        capabilities=sorted({g.step["capability"] for g in confirm}),
        question=" ".join(g.text for g in confirm),
        accepted_turn=None,
    )


def _denial(gate: Gate, name: str, verbs: tuple[str, ...]) -> str:
    if gate.kind == "confirm":
        did = f"{verbs[0]} anything" if verbs else f"run {name}"
        return (
            f"I did not {did}: the request only asks about it ({gate.intent}), and it was not confirmed. "
            "Reply “yes” to go ahead."
        )
    return f"I did not run {name}: the action was denied, so nothing was changed."


async def approval(state: AgentState, call: NodeCall) -> Update:
    router = call.deps.router
    gates = router.gates(state, router.ready_steps(state))
    if not gates:
        return {}
    update: Update = {}
    notes = list(state.get("planning_notes") or [])
    skipped = {g.step["id"]: _not_run(g.step, "skipped", g.text) for g in gates if g.kind == "skip"}
    if skipped:
        update["execution_results"] = skipped
        notes = add_notes(notes, *(f"side_effect_not_requested: {sid}" for sid in skipped))
        update["planning_notes"] = notes
    asking = [g for g in gates if g.kind != "skip"]
    if not asking:
        return update
    clock = call.deps.clock
    asked_at = state.get("approval_asked_at")
    if asked_at is None or asked_at < (state.get("control_started_at") or 0.0):
        # First pass: note when the question is put (and what is offered); the router sends the run
        # straight back here, and that pass interrupts.
        update["approval_asked_at"] = clock()
        if (offer := _offer(state, asking)) is not None:
            update["approval_offer"] = offer
        return update

    turn = state.get("task_turn", 0)
    paused_before = float(state.get("control_paused_seconds") or 0.0)
    if state.get("control_paused_turn") != turn:
        paused_before = 0.0

    def resumed() -> float:
        """Record the wait so far (kept even if the node then fails); return it."""
        waited = max(0.0, clock() - asked_at)
        call.keep.update(
            control_paused_seconds=paused_before + waited, control_paused_turn=turn, approval_asked_at=None
        )
        return waited

    # Steps left after this node's own: each unclear answer spends one.
    spare = call.deps.limits.max_steps - state.get("control_steps", 0) - 1
    decisions: dict[str, bool] = {}
    timed_out: dict[str, tuple[Gate, float]] = {}
    pending, problem, unclear = asking, None, 0
    while True:
        answer = _ask(_payload(state, pending, problem))
        waited = resumed()
        order = [g.step["id"] for g in pending]
        for gate in pending:
            sid = gate.step["id"]
            if gate.timeout is not None and waited > gate.timeout:
                decisions[sid] = gate.kind == "approve" and gate.on_timeout == "approve"
                timed_out[sid] = (gate, waited)
            elif (decision := parse_decision(answer, sid, order=order)) is not None:
                decisions[sid] = decision
        pending = [g for g in pending if g.step["id"] not in decisions]
        if not pending:
            break
        unclear += 1
        problem = unclear_reason(answer, len(order))
        if unclear > spare:
            raise ApprovalUnanswered(
                f"no clear yes or no to the approval question after {unclear} answers ({problem}); "
                f"each unclear answer uses a step of max_steps={call.deps.limits.max_steps}; nothing was done"
            )
    results: dict[str, StepResult] = {}
    for gate in asking:
        sid, name = gate.step["id"], gate.step["capability"]
        if sid in timed_out:
            limit, waited = timed_out[sid][0].timeout, timed_out[sid][1]
            outcome = "approved" if decisions[sid] else "denied"
            notes = add_notes(
                notes,
                f"approval_timeout: {sid} answered after {waited:.0f} s, past approval.timeout_seconds="
                f"{limit:g}; {outcome} by approval.on_timeout",
            )
            if not decisions[sid]:
                results[sid] = _not_run(
                    gate.step,
                    "denied",
                    f"I did not run {name}: the approval question had no answer within {limit:g} s (the "
                    f"answer came after {waited:.0f} s), so it counts as a no (approval.on_timeout), and "
                    "nothing was changed.",
                )
        elif not decisions[sid]:
            verbs = call.deps.registry[name].action_verbs
            results[sid] = _not_run(gate.step, "denied", _denial(gate, name, verbs))
    update.update(call.keep)
    update["approval_decisions"] = decisions
    update["execution_results"] = {**skipped, **results}
    # What was offered and not done stays on offer for a plain yes next turn; what was done is not.
    update["approval_offer"] = _offer(state, [g for g in asking if not decisions[g.step["id"]]]) or (
        None if any(g.kind == "confirm" for g in asking) else state.get("approval_offer")
    )
    if notes != list(state.get("planning_notes") or []):
        update["planning_notes"] = notes
    return update
