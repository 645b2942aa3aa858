"""Bad input never reaches the user as a traceback, and every documented exit code holds.

Each hostile input goes through the command line as a subprocess (exit code, one line on stderr, no
"Traceback" anywhere); the graph's own answers to the same requests are checked from Python, which
is also what Studio gets (intake answers, not the CLI).

Exit codes (README § The command line): 0 answered or asked to clarify, 1 the run stopped early,
2 invalid input, 3 the thread is busy (tests/test_persistence_locks.py).
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import HumanMessage

from graph.config.registry import Registry
from graph.errors import RegistryError
from tests.conftest import BASE, answer, ask, registry_with

ROOT = Path(__file__).resolve().parent.parent

Arg = str | bytes


def cli(tmp_path: Path, *args: Arg, timeout: float = 120) -> tuple[int, str, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ROUTEGRAPH"))}
    env.update(
        PYTHONPATH=str(ROOT),
        ROUTEGRAPH_DATA_DIR=str(tmp_path / "data"),
        ROUTEGRAPH_LLM="off",
        LANGSMITH_TRACING="false",
        ROUTEGRAPH_CACHE_DIR=os.environ.get("ROUTEGRAPH_CACHE_DIR", str(tmp_path / "cache")),
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "graph.cli", *args], env=env, capture_output=True, timeout=timeout, check=False
    )
    out = done.stdout.decode("utf-8", "replace")
    err = done.stderr.decode("utf-8", "replace")
    return done.returncode, out, err, time.monotonic() - started


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test registry (lexical encoder: no weights, fast)."""
    path = tmp_path_factory.mktemp("registry") / "registry.yaml"
    path.write_text(yaml.safe_dump(copy.deepcopy(BASE)))
    return path


def deep(tmp: Path) -> Path:
    path = tmp / "deep.yaml"
    path.write_text("version: 1\ncapabilities: " + "[" * 3000 + "]" * 3000 + "\n")
    return path


def huge(tmp: Path) -> Path:
    path = tmp / "huge.yaml"
    path.write_text("version: 1\n" + "# padding\n" * 150_000)  # 1.5 MB
    return path


def binary(tmp: Path) -> Path:
    path = tmp / "binary.yaml"
    path.write_bytes(bytes(range(256)) * 64)
    return path


def nul_bytes(tmp: Path) -> Path:
    path = tmp / "nul.yaml"
    path.write_bytes(b"version: 1\x00\x00\x00\n")
    return path


def bomb(tmp: Path) -> Path:
    """Billion laughs: nine levels of nine aliases, 387 million values from 500 bytes."""
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, 9):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    path = tmp / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nversion: 1\n")
    return path


def zero(_tmp: Path) -> Path:
    return Path("/dev/zero")


def directory(tmp: Path) -> Path:
    return tmp


REGISTRIES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "nested 3000 deep": (deep, "nested too deeply"),
    "huge": (huge, "too large"),
    "binary": (binary, "not UTF-8 text"),
    "NUL bytes": (nul_bytes, "control character"),
    "alias bomb": (bomb, "more than 100,000 values"),
    "/dev/zero": (zero, "too large"),
    "a directory": (directory, "cannot read the file"),
}


def no_traceback(out: str, err: str) -> None:
    assert "Traceback" not in out and "Traceback" not in err, err


def one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    return err.strip()


Case = tuple[int, str, str, float]
"""What a command line did: exit code, stdout, stderr, seconds."""


class Runs:
    """The command lines of this module, run once, several at a time (each is a new interpreter:
    start-up is most of the time), each with a data directory of its own."""

    def __init__(self, tmp: Path) -> None:
        self.registry = tmp / "registry.yaml"
        self.registry.write_text(yaml.safe_dump(copy.deepcopy(BASE)))
        self.files = {name: make(tmp) for name, (make, _) in REGISTRIES.items()}
        lines = [self.line(*args) for args in command_lines(self.files)]
        with ThreadPoolExecutor(max_workers=3) as pool:
            cases = pool.map(lambda n: cli(tmp / f"run{n}", *lines[n]), range(len(lines)))
            self.done = dict(zip(lines, cases, strict=True))

    def line(self, *args: Arg) -> tuple[Arg, ...]:
        return tuple(str(self.registry) if a == "<registry>" else a for a in args)

    def __call__(self, *args: Arg) -> Case:
        return self.done[self.line(*args)]


