"""``liveness monitor``: Trinocular-style monitoring of /24 blocks from one vantage point.

Reads the census (E(b) per block), runs ``--rounds`` rounds of adaptive probing and streams,
per VP, a Trinocular-format FSDB file and an Observation parquet into ``-o OUTDIR``. Probes go
through :func:`liveness.reach.monitor.make_prober`: ``--model`` uses the in-process responder
model (simulated time, no packets); the live packet path and ``--testbed SPEC`` plug in there.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from liveness.cli._common import emit_json, json_option, log
from liveness.errors import InputError
from liveness.reach.monitor import (
    FsdbStream,
    Monitor,
    ObservationStream,
    TrinocularParams,
    load_census,
    make_prober,
)
from liveness.reach.monitor.prober import ModelProber

__all__ = ["command"]


def _parse_params(items: tuple[str, ...], round_s: float) -> TrinocularParams:
    """``NAME=VALUE`` overrides of :class:`TrinocularParams` (``--param``)."""
    types = {field.name: field.type for field in dataclasses.fields(TrinocularParams)}
    values: dict[str, Any] = {"round_s": round_s}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in types:
            raise InputError(
                f"--param {item!r}: expected NAME=VALUE with NAME one of {', '.join(types)}"
            )
        try:
            values[name] = int(text) if types[name] in ("int", int) else float(text)
        except ValueError:
            raise InputError(f"--param {item!r}: {text!r} is not a number") from None
    return TrinocularParams(**values)


def _parse_outage(spec: str) -> tuple[int, int, int]:
    """``a.b.c.0/24@R0-R1``: block down from round R0 up to (not including) R1."""
    where, at, rounds = spec.partition("@")
    first, dash, last = rounds.partition("-")
    try:
        network = ipaddress.IPv4Network(where)
        if network.prefixlen != 24 or not at or not dash:
            raise ValueError
        return int(network.network_address), int(first), int(last)
    except ValueError:
        raise InputError(f"--model-outage {spec!r}: expected a.b.c.0/24@FIRST-END") from None


@click.command(name="monitor")
@click.option("--vp", required=True, help="Name of this vantage point (in outputs).")
@click.option(
    "--census",
    "census_paths",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False),
    help="Census snapshot: IP-set file, text addresses or reply parquet; repeat for several.",
)
@click.option("--rounds", type=click.IntRange(min=1), required=True, help="Rounds to run.")
@click.option("--round-s", type=click.FloatRange(min=0.001), default=660.0, show_default=True)
@click.option("-o", "--output-dir", type=click.Path(file_okay=False), required=True)
@click.option("--start", type=int, default=None, help="First round's start (epoch s); default now.")
@click.option("--param", "param_items", multiple=True, help="Override a parameter: NAME=VALUE.")
@click.option(
    "--scale-rate-window",
    is_flag=True,
    help="Emulation only: shrink the 3600 s probe-bound window in proportion to --round-s/660.",
)
@click.option("--changes-only", is_flag=True, help="FSDB rows only when a block's status changes.")
@click.option("--model", is_flag=True, help="Probe the in-process responder model (no packets).")
@click.option("--model-seed", type=int, default=0, show_default=True)
@click.option(
    "--model-availability",
    type=click.FloatRange(0.0, 1.0),
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
    vp: str,
    census_paths: tuple[str, ...],
    rounds: int,
    round_s: float,
    output_dir: str,
    start: int | None,
    param_items: tuple[str, ...],
    scale_rate_window: bool,
    changes_only: bool,
    model: bool,
    model_seed: int,
    model_availability: float | None,
    outages: tuple[str, ...],
    as_json: bool,
) -> None:
    """Monitor the census' /24 blocks from one VP with Trinocular's adaptive probing."""
    params = _parse_params(param_items, round_s)
    if scale_rate_window:
        params = params.time_scaled()
    round_s = params.round_s
    schedule = [_parse_outage(spec) for spec in outages]
    if schedule and not model:
        raise InputError("--model-outage needs --model")
    census = load_census(census_paths)
    monitor = Monitor.from_census(census, vp=vp, params=params)
    log(
        f"monitor {vp}: {census.blocks.size} blocks, {monitor.blocks.size} measurable "
        f"(|E(b)| >= {params.min_ever_responsive}), {census.address_count} addresses"
    )
    if model:
        chance: Any = model_availability
        if chance is None:
            chance = census.availability if census.availability is not None else 0.9
        prober = make_prober("model", blocks=census.blocks, availability=chance, seed=model_seed)
    else:
        prober = make_prober("live", vp=vp)
    if schedule and isinstance(prober, ModelProber):
        known = set(census.blocks.tolist())
        for block, _, _ in schedule:
            if block not in known:
                raise InputError(f"--model-outage: {ipaddress.IPv4Address(block)}/24 not in census")

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    fsdb_path = out / f"{vp}.fsdb"
    observation_path = out / f"{vp}.observations.parquet"
    unmeasurable_path = out / f"{vp}.unmeasurable.txt"
    unmeasurable_path.write_text(
        "".join(
            f"{ipaddress.IPv4Address(int(block))}/24\t{int(size)}\n"
            for block, size in zip(
                monitor.unmeasurable_blocks, monitor.unmeasurable_sizes, strict=True
            )
        )
    )
    first_start = int(time.time()) if start is None else start
    simulated = model
    totals = np.zeros(3, dtype=np.int64)
    per_round: list[dict[str, int]] = []
    with (
        FsdbStream(fsdb_path, changes_only=changes_only) as fsdb,
        ObservationStream(observation_path, vp=vp, round_s=round_s) as observations,
    ):
        for round_no in range(rounds):
            round_start = first_start + round(round_no * round_s)
            if not simulated:
                time.sleep(max(0.0, round_start - time.time()))
            if isinstance(prober, ModelProber):
                for block, first, end in schedule:
                    if round_no in (first, end):
                        prober.set_up(block, round_no == end)
            result = monitor.run_round(prober, round_no, round_start)
            fsdb.write(result)
            observations.write(result)
            counts = result.status_counts()
            per_round.append({**counts, "probes": int(result.probes.sum())})
            totals += [counts["down"], counts["up"], counts["unknown"]]
            log(f"round {round_no}: {counts}")
        fsdb.close(comment=f"liveness monitor --vp {vp} --rounds {rounds} --round-s {round_s}")
    summary = {
        "vp": vp,
        "rounds": rounds,
        "round_s": round_s,
        "blocks": int(census.blocks.size),
        "measurable": int(monitor.blocks.size),
        "unmeasurable": int(monitor.unmeasurable_blocks.size),
        "block_rounds": {"down": int(totals[0]), "up": int(totals[1]), "unknown": int(totals[2])},
        "per_round": per_round,
        "probes": monitor.total_probes,
        "probes_per_block_hour": round(monitor.probes_per_block_hour(), 4),
        "probes_per_block_window": round(
            monitor.probes_per_block_hour() * params.rate_window_s / 3600.0, 4
        ),
        "max_probes_in_window": monitor.max_probes_in_window,
        "probe_bound": {
            "probes": params.max_probes_per_window,
            "window_s": params.rate_window_s,
        },
        "fsdb": str(fsdb_path),
        "observations": str(observation_path),
        "observation_rows": observations.rows_written,
        "unmeasurable_list": str(unmeasurable_path),
    }
    if as_json:
        emit_json(summary)
    else:
        click.echo(
            f"{vp}: {rounds} rounds over {monitor.blocks.size} blocks; "
            f"{summary['probes_per_block_hour']} probes/block/hour "
            f"(max {monitor.max_probes_in_window} in {params.rate_window_s:.0f} s); "
            f"wrote {fsdb_path} and {observation_path}"
        )
