"""YAML with line numbers: a registry error names the file, the line, the field and the problem."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a registry."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class LineMap:
    """Line of every key and list item, by path; lookups fall back to the nearest parent."""

    def __init__(self) -> None:
        self._lines: dict[Path_, int] = {(): 1}

    def record(self, path: Path_, line: int) -> None:
        self._lines.setdefault(path, line)

    def line(self, path: Path_) -> int:
        while path not in self._lines:
            path = path[:-1]
        return self._lines[path]


def load_yaml(text: str, file: str) -> tuple[Any, LineMap, list[Problem]]:
    """Parse YAML safely; report syntax errors and duplicate keys as problems, not exceptions."""
    lines = LineMap()
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines, [Problem(file, 1, "", "the file is empty")]
        problems: list[Problem] = []
        _walk(node, (), lines, problems, file)
        return loader.construct_document(node), lines, problems
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        return None, lines, [Problem(file, line, "", f"invalid YAML: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, lines, [Problem(file, None, "", f"invalid YAML: {exc}")]
    finally:
        loader.dispose()


def _walk(node: yaml.Node, path: Path_, lines: LineMap, problems: list[Problem], file: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            if key in seen:
                problems.append(
                    Problem(file, key_node.start_mark.line + 1, format_path(child), "duplicate key")
                )
            seen.add(key)
            lines.record(child, key_node.start_mark.line + 1)
            _walk(value_node, child, lines, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines.record(child, item.start_mark.line + 1)
            _walk(item, child, lines, problems, file)
