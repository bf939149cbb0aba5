"""Monitoring from one vantage point: the round driver behind ``liveness monitor --vp``.

Loads the census, builds the :class:`~liveness.monitor.rounds.Monitor`, opens the prober (the
in-process model, or the live ICMP echo prober through the rings, whose interface, source and
gateway default to the route toward the first census address, as ``liveness scan`` does), drops
every capability once the rings are open, then runs the rounds on the wall clock, streaming each
round to the VP's FSDB and Observation files, and returns the JSON summary.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from liveness.errors import InputError, RunError
from liveness.monitor.census import Census, load_census
from liveness.monitor.fsdb import FsdbStream
from liveness.monitor.observations import ObservationStream
from liveness.monitor.params import TrinocularParams
from liveness.monitor.prober import ModelProber, Prober, make_prober
from liveness.monitor.rounds import Monitor
from liveness.scan.privileges import drop_capabilities

__all__ = ["live_prober", "monitor_vp"]


def live_prober(
    census: Census,
    vp: str,
    interface: str | None,
    source_ip: str | None,
    gateway_mac: str | None,
    timeout_s: float,
    rate_pps: float,
) -> Prober:
    """The live ICMP echo prober; -i/-S/-G missing are taken from the route (as ``scan``)."""
    from liveness.monitor.live import check_monitor_targets

    check_monitor_targets(census.blocks, "--census")
    if interface is None or source_ip is None or gateway_mac is None:
        from liveness.net.route import sending_defaults

        if not census.hosts.size:
            raise InputError("--census: no address to probe")
        first = str(ipaddress.IPv4Address(int(census.blocks[0]) | int(census.hosts[0])))
        interface, source_ip, gateway_mac = sending_defaults(
            first, interface, source_ip, gateway_mac
        )
    return make_prober(
        "live",
        interface=interface,
        source_ip=source_ip,
        gateway_mac=gateway_mac,
        timeout_s=timeout_s,
        rate_pps=rate_pps,
        seed=secrets.randbits(63),
        vp=vp,
    )


def monitor_vp(
    *,
    progress: Callable[[str], None] = lambda line: None,
    vp: str,
    census_paths: tuple[str, ...],
    rounds: int,
    params: TrinocularParams,
    output_dir: str,
    start: int | None,
    changes_only: bool,
    model: bool,
    model_seed: int,
    model_availability: float | None,
    schedule: list[tuple[int, int, int]],
    live_route: tuple[str | None, str | None, str | None],
    timeout_s: float,
    rate_pps: float,
) -> dict[str, Any]:
    """Monitor from this host (or namespace) for ``rounds`` rounds; the JSON summary."""
    round_s = params.round_s
    census = load_census(census_paths)
    if not census.address_count:
        raise InputError(f"--census {', '.join(census_paths)}: no address to monitor")
    monitor = Monitor.from_census(census, vp=vp, params=params)
    progress(
        f"monitor {vp}: {census.blocks.size} blocks, {monitor.blocks.size} measurable "
        f"(|E(b)| >= {params.min_ever_responsive}), {census.address_count} addresses"
    )
    if model:
        known = set(census.blocks.tolist())
        for block, _, _ in schedule:
            if block not in known:
                raise InputError(f"--model-outage: {ipaddress.IPv4Address(block)}/24 not in census")
    out = Path(output_dir)
    fsdb_path = out / f"{vp}.fsdb"
    observation_path = out / f"{vp}.observations.parquet"
    unmeasurable_path = out / f"{vp}.unmeasurable.txt"
    try:
        out.mkdir(parents=True, exist_ok=True)
        unmeasurable_path.write_text(
            "".join(
                f"{ipaddress.IPv4Address(int(block))}/24\t{int(size)}\n"
                for block, size in zip(
                    monitor.unmeasurable_blocks, monitor.unmeasurable_sizes, strict=True
                )
            )
        )
    except OSError as exc:
        raise RunError(f"-o {output_dir}: cannot write: {exc.strerror or exc}") from None
    first_start = int(time.time()) if start is None else start
    totals = np.zeros(3, dtype=np.int64)
    per_round: list[dict[str, int]] = []
    late_rounds = 0
    capabilities_dropped: bool | None = None
    prober: Prober | None = None
    try:
        if model:
            chance: Any = model_availability
            if chance is None:
                chance = census.availability if census.availability is not None else 0.9
            prober = make_prober(
                "model", blocks=census.blocks, availability=chance, seed=model_seed
            )
        else:
            prober = live_prober(census, vp, *live_route, timeout_s, rate_pps)
            capabilities_dropped = drop_capabilities()  # the rings are open: nothing else needs any
        with (
            FsdbStream(fsdb_path, changes_only=changes_only) as fsdb,
            ObservationStream(observation_path, vp=vp, round_s=round_s) as observations,
        ):
            for round_no in range(rounds):
                round_start = first_start + round(round_no * round_s)
                if not model:
                    wait = round_start - time.time()
                    late_rounds += wait < -0.5 * round_s
                    time.sleep(max(0.0, wait))
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
                progress(f"round {round_no}: {counts}")
            fsdb.close(comment=f"liveness monitor --vp {vp} --rounds {rounds} --round-s {round_s}")
    finally:
        close = getattr(prober, "close", None)
        if close is not None:
            close()
    return {
        "vp": vp,
        "prober": "model" if model else "live",
        "capabilities_dropped": capabilities_dropped,
        "rounds": rounds,
        "round_s": round_s,
        "start": first_start,
        "late_rounds": late_rounds,
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