def command_lines(files: dict[str, Path]) -> list[tuple[Arg, ...]]:
    lines: list[tuple[Arg, ...]] = [
        ("ask", "what is 2*3", "--registry", str(p), "--quiet") for p in files.values()
    ]
    lines += [("validate", str(files[name])) for name in VALIDATED]
    lines += [("ask", text, "--registry", "<registry>", "--quiet") for text in EMPTY]
    lines.append(("ask", "a" * 100_000, "--registry", "<registry>", "--quiet", "--thread", "big"))
    lines += [
        ("ask", text, "--registry", "<registry>", "--quiet", "--thread", dirty_thread(text)) for text in DIRTY
    ]
    lines += [thread_line(thread) for thread in BAD_THREADS]
    lines.append(("threads", "--registry", "<registry>", "show", BAD_THREADS[0]))
    lines += [tuple(args) for args, _ in OTHERS]
    return lines


def thread_line(thread: Arg) -> tuple[Arg, ...]:
    return ("ask", "what is 2*3", "--thread", thread, "--registry", "<registry>", "--quiet")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(tmp_path_factory.mktemp("bad-input"))


@pytest.mark.parametrize("name", list(REGISTRIES))
def test_a_hostile_registry_exits_2_quickly_naming_the_file(runs: Runs, name: str) -> None:
    path = runs.files[name]
    says = REGISTRIES[name][1]
    code, out, err, seconds = runs("ask", "what is 2*3", "--registry", str(path), "--quiet")
    no_traceback(out, err)
    assert code == 2 and out == ""
    line = one_line(err)
    assert line.startswith(f"routegraph ask: invalid registry: {path}") and says in line, line
    assert seconds < 30


VALIDATED = ["nested 3000 deep", "alias bomb"]


@pytest.mark.parametrize("name", VALIDATED)
def test_validate_lists_the_hostile_registry_problem(runs: Runs, name: str) -> None:
    path = runs.files[name]
    code, out, err, _ = runs("validate", str(path))
    no_traceback(out, err)
    assert code == 2 and err.splitlines()[0] == f"1 problem(s) in {path}:" and REGISTRIES[name][1] in err


EMPTY = ["", "  \t\n ", "\x01\x07\x1b", "\u200b\u200d\ufeff"]


@pytest.mark.parametrize(
    "text", EMPTY, ids=["empty", "whitespace", "only control characters", "only zero-width characters"]
)
def test_an_empty_request_exits_2_with_one_line(runs: Runs, text: str) -> None:
    code, out, err, _ = runs("ask", text, "--registry", "<registry>", "--quiet")
    no_traceback(out, err)
    assert (code, out, one_line(err)) == (2, "", "routegraph ask: the request is empty")


def test_a_request_over_the_limit_stops_with_input_too_long(runs: Runs) -> None:
    code, out, err, _ = runs("ask", "a" * 100_000, "--registry", "<registry>", "--quiet", "--thread", "big")
    no_traceback(out, err)
    assert code == 1
    assert out.count("\n") == 1 and out.startswith("Your message is too long for me: 100,000 characters")
    assert one_line(err) == "[thread big · input_too_long]"


DIRTY: list[Arg] = [b"\xff\xfe what is 2*3", "\x1b[31mwhat is 2*3\x07"]


def dirty_thread(text: Arg) -> str:
    """A thread of its own per case: the cases run at the same time, and are not one conversation."""
    return f"u{DIRTY.index(text)}"


@pytest.mark.parametrize("text", DIRTY, ids=["invalid UTF-8", "control characters"])
def test_invalid_utf8_and_control_characters_are_cleaned_and_answered(runs: Runs, text: Arg) -> None:
    thread = dirty_thread(text)
    code, out, err, _ = runs("ask", text, "--registry", "<registry>", "--quiet", "--thread", thread)
    no_traceback(out, err)
    assert code == 0 and out == "2*3 = 6.\n", err
    assert one_line(err) == f"[thread {thread} · success]"


BAD_THREADS: list[Arg] = [b"\xff", "x" * 129, "two\nlines", ""]


@pytest.mark.parametrize("thread", BAD_THREADS, ids=["invalid UTF-8", "129 characters", "newline", "empty"])
def test_a_bad_thread_id_exits_2_with_one_line(runs: Runs, thread: Arg) -> None:
    commands = [thread_line(thread)]
    if thread == BAD_THREADS[0]:
        commands.append(("threads", "--registry", "<registry>", "show", thread))
    for command in commands:
        code, out, err, _ = runs(*command)
        no_traceback(out, err)
        assert code == 2 and out == ""
        line = one_line(err)
        assert (
            line.startswith(f"routegraph {command[0]}: invalid thread id ") and "1 to 128 printable" in line
        )


OTHERS: list[tuple[list[str], str]] = [
    (["eval", "--data", "/dev/zero", "--encoder", "lexical"], "not a regular file"),
    (["eval", "--data", "missing.jsonl", "--encoder", "lexical"], "no such file"),
    (["tune", "--data", "/dev/zero"], "not a regular file"),
    (["graph", "--update-readme", "/nonexistent/README.md"], "cannot write /nonexistent/README.md"),
    (["serve", "--port", "0"], "must be at least 1"),
    (["threads", "list", "--limit", "-1"], "must be at least 1"),
]


