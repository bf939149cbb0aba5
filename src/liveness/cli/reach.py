"""``liveness reach``: connectivity reasoning; each subcommand lives in ``cli/reach_<name>.py``."""

from __future__ import annotations

import importlib

import click

__all__ = ["command"]

REACH_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "detect": ("reach_detect", "Find outages, peninsulas and islands in observations."),
    "dnsmon": (
        "reach_dnsmon",
        "DNS-root query loss: all VPs, without islands, without peninsulas.",
    ),
    "core": ("reach_core", "The Internet core: strongly connected components by active addresses."),
    "rir": ("reach_rir", "Allocated and active addresses per RIR and country; who could secede."),
    "report": ("reach_report", "Write an HTML report of connectivity events."),
}


class _ReachGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(REACH_SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in REACH_SUBCOMMANDS:
            return None
        module = importlib.import_module(f"liveness.cli.{REACH_SUBCOMMANDS[cmd_name][0]}")
        found = module.command
        assert isinstance(found, click.Command)
        return found

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(n, h) for n, (_, h) in REACH_SUBCOMMANDS.items()])


@click.group(cls=_ReachGroup, name="reach")
def command() -> None:
    """Reason about connectivity from observations by several vantage points."""
