"""``liveness analyze``: the study's analyses of one scan (or its shards) as JSON and a table.

Unreadable inputs are reported one line each on stderr; the analyses of the readable ones are
still written. The exit status is then 2 (bad input) so scripts notice; it is 0 only when every
input was read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

from liveness.analysis import Summary, summarize
from liveness.analysis.sets import DEFAULT_PREFIX6
from liveness.analysis.tables import format_headline
from liveness.analysis.zmap_files import missing_fields_note, parse_zmap_spec, zmap_fields
from liveness.cli._common import (
    check_output_file,
    echo,
    emit_json,
    json_option,
    log,
    output_file,
)
from liveness.errors import InputError
from liveness.targets.inputs import excerpt

__all__ = [
    "check_zmap_inputs",
    "command",
    "dask_options",
    "fail_on_bad_inputs",
    "prefix6_option",
    "summarize_scans",
    "write_json",
]

F = TypeVar("F", bound=Callable[..., Any])


_DASK_ADDRESS = re.compile(
    r"(?:(?:tcp|tls|ws|wss|ucx)://)?(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})"
)


def _check_dask_address(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``--dask``: ``[SCHEME://]HOST:PORT`` (a scheduler's address), refused early if malformed."""
    if value is None or value.startswith("inproc://"):
        return value
    match = _DASK_ADDRESS.fullmatch(value)
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise click.BadParameter(
            f"{excerpt(value)} is not a Dask scheduler address (SCHEME://HOST:PORT, e.g. "
            "tcp://127.0.0.1:8786)"
        )
    return value


def dask_options(func: F) -> F:
    """``--workers N`` (a local Dask cluster) and ``--dask ADDRESS`` (an existing scheduler)."""
    func = click.option(
        "--dask",
        "dask_address",
        metavar="ADDRESS",
        callback=_check_dask_address,
        help="Run the per-file reduction on this Dask scheduler (e.g. tcp://host:8786).",
    )(func)
    func = click.option(
        "--workers",
        type=click.IntRange(min=1),
        metavar="N",
        help="Run the per-file reduction on a local Dask cluster of N worker processes.",
    )(func)
    return func


def prefix6_option(func: F) -> F:
    """``--prefix6 N``: the IPv6 prefix length the analyses count blocks of."""
    return click.option(
        "--prefix6",
        type=click.IntRange(1, 64),
        default=DEFAULT_PREFIX6,
        show_default=True,
        metavar="N",
        help="IPv6 blocks are /N prefixes (IPv4 blocks are /24s); 64 counts subnets.",
    )(func)


def _hint_zmap(path: str) -> None:
    """A note when ``path`` looks like ZMap output given without its probe."""
    try:
        names = zmap_fields(path)
    except (InputError, OSError):
        return
    if "saddr" in names and "probe" not in names:
        log(f"liveness: note: {path} looks like ZMap output: name its probe as {path}:PROBE")


def check_zmap_inputs(scans: tuple[str, ...]) -> None:
    """Check every ``FILE:PROBE`` (ZMap output) argument: its probe must name one probe type
    (else InputError); a file lacking fields some analyses need gets one note line."""
    from liveness.probes.registry import parse_probes

    zmap_inputs = False
    for scan in scans:
        source = parse_zmap_spec(scan)
        if source is None:
            _hint_zmap(scan)
            continue
        try:
            names = [probe.name for probe in parse_probes(source.probe)]
        except InputError as exc:
            reason = str(exc).removeprefix("--probes: ")
            raise InputError(f"{scan}: {source.probe!r} is not a probe ({reason})") from None
        if names != [source.probe]:
            raise InputError(f"{scan}: give one probe per ZMap file (e.g. FILE:tcp_syn:443)")
        zmap_inputs = True
        try:
            note = missing_fields_note(source)
        except InputError:
            continue  # reported with the file's analysis
        if note:
            log(f"liveness: note: {note}")
    if zmap_inputs:
        log(
            "liveness: note: ZMap output records no retransmission attempt: its replies count "
            "as answers to the first probe (analysis 8 finds no gain in them)"
        )


def summarize_scans(
    scans: tuple[str, ...],
    workers: int | None,
    dask_address: str | None,
    passes: int = 1,
    prefix6: int = DEFAULT_PREFIX6,
) -> Summary:
    """Summarize ``scans``, logging one line per unreadable file."""
    check_zmap_inputs(scans)
    if workers is not None and dask_address is not None:
        raise InputError("--workers and --dask: give one or the other")
    summary = summarize(
        scans, workers=workers, dask_address=dask_address, passes=passes, prefix6=prefix6
    )
    for entry in summary["inputs"]["files"]:
        if entry["error"]:
            log(f"liveness: warning: skipped {entry['error']}")
    return summary


def fail_on_bad_inputs(summary: Summary) -> None:
    """Exit with status 2 (after the outputs were written) when some input was unreadable."""
    inputs = summary["inputs"]
    if inputs["errors"]:
        raise InputError(
            f"{inputs['errors']} of {len(inputs['files'])} input file(s) unreadable;"
            " the results cover the others"
        )


def write_json(summary: Summary, path: str, flag: str = "-o") -> None:
    """Write ``summary`` to ``path`` atomically (an earlier file stays whole if this fails)."""
    with output_file(path, flag) as temporary, open(temporary, "w", encoding="utf-8") as out:
        json.dump(summary, out, indent=1)
        out.write("\n")


@click.command(name="analyze")
@click.argument("scans", nargs=-1, required=True)
@click.option("-o", "--output", metavar="FILE", help="Write the summary as JSON to FILE.")
@click.option(
    "--passes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Read the scans this many times, one part of the address space each: memory / P "
    "(2 keeps the study's 500M addresses under 5 GB).",
)
@prefix6_option
@dask_options
@json_option
def command(
    scans: tuple[str, ...],
    output: str | None,
    passes: int,
    prefix6: int,
    workers: int | None,
    dask_address: str | None,
    as_json: bool,
) -> None:
    """Classify the addresses of SCANS (reply files) and run the study's analyses.

    A SCAN may be ZMap's CSV or JSON output, one file per probe, as FILE:PROBE
    (``icmp.csv:icmp_echo tcp443.json:tcp_syn:443``).

    Prints the headline table (on stderr with --json, where stdout holds the summary). IPv4
    and IPv6 rows are analysed apart: the IPv6 figures stand beside the IPv4 ones, and the
    JSON has a section per family (``ipv4``, the top level as before, and ``ipv6``).
    An unreadable SCAN is reported and skipped: the others are analysed and written, and the
    exit status is 2.
    """
    if output:
        check_output_file(output, "-o")
    summary = summarize_scans(scans, workers, dask_address, passes, prefix6)
    if output:
        write_json(summary, output)
    table = format_headline(summary)
    if as_json:
        emit_json(summary)
        log(table)
    else:
        echo(table)
    fail_on_bad_inputs(summary)
