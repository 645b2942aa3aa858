"""The public face: what each package's `__init__` names, that it imports cheaply, and that user-facing
code (the notebooks) imports nothing else."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "graph",
    "graph.capability",
    "graph.config",
    "graph.pools",
    "graph.ops",
    "nodes",
    "capabilities",
    "capabilities.support_desk",
    "evals",
)
PUBLIC_IMPORTS_IN = [*sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ROOT / "README.md"]
"""User-facing code held to the public names: the notebooks and the README's Python examples."""


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_imports(package: str) -> None:
    module = importlib.import_module(package)
    names = module.__all__
    assert names == sorted(names), "keep __all__ sorted"
    for name in names:
        assert getattr(module, name) is not None, name
    assert set(names) <= set(dir(module))
    exports = getattr(module, "_EXPORTS", None)
    if exports is not None:
        assert set(exports) == set(names), "__all__ and the lazy exports differ"


def test_star_import_gives_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from graph import *", namespace)
    import graph

    assert set(namespace) - {"__builtins__"} == set(graph.__all__)
    assert namespace["build_graph"] is importlib.import_module("graph.builder").build_graph
    assert namespace["Settings"] is importlib.import_module("graph.config.settings").Settings


def test_unknown_names_are_attribute_errors() -> None:
    import graph

    with pytest.raises(AttributeError, match="no_such_name"):
        _ = graph.no_such_name  # type: ignore[attr-defined]
    from graph import errors  # a submodule is still a submodule

    assert errors.__name__ == "graph.errors"


def test_importing_the_packages_is_cheap() -> None:
    """The CLI's module lives in `graph`: `import graph` must not load LangGraph, torch or the encoders."""
    code = (
        "import sys, graph, graph.config, graph.ops, nodes, capabilities, capabilities.support_desk, evals;"
        "print(sorted(m for m in ('langgraph', 'langchain_core', 'torch', 'numpy', 'sentence_transformers',"
        " 'graph.builder', 'yaml') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"


def test_the_package_ships_its_types() -> None:
    assert (ROOT / "graph" / "py.typed").exists()


LAZY_FACES = {"graph", "graph.config", "graph.ops", "nodes", "capabilities", "capabilities.support_desk", "evals"}
"""Packages whose `__init__` names modules it does not import; `graph.capability` imports its API."""


def test_internal_modules_never_import_a_lazy_face() -> None:
    """`from graph import X` is for users: inside, it would run import cycles through the face."""
    offenders = []
    for package in ("graph", "nodes", "capabilities", "evals", "benchmarks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in LAZY_FACES:
                    offenders.append(f"{path.relative_to(ROOT)}: from {node.module} import ...")
    assert not offenders, offenders


def _project_imports(source: str) -> list[tuple[str, list[str]]]:
    roots = {p.split(".")[0] for p in PACKAGES}
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in roots:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.split(".")[0] in roots]
    return found


@pytest.mark.parametrize("path", PUBLIC_IMPORTS_IN, ids=[p.stem for p in PUBLIC_IMPORTS_IN])
def test_user_facing_code_imports_only_public_names(path: Path) -> None:
    if path.suffix == ".md":
        blocks = re.findall(
            r"^( *)```python\n(.*?)^ *```", path.read_text(encoding="utf-8"), flags=re.S | re.M
        )
        cells = [textwrap.dedent(code) for _, code in blocks]
    else:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        cells = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    imports = [i for cell in cells for i in _project_imports(cell)]
    assert imports, "the notebook imports routegraph somewhere"
    for module, names in imports:
        assert module in PACKAGES, f"{path.name}: {module} is not a public package"
        public = set(importlib.import_module(module).__all__)
        assert set(names) <= public, f"{path.name}: from {module} import {sorted(set(names) - public)}"
