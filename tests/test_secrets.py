"""No secret leaves routegraph: the one redaction layer (graph/redact.py) wired everywhere.

End to end, through `build_graph` and through `routegraph ask` as a subprocess: a malformed or
refused `ROUTEGRAPH_POSTGRES_URL` (the eleven shapes of the issue, and more) never shows its
password; a model server whose 401 / 500 replies echo the `Authorization` header never gets the API
key into `--json` output, stderr, the returned state, the checkpoint file, the state history or
DEBUG logs; a capability that copies a key into its output does not persist it; `--json` is strict
JSON whatever the state holds (NaN, Infinity). And the pieces: `describe`, the model door's errors
and notes, the checkpoint serializer, the CLI's log handler.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import math
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.types import Interrupt, Send
from pydantic import SecretStr

from graph.builder import build_graph
from graph.capability import Capability, RunContext
from graph.cli import dumps, jsonable, main, redacted_logging
from graph.config.settings import Settings
from graph.errors import CheckpointerError, describe, error_record
from graph.models import LLMGateway, ModelCallError, ModelProvider, ModelUnavailableError
from graph.persistence import RedactingSerializer
from graph.redact import MASK, Redactor
from tests.conftest import BASE, registry_with
from tests.test_postgres import pg_url as fresh_pg_url  # noqa: F401  (a fixture: a fresh database)
from tests.test_postgres import postgres_server  # noqa: F401  (the fixture it needs)

ROOT = Path(__file__).resolve().parent.parent

SHAPED_KEY = "sk-test-abc123DEF456ghi789jkl"
"""A key with a shape (`sk-...`): the shape rules alone mask it."""
BARE_KEY = "QwErTylocal7f3a9c2e1b5d"
"""A local server's key with no shape: only the settings' redactor, which knows it by value, masks it."""
KEYS = pytest.mark.parametrize("key", [SHAPED_KEY, BARE_KEY], ids=["shaped key", "shapeless key"])


def strict_json(text: str) -> Any:
    """`json.loads` that refuses NaN and Infinity, as every strict JSON parser does."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> tuple[int, str, str]:
    """`routegraph ARGS` as a subprocess of this checkout, offline unless `env` says otherwise."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ROUTEGRAPH"))}
    base.update(
        PYTHONPATH=str(ROOT),
        ROUTEGRAPH_DATA_DIR=str(tmp_path / "data"),
        ROUTEGRAPH_LLM="off",
        LANGSMITH_TRACING="false",
        ROUTEGRAPH_CACHE_DIR=os.environ.get("ROUTEGRAPH_CACHE_DIR", str(tmp_path / "cache")),
    )
    base.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "graph.cli", *args],
        env=base,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")


def write_registry(path: Path, *extra: dict[str, Any], **sections: Any) -> Path:
    data = copy.deepcopy(BASE)
    data["capabilities"] += list(extra)
    data.update(sections)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def stored_bytes(directory: Path) -> bytes:
    """Every byte of the SQLite checkpoint database (and its journal, if any)."""
    return b"".join(p.read_bytes() for p in sorted(directory.glob("checkpoints.sqlite*")) if p.is_file())


# --- PostgreSQL URLs ------------------------------------------------------------------------------

PG_SHAPES: list[tuple[str, list[str]]] = [
    # The eleven shapes of the issue (tests/test_redact.py URLS), with what each must not show.
    ("postgresql://user:secret@localhost:5432/app", ["secret"]),
    ("postgres://user:secret@localhost/app", ["secret"]),
    ("postgresql://user:s%zzecret@localhost/app", ["zzecret"]),  # a bad percent-escape
    ("postgresql://user:secret@[::1", ["secret"]),  # an unclosed [
    ("postgresql://user:p@ss@localhost/app", ["p@ss", "ss@localhost"]),  # an @ in the password
    ("postgresql://user:secret@localhost:notaport/app", ["secret"]),
    ("postgresql://user:se/cr?et#x@localhost/app", ["se/cr", "et#x"]),  # reserved characters
    ("user:secret@localhost:5432/app", ["secret"]),  # no scheme
    ("host=localhost user=u password=secret dbname=app", ["secret"]),
    ("host=localhost password='se cret' dbname=app", ["se cret", "cret"]),
    ("postgresql://user:secret@localhost/app?sslmode=require&password=other", ["secret", "other"]),
    # More shapes.
    ("postgresql://user:se cret@localhost/app", ["se cret", "cret"]),  # a space
    ("postgresql://user:secretpw", ["secretpw"]),  # read as host "user", port "secretpw"
    ("postgresql://user:pass%2Fword@localhost:5432/app", ["pass%2Fword", "pass/word"]),
]
PG_IDS = [f"shape {i + 1}" for i in range(len(PG_SHAPES))]


def leaked(text: str, fragments: list[str]) -> list[str]:
    return [f for f in fragments if f in text]


@pytest.mark.parametrize(("url", "fragments"), PG_SHAPES, ids=PG_IDS)
def test_build_graph_never_shows_a_postgres_password(tmp_path: Path, url: str, fragments: list[str]) -> None:
    settings = Settings(data_dir=tmp_path, llm="off", postgres_url=url)
    with pytest.raises(CheckpointerError) as caught:
        build_graph(registry=registry_with(), settings=settings, checkpointer="postgres")
    error = caught.value
    # (not the whole traceback: its file names say "secrets")
    shown = "".join(traceback.format_exception_only(error)) + repr(error) + str(error.args)
    assert "ROUTEGRAPH_POSTGRES_URL" in str(error)
    assert not leaked(shown, fragments), shown
    assert error.__cause__ is None and error.__context__ is None  # no driver exception rides along


def test_the_cli_never_shows_a_postgres_password(tmp_path: Path) -> None:
    registry = write_registry(tmp_path / "registry.yaml")

    def run(case: tuple[int, tuple[str, list[str]]]) -> tuple[str, list[str], int, str, str]:
        i, (url, fragments) = case
        code, out, err = cli(
            tmp_path / str(i),
            "ask",
            "what is 2+2",
            "--registry",
            str(registry),
            env={"ROUTEGRAPH_POSTGRES_URL": url},
        )
        return url, fragments, code, out, err

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, enumerate(PG_SHAPES)))
    for url, fragments, code, out, err in results:
        assert code == 2, (url, err)
        assert out == "" and "Traceback" not in err, (url, err)
        assert err.strip().startswith("routegraph ask: ROUTEGRAPH_POSTGRES_URL"), (url, err)
        assert len(err.strip().splitlines()) == 1, (url, err)
        assert not leaked(err, fragments), (url, err)


# --- a model server that echoes the Authorization header ------------------------------------------


class EchoingServer(ThreadingHTTPServer):
    """An OpenAI-compatible endpoint that fails every chat completion, echoing the credentials."""

    status = 401
    seen: list[str]


class _Echo(BaseHTTPRequestHandler):
    server: EchoingServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        auth = self.headers.get("Authorization", "")
        self.server.seen.append(auth)
        key = auth.removeprefix("Bearer ")
        if self.server.status == 401:  # as OpenAI's, plus the bare key
            error = {
                "message": f"Incorrect API key provided: {auth}. The key {key} is not valid.",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        else:
            error = {"message": f"upstream failed for {key} (headers: {{'Authorization': '{auth}'}})"}
        body = json.dumps({"error": error}).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[EchoingServer]:
    server = EchoingServer(("127.0.0.1", 0), _Echo)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def server_url(server: EchoingServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


MODELS = {"enabled": "always", "default": {"client_retries": 0, "timeout": 10}}


@KEYS
@pytest.mark.parametrize("status", [401, 500])
def test_ask_json_never_shows_an_echoed_api_key(
    tmp_path: Path, echo_server: EchoingServer, key: str, status: int
) -> None:
    echo_server.status = status
    registry = write_registry(tmp_path / "registry.yaml", models=MODELS)
    env = {
        "OPENAI_API_KEY": key,
        "ROUTEGRAPH_BASE_URL": server_url(echo_server),
        "ROUTEGRAPH_LLM": "on",
        "OPENAI_LOG": "debug",  # the client and httpx log at DEBUG, through the CLI's handler
    }
    args = ("ask", "what is 6*7", "--json", "-v", "--registry", str(registry))
    code, out, err = cli(tmp_path, *args, env=env)
    assert echo_server.seen and all(key in auth for auth in echo_server.seen)  # the server echoed it
    result = strict_json(out)
    assert key not in out and key not in err
    if status == 401:  # a refused key stops the run; the error says why, masked
        assert code == 1 and result["stop_reason"] == "error"
        assert "Incorrect API key provided: Bearer ***" in result["errors"][0]["message"]
        assert "Incorrect API key provided: Bearer ***" in result["answer"]
    else:  # a failing server: the offline path answers, and the notes say why, masked
        assert code == 0 and result["answer"] == "6*7 = 42."
        assert result["notes"] and all("upstream failed for ***" in note for note in result["notes"])
    assert "DEBUG" in err  # the DEBUG log lines were printed, and masked


@KEYS
@pytest.mark.parametrize("status", [401, 500])
def test_build_graph_never_stores_an_echoed_api_key(
    tmp_path: Path, echo_server: EchoingServer, key: str, status: int
) -> None:
    echo_server.status = status
    settings = Settings(
        data_dir=tmp_path,
        base_url=server_url(echo_server),
        llm="on",
        api_keys={"OPENAI_API_KEY": SecretStr(key)},
    )
    log = io.StringIO()
    handler = logging.StreamHandler(log)  # no filter: what the libraries and routegraph log, as is
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        graph = build_graph(registry=registry_with(models=MODELS), settings=settings, checkpointer="sqlite")
        config = {"configurable": {"thread_id": "echo"}}
        state = graph.invoke({"messages": [HumanMessage("what is 6*7")]}, config)
        history = list(graph.get_state_history(config))
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert echo_server.seen and all(key in auth for auth in echo_server.seen)
    assert MASK in repr(state)  # the echo reached the state, masked
    assert key not in repr(state)
    assert len(history) > 3 and not any(key in repr(snapshot) for snapshot in history)
    assert key.encode() not in stored_bytes(tmp_path)
    assert log.getvalue() and key not in log.getvalue()


# --- a capability that copies a key into its output ------------------------------------------------


class Leaky(Capability):
    """Copies the key it was configured with into its output (with `nan: true`, numbers JSON
    cannot hold too, which the output contract refuses)."""

    name = "leaky"
    description = "Show the service token."

    async def execute(self, inputs: Any, ctx: RunContext) -> dict[str, Any]:
        key = str(self.options["key"])
        out: dict[str, Any] = {"summary": f"the service token is {key}", "token_copy": key, "limits": [1.5]}
        if self.options.get("nan"):
            out.update(ratio=math.nan, limits=[math.inf, -math.inf, 1.5])
        return out


LEAKY = {
    "name": "leaky",
    "class": "tests.test_secrets:Leaky",
    "classifier_guide": {
        "examples": [{"query": "show the service token"}, {"query": "print the service token"}]
    },
}


@KEYS
def test_a_key_a_capability_copies_is_not_persisted_or_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    registry = write_registry(tmp_path / "registry.yaml", {**LEAKY, "options": {"key": key}})
    data = tmp_path / "data"
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(data))
    monkeypatch.setenv("ROUTEGRAPH_LLM", "off")
    monkeypatch.setenv("OPENAI_API_KEY", key)  # configured: the settings' redactor knows it
    args = ["--registry", str(registry), "--thread", "leaky"]
    assert main(["ask", "show the service token", "--json", *args]) == 0
    captured = capsys.readouterr()
    result = strict_json(captured.out)
    assert key not in captured.out + captured.err
    (step,) = result["steps"]
    assert step["output"]["token_copy"] == MASK and step["output"]["limits"] == [1.5]
    assert main(["ask", "show the service token", *args]) == 0  # human output
    assert key not in "".join(capsys.readouterr())
    assert main(["threads", "--registry", str(registry), "show", "leaky", "--json"]) == 0
    shown = capsys.readouterr().out
    assert key not in shown and strict_json(shown)["thread_id"] == "leaky"
    assert key.encode() not in stored_bytes(data)


def test_ask_json_is_strict_json_whatever_the_state_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    options = {"key": "nothing secret", "nan": True}
    registry = write_registry(tmp_path / "registry.yaml", {**LEAKY, "options": options})
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ROUTEGRAPH_LLM", "off")
    # NaN is not JSON: the output contract fails the step (exit 1), and --json stays strict JSON.
    assert main(["ask", "show the service token", "--json", "--registry", str(registry)]) == 1
    out = capsys.readouterr().out
    assert "NaN" not in out and "Infinity" not in out
    result = strict_json(out)
    assert result["stop_reason"] == "error" and "a JSON object is required" in result["steps"][0]["error"]


def test_jsonable_makes_any_value_dumpable_without_nan() -> None:
    value = {
        "nan": math.nan,
        "inf": [math.inf, (-math.inf, 2.0)],
        1: {"set": {3}},
        "object": Path("/x"),
        "ok": [True, None, 0, "s"],
    }
    text = json.dumps(jsonable(value), allow_nan=False)
    assert strict_json(text) == {
        "nan": None,
        "inf": [None, [None, 2.0]],
        "1": {"set": [3]},
        "object": "/x",
        "ok": [True, None, 0, "s"],
    }
    assert strict_json(dumps({"key": f"Bearer {SHAPED_KEY}", "x": math.nan})) == {
        "key": "Bearer ***",
        "x": None,
    }


# --- the pieces -------------------------------------------------------------------------------------


def test_describe_and_error_record_redact_every_message() -> None:
    exc = RuntimeError(f"401: Authorization: Bearer {SHAPED_KEY}; key {BARE_KEY}")
    assert SHAPED_KEY not in describe(exc) and describe(exc).startswith(
        "RuntimeError: 401: Authorization: Bearer ***"
    )
    known = Redactor([BARE_KEY])
    record = error_record("respond", exc, attempt=1, redactor=known)
    assert record["message"] == "RuntimeError: 401: Authorization: Bearer ***; key ***"

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise ValueError("no")

    assert describe(Unprintable()) == "Unprintable"


class _Failing:
    """A chat model stand-in whose every call raises `error`."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def invoke(self, _messages: Any) -> Any:
        raise self.error


