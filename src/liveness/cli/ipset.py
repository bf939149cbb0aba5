"""``liveness ipset``: build and combine IP sets of both families (rwsettool's verbs)."""

from __future__ import annotations

from collections.abc import Callable

import click

from liveness.analysis import ipset
from liveness.analysis.ipset import IPSet
from liveness.cli._common import check_output_file, echo, emit_json, json_option, log, output_file
from liveness.targets.inputs import check_input_file

__all__ = ["command"]

_output_option = click.option(
    "-o",
    "--output",
    "output",
    required=True,
    help="Where to write the set (IPv4 only: roaring format; with IPv6: docs/ipset-format.md).",
)


def _inputs(paths: tuple[str, ...]) -> tuple[str, ...]:
    """``paths``, each checked to be a file a reader can finish (not a directory or device)."""
    for path in paths:
        check_input_file(path)
    return paths


def _finish(result: IPSet, output: str, as_json: bool) -> None:
    """Save a computed set; report its size (JSON on stdout, or a log line on stderr)."""
    with output_file(output, "-o") as temporary:
        ipset.save_set(result, temporary)
    if as_json:
        emit_json({"output": output, **result.counts()})
    else:
        log(f"wrote {_sizes(result)} to {output}")


def _sizes(result: IPSet) -> str:
    if not result.count6:
        return f"{result.count} addresses"
    return f"{result.count} addresses ({result.count4} IPv4, {result.count6} IPv6)"


@click.group(name="ipset")
def command() -> None:
    """Build and combine IP sets (IPv4 and IPv6, mixed too), like SiLK's rwset tools.

    A set holding only IPv4 addresses is stored as a portable roaring bitmap (as before); a set
    with IPv6 addresses in the format of docs/ipset-format.md. Every verb works on each family
    separately.
    """


@command.command("build")
@click.argument("scans", nargs=-1, required=True)
@click.option(
    "--filter", "row_filter", help="Reply filter, e.g. 'probe = tcp_syn:443 and reply = synack'."
)
@click.option(
    "--column",
    default="target",
    show_default=True,
    help="Address field: target, responder, icmp_responder (each row's family decides: "
    "target6 on IPv6 rows), or target6/responder6 (IPv6 rows only).",
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
    """A set from text files: one IPv4 or IPv6 address or CIDR a line ('#' comments allowed)."""
    check_output_file(output, "-o")
    _finish(ipset.union(*(ipset.from_text(path) for path in _inputs(files))), output, as_json)


def _combiner(name: str, help_text: str) -> click.Command:
    operations: dict[str, Callable[..., IPSet]] = {
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
@click.argument("prefix_length", type=click.IntRange(0, 128))
@click.argument("set_file", metavar="SET")
@click.option(
    "--v6",
    "prefix_length6",
    type=click.IntRange(0, 128),
    help="IPv6 prefix length (0..128); PREFIX_LENGTH then applies to IPv4 only.",
)
@_output_option
@json_option
def mask(
    prefix_length: int, set_file: str, prefix_length6: int | None, output: str, as_json: bool
) -> None:
    """Replace each address by the base of its /PREFIX_LENGTH block (mask 24: /24 blocks).

    PREFIX_LENGTH applies to the family SET holds (0..32 for IPv4, 0..128 for IPv6). A set
    holding both families needs --v6: 'mask 24 --v6 64 SET' masks IPv4 to /24 and IPv6 to /64.
    """
    check_output_file(output, "-o")
    check_input_file(set_file)
    _finish(ipset.mask(ipset.load_set(set_file), prefix_length, prefix_length6), output, as_json)


@command.command("count")
@click.argument("set_file", metavar="SET")
@json_option
def count(set_file: str, as_json: bool) -> None:
    """Print how many addresses SET holds: the total, then 'ipv4 N' and 'ipv6 N' lines."""
    check_input_file(set_file)
    result = ipset.load_set(set_file)
    if as_json:
        emit_json({"file": set_file, **result.counts()})
    else:
        echo(f"{result.count}\nipv4 {result.count4}\nipv6 {result.count6}")


@command.command("list")
@click.argument("set_file", metavar="SET")
@click.option("--cidr", is_flag=True, help="Print the minimal CIDR cover instead of addresses.")
@json_option
def list_set(set_file: str, cidr: bool, as_json: bool) -> None:
    """Print the addresses of SET, one a line, IPv4 then IPv6 (RFC 5952 text), or with --cidr
    the fewest CIDR blocks of each family (a large IPv6 set can only be listed with --cidr)."""
    check_input_file(set_file)
    addresses = ipset.load_set(set_file)
    chunks = ipset.cidr_lines(addresses) if cidr else ipset.address_lines(addresses)
    if as_json:
        key = "cidrs" if cidr else "addresses"
        emit_json({"file": set_file, **addresses.counts(), key: [a for c in chunks for a in c]})
        return
    for chunk in chunks:
        if chunk:
            echo("\n".join(chunk))
