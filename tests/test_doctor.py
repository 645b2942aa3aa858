"""`routegraph doctor`: one line per check, exit 0 when all pass, 1 on any failure; a real model
endpoint (a local HTTP server) and a dead one; the shipped registry's demo database."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from graph.cli import main
from graph.config.settings import Settings
from graph.ops.doctor import doctor, healthy
from tests.conftest import BASE

CHECKS = [
    "registry",
    "encoder",
    "background fine-tune",
    "checkpoints", "traces", "capability stores", "model endpoint"]


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(BASE))
    return path


@pytest.fixture
def models_server() -> Iterator[str]:
    """An OpenAI-compatible `/v1/models` on a local port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/v1/models":
                self.send_error(404)
                return
            body = json.dumps({"data": [{"id": "tiny-model"}, {"id": "other"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_doctor_passes_on_a_fresh_install(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path / "data"))
    assert main(["doctor", "--registry", str(registry)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(None, 1)[1].rsplit("  ", 1)[0].strip() for line in lines] == CHECKS
    status = {name: line.split()[0] for name, line in zip(CHECKS, lines, strict=True)}
    assert status == {
        **dict.fromkeys(CHECKS, "ok"),
        "capability stores": "skip",
        "model endpoint": "skip",
    }
    assert "schema v2, 0 traces" in lines[4] and "lexical" in lines[1]


def test_doctor_reports_the_last_background_fine_tune(registry: Path, tmp_path: Path) -> None:
    """A failed background fine-tune leaves the classifier on base weights: doctor fails and says
    why; a done one is ok; one whose worker died mid-way is reported as stopped."""
    from graph.classifier.deferred import Pending

    settings = Settings.offline(tmp_path, registry=registry)
    settings.cache.mkdir(parents=True, exist_ok=True)
    pending = Pending(settings.cache, "abc123")

    def finetune_check() -> tuple[str, str]:
        check = next(c for c in doctor(settings) if c.name == "background fine-tune")
        return check.status, check.detail

    assert finetune_check() == ("ok", "none started (the fine-tune is cached, or ran in the foreground)")
    pending.write_state(state="failed", error="OSError: No space left on device", attempts=1)
    status, detail = finetune_check()
    assert status == "fail" and "No space left on device" in detail and "routegraph prepare" in detail
    pending.write_state(state="running", pid=999999, error=None)  # no worker holds the lock
    status, detail = finetune_check()
    assert status == "fail" and "stopped before it finished" in detail
    pending.write_state(state="done", error=None)
    assert finetune_check()[0] == "ok"


def test_doctor_checks_a_configured_model_endpoint(
    registry: Path,
    tmp_path: Path,
    models_server: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ROUTEGRAPH_BASE_URL", models_server)
    assert main(["doctor", "--registry", str(registry), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    [endpoint] = [c for c in result["checks"] if c["name"] == "model endpoint"]
    assert endpoint["status"] == "ok" and "2 models (tiny-model, other)" in endpoint["detail"]
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    monkeypatch.setenv("ROUTEGRAPH_BASE_URL", dead)
    assert main(["doctor", "--registry", str(registry)]) == 1
    out = capsys.readouterr().out
    assert any(line.startswith("fail") and "model endpoint" in line for line in out.splitlines())


def test_doctor_fails_when_the_stores_cannot_open(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ROUTEGRAPH_CHECKPOINT", str(blocker / "checkpoints.sqlite"))
    assert main(["doctor", "--registry", str(registry)]) == 1
    lines = capsys.readouterr().out.splitlines()
    failed = {line.split(None, 1)[1].split("  ")[0] for line in lines if line.startswith("fail")}
    assert failed == {"checkpoints", "traces"}
    assert "Traceback" not in "\n".join(lines)


def test_doctor_fails_on_a_broken_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "registry.yaml"
    bad.write_text("version: 1\ncapabilities: []\n")
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ROUTEGRAPH_REGISTRY", str(bad))
    checks = doctor(Settings.from_env())
    assert checks[0].name == "registry" and checks[0].status == "fail" and not healthy(checks)


def test_doctor_checks_the_demo_database_of_the_shipped_registry(tmp_path: Path) -> None:
    checks = {c.name: c for c in doctor(Settings.offline(tmp_path), encoder=False)}
    stores = checks["capability stores"]
    assert stores.status == "ok" and str(tmp_path / "support.sqlite") in stores.detail
    assert "schema v" in stores.detail and "customers" in stores.detail
    assert (tmp_path / "support.sqlite").exists()