def refusal(code: int, message: str) -> Exception:
    """What the openai client raises for an HTTP error answer."""
    import httpx
    import openai

    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    response = httpx.Response(code, request=request, json={"error": {"message": message}})
    kind = {401: openai.AuthenticationError, 500: openai.InternalServerError}[code]
    return kind(message, response=response, body={"error": {"message": message}})


async def test_model_errors_and_notes_are_redacted_with_the_configured_keys(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, api_keys={"VLLM_API_KEY": SecretStr(BARE_KEY)})

    def gateway(error: BaseException) -> tuple[ModelProvider, LLMGateway]:
        model: Any = _Failing(error)
        provider = ModelProvider({}, settings, enabled=True, overrides={"default": model})
        return provider, LLMGateway(provider, used=0, budget=10)

    _, llm = gateway(refusal(401, f"key {BARE_KEY} refused"))
    with pytest.raises(ModelCallError) as refused:
        await llm.text("respond", [HumanMessage("hi")])
    assert str(refused.value) == "respond: AuthenticationError: key *** refused"
    assert refused.value.severity == "critical"

    provider, llm = gateway(refusal(500, f"key {BARE_KEY} failed"))
    for _ in (1, 2):  # two failures in a row: the role goes offline
        with pytest.raises(ModelUnavailableError) as unavailable:
            await llm.text("respond", [HumanMessage("hi")])
        assert str(unavailable.value) == "respond: InternalServerError: key *** failed"
        note = llm.fallback_note("respond", unavailable.value, last_attempt=True)
        assert note is not None and BARE_KEY not in note and "key *** failed" in note
    offline = provider.offline_note("respond")
    assert offline is not None and BARE_KEY not in offline and "key *** failed" in offline


