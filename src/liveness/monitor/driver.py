"""Monitoring from one vantage point: the round driver behind ``liveness monitor --vp``.

Loads the census (both families: IPv4 /24s, IPv6 /``block6`` prefixes), builds one
:class:`~liveness.monitor.rounds.Monitor` per family present, opens one prober per family (the
in-process model, or the live ICMP / ICMPv6 echo prober through the rings, whose interface,
source and gateway default to the route toward the family's first census address, as
``liveness scan`` does), drops every capability once the rings are open, then runs the rounds on
the wall clock, both families in the same round (each in a thread of its own when live, so one
family's timeouts never delay the other's), streaming each round to the VP's FSDB files
(``VP.fsdb`` for IPv4, ``VP.fsdb6`` for IPv6) and its one Observation file, and returns the JSON
summary: the IPv4 figures where they always were (or IPv6's when the census has no IPv4), and
every family's under ``families``.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from liveness.errors import InputError, RunError
from liveness.monitor.census import Census, Census6, load_census_families
from liveness.monitor.fsdb import FsdbStream
from liveness.monitor.observations import ObservationStream
from liveness.monitor.params import TrinocularParams
from liveness.monitor.prober import ModelProber, Prober, make_prober
from liveness.monitor.rounds import Monitor, RoundResult
from liveness.scan.privileges import drop_capabilities

__all__ = ["Outage", "live_prober", "monitor_vp"]

Outage = tuple[int, int, int, int]
"""A model outage: (family, block key, first round, end round), as ``--model-outage`` says."""


def live_prober(
    census: Census | Census6,
    vp: str,
    interface: str | None,
    source_ip: str | None,
    gateway_mac: str | None,
    timeout_s: float,
    rate_pps: float,
) -> Prober:
    """The live ICMP (IPv4 census) or ICMPv6 (IPv6 census) echo prober; -i/-S/-G (or
    --source-ip6) missing are taken from the route toward the first census address."""
    from liveness.monitor.live import check_monitor_targets

    if isinstance(census, Census6):
        check_monitor_targets(census.blocks, "--census", prefix6=census.prefix_len)
        if not census.address_count:
            raise InputError("--census: no IPv6 address to probe")
        first = str(ipaddress.IPv6Address(census.addresses[0].tobytes()))
    else:
        check_monitor_targets(census.blocks, "--census")
        if not census.hosts.size:
            raise InputError("--census: no address to probe")
        first = str(ipaddress.IPv4Address(int(census.blocks[0]) | int(census.hosts[0])))
    if interface is None or source_ip is None or gateway_mac is None:
        from liveness.net.route import sending_defaults

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


def _block_text(monitor: Monitor, blocks: Any) -> list[str]:
    """CIDR text of some blocks of ``monitor``'s family."""
    from liveness.monitor.rounds import block_labels

    return [str(name) for name in block_labels(blocks, monitor.af, monitor.prefix_len).to_pylist()]


