"""The README's marked code blocks work as printed, from a copy of the repository.

A marker is an HTML comment on the line before a fenced block (invisible on GitHub):

- `<!-- test: write PATH -->` / `<!-- test: append PATH -->`: the block's text is written to (or
  appended to) PATH in the copy, as a reader following the README would do by hand;
- `<!-- test: expect "TEXT" ... -->`: every command line of the block (a line starting with
  `.venv/bin/`, after a leading `./scripts/setup && `, which the copy's `.venv` stands for) runs in
  the copy, from its root, and each TEXT must appear in what the commands print (stdout and stderr).
  The expected texts are the output lines the README shows next to the command, minus what changes
  from run to run (a time of day, a thread id).

Blocks run in the README's order, in one copy of the repository (`git ls-files`: what a clone has),
with a data directory of their own and the test session's model cache. The copy's
`.venv/bin/routegraph` and `.venv/bin/python` are this interpreter with the copy on `PYTHONPATH`:
an editable install of the clone.

Before a block runs, the copy's registry is compiled once with the session's model cache (MiniLM
fine-tuned on its guides, as the README says the first request does): the blocks' requests then
measure routing within their turn's `max_seconds`, not how fast this shared machine trains.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- test: (write|append|expect)\b(.*?)-->\s*$")
FENCE = re.compile(r"^\s*```")
TIMEOUT = 900
WARM = (
    "from graph import Registry, Settings\n"
    "from graph.classifier.build import build_scorer\n"
    "build_scorer(Registry.from_file('registry.yaml'), Settings.from_env()).compile()\n"
)


@dataclass(frozen=True)
class Block:
    line: int
    action: str
    argument: str
    text: str

    @property
    def expected(self) -> list[str]:
        return shlex.split(self.argument)

    def commands(self) -> list[str]:
        out = []
        for raw in self.text.splitlines():
            line = raw.strip()
            line = line.removeprefix("./scripts/setup && ")
            if line.startswith(".venv/bin/"):
                out.append(line)
        return out


def marked_blocks(text: str) -> list[Block]:
    """The marked fenced blocks of a markdown text, in order (indented blocks in lists included)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = MARKER.match(lines[i].strip())
        if match is None:
            i += 1
            continue
        start = i + 1
        if start >= len(lines) or not FENCE.match(lines[start]):
            raise AssertionError(f"README.md:{i + 1}: a test marker must be followed by a fenced block")
        indent = len(lines[start]) - len(lines[start].lstrip())
        end = start + 1
        while end < len(lines) and not FENCE.match(lines[end]):
            end += 1
        body = "\n".join(line[indent:] for line in lines[start + 1 : end]) + "\n"
        blocks.append(Block(i + 1, match.group(1), match.group(2).strip(), body))
        i = end + 1
    return blocks


def test_the_parser_finds_blocks_and_their_commands() -> None:
    text = (
        'Intro\n<!-- test: expect "a b" c -->\n```bash\n./scripts/setup && .venv/bin/routegraph ask "x"\n'
        "# a comment\n.venv/bin/routegraph validate   # trailing\n```\n\n"
        "1. Step:\n\n   <!-- test: write pkg/m.py -->\n   ```python\n   x = 1\n   ```\n"
    )
    first, second = marked_blocks(text)
    assert first.expected == ["a b", "c"]
    assert first.commands() == ['.venv/bin/routegraph ask "x"', ".venv/bin/routegraph validate   # trailing"]
    assert (second.action, second.argument, second.text) == ("write", "pkg/m.py", "x = 1\n")
    with pytest.raises(AssertionError, match=r"README\.md:1"):
        marked_blocks("<!-- test: expect x -->\nno fence\n")


