"""Task extraction: turn the conversation into one standalone task for this turn.

With a model: one structured call over the recent turns. Offline: the last user message, and
when it is an elliptical follow-up ("and in Paris?", "what about 8*9?") the previous task is
appended as context, after the new words, so extractors that take the first match see them first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from graph.errors import CriticalError
from graph.models import add_notes
from graph.state import AgentState
from nodes.base import NodeCall, Update
from nodes.intake import clean_request, message_text

_FOLLOW_UP_START = re.compile(r"^\s*(and|also|what about|how about|same|then|or|ok(ay)?,? and)\b", re.I)
_ANAPHORA = re.compile(r"\b(it|that|this|there|them|same|again)\W*$", re.I)
HISTORY_MESSAGES = 6


class ExtractedTask(BaseModel):
    """The model's reading of the latest request."""

    task: str = Field(min_length=1, max_length=2000)
    """The latest request rewritten to stand on its own."""
    depends_on_history: bool = False
    """True when earlier turns were needed to understand it."""


def last_user_text(messages: Sequence[BaseMessage]) -> str:
    """The latest user message, cleaned as intake checked it (content blocks are not rewritten in
    the state, so they are cleaned here again)."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return clean_request(message_text(message))
    raise CriticalError("there is no user message to extract a task from")


def is_follow_up(text: str) -> bool:
    words = text.split()
    return len(words) <= 6 and bool(_FOLLOW_UP_START.search(text) or _ANAPHORA.search(text))


NO_TEXT = "(a message without text)"
"""The task of a message with no words (an image, when the model that could read it fell back)."""


def offline_task(text: str, previous: str | None) -> ExtractedTask:
    """The request itself as the task (a follow-up with the previous task appended).

    Not validated against the model's bounds: intake already refused an empty or too long request,
    and the limit there (`limits.max_request_chars`) is the user's, not the model's.
    """
    text = " ".join(text.split()) or NO_TEXT
    if previous and is_follow_up(text):
        return ExtractedTask.model_construct(
            task=f"{text} (follow-up to: {previous})", depends_on_history=True
        )
    return ExtractedTask.model_construct(task=text, depends_on_history=False)


SYSTEM = (
    "You read a conversation between a user and an assistant. Rewrite the user's LATEST message as "
    "one standalone task: resolve references to earlier turns, keep every number, name and place, "
    "add nothing the user did not ask. Set depends_on_history when earlier turns were needed."
)


async def task_extraction(state: AgentState, call: NodeCall) -> Update:
    messages = list(state.get("messages", []))
    text = last_user_text(messages)
    extracted: ExtractedTask | None = None
    note = call.llm.offline_note("task_extraction")
    if call.llm.available("task_extraction"):
        recent = messages[-HISTORY_MESSAGES:]
        try:
            extracted = await call.llm.structured(
                "task_extraction", [SystemMessage(content=SYSTEM), *recent], ExtractedTask
            )
        except Exception as exc:
            # Malformed output or no answer: retried by the router, until the role goes offline
            # or this is the last attempt; then the offline extraction takes over.
            last = call.attempt > call.deps.limits.max_retries
            note = call.llm.fallback_note("task_extraction", exc, last_attempt=last)
            if note is None:
                raise
    if extracted is None:
        extracted = offline_task(text, state.get("task_previous"))
    update: Update = {"task_current": extracted.task, "task_depends_on_history": extracted.depends_on_history}
    if note:
        update["planning_notes"] = add_notes(state.get("planning_notes"), note)
    return update