def test_the_serializer_keeps_known_secrets_out_and_everything_else_as_it_was() -> None:
    secret = "hunter2-correct-horse"
    plain, redacting = JsonPlusSerializer(), RedactingSerializer(Redactor([secret, BARE_KEY]))
    value = {
        "messages": [HumanMessage("hello"), AIMessage(f"your token is {secret}, keep it")],
        "errors": [{"message": f"password={secret}", "attempt": 1}],
        "sends": [Send("execute", {"task": f"use {BARE_KEY}", "n": 2})],
        "interrupt": Interrupt(value={"question": f"send {secret}?"}, id="i1"),
        "glued": f"x{secret}y",
        "blob": f"raw {secret}".encode(),
        "numbers": [1, 2.5, math.nan, 2**63 + 1],
    }
    kind, data = redacting.dumps_typed(value)
    assert secret.encode() not in data and BARE_KEY.encode() not in data
    back = redacting.loads_typed((kind, data))
    assert (
        back["messages"][1].content == "your token is ***, keep it" and back["messages"][0].content == "hello"
    )
    assert back["errors"] == [{"message": "password=***", "attempt": 1}]
    assert back["sends"][0].arg == {"task": "use ***", "n": 2}
    assert back["interrupt"].value == {"question": "send ***?"}
    assert secret not in back["glued"] and back["blob"] == b"raw ***"
    assert (
        back["numbers"][:2] == [1, 2.5] and math.isnan(back["numbers"][2]) and back["numbers"][3] == 2**63 + 1
    )
    clean = {"messages": [AIMessage("nothing to hide")], "n": 1}
    assert redacting.dumps_typed(clean) == plain.dumps_typed(clean)  # untouched when there is no secret
    assert RedactingSerializer(Redactor()).dumps_typed(value) == plain.dumps_typed(value)