def clone(target: Path) -> None:
    """The files a fresh clone has: tracked ones, plus new files not ignored (this worktree's)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name, follow_symlinks=False)


def venv(copy: Path) -> None:
    bin_dir = copy / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, program in (
        ("routegraph", f"{shlex.quote(sys.executable)} -m graph.cli"),
        ("python", shlex.quote(sys.executable)),
    ):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec {program} "$@"\n')
        script.chmod(0o755)


def test_readme_blocks_work_as_printed(tmp_path: Path, shared_model_cache: Path) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout (git ls-files lists what a clone has)")
    blocks = marked_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert sum(b.action == "expect" for b in blocks) >= 4, "the README lost its tested examples"
    copy = tmp_path / "clone"
    copy.mkdir()
    clone(copy)
    venv(copy)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ROUTEGRAPH", "PYTHON"))},
        "PYTHONPATH": str(copy),
        "ROUTEGRAPH_DATA_DIR": str(tmp_path / "data"),
        "ROUTEGRAPH_CACHE_DIR": str(shared_model_cache),
        "LANGSMITH_TRACING": "false",
    }
    warmed: set[str] = set()
    for block in blocks:
        where = f"README.md:{block.line}"
        registry_text = (copy / "registry.yaml").read_text(encoding="utf-8")
        if block.action == "expect" and registry_text not in warmed:
            warmed.add(registry_text)
            done = subprocess.run(
                [str(copy / ".venv" / "bin" / "python"), "-c", WARM],
                cwd=copy,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
            assert done.returncode == 0, f"{where}: compiling the registry failed:\n{done.stderr[-3000:]}"
        if block.action in ("write", "append"):
            path = copy / block.argument
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a" if block.action == "append" else "w", encoding="utf-8") as handle:
                handle.write(block.text)
            continue
        commands = block.commands()
        assert commands, f"{where}: no .venv/bin/ command in the block"
        printed = ""
        for command in commands:
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=copy,
                env=env,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=TIMEOUT,
            )
            printed += done.stdout + done.stderr
            assert done.returncode == 0, f"{where}: `{command}` exited {done.returncode}:\n{printed[-3000:]}"
        for text in block.expected:
            assert text in printed, f"{where}: {text!r} not in the output:\n{printed[-3000:]}"


CAPABILITY = """
from graph import Capability, CapabilityInputs, ClassifierGuide, GuideExample, RunContext


class Echo(Capability):
    name = "echo"
    description = "Says the request back."
    Inputs = CapabilityInputs
    classifier_guide = ClassifierGuide(examples=(GuideExample(query="say it back", reason="echo"),))

    async def execute(self, inputs: CapabilityInputs, ctx: RunContext) -> dict:
        return {"summary": inputs.query}
"""


@pytest.mark.parametrize(
    "module",
    [
        "rg_readme_caps.echo",  # a package of its own, on no Python path
        "capabilities.rg_readme_echo",  # inside a package name routegraph's own `capabilities` takes
    ],
)
def test_a_class_path_resolves_next_to_its_registry(tmp_path: Path, module: str) -> None:
    """`class:` paths that do not import from the Python path are found relative to the registry
    file's directory (as langgraph.json's `dependencies`), from any working directory."""
    from graph.config.registry import Registry

    project = tmp_path / "project"
    file = project.joinpath(*module.split(".")).with_suffix(".py")
    file.parent.mkdir(parents=True)
    if module.startswith("rg_readme_caps"):
        (file.parent / "__init__.py").write_text("")
    file.write_text(CAPABILITY)
    registry = project / "registry.yaml"
    registry.write_text(
        f"version: 1\nclassifier: {{encoder: lexical}}\ncapabilities:\n  - {{name: echo, class: '{module}:Echo'}}\n"
    )
    assert module not in sys.modules
    try:
        loaded = Registry.from_file(registry)
        assert type(loaded["echo"].instance).__module__ == module
        assert Path(sys.modules[module].__file__ or "") == file
        # The same text elsewhere, with no directory to look in: a registry problem, not a crash.
        for name in [n for n in sys.modules if n == module or n.startswith("rg_readme_caps")]:
            sys.modules.pop(name)
        from graph.errors import RegistryError

        with pytest.raises(RegistryError, match="no module named"):
            Registry.from_text(registry.read_text(), source="<text>")
    finally:
        for name in [n for n in sys.modules if n == module or n.startswith("rg_readme_caps")]:
            sys.modules.pop(name)
