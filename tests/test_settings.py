"""Settings are explicit: read from the environment once, by the entry points; no secret in a repr.

Also: every command honours `ROUTEGRAPH_REGISTRY` (with `--registry` over it), and capabilities get
the data directory from their run, not from the environment.
"""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import pytest
import yaml
from langchain_core.messages import HumanMessage
from pydantic import SecretStr

from graph.cli import main, server_config, server_environment
from graph.config.schema import ModelConfig, ModelsConfig
from graph.config.settings import Settings, redact_url
from graph.models import make_chat_model
from tests.conftest import BASE

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-secret-0123456789abcdef"
PASSWORD = "hunter2-pg-password"


def test_no_secret_in_a_repr_or_a_dump(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "ROUTEGRAPH_DATA_DIR": str(tmp_path),
            "OPENAI_API_KEY": SECRET,
            "ROUTEGRAPH_POSTGRES_URL": f"postgresql://app:{PASSWORD}@db.internal:5432/routegraph",
        }
    )
    shown = [
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        json.dumps(settings.model_dump(), default=str),
    ]
    for text in shown:
        assert SECRET not in text and PASSWORD not in text, text
    assert settings.model_dump()["postgres_url"] == "postgresql://app:***@db.internal:5432/routegraph"
    assert "api_keys" not in settings.model_dump()
    # ... while the values themselves are there for the code that needs them.
    assert settings.api_key("OPENAI_API_KEY") == SECRET
    assert settings.postgres_url == f"postgresql://app:{PASSWORD}@db.internal:5432/routegraph"
    assert redact_url(f"host=db password={PASSWORD} dbname=x") == "host=db password=*** dbname=x"


def test_only_key_variables_are_kept(tmp_path: Path) -> None:
    env = {
        "ROUTEGRAPH_DATA_DIR": str(tmp_path),
        "OPENAI_API_KEY": "a",
        "VLLM_API_KEY": "b",
        "HF_TOKEN": "c",
        "EMPTY_KEY": "",
        "HOME": "/home/someone",
        "PATH": "/usr/bin",
        "AWS_SECRET": "not a key name",
    }
    settings = Settings.from_env(env)
    assert set(settings.api_keys) == {"OPENAI_API_KEY", "VLLM_API_KEY", "HF_TOKEN"}
    assert settings.api_key("AWS_SECRET") is None


def test_from_env_reads_the_mapping_it_is_given_and_offline_reads_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ROUTEGRAPH_CACHE_DIR", str(tmp_path / "env-cache"))
    monkeypatch.setenv("ROUTEGRAPH_REGISTRY", str(tmp_path / "env.yaml"))
    given = Settings.from_env({"ROUTEGRAPH_DATA_DIR": str(tmp_path)})
    assert given.api_keys == {} and given.cache == tmp_path / "cache" and given.registry is None
    offline = Settings.offline(tmp_path)
    assert offline.cache == tmp_path / "cache" and offline.api_keys == {} and offline.llm == "off"
    read = Settings.from_env()
    assert read.api_key("OPENAI_API_KEY") == SECRET
    assert read.registry == tmp_path / "env.yaml" and read.cache == tmp_path / "env-cache"


def test_a_key_enables_models_and_reaches_the_client(tmp_path: Path) -> None:
    models = ModelsConfig(default=ModelConfig(api_key_env="VLLM_API_KEY"))
    assert Settings.from_env({"VLLM_API_KEY": "k", "ROUTEGRAPH_DATA_DIR": str(tmp_path)}).llm_enabled(models)
    assert not Settings.from_env({"OPENAI_API_KEY": "k", "ROUTEGRAPH_DATA_DIR": str(tmp_path)}).llm_enabled(
        models
    )
    settings = Settings(data_dir=tmp_path, api_keys={"VLLM_API_KEY": SecretStr("vllm-key")})
    model = make_chat_model(ModelConfig(api_key_env="VLLM_API_KEY"), settings)
    assert model.openai_api_key.get_secret_value() == "vllm-key"
    with pytest.raises(ValueError, match="_KEY or _TOKEN"):
        make_chat_model(ModelConfig(api_key_env="MY_SECRET"), settings)


