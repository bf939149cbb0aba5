"""The ``liveness`` command: a click group whose subcommands live one per module.

Subcommands are imported lazily (``liveness --help`` stays fast, and a broken optional
dependency of one command cannot break the others). Every ``LivenessError`` becomes one line on
stderr and its exit status; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from liveness import __version__
from liveness.errors import LivenessError

__all__ = ["cli", "main"]

# command name -> (module under liveness.cli, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("scan", "Probe targets with several probe types at once and record every reply."),
    "decode": ("decode", "Turn a pcap of replies into reply records, offline."),
    "testbed": ("testbed", "Build, inspect and remove an emulated Internet in namespaces."),
    "analyze": ("analyze", "Classify addresses by the liveness taxonomy; the study's analyses."),
    "report": ("report", "Write a self-contained HTML report of one or more scans."),
    "ipset": ("ipset", "Build and combine IPv4 sets (roaring bitmaps), like SiLK's rwset."),
    "reach": ("reach", "Outages, islands, peninsulas, the core, DNSmon, RIR tables."),
    "monitor": ("monitor", "Trinocular-style block monitoring from vantage points."),
    "demo": ("demo", "Run the main job end to end on the built-in testbed."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return None
        module_name, _ = SUBCOMMANDS[cmd_name]
        module = importlib.import_module(f"liveness.cli.{module_name}")
        command = module.command
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, help_text) in SUBCOMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="liveness")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Internet liveness scanning, analysis and connectivity reasoning."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the group, turning known errors into one line and an exit status."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        return cli.main(args=args, prog_name="liveness", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("liveness: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except LivenessError as exc:
        if debug:
            raise
        click.echo(f"liveness: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("liveness: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
