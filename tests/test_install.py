"""routegraph installed as a package (a wheel, not editable) works outside a source checkout.

A fresh virtualenv gets the wheel built from a copy of the sources; its dependencies come from the
test's own environment through a `.pth` line (a plain path: the editable finder there is not
activated, so only the installed copy of routegraph can be imported). Then, from an unrelated
directory: `routegraph validate`, `routegraph ask` and `routegraph serve`, as a user would run them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_server import free_port

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "registry.yaml", "graph", "nodes", "capabilities", "evals")
"""What the build needs (pyproject.toml's packages, its readme and the registry the link points to)."""


def run(*command: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=300, check=False, **kwargs
    )
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A virtualenv with the routegraph wheel installed; its `site-packages` and `bin`."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    dist = tmp / "dist"
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check")
    run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", dist, source)
    (wheel,) = dist.glob("routegraph-*.whl")
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    run(*pip, "--python", python, "install", "--no-deps", "--no-index", "-q", wheel)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "zz-routegraph-test-dependencies.pth").write_text("".join(f"{p}\n" for p in ours))
    yield {"wheel": wheel, "site": site, "bin": python.parent}


@pytest.fixture
def user_env(tmp_path: Path, shared_model_cache: Path) -> dict[str, str]:
    """A user's environment: no PYTHONPATH, no model, data in a directory of its own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI", "ROUTEGRAPH", "PYTHON")) and k != "VIRTUAL_ENV"
    }
    env["ROUTEGRAPH_DATA_DIR"] = str(tmp_path / "data")
    env["ROUTEGRAPH_CACHE_DIR"] = str(shared_model_cache)  # the fine-tuned MiniLM of this test run
    env.update(LANGGRAPH_CLI_NO_ANALYTICS="1", LANGGRAPH_NO_VERSION_CHECK="true", LANGSMITH_TRACING="false")
    return env


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """An unrelated working directory."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    return path


def test_the_wheel_ships_the_registry_and_the_support_data(installed: dict[str, Path]) -> None:
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = set(wheel.namelist())
        assert wheel.read("capabilities/registry.yaml") == (ROOT / "registry.yaml").read_bytes()
    assert "graph/py.typed" in names
    data = ROOT / "capabilities" / "support_desk" / "data"
    shipped = {str(p.relative_to(ROOT)) for p in data.rglob("*") if p.is_file()}
    assert shipped and shipped <= names, shipped - names


def test_the_installed_copy_is_what_runs(
    installed: dict[str, Path], user_env: dict[str, str], elsewhere: Path
) -> None:
    code = (
        "import capabilities, evals, graph, nodes; from graph import default_registry; "
        "print(*[m.__file__ for m in (graph, nodes, capabilities, evals)], default_registry(), sep='\\n')"
    )
    done = run(installed["bin"] / "python", "-c", code, cwd=elsewhere, env=user_env)
    paths = [Path(line) for line in done.stdout.splitlines()]
    assert len(paths) == 5 and all(p.is_relative_to(installed["site"]) for p in paths), paths
    assert paths[-1].read_bytes() == (ROOT / "registry.yaml").read_bytes()


def test_validate_and_ask(installed: dict[str, Path], user_env: dict[str, str], elsewhere: Path) -> None:
    routegraph = installed["bin"] / "routegraph"
    done = run(routegraph, "validate", cwd=elsewhere, env=user_env)
    registry = installed["site"] / "capabilities" / "registry.yaml"
    assert done.stdout.startswith(f"{registry}: valid, "), done.stdout

    user_env["ROUTEGRAPH_REGISTRY"] = str(elsewhere / "missing.yaml")
    refused = subprocess.run(
        [routegraph, "validate"], capture_output=True, text=True, cwd=elsewhere, env=user_env, timeout=120
    )
    assert refused.returncode == 2 and "missing.yaml: cannot read the file" in refused.stderr
    del user_env["ROUTEGRAPH_REGISTRY"]

    done = run(
        routegraph, "ask", "What is 12*7 and what time is it in Tokyo?", "--json", cwd=elsewhere, env=user_env
    )
    result = json.loads(done.stdout)
    assert result["stop_reason"] == "success", result
    assert "84" in result["answer"] and "Asia/Tokyo" in result["answer"]
    assert (Path(user_env["ROUTEGRAPH_DATA_DIR"]) / "checkpoints.sqlite").exists()


def test_serve(installed: dict[str, Path], user_env: dict[str, str], elsewhere: Path, tmp_path: Path) -> None:
    pytest.importorskip("langgraph_api", reason="langgraph-cli[inmem] is not installed")
    port = free_port()
    assert port != 2024
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [installed["bin"] / "routegraph", "serve", "--port", str(port)],
            cwd=elsewhere,
            env=user_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while not _ok(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("routegraph serve did not start:\n" + log_path.read_text()[-3000:])
                time.sleep(0.3)
            config = json.loads(
                (Path(user_env["ROUTEGRAPH_DATA_DIR"]) / "server" / "langgraph.json").read_text()
            )
            app = installed["site"] / "graph" / "app.py"
            assert config["graphs"] == {"routegraph": f"{app}:graph"}
            run_input = {"messages": [{"role": "user", "content": "what is 6*7"}]}
            state = _post(url + "/runs/wait", {"assistant_id": "routegraph", "input": run_input})
            assert "42" in state["messages"][-1]["content"], state
        finally:
            children = _children(proc.pid)
            proc.send_signal(signal.SIGTERM)  # the server, a child of `routegraph serve`, stops with it
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            deadline = time.monotonic() + 15
            while _ok(url) and time.monotonic() < deadline:
                time.sleep(0.3)
            outlived = _ok(url)
            for pid in children:  # never leave a server behind, whatever happened
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
    assert not outlived, "the server outlived `routegraph serve`"


def _children(pid: int) -> list[int]:
    """The child processes of `pid` (Linux; elsewhere none are known)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/ok", timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=120) as reply:
        return json.loads(reply.read())