# Modules that may touch os.environ, and why. Everything else is given a Settings.
ENVIRONMENT_READERS = {
    "graph/config/settings.py": "Settings.from_env, the one reader",
    "graph/cli.py": "`routegraph serve` passes the environment on to the server process",
}


def test_no_other_module_reads_or_changes_the_environment() -> None:
    found = set()
    for package in ("graph", "nodes", "capabilities", "evals"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                touches = (
                    isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "putenv"}
                ) or (
                    isinstance(node, ast.ImportFrom)
                    and node.module == "os"
                    and any(a.name in {"environ", "getenv", "putenv"} for a in node.names)
                )
                if touches:
                    found.add(str(path.relative_to(ROOT)))
    assert found == set(ENVIRONMENT_READERS), sorted(found ^ set(ENVIRONMENT_READERS))


# --- ROUTEGRAPH_REGISTRY and --registry, in every command ---------------------------------------


@pytest.fixture
def lexical_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small registry (no weights), and a user environment without models."""
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ROUTEGRAPH_LLM", "off")
    monkeypatch.delenv("ROUTEGRAPH_REGISTRY", raising=False)
    path = tmp_path / "small.yaml"
    data = copy.deepcopy(BASE)
    data["capabilities"] = [c for c in data["capabilities"] if c["name"] != "clock"]
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_validate_honours_the_variable_and_the_argument_wins(
    lexical_registry: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ROUTEGRAPH_REGISTRY", str(lexical_registry))
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith(f"{lexical_registry}: valid, 3 capabilities")
    assert main(["validate", str(ROOT / "registry.yaml")]) == 0
    assert capsys.readouterr().out.startswith(f"{ROOT / 'registry.yaml'}: valid")
    monkeypatch.setenv("ROUTEGRAPH_REGISTRY", str(tmp_path / "missing.yaml"))
    assert main(["validate"]) == 2
    assert "missing.yaml: cannot read the file" in capsys.readouterr().err


def test_ask_honours_the_variable(
    lexical_registry: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROUTEGRAPH_REGISTRY", str(lexical_registry))
    assert main(["ask", "what is 6*7", "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {c["name"] for c in result["capabilities"]} == {"respond", "clarify", "calculator"}
    assert main(["threads", "list", "--json"]) == 0
    assert [row["thread_id"] for row in json.loads(capsys.readouterr().out)] == [result["thread_id"]]


def test_a_bad_setting_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ROUTEGRAPH_LLM", "sometimes")
    assert main(["validate"]) == 2
    assert "invalid setting llm" in capsys.readouterr().err


def test_serve_uses_the_checkout_config_here_and_absolute_paths(tmp_path: Path) -> None:
    settings = Settings.offline(Path("relative-data"), registry=Path("my.yaml"))
    config, cwd = server_config(settings)
    assert (config, cwd) == (ROOT / "langgraph.json", ROOT)  # a source checkout: the project's file
    env = server_environment(settings, {"OPENAI_API_KEY": "k", "ROUTEGRAPH_DATA_DIR": "relative-data"})
    assert env["ROUTEGRAPH_DATA_DIR"] == str(Path("relative-data").resolve())
    assert env["ROUTEGRAPH_REGISTRY"] == str(Path("my.yaml").resolve())
    assert env["OPENAI_API_KEY"] == "k" and env["LANGGRAPH_CLI_NO_ANALYTICS"] == "1"


def test_the_server_module_takes_its_settings_from_the_environment(
    lexical_registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib
    import sys

    import graph

    monkeypatch.setenv("ROUTEGRAPH_REGISTRY", str(lexical_registry))
    # A fresh import (the module builds its graph when imported); whatever was imported before is put back.
    before = sys.modules.pop("graph.app", None), graph.__dict__.pop("app", None)
    try:
        app = importlib.import_module("graph.app")
    finally:
        sys.modules.pop("graph.app", None)
        graph.__dict__.pop("app", None)
        if before[0] is not None:
            sys.modules["graph.app"], graph.__dict__["app"] = before
    assert app.settings.registry == lexical_registry
    assert "clock" not in app.registry and app.graph.checkpointer is None
    state = app.graph.invoke({"messages": [HumanMessage("what is 6*7")]})
    assert "42" in state["messages"][-1].content
