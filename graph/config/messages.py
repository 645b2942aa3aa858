"""Registry problems in words a user can act on: what is wrong, where, and what was expected."""

from __future__ import annotations

import reprlib
from typing import Any

from pydantic import BaseModel, ValidationError

from graph.config.schema import RegistryFile
from graph.config.yaml_source import LineMap, Problem, format_path

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 80, 80


def _shown(value: Any) -> str:
    """A wrong value as quoted in a message: shortened, as it may be big (or an alias bomb)."""
    text = _SHORT.repr(value)
    return text if len(text) <= 100 else text[:96] + " ..."


_MESSAGES = {
    "dict_type": "expected a mapping (key: value lines)",
    "model_type": "expected a mapping (key: value lines)",
    "model_attributes_type": "expected a mapping (key: value lines)",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "string_type": "expected a string",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
}


def pydantic_problems(exc: ValidationError, source: str, lines: LineMap) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        kind = err["type"]
        got = ""
        if "input" in err and kind not in {"extra_forbidden", "missing"}:
            got = " (got an empty value)" if err["input"] is None else f" (got {_shown(err['input'])})"
        field = format_path(loc)
        if kind == "extra_forbidden":
            message = f"unknown key{_expected_keys(loc)}"
        elif kind == "missing":
            message = "missing required field"
        elif kind == "invalid_key":
            field = format_path((*loc[:-1], str(loc[-1])))
            message = f"wrong type: keys must be strings (got {loc[-1]!r})"
        elif kind == "too_short" and loc == ("capabilities",):
            message = "at least one capability is required"
        elif loc and loc[-1] == "[key]":
            message = f"wrong type: keys must be strings (got {loc[-2]!r})"
        elif kind == "value_error":  # a validator's own message, which names the value
            message = err["msg"].removeprefix("Value error, ")
        elif kind in _MESSAGES:
            message = f"wrong type: {_MESSAGES[kind]}{got}"
        elif kind == "literal_error":
            message = f"{err['msg'].replace('Input should be', 'expected')}{got}"
        elif kind == "string_pattern_mismatch" and loc[-1:] == ("class",):
            message = f"expected an import path like package.module:ClassName{got}"
        elif kind == "string_pattern_mismatch" and loc[-1:] == ("name",):
            message = f"expected a lower-case name of letters, digits and _ (like my_capability){got}"
        else:
            message = f"{err['msg'].replace('Input should be ', 'must be ')}{got}"
        problems.append(Problem(source, lines.line(loc), field, message))
    return problems


def _expected_keys(loc: tuple[str | int, ...]) -> str:
    """`(expected one of: a, b, c)` for an unknown key, when the model at its parent is known."""
    model: Any = RegistryFile
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return ""
        model = _model_of(field.annotation)
        if model is None:
            return ""
    keys = [f.alias or n for n, f in model.model_fields.items()]
    return f" (expected one of: {', '.join(keys)})"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `Model`, `Model | None`, `list[Model]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if (found := _model_of(arg)) is not None:
            return found
    return None
