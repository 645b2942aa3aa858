"""Load, validate and resolve registry.yaml into a `Registry` value.

A registry is a plain value passed to `build_graph(...)`: no global state, so two graphs with
different registries live in one process.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.resources
import importlib.util
import inspect
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from graph.capability.base import Capability
from graph.capability.guides import ClassifierGuide, GuideExample, OrchestratorGuide
from graph.config.labelled import LABELLED, expand
from graph.config.limits import Limits
from graph.config.messages import pydantic_problems
from graph.config.schema import ApprovalPolicy, BusinessRules, CapabilitySpec, PolicyConfig, RegistryFile
from graph.config.yaml_source import MAX_TEXT_CHARS, LineMap, Problem, format_path, load_yaml
from graph.errors import RegistryError
from graph.retry import RetryPolicy

_M = TypeVar("_M", bound=BaseModel)


LEARNED_SUFFIX = ".learned.yaml"
"""`routegraph learn --apply` writes its patch beside the registry as `<name>.learned.yaml`, an
overlay that `Registry.from_file` merges (delete the file to undo it)."""


def learned_file(registry_file: str | Path) -> Path:
    """The learned overlay that belongs to a registry file: `registry.yaml` -> `registry.learned.yaml`."""
    path = Path(registry_file)
    return path.with_name(path.stem + LEARNED_SUFFIX)


def merge_overlay(data: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`data` (a registry as YAML parses it) with `overlay`'s keys replacing its own: mappings merge
    key by key, anything else is replaced; `capabilities: {NAME: {key: value}}` replaces those keys
    of the capability named NAME. Raises ValueError on a capability the registry does not have."""
    merged: dict[str, Any] = dict(data)
    for key, value in overlay.items():
        if key == "capabilities" and isinstance(value, Mapping) and isinstance(merged.get(key), list):
            entries = list(merged.get("capabilities") or [])
            names = [e.get("name") if isinstance(e, Mapping) else None for e in entries]
            unknown = [n for n in value if n not in names]
            if unknown:
                raise ValueError(
                    f"the overlay names capabilities the registry does not have: {', '.join(unknown)}"
                )
            merged["capabilities"] = [
                {**e, **value[e["name"]]} if isinstance(e, Mapping) and e.get("name") in value else e
                for e in entries
            ]
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_overlay(merged[key], value)
        else:
            merged[key] = value
    return merged


def default_registry() -> Path:
    """The shipped application's registry: `registry.yaml` in the `capabilities` package (package
    data; in a source checkout, a link to the top-level file, so the path shown is that file)."""
    return Path(str(importlib.resources.files("capabilities").joinpath("registry.yaml"))).resolve()


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
    side_effects: bool = False
    """Steps run only on an explicit instruction (the router's side-effect policy, `graph.intent`)."""
    action_verbs: tuple[str, ...] = ()
    """The words that ask for the action, for `side_effect_intent`."""
    fallback: tuple[str, ...] = ()
    """Capabilities that answer instead when this one fails after its retries or its breaker is open."""
    rules: BusinessRules | None = None
    """Business rules its steps must keep (`max_per_plan` defaults to 1 with side effects)."""


