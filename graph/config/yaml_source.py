"""YAML with line numbers: a registry error names the file, the line, the field and the problem.

A registry is read from a file anyone may hand to `routegraph validate`, so hostile documents are
refused as problems, quickly, before anything walks them: more than `MAX_TEXT_CHARS` of text,
nesting deeper than `MAX_DEPTH`, or aliases that expand to more than `MAX_VALUES` values (a "billion
laughs" document is a few hundred bytes that pydantic would take hours to validate).
"""

from __future__ import annotations

from typing import Any

import yaml

from graph.errors import Problem, RegistryError

Path_ = tuple[str | int, ...]

MAX_TEXT_CHARS = 1_048_576
"""The longest registry accepted, in characters (a real one is a few kilobytes; parsing a megabyte
of YAML takes PyYAML about two seconds)."""
MAX_DEPTH = 64
"""The deepest nesting of mappings and lists accepted (a registry needs about six levels)."""
MAX_VALUES = 100_000
"""The most values a document may hold once its aliases are expanded."""


def format_path(path: Path_) -> str:
    """`("capabilities", 2, "classifier_guide")` -> `capabilities[2].classifier_guide`."""
    out = ""
    for part in path:
        if part == "[key]":  # pydantic's marker for an invalid mapping key: the key is the part before
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class LineMap:
    """Line of every key and list item, by path; lookups fall back to the nearest parent.

    A map made with `known=False` (data that did not come from a YAML text) knows no lines.
    """

    def __init__(self, *, known: bool = True) -> None:
        self._lines: dict[Path_, int] = {(): 1} if known else {}

    def record(self, path: Path_, line: int) -> None:
        self._lines.setdefault(path, line)

    def line(self, path: Path_) -> int | None:
        while path not in self._lines:
            if not path:
                return None
            path = path[:-1]
        return self._lines[path]


def load_yaml(text: str, file: str) -> tuple[Any, LineMap, list[Problem]]:
    """Parse YAML safely; report syntax errors and duplicate keys as problems, not exceptions.

    The data is None when the text could not be parsed (or is empty); duplicate keys are
    reported but the data (the last value wins, as in PyYAML) is still returned.
    """
    lines = LineMap()
    if len(text) > MAX_TEXT_CHARS:
        message = f"the text is too long: {len(text):,} characters (a registry is at most {MAX_TEXT_CHARS:,})"
        return None, lines, [Problem(file, None, "", message)]
    last_line = max(1, len(text.splitlines()))
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a control character: the reader refuses the whole text
        message = f"invalid YAML: control character #x{exc.character:04x} is not allowed"
        return None, lines, [Problem(file, text.count("\n", 0, exc.position) + 1, "", message)]
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines, [Problem(file, 1, "", "the file is empty (expected a mapping of settings)")]
        _check_size(node, file)
        problems: list[Problem] = []
        _walk(node, (), lines, problems, file, set())
        return loader.construct_document(node), lines, problems
    except RegistryError as exc:  # refused as a whole by `_check_size`
        return None, lines, exc.problems
    except RecursionError:  # PyYAML composes nested collections recursively
        message = f"invalid YAML: nested too deeply (a registry is at most {MAX_DEPTH} levels deep)"
        return None, lines, [Problem(file, None, "", message)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # A problem found at the end of the stream is reported on the last line of the text.
        where = min(mark.line + 1, last_line) if mark else None
        return None, lines, [Problem(file, where, "", f"invalid YAML: {_describe(exc, where)}")]
    except yaml.YAMLError as exc:
        return None, lines, [Problem(file, None, "", f"invalid YAML: {exc}")]
    finally:
        loader.dispose()


def _check_size(root: yaml.Node, file: str) -> None:
    """Raise `RegistryError` when the document nests deeper than `MAX_DEPTH`, holds more than
    `MAX_VALUES` values with its aliases expanded (each shared node is counted once per use, and
    sized once: linear in the document's own size), or holds itself through an alias."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def refuse(node: yaml.Node, message: str) -> RegistryError:
        return RegistryError([Problem(file, node.start_mark.line + 1, "", message)])

    def size(node: yaml.Node, depth: int) -> int:
        if not isinstance(node, yaml.CollectionNode):
            return 1
        if id(node) in open_nodes:
            raise refuse(node, "an alias (`*name`) refers to a collection that contains it")
        if depth > MAX_DEPTH:
            raise refuse(node, f"nested more than {MAX_DEPTH} levels deep")
        if id(node) in sizes:
            return sizes[id(node)]
        open_nodes.add(id(node))
        children: list[yaml.Node] = (
            [part for pair in node.value for part in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        total = 1 + sum(size(child, depth + 1) for child in children)
        if total > MAX_VALUES:
            raise refuse(
                node,
                f"this holds more than {MAX_VALUES:,} values, counting every use of an alias (`*name`) "
                "in full: refused (a whole registry holds a few hundred)",
            )
        open_nodes.discard(id(node))
        sizes[id(node)] = total
        return total

    size(root, 1)


def _describe(exc: yaml.MarkedYAMLError, line: int | None) -> str:
    """PyYAML's context and problem as one sentence: `while parsing X (started on line N), expected Y`."""
    context = exc.context or ""
    if context and exc.context_mark and exc.context_mark.line + 1 != line:
        context += f" (started on line {exc.context_mark.line + 1})"
    parts = [p for p in (context, exc.problem) if p]
    message = ", ".join(parts) if parts else str(exc)
    if "<block end>" in message:  # PyYAML's words for a line indented differently from its siblings
        message += " (check the indentation of this line)"
    return message


def _walk(
    node: yaml.Node, path: Path_, lines: LineMap, problems: list[Problem], file: str, seen_nodes: set[int]
) -> None:
    # A node reached again through an alias (`*name`) is walked once: its lines are those of the
    # anchor, and a recursive or exponentially aliased document cannot blow up.
    if id(node) in seen_nodes:
        return
    if isinstance(node, yaml.CollectionNode):
        seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    Problem(
                        file, line, format_path(child), f"duplicate key (first given on line {seen[key]})"
                    )
                )
            else:
                seen[key] = line
            lines.record(child, line)
            _walk(value_node, child, lines, problems, file, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines.record(child, item.start_mark.line + 1)
            _walk(item, child, lines, problems, file, seen_nodes)
