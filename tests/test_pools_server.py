"""`routegraph pools ...` against a live `routegraph serve` (issue 22, item 3): the real server on a
free local port (graph/app.py mounts /pools), driven through the command line as a user would:
create an instance from a template, list it, scale a capability, retire an instance, and the
errors a user can make (an unknown template, retiring twice).

The server is a subprocess, fully offline, with a test registry (lexical encoder) that declares an
`echo` capability and a template of it; the CLI is run as `python -m graph.cli pools ... --url`.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BASE, guide
from tests.test_server import free_port

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = [{"name": "echo_fast", "capability": "echo", "options": {"label": "F"}, "capacity": 2}]


def _env(tmp: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ROUTEGRAPH"))},
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "true",
        "LANGSMITH_TRACING": "false",
        "ROUTEGRAPH_DATA_DIR": str(tmp / "data"),
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    pytest.importorskip(
        "langgraph_api", reason="langgraph-cli[inmem] is not installed (./scripts/setup installs it)"
    )
    tmp = tmp_path_factory.mktemp("pools-server")
    registry = copy.deepcopy(BASE)
    registry["capabilities"].append(
        {"name": "echo", "class": "tests.test_pools:Variant", "classifier_guide": guide("echo this back")}
    )
    registry["templates"] = TEMPLATES
    (tmp / "registry.yaml").write_text(yaml.safe_dump(registry), encoding="utf-8")
    port = free_port()
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "graph.cli", "serve", "--port", str(port), "--registry", "registry.yaml"],
        cwd=tmp,
        env=_env(tmp),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/pools", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "routegraph serve did not start:\n" + (tmp / "server.log").read_text()[-3000:]
                )
            time.sleep(0.3)
        yield {"url": url, "tmp": tmp}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def pools(server: dict[str, Any], *args: str, as_json: bool = True) -> tuple[int, Any, str]:
    """Run `routegraph pools ARGS --url URL [--json]`: (exit code, parsed stdout, stderr)."""
    command = [sys.executable, "-m", "graph.cli", "pools", *args, "--url", server["url"]]
    done = subprocess.run(
        command + (["--json"] if as_json else []),
        cwd=server["tmp"],
        env=_env(server["tmp"]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = json.loads(done.stdout) if as_json and done.stdout.strip() else done.stdout
    return done.returncode, out, done.stderr


def instances(listed: dict[str, Any], capability: str) -> dict[str, str]:
    pool = next(p for p in listed["pools"] if p["capability"] == capability)
    return {i["name"]: i["health"] for i in pool["instances"]}


def test_the_cli_creates_lists_scales_and_retires_instances_on_a_live_server(server: dict[str, Any]) -> None:
    code, listed, _ = pools(server, "list")
    assert code == 0 and "note" not in listed  # the live server answered, not the registry fallback
    before = instances(listed, "echo")
    assert before and all(h == "healthy" for h in before.values())

    code, made, _ = pools(
        server, "create", "echo_fast", "--as", "fast-a", "--capacity", "3", "--option", "label=X"
    )
    assert code == 0 and made["instance"]["name"] == "fast-a" and made["instance"]["capacity"] == 3
    code, listed, _ = pools(server, "list")
    assert instances(listed, "echo").get("fast-a") == "healthy"

    code, scaled, _ = pools(server, "scale", "echo", "3")
    assert code == 0 and len(scaled["instances"]) == 3
    code, listed, _ = pools(server, "list")
    live = [n for n, h in instances(listed, "echo").items() if h != "retired"]
    assert len(live) >= 3

    code, retired, _ = pools(server, "retire", "fast-a")
    assert code == 0 and retired["instance"]["health"] in ("retiring", "retired")
    code, listed, _ = pools(server, "list")
    assert instances(listed, "echo").get("fast-a", "retired") in ("retiring", "retired")

    code, advice, _ = pools(server, "advise")
    assert code == 0 and isinstance(advice["advice"], list)


def test_the_cli_reports_a_users_mistakes_with_an_exit_code_and_no_traceback(server: dict[str, Any]) -> None:
    code, out, err = pools(server, "create", "nope", as_json=False)
    assert code == 2 and "unknown template 'nope'" in out and "Traceback" not in out + err
    pools(server, "create", "echo_fast", "--as", "fast-b")
    assert pools(server, "retire", "fast-b")[0] == 0
    code, out, err = pools(server, "retire", "fast-b", as_json=False)
    assert code == 2 and out.startswith("error:") and "Traceback" not in out + err
    code, _, err = pools(server, "scale", "echo", as_json=False)
    assert code == 2 and "needs a name and a number" in err


def test_the_cli_says_when_no_server_answers(tmp_path: Path) -> None:
    down = {"url": f"http://127.0.0.1:{free_port()}", "tmp": tmp_path}
    code, _, err = pools(down, "scale", "echo", "2", as_json=False)
    assert code == 1 and "no server answers" in err and "Traceback" not in err
