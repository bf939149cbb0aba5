"""``liveness ipset``: build and combine IPv4 sets stored as roaring bitmaps (rwsettool's verbs)."""

from __future__ import annotations

from collections.abc import Callable

import click
import numpy as np
import numpy.typing as npt
from pyroaring import BitMap

from liveness.analysis import ipset
from liveness.cli._common import check_output_file, echo, emit_json, json_option, log, output_file
from liveness.output.addresses import format_dotted
from liveness.targets.inputs import check_input_file

__all__ = ["command"]

_output_option = click.option(
    "-o", "--output", "output", required=True, help="Where to write the set (roaring format)."
)


def _inputs(paths: tuple[str, ...]) -> tuple[str, ...]:
    """``paths``, each checked to be a file a reader can finish (not a directory or device)."""
    for path in paths:
        check_input_file(path)
    return paths


def _finish(result: BitMap, output: str, as_json: bool) -> None:
    """Save a computed set; report its size (JSON on stdout, or a log line on stderr)."""
    with output_file(output, "-o") as temporary:
        ipset.save_set(result, temporary)
    if as_json:
        emit_json({"output": output, "count": len(result)})
    else:
        log(f"wrote {len(result)} addresses to {output}")


@click.group(name="ipset")
def command() -> None:
    """Build and combine IPv4 sets (roaring bitmaps), like SiLK's rwset tools."""


@command.command("build")
@click.argument("scans", nargs=-1, required=True)
@click.option(
    "--filter", "row_filter", help="Reply filter, e.g. 'probe = tcp_syn:443 and reply = synack'."
)
@click.option(
    "--column", default="target", show_default=True, help="Address field: target, responder, ..."
)
@_output_option
@json_option
def build(
    scans: tuple[str, ...], row_filter: str | None, column: str, output: str, as_json: bool
) -> None:
    """Addresses of the reply rows of SCANS matching --filter."""
    check_output_file(output, "-o")
    _finish(ipset.from_replies(scans, row_filter, column), output, as_json)


@command.command("from-text")
@click.argument("files", nargs=-1, required=True)
@_output_option
@json_option
def from_text(files: tuple[str, ...], output: str, as_json: bool) -> None:
    """A set from text files: one address or CIDR a line ('#' comments allowed)."""
    check_output_file(output, "-o")
    _finish(ipset.union(*(ipset.from_text(path) for path in _inputs(files))), output, as_json)


def _combiner(name: str, help_text: str) -> click.Command:
    operations: dict[str, Callable[..., BitMap]] = {
        "union": ipset.union,
        "intersect": ipset.intersect,
        "difference": ipset.difference,
        "symdiff": ipset.symdiff,
    }
    operation = operations[name]

    @click.command(name, help=help_text)
    @click.argument("sets", nargs=-1, required=True)
    @_output_option
    @json_option
    def combine(sets: tuple[str, ...], output: str, as_json: bool) -> None:
        check_output_file(output, "-o")
        _finish(operation(*ipset.load_sets(_inputs(sets))), output, as_json)

    return combine


for _name, _help in (
    ("union", "Addresses in any of SETS."),
    ("intersect", "Addresses in every one of SETS."),
    ("difference", "Addresses of the first set that are in none of the others."),
    ("symdiff", "Addresses in an odd number of SETS (for two: in exactly one)."),
):
    command.add_command(_combiner(_name, _help))


@command.command("mask", context_settings={"ignore_unknown_options": True})
@click.argument("prefix_length", type=click.IntRange(0, 32))
@click.argument("set_file", metavar="SET")
@_output_option
@json_option
def mask(prefix_length: int, set_file: str, output: str, as_json: bool) -> None:
    """Replace each address by the base of its /PREFIX_LENGTH block (mask 24: /24 blocks)."""
    check_output_file(output, "-o")
    check_input_file(set_file)
    _finish(ipset.mask(ipset.load_set(set_file), prefix_length), output, as_json)


@command.command("count")
@click.argument("set_file", metavar="SET")
@json_option
def count(set_file: str, as_json: bool) -> None:
    """Print how many addresses SET holds."""
    check_input_file(set_file)
    size = len(ipset.load_set(set_file))
    if as_json:
        emit_json({"file": set_file, "count": size})
    else:
        echo(str(size))


@command.command("list")
@click.argument("set_file", metavar="SET")
@click.option("--cidr", is_flag=True, help="Print the minimal CIDR cover instead of addresses.")
@json_option
def list_set(set_file: str, cidr: bool, as_json: bool) -> None:
    """Print the addresses of SET, one a line (or its fewest CIDR blocks with --cidr)."""
    check_input_file(set_file)
    addresses = ipset.load_set(set_file)
    if cidr:
        lines = ipset.format_cidrs(*ipset.cidr_cover(addresses))
        if as_json:
            emit_json({"file": set_file, "count": len(addresses), "cidrs": lines})
        elif lines:
            echo("\n".join(lines))
        return
    if as_json:
        listed = [a for chunk in ipset.address_chunks(addresses) for a in _dotted(chunk)]
        emit_json({"file": set_file, "count": len(addresses), "addresses": listed})
        return
    for chunk in ipset.address_chunks(addresses):
        echo("\n".join(_dotted(chunk)))


def _dotted(chunk: npt.NDArray[np.int64]) -> list[str]:
    return [str(text) for text in format_dotted(chunk.astype(np.uint32)).to_pylist()]
