"""Every notebook in notebooks/ runs top to bottom, headless and offline, and is committed without outputs.

The notebooks teach; they do not test themselves. What they must show is checked here, on the
executed notebook's outputs: the lines each one prints (`SHOWN`), a figure where one is drawn, and
no warning text (tqdm's "IProgress not found" included).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
OFFLINE_UNSET = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ROUTEGRAPH_BASE_URL",
    "ROUTEGRAPH_CHECKPOINT",
    "ROUTEGRAPH_REGISTRY",
    "MPLBACKEND",  # the kernel's inline backend: figures become image outputs, no display needed
)


SHOWN: dict[str, list[str]] = {
    "01_quickstart": ["12*7 = 84.", "in Asia/Tokyo", "stop_reason: success", "Europe/Paris"],
    "02_add_a_capability": [
        "'result': 26.2188",
        "has no attribute 'UnitConvertor'",
        "answer: 42.195 km = 26.2188 mi.",
        "72 °F = 22.2222 °C.",
        "excluded: ['unit_converter'] reclassifications: 1",
        "stop_reason: clarify",
    ],
    "03_routing_evaluation": [
        "248 rows",
        "in_scope_accuracy",
        "most confused (true label -> predicted instead, count):",
        "expected calibration error",
        "misrouted, for example:",
    ],
    "04_human_in_the_loop": [
        "Refund $125.00 to Jane Cooper (C-1001)",
        "stop_reason: None (paused, not finished)",
        "refunds written so far: []",
        "denied, so nothing was changed",
        "refund step: denied",
        "refunds: [] still waiting: []",
        "Refunded $125.00 (approved) to Jane Cooper for duplicate charge CH-2003",
        "refunds: [('CH-2003', 12500)]",
        "Refund $2,700.00 to Priya Natarajan (C-1003) for charge CH-2023",
        "Refunded $2,700.00 (approved) to Priya Natarajan",
        "refunds: [('CH-2023', 270000)] next: ()",
    ],
    "05_operations_loop": [
        "demo traffic: 120 runs, encoder lexical, experiment threshold-demo",
        "routing accuracy against feedback:",
        "Held-out routing accuracy: before",
        "improves: ",
        "difference ",
        "Verdict: overlay vs control:",
    ],
}
"""Per notebook, text its executed outputs must contain (what the notebook teaches, as it prints it)."""
DRAWS = {"01_quickstart", "03_routing_evaluation", "05_operations_loop"}
WARNINGS = ("Warning:", "IProgress not found", "Traceback")


def output_text(outputs: list[Any]) -> str:
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "text/plain" in output.get("data", {}):
            parts.append(output["data"]["text/plain"])
    return "".join(parts)


def code_cells(notebook: Any) -> list[Any]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_notebooks_are_all_found_and_listed() -> None:
    assert len(NOTEBOOKS) >= 4
    assert sorted(SHOWN) == [p.stem for p in NOTEBOOKS], "every notebook says what it must show"
    listed = (ROOT / "notebooks" / "README.md").read_text(encoding="utf-8")
    missing = [path.name for path in NOTEBOOKS if f"`{path.name}`" not in listed]
    assert not missing, f"notebooks/README.md does not describe {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        i for i, cell in enumerate(code_cells(notebook)) if cell.get("outputs") or cell.get("execution_count")
    ]
    assert not dirty, f"{path.name}: code cells {dirty} have outputs or execution counts: clear them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits this environment: no model, and nothing written to the user's data directory
    # (ROUTEGRAPH_CACHE_DIR stays the session's shared cache, so MiniLM is fine-tuned once per run).
    for name in OFFLINE_UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROUTEGRAPH_LLM", "off")
    monkeypatch.setenv("ROUTEGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    # A notebook's scratch directories go here, and must be gone when it ends: a user who runs it
    # ten times should not find ten copies of its demo data in /tmp.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT)}},
    )
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
    outputs = [o for cell in code_cells(notebook) for o in cell.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, "\n".join(f"{e['ename']}: {e['evalue']}" for e in errors)
    if path.stem in DRAWS:
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} drew no figure"
    text = output_text(outputs)
    missing = [shown for shown in SHOWN[path.stem] if shown not in text]
    assert not missing, f"{path.name} did not show {missing}:\n{text[-3000:]}"
    warned = [w for w in WARNINGS if w in text]
    assert not warned, f"{path.name} printed {warned}:\n{text[-3000:]}"
    left = sorted(p.name for p in scratch.iterdir() if p.name.startswith("routegraph"))
    assert not left, f"{path.name} left its scratch directories behind: {left}"
    print(f"{path.name}: {seconds:.1f} s")