@dataclass(frozen=True)
class Registry:
    """A validated registry: the file's settings plus resolved capabilities."""

    spec: RegistryFile
    capabilities: Mapping[str, CapabilityInfo]
    source: str = "<registry>"
    template_classes: Mapping[str, type[Capability]] = field(default_factory=dict)
    """The class of each template in `spec.templates`, resolved (graph/pools creates instances from them)."""
    written: RegistryFile | None = None
    """The settings as written, when `spec` differs: `classifier.labelled_examples` add to `spec`'s
    out-of-scope list, never to what overlays apply to (`data`)."""

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

    @property
    def data(self) -> dict[str, Any]:
        """The registry as YAML data (what was set, not the defaults): what overlays apply to."""
        return (self.written or self.spec).model_dump(mode="json", by_alias=True, exclude_unset=True)

    def with_overlay(self, overlay: Mapping[str, Any], *, source: str | None = None) -> Registry:
        """This registry with `overlay` merged (`merge_overlay`), validated; its experiments dropped
        (a variant runs in no experiment of its own). Raises `RegistryError`."""
        name = source or f"{self.source} (overlay)"
        data = self.data
        data.pop("experiments", None)
        try:
            merged = merge_overlay(data, overlay)
        except ValueError as exc:
            raise RegistryError([Problem(name, None, "", str(exc))]) from None
        path = Path(self.source)
        base = path.parent if path.is_file() else None
        return Registry.from_dict(merged, source=name, base_dir=base)

    @classmethod
    def from_file(cls, path: str | Path | None = None, *, learned: bool = True) -> Registry:
        """Load and validate a registry file; raise `RegistryError` listing every problem.

        `learned`: merge the overlay `routegraph learn --apply` wrote beside it (`learned_file`),
        when there is one."""
        file = Path(path) if path is not None else default_registry()
        try:
            with file.open("rb") as handle:  # at most one byte past the limit: /dev/zero ends too
                data = handle.read(MAX_TEXT_CHARS + 1)
            if len(data) > MAX_TEXT_CHARS:
                message = f"the file is too large (more than {MAX_TEXT_CHARS:,} bytes; a registry is a few kilobytes)"
                raise RegistryError([Problem(str(file), None, "", message)])
            text = data.decode("utf-8")
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise RegistryError([Problem(str(file), None, "", f"cannot read the file: {reason}")]) from None
        except UnicodeDecodeError as exc:
            message = f"cannot read the file: not UTF-8 text (byte {exc.start}: {exc.reason})"
            raise RegistryError([Problem(str(file), None, "", message)]) from None
        extra = learned_file(file)
        if learned and extra.is_file():
            return cls._with_learned(text, file, extra)
        return cls.from_text(text, source=str(file), base_dir=file.resolve().parent)

    @classmethod
    def _with_learned(cls, text: str, file: Path, extra: Path) -> Registry:
        data, lines, problems = load_yaml(text, str(file))
        if data is None and problems:
            raise RegistryError(problems)
        try:
            overlay_text = extra.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RegistryError(
                [Problem(str(extra), None, "", f"cannot read the learned overlay: {exc}")]
            ) from None
        overlay, _, more = load_yaml(overlay_text, str(extra))
        if more or not isinstance(overlay, dict):
            raise RegistryError(
                more or [Problem(str(extra), None, "", "the learned overlay must be a mapping")]
            )
        if isinstance(data, dict):
            try:
                data = merge_overlay(data, overlay)
            except ValueError as exc:
                raise RegistryError([Problem(str(extra), None, "", str(exc))]) from None
        return cls._validate(data, str(file), lines, problems, file.resolve().parent)

    @classmethod
    def from_text(
        cls, text: str, *, source: str = "<string>", base_dir: str | Path | None = None
    ) -> Registry:
        """Validate a registry given as YAML text. `base_dir` is where `class:` paths that do not
        import from the Python path are looked for (`from_file` passes the file's directory)."""
        data, lines, problems = load_yaml(text, source)
        if data is None and problems:
            raise RegistryError(problems)
        # Duplicate keys leave a usable document: report them together with everything else.
        return cls._validate(data, source, lines, problems, base_dir)

    @classmethod
    def from_dict(
        cls,
        data: Any,
        *,
        source: str = "<dict>",
        lines: LineMap | None = None,
        base_dir: str | Path | None = None,
    ) -> Registry:
        """Validate a registry given as Python data (as the YAML would parse)."""
        return cls._validate(data, source, lines or LineMap(known=False), [], base_dir)

    @classmethod
    def _validate(
        cls,
        data: Any,
        source: str,
        lines: LineMap,
        problems: list[Problem],
        base_dir: str | Path | None = None,
    ) -> Registry:
        if not isinstance(data, dict):
            got = type(data).__name__ if data is not None else "nothing"
            problems = [
                *problems,
                Problem(
                    source, lines.line(()), "", f"the top level must be a mapping of settings (got {got})"
                ),
            ]
            raise RegistryError(problems)
        problems = list(problems)
        spec: RegistryFile | None = None
        try:
            spec = RegistryFile.model_validate(data)
        except ValidationError as exc:
            problems += pydantic_problems(exc, source, lines)
        if spec is not None:
            entries = list(enumerate(spec.capabilities))
            complete = True
            limits = spec.limits
            allowed = spec.policy.allowed_capabilities
        else:
            # Check what can be checked anyway (the capabilities that are valid on their own), so
            # that one run lists every problem, not only the schema's.
            entries, complete = _valid_entries(data.get("capabilities"))
            limits = _valid_or_none(Limits, data.get("limits", {})) or Limits()
            policy = _valid_or_none(PolicyConfig, data.get("policy", {}))
            allowed = policy.allowed_capabilities if policy else None
        names = _entry_names(data.get("capabilities"))
        report = _Reporter(source, lines, problems)
        base = Path(base_dir) if base_dir is not None else None
        capabilities = _resolve(entries, complete, limits, allowed, names, report, base)
        written = spec
        if spec is not None and spec.classifier.labelled_examples and complete:
            spec, capabilities = _with_labelled(spec, capabilities, base, report)
        if spec is not None and spec.classifier.calibration is not None and complete:
            routable = sorted(c.name for c in capabilities.values() if not c.always_active and not c.terminal)
            for name in spec.classifier.calibration.thresholds:
                if name not in routable:
                    report(
                        ("classifier", "calibration", "thresholds", name),
                        f"not a capability the classifier routes to (those are: {', '.join(routable) or 'none'})",
                    )
        templates: dict[str, type[Capability]] = {}
        if spec is not None:
            _check_overlays(spec, data, report)
            templates = _check_pools(spec, capabilities, report)
        if problems or spec is None:
            raise RegistryError(sorted(problems, key=lambda p: p.line or 0))
        return cls(
            spec=spec,
            capabilities=capabilities,
            source=source,
            template_classes=templates,
            written=written if written is not spec else None,
        )


