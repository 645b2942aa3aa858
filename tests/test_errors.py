"""One errors module: every exception routegraph defines has one base and belongs to one family.

Callers that caught the old types (by name or as ValueError / RuntimeError) keep working, and the
router still sees severities, not types.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from graph.errors import (
    CheckpointerError,
    ConfigError,
    DatasetError,
    ErrorSeverity,
    EvalError,
    MissingInput,
    RegistryError,
    RoutegraphError,
    RunError,
    TuneError,
    error_record,
    severity_of,
)

PACKAGES = ("graph", "nodes", "evals", "capabilities", "benchmarks")
SKIP = {"graph.app"}  # builds the server's graph at import; defines no exception
ROOTS = {RoutegraphError, ConfigError, RunError}


def subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def routegraph_exceptions() -> set[type[BaseException]]:
    """Every exception class defined in the project's packages (optional extras that fail to import
    are skipped: they define none)."""
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if info.name not in SKIP:
                try:
                    importlib.import_module(info.name)
                except ImportError:
                    continue
    return {cls for cls in subclasses(BaseException) if cls.__module__.split(".")[0] in PACKAGES}


def test_every_routegraph_exception_has_the_base_and_exactly_one_family() -> None:
    found = routegraph_exceptions()
    names = {cls.__name__ for cls in found}
    # The eight that once lived elsewhere (or had no common base) are among them.
    assert {
        "TuneError",
        "CheckpointerError",
        "ModelUnavailableError",
        "RegistryError",
        "DatasetError",
        "EvalError",
        "MissingInput",
        "NotApplicable",
    } <= names
    # Signals that unwind a process, as KeyboardInterrupt does, are not errors: only the worker's
    # `Terminated` (a SIGTERM turned into an exception no `except Exception` can swallow).
    signals = {cls for cls in found if not issubclass(cls, Exception)}
    assert {f"{cls.__module__}.{cls.__name__}" for cls in signals} == {
        "graph.classifier.deferred_worker.Terminated"
    }
    for cls in found - ROOTS - signals:
        assert issubclass(cls, RoutegraphError), (
            f"{cls.__module__}.{cls.__name__} has no RoutegraphError base"
        )
        families = [f.__name__ for f in (ConfigError, RunError) if issubclass(cls, f)]
        assert len(families) == 1, f"{cls.__name__} belongs to {families or 'no family'}"


def test_the_definitions_live_in_graph_errors_and_the_old_names_still_import() -> None:
    from evals.datasets import DatasetError as datasets_error
    from evals.harness import EvalError as harness_error
    from evals.tune import TuneError as tune_error
    from graph.config.registry import RegistryError as registry_error
    from graph.models import ModelUnavailableError
    from graph.persistence.sqlite import CheckpointerError as sqlite_error

    assert (datasets_error, harness_error, tune_error, registry_error, sqlite_error) == (
        DatasetError,
        EvalError,
        TuneError,
        RegistryError,
        CheckpointerError,
    )
    for cls in (DatasetError, EvalError, TuneError, RegistryError, CheckpointerError):
        assert cls.__module__ == "graph.errors"
    assert issubclass(ModelUnavailableError, RunError)
    assert ModelUnavailableError.severity is ErrorSeverity.RETRIABLE


@pytest.mark.parametrize("cls", [RegistryError, CheckpointerError, DatasetError, EvalError, TuneError])
def test_configuration_errors_are_still_value_errors(cls: type[ConfigError]) -> None:
    """They all were ValueErrors (CheckpointerError a RuntimeError): `except ValueError` still works."""
    assert issubclass(cls, ValueError)
    assert issubclass(CheckpointerError, RuntimeError)


def test_a_configuration_error_inside_a_run_is_critical() -> None:
    assert severity_of(DatasetError("x")) is ErrorSeverity.CRITICAL
    assert severity_of(MissingInput("x")) is ErrorSeverity.REPLANNING
    record = error_record("execute", CheckpointerError("down"), attempt=1)
    assert record["severity"] == "critical" and record["message"] == "CheckpointerError: down"


def test_messages_are_unchanged() -> None:
    from graph.config.yaml_source import Problem

    problem = Problem("registry.yaml", 3, "capabilities[0].name", "field required")
    error = RegistryError([problem])
    assert error.problems == [problem]
    assert str(error) == "invalid registry:\n  registry.yaml:3: capabilities[0].name: field required"
    assert str(DatasetError("data.jsonl: no rows")) == "data.jsonl: no rows"


def test_an_unknown_checkpointer_is_a_checkpointer_error_and_still_a_value_error(tmp_path: Path) -> None:
    from graph.config.settings import Settings
    from graph.persistence import resolve_checkpointer

    for caught in (CheckpointerError, ValueError):
        with pytest.raises(caught, match=r"^unknown checkpointer 'redis': auto, sqlite, postgres, memory"):
            resolve_checkpointer("redis", Settings.offline(tmp_path))  # type: ignore[arg-type]
