"""The connectivity demo (``liveness demo --connectivity``): monitor a testbed (``connectivity``,
six VPs, IPv4; or ``dualstack``, three VPs, both families) from all its VPs, find its events,
and compare them with the schedule it was built to play.

Steps: bring the spec up; census scan (two ICMP echo passes of ``liveness scan`` from the first
VP while the schedule is quiet, over both families on a dual-stack spec); one live ``liveness
monitor`` per VP inside its namespace on a shared round clock until two rounds past the
schedule's end, both families in each (:mod:`liveness.monitor.multi`); then the detectors on
the Observation files, one family at a time (each family with its own VP blocks: a VP can be
an IPv6 island and an IPv4 core member at once), islands first and masked as ``liveness reach
detect`` does by default (:mod:`liveness.reach.island_mask`), the comparison with the schedule
per family (:func:`match_schedule`), and ``reach.html``
(:func:`liveness.reach.report.render_report`).

A small testbed has fewer blocks per family than the island detector's default
``min_blocks`` (10: fewer blocks measured make a VP unmeasurable rather than an island), so
the demo lowers it to half the blocks each family's VPs measure when that is smaller.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from liveness.reach.detect import Detection, DetectParams, sort_events
from liveness.reach.island_mask import detect_with_island_mask

__all__ = ["detect_per_family", "match_schedule", "outcome_lines", "run_connectivity_demo"]

DEMO_SPEC = "connectivity"
DEMO_ROUND_S = 10.0
DEMO_TIMEOUT_S = 0.25
DEMO_BLOCK6 = 56  # the testbed's twin of a /24


def _min_blocks(run: dict[str, Any], af: int) -> int:
    """The island detector's ``min_blocks`` for one family: the default, or half the blocks
    the family's VPs measure (the fewest of any VP) when that is smaller."""
    measurable = [
        int(one["families"][str(af)]["measurable"])
        for one in run["vps"].values()
        if str(af) in one["families"]
    ]
    return max(1, min(DetectParams().min_blocks, min(measurable, default=0) // 2))


def detect_per_family(
    obs: pa.Table, run: dict[str, Any], *, step: int, own_blocks: dict[int, dict[str, str]]
) -> Detection:
    """The detectors (islands masked) on each family's observations apart, with that family's
    VP blocks and ``min_blocks``; their events and VP summaries together."""
    parts = []
    for af in sorted({int(value or 4) for value in obs.column("af").unique().to_pylist()}):
        rows = obs.filter(pc.equal(obs["af"], pa.scalar(af, pa.uint8())))
        params = DetectParams(round_s=step, min_duration=step, min_blocks=_min_blocks(run, af))
        parts.append(detect_with_island_mask(rows, params, own_blocks.get(af, {})))
    if not parts:
        return detect_with_island_mask(obs, DetectParams(round_s=step, min_duration=step), {})
    return Detection(
        sort_events(pa.concat_tables([part.events for part in parts])),
        pa.concat_tables([part.vp_summary for part in parts]),
        sum(part.intervals for part in parts),
    )


def _covers(scope: str, target: str) -> bool:
    """Whether the block ``target`` (a /24, or an IPv6 prefix) overlaps the CIDR list ``scope``
    of the same family."""
    try:
        block = ipaddress.ip_network(target, strict=False)
        nets = [ipaddress.ip_network(net, strict=False) for net in scope.split(",")]
    except ValueError:
        return False
    return any(
        net.version == block.version and (block.subnet_of(net) or net.subnet_of(block))  # type: ignore[arg-type]
        for net in nets
    )


def _blocks_in(scope: str, af: int, block6: int) -> int:
    """How many monitored blocks (/24, or /block6) the CIDR list ``scope`` touches."""
    length = 24 if af == 4 else block6
    blocks: set[int] = set()
    for text in scope.split(","):
        net = ipaddress.ip_network(text, strict=False)
        if net.prefixlen >= length:
            blocks.add(int(net.supernet(new_prefix=length).network_address))
        else:
            step = 1 << (net.max_prefixlen - length)
            first = int(net.network_address)
            blocks.update(range(first, first + net.num_addresses, step))
    return len(blocks)


def match_schedule(
    events: pa.Table,
    schedule: pa.Table,
    started_at: float,
    tolerance_s: float,
    *,
    block6: int = 56,
    families: tuple[int, ...] = (4, 6),
) -> dict[str, Any]:
    """Compare detected events with the schedule (seconds from ``started_at``), per family.

    A scheduled outage or peninsula expects one event per monitored block of its scope (a /24,
    or an IPv6 /``block6``), an island one event for its VP; each must be of the scheduled
    row's family, have its kind and down VPs (for an island: the VP), and start and end
    within ``tolerance_s`` (one round). Events matching no scheduled one are ``unexpected``;
    ``ok`` says every scheduled event was found and nothing else was. Schedule rows of a
    family not in ``families`` (not monitored) are not expected. A VP on a scheduled island of
    the same family for the whole of an outage or peninsula may be missing from its down VPs:
    the detectors mask an island VP's view (it does not vote), as they should.
    """
    rows = events.to_pylist()
    used = [False] * len(rows)
    scheduled = []
    plan = schedule.to_pylist()
    islands = [
        (int(e.get("af") or 4), str(e["scope"]), float(e["start"]), float(e["end"]))
        for e in plan
        if e["kind"] == "island"
    ]
    for entry in plan:
        af = int(entry.get("af") or 4)
        if af not in families:
            continue
        start = started_at + float(entry["start"])
        end = started_at + float(entry["end"])
        want_down = sorted(v for v in str(entry["vps_down"]).split(",") if v)
        masked = {
            vp
            for island_af, vp, first, last in islands
            if island_af == af and first <= float(entry["start"]) and float(entry["end"]) <= last
        }
        accepted = [want_down, sorted(set(want_down) - masked)]
        found = []
        for k, row in enumerate(rows):
            if used[k] or str(row["kind"]) != entry["kind"] or int(row.get("af") or 4) != af:
                continue
            if entry["kind"] == "island":
                if str(row["scope"]) != entry["scope"]:
                    continue
            elif not _covers(str(entry["scope"]), str(row["scope"])):
                continue
            on_time = abs(row["start"] - start) <= tolerance_s and abs(row["end"] - end) <= (
                tolerance_s
            )
            right_vps = entry["kind"] == "island" or sorted(row["vps_down"]) in accepted
            if on_time and right_vps:
                used[k] = True
                found.append(str(row["scope"]))
        expected = 1
        if entry["kind"] != "island":
            expected = _blocks_in(str(entry["scope"]), af, block6)
        scheduled.append(
            {
                "af": af,
                "kind": entry["kind"],
                "scope": entry["scope"],
                "vps_down": want_down,
                "start": float(entry["start"]),
                "end": float(entry["end"]),
                "expected_events": expected,
                "found_events": len(found),
                "found": len(found) == expected,
            }
        )
    unexpected = [
        {
            "af": int(row.get("af") or 4),
            "kind": str(row["kind"]),
            "scope": str(row["scope"]),
            "start_s": round(row["start"] - started_at, 3),
            "end_s": round(row["end"] - started_at, 3),
            "vps_down": list(row["vps_down"]),
        }
        for k, row in enumerate(rows)
        if not used[k]
    ]
    ok = all(entry["found"] for entry in scheduled) and not unexpected
    return {"scheduled": scheduled, "unexpected": unexpected, "ok": ok}


def run_connectivity_demo(
    output_dir: Path,
    *,
    progress: Callable[[str], None] = lambda line: None,
    spec: str | Path = DEMO_SPEC,
    round_s: float = DEMO_ROUND_S,
    timeout_s: float = DEMO_TIMEOUT_S,
    block6: int = DEMO_BLOCK6,
) -> dict[str, Any]:
    """Bring ``spec`` up, census it, monitor from all its VPs through the schedule (IPv6 in
    /``block6`` blocks), detect the events per family, write ``reach.html`` and the event
    table; the comparison with the schedule.

    ``progress`` receives a line per stage; :func:`outcome_lines` formats the comparison.
    """
    from liveness.monitor.multi import VpMonitorOptions, monitor_testbed
    from liveness.reach.readers import read_observations
    from liveness.reach.report import render_report

    out = Path(output_dir)
    began = time.monotonic()
    progress(
        f"liveness demo: {spec} testbed, census scan, then every VP in rounds of {round_s:g} s"
    )
    options = VpMonitorOptions(timeout_s=timeout_s, block6=block6)
    run = monitor_testbed(spec, out, round_s=round_s, options=options, progress=progress)
    started_at = float(run["started_at"])
    schedule = pq.read_table(run["schedule"])
    progress(f"[{time.monotonic() - began:5.1f}s] detecting events")
    obs = read_observations(sorted(out.glob("*.observations.parquet")), kind="observation")
    found = detect_per_family(
        obs,
        run,
        step=max(1, round(round_s)),
        own_blocks={4: run["vp_blocks"], 6: run["vp_blocks6"]},
    )
    pq.write_table(found.events, out / "events.parquet")
    report = out / "reach.html"
    report.write_text(
        render_report(obs, found, title=f"liveness monitor: the {run['spec']} testbed")
    )
    monitored = tuple(sorted({int(af) for one in run["vps"].values() for af in one["families"]}))
    outcome = match_schedule(
        found.events, schedule, started_at, tolerance_s=round_s, block6=block6, families=monitored
    )
    result = {
        "spec": run["spec"],
        "output_dir": str(out),
        "report": str(report),
        "events_file": str(out / "events.parquet"),
        "round_s": round_s,
        "rounds": run["rounds"],
        "started_at": started_at,
        "events": found.events.num_rows,
        **outcome,
        "probes_per_block_hour": {
            name: summary["probes_per_block_hour"] for name, summary in run["vps"].items()
        },
        "max_probes_in_window": {
            name: summary["max_probes_in_window"] for name, summary in run["vps"].items()
        },
        "families": {
            name: {
                af: {
                    key: one[key]
                    for key in ("measurable", "probes_per_block_hour", "max_probes_in_window")
                }
                for af, one in summary["families"].items()
            }
            for name, summary in run["vps"].items()
        },
        "block6": block6,
        "seconds": round(time.monotonic() - began, 1),
    }
    return result


def outcome_lines(result: dict[str, Any]) -> list[str]:
    """The comparison with the schedule, one line per scheduled event and per surprise."""
    lines = []
    for entry in result["scheduled"]:
        mark = "found" if entry["found"] else "MISSED"
        lines.append(
            f"IPv{entry['af']} {entry['kind']:9} {entry['scope']:36} "
            f"down for {','.join(entry['vps_down']):24} "
            f"{entry['start']:6.0f}-{entry['end']:<6.0f} s: {mark} "
            f"({entry['found_events']}/{entry['expected_events']} events)"
        )
    for extra in result["unexpected"]:
        lines.append(
            f"unexpected IPv{extra['af']} {extra['kind']} of {extra['scope']} "
            f"at {extra['start_s']} s"
        )
    lines.append(f"report: {result['report']}")
    return lines
