"""Helpers shared by the subcommands: JSON output on stdout, progress on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

__all__ = ["emit_json", "json_option", "log"]

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as one JSON object on stdout."
)


def _default(value: Any) -> Any:
    """Make numpy scalars and arrays, sets and paths JSON-serialisable."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def emit_json(result: Any) -> None:
    """Print ``result`` as one JSON object on stdout."""
    sys.stdout.write(json.dumps(result, default=_default, sort_keys=False) + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    """A progress or log line on stderr (stdout is kept for results)."""
    click.echo(message, err=True)
