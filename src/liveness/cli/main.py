"""The ``liveness`` command: a click group whose subcommands live one per module.

Subcommands are imported lazily (``liveness --help`` stays fast, and a broken optional
dependency of one command cannot break the others). Every error is one line on stderr: a
``LivenessError`` or a usage error with its exit status (2 for bad usage or input), anything
else (a bug) as an internal error with status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
from typing import Any

# Before any subcommand imports numpy: its OpenBLAS would start a worker thread per core, and
# idle workers spin. The commands' numpy work is elementwise (no BLAS); in a scan the spinning
# took CPU from the sender and the kernel (6% more CPU per frame into a sink). A value the user
# set is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click

from liveness import __version__
from liveness.cli._common import flush_stdout
from liveness.errors import LivenessError

__all__ = ["cli", "main", "one_line"]

# command name -> (module under liveness.cli, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("scan", "Probe targets with several probe types at once and record every reply."),
    "decode": ("decode", "Turn a pcap of replies into reply records, offline."),
    "testbed": ("testbed", "Build, inspect and remove an emulated Internet in namespaces."),
    "analyze": ("analyze", "Classify addresses by the liveness taxonomy; the study's analyses."),
    "report": ("report", "Write a self-contained HTML report of one or more scans."),
    "sql": ("sql", "Query reply files (and ground truth) with DuckDB SQL."),
    "ipset": ("ipset", "Build and combine IPv4 and IPv6 address sets, like SiLK's rwset."),
    "reach": ("reach", "Outages, islands, peninsulas, the core, DNSmon, RIR tables."),
    "monitor": ("monitor", "Trinocular-style block monitoring from vantage points."),
    "demo": ("demo", "Run the main job end to end on the built-in testbed."),
    "cleanup": ("cleanup", "Remove what a killed --app-layer scan left (its RST guard)."),
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


ERROR_CHARS = 400


def one_line(message: str, limit: int = ERROR_CHARS) -> str:
    """``message`` on one line of at most about ``limit`` characters (its middle elided)."""
    text = re.sub(r"\s*[\r\n]+\s*", " ", message).strip()
    if len(text) <= limit:
        return text
    head = limit * 3 // 4
    return f"{text[:head]} … {text[-(limit - head) :]}"


def _error(message: str) -> None:
    with contextlib.suppress(OSError):  # stderr gone too: the exit status still tells
        click.echo(f"liveness: error: {one_line(message)}", err=True)


def _usage_message(exc: click.UsageError) -> str:
    """A click usage error as one line, with the command it is about and where to get help."""
    if exc.ctx is None:
        return exc.format_message()
    path = exc.ctx.command_path
    command = path.partition(" ")[2] or path
    return f"{command}: {exc.format_message()} (see '{path} -h')"


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the group, turning known errors into one line and an exit status.

    Anything else is a bug: one line naming it (exit 1), or the traceback with ``--debug``.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        result = cli.main(args=args, prog_name="liveness", standalone_mode=False)
        flush_stdout()
        return result
    except click.exceptions.Abort:
        _interrupted()
    except click.UsageError as exc:
        _error(_usage_message(exc))
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _error(exc.format_message())
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except LivenessError as exc:
        if debug:
            raise
        _error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:
        if debug:
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        sys.exit(1)


def _interrupted() -> None:
    with contextlib.suppress(OSError):
        click.echo("liveness: interrupted", err=True)
    sys.exit(130)


if __name__ == "__main__":
    main()
