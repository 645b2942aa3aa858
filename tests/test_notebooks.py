"""Every notebook in notebooks/ runs top to bottom, headless and offline, and is committed without outputs."""

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


def code_cells(notebook: Any) -> list[Any]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_notebooks_are_all_found_and_listed() -> None:
    assert len(NOTEBOOKS) >= 4
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
    if any("matplotlib" in cell.source for cell in code_cells(notebook)):
        assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} drew no figure"
    print(f"{path.name}: {seconds:.1f} s")