@pytest.mark.parametrize(
    ("args", "says"),
    OTHERS,
    ids=[
        "eval /dev/zero",
        "eval missing",
        "tune /dev/zero",
        "graph unwritable",
        "serve port 0",
        "threads limit",
    ],
)
def test_other_commands_refuse_bad_input_with_exit_2(runs: Runs, args: list[str], says: str) -> None:
    code, out, err, _ = runs(*args)
    no_traceback(out, err)
    assert code == 2 and says in err, err


def test_the_graph_answers_bad_requests_itself(make_graph: Callable[..., Any]) -> None:
    """From Python (and Studio): the graph ends `clarify` or `input_too_long`, never an exception."""
    graph = make_graph(registry_with(limits={"max_request_chars": 50}))
    # Zero-width spaces and joiners, a byte order mark, a soft hyphen: nothing to read either.
    for text in ("", "   \n\t", "\x00\x1b", "\u200b\u200b", "\u200d \ufeff\u00ad"):
        state = ask(graph, text, thread="empty")
        assert state["control_stop_reason"] == "clarify"
        assert (
            answer(state)
            == "Your message is empty: what would you like me to do? I can help with: calculator, clock."
        )
    state = ask(graph, "what is 2*3 " + "and more " * 10, thread="long")
    assert state["control_stop_reason"] == "input_too_long"
    assert answer(state) == (
        "Your message is too long for me: 102 characters, and I read at most 50 (limits.max_request_chars). "
        "Please shorten it and ask again."
    )
    assert len(state["messages"][-2].content) == 50 + len(" […]")  # the stored question is shortened
    state = ask(graph, "\udcff\x1b[1mwhat is 2*3\r\n", thread="dirty")
    assert state["control_stop_reason"] == "success" and answer(state) == "2*3 = 6."
    assert state["messages"][-2].content == "\ufffd[1mwhat is 2*3\n"  # what later turns and models see


def test_a_clean_request_is_stored_as_given(make_graph: Callable[..., Any]) -> None:
    graph = make_graph()
    state = graph.invoke({"messages": [HumanMessage("what is 2*3")]}, {"configurable": {"thread_id": "t"}})
    assert [m.content for m in state["messages"]] == ["what is 2*3", "2*3 = 6."]


def test_a_request_at_the_limit_is_answered(make_graph: Callable[..., Any]) -> None:
    graph = make_graph(registry_with(limits={"max_request_chars": 11}))
    state = ask(graph, "what is 2*3")
    assert state["control_stop_reason"] == "success"


def test_hostile_registry_text_from_python_is_a_registry_error(tmp_path: Path) -> None:
    for name, (make, says) in REGISTRIES.items():
        if name in {"/dev/zero", "a directory", "binary"}:
            continue
        path = make(tmp_path)
        with pytest.raises(RegistryError, match="too long" if name == "huge" else says):
            Registry.from_text(path.read_text(), source=name)


def test_an_alias_bomb_under_options_is_refused_at_once() -> None:
    """Where the schema takes anything (a capability's options), a bomb used to load, and the first
    request spent 40 s walking it."""
    lines = ["lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"lol{n}: &lol{n} [{', '.join([f'*lol{n - 1}'] * 10)}]" for n in range(1, 9)]
    data = copy.deepcopy(BASE)
    data["capabilities"][2]["options"] = {"x": "BOMB"}
    text = yaml.safe_dump(data).replace("x: BOMB", "x:\n" + "\n".join(f"        {line}" for line in lines))
    started = time.monotonic()
    with pytest.raises(RegistryError, match="more than 100,000 values"):
        Registry.from_text(text, source="options")
    assert time.monotonic() - started < 2


def test_an_image_without_words_is_empty_offline_and_a_task_for_a_model(
    make_graph: Callable[..., Any],
) -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    image = {"type": "image", "source_type": "url", "url": "https://example.com/cat.png"}
    turn = {"messages": [HumanMessage(content=[image])]}
    state = make_graph().invoke(turn, {"configurable": {"thread_id": "img"}})
    assert state["control_stop_reason"] == "clarify" and answer(state).startswith("Your message is empty")
    model = GenericFakeChatModel(
        messages=iter([AIMessage('{"task": "what is 2*3", "depends_on_history": false}')])
    )
    graph = make_graph(models={"task_extraction": model})
    state = graph.invoke(turn, {"configurable": {"thread_id": "img"}})
    assert state["control_stop_reason"] == "success" and answer(state) == "2*3 = 6."


def test_offline_extraction_of_a_message_without_words_is_a_task_not_a_loop() -> None:
    from nodes.task_extraction import NO_TEXT, offline_task

    assert offline_task("  ", None).task == NO_TEXT
