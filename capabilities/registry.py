"""Load, validate and resolve registry.yaml into a `Registry` value.

A registry is a plain value passed to `build_graph(...)`: no global state, so two graphs with
different registries live in one process.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from capabilities.base import Capability
from capabilities.guides import ClassifierGuide, OrchestratorGuide
from capabilities.schema import ApprovalPolicy, CapabilitySpec, RegistryFile
from capabilities.yaml_source import LineMap, Problem, format_path, load_yaml
from graph.limits import RetryPolicy

DEFAULT_REGISTRY = Path(__file__).resolve().parent.parent / "registry.yaml"


class RegistryError(ValueError):
    """Every problem found in a registry, each with file, line, field and message."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid registry:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class CapabilityInfo:
    """A registered capability: its instance and the resolved (YAML over class) description."""

    name: str
    instance: Capability
    description: str
    provides: tuple[str, ...]
    requires: tuple[str, ...]
    always_active: bool
    terminal: bool
    classifier_guide: ClassifierGuide
    orchestrator_guide: OrchestratorGuide
    approval: ApprovalPolicy
    timeout: float
    retry: RetryPolicy


@dataclass(frozen=True)
class Registry:
    """A validated registry: the file's settings plus resolved capabilities."""

    spec: RegistryFile
    capabilities: Mapping[str, CapabilityInfo]
    source: str = "<registry>"

    def __iter__(self) -> Iterator[CapabilityInfo]:
        return iter(self.capabilities.values())

    def __getitem__(self, name: str) -> CapabilityInfo:
        return self.capabilities[name]

    def __contains__(self, name: object) -> bool:
        return name in self.capabilities

    @property
    def routable(self) -> list[CapabilityInfo]:
        """Capabilities the classifier scores (not always-active, not terminal)."""
        return [c for c in self if not c.always_active and not c.terminal]

    def providers(self, key: str) -> list[str]:
        return [c.name for c in self if key in c.provides]

    def allowed(self, name: str) -> bool:
        allow = self.spec.policy.allowed_capabilities
        return name in self.capabilities and (allow is None or name in allow)

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> Registry:
        """Load and validate a registry file; raise `RegistryError` listing every problem."""
        file = Path(path) if path is not None else DEFAULT_REGISTRY
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise RegistryError([Problem(str(file), None, "", f"cannot read: {exc.strerror}")]) from exc
        return cls.from_text(text, source=str(file))

    @classmethod
    def from_text(cls, text: str, *, source: str = "<string>") -> Registry:
        data, lines, problems = load_yaml(text, source)
        if problems:
            raise RegistryError(problems)
        return cls.from_dict(data, source=source, lines=lines)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<dict>", lines: LineMap | None = None) -> Registry:
        """Validate a registry given as Python data (as the YAML would parse)."""
        lines = lines or LineMap()
        if not isinstance(data, dict):
            raise RegistryError([Problem(source, 1, "", "the top level must be a mapping of settings")])
        try:
            spec = RegistryFile.model_validate(data)
        except ValidationError as exc:
            raise RegistryError(_pydantic_problems(exc, source, lines)) from None
        capabilities, problems = _resolve(spec, source, lines)
        if problems:
            raise RegistryError(problems)
        return cls(spec=spec, capabilities=capabilities, source=source)


def _pydantic_problems(exc: ValidationError, source: str, lines: LineMap) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            message = "unknown key"
        elif kind == "missing":
            message = "missing required field"
        else:
            message = f"{err['msg']} (got {err.get('input')!r})" if "input" in err else err["msg"]
            if kind.endswith("_type") or kind.endswith("_parsing"):
                message = f"wrong type: {message}"
        problems.append(Problem(source, lines.line(loc), format_path(loc), message))
    return problems


def _resolve(
    spec: RegistryFile, source: str, lines: LineMap
) -> tuple[dict[str, CapabilityInfo], list[Problem]]:
    problems: list[Problem] = []

    def problem(path: tuple[str | int, ...], message: str) -> None:
        problems.append(Problem(source, lines.line(path), format_path(path), message))

    infos: dict[str, CapabilityInfo] = {}
    index_of: dict[str, int] = {}
    for i, entry in enumerate(spec.capabilities):
        if not entry.enabled:
            continue
        if entry.name in index_of:
            problem(("capabilities", i, "name"), f"duplicate capability {entry.name!r}")
            continue
        index_of[entry.name] = i
        cls_or_error = _import_class(entry.class_path)
        if isinstance(cls_or_error, str):
            problem(("capabilities", i, "class"), cls_or_error)
            continue
        try:
            instance = cls_or_error(entry.options)
        except Exception as exc:
            problem(("capabilities", i, "options"), f"the class rejected its options: {exc}")
            continue
        infos[entry.name] = _info(entry, instance, spec)

    for name, info in infos.items():
        i = index_of[name]
        guide = info.classifier_guide
        if not info.always_active and not info.terminal and not guide.positives:
            where = "classifier_guide" if spec.capabilities[i].classifier_guide else "class"
            path: tuple[str | int, ...] = ("capabilities", i, "classifier_guide", "examples")
            problem(
                path if where == "classifier_guide" else ("capabilities", i, "name"),
                "the classifier guide has no (positive) examples",
            )
        for j, key in enumerate(info.requires):
            if not any(key in other.provides for other in infos.values() if other.name != name):
                problem(("capabilities", i, "requires", j), f"no capability provides {key!r}")

    cycle = _find_cycle(infos)
    if cycle:
        problem(("capabilities", index_of[cycle[0]], "requires"), "dependency cycle: " + " -> ".join(cycle))

    for j, name in enumerate(spec.policy.allowed_capabilities or []):
        if name not in infos:
            problem(("policy", "allowed_capabilities", j), f"unknown capability {name!r}")
    return infos, problems


def _import_class(path: str) -> type[Capability] | str:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return f"cannot import module {module_name!r}: {exc}"
    cls = getattr(module, attr, None)
    if cls is None:
        return f"module {module_name!r} has no attribute {attr!r}"
    if not (isinstance(cls, type) and issubclass(cls, Capability)):
        return f"{path} is not a subclass of capabilities.base.Capability"
    return cls


def _info(entry: CapabilitySpec, instance: Capability, spec: RegistryFile) -> CapabilityInfo:
    cls = type(instance)
    base_retry = spec.limits.retry_policy()
    retry = base_retry._replace(**entry.retry.model_dump(exclude_none=True)) if entry.retry else base_retry
    return CapabilityInfo(
        name=entry.name,
        instance=instance,
        description=entry.description or cls.description or entry.name,
        provides=tuple(entry.provides if entry.provides is not None else cls.provides),
        requires=tuple(entry.requires if entry.requires is not None else cls.requires),
        always_active=entry.always_active if entry.always_active is not None else cls.always_active,
        terminal=cls.terminal,
        classifier_guide=entry.classifier_guide or cls.classifier_guide or ClassifierGuide(),
        orchestrator_guide=entry.orchestrator_guide or cls.orchestrator_guide or OrchestratorGuide(),
        approval=entry.approval,
        timeout=entry.timeout,
        retry=retry,
    )


def _find_cycle(infos: Mapping[str, CapabilityInfo]) -> list[str] | None:
    """A dependency cycle through requires -> provides edges, as a list of names, or None."""
    edges = {
        name: sorted(
            {p for key in info.requires for p, o in infos.items() if key in o.provides and p != name}
        )
        for name, info in infos.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for name in sorted(edges):
        if name not in state and (found := visit(name)):
            return found
    return None
