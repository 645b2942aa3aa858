"""registry.yaml loading and validation: every problem with file, line, field and message.

Most tests write `VALID` (a small valid registry, each line numbered in a comment) with one
line changed, and check the exact problem `routegraph validate` would print for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import HumanMessage

from graph.builder import build_graph
from graph.cli import main
from graph.config.registry import Registry, RegistryError, default_registry
from graph.config.settings import Settings
from graph.config.yaml_source import Problem

VALID = """\
version: 1                                      # 1
limits:                                         # 2
  max_retries: 2                                # 3
policy:                                         # 4
  allowed_capabilities: null                    # 5
capabilities:                                   # 6
  - name: respond                               # 7
    class: capabilities.respond:Respond         # 8
  - name: clarify                               # 9
    class: capabilities.clarify:Clarify         # 10
  - name: calculator                            # 11
    class: capabilities.calculator:Calculator   # 12
    timeout: 5                                  # 13
  - name: geocode                               # 14
    class: tests.capfixtures:Geocode            # 15
  - name: weather                               # 16
    class: tests.capfixtures:Weather            # 17
"""
"""Lines 18 and after are whatever a test appends (indented as the entry of weather)."""

CAPABILITY_KEYS = (
    "name, class, description, provides, requires, always_active, enabled, classifier_guide,"
    " orchestrator_guide, approval, side_effects, action_verbs, timeout, retry, options, fallback, rules, pool"
)
TOP_LEVEL_KEYS = "version, models, limits, classifier, orchestrator, policy, traces, capabilities, experiments, templates"


def write(
    tmp_path: Path,
    *,
    replace: dict[str, str] | None = None,
    append: str = "",
    text: str = VALID,
    name: str = "registry.yaml",
) -> Path:
    """Write `text` with each `replace` key (which must occur once) replaced and `append` added.

    In `append`, a line may start with spaces and `|`: the text after the `|` is the line.
    """
    for old, new in (replace or {}).items():
        assert text.count(old) == 1, f"{old!r} must occur exactly once"
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text + unmargin(append), encoding="utf-8")
    return path


def unmargin(text: str) -> str:
    if not any(line.lstrip().startswith("|") for line in text.splitlines()):
        return text
    return "".join(line.split("|", 1)[1] + "\n" for line in text.splitlines() if "|" in line)


def problems(path: Path) -> list[str]:
    """The problems `Registry.from_file` reports, as `validate` prints them."""
    with pytest.raises(RegistryError) as info:
        Registry.from_file(path)
    assert info.value.problems, "a RegistryError must carry at least one problem"
    for problem in info.value.problems:  # the exception's text lists every problem too
        assert str(problem) in str(info.value)
    return [str(p) for p in info.value.problems]


def one_problem(path: Path) -> str:
    found = problems(path)
    assert len(found) == 1, found
    return found[0]


# --- valid registries ------------------------------------------------------------------------


def test_the_shipped_registry_validates() -> None:
    registry = Registry.from_file()
    data = yaml.safe_load(default_registry().read_text(encoding="utf-8"))
    enabled = [c["name"] for c in data["capabilities"] if c.get("enabled", True)]
    assert list(registry.capabilities) == enabled
    assert registry.source == str(default_registry())
    assert {"respond", "clarify", "calculator", "clock"} <= set(enabled)


def test_validate_without_a_path_checks_the_shipped_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[0].startswith(f"{default_registry()}: valid, ")
    registry = Registry.from_file()
    for name in registry.capabilities:
        assert any(line.split()[:1] == [name] for line in out.splitlines()), f"{name} not in summary"
    assert len(out.splitlines()) <= 25, "the summary fits on one screen"


def test_validate_a_valid_file_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path)
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"{path}: valid, 5 capabilities"
    weather = next(line for line in lines if line.split()[:1] == ["weather"])
    assert "provides forecast" in weather and "requires location" in weather
    assert "1 guide examples" in weather
    assert "out-of-scope" not in out
    outside = write(
        tmp_path, append='classifier:\n  out_of_scope_examples: ["tell me a joke", "sing a song"]\n'
    )
    assert main(["validate", str(outside)]) == 0
    assert "(threshold 0.5, 2 out-of-scope examples)" in capsys.readouterr().out


def test_a_valid_registry_resolves_capabilities_from_their_classes(tmp_path: Path) -> None:
    registry = Registry.from_file(write(tmp_path))
    assert list(registry.capabilities) == ["respond", "clarify", "calculator", "geocode", "weather"]
    weather = registry["weather"]
    assert weather.provides == ("forecast",) and weather.requires == ("location",)
    assert weather.description == "The weather forecast for a location."
    assert weather.classifier_guide.positives == ["will it rain in Lisbon tomorrow"]
    assert registry["calculator"].timeout == 5
    assert registry.providers("location") == ["geocode"]
    assert [c.name for c in registry.routable] == ["calculator", "geocode", "weather"]


def test_disabled_capabilities_are_not_imported_or_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        replace={"allowed_capabilities: null": "allowed_capabilities: [weather, ghost_writer]"},
        append="""\
        |  - name: ghost_writer
        |    class: tests.nowhere:Ghost
        |    enabled: false
        """,
    )
    registry = Registry.from_file(path)
    assert "ghost_writer" not in registry
    assert not registry.allowed("ghost_writer") and registry.allowed("weather")


def test_from_dict_reports_problems_without_line_numbers() -> None:
    with pytest.raises(RegistryError) as info:
        Registry.from_dict({"version": 1}, source="<test>")
    assert info.value.problems == [Problem("<test>", None, "capabilities", "missing required field")]
    assert str(info.value.problems[0]) == "<test>: capabilities: missing required field"


# --- one problem each: file, line, field, message ------------------------------------------------

CASES: list[tuple[str, dict[str, str], str, str]] = [
    # (id, replacements, appended text, expected problem with {path} for the file)
    (
        "unknown top-level key",
        {"version: 1": "versoin: 1"},
        "",
        f"{{path}}:1: versoin: unknown key (expected one of: {TOP_LEVEL_KEYS})",
    ),
    (
        "unknown key in a capability",
        {"timeout: 5": "timout: 5"},
        "",
        f"{{path}}:13: capabilities[2].timout: unknown key (expected one of: {CAPABILITY_KEYS})",
    ),
    (
        "unknown key in a classifier guide",
        {},
        """\
        |    classifier_guide:
        |      examples:
        |        - query: will it snow
        |          reslut: true
        """,
        "{path}:21: capabilities[4].classifier_guide.examples[0].reslut: unknown key"
        " (expected one of: query, result, reason)",
    ),
    (
        "capability without class",
        {"    class: tests.capfixtures:Geocode ": "    timeout: 5                       "},
        "",
        "{path}:14: capabilities[3].class: missing required field",
    ),
    (
        "capability without name",
        {"  - name: geocode  ": "  - timeout: 2      "},
        "",
        "{path}:14: capabilities[3].name: missing required field",
    ),
    (
        "guide example without query",
        {},
        """\
        |    classifier_guide:
        |      examples:
        |        - reason: no query
        """,
        "{path}:20: capabilities[4].classifier_guide.examples[0].query: missing required field",
    ),
    (
        "timeout is a string",
        {"timeout: 5": 'timeout: "fast"'},
        "",
        "{path}:13: capabilities[2].timeout: wrong type: expected a number (got 'fast')",
    ),
    (
        "timeout is a boolean",
        {"timeout: 5": "timeout: yes"},
        "",
        "{path}:13: capabilities[2].timeout: wrong type: expected a number (got True)",
    ),
    (
        "timeout is zero",
        {"timeout: 5": "timeout: 0"},
        "",
        "{path}:13: capabilities[2].timeout: must be greater than 0 (got 0)",
    ),
    (
        "negative max_retries",
        {"max_retries: 2": "max_retries: -1"},
        "",
        "{path}:3: limits.max_retries: must be greater than or equal to 0 (got -1)",
    ),
    (
        "always_active is a string",
        {},
        "    always_active: 'yes'\n",
        "{path}:18: capabilities[4].always_active: wrong type: expected true or false (got 'yes')",
    ),
    (
        "requires is not a list",
        {},
        "    requires: location\n",
        "{path}:18: capabilities[4].requires: wrong type: expected a list (got 'location')",
    ),
    (
        "options is not a mapping",
        {},
        "    options: [1, 2]\n",
        "{path}:18: capabilities[4].options: wrong type: expected a mapping (key: value lines) (got [1, 2])",
    ),
    (
        "empty capability entry",
        {},
        "  -\n",
        "{path}:18: capabilities[5]: wrong type: expected a mapping (key: value lines) (got an empty value)",
    ),
    (
        "limits is not a mapping",
        {"limits:    ": "limits: 3  ", "  max_retries: 2  ": "# max_retries: 2"},
        "",
        "{path}:2: limits: wrong type: expected a mapping (key: value lines) (got 3)",
    ),
    (
        "unknown version",
        {"version: 1": "version: 2"},
        "",
        "{path}:1: version: expected 1 (got 2)",
    ),
    (
        "unknown classifier mode",
        {},
        "classifier:\n  mode: fancy\n",
        "{path}:19: classifier.mode: expected 'auto', 'embedding', 'llm' or 'cascade' (got 'fancy')",
    ),
    (
        "unknown encoder",
        {},
        "classifier:\n  encoder: minlm\n",
        "{path}:19: classifier.encoder: unknown encoder 'minlm': use lexical, minilm, mpnet, hybrid,"
        " openai[:MODEL] or a local model directory",
    ),
    (
        "hybrid share out of range",
        {},
        "classifier:\n  encoder: hybrid:1.5\n",
        "{path}:19: classifier.encoder: bad encoder 'hybrid:1.5': hybrid[:SHARE] takes the MiniLM share"
        " of the similarity, a number between 0 and 1 (default 0.7)",
    ),
    (
        "blank out-of-scope example",
        {},
        'classifier:\n  out_of_scope_examples: ["tell me a joke", "  "]\n',
        "{path}:19: classifier.out_of_scope_examples: item 1 is blank: give the text of a request",
    ),
    (
        "malformed import path",
        {"tests.capfixtures:Weather": "tests.capfixtures.Weather"},
        "",
        "{path}:17: capabilities[4].class: expected an import path like package.module:ClassName"
        " (got 'tests.capfixtures.Weather')",
    ),
    (
        "malformed capability name",
        {"name: weather": "name: Weather"},
        "",
        "{path}:16: capabilities[4].name: expected a lower-case name of letters, digits and _"
        " (like my_capability) (got 'Weather')",
    ),
    (
        "duplicate capability",
        {"name: weather": "name: geocode"},
        "",
        "{path}:16: capabilities[4].name: duplicate capability 'geocode'"
        " (first defined at capabilities[3], line 14)",
    ),
    (
        "module does not exist",
        {"tests.capfixtures:Weather": "tests.nowhere:Weather"},
        "",
        "{path}:17: capabilities[4].class: cannot import tests.nowhere:Weather:"
        " no module named 'tests.nowhere'",
    ),
    (
        "package does not exist",
        {"tests.capfixtures:Weather": "nowhere.weather:Weather"},
        "",
        "{path}:17: capabilities[4].class: cannot import nowhere.weather:Weather: no module named 'nowhere'",
    ),
    (
        "attribute does not exist",
        {"tests.capfixtures:Weather": "tests.capfixtures:Forecast"},
        "",
        "{path}:17: capabilities[4].class: cannot import tests.capfixtures:Forecast:"
        " module 'tests.capfixtures' has no attribute 'Forecast'",
    ),
    (
        "class is not a Capability",
        {"tests.capfixtures:Weather": "tests.capfixtures:NotACapability"},
        "",
        "{path}:17: capabilities[4].class: tests.capfixtures:NotACapability"
        " is not a subclass of graph.capability.base.Capability",
    ),
    (
        "a function, not a class",
        {"tests.capfixtures:Weather": "tests.capfixtures:not_a_class"},
        "",
        "{path}:17: capabilities[4].class: tests.capfixtures:not_a_class"
        " is not a subclass of graph.capability.base.Capability",
    ),
    (
        "abstract class",
        {"tests.capfixtures:Weather": "graph.capability.base:Capability"},
        "",
        "{path}:17: capabilities[4].class: graph.capability.base:Capability is abstract:"
        " it does not implement execute",
    ),
    (
        "class rejects its options",
        {"name: weather": "name: picky  ", "tests.capfixtures:Weather": "tests.capfixtures:Picky  "},
        "    options: {size: 3}\n",
        "{path}:18: capabilities[4].options: tests.capfixtures:Picky rejected its options:"
        " unknown options: size",
    ),
    (
        "requires (from the class) that nothing provides",
        {"tests.capfixtures:Geocode": "capabilities.clock:Clock  "},
        "",
        "{path}:16: capabilities[4].requires[0]: no capability provides 'location'",
    ),
    (
        "requires (from the YAML) that nothing provides",
        {},
        "    requires: [location, umbrella]\n",
        "{path}:18: capabilities[4].requires[1]: no capability provides 'umbrella'",
    ),
    (
        "requires what only itself provides",
        {},
        "    requires: [forecast]\n",
        "{path}:18: capabilities[4].requires[0]: no other capability provides 'forecast'"
        " (weather cannot require what only it provides)",
    ),
    (
        "dependency cycle between two classes",
        {},
        """\
        |  - name: chicken
        |    class: tests.capfixtures:Chicken
        |  - name: egg
        |    class: tests.capfixtures:Egg
        """,
        "{path}:18: capabilities[5].requires: dependency cycle: chicken -> egg -> chicken",
    ),
    (
        "dependency cycle through YAML requires",
        {},
        "    provides: [forecast, location_hint]\n"
        "  - name: geocode_plus\n"
        "    class: tests.capfixtures:Geocode\n"
        "    requires: [forecast]\n",
        "{path}:21: capabilities[5].requires: dependency cycle: geocode_plus -> weather -> geocode_plus",
    ),
    (
        "routable capability whose YAML guide has no examples",
        {"    timeout: 5                                  # 13": "    classifier_guide:\n      examples: []"},
        "",
        "{path}:14: capabilities[2].classifier_guide.examples: the classifier guide has no positive"
        " examples (result: true); a routable capability needs at least one",
    ),
    (
        "routable capability whose YAML guide has only negative examples",
        {},
        """\
        |    classifier_guide:
        |      instructions: Weather forecasts.
        |      examples:
        |        - {query: what is 2 + 2, result: false}
        """,
        "{path}:20: capabilities[4].classifier_guide.examples: the classifier guide has no positive"
        " examples (result: true); a routable capability needs at least one",
    ),
    (
        "routable capability whose class has no guide",
        {},
        "  - name: unguided\n    class: tests.capfixtures:Unguided\n",
        "{path}:18: capabilities[5].classifier_guide.examples: the classifier guide has no positive"
        " examples: tests.capfixtures:Unguided gives none, so add classifier_guide.examples here"
        " with at least one (result: true)",
    ),
    (
        "policy names an unknown capability",
        {"allowed_capabilities: null": "allowed_capabilities: [calculator, ghost, weather]"},
        "",
        "{path}:5: policy.allowed_capabilities[1]: unknown capability 'ghost'"
        " (known: calculator, clarify, geocode, respond, weather)",
    ),
    (
        "duplicate key in a capability",
        {},
        "    class: tests.capfixtures:Geocode\n",
        "{path}:18: capabilities[4].class: duplicate key (first given on line 17)",
    ),
    (
        "duplicate top-level key",
        {},
        "version: 1\n",
        "{path}:18: version: duplicate key (first given on line 1)",
    ),
    (
        "bad indentation",
        {"    class: capabilities.clarify:Clarify ": "   class: capabilities.clarify:Clarify  "},
        "",
        "{path}:10: invalid YAML: while parsing a block collection (started on line 7), expected"
        " <block end>, but found '<block mapping start>' (check the indentation of this line)",
    ),
    (
        "tab character",
        {"    class: capabilities.respond:Respond ": "\tclass: capabilities.respond:Respond    "},
        "",
        "{path}:8: invalid YAML: while scanning for the next token,"
        " found character '\\t' that cannot start any token",
    ),
    (
        "unclosed flow list",
        {"allowed_capabilities: null": "allowed_capabilities: [calculator"},
        "",
        "{path}:6: invalid YAML: while parsing a flow sequence (started on line 5),"
        " expected ',' or ']', but got '<scalar>'",
    ),
    (
        "unclosed quote at the end of the file",
        {},
        '    description: "Weather\n',
        "{path}:18: invalid YAML: while scanning a quoted scalar, found unexpected end of stream",
    ),
    (
        "a Python tag",
        {"max_retries: 2": "max_retries: !!python/object:os.system 2"},
        "",
        "{path}:3: invalid YAML: could not determine a constructor for the tag"
        " 'tag:yaml.org,2002:python/object:os.system'",
    ),
    (
        "control character",
        {"geocode  ": "geo\x07code"},
        "",
        "{path}:14: invalid YAML: control character #x0007 is not allowed",
    ),
]


@pytest.mark.parametrize(("replace", "append", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_kind_of_problem_names_file_line_field_and_what_is_wrong(
    tmp_path: Path, replace: dict[str, str], append: str, expected: str
) -> None:
    path = write(tmp_path, replace=replace, append=append)
    assert one_problem(path) == expected.format(path=path)


def test_a_problem_has_its_parts_as_fields(tmp_path: Path) -> None:
    path = write(tmp_path, replace={"timeout: 5": 'timeout: "fast"'})
    with pytest.raises(RegistryError) as info:
        Registry.from_file(path)
    assert info.value.problems == [
        Problem(str(path), 13, "capabilities[2].timeout", "wrong type: expected a number (got 'fast')")
    ]


def test_the_example_in_the_issue_a_guide_without_examples(tmp_path: Path) -> None:
    text = VALID.replace(
        "    timeout: 5                                  # 13\n",
        "    classifier_guide:\n      instructions: Arithmetic.\n",
    )
    path = write(tmp_path, text=text)
    assert one_problem(path).startswith(f"{path}:13: capabilities[2].classifier_guide.examples: ")


def test_always_active_capabilities_need_no_guide(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        append="  - name: unguided\n    class: tests.capfixtures:Unguided\n    always_active: true\n",
    )
    assert Registry.from_file(path)["unguided"].always_active


def test_no_capabilities(tmp_path: Path) -> None:
    path = write(tmp_path, text="version: 1\ncapabilities: []\n")
    assert one_problem(path) == f"{path}:2: capabilities: at least one capability is required"
    path = write(tmp_path, text="version: 1\n")
    assert one_problem(path) == f"{path}:1: capabilities: missing required field"


def test_requires_what_only_a_disabled_capability_provides(tmp_path: Path) -> None:
    text = VALID.replace(
        "    class: tests.capfixtures:Geocode            # 15\n",
        "    class: tests.capfixtures:Geocode\n    provides: [location]\n    enabled: false\n",
    )
    path = write(tmp_path, text=text)
    assert one_problem(path) == (
        f"{path}:18: capabilities[4].requires[0]: no capability provides 'location'"
        " (only disabled capabilities do: geocode)"
    )


def test_a_module_that_fails_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "exploding_caps.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "halfway_caps.py").write_text("import not_installed_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write(
        tmp_path,
        append="""\
        |  - name: exploding
        |    class: exploding_caps:Thing
        |  - name: halfway
        |    class: halfway_caps:Thing
        """,
    )
    assert problems(path) == [
        f"{path}:19: capabilities[5].class: cannot import exploding_caps:Thing:"
        " importing module 'exploding_caps' failed: RuntimeError: boom at import",
        f"{path}:21: capabilities[6].class: cannot import halfway_caps:Thing:"
        " importing module 'halfway_caps' failed: No module named 'not_installed_dependency'",
    ]


def test_every_dependency_cycle_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        append="""\
        |  - name: chicken
        |    class: tests.capfixtures:Chicken
        |  - name: egg
        |    class: tests.capfixtures:Egg
        |  - name: yin
        |    class: tests.capfixtures:Geocode
        |    provides: [yin]
        |    requires: [yang]
        |  - name: yang
        |    class: tests.capfixtures:Geocode
        |    provides: [yang]
        |    requires: [yin]
        """,
    )
    assert problems(path) == [
        f"{path}:18: capabilities[5].requires: dependency cycle: chicken -> egg -> chicken",
        f"{path}:29: capabilities[8].requires: dependency cycle: yang -> yin -> yang",
    ]


def test_empty_file(tmp_path: Path) -> None:
    for text in ("", "\n", "# only a comment\n"):
        path = write(tmp_path, text=text)
        assert one_problem(path) == f"{path}:1: the file is empty (expected a mapping of settings)"


@pytest.mark.parametrize(
    ("text", "got"), [("- respond\n- clarify\n", "list"), ("just words\n", "str"), ("~\n", "nothing")]
)
def test_top_level_is_not_a_mapping(tmp_path: Path, text: str, got: str) -> None:
    path = write(tmp_path, text=text)
    assert one_problem(path) == f"{path}:1: the top level must be a mapping of settings (got {got})"


def test_two_documents_in_one_file(tmp_path: Path) -> None:
    path = write(tmp_path, append="---\nversion: 1\n")
    assert one_problem(path) == (
        f"{path}:18: invalid YAML: expected a single document in the stream (started on line 1),"
        " but found another document"
    )


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    assert one_problem(path) == f"{path}: cannot read the file: No such file or directory"


def test_a_directory_is_not_a_registry(tmp_path: Path) -> None:
    assert one_problem(tmp_path) == f"{tmp_path}: cannot read the file: Is a directory"


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_bytes(VALID.encode("utf-8") + b"  - name: caf\xe9\n")
    assert one_problem(path) == (
        f"{path}: cannot read the file: not UTF-8 text (byte {len(VALID) + 13}: invalid continuation byte)"
    )


def test_an_alias_bomb_is_refused_before_anything_walks_it(tmp_path: Path) -> None:
    """Nine levels of ten aliases each: a billion strings if anything walked them all (a bomb under
    a capability's `options` used to load, and its first request took 40 s)."""
    bomb = ["lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    bomb += [f"lol{n}: &lol{n} [{', '.join([f'*lol{n - 1}'] * 10)}]" for n in range(1, 9)]
    path = write(tmp_path, text="\n".join(bomb) + "\n" + VALID, append="    description: *lol8\n")
    assert problems(path) == [
        f"{path}:5: this holds more than 100,000 values, counting every use of an alias (`*name`) in full: "
        "refused (a whole registry holds a few hundred)"
    ]


def test_a_recursive_alias_is_reported_not_followed_forever(tmp_path: Path) -> None:
    path = write(tmp_path, text=VALID + "loop: &loop [*loop]\n")
    assert problems(path) == [f"{path}:18: an alias (`*name`) refers to a collection that contains it"]


# --- every problem at once --------------------------------------------------------------------

MANY_MISTAKES = {
    "version: 1": "colour: blue",  # line 1: unknown key
    "max_retries: 2": "max_retries: -1",  # line 3: out of range
    "allowed_capabilities: null": "allowed_capabilities: [ghost]",  # line 5: unknown capability
    "timeout: 5": 'timeout: "fast"',  # line 13: wrong type
    "tests.capfixtures:Geocode ": "tests.nowhere:Geocode     ",  # line 15: no such module
}
MANY_APPENDED = """\
    provides: [forecast]
  - name: weather
    class: tests.capfixtures:Weather
  - name: unguided
    class: tests.capfixtures:Unguided
    options: {a: 1}
    options: {b: 2}
"""


def many_mistakes(path: str) -> list[str]:
    return [
        f"{path}:1: colour: unknown key (expected one of: {TOP_LEVEL_KEYS})",
        f"{path}:3: limits.max_retries: must be greater than or equal to 0 (got -1)",
        f"{path}:5: policy.allowed_capabilities[0]: unknown capability 'ghost'"
        " (known: calculator, clarify, geocode, respond, unguided, weather)",
        f"{path}:13: capabilities[2].timeout: wrong type: expected a number (got 'fast')",
        f"{path}:15: capabilities[3].class: cannot import tests.nowhere:Geocode:"
        " no module named 'tests.nowhere'",
        f"{path}:19: capabilities[5].name: duplicate capability 'weather'"
        " (first defined at capabilities[4], line 16)",
        f"{path}:21: capabilities[6].classifier_guide.examples: the classifier guide has no positive"
        " examples: tests.capfixtures:Unguided gives none, so add classifier_guide.examples here"
        " with at least one (result: true)",
        f"{path}:24: capabilities[6].options: duplicate key (first given on line 23)",
    ]


def test_every_problem_in_a_file_is_reported_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, replace=MANY_MISTAKES, append=MANY_APPENDED)
    assert problems(path) == many_mistakes(str(path))


def test_validate_exits_2_and_prints_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, replace=MANY_MISTAKES, append=MANY_APPENDED)
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    expected = many_mistakes(str(path))
    assert err.splitlines() == [f"{len(expected)} problem(s) in {path}:", *(f"  {p}" for p in expected)]


