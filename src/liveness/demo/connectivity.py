"""The connectivity demo (``liveness demo --connectivity``): monitor the ``connectivity``
testbed from six VPs, find its events, and compare them with the schedule it was built to play.

Steps: bring the spec up; census scan (two ICMP echo passes of ``liveness scan`` from the first
VP while the schedule is quiet); one live ``liveness monitor`` per VP inside its namespace on a
shared round clock until two rounds past the schedule's end (:mod:`liveness.monitor.multi`);
then the detectors on the Observation files, islands first and masked as ``liveness reach
detect`` does by default (:mod:`liveness.reach.island_mask`), the comparison with the schedule
(:func:`match_schedule`), and ``reach.html`` (:func:`liveness.reach.report.render_report`).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from liveness.reach.detect import DetectParams
from liveness.reach.island_mask import detect_with_island_mask

__all__ = ["match_schedule", "outcome_lines", "run_connectivity_demo"]

DEMO_SPEC = "connectivity"
DEMO_ROUND_S = 10.0
DEMO_TIMEOUT_S = 0.25


def _covers(scope: str, target: str) -> bool:
    """Whether the /24 ``target`` lies in the CIDR list ``scope``."""
    try:
        block = ipaddress.IPv4Network(target, strict=False)
    except ValueError:
        return False
    try:
        nets = [ipaddress.IPv4Network(net, strict=False) for net in scope.split(",")]
    except ValueError:
        return False
    return any(block.subnet_of(net) for net in nets)


def match_schedule(
    events: pa.Table, schedule: pa.Table, started_at: float, tolerance_s: float
) -> dict[str, Any]:
    """Compare detected events with the schedule (seconds from ``started_at``).

    A scheduled outage or peninsula expects one event per /24 of its scope, an island one
    event for its VP; each must have the scheduled kind and down VPs (for an island: the VP),
    and start and end within ``tolerance_s`` (one round). Events matching no scheduled one are
    ``unexpected``; ``ok`` says every scheduled event was found and nothing else was. The
    monitor watches IPv4 /24 blocks, so a schedule's IPv6 rows (``af = 6``) are not expected.
    """
    rows = events.to_pylist()
    used = [False] * len(rows)
    scheduled = []
    for entry in schedule.to_pylist():
        if entry.get("af", 4) == 6:
            continue
        start = started_at + float(entry["start"])
        end = started_at + float(entry["end"])
        want_down = sorted(v for v in str(entry["vps_down"]).split(",") if v)
        found = []
        for k, row in enumerate(rows):
            if used[k] or str(row["kind"]) != entry["kind"]:
                continue
            if entry["kind"] == "island":
                if str(row["scope"]) != entry["scope"]:
                    continue
            elif not _covers(str(entry["scope"]), str(row["scope"])):
                continue
            on_time = abs(row["start"] - start) <= tolerance_s and abs(row["end"] - end) <= (
                tolerance_s
            )
            right_vps = entry["kind"] == "island" or sorted(row["vps_down"]) == want_down
            if on_time and right_vps:
                used[k] = True
                found.append(str(row["scope"]))
        expected = 1
        if entry["kind"] != "island":
            expected = sum(
                ipaddress.IPv4Network(net).num_addresses // 256
                for net in str(entry["scope"]).split(",")
            )
        scheduled.append(
            {
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
) -> dict[str, Any]:
    """Bring ``spec`` up, census it, monitor from all its VPs through the schedule, detect the
    events, write ``reach.html`` and the event table; the comparison with the schedule.

    ``progress`` receives a line per stage; :func:`outcome_lines` formats the comparison.
    """
    from liveness.monitor.multi import VpMonitorOptions, monitor_testbed
    from liveness.reach.readers import read_observations
    from liveness.reach.report import render_report

    out = Path(output_dir)
    began = time.monotonic()
    progress(f"liveness demo: {spec} testbed, census scan, then six VPs in rounds of {round_s:g} s")
    options = VpMonitorOptions(timeout_s=timeout_s)
    run = monitor_testbed(spec, out, round_s=round_s, options=options, progress=progress)
    started_at = float(run["started_at"])
    schedule = pq.read_table(run["schedule"])
    progress(f"[{time.monotonic() - began:5.1f}s] detecting events")
    obs = read_observations(sorted(out.glob("*.observations.parquet")), kind="observation")
    step = max(1, round(round_s))
    params = DetectParams(round_s=step, min_duration=step)
    found = detect_with_island_mask(obs, params, run["vp_blocks"])
    pq.write_table(found.events, out / "events.parquet")
    report = out / "reach.html"
    report.write_text(
        render_report(obs, found, title=f"liveness monitor: the {run['spec']} testbed")
    )
    outcome = match_schedule(found.events, schedule, started_at, tolerance_s=round_s)
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
        "seconds": round(time.monotonic() - began, 1),
    }
    return result


def outcome_lines(result: dict[str, Any]) -> list[str]:
    """The comparison with the schedule, one line per scheduled event and per surprise."""
    lines = []
    for entry in result["scheduled"]:
        mark = "found" if entry["found"] else "MISSED"
        lines.append(
            f"{entry['kind']:9} {entry['scope']:16} down for {','.join(entry['vps_down']):24} "
            f"{entry['start']:6.0f}-{entry['end']:<6.0f} s: {mark} "
            f"({entry['found_events']}/{entry['expected_events']} events)"
        )
    for extra in result["unexpected"]:
        lines.append(f"unexpected {extra['kind']} of {extra['scope']} at {extra['start_s']} s")
    lines.append(f"report: {result['report']}")
    return lines