def _family_summary(monitor: Monitor, census: Census | Census6, params: TrinocularParams,
                    totals: Any, per_round: list[dict[str, int]]) -> dict[str, Any]:  # fmt: skip
    """One family's figures (the keys the summary has always had for IPv4)."""
    hour = monitor.probes_per_block_hour()
    return {
        "af": monitor.af,
        "block_prefix": monitor.prefix_len,
        "blocks": int(census.blocks.size),
        "measurable": int(monitor.blocks.size),
        "unmeasurable": int(monitor.unmeasurable_blocks.size),
        "addresses": census.address_count,
        "block_rounds": {"down": int(totals[0]), "up": int(totals[1]), "unknown": int(totals[2])},
        "per_round": per_round,
        "probes": monitor.total_probes,
        "probes_per_block_hour": round(hour, 4),
        "probes_per_block_window": round(hour * params.rate_window_s / 3600.0, 4),
        "max_probes_in_window": monitor.max_probes_in_window,
    }


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
    schedule: list[Outage],
    live_route: tuple[str | None, str | None, str | None],
    timeout_s: float,
    rate_pps: float,
    block6: int = 48,
    source_ip6: str | None = None,
) -> dict[str, Any]:
    """Monitor from this host (or namespace) for ``rounds`` rounds; the JSON summary."""
    round_s = params.round_s
    census4, census6 = load_census_families(census_paths, block6)
    censuses: dict[int, Census | Census6] = {}
    if census4 is not None:
        censuses[4] = census4
    if census6 is not None:
        censuses[6] = census6
    if not censuses:
        raise InputError(f"--census {', '.join(census_paths)}: no address to monitor")
    monitors: dict[int, Monitor] = {}
    for af, census in censuses.items():
        if isinstance(census, Census6):
            monitors[af] = Monitor.from_census6(census, vp=vp, params=params)
        else:
            monitors[af] = Monitor.from_census(census, vp=vp, params=params)
        name = "/24" if af == 4 else f"/{block6}"
        progress(
            f"monitor {vp}: IPv{af}: {census.blocks.size} {name} blocks, "
            f"{monitors[af].blocks.size} measurable (|E(b)| >= {params.min_ever_responsive}), "
            f"{census.address_count} addresses"
        )
    if model:
        for af, key, _, _ in schedule:
            known = censuses.get(af)
            if known is None or key not in set(known.blocks.tolist()):
                raise InputError("--model-outage: block not in the census")
    out = Path(output_dir)
    fsdb_paths = {af: out / (f"{vp}.fsdb" if af == 4 else f"{vp}.fsdb6") for af in monitors}
    observation_path = out / f"{vp}.observations.parquet"
    unmeasurable_path = out / f"{vp}.unmeasurable.txt"
    try:
        out.mkdir(parents=True, exist_ok=True)
        lines = []
        for monitor in monitors.values():
            names = _block_text(monitor, monitor.unmeasurable_blocks)
            lines += [
                f"{n}\t{int(k)}\n" for n, k in zip(names, monitor.unmeasurable_sizes, strict=True)
            ]
        unmeasurable_path.write_text("".join(lines))
    except OSError as exc:
        raise RunError(f"-o {output_dir}: cannot write: {exc.strerror or exc}") from None
    first_start = int(time.time()) if start is None else start
    totals = {af: np.zeros(3, dtype=np.int64) for af in monitors}
    per_round: dict[int, list[dict[str, int]]] = {af: [] for af in monitors}
    late_rounds = 0
    capabilities_dropped: bool | None = None
    probers: dict[int, Prober] = {}
    try:
        with ExitStack() as streams:
            for af, census in censuses.items():
                if model:
                    chance: Any = model_availability
                    if chance is None:
                        chance = census.availability if census.availability is not None else 0.9
                    prefix6 = census.prefix_len if isinstance(census, Census6) else None
                    probers[af] = make_prober(
                        "model", blocks=census.blocks, availability=chance,
                        seed=model_seed + (af == 6), prefix6=prefix6,
                    )  # fmt: skip
                else:
                    interface, source_ip, gateway_mac = live_route
                    source = source_ip if af == 4 else source_ip6
                    probers[af] = live_prober(
                        census, vp, interface, source, gateway_mac, timeout_s, rate_pps
                    )
            if not model:
                capabilities_dropped = (
                    drop_capabilities()
                )  # the rings are open: nothing else needs any
            fsdbs = {
                af: streams.enter_context(FsdbStream(path, changes_only=changes_only))
                for af, path in fsdb_paths.items()
            }
            observations = streams.enter_context(
                ObservationStream(observation_path, vp=vp, round_s=round_s)
            )
            pool = streams.enter_context(ThreadPoolExecutor(max_workers=len(monitors)))
            for round_no in range(rounds):
                round_start = first_start + round(round_no * round_s)
                if not model:
                    wait = round_start - time.time()
                    late_rounds += wait < -0.5 * round_s
                    time.sleep(max(0.0, wait))
                for af, key, first, end in schedule:
                    prober = probers[af]
                    if isinstance(prober, ModelProber) and round_no in (first, end):
                        prober.set_up(np.asarray([key]), round_no == end)
                results = _run_round(pool, monitors, probers, round_no, round_start, model)
                for af, result in results.items():
                    fsdbs[af].write(result)
                    observations.write(result)
                    counts = result.status_counts()
                    per_round[af].append({**counts, "probes": int(result.probes.sum())})
                    totals[af] += [counts["down"], counts["up"], counts["unknown"]]
                    progress(f"round {round_no}: IPv{af} {counts}")
            comment = f"liveness monitor --vp {vp} --rounds {rounds} --round-s {round_s}"
            for fsdb in fsdbs.values():
                fsdb.close(comment=comment)
    finally:
        for prober in probers.values():
            close = getattr(prober, "close", None)
            if close is not None:
                close()
    families = {
        str(af): _family_summary(monitors[af], censuses[af], params, totals[af], per_round[af])
        for af in monitors
    }
    main = families["4"] if "4" in families else families["6"]
    return {
        "vp": vp,
        "prober": "model" if model else "live",
        "capabilities_dropped": capabilities_dropped,
        "rounds": rounds,
        "round_s": round_s,
        "start": first_start,
        "late_rounds": late_rounds,
        **{
            key: value
            for key, value in main.items()
            if key not in ("af", "block_prefix", "addresses")
        },
        "probe_bound": {
            "probes": params.max_probes_per_window,
            "window_s": params.rate_window_s,
        },
        "fsdb": str(fsdb_paths.get(4, fsdb_paths.get(6))),
        "fsdb6": str(fsdb_paths[6]) if 6 in fsdb_paths else None,
        "observations": str(observation_path),
        "observation_rows": observations.rows_written,
        "unmeasurable_list": str(unmeasurable_path),
        "families": families,
    }


def _run_round(
    pool: ThreadPoolExecutor,
    monitors: dict[int, Monitor],
    probers: dict[int, Prober],
    round_no: int,
    round_start: int,
    model: bool,
) -> dict[int, RoundResult]:
    """One round of every family: one after the other on the model (reproducible), at the
    same time on the wire (each family waits for its own replies)."""
    if model or len(monitors) == 1:
        return {af: m.run_round(probers[af], round_no, round_start) for af, m in monitors.items()}
    futures = {
        af: pool.submit(m.run_round, probers[af], round_no, round_start)
        for af, m in monitors.items()
    }
    return {af: future.result() for af, future in futures.items()}