def test_validate_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nowhere.yaml"
    assert main(["validate", str(path)]) == 2
    assert f"{path}: cannot read the file: No such file or directory" in capsys.readouterr().err


def test_checks_that_need_every_capability_wait_for_schema_fixes(tmp_path: Path) -> None:
    """While an entry is invalid, what it provides is unknown: no guess that nothing provides it."""
    path = write(
        tmp_path, replace={"    class: tests.capfixtures:Geocode ": "    timeout: fast                    "}
    )
    assert problems(path) == [
        f"{path}:14: capabilities[3].class: missing required field",
        f"{path}:15: capabilities[3].timeout: wrong type: expected a number (got 'fast')",
    ]
    path = write(tmp_path, replace={"tests.capfixtures:Geocode": "tests.capfixtures:Nothing"})
    assert problems(path) == [
        f"{path}:15: capabilities[3].class: cannot import tests.capfixtures:Nothing:"
        " module 'tests.capfixtures' has no attribute 'Nothing'"
    ]


# --- the graph refuses an invalid registry ------------------------------------------------------


def test_build_graph_refuses_an_invalid_registry_with_the_same_messages(tmp_path: Path) -> None:
    path = write(tmp_path, replace=MANY_MISTAKES, append=MANY_APPENDED)
    with pytest.raises(RegistryError) as info:
        build_graph(registry=path, settings=Settings.offline(tmp_path), checkpointer="memory")
    assert [str(p) for p in info.value.problems] == many_mistakes(str(path))
    for message in many_mistakes(str(path)):
        assert message in str(info.value)