def test_a_short_secret_is_masked_where_it_stands_alone_only() -> None:
    """A database password that is a word ("postgres") is masked as a word, not inside others."""
    redacting = RedactingSerializer(
        Settings(data_dir=Path("/x"), postgres_url="postgresql://postgres:postgres@db/app").redactor()
    )
    kind, data = redacting.dumps_typed(
        {"note": "the password is postgres; use postgresql://postgres:postgres@db/app"}
    )
    assert redacting.loads_typed((kind, data)) == {
        "note": "the password is ***; use postgresql://***:***@db/app"
    }


def test_savers_made_from_settings_write_through_the_redacting_serializer(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm="off", api_keys={"OPENAI_API_KEY": SecretStr(BARE_KEY)})
    for option in ("sqlite", "memory"):
        graph = build_graph(registry=registry_with(), settings=settings, checkpointer=option)
        serde = graph.checkpointer.serde  # type: ignore[union-attr]
        assert isinstance(serde, RedactingSerializer) and BARE_KEY in serde.secrets


def test_settings_redactor_knows_the_keys_and_url_passwords(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        api_keys={"OPENAI_API_KEY": SecretStr(BARE_KEY), "FEATURE_TOKEN": SecretStr("true")},
        postgres_url="postgresql://u:p@ss@db/app",
        base_url="https://proxy:pr0xy-pass@models.example/v1",
    )
    redactor = settings.redactor()
    assert redactor is settings.redactor()  # built once per set of secrets
    text = f'{BARE_KEY} / could not translate host name "ss@db" / pr0xy-pass / true'
    assert redactor.redact(text) == '*** / could not translate host name "***" / *** / true'


