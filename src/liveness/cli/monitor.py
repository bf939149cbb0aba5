"""``liveness monitor``: Trinocular-style monitoring of IPv4 /24 and IPv6 blocks from one
vantage point or all.

Reads the census (E(b) per block; IPv6 addresses of a census are grouped into ``--block6``
prefixes, /48 by default), runs ``--rounds`` rounds of adaptive probing of every family the
census holds and streams, per VP, a Trinocular-format FSDB file (IPv4; ``VP.fsdb6`` for IPv6)
and one Observation parquet of both families into ``-o OUTDIR``. Probes go through
:func:`liveness.monitor.make_prober`: ``--live`` sends ICMP / ICMPv6 echo on the wire through the
scan engine (``-i``/``-S``/``-G``/``--source-ip6`` as for ``liveness scan``, looked up from the
route to the family's first census address when absent); ``--model`` uses the in-process
responder model (simulated time, no packets). Sending is opt-in: without either flag nothing
is sent.

``--testbed SPEC`` brings the spec's testbed up, scans it for a census from its first VP (two
ICMP echo passes of ``liveness scan`` over both families, unless ``--census`` is given), runs
one live monitor per VP inside its namespace on a shared round clock, both families in each
(:mod:`liveness.monitor.multi`), writes the schedule and each VP's own blocks beside the
outputs, and takes the testbed down.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
from pathlib import Path
from typing import Any

import click

from liveness.cli._common import (
    FiniteFloat,
    check_output_dir,
    echo,
    emit_json,
    json_option,
    log,
)
from liveness.errors import InputError
from liveness.monitor import (
    TrinocularParams,
)
from liveness.monitor.census import DEFAULT_BLOCK6
from liveness.monitor.driver import monitor_vp
from liveness.reach.trinocular import ROUND_S
from liveness.targets.inputs import excerpt

__all__ = ["command", "parse_params"]


_VP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

TESTBED_BLOCK6 = 56
"""``--block6`` with ``--testbed``: the testbed gives IPv4 host X.Y the twin 2001:2:0:XXYY::1,
so a /24 is a /56 there."""

# Parameters --param may not set, and why: they are fixed, or set by a flag of their own.
_NOT_PARAMS = {
    "block_size": "is fixed at 256: the size of a /24, used for IPv6 blocks alike",
    "round_s": "is set by --round-s",
}


def parse_params(
    items: tuple[str, ...], round_s: float, scale_rate_window: bool = False
) -> TrinocularParams:
    """``NAME=VALUE`` overrides of :class:`TrinocularParams` (``--param``), each checked.

    Integers must be written as integers, other values as finite numbers; a parameter given
    twice, or one that would have no effect, is refused.
    """
    types = {field.name: field.type for field in dataclasses.fields(TrinocularParams)}
    settable = [name for name in types if name not in _NOT_PARAMS]
    values: dict[str, Any] = {"round_s": round_s}
    seen: set[str] = set()
    for item in items:
        name, sep, text = item.partition("=")
        where = f"--param {excerpt(item)}"
        if not sep or name not in types:
            raise InputError(f"{where}: expected NAME=VALUE with NAME one of {', '.join(settable)}")
        if name in _NOT_PARAMS:
            raise InputError(f"{where}: {name} {_NOT_PARAMS[name]}")
        if name == "rate_window_s" and scale_rate_window:
            raise InputError(
                f"{where}: --scale-rate-window sets rate_window_s from --round-s; "
                "add --no-scale-rate-window to set it"
            )
        if name in seen:
            raise InputError(f"{where}: {name} is given twice")
        seen.add(name)
        values[name] = _param_value(name, text.strip(), types[name] in ("int", int), where)
    return TrinocularParams(**values)


def _sources(source_ip: str | None, source_ip6: str | None) -> tuple[str | None, str | None]:
    """``-S`` may name the source of either family; ``--source-ip6`` only the IPv6 one."""
    for flag, value, version in (
        ("-S/--source-ip", source_ip, None),
        ("--source-ip6", source_ip6, 6),
    ):
        if value is None:
            continue
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise InputError(f"{flag}: {excerpt(value)} is not an IP address") from None
        if version == 6 and address.version != 6:
            raise InputError(f"{flag}: {excerpt(value)} is not an IPv6 address")
    if source_ip is not None and ipaddress.ip_address(source_ip).version == 6:
        if source_ip6 is not None:
            raise InputError("-S/--source-ip and --source-ip6 both name an IPv6 source")
        return None, source_ip
    return source_ip, source_ip6


def _param_value(name: str, text: str, integer: bool, where: str) -> int | float:
    """One ``--param`` value: an integer literal for an int parameter, else a finite number."""
    if integer:
        try:
            return int(text)
        except ValueError:
            raise InputError(f"{where}: {name} must be an integer (e.g. 15)") from None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {name} must be a number (e.g. 0.5)") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {name} must be a finite number")
    return value


def _parse_outage(spec: str, rounds: int | None, block6: int = 48) -> tuple[int, int, int, int]:
    """``a.b.c.0/24@R0-R1`` (or an IPv6 ``P/block6@R0-R1``): block down from round R0 up to
    (not including) R1, R0 < R1; as (family, block key, R0, R1)."""
    where = f"--model-outage {excerpt(spec)}"
    block, at, span = spec.partition("@")
    first_text, dash, end_text = span.partition("-")
    try:
        network = ipaddress.ip_network(block)
        wanted = 24 if network.version == 4 else block6
        if network.prefixlen != wanted or not at or not dash:
            raise ValueError
        first, end = int(first_text), int(end_text)
    except ValueError:
        raise InputError(
            f"{where}: expected a.b.c.0/24@FIRST-END or an IPv6 /{block6}@FIRST-END (rounds)"
        ) from None
    if first < 0 or end <= first:
        raise InputError(f"{where}: END must be after FIRST (rounds FIRST..END-1 are down)")
    if rounds is not None and first >= rounds:
        raise InputError(f"{where}: starts after the last round (--rounds {rounds})")
    key = int(network.network_address)
    return network.version, key if network.version == 4 else key >> 64, first, end


@click.command(name="monitor")
@click.option("--vp", help="Name of this vantage point (in outputs); not with --testbed.")
@click.option(
    "--census",
    "census_paths",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Census snapshot: IP-set file, text addresses or reply parquet; repeat for several.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    help="Rounds to run (--testbed: default until 2 rounds past the schedule's end).",
)
@click.option(
    "--round-s",
    type=FiniteFloat(min=1.0),
    default=float(ROUND_S),
    show_default=True,
    help="Round length in seconds (outputs have whole-second times).",
)
@click.option(
    "-o", "--output-dir", required=True, help="Directory for the outputs (made if absent)."
)
@click.option(
    "--start",
    type=click.IntRange(min=0),
    default=None,
    help="First round's start (epoch s); default now.",
)
@click.option("--param", "param_items", multiple=True, help="Override a parameter: NAME=VALUE.")
@click.option(
    "--scale-rate-window/--no-scale-rate-window",
    default=None,
    help="Emulation: shrink the 3600 s probe-bound window in proportion to --round-s/660 "
    "[default: on with --testbed, else off].",
)
@click.option("--changes-only", is_flag=True, help="FSDB rows only when a block's status changes.")
@click.option("--live", is_flag=True, help="Send ICMP echo on the wire (this host or namespace).")
@click.option("-i", "--interface", help="Live: interface to send on (default: the route's).")
@click.option("-S", "--source-ip", help="Live: source address (default: the route's).")
@click.option("--source-ip6", help="Live: IPv6 source address (default: the route's).")
@click.option(
    "--block6",
    type=click.IntRange(1, 64),
    default=None,
    help="IPv6 block length: the census' IPv6 addresses are monitored per /N "
    "[default: 48; 56 with --testbed, the testbed's twin of a /24].",
)
@click.option("-G", "--gateway-mac", help="Live: gateway MAC (default: the neighbour table's).")
@click.option(
    "--timeout",
    "timeout_s",
    type=FiniteFloat(min=0.001, max=60.0),
    default=0.5,
    show_default=True,
    help="Live: seconds each probe step waits for echo replies.",
)
@click.option(
    "-r",
    "--rate",
    "rate_pps",
    type=FiniteFloat(min=0.0),
    default=10_000.0,
    show_default=True,
    help="Live: probes per second within a step (0: as fast as possible).",
)
@click.option(
    "--testbed",
    "testbed_spec",
    help="Bring this testbed spec up and monitor live from all its VPs at once (root).",
)
@click.option("--model", is_flag=True, help="Probe the in-process responder model (no packets).")
@click.option("--model-seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--model-availability",
    type=FiniteFloat(0.0, 1.0),
    default=None,
    help="Model's response probability per address (default: the census', else 0.9).",
)
@click.option(
    "--model-outage",
    "outages",
    multiple=True,
    help="In the model, a.b.c.0/24@FIRST-END: block down for rounds FIRST..END-1.",
)
@json_option
def command(
    vp: str | None,
    census_paths: tuple[str, ...],
    rounds: int | None,
    round_s: float,
    output_dir: str,
    start: int | None,
    param_items: tuple[str, ...],
    scale_rate_window: bool | None,
    changes_only: bool,
    live: bool,
    interface: str | None,
    source_ip: str | None,
    source_ip6: str | None,
    block6: int | None,
    gateway_mac: str | None,
    timeout_s: float,
    rate_pps: float,
    testbed_spec: str | None,
    model: bool,
    model_seed: int,
    model_availability: float | None,
    outages: tuple[str, ...],
    as_json: bool,
) -> None:
    """Monitor the census' blocks (IPv4 /24s, IPv6 /N) with Trinocular's adaptive probing (one
    VP, or --testbed)."""
    check_output_dir(output_dir, "-o")
    if block6 is None:
        block6 = TESTBED_BLOCK6 if testbed_spec is not None else DEFAULT_BLOCK6
    if scale_rate_window is None:
        scale_rate_window = testbed_spec is not None
    params = parse_params(param_items, round_s, scale_rate_window)
    if scale_rate_window:
        params = params.time_scaled()
    schedule = [_parse_outage(spec, rounds, block6) for spec in outages]
    if schedule and not model:
        raise InputError("--model-outage needs --model")
    if model and (live or testbed_spec):
        raise InputError("--model: not with --live or --testbed")
    if testbed_spec is not None:
        if vp is not None or start is not None:
            raise InputError("--testbed: runs every VP of the spec; drop --vp and --start")
        if interface or source_ip or gateway_mac:
            raise InputError("--testbed: -i/-S/-G come from each VP; drop them")
        if source_ip6:
            raise InputError("--testbed: --source-ip6 comes from each VP; drop it")
        from liveness.monitor.multi import VpMonitorOptions, monitor_testbed

        log(f"monitor: bringing up {testbed_spec}, census scan, then every VP at once")
        summary = monitor_testbed(
            testbed_spec,
            Path(output_dir),
            round_s=params.round_s,
            rounds=rounds,
            census=[Path(path) for path in census_paths],
            options=VpMonitorOptions(
                timeout_s=timeout_s,
                params=param_items,
                scale_rate_window=scale_rate_window,
                rate_pps=rate_pps,
                changes_only=changes_only,
                block6=block6,
            ),
            progress=log,
        )
        if as_json:
            emit_json(summary)
        else:
            for name, one in summary["vps"].items():
                echo(
                    f"{name}: {one['rounds']} rounds over {one['measurable']} blocks; "
                    f"{one['probes_per_block_hour']} probes/block/hour"
                )
            echo(f"wrote {output_dir} (schedule: {summary['schedule']})")
        return
    if vp is None:
        raise InputError("--vp: name this vantage point (or use --testbed SPEC)")
    if not _VP_NAME.fullmatch(vp):
        raise InputError(
            f"--vp {excerpt(vp)}: use up to 64 letters, digits, '.', '_' or '-' "
            "(it names the output files)"
        )
    if not census_paths:
        raise InputError("--census: give at least one census file")
    if rounds is None:
        raise InputError("--rounds: how many rounds to run")
    if not model and not live:
        raise InputError(
            "no prober chosen: pass --live to send ICMP echo from here, "
            "or --model for the in-process model (no packets)"
        )
    if model and (interface or source_ip or gateway_mac):
        raise InputError("-i/-S/-G: only with --live")
    if model and source_ip6:
        raise InputError("--source-ip6: only with --live")
    source_ip, source_ip6 = _sources(source_ip, source_ip6)
    summary = monitor_vp(
        progress=log,
        vp=vp,
        census_paths=census_paths,
        rounds=rounds,
        params=params,
        output_dir=output_dir,
        start=start,
        changes_only=changes_only,
        model=model,
        model_seed=model_seed,
        model_availability=model_availability,
        schedule=schedule,
        live_route=(interface, source_ip, gateway_mac),
        timeout_s=timeout_s,
        rate_pps=rate_pps,
        block6=block6,
        source_ip6=source_ip6,
    )
    if as_json:
        emit_json(summary)
    else:
        echo(
            f"{vp}: {rounds} rounds over {summary['measurable']} blocks; "
            f"{summary['probes_per_block_hour']} probes/block/hour "
            f"(max {summary['max_probes_in_window']} in {params.rate_window_s:.0f} s); "
            f"wrote {summary['fsdb']} and {summary['observations']}"
        )
