"""Both families live on the ``dualstack`` testbed: census scan over IPv4 and IPv6, one monitor
per VP probing ICMP and ICMPv6 echo in the same rounds, the detectors per family, compared with
the schedule (issue 14: the IPv6 island and peninsula found with the right VPs within one round,
nothing invented, the IPv4 view of the same VPs quiet).

The schedule is the shipped ``dualstack`` one compressed to rounds of 4 s
(``dualstack_fast.toml`` beside this file), so the run takes about a minute. Packets stay inside
the testbed's namespaces, to 198.18.0.0/15 and 2001:2::/48; the testbed is taken down (and every
monitor process killed) even when the run fails.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from liveness.demo.connectivity import run_connectivity_demo

pytestmark = [pytest.mark.root, pytest.mark.slow]

FAST_SPEC = Path(__file__).with_name("dualstack_fast.toml")
ROUND_S = 4.0
ISLAND = (20, 40)
PENINSULA = (28, 48)
OUTAGE = (24, 36)


@pytest.fixture(scope="module")
def dual_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One connectivity demo on the compressed dual-stack spec, shared by this module."""
    out = tmp_path_factory.mktemp("monitor-dualstack")
    return run_connectivity_demo(out, spec=FAST_SPEC, round_s=ROUND_S)


def _events(run: dict[str, Any]) -> list[dict[str, Any]]:
    return pq.read_table(run["events_file"]).to_pylist()


def _on_time(event: dict[str, Any], t0: float, span: tuple[int, int]) -> bool:
    start_off = abs(float(event["start"]) - (t0 + span[0]))
    end_off = abs(float(event["end"]) - (t0 + span[1]))
    return start_off <= ROUND_S and end_off <= ROUND_S


def _af(obs: pa.Table, af: int) -> Any:
    """The filter keeping one family's rows."""
    return pc.equal(obs["af"], pa.scalar(af, pa.uint8()))


def test_ipv6_island_and_peninsula_found_with_the_right_vps(dual_run: dict[str, Any]) -> None:
    found = [
        (e["af"], e["kind"], e["scope"], e["found_events"], e["expected_events"])
        for e in dual_run["scheduled"]
    ]
    assert dual_run["ok"], (found, dual_run["unexpected"])
    assert dual_run["unexpected"] == []
    by_row = {(e["af"], e["kind"], e["scope"]): e for e in dual_run["scheduled"]}
    assert by_row[(6, "island", "vp1")]["found_events"] == 1
    peninsula = by_row[(6, "peninsula", "2001:2:0:200::/56,2001:2:0:300::/56")]
    assert peninsula["found_events"] == peninsula["expected_events"] == 2
    assert by_row[(4, "outage", "198.18.1.0/24")]["found_events"] == 1
    assert by_row[(6, "outage", "2001:2:0:100::/56")]["found_events"] == 1

    # Independently of match_schedule: every event, straight from the event file.
    t0 = dual_run["started_at"]
    events = _events(dual_run)
    six = [e for e in events if e["af"] == 6]
    (island,) = [e for e in six if e["kind"] == "island"]
    assert island["scope"] == "vp1" and _on_time(island, t0, ISLAND)
    peninsulas = [e for e in six if e["kind"] == "peninsula"]
    assert sorted(e["scope"] for e in peninsulas) == ["2001:2:0:200::/56", "2001:2:0:300::/56"]
    for event in peninsulas:
        assert event["vps_down"] == ["vp2"] and _on_time(event, t0, PENINSULA)
    outages = [e for e in events if e["kind"] == "outage"]
    assert sorted((e["af"], e["scope"]) for e in outages) == [
        (4, "198.18.1.0/24"),
        (6, "2001:2:0:100::/56"),
    ]
    for event in outages:
        assert _on_time(event, t0, OUTAGE)
    # vp1 is an IPv6 island for the whole IPv6 outage: its view is masked, the others' vote.
    (outage6,) = [e for e in outages if e["af"] == 6]
    assert outage6["vps_down"] == ["vp2", "vp3"]
    (outage4,) = [e for e in outages if e["af"] == 4]
    assert outage4["vps_down"] == ["vp1", "vp2", "vp3"]
    assert len(events) == 5  # nothing invented


def test_the_ipv4_view_of_the_same_vps_shows_no_event(dual_run: dict[str, Any]) -> None:
    """vp1 (an IPv6 island) and vp2 (cut from two IPv6 blocks) see IPv4 as it is: the only
    IPv4 event is the dual-stack outage, and their IPv4 observations are all up but for it."""
    four = [e for e in _events(dual_run) if e["af"] == 4]
    assert [(e["kind"], e["scope"]) for e in four] == [("outage", "198.18.1.0/24")]
    out = Path(dual_run["output_dir"])
    for vp in ("vp1", "vp2"):
        obs = pq.read_table(out / f"{vp}.observations.parquet")
        rows4 = obs.filter(_af(obs, 4)).to_pylist()
        assert rows4, vp
        not_up = {str(r["target"]) for r in rows4 if str(r["status"]) != "up"}
        assert not_up <= {"198.18.1.0/24"}, (vp, not_up)


def test_observations_name_ipv6_blocks_in_rfc5952(dual_run: dict[str, Any]) -> None:
    out = Path(dual_run["output_dir"])
    obs = pq.read_table(out / "vp3.observations.parquet")
    targets6, targets4 = (
        {str(t) for t in obs.filter(_af(obs, af))["target"].to_pylist()} for af in (6, 4)
    )
    assert "2001:2:0:700::/56" in targets6 and "2001:2::/56" in targets6
    for name in targets6:
        net = ipaddress.IPv6Network(name)
        assert net.prefixlen == 56 and str(net) == name
        assert net.subnet_of(ipaddress.IPv6Network("2001:2::/48"))
    assert all(ipaddress.IPv4Network(name).prefixlen == 24 for name in targets4)
    # Both families' rounds and bounds, per VP: the same round clock, the probe bound kept.
    for vp in ("vp1", "vp2", "vp3"):
        summary = json.loads((out / f"{vp}.summary.json").read_text())
        families = summary["families"]
        assert set(families) == {"4", "6"}
        assert len(families["4"]["per_round"]) == len(families["6"]["per_round"])
        assert families["6"]["block_prefix"] == 56 and families["6"]["measurable"] >= 5
        assert all(one["max_probes_in_window"] <= 20 for one in families.values())
        assert summary["late_rounds"] == 0
    assert (out / "vp1.fsdb6").read_text().startswith("#fsdb -F t block ")