def test_the_cli_logs_through_a_redacting_handler_while_it_runs(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    with redacted_logging(Redactor([BARE_KEY])):
        logging.getLogger("some.library").warning("retrying with %s and Bearer %s", BARE_KEY, SHAPED_KEY)
    err = capsys.readouterr().err
    assert err.count("some.library: WARNING: retrying with *** and Bearer ***") == 1
    assert BARE_KEY not in err and SHAPED_KEY not in err
    assert root.handlers == before  # as it was
    assert not any(f for h in root.handlers for f in h.filters if type(f).__name__ == "RedactingFilter")


def test_a_verbose_traceback_is_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import graph.cli

    def boom(_args: Any) -> int:
        raise RuntimeError(f"upstream said: api_key={BARE_KEY}, Authorization: Bearer {SHAPED_KEY}")

    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(graph.cli, "cmd_validate", boom)
    assert main(["validate", "-v"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: upstream said: api_key=***, Authorization: Bearer ***" in err
    assert BARE_KEY not in err and SHAPED_KEY not in err


def test_stored_checkpoints_are_redacted_in_postgres_too(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """PostgresSaver keeps string channels inline, outside the serializer: they are redacted too."""
    pg_url = str(request.getfixturevalue("fresh_pg_url"))  # a fresh database (or a skip saying why not)
    settings = Settings(
        data_dir=tmp_path, llm="off", postgres_url=pg_url, api_keys={"OPENAI_API_KEY": SecretStr(BARE_KEY)}
    )
    registry = registry_with({**LEAKY, "options": {"key": BARE_KEY}})
    graph = build_graph(registry=registry, settings=settings, checkpointer="postgres")
    try:
        config = {"configurable": {"thread_id": "pg-leaky"}}
        graph.invoke({"messages": [HumanMessage(f"show the service token {BARE_KEY}")]}, config)
        import psycopg

        with psycopg.connect(pg_url) as conn:
            dumped = [
                str(row)
                for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
                for row in conn.execute(f"SELECT * FROM {table}").fetchall()
            ]
        assert dumped and not any(BARE_KEY in row for row in dumped)
        assert any("***" in row for row in dumped)
    finally:
        graph.checkpointer.close()  # type: ignore[union-attr]
