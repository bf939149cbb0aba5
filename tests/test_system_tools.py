"""Every external command the code, tests and benchmarks run is listed in
``scripts/system-tools.txt`` (which the bootstrap installs and ``make test`` checks first).

This once went wrong silently: the testbed tests called ``ping``, the bootstrap never installed
it, and CI passed only because the tool happened to be on the machine. The commands are found in
the source itself: the first word of every literal argument vector handed to ``subprocess`` (or
to a helper that runs one), the command after ``ip netns exec NS``, and ``shutil.which`` names.
"""

from __future__ import annotations

import ast
from pathlib import Path

from liveness.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
RUNNERS = {"run", "Popen", "check_output", "check_call", "call", "_run", "_ip", "_spawn"}


def _listed() -> dict[str, str]:
    listed = {}
    for line in (ROOT / "scripts" / "system-tools.txt").read_text().splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            listed[words[0]] = words[1]
    return listed


def _argv_words(node: ast.expr) -> list[str | None]:
    if isinstance(node, ast.List | ast.Tuple):
        return [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
    return []


def _commands_run() -> dict[str, str]:
    """command -> one place that runs it."""
    found: dict[str, str] = {}
    for folder in ("src", "tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                vectors: list[list[str | None]] = []
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    if name == "which" and node.args and isinstance(node.args[0], ast.Constant):
                        vectors.append([node.args[0].value])
                    elif name in RUNNERS:
                        vectors.extend(_argv_words(arg) for arg in node.args[:3])
                elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id.endswith(("argv", "cmd", "command"))
                    for t in node.targets
                ):
                    vectors.append(_argv_words(node.value))
                for words in vectors:
                    if words[:3] == ["ip", "netns", "exec"] and len(words) > 4:
                        words = [words[0], *words[4:]]
                        if isinstance(words[1], str):
                            found.setdefault(words[1], f"{path.relative_to(ROOT)}:{node.lineno}")
                    if words and isinstance(words[0], str):
                        found.setdefault(words[0], f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def _own_subcommands() -> set[str]:
    """``liveness`` subcommands (tests run them as ``[..., "scan", ...]``)."""
    import click

    context = click.Context(cli)
    names = set(cli.list_commands(context))
    for name in list(names):
        group = cli.get_command(context, name)
        if isinstance(group, click.Group):
            names |= set(group.list_commands(context))
    return names


def test_every_command_the_code_runs_is_installed_by_the_bootstrap() -> None:
    listed = _listed()
    found = _commands_run()
    unlisted = {
        command: where
        for command, where in found.items()
        if command not in listed
        and command not in _own_subcommands()
        and not command.startswith(("-", "/", "."))
        and command not in {"python", "python3", "liveness", "chromium-browser"}
    }
    assert not unlisted, f"add these to scripts/system-tools.txt with their package: {unlisted}"


def test_the_finder_sees_the_commands_that_were_once_missed() -> None:
    found = _commands_run()
    assert {"ping", "nft", "tcpdump", "dnsmasq", "chronyd", "ip"} <= set(found)
    assert _listed()["ping"] == "iputils-ping"