def _with_labelled(
    spec: RegistryFile, capabilities: dict[str, CapabilityInfo], base: Path | None, report: _Reporter
) -> tuple[RegistryFile, dict[str, CapabilityInfo]]:
    """The registry with `classifier.labelled_examples` added to its guides and its out-of-scope
    list (graph/config/labelled.py); a file or row it cannot use is a problem (at most 5 per file)."""
    infos = list(capabilities.values())
    found = expand(
        spec.classifier.labelled_examples,
        base_dir=base,
        routable=[c.name for c in infos if not c.always_active and not c.terminal],
        other=[c.name for c in infos if c.always_active or c.terminal],
        known={c.name: [e.query for e in c.classifier_guide.examples] for c in infos},
        known_out_of_scope=spec.classifier.out_of_scope_examples,
    )
    shown: dict[int, int] = {}
    for i, message in found.problems:
        shown[i] = shown.get(i, 0) + 1
        if shown[i] <= 5:
            report(("classifier", "labelled_examples", i), message)
    for i, count in shown.items():
        if count > 5:
            report(("classifier", "labelled_examples", i), f"... and {count - 5} more problems in this file")
    updated = dict(capabilities)
    for name, rows in found.positives.items():
        guide = capabilities[name].classifier_guide
        extra = tuple(GuideExample(query=text, reason=f"{LABELLED}{where}") for text, where in rows)
        updated[name] = replace(
            capabilities[name], classifier_guide=guide.model_copy(update={"examples": guide.examples + extra})
        )
    if found.out_of_scope:
        outside = (*spec.classifier.out_of_scope_examples, *found.out_of_scope)
        classifier = spec.classifier.model_copy(update={"out_of_scope_examples": outside})
        spec = spec.model_copy(update={"classifier": classifier})
    return spec, updated


def _check_pools(
    spec: RegistryFile, infos: Mapping[str, CapabilityInfo], problem: _Reporter
) -> dict[str, type[Capability]]:
    """Check the pools (instance names unique, options each constructor accepts) and the templates
    (a known capability, an importable class); return each template's class."""
    seen: dict[str, str] = {}
    for i, entry in enumerate(spec.capabilities):
        if entry.pool is None or entry.name not in infos:
            continue
        at: tuple[str | int, ...] = ("capabilities", i, "pool")
        if entry.pool.instances and entry.pool.replicas is not None:
            problem((*at, "replicas"), "give either replicas or instances, not both")
        cls = type(infos[entry.name].instance)
        for j, member in enumerate(entry.pool.members(entry.name)):
            where = (*at, "instances", j, "name") if entry.pool.instances else (*at, "replicas")
            if member.name in seen:
                problem(where, f"instance name {member.name!r} is already used by {seen[member.name]}")
                continue
            seen[member.name] = entry.name
            if member.options:
                try:
                    cls({**entry.options, **member.options})
                except Exception as exc:
                    problem((*at, "instances", j, "options"), f"{entry.class_path} rejected its options: {exc}")
    classes: dict[str, type[Capability]] = {}
    for i, template in enumerate(spec.templates):
        at = ("templates", i)
        if template.name in classes:
            problem((*at, "name"), f"duplicate template {template.name!r}")
            continue
        info = infos.get(template.capability)
        if info is None:
            known = ", ".join(sorted(infos)) or "none"
            problem((*at, "capability"), f"unknown capability {template.capability!r} (known: {known})")
            continue
        found = _import_class(template.class_path) if template.class_path else type(info.instance)
        if isinstance(found, str):
            problem((*at, "class"), found)
            continue
        classes[template.name] = found
    return classes