def test_build_graph_refuses_a_missing_registry(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read the file"):
        build_graph(
            registry=tmp_path / "nowhere.yaml", settings=Settings.offline(tmp_path), checkpointer="memory"
        )


# --- YAML wins over the class ---------------------------------------------------------------------


def test_yaml_description_and_guides_replace_the_class_ones(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        append="""\
        |    description: Forecasts from the registry.
        |    provides: [forecast, temperature]
        |    classifier_guide:
        |      instructions: Weather questions, as the registry puts them.
        |      examples:
        |        - query: is it sunny in Porto
        |        - query: what is 2 + 2
        |          result: false
        |    timeout: 7.5
        |    retry: {max_attempts: 5}
        """,
    )
    registry = Registry.from_file(path)
    weather = registry["weather"]
    assert weather.description == "Forecasts from the registry."
    assert weather.classifier_guide.instructions == "Weather questions, as the registry puts them."
    assert weather.classifier_guide.positives == ["is it sunny in Porto"]
    assert weather.classifier_guide.negatives == ["what is 2 + 2"]
    assert weather.provides == ("forecast", "temperature")
    assert weather.timeout == 7.5 and weather.retry.max_attempts == 5
    # What the YAML does not give still comes from the class.
    assert weather.requires == ("location",)
    assert weather.orchestrator_guide.instructions == "Run after geocode."
    assert registry["geocode"].description == "Find where a place is."
    assert registry["geocode"].retry.max_attempts == 3  # limits.max_retries 2, plus the first attempt


def test_the_class_is_not_changed_by_the_yaml(tmp_path: Path) -> None:
    from tests.capfixtures import Weather

    before = Weather.classifier_guide
    Registry.from_file(
        write(tmp_path, append="    description: Other.\n    classifier_guide: {examples: [{query: q}]}\n")
    )
    assert Weather.description == "The weather forecast for a location."
    assert Weather.classifier_guide is before


# --- registries are values: two graphs, two registries -------------------------------------------


def ask(graph: Any, text: str) -> dict[str, Any]:
    return dict(
        graph.invoke({"messages": [HumanMessage(content=text)]}, {"configurable": {"thread_id": text}})
    )


def test_two_graphs_with_different_registries_keep_their_own_capabilities(tmp_path: Path) -> None:
    head = VALID.split("  - name: calculator")[0]
    arithmetic = write(
        tmp_path,
        name="a.yaml",
        text=head + "  - name: calculator\n    class: capabilities.calculator:Calculator\n",
    )
    clock = write(
        tmp_path, name="b.yaml", text=head + "  - name: clock\n    class: capabilities.clock:Clock\n"
    )
    settings = Settings.offline(tmp_path)
    first = build_graph(registry=arithmetic, settings=settings, checkpointer="memory")
    second = build_graph(registry=clock, settings=settings, checkpointer="memory")

    state = ask(first, "what is 12 times 7")
    assert state["control_stop_reason"] == "success"
    assert "84" in state["messages"][-1].content
    assert {c["name"] for c in state["planning_capabilities"]} == {"respond", "clarify", "calculator"}

    state = ask(second, "what is 12 times 7")
    assert state["control_stop_reason"] == "clarify"
    assert {c["name"] for c in state["planning_capabilities"]} == {"respond", "clarify", "clock"}

    state = ask(second, "what time is it in Tokyo")
    assert state["control_stop_reason"] == "success" and "Asia/Tokyo" in state["messages"][-1].content
    state = ask(first, "what time is it in Tokyo")  # the first graph did not gain the clock
    assert state["control_stop_reason"] == "clarify"
    assert "clock" not in {c["name"] for c in state["planning_capabilities"]}


def test_loading_twice_gives_independent_instances(tmp_path: Path) -> None:
    path = write(tmp_path)
    one, two = Registry.from_file(path), Registry.from_file(path)
    assert one["weather"].instance is not two["weather"].instance
    assert list(one.capabilities) == list(two.capabilities)