def _check_overlays(spec: RegistryFile, data: Mapping[str, Any], report: _Reporter) -> None:
    """Each experiment variant's overlay must leave a valid registry."""
    base = {k: v for k, v in data.items() if k != "experiments"}
    for i, experiment in enumerate(spec.experiments):
        for j, variant in enumerate(experiment.variants):
            if not variant.overlay:
                continue
            try:
                RegistryFile.model_validate(merge_overlay(base, variant.overlay))
            except ValidationError as exc:
                said = "; ".join(f"{format_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors())
                report(
                    ("experiments", i, "variants", j, "overlay"),
                    f"the overlay leaves an invalid registry: {said}",
                )
            except ValueError as exc:
                report(("experiments", i, "variants", j, "overlay"), str(exc))


def _valid_or_none(model: type[_M], data: Any) -> _M | None:
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


def _valid_entries(raw: Any) -> tuple[list[tuple[int, CapabilitySpec]], bool]:
    """The capability entries that validate on their own, with their index; and whether all did."""
    if not isinstance(raw, list):
        return [], False
    entries = [
        (i, spec) for i, item in enumerate(raw) if (spec := _valid_or_none(CapabilitySpec, item)) is not None
    ]
    return entries, len(entries) == len(raw)


def _entry_names(raw: Any) -> list[tuple[int, str, bool]]:
    """Index, name and enabled flag of every capability entry that names itself, valid or not."""
    if not isinstance(raw, list):
        return []
    return [
        (i, item["name"], item.get("enabled", True) is not False)
        for i, item in enumerate(raw)
        if isinstance(item, dict) and isinstance(item.get("name"), str)
    ]


@dataclass
class _Reporter:
    source: str
    lines: LineMap
    problems: list[Problem]

    def __call__(self, path: tuple[str | int, ...], message: str) -> None:
        self.problems.append(Problem(self.source, self.lines.line(path), format_path(path), message))


def _resolve(
    entries: list[tuple[int, CapabilitySpec]],
    complete: bool,
    limits: Limits,
    allowed: list[str] | None,
    named: list[tuple[int, str, bool]],
    problem: _Reporter,
    base_dir: Path | None = None,
) -> dict[str, CapabilityInfo]:
    """Import, instantiate and cross-check the capabilities.

    `complete` is False when some entries could not be validated: checks that need every
    capability (requires, cycles) then skip keys those entries might provide.
    """
    infos: dict[str, CapabilityInfo] = {}
    index_of: dict[str, int] = {}
    unresolved: list[CapabilitySpec] = []
    names = {name for _, name, _ in named}
    first_of: dict[str, int] = {}
    duplicate_of: dict[int, int] = {}
    for i, name, enabled in named:
        if enabled and name in first_of:
            duplicate_of[i] = first_of[name]
        elif enabled:
            first_of[name] = i
    for i, entry in entries:
        if not entry.enabled:
            continue
        if i in duplicate_of:
            first = duplicate_of[i]
            where = f"capabilities[{first}]"
            if (line := problem.lines.line(("capabilities", first))) is not None:
                where += f", line {line}"
            problem(
                ("capabilities", i, "name"), f"duplicate capability {entry.name!r} (first defined at {where})"
            )
            continue
        index_of[entry.name] = i
        cls_or_error = _import_class(entry.class_path, base_dir)
        if isinstance(cls_or_error, str):
            problem(("capabilities", i, "class"), cls_or_error)
            unresolved.append(entry)
            continue
        try:
            instance = cls_or_error(entry.options)
        except Exception as exc:
            problem(("capabilities", i, "options"), f"{entry.class_path} rejected its options: {exc}")
            unresolved.append(entry)
            continue
        except BaseException as exc:  # SystemExit, KeyboardInterrupt: the constructor, not the user
            problem(("capabilities", i, "options"), f"{entry.class_path} failed to start: {_raised(exc)}")
            unresolved.append(entry)
            continue
        if instance.name != entry.name:
            # One class may serve two entries (other options, another approval policy): the
            # instance answers to its entry's name, so its messages and questions name the step.
            vars(instance)["name"] = entry.name
        infos[entry.name] = _info(entry, instance, limits)

    def may_provide(key: str) -> bool:
        """Whether a capability that could not be checked might provide `key`."""
        return not complete or any(e.provides is None or key in e.provides for e in unresolved)

    for name, info in infos.items():
        i = index_of[name]
        if not info.always_active and not info.terminal and not info.classifier_guide.positives:
            entry = next(e for j, e in entries if j == i)
            if entry.classifier_guide is not None:
                message = (
                    "the classifier guide has no positive examples (result: true);"
                    " a routable capability needs at least one"
                )
            else:
                message = (
                    f"the classifier guide has no positive examples: {entry.class_path} gives none,"
                    " so add classifier_guide.examples here with at least one (result: true)"
                )
            problem(("capabilities", i, "classifier_guide", "examples"), message)
        if info.side_effects:
            entry = next(e for j, e in entries if j == i)
            if entry.side_effects is False:
                problem(
                    ("capabilities", i, "side_effects"),
                    f"{entry.class_path} declares side effects; side_effects: false cannot turn the "
                    "side-effect policy off (remove the line)",
                )
            if not any(v.strip() for v in info.action_verbs):
                problem(
                    ("capabilities", i, "action_verbs" if entry.action_verbs is not None else "side_effects"),
                    "a capability with side effects needs action_verbs: the words that ask for the action "
                    "(e.g. [refund, money back]); without them no request could ever run it",
                )
        for j, key in enumerate(info.requires):
            if any(key in other.provides for other in infos.values() if other.name != name):
                continue
            if may_provide(key):
                continue
            if key in info.provides:
                message = (
                    f"no other capability provides {key!r} ({name} cannot require what only it provides)"
                )
            else:
                message = f"no capability provides {key!r}"
                if disabled := [e.name for _, e in entries if not e.enabled and key in (e.provides or ())]:
                    message += f" (only disabled capabilities do: {', '.join(disabled)})"
            problem(("capabilities", i, "requires", j), message)

    for name, info in infos.items():
        for j, other in enumerate(info.fallback):
            at: tuple[str | int, ...] = ("capabilities", index_of[name], "fallback", j)
            if other == name:
                problem(at, f"{name} cannot be its own fallback")
            elif other not in names:
                problem(at, f"unknown capability {other!r} (known: {', '.join(sorted(names)) or 'none'})")
            elif other not in first_of:
                problem(at, f"{other} is disabled: a fallback must be able to run")
            elif other in infos and (infos[other].side_effects or infos[other].terminal):
                kind = "has side effects" if infos[other].side_effects else "ends a plan"
                problem(at, f"{other} {kind}: a fallback answers a question, it does not act")

    for cycle in _find_cycles(infos):
        problem(("capabilities", index_of[cycle[0]], "requires"), "dependency cycle: " + " -> ".join(cycle))

    for j, name in enumerate(allowed or []):
        if name not in names:
            known = ", ".join(sorted(names)) or "none"
            problem(("policy", "allowed_capabilities", j), f"unknown capability {name!r} (known: {known})")
    return infos


_IMPORTING = threading.Lock()
"""Held while a module is loaded from a registry's directory (two graphs built at once)."""


def _module_file(base_dir: Path, module_name: str) -> Path | None:
    """The file of `module_name` under `base_dir` (`a/b.py` or `a/b/__init__.py`), if there is one."""
    parts = module_name.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    stem = base_dir.joinpath(*parts)
    for candidate in (stem.with_name(stem.name + ".py"), stem / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _import_from(base_dir: Path, module_name: str) -> Any:
    """Import `module_name` from `base_dir`, as if that directory were on the Python path.

    Its top-level package is imported from there when nothing of that name is importable; when the
    name is taken (an installed `capabilities` package beside the user's `capabilities/` folder),
    the module is loaded from its file under its full name, so the rest of the package is untouched.
    """
    top = module_name.partition(".")[0]
    with _IMPORTING:
        if top not in sys.modules and importlib.util.find_spec(top) is None:
            spec = importlib.machinery.PathFinder.find_spec(top, [str(base_dir)])
            if spec is not None and spec.loader is not None:
                package = importlib.util.module_from_spec(spec)
                sys.modules[top] = package
                try:
                    spec.loader.exec_module(package)
                except BaseException:
                    sys.modules.pop(top, None)
                    raise
                return importlib.import_module(module_name)
        file = _module_file(base_dir, module_name)
        if file is None:
            raise ModuleNotFoundError(f"No module named {module_name!r}", name=module_name)
        leaf = importlib.util.spec_from_file_location(module_name, file)
        if leaf is None or leaf.loader is None:
            raise ModuleNotFoundError(f"No module named {module_name!r}", name=module_name)
        module = importlib.util.module_from_spec(leaf)
        sys.modules[module_name] = module
        try:
            leaf.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        return module


def _import_class(path: str, base_dir: Path | None = None) -> type[Capability] | str:
    """The capability class at `path`, or why it cannot be used (a registry problem).

    `path` is imported from the Python path; when no module of that name is there, from
    `base_dir` (the registry file's directory), as langgraph.json's `dependencies` are: a registry
    next to its `capabilities/weather.py` works from any working directory, with no PYTHONPATH.

    Importing runs the module's code: whatever it raises, `SystemExit` and `KeyboardInterrupt`
    included (a module calling `sys.exit()` would otherwise end `routegraph validate` with no
    word), is reported as a problem of the entry.
    """
    module_name, _, attr = path.partition(":")
    try:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            not_there = bool(exc.name) and (module_name == exc.name or module_name.startswith(f"{exc.name}."))
            if not (not_there and base_dir is not None and _module_file(base_dir, module_name)):
                raise
            module = _import_from(base_dir, module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            return f"cannot import {path}: no module named {exc.name!r}"
        return f"cannot import {path}: importing module {module_name!r} failed: {exc}"
    except BaseException as exc:
        return f"cannot import {path}: importing module {module_name!r} failed: {_raised(exc)}"
    if not hasattr(module, attr):
        return f"cannot import {path}: module {module_name!r} has no attribute {attr!r}"
    cls = getattr(module, attr)
    if not (isinstance(cls, type) and issubclass(cls, Capability)):
        return f"{path} is not a subclass of graph.capability.base.Capability"
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        return f"{path} is abstract: it does not implement {missing}"
    if not inspect.iscoroutinefunction(cls.execute):
        return (
            f"{path}.execute is not a coroutine function: declare it `async def execute(self, inputs, ctx)`"
        )
    return cls


def _raised(exc: BaseException) -> str:
    """What a module or constructor raised, as a problem says it (`it called sys.exit(0)`)."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _info(entry: CapabilitySpec, instance: Capability, limits: Limits) -> CapabilityInfo:
    cls = type(instance)
    base_retry = limits.retry_policy()
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
        # A class that declares side effects keeps them: `side_effects: false` is reported, not applied.
        side_effects=bool(entry.side_effects) or cls.side_effects,
        action_verbs=tuple(entry.action_verbs if entry.action_verbs is not None else cls.action_verbs),
        fallback=tuple(entry.fallback),
        rules=entry.rules,
    )


def _find_cycles(infos: Mapping[str, CapabilityInfo]) -> list[list[str]]:
    """One dependency cycle (requires -> provides edges, as names) per group of mutually dependent
    capabilities, e.g. `[["a", "b", "a"]]`; empty when there is none."""
    edges = {
        name: sorted(
            {p for key in info.requires for p, o in infos.items() if key in o.provides and p != name}
        )
        for name, info in infos.items()
    }
    cycles: list[list[str]] = []
    done: set[str] = set()
    for start in sorted(edges):
        if start in done:
            continue
        # Depth-first search for a path from `start` back to itself.
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen = {start}
        found: list[str] | None = None
        while stack and found is None:
            node, path = stack.pop()
            for nxt in reversed(edges[node]):
                if nxt == start:
                    found = [*path, start]
                    break
                if nxt not in seen and nxt not in done:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
        if found:
            cycles.append(found)
            done.update(found)
        done.add(start)
    return cycles
